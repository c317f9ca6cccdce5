//! The Postgres backend: bulk writes as `UNNEST` arrays, a handful of statements per
//! batch whatever its size, and advisory locks that order writers.

use std::collections::HashMap;
use std::sync::LazyLock;
use std::time::Duration;

use sqlx::postgres::PgPoolOptions;
use sqlx::{AssertSqlSafe, PgPool, Postgres, Transaction};

use super::rows::{self, Change, ChangeRow, ItemError, TrackState, TrackWrite, WrittenTrack};
use super::{Result, ATTRIBUTE_COLUMNS, ATTRIBUTE_COUNT};

/// Advisory lock held by an ingest run for its whole length (one run at a time).
pub(super) const RUN_LOCK_KEY: i64 = 0x6d6f_7469_6601;
/// Advisory lock taken inside every writing transaction: writers commit one after the
/// other, so change sequence numbers become visible in order and a follower reading
/// `change_seq > last` never skips a number committed late.
const WRITE_LOCK_KEY: i64 = 0x6d6f_7469_6602;
/// Tag links from which a batch goes in by COPY rather than INSERT.
const COPY_MIN_ROWS: usize = 512;

pub(super) async fn open(url: &str) -> Result<PgPool> {
    let pool = PgPoolOptions::new()
        .max_connections(8)
        .acquire_timeout(Duration::from_secs(30))
        .connect(url)
        .await?;
    // Two processes starting at once must not both apply the migrations.
    let mut conn = pool.acquire().await?;
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(RUN_LOCK_KEY + 100)
        .execute(&mut *conn)
        .await?;
    let migrated = sqlx::migrate!("../migrations/postgres")
        .run(&mut *conn)
        .await;
    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(RUN_LOCK_KEY + 100)
        .execute(&mut *conn)
        .await?;
    migrated?;
    Ok(pool)
}

pub(super) async fn lock_runs(pool: &PgPool) -> Result<super::RunLock> {
    let mut conn = pool.acquire().await?;
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(RUN_LOCK_KEY)
        .execute(&mut *conn)
        .await?;
    Ok(super::RunLock::Postgres(conn))
}

async fn begin_write(pool: &PgPool) -> Result<Transaction<'static, Postgres>> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(WRITE_LOCK_KEY)
        .execute(&mut *tx)
        .await?;
    Ok(tx)
}

pub(super) async fn states(pool: &PgPool, ids: &[String]) -> Result<Vec<TrackState>> {
    Ok(sqlx::query_as(
        "SELECT t.id, t.external_id, t.content_hash, t.meta_hash, t.status, a.analyzer_version \
         FROM tracks t LEFT JOIN analyses a ON a.track_id = t.id WHERE t.external_id = ANY($1)",
    )
    .bind(ids)
    .fetch_all(pool)
    .await?)
}

static UPSERT_ANALYSES: LazyLock<String> = LazyLock::new(|| {
    let attrs = ATTRIBUTE_COLUMNS.join(", ");
    let arrays: Vec<String> = (0..ATTRIBUTE_COLUMNS.len())
        .map(|i| format!("${}::float8[]", i + 12))
        .collect();
    let updates: Vec<String> = ATTRIBUTE_COLUMNS
        .iter()
        .map(|c| format!("{c} = EXCLUDED.{c}"))
        .collect();
    format!(
        "INSERT INTO analyses (track_id, analyzer_version, features, embedding, embedding_space, \
         sample_rate, channels, key, mode, camelot, analysed_at, {attrs}) \
         SELECT u.track_id, u.v, u.f, u.e, u.s, u.sr, u.ch, u.k, u.m, u.c, $11, {cols} \
         FROM UNNEST($1::bigint[], $2::text[], $3::bytea[], $4::bytea[], $5::text[], $6::int[], \
         $7::int[], $8::text[], $9::text[], $10::text[], {arrays}) \
         AS u(track_id, v, f, e, s, sr, ch, k, m, c, {attrs}) \
         ON CONFLICT (track_id) DO UPDATE SET analyzer_version = EXCLUDED.analyzer_version, \
         features = EXCLUDED.features, embedding = EXCLUDED.embedding, \
         embedding_space = EXCLUDED.embedding_space, sample_rate = EXCLUDED.sample_rate, \
         channels = EXCLUDED.channels, key = EXCLUDED.key, mode = EXCLUDED.mode, \
         camelot = EXCLUDED.camelot, analysed_at = EXCLUDED.analysed_at, {updates}",
        cols = ATTRIBUTE_COLUMNS
            .iter()
            .map(|c| format!("u.{c}"))
            .collect::<Vec<_>>()
            .join(", "),
        arrays = arrays.join(", "),
        updates = updates.join(", "),
    )
});

pub(super) async fn write_batch(pool: &PgPool, batch: &[TrackWrite]) -> Result<Vec<WrittenTrack>> {
    let now = rows::now_ms();
    let n = batch.len();
    let mut ext = Vec::with_capacity(n);
    let mut title = Vec::with_capacity(n);
    let mut artists = Vec::with_capacity(n);
    let mut album = Vec::with_capacity(n);
    let mut genre = Vec::with_capacity(n);
    let mut date = Vec::with_capacity(n);
    let mut year = Vec::with_capacity(n);
    let mut isrc = Vec::with_capacity(n);
    let mut duration = Vec::with_capacity(n);
    let mut source = Vec::with_capacity(n);
    let mut hash = Vec::with_capacity(n);
    let mut codec = Vec::with_capacity(n);
    let mut meta_hash = Vec::with_capacity(n);
    for w in batch {
        let m = &w.meta;
        ext.push(m.external_id.clone());
        title.push(m.title.clone());
        artists.push(serde_json::to_string(&m.artists).unwrap_or_else(|_| "[]".into()));
        album.push(m.album.clone());
        genre.push(m.genre.clone());
        date.push(m.release_date.clone());
        year.push(m.release_year);
        isrc.push(m.isrc.clone());
        duration.push(w.analysis.as_ref().map(|a| a.duration_s));
        source.push(m.source.clone());
        hash.push(w.content_hash.clone());
        codec.push(w.analysis.as_ref().map(|a| a.codec.clone()));
        meta_hash.push(w.meta_hash.clone());
    }

    let mut tx = begin_write(pool).await?;
    let written: Vec<WrittenTrack> = sqlx::query_as(
        "INSERT INTO tracks (external_id, title, artists, album, genre, release_date, release_year, \
         isrc, duration_s, source, content_hash, codec, meta_hash, status, change_seq, created_at, \
         updated_at) \
         SELECT u.*, 'active', nextval('motif_change_seq'), $14, $14 FROM UNNEST($1::text[], \
         $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::int[], $8::text[], \
         $9::float8[], $10::text[], $11::text[], $12::text[], $13::text[]) AS u \
         ON CONFLICT (external_id) DO UPDATE SET title = EXCLUDED.title, \
         artists = EXCLUDED.artists, album = EXCLUDED.album, genre = EXCLUDED.genre, \
         release_date = EXCLUDED.release_date, release_year = EXCLUDED.release_year, \
         isrc = EXCLUDED.isrc, duration_s = COALESCE(EXCLUDED.duration_s, tracks.duration_s), \
         source = EXCLUDED.source, content_hash = EXCLUDED.content_hash, \
         codec = COALESCE(EXCLUDED.codec, tracks.codec), meta_hash = EXCLUDED.meta_hash, \
         status = 'active', change_seq = EXCLUDED.change_seq, updated_at = EXCLUDED.updated_at \
         RETURNING id, external_id, change_seq, (xmax = 0) AS inserted",
    )
    .bind(&ext)
    .bind(&title)
    .bind(&artists)
    .bind(&album)
    .bind(&genre)
    .bind(&date)
    .bind(&year)
    .bind(&isrc)
    .bind(&duration)
    .bind(&source)
    .bind(&hash)
    .bind(&codec)
    .bind(&meta_hash)
    .bind(now)
    .fetch_all(&mut *tx)
    .await?;
    let id_of: HashMap<&str, i64> = written
        .iter()
        .map(|w| (w.external_id.as_str(), w.id))
        .collect();

    // Analyses.
    let analysed: Vec<(i64, &rows::AnalysisRow)> = batch
        .iter()
        .filter_map(|w| {
            let a = w.analysis.as_ref()?;
            Some((*id_of.get(w.meta.external_id.as_str())?, a))
        })
        .collect();
    if !analysed.is_empty() {
        let mut q = sqlx::query(AssertSqlSafe(UPSERT_ANALYSES.as_str()))
            .bind(analysed.iter().map(|(id, _)| *id).collect::<Vec<i64>>())
            .bind(
                analysed
                    .iter()
                    .map(|(_, a)| a.analyzer_version.clone())
                    .collect::<Vec<_>>(),
            )
            .bind(
                analysed
                    .iter()
                    .map(|(_, a)| rows::f32s_to_bytes(&a.features))
                    .collect::<Vec<_>>(),
            )
            .bind(
                analysed
                    .iter()
                    .map(|(_, a)| rows::f32s_to_bytes(&a.embedding))
                    .collect::<Vec<_>>(),
            )
            .bind(
                analysed
                    .iter()
                    .map(|(_, a)| a.embedding_space.clone())
                    .collect::<Vec<_>>(),
            )
            .bind(
                analysed
                    .iter()
                    .map(|(_, a)| a.sample_rate)
                    .collect::<Vec<_>>(),
            )
            .bind(analysed.iter().map(|(_, a)| a.channels).collect::<Vec<_>>())
            .bind(
                analysed
                    .iter()
                    .map(|(_, a)| a.attributes.key.name().to_string())
                    .collect::<Vec<_>>(),
            )
            .bind(
                analysed
                    .iter()
                    .map(|(_, a)| a.attributes.mode.name().to_string())
                    .collect::<Vec<_>>(),
            )
            .bind(
                analysed
                    .iter()
                    .map(|(_, a)| a.attributes.camelot.clone())
                    .collect::<Vec<_>>(),
            )
            .bind(now);
        let values: Vec<[f64; ATTRIBUTE_COUNT]> = analysed
            .iter()
            .map(|(_, a)| rows::attribute_values(&a.attributes))
            .collect();
        for col in 0..ATTRIBUTE_COLUMNS.len() {
            q = q.bind(values.iter().map(|v| v[col]).collect::<Vec<f64>>());
        }
        q.execute(&mut *tx).await?;
    }

    // Tags: catalogue tags are replaced on every write, analysis tags when re-analysed
    // (a freshly inserted track has none to replace).
    let updated: std::collections::HashSet<i64> = written
        .iter()
        .filter(|w| !w.inserted)
        .map(|w| w.id)
        .collect();
    let all_ids: Vec<i64> = updated.iter().copied().collect();
    if !all_ids.is_empty() {
        sqlx::query("DELETE FROM track_tags WHERE track_id = ANY($1) AND source = 'catalog'")
            .bind(&all_ids)
            .execute(&mut *tx)
            .await?;
    }
    let analysed_ids: Vec<i64> = analysed
        .iter()
        .map(|(id, _)| *id)
        .filter(|id| updated.contains(id))
        .collect();
    if !analysed_ids.is_empty() {
        sqlx::query("DELETE FROM track_tags WHERE track_id = ANY($1) AND source = 'analysis'")
            .bind(&analysed_ids)
            .execute(&mut *tx)
            .await?;
    }
    // (track, tag, source) -> score, deduplicated per key.
    let mut links: Vec<(i64, &str, &'static str, f64)> = Vec::new();
    for w in batch {
        let Some(&id) = id_of.get(w.meta.external_id.as_str()) else {
            continue;
        };
        for t in &w.meta.tags {
            links.push((id, t.as_str(), "catalog", 1.0));
        }
        if let Some(a) = &w.analysis {
            for t in &a.tags {
                links.push((id, t.name.as_str(), "analysis", t.score));
            }
        }
    }
    links.sort_by(|a, b| (a.0, a.1, a.2).cmp(&(b.0, b.1, b.2)));
    links.dedup_by(|a, b| (a.0, a.1, a.2) == (b.0, b.1, b.2));
    if !links.is_empty() {
        let mut names: Vec<&str> = links.iter().map(|l| l.1).collect();
        names.sort_unstable();
        names.dedup();
        let facets: Vec<&str> = names.iter().map(|n| rows::facet_of(n)).collect();
        sqlx::query(
            "INSERT INTO tags (name, facet) SELECT * FROM UNNEST($1::text[], $2::text[]) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(&names)
        .bind(&facets)
        .execute(&mut *tx)
        .await?;
        let tag_ids: Vec<(i64, String)> =
            sqlx::query_as("SELECT id, name FROM tags WHERE name = ANY($1)")
                .bind(&names)
                .fetch_all(&mut *tx)
                .await?;
        let tag_id: HashMap<String, i64> = tag_ids.into_iter().map(|(i, n)| (n, i)).collect();
        // Old links of updated tracks were deleted above, so every row is new: COPY is the
        // cheapest way in for a big batch (~3x faster than INSERT ... UNNEST here), but a
        // COPY round trip costs ~40 ms on its own, so small batches use the INSERT.
        if links.len() >= COPY_MIN_ROWS {
            let mut text = String::with_capacity(links.len() * 32);
            for (track, tag, src, score) in &links {
                use std::fmt::Write;
                let _ = writeln!(text, "{track}\t{}\t{score}\t{src}", tag_id[*tag]);
            }
            let mut copy = tx
                .copy_in_raw("COPY track_tags (track_id, tag_id, score, source) FROM STDIN")
                .await?;
            copy.send(text.into_bytes()).await?;
            copy.finish().await?;
        } else {
            sqlx::query(
                "INSERT INTO track_tags (track_id, tag_id, score, source) \
                 SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::float8[], $4::text[]) \
                 ON CONFLICT (track_id, tag_id, source) DO UPDATE SET score = EXCLUDED.score",
            )
            .bind(links.iter().map(|l| l.0).collect::<Vec<i64>>())
            .bind(links.iter().map(|l| tag_id[l.1]).collect::<Vec<i64>>())
            .bind(links.iter().map(|l| l.3).collect::<Vec<f64>>())
            .bind(links.iter().map(|l| l.2).collect::<Vec<&str>>())
            .execute(&mut *tx)
            .await?;
        }
    }
    tx.commit().await?;
    Ok(written)
}

pub(super) async fn take_down(pool: &PgPool, ids: &[String]) -> Result<Vec<String>> {
    let mut tx = begin_write(pool).await?;
    let down: Vec<String> = sqlx::query_scalar(
        "UPDATE tracks SET status = 'taken_down', change_seq = nextval('motif_change_seq'), \
         updated_at = $2 WHERE external_id = ANY($1) AND status = 'active' RETURNING external_id",
    )
    .bind(ids)
    .bind(rows::now_ms())
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(down)
}

pub(super) async fn changes_since(pool: &PgPool, after: i64, limit: i64) -> Result<Vec<Change>> {
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
         WHERE tt.track_id = ANY($1) ORDER BY 1, 2",
    )
    .bind(&ids)
    .fetch_all(pool)
    .await?;
    Ok(rows::attach_tags(rows, tag_rows))
}

pub(super) async fn set_space(
    pool: &PgPool,
    n: &embeddings::Normalizer,
    json: &str,
    embeddings: &[(i64, Vec<f32>)],
) -> Result<()> {
    let mut tx = begin_write(pool).await?;
    sqlx::query(
        "INSERT INTO embedding_spaces (version, normalizer, created_at) VALUES ($1, $2, $3) \
         ON CONFLICT (version) DO UPDATE SET normalizer = EXCLUDED.normalizer",
    )
    .bind(&n.version)
    .bind(json)
    .bind(rows::now_ms())
    .execute(&mut *tx)
    .await?;
    for chunk in embeddings.chunks(10_000) {
        let ids: Vec<i64> = chunk.iter().map(|(i, _)| *i).collect();
        let vecs: Vec<Vec<u8>> = chunk.iter().map(|(_, e)| rows::f32s_to_bytes(e)).collect();
        sqlx::query(
            "UPDATE analyses a SET embedding = u.e, embedding_space = $3 \
             FROM UNNEST($1::bigint[], $2::bytea[]) AS u(id, e) WHERE a.track_id = u.id",
        )
        .bind(&ids)
        .bind(&vecs)
        .bind(&n.version)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE tracks SET change_seq = nextval('motif_change_seq') WHERE id = ANY($1)",
        )
        .bind(&ids)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

pub(super) async fn record_errors(pool: &PgPool, run: i64, errors: &[ItemError]) -> Result<()> {
    sqlx::query(
        "INSERT INTO ingest_errors (run_id, external_id, source, line, kind, message, created_at) \
         SELECT $1, u.x, u.s, u.l, u.k, u.m, $7 FROM UNNEST($2::text[], $3::text[], $4::bigint[], \
         $5::text[], $6::text[]) AS u(x, s, l, k, m)",
    )
    .bind(run)
    .bind(
        errors
            .iter()
            .map(|e| e.external_id.clone())
            .collect::<Vec<_>>(),
    )
    .bind(errors.iter().map(|e| e.source.clone()).collect::<Vec<_>>())
    .bind(errors.iter().map(|e| e.line).collect::<Vec<_>>())
    .bind(errors.iter().map(|e| e.kind.clone()).collect::<Vec<_>>())
    .bind(errors.iter().map(|e| e.message.clone()).collect::<Vec<_>>())
    .bind(rows::now_ms())
    .execute(pool)
    .await?;
    Ok(())
}

pub(super) async fn resolve_errors(pool: &PgPool, ids: &[String]) -> Result<()> {
    sqlx::query(
        "UPDATE ingest_errors SET resolved_at = $2 WHERE resolved_at IS NULL AND external_id = ANY($1)",
    )
    .bind(ids)
    .bind(rows::now_ms())
    .execute(pool)
    .await?;
    Ok(())
}
