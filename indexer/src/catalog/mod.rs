//! The catalogue store: the source of truth for tracks, analyses, tags, ingest runs and
//! the change sequence that derived indexes follow (DESIGN.md principles 1 and 2).
//!
//! Two backends sit behind one [`Catalog`]: Postgres (production, `postgres://...`) and
//! SQLite (the embedded default, `<data-dir>/motif.db`). Both run the same queries in
//! spirit; the SQL differs only where the engines do (bulk writes are `UNNEST` arrays on
//! Postgres and prepared statements inside one transaction on SQLite). Every write is one
//! transaction per batch, so a crash leaves whole batches or nothing.

mod postgres;
pub mod queue;
pub mod rows;
mod sqlite;

use std::collections::HashMap;
use std::path::Path;

pub use queue::{ClaimedJob, Completed, JobCounts, JobFailure, JobQueue, NewJob, RetryPolicy};
pub use rows::{
    AnalysisRow, Change, ErrorRow, ItemError, RunCounts, RunRow, TagLink, TagScore, TrackDetail,
    TrackExtra, TrackMeta, TrackState, TrackWrite, WrittenTrack,
};

/// What can go wrong talking to the store.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("database: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("applying migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("unsupported database URL {0:?} (use postgres://... or sqlite://PATH)")]
    Url(String),
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
}

pub type Result<T> = std::result::Result<T, CatalogError>;

impl CatalogError {
    /// Whether the store is only busy (no pooled connection came free in time), as
    /// opposed to failing: the caller may retry shortly.
    pub fn is_busy(&self) -> bool {
        matches!(self, CatalogError::Sql(sqlx::Error::PoolTimedOut))
    }
}

/// Closes runs left `running` by a process that was killed.
const CLOSE_RUNNING: &str =
    "UPDATE ingest_runs SET status = 'interrupted' WHERE status = 'running'";

/// What a track upsert changes when the external id is already stored, shared by both
/// backends so that a re-delivery means the same on either: every metadata field and the
/// content hash; duration and codec only when the write brings an analysis; the track
/// back to active, under a new change number.
const TRACKS_ON_CONFLICT: &str = "ON CONFLICT (external_id) DO UPDATE SET title = excluded.title, \
     artists = excluded.artists, album = excluded.album, genre = excluded.genre, \
     release_date = excluded.release_date, release_year = excluded.release_year, \
     isrc = excluded.isrc, duration_s = COALESCE(excluded.duration_s, tracks.duration_s), \
     source = excluded.source, content_hash = excluded.content_hash, \
     codec = COALESCE(excluded.codec, tracks.codec), meta_hash = excluded.meta_hash, \
     status = 'active', change_seq = excluded.change_seq, updated_at = excluded.updated_at";

/// How many numeric attribute columns `analyses` has.
pub const ATTRIBUTE_COUNT: usize = 17;

/// The attribute columns of `analyses`, in the order [`rows::attribute_values`] yields them.
pub const ATTRIBUTE_COLUMNS: [&str; ATTRIBUTE_COUNT] = [
    "tempo_bpm",
    "tempo_confidence",
    "key_strength",
    "loudness_lufs",
    "loudness_range_lu",
    "true_peak_dbtp",
    "energy",
    "danceability",
    "brightness",
    "percussiveness",
    "acousticness",
    "syncopation",
    "harmonic_complexity",
    "repetitiveness",
    "dynamic_complexity",
    "onset_rate",
    "beats_per_bar",
];

/// One connection pool to either backend; cheap to clone.
#[derive(Clone, Debug)]
pub enum Catalog {
    Postgres(sqlx::PgPool),
    Sqlite(sqlx::SqlitePool),
}

/// Connection pool bounds (Postgres). A server opens two stores over one database: one
/// for queries and health, one for writes, so a burst of uploads cannot take every
/// connection from the readers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolSize {
    pub max_connections: u32,
    /// How long a caller waits for a free connection before an error.
    pub acquire_timeout: std::time::Duration,
}

impl Default for PoolSize {
    fn default() -> Self {
        PoolSize {
            max_connections: 8,
            acquire_timeout: std::time::Duration::from_secs(30),
        }
    }
}

/// How far a streaming replica is behind its primary (`motif serve --replica`).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct ReplicaLag {
    /// The replica is a standby replaying the primary's WAL (false: not a replica).
    pub in_recovery: bool,
    /// WAL bytes the primary has written that the replica has not replayed.
    pub bytes: i64,
    /// Age of the last transaction replayed, while bytes remain (0 when caught up).
    pub seconds: f64,
}

/// Held while an ingest run writes: a second `motif index` against the same store waits
/// for the first to finish (then finds its work done) instead of racing it.
pub enum RunLock {
    Postgres(sqlx::pool::PoolConnection<sqlx::Postgres>),
    File(std::fs::File),
}

impl RunLock {
    /// Releases the lock (also released if the process dies).
    pub async fn release(self) -> Result<()> {
        match self {
            RunLock::Postgres(mut conn) => {
                sqlx::query("SELECT pg_advisory_unlock($1)")
                    .bind(postgres::RUN_LOCK_KEY)
                    .execute(&mut *conn)
                    .await?;
                Ok(())
            }
            RunLock::File(f) => {
                let _ = f.unlock();
                Ok(())
            }
        }
    }
}

/// The file whose lock is the SQLite run lock (created when missing, never truncated).
fn open_lock_file(path: &Path) -> Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| CatalogError::Sql(sqlx::Error::Io(e)))
}

impl Catalog {
    /// Opens (creating when needed) the store named by `url` and applies pending
    /// migrations. `postgres://...` or `postgresql://...` for Postgres; `sqlite://PATH` or
    /// a bare path for SQLite; `sqlite::memory:` for a throwaway in-memory store.
    pub async fn open(url: &str) -> Result<Catalog> {
        Catalog::open_with(url, PoolSize::default()).await
    }

    /// [`open`](Self::open) with a pool of the given size (Postgres; SQLite keeps its
    /// own, since it has one writer whatever the pool).
    pub async fn open_with(url: &str, pool: PoolSize) -> Result<Catalog> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Catalog::Postgres(postgres::open(url, pool).await?))
        } else if url == "sqlite::memory:" {
            Ok(Catalog::Sqlite(sqlite::open_memory().await?))
        } else if let Some(path) = url.strip_prefix("sqlite://") {
            Ok(Catalog::Sqlite(sqlite::open(Path::new(path)).await?))
        } else if !url.contains("://") {
            Ok(Catalog::Sqlite(sqlite::open(Path::new(url)).await?))
        } else {
            Err(CatalogError::Url(url.to_string()))
        }
    }

    /// The analysis work queue: Postgres only (`None` on SQLite, whose runs analyse in
    /// their own process).
    pub fn job_queue(&self) -> Option<JobQueue> {
        match self {
            Catalog::Postgres(p) => Some(JobQueue::new(p.clone())),
            Catalog::Sqlite(_) => None,
        }
    }

    /// Opens a streaming replica of a Postgres primary for reads: no migrations (a
    /// standby is read only); fails when the replica lacks the schema's migrations.
    pub async fn open_replica(url: &str, pool: PoolSize) -> Result<Catalog> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Catalog::Postgres(postgres::open_replica(url, pool).await?))
        } else {
            Err(CatalogError::Url(format!(
                "{url} (a replica is a Postgres standby: postgres://...)"
            )))
        }
    }

    /// How far this store (a replica) is behind `primary`; `None` unless both are
    /// Postgres.
    pub async fn replica_lag(&self, primary: &Catalog) -> Result<Option<ReplicaLag>> {
        match (self, primary) {
            (Catalog::Postgres(r), Catalog::Postgres(p)) => {
                Ok(Some(postgres::replica_lag(r, p).await?))
            }
            _ => Ok(None),
        }
    }

    /// Which engine, for logs and summaries.
    pub fn backend(&self) -> &'static str {
        match self {
            Catalog::Postgres(_) => "postgres",
            Catalog::Sqlite(_) => "sqlite",
        }
    }

    /// Takes the ingest-run lock, waiting for another run to finish. `lock_file` is used
    /// by SQLite (next to the database); Postgres uses an advisory lock, so runs on
    /// different machines against one database also exclude each other.
    pub async fn lock_runs(&self, lock_file: &Path) -> Result<RunLock> {
        match self {
            Catalog::Postgres(p) => postgres::lock_runs(p).await,
            Catalog::Sqlite(_) => {
                let f = open_lock_file(lock_file)?;
                let f = tokio::task::spawn_blocking(move || f.lock().map(|_| f))
                    .await
                    .map_err(|e| CatalogError::Corrupt(format!("lock task: {e}")))?
                    .map_err(|e| CatalogError::Sql(sqlx::Error::Io(e)))?;
                Ok(RunLock::File(f))
            }
        }
    }

    /// The run lock if no run holds it now (`None` when one does), without waiting.
    pub async fn try_lock_runs(&self, lock_file: &Path) -> Result<Option<RunLock>> {
        match self {
            Catalog::Postgres(p) => postgres::try_lock_runs(p).await,
            Catalog::Sqlite(_) => {
                let f = open_lock_file(lock_file)?;
                match f.try_lock() {
                    Ok(()) => Ok(Some(RunLock::File(f))),
                    Err(std::fs::TryLockError::WouldBlock) => Ok(None),
                    Err(std::fs::TryLockError::Error(e)) => {
                        Err(CatalogError::Sql(sqlx::Error::Io(e)))
                    }
                }
            }
        }
    }

    /// Marks runs left `running` by a killed process as `interrupted`, when no run is in
    /// progress (the run lock is free); returns how many. A server calls this at start-up
    /// so a status poll does not show a dead run as running until the next run starts.
    pub async fn close_interrupted_runs(&self, lock_file: &Path) -> Result<u64> {
        let Some(lock) = self.try_lock_runs(lock_file).await? else {
            return Ok(0);
        };
        let closed = match self {
            Catalog::Postgres(p) => sqlx::query(CLOSE_RUNNING)
                .execute(p)
                .await
                .map(|r| r.rows_affected()),
            Catalog::Sqlite(p) => sqlx::query(CLOSE_RUNNING)
                .execute(p)
                .await
                .map(|r| r.rows_affected()),
        };
        lock.release().await?;
        Ok(closed?)
    }

    /// The stored state of each external id that exists (missing ids are absent).
    pub async fn states(&self, external_ids: &[String]) -> Result<HashMap<String, TrackState>> {
        let rows = match self {
            Catalog::Postgres(p) => postgres::states(p, external_ids).await?,
            Catalog::Sqlite(p) => sqlite::states(p, external_ids).await?,
        };
        Ok(rows
            .into_iter()
            .map(|s| (s.external_id.clone(), s))
            .collect())
    }

    /// Inserts or updates tracks (with their analyses and tags when given) in one
    /// transaction; each written track takes a new change sequence number. External ids
    /// must be unique within the batch. Calls may run concurrently (clone the catalogue
    /// per task): on Postgres they overlap all but the step that draws change numbers,
    /// which is how bulk loads use both cores (`motif bench-index --writers`); on SQLite
    /// they take turns.
    pub async fn write_batch(&self, batch: &[TrackWrite]) -> Result<Vec<WrittenTrack>> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        match self {
            Catalog::Postgres(p) => postgres::write_batch(p, batch).await,
            Catalog::Sqlite(p) => sqlite::write_batch(p, batch).await,
        }
    }

    /// How many [`Catalog::write_batch`] calls are worth running at once: 4 on Postgres,
    /// where they overlap on the server (`motif bench-index --writers`: 20.6k tracks/s at
    /// 1M on 2 cores against ~12k for one), 1 on SQLite, which takes one writer at a time.
    pub fn write_concurrency(&self) -> usize {
        match self {
            Catalog::Postgres(_) => 4,
            Catalog::Sqlite(_) => 1,
        }
    }

    /// Marks active tracks as taken down (one transaction, a new change sequence number
    /// each); returns the external ids that were active and are now down.
    pub async fn take_down(&self, external_ids: &[String]) -> Result<Vec<String>> {
        if external_ids.is_empty() {
            return Ok(Vec::new());
        }
        match self {
            Catalog::Postgres(p) => postgres::take_down(p, external_ids).await,
            Catalog::Sqlite(p) => sqlite::take_down(p, external_ids).await,
        }
    }

    /// The highest change sequence number written so far (0 for an empty store).
    pub async fn max_seq(&self) -> Result<i64> {
        let q = "SELECT COALESCE(MAX(change_seq), 0) FROM tracks";
        Ok(match self {
            Catalog::Postgres(p) => sqlx::query_scalar(q).fetch_one(p).await?,
            Catalog::Sqlite(p) => sqlx::query_scalar(q).fetch_one(p).await?,
        })
    }

    /// Tracks changed after `after`, oldest change first, at most `limit`: what a derived
    /// index applies to catch up. Each carries its current state (a taken-down track is a
    /// tombstone; an active one its text fields, tags, attributes and embedding).
    pub async fn changes_since(&self, after: i64, limit: i64) -> Result<Vec<Change>> {
        match self {
            Catalog::Postgres(p) => postgres::changes_since(p, after, limit).await,
            Catalog::Sqlite(p) => sqlite::changes_since(p, after, limit).await,
        }
    }

    /// One track as the store knows it (whatever its status), with its tags' scores and
    /// sources and its beat times; `None` for an unknown id.
    pub async fn track(&self, id: i64) -> Result<Option<TrackDetail>> {
        let q_change = format!(
            "SELECT {} FROM tracks t LEFT JOIN analyses a ON a.track_id = t.id WHERE t.id = $1",
            rows::CHANGE_COLUMNS
        );
        let q_extra = "SELECT t.release_date, t.isrc, t.source, t.codec, t.content_hash, \
             a.analyzer_version, t.created_at, t.updated_at \
             FROM tracks t LEFT JOIN analyses a ON a.track_id = t.id WHERE t.id = $1";
        let q_tags = "SELECT g.name, tt.score, tt.source FROM track_tags tt \
             JOIN tags g ON g.id = tt.tag_id WHERE tt.track_id = $1 ORDER BY g.name, tt.source";
        let sql = sqlx::AssertSqlSafe(q_change);
        let (row, extra, tags): (Option<rows::ChangeRow>, Option<TrackExtra>, Vec<TagLink>) =
            match self {
                Catalog::Postgres(p) => (
                    sqlx::query_as(sql).bind(id).fetch_optional(p).await?,
                    sqlx::query_as(q_extra).bind(id).fetch_optional(p).await?,
                    sqlx::query_as(q_tags).bind(id).fetch_all(p).await?,
                ),
                Catalog::Sqlite(p) => (
                    sqlx::query_as(sql).bind(id).fetch_optional(p).await?,
                    sqlx::query_as(q_extra).bind(id).fetch_optional(p).await?,
                    sqlx::query_as(q_tags).bind(id).fetch_all(p).await?,
                ),
            };
        let (Some(row), Some(extra)) = (row, extra) else {
            return Ok(None);
        };
        let names = tags.iter().map(|t| t.name.clone()).collect();
        let beats = row
            .beats
            .as_deref()
            .map(rows::f32s_from_bytes)
            .unwrap_or_default();
        Ok(Some(TrackDetail {
            beats,
            change: row.into_change(names),
            extra,
            tags,
        }))
    }

    /// Internal ids of tracks by external id (unknown ones are absent).
    pub async fn ids_by_external(&self, external_ids: &[String]) -> Result<HashMap<String, i64>> {
        let states = self.states(external_ids).await?;
        Ok(states.into_iter().map(|(k, s)| (k, s.id)).collect())
    }

    /// Every stored analysis's raw features, by track id (for refitting the normaliser).
    pub async fn all_features(&self) -> Result<Vec<(i64, Vec<f32>)>> {
        let q = "SELECT track_id, features FROM analyses ORDER BY track_id";
        let rows: Vec<(i64, Vec<u8>)> = match self {
            Catalog::Postgres(p) => sqlx::query_as(q).fetch_all(p).await?,
            Catalog::Sqlite(p) => sqlx::query_as(q).fetch_all(p).await?,
        };
        Ok(rows
            .into_iter()
            .map(|(id, b)| (id, rows::f32s_from_bytes(&b)))
            .collect())
    }

    /// Stores a new embedding space and rewrites every analysis's embedding in it (one
    /// transaction; every track with an analysis takes a new change sequence number so
    /// followers re-read it).
    pub async fn set_space(
        &self,
        normalizer: &embeddings::Normalizer,
        embeddings: &[(i64, Vec<f32>)],
    ) -> Result<()> {
        let json = serde_json::to_string(normalizer)
            .map_err(|e| CatalogError::Corrupt(format!("normaliser JSON: {e}")))?;
        match self {
            Catalog::Postgres(p) => postgres::set_space(p, normalizer, &json, embeddings).await,
            Catalog::Sqlite(p) => sqlite::set_space(p, normalizer, &json, embeddings).await,
        }
    }

    /// The newest embedding space stored by `motif reindex`, if any.
    pub async fn current_space(&self) -> Result<Option<embeddings::Normalizer>> {
        let q = "SELECT normalizer FROM embedding_spaces ORDER BY id DESC LIMIT 1";
        let json: Option<String> = match self {
            Catalog::Postgres(p) => sqlx::query_scalar(q).fetch_optional(p).await?,
            Catalog::Sqlite(p) => sqlx::query_scalar(q).fetch_optional(p).await?,
        };
        json.map(|j| {
            embeddings::Normalizer::from_json(&j)
                .map_err(|e| CatalogError::Corrupt(format!("stored normaliser: {e}")))
        })
        .transpose()
    }

    /// Opens an ingest run; runs left `running` by a killed process become `interrupted`.
    pub async fn start_run(&self, input: &str) -> Result<i64> {
        let now = rows::now_ms();
        let close = CLOSE_RUNNING;
        let open = "INSERT INTO ingest_runs (input, status, started_at) VALUES ($1, 'running', $2) RETURNING id";
        Ok(match self {
            Catalog::Postgres(p) => {
                sqlx::query(close).execute(p).await?;
                sqlx::query_scalar(open)
                    .bind(input)
                    .bind(now)
                    .fetch_one(p)
                    .await?
            }
            Catalog::Sqlite(p) => {
                sqlx::query(close).execute(p).await?;
                sqlx::query_scalar(open)
                    .bind(input)
                    .bind(now)
                    .fetch_one(p)
                    .await?
            }
        })
    }

    /// Closes a run with its counts.
    pub async fn finish_run(&self, run: i64, c: &RunCounts) -> Result<()> {
        let q =
            "UPDATE ingest_runs SET status = 'finished', finished_at = $2, seen = $3, new = $4, \
                 updated = $5, unchanged = $6, taken_down = $7, failed = $8, analysed = $9, \
                 audio_seconds = $10 WHERE id = $1";
        macro_rules! run {
            ($p:expr) => {
                bind_counts(sqlx::query(q).bind(run).bind(rows::now_ms()), c)
                    .execute($p)
                    .await?
                    .rows_affected()
            };
        }
        match self {
            Catalog::Postgres(p) => run!(p),
            Catalog::Sqlite(p) => run!(p),
        };
        Ok(())
    }

    /// A run by id.
    pub async fn run(&self, run: i64) -> Result<Option<RunRow>> {
        let q =
            "SELECT id, input, status, started_at, finished_at, seen, new, updated, unchanged, \
                 taken_down, failed, analysed, audio_seconds FROM ingest_runs WHERE id = $1";
        Ok(match self {
            Catalog::Postgres(p) => sqlx::query_as(q).bind(run).fetch_optional(p).await?,
            Catalog::Sqlite(p) => sqlx::query_as(q).bind(run).fetch_optional(p).await?,
        })
    }

    /// Records failed items of a run (one transaction). An item's earlier open errors are
    /// superseded (marked resolved), so `motif errors` shows each item's latest failure.
    pub async fn record_errors(&self, run: i64, errors: &[ItemError]) -> Result<()> {
        if errors.is_empty() {
            return Ok(());
        }
        let ids: Vec<String> = errors
            .iter()
            .filter_map(|e| e.external_id.clone())
            .collect();
        match self {
            Catalog::Postgres(p) => {
                let mut tx = p.begin().await?;
                postgres::resolve_errors(&mut *tx, &ids).await?;
                postgres::record_errors(&mut *tx, run, errors).await?;
                tx.commit().await?;
                Ok(())
            }
            Catalog::Sqlite(p) => sqlite::record_errors(p, run, errors, &ids).await,
        }
    }

    /// Marks the open errors of these external ids resolved (they went in this time).
    pub async fn resolve_errors(&self, external_ids: &[String]) -> Result<()> {
        if external_ids.is_empty() {
            return Ok(());
        }
        match self {
            Catalog::Postgres(p) => postgres::resolve_errors(p, external_ids).await,
            Catalog::Sqlite(p) => sqlite::resolve_errors(p, external_ids).await,
        }
    }

    /// Open (unresolved) errors, newest first; `run` narrows to one run.
    pub async fn open_errors(&self, run: Option<i64>, limit: i64) -> Result<Vec<ErrorRow>> {
        let q = "SELECT id, run_id, external_id, source, line, kind, message, created_at \
                 FROM ingest_errors WHERE resolved_at IS NULL AND ($1 IS NULL OR run_id = $1) \
                 ORDER BY id DESC LIMIT $2";
        Ok(match self {
            Catalog::Postgres(p) => {
                let q = "SELECT id, run_id, external_id, source, line, kind, message, created_at \
                 FROM ingest_errors WHERE resolved_at IS NULL AND ($1::BIGINT IS NULL OR run_id = $1) \
                 ORDER BY id DESC LIMIT $2";
                sqlx::query_as(q).bind(run).bind(limit).fetch_all(p).await?
            }
            Catalog::Sqlite(p) => sqlx::query_as(q).bind(run).bind(limit).fetch_all(p).await?,
        })
    }

    /// Counts of tracks by status: (active, taken down).
    pub async fn track_counts(&self) -> Result<(i64, i64)> {
        let q = "SELECT COALESCE(SUM(CASE WHEN status = 'active' THEN 1 ELSE 0 END), 0), \
                 COALESCE(SUM(CASE WHEN status = 'taken_down' THEN 1 ELSE 0 END), 0) FROM tracks";
        Ok(match self {
            Catalog::Postgres(p) => {
                let q = "SELECT COUNT(*) FILTER (WHERE status = 'active'), \
                         COUNT(*) FILTER (WHERE status = 'taken_down') FROM tracks";
                sqlx::query_as(q).fetch_one(p).await?
            }
            Catalog::Sqlite(p) => sqlx::query_as(q).fetch_one(p).await?,
        })
    }

    /// Closes the pool (waits for connections to return).
    pub async fn close(&self) {
        match self {
            Catalog::Postgres(p) => p.close().await,
            Catalog::Sqlite(p) => p.close().await,
        }
    }
}

/// Binds a run's counts as the next eight parameters, in the order of `ingest_runs`'
/// columns (`seen` ... `analysed`, `audio_seconds`), so that the statements storing them
/// (`Catalog::finish_run`, and `JobQueue::enqueue` for the planner's share) agree.
fn bind_counts<'q, DB: sqlx::Database>(
    q: sqlx::query::Query<'q, DB, DB::Arguments>,
    c: &RunCounts,
) -> sqlx::query::Query<'q, DB, DB::Arguments>
where
    for<'t> i64: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
    for<'t> f64: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
{
    q.bind(c.seen as i64)
        .bind(c.new as i64)
        .bind(c.updated as i64)
        .bind(c.unchanged as i64)
        .bind(c.taken_down as i64)
        .bind(c.failed as i64)
        .bind(c.analysed as i64)
        .bind(c.audio_seconds)
}
