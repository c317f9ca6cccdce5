//! The vector index: an HNSW graph (cosine as `1 - dot` over unit vectors) on one of two
//! engines ([`Engine`]: our own [`graph`], or hnsw_rs), plus the bookkeeping a graph
//! lacks: a point is never updated or deleted in place, so every version of a track's
//! embedding is a new point, and a point is live only while it is its track's newest and
//! the track is not taken down. Dead points (tombstones) are filtered out of every answer
//! at once and dropped by a rebuild. The bookkeeping, the exact scans and the search
//! plans are written once here, above the engines ([`engine`] dispatches to them).
//!
//! On disk (a directory): the engine's own files (`graph.bin` for our graph, in
//! [`graph::Graph`]'s format; hnsw_rs's dump and its hashes for hnsw_rs), `points.bin`
//! (the track id of each point, -1 when dead, little-endian i64) and `meta.json` (the
//! engine, parameters and the change sequence the index reflects; a `meta.json` without
//! an engine is our graph's). A save writes a fresh directory and renames it over the old
//! one, so a crash leaves one or the other. A folder in an older format fails to load and
//! is rebuilt from the store.

mod dot;
mod engine;
pub mod graph;
mod hnsw_rs_graph;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::filter::TrackSet;
use engine::Backend;
pub use engine::{Engine, UnknownEngine};

/// Above this many results, [`VectorIndex::search_allowed`] scans instead of walking the
/// graph (a walk's cost grows steeply with its candidate list).
const LONG_ANSWER: usize = 256;

/// How a search was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Plan {
    /// The graph, no filter.
    Hnsw,
    /// Every allowed track scored (narrow filters).
    Exact,
    /// The graph with the filter applied during the search.
    FilteredHnsw,
}

/// HNSW construction and search parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HnswParams {
    /// Links per node on the upper layers, twice as many on layer 0 (2..=256).
    pub m: usize,
    /// Candidate list size while inserting.
    pub ef_construction: usize,
    /// Candidate list size while searching (raised to `k` when smaller).
    pub ef_search: usize,
}

impl Default for HnswParams {
    /// M = 16, ef_construction = 200, ef_search = 128: at 1M real-shaped tracks on 2
    /// cores this builds in 139 s for recall@10 0.991 at 0.19 ms a query; measured with
    /// `motif bench-index` (docs/MEASUREMENTS.md).
    fn default() -> Self {
        HnswParams {
            m: 16,
            ef_construction: 200,
            ef_search: 128,
        }
    }
}

/// Why the vector index cannot be built, loaded or saved.
#[derive(Debug, thiserror::Error)]
pub enum VectorError {
    #[error("HNSW parameter out of range: {0}")]
    Params(String),
    #[error("vector of dimension {got} in an index of dimension {want}")]
    Dimension { got: usize, want: usize },
    #[error("vector index files in {dir}: {message}")]
    Files { dir: PathBuf, message: String },
}

type Result<T> = std::result::Result<T, VectorError>;

/// The on-disk format `meta.json` names (1 was hnsw_rs's dump before the engine was
/// recorded; 2 added the engine, our graph's when absent).
const FORMAT: u32 = 2;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Meta {
    format: u32,
    /// The engine that wrote the graph's files.
    #[serde(default = "engine_of_older_meta")]
    engine: Engine,
    dim: usize,
    params: HnswParams,
    seq: i64,
    points: usize,
}

/// A `meta.json` written before the engine was recorded is our graph's.
fn engine_of_older_meta() -> Engine {
    Engine::Graph
}

/// An in-memory HNSW index over track embeddings, with tombstones.
pub struct VectorIndex {
    dim: usize,
    params: HnswParams,
    graph: Backend,
    /// Track id of each point (the point's graph node number is its position); -1 once
    /// dead.
    points: Vec<i64>,
    /// Track id -> its live point.
    live: HashMap<i64, usize>,
    /// Every point's vector quantised to int8 (`dim` codes per point, row = point): exact
    /// scans over large allowed sets read these 75 bytes a point instead of the graph's
    /// f32 copy (a quarter of the memory of a second f32 copy), then rescore the best
    /// candidates exactly.
    codes: Vec<i8>,
    /// The store change sequence this index reflects.
    seq: i64,
}

fn check_params(p: &HnswParams) -> Result<()> {
    if !(2..=256).contains(&p.m) {
        return Err(VectorError::Params(format!("m = {} (2..=256)", p.m)));
    }
    if p.ef_construction < p.m || p.ef_construction > 4096 {
        return Err(VectorError::Params(format!(
            "ef_construction = {} (m..=4096)",
            p.ef_construction
        )));
    }
    if p.ef_search == 0 || p.ef_search > 4096 {
        return Err(VectorError::Params(format!(
            "ef_search = {} (1..=4096)",
            p.ef_search
        )));
    }
    Ok(())
}

impl VectorIndex {
    /// An empty index on `engine` for `dim`-dimensional unit vectors, sized for about
    /// `capacity`.
    pub fn new(
        engine: Engine,
        dim: usize,
        params: HnswParams,
        capacity: usize,
    ) -> Result<VectorIndex> {
        check_params(&params)?;
        Ok(VectorIndex {
            dim,
            params,
            graph: Backend::new(engine, dim, &params, capacity),
            points: Vec::new(),
            live: HashMap::new(),
            codes: Vec::new(),
            seq: 0,
        })
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The engine holding the graph.
    pub fn engine(&self) -> Engine {
        self.graph.engine()
    }

    pub fn params(&self) -> HnswParams {
        self.params
    }

    /// Sets the search candidate list size (recall/latency trade-off).
    pub fn set_ef_search(&mut self, ef: usize) {
        self.params.ef_search = ef.clamp(1, 4096);
    }

    /// The store change sequence this index reflects.
    pub fn seq(&self) -> i64 {
        self.seq
    }

    pub fn set_seq(&mut self, seq: i64) {
        self.seq = seq;
    }

    /// Live tracks.
    pub fn len(&self) -> usize {
        self.live.len()
    }

    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    /// Dead points still in the graph (a rebuild drops them).
    pub fn tombstones(&self) -> usize {
        self.points.len() - self.live.len()
    }

    /// Whether a track is in the index and live.
    pub fn contains(&self, track: i64) -> bool {
        self.live.contains_key(&track)
    }

    /// Live track ids (unordered).
    pub fn track_ids(&self) -> impl Iterator<Item = i64> + '_ {
        self.live.keys().copied()
    }

    /// A live track's vector (a copy).
    pub fn vector(&self, track: i64) -> Option<Vec<f32>> {
        let p = *self.live.get(&track)?;
        Some(self.graph.vector(p as u32).to_vec())
    }

    /// Adds or replaces tracks' vectors; inserts run in parallel on all cores.
    pub fn upsert(&mut self, items: &[(i64, Vec<f32>)]) -> Result<()> {
        if let Some((_, v)) = items.iter().find(|(_, v)| v.len() != self.dim) {
            return Err(VectorError::Dimension {
                got: v.len(),
                want: self.dim,
            });
        }
        // Last write wins within one call.
        let mut latest: HashMap<i64, usize> = HashMap::with_capacity(items.len());
        for (i, (track, _)) in items.iter().enumerate() {
            latest.insert(*track, i);
        }
        let mut order: Vec<usize> = latest.into_values().collect();
        order.sort_unstable();
        let first = self.points.len();
        let mut batch: Vec<&[f32]> = Vec::with_capacity(order.len());
        for (n, &i) in order.iter().enumerate() {
            let (track, v) = &items[i];
            if let Some(old) = self.live.insert(*track, first + n) {
                self.points[old] = -1;
            }
            self.points.push(*track);
            self.codes.extend(quantise(v));
            batch.push(v.as_slice());
        }
        self.graph.insert(&batch);
        Ok(())
    }

    /// Tombstones a track: it leaves every answer now; its point leaves the graph at the
    /// next rebuild. Returns whether it was live.
    pub fn remove(&mut self, track: i64) -> bool {
        match self.live.remove(&track) {
            Some(p) => {
                self.points[p] = -1;
                true
            }
            None => false,
        }
    }

    /// The `k` live tracks nearest to `query` (cosine similarity, highest first) that pass
    /// `allow`. Approximate (HNSW); the graph walk keeps only points that pass, so a
    /// result never violates the filter.
    pub fn search(
        &self,
        query: &[f32],
        k: usize,
        allow: Option<&(dyn Fn(i64) -> bool + Sync)>,
    ) -> Vec<(i64, f32)> {
        self.search_ef(query, k, self.params.ef_search, allow)
    }

    /// [`search`](Self::search) with an explicit candidate list size (raised to `k`): a
    /// filter that keeps a fraction of the catalogue needs a wider search to fill `k`.
    pub fn search_ef(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        allow: Option<&(dyn Fn(i64) -> bool + Sync)>,
    ) -> Vec<(i64, f32)> {
        if k == 0 || self.live.is_empty() || query.len() != self.dim {
            return Vec::new();
        }
        let ef = ef.clamp(1, 8192).max(k);
        let points = &self.points;
        let keep = |p: u32| -> bool {
            let t = points.get(p as usize).copied().unwrap_or(-1);
            t >= 0 && allow.is_none_or(|f| f(t))
        };
        let filtered = allow.is_some() || self.tombstones() > 0;
        let keep: Option<&dyn Fn(u32) -> bool> = if filtered { Some(&keep) } else { None };
        self.graph
            .search(query, k, ef, keep)
            .into_iter()
            .map(|n| (self.points[n.node as usize], 1.0 - n.dist))
            .collect()
    }

    /// The `k` nearest live tracks in `allowed` (all live tracks when `None`), planned so a
    /// filter keeps its recall however narrow it is (DESIGN.md principle 4): an allowed set
    /// of at most `brute_force_max` tracks is scored in full (exact); a wider one is
    /// searched in the graph with the filter applied, the candidate list widened in
    /// proportion to how much the filter removes.
    pub fn search_allowed(
        &self,
        query: &[f32],
        k: usize,
        allowed: Option<&TrackSet>,
        exact_max: usize,
    ) -> (Vec<(i64, f32)>, Plan) {
        match allowed {
            // A long answer (a playlist's candidate pool) is cheaper as a scan than as a
            // graph walk with a candidate list that long.
            _ if k > LONG_ANSWER => (self.scan(query, k, allowed), Plan::Exact),
            None => {
                let got = self.search(query, k, None);
                if got.len() >= k.min(self.len()) {
                    return (got, Plan::Hnsw);
                }
                // The walk was trapped (a flood of identical vectors can wall a region
                // off): a short answer must never read as "no more tracks". Widen the
                // beam once, then score every point.
                let ef = (4 * self.params.ef_search).max(4 * k);
                let wider = self.search_ef(query, k, ef, None);
                if wider.len() >= k.min(self.len()) {
                    return (wider, Plan::Hnsw);
                }
                (self.scan(query, k, None), Plan::Exact)
            }
            Some(set) if set.len() <= exact_max => (self.scan(query, k, Some(set)), Plan::Exact),
            Some(set) => {
                let f = |t: i64| set.contains(t);
                let ef = self.params.ef_search.max(2 * k);
                let got = self.search_ef(query, k, ef, Some(&f));
                if got.len() < k.min(set.len()) {
                    // The graph walk could not fill the answer: score every allowed track.
                    return (self.scan(query, k, Some(set)), Plan::Exact);
                }
                (got, Plan::FilteredHnsw)
            }
        }
    }

    /// Exact `k` nearest among `allowed` (every live track when `None`): a set under a
    /// 32nd of the points is scored track by track in f32; a wider one by a pass
    /// over every point's int8 code, the best `4k` (at least 64) rescored in f32.
    pub fn scan(&self, query: &[f32], k: usize, allowed: Option<&TrackSet>) -> Vec<(i64, f32)> {
        if k == 0 || query.len() != self.dim || self.codes.len() != self.points.len() * self.dim {
            return Vec::new();
        }
        // A small set is looked up track by track and scored exactly in f32 (~0.2 us a
        // track at 1M: a hash lookup and a row read at random); from about 3 % of the
        // points on, one pass over all of them is cheaper (~6 ms at 1M).
        if let Some(set) = allowed.filter(|s| s.len() * 32 < self.points.len()) {
            return self.search_among(query, k, set.iter());
        }
        // A large one is a pass over all points through the int8 codes (a quarter of the
        // bytes of the f32 rows), the best `4k` then rescored in f32.
        let q: Vec<i16> = quantise(query).map(i16::from).collect();
        let keep = (4 * k).max(64);
        let mut heap: std::collections::BinaryHeap<std::cmp::Reverse<(i32, usize)>> =
            std::collections::BinaryHeap::with_capacity(keep + 1);
        for (p, &t) in self.points.iter().enumerate() {
            if t < 0 || allowed.is_some_and(|s| !s.contains(t)) {
                continue;
            }
            let row = &self.codes[p * self.dim..(p + 1) * self.dim];
            let s = dot_i8(row, &q);
            if heap.len() < keep {
                heap.push(std::cmp::Reverse((s, p)));
            } else if heap.peek().is_some_and(|m| s > m.0 .0) {
                heap.pop();
                heap.push(std::cmp::Reverse((s, p)));
            }
        }
        self.best_of(
            query,
            k,
            heap.into_iter().map(|std::cmp::Reverse((_, p))| p),
        )
    }

    /// Exact nearest neighbours among the given tracks (dead or unknown ones skipped):
    /// the plan for a narrow filter, whose allowed set is small enough to score in full.
    pub fn search_among(
        &self,
        query: &[f32],
        k: usize,
        tracks: impl Iterator<Item = i64>,
    ) -> Vec<(i64, f32)> {
        if k == 0 || query.len() != self.dim {
            return Vec::new();
        }
        let points = tracks.filter_map(|t| self.live.get(&t).copied());
        self.best_of(query, k, points)
    }

    /// Exact nearest neighbours among live tracks that pass `allow` (a scan of every
    /// vector): the ground truth for recall, and the right plan for narrow filters.
    pub fn search_exact(
        &self,
        query: &[f32],
        k: usize,
        allow: Option<&(dyn Fn(i64) -> bool + Sync)>,
    ) -> Vec<(i64, f32)> {
        if k == 0 || query.len() != self.dim {
            return Vec::new();
        }
        let points =
            self.points.iter().enumerate().filter_map(|(p, &track)| {
                (track >= 0 && allow.is_none_or(|f| f(track))).then_some(p)
            });
        self.best_of(query, k, points)
    }

    /// The `k` of `points` most similar to `query`, scored exactly in f32, highest first
    /// (ties by track id): the one top-k of every exact search.
    fn best_of(
        &self,
        query: &[f32],
        k: usize,
        points: impl Iterator<Item = usize>,
    ) -> Vec<(i64, f32)> {
        let mut heap: std::collections::BinaryHeap<Scored> =
            std::collections::BinaryHeap::with_capacity(k + 1);
        for p in points {
            let scored = Scored {
                score: dot::dot(self.graph.vector(p as u32), query),
                track: self.points[p],
            };
            if heap.len() < k {
                heap.push(scored);
            } else if heap.peek().is_some_and(|worst| scored < *worst) {
                heap.pop();
                heap.push(scored);
            }
        }
        heap.into_sorted_vec()
            .into_iter()
            .map(|s| (s.track, s.score))
            .collect()
    }

    /// Writes the index into `dir` (replacing what is there) atomically: a fresh sibling
    /// directory is written, then renamed over `dir`.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let err = |message: String| VectorError::Files {
            dir: dir.to_path_buf(),
            message,
        };
        let tmp = dir.with_extension("tmp");
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).map_err(|e| err(format!("create {}: {e}", tmp.display())))?;
        self.graph.write(&tmp).map_err(err)?;
        let ids: Vec<u8> = self.points.iter().flat_map(|t| t.to_le_bytes()).collect();
        std::fs::write(tmp.join("points.bin"), ids).map_err(|e| err(format!("points: {e}")))?;
        let meta = Meta {
            format: FORMAT,
            engine: self.engine(),
            dim: self.dim,
            params: self.params,
            seq: self.seq,
            points: self.points.len(),
        };
        let json = serde_json::to_vec_pretty(&meta).map_err(|e| err(e.to_string()))?;
        std::fs::write(tmp.join("meta.json"), json).map_err(|e| err(format!("meta: {e}")))?;
        for f in std::fs::read_dir(&tmp)
            .map_err(|e| err(e.to_string()))?
            .flatten()
        {
            if let Ok(file) = std::fs::File::open(f.path()) {
                let _ = file.sync_all();
            }
        }
        let old = dir.with_extension("old");
        let _ = std::fs::remove_dir_all(&old);
        if dir.exists() {
            std::fs::rename(dir, &old).map_err(|e| err(format!("rename: {e}")))?;
        }
        std::fs::rename(&tmp, dir).map_err(|e| err(format!("rename: {e}")))?;
        let _ = std::fs::remove_dir_all(&old);
        Ok(())
    }

    /// Loads an index saved by [`save`](Self::save). Any missing or inconsistent part is
    /// an error: the caller rebuilds from the store.
    pub fn load(dir: &Path) -> Result<VectorIndex> {
        let err = |message: String| VectorError::Files {
            dir: dir.to_path_buf(),
            message,
        };
        let meta: Meta = serde_json::from_slice(
            &std::fs::read(dir.join("meta.json")).map_err(|e| err(format!("meta.json: {e}")))?,
        )
        .map_err(|e| err(format!("meta.json: {e}")))?;
        check_params(&meta.params)?;
        if meta.format != FORMAT {
            return Err(err(format!(
                "format {} (this build reads {FORMAT}): rebuild",
                meta.format
            )));
        }
        let raw = std::fs::read(dir.join("points.bin")).map_err(|e| err(format!("points: {e}")))?;
        if raw.len() != meta.points * 8 {
            return Err(err("points.bin does not match meta.json".into()));
        }
        let points: Vec<i64> = raw
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0xff; 8])))
            .collect();
        let graph = Backend::read(meta.engine, dir, &meta.params).map_err(err)?;
        if graph.len() != points.len() {
            return Err(err(format!(
                "graph has {} points, points.bin {}",
                graph.len(),
                points.len()
            )));
        }
        if graph.dim() != meta.dim {
            return Err(err(format!(
                "graph dimension {} != {}",
                graph.dim(),
                meta.dim
            )));
        }
        let mut index = VectorIndex::new(meta.engine, meta.dim, meta.params, 0)?;
        index.seq = meta.seq;
        index.live = points
            .iter()
            .enumerate()
            .filter(|(_, &t)| t >= 0)
            .map(|(p, &t)| (t, p))
            .collect();
        index.codes = (0..graph.len() as u32)
            .flat_map(|p| graph.vector(p).iter().map(|&x| quantise_one(x)))
            .collect();
        index.graph = graph;
        index.points = points;
        Ok(index)
    }
}

/// A track and its similarity, ordered best first (higher score, then lower track id),
/// so a max-heap of them keeps the worst on top.
#[derive(Clone, Copy, PartialEq)]
struct Scored {
    score: f32,
    track: i64,
}

impl Eq for Scored {}

impl Ord for Scored {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        other
            .score
            .total_cmp(&self.score)
            .then(self.track.cmp(&other.track))
    }
}

impl PartialOrd for Scored {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// The integer dot product of an int8 row with a query held as i16: products of two
/// 16-bit values summed in pairs are one SSE2 instruction (`pmaddwd`), which the compiler
/// finds in this shape on the baseline x86-64 target; a 32-bit query would need 32-bit
/// multiplies, which SSE2 lacks.
fn dot_i8(row: &[i8], q: &[i16]) -> i32 {
    row.iter()
        .zip(q)
        .map(|(&a, &b)| i32::from(a) * i32::from(b))
        .sum()
}

/// int8 code of one coordinate of a unit vector (|x| <= 1).
fn quantise_one(x: f32) -> i8 {
    (x * 127.0).round().clamp(-127.0, 127.0) as i8
}

fn quantise(v: &[f32]) -> impl Iterator<Item = i8> + '_ {
    v.iter().map(|&x| quantise_one(x))
}

#[cfg(test)]
mod tests;
