//! How tracks and hits look in answers: a stable JSON shape built from index cards.

use indexer::catalog::ATTRIBUTE_COLUMNS;
use indexer::text::Card;
use serde::Serialize;
use serde_json::{Map, Value};

/// A track in a result list.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TrackView {
    pub id: i64,
    pub external_id: String,
    pub title: Option<String>,
    pub artists: Vec<String>,
    pub album: Option<String>,
    pub genre: Option<String>,
    pub year: Option<i64>,
    pub duration_s: Option<f64>,
    pub key: Option<String>,
    pub mode: Option<String>,
    pub camelot: Option<String>,
    pub tags: Vec<String>,
    /// Every attribute by name.
    pub attributes: Map<String, Value>,
}

impl From<&Card> for TrackView {
    fn from(c: &Card) -> Self {
        TrackView {
            id: c.id,
            external_id: c.external_id.clone(),
            title: c.title.clone(),
            artists: c.artists.clone(),
            album: c.album.clone(),
            genre: c.genre.clone(),
            year: c.year,
            duration_s: c.duration_s,
            key: c.key.clone(),
            mode: c.mode.clone(),
            camelot: c.camelot.clone(),
            tags: c.tags.clone(),
            attributes: attributes_map(&c.attributes),
        }
    }
}

/// `{"tempo_bpm": 120.0, ...}` from values in [`ATTRIBUTE_COLUMNS`] order.
pub fn attributes_map(values: &[f64]) -> Map<String, Value> {
    ATTRIBUTE_COLUMNS
        .iter()
        .zip(values)
        .map(|(k, v)| ((*k).to_string(), round(*v)))
        .collect()
}

fn round(v: f64) -> Value {
    serde_json::Number::from_f64((v * 1e4).round() / 1e4)
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

/// A ranked result: the track, its score and why it is here.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Hit {
    #[serde(flatten)]
    pub track: TrackView,
    pub score: f64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explain: Option<Value>,
}
