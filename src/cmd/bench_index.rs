//! `motif bench-index`: store and index throughput on synthetic analyses (no audio).
//!
//! For N tracks it measures, in one run and on the real code paths:
//! - batched writes into Postgres and SQLite (`Catalog::write_batch`, 2,000 tracks per
//!   transaction), against a baseline of one transaction per track measured on the first
//!   tracks of the same data;
//! - the derived index build from the store (`changes_since` pages, as `motif reindex`
//!   does): store read, HNSW insert (parallel) and tantivy indexing, timed separately;
//! - HNSW recall@10 and latency at several `ef` against exact search over the same vectors
//!   (the baseline), unfiltered;
//! - resident memory of the process holding both indexes, and on-disk sizes;
//! - every vector engine (`--engines`) side by side on the same embeddings
//!   ([`super::bench_engines`]); `--vectors-only` runs that part alone.
//!
//! Embeddings are synthetic but shaped like real ones when `--like` names a catalogue:
//! each is a random blend of two stored embeddings plus Gaussian noise, renormalised.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use indexer::catalog::{Catalog, Change, TrackWrite};
use indexer::filter::TrackSet;
use indexer::synthetic::{Rng, Synth};
use indexer::text::TextIndex;
use indexer::vectors::{Engine, HnswParams, VectorIndex};

use super::proc_stats;
use super::store;

#[derive(clap::Args)]
pub struct Args {
    /// Number of synthetic tracks.
    #[arg(long, default_value_t = 100_000)]
    pub tracks: usize,
    /// Postgres server to benchmark on (a database `motif_bench` is created and dropped).
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/test")]
    pub postgres: String,
    /// Postgres batches written at once, each on its own connection: they overlap all
    /// but the step that draws change numbers (at 1M on 2 cores, 1: ~12k tracks/s,
    /// 2: ~16k, 4: ~20.6k).
    #[arg(long, default_value_t = 4)]
    pub writers: usize,
    /// Skip the Postgres part.
    #[arg(long)]
    pub no_postgres: bool,
    /// Skip the SQLite part.
    #[arg(long)]
    pub no_sqlite: bool,
    /// Draw embedding shapes from this catalogue's stored embeddings (e.g. the dev corpus
    /// indexed with `motif index`); default: 500 random cluster centres.
    #[arg(long)]
    pub like: Option<String>,
    /// Scratch folder for SQLite and the indexes.
    #[arg(long, default_value = "motif-bench-data")]
    pub dir: PathBuf,
    /// HNSW links per node.
    #[arg(long, default_value_t = 16)]
    pub m: usize,
    /// HNSW candidate list while building.
    #[arg(long, default_value_t = 200)]
    pub ef_construction: usize,
    /// Recall queries.
    #[arg(long, default_value_t = 200)]
    pub queries: usize,
    /// Skip both stores: feed the synthetic tracks straight into the indexes (for
    /// parameter sweeps).
    #[arg(long)]
    pub index_only: bool,
    /// Stop after the store writes (no index build, no recall).
    #[arg(long, conflicts_with = "index_only")]
    pub store_only: bool,
    /// Only load the indexes saved in `--dir` by an earlier run and report the memory a
    /// serving process holds (run it as its own process).
    #[arg(long)]
    pub load: bool,
    /// With `--load`: also measure recall (unfiltered and under filters) on the loaded
    /// index.
    #[arg(long)]
    pub recall: bool,
    /// Vector engines built side by side on the same embeddings, comma-separated
    /// (`graph`, `hnsw-rs`); the first also serves the store and text part.
    #[arg(long, value_delimiter = ',', default_value = "graph,hnsw-rs")]
    pub engines: Vec<Engine>,
    /// Only the vector engines side by side: no stores, no text index, no copy lookups.
    #[arg(long, conflicts_with_all = ["store_only", "load"])]
    pub vectors_only: bool,
}

const WRITE_BATCH: usize = 2_000;
const BASELINE_ROWS: usize = 1_000;
/// Batches generated ahead of each timed stretch of writes (100k tracks, ~150 MB).
const GENERATED_BATCHES: usize = 50;

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(args.tracks >= 1_000, "--tracks must be at least 1000");
    anyhow::ensure!(args.queries > 0, "--queries must be at least 1");
    anyhow::ensure!(!args.engines.is_empty(), "--engines names no engine");
    let rt = store::runtime()?;
    let dim = embeddings::embedding::EMBEDDING_DIM;
    let centres = match &args.like {
        Some(url) => rt.block_on(async {
            let cat = Catalog::open(url).await?;
            let f = cat.all_features().await?;
            cat.close().await;
            let n = embeddings::Normalizer::default_for_version();
            anyhow::Ok(f.iter().map(|(_, x)| n.embed(x)).collect::<Vec<_>>())
        })?,
        None => {
            let mut rng = Rng(42);
            (0..500)
                .map(|_| {
                    let mut v: Vec<f32> = (0..dim).map(|_| rng.normal()).collect();
                    embeddings::embedding::l2_normalise(&mut v);
                    v
                })
                .collect()
        }
    };
    anyhow::ensure!(
        centres.len() >= 2,
        "need at least 2 embeddings to shape the data"
    );
    if args.load {
        let t = Instant::now();
        let mut vectors = VectorIndex::load(&args.dir.join("vectors"))?;
        let text = TextIndex::open_or_create(&args.dir.join("text"))?;
        let load_s = t.elapsed().as_secs_f64();
        crate::release_free_memory();
        // Touch the graph the way queries do.
        let synth = Synth { centres, dim };
        let queries = queries(&synth, args.queries);
        let t = Instant::now();
        for q in &queries {
            let _ = vectors.search(q, 10, None);
        }
        let q_ms = t.elapsed().as_secs_f64() * 1e3 / args.queries as f64;
        println!(
            "loaded {} vectors ({} engine) and {} text documents in {load_s:.1} s; {:.0} MiB \
             resident after {} queries ({q_ms:.2} ms each), peak {:.0} MiB",
            vectors.len(),
            vectors.engine(),
            text.len(),
            proc_stats::rss_mib(),
            args.queries,
            proc_stats::peak_rss_mib()
        );
        if args.recall {
            recall(&mut vectors, &queries);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let synth = Synth { centres, dim };
    std::fs::create_dir_all(&args.dir)?;
    let params = HnswParams {
        m: args.m,
        ef_construction: args.ef_construction,
        ..HnswParams::default()
    };
    let queries = queries(&synth, args.queries);
    if args.vectors_only {
        let dir = &args.dir;
        super::bench_engines::compare(&args.engines, &synth, args.tracks, params, &queries, dir)?;
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "bench-index: {} synthetic tracks, {dim}-d embeddings shaped on {} {}",
        args.tracks,
        synth.centres.len(),
        if args.like.is_some() {
            "stored embeddings"
        } else {
            "random centres"
        }
    );

    let mut pg_url = None;
    if !args.no_postgres && !args.index_only {
        let admin = args.postgres.clone();
        let base = admin
            .rsplit_once('/')
            .map(|(b, _)| b.to_string())
            .context("--postgres must end in /DATABASE")?;
        rt.block_on(async {
            let pool = sqlx::PgPool::connect(&admin).await?;
            sqlx::query("DROP DATABASE IF EXISTS motif_bench WITH (FORCE)")
                .execute(&pool)
                .await?;
            sqlx::query("CREATE DATABASE motif_bench")
                .execute(&pool)
                .await?;
            pool.close().await;
            anyhow::Ok(())
        })?;
        let url = format!("{base}/motif_bench");
        bench_writes(&rt, "postgres", &url, &synth, args.tracks, args.writers)?;
        let size: i64 = rt.block_on(async {
            let pool = sqlx::PgPool::connect(&url).await?;
            let s = sqlx::query_scalar("SELECT pg_database_size(current_database())")
                .fetch_one(&pool)
                .await?;
            pool.close().await;
            anyhow::Ok(s)
        })?;
        println!("  postgres database size: {:.0} MB", size as f64 / 1e6);
        pg_url = Some(url);
    }
    let sqlite_path = args.dir.join("bench.db");
    if !args.no_sqlite && !args.index_only {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", sqlite_path.display()));
        }
        let url = format!("sqlite://{}", sqlite_path.display());
        // SQLite has one writer at a time whatever the caller does.
        bench_writes(&rt, "sqlite", &url, &synth, args.tracks, 1)?;
        println!(
            "  sqlite file size: {:.0} MB",
            dir_size(&args.dir) as f64 / 1e6
        );
    }

    if args.store_only {
        return Ok(ExitCode::SUCCESS);
    }
    // Index build from the store, as reindex does.
    let source = match (&pg_url, args.no_sqlite || args.index_only) {
        (Some(u), _) => Pages::Store(u.clone()),
        (None, false) => Pages::Store(format!("sqlite://{}", sqlite_path.display())),
        (None, true) => Pages::Synthetic(&synth),
    };
    let rss_before = proc_stats::rss_mib();
    let engine = args.engines[0];
    let (vectors, text) = rt.block_on(build_indexes(
        source,
        &args.dir,
        dim,
        (engine, params),
        args.tracks,
    ))?;
    let rss_after = proc_stats::rss_mib();
    println!(
        "  memory: {:.0} MiB resident holding both indexes ({:.0} MiB before building), peak {:.0} MiB",
        rss_after,
        rss_before,
        proc_stats::peak_rss_mib()
    );

    let mut vectors = vectors;
    recall(&mut vectors, &queries);
    copy_lookups(&mut vectors, &text, &synth, args.tracks)?;
    drop(text);
    drop(vectors);
    super::bench_engines::compare(
        &args.engines,
        &synth,
        args.tracks,
        params,
        &queries,
        &args.dir,
    )?;
    Ok(ExitCode::SUCCESS)
}

/// Copies arriving into the full catalogue: 1,000 new tracks, each a degraded copy of a
/// stored one (fingerprint shifted by up to 40 values with 5 % of its bits flipped,
/// embedding moved by noise), looked up as the catch-up does (`recordings::assign`).
/// Prints the time per track and the share found; a second batch of 1,000 unrelated new
/// tracks (new fingerprints) gives the time of a lookup that finds nothing.
fn copy_lookups(
    vectors: &mut VectorIndex,
    text: &TextIndex,
    synth: &Synth,
    n: usize,
) -> anyhow::Result<()> {
    const BATCH: usize = 1_000;
    let mut rng = Rng(11);
    let mut copies = Vec::with_capacity(BATCH);
    let mut originals = Vec::with_capacity(BATCH);
    for j in 0..BATCH {
        let i = rng.below(n);
        let mut c = synthetic_change(i, synth.track(i));
        let shift = rng.below(40);
        c.fingerprint = c.fingerprint[shift..]
            .iter()
            .map(|&v| {
                let mut v = v;
                for bit in 0..32 {
                    if rng.unit() < 0.05 {
                        v ^= 1 << bit;
                    }
                }
                v
            })
            .collect();
        if let Some(e) = c.embedding.as_mut() {
            e.iter_mut().for_each(|x| *x += 0.02 * rng.normal());
            embeddings::embedding::l2_normalise(e);
        }
        c.id = (n + 1 + j) as i64;
        c.recording = format!("synthetic-copy:{j}");
        originals.push(i as i64 + 1);
        copies.push(c);
    }
    let strangers: Vec<Change> = (0..BATCH)
        .map(|j| {
            let mut c = synthetic_change(n + BATCH + j, synth.track(n + BATCH + j));
            c.id = (n + BATCH + 1 + j) as i64;
            c
        })
        .collect();
    for batch in [&copies, &strangers] {
        let ups: Vec<(i64, Vec<f32>)> = batch
            .iter()
            .filter_map(|c| Some((c.id, c.embedding.clone()?)))
            .collect();
        vectors.upsert(&ups)?;
    }
    let t = Instant::now();
    let found = indexer::recordings::assign(&copies, vectors, text)?;
    let copies_ms = t.elapsed().as_secs_f64() * 1e3 / BATCH as f64;
    let right = copies
        .iter()
        .zip(&originals)
        .filter(|(c, &orig)| {
            let want = text.copy_facts(orig).ok().flatten().map(|f| f.recording);
            want.is_some() && found.recordings.get(&c.id).copied() == want
        })
        .count();
    let t = Instant::now();
    let none = indexer::recordings::assign(&strangers, vectors, text)?;
    let strangers_ms = t.elapsed().as_secs_f64() * 1e3 / BATCH as f64;
    println!(
        "  copy lookup at {n} fingerprints: {copies_ms:.2} ms a track for {BATCH} copies \
         ({right} found in their original's recording), {strangers_ms:.2} ms a track for \
         {BATCH} new recordings ({} wrongly matched); both on {} threads",
        none.copies_found,
        rayon::current_num_threads()
    );
    Ok(())
}

/// The benchmark's query embeddings: the same `n` for every part and every engine.
fn queries(synth: &Synth, n: usize) -> Vec<Vec<f32>> {
    let mut rng = Rng(7);
    (0..n).map(|_| synth.embedding(&mut rng)).collect()
}

/// Recall@10 and latency of HNSW against exact search (the baseline), unfiltered at
/// several `ef` and under filters.
fn recall(vectors: &mut VectorIndex, queries: &[Vec<f32>]) {
    let t = Instant::now();
    let truth: Vec<Vec<i64>> = queries
        .iter()
        .map(|q| {
            vectors
                .search_exact(q, 10, None)
                .into_iter()
                .map(|(i, _)| i)
                .collect()
        })
        .collect();
    let exact_ms = t.elapsed().as_secs_f64() * 1e3 / queries.len() as f64;
    println!("  exact search (baseline): {exact_ms:.2} ms/query");
    for ef in super::bench_engines::EFS {
        vectors.set_ef_search(ef);
        let (r, ms, _) =
            super::bench_engines::timed(queries, &truth, |q| vectors.search(q, 10, None));
        println!(
            "  hnsw ef={ef:>3}: recall@10 {r:.3}, {ms:.3} ms/query ({:.0}x faster than exact)",
            exact_ms / ms.max(1e-9)
        );
    }
    filtered_recall(vectors, &queries[..queries.len().min(100)]);
}

/// Recall@10 under filters keeping 50 % down to 0.1 % of the catalogue, for the plan the
/// query engine uses and for filtered HNSW alone, against an exact scan of the allowed
/// tracks (the baseline, timed in the same run). Two kinds of filter: random subsets
/// (membership unrelated to the audio) and caps (the tracks nearest to one direction of
/// the embedding space, like a filter on an attribute the embedding encodes: the allowed
/// tracks sit together, often away from the query, the hard case for a graph walk).
fn filtered_recall(vectors: &mut VectorIndex, queries: &[Vec<f32>]) {
    vectors.set_ef_search(HnswParams::default().ef_search);
    let limits = api::engine::Limits::default();
    let brute = limits
        .exact_max_tracks
        .max((limits.exact_max_share * vectors.len() as f64) as usize);
    let recall =
        |got: &[(i64, f32)], want: &[i64]| got.iter().filter(|(i, _)| want.contains(i)).count();
    // The cap's direction: the normalised sum of a few queries' vectors.
    let mut direction = vec![0.0f32; vectors.dim()];
    for q in queries.iter().skip(queries.len() / 2).take(3) {
        direction.iter_mut().zip(q).for_each(|(d, x)| *d += x);
    }
    embeddings::embedding::l2_normalise(&mut direction);
    let mut along: Vec<(f32, i64)> = vectors
        .track_ids()
        .filter_map(|t| {
            let v = vectors.vector(t)?;
            Some((v.iter().zip(&direction).map(|(a, b)| a * b).sum(), t))
        })
        .collect();
    along.sort_by(|a, b| b.0.total_cmp(&a.0));
    for (kind, share) in [
        ("random", 0.5),
        ("random", 0.25),
        ("random", 0.1),
        ("random", 0.05),
        ("random", 0.02),
        ("random", 0.01),
        ("random", 0.001),
        ("cap", 0.5),
        ("cap", 0.25),
        ("cap", 0.1),
        ("cap", 0.05),
        ("cap", 0.01),
    ] {
        let allowed: TrackSet = if kind == "random" {
            vectors
                .track_ids()
                .filter(|&id| unit_hash(id) < share)
                .collect()
        } else {
            let n = (share * along.len() as f64) as usize;
            along[..n].iter().map(|&(_, t)| t).collect()
        };
        let t = Instant::now();
        let truth: Vec<Vec<i64>> = queries
            .iter()
            .map(|q| {
                vectors
                    .search_among(q, 10, allowed.iter())
                    .into_iter()
                    .map(|(i, _)| i)
                    .collect()
            })
            .collect();
        let exact_ms = t.elapsed().as_secs_f64() * 1e3 / queries.len() as f64;
        let run = |brute_max: usize| {
            let t = Instant::now();
            let mut hits = 0;
            let mut plan = None;
            for (q, want) in queries.iter().zip(&truth) {
                let (got, p) = vectors.search_allowed(q, 10, Some(&allowed), brute_max);
                hits += recall(&got, want);
                plan = Some(p);
            }
            let ms = t.elapsed().as_secs_f64() * 1e3 / queries.len() as f64;
            let possible: usize = truth.iter().map(Vec::len).sum();
            (hits as f64 / possible.max(1) as f64, ms, plan)
        };
        let (r_plan, ms_plan, plan) = run(brute);
        let (r_hnsw, ms_hnsw, _) = run(0);
        println!(
            "  {kind} filter keeping {:>5.1} % ({} tracks): engine plan {:?} recall@10 {r_plan:.3} {ms_plan:.2} ms \
             ({:.0}x faster than the exact scan, {exact_ms:.2} ms); filtered HNSW alone (exact when it cannot fill 10) recall@10 {r_hnsw:.3} {ms_hnsw:.2} ms",
            share * 100.0,
            allowed.len(),
            plan.unwrap_or(indexer::vectors::Plan::Exact),
            exact_ms / ms_plan.max(1e-9),
        );
    }
}

/// A track id hashed to [0, 1) (splitmix64): uncorrelated filter membership.
pub(super) fn unit_hash(id: i64) -> f64 {
    let mut z = (id as u64).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

fn bench_writes(
    rt: &tokio::runtime::Runtime,
    backend: &str,
    url: &str,
    synth: &Synth,
    n: usize,
    writers: usize,
) -> anyhow::Result<()> {
    rt.block_on(async {
        let cat = Catalog::open(url).await?;
        // Baseline: one transaction per track (a round trip per row), first tracks.
        let t = Instant::now();
        for i in 0..BASELINE_ROWS {
            cat.write_batch(&[synth.track(i)]).await?;
        }
        let base_rate = BASELINE_ROWS as f64 / t.elapsed().as_secs_f64();
        // Batched, the rest, with `writers` batches in flight. Tracks are generated a
        // chunk at a time between timed stretches, so the rate is the store's alone.
        let mut write_s = 0.0;
        let mut i = BASELINE_ROWS;
        while i < n {
            let end = (i + WRITE_BATCH * GENERATED_BATCHES).min(n);
            let mut batches: Vec<Vec<TrackWrite>> = Vec::new();
            while i < end {
                let stop = (i + WRITE_BATCH).min(end);
                batches.push((i..stop).map(|j| synth.track(j)).collect());
                i = stop;
            }
            let t = Instant::now();
            let mut in_flight = tokio::task::JoinSet::new();
            for batch in batches {
                while in_flight.len() >= writers.max(1) {
                    if let Some(done) = in_flight.join_next().await {
                        done??;
                    }
                }
                let cat = cat.clone();
                in_flight.spawn(async move { cat.write_batch(&batch).await.map(|_| ()) });
            }
            while let Some(done) = in_flight.join_next().await {
                done??;
            }
            write_s += t.elapsed().as_secs_f64();
        }
        let rate = (n - BASELINE_ROWS) as f64 / write_s;
        println!(
            "  {backend}: wrote {} tracks (with analyses and tags) in {write_s:.1} s \
             with {writers} writer(s): {rate:.0} tracks/s \
             batched vs {base_rate:.0} tracks/s one transaction per track ({:.1}x)",
            n - BASELINE_ROWS,
            rate / base_rate
        );
        cat.close().await;
        anyhow::Ok(())
    })
}

/// Where the index build reads tracks from.
enum Pages<'a> {
    /// A catalogue written by this run (the real `changes_since` path).
    Store(String),
    /// Straight from the generator (`--index-only`).
    Synthetic(&'a Synth),
}

/// The change a store would return for synthetic track `i`.
fn synthetic_change(i: usize, w: TrackWrite) -> Change {
    let a = w.analysis.expect("synthetic tracks are analysed");
    let mut tags = w.meta.tags;
    tags.extend(a.tags.into_iter().map(|t| t.name));
    Change {
        id: i as i64 + 1,
        seq: i as i64 + 1,
        external_id: w.meta.external_id,
        active: true,
        title: w.meta.title,
        artists: w.meta.artists,
        album: w.meta.album,
        genre: w.meta.genre,
        release_year: w.meta.release_year,
        duration_s: Some(a.duration_s),
        recording: format!("synthetic:{i}"),
        tags,
        attributes: Some((
            indexer::catalog::rows::attribute_values(&a.attributes),
            a.attributes.key.name().to_string(),
            a.attributes.mode.name().to_string(),
            a.attributes.camelot.clone(),
        )),
        embedding: Some(a.embedding),
        quality: indexer::catalog::rows::copy_quality(
            Some(&a.codec),
            Some(a.sample_rate),
            Some(a.channels),
        ),
        edge_tempi: embeddings::beats::edge_tempi(&a.beats),
        fingerprint: a.fingerprint,
        fine_fingerprint: a.fine_fingerprint,
    }
}

async fn build_indexes(
    source: Pages<'_>,
    dir: &Path,
    dim: usize,
    (engine, params): (Engine, HnswParams),
    n: usize,
) -> anyhow::Result<(VectorIndex, TextIndex)> {
    let cat = match &source {
        Pages::Store(url) => Some(Catalog::open(url).await?),
        Pages::Synthetic(_) => None,
    };
    let text_dir = dir.join("text");
    let vec_dir = dir.join("vectors");
    let _ = std::fs::remove_dir_all(&text_dir);
    let mut text = TextIndex::open_or_create(&text_dir)?;
    let mut vectors = VectorIndex::new(engine, dim, params, n)?;
    let (mut read_s, mut hnsw_s, mut text_s, mut copies_s) = (0.0, 0.0, 0.0, 0.0);
    let mut copies_found = 0;
    let mut after = 0;
    loop {
        let t = Instant::now();
        let page = match (&cat, &source) {
            (Some(cat), _) => cat.changes_since(after, 20_000).await?,
            (None, Pages::Synthetic(synth)) => {
                let from = after as usize;
                (from..(from + 20_000).min(n))
                    .map(|i| synthetic_change(i, synth.track(i)))
                    .collect()
            }
            (None, Pages::Store(_)) => unreachable!("a store source always has a catalogue"),
        };
        read_s += t.elapsed().as_secs_f64();
        let Some(last) = page.last().map(|c| c.seq) else {
            break;
        };
        let ups: Vec<(i64, Vec<f32>)> = page
            .iter()
            .filter_map(|c| Some((c.id, c.embedding.clone()?)))
            .collect();
        let t = Instant::now();
        vectors.upsert(&ups)?;
        hnsw_s += t.elapsed().as_secs_f64();
        // As the derived-index catch-up does: which tracks are copies, then the documents.
        let t = Instant::now();
        let found = indexer::recordings::assign(&page, &vectors, &text)?;
        copies_found += found.copies_found;
        copies_s += t.elapsed().as_secs_f64();
        let t = Instant::now();
        text.apply(&page, &found.recordings)?;
        // Page by page, as the catch-up commits (the next page is matched against it).
        text.commit(last)?;
        text_s += t.elapsed().as_secs_f64();
        after = last;
    }
    let t = Instant::now();
    text.commit(after)?;
    text.close_writer()?;
    text_s += t.elapsed().as_secs_f64();
    vectors.set_seq(after);
    let t = Instant::now();
    vectors.save(&vec_dir)?;
    let save_s = t.elapsed().as_secs_f64();
    if let Some(cat) = cat {
        cat.close().await;
    }
    println!(
        "  {} (20k pages): {read_s:.1} s ({:.0} tracks/s)",
        if matches!(source, Pages::Store(_)) {
            "store read (changes_since)"
        } else {
            "synthetic generation"
        },
        n as f64 / read_s
    );
    println!(
        "  hnsw build ({engine} engine, M={}, ef_construction={}, parallel): {hnsw_s:.1} s ({:.0} tracks/s); saved in {save_s:.1} s, {:.0} MB on disk",
        params.m,
        params.ef_construction,
        n as f64 / hnsw_s,
        dir_size(&vec_dir) as f64 / 1e6
    );
    println!(
        "  copies of one recording (neighbour search + fingerprint check): {copies_s:.1} s \
         ({:.0} tracks/s), {copies_found} found",
        n as f64 / copies_s
    );
    println!(
        "  tantivy build: {text_s:.1} s ({:.0} docs/s), {:.0} MB on disk",
        n as f64 / text_s,
        dir_size(&text_dir) as f64 / 1e6
    );
    Ok((vectors, text))
}

pub(super) fn dir_size(p: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(p) else {
        return std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    };
    entries
        .flatten()
        .map(|e| {
            let path = e.path();
            if path.is_dir() {
                dir_size(&path)
            } else {
                e.metadata().map(|m| m.len()).unwrap_or(0)
            }
        })
        .sum()
}
