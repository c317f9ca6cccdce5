//! Playlist generation and song paths.
//!
//! A playlist request names hard constraints (filters: tags, attribute ranges such as a
//! BPM range, key, ...; a size or a total duration with a tolerance; `max_per_artist`;
//! `artist_gap`) and soft ones (seed tracks, attribute targets, an ordering). Hard
//! filters are never relaxed: every track in the answer passes them. When the catalogue
//! cannot meet a size, duration or artist constraint, the answer says which constraint
//! was relaxed and how, instead of quietly breaking it.
//!
//! Orderings: `smooth` (each step the closest in the embedding among good candidates),
//! `harmonic` (Camelot-compatible key moves and tempo steps within 6 %, preferred at each
//! step and reported where impossible), `energy_arc` (rise, peak around two thirds in,
//! cool down). A `seed` makes tie-breaking jitter reproducible.

use std::collections::{HashMap, HashSet};

use indexer::catalog::ATTRIBUTE_COUNT;
use indexer::derived::DerivedIndexes;
use indexer::filter::NumField;
use indexer::text::Row;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::copies::{self, Copies, CopyOf};
use crate::engine::{round4, Engine};
use crate::error::{ApiError, ApiResult};
use crate::music::{tempo_distance, KeyRelation};
use crate::params::FilterJson;
use crate::view::TrackView;

/// The largest playlist one request may ask for.
pub const MAX_SIZE: usize = 500;
/// Candidates considered after relevance ranking (bounds the ordering work): 20 per
/// track asked for, between 400 and 2,000.
const POOL_PER_TRACK: usize = 20;
const POOL_MIN: usize = 400;
const POOL_MAX: usize = 2_000;
/// Without seeds, a filter allowing more tracks than this is sampled down to about this
/// many (reproducibly, by the request's seed) before ranking by targets.
const SAMPLE: usize = 20_000;
/// Tempo step (relative) a harmonic ordering accepts.
const HARMONIC_TEMPO_STEP: f64 = 0.06;

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Order {
    #[default]
    Smooth,
    Harmonic,
    EnergyArc,
}

/// `POST /v1/playlists`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlaylistRequest {
    /// Hard constraints (tags all/any/none, attribute ranges, key, mode, Camelot, artists).
    #[serde(default)]
    pub filters: FilterJson,
    /// Tracks the playlist should sound like.
    #[serde(default)]
    pub seeds: Vec<i64>,
    /// Soft attribute targets (`{"energy": 0.3, "tempo_bpm": 90}`).
    #[serde(default)]
    pub targets: HashMap<String, f64>,
    /// Number of tracks (default 20 unless `duration_s` is given).
    pub size: Option<usize>,
    /// Total duration in seconds (instead of `size`).
    pub duration_s: Option<f64>,
    /// Allowed distance from `duration_s` (default 2 % of it, at least 60 s).
    pub tolerance_s: Option<f64>,
    pub max_per_artist: Option<usize>,
    /// No artist may appear twice within this many consecutive tracks.
    pub artist_gap: Option<usize>,
    #[serde(default)]
    pub order: Order,
    /// Makes tie-breaking reproducible (default 0).
    #[serde(default)]
    pub seed: u64,
    /// One copy per recording (the default) or every copy (`"all"`).
    #[serde(default)]
    pub copies: Copies,
}

/// A candidate with what the ordering needs.
struct Cand {
    row: Row,
    vector: Vec<f32>,
    relevance: f64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Goal {
    Size(usize),
    Duration { target: f64, tolerance: f64 },
}

pub fn generate(engine: &Engine, req: PlaylistRequest) -> ApiResult<Value> {
    crate::params::check_len("seeds", req.seeds.len(), crate::params::MAX_LIST)?;
    crate::params::check_len("targets", req.targets.len(), crate::params::MAX_LIST)?;
    let goal = match (req.size, req.duration_s) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad(
                "bad_playlist",
                "give size or duration_s, not both",
            ))
        }
        (Some(n), None) => {
            if n == 0 || n > MAX_SIZE {
                return Err(ApiError::bad(
                    "bad_size",
                    format!("size must be 1..={MAX_SIZE}"),
                ));
            }
            Goal::Size(n)
        }
        (None, Some(d)) => {
            if !(d.is_finite() && d > 0.0 && d <= 86_400.0) {
                return Err(ApiError::bad(
                    "bad_duration",
                    "duration_s must be in (0, 86400]",
                ));
            }
            let tolerance = req.tolerance_s.unwrap_or((d * 0.02).max(60.0));
            if !(tolerance.is_finite() && tolerance >= 0.0) {
                return Err(ApiError::bad("bad_duration", "tolerance_s must be >= 0"));
            }
            Goal::Duration {
                target: d,
                tolerance,
            }
        }
        (None, None) => Goal::Size(20),
    };
    if req.max_per_artist == Some(0) {
        return Err(ApiError::bad(
            "bad_playlist",
            "max_per_artist must be at least 1",
        ));
    }
    let mut targets: Vec<(usize, f64)> = Vec::new();
    for (name, v) in &req.targets {
        match NumField::parse(name) {
            Some(NumField::Attribute(i)) if v.is_finite() => targets.push((i, *v)),
            Some(NumField::Attribute(_)) => return Err(ApiError::bad_number(name, &v.to_string())),
            _ => {
                return Err(ApiError::bad(
                    "unknown_field",
                    format!("no attribute named {name:?} to target"),
                ))
            }
        }
    }
    let filter = req.filters.clone().into_filter()?;
    engine.check_tags(&filter)?;

    engine.with_indexes(|ix| {
        let expected = match goal {
        Goal::Size(n) => n,
        // About four minutes a track.
        Goal::Duration { target, .. } => (target / 240.0).ceil() as usize,
    };
    let pool_size = (expected * POOL_PER_TRACK).clamp(POOL_MIN, POOL_MAX);
    let pool = candidates(engine, ix, &req, &filter, &targets, pool_size)?;
        let mut relaxed: Vec<Value> = Vec::new();
        let picked = pick(pool, goal, &req, &mut relaxed);
        let total: f64 = picked.iter().map(|c| c.row.duration_s as f64).sum();
        if let Goal::Duration { target, tolerance } = goal {
            if (total - target).abs() > tolerance {
                relaxed.push(json!({
                    "constraint": "duration_s",
                    "asked": target, "tolerance_s": tolerance, "got": round4(total),
                    "why": "the tracks that pass the filters cannot fill the duration within the tolerance",
                }));
            }
        }
        if let Goal::Size(n) = goal {
            if picked.len() < n {
                relaxed.push(json!({
                    "constraint": "size", "asked": n, "got": picked.len(),
                    "why": "fewer tracks pass the filters and artist limits",
                }));
            }
        }
        render(ix, picked, &req, relaxed, total)
    })
}

/// The tracks that pass the hard filters, ranked by relevance (seed similarity, target
/// fit, seeded jitter), at most `pool_size`.
fn candidates(
    engine: &Engine,
    ix: &DerivedIndexes,
    req: &PlaylistRequest,
    filter: &indexer::filter::Filter,
    targets: &[(usize, f64)],
    pool_size: usize,
) -> ApiResult<Vec<Cand>> {
    let allowed = engine.allowed(ix, filter)?;
    let allowed_n = allowed.as_ref().map_or(ix.vectors.len(), |a| a.len());
    let centroid = if req.seeds.is_empty() {
        None
    } else {
        let mut q = vec![0f32; ix.vectors.dim()];
        for &id in &req.seeds {
            let v = ix
                .vectors
                .vector(id)
                .ok_or_else(|| ApiError::unknown_track(id))?;
            q.iter_mut().zip(&v).for_each(|(a, b)| *a += b);
        }
        Some(crate::engine::normalise(q)?)
    };
    let seed_set: HashSet<i64> = req.seeds.iter().copied().collect();
    // Read attributes only for a bounded pool: with seeds, the allowed tracks nearest to
    // them; without, a seeded sample when the filter allows many.
    let ids: Vec<i64> = match &centroid {
        Some(q) if allowed_n > pool_size => engine
            .nearest_in(ix, q, pool_size + seed_set.len(), allowed.as_deref())
            .into_iter()
            .map(|n| n.0)
            .collect(),
        _ => {
            let share = (SAMPLE as f64 / allowed_n.max(1) as f64).min(1.0);
            let keep = |id: i64| share >= 1.0 || jitter(req.seed, id) < share;
            match &allowed {
                Some(set) => set.iter().filter(|&id| keep(id)).collect(),
                None => ix.vectors.track_ids().filter(|&id| keep(id)).collect(),
            }
        }
    };
    let rows = ix.text.rows_of(ids.into_iter())?;
    let scale = attribute_scales(&rows);
    let rows: Vec<Row> = rows
        .into_iter()
        .filter(|r| !seed_set.contains(&r.id))
        .collect();
    // One copy per recording, and none of a seed's (another copy of a seed is the seed).
    let rows = match req.copies {
        Copies::All => rows,
        Copies::One => {
            let taken: HashSet<u64> = ix
                .text
                .cards(&req.seeds)?
                .iter()
                .map(|c| c.recording)
                .collect();
            let copy_of = |r: &Row| CopyOf {
                id: r.id,
                recording: r.recording,
                quality: r.quality,
                duration_s: r.duration_s,
            };
            copies::one_per_recording(rows, copy_of, &taken).0
        }
    };
    let mut out: Vec<Cand> = Vec::new();
    for row in rows {
        let Some(vector) = ix.vectors.vector(row.id) else {
            continue;
        };
        let mut relevance = 0.0;
        if let Some(q) = &centroid {
            relevance += vector
                .iter()
                .zip(q)
                .map(|(a, b)| (a * b) as f64)
                .sum::<f64>();
        }
        for &(i, t) in targets {
            let d = ((row.attributes[i] as f64 - t) / scale[i]).abs();
            relevance += 1.0 - d.min(2.0);
        }
        relevance += 0.05 * jitter(req.seed, row.id);
        out.push(Cand {
            row,
            vector,
            relevance,
        });
    }
    out.sort_by(|a, b| {
        b.relevance
            .total_cmp(&a.relevance)
            .then(a.row.id.cmp(&b.row.id))
    });
    out.truncate(pool_size);
    Ok(out)
}

/// Spread of each attribute in the pool (so targets on different scales weigh alike).
fn attribute_scales(rows: &[Row]) -> [f64; ATTRIBUTE_COUNT] {
    let mut s = [1.0; ATTRIBUTE_COUNT];
    if rows.len() < 2 {
        return s;
    }
    for (i, slot) in s.iter_mut().enumerate() {
        let (lo, hi) = rows.iter().fold((f64::MAX, f64::MIN), |(lo, hi), r| {
            let v = r.attributes[i] as f64;
            (lo.min(v), hi.max(v))
        });
        *slot = (hi - lo).max(1e-6);
    }
    s
}

/// Deterministic jitter in [0, 1) from the request seed and a track id (splitmix64).
fn jitter(seed: u64, id: i64) -> f64 {
    let mut z = seed ^ (id as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>() as f64
}

/// Whether `c` may follow `list` given the artist rules.
fn artist_ok(
    list: &[Cand],
    c: &Cand,
    gap: usize,
    cap: Option<usize>,
    counts: &HashMap<u64, usize>,
) -> bool {
    if cap.is_some_and(|m| {
        c.row
            .artists
            .iter()
            .any(|a| counts.get(a).copied().unwrap_or(0) >= m)
    }) {
        return false;
    }
    let recent = list.iter().rev().take(gap);
    for prev in recent {
        if prev.row.artists.iter().any(|a| c.row.artists.contains(a)) {
            return false;
        }
    }
    true
}

/// Picks and orders tracks. Artist rules are kept; when they make the goal unreachable
/// the gap is lowered step by step (then the cap dropped) and that is reported.
fn pick(pool: Vec<Cand>, goal: Goal, req: &PlaylistRequest, relaxed: &mut Vec<Value>) -> Vec<Cand> {
    let asked_gap = req.artist_gap.unwrap_or(0);
    let mut gap = asked_gap;
    let mut cap = req.max_per_artist;
    let mut pool = pool;
    loop {
        let (list, rest) = build(pool, goal, req, gap, cap);
        let reached = match goal {
            Goal::Size(n) => list.len() >= n,
            Goal::Duration { target, tolerance } => {
                list.iter().map(|c| c.row.duration_s as f64).sum::<f64>() >= target - tolerance
            }
        };
        if reached || (gap == 0 && cap.is_none()) || rest.is_empty() {
            if gap != asked_gap {
                relaxed.push(json!({
                    "constraint": "artist_gap", "asked": asked_gap, "used": gap,
                    "why": "too few distinct artists among the tracks that pass the filters",
                }));
            }
            if cap != req.max_per_artist {
                relaxed.push(json!({
                    "constraint": "max_per_artist", "asked": req.max_per_artist, "used": null,
                    "why": "too few distinct artists among the tracks that pass the filters",
                }));
            }
            return list;
        }
        pool = list.into_iter().chain(rest).collect();
        pool.sort_by(|a, b| {
            b.relevance
                .total_cmp(&a.relevance)
                .then(a.row.id.cmp(&b.row.id))
        });
        if gap > 0 {
            gap -= 1;
        } else {
            cap = None;
        }
    }
}

/// One greedy pass: returns the ordered list and the unused candidates.
fn build(
    mut pool: Vec<Cand>,
    goal: Goal,
    req: &PlaylistRequest,
    gap: usize,
    cap: Option<usize>,
) -> (Vec<Cand>, Vec<Cand>) {
    let mut list: Vec<Cand> = Vec::new();
    let mut counts: HashMap<u64, usize> = HashMap::new();
    let mut total = 0.0f64;
    let n_goal = match goal {
        Goal::Size(n) => n,
        Goal::Duration { .. } => usize::MAX,
    };
    // energy_arc picks by relevance, then arranges; the others choose step by step.
    while list.len() < n_goal && !pool.is_empty() {
        let remaining = match goal {
            Goal::Duration { target, .. } => target - total,
            Goal::Size(_) => f64::INFINITY,
        };
        if remaining <= 0.0 {
            break;
        }
        let prev = list.last();
        let mut best: Option<(usize, f64)> = None;
        for (i, c) in pool.iter().enumerate() {
            if !artist_ok(&list, c, gap, cap, &counts) {
                continue;
            }
            let mut s = c.relevance;
            if let (Some(p), Order::Smooth) = (prev, req.order) {
                s += 2.0 * dot(&p.vector, &c.vector);
            }
            if let (Some(p), Order::Harmonic) = (prev, req.order) {
                let key = KeyRelation::between(p.row.camelot as u64, c.row.camelot as u64);
                s += 2.0 * key.score()
                    + match tempo_step(&p.row, &c.row) {
                        // A free pulse has no tempo to match: neither bonus nor penalty.
                        None => 0.0,
                        Some(td) if td <= HARMONIC_TEMPO_STEP => 1.0,
                        Some(td) => -td,
                    };
                s += 0.5 * dot(&p.vector, &c.vector);
            }
            // For a duration goal, prefer tracks that do not overshoot the tolerance.
            if let Goal::Duration { tolerance, .. } = goal {
                let d = c.row.duration_s as f64;
                if d > remaining + tolerance {
                    s -= 100.0;
                }
            }
            if best.is_none_or(|(_, b)| s > b) {
                best = Some((i, s));
            }
        }
        let Some((i, _)) = best else { break };
        let c = pool.swap_remove(i);
        if let Goal::Duration { target, tolerance } = goal {
            let d = c.row.duration_s as f64;
            if total + d > target + tolerance {
                // Nothing that fits is left.
                pool.push(c);
                break;
            }
        }
        total += c.row.duration_s as f64;
        for a in &c.row.artists {
            *counts.entry(*a).or_default() += 1;
        }
        list.push(c);
    }
    if req.order == Order::EnergyArc {
        let (arranged, unplaced) = energy_arc(list, gap);
        list = arranged;
        pool.extend(unplaced);
    }
    (list, pool)
}

/// Arranges by energy: rise to a peak about two thirds in, then cool down; then repairs
/// artist-gap clashes by swapping with the nearest track that clears them. A track no
/// swap can place is returned apart (second value): the list never breaks the gap, and
/// a playlist left short relaxes the gap openly ([`pick`]).
fn energy_arc(mut list: Vec<Cand>, gap: usize) -> (Vec<Cand>, Vec<Cand>) {
    const ENERGY: usize = 6;
    list.sort_by(|a, b| a.row.attributes[ENERGY].total_cmp(&b.row.attributes[ENERGY]));
    let n = list.len();
    let fall = n / 3;
    // The quietest `fall` tracks, every other one, go to the cool-down (descending).
    let mut rise = Vec::with_capacity(n);
    let mut down = Vec::with_capacity(fall);
    for (i, c) in list.into_iter().enumerate() {
        if i % 2 == 1 && down.len() < fall {
            down.push(c);
        } else {
            rise.push(c);
        }
    }
    down.reverse();
    rise.extend(down);
    let mut out = rise;
    for i in 0..out.len() {
        let clash = |v: &Vec<Cand>, i: usize| -> bool {
            (i.saturating_sub(gap)..i).any(|j| {
                v[j].row
                    .artists
                    .iter()
                    .any(|a| v[i].row.artists.contains(a))
            }) || (i + 1..(i + 1 + gap).min(v.len())).any(|j| {
                v[j].row
                    .artists
                    .iter()
                    .any(|a| v[i].row.artists.contains(a))
            })
        };
        if gap == 0 || !clash(&out, i) {
            continue;
        }
        for j in (i + 1..out.len()).chain(0..i) {
            out.swap(i, j);
            if !clash(&out, i) && !clash(&out, j) {
                break;
            }
            out.swap(i, j);
        }
    }
    // Each track checked against the ones kept before it, so what stays is clash-free.
    let mut kept: Vec<Cand> = Vec::with_capacity(out.len());
    let mut unplaced = Vec::new();
    for c in out {
        let clash = kept
            .iter()
            .rev()
            .take(gap)
            .any(|p| p.row.artists.iter().any(|a| c.row.artists.contains(a)));
        if clash {
            unplaced.push(c);
        } else {
            kept.push(c);
        }
    }
    (kept, unplaced)
}

fn render(
    ix: &DerivedIndexes,
    list: Vec<Cand>,
    req: &PlaylistRequest,
    mut relaxed: Vec<Value>,
    total: f64,
) -> ApiResult<Value> {
    let ids: Vec<i64> = list.iter().map(|c| c.row.id).collect();
    let cards = ix.text.cards(&ids)?;
    let by_id: HashMap<i64, &indexer::text::Card> = cards.iter().map(|c| (c.id, c)).collect();
    let mut tracks = Vec::new();
    let mut non_harmonic = 0;
    for (i, c) in list.iter().enumerate() {
        let Some(card) = by_id.get(&c.row.id) else {
            continue;
        };
        let transition = (i > 0).then(|| {
            let p = &list[i - 1];
            let key = KeyRelation::between(p.row.camelot as u64, c.row.camelot as u64);
            let (t0, t1) = (p.row.end_bpm() as f64, c.row.start_bpm() as f64);
            let td = tempo_step(&p.row, &c.row);
            let sim = dot(&p.vector, &c.vector);
            if !(key.is_compatible() && td.is_none_or(|d| d <= HARMONIC_TEMPO_STEP)) {
                non_harmonic += 1;
            }
            // With a free pulse on either side the tempo plays no part in the score.
            let score = match td {
                Some(d) => (sim + key.score() + (1.0 - d.min(1.0))) / 3.0,
                None => (sim + key.score()) / 2.0,
            };
            json!({
                "similarity": round4(sim),
                "key_relation": format!("{key:?}").to_lowercase(),
                "tempo_change_pct": td.map(|_| round4(100.0 * (t1 / t0.max(1e-9) - 1.0))),
                "tempo_out_bpm": td.map(|_| round1(t0)),
                "tempo_in_bpm": td.map(|_| round1(t1)),
                "score": round4(score),
            })
        });
        tracks.push(json!({
            "position": i + 1,
            "track": TrackView::from(*card),
            "relevance": round4(c.relevance),
            "transition": transition,
        }));
    }
    if req.order == Order::Harmonic && non_harmonic > 0 {
        relaxed.push(json!({
            "constraint": "order:harmonic",
            "transitions_not_harmonic": non_harmonic,
            "why": "no candidate with a compatible key and a tempo within 6 % was left at those steps",
        }));
    }
    Ok(json!({
        "size": tracks.len(),
        "duration_s": round4(total),
        "order": req.order,
        "seed": req.seed,
        "tracks": tracks,
        "relaxed": relaxed,
    }))
}

impl serde::Serialize for Order {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(match self {
            Order::Smooth => "smooth",
            Order::Harmonic => "harmonic",
            Order::EnergyArc => "energy_arc",
        })
    }
}

/// The tempo distance of a transition: where `a` ends against where `b` starts (from
/// their beat times, else their global tempi), so a track that drifts or changes tempo
/// is matched where the two actually meet. `None` when either side has no steady pulse
/// (`tempo:free`): its tempo is only a likeliest period, so it neither earns nor costs.
fn tempo_step(a: &Row, b: &Row) -> Option<f64> {
    (!a.free_pulse && !b.free_pulse)
        .then(|| tempo_distance(f64::from(a.end_bpm()), f64::from(b.start_bpm())))
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// `GET /v1/path?from=&to=&steps=`: `steps` tracks (ends included) walking from one
/// track to the other through evenly spaced points of the embedding space.
pub fn path(engine: &Engine, from: i64, to: i64, steps: usize) -> ApiResult<Value> {
    if !(2..=100).contains(&steps) {
        return Err(ApiError::bad(
            "bad_steps",
            "steps must be 2..=100 (both ends included)",
        ));
    }
    engine.with_indexes(|ix| {
        let a = ix
            .vectors
            .vector(from)
            .ok_or_else(|| ApiError::unknown_track(from))?;
        let b = ix
            .vectors
            .vector(to)
            .ok_or_else(|| ApiError::unknown_track(to))?;
        let mut chosen: Vec<(i64, f64)> = vec![(from, 1.0)];
        let mut used: HashSet<i64> = [from, to].into_iter().collect();
        let ends = ix.text.cards(&[from, to])?;
        let mut recordings: HashSet<u64> = ends.iter().map(|c| c.recording).collect();
        for i in 1..steps - 1 {
            let t = i as f32 / (steps - 1) as f32;
            let target: Vec<f32> = a
                .iter()
                .zip(&b)
                .map(|(x, y)| (1.0 - t) * x + t * y)
                .collect();
            let Ok(target) = crate::engine::normalise(target) else {
                continue;
            };
            let near = engine.nearest_in(ix, &target, 20 + used.len() * 2, None);
            for (id, s) in near {
                if used.contains(&id) {
                    continue;
                }
                let Some(card) = ix.text.cards(&[id])?.pop() else {
                    continue;
                };
                if !recordings.insert(card.recording) {
                    continue;
                }
                used.insert(id);
                chosen.push((id, s as f64));
                break;
            }
        }
        chosen.push((to, 1.0));
        let cards = ix
            .text
            .cards(&chosen.iter().map(|c| c.0).collect::<Vec<_>>())?;
        let tracks: Vec<Value> = cards
            .iter()
            .zip(&chosen)
            .enumerate()
            .map(|(i, (card, (_, s)))| {
                json!({
                    "position": i + 1,
                    "track": TrackView::from(card),
                    "target_similarity": round4(*s),
                })
            })
            .collect();
        Ok(json!({ "from": from, "to": to, "steps": tracks.len(), "tracks": tracks }))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(id: i64, artist: u64, energy: f32) -> Cand {
        let mut attributes = [0.0f32; indexer::catalog::ATTRIBUTE_COUNT];
        attributes[6] = energy;
        Cand {
            row: Row {
                id,
                attributes,
                duration_s: 60.0,
                camelot: 1,
                free_pulse: false,
                tempo_start: 0.0,
                tempo_end: 0.0,
                artists: vec![artist],
                recording: id as u64,
                quality: 0,
            },
            vector: Vec::new(),
            relevance: 0.0,
        }
    }

    /// The CI failure of session 10: an energy arc over few artists could leave a clash
    /// that no swap repaired. Now what cannot be placed is handed back, never kept.
    #[test]
    fn energy_arc_never_breaks_the_artist_gap() {
        // Seven tracks, five by one artist: with a gap of 2 at most three of those fit.
        let list: Vec<Cand> = (0..7)
            .map(|i| cand(i, if i < 5 { 1 } else { 2 + i as u64 }, i as f32 / 7.0))
            .collect();
        let (kept, unplaced) = energy_arc(list, 2);
        assert_eq!(kept.len() + unplaced.len(), 7);
        assert!(!unplaced.is_empty());
        for (i, c) in kept.iter().enumerate() {
            for p in &kept[i.saturating_sub(2)..i] {
                assert!(
                    p.row.artists != c.row.artists,
                    "{:?}",
                    kept.iter().map(|c| c.row.id).collect::<Vec<_>>()
                );
            }
        }
        // Without a gap everything stays.
        let list: Vec<Cand> = (0..7).map(|i| cand(i, 1, 0.5)).collect();
        assert_eq!(energy_arc(list, 0).0.len(), 7);
    }

    /// A harmonic step matches where one track ends to where the next starts: after a
    /// track that drifts from 120 to 130 BPM, the track starting at 129 follows, not the
    /// one whose global tempo (121) is nearer the first track's global 120.
    #[test]
    fn harmonic_steps_match_the_tempo_where_tracks_meet() {
        let with_tempi = |id: i64, global: f32, start: f32, end: f32, relevance: f64| {
            let mut c = cand(id, id as u64, 0.5);
            c.row.attributes[0] = global;
            c.row.tempo_start = start;
            c.row.tempo_end = end;
            c.relevance = relevance;
            c
        };
        let pool = vec![
            with_tempi(1, 120.0, 112.0, 130.0, 1.0),
            with_tempi(2, 121.0, 121.0, 121.0, 0.0),
            with_tempi(3, 112.0, 129.0, 100.0, 0.0),
        ];
        let req = PlaylistRequest {
            order: Order::Harmonic,
            ..Default::default()
        };
        let (list, _) = build(pool, Goal::Size(2), &req, 0, None);
        let ids: Vec<i64> = list.iter().map(|c| c.row.id).collect();
        assert_eq!(ids, [1, 3]);
        let step = tempo_step(&list[0].row, &list[1].row).unwrap();
        assert!(step < 0.01, "{step}");
        // Without beats the global tempi are what meet.
        let (mut a, mut b) = (list[0].row.clone(), list[1].row.clone());
        (a.tempo_end, b.tempo_start) = (0.0, 0.0);
        assert!((tempo_step(&a, &b).unwrap() - (1.0 - 112.0 / 120.0)).abs() < 1e-6);
    }

    #[test]
    fn jitter_is_reproducible_and_seed_dependent() {
        assert_eq!(jitter(7, 42), jitter(7, 42));
        assert_ne!(jitter(7, 42), jitter(8, 42));
        assert!((0.0..1.0).contains(&jitter(1, 1)));
    }
}
