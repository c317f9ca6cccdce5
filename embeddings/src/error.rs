//! The one error type of the analysis core.
//!
//! Every failure a caller can see carries a stable machine-readable [`ErrorKind`]
//! (what the CLI prints as `kind`, what the indexer stores per failed item) and a human
//! message that says what was wrong with which input.

use std::path::PathBuf;

use serde::Serialize;

/// Stable, machine-readable class of an analysis failure.
///
/// The string forms (`as_str`) are part of Motif's public contract: the CLI prints them,
/// the store records them, the HTTP API maps them to status codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The file could not be opened or read.
    Io,
    /// The file has zero bytes.
    Empty,
    /// The bytes are not a container format Motif knows (or not audio at all).
    UnsupportedFormat,
    /// The container is known, but its audio codec is not.
    UnsupportedCodec,
    /// The stream is damaged beyond what the decoder can skip over.
    Corrupt,
    /// Decoded audio is shorter than [`crate::AnalysisConfig::min_duration_s`].
    TooShort,
    /// Decoded audio is longer than [`crate::AnalysisConfig::max_duration_s`].
    TooLong,
    /// The file is larger than [`crate::AnalysisConfig::max_file_bytes`].
    TooLarge,
    /// The audio is digital silence (or close to it): nothing to describe.
    Silent,
    /// A bug in Motif (a panic caught at the analysis boundary).
    Internal,
}

impl ErrorKind {
    /// The snake_case name used in JSON and in the store.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Io => "io",
            ErrorKind::Empty => "empty",
            ErrorKind::UnsupportedFormat => "unsupported_format",
            ErrorKind::UnsupportedCodec => "unsupported_codec",
            ErrorKind::Corrupt => "corrupt",
            ErrorKind::TooShort => "too_short",
            ErrorKind::TooLong => "too_long",
            ErrorKind::TooLarge => "too_large",
            ErrorKind::Silent => "silent",
            ErrorKind::Internal => "internal",
        }
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a file could not be analysed.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {kind}: {message}")]
pub struct AnalysisError {
    /// The class of failure.
    pub kind: ErrorKind,
    /// The input that failed.
    pub path: PathBuf,
    /// What went wrong, for a human.
    pub message: String,
}

impl AnalysisError {
    pub(crate) fn new(
        kind: ErrorKind,
        path: impl Into<PathBuf>,
        message: impl Into<String>,
    ) -> Self {
        AnalysisError {
            kind,
            path: path.into(),
            message: message.into(),
        }
    }
}
