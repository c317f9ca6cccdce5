//! The Postgres backend: bulk writes as `UNNEST` arrays, a handful of statements per
//! batch whatever its size, and advisory locks that order writers. Since migration 0002
//! an analysis's tags are arrays on its row and `track_tags` is a view (see there).

use std::collections::HashMap;
use std::sync::LazyLock;

use sqlx::postgres::PgPoolOptions;
use sqlx::{AssertSqlSafe, PgExecutor, PgPool, Postgres, Transaction};

use super::rows::{self, Change, ChangeRow, ItemError, TrackState, TrackWrite, WrittenTrack};
use super::{Result, ATTRIBUTE_COLUMNS, ATTRIBUTE_COUNT, TRACKS_ON_CONFLICT};

/// Advisory lock held by an ingest run for its whole length (one run at a time).
pub(super) const RUN_LOCK_KEY: i64 = 0x6d6f_7469_6601;
/// Advisory lock taken inside every writing transaction: writers commit one after the
/// other, so change sequence numbers become visible in order and a follower reading
/// `change_seq > last` never skips a number committed late.
const WRITE_LOCK_KEY: i64 = 0x6d6f_7469_6602;
/// Tag links from which a batch goes in by COPY rather than INSERT.
const COPY_MIN_ROWS: usize = 512;

pub(super) async fn open(url: &str, pool: super::PoolSize) -> Result<PgPool> {
    let pool = PgPoolOptions::new()
        .max_connections(pool.max_connections)
        .acquire_timeout(pool.acquire_timeout)
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

/// A pool on a streaming replica (a hot standby): read only, so no migrations; the
/// schema must have arrived from the primary already (open the primary first).
pub(super) async fn open_replica(url: &str, pool: super::PoolSize) -> Result<PgPool> {
    let pool = PgPoolOptions::new()
        .max_connections(pool.max_connections)
        .acquire_timeout(pool.acquire_timeout)
        .connect(url)
        .await?;
    let want = sqlx::migrate!("../migrations/postgres").iter().count() as i64;
    let have: Option<i64> = sqlx::query_scalar(
        "SELECT COUNT(*) FROM _sqlx_migrations WHERE success          AND to_regclass('_sqlx_migrations') IS NOT NULL",
    )
    .fetch_one(&pool)
    .await
    .ok();
    if have.unwrap_or(0) < want {
        return Err(super::CatalogError::Corrupt(format!(
            "the replica has {} of the schema's {want} migrations: is it a replica of this \
             primary, and has it caught up?",
            have.unwrap_or(0)
        )));
    }
    Ok(pool)
}

/// How far `replica` is behind `primary`: bytes of WAL not yet replayed, and the age of
/// the last replayed transaction when some remain (0 when it has replayed everything:
/// an idle primary writes no transactions to be late for).
pub(super) async fn replica_lag(replica: &PgPool, primary: &PgPool) -> Result<super::ReplicaLag> {
    let (in_recovery, replayed, age): (bool, Option<String>, Option<f64>) = sqlx::query_as(
        "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text, \
         EXTRACT(EPOCH FROM (clock_timestamp() - pg_last_xact_replay_timestamp()))::float8",
    )
    .fetch_one(replica)
    .await?;
    let Some(replayed) = replayed.filter(|_| in_recovery) else {
        // Not a standby (the primary itself, say): nothing to be behind.
        return Ok(super::ReplicaLag {
            in_recovery,
            bytes: 0,
            seconds: 0.0,
        });
    };
    let bytes: f64 =
        sqlx::query_scalar("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1::pg_lsn)::float8")
            .bind(&replayed)
            .fetch_one(primary)
            .await?;
    let bytes = bytes.max(0.0) as i64;
    Ok(super::ReplicaLag {
        in_recovery,
        bytes,
        seconds: if bytes > 0 {
            age.unwrap_or(0.0).max(0.0)
        } else {
            0.0
        },
    })
}

pub(super) async fn lock_runs(pool: &PgPool) -> Result<super::RunLock> {
    let mut conn = pool.acquire().await?;
    // The lock belongs to the session: a run dropped before `release` (a request whose
    // client went away) must not hand a connection still holding it back to the pool.
    conn.close_on_drop();
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(RUN_LOCK_KEY)
        .execute(&mut *conn)
        .await?;
    Ok(super::RunLock::Postgres(conn))
}

/// The run lock if no run holds it now (`None` otherwise).
pub(super) async fn try_lock_runs(pool: &PgPool) -> Result<Option<super::RunLock>> {
    let mut conn = pool.acquire().await?;
    conn.close_on_drop();
    let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(RUN_LOCK_KEY)
        .fetch_one(&mut *conn)
        .await?;
    Ok(got.then_some(super::RunLock::Postgres(conn)))
}

async fn begin_write(pool: &PgPool) -> Result<Transaction<'static, Postgres>> {
    let mut tx = pool.begin().await?;
    lock_writes(&mut tx).await?;
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
        .map(|i| format!("${}::float8[]", i + 17))
        .collect();
    let updates: Vec<String> = ATTRIBUTE_COLUMNS
        .iter()
        .map(|c| format!("{c} = EXCLUDED.{c}"))
        .collect();
    format!(
        "INSERT INTO analyses (track_id, analyzer_version, features, embedding, embedding_space, \
         sample_rate, channels, key, mode, camelot, tag_ids, tag_scores, analysed_at, beats, \
         fingerprint, fine_fingerprint, {attrs}) \
         SELECT u.track_id, u.v, u.f, u.e, u.s, u.sr, u.ch, u.k, u.m, u.c, u.ti::bigint[], \
         u.ts::float8[], $13, u.b, u.fp, u.ffp, {cols} \
         FROM UNNEST($1::bigint[], $2::text[], $3::bytea[], $4::bytea[], $5::text[], $6::int[], \
         $7::int[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $14::bytea[], \
         $15::bytea[], $16::bytea[], {arrays}) \
         AS u(track_id, v, f, e, s, sr, ch, k, m, c, ti, ts, b, fp, ffp, {attrs}) \
         ON CONFLICT (track_id) DO UPDATE SET analyzer_version = EXCLUDED.analyzer_version, \
         features = EXCLUDED.features, embedding = EXCLUDED.embedding, \
         embedding_space = EXCLUDED.embedding_space, sample_rate = EXCLUDED.sample_rate, \
         channels = EXCLUDED.channels, key = EXCLUDED.key, mode = EXCLUDED.mode, \
         camelot = EXCLUDED.camelot, tag_ids = EXCLUDED.tag_ids, \
         tag_scores = EXCLUDED.tag_scores, analysed_at = EXCLUDED.analysed_at, \
         beats = EXCLUDED.beats, fingerprint = EXCLUDED.fingerprint, \
         fine_fingerprint = EXCLUDED.fine_fingerprint, {updates}",
        cols = ATTRIBUTE_COLUMNS
            .iter()
            .map(|c| format!("u.{c}"))
            .collect::<Vec<_>>()
            .join(", "),
        arrays = arrays.join(", "),
        updates = updates.join(", "),
    )
});

static UPSERT_TRACKS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO tracks (id, external_id, title, artists, album, genre, release_date, \
         release_year, isrc, duration_s, source, content_hash, codec, meta_hash, status, \
         change_seq, created_at, updated_at) \
         SELECT u.*, 'active', nextval('motif_change_seq'), $15, $15 FROM UNNEST($1::bigint[], \
         $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::int[], \
         $9::text[], $10::float8[], $11::text[], $12::text[], $13::text[], $14::text[]) AS u \
         {TRACKS_ON_CONFLICT} \
         RETURNING id, external_id, change_seq, (xmax = 0) AS inserted"
    )
});

/// When a batch takes the write lock.
#[derive(Clone, Copy, PartialEq, Debug)]
pub(super) enum Locking {
    /// Just before the tracks upsert, which draws the change numbers, until the commit.
    /// Tags, analyses and links are written before it, so two writers overlap their
    /// work on two server processes and only the last step is taken in turn. Ids of new
    /// tracks are drawn up front and checked against what the upsert returns.
    Late,
    /// First: nothing can race. The retry of a batch that lost a race for a new track.
    Early,
}

/// Writes one batch in one transaction. Safe to call from several tasks at once: batches
/// then overlap everything but their tracks upsert and commit (see [`Locking`]).
pub(super) async fn write_batch(pool: &PgPool, batch: &[TrackWrite]) -> Result<Vec<WrittenTrack>> {
    match write_batch_locking(pool, batch, Locking::Late).await {
        Ok(Some(written)) => return Ok(written),
        // Another writer inserted one of these new tracks while this batch was writing
        // its analyses under an id of its own: that transaction was rolled back.
        Ok(None) => {}
        // Two writers updating the same stored tracks in different orders (two processes
        // over one database; one run never splits a track over two batches): Postgres
        // broke the deadlock by rolling this one back.
        Err(super::CatalogError::Sql(sqlx::Error::Database(e)))
            if e.code().as_deref() == Some("40P01") => {}
        Err(e) => return Err(e),
    }
    // Again, holding the lock throughout: nothing can race then.
    write_batch_locking(pool, batch, Locking::Early)
        .await?
        .ok_or_else(|| {
            super::CatalogError::Corrupt(
                "a track id changed while the write lock was held".to_string(),
            )
        })
}

/// One attempt; `None` when the tracks upsert found a track inserted meanwhile by
/// another writer under a different id (the transaction is rolled back).
async fn write_batch_locking(
    pool: &PgPool,
    batch: &[TrackWrite],
    locking: Locking,
) -> Result<Option<Vec<WrittenTrack>>> {
    let mut tx = pool.begin().await?;
    match write_in_tx(&mut tx, batch, locking).await? {
        Some(written) => {
            tx.commit().await?;
            Ok(Some(written))
        }
        None => {
            tx.rollback().await?;
            Ok(None)
        }
    }
}

/// The writes of one batch inside a transaction the caller opened and commits (the work
/// queue adds its jobs' completion to it); `None` when the batch lost a race for a new
/// track id (see [`Locking`]) and the caller must roll back.
pub(super) async fn write_in_tx(
    tx: &mut Transaction<'static, Postgres>,
    batch: &[TrackWrite],
    locking: Locking,
) -> Result<Option<Vec<WrittenTrack>>> {
    let now = rows::now_ms();
    if batch.is_empty() {
        return Ok(Some(Vec::new()));
    }
    if locking == Locking::Early {
        lock_writes(tx).await?;
    }

    // Tag ids for every tag of the batch (new names inserted; sorted, so that two writers
    // adding the same new names wait for each other instead of deadlocking).
    let mut names: Vec<&str> = batch
        .iter()
        .flat_map(|w| {
            let analysis = w.analysis.iter().flat_map(|a| a.tags.iter());
            w.meta
                .tags
                .iter()
                .map(String::as_str)
                .chain(analysis.map(|t| t.name.as_str()))
        })
        .collect();
    names.sort_unstable();
    names.dedup();
    let tag_id: HashMap<String, i64> = if names.is_empty() {
        HashMap::new()
    } else {
        let facets: Vec<&str> = names.iter().map(|n| rows::facet_of(n)).collect();
        sqlx::query(
            "INSERT INTO tags (name, facet) SELECT * FROM UNNEST($1::text[], $2::text[]) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(&names)
        .bind(&facets)
        .execute(&mut **tx)
        .await?;
        let found: Vec<(i64, String)> =
            sqlx::query_as("SELECT id, name FROM tags WHERE name = ANY($1)")
                .bind(&names)
                .fetch_all(&mut **tx)
                .await?;
        found.into_iter().map(|(i, n)| (n, i)).collect()
    };

    // Track ids: the stored one, or a new one drawn from the table's own sequence.
    let ext: Vec<&str> = batch.iter().map(|w| w.meta.external_id.as_str()).collect();
    let ids: Vec<(i64, bool)> = sqlx::query_as(
        "SELECT COALESCE(t.id, nextval('tracks_id_seq')), t.id IS NULL \
         FROM UNNEST($1::text[]) WITH ORDINALITY AS u(ext, ord) \
         LEFT JOIN tracks t ON t.external_id = u.ext ORDER BY u.ord",
    )
    .bind(&ext)
    .fetch_all(&mut **tx)
    .await?;
    if ids.len() != batch.len() {
        return Err(super::CatalogError::Corrupt(format!(
            "{} ids for {} tracks",
            ids.len(),
            batch.len()
        )));
    }

    write_analyses(tx, batch, &ids, &tag_id, now).await?;
    write_catalog_links(tx, batch, &ids, &tag_id).await?;

    // Last, the tracks themselves, drawing change numbers in commit order.
    if locking == Locking::Late {
        lock_writes(tx).await?;
    }
    let written = upsert_tracks(tx, batch, &ids, now).await?;
    let raced =
        written.len() != ids.len() || written.iter().zip(&ids).any(|(w, (id, _))| w.id != *id);
    Ok((!raced).then_some(written))
}

fn id_of_tag(tag_id: &HashMap<String, i64>, name: &str) -> Result<i64> {
    tag_id.get(name).copied().ok_or_else(|| {
        super::CatalogError::Corrupt(format!("tag {name:?} has no id after its insert"))
    })
}

async fn lock_writes(tx: &mut Transaction<'static, Postgres>) -> Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(WRITE_LOCK_KEY)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The tracks upsert, under the ids resolved for the batch; returns rows in batch order.
async fn upsert_tracks(
    tx: &mut Transaction<'static, Postgres>,
    batch: &[TrackWrite],
    ids: &[(i64, bool)],
    now: i64,
) -> Result<Vec<WrittenTrack>> {
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
        ext.push(m.external_id.as_str());
        title.push(m.title.as_deref());
        artists.push(serde_json::to_string(&m.artists).unwrap_or_else(|_| "[]".into()));
        album.push(m.album.as_deref());
        genre.push(m.genre.as_deref());
        date.push(m.release_date.as_deref());
        year.push(m.release_year);
        isrc.push(m.isrc.as_deref());
        duration.push(w.analysis.as_ref().map(|a| a.duration_s));
        source.push(m.source.as_str());
        hash.push(w.content_hash.as_str());
        codec.push(w.analysis.as_ref().map(|a| a.codec.as_str()));
        meta_hash.push(w.meta_hash.as_str());
    }
    let written: Vec<WrittenTrack> = sqlx::query_as(AssertSqlSafe(UPSERT_TRACKS.as_str()))
        .bind(ids.iter().map(|(id, _)| *id).collect::<Vec<i64>>())
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
        .fetch_all(&mut **tx)
        .await?;
    // RETURNING follows the input order for a single INSERT ... SELECT; match by id
    // anyway rather than rely on it.
    let mut by_ext: HashMap<String, WrittenTrack> = written
        .into_iter()
        .map(|w| (w.external_id.clone(), w))
        .collect();
    Ok(batch
        .iter()
        .filter_map(|w| by_ext.remove(&w.meta.external_id))
        .collect())
}

/// The analyses of the batch's analysed tracks, each with its own tags as two arrays.
async fn write_analyses(
    tx: &mut Transaction<'static, Postgres>,
    batch: &[TrackWrite],
    ids: &[(i64, bool)],
    tag_id: &HashMap<String, i64>,
    now: i64,
) -> Result<()> {
    let mut analysed: Vec<(i64, &rows::AnalysisRow)> = batch
        .iter()
        .zip(ids)
        .filter_map(|(w, (id, _))| Some((*id, w.analysis.as_ref()?)))
        .collect();
    // In id order, so that writers updating the same rows lock them in the same order.
    analysed.sort_unstable_by_key(|(id, _)| *id);
    if analysed.is_empty() {
        return Ok(());
    }
    // Array literals, one per row (UNNEST cannot take an array of ragged arrays).
    let mut tag_lists = Vec::with_capacity(analysed.len());
    let mut score_lists = Vec::with_capacity(analysed.len());
    for (_, a) in &analysed {
        use std::fmt::Write;
        let mut seen = std::collections::HashSet::new();
        let (mut ti, mut ts) = (String::from("{"), String::from("{"));
        for t in &a.tags {
            if !seen.insert(t.name.as_str()) {
                continue;
            }
            let sep = if seen.len() > 1 { "," } else { "" };
            let _ = write!(ti, "{sep}{}", id_of_tag(tag_id, &t.name)?);
            let _ = write!(ts, "{sep}{}", t.score);
        }
        ti.push('}');
        ts.push('}');
        tag_lists.push(ti);
        score_lists.push(ts);
    }
    let mut q = sqlx::query(AssertSqlSafe(UPSERT_ANALYSES.as_str()))
        .bind(analysed.iter().map(|(id, _)| *id).collect::<Vec<i64>>())
        .bind(
            analysed
                .iter()
                .map(|(_, a)| a.analyzer_version.as_str())
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
                .map(|(_, a)| a.embedding_space.as_str())
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
                .map(|(_, a)| a.attributes.key.name())
                .collect::<Vec<_>>(),
        )
        .bind(
            analysed
                .iter()
                .map(|(_, a)| a.attributes.mode.name())
                .collect::<Vec<_>>(),
        )
        .bind(
            analysed
                .iter()
                .map(|(_, a)| a.attributes.camelot.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(&tag_lists)
        .bind(&score_lists)
        .bind(now)
        .bind(
            analysed
                .iter()
                .map(|(_, a)| rows::f32s_to_bytes(&a.beats))
                .collect::<Vec<_>>(),
        )
        .bind(
            analysed
                .iter()
                .map(|(_, a)| rows::u32s_to_bytes(&a.fingerprint))
                .collect::<Vec<_>>(),
        )
        .bind(
            analysed
                .iter()
                .map(|(_, a)| rows::u32s_to_bytes(&a.fine_fingerprint))
                .collect::<Vec<_>>(),
        );
    let values: Vec<[f64; ATTRIBUTE_COUNT]> = analysed
        .iter()
        .map(|(_, a)| rows::attribute_values(&a.attributes))
        .collect();
    for col in 0..ATTRIBUTE_COLUMNS.len() {
        q = q.bind(values.iter().map(|v| v[col]).collect::<Vec<f64>>());
    }
    q.execute(&mut **tx).await?;
    Ok(())
}

/// Catalogue tags: replaced on every write of a track (a new track has none to replace).
async fn write_catalog_links(
    tx: &mut Transaction<'static, Postgres>,
    batch: &[TrackWrite],
    ids: &[(i64, bool)],
    tag_id: &HashMap<String, i64>,
) -> Result<()> {
    let stored: Vec<i64> = ids
        .iter()
        .filter(|(_, new)| !new)
        .map(|(id, _)| *id)
        .collect();
    if !stored.is_empty() {
        sqlx::query("DELETE FROM track_tag_links WHERE track_id = ANY($1) AND source = 'catalog'")
            .bind(&stored)
            .execute(&mut **tx)
            .await?;
    }
    let mut links: Vec<(i64, i64)> = Vec::new();
    for (w, (id, _)) in batch.iter().zip(ids) {
        for t in &w.meta.tags {
            links.push((*id, id_of_tag(tag_id, t)?));
        }
    }
    links.sort_unstable();
    links.dedup();
    if links.is_empty() {
        return Ok(());
    }
    // Every row is new (old ones were deleted above), so COPY is the cheapest way in for
    // a big batch; a COPY costs a round trip more than an INSERT, so small ones INSERT.
    if links.len() >= COPY_MIN_ROWS {
        let mut text = String::with_capacity(links.len() * 24);
        for (track, tag) in &links {
            use std::fmt::Write;
            let _ = writeln!(text, "{track}\t{tag}\t1\tcatalog");
        }
        let mut copy = tx
            .copy_in_raw("COPY track_tag_links (track_id, tag_id, score, source) FROM STDIN")
            .await?;
        copy.send(text.into_bytes()).await?;
        copy.finish().await?;
    } else {
        sqlx::query(
            "INSERT INTO track_tag_links (track_id, tag_id, score, source) \
             SELECT u.t, u.g, 1, 'catalog' FROM UNNEST($1::bigint[], $2::bigint[]) AS u(t, g) \
             ON CONFLICT (track_id, tag_id, source) DO NOTHING",
        )
        .bind(links.iter().map(|l| l.0).collect::<Vec<i64>>())
        .bind(links.iter().map(|l| l.1).collect::<Vec<i64>>())
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
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

/// Inserts a run's error rows. Takes any executor, so the job queue writes them inside
/// the transaction that fails the job.
pub(super) async fn record_errors<'e>(
    db: impl PgExecutor<'e>,
    run: i64,
    errors: &[ItemError],
) -> Result<()> {
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
    .execute(db)
    .await?;
    Ok(())
}

/// Marks the open errors of these external ids resolved; any executor, as
/// [`record_errors`]. No ids, no round trip.
pub(super) async fn resolve_errors<'e>(db: impl PgExecutor<'e>, ids: &[String]) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "UPDATE ingest_errors SET resolved_at = $2 WHERE resolved_at IS NULL AND external_id = ANY($1)",
    )
    .bind(ids)
    .bind(rows::now_ms())
    .execute(db)
    .await?;
    Ok(())
}
