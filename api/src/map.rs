//! The catalogue map (`GET /v1/map`): tracks as points on the embedding space's first two
//! principal axes, for the page's scatter plot.
//!
//! Bounded cost at any catalogue size: the points are a deterministic sample (the tracks
//! whose mixed id hashes lowest, at most [`MAX_SAMPLE`]; a track keeps its place in the
//! sample as others arrive), and the axes are fitted by power iteration on a 107 x 107
//! covariance of at most [`FIT_POINTS`] of them. Nothing depends on a random seed, so the
//! same index state always draws the same map. A map is versioned by the embedding space
//! (the normaliser's version) and the vector index's change sequence it was drawn at, and
//! cached for that state ([`MapCache`]).

use std::sync::{Arc, Mutex};

use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse};
use indexer::catalog::rows::normalise_tag;
use indexer::derived::DerivedIndexes;
use indexer::filter::{Filter, NumField};
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::http::State;
use crate::params;

/// Most points one map may have.
pub const MAX_SAMPLE: usize = 20_000;
/// Points when the request names no number.
pub const DEFAULT_SAMPLE: usize = 5_000;
/// Points the axes are fitted on (the first of the sample, in sample order).
pub const FIT_POINTS: usize = 5_000;
/// Power-iteration steps per axis (the 107-d covariance converges in far fewer).
const ITERATIONS: usize = 100;
/// Maps kept (one per recent index state, sample size and colour).
const CACHED: usize = 8;

/// A track's place in the sample order: a 64-bit mix of its id (splitmix64's finaliser),
/// so the sample is spread over the whole id range, not its start.
pub fn sample_rank(id: i64) -> u64 {
    let mut z = (id as u64).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The `n` ids of lowest [`sample_rank`], in rank order. Linear in the number of ids.
pub fn sample(ids: impl Iterator<Item = i64>, n: usize) -> Vec<i64> {
    let mut ranked: Vec<(u64, i64)> = ids.map(|id| (sample_rank(id), id)).collect();
    if ranked.len() > n {
        ranked.select_nth_unstable(n);
        ranked.truncate(n);
    }
    ranked.sort_unstable();
    ranked.into_iter().map(|(_, id)| id).collect()
}

/// Two principal axes of a set of vectors.
#[derive(Debug, Clone, PartialEq)]
pub struct Projection {
    pub mean: Vec<f64>,
    pub axes: [Vec<f64>; 2],
    /// Share of the total variance along each axis.
    pub explained: [f64; 2],
}

impl Projection {
    /// Fits the axes: the covariance's two leading eigenvectors by power iteration with
    /// deflation, from a fixed start, each signed so its largest component is positive
    /// (an eigenvector's sign is arbitrary; a fixed one keeps maps of one space alike).
    pub fn fit(vectors: &[&[f32]]) -> Projection {
        let dim = vectors.first().map_or(0, |v| v.len());
        let n = vectors.len().max(1) as f64;
        let mut mean = vec![0.0; dim];
        for v in vectors {
            for (m, x) in mean.iter_mut().zip(v.iter()) {
                *m += *x as f64 / n;
            }
        }
        let mut cov = vec![0.0; dim * dim];
        let mut centred = vec![0.0; dim];
        for v in vectors {
            for (c, (x, m)) in centred.iter_mut().zip(v.iter().zip(&mean)) {
                *c = *x as f64 - m;
            }
            for i in 0..dim {
                let ci = centred[i] / n;
                for j in i..dim {
                    cov[i * dim + j] += ci * centred[j];
                }
            }
        }
        for i in 0..dim {
            for j in 0..i {
                cov[i * dim + j] = cov[j * dim + i];
            }
        }
        let total: f64 = (0..dim).map(|i| cov[i * dim + i]).sum();
        let (a, la) = leading_axis(&cov, dim);
        deflate(&mut cov, dim, &a, la);
        let (b, lb) = leading_axis(&cov, dim);
        let share = |l: f64| {
            if total > 0.0 {
                (l / total).max(0.0)
            } else {
                0.0
            }
        };
        Projection {
            mean,
            axes: [a, b],
            explained: [share(la), share(lb)],
        }
    }

    /// A vector's coordinates on the two axes.
    pub fn project(&self, v: &[f32]) -> [f32; 2] {
        let on = |axis: &[f64]| -> f32 {
            v.iter()
                .zip(&self.mean)
                .zip(axis)
                .map(|((x, m), a)| (*x as f64 - m) * a)
                .sum::<f64>() as f32
        };
        [on(&self.axes[0]), on(&self.axes[1])]
    }
}

/// The leading eigenvector and eigenvalue of a symmetric positive semi-definite matrix.
fn leading_axis(m: &[f64], dim: usize) -> (Vec<f64>, f64) {
    // A start with a part along every axis (a unit start could be orthogonal to the answer).
    let mut v: Vec<f64> = (0..dim)
        .map(|i| 1.0 + i as f64 / dim.max(1) as f64)
        .collect();
    normalise(&mut v);
    let mut lambda = 0.0;
    for _ in 0..ITERATIONS {
        let mut w = vec![0.0; dim];
        for (i, wi) in w.iter_mut().enumerate() {
            *wi = (0..dim).map(|j| m[i * dim + j] * v[j]).sum();
        }
        lambda = normalise(&mut w);
        if lambda == 0.0 {
            break;
        }
        v = w;
    }
    let largest = v
        .iter()
        .copied()
        .fold(0.0f64, |a, x| if x.abs() > a.abs() { x } else { a });
    if largest < 0.0 {
        v.iter_mut().for_each(|x| *x = -*x);
    }
    (v, lambda)
}

fn deflate(m: &mut [f64], dim: usize, v: &[f64], lambda: f64) {
    for i in 0..dim {
        for j in 0..dim {
            m[i * dim + j] -= lambda * v[i] * v[j];
        }
    }
}

/// Scales `v` to unit length, returning its length before.
fn normalise(v: &mut [f64]) -> f64 {
    let n = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    if n > 0.0 {
        v.iter_mut().for_each(|x| *x /= n);
    }
    n
}

/// What the points are coloured by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Colour {
    /// An attribute's value (or the duration).
    Field(NumField),
    /// 1 when the track carries the tag, else 0.
    Tag(String),
}

impl Colour {
    pub fn parse(raw: Option<&str>) -> ApiResult<Colour> {
        let raw = raw.unwrap_or("energy").trim();
        if raw.contains(':') {
            return normalise_tag(raw)
                .map(Colour::Tag)
                .ok_or_else(|| ApiError::bad("bad_color", format!("color={raw:?} is not a tag")));
        }
        match NumField::parse(raw) {
            Some(f @ (NumField::Attribute(_) | NumField::Duration)) => Ok(Colour::Field(f)),
            _ => Err(ApiError::bad(
                "bad_color",
                format!("color={raw:?}: name an attribute (energy, tempo_bpm, ...) or a tag (facet:value)"),
            )
            .with_details(json!({ "attributes": NumField::all_names() }))),
        }
    }

    fn name(&self) -> String {
        match self {
            Colour::Field(f) => f.name().to_string(),
            Colour::Tag(t) => t.clone(),
        }
    }
}

/// Draws the map of the indexes as they are: `{"space", "seq", "total", "color",
/// "explained", "points": {"id", "x", "y", "v"}}` (columns, to keep 20,000 points small).
pub fn draw(ix: &DerivedIndexes, n: usize, colour: &Colour, space: &str) -> ApiResult<Value> {
    let (ids, vectors): (Vec<i64>, Vec<Vec<f32>>) = sample(ix.vectors.track_ids(), n)
        .into_iter()
        .filter_map(|id| ix.vectors.vector(id).map(|v| (id, v)))
        .unzip();
    let refs: Vec<&[f32]> = vectors.iter().map(|v| v.as_slice()).collect();
    let projection = Projection::fit(&refs[..refs.len().min(FIT_POINTS)]);
    let values = colour_values(ix, &ids, colour)?;
    let (mut xs, mut ys) = (Vec::with_capacity(ids.len()), Vec::with_capacity(ids.len()));
    for v in &refs {
        let [x, y] = projection.project(v);
        xs.push(round4(x));
        ys.push(round4(y));
    }
    Ok(json!({
        "space": space,
        "seq": ix.vectors.seq(),
        "total": ix.vectors.len(),
        "color": colour.name(),
        "explained": projection.explained.map(|e| (e * 1e4).round() / 1e4),
        "points": { "id": ids, "x": xs, "y": ys, "v": values },
    }))
}

/// Each sampled track's colour value (`null` where the text index has no row for it).
fn colour_values(ix: &DerivedIndexes, ids: &[i64], colour: &Colour) -> ApiResult<Vec<Value>> {
    match colour {
        Colour::Tag(tag) => {
            let filter = Filter {
                tags_all: vec![tag.clone()],
                ..Filter::default()
            };
            let set = ix.text.matching(&filter)?;
            Ok(ids
                .iter()
                .map(|id| json!(u8::from(set.contains(*id))))
                .collect())
        }
        Colour::Field(field) => {
            let rows = ix.text.rows_of(ids.iter().copied())?;
            let by_id: std::collections::HashMap<i64, f32> = rows
                .iter()
                .map(|r| {
                    let v = match field {
                        NumField::Attribute(i) => r.attributes[*i],
                        _ => r.duration_s,
                    };
                    (r.id, v)
                })
                .collect();
            Ok(ids
                .iter()
                .map(|id| by_id.get(id).map_or(Value::Null, |v| json!(round4(*v))))
                .collect())
        }
    }
}

fn round4(x: f32) -> f64 {
    (x as f64 * 1e4).round() / 1e4
}

/// Recent maps by (index sequence, sample size, colour); the space is part of the answer
/// and changes only with the sequence (a new space rewrites every embedding).
#[derive(Default)]
pub struct MapCache {
    maps: Mutex<Vec<(MapKey, Arc<Value>)>>,
}

/// Index sequence, sample size, colour.
type MapKey = (i64, usize, Colour);

impl MapCache {
    fn get(&self, key: &MapKey) -> Option<Arc<Value>> {
        let maps = self.maps.lock().unwrap_or_else(|e| e.into_inner());
        maps.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
    }

    fn put(&self, key: MapKey, map: Arc<Value>) {
        let mut maps = self.maps.lock().unwrap_or_else(|e| e.into_inner());
        maps.retain(|(k, _)| k.0 == key.0 && k != &key);
        if maps.len() >= CACHED {
            maps.remove(0);
        }
        maps.push((key, map));
    }
}

/// `GET /v1/map?sample=N&color=ATTR|TAG`.
pub(crate) async fn map_get(req: HttpRequest, _: Bytes, st: Arc<State>) -> ApiResult<HttpResponse> {
    let p = params::pairs(req.query_string())?;
    let n = match params::one(&p, "sample") {
        None => DEFAULT_SAMPLE,
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_SAMPLE).contains(n))
            .ok_or_else(|| {
                ApiError::bad(
                    "bad_sample",
                    format!("sample={v:?}: a number in 1..={MAX_SAMPLE}"),
                )
                .with_details(json!({ "max": MAX_SAMPLE }))
            })?,
    };
    let colour = Colour::parse(params::one(&p, "color"))?;
    let seq = st.engine.with_indexes(|ix| Ok(ix.vectors.seq()))?;
    let key = (seq, n, colour.clone());
    if let Some(map) = st.maps.get(&key) {
        return Ok(HttpResponse::Ok().json(&*map));
    }
    let space = match st.engine.catalog.current_space().await? {
        Some(s) => s.version,
        None => embeddings::Normalizer::default_for_version()
            .version
            .clone(),
    };
    let engine = st.engine.clone();
    let map = web::block(move || engine.with_indexes(|ix| draw(ix, n, &colour, &space)))
        .await
        .map_err(|e| ApiError::internal(format!("worker: {e}")))??;
    let map = Arc::new(map);
    // Cached under the sequence the map was drawn at, which a refresh may have moved on.
    let drawn = (map["seq"].as_i64().unwrap_or(seq), key.1, key.2);
    st.maps.put(drawn, map.clone());
    Ok(HttpResponse::Ok().json(&*map))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Points spread mostly along (1, 1, 0, ...) and less along (1, -1, 0, ...).
    fn cloud(n: usize) -> Vec<Vec<f32>> {
        (0..n)
            .map(|i| {
                let t = (i as f32 / n as f32 - 0.5) * 4.0;
                let s = ((i * 7919) % 101) as f32 / 101.0 - 0.5;
                let mut v = vec![0.01 * (i % 3) as f32; 8];
                v[0] = t + s;
                v[1] = t - s;
                v
            })
            .collect()
    }

    #[test]
    fn axes_follow_the_spread_and_are_deterministic() {
        let c = cloud(500);
        let refs: Vec<&[f32]> = c.iter().map(|v| v.as_slice()).collect();
        let p = Projection::fit(&refs);
        let h = std::f64::consts::FRAC_1_SQRT_2;
        assert!(
            (p.axes[0][0] - h).abs() < 1e-2 && (p.axes[0][1] - h).abs() < 1e-2,
            "{:?}",
            p.axes[0]
        );
        assert!(
            (p.axes[1][0].abs() - h).abs() < 1e-2 && (p.axes[1][0] + p.axes[1][1]).abs() < 1e-2
        );
        assert!(p.explained[0] > p.explained[1] && p.explained[0] + p.explained[1] <= 1.0 + 1e-9);
        assert_eq!(p, Projection::fit(&refs));
        let dot: f64 = p.axes[0].iter().zip(&p.axes[1]).map(|(a, b)| a * b).sum();
        assert!(dot.abs() < 1e-6);
    }

    #[test]
    fn the_sample_is_bounded_stable_and_spread() {
        let all: Vec<i64> = (1..=100_000).collect();
        let s = sample(all.iter().copied(), 1000);
        assert_eq!(s.len(), 1000);
        assert_eq!(s, sample(all.iter().rev().copied(), 1000));
        // Adding tracks only pushes later ones out: a track in the bigger catalogue's
        // sample was in the smaller one's too.
        let smaller = sample(all[..50_000].iter().copied(), 1000);
        let bigger_firsts: Vec<i64> = s.iter().copied().filter(|id| *id <= 50_000).collect();
        assert!(bigger_firsts.iter().all(|id| smaller.contains(id)));
        // Spread over the id range, not its start.
        assert!(s.iter().filter(|id| **id > 50_000).count() > 400);
        assert_eq!(sample([3, 1, 2].into_iter(), 10).len(), 3);
    }

    #[test]
    fn colours_parse_or_say_why_not() {
        assert!(matches!(Colour::parse(None), Ok(Colour::Field(_))));
        assert!(matches!(Colour::parse(Some("tempo")), Ok(Colour::Field(_))));
        assert_eq!(
            Colour::parse(Some("Mood:Calm")),
            Ok(Colour::Tag("mood:calm".into()))
        );
        assert_eq!(Colour::parse(Some("year")).unwrap_err().code, "bad_color");
        assert_eq!(
            Colour::parse(Some("nonsense")).unwrap_err().code,
            "bad_color"
        );
    }

    #[test]
    fn the_cache_keeps_one_index_state() {
        let c = MapCache::default();
        let k = |seq, n| (seq, n, Colour::Tag("a:b".into()));
        c.put(k(1, 10), Arc::new(json!(1)));
        c.put(k(1, 20), Arc::new(json!(2)));
        assert_eq!(c.get(&k(1, 10)).as_deref(), Some(&json!(1)));
        c.put(k(2, 10), Arc::new(json!(3)));
        assert!(c.get(&k(1, 10)).is_none() && c.get(&k(1, 20)).is_none());
        assert_eq!(c.get(&k(2, 10)).as_deref(), Some(&json!(3)));
    }
}
