//! A track's stored audio over HTTP (`GET /v1/tracks/{id}/audio`), for the page's player.
//!
//! The store keeps each track's `source` as the delivery named it: a path relative to the
//! folder it was indexed from, an absolute path, or a `file://` URI. The server does not
//! know those folders, so it serves audio only from its **media roots** (`--media-root`,
//! repeatable, plus the `--ingest-root` and the data folder's `uploads/`): a relative
//! source is looked up under each root in turn, an absolute one must lie in one. Every
//! candidate is canonicalised first (symlinks resolved), so neither `..` nor a symlink can
//! lead outside the roots; and the file must still hash to the track's stored content hash,
//! so a relative path that exists under two roots, or a file replaced since it was indexed,
//! never plays the wrong audio. Range requests, `206`, `416`, `Accept-Ranges`, `ETag` and
//! `Last-Modified` are actix-files' `NamedFile`.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use actix_files::NamedFile;
use actix_web::http::StatusCode;
use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse};
use serde_json::json;

use crate::error::{ApiError, ApiResult};
use crate::http::{path_id, State};

/// Verified files kept before the cache starts again (each entry is a path and a few
/// numbers; the cache saves hashing a file again on every Range request of a player).
const MAX_VERIFIED: usize = 4096;

/// The folders audio may be served from, and the files already checked against their
/// tracks' content hashes.
pub struct MediaRoots {
    roots: Vec<PathBuf>,
    verified: Mutex<HashMap<i64, Verified>>,
}

/// A file found to hold a track's audio, with what it looked like then.
#[derive(Clone, PartialEq)]
struct Verified {
    path: PathBuf,
    len: u64,
    modified: Option<SystemTime>,
}

/// Why no file could be served.
#[derive(Debug, PartialEq)]
pub enum Refusal {
    /// No root holds the source.
    NotFound,
    /// The source (or a symlink on its way) leads outside every root.
    OutsideRoots,
    /// The file there no longer holds the indexed audio.
    Changed,
    /// A URI of a scheme other than `file://`.
    NotLocal,
}

impl MediaRoots {
    /// Roots that exist, canonicalised (a root that does not exist is left out: nothing can
    /// be served from it, and `canonicalize` needs the folder).
    pub fn new(roots: impl IntoIterator<Item = PathBuf>) -> MediaRoots {
        let mut canonical: Vec<PathBuf> = Vec::new();
        for r in roots {
            if let Ok(c) = r.canonicalize() {
                if !canonical.contains(&c) {
                    canonical.push(c);
                }
            }
        }
        MediaRoots {
            roots: canonical,
            verified: Mutex::new(HashMap::new()),
        }
    }

    pub fn roots(&self) -> &[PathBuf] {
        &self.roots
    }

    /// The file holding track `id`'s audio: `source` resolved under the roots, checked
    /// against `content_hash` (blake3, hex). Blocking: reads the file once per track.
    pub fn locate(&self, id: i64, source: &str, content_hash: &str) -> Result<PathBuf, Refusal> {
        let mut refusal = Refusal::NotFound;
        for candidate in self.candidates(source)? {
            let Ok(path) = candidate.canonicalize() else {
                continue;
            };
            if !self.roots.iter().any(|r| path.starts_with(r)) {
                refusal = Refusal::OutsideRoots;
                continue;
            }
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            if !meta.is_file() {
                continue;
            }
            let seen = Verified {
                path: path.clone(),
                len: meta.len(),
                modified: meta.modified().ok(),
            };
            if self.known(id, &seen) {
                return Ok(path);
            }
            if hash_of(&path).is_some_and(|h| h == content_hash) {
                self.remember(id, seen);
                return Ok(path);
            }
            if refusal == Refusal::NotFound {
                refusal = Refusal::Changed;
            }
        }
        Err(refusal)
    }

    /// Where a source may be: under each root (relative), or itself (absolute, `file://`).
    fn candidates(&self, source: &str) -> Result<Vec<PathBuf>, Refusal> {
        if let Some(local) = source.strip_prefix("file://") {
            return Ok(vec![PathBuf::from(local)]);
        }
        if source.contains("://") {
            return Err(Refusal::NotLocal);
        }
        let p = Path::new(source);
        if p.is_absolute() {
            return Ok(vec![p.to_path_buf()]);
        }
        Ok(self.roots.iter().map(|r| r.join(p)).collect())
    }

    fn known(&self, id: i64, seen: &Verified) -> bool {
        let cache = self.verified.lock().unwrap_or_else(|e| e.into_inner());
        cache.get(&id) == Some(seen)
    }

    fn remember(&self, id: i64, seen: Verified) {
        let mut cache = self.verified.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= MAX_VERIFIED {
            cache.clear();
        }
        cache.insert(id, seen);
    }
}

/// blake3 of a file's bytes, hex; `None` when it cannot be read.
fn hash_of(path: &Path) -> Option<String> {
    let mut file = std::fs::File::open(path).ok()?;
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf).ok()?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Some(hasher.finalize().to_hex().to_string())
}

/// The content type a browser needs to play a file, by its extension (the codecs
/// `indexer::source::AUDIO_EXTENSIONS` accepts).
pub fn content_type(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "mp3" => "audio/mpeg",
        "flac" => "audio/flac",
        "ogg" | "oga" | "opus" => "audio/ogg",
        "wav" | "wave" => "audio/wav",
        "m4a" | "mp4" | "alac" => "audio/mp4",
        "aac" => "audio/aac",
        _ => "application/octet-stream",
    }
}

impl Refusal {
    /// The API error for a refusal; it names no server path (anyone may ask).
    fn error(&self, id: i64) -> ApiError {
        let (status, code, message) = match self {
            Refusal::NotFound => (
                404,
                "audio_not_found",
                "the track's audio is not under any of the server's media roots",
            ),
            Refusal::OutsideRoots => (
                403,
                "outside_media_roots",
                "the track's audio lies outside the server's media roots",
            ),
            Refusal::Changed => (
                409,
                "audio_changed",
                "the file at the track's source no longer holds the audio that was indexed",
            ),
            Refusal::NotLocal => (
                404,
                "audio_not_local",
                "the track's source is a remote URI; only local files are served",
            ),
        };
        ApiError::new(status, code, format!("track {id}: {message}"))
            .with_details(json!({ "id": id }))
    }
}

/// `GET /v1/tracks/{id}/audio`: the stored file, with Range support. Unknown ids are 404,
/// taken-down tracks 410.
pub(crate) async fn audio(req: HttpRequest, _: Bytes, st: Arc<State>) -> ApiResult<HttpResponse> {
    let id = path_id(&req, "id")?;
    let d = st
        .engine
        .catalog
        .track(id)
        .await?
        .ok_or_else(|| ApiError::unknown_track(id))?;
    if !d.change.active {
        return Err(ApiError::new(
            410,
            "taken_down",
            format!("track {id} was taken down: its audio is gone"),
        )
        .with_details(json!({ "id": id })));
    }
    let media = st.media.clone();
    let (source, hash) = (d.extra.source, d.extra.content_hash);
    // Finding, hashing (once) and opening the file are blocking file work.
    let file = web::block(move || -> ApiResult<NamedFile> {
        let path = media.locate(id, &source, &hash).map_err(|r| r.error(id))?;
        let mime: actix_web::mime::Mime =
            content_type(&path).parse().map_err(ApiError::internal)?;
        let file = NamedFile::open(&path)
            .map_err(|e| ApiError::internal(format!("opening track {id}'s audio: {e}")))?;
        Ok(file.set_content_type(mime))
    })
    .await
    .map_err(|e| ApiError::internal(format!("worker: {e}")))??;
    let response = file.disable_content_disposition().into_response(&req);
    if response.status() == StatusCode::RANGE_NOT_SATISFIABLE {
        return Ok(unsatisfiable(&response));
    }
    Ok(response)
}

/// actix-files answers an unsatisfiable range with an empty 416; ours carries the JSON
/// error and keeps its `Content-Range: bytes */LEN`, which tells a player the length.
fn unsatisfiable(r: &HttpResponse) -> HttpResponse {
    let range = r
        .headers()
        .get("content-range")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let e = ApiError::new(
        416,
        "range_not_satisfiable",
        "the requested byte range lies outside the file",
    )
    .with_details(json!({ "content_range": range }));
    HttpResponse::build(StatusCode::RANGE_NOT_SATISFIABLE)
        .insert_header(("content-range", range))
        .json(e.body())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("motif-media-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn hash(bytes: &[u8]) -> String {
        blake3::hash(bytes).to_hex().to_string()
    }

    #[test]
    fn relative_sources_resolve_under_a_root_with_the_right_bytes() {
        let d = place("rel");
        let (a, b) = (d.join("a"), d.join("b"));
        std::fs::create_dir_all(a.join("x")).unwrap();
        std::fs::create_dir_all(b.join("x")).unwrap();
        std::fs::write(a.join("x/s.ogg"), b"old copy").unwrap();
        std::fs::write(b.join("x/s.ogg"), b"indexed").unwrap();
        let roots = MediaRoots::new([a.clone(), b.clone()]);
        let got = roots.locate(1, "x/s.ogg", &hash(b"indexed")).unwrap();
        assert_eq!(got, b.canonicalize().unwrap().join("x/s.ogg"));
        assert_eq!(
            roots.locate(2, "x/s.ogg", &hash(b"other")),
            Err(Refusal::Changed)
        );
        assert_eq!(roots.locate(3, "x/none.ogg", "h"), Err(Refusal::NotFound));
        assert_eq!(
            roots.locate(4, "https://e.com/s.ogg", "h"),
            Err(Refusal::NotLocal)
        );
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn nothing_outside_the_roots_is_served() {
        let d = place("out");
        let (root, outside) = (d.join("root"), d.join("outside"));
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("s.wav"), b"secret").unwrap();
        std::os::unix::fs::symlink(outside.join("s.wav"), root.join("link.wav")).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("dir")).unwrap();
        let roots = MediaRoots::new([root.clone()]);
        let h = hash(b"secret");
        for source in ["link.wav", "dir/s.wav", "../outside/s.wav"] {
            assert_eq!(
                roots.locate(1, source, &h),
                Err(Refusal::OutsideRoots),
                "{source}"
            );
        }
        let abs = outside.join("s.wav").display().to_string();
        assert_eq!(roots.locate(1, &abs, &h), Err(Refusal::OutsideRoots));
        assert_eq!(
            roots.locate(1, &format!("file://{abs}"), &h),
            Err(Refusal::OutsideRoots)
        );
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_file_replaced_after_verification_is_checked_again() {
        let d = place("changed");
        std::fs::write(d.join("s.mp3"), b"first").unwrap();
        let roots = MediaRoots::new([d.clone()]);
        assert!(roots.locate(7, "s.mp3", &hash(b"first")).is_ok());
        std::fs::write(d.join("s.mp3"), b"second, longer").unwrap();
        assert_eq!(
            roots.locate(7, "s.mp3", &hash(b"first")),
            Err(Refusal::Changed)
        );
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn content_types_are_the_ones_browsers_play() {
        assert_eq!(content_type(Path::new("a/b.MP3")), "audio/mpeg");
        assert_eq!(content_type(Path::new("b.opus")), "audio/ogg");
        assert_eq!(content_type(Path::new("b.m4a")), "audio/mp4");
        assert_eq!(content_type(Path::new("b")), "application/octet-stream");
    }
}
