//! Inputs of an ingest run: a directory of audio (metadata from the files' own tags, or
//! the file name) or a JSONL manifest. Both become the same list of [`Item`]s.

use std::path::{Path, PathBuf};

use lofty::config::ParseOptions;
use lofty::file::TaggedFileExt;
use lofty::probe::Probe;
use lofty::tag::ItemKey;

use crate::catalog::rows::normalise_tag;
use crate::catalog::{ItemError, TrackMeta};
use crate::manifest::{self, Entry, Source};

/// Extensions picked up when scanning a directory (explicit files are always tried).
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
pub fn collect_audio(paths: &[PathBuf]) -> Vec<PathBuf> {
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

/// One operation of a run.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)] // upserts are the common case
pub enum Item {
    /// Insert or update a track from the audio at `path`.
    Upsert { meta: TrackMeta, path: PathBuf },
    /// Take a track down.
    Delete { external_id: String },
}

impl Item {
    pub fn external_id(&self) -> &str {
        match self {
            Item::Upsert { meta, .. } => &meta.external_id,
            Item::Delete { external_id } => external_id,
        }
    }
}

/// What an input yielded: the items in order, the items refused up front, and the root
/// that audio paths must stay inside.
#[derive(Debug, Default)]
pub struct Input {
    pub items: Vec<Item>,
    pub errors: Vec<ItemError>,
    pub root: PathBuf,
    /// How the run's input is described in `ingest_runs`.
    pub describe: String,
}

/// Why an input cannot be read at all (per-item problems are [`ItemError`]s instead).
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("{0}: no such file or directory")]
    Missing(PathBuf),
    #[error("cannot read {0}: {1}")]
    Io(PathBuf, std::io::Error),
}

/// Reads a directory (scanned recursively) or a manifest file (`.jsonl`, `.json`,
/// `.ndjson`, or any file that is not audio).
pub fn read_input(path: &Path) -> Result<Input, InputError> {
    if !path.exists() {
        return Err(InputError::Missing(path.to_path_buf()));
    }
    let canon = path
        .canonicalize()
        .map_err(|e| InputError::Io(path.to_path_buf(), e))?;
    if canon.is_dir() {
        Ok(read_directory(&canon))
    } else if is_audio(&canon) {
        let root = canon.parent().unwrap_or(Path::new("/")).to_path_buf();
        let meta = file_meta(&canon, &root);
        Ok(Input {
            items: vec![Item::Upsert { meta, path: canon }],
            errors: Vec::new(),
            root,
            describe: format!("file {}", path.display()),
        })
    } else {
        read_manifest(&canon)
    }
}

fn read_directory(root: &Path) -> Input {
    let items = collect_audio(&[root.to_path_buf()])
        .into_iter()
        .map(|p| Item::Upsert {
            meta: file_meta(&p, root),
            path: p,
        })
        .collect();
    Input {
        items,
        errors: Vec::new(),
        root: root.to_path_buf(),
        describe: format!("directory {}", root.display()),
    }
}

fn read_manifest(path: &Path) -> Result<Input, InputError> {
    let root = path.parent().unwrap_or(Path::new("/")).to_path_buf();
    let file = std::fs::File::open(path).map_err(|e| InputError::Io(path.to_path_buf(), e))?;
    Ok(manifest_input(
        std::io::BufReader::new(file),
        &root,
        &path.display().to_string(),
    ))
}

/// A manifest read from `reader` (a file, or a request body), its paths resolved under
/// `root`; `label` names it in error rows and in the run's description.
pub fn manifest_input(reader: impl std::io::BufRead, root: &Path, label: &str) -> Input {
    let root = root.to_path_buf();
    let parsed = manifest::read(reader, &root);
    let mut input = Input {
        root: root.clone(),
        describe: format!("manifest {label}"),
        ..Input::default()
    };
    for e in parsed.errors {
        input.errors.push(ItemError {
            external_id: None,
            source: Some(label.to_string()),
            line: Some(e.line as i64),
            kind: "manifest".into(),
            message: e.message,
        });
    }
    for (line, entry) in parsed.entries {
        match entry {
            Entry::Delete { external_id } => input.items.push(Item::Delete { external_id }),
            Entry::Upsert(spec) => {
                let (file, source) = match &spec.source {
                    Source::Path(p) => (p.clone(), relative(p, &root)),
                    Source::Uri(u) => match u.strip_prefix("file://") {
                        Some(local) => (PathBuf::from(local), u.clone()),
                        None => {
                            input.errors.push(ItemError {
                                external_id: Some(spec.external_id.clone()),
                                source: Some(u.clone()),
                                line: Some(line as i64),
                                kind: "unsupported_uri".into(),
                                message: format!(
                                    "cannot fetch {u}: only paths and file:// URIs are read \
                                     (fetch remote audio before delivery)"
                                ),
                            });
                            continue;
                        }
                    },
                };
                let meta = TrackMeta {
                    external_id: spec.external_id.clone(),
                    title: spec.title.clone(),
                    artists: spec.artists.clone(),
                    album: spec.album.clone(),
                    genre: spec.genre.clone(),
                    release_date: spec.release_date.map(|d| match (d.month, d.day) {
                        (Some(m), Some(day)) => format!("{:04}-{m:02}-{day:02}", d.year),
                        (Some(m), None) => format!("{:04}-{m:02}", d.year),
                        _ => format!("{:04}", d.year),
                    }),
                    release_year: spec.release_date.map(|d| d.year as i32),
                    isrc: spec.isrc.clone(),
                    source,
                    tags: catalog_tags(&spec.tags, spec.genre.as_deref()),
                };
                input.items.push(Item::Upsert { meta, path: file });
            }
        }
    }
    input
}

/// Normalised, deduplicated catalogue tags, plus `genre:<genre>` when a genre is given.
fn catalog_tags(raw: &[String], genre: Option<&str>) -> Vec<String> {
    let mut tags: Vec<String> = raw.iter().filter_map(|t| normalise_tag(t)).collect();
    if let Some(g) = genre.and_then(|g| normalise_tag(&format!("genre:{g}"))) {
        tags.push(g);
    }
    tags.sort();
    tags.dedup();
    tags
}

fn relative(p: &Path, root: &Path) -> String {
    p.strip_prefix(root).unwrap_or(p).display().to_string()
}

/// Metadata of a file found in a directory: its tags when it has them (lofty), else the
/// file name (`Artist - Title.ext` splits into both). The external id is `file:` plus the
/// path relative to the scanned root, stable across runs.
pub fn file_meta(path: &Path, root: &Path) -> TrackMeta {
    let rel = relative(path, root);
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default();
    let (name_artist, name_title) = match stem.split_once(" - ") {
        Some((a, t)) if !a.trim().is_empty() && !t.trim().is_empty() => {
            (Some(a.trim().to_string()), t.trim().to_string())
        }
        _ => (None, stem.clone()),
    };
    let mut meta = TrackMeta {
        external_id: format!("file:{rel}"),
        title: Some(name_title),
        artists: name_artist.into_iter().collect(),
        source: rel,
        ..TrackMeta::default()
    };
    let opts = ParseOptions::new()
        .read_properties(false)
        .read_cover_art(false);
    let tagged = Probe::open(path)
        .and_then(|p| p.options(opts).guess_file_type().map_err(Into::into))
        .and_then(|p| p.read());
    if let Ok(file) = tagged {
        if let Some(tag) = file.primary_tag().or_else(|| file.first_tag()) {
            let get = |k: ItemKey| {
                tag.get_string(k)
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
            };
            if let Some(t) = get(ItemKey::TrackTitle) {
                meta.title = Some(t);
            }
            let artists: Vec<String> = tag
                .get_strings(ItemKey::TrackArtist)
                .flat_map(|s| s.split(['\u{0}', ';']))
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect();
            if !artists.is_empty() {
                meta.artists = artists;
            }
            meta.album = get(ItemKey::AlbumTitle);
            meta.genre = get(ItemKey::Genre);
            meta.isrc = get(ItemKey::Isrc);
            if let Some(d) = get(ItemKey::RecordingDate).or_else(|| get(ItemKey::Year)) {
                let year: Option<i32> = d.get(..4).and_then(|y| y.parse().ok());
                if let Some(y) = year.filter(|y| (1000..=9999).contains(y)) {
                    meta.release_year = Some(y);
                    meta.release_date = Some(d.chars().take(10).collect());
                }
            }
        }
    }
    meta.tags = catalog_tags(&[], meta.genre.as_deref());
    meta
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_become_titles_and_artists() {
        let m = file_meta(
            Path::new("/music/a/Some Band - A Song.ogg"),
            Path::new("/music"),
        );
        assert_eq!(m.external_id, "file:a/Some Band - A Song.ogg");
        assert_eq!(m.title.as_deref(), Some("A Song"));
        assert_eq!(m.artists, vec!["Some Band".to_string()]);
        let m = file_meta(Path::new("/music/track01.ogg"), Path::new("/music"));
        assert_eq!(m.title.as_deref(), Some("track01"));
        assert!(m.artists.is_empty());
    }

    /// Real tags written into a real file (lofty) become the track's metadata.
    #[test]
    fn file_tags_become_metadata() {
        use lofty::config::WriteOptions;
        use lofty::tag::{Accessor, Tag, TagExt};
        let dir = std::env::temp_dir().join(format!("motif-tags-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/audio");
        for name in [
            "pop_a_major_120.mp3",
            "pop_a_major_120.ogg",
            "pop_a_major_120.flac",
        ] {
            let path = dir.join(name);
            std::fs::copy(fixtures.join(name), &path).unwrap();
            let file = lofty::read_from_path(&path).unwrap();
            let mut tag = Tag::new(file.primary_tag_type());
            tag.set_title("Tagged Title".into());
            tag.set_artist("Tagged Artist".into());
            tag.set_album("Tagged Album".into());
            tag.set_genre("Synth Pop".into());
            tag.insert_text(ItemKey::RecordingDate, "2019-05-01".into());
            tag.insert_text(ItemKey::Isrc, "ZZMTF1900001".into());
            tag.save_to_path(&path, WriteOptions::default()).unwrap();
            let m = file_meta(&path, &dir);
            assert_eq!(m.title.as_deref(), Some("Tagged Title"), "{name}");
            assert_eq!(m.artists, vec!["Tagged Artist".to_string()], "{name}");
            assert_eq!(m.album.as_deref(), Some("Tagged Album"), "{name}");
            assert_eq!(m.genre.as_deref(), Some("Synth Pop"), "{name}");
            assert_eq!(m.release_year, Some(2019), "{name}");
            assert_eq!(m.isrc.as_deref(), Some("ZZMTF1900001"), "{name}");
            assert_eq!(m.tags, vec!["genre:synth pop".to_string()], "{name}");
            assert_eq!(m.external_id, format!("file:{name}"));
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn tags_are_namespaced_and_genre_becomes_a_tag() {
        let t = catalog_tags(
            &["Chill".into(), "mood:Calm".into(), " ".into()],
            Some("Jazz"),
        );
        assert_eq!(t, vec!["genre:jazz", "mood:calm", "tag:chill"]);
    }
}
