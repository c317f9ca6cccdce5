//! The delivery manifest: JSONL, one operation per line.
//!
//! ```text
//! {"op": "upsert", "external_id": "cat-0001", "path": "audio/pop.ogg", "title": "Pop",
//!  "artists": ["Motif Band"], "album": "Fixtures", "genre": "pop",
//!  "release_date": "2026-11-26", "tags": ["mood:happy"], "isrc": "QZABC2600001"}
//! {"op": "delete", "external_id": "cat-0002"}
//! ```
//!
//! `op` defaults to `upsert`. An upsert names its audio with exactly one of `path`
//! (relative to the manifest's root; absolute paths and `..` escapes are refused) or `uri`.
//! Blank lines and lines starting with `#` are skipped. Unknown fields are errors, so a
//! typo (`"artist"` for `"artists"`) is reported rather than silently dropped. A bad line
//! becomes a [`LineError`] with its number; every other line still comes through.

use std::io::BufRead;
use std::path::{Component, Path, PathBuf};

use serde::Deserialize;

/// One valid manifest line.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    Upsert(TrackSpec),
    Delete { external_id: String },
}

impl Entry {
    pub fn external_id(&self) -> &str {
        match self {
            Entry::Upsert(t) => &t.external_id,
            Entry::Delete { external_id } => external_id,
        }
    }
}

/// Where a track's audio is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A file under the manifest's root (already joined and checked to stay inside it).
    Path(PathBuf),
    /// A URI the pipeline fetches or maps (not a local path).
    Uri(String),
}

/// A release date with the precision the catalogue knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReleaseDate {
    pub year: u16,
    pub month: Option<u8>,
    pub day: Option<u8>,
}

/// A track to insert or update.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackSpec {
    pub external_id: String,
    pub source: Source,
    pub title: Option<String>,
    pub artists: Vec<String>,
    pub album: Option<String>,
    pub genre: Option<String>,
    pub release_date: Option<ReleaseDate>,
    pub tags: Vec<String>,
    pub isrc: Option<String>,
}

/// A line that could not be used, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct LineError {
    /// 1-based line number in the manifest.
    pub line: usize,
    pub message: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLine {
    op: Option<String>,
    external_id: Option<String>,
    path: Option<String>,
    uri: Option<String>,
    title: Option<String>,
    #[serde(default)]
    artists: Vec<String>,
    album: Option<String>,
    genre: Option<String>,
    release_date: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    isrc: Option<String>,
}

/// What a whole manifest yielded.
#[derive(Debug, Default)]
pub struct Parsed {
    pub entries: Vec<(usize, Entry)>,
    pub errors: Vec<LineError>,
}

/// Reads a manifest; `root` is the folder relative paths resolve against. An I/O error
/// while reading is reported as a line error at the line it happened and ends the read.
pub fn read(reader: impl BufRead, root: &Path) -> Parsed {
    let mut parsed = Parsed::default();
    for (i, line) in reader.lines().enumerate() {
        let n = i + 1;
        match line {
            Ok(text) => match parse_line(&text, root) {
                Ok(Some(e)) => parsed.entries.push((n, e)),
                Ok(None) => {}
                Err(message) => parsed.errors.push(LineError { line: n, message }),
            },
            Err(e) => {
                parsed.errors.push(LineError {
                    line: n,
                    message: format!("cannot read: {e}"),
                });
                break;
            }
        }
    }
    parsed
}

/// Parses one line: `Ok(None)` for blank and comment lines.
pub fn parse_line(text: &str, root: &Path) -> Result<Option<Entry>, String> {
    let text = text.trim();
    if text.is_empty() || text.starts_with('#') {
        return Ok(None);
    }
    let raw: RawLine =
        serde_json::from_str(text).map_err(|e| format!("not a valid manifest object: {e}"))?;
    let external_id = raw
        .external_id
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .ok_or("missing `external_id`")?;
    match raw.op.as_deref().unwrap_or("upsert") {
        "delete" => Ok(Some(Entry::Delete { external_id })),
        "upsert" => {
            let source = match (raw.path, raw.uri) {
                (Some(p), None) => Source::Path(resolve(root, &p)?),
                (None, Some(u)) if !u.trim().is_empty() => Source::Uri(u.trim().to_string()),
                (None, Some(_)) => return Err("empty `uri`".into()),
                (None, None) => return Err("an upsert needs `path` or `uri`".into()),
                (Some(_), Some(_)) => return Err("give `path` or `uri`, not both".into()),
            };
            let clean = |v: Vec<String>, what: &str| -> Result<Vec<String>, String> {
                v.into_iter()
                    .map(|s| {
                        let s = s.trim().to_string();
                        if s.is_empty() {
                            Err(format!("empty entry in `{what}`"))
                        } else {
                            Ok(s)
                        }
                    })
                    .collect()
            };
            let isrc = raw
                .isrc
                .map(|s| s.trim().replace('-', "").to_ascii_uppercase());
            if let Some(i) = &isrc {
                if !valid_isrc(i) {
                    return Err(format!("`isrc` {i:?} is not an ISRC (CC XXX YY NNNNN)"));
                }
            }
            Ok(Some(Entry::Upsert(TrackSpec {
                external_id,
                source,
                title: raw
                    .title
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty()),
                artists: clean(raw.artists, "artists")?,
                album: raw
                    .album
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty()),
                genre: raw
                    .genre
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty()),
                release_date: raw.release_date.as_deref().map(parse_date).transpose()?,
                tags: clean(raw.tags, "tags")?,
                isrc,
            })))
        }
        other => Err(format!(
            "unknown `op` {other:?} (expected \"upsert\" or \"delete\")"
        )),
    }
}

/// Joins a manifest path to `root`, refusing absolute paths and any `..` that would leave it.
fn resolve(root: &Path, rel: &str) -> Result<PathBuf, String> {
    let p = Path::new(rel);
    if rel.trim().is_empty() {
        return Err("empty `path`".into());
    }
    let mut out = root.to_path_buf();
    let mut depth = 0usize;
    for c in p.components() {
        match c {
            Component::Normal(part) => {
                out.push(part);
                depth += 1;
            }
            Component::CurDir => {}
            Component::ParentDir if depth > 0 => {
                out.pop();
                depth -= 1;
            }
            Component::ParentDir => {
                return Err(format!("`path` {rel:?} leaves the manifest's root"))
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(format!(
                    "`path` {rel:?} is absolute; paths are relative to the manifest's root"
                ))
            }
        }
    }
    Ok(out)
}

fn parse_date(s: &str) -> Result<ReleaseDate, String> {
    let bad = || format!("`release_date` {s:?} is not YYYY, YYYY-MM or YYYY-MM-DD");
    let parts: Vec<&str> = s.trim().split('-').collect();
    let num = |p: &str, len: usize| -> Result<u16, String> {
        if p.len() == len && p.bytes().all(|b| b.is_ascii_digit()) {
            p.parse().map_err(|_| bad())
        } else {
            Err(bad())
        }
    };
    let year = num(parts.first().ok_or_else(bad)?, 4)?;
    let month = parts
        .get(1)
        .map(|m| num(m, 2))
        .transpose()?
        .map(|m| m as u8);
    let day = parts
        .get(2)
        .map(|d| num(d, 2))
        .transpose()?
        .map(|d| d as u8);
    if parts.len() > 3
        || month.is_some_and(|m| !(1..=12).contains(&m))
        || day.is_some_and(|d| !(1..=31).contains(&d))
    {
        return Err(bad());
    }
    Ok(ReleaseDate { year, month, day })
}

/// ISRC: 2 letters (country), 3 alphanumerics (registrant), 7 digits (year + designation).
fn valid_isrc(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 12
        && b[..2].iter().all(u8::is_ascii_uppercase)
        && b[2..5]
            .iter()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        && b[5..].iter().all(u8::is_ascii_digit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> PathBuf {
        PathBuf::from("/music")
    }

    #[test]
    fn a_full_upsert_parses() {
        let e = parse_line(
            r#"{"op":"upsert","external_id":"cat-1","path":"a/b.ogg","title":" T ","artists":["X","Y"],"album":"A","genre":"pop","release_date":"2024-05","tags":["mood:calm"],"isrc":"qz-abc-26-00001"}"#,
            &root(),
        )
        .unwrap()
        .unwrap();
        let Entry::Upsert(t) = e else {
            panic!("not an upsert")
        };
        assert_eq!(t.source, Source::Path(PathBuf::from("/music/a/b.ogg")));
        assert_eq!(t.title.as_deref(), Some("T"));
        assert_eq!(t.artists, vec!["X", "Y"]);
        assert_eq!(
            t.release_date,
            Some(ReleaseDate {
                year: 2024,
                month: Some(5),
                day: None
            })
        );
        assert_eq!(t.isrc.as_deref(), Some("QZABC2600001"));
    }

    #[test]
    fn delete_needs_only_an_id_and_op_defaults_to_upsert() {
        assert_eq!(
            parse_line(r#"{"op":"delete","external_id":"cat-2"}"#, &root()).unwrap(),
            Some(Entry::Delete {
                external_id: "cat-2".into()
            })
        );
        let e = parse_line(r#"{"external_id":"x","uri":"s3://bucket/x.flac"}"#, &root())
            .unwrap()
            .unwrap();
        assert!(matches!(
            e,
            Entry::Upsert(TrackSpec {
                source: Source::Uri(_),
                ..
            })
        ));
        assert_eq!(parse_line("   ", &root()).unwrap(), None);
        assert_eq!(parse_line("# a comment", &root()).unwrap(), None);
    }

    #[test]
    fn bad_lines_say_why() {
        for (line, why) in [
            ("{not json", "not a valid manifest object"),
            (r#"{"path":"a.ogg"}"#, "missing `external_id`"),
            (
                r#"{"external_id":"  ","path":"a.ogg"}"#,
                "missing `external_id`",
            ),
            (r#"{"external_id":"x"}"#, "needs `path` or `uri`"),
            (
                r#"{"external_id":"x","path":"a.ogg","uri":"u"}"#,
                "not both",
            ),
            (
                r#"{"external_id":"x","path":"../etc/passwd"}"#,
                "leaves the manifest's root",
            ),
            (
                r#"{"external_id":"x","path":"a/../../b.ogg"}"#,
                "leaves the manifest's root",
            ),
            (r#"{"external_id":"x","path":"/etc/passwd"}"#, "is absolute"),
            (
                r#"{"external_id":"x","path":"a.ogg","artist":"typo"}"#,
                "unknown field",
            ),
            (r#"{"op":"purge","external_id":"x"}"#, "unknown `op`"),
            (
                r#"{"external_id":"x","path":"a.ogg","release_date":"2024-13-01"}"#,
                "release_date",
            ),
            (
                r#"{"external_id":"x","path":"a.ogg","isrc":"NOTANISRC"}"#,
                "not an ISRC",
            ),
            (
                r#"{"external_id":"x","path":"a.ogg","artists":["ok",""]}"#,
                "empty entry in `artists`",
            ),
            (
                r#"{"external_id":7,"path":"a.ogg"}"#,
                "not a valid manifest object",
            ),
        ] {
            let err = parse_line(line, &root()).unwrap_err();
            assert!(err.contains(why), "{line}: {err}");
        }
        // `..` that stays inside the root is fine.
        let e = parse_line(r#"{"external_id":"x","path":"a/../b.ogg"}"#, &root())
            .unwrap()
            .unwrap();
        assert!(
            matches!(e, Entry::Upsert(TrackSpec { source: Source::Path(p), .. }) if p == Path::new("/music/b.ogg"))
        );
    }

    #[test]
    fn a_manifest_keeps_good_lines_and_numbers_bad_ones() {
        let text = "{\"external_id\":\"a\",\"path\":\"a.ogg\"}\n\n{broken\n{\"op\":\"delete\",\"external_id\":\"b\"}\n";
        let p = read(text.as_bytes(), &root());
        assert_eq!(
            p.entries
                .iter()
                .map(|(n, e)| (*n, e.external_id().to_string()))
                .collect::<Vec<_>>(),
            vec![(1, "a".to_string()), (4, "b".to_string())]
        );
        assert_eq!(p.errors.len(), 1);
        assert_eq!(p.errors[0].line, 3);
    }
}

#[cfg(test)]
mod fixture_tests {
    use super::*;

    #[test]
    fn the_example_manifest_in_fixtures_is_valid_and_its_files_exist() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures");
        let file = std::fs::File::open(root.join("manifest.jsonl")).unwrap();
        let p = read(std::io::BufReader::new(file), &root);
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        assert_eq!(p.entries.len(), 8);
        for (_, e) in &p.entries {
            if let Entry::Upsert(TrackSpec {
                source: Source::Path(path),
                ..
            }) = e
            {
                assert!(path.is_file(), "{}", path.display());
            }
        }
        assert!(matches!(p.entries.last(), Some((_, Entry::Delete { .. }))));
    }
}
