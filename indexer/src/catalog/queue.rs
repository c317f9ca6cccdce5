//! The analysis work queue, on Postgres alone (the embedded SQLite store keeps its
//! single-process path, so it has no queue rather than one that can only fail).
//!
//! A run is planned into `analysis_jobs` rows, one per track to analyse. Workers on any
//! machine [`claim`](JobQueue::claim) a few at a time with `FOR UPDATE SKIP LOCKED`, so no
//! two claim one job, and hold each under a lease they [`renew`](JobQueue::heartbeat).
//! [`complete`](JobQueue::complete) writes the analyses and the jobs' ends in one
//! transaction, and only for jobs the worker still holds: a worker whose lease expired and
//! was taken over writes nothing, so a job's track is written by exactly one worker.
//!
//! Invariants:
//! - a job ends once: `done`, `failed` (with an error row) or `superseded` (a later plan
//!   of the same external id replaced it);
//! - a job `running` with an expired lease is claimable again (its worker died or lost
//!   the database); each claim is an attempt, and a job out of attempts fails instead of
//!   being handed out again (a file that kills its worker cannot loop forever);
//! - the transaction that ends a run's last pending job closes the run (`finished`, with
//!   the jobs' counts added to the planner's), under the run row's lock, so two workers
//!   ending the last two jobs at once cannot both miss it.
//!
//! Times are the database's clock (`now_ms()` in SQL), never a worker's.

use std::time::Duration;

use sqlx::{PgPool, Postgres, Transaction};

use super::postgres::{self, Locking};
use super::rows::{ItemError, RunCounts, TrackWrite};
use super::{bind_counts, CatalogError, Result};

/// The database's clock in epoch milliseconds.
const NOW_MS: &str = "(extract(epoch from clock_timestamp()) * 1000)::bigint";

/// The work queue of a Postgres store; cheap to clone.
#[derive(Clone, Debug)]
pub struct JobQueue {
    pool: PgPool,
}

/// One job to enqueue.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub external_id: String,
    /// What a worker needs (`indexer::jobs::JobSpec` as JSON).
    pub spec: serde_json::Value,
    /// The track was stored when planned (its write is an update, not a new track).
    pub existing: bool,
}

/// A job a worker holds.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClaimedJob {
    pub id: i64,
    pub run_id: i64,
    pub spec: serde_json::Value,
    /// Claims so far, this one included.
    pub attempts: i32,
}

/// How failures are retried.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Claims a job gets before it fails for good.
    pub max_attempts: i32,
    /// Wait before the 2nd attempt; doubled for each further one.
    pub backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 3,
            backoff: Duration::from_secs(5),
        }
    }
}

/// A job's analysis that failed.
#[derive(Debug, Clone)]
pub struct JobFailure {
    pub job: i64,
    pub error: ItemError,
    /// Retrying cannot help (the file itself is corrupt, unsupported, too short...): the
    /// job fails at once. Otherwise (I/O, a panic) it is retried after a backoff.
    pub permanent: bool,
}

/// What a completion wrote.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Completed {
    /// Jobs ended `done` (their tracks written).
    pub done: usize,
    /// Jobs ended `failed` (error rows written).
    pub failed: usize,
    /// Jobs put back for a later attempt.
    pub retried: usize,
    /// Jobs this worker no longer held (lease taken over, or superseded): nothing written.
    pub lost: usize,
    /// Runs this completion closed.
    pub closed_runs: Vec<i64>,
}

/// Jobs of a run by state, and the analysis rate so far.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct JobCounts {
    pub queued: i64,
    pub running: i64,
    pub done: i64,
    pub failed: i64,
    pub superseded: i64,
    /// Audio seconds of the jobs done.
    pub audio_seconds: f64,
    /// Jobs done per second since the run started (until it finished).
    pub tracks_per_s: f64,
    /// Audio seconds analysed per wall-clock second, over the same span.
    pub x_realtime: f64,
}

impl JobCounts {
    /// Jobs not yet ended.
    pub fn pending(&self) -> i64 {
        self.queued + self.running
    }
}

fn millis(d: Duration) -> i64 {
    d.as_millis().min(i64::MAX as u128) as i64
}

impl JobQueue {
    pub(super) fn new(pool: PgPool) -> JobQueue {
        JobQueue { pool }
    }

    /// Enqueues a run's jobs in one transaction. Pending jobs of the same external ids
    /// from earlier runs are superseded: the newest plan of a track is the one worked.
    /// The run's planner counts (what needed no analysis) are stored in the same
    /// transaction, before any job can end and close the run; `detached` marks the run
    /// `queued`: no process works it in itself, the workers close it.
    pub async fn enqueue(
        &self,
        run: i64,
        planned: &RunCounts,
        detached: bool,
        jobs: &[NewJob],
    ) -> Result<u64> {
        let ext: Vec<&str> = jobs.iter().map(|j| j.external_id.as_str()).collect();
        let specs: Vec<&serde_json::Value> = jobs.iter().map(|j| &j.spec).collect();
        let existing: Vec<bool> = jobs.iter().map(|j| j.existing).collect();
        let mut tx = self.pool.begin().await?;
        bind_counts(
            sqlx::query(
                "UPDATE ingest_runs SET seen = $2, new = $3, updated = $4, unchanged = $5, \
                 taken_down = $6, failed = $7, analysed = $8, audio_seconds = $9, \
                 status = CASE WHEN $10 THEN 'queued' ELSE status END WHERE id = $1",
            )
            .bind(run),
            planned,
        )
        .bind(detached)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE analysis_jobs SET state = 'superseded', lease_owner = NULL, \
             finished_at = (extract(epoch from clock_timestamp()) * 1000)::bigint \
             WHERE state IN ('queued', 'running') AND external_id = ANY($1)",
        )
        .bind(&ext)
        .execute(&mut *tx)
        .await?;
        let n = sqlx::query(
            "INSERT INTO analysis_jobs (run_id, external_id, spec, existing, created_at) \
             SELECT $1, u.x, u.s, u.e, (extract(epoch from clock_timestamp()) * 1000)::bigint \
             FROM UNNEST($2::text[], $3::jsonb[], $4::bool[]) AS u(x, s, e)",
        )
        .bind(run)
        .bind(&ext)
        .bind(&specs)
        .bind(&existing)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(n)
    }

    /// Claims up to `limit` jobs (of `run` only, when given) for `owner`, each held until
    /// `lease` from now: queued jobs whose backoff has passed, and running jobs whose
    /// lease expired. Jobs expired on their last attempt fail instead (see the module).
    pub async fn claim(
        &self,
        owner: &str,
        run: Option<i64>,
        limit: i64,
        lease: Duration,
        retry: RetryPolicy,
    ) -> Result<Vec<ClaimedJob>> {
        let mut tx = self.pool.begin().await?;
        fail_exhausted(&mut tx, run, retry).await?;
        let claimed: Vec<ClaimedJob> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "WITH c AS (SELECT id FROM analysis_jobs \
               WHERE ($1::bigint IS NULL OR run_id = $1) AND \
                 ((state = 'queued' AND next_attempt_at <= {NOW_MS}) OR \
                  (state = 'running' AND lease_expires_at < {NOW_MS})) \
               ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED) \
             UPDATE analysis_jobs j SET state = 'running', lease_owner = $3, \
               lease_expires_at = {NOW_MS} + $4, attempts = j.attempts + 1 \
             FROM c WHERE j.id = c.id RETURNING j.id, j.run_id, j.spec, j.attempts"
        )))
        .bind(run)
        .bind(limit)
        .bind(owner)
        .bind(millis(lease))
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let mut claimed = claimed;
        claimed.sort_by_key(|j| j.id);
        Ok(claimed)
    }

    /// Extends the leases of `jobs` that `owner` still holds; returns how many. Only the
    /// jobs a worker is working on: one whose result it gave up writing must expire, so
    /// that it is claimed again.
    pub async fn heartbeat(&self, owner: &str, jobs: &[i64], lease: Duration) -> Result<u64> {
        if jobs.is_empty() {
            return Ok(0);
        }
        Ok(sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE analysis_jobs SET lease_expires_at = {NOW_MS} + $2 \
             WHERE state = 'running' AND lease_owner = $1 AND id = ANY($3)"
        )))
        .bind(owner)
        .bind(millis(lease))
        .bind(jobs)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    /// Hands jobs `owner` holds but has not analysed back to the queue, their attempt not
    /// counted (a worker stopping on SIGTERM).
    pub async fn release(&self, owner: &str, jobs: &[i64]) -> Result<u64> {
        if jobs.is_empty() {
            return Ok(0);
        }
        Ok(sqlx::query(
            "UPDATE analysis_jobs SET state = 'queued', lease_owner = NULL, \
             lease_expires_at = NULL, attempts = GREATEST(attempts - 1, 0) \
             WHERE id = ANY($1) AND state = 'running' AND lease_owner = $2",
        )
        .bind(jobs)
        .bind(owner)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    /// Ends jobs `owner` holds: writes the analysed tracks (`done`, job id with its write)
    /// and the failures, and the jobs' ends, in one transaction; closes runs whose last
    /// job this was. Jobs `owner` no longer holds are left alone and counted `lost`.
    pub async fn complete(
        &self,
        owner: &str,
        done: &[(i64, TrackWrite)],
        failed: &[JobFailure],
        retry: RetryPolicy,
    ) -> Result<Completed> {
        // As `Catalog::write_batch`: overlap with other writers first; on a lost race for
        // a new track id or a deadlock, once more holding the write lock throughout.
        match self
            .complete_locking(owner, done, failed, retry, Locking::Late)
            .await
        {
            Ok(Some(c)) => return Ok(c),
            Ok(None) => {}
            Err(CatalogError::Sql(sqlx::Error::Database(e)))
                if e.code().as_deref() == Some("40P01") => {}
            Err(e) => return Err(e),
        }
        self.complete_locking(owner, done, failed, retry, Locking::Early)
            .await?
            .ok_or_else(|| {
                CatalogError::Corrupt("a track id changed while the write lock was held".into())
            })
    }

    async fn complete_locking(
        &self,
        owner: &str,
        done: &[(i64, TrackWrite)],
        failed: &[JobFailure],
        retry: RetryPolicy,
        locking: Locking,
    ) -> Result<Option<Completed>> {
        let mut tx = self.pool.begin().await?;
        let mut ids: Vec<i64> = done.iter().map(|(j, _)| *j).collect();
        ids.extend(failed.iter().map(|f| f.job));
        // Lock the jobs still held (in id order, as every completion does): a claim
        // skips them from here on, and a lease taken over is seen as such.
        ids.sort_unstable();
        let held: Vec<(i64, i64, i32)> = sqlx::query_as(
            "SELECT id, run_id, attempts FROM analysis_jobs \
             WHERE id = ANY($1) AND state = 'running' AND lease_owner = $2 ORDER BY id FOR UPDATE",
        )
        .bind(&ids)
        .bind(owner)
        .fetch_all(&mut *tx)
        .await?;
        let held_of = |job: i64| held.iter().find(|(id, _, _)| *id == job);
        let mut out = Completed {
            lost: ids.len() - held.len(),
            ..Completed::default()
        };

        let writes: Vec<TrackWrite> = done
            .iter()
            .filter(|(j, _)| held_of(*j).is_some())
            .map(|(_, w)| w.clone())
            .collect();
        if postgres::write_in_tx(&mut tx, &writes, locking)
            .await?
            .is_none()
        {
            tx.rollback().await?;
            return Ok(None);
        }
        let done_ids: Vec<i64> = done
            .iter()
            .map(|(j, _)| *j)
            .filter(|j| held_of(*j).is_some())
            .collect();
        let seconds: Vec<f64> = done
            .iter()
            .filter(|(j, _)| held_of(*j).is_some())
            .map(|(_, w)| w.analysis.as_ref().map_or(0.0, |a| a.duration_s))
            .collect();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE analysis_jobs j SET state = 'done', lease_owner = NULL, \
             finished_at = {NOW_MS}, audio_seconds = u.s \
             FROM UNNEST($1::bigint[], $2::float8[]) AS u(id, s) WHERE j.id = u.id"
        )))
        .bind(&done_ids)
        .bind(&seconds)
        .execute(&mut *tx)
        .await?;
        out.done = done_ids.len();
        let went_in: Vec<String> = writes.iter().map(|w| w.meta.external_id.clone()).collect();
        postgres::resolve_errors(&mut *tx, &went_in).await?;

        for f in failed {
            let Some((_, run, attempts)) = held_of(f.job).copied() else {
                continue;
            };
            if f.permanent || attempts >= retry.max_attempts {
                fail_job(&mut tx, f.job, run, &f.error).await?;
                out.failed += 1;
            } else {
                let wait = retry
                    .backoff
                    .saturating_mul(1 << (attempts - 1).clamp(0, 16));
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "UPDATE analysis_jobs SET state = 'queued', lease_owner = NULL, \
                     lease_expires_at = NULL, next_attempt_at = {NOW_MS} + $2, \
                     last_error_kind = $3, last_error = $4 WHERE id = $1"
                )))
                .bind(f.job)
                .bind(millis(wait))
                .bind(&f.error.kind)
                .bind(&f.error.message)
                .execute(&mut *tx)
                .await?;
                out.retried += 1;
            }
        }
        let mut runs: Vec<i64> = held.iter().map(|(_, r, _)| *r).collect();
        runs.sort_unstable();
        runs.dedup();
        out.closed_runs = close_finished_runs(&mut tx, &runs).await?;
        tx.commit().await?;
        Ok(Some(out))
    }

    /// Jobs of every run not yet ended.
    pub async fn pending(&self) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM analysis_jobs WHERE state IN ('queued', 'running')",
        )
        .fetch_one(&self.pool)
        .await?)
    }

    /// Jobs of `run` by state, with the rate of analysis.
    pub async fn counts(&self, run: i64) -> Result<JobCounts> {
        let row: (i64, i64, i64, i64, i64, f64, Option<i64>, Option<i64>, i64) =
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT COUNT(*) FILTER (WHERE j.state = 'queued'), \
                 COUNT(*) FILTER (WHERE j.state = 'running'), \
                 COUNT(*) FILTER (WHERE j.state = 'done'), \
                 COUNT(*) FILTER (WHERE j.state = 'failed'), \
                 COUNT(*) FILTER (WHERE j.state = 'superseded'), \
                 COALESCE(SUM(j.audio_seconds) FILTER (WHERE j.state = 'done'), 0)::float8, \
                 MIN(r.started_at), MAX(r.finished_at), {NOW_MS} \
                 FROM ingest_runs r LEFT JOIN analysis_jobs j ON j.run_id = r.id \
                 WHERE r.id = $1"
            )))
            .bind(run)
            .fetch_one(&self.pool)
            .await?;
        let (queued, running, done, failed, superseded, audio_seconds, started, finished, now) =
            row;
        let span_s = started.map_or(0.0, |s| (finished.unwrap_or(now) - s) as f64 / 1000.0);
        let per_s = |x: f64| if span_s > 0.0 { x / span_s } else { 0.0 };
        Ok(JobCounts {
            queued,
            running,
            done,
            failed,
            superseded,
            audio_seconds,
            tracks_per_s: per_s(done as f64),
            x_realtime: per_s(audio_seconds),
        })
    }
}

/// Fails the running jobs whose lease expired on their last attempt (in the claim's
/// transaction, before it looks for work).
async fn fail_exhausted(
    tx: &mut Transaction<'static, Postgres>,
    run: Option<i64>,
    retry: RetryPolicy,
) -> Result<()> {
    let lost: Vec<(i64, i64, String, serde_json::Value)> =
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT id, run_id, external_id, spec FROM analysis_jobs \
             WHERE ($1::bigint IS NULL OR run_id = $1) AND state = 'running' \
             AND lease_expires_at < {NOW_MS} AND attempts >= $2 \
             ORDER BY id FOR UPDATE SKIP LOCKED"
        )))
        .bind(run)
        .bind(retry.max_attempts)
        .fetch_all(&mut **tx)
        .await?;
    let mut runs = Vec::new();
    for (job, run, external_id, spec) in lost {
        let source = spec["meta"]["source"].as_str().map(str::to_string);
        let error = ItemError {
            external_id: Some(external_id),
            source,
            line: None,
            kind: "worker_lost".into(),
            message: format!(
                "{} workers stopped while analysing it (killed, or lost the database) \
                 before their leases expired",
                retry.max_attempts
            ),
        };
        fail_job(tx, job, run, &error).await?;
        runs.push(run);
    }
    runs.sort_unstable();
    runs.dedup();
    close_finished_runs(tx, &runs).await?;
    Ok(())
}

/// Ends a job `failed` and records its error row (superseding the item's older ones).
async fn fail_job(
    tx: &mut Transaction<'static, Postgres>,
    job: i64,
    run: i64,
    e: &ItemError,
) -> Result<()> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE analysis_jobs SET state = 'failed', lease_owner = NULL, finished_at = {NOW_MS}, \
         last_error_kind = $2, last_error = $3 WHERE id = $1"
    )))
    .bind(job)
    .bind(&e.kind)
    .bind(&e.message)
    .execute(&mut **tx)
    .await?;
    // As `Catalog::record_errors`, in this transaction: the item's older errors first.
    let ids: Vec<String> = e.external_id.iter().cloned().collect();
    postgres::resolve_errors(&mut **tx, &ids).await?;
    postgres::record_errors(&mut **tx, run, std::slice::from_ref(e)).await
}

/// Closes the runs among `runs` that have no pending job left, adding their jobs' counts
/// to the planner's; returns those closed. Takes the runs' row locks first, so of two
/// transactions ending a run's last jobs the later one sees the earlier's commit.
async fn close_finished_runs(
    tx: &mut Transaction<'static, Postgres>,
    runs: &[i64],
) -> Result<Vec<i64>> {
    if runs.is_empty() {
        return Ok(Vec::new());
    }
    sqlx::query("SELECT id FROM ingest_runs WHERE id = ANY($1) ORDER BY id FOR UPDATE")
        .bind(runs)
        .execute(&mut **tx)
        .await?;
    Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "UPDATE ingest_runs r SET status = 'finished', finished_at = {NOW_MS}, \
           new = r.new + j.new, updated = r.updated + j.updated, failed = r.failed + j.failed, \
           analysed = r.analysed + j.done, audio_seconds = r.audio_seconds + j.secs \
         FROM (SELECT run_id, \
                 COUNT(*) FILTER (WHERE state = 'done' AND NOT existing) AS new, \
                 COUNT(*) FILTER (WHERE state = 'done' AND existing) AS updated, \
                 COUNT(*) FILTER (WHERE state = 'failed') AS failed, \
                 COUNT(*) FILTER (WHERE state = 'done') AS done, \
                 COALESCE(SUM(audio_seconds) FILTER (WHERE state = 'done'), 0) AS secs, \
                 COUNT(*) FILTER (WHERE state IN ('queued', 'running')) AS pending \
               FROM analysis_jobs WHERE run_id = ANY($1) GROUP BY run_id) j \
         WHERE r.id = j.run_id AND j.pending = 0 AND r.status IN ('running', 'queued') \
         RETURNING r.id"
    )))
    .bind(runs)
    .fetch_all(&mut **tx)
    .await?)
}
