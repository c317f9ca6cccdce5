//! A worker of the analysis queue (Postgres): claims a few jobs, analyses them, writes
//! the results and the jobs' ends in one transaction, again and again.
//!
//! [`Worker::try_execute`] is one step (claim, analyse, complete) so tests drive the queue
//! a step at a time; [`Worker::run`] is the loop: several steps at once (one per analysis
//! thread), a heartbeat renewing the leases, a stop flag (SIGTERM) after which no job is
//! claimed, the jobs in hand are finished and the ones not started are handed back, and
//! a pause after a store error instead of an exit, so a worker that loses its database
//! carries on when it comes back (the pool reconnects; leases that expired meanwhile were
//! taken over, and completing those writes nothing).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use embeddings::AnalysisConfig;
use indicatif::ProgressBar;

use crate::catalog::{
    Catalog, CatalogError, ClaimedJob, Completed, JobFailure, JobQueue, RetryPolicy, TrackWrite,
};
use crate::jobs::{self, AnalysisJob, JobSpec};

/// How a worker works.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Who holds a lease: unique per worker process (host, pid, a random part).
    pub owner: String,
    /// Where the audio named by jobs' relative paths is on this machine.
    pub media_root: PathBuf,
    pub analysis: AnalysisConfig,
    /// How long a claim holds a job without a heartbeat (renewed every third of it).
    pub lease: Duration,
    /// Jobs claimed per step (small: a step's jobs are written in one transaction, and
    /// jobs in one worker's hands are jobs no other worker can take).
    pub claim_batch: usize,
    pub retry: RetryPolicy,
    /// Work only this run's jobs (`motif index` working its own delivery).
    pub run: Option<i64>,
}

impl WorkerConfig {
    pub fn new(owner: String, media_root: PathBuf) -> WorkerConfig {
        WorkerConfig {
            owner,
            media_root,
            analysis: AnalysisConfig::default(),
            lease: Duration::from_secs(60),
            claim_batch: 2,
            retry: RetryPolicy::default(),
            run: None,
        }
    }
}

/// When [`Worker::run`] returns (besides the stop flag).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Until {
    /// Only when stopped.
    Stopped,
    /// When no job of this run is pending (claimable or in anyone's hands).
    RunDone(i64),
    /// When no job at all is pending.
    QueueEmpty,
}

/// What one step did.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Nothing was claimable.
    Idle,
    Worked(StepReport),
}

/// A step's outcome and where its time went.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StepReport {
    pub completed: Completed,
    /// Jobs claimed but handed back unstarted (stop requested).
    pub released: usize,
    pub audio_seconds: f64,
    /// Wall time analysing (decode + analysis of every job of the step).
    pub analysis_s: f64,
    /// Wall time in the queue's own statements (claim, complete, release).
    pub queue_s: f64,
}

/// What a worker did over its life.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Totals {
    pub done: usize,
    pub failed: usize,
    pub retried: usize,
    /// Jobs whose lease was taken over before this worker ended them.
    pub lost: usize,
    pub released: usize,
    pub audio_seconds: f64,
    pub analysis_s: f64,
    pub queue_s: f64,
    /// Store errors the worker paused over and went on after.
    pub store_errors: usize,
}

impl Totals {
    fn add(&mut self, r: &StepReport) {
        self.done += r.completed.done;
        self.failed += r.completed.failed;
        self.retried += r.completed.retried;
        self.lost += r.completed.lost;
        self.released += r.released;
        self.audio_seconds += r.audio_seconds;
        self.analysis_s += r.analysis_s;
        self.queue_s += r.queue_s;
    }
}

/// Why a worker stopped (per-job problems never stop it; store errors pause it).
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error("{0} has no work queue (the queue needs Postgres)")]
    NoQueue(&'static str),
    #[error("analysis task: {0}")]
    Task(String),
}

/// A worker over one store.
pub struct Worker {
    catalog: Catalog,
    queue: JobQueue,
    config: WorkerConfig,
    stop: Arc<AtomicBool>,
    progress: ProgressBar,
    totals: Mutex<Totals>,
    /// Jobs claimed and not yet ended or given up: the only ones the heartbeat renews.
    in_hand: Mutex<BTreeSet<i64>>,
}

impl Worker {
    /// A worker of `catalog`'s queue; `stop` set (by a signal handler, say) ends it.
    pub fn new(
        catalog: Catalog,
        config: WorkerConfig,
        stop: Arc<AtomicBool>,
    ) -> Result<Worker, WorkerError> {
        let queue = catalog
            .job_queue()
            .ok_or(WorkerError::NoQueue(catalog.backend()))?;
        Ok(Worker {
            catalog,
            queue,
            config,
            stop,
            progress: ProgressBar::hidden(),
            totals: Mutex::new(Totals::default()),
            in_hand: Mutex::new(BTreeSet::new()),
        })
    }

    /// Counts ended jobs on `bar`.
    pub fn with_progress(mut self, bar: ProgressBar) -> Worker {
        self.progress = bar;
        self
    }

    pub fn config(&self) -> &WorkerConfig {
        &self.config
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// One step: claim up to `claim_batch` jobs, analyse them one after the other, write
    /// their results and ends in one transaction. Once stop is requested, jobs not yet
    /// started are handed back.
    pub async fn try_execute(&self) -> Result<Step, WorkerError> {
        let c = &self.config;
        let t = Instant::now();
        let claimed = self
            .queue
            .claim(&c.owner, c.run, c.claim_batch as i64, c.lease, c.retry)
            .await?;
        if claimed.is_empty() {
            return Ok(Step::Idle);
        }
        let ids: Vec<i64> = claimed.iter().map(|j| j.id).collect();
        self.hand(|h| h.extend(&ids));
        let outcome = self.work(claimed, t.elapsed()).await;
        // Ended, handed back, or given up (the store stayed away): either way no longer
        // renewed, so a job whose result was lost expires and is claimed again.
        self.hand(|h| {
            for id in &ids {
                h.remove(id);
            }
        });
        outcome
    }

    fn hand(&self, f: impl FnOnce(&mut BTreeSet<i64>)) {
        if let Ok(mut h) = self.in_hand.lock() {
            f(&mut h);
        }
    }

    /// Analyses claimed jobs one after the other and ends them (see `try_execute`).
    async fn work(
        &self,
        claimed: Vec<ClaimedJob>,
        claiming: Duration,
    ) -> Result<Step, WorkerError> {
        let c = &self.config;
        let space = self.catalog.current_space().await?;
        let mut report = StepReport {
            queue_s: claiming.as_secs_f64(),
            ..StepReport::default()
        };
        let mut done: Vec<(i64, TrackWrite)> = Vec::new();
        let mut failed: Vec<JobFailure> = Vec::new();
        let mut unstarted: Vec<i64> = Vec::new();
        for job in claimed {
            if self.stopping() {
                unstarted.push(job.id);
                continue;
            }
            let t = Instant::now();
            match self.analyse(job, space.clone()).await? {
                Ok((id, w)) => {
                    report.audio_seconds += w.analysis.as_ref().map_or(0.0, |a| a.duration_s);
                    done.push((id, w));
                }
                Err(f) => failed.push(f),
            }
            report.analysis_s += t.elapsed().as_secs_f64();
        }
        let t = Instant::now();
        report.released = self.queue.release(&c.owner, &unstarted).await? as usize;
        report.completed = self.complete(&done, &failed).await?;
        report.queue_s += t.elapsed().as_secs_f64();
        self.progress
            .inc((report.completed.done + report.completed.failed) as u64);
        Ok(Step::Worked(report))
    }

    /// One job's analysis on a blocking thread: its write, or its failure.
    async fn analyse(
        &self,
        job: ClaimedJob,
        space: Option<embeddings::Normalizer>,
    ) -> Result<Result<(i64, TrackWrite), JobFailure>, WorkerError> {
        let id = job.id;
        let located = JobSpec::from_json(&job.spec).and_then(|s| s.locate(&self.config.media_root));
        let job: AnalysisJob = match located {
            Ok(j) => j,
            Err(e) => {
                let external_id = job.spec["meta"]["external_id"].as_str().map(str::to_string);
                return Ok(Err(JobFailure {
                    job: id,
                    error: crate::catalog::ItemError {
                        external_id,
                        source: None,
                        line: None,
                        kind: "bad_job".into(),
                        message: e.to_string(),
                    },
                    permanent: true,
                }));
            }
        };
        let config = self.config.analysis.clone();
        let outcome = tokio::task::spawn_blocking(move || job.analyse(&config, space.as_ref()))
            .await
            .map_err(|e| WorkerError::Task(e.to_string()))?;
        Ok(outcome.map(|w| (id, w)).map_err(|error| JobFailure {
            job: id,
            permanent: !jobs::is_transient(&error.kind),
            error,
        }))
    }

    /// Writes a step's results, retrying a failing store for up to a lease: results are
    /// only lost (and the jobs redone after their leases expire) when the store stays
    /// away longer than that.
    async fn complete(
        &self,
        done: &[(i64, TrackWrite)],
        failed: &[JobFailure],
    ) -> Result<Completed, WorkerError> {
        let c = &self.config;
        let deadline = Instant::now() + c.lease;
        let mut pause = Duration::from_millis(100);
        loop {
            match self.queue.complete(&c.owner, done, failed, c.retry).await {
                Ok(done) => return Ok(done),
                Err(e) if Instant::now() + pause < deadline => {
                    tracing::warn!("completing jobs: {e}; retrying in {pause:?}");
                    self.totals.lock().map(|mut t| t.store_errors += 1).ok();
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(4));
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Works the queue with `threads` steps at once until `until` holds or stop is
    /// requested; store errors pause a step (with backoff) and never end the loop.
    pub async fn run(self: Arc<Self>, threads: usize, until: Until) -> Totals {
        let heartbeat = tokio::spawn(Arc::clone(&self).heartbeat());
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..threads.max(1) {
            tasks.spawn(Arc::clone(&self).steps(until));
        }
        while tasks.join_next().await.is_some() {}
        heartbeat.abort();
        self.totals.lock().map(|t| t.clone()).unwrap_or_default()
    }

    /// One thread's loop of steps.
    async fn steps(self: Arc<Self>, until: Until) {
        let mut pause = Duration::from_millis(250);
        while !self.stopping() {
            match self.try_execute().await {
                Ok(Step::Worked(r)) => {
                    self.totals.lock().map(|mut t| t.add(&r)).ok();
                    pause = Duration::from_millis(250);
                }
                Ok(Step::Idle) => match self.finished(until).await {
                    Ok(true) => return,
                    Ok(false) => self.idle(Duration::from_millis(250)).await,
                    Err(e) => self.paused(&e, &mut pause).await,
                },
                Err(e) => self.paused(&e, &mut pause).await,
            }
        }
    }

    /// Whether `until` holds (asked when nothing was claimable).
    async fn finished(&self, until: Until) -> Result<bool, WorkerError> {
        Ok(match until {
            Until::Stopped => false,
            Until::RunDone(run) => self.queue.counts(run).await?.pending() == 0,
            Until::QueueEmpty => self.queue.pending().await? == 0,
        })
    }

    async fn paused(&self, e: &WorkerError, pause: &mut Duration) {
        tracing::warn!("worker {}: {e}; retrying in {pause:?}", self.config.owner);
        self.totals.lock().map(|mut t| t.store_errors += 1).ok();
        self.idle(*pause).await;
        *pause = (*pause * 2).min(Duration::from_secs(5));
    }

    /// Sleeps up to `d`, waking early when stop is requested.
    async fn idle(&self, d: Duration) {
        let end = Instant::now() + d;
        while !self.stopping() && Instant::now() < end {
            tokio::time::sleep(Duration::from_millis(50).min(d)).await;
        }
    }

    /// Renews the leases of the jobs in hand every third of a lease, for as long as the
    /// worker runs (a failed renewal is retried at the next beat).
    async fn heartbeat(self: Arc<Self>) {
        let every = (self.config.lease / 3).max(Duration::from_millis(100));
        loop {
            tokio::time::sleep(every).await;
            let jobs: Vec<i64> = self
                .in_hand
                .lock()
                .map(|h| h.iter().copied().collect())
                .unwrap_or_default();
            if let Err(e) = self
                .queue
                .heartbeat(&self.config.owner, &jobs, self.config.lease)
                .await
            {
                tracing::warn!("heartbeat: {e}");
            }
        }
    }
}
