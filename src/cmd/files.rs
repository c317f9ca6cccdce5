//! Finding audio files under the paths given on the command line.

use std::path::{Path, PathBuf};

/// Extensions picked up when scanning a directory (explicit file arguments are always tried).
pub const AUDIO_EXTENSIONS: &[&str] = &[
    "mp3", "flac", "ogg", "oga", "opus", "wav", "wave", "m4a", "mp4", "aac", "alac",
];

fn is_audio(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| AUDIO_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// Expands directories recursively (sorted, audio extensions only); files pass as given.
/// A path that does not exist is returned too, so the caller reports it per file.
pub fn collect(paths: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            walk(p, &mut out);
        } else {
            out.push(p.clone());
        }
    }
    out
}

/// Recurses into real directories only: a symlinked directory is skipped, so a link loop
/// cannot recurse forever; symlinked files are followed.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<(PathBuf, bool)> = entries
        .filter_map(|e| e.ok())
        .map(|e| (e.path(), e.file_type().is_ok_and(|t| t.is_dir())))
        .collect();
    entries.sort();
    for (p, real_dir) in entries {
        if real_dir {
            walk(&p, out);
        } else if p.is_file() && is_audio(&p) {
            out.push(p);
        }
    }
}
