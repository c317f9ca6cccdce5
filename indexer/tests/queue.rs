//! The analysis work queue a step at a time, against real Postgres (a database per test,
//! `MOTIF_TEST_POSTGRES`, default `postgres://postgres@127.0.0.1:5432/test`) and real
//! audio from `fixtures/`: claims, completion with the analysis in one transaction, lease
//! expiry and take-over, retries with backoff, permanent failures, hand-backs, re-plans,
//! run closing, and a worker whose connections the server kills.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use indexer::catalog::{Catalog, JobFailure, JobQueue, RetryPolicy};
use indexer::jobs::JobSpec;
use indexer::pipeline::{self, Options};
use indexer::worker::{Step, Until, Worker, WorkerConfig};
use sqlx::AssertSqlSafe;

static COUNTER: AtomicUsize = AtomicUsize::new(0);

fn admin_url() -> String {
    std::env::var("MOTIF_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

/// A folder of audio and a database of its own, both removed on drop.
struct Scratch {
    dir: PathBuf,
    db: String,
}

impl Scratch {
    async fn new(files: &[&str]) -> (Scratch, Catalog) {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("motif-queue-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("music")).unwrap();
        for f in files {
            let name = Path::new(f).file_name().unwrap();
            std::fs::copy(fixtures().join(f), dir.join("music").join(name)).unwrap();
        }
        let db = format!("motif_q_{}_{n}", std::process::id());
        let admin = sqlx::PgPool::connect(&admin_url())
            .await
            .expect("Postgres must be reachable at MOTIF_TEST_POSTGRES (see .ci/run)");
        for q in [
            format!("DROP DATABASE IF EXISTS {db}"),
            format!("CREATE DATABASE {db}"),
        ] {
            sqlx::query(AssertSqlSafe(q)).execute(&admin).await.unwrap();
        }
        admin.close().await;
        let s = Scratch { dir, db };
        let cat = Catalog::open(&s.url()).await.expect("open Postgres");
        (s, cat)
    }

    fn url(&self) -> String {
        let admin = admin_url();
        let base = admin.rsplit_once('/').map(|(b, _)| b.to_string()).unwrap();
        format!("{base}/{}", self.db)
    }

    fn music(&self) -> PathBuf {
        self.dir.join("music")
    }

    /// Plans the music folder into queued jobs (no analysis here); the run id.
    async fn enqueue(&self, cat: &Catalog) -> i64 {
        let opts = Options {
            enqueue_only: true,
            ..Options::default()
        };
        let s = pipeline::run(cat, &self.dir.join("data"), &self.music(), &opts)
            .await
            .expect("plan");
        s.run_id
    }

    fn worker(&self, cat: &Catalog, owner: &str, config: impl FnOnce(&mut WorkerConfig)) -> Worker {
        let mut c = WorkerConfig::new(owner.into(), self.music().canonicalize().unwrap());
        c.claim_batch = 1;
        config(&mut c);
        Worker::new(cat.clone(), c, Arc::new(AtomicBool::new(false))).unwrap()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        let _ = std::process::Command::new("psql")
            .args([
                &admin_url(),
                "-qc",
                &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.db),
            ])
            .output();
    }
}

fn pool(cat: &Catalog) -> &sqlx::PgPool {
    match cat {
        Catalog::Postgres(p) => p,
        Catalog::Sqlite(_) => unreachable!(),
    }
}

fn queue(cat: &Catalog) -> JobQueue {
    cat.job_queue().expect("Postgres has a queue")
}

/// (external id, change_seq) of every track.
async fn tracks(cat: &Catalog) -> Vec<(String, i64)> {
    sqlx::query_as("SELECT external_id, change_seq FROM tracks ORDER BY external_id")
        .fetch_all(pool(cat))
        .await
        .unwrap()
}

async fn job_states(cat: &Catalog) -> Vec<(String, i32)> {
    sqlx::query_as("SELECT state, attempts FROM analysis_jobs ORDER BY id")
        .fetch_all(pool(cat))
        .await
        .unwrap()
}

const TWO: [&str; 2] = ["audio/pop_a_major_120.ogg", "audio/funk_e_minor_100.ogg"];

#[tokio::test]
async fn one_step_at_a_time_until_the_last_job_closes_the_run() {
    let (s, cat) = Scratch::new(&TWO).await;
    let run = s.enqueue(&cat).await;
    let q = queue(&cat);
    let c = q.counts(run).await.unwrap();
    assert_eq!((c.queued, c.running, c.done), (2, 0, 0));
    assert_eq!(cat.run(run).await.unwrap().unwrap().status, "queued");

    let w = s.worker(&cat, "w1", |_| {});
    let Step::Worked(r) = w.try_execute().await.unwrap() else {
        panic!("a job was claimable")
    };
    assert_eq!((r.completed.done, r.completed.lost), (1, 0));
    assert!(r.completed.closed_runs.is_empty(), "one job still queued");
    assert!(r.audio_seconds > 1.0 && r.analysis_s > 0.0);
    assert_eq!(
        tracks(&cat).await.len(),
        1,
        "the result went in with its job's end"
    );

    let Step::Worked(r) = w.try_execute().await.unwrap() else {
        panic!("the second job")
    };
    assert_eq!(
        r.completed.closed_runs,
        vec![run],
        "the last job closed the run"
    );
    assert_eq!(w.try_execute().await.unwrap(), Step::Idle);
    let row = cat.run(run).await.unwrap().unwrap();
    assert_eq!(
        (row.status.as_str(), row.new, row.analysed, row.failed),
        ("finished", 2, 2, 0)
    );
    let c = q.counts(run).await.unwrap();
    assert_eq!((c.pending(), c.done), (0, 2));
    assert!(c.audio_seconds > 1.0 && c.tracks_per_s > 0.0);
}

#[tokio::test]
async fn claims_never_overlap() {
    let files: Vec<String> = std::fs::read_dir(fixtures().join("audio"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_file())
        .map(|e| format!("audio/{}", e.file_name().to_string_lossy()))
        .collect();
    let refs: Vec<&str> = files.iter().map(String::as_str).collect();
    let (s, cat) = Scratch::new(&refs).await;
    let run = s.enqueue(&cat).await;
    let q = queue(&cat);
    let lease = Duration::from_secs(600);
    let mut claims = tokio::task::JoinSet::new();
    for i in 0..8 {
        let q = q.clone();
        claims.spawn(async move {
            q.claim(
                &format!("c{i}"),
                Some(run),
                3,
                lease,
                RetryPolicy::default(),
            )
            .await
            .unwrap()
        });
    }
    let mut ids: Vec<i64> = Vec::new();
    while let Some(got) = claims.join_next().await {
        ids.extend(got.unwrap().iter().map(|j| j.id));
    }
    let n = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), n, "no job claimed twice");
    assert_eq!(
        n,
        24.min(files.len()),
        "SKIP LOCKED hands out distinct jobs"
    );
}

#[tokio::test]
async fn an_expired_lease_is_taken_over_and_the_late_worker_writes_nothing() {
    let (s, cat) = Scratch::new(&TWO[..1]).await;
    let run = s.enqueue(&cat).await;
    let q = queue(&cat);
    // Worker "slow" claims with a lease that has already run out (as if it had hung).
    let held = q
        .claim("slow", Some(run), 1, Duration::ZERO, RetryPolicy::default())
        .await
        .unwrap();
    assert_eq!(held.len(), 1);
    let job = JobSpec::from_json(&held[0].spec)
        .unwrap()
        .locate(&s.music().canonicalize().unwrap())
        .unwrap();
    let write = job.analyse(&Default::default(), None).unwrap();

    let w = s.worker(&cat, "fast", |_| {});
    let Step::Worked(r) = w.try_execute().await.unwrap() else {
        panic!("the expired job is claimable")
    };
    assert_eq!(
        (r.completed.done, r.completed.closed_runs.clone()),
        (1, vec![run])
    );
    let before = tracks(&cat).await;
    assert_eq!(job_states(&cat).await, vec![("done".to_string(), 2)]);

    let late = q
        .complete("slow", &[(held[0].id, write)], &[], RetryPolicy::default())
        .await
        .unwrap();
    assert_eq!(
        (late.done, late.lost),
        (0, 1),
        "the late worker holds nothing"
    );
    assert_eq!(tracks(&cat).await, before, "and writes nothing");
}

#[tokio::test]
async fn a_heartbeat_keeps_the_lease() {
    let (s, cat) = Scratch::new(&TWO[..1]).await;
    let run = s.enqueue(&cat).await;
    let q = queue(&cat);
    let r = RetryPolicy::default();
    let held = q.claim("a", Some(run), 1, Duration::ZERO, r).await.unwrap();
    assert_eq!(held.len(), 1);
    let ids = [held[0].id];
    assert_eq!(
        q.heartbeat("b", &ids, Duration::from_secs(600))
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        q.heartbeat("a", &ids, Duration::from_secs(600))
            .await
            .unwrap(),
        1
    );
    let other = q.claim("b", Some(run), 1, Duration::ZERO, r).await.unwrap();
    assert!(other.is_empty(), "a renewed lease is not claimable");
}

#[tokio::test]
async fn transient_failures_retry_with_backoff_then_become_error_rows() {
    let (s, cat) = Scratch::new(&TWO[..1]).await;
    let run = s.enqueue(&cat).await;
    // This worker's media root lacks the file: `missing`, which may pass (a mount).
    let empty = s.dir.join("empty-root");
    std::fs::create_dir_all(&empty).unwrap();
    let patient = RetryPolicy {
        max_attempts: 2,
        backoff: Duration::from_secs(3600),
    };
    let mut w = s.worker(&cat, "w", |c| {
        c.media_root = empty.clone();
        c.retry = patient;
    });
    let Step::Worked(r) = w.try_execute().await.unwrap() else {
        panic!("claimable")
    };
    assert_eq!((r.completed.retried, r.completed.failed), (1, 0));
    assert_eq!(
        w.try_execute().await.unwrap(),
        Step::Idle,
        "backing off: not claimable yet"
    );
    let (kind, wait_ms): (Option<String>, i64) = sqlx::query_as(
        "SELECT last_error_kind, next_attempt_at - (extract(epoch from now()) * 1000)::bigint \
         FROM analysis_jobs",
    )
    .fetch_one(pool(&cat))
    .await
    .unwrap();
    assert_eq!(kind.as_deref(), Some("missing"));
    assert!(
        wait_ms > 3_000_000,
        "the backoff is the policy's: {wait_ms} ms"
    );

    // With no backoff the second attempt comes at once, and it is the last.
    drop(w);
    w = s.worker(&cat, "w", |c| {
        c.media_root = empty.clone();
        c.retry = RetryPolicy {
            backoff: Duration::ZERO,
            ..patient
        };
    });
    sqlx::query("UPDATE analysis_jobs SET next_attempt_at = 0")
        .execute(pool(&cat))
        .await
        .unwrap();
    let Step::Worked(r) = w.try_execute().await.unwrap() else {
        panic!("claimable again")
    };
    assert_eq!(
        (r.completed.failed, r.completed.closed_runs.clone()),
        (1, vec![run])
    );
    assert_eq!(job_states(&cat).await, vec![("failed".to_string(), 2)]);
    let errors = cat.open_errors(Some(run), 10).await.unwrap();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].kind, "missing");
    let row = cat.run(run).await.unwrap().unwrap();
    assert_eq!(
        (row.status.as_str(), row.failed, row.new),
        ("finished", 1, 0)
    );
}

#[tokio::test]
async fn a_corrupt_file_fails_at_once() {
    let (s, cat) = Scratch::new(&["bad/truncated.mp3", "bad/silence.wav"]).await;
    let run = s.enqueue(&cat).await;
    let w = s.worker(&cat, "w", |c| c.claim_batch = 5);
    let Step::Worked(r) = w.try_execute().await.unwrap() else {
        panic!("claimable")
    };
    assert_eq!((r.completed.failed, r.completed.retried), (2, 0));
    let mut kinds: Vec<String> = cat
        .open_errors(Some(run), 10)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    kinds.sort();
    assert_eq!(kinds, ["silent", "too_short"]);
    assert!(job_states(&cat)
        .await
        .iter()
        .all(|(s, a)| s == "failed" && *a == 1));
}

#[tokio::test]
async fn a_job_whose_workers_keep_dying_fails_as_worker_lost() {
    let (s, cat) = Scratch::new(&TWO[..1]).await;
    let run = s.enqueue(&cat).await;
    let q = queue(&cat);
    let once = RetryPolicy {
        max_attempts: 1,
        backoff: Duration::ZERO,
    };
    assert_eq!(
        q.claim("dies", None, 1, Duration::ZERO, once)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(q
        .claim("next", None, 1, Duration::ZERO, once)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(job_states(&cat).await, vec![("failed".to_string(), 1)]);
    let errors = cat.open_errors(Some(run), 10).await.unwrap();
    assert_eq!(errors[0].kind, "worker_lost");
    assert_eq!(cat.run(run).await.unwrap().unwrap().status, "finished");
}

#[tokio::test]
async fn released_jobs_go_back_unspent_and_a_replan_supersedes() {
    let (s, cat) = Scratch::new(&TWO).await;
    let first = s.enqueue(&cat).await;
    let q = queue(&cat);
    let r = RetryPolicy::default();
    let held = q
        .claim("a", None, 1, Duration::from_secs(600), r)
        .await
        .unwrap();
    assert_eq!(q.release("a", &[held[0].id]).await.unwrap(), 1);
    assert_eq!(
        job_states(&cat).await,
        vec![("queued".to_string(), 0), ("queued".to_string(), 0)]
    );
    // The same delivery planned again: the newest plan is the one worked.
    let second = s.enqueue(&cat).await;
    assert_eq!(q.counts(first).await.unwrap().superseded, 2);
    assert_eq!(q.counts(second).await.unwrap().queued, 2);
    let w = Arc::new(s.worker(&cat, "w", |_| {}));
    let totals = w.run(2, Until::QueueEmpty).await;
    assert_eq!(totals.done, 2);
    assert_eq!(tracks(&cat).await.len(), 2);
    assert_eq!(cat.run(second).await.unwrap().unwrap().status, "finished");
    // A failure handed to complete for a job no longer held is ignored.
    let gone = JobFailure {
        job: held[0].id,
        error: indexer::catalog::ItemError {
            external_id: None,
            source: None,
            line: None,
            kind: "io".into(),
            message: "x".into(),
        },
        permanent: false,
    };
    let c = q.complete("a", &[], &[gone], r).await.unwrap();
    assert_eq!((c.lost, c.retried, c.failed), (1, 0, 0));
}

/// The worker runs as in `motif worker`: on a multi-threaded runtime.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_loses_its_database_carries_on() {
    let files = [
        "audio/pop_a_major_120.ogg",
        "audio/funk_e_minor_100.ogg",
        "audio/rock_d_major_140.mp3",
        "audio/ballad_eflat_major_76.opus",
        "audio/hiphop_g_minor_90.ogg",
        "audio/dance_fsharp_minor_128.ogg",
    ];
    let (s, cat) = Scratch::new(&files).await;
    let run = s.enqueue(&cat).await;
    let worker_cat = Catalog::open(&s.url()).await.unwrap();
    let w = Arc::new(s.worker(&worker_cat, "w", |c| c.lease = Duration::from_secs(2)));
    let working = tokio::spawn(w.run(1, Until::RunDone(run)));
    // Once the worker has ended a job, take its database away: no new connection is
    // allowed and every open one is cut, for a while; then give it back.
    let admin = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&admin_url())
        .await
        .unwrap();
    let q = queue(&cat);
    while q.counts(run).await.unwrap().done == 0 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cat.close().await;
    sqlx::query(AssertSqlSafe(format!(
        "ALTER DATABASE {} ALLOW_CONNECTIONS false",
        s.db
    )))
    .execute(&admin)
    .await
    .unwrap();
    let cut: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
    )
    .bind(&s.db)
    .fetch_all(&admin)
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    sqlx::query(AssertSqlSafe(format!(
        "ALTER DATABASE {} ALLOW_CONNECTIONS true",
        s.db
    )))
    .execute(&admin)
    .await
    .unwrap();
    admin.close().await;
    let cuts = cut.len();
    let totals = tokio::time::timeout(Duration::from_secs(300), working)
        .await
        .expect("the worker finished")
        .unwrap();
    assert!(cuts > 0, "connections were cut");
    assert!(
        totals.store_errors > 0,
        "the worker saw the cuts: {totals:?}"
    );
    let cat = Catalog::open(&s.url()).await.unwrap();
    let q = queue(&cat);
    let c = q.counts(run).await.unwrap();
    assert_eq!((c.done, c.failed, c.pending()), (6, 0, 0), "{totals:?}");
    assert_eq!(tracks(&cat).await.len(), 6, "each track once");
    assert_eq!(cat.run(run).await.unwrap().unwrap().status, "finished");
}

#[tokio::test]
async fn sqlite_has_no_queue() {
    let cat = Catalog::open("sqlite::memory:").await.unwrap();
    assert!(cat.job_queue().is_none());
    let w = Worker::new(
        cat,
        WorkerConfig::new("w".into(), PathBuf::from("/")),
        Arc::new(AtomicBool::new(false)),
    );
    assert!(w.is_err());
}
