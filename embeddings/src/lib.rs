//! # embeddings: Motif's analysis core
//!
//! Turns an audio file into a trustworthy description of the music in it:
//! [`analyze`]`(path, &config) -> `[`Analysis`] with every Genome-style attribute
//! ([`Attributes`]), derived [`Tag`]s, a raw feature vector ([`features`]) and its
//! embedding under a [`Normalizer`]. It never touches a database, an index or the network.
//!
//! Data flows one way: [`decode`] (symphonia + opus-pure) -> [`resample`] (downmix,
//! rubato) -> [`timbre`] and [`tonal`] frame features -> [`rhythm`], [`structure`],
//! [`loudness`] track statistics ([`level`] picks the beat among related tempi) -> [`attributes`], [`tags`], [`features`] -> [`embedding`];
//! beside them, [`learned`] (the musicnn models) and [`fingerprint`] (chromaprint, for
//! acoustic duplicates).

pub mod analysis;
pub mod attributes;
pub mod beats;
pub mod decode;
pub mod dsp;
pub mod embedding;
pub mod error;
pub mod eval;
pub mod features;
pub mod fingerprint;
pub mod learned;
pub mod level;
pub mod loudness;
pub mod metre;
pub mod resample;
pub mod rhythm;
pub mod structure;
pub mod tags;
pub mod timbre;
pub mod tonal;
pub mod truepeak;

pub use analysis::{analyze, analyze_with, decode_only, Analysis, AnalysisConfig, AudioInfo};
pub use attributes::{Attributes, Mode, PitchClass, Pulse};
pub use embedding::{GroupWeights, Normalizer};
pub use error::{AnalysisError, ErrorKind};
pub use metre::Metre;
pub use tags::Tag;

/// Version of the analyser: bump on any change that alters features or attributes, so
/// stored analyses are known to be stale and the indexer re-analyses with `--reanalyze`.
pub const ANALYZER_VERSION: &str = "motif-analyzer/0.8.0";

/// Sample rate (Hz) all analysis runs at, after downmix and resampling.
pub const ANALYSIS_RATE: u32 = 22_050;
