//! The values that cross the store's boundary, shared by both backends.

use embeddings::{Analysis, Attributes};

use super::ATTRIBUTE_COUNT;

/// Catalogue metadata of one track, as delivered (manifest) or read from file tags.
/// Serialisable because it travels in an analysis job's spec (the work queue).
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct TrackMeta {
    pub external_id: String,
    pub title: Option<String>,
    pub artists: Vec<String>,
    pub album: Option<String>,
    pub genre: Option<String>,
    /// `YYYY`, `YYYY-MM` or `YYYY-MM-DD`.
    pub release_date: Option<String>,
    pub release_year: Option<i32>,
    pub isrc: Option<String>,
    /// Path relative to the input root, or a URI.
    pub source: String,
    /// Catalogue tags, already `facet:value` (see [`normalise_tag`]).
    pub tags: Vec<String>,
}

impl TrackMeta {
    /// A hash over every metadata field: a replay with the same hash writes nothing.
    pub fn fingerprint(&self) -> String {
        let mut h = blake3::Hasher::new();
        let mut field = |s: &str| {
            h.update(&(s.len() as u64).to_le_bytes());
            h.update(s.as_bytes());
        };
        field(&self.external_id);
        field(self.title.as_deref().unwrap_or("\u{0}"));
        field(&self.artists.join("\u{1}"));
        field(self.album.as_deref().unwrap_or("\u{0}"));
        field(self.genre.as_deref().unwrap_or("\u{0}"));
        field(self.release_date.as_deref().unwrap_or("\u{0}"));
        field(self.isrc.as_deref().unwrap_or("\u{0}"));
        field(&self.source);
        field(&self.tags.join("\u{1}"));
        h.finalize().to_hex().to_string()
    }
}

/// Lower-cases a tag and gives it a facet: `"Chill"` -> `tag:chill`, `"Mood:Calm"` ->
/// `mood:calm`. Empty facets or values yield `None`.
pub fn normalise_tag(raw: &str) -> Option<String> {
    let t = raw.trim().to_lowercase();
    let (facet, value) = match t.split_once(':') {
        Some((f, v)) => (f.trim().to_string(), v.trim().to_string()),
        None => ("tag".to_string(), t.clone()),
    };
    if facet.is_empty() || value.is_empty() {
        return None;
    }
    Some(format!("{facet}:{value}"))
}

/// One track to insert or update.
#[derive(Debug, Clone)]
pub struct TrackWrite {
    pub meta: TrackMeta,
    pub meta_hash: String,
    pub content_hash: String,
    /// The analysis when the audio was (re-)analysed; `None` for a metadata-only update,
    /// which keeps the stored analysis, duration and codec.
    pub analysis: Option<AnalysisRow>,
}

/// An analysis as stored: the analyser's output with the embedding in the store's space.
#[derive(Debug, Clone)]
pub struct AnalysisRow {
    pub analyzer_version: String,
    pub duration_s: f64,
    pub codec: String,
    pub sample_rate: i32,
    pub channels: i32,
    pub attributes: Attributes,
    pub tags: Vec<TagScore>,
    pub features: Vec<f32>,
    pub embedding: Vec<f32>,
    pub embedding_space: String,
    /// Beat times, seconds.
    pub beats: Vec<f32>,
    /// The acoustic fingerprint ([`embeddings::fingerprint`]); empty when too short.
    pub fingerprint: Vec<u32>,
    /// The fine fingerprint of a short track; empty for longer ones.
    pub fine_fingerprint: Vec<u32>,
}

impl AnalysisRow {
    /// Takes an analysis; `space` re-embeds it when the store has its own normaliser.
    pub fn from_analysis(a: Analysis, space: Option<&embeddings::Normalizer>) -> AnalysisRow {
        let (embedding, embedding_space) = match space {
            Some(n) if n.version != a.embedding_space => (n.embed(&a.features), n.version.clone()),
            _ => (a.embedding, a.embedding_space),
        };
        AnalysisRow {
            analyzer_version: a.analyzer_version,
            duration_s: a.audio.duration_s,
            codec: a.audio.stream.codec.clone(),
            sample_rate: a.audio.stream.sample_rate as i32,
            channels: a.audio.stream.channels as i32,
            tags: a
                .tags
                .iter()
                .map(|t| TagScore {
                    name: t.name.clone(),
                    score: t.score as f64,
                })
                .collect(),
            attributes: a.attributes,
            features: a.features,
            embedding,
            embedding_space,
            beats: a.beats,
            fingerprint: a.fingerprint,
            fine_fingerprint: a.fine_fingerprint,
        }
    }
}

/// A tag on a track with its score (0..1).
#[derive(Debug, Clone, PartialEq)]
pub struct TagScore {
    pub name: String,
    pub score: f64,
}

/// A track's tag with its score and where it came from (`analysis`, `catalog`,
/// `editorial`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, sqlx::FromRow)]
pub struct TagLink {
    pub name: String,
    pub score: f64,
    pub source: String,
}

/// Stored facts about a track beyond what the indexes carry.
#[derive(Debug, Clone, PartialEq, serde::Serialize, sqlx::FromRow)]
pub struct TrackExtra {
    pub release_date: Option<String>,
    pub isrc: Option<String>,
    pub source: String,
    pub codec: Option<String>,
    pub content_hash: String,
    pub analyzer_version: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Everything the store holds about one track (the track page's detail view).
#[derive(Debug, Clone, PartialEq)]
pub struct TrackDetail {
    /// Metadata, status, attributes and embedding.
    pub change: Change,
    pub extra: TrackExtra,
    pub tags: Vec<TagLink>,
    /// The beat times (seconds) of its analysis; empty without analysis or beats. Read
    /// with the change's columns, which carry them for the edge tempi.
    pub beats: Vec<f32>,
}

/// The stored facts the pipeline compares against to decide what to do with an item.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TrackState {
    pub id: i64,
    pub external_id: String,
    pub content_hash: String,
    pub meta_hash: String,
    pub status: String,
    pub analyzer_version: Option<String>,
}

/// A track written by [`super::Catalog::write_batch`].
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct WrittenTrack {
    pub id: i64,
    pub external_id: String,
    pub change_seq: i64,
    /// Whether the row was new (Postgres reports it; SQLite says `false`).
    pub inserted: bool,
}

/// A track's current state as a derived index needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub id: i64,
    pub seq: i64,
    pub external_id: String,
    pub active: bool,
    pub title: Option<String>,
    pub artists: Vec<String>,
    pub album: Option<String>,
    pub genre: Option<String>,
    pub release_year: Option<i32>,
    pub duration_s: Option<f64>,
    /// What identifies the recording across deliveries: the ISRC when there is one, else
    /// the audio's content hash (the same file delivered under two ids).
    pub recording: String,
    pub tags: Vec<String>,
    /// `ATTRIBUTE_COLUMNS` values, then key, mode and camelot; `None` without analysis.
    pub attributes: Option<([f64; ATTRIBUTE_COUNT], String, String, String)>,
    pub embedding: Option<Vec<f32>>,
    /// The acoustic fingerprint (empty without one: no analysis, an analyser before 0.5.0,
    /// or audio too short).
    pub fingerprint: Vec<u32>,
    /// The fine fingerprint (empty but for analysed tracks up to
    /// [`embeddings::fingerprint::FINE_UP_TO_S`] from analyser 0.6.0 on).
    pub fine_fingerprint: Vec<u32>,
    /// How good a copy of its recording this file is ([`copy_quality`]).
    pub quality: u64,
    /// The tempo at the track's start and end, from its stored beat times (`None` without
    /// enough beats: playlists then match the global tempo).
    pub edge_tempi: Option<embeddings::beats::EdgeTempi>,
}

/// How good a copy of a recording a file is, as a number that orders copies: lossless
/// before lossy, then the higher sample rate up to 44.1 kHz (a lossy codec's rate says
/// little: Opus always decodes at 48 kHz; the bitrate is not stored), then more channels.
/// Ties go to the newest track (the higher id) where copies are compared (`api::copies`).
pub fn copy_quality(codec: Option<&str>, sample_rate: Option<i32>, channels: Option<i32>) -> u64 {
    let lossless = matches!(
        codec,
        Some(c) if c == "flac" || c == "alac" || c == "wavpack" || c.starts_with("pcm")
    );
    let rate = sample_rate.unwrap_or(0).clamp(0, 44_100) as u64;
    let channels = channels.unwrap_or(0).clamp(0, 255) as u64;
    (u64::from(lossless) << 40) | (rate << 8) | channels
}

/// The raw row behind [`Change`] (tags come from a second query).
#[derive(Debug, sqlx::FromRow)]
pub struct ChangeRow {
    pub id: i64,
    pub change_seq: i64,
    pub external_id: String,
    pub status: String,
    pub title: Option<String>,
    pub artists: String,
    pub album: Option<String>,
    pub genre: Option<String>,
    pub release_year: Option<i32>,
    pub duration_s: Option<f64>,
    pub isrc: Option<String>,
    pub content_hash: String,
    pub embedding: Option<Vec<u8>>,
    pub key: Option<String>,
    pub mode: Option<String>,
    pub camelot: Option<String>,
    pub tempo_bpm: Option<f64>,
    pub tempo_confidence: Option<f64>,
    pub key_strength: Option<f64>,
    pub loudness_lufs: Option<f64>,
    pub loudness_range_lu: Option<f64>,
    pub true_peak_dbtp: Option<f64>,
    pub energy: Option<f64>,
    pub danceability: Option<f64>,
    pub brightness: Option<f64>,
    pub percussiveness: Option<f64>,
    pub acousticness: Option<f64>,
    pub syncopation: Option<f64>,
    pub harmonic_complexity: Option<f64>,
    pub repetitiveness: Option<f64>,
    pub dynamic_complexity: Option<f64>,
    pub onset_rate: Option<f64>,
    pub beats_per_bar: Option<f64>,
    pub fingerprint: Option<Vec<u8>>,
    pub fine_fingerprint: Option<Vec<u8>>,
    pub beats: Option<Vec<u8>>,
    pub codec: Option<String>,
    pub sample_rate: Option<i32>,
    pub channels: Option<i32>,
}

/// The SELECT list that fills a [`ChangeRow`] (tracks `t` left-joined to analyses `a`).
pub(super) const CHANGE_COLUMNS: &str = "t.id, t.change_seq, t.external_id, t.status, t.title, \
    t.artists, t.album, t.genre, t.release_year, t.duration_s, t.isrc, t.content_hash, a.embedding, a.key, a.mode, \
    a.camelot, a.tempo_bpm, a.tempo_confidence, a.key_strength, a.loudness_lufs, \
    a.loudness_range_lu, a.true_peak_dbtp, a.energy, a.danceability, a.brightness, \
    a.percussiveness, a.acousticness, a.syncopation, a.harmonic_complexity, a.repetitiveness, \
    a.dynamic_complexity, a.onset_rate, a.beats_per_bar, a.fingerprint, a.fine_fingerprint, a.beats, t.codec, a.sample_rate, \
    a.channels";

impl ChangeRow {
    pub fn into_change(self, tags: Vec<String>) -> Change {
        let attrs = match (
            self.key,
            self.mode,
            self.camelot,
            self.tempo_bpm,
            self.embedding.is_some(),
        ) {
            (Some(k), Some(m), Some(c), Some(_), true) => Some((
                [
                    self.tempo_bpm,
                    self.tempo_confidence,
                    self.key_strength,
                    self.loudness_lufs,
                    self.loudness_range_lu,
                    self.true_peak_dbtp,
                    self.energy,
                    self.danceability,
                    self.brightness,
                    self.percussiveness,
                    self.acousticness,
                    self.syncopation,
                    self.harmonic_complexity,
                    self.repetitiveness,
                    self.dynamic_complexity,
                    self.onset_rate,
                    self.beats_per_bar,
                ]
                .map(|v| v.unwrap_or(0.0)),
                k,
                m,
                c,
            )),
            _ => None,
        };
        Change {
            id: self.id,
            seq: self.change_seq,
            external_id: self.external_id,
            active: self.status == "active",
            title: self.title,
            artists: serde_json::from_str(&self.artists).unwrap_or_default(),
            album: self.album,
            genre: self.genre,
            release_year: self.release_year,
            duration_s: self.duration_s,
            recording: match self.isrc {
                Some(isrc) if !isrc.is_empty() => format!("isrc:{isrc}"),
                _ => format!("blake3:{}", self.content_hash),
            },
            tags,
            attributes: attrs,
            embedding: self.embedding.map(|b| f32s_from_bytes(&b)),
            fingerprint: self
                .fingerprint
                .map(|b| u32s_from_bytes(&b))
                .unwrap_or_default(),
            fine_fingerprint: self
                .fine_fingerprint
                .map(|b| u32s_from_bytes(&b))
                .unwrap_or_default(),
            quality: copy_quality(self.codec.as_deref(), self.sample_rate, self.channels),
            edge_tempi: self
                .beats
                .and_then(|b| embeddings::beats::edge_tempi(&f32s_from_bytes(&b))),
        }
    }
}

/// Joins change rows with their `(track id, tag name)` rows.
pub(super) fn attach_tags(rows: Vec<ChangeRow>, tag_rows: Vec<(i64, String)>) -> Vec<Change> {
    let mut tags: std::collections::HashMap<i64, Vec<String>> = std::collections::HashMap::new();
    for (id, name) in tag_rows {
        tags.entry(id).or_default().push(name);
    }
    rows.into_iter()
        .map(|r| {
            let t = tags.remove(&r.id).unwrap_or_default();
            r.into_change(t)
        })
        .collect()
}

/// The analysis attribute values in [`super::ATTRIBUTE_COLUMNS`] order.
pub fn attribute_values(a: &Attributes) -> [f64; ATTRIBUTE_COUNT] {
    [
        a.tempo_bpm,
        a.tempo_confidence,
        a.key_strength,
        a.loudness_lufs,
        a.loudness_range_lu,
        a.true_peak_dbtp,
        a.energy,
        a.danceability,
        a.brightness,
        a.percussiveness,
        a.acousticness,
        a.syncopation,
        a.harmonic_complexity,
        a.repetitiveness,
        a.dynamic_complexity,
        a.onset_rate,
        a.metre.map_or(0.0, |m| f32::from(m.beats_per_bar)),
    ]
    .map(|v| v as f64)
}

/// One failed item of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemError {
    pub external_id: Option<String>,
    pub source: Option<String>,
    /// Manifest line number, for manifest errors.
    pub line: Option<i64>,
    /// `manifest`, `missing`, `outside_root`, `io`, or an analysis error kind (`corrupt`, ...).
    pub kind: String,
    pub message: String,
}

/// An open error as `motif errors` lists it.
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct ErrorRow {
    pub id: i64,
    pub run_id: i64,
    pub external_id: Option<String>,
    pub source: Option<String>,
    pub line: Option<i64>,
    pub kind: String,
    pub message: String,
    pub created_at: i64,
}

/// What a run did, item by item.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct RunCounts {
    pub seen: u64,
    pub new: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub taken_down: u64,
    pub failed: u64,
    pub analysed: u64,
    pub audio_seconds: f64,
}

/// A stored ingest run.
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct RunRow {
    pub id: i64,
    pub input: String,
    pub status: String,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    pub seen: i64,
    pub new: i64,
    pub updated: i64,
    pub unchanged: i64,
    pub taken_down: i64,
    pub failed: i64,
    pub analysed: i64,
    pub audio_seconds: f64,
}

/// Little-endian f32 bytes, the stored form of vectors in both backends.
pub fn f32s_to_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// The inverse of [`f32s_to_bytes`] (a trailing partial value is ignored).
pub fn f32s_from_bytes(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// A fingerprint as little-endian bytes.
pub fn u32s_to_bytes(v: &[u32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// The inverse of [`u32s_to_bytes`] (a trailing partial value is ignored).
pub fn u32s_from_bytes(b: &[u8]) -> Vec<u32> {
    b.chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The facet of a `facet:value` tag.
pub fn facet_of(tag: &str) -> &str {
    tag.split_once(':').map(|(f, _)| f).unwrap_or("tag")
}
