//! The SQLite backend (the embedded default): WAL mode, one `BEGIN IMMEDIATE` transaction
//! per batch, multi-row `INSERT`s for tracks and analyses, and lists passed as JSON arrays
//! through `json_each`.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{AssertSqlSafe, Sqlite, SqliteExecutor, SqlitePool, Transaction};

use super::rows::{self, Change, ChangeRow, ItemError, TrackState, TrackWrite, WrittenTrack};
use super::{CatalogError, Result, ATTRIBUTE_COLUMNS, TRACKS_ON_CONFLICT};

fn options() -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(60))
}

pub(super) async fn open(path: &Path) -> Result<SqlitePool> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| CatalogError::Sql(sqlx::Error::Io(e)))?;
    }
    let pool = SqlitePoolOptions::new()
        .max_connections(4)
        .connect_with(options().filename(path).create_if_missing(true))
        .await?;
    sqlx::migrate!("../migrations/sqlite").run(&pool).await?;
    Ok(pool)
}

pub(super) async fn open_memory() -> Result<SqlitePool> {
    // Each connection to :memory: is its own database: keep exactly one.
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(
            options()
                .in_memory(true)
                .journal_mode(SqliteJournalMode::Memory),
        )
        .await?;
    sqlx::migrate!("../migrations/sqlite").run(&pool).await?;
    Ok(pool)
}

async fn begin_write(pool: &SqlitePool) -> Result<Transaction<'static, Sqlite>> {
    // IMMEDIATE takes the write lock up front: a deferred transaction that reads and then
    // writes can fail with SQLITE_BUSY when another writer got in between.
    Ok(pool.begin_with("BEGIN IMMEDIATE").await?)
}

fn json_list<T: serde::Serialize>(items: &[T]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".into())
}

pub(super) async fn states(pool: &SqlitePool, ids: &[String]) -> Result<Vec<TrackState>> {
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(10_000) {
        let mut rows: Vec<TrackState> = sqlx::query_as(
            "SELECT t.id, t.external_id, t.content_hash, t.meta_hash, t.status, a.analyzer_version \
             FROM tracks t LEFT JOIN analyses a ON a.track_id = t.id \
             WHERE t.external_id IN (SELECT value FROM json_each($1))",
        )
        .bind(json_list(chunk))
        .fetch_all(pool)
        .await?;
        out.append(&mut rows);
    }
    Ok(out)
}

async fn next_seq(tx: &mut Transaction<'static, Sqlite>) -> Result<i64> {
    let max: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(change_seq), 0) FROM tracks")
        .fetch_one(&mut **tx)
        .await?;
    Ok(max + 1)
}

/// Rows per multi-row `INSERT`: 500 analyses take 14,000 parameters, under SQLite's
/// limit of 32,766. One statement per row cost a thread switch each (sqlx runs SQLite on
/// its own thread), which on a VM with slow switches held writes to ~2,500 tracks/s.
const ROWS_PER_STATEMENT: usize = 500;

/// `(?, ..., ?), (...), ...` for `rows` rows of `row`, whose `{params}` stands for
/// `per_row` parameters. Anonymous parameters, bound in order: SQLite looks a numbered or
/// named one up by scanning a list, which made a 14,000-parameter statement quadratic.
fn values_list(rows: usize, per_row: usize, row: &str) -> String {
    let one = row.replace("{params}", &vec!["?"; per_row].join(", "));
    vec![one; rows].join(", ")
}

fn upsert_tracks_sql(rows: usize) -> String {
    format!(
        "INSERT INTO tracks (external_id, title, artists, album, genre, release_date, \
         release_year, isrc, duration_s, source, content_hash, codec, meta_hash, change_seq, \
         created_at, updated_at, status) VALUES {} {TRACKS_ON_CONFLICT} \
         RETURNING id, external_id, change_seq, 0 AS inserted",
        values_list(rows, 16, "({params}, 'active')")
    )
}

fn upsert_analyses_sql(rows: usize) -> String {
    let attrs = ATTRIBUTE_COLUMNS.join(", ");
    let updates: Vec<String> = ATTRIBUTE_COLUMNS
        .iter()
        .map(|c| format!("{c} = excluded.{c}"))
        .collect();
    format!(
        "INSERT INTO analyses (track_id, analyzer_version, features, embedding, embedding_space, \
         sample_rate, channels, key, mode, camelot, {attrs}, analysed_at, beats, fingerprint, \
         fine_fingerprint) \
         VALUES {} \
         ON CONFLICT (track_id) DO UPDATE SET analyzer_version = excluded.analyzer_version, \
         features = excluded.features, embedding = excluded.embedding, \
         embedding_space = excluded.embedding_space, sample_rate = excluded.sample_rate, \
         channels = excluded.channels, key = excluded.key, mode = excluded.mode, \
         camelot = excluded.camelot, analysed_at = excluded.analysed_at, \
         beats = excluded.beats, fingerprint = excluded.fingerprint, \
         fine_fingerprint = excluded.fine_fingerprint, {updates}",
        values_list(rows, 14 + ATTRIBUTE_COLUMNS.len(), "({params})"),
        updates = updates.join(", "),
    )
}

pub(super) async fn write_batch(
    pool: &SqlitePool,
    batch: &[TrackWrite],
) -> Result<Vec<WrittenTrack>> {
    let now = rows::now_ms();
    let mut tx = begin_write(pool).await?;
    let first_seq = next_seq(&mut tx).await?;
    let mut written = Vec::with_capacity(batch.len());
    for (c, chunk) in batch.chunks(ROWS_PER_STATEMENT).enumerate() {
        let sql = upsert_tracks_sql(chunk.len());
        let mut q = sqlx::query_as::<_, WrittenTrack>(AssertSqlSafe(sql));
        for (k, w) in chunk.iter().enumerate() {
            let m = &w.meta;
            q = q
                .bind(&m.external_id)
                .bind(&m.title)
                .bind(serde_json::to_string(&m.artists).unwrap_or_else(|_| "[]".into()))
                .bind(&m.album)
                .bind(&m.genre)
                .bind(&m.release_date)
                .bind(m.release_year)
                .bind(&m.isrc)
                .bind(w.analysis.as_ref().map(|a| a.duration_s))
                .bind(&m.source)
                .bind(&w.content_hash)
                .bind(w.analysis.as_ref().map(|a| a.codec.clone()))
                .bind(&w.meta_hash)
                .bind(first_seq + (c * ROWS_PER_STATEMENT + k) as i64)
                .bind(now)
                .bind(now);
        }
        let rows: Vec<WrittenTrack> = q.fetch_all(&mut *tx).await?;
        // RETURNING order is not promised: put the rows back in batch order.
        let mut by_ext: HashMap<String, WrittenTrack> = rows
            .into_iter()
            .map(|w| (w.external_id.clone(), w))
            .collect();
        for w in chunk {
            let row = by_ext.remove(&w.meta.external_id).ok_or_else(|| {
                CatalogError::Corrupt(format!("no row returned for {}", w.meta.external_id))
            })?;
            written.push(row);
        }
    }

    let analysed: Vec<(i64, &rows::AnalysisRow)> = batch
        .iter()
        .zip(&written)
        .filter_map(|(w, row)| Some((row.id, w.analysis.as_ref()?)))
        .collect();
    for chunk in analysed.chunks(ROWS_PER_STATEMENT) {
        let sql = upsert_analyses_sql(chunk.len());
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for (id, a) in chunk {
            q = q
                .bind(*id)
                .bind(&a.analyzer_version)
                .bind(rows::f32s_to_bytes(&a.features))
                .bind(rows::f32s_to_bytes(&a.embedding))
                .bind(&a.embedding_space)
                .bind(a.sample_rate)
                .bind(a.channels)
                .bind(a.attributes.key.name())
                .bind(a.attributes.mode.name())
                .bind(&a.attributes.camelot);
            for v in rows::attribute_values(&a.attributes) {
                q = q.bind(v);
            }
            q = q
                .bind(now)
                .bind(rows::f32s_to_bytes(&a.beats))
                .bind(rows::u32s_to_bytes(&a.fingerprint))
                .bind(rows::u32s_to_bytes(&a.fine_fingerprint));
        }
        q.execute(&mut *tx).await?;
    }
    let analysed_ids: Vec<i64> = analysed.iter().map(|(id, _)| *id).collect();
    let mut links: Vec<(i64, &str, &'static str, f64)> = Vec::new();
    for (w, row) in batch.iter().zip(&written) {
        if let Some(a) = &w.analysis {
            for t in &a.tags {
                links.push((row.id, t.name.as_str(), "analysis", t.score));
            }
        }
        for t in &w.meta.tags {
            links.push((row.id, t.as_str(), "catalog", 1.0));
        }
    }

    // Tags for the whole batch in a few statements (lists as JSON through json_each).
    let all_ids: Vec<i64> = written.iter().map(|w| w.id).collect();
    sqlx::query(
        "DELETE FROM track_tags WHERE source = 'catalog' \
         AND track_id IN (SELECT value FROM json_each($1))",
    )
    .bind(json_list(&all_ids))
    .execute(&mut *tx)
    .await?;
    if !analysed_ids.is_empty() {
        sqlx::query(
            "DELETE FROM track_tags WHERE source = 'analysis' \
             AND track_id IN (SELECT value FROM json_each($1))",
        )
        .bind(json_list(&analysed_ids))
        .execute(&mut *tx)
        .await?;
    }
    links.sort_by(|a, b| (a.0, a.1, a.2).cmp(&(b.0, b.1, b.2)));
    links.dedup_by(|a, b| (a.0, a.1, a.2) == (b.0, b.1, b.2));
    if !links.is_empty() {
        let mut names: Vec<&str> = links.iter().map(|l| l.1).collect();
        names.sort_unstable();
        names.dedup();
        let pairs: Vec<(&str, &str)> = names.iter().map(|n| (*n, rows::facet_of(n))).collect();
        sqlx::query(
            "INSERT INTO tags (name, facet) SELECT json_extract(value, '$[0]'), \
             json_extract(value, '$[1]') FROM json_each($1) WHERE true \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(json_list(&pairs))
        .execute(&mut *tx)
        .await?;
        let tag_ids: Vec<(i64, String)> = sqlx::query_as(
            "SELECT id, name FROM tags WHERE name IN (SELECT value FROM json_each($1))",
        )
        .bind(json_list(&names))
        .fetch_all(&mut *tx)
        .await?;
        let tag_id: HashMap<String, i64> = tag_ids.into_iter().map(|(i, n)| (n, i)).collect();
        let rows: Vec<(i64, i64, f64, &str)> = links
            .iter()
            .map(|(t, name, src, score)| (*t, tag_id[*name], *score, *src))
            .collect();
        sqlx::query(
            "INSERT INTO track_tags (track_id, tag_id, score, source) \
             SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), \
             json_extract(value, '$[2]'), json_extract(value, '$[3]') FROM json_each($1) \
             WHERE true ON CONFLICT (track_id, tag_id, source) DO UPDATE SET score = excluded.score",
        )
        .bind(json_list(&rows))
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(written)
}

/// Takes down the active tracks among `ids` in one statement per 10,000 ids, each with a
/// change number of its own (in track-id order).
pub(super) async fn take_down(pool: &SqlitePool, ids: &[String]) -> Result<Vec<String>> {
    let mut tx = begin_write(pool).await?;
    let mut seq = next_seq(&mut tx).await?;
    let now = rows::now_ms();
    let mut down = Vec::new();
    for chunk in ids.chunks(10_000) {
        let mut hit: Vec<String> = sqlx::query_scalar(
            "UPDATE tracks SET status = 'taken_down', change_seq = $2 + d.n - 1, updated_at = $3 \
             FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM tracks \
                   WHERE status = 'active' AND external_id IN (SELECT value FROM json_each($1))) AS d \
             WHERE tracks.id = d.id RETURNING external_id",
        )
        .bind(json_list(chunk))
        .bind(seq)
        .bind(now)
        .fetch_all(&mut *tx)
        .await?;
        seq += hit.len() as i64;
        down.append(&mut hit);
    }
    tx.commit().await?;
    Ok(down)
}

pub(super) async fn changes_since(
    pool: &SqlitePool,
    after: i64,
    limit: i64,
) -> Result<Vec<Change>> {
    let rows: Vec<ChangeRow> = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT {} FROM tracks t LEFT JOIN analyses a ON a.track_id = t.id \
         WHERE t.change_seq > $1 ORDER BY t.change_seq LIMIT $2",
        rows::CHANGE_COLUMNS
    )))
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let tag_rows: Vec<(i64, String)> = sqlx::query_as(
        "SELECT DISTINCT tt.track_id, g.name FROM track_tags tt JOIN tags g ON g.id = tt.tag_id \
         WHERE tt.track_id IN (SELECT value FROM json_each($1)) ORDER BY 1, 2",
    )
    .bind(json_list(&ids))
    .fetch_all(pool)
    .await?;
    Ok(rows::attach_tags(rows, tag_rows))
}

pub(super) async fn set_space(
    pool: &SqlitePool,
    n: &embeddings::Normalizer,
    json: &str,
    embeddings: &[(i64, Vec<f32>)],
) -> Result<()> {
    let mut tx = begin_write(pool).await?;
    sqlx::query(
        "INSERT INTO embedding_spaces (version, normalizer, created_at) VALUES ($1, $2, $3) \
         ON CONFLICT (version) DO UPDATE SET normalizer = excluded.normalizer",
    )
    .bind(&n.version)
    .bind(json)
    .bind(rows::now_ms())
    .execute(&mut *tx)
    .await?;
    let mut seq = next_seq(&mut tx).await?;
    for (id, e) in embeddings {
        sqlx::query("UPDATE analyses SET embedding = $2, embedding_space = $3 WHERE track_id = $1")
            .bind(id)
            .bind(rows::f32s_to_bytes(e))
            .bind(&n.version)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE tracks SET change_seq = $2 WHERE id = $1")
            .bind(id)
            .bind(seq)
            .execute(&mut *tx)
            .await?;
        seq += 1;
    }
    tx.commit().await?;
    Ok(())
}

/// Resolves the items' earlier open errors and inserts the new ones in one transaction.
pub(super) async fn record_errors(
    pool: &SqlitePool,
    run: i64,
    errors: &[ItemError],
    superseded: &[String],
) -> Result<()> {
    let mut tx = pool.begin().await?;
    resolve_errors(&mut *tx, superseded).await?;
    let now = rows::now_ms();
    for e in errors {
        sqlx::query(
            "INSERT INTO ingest_errors (run_id, external_id, source, line, kind, message, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(run)
        .bind(&e.external_id)
        .bind(&e.source)
        .bind(e.line)
        .bind(&e.kind)
        .bind(&e.message)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Marks the open errors of these external ids resolved; any executor, so that
/// [`record_errors`] can do it in its own transaction.
pub(super) async fn resolve_errors<'e>(db: impl SqliteExecutor<'e>, ids: &[String]) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "UPDATE ingest_errors SET resolved_at = $2 WHERE resolved_at IS NULL \
         AND external_id IN (SELECT value FROM json_each($1))",
    )
    .bind(json_list(ids))
    .bind(rows::now_ms())
    .execute(db)
    .await?;
    Ok(())
}
