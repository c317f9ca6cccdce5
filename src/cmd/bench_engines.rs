//! `motif bench-index`'s side-by-side part: every vector engine built in one run on the
//! same synthetic embeddings, with the same parameters, queries and ground truth, one after
//! the other in one process (so the machine's speed of the moment is shared). It replaced
//! `bench/hnsw_ab.sh`, which compared two binaries built from two commits.
//!
//! Per engine: build time (inserted in pages of 20,000, as a catch-up does), resident
//! memory added by the built index, save time and size on disk, load time and resident
//! memory of the loaded index alone (the builder dropped first: what a server holds), then
//! on the loaded index recall@10 and latency (mean, p99, one thread) at each `ef` against
//! exact search, and filtered HNSW alone (no exact plan) under random filters.

use std::path::Path;
use std::time::Instant;

use indexer::filter::TrackSet;
use indexer::synthetic::Synth;
use indexer::vectors::{Engine, HnswParams, VectorIndex};

use super::proc_stats;

/// `ef` values of the recall rows.
pub const EFS: [usize; 5] = [32, 64, 96, 128, 256];
/// Shares of the catalogue kept by the filtered rows.
const FILTER_SHARES: [f64; 2] = [0.5, 0.1];
/// Tracks inserted per call, as the catch-up's pages.
const PAGE: usize = 20_000;

/// One engine's figures.
struct Figures {
    engine: Engine,
    build_s: f64,
    built_mib: f64,
    save_s: f64,
    disk_mb: f64,
    load_s: f64,
    loaded_mib: f64,
    /// Per `EFS` entry: recall@10, mean ms, p99 ms.
    unfiltered: Vec<(f64, f64, f64)>,
    /// Per `FILTER_SHARES` entry: recall@10, mean ms, p99 ms.
    filtered: Vec<(f64, f64, f64)>,
}

/// Builds, saves, reloads and queries each engine on tracks `0..n` of `synth`; prints
/// each engine's figures as they come and a table of all at the end.
pub fn compare(
    engines: &[Engine],
    synth: &Synth,
    n: usize,
    params: HnswParams,
    queries: &[Vec<f32>],
    dir: &Path,
) -> anyhow::Result<()> {
    let items: Vec<(i64, Vec<f32>)> = (0..n)
        .map(|i| (i as i64 + 1, synth.track_embedding(i)))
        .collect();
    println!(
        "  vector engines side by side: {n} vectors, M={}, ef_construction={}, {} build threads, {} queries",
        params.m,
        params.ef_construction,
        rayon::current_num_threads(),
        queries.len()
    );
    let mut truth: Option<Truth> = None;
    let mut all = Vec::new();
    for &engine in engines {
        let figures = measure(engine, &items, params, queries, &mut truth, dir)?;
        print_engine(&figures);
        all.push(figures);
    }
    if let Some(t) = &truth {
        println!("  exact search (the recall baseline): {:.2} ms/query", t.ms);
    }
    print_table(&all);
    Ok(())
}

/// Exact answers to the queries, unfiltered and under each filter; the same for every
/// engine (same vectors, same dot product), so computed once.
struct Truth {
    unfiltered: Vec<Vec<i64>>,
    filters: Vec<(TrackSet, Vec<Vec<i64>>)>,
    ms: f64,
}

impl Truth {
    fn of(index: &VectorIndex, queries: &[Vec<f32>]) -> Truth {
        let t = Instant::now();
        let unfiltered = queries
            .iter()
            .map(|q| ids(&index.search_exact(q, 10, None)))
            .collect();
        let ms = t.elapsed().as_secs_f64() * 1e3 / queries.len().max(1) as f64;
        let filters = FILTER_SHARES
            .iter()
            .map(|&share| {
                let set: TrackSet = index
                    .track_ids()
                    .filter(|&id| super::bench_index::unit_hash(id) < share)
                    .collect();
                let answers = queries
                    .iter()
                    .map(|q| ids(&index.search_among(q, 10, set.iter())))
                    .collect();
                (set, answers)
            })
            .collect();
        Truth {
            unfiltered,
            filters,
            ms,
        }
    }
}

fn ids(hits: &[(i64, f32)]) -> Vec<i64> {
    hits.iter().map(|h| h.0).collect()
}

fn measure(
    engine: Engine,
    items: &[(i64, Vec<f32>)],
    params: HnswParams,
    queries: &[Vec<f32>],
    truth: &mut Option<Truth>,
    dir: &Path,
) -> anyhow::Result<Figures> {
    let path = dir.join(format!("vectors-{engine}"));
    crate::release_free_memory();
    let rss0 = proc_stats::rss_mib();
    let t = Instant::now();
    let mut built = VectorIndex::new(engine, items[0].1.len(), params, items.len())?;
    for page in items.chunks(PAGE) {
        built.upsert(page)?;
    }
    let build_s = t.elapsed().as_secs_f64();
    let built_mib = proc_stats::rss_mib() - rss0;
    let t = Instant::now();
    built.save(&path)?;
    let save_s = t.elapsed().as_secs_f64();
    drop(built);
    crate::release_free_memory();
    let rss0 = proc_stats::rss_mib();
    let t = Instant::now();
    let mut index = VectorIndex::load(&path)?;
    let load_s = t.elapsed().as_secs_f64();
    crate::release_free_memory();
    let loaded_mib = proc_stats::rss_mib() - rss0;
    let truth = truth.get_or_insert_with(|| Truth::of(&index, queries));
    let unfiltered = EFS
        .iter()
        .map(|&ef| {
            index.set_ef_search(ef);
            timed(queries, &truth.unfiltered, |q| index.search(q, 10, None))
        })
        .collect();
    index.set_ef_search(params.ef_search);
    let filtered = truth
        .filters
        .iter()
        .map(|(set, answers)| {
            timed(queries, answers, |q| {
                index.search_allowed(q, 10, Some(set), 0).0
            })
        })
        .collect();
    let disk_mb = super::bench_index::dir_size(&path) as f64 / 1e6;
    let _ = std::fs::remove_dir_all(&path);
    Ok(Figures {
        engine,
        build_s,
        built_mib,
        save_s,
        disk_mb,
        load_s,
        loaded_mib,
        unfiltered,
        filtered,
    })
}

/// Recall@10 against `want`, mean and p99 latency (ms) of `search` over the queries.
pub(super) fn timed(
    queries: &[Vec<f32>],
    want: &[Vec<i64>],
    search: impl Fn(&[f32]) -> Vec<(i64, f32)>,
) -> (f64, f64, f64) {
    let mut ms = Vec::with_capacity(queries.len());
    let (mut hits, mut possible) = (0, 0);
    for (q, want) in queries.iter().zip(want) {
        let t = Instant::now();
        let got = search(q);
        ms.push(t.elapsed().as_secs_f64() * 1e3);
        hits += got.iter().filter(|h| want.contains(&h.0)).count();
        possible += want.len();
    }
    ms.sort_by(f64::total_cmp);
    let mean = ms.iter().sum::<f64>() / ms.len().max(1) as f64;
    let p99 = ms
        .get((ms.len() * 99).div_ceil(100).saturating_sub(1))
        .copied()
        .unwrap_or(0.0);
    (hits as f64 / possible.max(1) as f64, mean, p99)
}

fn print_engine(f: &Figures) {
    println!(
        "  {}: built in {:.1} s (+{:.0} MiB resident), saved in {:.1} s ({:.0} MB on disk), \
         loaded in {:.1} s (+{:.0} MiB resident)",
        f.engine, f.build_s, f.built_mib, f.save_s, f.disk_mb, f.load_s, f.loaded_mib
    );
    for (ef, (r, mean, p99)) in EFS.iter().zip(&f.unfiltered) {
        println!(
            "  {} ef={ef:>3}: recall@10 {r:.3}, {mean:.3} ms/query (p99 {p99:.3})",
            f.engine
        );
    }
    for (share, (r, mean, p99)) in FILTER_SHARES.iter().zip(&f.filtered) {
        println!(
            "  {} filtered HNSW alone, random filter keeping {:.0} %: recall@10 {r:.3}, \
             {mean:.2} ms/query (p99 {p99:.2})",
            f.engine,
            share * 100.0
        );
    }
}

/// The figures of every engine as one Markdown table, a column per engine.
fn print_table(all: &[Figures]) {
    let row = |label: &str, cell: &dyn Fn(&Figures) -> String| {
        let cells: Vec<String> = all.iter().map(cell).collect();
        println!("| {label} | {} |", cells.join(" | "));
    };
    println!();
    let names: Vec<String> = all.iter().map(|f| f.engine.to_string()).collect();
    println!("| engine | {} |", names.join(" | "));
    println!("|---|{}", "---|".repeat(all.len()));
    row("build", &|f| format!("{:.1} s", f.build_s));
    row("resident after building", &|f| {
        format!("+{:.0} MiB", f.built_mib)
    });
    row("save / size on disk", &|f| {
        format!("{:.1} s / {:.0} MB", f.save_s, f.disk_mb)
    });
    row("load / resident when loaded", &|f| {
        format!("{:.1} s / +{:.0} MiB", f.load_s, f.loaded_mib)
    });
    for (i, ef) in EFS.iter().enumerate() {
        row(&format!("ef={ef}: recall@10, mean / p99 ms"), &|f| {
            let (r, mean, p99) = f.unfiltered[i];
            format!("{r:.3}, {mean:.3} / {p99:.3}")
        });
    }
    for (i, share) in FILTER_SHARES.iter().enumerate() {
        row(
            &format!(
                "filtered HNSW, {:.0} % allowed: recall@10, mean / p99 ms",
                share * 100.0
            ),
            &|f| {
                let (r, mean, p99) = f.filtered[i];
                format!("{r:.3}, {mean:.2} / {p99:.2}")
            },
        );
    }
}
