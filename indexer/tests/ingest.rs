//! Ingestion guarantees, each run against real Postgres and against SQLite with real
//! audio from `fixtures/`. Postgres is `MOTIF_TEST_POSTGRES` (default
//! `postgres://postgres@127.0.0.1:5432/test`); every test works in a database of its own,
//! created and dropped here. A missing Postgres fails the Postgres tests (never a skip).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use indexer::catalog::Catalog;
use indexer::derived::DerivedIndexes;
use indexer::pipeline::{self, Options, Summary};
use indexer::vectors::{Engine, HnswParams};
use sqlx::AssertSqlSafe;

static COUNTER: AtomicUsize = AtomicUsize::new(0);

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

fn admin_url() -> String {
    std::env::var("MOTIF_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A scratch folder holding a copy of some fixture audio and the data dir.
struct Scratch {
    dir: PathBuf,
    pg_db: Option<String>,
}

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let dir =
            std::env::temp_dir().join(format!("motif-ingest-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("music")).unwrap();
        for f in [
            "pop_a_major_120.ogg",
            "funk_e_minor_100.ogg",
            "rock_d_major_140.mp3",
            "ballad_eflat_major_76.opus",
        ] {
            std::fs::copy(fixtures().join("audio").join(f), dir.join("music").join(f)).unwrap();
        }
        Scratch { dir, pg_db: None }
    }

    fn music(&self) -> PathBuf {
        self.dir.join("music")
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// Opens a fresh store of the given backend.
    async fn catalog(&mut self, backend: &str) -> Catalog {
        match backend {
            "sqlite" => Catalog::open(&format!(
                "sqlite://{}",
                self.data().join("motif.db").display()
            ))
            .await
            .expect("open SQLite"),
            _ => {
                let name = format!(
                    "motif_t_{}_{}",
                    std::process::id(),
                    COUNTER.fetch_add(1, Ordering::SeqCst)
                );
                let admin = sqlx::PgPool::connect(&admin_url())
                    .await
                    .expect("Postgres must be reachable at MOTIF_TEST_POSTGRES (see .ci/run)");
                sqlx::query(AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name}")))
                    .execute(&admin)
                    .await
                    .unwrap();
                sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&admin)
                    .await
                    .unwrap();
                admin.close().await;
                self.pg_db = Some(name.clone());
                Catalog::open(&pg_url(&name)).await.expect("open Postgres")
            }
        }
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.music().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

fn pg_url(db: &str) -> String {
    let admin = admin_url();
    let base = admin
        .rsplit_once('/')
        .map(|(b, _)| b.to_string())
        .unwrap_or(admin);
    format!("{base}/{db}")
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        if let Some(db) = self.pg_db.take() {
            // Best effort: a leftover database only costs disk.
            let _ = std::process::Command::new("psql")
                .args([
                    &admin_url(),
                    "-qc",
                    &format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"),
                ])
                .output();
        }
    }
}

/// Options that analyse every item again, whatever the store holds.
fn reanalysing() -> Options {
    Options {
        reanalyze: true,
        ..opts()
    }
}

fn opts() -> Options {
    Options {
        batch_size: 2,
        jobs: 2,
        ..Options::default()
    }
}

async fn index(cat: &Catalog, s: &Scratch, input: &Path, o: &Options) -> Summary {
    pipeline::run(cat, &s.data(), input, o).await.expect("run")
}

/// Active track ids in the store, sorted.
async fn active_ids(cat: &Catalog) -> Vec<i64> {
    let q = "SELECT id FROM tracks WHERE status = 'active' ORDER BY id";
    match cat {
        Catalog::Postgres(p) => sqlx::query_scalar(q).fetch_all(p).await.unwrap(),
        Catalog::Sqlite(p) => sqlx::query_scalar(q).fetch_all(p).await.unwrap(),
    }
}

/// Both indexes, reopened from disk, hold exactly the store's active tracks.
async fn assert_indexes_match_store(cat: &Catalog, s: &Scratch) {
    let store = active_ids(cat).await;
    let idx = DerivedIndexes::open(
        &s.data(),
        embeddings::embedding::EMBEDDING_DIM,
        HnswParams::default(),
        Engine::default(),
    )
    .unwrap();
    let mut vec_ids: Vec<i64> = idx.vectors.track_ids().collect();
    vec_ids.sort_unstable();
    assert_eq!(vec_ids, store, "vector index vs store");
    assert_eq!(idx.text.track_ids().unwrap(), store, "text index vs store");
    // Each track's tempo at its start and end, as playlists read it, is its stored beats'.
    let rows = idx.text.rows_of(store.iter().copied()).unwrap();
    assert_eq!(rows.len(), store.len());
    for r in &rows {
        let beats = cat.track(r.id).await.unwrap().unwrap().beats;
        let edges = embeddings::beats::edge_tempi(&beats);
        assert_eq!(
            edges.map(|e| (e.start_bpm, e.end_bpm)),
            (r.tempo_start > 0.0).then_some((r.tempo_start, r.tempo_end)),
            "track {}: {} beats",
            r.id,
            beats.len()
        );
    }
    assert_eq!(idx.vectors.seq(), cat.max_seq().await.unwrap());
    assert_eq!(idx.text.seq(), cat.max_seq().await.unwrap());
}

async fn replay_changes_nothing(backend: &str) {
    let mut s = Scratch::new("replay");
    let cat = s.catalog(backend).await;
    let first = index(&cat, &s, &s.music(), &opts()).await;
    assert_eq!(
        (first.counts.new, first.counts.analysed, first.counts.failed),
        (4, 4, 0)
    );
    assert_eq!(first.indexed_vectors, 4);
    assert_eq!(first.indexed_text, 4);
    let seq = cat.max_seq().await.unwrap();
    let again = index(&cat, &s, &s.music(), &opts()).await;
    assert_eq!(again.counts.analysed, 0);
    assert_eq!(
        (
            again.counts.new,
            again.counts.updated,
            again.counts.unchanged
        ),
        (0, 0, 4)
    );
    assert_eq!(again.index.applied, 0);
    assert_eq!(cat.max_seq().await.unwrap(), seq, "a replay wrote nothing");
    assert_indexes_match_store(&cat, &s).await;
}

async fn changes_are_picked_up(backend: &str) {
    let mut s = Scratch::new("changes");
    let cat = s.catalog(backend).await;
    index(&cat, &s, &s.music(), &opts()).await;
    // New audio under the same name: re-analysed.
    std::fs::copy(
        fixtures().join("audio/hiphop_g_minor_90.ogg"),
        s.music().join("pop_a_major_120.ogg"),
    )
    .unwrap();
    let r = index(&cat, &s, &s.music(), &opts()).await;
    assert_eq!(
        (r.counts.analysed, r.counts.updated, r.counts.unchanged),
        (1, 1, 3)
    );

    // Metadata only (a manifest over the same files): written, not analysed.
    let m = s.write(
        "m.jsonl",
        r#"{"external_id": "file:funk_e_minor_100.ogg", "path": "funk_e_minor_100.ogg", "title": "Renamed", "artists": ["New Artist"], "tags": ["mood:groovy"]}"#,
    );
    let r = index(&cat, &s, &m, &opts()).await;
    assert_eq!((r.counts.analysed, r.counts.updated), (0, 1));
    let idx = DerivedIndexes::open(
        &s.data(),
        embeddings::embedding::EMBEDDING_DIM,
        HnswParams::default(),
        Engine::default(),
    )
    .unwrap();
    assert_eq!(idx.text.search("renamed", 5).unwrap().len(), 1);
    assert_eq!(idx.text.search("groovy", 5).unwrap().len(), 1);
    drop(idx);

    // Another analyser version: kept unless --reanalyze.
    let q = "UPDATE analyses SET analyzer_version = 'motif-analyzer/0.0.1'";
    match &cat {
        Catalog::Postgres(p) => sqlx::query(q).execute(p).await.map(|_| ()).unwrap(),
        Catalog::Sqlite(p) => sqlx::query(q).execute(p).await.map(|_| ()).unwrap(),
    }
    let r = index(&cat, &s, &s.music(), &opts()).await;
    assert_eq!(
        (r.counts.analysed, r.stale),
        (0, 3),
        "metadata of one file changed back"
    );
    let r = index(&cat, &s, &s.music(), &reanalysing()).await;
    assert_eq!(r.counts.analysed, 4);
    let r = index(&cat, &s, &s.music(), &reanalysing()).await;
    assert_eq!(r.counts.analysed, 0);
    assert_indexes_match_store(&cat, &s).await;
}

async fn takedown_leaves_every_index(backend: &str) {
    let mut s = Scratch::new("takedown");
    let cat = s.catalog(backend).await;
    let add = s.write(
        "add.jsonl",
        concat!(
            r#"{"external_id": "T1", "path": "pop_a_major_120.ogg", "title": "Sunny Pop", "artists": ["A"]}"#,
            "\n",
            r#"{"external_id": "T2", "path": "funk_e_minor_100.ogg", "title": "Funky", "artists": ["B"]}"#,
            "\n"
        ),
    );
    index(&cat, &s, &add, &opts()).await;
    let idx = DerivedIndexes::open(
        &s.data(),
        embeddings::embedding::EMBEDDING_DIM,
        HnswParams::default(),
        Engine::default(),
    )
    .unwrap();
    let t1 = idx.text.search("sunny", 1).unwrap()[0].0;
    let v1 = idx.vectors.vector(t1).unwrap().to_vec();
    assert_eq!(idx.vectors.search(&v1, 1, None)[0].0, t1);
    drop(idx);

    let del = s.write("del.jsonl", r#"{"op": "delete", "external_id": "T1"}"#);
    let r = index(&cat, &s, &del, &opts()).await;
    assert_eq!(r.counts.taken_down, 1);
    let idx = DerivedIndexes::open(
        &s.data(),
        embeddings::embedding::EMBEDDING_DIM,
        HnswParams::default(),
        Engine::default(),
    )
    .unwrap();
    assert!(idx.text.search("sunny", 5).unwrap().is_empty());
    assert!(!idx.vectors.contains(t1));
    assert!(idx
        .vectors
        .search(&v1, 5, None)
        .iter()
        .all(|(t, _)| *t != t1));
    assert!(idx
        .vectors
        .search_exact(&v1, 5, None)
        .iter()
        .all(|(t, _)| *t != t1));
    drop(idx);
    assert_indexes_match_store(&cat, &s).await;
    // Taking it down again changes nothing; delivering it again brings it back.
    let r = index(&cat, &s, &del, &opts()).await;
    assert_eq!((r.counts.taken_down, r.counts.unchanged), (0, 1));
    let r = index(&cat, &s, &add, &opts()).await;
    assert_eq!((r.counts.updated, r.counts.analysed), (1, 0));
    assert_indexes_match_store(&cat, &s).await;
    assert_eq!(active_ids(&cat).await.len(), 2);
}

async fn bad_items_are_error_rows(backend: &str) {
    let mut s = Scratch::new("bad");
    let cat = s.catalog(backend).await;
    std::fs::copy(
        fixtures().join("bad/truncated.mp3"),
        s.music().join("truncated.mp3"),
    )
    .unwrap();
    std::fs::copy(
        fixtures().join("bad/random.flac"),
        s.music().join("random.flac"),
    )
    .unwrap();
    let outside = s.dir.join("outside.ogg");
    std::fs::copy(fixtures().join("audio/pop_a_major_120.ogg"), &outside).unwrap();
    std::os::unix::fs::symlink(&outside, s.music().join("escape.ogg")).unwrap();
    let m = s.write(
        "deliver.jsonl",
        concat!(
            r#"{"external_id": "ok-1", "path": "rock_d_major_140.mp3"}"#,
            "\n",
            r#"{"external_id": "corrupt", "path": "random.flac"}"#,
            "\n",
            r#"{"external_id": "missing", "path": "nope.ogg"}"#,
            "\n",
            r#"{"external_id": "escape", "path": "../outside.ogg"}"#,
            "\n",
            r#"{"external_id": "link", "path": "escape.ogg"}"#,
            "\n",
            r#"{"external_id": "typo", "path": "pop_a_major_120.ogg", "artist": ["x"]}"#,
            "\n",
            "{not json\n",
            r#"{"external_id": "ok-2", "path": "funk_e_minor_100.ogg"}"#,
            "\n",
        ),
    );
    let r = index(&cat, &s, &m, &opts()).await;
    assert_eq!(r.counts.new, 2, "the good lines went in");
    assert_eq!(r.counts.failed, 6);
    let errors = cat.open_errors(Some(r.run_id), 100).await.unwrap();
    let mut kinds: Vec<(Option<String>, String)> = errors
        .iter()
        .map(|e| (e.external_id.clone(), e.kind.clone()))
        .collect();
    kinds.sort();
    assert_eq!(
        kinds,
        vec![
            (None, "manifest".to_string()),
            (None, "manifest".to_string()),
            (None, "manifest".to_string()),
            (
                Some("corrupt".to_string()),
                "unsupported_format".to_string()
            ),
            (Some("link".to_string()), "outside_root".to_string()),
            (Some("missing".to_string()), "missing".to_string()),
        ]
    );
    let lines: Vec<i64> = errors.iter().filter_map(|e| e.line).collect();
    assert!(
        lines.contains(&4) && lines.contains(&6) && lines.contains(&7),
        "{lines:?}"
    );
    // A fixed file goes in on the next delivery and its error is resolved.
    std::fs::copy(
        fixtures().join("audio/dance_fsharp_minor_128.ogg"),
        s.music().join("random.flac"),
    )
    .unwrap();
    let r = index(&cat, &s, &m, &opts()).await;
    assert_eq!(r.counts.new, 1);
    let open = cat.open_errors(None, 100).await.unwrap();
    assert!(open
        .iter()
        .all(|e| e.external_id.as_deref() != Some("corrupt")));
    // Directory scans report bad files too, and the rest goes in.
    let r = index(&cat, &s, &s.music(), &opts()).await;
    assert_eq!(r.counts.failed, 2, "{:?}", r.errors);
    assert!(r.errors.iter().any(|e| e.kind == "too_short"));
    assert!(r.errors.iter().any(|e| e.kind == "outside_root"));
    assert_indexes_match_store(&cat, &s).await;
}

async fn rebuild_compacts_and_matches(backend: &str) {
    let mut s = Scratch::new("rebuild");
    let cat = s.catalog(backend).await;
    index(&cat, &s, &s.music(), &opts()).await;
    let del = s.write(
        "del.jsonl",
        r#"{"op": "delete", "external_id": "file:pop_a_major_120.ogg"}"#,
    );
    index(&cat, &s, &del, &opts()).await;
    let mut idx = DerivedIndexes::open(
        &s.data(),
        embeddings::embedding::EMBEDDING_DIM,
        HnswParams::default(),
        Engine::default(),
    )
    .unwrap();
    assert_eq!(idx.vectors.tombstones(), 1);
    idx.reset(HnswParams::default()).unwrap();
    idx.catch_up(&cat).await.unwrap();
    idx.close().unwrap();
    assert_eq!(idx.vectors.tombstones(), 0);
    assert_eq!(idx.vectors.len(), 3);
    drop(idx);
    // A lost index directory is rebuilt from the store alone.
    std::fs::remove_dir_all(s.data().join("vectors")).unwrap();
    std::fs::remove_dir_all(s.data().join("text")).unwrap();
    let r = index(&cat, &s, &s.music(), &opts()).await;
    // The taken-down file is delivered again: same audio, so back without analysis.
    assert_eq!((r.counts.updated, r.counts.analysed), (1, 0));
    assert_indexes_match_store(&cat, &s).await;
}

/// Issue 15, part 2: the vector engine is recorded with the index. A folder indexed on
/// hnsw_rs reopens on hnsw_rs whatever a later run configures (kept, and said so); its
/// answers on the fixtures' real embeddings are our graph's; a rebuild (`reset`, as
/// `motif reindex` does) moves it to the configured engine.
async fn vector_engine_is_recorded_kept_and_rebuilt(backend: &str) {
    let mut s = Scratch::new("engine");
    let cat = s.catalog(backend).await;
    let on_hnsw_rs = Options {
        vector_engine: Engine::HnswRs,
        ..opts()
    };
    let r = index(&cat, &s, &s.music(), &on_hnsw_rs).await;
    assert!(r.index.kept.is_empty(), "{:?}", r.index.kept);
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(s.data().join("vectors/meta.json")).unwrap())
            .unwrap();
    assert_eq!(meta["engine"], "hnsw-rs");
    assert_indexes_match_store(&cat, &s).await;
    // A run configured for our graph keeps the hnsw_rs index and says what rebuilds it.
    let r = index(&cat, &s, &s.music(), &opts()).await;
    assert_eq!(r.index.kept.len(), 1, "{:?}", r.index.kept);
    assert!(r.index.kept[0].contains("hnsw-rs") && r.index.kept[0].contains("reindex"));
    assert!(r.index.rebuilt.is_empty());
    let open = |engine| {
        DerivedIndexes::open(
            &s.data(),
            embeddings::embedding::EMBEDDING_DIM,
            HnswParams::default(),
            engine,
        )
        .unwrap()
    };
    let mut idx = open(Engine::Graph);
    assert_eq!(idx.vectors.engine(), Engine::HnswRs);
    let answers = |idx: &DerivedIndexes| -> Vec<Vec<i64>> {
        let mut tracks: Vec<i64> = idx.vectors.track_ids().collect();
        tracks.sort_unstable();
        tracks
            .iter()
            .map(|&t| {
                let v = idx.vectors.vector(t).unwrap();
                idx.vectors
                    .search(&v, 3, None)
                    .iter()
                    .map(|h| h.0)
                    .collect()
            })
            .collect()
    };
    let on_hnsw_rs = answers(&idx);
    assert_eq!(on_hnsw_rs.len(), 4);
    idx.reset(HnswParams::default()).unwrap();
    idx.catch_up(&cat).await.unwrap();
    idx.close().unwrap();
    assert_eq!(idx.vectors.engine(), Engine::Graph);
    assert_eq!(answers(&idx), on_hnsw_rs);
    drop(idx);
    let idx = open(Engine::Graph);
    assert_eq!(idx.vectors.engine(), Engine::Graph);
    assert_eq!(idx.vectors.len(), 4);
}

/// Issue 15: the encodes of one song delivered as separate tracks become one recording
/// (found by fingerprint in the catch-up, counted in the summary), the other songs stay
/// apart, and a rebuild from the store assigns the same recordings again.
async fn copies_are_one_recording_after_a_rebuild(backend: &str) {
    let mut s = Scratch::new("copies");
    for f in [
        "funk_e_minor_100.mp3",
        "funk_e_minor_100.m4a",
        "funk_e_minor_100.opus",
    ] {
        std::fs::copy(fixtures().join("audio").join(f), s.music().join(f)).unwrap();
    }
    let cat = s.catalog(backend).await;
    let r = index(&cat, &s, &s.music(), &opts()).await;
    assert_eq!(r.index.copies_found, 3, "{:?}", r.index);
    let recordings = |idx: &DerivedIndexes| -> Vec<(i64, u64)> {
        let mut out: Vec<(i64, u64)> = idx
            .text
            .track_ids()
            .unwrap()
            .into_iter()
            .map(|id| (id, idx.text.copy_facts(id).unwrap().unwrap().recording))
            .collect();
        out.sort_unstable();
        out
    };
    let mut idx = DerivedIndexes::open(
        &s.data(),
        embeddings::embedding::EMBEDDING_DIM,
        HnswParams::default(),
        Engine::default(),
    )
    .unwrap();
    let before = recordings(&idx);
    assert_eq!(before.len(), 7);
    let distinct: std::collections::HashSet<u64> = before.iter().map(|r| r.1).collect();
    assert_eq!(distinct.len(), 4, "four songs: {before:?}");
    idx.reset(HnswParams::default()).unwrap();
    let report = idx.catch_up(&cat).await.unwrap();
    idx.close().unwrap();
    assert_eq!(report.copies_found, 3);
    assert_eq!(
        recordings(&idx),
        before,
        "a rebuild assigns the same recordings"
    );
}

/// A track analysed by an older analyser whose embedding has another dimension (0.3.0's
/// 75 against 0.4.0's 275) is left out of the vector index, not an error that stops the
/// catch-up; it stays searchable by text, and `--reanalyze` brings it back.
async fn older_layout_waits_for_reanalysis(backend: &str) {
    let mut s = Scratch::new("layout");
    let cat = s.catalog(backend).await;
    index(&cat, &s, &s.music(), &opts()).await;
    let old: Vec<u8> = std::iter::once(1.0f32)
        .chain(std::iter::repeat_n(0.0, 74))
        .flat_map(f32::to_le_bytes)
        .collect();
    let q = "UPDATE analyses SET embedding = $1, analyzer_version = 'motif-analyzer/0.3.0' \
             WHERE track_id = (SELECT MIN(track_id) FROM analyses)";
    match &cat {
        Catalog::Postgres(p) => sqlx::query(q).bind(&old).execute(p).await.map(|_| ()),
        Catalog::Sqlite(p) => sqlx::query(q).bind(&old).execute(p).await.map(|_| ()),
    }
    .unwrap();
    let mut idx = DerivedIndexes::open(
        &s.data(),
        embeddings::embedding::EMBEDDING_DIM,
        HnswParams::default(),
        Engine::default(),
    )
    .unwrap();
    idx.reset(HnswParams::default()).unwrap();
    let report = idx.catch_up(&cat).await.unwrap();
    idx.close().unwrap();
    assert_eq!(report.other_dimension, 1);
    assert_eq!(idx.vectors.len(), 3);
    assert_eq!(idx.text.len(), 4);
    drop(idx);
    let r = index(&cat, &s, &s.music(), &reanalysing()).await;
    assert_eq!(r.counts.analysed, 1);
    assert_eq!(r.index.other_dimension, 0);
    assert_indexes_match_store(&cat, &s).await;
}

/// A metadata-only delivery in several batches: on Postgres they are written at once
/// (`Catalog::write_concurrency`), on SQLite in turn; either way every track takes its new
/// metadata, nothing is analysed, and both indexes follow.
async fn metadata_updates_in_several_batches(backend: &str) {
    let mut s = Scratch::new("metabatches");
    let cat = s.catalog(backend).await;
    let r = index(&cat, &s, &s.music(), &opts()).await;
    assert_eq!(r.counts.new, 4);
    let files = [
        "pop_a_major_120.ogg",
        "funk_e_minor_100.ogg",
        "rock_d_major_140.mp3",
        "ballad_eflat_major_76.opus",
    ];
    let lines: Vec<String> = files
        .iter()
        .map(|f| {
            format!(
                r#"{{"external_id": "file:{f}", "path": "{f}", "title": "Retitled {f}", "tags": ["mood:retagged"]}}"#
            )
        })
        .collect();
    let m = s.write("meta.jsonl", &lines.join("\n"));
    let one_per_batch = Options {
        batch_size: 1,
        ..opts()
    };
    let r = index(&cat, &s, &m, &one_per_batch).await;
    assert_eq!(
        (r.counts.analysed, r.counts.updated, r.counts.failed),
        (0, 4, 0)
    );
    let changes = cat.changes_since(0, 100).await.unwrap();
    assert_eq!(changes.len(), 4);
    for c in &changes {
        assert!(
            c.title.as_deref().unwrap().starts_with("Retitled "),
            "{c:?}"
        );
        assert!(c.tags.contains(&"mood:retagged".to_string()));
        assert!(c.embedding.is_some(), "the analysis is kept");
    }
    assert_indexes_match_store(&cat, &s).await;
    let idx = DerivedIndexes::open(
        &s.data(),
        embeddings::embedding::EMBEDDING_DIM,
        HnswParams::default(),
        Engine::default(),
    )
    .unwrap();
    assert_eq!(idx.text.search("retitled", 10).unwrap().len(), 4);
}

/// A batch large enough for the bulk paths (COPY on Postgres, several multi-row
/// statements on SQLite), written, then rewritten
/// with other catalogue tags: links are replaced, never duplicated.
async fn bulk_batches_replace_tags(backend: &str) {
    use indexer::catalog::{AnalysisRow, TrackMeta, TrackWrite};
    let mut s = Scratch::new("bulk");
    let cat = s.catalog(backend).await;
    let a = embeddings::analyze(
        &fixtures().join("audio/pop_a_major_120.ogg"),
        &embeddings::AnalysisConfig::default(),
    )
    .unwrap();
    let row = AnalysisRow::from_analysis(a, None);
    let per_track = row.tags.len();
    // More than one multi-row statement's worth on SQLite (500 rows each).
    const N: usize = 1_100;
    let batch = |mood: &str| -> Vec<TrackWrite> {
        (0..N)
            .map(|i| {
                let meta = TrackMeta {
                    external_id: format!("bulk-{i}"),
                    // Characters COPY's text format must escape.
                    title: Some(format!("Bulk {i}\t\\N \\x00 \"q\"\nline \u{e9}")),
                    artists: vec![format!("Artist\\{i}")],
                    source: format!("bulk/{i}.ogg"),
                    tags: vec![format!("mood:{mood}"), "tag:bulk".into()],
                    ..TrackMeta::default()
                };
                TrackWrite {
                    meta_hash: meta.fingerprint(),
                    meta,
                    content_hash: format!("hash-{i}"),
                    analysis: Some(row.clone()),
                }
            })
            .collect()
    };
    let count = |cat: Catalog| async move {
        let q = "SELECT COUNT(*) FROM track_tags";
        let n: i64 = match &cat {
            Catalog::Postgres(p) => sqlx::query_scalar(q).fetch_one(p).await.unwrap(),
            Catalog::Sqlite(p) => sqlx::query_scalar(q).fetch_one(p).await.unwrap(),
        };
        n
    };
    let w = cat.write_batch(&batch("calm")).await.unwrap();
    assert_eq!(w.len(), N);
    assert_eq!(count(cat.clone()).await, N as i64 * (per_track as i64 + 2));
    cat.write_batch(&batch("dark")).await.unwrap();
    assert_eq!(count(cat.clone()).await, N as i64 * (per_track as i64 + 2));
    let changes = cat.changes_since(0, 10_000).await.unwrap();
    assert_eq!(changes.len(), N);
    // One change number per track, consecutive: SQLite stamps them across several
    // multi-row statements per batch.
    let seqs: Vec<i64> = changes.iter().map(|c| c.seq).collect();
    assert!(seqs.windows(2).all(|p| p[1] == p[0] + 1), "{seqs:?}");
    let ids: std::collections::HashSet<i64> = changes.iter().map(|c| c.id).collect();
    assert_eq!(ids.len(), N);
    let stored = cat.all_features().await.unwrap();
    assert_eq!(stored.len(), N);
    assert!(
        stored.iter().all(|(_, f)| *f == row.features),
        "vectors round-trip"
    );
    for c in &changes {
        let i: usize = c.external_id.trim_start_matches("bulk-").parse().unwrap();
        assert_eq!(
            c.title.as_deref(),
            Some(format!("Bulk {i}\t\\N \\x00 \"q\"\nline \u{e9}").as_str())
        );
        assert_eq!(c.artists, vec![format!("Artist\\{i}")]);
        assert_eq!(c.embedding.as_ref(), Some(&row.embedding));
        assert!(c.tags.contains(&"mood:dark".to_string()), "{:?}", c.tags);
        assert!(!c.tags.contains(&"mood:calm".to_string()));
        assert!(c.embedding.is_some() && c.attributes.is_some());
    }
    // A bulk takedown: every third track, one id twice and one unknown id. Each track
    // taken down once, with a change number of its own after everything before.
    let last = *seqs.last().unwrap();
    let mut down_ids: Vec<String> = (0..N).step_by(3).map(|i| format!("bulk-{i}")).collect();
    down_ids.push("bulk-0".into());
    down_ids.push("no-such-track".into());
    let mut down = cat.take_down(&down_ids).await.unwrap();
    down.sort();
    let mut want: Vec<String> = (0..N).step_by(3).map(|i| format!("bulk-{i}")).collect();
    want.sort();
    assert_eq!(down, want);
    let after = cat.changes_since(last, 10_000).await.unwrap();
    assert_eq!(after.len(), want.len());
    assert!(after.iter().all(|c| !c.active));
    let seqs: Vec<i64> = after.iter().map(|c| c.seq).collect();
    assert!(
        seqs.windows(2).all(|p| p[1] > p[0]) && seqs[0] > last,
        "{seqs:?}"
    );
    // Again: nothing left to take down.
    assert!(cat.take_down(&down_ids).await.unwrap().is_empty());
}

/// Postgres writers overlap everything but the step that draws change numbers, so new
/// tracks get their ids before they are inserted. Writers racing over the same new
/// external ids (here: every batch written by two tasks at once, ten rounds) must still
/// leave one track per id, its analysis and tags under that id, nothing orphaned, and
/// change numbers that commit in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_concurrent_writers_race_cleanly() {
    use indexer::catalog::{AnalysisRow, TrackMeta, TrackWrite};
    let mut s = Scratch::new("race");
    let cat = s.catalog("postgres").await;
    let Catalog::Postgres(pool) = &cat else {
        unreachable!()
    };
    let a = embeddings::analyze(
        &fixtures().join("audio/funk_e_minor_100.ogg"),
        &embeddings::AnalysisConfig::default(),
    )
    .unwrap();
    let row = AnalysisRow::from_analysis(a, None);
    let per_track = row.tags.len() as i64;
    assert!(per_track > 0);
    let batch = |round: usize, writer: usize| -> Vec<TrackWrite> {
        (0..40)
            .map(|i| {
                let meta = TrackMeta {
                    external_id: format!("race-{round}-{i}"),
                    title: Some(format!("Race {round} {i} by writer {writer}")),
                    source: format!("race/{round}/{i}.ogg"),
                    tags: vec![format!("tag:writer{writer}"), format!("round:r{round}")],
                    ..TrackMeta::default()
                };
                TrackWrite {
                    meta_hash: meta.fingerprint(),
                    meta,
                    content_hash: format!("hash-{round}-{i}"),
                    analysis: Some(row.clone()),
                }
            })
            .collect()
    };
    for round in 0..10 {
        let (a, b) = (batch(round, 1), batch(round, 2));
        let (ca, cb) = (cat.clone(), cat.clone());
        let ta = tokio::spawn(async move { ca.write_batch(&a).await });
        let tb = tokio::spawn(async move { cb.write_batch(&b).await });
        let (wa, wb) = (ta.await.unwrap().unwrap(), tb.await.unwrap().unwrap());
        assert_eq!(wa.len(), 40);
        assert_eq!(wb.len(), 40);
        // Both writers report the same track ids for the same external ids.
        for (x, y) in wa.iter().zip(&wb) {
            assert_eq!((x.id, &x.external_id), (y.id, &y.external_id));
        }
    }
    let one = |q: &'static str| async move {
        let n: i64 = sqlx::query_scalar(q).fetch_one(pool).await.unwrap();
        n
    };
    assert_eq!(one("SELECT COUNT(*) FROM tracks").await, 400);
    assert_eq!(
        one("SELECT COUNT(DISTINCT external_id) FROM tracks").await,
        400
    );
    assert_eq!(one("SELECT COUNT(*) FROM analyses").await, 400);
    assert_eq!(
        one("SELECT COUNT(*) FROM analyses a LEFT JOIN tracks t ON t.id = a.track_id WHERE t.id IS NULL").await,
        0,
        "no analysis under an id that lost the race"
    );
    assert_eq!(
        one("SELECT COUNT(*) FROM track_tag_links l LEFT JOIN tracks t ON t.id = l.track_id WHERE t.id IS NULL").await,
        0,
        "no tag link under an id that lost the race"
    );
    // Each track: its analysis tags and the two catalogue tags of the last writer only.
    assert_eq!(
        one("SELECT COUNT(*) FROM track_tags").await,
        400 * (per_track + 2)
    );
    assert_eq!(
        one("SELECT COUNT(DISTINCT change_seq) FROM tracks").await,
        400
    );
    let changes = cat.changes_since(0, 1000).await.unwrap();
    assert_eq!(changes.len(), 400);
    for c in &changes {
        let writer = c
            .title
            .as_deref()
            .unwrap()
            .rsplit(' ')
            .next()
            .unwrap()
            .to_string();
        assert!(
            c.tags.contains(&format!("tag:writer{writer}")),
            "{:?}",
            c.tags
        );
        assert_eq!(
            c.tags
                .iter()
                .filter(|t| t.starts_with("tag:writer"))
                .count(),
            1,
            "{:?}",
            c.tags
        );
        assert!(c.embedding.is_some());
    }
    // The track view reads analysis and catalogue tags through the `track_tags` view.
    let detail = cat.track(changes[0].id).await.unwrap().unwrap();
    let sources: std::collections::BTreeSet<&str> =
        detail.tags.iter().map(|t| t.source.as_str()).collect();
    assert_eq!(sources, ["analysis", "catalog"].into_iter().collect());
    assert_eq!(detail.tags.len() as i64, per_track + 2);
}

macro_rules! both_backends {
    ($($name:ident),*) => {
        mod sqlite {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { super::$name("sqlite").await } )*
        }
        mod postgres {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { super::$name("postgres").await } )*
        }
    };
}

both_backends!(
    replay_changes_nothing,
    changes_are_picked_up,
    takedown_leaves_every_index,
    bad_items_are_error_rows,
    rebuild_compacts_and_matches,
    older_layout_waits_for_reanalysis,
    bulk_batches_replace_tags,
    metadata_updates_in_several_batches,
    copies_are_one_recording_after_a_rebuild,
    vector_engine_is_recorded_kept_and_rebuilt
);
