//! `motif worker`: work the Postgres analysis queue (any number, on any machines).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use indexer::catalog::{PoolSize, RetryPolicy};
use indexer::worker::{Until, Worker, WorkerConfig};

use super::store::{self, redact};

pub const LONG_ABOUT: &str = "Work the analysis queue of a Postgres catalogue: claim a few \
jobs at a time (FOR UPDATE SKIP LOCKED), analyse them, and write each result with its job's \
end in one transaction. Run as many as you like, on as many machines: jobs planned by \
`motif index` (or `motif index --enqueue`, or a server's ingest) name their audio relative \
to a media root; give each worker the folder where that root is mounted on its machine.

A job is held under a lease renewed by a heartbeat; a worker that dies (kill -9, a lost \
machine) leaves leases that expire, and another worker takes the jobs over. A job that \
keeps failing for a reason that may pass (I/O, a crash) is retried with backoff, then \
recorded as an error (`motif errors`); a corrupt or unsupported file is recorded at once. \
SIGTERM (or Ctrl-C): claim nothing more, finish the jobs in hand, hand back the rest, exit 0. \
A lost database connection pauses the worker until the database is back.

Prints what it did (one JSON object with --json) when it stops.";

#[derive(clap::Args)]
pub struct Args {
    /// The Postgres catalogue (`postgres://user@host/db`).
    #[arg(long, env = "MOTIF_DATABASE_URL")]
    pub database: String,
    /// Where the queued jobs' relative audio paths are on this machine.
    #[arg(long, env = "MOTIF_MEDIA_ROOT")]
    pub media_root: PathBuf,
    /// Analysis threads (default: all cores).
    #[arg(long, short = 'j')]
    pub jobs: Option<usize>,
    /// Seconds a claimed job is held without a heartbeat (renewed every third of it).
    #[arg(long, default_value_t = 60.0)]
    pub lease_secs: f64,
    /// Jobs claimed at a time per thread.
    #[arg(long, default_value_t = 2)]
    pub claim_batch: usize,
    /// Attempts a job gets before it is recorded as failed.
    #[arg(long, default_value_t = 3)]
    pub max_attempts: i32,
    /// Wait before a failed job's 2nd attempt, doubled for each further one (seconds).
    #[arg(long, default_value_t = 5.0)]
    pub backoff_secs: f64,
    /// Work only this run's jobs.
    #[arg(long)]
    pub run: Option<i64>,
    /// Exit when no job is pending anywhere (batch use, benchmarks) instead of waiting
    /// for more.
    #[arg(long)]
    pub exit_when_idle: bool,
    /// Print the totals as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// A lease owner unique to this process: host, pid, and a clock-derived part (a pid can
/// be reused on a machine, a restarted worker must not inherit its predecessor's leases).
fn owner() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{}:{}:{nanos:08x}",
        indexer::pipeline::host_name(),
        std::process::id()
    )
}

fn seconds(what: &str, s: f64) -> anyhow::Result<Duration> {
    anyhow::ensure!(
        (0.0..1e7).contains(&s),
        "{what} must be a number of seconds >= 0"
    );
    Ok(Duration::from_secs_f64(s))
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        args.database.starts_with("postgres://") || args.database.starts_with("postgresql://"),
        "the work queue lives in Postgres: --database must be postgres://... (SQLite runs \
         analyse in `motif index` itself)"
    );
    let media_root = args
        .media_root
        .canonicalize()
        .with_context(|| format!("--media-root {}", args.media_root.display()))?;
    anyhow::ensure!(
        media_root.is_dir(),
        "--media-root {} is not a directory",
        media_root.display()
    );
    anyhow::ensure!(args.claim_batch > 0, "--claim-batch must be at least 1");
    anyhow::ensure!(args.max_attempts > 0, "--max-attempts must be at least 1");
    let lease = seconds("--lease-secs", args.lease_secs)?;
    anyhow::ensure!(
        lease >= Duration::from_millis(300),
        "--lease-secs must be at least 0.3"
    );
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    anyhow::ensure!(jobs > 0, "--jobs must be at least 1");
    let config = WorkerConfig {
        lease,
        claim_batch: args.claim_batch,
        retry: RetryPolicy {
            max_attempts: args.max_attempts,
            backoff: seconds("--backoff-secs", args.backoff_secs)?,
        },
        run: args.run,
        ..WorkerConfig::new(owner(), media_root.clone())
    };
    let until = if args.exit_when_idle {
        match args.run {
            Some(r) => Until::RunDone(r),
            None => Until::QueueEmpty,
        }
    } else {
        Until::Stopped
    };
    eprintln!(
        "motif worker {}: database {} | media root {} | {jobs} threads",
        config.owner,
        redact(&args.database),
        media_root.display()
    );
    let rt = store::runtime()?;
    let totals = rt.block_on(async {
        let pool = PoolSize {
            max_connections: (jobs as u32 + 2).max(4),
            ..PoolSize::default()
        };
        let catalog = indexer::Catalog::open_with(&args.database, pool)
            .await
            .with_context(|| format!("opening the catalogue at {}", redact(&args.database)))?;
        let stop = Arc::new(AtomicBool::new(false));
        spawn_stop_on_signals(stop.clone())?;
        let worker = Arc::new(Worker::new(catalog.clone(), config, stop)?);
        let totals = worker.run(jobs, until).await;
        catalog.close().await;
        anyhow::Ok(totals)
    })?;
    if args.json {
        println!("{}", serde_json::to_string(&totals)?);
    } else {
        println!(
            "worker: {} done, {} failed, {} retried, {} taken over by others, {} handed back; \
             {:.1} min of audio in {:.1} s of analysis, {:.3} s in the queue's statements \
             ({:.2} % of analysis); {} store errors survived",
            totals.done,
            totals.failed,
            totals.retried,
            totals.lost,
            totals.released,
            totals.audio_seconds / 60.0,
            totals.analysis_s,
            totals.queue_s,
            100.0 * totals.queue_s / totals.analysis_s.max(1e-9),
            totals.store_errors
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// SIGTERM and SIGINT set `stop`: the worker then finishes what it holds and exits.
fn spawn_stop_on_signals(stop: Arc<AtomicBool>) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        eprintln!("motif worker: stopping: finishing the jobs in hand, handing back the rest");
        stop.store(true, Ordering::SeqCst);
    });
    Ok(())
}
