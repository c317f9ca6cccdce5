//! The query engine: one owner of the catalogue store and the derived indexes of a data
//! folder, answering "more like this", search, hybrid, tag, track and takedown requests
//! as plain Rust calls (the HTTP routes are a thin layer over these).
//!
//! Freshness: [`Engine::refresh`] reads the store's change log after the sequence the
//! indexes reflect and applies it in short write-locked steps, so queries keep running
//! while a delivery lands; the server calls it every second.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};
use std::time::Instant;

use indexer::derived::{DerivedIndexes, IndexLock};
use indexer::filter::{Filter, TrackSet};
use indexer::text::Card;
use indexer::vectors::{Engine as VectorEngine, HnswParams, Plan};
use indexer::Catalog;
use serde_json::{json, Value};

use crate::copies::{self, Copies, CopyOf};
use crate::error::{ApiError, ApiResult};
use crate::music;
use crate::view::{Hit, TrackView};

/// Filters whose allowed sets are kept (the cache is emptied when full or stale).
const FILTER_CACHE: usize = 64;

#[derive(Default)]
struct FilterCache {
    seq: i64,
    sets: HashMap<String, Arc<TrackSet>>,
}

/// Changes applied per write-lock hold while refreshing (bounds how long queries wait).
const REFRESH_PAGE: i64 = 2_000;

/// Tuning knobs of the engine.
#[derive(Debug, Clone)]
pub struct Limits {
    /// A filter that allows at most this many tracks, or at most `exact_max_share` of
    /// the catalogue, is answered by scoring every allowed track (an int8 scan, then an
    /// exact rescoring); wider filters search the HNSW graph with the filter applied.
    pub exact_max_tracks: usize,
    pub exact_max_share: f64,
    /// HNSW candidate list size for unfiltered queries.
    pub ef_search: usize,
    /// The engine of a vector index built or rebuilt by this server (one found in the
    /// data folder keeps its own, see [`DerivedIndexes::open`]).
    pub vector_engine: VectorEngine,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            exact_max_tracks: 20_000,
            exact_max_share: 0.25,
            ef_search: HnswParams::default().ef_search,
            vector_engine: VectorEngine::default(),
        }
    }
}

/// What the last refresh saw of the store, for `/v1/health` (which must never wait on
/// the store: a health check that queues behind writes reports a live server as dead).
/// The same holds for the indexes: a refresh holds their write lock while it commits,
/// so health and metrics read the facts it left here instead of taking the lock.
///
/// A successful refresh reads the change log until it is empty, so at that moment the
/// indexes' sequence is the store's: there is no separate store sequence to keep.
#[derive(Debug, Clone)]
struct StoreView {
    /// When the last successful refresh finished.
    at: Instant,
    /// The last refresh's error, when it failed.
    error: Option<String>,
    index: IndexFacts,
    /// With a replica: the primary's change sequence and the replica's lag, as of the
    /// last refresh (the indexes follow the replica, so they can be no fresher than it).
    primary: Option<PrimaryFacts>,
}

/// What a refresh saw of the primary when queries read a replica.
#[derive(Debug, Clone, Copy)]
struct PrimaryFacts {
    seq: i64,
    lag: Option<indexer::catalog::ReplicaLag>,
}

/// Sizes and sequence of the indexes after the last change applied to them.
#[derive(Debug, Clone, Copy)]
struct IndexFacts {
    seq: i64,
    vectors: usize,
    text: u64,
    tombstones: usize,
    vector_engine: VectorEngine,
}

impl IndexFacts {
    fn of(ix: &DerivedIndexes) -> IndexFacts {
        IndexFacts {
            seq: ix.applied_seq(),
            vectors: ix.vectors.len(),
            text: ix.text.len(),
            tombstones: ix.vectors.tombstones(),
            vector_engine: ix.vectors.engine(),
        }
    }
}

/// Seconds without a successful refresh after which health reports the store stale.
const STALE_AFTER_S: u64 = 30;

/// The store and both indexes of one data folder, shared by every request.
pub struct Engine {
    /// The store for queries, health and refreshes.
    pub catalog: Catalog,
    /// The store for writes (uploads, ingests, takedowns): on Postgres a pool of its own,
    /// so writers waiting for the run lock cannot take every reader's connection.
    pub writer: Catalog,
    /// `catalog` is a streaming replica of `writer` (`motif serve --replica`).
    replica: bool,
    store_view: Mutex<StoreView>,
    /// Behind an `Arc` so a refresh can apply changes on a blocking thread, off the
    /// async workers that answer requests.
    indexes: Arc<RwLock<DerivedIndexes>>,
    /// Allowed sets of recent filters, valid for the index sequence they were read at.
    filters: Mutex<FilterCache>,
    data_dir: PathBuf,
    _lock: IndexLock,
    pub limits: Limits,
    started: Instant,
}

/// "More like this": seeds or a vector, filters and paging.
#[derive(Debug, Clone, Default)]
pub struct SimilarQuery {
    /// Seed tracks with positive weights.
    pub seeds: Vec<(i64, f32)>,
    /// A raw embedding (used when there are no seeds).
    pub vector: Option<Vec<f32>>,
    pub filter: Filter,
    pub limit: usize,
    pub offset: usize,
    pub max_per_artist: Option<usize>,
    /// One copy per recording (the default) or every copy.
    pub copies: Copies,
}

/// A page of hits with what produced it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HitPage {
    pub results: Vec<Hit>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
    /// How the candidates were found and what was dropped, for explanation.
    pub plan: Value,
}

/// Most copies `GET /v1/tracks/{id}/duplicates` lists (each costs a store read).
pub const MAX_COPIES_LISTED: usize = 100;

impl Engine {
    /// Claims the data folder's indexes, opens them and catches up with the store.
    pub async fn open(catalog: Catalog, data_dir: &Path, limits: Limits) -> ApiResult<Engine> {
        Engine::open_split(catalog.clone(), catalog, false, data_dir, limits).await
    }

    /// [`open`](Self::open) with reads (queries, catch-up) on `catalog` and writes on
    /// `writer`; `replica`: `catalog` is a streaming replica of `writer`, whose lag health
    /// reports.
    pub async fn open_split(
        catalog: Catalog,
        writer: Catalog,
        replica: bool,
        data_dir: &Path,
        limits: Limits,
    ) -> ApiResult<Engine> {
        std::fs::create_dir_all(data_dir)
            .map_err(|e| not_ready(format!("creating data dir {}: {e}", data_dir.display())))?;
        let lock = IndexLock::try_acquire(data_dir)?.ok_or_else(|| {
            not_ready(format!(
                "the indexes in {} are held by another running server (or an index run): \
                     give this server its own --data-dir",
                data_dir.display()
            ))
        })?;
        let mut indexes = DerivedIndexes::open(
            data_dir,
            embeddings::embedding::EMBEDDING_DIM,
            HnswParams::default(),
            limits.vector_engine,
        )?;
        indexes.vectors.set_ef_search(limits.ef_search);
        let report = indexes.catch_up(&catalog).await?;
        for why in &report.rebuilt {
            tracing::warn!("index rebuilt from the store: {why}");
        }
        for why in &report.kept {
            tracing::warn!("index kept as found: {why}");
        }
        tracing::info!(
            "vector index: {} engine, {} tracks",
            indexes.vectors.engine(),
            indexes.vectors.len()
        );
        let closed = writer
            .close_interrupted_runs(&indexer::pipeline::run_lock_file(data_dir))
            .await?;
        if closed > 0 {
            tracing::warn!(
                "{closed} ingest run(s) left running by a stopped process marked interrupted"
            );
        }
        let store_view = Mutex::new(StoreView {
            at: Instant::now(),
            error: None,
            index: IndexFacts::of(&indexes),
            primary: None,
        });
        Ok(Engine {
            replica,
            writer,
            store_view,
            catalog,
            indexes: Arc::new(RwLock::new(indexes)),
            filters: Mutex::new(FilterCache::default()),
            data_dir: data_dir.to_path_buf(),
            _lock: lock,
            limits,
            started: Instant::now(),
        })
    }

    /// Sends writes through their own store (see [`Engine::writer`]).
    pub fn with_writer(mut self, writer: Catalog) -> Engine {
        self.writer = writer;
        self
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    fn read(&self) -> RwLockReadGuard<'_, DerivedIndexes> {
        self.indexes.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies store changes made since the last refresh (by this server or any other
    /// process writing the same store). Returns how many were applied.
    pub async fn refresh(&self) -> ApiResult<u64> {
        let outcome = self.refresh_steps().await;
        let primary = match (&outcome, self.replica) {
            (Ok(_), true) => self.primary_facts().await,
            _ => None,
        };
        let mut view = self.view();
        if primary.is_some() {
            view.primary = primary;
        }
        match &outcome {
            Ok(_) => {
                view.at = Instant::now();
                view.error = None;
            }
            Err(e) => view.error = Some(e.message.clone()),
        }
        outcome
    }

    /// The primary's change sequence and the replica's lag (`None` when the primary
    /// cannot be asked now: health then shows the last answer).
    async fn primary_facts(&self) -> Option<PrimaryFacts> {
        let seq = self.writer.max_seq().await.ok()?;
        let lag = self.catalog.replica_lag(&self.writer).await.ok().flatten();
        Some(PrimaryFacts { seq, lag })
    }

    fn view(&self) -> std::sync::MutexGuard<'_, StoreView> {
        self.store_view.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn refresh_steps(&self) -> ApiResult<u64> {
        let mut applied = 0u64;
        loop {
            let after = self.view().index.seq;
            let changes = self.catalog.changes_since(after, REFRESH_PAGE).await?;
            if changes.is_empty() {
                break;
            }
            let n = changes.len() as u64;
            let indexes = self.indexes.clone();
            let facts = tokio::task::spawn_blocking(move || -> ApiResult<IndexFacts> {
                let mut ix = indexes.write().unwrap_or_else(|e| e.into_inner());
                // Another refresh may have applied these meanwhile; `apply` skips what an
                // index already has.
                ix.apply(changes)?;
                ix.commit_text()?;
                Ok(IndexFacts::of(&ix))
            })
            .await
            .map_err(|e| ApiError::internal(format!("refresh task: {e}")))??;
            {
                let mut view = self.view();
                if facts.seq >= view.index.seq {
                    view.index = facts;
                }
            }
            applied += n;
            if n < REFRESH_PAGE as u64 {
                break;
            }
        }
        Ok(applied)
    }

    /// Saves the vector index if it changed (the text index is durable at each commit).
    pub fn persist(&self) -> ApiResult<()> {
        let mut ix = self.indexes.write().unwrap_or_else(|e| e.into_inner());
        if ix.vectors_dirty() {
            ix.save_vectors()?;
        }
        Ok(())
    }

    /// Health facts: the sequence served, the store's as of the last refresh, counts.
    /// Reads no store (see [`StoreView`]): 503 `stale` when no refresh has succeeded for
    /// [`STALE_AFTER_S`] seconds.
    pub async fn health(&self) -> ApiResult<Value> {
        let view = self.view().clone();
        let age = view.at.elapsed().as_secs();
        if age > STALE_AFTER_S {
            return Err(ApiError::new(
                503,
                "stale",
                format!("no catch-up with the store has succeeded for {age} s"),
            )
            .with_details(json!({ "last_error": view.error, "seconds": age })));
        }
        let ix = view.index;
        // Caught up with the store read as of the last refresh (see `StoreView`); with a
        // replica, the primary may be ahead of both.
        let store_seq = view.primary.map_or(ix.seq, |p| p.seq.max(ix.seq));
        let replica = view.primary.map(|p| {
            json!({
                "lag_bytes": p.lag.map(|l| l.bytes),
                "lag_seconds": p.lag.map(|l| l.seconds),
                "in_recovery": p.lag.map(|l| l.in_recovery),
            })
        });
        Ok(json!({
            "status": "ok",
            "store_checked_ms_ago": view.at.elapsed().as_millis() as u64,
            "backend": self.catalog.backend(),
            "store_seq": store_seq,
            "index_seq": ix.seq,
            // Changes written to the store (the primary's) not yet in the indexes.
            "lag": store_seq - ix.seq,
            "replica": replica,
            "indexed": {
                "vectors": ix.vectors,
                "text": ix.text,
                "tombstones": ix.tombstones,
                "vector_engine": ix.vector_engine.name(),
            },
            "uptime_s": self.started.elapsed().as_secs(),
        }))
    }

    /// Numbers for `/metrics`.
    pub fn gauges(&self) -> Vec<(&'static str, &'static str, f64)> {
        let ix = self.view().index;
        vec![
            (
                "motif_index_seq",
                "Store change sequence the indexes reflect",
                ix.seq as f64,
            ),
            (
                "motif_indexed_tracks",
                "Active tracks in the vector index",
                ix.vectors as f64,
            ),
            (
                "motif_vector_tombstones",
                "Dead points awaiting a rebuild",
                ix.tombstones as f64,
            ),
            (
                "motif_uptime_seconds",
                "Seconds since the engine opened",
                self.started.elapsed().as_secs_f64(),
            ),
        ]
    }

    /// Everything the store knows about a track (any status); with `beats`, also its beat
    /// times (seconds).
    pub async fn track(&self, id: i64, beats: bool) -> ApiResult<Value> {
        let d = self.catalog.track(id).await?.ok_or_else(|| {
            ApiError::new(404, "unknown_track", format!("no track with id {id}"))
                .with_details(json!({"id": id}))
        })?;
        let beats = beats.then_some(d.beats);
        let c = &d.change;
        let attributes = c.attributes.as_ref().map(|(v, key, mode, camelot)| {
            let mut m = crate::view::attributes_map(v);
            m.insert("key".into(), json!(key));
            m.insert("mode".into(), json!(mode));
            m.insert("camelot".into(), json!(camelot));
            Value::Object(m)
        });
        let mut out = json!({
            "id": c.id,
            "external_id": c.external_id,
            "status": if c.active { "active" } else { "taken_down" },
            "title": c.title,
            "artists": c.artists,
            "album": c.album,
            "genre": c.genre,
            "release_date": d.extra.release_date,
            "year": c.release_year,
            "isrc": d.extra.isrc,
            "duration_s": c.duration_s,
            "source": d.extra.source,
            "codec": d.extra.codec,
            "content_hash": d.extra.content_hash,
            "analyzer_version": d.extra.analyzer_version,
            "attributes": attributes,
            "tags": d.tags,
            "change_seq": c.seq,
            "created_at_ms": d.extra.created_at,
            "updated_at_ms": d.extra.updated_at,
        });
        if let (Some(b), Some(o)) = (beats, out.as_object_mut()) {
            o.insert("beats".into(), json!(b));
        }
        Ok(out)
    }

    /// `GET /v1/tracks/{id}/duplicates`: the other copies of a track's recording, each
    /// with the evidence (the fingerprint match, or the shared ISRC or file), which copy
    /// answers show, and why.
    pub async fn duplicates(&self, id: i64) -> ApiResult<Value> {
        let (me, copies) = {
            let ix = self.read();
            let me = ix.text.copy_facts(id)?.ok_or_else(|| {
                let known = ix.vectors.contains(id);
                if known {
                    ApiError::internal(format!("track {id} has a vector but no document"))
                } else {
                    ApiError::unknown_track(id)
                }
            })?;
            let mut copies = Vec::new();
            for other in ix.text.copies_of(me.recording)? {
                if other == id {
                    copies.push(me.clone());
                } else if let Some(f) = ix.text.copy_facts(other)? {
                    copies.push(f);
                }
            }
            (me, copies)
        };
        let shown = copies::shown(copies.iter().map(|c| CopyOf {
            id: c.id,
            recording: c.recording,
            quality: c.quality,
            duration_s: c.duration_s as f32,
        }))
        .map_or(id, |c| c.id);
        // Bounded work per request: a recording delivered a thousand times lists the
        // first copies and counts the rest.
        let mut listed = Vec::new();
        for c in copies.iter().filter(|c| c.id != id).take(MAX_COPIES_LISTED) {
            let Some(d) = self.catalog.track(c.id).await? else {
                continue;
            };
            let evidence = match embeddings::fingerprint::evidence(me.prints(), c.prints())
                .filter(|m| m.is_same_recording())
            {
                Some(m) => json!({
                    "by": m.by,
                    "offset_s": round4(m.offset_s as f64),
                    "matched_share": round4(m.matched_share as f64),
                    "bit_error_rate": round4(m.bit_error_rate as f64),
                }),
                // In one recording through a third copy, or by ISRC or identical bytes.
                None => {
                    json!({ "by": "recording", "why": "matched through another copy, or the same ISRC or file" })
                }
            };
            listed.push(json!({
                "id": c.id,
                "external_id": d.change.external_id,
                "title": d.change.title,
                "artists": d.change.artists,
                "duration_s": d.change.duration_s,
                "codec": d.extra.codec,
                "isrc": d.extra.isrc,
                "shown": c.id == shown,
                "evidence": evidence,
            }));
        }
        Ok(json!({
            "id": id,
            "total_copies": copies.len().saturating_sub(1),
            "copies": listed,
            "shown": shown,
            "rule": "answers show one copy per recording: lossless first, then the higher sample rate, then more channels, then the newest; `copies=all` shows every copy",
        }))
    }

    /// Refuses filters naming tags no indexed track carries (a typo would otherwise
    /// silently match nothing, or everything).
    pub fn check_tags(&self, filter: &Filter) -> ApiResult<()> {
        let ix = self.read();
        let unknown: Vec<&String> = filter.tags().filter(|t| !ix.text.has_tag(t)).collect();
        if unknown.is_empty() {
            Ok(())
        } else {
            Err(ApiError::bad(
                "unknown_tag",
                format!("no track carries the tag(s) {unknown:?} (see GET /v1/tags)"),
            )
            .with_details(json!({ "tags": unknown })))
        }
    }

    /// The tracks `filter` allows (`None` for the empty filter: everything), cached per
    /// index sequence so that a filter repeated across requests (a page's facets, a
    /// station's rules) is evaluated once until the catalogue changes.
    pub fn allowed(
        &self,
        ix: &DerivedIndexes,
        filter: &Filter,
    ) -> ApiResult<Option<Arc<TrackSet>>> {
        if filter.is_empty() {
            return Ok(None);
        }
        let key = format!("{filter:?}");
        let seq = ix.applied_seq();
        {
            let mut c = self.filters.lock().unwrap_or_else(|e| e.into_inner());
            if c.seq != seq {
                c.sets.clear();
                c.seq = seq;
            }
            if let Some(s) = c.sets.get(&key) {
                return Ok(Some(s.clone()));
            }
        }
        let set = Arc::new(ix.text.matching(filter)?);
        let mut c = self.filters.lock().unwrap_or_else(|e| e.into_inner());
        if c.seq == seq {
            if c.sets.len() >= FILTER_CACHE {
                c.sets.clear();
            }
            c.sets.insert(key, set.clone());
        }
        Ok(Some(set))
    }

    /// The unit query vector of weighted seeds (404 for a seed not in the index). At
    /// most [`crate::params::MAX_LIST`] seeds: the work is per seed.
    fn seed_vector(&self, ix: &DerivedIndexes, seeds: &[(i64, f32)]) -> ApiResult<Vec<f32>> {
        crate::params::check_len("seeds", seeds.len(), crate::params::MAX_LIST)?;
        let mut q = vec![0f32; ix.vectors.dim()];
        for &(id, w) in seeds {
            if !(w.is_finite() && w > 0.0) {
                return Err(ApiError::bad(
                    "bad_weight",
                    format!("seed {id}: weight {w} must be positive"),
                ));
            }
            let v = match ix.vectors.vector(id) {
                Some(v) => v,
                // Active but not in the vector index: analysed by an older analyser whose
                // embedding has another dimension (see `CatchUp::other_dimension`).
                None if ix.text.cards(&[id]).is_ok_and(|c| !c.is_empty()) => {
                    return Err(ApiError::new(
                        409,
                        "not_in_space",
                        format!(
                            "track {id} has no embedding in the current space (an older \
                             analyser's layout); `motif index --reanalyze` analyses it again"
                        ),
                    )
                    .with_details(json!({ "id": id.to_string() })))
                }
                None => return Err(ApiError::unknown_track(id)),
            };
            for (a, b) in q.iter_mut().zip(&v) {
                *a += w * b;
            }
        }
        normalise(q)
    }

    /// Checks and normalises a raw embedding.
    fn raw_vector(&self, ix: &DerivedIndexes, v: &[f32]) -> ApiResult<Vec<f32>> {
        if v.len() != ix.vectors.dim() {
            return Err(ApiError::bad(
                "bad_vector",
                format!(
                    "vector has {} dimensions; the embedding space has {}",
                    v.len(),
                    ix.vectors.dim()
                ),
            ));
        }
        if v.iter().any(|x| !x.is_finite()) {
            return Err(ApiError::bad("bad_vector", "vector has a non-finite value"));
        }
        normalise(v.to_vec())
    }

    /// The `k` nearest allowed tracks (see [`indexer::vectors::VectorIndex::search_allowed`]).
    fn nearest(
        &self,
        ix: &DerivedIndexes,
        q: &[f32],
        k: usize,
        allowed: Option<&TrackSet>,
    ) -> (Vec<(i64, f32)>, Plan) {
        let n = ix.vectors.len() as f64;
        let exact_max = self
            .limits
            .exact_max_tracks
            .max((self.limits.exact_max_share * n) as usize);
        ix.vectors.search_allowed(q, k, allowed, exact_max)
    }

    /// One item per recording from `ranked` (best first; [`copies::one_per_recording`]),
    /// leaving out the recordings of `seeds` (another copy of a seed is the seed, not a
    /// suggestion); every item with [`Copies::All`]. The copy shown keeps its own
    /// score, so the kept items are sorted by `score_of` again (equal scores by id).
    /// Returns the kept items and how many were collapsed away.
    pub fn collapse<T>(
        &self,
        ix: &DerivedIndexes,
        ranked: Vec<T>,
        id_of: impl Fn(&T) -> i64,
        score_of: impl Fn(&T) -> f64,
        copies: Copies,
        seeds: &[Card],
    ) -> ApiResult<(Vec<T>, usize)> {
        // Equal scores by id: the ranked order of ties follows each server's own index
        // layout (segments), and two servers over one store must answer alike.
        let by_score_then_id = |a: &T, b: &T| {
            score_of(b)
                .total_cmp(&score_of(a))
                .then_with(|| id_of(a).cmp(&id_of(b)))
        };
        if copies == Copies::All {
            let mut ranked = ranked;
            ranked.sort_by(by_score_then_id);
            return Ok((ranked, 0));
        }
        let rows: HashMap<i64, (u64, u64, f32)> = ix
            .text
            .rows_of(ranked.iter().map(&id_of))?
            .into_iter()
            .map(|r| (r.id, (r.recording, r.quality, r.duration_s)))
            .collect();
        let taken: HashSet<u64> = seeds.iter().map(|c| c.recording).collect();
        // A track missing from the text index (taken down meanwhile) keeps a recording of
        // its own: it is dropped later when its card is not found.
        let copy_of = |item: &T| {
            let id = id_of(item);
            let (recording, quality, duration_s) =
                rows.get(&id)
                    .copied()
                    .unwrap_or((id as u64 ^ (1 << 63), 0, 0.0));
            CopyOf {
                id,
                recording,
                quality,
                duration_s,
            }
        };
        let (mut kept, collapsed) = copies::one_per_recording(ranked, copy_of, &taken);
        kept.sort_by(by_score_then_id);
        Ok((kept, collapsed))
    }

    /// "More like this".
    pub fn similar(&self, sq: &SimilarQuery) -> ApiResult<HitPage> {
        self.check_tags(&sq.filter)?;
        let ix = self.read();
        let q = if !sq.seeds.is_empty() {
            self.seed_vector(&ix, &sq.seeds)?
        } else if let Some(v) = &sq.vector {
            self.raw_vector(&ix, v)?
        } else {
            return Err(ApiError::bad(
                "no_seed",
                "give seed tracks, a vector or an audio clip",
            ));
        };
        let allowed = self.allowed(&ix, &sq.filter)?;
        let seed_ids: HashSet<i64> = sq.seeds.iter().map(|s| s.0).collect();
        let seed_cards = ix
            .text
            .cards(&sq.seeds.iter().map(|s| s.0).collect::<Vec<_>>())?;
        let want = sq.offset + sq.limit;
        let mut fetch = (want * 2 + seed_ids.len() + 10).max(20);
        let mut rounds = 0;
        loop {
            let (cands, plan) = self.nearest(&ix, &q, fetch + 1, allowed.as_deref());
            let exhausted = cands.len() <= fetch;
            let ranked: Vec<(i64, f32)> = cands
                .iter()
                .take(fetch)
                .filter(|(id, _)| !seed_ids.contains(id))
                .copied()
                .collect();
            let (ranked, collapsed) =
                self.collapse(&ix, ranked, |h| h.0, |h| h.1.into(), sq.copies, &seed_cards)?;
            let mut per_artist: HashMap<String, usize> = HashMap::new();
            let mut kept: Vec<(Card, f32)> = Vec::new();
            let mut capped = 0;
            for (id, score) in &ranked {
                let Some(card) = ix.text.cards(&[*id])?.pop() else {
                    continue;
                };
                if let Some(cap) = sq.max_per_artist {
                    let over = card
                        .artists
                        .iter()
                        .any(|a| per_artist.get(&a.to_lowercase()).copied().unwrap_or(0) >= cap);
                    if over {
                        capped += 1;
                        continue;
                    }
                    for a in &card.artists {
                        *per_artist.entry(a.to_lowercase()).or_default() += 1;
                    }
                }
                kept.push((card, *score));
                if kept.len() > want {
                    break;
                }
            }
            if kept.len() > want || exhausted || rounds >= 3 {
                let more = kept.len() > want;
                let results = kept
                    .into_iter()
                    .skip(sq.offset)
                    .take(sq.limit)
                    .map(|(card, score)| {
                        let reasons = reasons(seed_cards.first(), &card, score);
                        Hit {
                            track: TrackView::from(&card),
                            score: round4(score as f64),
                            reasons,
                            explain: None,
                        }
                    })
                    .collect();
                return Ok(HitPage {
                    results,
                    next_cursor: more.then(|| crate::params::encode_cursor(want)).flatten(),
                    plan: json!({
                        "strategy": plan,
                        "allowed": allowed.as_ref().map(|a| a.len()),
                        "collapsed_duplicates": collapsed,
                        "over_artist_cap": capped,
                    }),
                });
            }
            fetch *= 4;
            rounds += 1;
        }
    }

    /// The ids of tracks nearest to seeds or a vector (for fusion), best first.
    pub fn vector_candidates(
        &self,
        seeds: &[(i64, f32)],
        filter: &Filter,
        k: usize,
    ) -> ApiResult<Vec<(i64, f32)>> {
        let ix = self.read();
        let q = self.seed_vector(&ix, seeds)?;
        let allowed = self.allowed(&ix, filter)?;
        let seed_ids: HashSet<i64> = seeds.iter().map(|s| s.0).collect();
        let (c, _) = self.nearest(&ix, &q, k + seeds.len(), allowed.as_deref());
        Ok(c.into_iter()
            .filter(|(id, _)| !seed_ids.contains(id))
            .take(k)
            .collect())
    }

    /// BM25 candidates for fusion (text and filter), best first.
    pub fn text_candidates(
        &self,
        text: &str,
        filter: &Filter,
        k: usize,
    ) -> ApiResult<Vec<(i64, f32)>> {
        let ix = self.read();
        Ok(ix.text.top_hits(text, filter, k)?)
    }

    /// Cards of the given ids (absent ones skipped), in order.
    pub fn cards(&self, ids: &[i64]) -> ApiResult<Vec<Card>> {
        Ok(self.read().text.cards(ids)?)
    }

    /// A page of text search with facet counts.
    pub fn search(
        &self,
        text: &str,
        filter: &Filter,
        limit: usize,
        offset: usize,
        facets: bool,
        copies: Copies,
    ) -> ApiResult<Value> {
        self.check_tags(filter)?;
        let ix = self.read();
        let text = Some(text).filter(|t| !t.trim().is_empty());
        let (hits, total, tag_counts, more) = if copies == Copies::All {
            let page = ix
                .text
                .search_page_with(text, filter, limit, offset, facets)?;
            let more = offset + limit < page.total as usize;
            (page.hits, page.total, page.tag_counts, more)
        } else {
            // Pages count recordings: collapse the ranked hits from the top until the page
            // and one more recording are there, or the hits run out.
            // Facet counts cover every match whatever the window: counted in the first
            // round only.
            let want = offset + limit + 1;
            let mut n = (2 * want).max(50);
            let mut tag_counts = None;
            let mut first = true;
            loop {
                let page = ix
                    .text
                    .search_page_with(text, filter, n, 0, facets && first)?;
                if first {
                    tag_counts = page.tag_counts;
                    first = false;
                }
                let exhausted = page.hits.len() < n;
                let (kept, _) =
                    self.collapse(&ix, page.hits, |h| h.0, |h| h.1.into(), copies, &[])?;
                if kept.len() >= want || exhausted {
                    let more = kept.len() >= want;
                    let hits = kept.into_iter().skip(offset).take(limit).collect();
                    break (hits, page.total, tag_counts, more);
                }
                n *= 2;
            }
        };
        let ids: Vec<i64> = hits.iter().map(|h| h.0).collect();
        let cards = ix.text.cards(&ids)?;
        let scores: HashMap<i64, f32> = hits.iter().copied().collect();
        let results: Vec<Hit> = cards
            .iter()
            .map(|c| Hit {
                track: TrackView::from(c),
                score: round4(scores.get(&c.id).copied().unwrap_or(0.0) as f64),
                reasons: Vec::new(),
                explain: None,
            })
            .collect();
        let facet_counts = tag_counts.map(|c| group_facets(c, 10));
        let next = offset + limit;
        Ok(json!({
            "total": total,
            "results": results,
            "next_cursor": more.then(|| crate::params::encode_cursor(next)).flatten(),
            "facets": facet_counts,
        }))
    }

    /// Every tag with its track count, grouped by facet.
    pub fn tags(&self) -> ApiResult<Value> {
        let ix = self.read();
        let counts = ix.text.tag_counts(None, &Filter::default())?;
        Ok(json!({ "tracks": ix.text.len(), "facets": group_facets(counts, usize::MAX) }))
    }

    /// Tracks carrying `tag` (404 for a tag no track carries).
    pub fn tag_tracks(
        &self,
        tag: &str,
        limit: usize,
        offset: usize,
        copies: Copies,
    ) -> ApiResult<Value> {
        let tag = indexer::catalog::rows::normalise_tag(tag)
            .ok_or_else(|| ApiError::bad("bad_tag", format!("{tag:?} is not a tag")))?;
        if !self.read().text.has_tag(&tag) {
            return Err(
                ApiError::new(404, "unknown_tag", format!("no track carries {tag}"))
                    .with_details(json!({"tag": tag})),
            );
        }
        let filter = Filter {
            tags_all: vec![tag],
            ..Filter::default()
        };
        self.search("", &filter, limit, offset, false, copies)
    }

    /// Takes a track down: it leaves every answer before this returns.
    pub async fn take_down(&self, id: i64) -> ApiResult<Value> {
        let d = self
            .catalog
            .track(id)
            .await?
            .ok_or_else(|| ApiError::unknown_track(id))?;
        let down = self
            .writer
            .take_down(std::slice::from_ref(&d.change.external_id))
            .await?;
        self.refresh().await?;
        Ok(json!({
            "id": id,
            "external_id": d.change.external_id,
            "status": "taken_down",
            "changed": !down.is_empty(),
        }))
    }

    /// Reads what playlists and paths need, under one read lock.
    pub fn with_indexes<T>(&self, f: impl FnOnce(&DerivedIndexes) -> ApiResult<T>) -> ApiResult<T> {
        f(&self.read())
    }

    /// Nearest neighbours for playlist building (same plan as `similar`).
    pub fn nearest_in(
        &self,
        ix: &DerivedIndexes,
        q: &[f32],
        k: usize,
        allowed: Option<&TrackSet>,
    ) -> Vec<(i64, f32)> {
        self.nearest(ix, q, k, allowed).0
    }
}

/// Why a track is similar to the (first) seed.
fn reasons(seed: Option<&Card>, c: &Card, score: f32) -> Vec<String> {
    let mut r = vec![format!(
        "embedding similarity {score:.3} (cosine distance {:.3})",
        1.0 - score
    )];
    let Some(s) = seed else { return r };
    let seed_tags: HashSet<&String> = s.tags.iter().collect();
    // What the learned models heard in both (genre, mood, instruments, voice, era) is
    // named first: it says more about why two tracks sound alike than a tempo class.
    let (heard, signal): (Vec<&str>, Vec<&str>) = c
        .tags
        .iter()
        .filter(|t| seed_tags.contains(t))
        .map(String::as_str)
        .partition(|t| embeddings::learned::vocabulary::is_learned(t));
    if !heard.is_empty() {
        let heard: Vec<&str> = heard.into_iter().take(5).collect();
        r.push(format!("both sound like {}", heard.join(", ")));
    }
    if !signal.is_empty() {
        let signal: Vec<&str> = signal.into_iter().take(5).collect();
        r.push(format!("shares tags {}", signal.join(", ")));
    }
    let (ta, tb) = (s.attributes[0], c.attributes[0]);
    if ta > 0.0 && tb > 0.0 {
        r.push(music::tempo_reason(ta, tb));
    }
    if let (Some(a), Some(b)) = (&s.camelot, &c.camelot) {
        if let Some(k) = music::key_reason(a, b) {
            r.push(k);
        }
    }
    r
}

/// `[("mood:calm", 3), ...]` -> `{"mood": [{"tag": "mood:calm", "count": 3}], ...}`, the
/// `top` most frequent per facet.
fn group_facets(counts: Vec<(String, u64)>, top: usize) -> Value {
    let mut by: std::collections::BTreeMap<String, Vec<Value>> = Default::default();
    for (tag, n) in counts {
        let facet = indexer::catalog::rows::facet_of(&tag).to_string();
        let v = by.entry(facet).or_default();
        if v.len() < top {
            v.push(json!({ "tag": tag, "count": n }));
        }
    }
    json!(by)
}

/// Scales `v` to unit length. The norm is taken in f64 after dividing by the largest
/// magnitude, so components near f32's limits (1e38) neither overflow nor vanish.
pub fn normalise(mut v: Vec<f32>) -> ApiResult<Vec<f32>> {
    if v.iter().any(|x| !x.is_finite()) {
        return Err(ApiError::bad(
            "bad_vector",
            "the query vector has a non-finite value",
        ));
    }
    let peak = v.iter().fold(0f64, |m, x| m.max(f64::from(x.abs())));
    if peak == 0.0 {
        return Err(ApiError::bad("bad_vector", "the query vector is zero"));
    }
    let n = v
        .iter()
        .map(|&x| (f64::from(x) / peak).powi(2))
        .sum::<f64>()
        .sqrt()
        * peak;
    v.iter_mut().for_each(|x| *x = (f64::from(*x) / n) as f32);
    Ok(v)
}

pub fn round4(x: f64) -> f64 {
    (x * 1e4).round() / 1e4
}

/// 503: the engine cannot serve (yet).
fn not_ready(message: String) -> ApiError {
    ApiError::new(503, "not_ready", message)
}
