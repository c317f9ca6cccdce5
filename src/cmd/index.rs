//! `motif index INPUT`: ingest a directory or a JSONL manifest.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use embeddings::AnalysisConfig;
use indexer::pipeline::{self, Options, Summary};
use indexer::vectors::HnswParams;
use indicatif::{ProgressBar, ProgressStyle};

use super::store::{self, StoreArgs, VectorArgs};

pub const LONG_ABOUT: &str = "Ingest audio into the catalogue and bring the HNSW and text \
indexes up to date.

INPUT is a directory (scanned recursively; metadata from the files' tags, or the file name; \
external id `file:<path relative to INPUT>`), a single audio file, or a JSONL manifest (one \
{\"op\": \"upsert\"|\"delete\", \"external_id\", \"path\"|\"uri\", \"title\", \"artists\", \"album\", \
\"genre\", \"release_date\", \"tags\", \"isrc\"} per line; see fixtures/manifest.jsonl).

Replaying the same input changes nothing. Items that fail (corrupt audio, missing file, path \
outside the manifest's folder, malformed line) are recorded and listed by `motif errors`; they \
are retried whenever they are delivered again. A second run against the same database waits \
for the first to finish.

Exit code: 0 when every item went in, 2 when some failed, 1 on a fatal error.";

#[derive(clap::Args)]
pub struct Args {
    /// Directory, audio file or JSONL manifest.
    #[arg(required_unless_present = "status")]
    pub input: Option<PathBuf>,
    /// Show a run instead: its status, counts, and on Postgres its jobs queued / running /
    /// done / failed and the rate.
    #[arg(long, value_name = "RUN", conflicts_with = "enqueue")]
    pub status: Option<i64>,
    /// Postgres: plan the delivery into queued jobs and exit; `motif worker`s analyse them.
    #[arg(long)]
    pub enqueue: bool,
    /// Postgres: the folder that queued jobs name their audio relative to (workers mount
    /// it and pass `--media-root`); default: the input's folder.
    #[arg(long)]
    pub media_root: Option<PathBuf>,
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub vectors: VectorArgs,
    /// Re-analyse tracks whose stored analysis came from another analyser version.
    #[arg(long)]
    pub reanalyze: bool,
    /// Analysis threads (default: all cores).
    #[arg(long, short = 'j')]
    pub jobs: Option<usize>,
    /// Tracks written per transaction.
    #[arg(long, default_value_t = 256)]
    pub batch_size: usize,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if let Some(run) = args.status {
        return status(&args, run);
    }
    let Some(input) = args.input.clone() else {
        anyhow::bail!("INPUT is required (or --status RUN)");
    };
    anyhow::ensure!(args.batch_size > 0, "--batch-size must be at least 1");
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    anyhow::ensure!(jobs > 0, "--jobs must be at least 1");
    let progress = if std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(0).with_style(
            ProgressStyle::with_template(
                "{spinner} {bar:40} {pos}/{len} tracks  {per_sec}  ETA {eta}  {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        bar
    } else {
        ProgressBar::hidden()
    };
    let opts = Options {
        reanalyze: args.reanalyze,
        jobs,
        batch_size: args.batch_size,
        analysis: AnalysisConfig::default(),
        hnsw: HnswParams::default(),
        vector_engine: args.vectors.vector_engine,
        progress,
        on_start: None,
        media_root: args.media_root.clone(),
        enqueue_only: args.enqueue,
        ..Options::default()
    };
    let rt = store::runtime()?;
    let summary = rt.block_on(async {
        let catalog = args.store.open().await?;
        anyhow::ensure!(
            !args.enqueue || catalog.job_queue().is_some(),
            "--enqueue needs a Postgres catalogue (--database postgres://...)"
        );
        let s = pipeline::run(&catalog, &args.store.data_dir, &input, &opts).await;
        catalog.close().await;
        anyhow::Ok(s?)
    })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print_summary(&summary);
    }
    Ok(if summary.counts.failed > 0 {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

fn print_summary(s: &Summary) {
    let c = &s.counts;
    println!(
        "run {} ({}, {}): seen {}, new {}, updated {}, unchanged {}, taken down {}, failed {}",
        s.run_id, s.backend, s.input, c.seen, c.new, c.updated, c.unchanged, c.taken_down, c.failed
    );
    println!(
        "analysed {} tracks ({:.1} min of audio) in {:.1} s: {:.0}x realtime, {:.0}x per core ({} threads)",
        c.analysed,
        c.audio_seconds / 60.0,
        s.elapsed_s,
        s.x_realtime,
        s.x_realtime_per_core,
        s.jobs
    );
    if s.queued_jobs > 0 {
        println!(
            "{} tracks went through the analysis queue (motif index --status {} shows its jobs)",
            s.queued_jobs, s.run_id
        );
    }
    if s.stale > 0 {
        println!(
            "{} tracks keep an analysis from an older analyser version (--reanalyze redoes them)",
            s.stale
        );
    }
    if let Some(why) = &s.index.skipped {
        println!("indexes left alone: {why}");
        return print_errors(s);
    }
    println!(
        "indexes at change {}: {} vectors, {} text documents ({} changes applied{})",
        s.index.seq,
        s.indexed_vectors,
        s.indexed_text,
        s.index.applied,
        if s.index.rebuilt.is_empty() {
            String::new()
        } else {
            format!("; rebuilt: {}", s.index.rebuilt.join("; "))
        }
    );
    for why in &s.index.kept {
        println!("index kept as found: {why}");
    }
    if s.index.copies_found > 0 {
        println!(
            "{} tracks are copies of a recording already in the catalogue (found by their \
             fingerprints; answers show one copy, `GET /v1/tracks/ID/duplicates` lists them)",
            s.index.copies_found
        );
    }
    if s.index.other_dimension > 0 {
        println!(
            "{} tracks analysed by an older analyser (another embedding dimension) are searchable \
             by text but not by similarity until `motif index --reanalyze` analyses them again",
            s.index.other_dimension
        );
    }
    print_errors(s);
}

fn print_errors(s: &Summary) {
    for e in s.errors.iter().take(20) {
        let at = match (&e.source, e.line) {
            (Some(src), Some(l)) => format!("{src}:{l}"),
            (Some(src), None) => src.clone(),
            (None, Some(l)) => format!("line {l}"),
            (None, None) => "-".into(),
        };
        println!("  failed [{}] {}: {}", e.kind, at, e.message);
    }
    if s.errors.len() > 20 {
        println!("  ... and {} more (motif errors)", s.errors.len() - 20);
    }
}

/// `motif index --status RUN`: the run's row and, on Postgres, its jobs by state.
fn status(args: &Args, run: i64) -> anyhow::Result<ExitCode> {
    let rt = store::runtime()?;
    let (row, jobs) = rt.block_on(async {
        let catalog = args.store.open().await?;
        let row = catalog.run(run).await?;
        let jobs = match catalog.job_queue() {
            Some(q) if row.is_some() => Some(q.counts(run).await?),
            _ => None,
        };
        catalog.close().await;
        anyhow::Ok((row, jobs))
    })?;
    let Some(row) = row else {
        eprintln!("motif: no ingest run {run}");
        return Ok(ExitCode::from(1));
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "run": row, "jobs": jobs }))?
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "run {} ({}): {}; seen {}, new {}, updated {}, unchanged {}, taken down {}, failed {}, analysed {}",
        row.id, row.input, row.status, row.seen, row.new, row.updated, row.unchanged,
        row.taken_down, row.failed, row.analysed
    );
    if let Some(j) = jobs {
        println!(
            "jobs: {} queued, {} running, {} done, {} failed ({} superseded); {:.2} tracks/s, {:.0}x realtime",
            j.queued, j.running, j.done, j.failed, j.superseded, j.tracks_per_s, j.x_realtime
        );
    }
    Ok(ExitCode::SUCCESS)
}
