//! End-to-end ingestion through the real `motif` binary: the README's `motif index
//! fixtures/` twice, `kill -9` at arbitrary points converging to an uninterrupted run, and
//! two concurrent runs against one Postgres database. Each scenario runs on SQLite and on
//! real Postgres (`MOTIF_TEST_POSTGRES`, default `postgres://postgres@127.0.0.1:5432/test`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use indexer::catalog::Catalog;
use indexer::derived::DerivedIndexes;
use indexer::vectors::{Engine, HnswParams};
use serde_json::Value;

mod common;

use common::{index_ok, motif, repo, Place};

fn summary(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "summary is not JSON ({e}); stdout {} stderr {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// The README's bar: index the fixtures twice; the second run analyses nothing.
fn index_fixtures_twice(backend: &str) {
    let mut place = Place::new("twice");
    let fixtures = repo().join("fixtures").display().to_string();
    let mut args = vec!["index".to_string(), fixtures];
    if backend == "postgres" {
        args.push("--database".into());
        args.push(place.database_named(backend, "twice"));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let first = motif(&args, &place.dir);
    // fixtures/bad holds the corrupt files on purpose: exit 2, the rest in.
    assert_eq!(
        first.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let text = String::from_utf8_lossy(&first.stdout);
    assert!(text.contains("new 40,"), "{text}");
    assert!(text.contains("failed 6"), "{text}");
    let second = motif(&args, &place.dir);
    let text = String::from_utf8_lossy(&second.stdout);
    assert!(text.contains("analysed 0 tracks"), "{text}");
    assert!(text.contains("new 0, updated 0, unchanged 40"), "{text}");
    if backend == "sqlite" {
        assert!(
            place.dir.join("motif-data/motif.db").is_file(),
            "the embedded default"
        );
    }
    // The failures are listed by `motif errors`, once per item.
    let mut eargs = vec!["errors", "--json"];
    eargs.extend(&args[2..]);
    let out = motif(&eargs, &place.dir);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut kinds: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["kind"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    kinds.sort();
    assert_eq!(
        kinds,
        [
            "empty",
            "silent",
            "too_short",
            "too_short",
            "unsupported_format",
            "unsupported_format"
        ]
    );
}

/// `motif reindex` refits the space on stored features and rebuilds both indexes from the
/// store alone; a takedown's tombstone is compacted away.
#[test]
fn sqlite_reindex_rebuilds_from_the_store() {
    let place = Place::new("reindex");
    let manifest = big_manifest(&place.dir, 1);
    let m = manifest.display().to_string();
    let out = motif(&["index", &m, "--json"], &place.dir);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(
        place.dir.join("down.jsonl"),
        r#"{"op": "delete", "external_id": "cat-0-3"}"#,
    )
    .unwrap();
    let out = motif(&["index", "down.jsonl", "--json"], &place.dir);
    assert_eq!(summary(&out)["taken_down"], 1);
    let data = place.dir.join("motif-data");
    let idx = DerivedIndexes::open(
        &data,
        embeddings::embedding::EMBEDDING_DIM,
        HnswParams::default(),
        Engine::default(),
    )
    .unwrap();
    assert_eq!((idx.vectors.len(), idx.vectors.tombstones()), (30, 1));
    drop(idx);
    let out = motif(&["reindex"], &place.dir);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("30 vectors (graph engine), 30 text documents"),
        "{text}"
    );
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("refitted the embedding space on 31 analyses"));
    let idx = DerivedIndexes::open(
        &data,
        embeddings::embedding::EMBEDDING_DIM,
        HnswParams::default(),
        Engine::default(),
    )
    .unwrap();
    assert_eq!((idx.vectors.len(), idx.vectors.tombstones()), (30, 0));
    drop(idx);
    let url = format!("sqlite://{}", data.join("motif.db").display());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let ids = rt.block_on(indexed_external_ids(&url, &data));
    assert_eq!(ids.len(), 30);
    // The refitted space is stored and new analyses are embedded in it.
    let spaces: Vec<String> = rt.block_on(async {
        let cat = Catalog::open(&url).await.unwrap();
        let Catalog::Sqlite(p) = &cat else {
            unreachable!()
        };
        sqlx::query_scalar("SELECT DISTINCT embedding_space FROM analyses")
            .fetch_all(p)
            .await
            .unwrap()
    });
    assert_eq!(spaces.len(), 1);
    assert!(spaces[0].contains("+refit-31-"), "{spaces:?}");
}

/// A manifest of `copies` x the 31 fixture songs (distinct external ids).
fn big_manifest(dir: &Path, copies: usize) -> PathBuf {
    let audio = repo().join("fixtures/audio");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&audio)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    let mut text = String::new();
    for c in 0..copies {
        for (i, f) in files.iter().enumerate() {
            let line = serde_json::json!({
                "external_id": format!("cat-{c}-{i}"),
                "path": format!("audio/{}", f.file_name().unwrap().to_string_lossy()),
                "title": format!("Track {i} copy {c}"),
                "artists": [format!("Artist {}", i % 5)],
                "tags": [format!("mood:m{}", i % 3)],
            });
            text.push_str(&line.to_string());
            text.push('\n');
        }
    }
    let m = dir.join("delivery.jsonl");
    std::fs::write(&m, text).unwrap();
    // Paths in a manifest stay inside its folder (a symlink out is refused): copy.
    std::fs::create_dir_all(dir.join("audio")).unwrap();
    for f in &files {
        std::fs::copy(f, dir.join("audio").join(f.file_name().unwrap())).unwrap();
    }
    m
}

/// (external_id, content_hash, meta_hash, status, analyzer_version) of every track.
type StoreRows = BTreeSet<(String, String, String, String, Option<String>)>;

async fn store_rows(url: &str) -> (StoreRows, i64) {
    let cat = Catalog::open(url).await.unwrap();
    let q = "SELECT t.external_id, t.content_hash, t.meta_hash, t.status, a.analyzer_version \
             FROM tracks t LEFT JOIN analyses a ON a.track_id = t.id";
    let rows: Vec<(String, String, String, String, Option<String>)> = match &cat {
        Catalog::Postgres(p) => sqlx::query_as(q).fetch_all(p).await.unwrap(),
        Catalog::Sqlite(p) => sqlx::query_as(q).fetch_all(p).await.unwrap(),
    };
    let n = rows.len() as i64;
    cat.close().await;
    (rows.into_iter().collect(), n)
}

/// External ids of the tracks in both indexes of `data`, checked equal to the store's
/// active tracks.
async fn indexed_external_ids(url: &str, data: &Path) -> BTreeSet<String> {
    let cat = Catalog::open(url).await.unwrap();
    let q = "SELECT id, external_id FROM tracks WHERE status = 'active' ORDER BY id";
    let active: Vec<(i64, String)> = match &cat {
        Catalog::Postgres(p) => sqlx::query_as(q).fetch_all(p).await.unwrap(),
        Catalog::Sqlite(p) => sqlx::query_as(q).fetch_all(p).await.unwrap(),
    };
    let idx = DerivedIndexes::open(
        data,
        embeddings::embedding::EMBEDDING_DIM,
        HnswParams::default(),
        Engine::default(),
    )
    .unwrap();
    let ids: Vec<i64> = active.iter().map(|(i, _)| *i).collect();
    let mut vec_ids: Vec<i64> = idx.vectors.track_ids().collect();
    vec_ids.sort_unstable();
    assert_eq!(vec_ids, ids, "vector index holds exactly the active tracks");
    assert_eq!(
        idx.text.track_ids().unwrap(),
        ids,
        "text index holds exactly the active tracks"
    );
    let seq = cat.max_seq().await.unwrap();
    assert_eq!((idx.vectors.seq(), idx.text.seq()), (seq, seq));
    cat.close().await;
    active.into_iter().map(|(_, e)| e).collect()
}

fn kill_nine_converges(backend: &str) {
    let mut place = Place::new("kill");
    let manifest = big_manifest(&place.dir, 3);
    let m = manifest.display().to_string();
    let rt = tokio::runtime::Runtime::new().unwrap();

    // Reference: one uninterrupted run.
    let ref_db = place.database_named(backend, "reference");
    let ref_data = place.dir.join("ref-data");
    let out = index_ok(&manifest, &ref_db, &ref_data, &place.dir, &["--json"]);
    assert_eq!(summary(&out)["new"], 93);

    // The same delivery, killed with SIGKILL at several points, then run to the end.
    let db = place.database_named(backend, "killed");
    let data = place.dir.join("data").display().to_string();
    let mut killed_mid_run = 0;
    let mut partial = Vec::new();
    for delay_ms in [150u64, 400, 700, 1000, 1500, 2500, 4000] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_motif"))
            .args([
                "index",
                &m,
                "--database",
                &db,
                "--data-dir",
                &data,
                "--batch-size",
                "3",
                "-j",
                "1",
            ])
            .current_dir(&place.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        if child.try_wait().unwrap().is_none() {
            killed_mid_run += 1;
        }
        child.kill().ok(); // SIGKILL on Unix
        child.wait().unwrap();
        if db.ends_with(".db") && !Path::new(&db).exists() {
            continue; // killed before the store was created
        }
        let (_, n) = rt.block_on(store_rows(&db));
        if n > 0 && n < 93 {
            partial.push(n);
        }
    }
    assert!(killed_mid_run >= 2, "the runs were killed while working");
    assert!(!partial.is_empty(), "a kill left the store part-written");
    let out = motif(
        &[
            "index",
            &m,
            "--database",
            &db,
            "--data-dir",
            &data,
            "--json",
        ],
        &place.dir,
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let (want, want_n) = rt.block_on(store_rows(&ref_db));
    let (got, got_n) = rt.block_on(store_rows(&db));
    assert_eq!(got_n, want_n, "no duplicate, no missing track");
    assert_eq!(got, want, "the store converged to the uninterrupted run");
    let want_idx = rt.block_on(indexed_external_ids(&ref_db, &ref_data));
    let got_idx = rt.block_on(indexed_external_ids(&db, Path::new(&data)));
    assert_eq!(got_idx, want_idx, "the indexes converged too");
    assert_eq!(got_idx.len(), 93);

    // And once more: nothing left to do.
    let out = motif(
        &[
            "index",
            &m,
            "--database",
            &db,
            "--data-dir",
            &data,
            "--json",
        ],
        &place.dir,
    );
    let s = summary(&out);
    assert_eq!(
        (s["analysed"].as_u64(), s["unchanged"].as_u64()),
        (Some(0), Some(93))
    );
}

#[test]
fn sqlite_index_fixtures_twice() {
    index_fixtures_twice("sqlite");
}

#[test]
fn postgres_index_fixtures_twice() {
    index_fixtures_twice("postgres");
}

#[test]
fn sqlite_kill_nine_converges() {
    kill_nine_converges("sqlite");
}

#[test]
fn postgres_kill_nine_converges() {
    kill_nine_converges("postgres");
}

/// Two runs at once against one Postgres database: the second waits for the first's run
/// lock, then finds every track unchanged. Nothing is duplicated.
#[test]
fn postgres_concurrent_runs_wait_and_do_not_duplicate() {
    let mut place = Place::new("concurrent");
    let manifest = big_manifest(&place.dir, 2);
    let m = manifest.display().to_string();
    let db = place.database_named("postgres", "shared");
    let spawn = |data: &str| {
        Command::new(env!("CARGO_BIN_EXE_motif"))
            .args(["index", &m, "--database", &db, "--data-dir", data, "--json"])
            .current_dir(&place.dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let a = spawn(&place.dir.join("data-a").display().to_string());
    let b = spawn(&place.dir.join("data-b").display().to_string());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    for o in [&a, &b] {
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let (sa, sb) = (summary(&a), summary(&b));
    let new: u64 = [&sa, &sb].iter().map(|s| s["new"].as_u64().unwrap()).sum();
    let analysed: u64 = [&sa, &sb]
        .iter()
        .map(|s| s["analysed"].as_u64().unwrap())
        .sum();
    assert_eq!(new, 62, "every track inserted exactly once");
    assert_eq!(analysed, 62, "the waiting run found the work done");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (_, n) = rt.block_on(store_rows(&db));
    assert_eq!(n, 62);
    // Both data folders' indexes are consistent with the shared store.
    let ia = rt.block_on(indexed_external_ids(&db, &place.dir.join("data-a")));
    let ib = rt.block_on(indexed_external_ids(&db, &place.dir.join("data-b")));
    assert_eq!(ia, ib);
    assert_eq!(ia.len(), 62);
}

/// `motif index --status RUN --json` on `db`.
fn run_status(db: &str, run: i64, cwd: &Path) -> Value {
    let out = motif(
        &[
            "index",
            "--status",
            &run.to_string(),
            "--database",
            db,
            "--json",
        ],
        cwd,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    summary(&out)
}

/// (external_id, features, embedding) of every analysis: the analysis itself, bit for bit.
async fn analysis_rows(url: &str) -> BTreeSet<(String, Vec<u8>, Vec<u8>)> {
    let cat = Catalog::open(url).await.unwrap();
    let q = "SELECT t.external_id, a.features, a.embedding FROM tracks t \
             JOIN analyses a ON a.track_id = t.id";
    let rows: Vec<(String, Vec<u8>, Vec<u8>)> = match &cat {
        Catalog::Postgres(p) => sqlx::query_as(q).fetch_all(p).await.unwrap(),
        Catalog::Sqlite(p) => sqlx::query_as(q).fetch_all(p).await.unwrap(),
    };
    cat.close().await;
    rows.into_iter().collect()
}

fn spawn_worker(db: &str, media_root: &Path, cwd: &Path) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_motif"))
        .args([
            "worker",
            "--database",
            db,
            "--media-root",
            &media_root.display().to_string(),
            "-j",
            "1",
            "--claim-batch",
            "1",
            "--lease-secs",
            "2",
        ])
        .arg("--json")
        .current_dir(cwd)
        .env_remove("MOTIF_DATABASE_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Jobs `pid`'s worker holds now (lease owners are `host:pid:...`).
async fn held_by(db: &str, pid: u32) -> Vec<i64> {
    let cat = Catalog::open(db).await.unwrap();
    let Catalog::Postgres(p) = &cat else {
        unreachable!()
    };
    let ids = sqlx::query_scalar(
        "SELECT id FROM analysis_jobs WHERE state = 'running' AND split_part(lease_owner, ':', 2) = $1",
    )
    .bind(pid.to_string())
    .fetch_all(p)
    .await
    .unwrap();
    cat.close().await;
    ids
}

/// `workers` `motif worker` processes over one delivery planned by `motif index
/// --enqueue`; with `kill_one`, the first is killed -9 while it holds a job. The store
/// must equal a one-process (SQLite, in-process) run's, analyses bit for bit, and a
/// replay must find nothing to do.
fn workers_equal_one_process(workers: usize, kill_one: bool) {
    let mut place = Place::new("workers");
    let manifest = big_manifest(&place.dir, 2);
    let m = manifest.display().to_string();
    let rt = tokio::runtime::Runtime::new().unwrap();

    let ref_db = place.database_named("sqlite", "reference");
    let ref_data = place.dir.join("ref-data");
    index_ok(&manifest, &ref_db, &ref_data, &place.dir, &["--json"]);

    let db = place.database_named("postgres", "queued");
    let data = place.dir.join("data").display().to_string();
    let root = place.dir.display().to_string();
    let out = motif(
        &[
            "index",
            &m,
            "--database",
            &db,
            "--data-dir",
            &data,
            "--enqueue",
            "--media-root",
            &root,
            "--json",
        ],
        &place.dir,
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let planned = summary(&out);
    assert_eq!(planned["queued_jobs"], 62);
    let run = planned["run_id"].as_i64().unwrap();
    assert_eq!(run_status(&db, run, &place.dir)["run"]["status"], "queued");

    let mut children: Vec<_> = (0..workers)
        .map(|_| spawn_worker(&db, &place.dir, &place.dir))
        .collect();
    let mut taken_over = Vec::new();
    if kill_one {
        let pid = children[0].id();
        let held = loop {
            let held = rt.block_on(held_by(&db, pid));
            if !held.is_empty() {
                break held;
            }
            assert!(
                children[0].try_wait().unwrap().is_none(),
                "the worker to kill is alive"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut killed = children.remove(0);
        killed.kill().unwrap(); // SIGKILL, mid-job
        killed.wait().unwrap();
        taken_over = held;
    }
    let mut polls = 0;
    let status = loop {
        let s = run_status(&db, run, &place.dir);
        if s["run"]["status"] == "finished" {
            break s;
        }
        polls += 1;
        assert!(polls < 1200, "the run finished: {s}");
        std::thread::sleep(Duration::from_millis(250));
    };
    assert_eq!(status["jobs"]["done"], 62, "{status}");
    assert_eq!(status["jobs"]["failed"], 0, "{status}");
    assert_eq!(status["run"]["new"], 62, "{status}");
    assert_eq!(status["run"]["analysed"], 62, "{status}");
    assert!(status["jobs"]["tracks_per_s"].as_f64().unwrap() > 0.0);

    // SIGTERM: the survivors stop cleanly and say what they did.
    let mut done_by_survivors = 0;
    for c in &children {
        let out = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .output()
            .unwrap();
        assert!(out.status.success());
    }
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        done_by_survivors += summary(&out)["done"].as_u64().unwrap();
    }
    assert!(done_by_survivors > 0 && done_by_survivors <= 62);

    let (want, want_n) = rt.block_on(store_rows(&ref_db));
    let (got, got_n) = rt.block_on(store_rows(&db));
    assert_eq!((got_n, want_n), (62, 62), "no duplicate, no missing track");
    assert_eq!(got, want, "the store equals a one-process run's");
    assert_eq!(
        rt.block_on(analysis_rows(&db)),
        rt.block_on(analysis_rows(&ref_db)),
        "the analyses are the same, bit for bit"
    );
    if kill_one {
        // The killed worker's job was taken over after its lease expired and finished.
        let cat = rt.block_on(Catalog::open(&db)).unwrap();
        let Catalog::Postgres(p) = &cat else {
            unreachable!()
        };
        let ends: Vec<(String, i32)> = rt
            .block_on(
                sqlx::query_as("SELECT state, attempts FROM analysis_jobs WHERE id = ANY($1)")
                    .bind(&taken_over)
                    .fetch_all(p),
            )
            .unwrap();
        assert!(
            !ends.is_empty() && ends.iter().all(|(s, a)| s == "done" && *a >= 2),
            "{ends:?}"
        );
    }

    // A one-process replay finds the work done and brings this folder's indexes up.
    let out = motif(
        &[
            "index",
            &m,
            "--database",
            &db,
            "--data-dir",
            &data,
            "--json",
        ],
        &place.dir,
    );
    let s = summary(&out);
    assert_eq!(
        (s["analysed"].as_u64(), s["unchanged"].as_u64()),
        (Some(0), Some(62))
    );
    let ids = rt.block_on(indexed_external_ids(&db, Path::new(&data)));
    assert_eq!(ids.len(), 62);
}

#[test]
fn postgres_three_workers_one_killed_nine_equal_one_process() {
    workers_equal_one_process(3, true);
}

#[test]
fn postgres_one_worker_equals_one_process() {
    workers_equal_one_process(1, false);
}

#[test]
fn postgres_two_workers_equal_one_process() {
    workers_equal_one_process(2, false);
}

/// `motif worker` refuses SQLite and a missing media root with a clear error.
#[test]
fn worker_refuses_bad_setups() {
    let place = Place::new("worker-bad");
    let out = motif(
        &["worker", "--database", "x.db", "--media-root", "."],
        &place.dir,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("lives in Postgres"));
    let out = motif(
        &[
            "worker",
            "--database",
            "postgres://postgres@127.0.0.1:5432/test",
            "--media-root",
            "/no/such/dir",
        ],
        &place.dir,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--media-root"));
}
