//! Audio and manifests arriving over HTTP: multipart forms, clips analysed on the fly for
//! `POST /v1/similar`, single-track uploads and manifest ingests run through the same
//! ingestion pipeline as `motif index` (the server's refresh loop then indexes them).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use actix_web::web::{self, Bytes};
use actix_web::HttpRequest;
use futures_util::StreamExt;
use indexer::catalog::AnalysisRow;
use indexer::pipeline::{self, Options, RunStarted};
use indexer::source;
use serde_json::{json, Value};

use crate::engine::Engine;
use crate::error::{ApiError, ApiResult};

/// Parts a form may have (the routes read at most three).
const MAX_PARTS: usize = 8;

/// An uploaded file.
pub struct Clip {
    pub filename: String,
    pub bytes: Bytes,
}

/// The parts of a multipart form, by field name.
pub struct Form {
    files: HashMap<String, Clip>,
    texts: HashMap<String, String>,
}

impl Form {
    /// A required file field.
    pub fn file(&self, name: &str) -> ApiResult<Clip> {
        self.files
            .get(name)
            .map(|c| Clip {
                filename: c.filename.clone(),
                bytes: c.bytes.clone(),
            })
            .ok_or_else(|| {
                ApiError::bad(
                    "missing_field",
                    format!("the form has no file field {name:?}"),
                )
            })
    }

    /// A text field (a part without a file name).
    pub fn text(&self, name: &str) -> Option<&str> {
        self.texts.get(name).map(String::as_str)
    }
}

/// Parses a multipart body already read (and size-checked) by the router.
pub async fn read_form(req: &HttpRequest, body: Bytes) -> ApiResult<Form> {
    let stream =
        futures_util::stream::once(
            async move { Ok::<Bytes, actix_web::error::PayloadError>(body) },
        );
    let mut mp = actix_multipart::Multipart::new(req.headers(), stream);
    let mut form = Form {
        files: HashMap::new(),
        texts: HashMap::new(),
    };
    while let Some(field) = mp.next().await {
        let mut field =
            field.map_err(|e| ApiError::bad("bad_multipart", format!("multipart body: {e}")))?;
        let name = field.name().unwrap_or("").to_string();
        let filename = field
            .content_disposition()
            .and_then(|cd| cd.get_filename())
            .map(str::to_string);
        if form.files.contains_key(&name) || form.texts.contains_key(&name) {
            return Err(ApiError::bad(
                "duplicate_field",
                format!("the form has more than one {name:?} part: send each field once"),
            )
            .with_details(json!({ "field": name })));
        }
        if form.files.len() + form.texts.len() >= MAX_PARTS {
            return Err(ApiError::bad(
                "too_many_parts",
                format!("the form has more than {MAX_PARTS} parts"),
            ));
        }
        let mut data = web::BytesMut::new();
        while let Some(chunk) = field.next().await {
            let chunk = chunk.map_err(|e| {
                ApiError::bad("bad_multipart", format!("multipart field {name}: {e}"))
            })?;
            data.extend_from_slice(&chunk);
        }
        match filename {
            Some(f) => {
                form.files.insert(
                    name,
                    Clip {
                        filename: f,
                        bytes: data.freeze(),
                    },
                );
            }
            None => {
                let t = String::from_utf8(data.to_vec()).map_err(|_| {
                    ApiError::bad("bad_multipart", format!("field {name} is not UTF-8 text"))
                })?;
                form.texts.insert(name, t);
            }
        }
    }
    Ok(form)
}

/// The extension of an uploaded file name, if it is one Motif reads.
fn audio_extension(filename: &str) -> ApiResult<String> {
    let ext = Path::new(filename)
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase())
        .unwrap_or_default();
    if source::AUDIO_EXTENSIONS.contains(&ext.as_str()) {
        Ok(ext)
    } else {
        Err(ApiError::new(
            415,
            "unsupported_format",
            format!(
                "{filename:?}: not an audio file Motif reads ({})",
                source::AUDIO_EXTENSIONS.join(", ")
            ),
        )
        .with_details(json!({ "supported": source::AUDIO_EXTENSIONS })))
    }
}

/// Maps an analysis failure onto an HTTP status.
fn analysis_error(kind: &str, message: String) -> ApiError {
    let (status, code): (u16, &'static str) = match kind {
        "unsupported_format" => (415, "unsupported_format"),
        "unsupported_codec" => (415, "unsupported_codec"),
        "corrupt" => (415, "corrupt"),
        "empty" => (415, "empty"),
        "too_large" => (413, "too_large"),
        "too_long" => (413, "too_long"),
        "too_short" => (422, "too_short"),
        "silent" => (422, "silent"),
        "io" => (500, "io"),
        _ => (500, "internal"),
    };
    ApiError::new(status, code, message)
}

/// What a clip sent to `POST /v1/similar` may be.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClipLimits {
    pub max_seconds: f64,
    /// Sample rate x channels.
    pub max_samples_per_s: u64,
}

/// A file of ours under the uploads folder, removed when dropped unless kept: every
/// request writes its own (no two requests share a half-written file), and a rejected
/// or abandoned request leaves nothing behind.
struct TempFile {
    path: PathBuf,
    keep: bool,
}

impl TempFile {
    /// Writes `bytes` to a new, uniquely named file in `dir`.
    fn write(dir: &Path, ext: &str, bytes: &[u8]) -> ApiResult<TempFile> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        std::fs::create_dir_all(dir)
            .map_err(|e| ApiError::internal(format!("upload folder {}: {e}", dir.display())))?;
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!(".part-{}-{n}.{ext}", std::process::id()));
        let file = TempFile { path, keep: false };
        std::fs::write(&file.path, bytes).map_err(|e| {
            ApiError::internal(format!("saving the upload {}: {e}", file.path.display()))
        })?;
        Ok(file)
    }

    /// Renames the file to `target` (atomically replacing a complete file of the same
    /// bytes) and returns the guard of the file now there: it is removed on drop unless
    /// kept, or unless an earlier upload had put it there.
    fn place(mut self, target: PathBuf) -> ApiResult<TempFile> {
        let existed = target.exists();
        std::fs::rename(&self.path, &target).map_err(|e| {
            ApiError::internal(format!("placing the upload {}: {e}", target.display()))
        })?;
        self.keep = true;
        Ok(TempFile {
            path: target,
            keep: existed,
        })
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Removes what a stopped server left half done: `.part-*` files of uploads and every
/// clip file (clips live only for their request). Returns how many were removed.
pub fn sweep_partial(data_dir: &Path) -> usize {
    let uploads = data_dir.join("uploads");
    let mut removed = 0;
    for (dir, all) in [(uploads.join("clips"), true), (uploads, false)] {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name();
            let partial = name.to_string_lossy().starts_with(".part-");
            if (all || partial)
                && e.file_type().is_ok_and(|t| t.is_file())
                && std::fs::remove_file(e.path()).is_ok()
            {
                removed += 1;
            }
        }
    }
    removed
}

/// Analyses an uploaded clip and returns its embedding in the catalogue's current space,
/// with a summary of what was heard.
pub async fn embed_clip(
    engine: &Engine,
    clip: Clip,
    limits: ClipLimits,
) -> ApiResult<(Vec<f32>, Value)> {
    let ext = audio_extension(&clip.filename)?;
    let space = engine.catalog.current_space().await?;
    let file = TempFile::write(
        &engine.data_dir().join("uploads").join("clips"),
        &ext,
        &clip.bytes,
    )?;
    let config = embeddings::AnalysisConfig {
        max_file_bytes: clip.bytes.len() as u64 + 1,
        max_duration_s: limits.max_seconds,
        max_samples_per_s: limits.max_samples_per_s,
        ..embeddings::AnalysisConfig::default()
    };
    let path = file.path.clone();
    let result = web::block(move || embeddings::analyze(&path, &config))
        .await
        .map_err(|e| ApiError::internal(format!("analysis worker: {e}")));
    drop(file);
    let analysis = result?.map_err(|e| {
        analysis_error(e.kind.as_str(), format!("{}: {}", clip.filename, e.message))
    })?;
    let summary = json!({
        "filename": clip.filename,
        "duration_s": analysis.audio.duration_s,
        "tempo_bpm": analysis.attributes.tempo_bpm,
        "key": analysis.attributes.key.name(),
        "mode": analysis.attributes.mode.name(),
        "camelot": analysis.attributes.camelot,
        "tags": analysis.tags.iter().map(|t| t.name.clone()).collect::<Vec<_>>(),
    });
    let row = AnalysisRow::from_analysis(analysis, space.as_ref());
    Ok((row.embedding, summary))
}

fn pipeline_options(on_start: Option<RunStarted>) -> Options {
    Options {
        on_start,
        ..Options::default()
    }
}

/// `POST /v1/tracks`: stores the audio under `<data-dir>/uploads/` (named by its hash),
/// ingests it as a one-line manifest, and waits until it is searchable.
pub async fn add_track(engine: &Arc<Engine>, form: &Form) -> ApiResult<Value> {
    let clip = form.file("audio")?;
    let ext = audio_extension(&clip.filename)?;
    let meta_text = form.text("metadata").ok_or_else(|| {
        ApiError::bad(
            "missing_field",
            "the form needs a `metadata` field (JSON with external_id, title, artists, ...)",
        )
    })?;
    let mut meta: serde_json::Map<String, Value> = serde_json::from_str(meta_text)
        .map_err(|e| ApiError::bad("bad_json", format!("metadata: {e}")))?;
    for k in ["op", "path", "uri"] {
        if meta.contains_key(k) {
            return Err(ApiError::bad(
                "bad_metadata",
                format!("metadata must not set {k:?}: the upload is the audio"),
            ));
        }
    }
    let dir = engine.data_dir().join("uploads");
    let name = format!("{}.{ext}", blake3::hash(&clip.bytes).to_hex());
    // Written under a name of its own, then renamed into place: the content-addressed
    // name is only ever a complete file, whoever else uploads the same bytes meanwhile.
    // A rejected upload takes its file with it (unless an earlier upload owns it).
    let mut placed = TempFile::write(&dir, &ext, &clip.bytes)?.place(dir.join(&name))?;
    meta.insert("op".into(), json!("upsert"));
    meta.insert("path".into(), json!(name));
    let line = Value::Object(meta).to_string();
    let input = source::manifest_input(line.as_bytes(), &dir, "upload");
    if let Some(e) = input.errors.first() {
        return Err(ApiError::new(422, "bad_metadata", e.message.clone())
            .with_details(json!({ "kind": e.kind })));
    }
    let external_id = input
        .items
        .first()
        .map(|i| i.external_id().to_string())
        .unwrap_or_default();
    // The run goes on in a task of its own: a client that hangs up mid-run must not cut
    // the run off between its writes (it would leave the run lock and rows half done).
    let run_engine = engine.clone();
    let summary = actix_web::rt::spawn(async move {
        pipeline::run_input(
            &run_engine.writer,
            run_engine.data_dir(),
            input,
            &pipeline_options(None),
            std::time::Instant::now(),
        )
        .await
    })
    .await
    .map_err(|e| ApiError::internal(format!("ingest task: {e}")))?
    .map_err(|e| ApiError::internal(format!("ingest: {e}")))?;
    if let Some(e) = summary.errors.first() {
        return Err(analysis_error(&e.kind, e.message.clone())
            .with_details(json!({ "run": summary.run_id })));
    }
    placed.keep = true;
    engine.refresh().await?;
    let id = engine
        .catalog
        .ids_by_external(std::slice::from_ref(&external_id))
        .await?
        .get(&external_id)
        .copied();
    Ok(json!({
        "id": id,
        "external_id": external_id,
        "run": summary.run_id,
        "new": summary.counts.new,
        "updated": summary.counts.updated,
        "unchanged": summary.counts.unchanged,
    }))
}

/// `POST /v1/ingest`: starts the pipeline on a manifest in the background and returns
/// its run id once the run is registered.
pub async fn start_ingest(
    engine: Arc<Engine>,
    root: PathBuf,
    body: Bytes,
    guard: tokio::sync::OwnedMutexGuard<()>,
) -> ApiResult<i64> {
    let input = source::manifest_input(body.as_ref(), &root, "(HTTP body)");
    let (tx, rx) = tokio::sync::oneshot::channel::<i64>();
    let tx = std::sync::Mutex::new(Some(tx));
    let on_start = RunStarted(Arc::new(move |run| {
        if let Some(tx) = tx.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = tx.send(run);
        }
    }));
    actix_web::rt::spawn(async move {
        let _guard = guard;
        let opts = pipeline_options(Some(on_start));
        match pipeline::run_input(
            &engine.writer,
            engine.data_dir(),
            input,
            &opts,
            std::time::Instant::now(),
        )
        .await
        {
            Ok(_) => {
                if let Err(e) = engine.refresh().await {
                    tracing::warn!("refresh after ingest: {e}");
                }
            }
            Err(e) => tracing::error!("ingest over HTTP failed: {e}"),
        }
    });
    rx.await
        .map_err(|_| ApiError::internal("the ingest failed before it started (see the server log)"))
}
