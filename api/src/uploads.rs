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

/// Analyses an uploaded clip and returns its embedding in the catalogue's current space,
/// with a summary of what was heard.
pub async fn embed_clip(
    engine: &Engine,
    clip: Clip,
    max_seconds: f64,
) -> ApiResult<(Vec<f32>, Value)> {
    let ext = audio_extension(&clip.filename)?;
    let space = engine.catalog.current_space().await?;
    let dir = engine.data_dir().join("uploads").join("clips");
    std::fs::create_dir_all(&dir).map_err(|e| ApiError::internal(format!("upload folder: {e}")))?;
    let path = dir.join(format!("{}.{ext}", blake3::hash(&clip.bytes).to_hex()));
    std::fs::write(&path, &clip.bytes)
        .map_err(|e| ApiError::internal(format!("saving the clip: {e}")))?;
    let config = embeddings::AnalysisConfig {
        max_file_bytes: clip.bytes.len() as u64 + 1,
        max_duration_s: max_seconds,
        ..embeddings::AnalysisConfig::default()
    };
    let p2 = path.clone();
    let result = web::block(move || embeddings::analyze(&p2, &config))
        .await
        .map_err(|e| ApiError::internal(format!("analysis worker: {e}")));
    let _ = std::fs::remove_file(&path);
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
    std::fs::create_dir_all(&dir).map_err(|e| ApiError::internal(format!("upload folder: {e}")))?;
    let name = format!("{}.{ext}", blake3::hash(&clip.bytes).to_hex());
    std::fs::write(dir.join(&name), &clip.bytes)
        .map_err(|e| ApiError::internal(format!("saving the upload: {e}")))?;
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
    let summary = pipeline::run_input(
        &engine.catalog,
        engine.data_dir(),
        input,
        &pipeline_options(None),
        std::time::Instant::now(),
    )
    .await
    .map_err(|e| ApiError::internal(format!("ingest: {e}")))?;
    if let Some(e) = summary.errors.first() {
        return Err(analysis_error(&e.kind, e.message.clone())
            .with_details(json!({ "run": summary.run_id })));
    }
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
            &engine.catalog,
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
