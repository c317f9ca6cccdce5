//! A hierarchical navigable small-world graph (Malkov & Yashunin, 2018) over unit vectors,
//! with distance `1 - a·b`, laid out flat.
//!
//! Why our own rather than hnsw_rs: hnsw_rs keeps every point behind an `Arc` and every
//! link as an `Arc` of 32 bytes. At 1M tracks its graph took 1.8 GB and its build spent
//! over half of its search time on two dependent pointer loads per link (`perf`,
//! docs/MEASUREMENTS.md). Here a node is an index: its vector is a row of one `Vec<f32>`,
//! its layer-0 links a fixed block of one `Vec<AtomicU32>` (count, then up to `2m` node
//! numbers), and its upper-layer links, for the one node in `m` that has any, a block of
//! another. A million 75-d nodes with m = 16 take about 440 MB.
//!
//! Inserts run in parallel: a node's links change only under its lock (striped over
//! [`LOCK_STRIPES`] mutexes), and a builder reads other nodes' links under the same
//! lock. Searches need `&self` while inserts need `&mut self`, so a search never meets a
//! writer and reads the links without locking.
//!
//! The insert follows hnswlib: greedy descent through the upper layers, a beam search of
//! width `ef_construction` on each layer the node belongs to, `m` links picked by the
//! diversity heuristic, back-links added to the chosen neighbours (pruned by the same
//! heuristic when a neighbour is full; layer 0 holds `2m`).

use std::cell::RefCell;
use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering::Relaxed};
use std::sync::{Mutex, MutexGuard, PoisonError};

use rayon::prelude::*;

use super::dot::dot;

/// Highest layer a node can be drawn on (with m = 16 a level above 6 comes once in 16M).
const MAX_LEVEL: usize = 15;
/// Mutexes guarding the nodes' links, node `n` under `n % LOCK_STRIPES`.
const LOCK_STRIPES: usize = 1 << 12;
/// First bytes of a saved graph.
const MAGIC: &[u8; 12] = b"MOTIF-HNSW-1";

/// A node and its distance to the query.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Near {
    pub dist: f32,
    pub node: u32,
}

impl Eq for Near {}

impl Ord for Near {
    fn cmp(&self, other: &Self) -> Ordering {
        self.dist
            .total_cmp(&other.dist)
            .then(self.node.cmp(&other.node))
    }
}

impl PartialOrd for Near {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Entry {
    node: u32,
    level: usize,
}

/// The graph. Nodes are numbered in insertion order from 0.
pub struct Graph {
    dim: usize,
    /// Links per node on the upper layers; layer 0 holds twice as many.
    m: usize,
    ef_construction: usize,
    /// Node `n`'s vector is `vectors[n * dim..(n + 1) * dim]`.
    vectors: Vec<f32>,
    levels: Vec<u8>,
    /// Node `n`'s layer-0 block starts at `n * (2m + 1)`: the count, then the links.
    layer0: Vec<AtomicU32>,
    /// Where node `n`'s upper blocks start in `upper` (layers 1..=level, `m + 1` slots
    /// each); meaningless for a level-0 node.
    upper_at: Vec<usize>,
    upper: Vec<AtomicU32>,
    /// The node searches start from: one on the highest layer.
    entry: Mutex<Option<Entry>>,
    locks: Box<[Mutex<()>]>,
}

/// Per-thread marks of the nodes a search has seen: a number per node, equal to the
/// current search's epoch when seen, so a search starts without clearing anything (the
/// marks are cleared once every 65,535 searches). Two bytes a node: 2 MB per thread that
/// searches a 1M graph.
struct Visited {
    marks: Vec<u16>,
    epoch: u16,
}

impl Visited {
    fn start(&mut self, nodes: usize) {
        if self.marks.len() < nodes {
            self.marks.resize(nodes, 0);
        }
        self.epoch = self.epoch.wrapping_add(1);
        if self.epoch == 0 {
            self.marks.fill(0);
            self.epoch = 1;
        }
    }

    /// Marks `node`; true the first time in this search.
    fn first_visit(&mut self, node: u32) -> bool {
        let mark = &mut self.marks[node as usize];
        let first = *mark != self.epoch;
        *mark = self.epoch;
        first
    }
}

thread_local! {
    static VISITED: RefCell<Visited> = const { RefCell::new(Visited { marks: Vec::new(), epoch: 0 }) };
}

/// Hints the CPU to start loading a node's vector while earlier ones are scored.
#[inline(always)]
fn prefetch(v: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: a prefetch is a hint; it never faults, whatever the address.
        unsafe {
            _mm_prefetch::<_MM_HINT_T0>(v.as_ptr().cast());
            _mm_prefetch::<_MM_HINT_T0>(v.as_ptr().wrapping_add(16).cast());
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = v;
}

/// The layer of node `n`: exponentially distributed with mean `1 / ln m`, drawn from a
/// hash of `n` so a rebuild draws the same layers.
fn random_level(n: usize, m: usize) -> usize {
    let mut x = (n as u64).wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^= x >> 31;
    // Uniform in (0, 1].
    let u = ((x >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
    let level = (-u.ln() / (m as f64).ln()).floor();
    (level as usize).min(MAX_LEVEL)
}

/// Cosine distance under which two vectors count as the same point for link selection
/// (f32 rounding of identical unit vectors stays far below it).
const SAME_POINT: f32 = 1e-6;

fn lock(m: &Mutex<()>) -> MutexGuard<'_, ()> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Graph {
    /// An empty graph; `m` >= 2 and `ef_construction` >= 1 (checked by the caller).
    pub fn new(dim: usize, m: usize, ef_construction: usize, capacity: usize) -> Graph {
        Graph {
            dim,
            m,
            ef_construction,
            vectors: Vec::with_capacity(capacity * dim),
            levels: Vec::with_capacity(capacity),
            layer0: Vec::with_capacity(capacity * (2 * m + 1)),
            upper_at: Vec::with_capacity(capacity),
            upper: Vec::new(),
            entry: Mutex::new(None),
            locks: (0..LOCK_STRIPES).map(|_| Mutex::new(())).collect(),
        }
    }

    /// Nodes in the graph.
    pub fn len(&self) -> usize {
        self.levels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.levels.is_empty()
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Node `node`'s vector.
    pub fn vector(&self, node: u32) -> &[f32] {
        let at = node as usize * self.dim;
        &self.vectors[at..at + self.dim]
    }

    fn distance(&self, q: &[f32], node: u32) -> f32 {
        1.0 - dot(q, self.vector(node))
    }

    fn capacity(&self, layer: usize) -> usize {
        if layer == 0 {
            2 * self.m
        } else {
            self.m
        }
    }

    /// Node `node`'s block on `layer`: the count, then room for the links.
    fn block(&self, node: u32, layer: usize) -> &[AtomicU32] {
        let width = self.capacity(layer) + 1;
        if layer == 0 {
            let at = node as usize * width;
            &self.layer0[at..at + width]
        } else {
            let at = self.upper_at[node as usize] + (layer - 1) * width;
            &self.upper[at..at + width]
        }
    }

    fn lock_of(&self, node: u32) -> &Mutex<()> {
        &self.locks[node as usize % LOCK_STRIPES]
    }

    /// Copies node `node`'s links on `layer` into `out`; `locked` while inserts run.
    fn links(&self, node: u32, layer: usize, locked: bool, out: &mut Vec<u32>) {
        let _guard = locked.then(|| lock(self.lock_of(node)));
        let block = self.block(node, layer);
        let n = (block[0].load(Relaxed) as usize).min(block.len() - 1);
        out.clear();
        out.extend(block[1..=n].iter().map(|l| l.load(Relaxed)));
    }

    fn set_links(&self, node: u32, layer: usize, links: &[Near]) {
        let _guard = lock(self.lock_of(node));
        write_block(self.block(node, layer), links);
    }

    /// Adds `new` (at distance `dist`) to `node`'s links on `layer`; a full list keeps
    /// the most diverse of its links and `new`.
    fn add_back_link(&self, node: u32, new: u32, dist: f32, layer: usize) {
        let _guard = lock(self.lock_of(node));
        let block = self.block(node, layer);
        let cap = block.len() - 1;
        let n = (block[0].load(Relaxed) as usize).min(cap);
        if block[1..=n].iter().any(|l| l.load(Relaxed) == new) {
            return;
        }
        if n < cap {
            block[1 + n].store(new, Relaxed);
            block[0].store(n as u32 + 1, Relaxed);
            return;
        }
        let v = self.vector(node);
        let mut candidates: Vec<Near> = block[1..=n]
            .iter()
            .map(|l| {
                let other = l.load(Relaxed);
                Near {
                    dist: self.distance(v, other),
                    node: other,
                }
            })
            .collect();
        candidates.push(Near { dist, node: new });
        candidates.sort_unstable();
        write_block(block, &self.diverse(&candidates, cap));
    }

    /// The neighbour-selection heuristic: from candidates sorted nearest first, keep a
    /// candidate only if it is nearer to the query than to every candidate kept before
    /// it, up to `cap`. Links then point in different directions, which keeps clusters
    /// connected to each other.
    ///
    /// A candidate identical to one already kept adds no direction and is skipped.
    /// Without that rule, copies of one vector (distance 0 to each other, and so never
    /// "nearer to another kept copy" than to the query) keep only each other as links
    /// and become a closed room that a search walks into and cannot leave.
    fn diverse(&self, sorted: &[Near], cap: usize) -> Vec<Near> {
        if sorted.len() <= cap {
            return sorted.to_vec();
        }
        let mut kept: Vec<Near> = Vec::with_capacity(cap);
        for &c in sorted {
            if kept.len() >= cap {
                break;
            }
            let v = self.vector(c.node);
            let ok = kept.iter().all(|k| {
                let d = self.distance(v, k.node);
                d > SAME_POINT && d >= c.dist
            });
            if ok {
                kept.push(c);
            }
        }
        kept
    }

    /// Greedy walk on one upper layer: move to a nearer neighbour until there is none.
    fn greedy(&self, q: &[f32], mut at: Near, layer: usize, locked: bool) -> Near {
        let mut links = Vec::with_capacity(self.m);
        loop {
            let mut moved = false;
            self.links(at.node, layer, locked, &mut links);
            for &n in &links {
                let dist = self.distance(q, n);
                if dist < at.dist {
                    at = Near { dist, node: n };
                    moved = true;
                }
            }
            if !moved {
                return at;
            }
        }
    }

    /// Beam search of width `ef` on one layer from `start`; the nodes `keep` accepts
    /// (all when `None`), nearest first. Rejected nodes are still walked through.
    fn search_layer(
        &self,
        q: &[f32],
        start: Near,
        ef: usize,
        layer: usize,
        keep: Option<&dyn Fn(u32) -> bool>,
        locked: bool,
    ) -> Vec<Near> {
        VISITED.with_borrow_mut(|visited| {
            visited.start(self.len());
            visited.first_visit(start.node);
            let mut candidates: BinaryHeap<Reverse<Near>> = BinaryHeap::with_capacity(2 * ef);
            let mut results: BinaryHeap<Near> = BinaryHeap::with_capacity(ef + 1);
            candidates.push(Reverse(start));
            if keep.is_none_or(|f| f(start.node)) {
                results.push(start);
            }
            let mut worst = results.peek().map_or(f32::INFINITY, |n| n.dist);
            let mut links = Vec::with_capacity(2 * self.m);
            while let Some(Reverse(c)) = candidates.pop() {
                if c.dist > worst && results.len() >= ef {
                    break;
                }
                self.links(c.node, layer, locked, &mut links);
                links.retain(|&n| visited.first_visit(n));
                for &n in &links {
                    prefetch(self.vector(n));
                }
                for &n in &links {
                    let dist = self.distance(q, n);
                    if results.len() < ef || dist < worst {
                        let near = Near { dist, node: n };
                        candidates.push(Reverse(near));
                        if keep.is_none_or(|f| f(n)) {
                            results.push(near);
                            if results.len() > ef {
                                results.pop();
                            }
                            worst = results.peek().map_or(f32::INFINITY, |n| n.dist);
                        }
                    }
                }
            }
            results.into_sorted_vec()
        })
    }

    fn entry(&self) -> Option<Entry> {
        *self.entry.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Links a node whose vector and level are in place into the graph.
    fn link(&self, node: u32) {
        let Some(entry) = self.entry() else {
            return;
        };
        let level = usize::from(self.levels[node as usize]);
        let q = self.vector(node);
        let mut at = Near {
            dist: self.distance(q, entry.node),
            node: entry.node,
        };
        for layer in (level + 1..=entry.level).rev() {
            at = self.greedy(q, at, layer, true);
        }
        for layer in (0..=level.min(entry.level)).rev() {
            let found = self.search_layer(q, at, self.ef_construction, layer, None, true);
            let chosen = self.diverse(&found, self.m);
            self.set_links(node, layer, &chosen);
            for c in &chosen {
                self.add_back_link(c.node, node, c.dist, layer);
            }
            if let Some(&nearest) = found.first() {
                at = nearest;
            }
        }
        if level > entry.level {
            let mut e = self.entry.lock().unwrap_or_else(PoisonError::into_inner);
            if e.is_none_or(|e| level > e.level) {
                *e = Some(Entry { node, level });
            }
        }
    }

    /// Appends `vectors` (each of the graph's dimension, checked by the caller) as new
    /// nodes numbered from [`len`](Self::len), linked in parallel on the current rayon pool.
    pub fn insert(&mut self, vectors: &[&[f32]]) {
        let first = self.len();
        let width0 = 2 * self.m + 1;
        for v in vectors {
            let node = self.levels.len();
            let level = random_level(node, self.m);
            self.vectors.extend_from_slice(&v[..self.dim]);
            self.levels.push(level as u8);
            self.layer0.extend((0..width0).map(|_| AtomicU32::new(0)));
            self.upper_at.push(self.upper.len());
            self.upper
                .extend((0..level * (self.m + 1)).map(|_| AtomicU32::new(0)));
        }
        let mut next = first;
        let entry = self.entry.get_mut().unwrap_or_else(PoisonError::into_inner);
        if entry.is_none() && next < self.levels.len() {
            *entry = Some(Entry {
                node: next as u32,
                level: usize::from(self.levels[next]),
            });
            next += 1;
        }
        // Nodes are handed out in order to whichever worker is free, so the graph grows
        // as it would in a sequential build. One worker per pool thread, but a worker
        // does not wait for the others: if the pool is busy elsewhere (an analysis run),
        // the workers that start take all the nodes.
        let counter = AtomicUsize::new(next);
        let end = self.len();
        let graph = &*self;
        (0..rayon::current_num_threads().max(1))
            .into_par_iter()
            .with_max_len(1)
            .for_each(|_| loop {
                let n = counter.fetch_add(1, Relaxed);
                if n >= end {
                    break;
                }
                graph.link(n as u32);
            });
    }

    /// The `k` nodes nearest to `q` that `keep` accepts (all when `None`), nearest
    /// first, from a beam of width `ef` (at least `k`) on layer 0.
    pub fn search(
        &self,
        q: &[f32],
        k: usize,
        ef: usize,
        keep: Option<&dyn Fn(u32) -> bool>,
    ) -> Vec<Near> {
        let Some(entry) = self.entry() else {
            return Vec::new();
        };
        let mut at = Near {
            dist: self.distance(q, entry.node),
            node: entry.node,
        };
        for layer in (1..=entry.level).rev() {
            at = self.greedy(q, at, layer, false);
        }
        let mut found = self.search_layer(q, at, ef.max(k), 0, keep, false);
        found.truncate(k);
        found
    }

    /// Writes the graph in its own little-endian format (see [`read_from`](Self::read_from)).
    pub fn write_to(&self, w: &mut impl Write) -> io::Result<()> {
        let entry = self.entry();
        w.write_all(MAGIC)?;
        for x in [
            self.dim as u64,
            self.m as u64,
            self.ef_construction as u64,
            self.len() as u64,
            entry.map_or(u64::MAX, |e| u64::from(e.node)),
        ] {
            w.write_all(&x.to_le_bytes())?;
        }
        w.write_all(&self.levels)?;
        write_words(w, self.vectors.iter().map(|x| x.to_bits()))?;
        write_words(w, self.layer0.iter().map(|x| x.load(Relaxed)))?;
        write_words(w, self.upper.iter().map(|x| x.load(Relaxed)))?;
        w.flush()
    }

    /// Reads a graph written by [`write_to`](Self::write_to), checking every count and
    /// link: a damaged file is an error, never a graph that panics later.
    pub fn read_from(r: &mut impl Read) -> Result<Graph, String> {
        let mut magic = [0u8; 12];
        r.read_exact(&mut magic)
            .map_err(|e| format!("header: {e}"))?;
        if &magic != MAGIC {
            return Err("not a Motif HNSW graph (or an older format)".into());
        }
        let mut header = [0u64; 5];
        for h in &mut header {
            let mut b = [0u8; 8];
            r.read_exact(&mut b).map_err(|e| format!("header: {e}"))?;
            *h = u64::from_le_bytes(b);
        }
        let [dim, m, ef_construction, n, entry] = header;
        if dim == 0 || dim > 65_536 || !(2..=256).contains(&m) || ef_construction == 0 {
            return Err(format!(
                "bad header: dim {dim}, m {m}, ef {ef_construction}"
            ));
        }
        if n > u64::from(u32::MAX)
            || (entry != u64::MAX && entry >= n)
            || (n > 0) != (entry != u64::MAX)
        {
            return Err(format!("bad header: {n} nodes, entry {entry}"));
        }
        let (dim, m, n) = (dim as usize, m as usize, n as usize);
        let mut g = Graph::new(dim, m, ef_construction as usize, 0);
        g.levels = vec![0u8; n];
        r.read_exact(&mut g.levels)
            .map_err(|e| format!("levels: {e}"))?;
        if let Some(l) = g.levels.iter().find(|&&l| usize::from(l) > MAX_LEVEL) {
            return Err(format!("node level {l} above {MAX_LEVEL}"));
        }
        let mut upper_len = 0usize;
        g.upper_at = g
            .levels
            .iter()
            .map(|&l| {
                let at = upper_len;
                upper_len += usize::from(l) * (m + 1);
                at
            })
            .collect();
        g.vectors = read_words(r, n * dim, "vectors")?
            .into_iter()
            .map(f32::from_bits)
            .collect();
        g.layer0 = read_words(r, n * (2 * m + 1), "layer 0")?
            .into_iter()
            .map(AtomicU32::new)
            .collect();
        g.upper = read_words(r, upper_len, "upper layers")?
            .into_iter()
            .map(AtomicU32::new)
            .collect();
        let mut trailing = [0u8; 1];
        if r.read(&mut trailing).map_err(|e| e.to_string())? != 0 {
            return Err("bytes after the graph".into());
        }
        for node in 0..n as u32 {
            for layer in 0..=usize::from(g.levels[node as usize]) {
                let block = g.block(node, layer);
                let count = block[0].load(Relaxed) as usize;
                if count > g.capacity(layer) {
                    return Err(format!("node {node} has {count} links on layer {layer}"));
                }
                if let Some(l) = block[1..=count]
                    .iter()
                    .find(|l| l.load(Relaxed) as usize >= n)
                {
                    return Err(format!(
                        "node {node} links to missing node {}",
                        l.load(Relaxed)
                    ));
                }
            }
        }
        if entry != u64::MAX {
            let node = entry as u32;
            let level = usize::from(g.levels[node as usize]);
            if g.levels.iter().any(|&l| usize::from(l) > level) {
                return Err("entry node is not on the top layer".into());
            }
            *g.entry.get_mut().unwrap_or_else(PoisonError::into_inner) =
                Some(Entry { node, level });
        }
        Ok(g)
    }
}

/// Overwrites a links block (its node's lock held) with `links`, as many as fit.
fn write_block(block: &[AtomicU32], links: &[Near]) {
    for (slot, l) in block[1..].iter().zip(links) {
        slot.store(l.node, Relaxed);
    }
    block[0].store(links.len().min(block.len() - 1) as u32, Relaxed);
}

fn write_words(w: &mut impl Write, words: impl Iterator<Item = u32>) -> io::Result<()> {
    let mut buf = Vec::with_capacity(1 << 16);
    for x in words {
        buf.extend_from_slice(&x.to_le_bytes());
        if buf.len() >= 1 << 16 {
            w.write_all(&buf)?;
            buf.clear();
        }
    }
    w.write_all(&buf)
}

/// Reads `count` little-endian u32s in chunks (no second copy of a large section).
fn read_words(r: &mut impl Read, count: usize, what: &str) -> Result<Vec<u32>, String> {
    let mut out = Vec::with_capacity(count);
    let mut buf = vec![0u8; 1 << 16];
    while out.len() < count {
        let want = ((count - out.len()) * 4).min(buf.len());
        r.read_exact(&mut buf[..want])
            .map_err(|e| format!("{what}: {e}"))?;
        out.extend(
            buf[..want]
                .chunks_exact(4)
                .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])),
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::tests::unit;
    use super::*;

    fn exact(vectors: &[Vec<f32>], q: &[f32], k: usize) -> Vec<u32> {
        let mut all: Vec<Near> = vectors
            .iter()
            .enumerate()
            .map(|(i, v)| Near {
                dist: 1.0 - dot(q, v),
                node: i as u32,
            })
            .collect();
        all.sort_unstable();
        all.iter().take(k).map(|n| n.node).collect()
    }

    #[test]
    fn recall_in_batches_and_layer_draws() {
        let dim = 24;
        let vectors: Vec<Vec<f32>> = (0..4_000).map(|i| unit(i, dim)).collect();
        let mut g = Graph::new(dim, 12, 100, 0);
        // Several inserts, as catch-ups add points, into one graph.
        for chunk in vectors.chunks(1_500) {
            let refs: Vec<&[f32]> = chunk.iter().map(Vec::as_slice).collect();
            g.insert(&refs);
        }
        assert_eq!(g.len(), 4_000);
        let mut hits = 0;
        for q in 0..100 {
            let query = unit(10_000 + q, dim);
            let want = exact(&vectors, &query, 10);
            let got: Vec<u32> = g
                .search(&query, 10, 64, None)
                .iter()
                .map(|n| n.node)
                .collect();
            hits += got.iter().filter(|n| want.contains(n)).count();
        }
        assert!(hits >= 900, "recall@10 {}", hits as f64 / 1000.0);
        // Every node finds itself.
        for (i, v) in vectors.iter().enumerate().step_by(97) {
            assert_eq!(g.search(v, 1, 32, None)[0].node, i as u32);
        }
        // Layers: about 1 node in m above layer 0.
        let above = g.levels.iter().filter(|&&l| l > 0).count();
        assert!((150..=520).contains(&above), "{above}");
    }

    #[test]
    fn filters_hold_and_damaged_files_are_errors() {
        let dim = 8;
        let vectors: Vec<Vec<f32>> = (0..500).map(|i| unit(i, dim)).collect();
        let refs: Vec<&[f32]> = vectors.iter().map(Vec::as_slice).collect();
        let mut g = Graph::new(dim, 8, 50, 500);
        g.insert(&refs);
        let odd = |n: u32| n % 2 == 1;
        let got = g.search(&vectors[4], 20, 64, Some(&odd));
        assert_eq!(got.len(), 20);
        assert!(got.iter().all(|n| n.node % 2 == 1));
        assert!(got.windows(2).all(|w| w[0].dist <= w[1].dist));

        let mut bytes = Vec::new();
        g.write_to(&mut bytes).unwrap();
        let back = Graph::read_from(&mut bytes.as_slice()).unwrap();
        assert_eq!(
            back.search(&vectors[9], 5, 32, None),
            g.search(&vectors[9], 5, 32, None)
        );
        assert_eq!(back.vector(7), g.vector(7));
        // Truncated, extended, or with a link past the last node: errors.
        assert!(Graph::read_from(&mut &bytes[..bytes.len() - 3]).is_err());
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(Graph::read_from(&mut longer.as_slice()).is_err());
        let header = MAGIC.len() + 5 * 8 + 500 + 500 * dim * 4;
        let mut bad = bytes.clone();
        bad[header + 4..header + 8].copy_from_slice(&9_999u32.to_le_bytes());
        let err = Graph::read_from(&mut bad.as_slice()).err().unwrap();
        assert!(err.contains("missing node"), "{err}");
        assert!(Graph::read_from(&mut &b"MOTIF-HNSW-0"[..]).is_err());
    }

    /// Hundreds of copies of one vector, and hundreds of near-copies of another (other
    /// encodes of one recording), among distinct ones: every node's walk still finds
    /// its true neighbours (copies must not wall a region off).
    #[test]
    fn a_flood_of_identical_vectors_traps_no_search() {
        let dim = 16;
        let copy = unit(424_242, dim);
        let near = unit(434_343, dim);
        let mut vectors: Vec<Vec<f32>> = (0..3_000).map(|i| unit(i, dim)).collect();
        // 200 copies and 200 near-copies inserted among the others, as re-deliveries
        // arrive over time.
        for i in 0..200 {
            vectors.insert(i * 14 + 7, copy.clone());
            let noise = unit(900_000 + i as u64, dim);
            let mut v: Vec<f32> = near.iter().zip(&noise).map(|(a, b)| a + 0.05 * b).collect();
            embeddings::embedding::l2_normalise(&mut v);
            vectors.insert(i * 14 + 3, v);
        }
        let mut g = Graph::new(dim, 16, 200, 0);
        for chunk in vectors.chunks(700) {
            let refs: Vec<&[f32]> = chunk.iter().map(Vec::as_slice).collect();
            g.insert(&refs);
        }
        let k = 10;
        let (mut hits, mut short) = (0, 0);
        for v in &vectors {
            let got = g.search(v, k, 128, None);
            if got.len() < k {
                short += 1;
            }
            let want = exact(&vectors, v, k);
            let cutoff = 1.0 - dot(v, &vectors[want[k - 1] as usize]);
            // Ties at the cutoff (the copies) make several answers right: count a hit
            // when a found node is at least as near as the k-th true neighbour.
            hits += got.iter().filter(|n| n.dist <= cutoff + 1e-5).count();
        }
        assert_eq!(short, 0, "searches answering fewer than {k}");
        let recall = hits as f64 / (vectors.len() * k) as f64;
        assert!(recall >= 0.95, "recall@{k} {recall}");
        eprintln!("flood recall@{k} {recall}");
    }

    #[test]
    fn visited_marks_survive_the_epoch_wrapping_around() {
        let mut v = Visited {
            marks: Vec::new(),
            epoch: 0,
        };
        for i in 0..70_000u32 {
            v.start(4);
            assert!(v.first_visit(i % 4), "search {i}");
            assert!(!v.first_visit(i % 4));
            assert!(v.first_visit((i + 1) % 4));
        }
    }

    #[test]
    fn an_empty_graph_answers_nothing_and_round_trips() {
        let g = Graph::new(4, 16, 100, 0);
        assert!(g.search(&[1.0, 0.0, 0.0, 0.0], 3, 10, None).is_empty());
        let mut bytes = Vec::new();
        g.write_to(&mut bytes).unwrap();
        let back = Graph::read_from(&mut bytes.as_slice()).unwrap();
        assert_eq!(back.len(), 0);
    }
}
