//! hnsw_rs (0.3.5) as a vector engine: the same calls as our [`Graph`](super::graph::Graph),
//! so a [`VectorIndex`](super::VectorIndex) can be built on either and both run the same
//! tests and benchmarks.
//!
//! What hnsw_rs needs around it, and why:
//! - **Distance.** [`UnitDot`]: `1 - a·b` with the same dot kernel as our graph, clamped
//!   at 0. hnsw_rs's `DistDot` asserts `a·b <= 1.000002` (with `simdeez_f`) or
//!   `1 - a·b >= 0` (without): a query only slightly longer than a unit vector would
//!   panic the process. With one kernel for both engines, a benchmark compares graphs.
//! - **Vectors by node.** hnsw_rs keeps its points per layer, not by id, and hands out
//!   copies by `PointId`. After each insert the new points' `Arc`s are collected once
//!   into `nodes` (8 bytes a node), so exact scans read the vectors hnsw_rs already holds,
//!   without a second copy. The collection walks each layer's list past the points seen
//!   before, an `Arc` clone per old point: a few ms per insert call at 1M.
//! - **Files.** `hnsw.hnsw.graph` and `hnsw.hnsw.data` (hnsw_rs's `file_dump`) plus
//!   `hnsw_rs.json` with each file's blake3 hash, checked before hnsw_rs reads them: its
//!   loader panics or calls `process::exit` on damaged input, so it only ever sees files
//!   that are exactly what was written. The graph hnsw_rs loads borrows its loader
//!   (`HnswIo`) for its whole life; the loader (a few hundred bytes, no data without
//!   mmap) is leaked once per load, which happens at start-up and when a run reloads.
//! - **Parameters.** `Hnsw::new` exits the process when `max_nb_connection > 256`; the
//!   caller checks parameters first (`check_params`).

use std::path::Path;
use std::sync::Arc;

use hnsw_rs::prelude::{AnnT, DataId, Distance, Hnsw, HnswIo, Point};
use serde::{Deserialize, Serialize};

use super::dot::dot;
use super::graph::Near;
use super::HnswParams;

/// Layers hnsw_rs may draw (its maximum, 16).
const MAX_LAYERS: usize = 16;
/// The dump's base name (files `hnsw.hnsw.graph`, `hnsw.hnsw.data`).
const BASENAME: &str = "hnsw";
/// The check file written next to the dump.
const SUMS: &str = "hnsw_rs.json";

/// Cosine distance over unit vectors, `1 - a·b` clamped at 0 (see the module docs).
#[derive(Debug, Default, Clone, Copy)]
pub struct UnitDot;

impl Distance<f32> for UnitDot {
    fn eval(&self, a: &[f32], b: &[f32]) -> f32 {
        (1.0 - dot(a, b)).max(0.0)
    }
}

/// What `hnsw_rs.json` records of a dump.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Sums {
    points: usize,
    dim: usize,
    /// blake3 of `hnsw.hnsw.graph` and `hnsw.hnsw.data` (hex); empty without points.
    graph: String,
    data: String,
}

/// An hnsw_rs graph whose data ids are our node numbers 0, 1, 2…
pub struct HnswRsGraph {
    dim: usize,
    hnsw: Hnsw<'static, f32, UnitDot>,
    /// Node `n`'s point in hnsw_rs (its vector is there).
    nodes: Vec<Arc<Point<'static, f32>>>,
    /// Points already in `nodes`, per layer (hnsw_rs appends new points to each layer's
    /// list).
    seen: Vec<usize>,
}

impl HnswRsGraph {
    /// An empty graph; `params` checked by the caller (hnsw_rs exits on some bad values).
    pub fn new(dim: usize, params: &HnswParams, capacity: usize) -> HnswRsGraph {
        let hnsw = Hnsw::new(
            params.m,
            capacity.max(1_000),
            MAX_LAYERS,
            params.ef_construction,
            UnitDot,
        );
        HnswRsGraph::wrap(dim, hnsw)
    }

    fn wrap(dim: usize, hnsw: Hnsw<'static, f32, UnitDot>) -> HnswRsGraph {
        let layers = hnsw.get_max_level().max(1);
        HnswRsGraph {
            dim,
            hnsw,
            nodes: Vec::new(),
            seen: vec![0; layers],
        }
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Node `node`'s vector.
    pub fn vector(&self, node: u32) -> &[f32] {
        self.nodes[node as usize].get_v()
    }

    /// Appends `vectors` (of the graph's dimension, checked by the caller) as nodes
    /// numbered from [`len`](Self::len), inserted in parallel on the current rayon pool.
    pub fn insert(&mut self, vectors: &[&[f32]]) {
        let first = self.nodes.len();
        let batch: Vec<(&[f32], usize)> = vectors
            .iter()
            .enumerate()
            .map(|(i, v)| (&v[..self.dim], first + i))
            .collect();
        self.hnsw.parallel_insert_slice(&batch);
        self.collect_new_points(vectors.len());
    }

    /// Adds the `count` points inserted last to `nodes`, by their data id.
    fn collect_new_points(&mut self, count: usize) {
        let first = self.nodes.len();
        let mut fresh: Vec<Option<Arc<Point<'static, f32>>>> = vec![None; count];
        let indexation = self.hnsw.get_point_indexation();
        for (layer, seen) in self.seen.iter_mut().enumerate() {
            for point in indexation.get_layer_iterator(layer).skip(*seen) {
                *seen += 1;
                if let Some(slot) = point
                    .get_origin_id()
                    .checked_sub(first)
                    .and_then(|i| fresh.get_mut(i))
                {
                    *slot = Some(point);
                }
            }
        }
        self.nodes.extend(fresh.into_iter().map(|p| {
            // hnsw_rs stores every point it is given, under the data id it was given.
            p.expect("hnsw_rs holds every inserted point")
        }));
    }

    /// The `k` nodes nearest to `q` that `keep` accepts (all when `None`), nearest first.
    /// hnsw_rs's filtered answers are checked again here (an open upstream issue reports
    /// answers that fail the filter), and distances are recomputed with our kernel, so
    /// both engines score a node alike.
    pub fn search(
        &self,
        q: &[f32],
        k: usize,
        ef: usize,
        keep: Option<&dyn Fn(u32) -> bool>,
    ) -> Vec<Near> {
        if k == 0 || self.nodes.is_empty() {
            return Vec::new();
        }
        let ef = ef.max(k);
        let found = match keep {
            None => self.hnsw.search(q, k, ef),
            Some(keep) => {
                let filter = |id: &DataId| u32::try_from(*id).is_ok_and(keep);
                self.hnsw.search_filter(q, k, ef, Some(&filter))
            }
        };
        let mut near: Vec<Near> = found
            .into_iter()
            .filter_map(|n| u32::try_from(n.d_id).ok())
            .filter(|&node| (node as usize) < self.nodes.len() && keep.is_none_or(|f| f(node)))
            .map(|node| Near {
                dist: 1.0 - dot(q, self.vector(node)),
                node,
            })
            .collect();
        near.sort_unstable();
        near.truncate(k);
        near
    }

    /// Dumps the graph into the (fresh) directory `dir` with a check file.
    pub fn write(&self, dir: &Path) -> Result<(), String> {
        let mut sums = Sums {
            points: self.nodes.len(),
            dim: self.dim,
            graph: String::new(),
            data: String::new(),
        };
        if !self.nodes.is_empty() {
            let name = self
                .hnsw
                .file_dump(dir, BASENAME)
                .map_err(|e| format!("hnsw_rs dump: {e}"))?;
            if name != BASENAME {
                return Err(format!("hnsw_rs dumped as {name:?}: {dir:?} was not empty"));
            }
            sums.graph = hash_file(&dir.join(graph_file()))?;
            sums.data = hash_file(&dir.join(data_file()))?;
        }
        let json = serde_json::to_vec_pretty(&sums).map_err(|e| e.to_string())?;
        std::fs::write(dir.join(SUMS), json).map_err(|e| format!("{SUMS}: {e}"))
    }

    /// Loads a graph written by [`write`](Self::write), after checking its files against
    /// their recorded hashes.
    /// `params` shape an empty graph's later inserts (a loaded one keeps its own).
    pub fn read(dir: &Path, params: &HnswParams) -> Result<HnswRsGraph, String> {
        let raw = std::fs::read(dir.join(SUMS)).map_err(|e| format!("{SUMS}: {e}"))?;
        let sums: Sums = serde_json::from_slice(&raw).map_err(|e| format!("{SUMS}: {e}"))?;
        if sums.points == 0 {
            return Ok(HnswRsGraph::new(sums.dim, params, 0));
        }
        for (file, want) in [(graph_file(), &sums.graph), (data_file(), &sums.data)] {
            if hash_file(&dir.join(&file))? != *want {
                return Err(format!("{file} does not match its hash in {SUMS}"));
            }
        }
        let dir = std::path::absolute(dir).map_err(|e| e.to_string())?;
        let loaded = std::panic::catch_unwind(|| load(&dir));
        let mut hnsw = match loaded {
            Ok(Ok(h)) => h,
            Ok(Err(e)) => return Err(format!("hnsw_rs load: {e}")),
            Err(_) => return Err("hnsw_rs load panicked".into()),
        };
        // As `Hnsw::new` sets it, so a loaded graph grows as a new one does.
        hnsw.set_extend_candidates(false);
        if hnsw.get_nb_point() != sums.points {
            return Err(format!(
                "hnsw_rs loaded {} points, {SUMS} says {}",
                hnsw.get_nb_point(),
                sums.points
            ));
        }
        let mut graph = HnswRsGraph::wrap(sums.dim, hnsw);
        graph.collect_all(sums.points)?;
        Ok(graph)
    }

    /// Fills `nodes` with every loaded point, checking ids and dimensions.
    fn collect_all(&mut self, points: usize) -> Result<(), String> {
        let mut all: Vec<Option<Arc<Point<'static, f32>>>> = vec![None; points];
        for point in self.hnsw.get_point_indexation() {
            let id = point.get_origin_id();
            if point.get_v().len() != self.dim {
                return Err(format!(
                    "point {id} has dimension {}, not {}",
                    point.get_v().len(),
                    self.dim
                ));
            }
            match all.get_mut(id) {
                Some(slot @ None) => *slot = Some(point),
                _ => return Err(format!("point id {id} out of range or repeated")),
            }
        }
        for (layer, seen) in self.seen.iter_mut().enumerate() {
            *seen = self.hnsw.get_point_indexation().get_layer_nb_point(layer);
        }
        self.nodes = all
            .into_iter()
            .enumerate()
            .map(|(i, p)| p.ok_or_else(|| format!("point {i} missing from the dump")))
            .collect::<Result<_, _>>()?;
        Ok(())
    }
}

/// Loads the dump in `dir` (absolute) with a loader leaked for the graph to borrow.
fn load(dir: &Path) -> Result<Hnsw<'static, f32, UnitDot>, String> {
    let io: &'static mut HnswIo = Box::leak(Box::new(HnswIo::new(dir, BASENAME)));
    io.load_hnsw::<f32, UnitDot>().map_err(|e| e.to_string())
}

fn graph_file() -> String {
    format!("{BASENAME}.hnsw.graph")
}

fn data_file() -> String {
    format!("{BASENAME}.hnsw.data")
}

/// blake3 of a file, read in 1 MiB pieces.
fn hash_file(path: &Path) -> Result<String, String> {
    let mut hasher = blake3::Hasher::new();
    hasher
        .update_reader(std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(hasher.finalize().to_hex().to_string())
}
