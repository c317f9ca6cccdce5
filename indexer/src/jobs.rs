//! The unit of analysis work: an [`AnalysisJob`] is one track to analyse, whether a run
//! analyses it in its own process (SQLite) or a worker claims it from the Postgres queue
//! ([`crate::worker`]). Its [`JobSpec`] is what a queue row carries: everything a worker
//! on another machine needs, the audio named by a path relative to a media root (each
//! worker mounts the audio where it likes and says where with `--media-root`).

use std::panic::AssertUnwindSafe;
use std::path::{Component, Path, PathBuf};

use embeddings::{AnalysisConfig, Normalizer};

use crate::catalog::{AnalysisRow, ItemError, TrackMeta, TrackWrite};

/// What a queued job carries (stored as JSON in `analysis_jobs.spec`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct JobSpec {
    pub meta: TrackMeta,
    pub meta_hash: String,
    /// blake3 of the audio when planned.
    pub content_hash: String,
    /// The audio, relative to the media root the run was planned under (`/` separated,
    /// no `..`).
    pub path: String,
}

/// One track to analyse: its spec and where its audio is on this machine.
#[derive(Debug, Clone)]
pub struct AnalysisJob {
    pub spec: JobSpec,
    pub audio: PathBuf,
}

/// Why a job cannot be planned or read.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum JobError {
    #[error("{path} is outside the media root {root}")]
    OutsideRoot { path: PathBuf, root: PathBuf },
    #[error("job path {0:?} is not a plain relative path")]
    BadPath(String),
    #[error("job spec is not valid: {0}")]
    Spec(String),
}

impl JobSpec {
    /// The spec of an upsert planned for analysis; `audio` must lie under `media_root`
    /// (both canonical).
    pub fn new(
        meta: TrackMeta,
        meta_hash: String,
        content_hash: String,
        audio: &Path,
        media_root: &Path,
    ) -> Result<JobSpec, JobError> {
        let rel = audio
            .strip_prefix(media_root)
            .map_err(|_| JobError::OutsideRoot {
                path: audio.to_path_buf(),
                root: media_root.to_path_buf(),
            })?;
        let parts: Vec<String> = rel
            .components()
            .map(|c| match c {
                Component::Normal(s) => Ok(s.to_string_lossy().into_owned()),
                _ => Err(JobError::BadPath(rel.display().to_string())),
            })
            .collect::<Result<_, _>>()?;
        Ok(JobSpec {
            meta,
            meta_hash,
            content_hash,
            path: parts.join("/"),
        })
    }

    /// Reads a spec from a queue row.
    pub fn from_json(v: &serde_json::Value) -> Result<JobSpec, JobError> {
        serde_json::from_value(v.clone()).map_err(|e| JobError::Spec(e.to_string()))
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }

    /// Where the audio is under this worker's `media_root`; a path that would leave it
    /// (absolute, `..`) is refused, whatever the row says.
    pub fn locate(self, media_root: &Path) -> Result<AnalysisJob, JobError> {
        let rel = Path::new(&self.path);
        if self.path.is_empty() || !rel.components().all(|c| matches!(c, Component::Normal(_))) {
            return Err(JobError::BadPath(self.path));
        }
        Ok(AnalysisJob {
            audio: media_root.join(rel),
            spec: self,
        })
    }
}

impl AnalysisJob {
    /// The job's error of `kind` (as the store records it).
    pub fn error(&self, kind: &str, message: String) -> ItemError {
        ItemError {
            external_id: Some(self.spec.meta.external_id.clone()),
            source: Some(self.spec.meta.source.clone()),
            line: None,
            kind: kind.into(),
            message,
        }
    }

    /// Analyses the audio behind a panic boundary: the track's write, or its error.
    pub fn analyse(
        &self,
        config: &AnalysisConfig,
        space: Option<&Normalizer>,
    ) -> Result<TrackWrite, ItemError> {
        let analysis = analyse_file(&self.audio, config, space)
            .map_err(|(kind, message)| self.error(&kind, message))?;
        Ok(TrackWrite {
            meta: self.spec.meta.clone(),
            meta_hash: self.spec.meta_hash.clone(),
            content_hash: self.spec.content_hash.clone(),
            analysis: Some(analysis),
        })
    }
}

/// Whether retrying an analysis that failed with `kind` can help: reading the file
/// (a mount away, a file missing on this worker) or a bug may not happen again; a corrupt,
/// unsupported, empty, silent, too short or too long file fails the same way every time.
pub fn is_transient(kind: &str) -> bool {
    matches!(kind, "io" | "missing" | "internal")
}

/// Analyses one file behind a panic boundary: `(kind, message)` on failure.
pub fn analyse_file(
    path: &Path,
    config: &AnalysisConfig,
    space: Option<&Normalizer>,
) -> Result<AnalysisRow, (String, String)> {
    if !path.exists() {
        return Err((
            "missing".into(),
            format!("{}: no such file", path.display()),
        ));
    }
    match std::panic::catch_unwind(AssertUnwindSafe(|| embeddings::analyze(path, config))) {
        Ok(Ok(a)) => Ok(AnalysisRow::from_analysis(a, space)),
        Ok(Err(e)) => Err((e.kind.as_str().to_string(), e.message)),
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(("internal".into(), format!("analyser panicked: {what}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(path: &str) -> JobSpec {
        JobSpec {
            meta: TrackMeta {
                external_id: "x".into(),
                source: "a.wav".into(),
                ..TrackMeta::default()
            },
            meta_hash: "m".into(),
            content_hash: "h".into(),
            path: path.into(),
        }
    }

    #[test]
    fn paths_are_relative_to_the_media_root() {
        let s = JobSpec::new(
            TrackMeta::default(),
            "m".into(),
            "h".into(),
            Path::new("/media/d/a b.wav"),
            Path::new("/media"),
        )
        .unwrap();
        assert_eq!(s.path, "d/a b.wav");
        let j = s.locate(Path::new("/mnt/w")).unwrap();
        assert_eq!(j.audio, Path::new("/mnt/w/d/a b.wav"));
        assert!(matches!(
            JobSpec::new(
                TrackMeta::default(),
                "m".into(),
                "h".into(),
                Path::new("/other/a.wav"),
                Path::new("/media")
            ),
            Err(JobError::OutsideRoot { .. })
        ));
    }

    #[test]
    fn a_row_cannot_leave_the_media_root() {
        for bad in ["", "/etc/passwd", "../x.wav", "d/../../x.wav", "./x.wav"] {
            assert!(
                matches!(spec(bad).locate(Path::new("/m")), Err(JobError::BadPath(_))),
                "{bad}"
            );
        }
        let round = JobSpec::from_json(&spec("d/x.wav").to_json()).unwrap();
        assert_eq!(round, spec("d/x.wav"));
        assert!(JobSpec::from_json(&serde_json::json!({"path": 3})).is_err());
    }
}
