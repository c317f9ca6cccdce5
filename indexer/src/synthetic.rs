//! Synthetic catalogues for benchmarks and tests: deterministic tracks with every store
//! column filled (metadata, attributes, the analyser's own tag rules, an embedding shaped
//! on given centres), so the store, the indexes and the query engine can be measured and
//! tested at any size without audio.

use embeddings::attributes::{Mode, PitchClass};
use embeddings::Attributes;

use crate::catalog::{AnalysisRow, TagScore, TrackMeta, TrackWrite};

/// xorshift64* with Box-Muller: deterministic, no dependency.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn normal(&mut self) -> f32 {
        let (u, v) = (self.unit().max(1e-12), self.unit());
        ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// The generator of track number `i`'s values.
fn track_rng(i: usize) -> Rng {
    Rng(0x9E37_79B9_7F4A_7C15 ^ (i as u64).wrapping_mul(0xD1B5_4A32_D192_ED03) | 1)
}

/// Generates track number `i` deterministically.
pub struct Synth {
    /// Unit vectors the embeddings are blended from.
    pub centres: Vec<Vec<f32>>,
    pub dim: usize,
}

impl Synth {
    /// A unit embedding: a random blend of two centres plus Gaussian noise.
    pub fn embedding(&self, rng: &mut Rng) -> Vec<f32> {
        let a = &self.centres[rng.below(self.centres.len())];
        let b = &self.centres[rng.below(self.centres.len())];
        let t = rng.unit() as f32 * 0.5;
        let sigma = 0.25 / (self.dim as f32).sqrt();
        let mut v: Vec<f32> = a
            .iter()
            .zip(b)
            .map(|(x, y)| (1.0 - t) * x + t * y + sigma * rng.normal())
            .collect();
        embeddings::embedding::l2_normalise(&mut v);
        v
    }

    /// Track number `i`'s embedding, as [`track`](Self::track) draws it (without the
    /// rest of the track): for benchmarks of the vector index alone.
    pub fn track_embedding(&self, i: usize) -> Vec<f32> {
        self.embedding(&mut track_rng(i))
    }

    /// Track number `i` (the same every time): metadata, attributes, the analyser's own
    /// tag rules, an embedding.
    pub fn track(&self, i: usize) -> TrackWrite {
        let mut rng = track_rng(i);
        let embedding = self.embedding(&mut rng);
        let features: Vec<f32> = (0..embeddings::features::FEATURE_DIM)
            .map(|_| rng.normal())
            .collect();
        let tempo = 60.0 + rng.unit() as f32 * 120.0;
        let key = PitchClass::ALL[rng.below(12)];
        let mode = if rng.below(2) == 0 {
            Mode::Major
        } else {
            Mode::Minor
        };
        let mut u = || rng.unit() as f32;
        let attributes = Attributes {
            tempo_bpm: tempo,
            tempo_confidence: u(),
            pulse: embeddings::Pulse::Steady,
            metre: Some(embeddings::Metre {
                beats_per_bar: [4, 4, 3, 2][i % 4],
                compound: i.is_multiple_of(7),
            }),
            key,
            mode,
            key_strength: u(),
            camelot: embeddings::tonal::camelot(key.index(), mode == Mode::Major),
            loudness_lufs: -30.0 + 25.0 * u(),
            loudness_range_lu: 20.0 * u(),
            true_peak_dbtp: -3.0 * u(),
            energy: u(),
            danceability: u(),
            brightness: u(),
            percussiveness: u(),
            acousticness: u(),
            syncopation: u(),
            harmonic_complexity: u(),
            repetitiveness: u(),
            dynamic_complexity: 10.0 * u(),
            onset_rate: 8.0 * u(),
        };
        let moods = ["calm", "happy", "dark", "driving", "dreamy", "epic"];
        let genres = [
            "pop",
            "rock",
            "jazz",
            "ambient",
            "folk",
            "electronic",
            "hip-hop",
        ];
        let genre = genres[rng.below(genres.len())];
        let year = 1960 + rng.below(66);
        let meta = TrackMeta {
            external_id: format!("bench-{i:08}"),
            title: Some(format!("Synthetic song {i} in {}", key.name())),
            artists: vec![format!("Artist {}", rng.below(50_000))],
            album: Some(format!("Album {}", rng.below(100_000))),
            genre: Some(genre.into()),
            release_date: Some(format!("{year}")),
            release_year: Some(year as i32),
            isrc: None,
            source: format!("bench/{i}.ogg"),
            tags: vec![
                format!("genre:{genre}"),
                format!("mood:{}", moods[rng.below(moods.len())]),
            ],
        };
        // The analyser's own tag rules on these attributes: as many tags as real tracks get.
        let tags = embeddings::tags::derive(&attributes)
            .into_iter()
            .map(|t| TagScore {
                name: t.name,
                score: t.score as f64,
            })
            .collect();
        let duration_s = 120.0 + 200.0 * rng.unit();
        TrackWrite {
            meta_hash: meta.fingerprint(),
            meta,
            content_hash: format!("{:016x}{:016x}", rng.next_u64(), i),
            analysis: Some(AnalysisRow {
                analyzer_version: embeddings::ANALYZER_VERSION.into(),
                duration_s,
                // A steady grid, as many beats as a real track of this length and tempo.
                beats: (0..(duration_s as f32 * tempo / 60.0) as usize)
                    .map(|k| 0.1 + k as f32 * 60.0 / tempo)
                    .collect(),
                codec: "vorbis".into(),
                sample_rate: 44_100,
                channels: 2,
                attributes,
                tags,
                features,
                embedding,
                embedding_space: "bench".into(),
                // As long as a real one (a minute), unrelated to any other track's.
                fingerprint: (0..FINGERPRINT_VALUES)
                    .map(|_| rng.next_u64() as u32)
                    .collect(),
                // Synthetic tracks are minutes long: no fine fingerprint.
                fine_fingerprint: Vec::new(),
            }),
        }
    }
}

/// Values in a real track's fingerprint (its first minute).
const FINGERPRINT_VALUES: usize =
    (embeddings::fingerprint::SECONDS / embeddings::fingerprint::VALUE_SECONDS as f64) as usize;

impl Synth {
    /// Shapes embeddings on `n` random unit centres (seeded).
    pub fn random(n: usize, seed: u64) -> Synth {
        let dim = embeddings::embedding::EMBEDDING_DIM;
        let mut rng = Rng(seed | 1);
        let centres = (0..n.max(2))
            .map(|_| {
                let mut v: Vec<f32> = (0..dim).map(|_| rng.normal()).collect();
                embeddings::embedding::l2_normalise(&mut v);
                v
            })
            .collect();
        Synth { centres, dim }
    }
}
