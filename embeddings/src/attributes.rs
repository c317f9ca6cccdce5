//! The Genome-style attributes: numbers a listener can understand, each defined here.

use serde::{Deserialize, Serialize};

/// Major or minor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Major,
    Minor,
}

impl Mode {
    /// `major` or `minor`, as serialised.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Major => "major",
            Mode::Minor => "minor",
        }
    }
}

/// A pitch class, spelled with sharps (`C`, `C#`, ... `B`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PitchClass {
    C,
    #[serde(rename = "C#")]
    CSharp,
    D,
    #[serde(rename = "D#")]
    DSharp,
    E,
    F,
    #[serde(rename = "F#")]
    FSharp,
    G,
    #[serde(rename = "G#")]
    GSharp,
    A,
    #[serde(rename = "A#")]
    ASharp,
    B,
}

impl PitchClass {
    pub const ALL: [PitchClass; 12] = [
        PitchClass::C,
        PitchClass::CSharp,
        PitchClass::D,
        PitchClass::DSharp,
        PitchClass::E,
        PitchClass::F,
        PitchClass::FSharp,
        PitchClass::G,
        PitchClass::GSharp,
        PitchClass::A,
        PitchClass::ASharp,
        PitchClass::B,
    ];

    /// Semitones above C.
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn name(self) -> &'static str {
        crate::tonal::PITCH_CLASSES[self.index()]
    }

    /// Parses `C`, `C#`, `Db`, ... (sharps or flats, case-insensitive letter).
    pub fn parse(s: &str) -> Option<PitchClass> {
        let mut chars = s.chars();
        let letter = chars.next()?.to_ascii_uppercase();
        let base: i32 = match letter {
            'C' => 0,
            'D' => 2,
            'E' => 4,
            'F' => 5,
            'G' => 7,
            'A' => 9,
            'B' => 11,
            _ => return None,
        };
        let shift = match chars.as_str() {
            "" => 0,
            "#" | "♯" => 1,
            "b" | "♭" => -1,
            _ => return None,
        };
        Some(PitchClass::ALL[(base + shift).rem_euclid(12) as usize])
    }
}

/// Whether the music has one steady pulse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pulse {
    /// One periodicity stands out: `tempo_bpm` is the tempo.
    #[default]
    Steady,
    /// No periodicity stands out from unrelated ones (rubato, ambient, free time):
    /// `tempo_bpm` is only the likeliest period, the confidence is capped at 0.2 and the
    /// track is tagged `tempo:free` instead of a tempo class. BPM range filters leave such
    /// tracks out.
    Free,
}

/// Every attribute of DESIGN.md's table. Definitions:
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attributes {
    /// Global tempo in BPM (30-250): the beat period whose pulse train best explains the
    /// autocorrelation of the onset envelope, under a log-normal prior centred at 120 BPM.
    pub tempo_bpm: f32,
    /// 0-1: height of the onset autocorrelation at that period (x2, clipped; at most 0.2
    /// when the pulse is free).
    pub tempo_confidence: f32,
    /// Steady or free (see [`Pulse`]): the winning period's salience against the best
    /// period not simply related to it (free below 1.06), and its height (free below 0.15).
    #[serde(default)]
    pub pulse: Pulse,
    /// Beats per bar and compound division, from accents, bass and harmonic change on the
    /// tracked beats (see [`crate::metre`]); absent when too few beats were tracked.
    #[serde(default)]
    pub metre: Option<crate::metre::Metre>,
    /// Tonal centre: the key profile (Krumhansl-Kessler + Temperley) that correlates best
    /// with the track's mean chroma.
    pub key: PitchClass,
    pub mode: Mode,
    /// 0-1: that correlation (Pearson, clipped at 0).
    pub key_strength: f32,
    /// Camelot wheel code (`1A`-`12B`), for harmonic mixing.
    pub camelot: String,
    /// EBU R128 integrated loudness, LUFS (floor -70).
    pub loudness_lufs: f32,
    /// EBU R128 loudness range, LU.
    pub loudness_range_lu: f32,
    /// EBU R128 true peak (4x oversampled), dBTP.
    pub true_peak_dbtp: f32,
    /// 0-1 perceived intensity: 0.35 loudness ((LUFS + 35) / 30) + 0.25 onset rate (/ 8 per
    /// second) + 0.2 spectral flux (/ 4 dB) + 0.2 share of energy above 2 kHz (/ 0.3), each
    /// clipped to 0-1.
    pub energy: f32,
    /// 0-1: 0.45 beat strength + 0.25 tempo stability + 0.3 closeness of the tempo to
    /// 118 BPM (Gaussian in octaves, sigma 0.35), times the tempo confidence raised to 0.3.
    pub danceability: f32,
    /// 0-1: mean spectral centroid (of the magnitude spectrum) on a log scale, 400 Hz -> 0,
    /// 6 kHz -> 1.
    pub brightness: f32,
    /// 0-1: share of energy in the percussive part of a median-filter harmonic/percussive
    /// separation of the mel spectrogram.
    pub percussiveness: f32,
    /// 0-1 estimate that the sound is acoustic rather than electronic, from loudness
    /// dynamics (acoustic recordings breathe), spectral flatness (noise-like synth
    /// textures) and tempo rigidity (sequenced beats). A heuristic, not yet validated
    /// against labelled data.
    pub acousticness: f32,
    /// 0-1: share of on-grid onset energy at off-beat 8th and 16th positions.
    pub syncopation: f32,
    /// 0-1: mean of the normalised chroma entropy (rescaled from 0.5-1 to 0-1) and the
    /// rate of chord changes (half-second chroma blocks whose cosine to the previous one is
    /// under 0.9).
    pub harmonic_complexity: f32,
    /// 0-1: best mean similarity along one lag (>= 4 s) of the self-similarity matrix of
    /// standardised half-second chroma + MFCC blocks.
    pub repetitiveness: f32,
    /// dB: mean absolute deviation of one-second RMS levels from their mean (silent
    /// seconds excluded).
    pub dynamic_complexity: f32,
    /// Onsets per second (peaks of the onset novelty).
    pub onset_rate: f32,
}
