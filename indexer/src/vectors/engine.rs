//! Which HNSW implementation holds a [`VectorIndex`](super::VectorIndex)'s graph, and the
//! one place that dispatches to it.
//!
//! Two engines answer the same calls: our own flat graph ([`Graph`], the default) and
//! hnsw_rs, the design card's engine ([`HnswRsGraph`]). Both number their nodes 0, 1, 2…
//! in insertion order, hold every node's vector, and answer a search with nodes that pass
//! the filter, nearest first. Everything else a vector index needs (tombstones, track ids,
//! int8 codes, exact scans, the search plans, `meta.json`) lives once in `VectorIndex`, so
//! the engines are compared on their graphs alone. The engine an index was built with is
//! recorded in its `meta.json` and read back on load.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::graph::{Graph, Near};
use super::hnsw_rs_graph::HnswRsGraph;
use super::HnswParams;

/// The HNSW implementation of a vector index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum Engine {
    /// Our own flat HNSW graph (`graph.rs`): 2.8x faster to build and 4x smaller than
    /// hnsw_rs at 1M tracks (docs/MEASUREMENTS.md), hence the default.
    #[default]
    #[serde(rename = "graph")]
    Graph,
    /// hnsw_rs 0.3.5, the engine the design card names.
    #[serde(rename = "hnsw-rs")]
    HnswRs,
}

impl Engine {
    /// Every engine, in the order benchmarks list them.
    pub const ALL: [Engine; 2] = [Engine::Graph, Engine::HnswRs];

    /// The name used on the command line and in `meta.json`.
    pub fn name(self) -> &'static str {
        match self {
            Engine::Graph => "graph",
            Engine::HnswRs => "hnsw-rs",
        }
    }
}

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is no engine.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown vector engine {0:?} (graph or hnsw-rs)")]
pub struct UnknownEngine(pub String);

impl FromStr for Engine {
    type Err = UnknownEngine;

    fn from_str(s: &str) -> Result<Engine, UnknownEngine> {
        Engine::ALL
            .into_iter()
            .find(|e| e.name() == s.trim())
            .ok_or_else(|| UnknownEngine(s.to_string()))
    }
}

/// The graph behind a vector index: one engine's, dispatched here and nowhere else.
pub(super) enum Backend {
    Graph(Graph),
    HnswRs(HnswRsGraph),
}

impl Backend {
    /// An empty graph of `engine` (parameters checked by the caller).
    pub fn new(engine: Engine, dim: usize, params: &HnswParams, capacity: usize) -> Backend {
        match engine {
            Engine::Graph => {
                Backend::Graph(Graph::new(dim, params.m, params.ef_construction, capacity))
            }
            Engine::HnswRs => Backend::HnswRs(HnswRsGraph::new(dim, params, capacity)),
        }
    }

    pub fn engine(&self) -> Engine {
        match self {
            Backend::Graph(_) => Engine::Graph,
            Backend::HnswRs(_) => Engine::HnswRs,
        }
    }

    /// Nodes in the graph, dead ones included.
    pub fn len(&self) -> usize {
        match self {
            Backend::Graph(g) => g.len(),
            Backend::HnswRs(h) => h.len(),
        }
    }

    pub fn dim(&self) -> usize {
        match self {
            Backend::Graph(g) => g.dim(),
            Backend::HnswRs(h) => h.dim(),
        }
    }

    /// Node `node`'s vector.
    pub fn vector(&self, node: u32) -> &[f32] {
        match self {
            Backend::Graph(g) => g.vector(node),
            Backend::HnswRs(h) => h.vector(node),
        }
    }

    /// Appends `vectors` as nodes numbered from [`len`](Self::len), in parallel.
    pub fn insert(&mut self, vectors: &[&[f32]]) {
        match self {
            Backend::Graph(g) => g.insert(vectors),
            Backend::HnswRs(h) => h.insert(vectors),
        }
    }

    /// The `k` nodes nearest to `q` that `keep` accepts (all when `None`), nearest first,
    /// from a beam of width `ef` (at least `k`).
    pub fn search(
        &self,
        q: &[f32],
        k: usize,
        ef: usize,
        keep: Option<&dyn Fn(u32) -> bool>,
    ) -> Vec<Near> {
        match self {
            Backend::Graph(g) => g.search(q, k, ef, keep),
            Backend::HnswRs(h) => h.search(q, k, ef, keep),
        }
    }

    /// Writes the graph's files into the (fresh) directory `dir`.
    pub fn write(&self, dir: &Path) -> Result<(), String> {
        match self {
            Backend::Graph(g) => {
                let file = std::fs::File::create(dir.join(GRAPH_FILE))
                    .map_err(|e| format!("{GRAPH_FILE}: {e}"))?;
                g.write_to(&mut std::io::BufWriter::with_capacity(1 << 20, file))
                    .map_err(|e| format!("{GRAPH_FILE}: {e}"))
            }
            Backend::HnswRs(h) => h.write(dir),
        }
    }

    /// Reads the graph `engine` wrote into `dir` with [`write`](Self::write); a missing
    /// or damaged file is an error, never a panic.
    /// `params` shape an empty graph's later inserts.
    pub fn read(engine: Engine, dir: &Path, params: &HnswParams) -> Result<Backend, String> {
        match engine {
            Engine::Graph => {
                let file = std::fs::File::open(dir.join(GRAPH_FILE))
                    .map_err(|e| format!("{GRAPH_FILE}: {e}"))?;
                Graph::read_from(&mut std::io::BufReader::with_capacity(1 << 20, file))
                    .map(Backend::Graph)
                    .map_err(|e| format!("{GRAPH_FILE}: {e}"))
            }
            Engine::HnswRs => HnswRsGraph::read(dir, params).map(Backend::HnswRs),
        }
    }
}

/// Our graph's file in an index directory.
const GRAPH_FILE: &str = "graph.bin";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_are_errors() {
        for e in Engine::ALL {
            assert_eq!(e.to_string().parse::<Engine>(), Ok(e));
            let json = serde_json::to_string(&e).unwrap();
            assert_eq!(json, format!("\"{e}\""));
            assert_eq!(serde_json::from_str::<Engine>(&json).unwrap(), e);
        }
        assert_eq!("hnsw-rs".parse::<Engine>(), Ok(Engine::HnswRs));
        assert_eq!(
            "hnsw_rs".parse::<Engine>(),
            Err(UnknownEngine("hnsw_rs".into()))
        );
        assert_eq!(Engine::default(), Engine::Graph);
    }
}
