//! The ingestion pipeline: input -> plan (hash, compare with the store) -> analyse in
//! parallel -> batched writes -> derived index catch-up.
//!
//! - **Idempotent**: an item whose content hash, analyser version and metadata match the
//!   store is `unchanged` and writes nothing; changed metadata alone is a metadata-only
//!   write; changed audio is re-analysed.
//! - **Crash-safe**: every batch is one transaction and the indexes catch up from the
//!   store's change sequence, so after `kill -9` the same command converges to the state
//!   of an uninterrupted run.
//! - **One bad file never stops a run**: every analysis runs behind a panic boundary with
//!   the analyser's size and duration limits; failures become error rows (kind, message)
//!   and are retried whenever the item is delivered again.
//! - **One run at a time per store**: a second run waits for the first (see
//!   [`Catalog::lock_runs`]), then finds the work done.

use std::collections::HashMap;
use std::io::Read;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use embeddings::{AnalysisConfig, Normalizer};
use indicatif::ProgressBar;
use rayon::prelude::*;

use crate::catalog::{
    AnalysisRow, Catalog, CatalogError, ErrorRow, ItemError, JobQueue, NewJob, RetryPolicy,
    RunCounts, RunRow, TrackMeta, TrackState, TrackWrite,
};
use crate::derived::{CatchUp, DerivedError, DerivedIndexes, IndexLock};
use crate::jobs::JobSpec;
use crate::source::{self, InputError, Item};
use crate::vectors::{Engine, HnswParams};
use crate::worker::{Until, Worker, WorkerConfig};

/// How a run behaves.
#[derive(Debug, Clone)]
pub struct Options {
    /// Re-analyse tracks whose stored analysis came from another analyser version.
    pub reanalyze: bool,
    /// Analysis threads (at least 1).
    pub jobs: usize,
    /// Tracks per store transaction.
    pub batch_size: usize,
    /// Limits applied to every file.
    pub analysis: AnalysisConfig,
    /// Parameters for a newly built vector index.
    pub hnsw: HnswParams,
    /// The engine of a newly built vector index (an existing one keeps its own).
    pub vector_engine: Engine,
    /// Progress display (hidden by default).
    pub progress: ProgressBar,
    /// Called with the run id as soon as the run is registered (HTTP ingestion answers
    /// with it before the run ends).
    pub on_start: Option<RunStarted>,
    /// Postgres: the folder queued jobs name their audio relative to (workers are given
    /// theirs with `motif worker --media-root`); default the input's root.
    pub media_root: Option<PathBuf>,
    /// Postgres: plan the delivery into jobs and return, leaving the analysis to
    /// `motif worker`s (the run stays `queued` until its last job ends).
    pub enqueue_only: bool,
    /// Postgres: how this run's own worker claims and retries (lease, batch, attempts).
    pub queue: QueueOptions,
}

/// How a run on Postgres works its queued jobs itself.
#[derive(Debug, Clone, Copy)]
pub struct QueueOptions {
    pub lease: Duration,
    pub claim_batch: usize,
    pub retry: RetryPolicy,
}

impl Default for QueueOptions {
    fn default() -> Self {
        QueueOptions {
            lease: Duration::from_secs(60),
            claim_batch: 2,
            retry: RetryPolicy::default(),
        }
    }
}

/// A callback receiving a run's id when it starts.
#[derive(Clone)]
pub struct RunStarted(pub std::sync::Arc<dyn Fn(i64) + Send + Sync>);

impl std::fmt::Debug for RunStarted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RunStarted")
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            reanalyze: false,
            jobs: std::thread::available_parallelism().map_or(1, |n| n.get()),
            batch_size: 256,
            analysis: AnalysisConfig::default(),
            hnsw: HnswParams::default(),
            vector_engine: Engine::default(),
            progress: ProgressBar::hidden(),
            on_start: None,
            media_root: None,
            enqueue_only: false,
            queue: QueueOptions::default(),
        }
    }
}

/// What a run did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Summary {
    pub run_id: i64,
    pub backend: &'static str,
    pub input: String,
    #[serde(flatten)]
    pub counts: RunCounts,
    /// Tracks whose analysis is from an older analyser version and was kept (pass
    /// `--reanalyze` to redo them).
    pub stale: u64,
    pub errors: Vec<ItemErrorJson>,
    pub elapsed_s: f64,
    /// Analysed audio seconds per wall-clock second.
    pub x_realtime: f64,
    /// The same, per analysis thread.
    pub x_realtime_per_core: f64,
    pub jobs: usize,
    pub index: CatchUp,
    /// Active tracks in the vector and text indexes after the run.
    pub indexed_vectors: usize,
    pub indexed_text: u64,
    /// Jobs this run put on the analysis queue (Postgres; 0 on SQLite, which analyses in
    /// the run's own process).
    pub queued_jobs: u64,
}

/// An item error as the summary reports it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ItemErrorJson {
    pub external_id: Option<String>,
    pub source: Option<String>,
    pub line: Option<i64>,
    pub kind: String,
    pub message: String,
}

impl From<&ItemError> for ItemErrorJson {
    fn from(e: &ItemError) -> Self {
        ItemErrorJson {
            external_id: e.external_id.clone(),
            source: e.source.clone(),
            line: e.line,
            kind: e.kind.clone(),
            message: e.message.clone(),
        }
    }
}

/// Why a run stopped (per-item problems never stop it).
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Input(#[from] InputError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error("derived indexes: {0}")]
    Derived(#[from] DerivedError),
    #[error("analysis workers: {0}")]
    Workers(String),
}

type Result<T> = std::result::Result<T, PipelineError>;

/// What to do with one upsert after comparing it with the store.
#[allow(clippy::large_enum_variant)] // one per item, consumed at once
enum Plan {
    Unchanged,
    /// Stored analysis from another analyser version, kept (no `--reanalyze`).
    Stale,
    Write(TrackWrite),
    Analyse {
        meta: TrackMeta,
        meta_hash: String,
        path: PathBuf,
        hash: String,
    },
    Failed(ItemError),
}

/// Runs one ingest of `input` (a directory, an audio file or a JSONL manifest) into
/// `catalog`, then brings the indexes in `data_dir` up to date.
pub async fn run(
    catalog: &Catalog,
    data_dir: &Path,
    input: &Path,
    opts: &Options,
) -> Result<Summary> {
    let started = Instant::now();
    let input = source::read_input(input)?;
    run_input(catalog, data_dir, input, opts, started).await
}

/// The file whose lock is the run lock on SQLite (Postgres uses an advisory lock): runs
/// and a server's start-up check of interrupted runs must name the same one.
pub fn run_lock_file(data_dir: &Path) -> PathBuf {
    data_dir.join("motif.lock")
}

/// [`run`] over an input already read (a manifest received over HTTP).
pub async fn run_input(
    catalog: &Catalog,
    data_dir: &Path,
    input: source::Input,
    opts: &Options,
    started: Instant,
) -> Result<Summary> {
    std::fs::create_dir_all(data_dir)
        .map_err(|e| PipelineError::Input(InputError::Io(data_dir.to_path_buf(), e)))?;
    let lock = catalog.lock_runs(&run_lock_file(data_dir)).await?;
    let outcome = run_locked(catalog, data_dir, input, opts, started).await;
    lock.release().await?;
    outcome
}

async fn run_locked(
    catalog: &Catalog,
    data_dir: &Path,
    input: source::Input,
    opts: &Options,
    started: Instant,
) -> Result<Summary> {
    let run_id = catalog.start_run(&input.describe).await?;
    if let Some(cb) = &opts.on_start {
        (cb.0)(run_id);
    }
    let mut counts = RunCounts {
        seen: (input.items.len() + input.errors.len()) as u64,
        failed: input.errors.len() as u64,
        ..RunCounts::default()
    };
    let mut errors: Vec<ItemError> = input.errors;
    let mut succeeded: Vec<String> = Vec::new();

    // The last operation on an external id wins.
    let mut last: HashMap<&str, usize> = HashMap::new();
    for (i, item) in input.items.iter().enumerate() {
        last.insert(item.external_id(), i);
    }
    let items: Vec<&Item> = input
        .items
        .iter()
        .enumerate()
        .filter(|(i, it)| last.get(it.external_id()) == Some(i))
        .map(|(_, it)| it)
        .collect();
    counts.unchanged += (input.items.len() - items.len()) as u64;

    // Takedowns.
    let deletes: Vec<String> = items
        .iter()
        .filter_map(|it| match it {
            Item::Delete { external_id } => Some(external_id.clone()),
            Item::Upsert { .. } => None,
        })
        .collect();
    for chunk in deletes.chunks(opts.batch_size.max(1)) {
        let down = catalog.take_down(chunk).await?;
        counts.taken_down += down.len() as u64;
        counts.unchanged += (chunk.len() - down.len()) as u64;
    }
    succeeded.extend(deletes);

    // Plan the upserts: compare with the store, hashing files in parallel.
    let upserts: Vec<(TrackMeta, PathBuf)> = items
        .iter()
        .filter_map(|it| match it {
            Item::Upsert { meta, path } => Some((meta.clone(), path.clone())),
            Item::Delete { .. } => None,
        })
        .collect();
    let ids: Vec<String> = upserts.iter().map(|(m, _)| m.external_id.clone()).collect();
    let states = catalog.states(&ids).await?;
    let existing: std::collections::HashSet<String> = states.keys().cloned().collect();
    let space = catalog.current_space().await?;
    opts.progress.set_message("hashing");
    let root = input.root.clone();
    let reanalyze = opts.reanalyze;
    let plans: Vec<Plan> = tokio::task::spawn_blocking(move || {
        upserts
            .into_par_iter()
            .map(|(meta, path)| {
                let state = states.get(&meta.external_id);
                plan(meta, path, &root, state, reanalyze)
            })
            .collect()
    })
    .await
    .map_err(|e| PipelineError::Workers(e.to_string()))?;

    let mut writes: Vec<TrackWrite> = Vec::new();
    // (metadata, (metadata fingerprint, content hash), file)
    let mut work: Vec<(TrackMeta, (String, String), PathBuf)> = Vec::new();
    let mut stale = 0u64;
    for p in plans {
        match p {
            Plan::Unchanged => {
                counts.unchanged += 1;
            }
            Plan::Stale => {
                counts.unchanged += 1;
                stale += 1;
            }
            Plan::Write(w) => writes.push(w),
            Plan::Analyse {
                meta,
                meta_hash,
                path,
                hash,
            } => work.push((meta, (meta_hash, hash), path)),
            Plan::Failed(e) => {
                counts.failed += 1;
                errors.push(e);
            }
        }
    }
    let tally = |ext: &str, counts: &mut RunCounts| {
        if existing.contains(ext) {
            counts.updated += 1;
        } else {
            counts.new += 1;
        }
    };
    // Metadata-only writes need no analysis, so the store is their only limit: several
    // batches go at once where the store overlaps them (Postgres; external ids are unique
    // here, so their order does not matter).
    // Shared with the writing tasks rather than copied into each.
    let writes: std::sync::Arc<[TrackWrite]> = writes.into();
    let size = opts.batch_size.max(1);
    let mut in_flight = tokio::task::JoinSet::new();
    for start in (0..writes.len()).step_by(size) {
        while in_flight.len() >= catalog.write_concurrency() {
            join_write(&mut in_flight).await?;
        }
        let (cat, writes) = (catalog.clone(), writes.clone());
        let end = (start + size).min(writes.len());
        in_flight.spawn(async move { cat.write_batch(&writes[start..end]).await.map(|_| ()) });
    }
    while !in_flight.is_empty() {
        join_write(&mut in_flight).await?;
    }
    for w in writes.iter() {
        tally(&w.meta.external_id, &mut counts);
        succeeded.push(w.meta.external_id.clone());
    }

    let mut queued_jobs = 0;
    if let Some(queue) = catalog.job_queue() {
        let root = opts
            .media_root
            .clone()
            .unwrap_or_else(|| input.root.clone());
        let planned = Planned {
            run_id,
            counts,
            errors,
            succeeded,
            existing,
        };
        let worked = analyse_on_queue(catalog, &queue, planned, work, &root, opts).await?;
        if opts.enqueue_only && worked.jobs > 0 {
            return Ok(enqueued_summary(
                catalog,
                input.describe,
                worked,
                stale,
                opts,
                started,
            ));
        }
        queued_jobs = worked.jobs;
        counts = worked.counts;
        errors = worked.errors;
    } else {
        analyse_here(
            catalog,
            work,
            space,
            &existing,
            opts,
            started,
            &mut counts,
            &mut errors,
            &mut succeeded,
        )
        .await?;
        catalog.resolve_errors(&succeeded).await?;
        catalog.record_errors(run_id, &errors).await?;
    }

    // Bring the derived indexes up to the store, unless a running server holds them.
    let (index, indexed_vectors, indexed_text) = catch_up(catalog, data_dir, opts).await?;
    catalog.finish_run(run_id, &counts).await?;

    let elapsed_s = started.elapsed().as_secs_f64();
    let x_realtime = counts.audio_seconds / elapsed_s.max(1e-9);
    let jobs = opts.jobs.max(1);
    Ok(Summary {
        run_id,
        backend: catalog.backend(),
        input: input.describe,
        stale,
        errors: errors.iter().map(ItemErrorJson::from).collect(),
        elapsed_s,
        x_realtime,
        x_realtime_per_core: x_realtime / jobs as f64,
        jobs,
        indexed_vectors,
        indexed_text,
        index,
        counts,
        queued_jobs,
    })
}

/// What planning decided before the analysis, for the queue path.
struct Planned {
    run_id: i64,
    counts: RunCounts,
    errors: Vec<ItemError>,
    /// External ids written or taken down without analysis.
    succeeded: Vec<String>,
    /// External ids stored before the run (their writes are updates).
    existing: std::collections::HashSet<String>,
}

/// What the queue path leaves for the summary.
struct Worked {
    run_id: i64,
    jobs: u64,
    counts: RunCounts,
    errors: Vec<ItemError>,
}

/// Postgres: the tracks to analyse become queued jobs (with the planner's counts and
/// errors, in the store before any job can end); then, unless `enqueue_only`, this process
/// works its own run's jobs, with any `motif worker`s, until none is pending. The counts
/// and errors returned are the store's: the planner's plus every job's end.
async fn analyse_on_queue(
    catalog: &Catalog,
    queue: &JobQueue,
    mut p: Planned,
    work: Vec<(TrackMeta, (String, String), PathBuf)>,
    media_root: &Path,
    opts: &Options,
) -> Result<Worked> {
    let media_root = media_root
        .canonicalize()
        .map_err(|e| PipelineError::Input(InputError::Io(media_root.to_path_buf(), e)))?;
    let mut jobs = Vec::with_capacity(work.len());
    for (meta, (meta_hash, hash), path) in work {
        let external_id = meta.external_id.clone();
        let source = meta.source.clone();
        match JobSpec::new(meta, meta_hash, hash, &path, &media_root) {
            Ok(spec) => jobs.push(NewJob {
                existing: p.existing.contains(&external_id),
                external_id,
                spec: spec.to_json(),
            }),
            Err(e) => {
                p.counts.failed += 1;
                p.errors.push(ItemError {
                    external_id: Some(external_id),
                    source: Some(source),
                    line: None,
                    kind: "outside_media_root".into(),
                    message: e.to_string(),
                });
            }
        }
    }
    catalog.resolve_errors(&p.succeeded).await?;
    catalog.record_errors(p.run_id, &p.errors).await?;
    let n = queue
        .enqueue(p.run_id, &p.counts, opts.enqueue_only, &jobs)
        .await?;
    if n > 0 && !opts.enqueue_only {
        opts.progress.set_length(n);
        opts.progress.set_position(0);
        opts.progress.set_message("analysing");
        let config = WorkerConfig {
            analysis: opts.analysis.clone(),
            lease: opts.queue.lease,
            claim_batch: opts.queue.claim_batch,
            retry: opts.queue.retry,
            run: Some(p.run_id),
            ..WorkerConfig::new(worker_name(p.run_id), media_root)
        };
        let never = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let worker = Worker::new(catalog.clone(), config, never)
            .map_err(|e| PipelineError::Workers(e.to_string()))?
            .with_progress(opts.progress.clone());
        std::sync::Arc::new(worker)
            .run(opts.jobs.max(1), Until::RunDone(p.run_id))
            .await;
        opts.progress.finish_and_clear();
    }
    let row = catalog
        .run(p.run_id)
        .await?
        .ok_or_else(|| CatalogError::Corrupt(format!("run {} vanished", p.run_id)))?;
    let errors = catalog.open_errors(Some(p.run_id), i64::MAX).await?;
    Ok(Worked {
        run_id: p.run_id,
        jobs: n,
        counts: counts_of(&row),
        errors: errors.iter().map(error_of).collect(),
    })
}

/// The summary of a run planned for workers: nothing analysed here, indexes left to the
/// servers (which catch up from the store as workers write).
fn enqueued_summary(
    catalog: &Catalog,
    input: String,
    w: Worked,
    stale: u64,
    opts: &Options,
    started: Instant,
) -> Summary {
    Summary {
        run_id: w.run_id,
        backend: catalog.backend(),
        input,
        counts: w.counts,
        stale,
        errors: w.errors.iter().map(ItemErrorJson::from).collect(),
        elapsed_s: started.elapsed().as_secs_f64(),
        x_realtime: 0.0,
        x_realtime_per_core: 0.0,
        jobs: opts.jobs.max(1),
        index: CatchUp {
            skipped: Some(format!(
                "{} jobs queued for `motif worker`s; servers catch up as they write",
                w.jobs
            )),
            ..CatchUp::default()
        },
        indexed_vectors: 0,
        indexed_text: 0,
        queued_jobs: w.jobs,
    }
}

/// A lease owner name unique to this process and run: host, process id, run.
fn worker_name(run: i64) -> String {
    format!("{}:{}:index-run-{run}", host_name(), std::process::id())
}

/// This machine's name (for lease owners), `localhost` when unknown.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

fn counts_of(r: &RunRow) -> RunCounts {
    RunCounts {
        seen: r.seen as u64,
        new: r.new as u64,
        updated: r.updated as u64,
        unchanged: r.unchanged as u64,
        taken_down: r.taken_down as u64,
        failed: r.failed as u64,
        analysed: r.analysed as u64,
        audio_seconds: r.audio_seconds,
    }
}

fn error_of(e: &ErrorRow) -> ItemError {
    ItemError {
        external_id: e.external_id.clone(),
        source: e.source.clone(),
        line: e.line,
        kind: e.kind.clone(),
        message: e.message.clone(),
    }
}

/// SQLite: analyse in this process, in parallel on a rayon pool behind a panic boundary;
/// results stream through a bounded channel into batched writes.
#[allow(clippy::too_many_arguments)]
async fn analyse_here(
    catalog: &Catalog,
    work: Vec<(TrackMeta, (String, String), PathBuf)>,
    space: Option<Normalizer>,
    existing: &std::collections::HashSet<String>,
    opts: &Options,
    started: Instant,
    counts: &mut RunCounts,
    errors: &mut Vec<ItemError>,
    succeeded: &mut Vec<String>,
) -> Result<()> {
    let tally = |ext: &str, counts: &mut RunCounts| {
        if existing.contains(ext) {
            counts.updated += 1;
        } else {
            counts.new += 1;
        }
    };
    opts.progress.set_length(work.len() as u64);
    opts.progress.set_position(0);
    opts.progress.set_message("analysing");
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(
        TrackMeta,
        (String, String),
        std::result::Result<AnalysisRow, ItemError>,
    )>(opts.batch_size.max(1) * 2);
    let jobs = opts.jobs.max(1);
    let config = opts.analysis.clone();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs)
        .thread_name(|i| format!("motif-analyse-{i}"))
        .build()
        .map_err(|e| PipelineError::Workers(e.to_string()))?;
    let workers = std::thread::spawn(move || {
        pool.install(|| {
            work.into_par_iter()
                .for_each_with(tx, |tx, (meta, hashes, path)| {
                    let result = analyse_one(&meta, &path, &config, space.as_ref());
                    // A closed channel means the writer stopped on a store error: drop the rest.
                    let _ = tx.blocking_send((meta, hashes, result));
                });
        });
    });
    let mut batch: Vec<TrackWrite> = Vec::new();
    let mut last_flush = Instant::now();
    let mut write_error: Option<CatalogError> = None;
    loop {
        let next = tokio::time::timeout(Duration::from_secs(2), rx.recv()).await;
        let done = matches!(next, Ok(None));
        if let Ok(Some((meta, (meta_hash, hash), result))) = next {
            opts.progress.inc(1);
            match result {
                Ok(analysis) => {
                    counts.analysed += 1;
                    counts.audio_seconds += analysis.duration_s;
                    let secs = started.elapsed().as_secs_f64().max(1e-9);
                    opts.progress
                        .set_message(format!("{:.0}x realtime", counts.audio_seconds / secs));
                    batch.push(TrackWrite {
                        meta_hash,
                        meta,
                        content_hash: hash,
                        analysis: Some(analysis),
                    });
                }
                Err(e) => {
                    counts.failed += 1;
                    errors.push(e);
                }
            }
        }
        let due = !batch.is_empty()
            && (done
                || batch.len() >= opts.batch_size
                || last_flush.elapsed() >= Duration::from_secs(2));
        if due {
            match catalog.write_batch(&batch).await {
                Ok(_) => {
                    for w in batch.drain(..) {
                        tally(&w.meta.external_id, counts);
                        succeeded.push(w.meta.external_id);
                    }
                }
                Err(e) => {
                    write_error = Some(e);
                    break;
                }
            }
            last_flush = Instant::now();
        }
        if done {
            break;
        }
    }
    drop(rx);
    workers
        .join()
        .map_err(|_| PipelineError::Workers("an analysis thread panicked".into()))?;
    if let Some(e) = write_error {
        return Err(e.into());
    }
    opts.progress.finish_and_clear();
    Ok(())
}

/// Brings the derived indexes of `data_dir` up to the store, unless a running server
/// holds them: (what the catch-up did, vectors, text documents).
async fn catch_up(
    catalog: &Catalog,
    data_dir: &Path,
    opts: &Options,
) -> Result<(CatchUp, usize, u64)> {
    Ok(match IndexLock::try_acquire(data_dir)? {
        Some(_lock) => {
            let mut indexes = DerivedIndexes::open(
                data_dir,
                embeddings::embedding::EMBEDDING_DIM,
                opts.hnsw,
                opts.vector_engine,
            )?;
            let index = indexes.catch_up(catalog).await?;
            indexes.close()?;
            (index, indexes.vectors.len(), indexes.text.len())
        }
        None => (
            CatchUp {
                skipped: Some(
                    "the indexes are held by a running server, which catches up by itself".into(),
                ),
                ..CatchUp::default()
            },
            0,
            0,
        ),
    })
}

/// Waits for one of the batches written at once; its error, or a panic in it, ends the run.
async fn join_write(
    in_flight: &mut tokio::task::JoinSet<std::result::Result<(), crate::catalog::CatalogError>>,
) -> Result<()> {
    match in_flight.join_next().await {
        Some(done) => Ok(done.map_err(|e| PipelineError::Workers(e.to_string()))??),
        None => Ok(()),
    }
}

/// Decides what an upsert needs: checks the path stays inside the root, hashes the file
/// and compares with the stored state.
fn plan(
    meta: TrackMeta,
    path: PathBuf,
    root: &Path,
    state: Option<&TrackState>,
    reanalyze: bool,
) -> Plan {
    let fail = |kind: &str, message: String| {
        Plan::Failed(ItemError {
            external_id: Some(meta.external_id.clone()),
            source: Some(meta.source.clone()),
            line: None,
            kind: kind.into(),
            message,
        })
    };
    let real = match path.canonicalize() {
        Ok(p) => p,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return fail("missing", format!("{}: no such file", path.display()))
        }
        Err(e) => return fail("io", format!("{}: {e}", path.display())),
    };
    if !real.starts_with(root) {
        return fail(
            "outside_root",
            format!(
                "{} resolves to {}, outside the input root {}",
                path.display(),
                real.display(),
                root.display()
            ),
        );
    }
    if !real.is_file() {
        return fail("io", format!("{}: not a regular file", path.display()));
    }
    let hash = match hash_file(&real) {
        Ok(h) => h,
        Err(e) => return fail("io", format!("{}: {e}", path.display())),
    };
    let meta_hash = meta.fingerprint();
    let Some(s) = state else {
        return Plan::Analyse {
            meta,
            meta_hash,
            path: real,
            hash,
        };
    };
    let same_audio = s.content_hash == hash && s.analyzer_version.is_some();
    let current = s.analyzer_version.as_deref() == Some(embeddings::ANALYZER_VERSION);
    if !same_audio || (reanalyze && !current) {
        return Plan::Analyse {
            meta,
            meta_hash,
            path: real,
            hash,
        };
    }
    if s.meta_hash == meta_hash && s.status == "active" {
        return if current {
            Plan::Unchanged
        } else {
            Plan::Stale
        };
    }
    Plan::Write(TrackWrite {
        meta,
        meta_hash,
        content_hash: hash,
        analysis: None,
    })
}

/// blake3 of a file's bytes, hex.
pub fn hash_file(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = blake3::Hasher::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().to_hex().to_string())
}

/// Analyses one file behind a panic boundary.
fn analyse_one(
    meta: &TrackMeta,
    path: &Path,
    config: &AnalysisConfig,
    space: Option<&Normalizer>,
) -> std::result::Result<AnalysisRow, ItemError> {
    let err = |kind: &str, message: String| ItemError {
        external_id: Some(meta.external_id.clone()),
        source: Some(meta.source.clone()),
        line: None,
        kind: kind.into(),
        message,
    };
    match std::panic::catch_unwind(AssertUnwindSafe(|| embeddings::analyze(path, config))) {
        Ok(Ok(a)) => Ok(AnalysisRow::from_analysis(a, space)),
        Ok(Err(e)) => Err(err(e.kind.as_str(), e.message)),
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(err("internal", format!("analyser panicked: {what}")))
        }
    }
}
