//! Hybrid queries: BM25 text candidates and embedding candidates, both under the same
//! exact filters, fused by reciprocal rank fusion (k = 60) or by a weighted sum of
//! normalised scores. With `explain`, every result carries its ranks and scores per side.

use std::collections::HashMap;

use indexer::filter::Filter;
use serde::Deserialize;
use serde_json::json;

use crate::copies::Copies;
use crate::engine::{round4, Engine, HitPage};
use crate::error::{ApiError, ApiResult};
use crate::params::{self, FilterJson};
use crate::view::{Hit, TrackView};

/// The RRF constant: a document at rank r contributes weight / (K + r).
pub const RRF_K: f64 = 60.0;

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Fusion {
    #[default]
    Rrf,
    Weighted,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Weights {
    #[serde(default = "one")]
    pub text: f64,
    #[serde(default = "one")]
    pub vector: f64,
}

fn one() -> f64 {
    1.0
}

impl Default for Weights {
    fn default() -> Self {
        Weights {
            text: 1.0,
            vector: 1.0,
        }
    }
}

/// `POST /v1/search/hybrid`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HybridRequest {
    /// Text in the `/search` syntax (filters written in it apply too).
    #[serde(default)]
    pub q: String,
    /// Seed tracks for the embedding side.
    #[serde(default)]
    pub like: Vec<i64>,
    #[serde(default)]
    pub filters: FilterJson,
    #[serde(default)]
    pub fusion: Fusion,
    #[serde(default)]
    pub weights: Weights,
    pub limit: Option<usize>,
    pub cursor: Option<String>,
    #[serde(default)]
    pub explain: bool,
    /// One copy per recording (the default) or every copy (`"all"`).
    #[serde(default)]
    pub copies: Copies,
}

/// Adds `b`'s constraints to `a`.
pub fn merge(a: &mut Filter, b: Filter) {
    a.tags_all.extend(b.tags_all);
    a.tags_any.extend(b.tags_any);
    a.tags_none.extend(b.tags_none);
    a.ranges.extend(b.ranges);
    a.keys.extend(b.keys);
    if b.mode.is_some() {
        a.mode = b.mode;
    }
    a.camelot.extend(b.camelot);
    a.artists_none.extend(b.artists_none);
}

pub fn hybrid(engine: &Engine, req: HybridRequest) -> ApiResult<HitPage> {
    let limit = params::check_limit(req.limit.unwrap_or(params::DEFAULT_LIMIT))?;
    let offset = params::cursor(req.cursor.as_deref())?;
    for (name, w) in [("text", req.weights.text), ("vector", req.weights.vector)] {
        if !(w.is_finite() && w >= 0.0) {
            return Err(ApiError::bad(
                "bad_weight",
                format!("weights.{name} = {w} must be >= 0"),
            ));
        }
    }
    params::check_len("like", req.like.len(), params::MAX_LIST)?;
    let parsed = params::parse_query(&req.q)?;
    let mut filter = req.filters.into_filter()?;
    merge(&mut filter, parsed.filter);
    engine.check_tags(&filter)?;
    let text = parsed.text.trim().to_string();
    if text.is_empty() && req.like.is_empty() {
        return Err(ApiError::bad(
            "no_query",
            "give q (text), like (seed ids), or both",
        ));
    }
    let want = offset + limit;
    let n = (want * 2).max(100);
    let text_hits = if text.is_empty() {
        Vec::new()
    } else {
        engine.text_candidates(&text, &filter, n)?
    };
    let seeds: Vec<(i64, f32)> = req.like.iter().map(|&id| (id, 1.0)).collect();
    let vec_hits = if seeds.is_empty() {
        Vec::new()
    } else {
        engine.vector_candidates(&seeds, &filter, n)?
    };

    #[derive(Default, Clone, Copy)]
    struct Sides {
        text: Option<(usize, f32)>,
        vector: Option<(usize, f32)>,
    }
    let mut sides: HashMap<i64, Sides> = HashMap::new();
    for (rank, &(id, s)) in text_hits.iter().enumerate() {
        sides.entry(id).or_default().text = Some((rank + 1, s));
    }
    for (rank, &(id, s)) in vec_hits.iter().enumerate() {
        sides.entry(id).or_default().vector = Some((rank + 1, s));
    }
    let text_max = text_hits.iter().map(|h| h.1).fold(0f32, f32::max).max(1e-9) as f64;
    let w = req.weights;
    let mut fused: Vec<(i64, f64, Sides)> = sides
        .into_iter()
        .filter(|(id, _)| !req.like.contains(id))
        .map(|(id, s)| {
            let score = match req.fusion {
                Fusion::Rrf => {
                    s.text.map_or(0.0, |(r, _)| w.text / (RRF_K + r as f64))
                        + s.vector.map_or(0.0, |(r, _)| w.vector / (RRF_K + r as f64))
                }
                Fusion::Weighted => {
                    s.text.map_or(0.0, |(_, t)| w.text * t as f64 / text_max)
                        + s.vector.map_or(0.0, |(_, v)| w.vector * v as f64)
                }
            };
            (id, score, s)
        })
        .collect();
    fused.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let seeds = engine.cards(&req.like)?;
    let (fused, collapsed) = engine
        .with_indexes(|ix| engine.collapse(ix, fused, |f| f.0, |f| f.1, req.copies, &seeds))?;
    let total = fused.len();
    let page: Vec<(i64, f64, Sides)> = fused.into_iter().skip(offset).take(limit).collect();
    let cards = engine.cards(&page.iter().map(|p| p.0).collect::<Vec<_>>())?;
    let by_id: HashMap<i64, &indexer::text::Card> = cards.iter().map(|c| (c.id, c)).collect();
    let results = page
        .iter()
        .filter_map(|(id, score, s)| {
            let card = by_id.get(id)?;
            let mut reasons = Vec::new();
            if let Some((r, _)) = s.text {
                reasons.push(format!("text match, rank {r}"));
            }
            if let Some((r, v)) = s.vector {
                reasons.push(format!("sounds like the seeds (similarity {v:.3}), rank {r}"));
            }
            Some(Hit {
                track: TrackView::from(*card),
                score: round4(*score),
                reasons,
                explain: req.explain.then(|| {
                    json!({
                        "text_rank": s.text.map(|t| t.0),
                        "text_score": s.text.map(|t| round4(t.1 as f64)),
                        "vector_rank": s.vector.map(|v| v.0),
                        "vector_similarity": s.vector.map(|v| round4(v.1 as f64)),
                        "fusion": match req.fusion { Fusion::Rrf => "rrf", Fusion::Weighted => "weighted" },
                        "fused": round4(*score),
                    })
                }),
            })
        })
        .collect();
    Ok(HitPage {
        results,
        next_cursor: (offset + limit < total)
            .then(|| params::encode_cursor(offset + limit))
            .flatten(),
        plan: json!({
            "text_query": text,
            "text_candidates": text_hits.len(),
            "vector_candidates": vec_hits.len(),
            "fusion": match req.fusion { Fusion::Rrf => json!({"method": "rrf", "k": RRF_K}), Fusion::Weighted => json!({"method": "weighted"}) },
            "weights": { "text": w.text, "vector": w.vector },
            "collapsed_duplicates": collapsed,
        }),
    })
}
