//! The HTTP layer: one table of routes ([`ROUTES`]) drives both the actix-web router and
//! the OpenAPI document, so the two cannot drift apart. Every handler has the same shape
//! (request, body bytes, shared state -> JSON or an [`ApiError`]); bodies are read here
//! with a per-route size limit, so an oversized body is our own 413 JSON error.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::http::{Method, StatusCode};
use actix_web::web::{self, Bytes};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer};
use futures_util::future::LocalBoxFuture;
use futures_util::{FutureExt, StreamExt};
use serde::Deserialize;
use serde_json::json;

use crate::admission::{Gate, GateLimits};
use crate::copies::Copies;
use crate::engine::{Engine, SimilarQuery};
use crate::error::{ApiError, ApiResult};
use crate::hybrid::{self, HybridRequest};
use crate::map;
use crate::media::{self, MediaRoots};
use crate::params::{self, Pairs};
use crate::playlist::{self, PlaylistRequest};
use crate::uploads::{self, ClipLimits};

mod metrics;
mod openapi;

use metrics::Metrics;
pub use openapi::openapi_document;

/// How a server runs.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Bearer token for write routes; without one, writes are refused.
    pub token: Option<String>,
    /// Folder that manifests posted to `/v1/ingest` may name audio under.
    pub ingest_root: Option<PathBuf>,
    /// How often the indexes catch up with the store.
    pub refresh_every: Duration,
    /// Largest accepted track upload or manifest (`POST /v1/tracks`, `/v1/ingest`).
    pub max_upload_bytes: usize,
    /// Largest accepted audio clip for `POST /v1/similar` (anyone may send one).
    pub max_clip_bytes: usize,
    /// Longest clip, and most samples per second (rate x channels) in it: 192 kHz
    /// stereo, or 48 kHz with 8 channels; decoding cost grows with both.
    pub clip_limits: ClipLimits,
    /// Clip analyses at once, and how many may queue.
    pub clip_gate: GateLimits,
    /// Track uploads at once (they take turns at the store's run lock), and the queue.
    pub write_gate: GateLimits,
    /// Longest time to receive a JSON body, and a track upload, clip or manifest.
    pub json_body_timeout: Duration,
    pub upload_body_timeout: Duration,
    /// Longest silence between two pieces of a body.
    pub body_idle_timeout: Duration,
    /// HTTP worker threads.
    pub workers: usize,
    /// Folders `GET /v1/tracks/{id}/audio` may serve files from, besides the ingest root
    /// and the data folder's `uploads/` (see [`media`]).
    pub media_roots: Vec<PathBuf>,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            token: None,
            ingest_root: None,
            refresh_every: Duration::from_secs(1),
            max_upload_bytes: 64 << 20,
            max_clip_bytes: 32 << 20,
            clip_limits: ClipLimits {
                max_seconds: 120.0,
                max_samples_per_s: 384_000,
            },
            clip_gate: GateLimits {
                running: 2,
                queue: 8,
                max_wait: Duration::from_secs(10),
            },
            write_gate: GateLimits {
                running: 1,
                queue: 32,
                max_wait: Duration::from_secs(20),
            },
            json_body_timeout: Duration::from_secs(30),
            upload_body_timeout: Duration::from_secs(300),
            body_idle_timeout: Duration::from_secs(10),
            workers: 2,
            media_roots: Vec::new(),
        }
    }
}

/// What every handler sees.
pub struct State {
    pub engine: Arc<Engine>,
    pub config: ServeConfig,
    metrics: Metrics,
    /// One HTTP-started ingest at a time.
    ingest_busy: Arc<tokio::sync::Mutex<()>>,
    /// Turns at clip analysis (`POST /v1/similar` with audio).
    pub clips: Gate,
    /// Turns at track uploads.
    pub writes: Gate,
    /// Where track audio may be served from.
    pub media: Arc<MediaRoots>,
    /// The catalogue map of the current index state.
    pub maps: map::MapCache,
}

type Answer = ApiResult<HttpResponse>;
type HandlerFn = fn(HttpRequest, Bytes, Arc<State>) -> LocalBoxFuture<'static, Answer>;

/// One route: method, path (actix syntax), what it is for, its parameters and handler.
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub summary: &'static str,
    /// Query parameters: (name, description).
    pub query: &'static [(&'static str, &'static str)],
    /// Request body, when there is one: (content type, description).
    pub body: Option<(&'static str, &'static str)>,
    /// Needs the bearer token (writes, and what only a writer may read).
    pub needs_token: bool,
    /// Largest body accepted.
    pub max_body: BodyLimit,
    /// Content type of a successful answer (for the OpenAPI document).
    pub produces: &'static str,
    handler: HandlerFn,
}

/// What most routes answer with.
const JSON: &str = "application/json";

/// Body size class of a route.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum BodyLimit {
    /// A JSON (or empty) body: [`MAX_JSON`].
    Json,
    /// JSON, or a multipart audio clip up to `max_clip_bytes`.
    JsonOrClip,
    /// A track upload or manifest, up to `max_upload_bytes` (token routes only).
    Upload,
}

pub(super) const FILTER_PARAMS: &[(&str, &str)] = &[
    (
        "tags",
        "tags every result carries (facet:value, comma-separated or repeated)",
    ),
    ("tags_any", "tags of which each result carries at least one"),
    ("tags_none", "tags no result carries"),
    (
        "<attribute>_min",
        "lower bound on an attribute (tempo_bpm, energy, ..., year, duration_s; bpm_ is tempo_bpm)",
    ),
    ("<attribute>_max", "upper bound on an attribute"),
    ("key", "tonic(s): C, F#, Bb, ..."),
    ("mode", "major or minor"),
    ("camelot", "Camelot code(s), 1A..12B"),
    ("status", "only `active` is searchable"),
    ("exclude_artist", "artist names to leave out"),
];

macro_rules! h {
    ($f:path) => {
        |req, body, st| Box::pin($f(req, body, st))
    };
}

/// Every route of the API, under `/v1`.
pub static ROUTES: &[Route] = &[
    Route { method: "GET", path: "/v1/health", summary: "Liveness, the change sequence served and the store's, index sizes", query: &[], body: None, needs_token: false, max_body: BodyLimit::Json, produces: JSON, handler: h!(health) },
    Route { method: "GET", path: "/v1/metrics", summary: "Prometheus metrics (text format)", query: &[], body: None, needs_token: false, max_body: BodyLimit::Json, produces: JSON, handler: h!(metrics) },
    Route { method: "GET", path: "/v1/openapi.json", summary: "This API as an OpenAPI 3 document, generated from the route table", query: &[], body: None, needs_token: false, max_body: BodyLimit::Json, produces: JSON, handler: h!(openapi) },
    Route { method: "GET", path: "/v1/tracks/{id}", summary: "A track: metadata, attributes, tags with score and source", query: &[("include", "beats: add the tracked beat times (seconds from the start)")], body: None, needs_token: false, max_body: BodyLimit::Json, produces: JSON, handler: h!(track) },
    Route { method: "GET", path: "/v1/tracks/{id}/audio", summary: "The track's stored audio file, streamed with HTTP Range support (206, 416, Accept-Ranges, ETag); only from the server's media roots; 410 once taken down", query: &[], body: None, needs_token: false, max_body: BodyLimit::Json, produces: "audio/*", handler: h!(media::audio) },
    Route { method: "GET", path: "/v1/tracks/{id}/duplicates", summary: "Other copies of the track's recording (other encodes, re-deliveries, trimmed copies), with the fingerprint evidence and which copy answers show", query: &[], body: None, needs_token: false, max_body: BodyLimit::Json, produces: JSON, handler: h!(duplicates) },
    Route { method: "GET", path: "/v1/tracks/{id}/similar", summary: "More like this: nearest tracks by embedding, seed excluded, duplicates collapsed, with reasons", query: &[("limit", "results per page (1..=500, default 10)"), ("cursor", "next_cursor of the previous page"), ("max_per_artist", "at most this many results per artist"), ("copies", "one (default: one copy per recording) or all"), ("<filters>", "any filter parameter")], body: None, needs_token: false, max_body: BodyLimit::Json, produces: JSON, handler: h!(similar_get) },
    Route { method: "POST", path: "/v1/similar", summary: "More like several weighted seeds, a raw embedding, or an uploaded audio clip (multipart field `audio`)", query: &[], body: Some(("application/json | multipart/form-data", "{\"seeds\": [{\"id\", \"weight\"}], \"vector\": [...], \"filters\": {...}, \"limit\", \"cursor\", \"max_per_artist\", \"copies\": \"one\" (default) | \"all\"}; or multipart with `audio` and optional `options` (the same JSON)")), needs_token: false, max_body: BodyLimit::JsonOrClip, produces: JSON, handler: h!(similar_post) },
    Route { method: "GET", path: "/v1/search", summary: "Text search (BM25) with the query syntax artist:, genre:, album:, title:, tag:, bpm:80-100, key:8A, year:1990-1999, quoted phrases; facet counts", query: &[("q", "the query"), ("limit", "1..=500"), ("cursor", "paging"), ("copies", "one (default: one copy per recording) or all"), ("facets", "false to skip facet counts"), ("<filters>", "any filter parameter")], body: None, needs_token: false, max_body: BodyLimit::Json, produces: JSON, handler: h!(search) },
    Route { method: "POST", path: "/v1/search/hybrid", summary: "Text and embedding candidates under the same exact filters, fused by RRF (k=60) or weights", query: &[], body: Some(("application/json", "{\"q\", \"like\": [ids], \"filters\": {...}, \"fusion\": \"rrf\"|\"weighted\", \"weights\": {\"text\", \"vector\"}, \"limit\", \"cursor\", \"explain\"}; \"copies\": \"one\" (default) | \"all\"")), needs_token: false, max_body: BodyLimit::Json, produces: JSON, handler: h!(hybrid_post) },
    Route { method: "GET", path: "/v1/tags", summary: "Every tag with its track count, grouped by facet", query: &[], body: None, needs_token: false, max_body: BodyLimit::Json, produces: JSON, handler: h!(tags) },
    Route { method: "GET", path: "/v1/tags/{tag}/tracks", summary: "Tracks carrying a tag", query: &[("limit", "1..=500"), ("cursor", "paging"), ("copies", "one (default: one copy per recording) or all")], body: None, needs_token: false, max_body: BodyLimit::Json, produces: JSON, handler: h!(tag_tracks) },
    Route { method: "POST", path: "/v1/playlists", summary: "Playlist generation: filters, seeds, attribute targets, size or duration, artist rules, ordering smooth|harmonic|energy_arc, seed", query: &[], body: Some(("application/json", "{\"filters\", \"seeds\", \"targets\", \"size\" | \"duration_s\", \"tolerance_s\", \"max_per_artist\", \"artist_gap\", \"order\", \"seed\"}; \"copies\": \"one\" (default) | \"all\"")), needs_token: false, max_body: BodyLimit::Json, produces: JSON, handler: h!(playlist_post) },
    Route { method: "GET", path: "/v1/map", summary: "A 2-D map of the catalogue: a deterministic sample of tracks projected on the embedding space's two principal axes, with a colour value per point", query: &[("sample", "points (1..=20000, default 5000)"), ("color", "an attribute (energy, tempo_bpm, ...) or a tag (facet:value: 1 when carried, else 0); default energy")], body: None, needs_token: false, max_body: BodyLimit::Json, produces: JSON, handler: h!(map::map_get) },
    Route { method: "GET", path: "/v1/path", summary: "A song path: tracks walking from one track to another in even steps", query: &[("from", "start track id"), ("to", "end track id"), ("steps", "tracks including both ends, 2..=100 (default 8)")], body: None, needs_token: false, max_body: BodyLimit::Json, produces: JSON, handler: h!(path_get) },
    Route { method: "POST", path: "/v1/tracks", summary: "Add or replace one track: multipart `audio` plus `metadata` (a manifest line's fields)", query: &[], body: Some(("multipart/form-data", "audio: the file; metadata: {\"external_id\", \"title\", \"artists\", \"album\", \"genre\", \"release_date\", \"tags\", \"isrc\"}")), needs_token: true, max_body: BodyLimit::Upload, produces: JSON, handler: h!(track_post) },
    Route { method: "DELETE", path: "/v1/tracks/{id}", summary: "Take a track down: it leaves every answer before this returns", query: &[], body: None, needs_token: true, max_body: BodyLimit::Json, produces: JSON, handler: h!(track_delete) },
    Route { method: "POST", path: "/v1/ingest", summary: "Run the ingestion pipeline on a JSONL manifest (paths under the server's ingest root); answers with the run id", query: &[], body: Some(("application/x-ndjson", "one manifest object per line")), needs_token: true, max_body: BodyLimit::Upload, produces: JSON, handler: h!(ingest_post) },
    Route { method: "GET", path: "/v1/ingest/{run}", summary: "An ingest run: status, counts, its analysis jobs queued / running / done / failed with the rate (Postgres), and its item errors (needs the token: errors name server files)", query: &[], body: None, needs_token: true, max_body: BodyLimit::Json, produces: JSON, handler: h!(ingest_get) },
];

/// Largest JSON body.
const MAX_JSON: usize = 1 << 20;

/// Longest query string we read (longer ones are refused with a JSON 414; past 64 KiB
/// the HTTP layer itself refuses the request line before any handler runs).
const MAX_QUERY: usize = 16 << 10;

/// Starts the engine's refresh loop and the HTTP server on `listener`.
pub fn server(
    engine: Arc<Engine>,
    config: ServeConfig,
    listener: std::net::TcpListener,
) -> std::io::Result<actix_web::dev::Server> {
    let workers = config.workers.max(1);
    let swept = uploads::sweep_partial(engine.data_dir());
    if swept > 0 {
        tracing::info!("removed {swept} partial upload file(s) left by a stopped server");
    }
    let state = Arc::new(State {
        engine: engine.clone(),
        config: config.clone(),
        metrics: Metrics::default(),
        ingest_busy: Arc::new(tokio::sync::Mutex::new(())),
        clips: Gate::new("clip analysis", config.clip_gate),
        writes: Gate::new("upload", config.write_gate),
        media: Arc::new(MediaRoots::new(media_roots(&config, engine.data_dir()))),
        maps: map::MapCache::default(),
    });
    // Freshness: follow the store's change log. The vector index is saved at shutdown (a
    // save of a large graph would stall queries); after a crash the server catches up from
    // the last saved sequence, the store being the truth.
    let every = config.refresh_every;
    actix_web::rt::spawn(async move {
        loop {
            actix_web::rt::time::sleep(every).await;
            if let Err(e) = engine.refresh().await {
                tracing::warn!("refresh: {e}");
            }
        }
    });
    let server = HttpServer::new(move || {
        let mut app = App::new()
            .app_data(web::Data::new(state.clone()))
            .configure(crate::page::routes);
        for (i, r) in ROUTES.iter().enumerate() {
            let method = Method::from_bytes(r.method.as_bytes()).expect("route methods are valid");
            app = app.route(
                r.path,
                web::method(method).to(
                    move |req: HttpRequest, payload: web::Payload, st: web::Data<Arc<State>>| {
                        dispatch(i, req, payload, st.get_ref().clone())
                    },
                ),
            );
        }
        app.default_service(web::to(|req: HttpRequest| async move {
            let known = ROUTES.iter().any(|r| path_matches(r.path, req.path()));
            let e = if known {
                ApiError::new(
                    405,
                    "method_not_allowed",
                    format!("{} is not allowed on {}", req.method(), req.path()),
                )
            } else {
                ApiError::new(
                    404,
                    "unknown_route",
                    format!(
                        "no route {} {} (see /v1/openapi.json)",
                        req.method(),
                        req.path()
                    ),
                )
            };
            error_response(&e)
        }))
    })
    .workers(workers)
    .listen(listener)?
    .run();
    Ok(server)
}

/// The media roots: `--media-root`s, the ingest root, and the data folder's `uploads/`
/// (where `POST /v1/tracks` puts its files).
fn media_roots(config: &ServeConfig, data_dir: &std::path::Path) -> Vec<PathBuf> {
    let uploads = data_dir.join("uploads");
    let _ = std::fs::create_dir_all(&uploads);
    let mut roots = config.media_roots.clone();
    roots.extend(config.ingest_root.clone());
    roots.push(uploads);
    roots
}

/// Whether a concrete path matches a route pattern (`{x}` matches one segment).
fn path_matches(pattern: &str, path: &str) -> bool {
    let (p, q): (Vec<&str>, Vec<&str>) = (pattern.split('/').collect(), path.split('/').collect());
    p.len() == q.len() && p.iter().zip(&q).all(|(a, b)| a.starts_with('{') || a == b)
}

async fn dispatch(
    i: usize,
    req: HttpRequest,
    mut payload: web::Payload,
    st: Arc<State>,
) -> HttpResponse {
    let route = &ROUTES[i];
    let started = Instant::now();
    let answer = async {
        if route.needs_token {
            authorize(&req, &st.config)?;
        }
        if req.query_string().len() > MAX_QUERY {
            return Err(ApiError::new(
                414,
                "query_too_long",
                format!(
                    "the query string has {} bytes, over the limit of {MAX_QUERY}",
                    req.query_string().len()
                ),
            )
            .with_details(json!({ "max_bytes": MAX_QUERY })));
        }
        let body = read_body(route, &req, &mut payload, &st.config).await?;
        // A panic in a handler is a bug, but it must cost one request a 500, not the
        // worker and every connection on it.
        std::panic::AssertUnwindSafe((route.handler)(req, body, st.clone()))
            .catch_unwind()
            .await
            .unwrap_or_else(|panic| {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                Err(ApiError::internal(format!(
                    "handler of {} {} panicked: {what}",
                    route.method, route.path
                )))
            })
    }
    .await;
    let response = answer.unwrap_or_else(|e| error_response(&e));
    st.metrics.record(
        route.path,
        route.method,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

/// Reads a body within its route's size limit (checked against `Content-Length` before
/// reading, and while reading) and time limits (a whole-body deadline and an idle
/// timeout), so neither a huge nor a trickled body can hold a worker.
async fn read_body(
    route: &Route,
    req: &HttpRequest,
    payload: &mut web::Payload,
    config: &ServeConfig,
) -> ApiResult<Bytes> {
    let (limit, deadline) = match route.max_body {
        BodyLimit::Json => (MAX_JSON, config.json_body_timeout),
        BodyLimit::JsonOrClip if is_multipart(req) => {
            (config.max_clip_bytes, config.upload_body_timeout)
        }
        BodyLimit::JsonOrClip => (MAX_JSON, config.json_body_timeout),
        BodyLimit::Upload => (config.max_upload_bytes, config.upload_body_timeout),
    };
    let too_large = || {
        ApiError::new(413, "too_large", format!("the body is over {limit} bytes"))
            .with_details(json!({ "max_bytes": limit }))
    };
    let declared = req
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let idle = config.body_idle_timeout;
    let read = async {
        let mut body = web::BytesMut::new();
        loop {
            let next = tokio::time::timeout(idle, payload.next())
                .await
                .map_err(|_| body_timeout(format!("no data for {} s", idle.as_secs())))?;
            let Some(chunk) = next else { break };
            let chunk =
                chunk.map_err(|e| ApiError::bad("bad_body", format!("reading the body: {e}")))?;
            if body.len() + chunk.len() > limit {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body.freeze())
    };
    tokio::time::timeout(deadline, read).await.map_err(|_| {
        body_timeout(format!(
            "the body did not arrive within {} s",
            deadline.as_secs()
        ))
    })?
}

/// Whether the request says its body is a multipart form.
fn is_multipart(req: &HttpRequest) -> bool {
    req.headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/"))
}

fn body_timeout(why: String) -> ApiError {
    ApiError::new(408, "body_timeout", format!("reading the body: {why}"))
}

fn error_response(e: &ApiError) -> HttpResponse {
    let mut r = HttpResponse::build(
        StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
    );
    if let Some(s) = e.retry_after {
        r.insert_header(("retry-after", s.to_string()));
    }
    r.json(e.body())
}

fn authorize(req: &HttpRequest, config: &ServeConfig) -> ApiResult<()> {
    let Some(token) = &config.token else {
        return Err(ApiError::new(
            403,
            "writes_disabled",
            "this server has no write token configured (--token / MOTIF_API_TOKEN)",
        ));
    };
    let given = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match given {
        Some(g) if constant_time_eq(g.as_bytes(), token.as_bytes()) => Ok(()),
        Some(_) => Err(ApiError::new(
            401,
            "bad_token",
            "the bearer token is not valid",
        )),
        None => Err(ApiError::new(
            401,
            "no_token",
            "write routes need Authorization: Bearer <token>",
        )),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn ok(v: impl serde::Serialize) -> Answer {
    Ok(HttpResponse::Ok().json(v))
}

fn query(req: &HttpRequest) -> ApiResult<Pairs> {
    params::pairs(req.query_string())
}

pub(crate) fn path_id(req: &HttpRequest, name: &str) -> ApiResult<i64> {
    let raw = req.match_info().get(name).unwrap_or("");
    raw.parse::<i64>().map_err(|_| {
        ApiError::bad(
            "bad_id",
            format!("{name} {raw:?} is not a track id (an integer)"),
        )
        .with_details(json!({ name: raw }))
    })
}

fn json_body<T: serde::de::DeserializeOwned>(body: &Bytes) -> ApiResult<T> {
    if body.is_empty() {
        return Err(ApiError::bad("bad_json", "the request needs a JSON body"));
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad("bad_json", format!("request body: {e}")))
}

/// Runs CPU-bound engine work off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> ApiResult<T> + Send + 'static,
) -> ApiResult<T> {
    web::block(f)
        .await
        .map_err(|e| ApiError::internal(format!("worker: {e}")))?
}

async fn health(_: HttpRequest, _: Bytes, st: Arc<State>) -> Answer {
    ok(st.engine.health().await?)
}

async fn metrics(_: HttpRequest, _: Bytes, st: Arc<State>) -> Answer {
    let mut text = st.metrics.render();
    for (name, help, v) in st.engine.gauges() {
        text.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}\n"
        ));
    }
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(text))
}

async fn openapi(_: HttpRequest, _: Bytes, _: Arc<State>) -> Answer {
    ok(openapi_document())
}

async fn track(req: HttpRequest, _: Bytes, st: Arc<State>) -> Answer {
    let id = path_id(&req, "id")?;
    let p = query(&req)?;
    let mut beats = false;
    for part in params::list(&p, "include") {
        match part.as_str() {
            "beats" => beats = true,
            other => {
                return Err(ApiError::bad(
                    "unknown_include",
                    format!("include={other}: the only extra a track has is `beats`"),
                ))
            }
        }
    }
    ok(st.engine.track(id, beats).await?)
}

async fn duplicates(req: HttpRequest, _: Bytes, st: Arc<State>) -> Answer {
    let id = path_id(&req, "id")?;
    ok(st.engine.duplicates(id).await?)
}

fn similar_common(p: &Pairs) -> ApiResult<(usize, usize, Option<usize>)> {
    let limit = params::limit(params::one(p, "limit"))?;
    let offset = params::cursor(params::one(p, "cursor"))?;
    let max_per_artist = match params::one(p, "max_per_artist") {
        None => None,
        Some(v) => Some(
            v.parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| ApiError::bad_number("max_per_artist", v))?,
        ),
    };
    Ok((limit, offset, max_per_artist))
}

async fn similar_get(req: HttpRequest, _: Bytes, st: Arc<State>) -> Answer {
    let id = path_id(&req, "id")?;
    let p = query(&req)?;
    let (limit, offset, max_per_artist) = similar_common(&p)?;
    let filter = params::filter_from_pairs(&p)?;
    let sq = SimilarQuery {
        seeds: vec![(id, 1.0)],
        vector: None,
        filter,
        limit,
        offset,
        max_per_artist,
        copies: Copies::parse(params::one(&p, "copies"))?,
    };
    let engine = st.engine.clone();
    ok(blocking(move || engine.similar(&sq)).await?)
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SimilarBody {
    #[serde(default)]
    seeds: Vec<SeedJson>,
    vector: Option<Vec<f32>>,
    #[serde(default)]
    filters: params::FilterJson,
    limit: Option<usize>,
    cursor: Option<String>,
    max_per_artist: Option<usize>,
    #[serde(default)]
    copies: Copies,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum SeedJson {
    Id(i64),
    Weighted {
        id: i64,
        #[serde(default = "one")]
        weight: f32,
    },
}

fn one() -> f32 {
    1.0
}

async fn similar_post(req: HttpRequest, body: Bytes, st: Arc<State>) -> Answer {
    let (b, clip): (SimilarBody, Option<uploads::Clip>) = if is_multipart(&req) {
        let form = uploads::read_form(&req, body).await?;
        let options = match form.text("options") {
            Some(t) => json_body(&Bytes::from(t.to_string()))?,
            None => SimilarBody::default(),
        };
        (options, Some(form.file("audio")?))
    } else {
        (json_body(&body)?, None)
    };
    let limit = params::check_limit(b.limit.unwrap_or(params::DEFAULT_LIMIT))?;
    let offset = params::cursor(b.cursor.as_deref())?;
    let mut vector = b.vector;
    let mut analysed = None;
    if let Some(clip) = clip {
        let _turn = st.clips.enter().await?;
        let (emb, summary) = uploads::embed_clip(&st.engine, clip, st.config.clip_limits).await?;
        vector = Some(emb);
        analysed = Some(summary);
    }
    let seeds = b
        .seeds
        .into_iter()
        .map(|s| match s {
            SeedJson::Id(id) => (id, 1.0),
            SeedJson::Weighted { id, weight } => (id, weight),
        })
        .collect();
    let sq = SimilarQuery {
        seeds,
        vector,
        filter: b.filters.into_filter()?,
        limit,
        offset,
        max_per_artist: b.max_per_artist.filter(|n| *n > 0),
        copies: b.copies,
    };
    let engine = st.engine.clone();
    let page = blocking(move || engine.similar(&sq)).await?;
    let mut v = serde_json::to_value(page).map_err(ApiError::internal)?;
    if let Some(a) = analysed {
        v["query_audio"] = a;
    }
    ok(v)
}

async fn search(req: HttpRequest, _: Bytes, st: Arc<State>) -> Answer {
    let p = query(&req)?;
    let q = params::one(&p, "q").unwrap_or("").to_string();
    let limit = params::limit(params::one(&p, "limit"))?;
    let offset = params::cursor(params::one(&p, "cursor"))?;
    let facets = !matches!(params::one(&p, "facets"), Some("false") | Some("0"));
    let parsed = params::parse_query(&q)?;
    let mut filter = params::filter_from_pairs(&p)?;
    hybrid::merge(&mut filter, parsed.filter);
    let engine = st.engine.clone();
    let copies = Copies::parse(params::one(&p, "copies"))?;
    ok(
        blocking(move || engine.search(&parsed.text, &filter, limit, offset, facets, copies))
            .await?,
    )
}

async fn hybrid_post(_: HttpRequest, body: Bytes, st: Arc<State>) -> Answer {
    let r: HybridRequest = json_body(&body)?;
    let engine = st.engine.clone();
    ok(blocking(move || hybrid::hybrid(&engine, r)).await?)
}

async fn tags(_: HttpRequest, _: Bytes, st: Arc<State>) -> Answer {
    let engine = st.engine.clone();
    ok(blocking(move || engine.tags()).await?)
}

async fn tag_tracks(req: HttpRequest, _: Bytes, st: Arc<State>) -> Answer {
    let tag = req.match_info().get("tag").unwrap_or("").to_string();
    let p = query(&req)?;
    let limit = params::limit(params::one(&p, "limit"))?;
    let offset = params::cursor(params::one(&p, "cursor"))?;
    let copies = Copies::parse(params::one(&p, "copies"))?;
    let engine = st.engine.clone();
    ok(blocking(move || engine.tag_tracks(&tag, limit, offset, copies)).await?)
}

async fn playlist_post(_: HttpRequest, body: Bytes, st: Arc<State>) -> Answer {
    let r: PlaylistRequest = json_body(&body)?;
    let engine = st.engine.clone();
    ok(blocking(move || playlist::generate(&engine, r)).await?)
}

async fn path_get(req: HttpRequest, _: Bytes, st: Arc<State>) -> Answer {
    let p = query(&req)?;
    let id = |k: &str| -> ApiResult<i64> {
        let v = params::one(&p, k)
            .ok_or_else(|| ApiError::bad("missing_param", format!("{k} is required")))?;
        v.parse().map_err(|_| ApiError::bad_number(k, v))
    };
    let (from, to) = (id("from")?, id("to")?);
    let steps = match params::one(&p, "steps") {
        None => 8,
        Some(v) => v.parse().map_err(|_| ApiError::bad_number("steps", v))?,
    };
    let engine = st.engine.clone();
    ok(blocking(move || playlist::path(&engine, from, to, steps)).await?)
}

async fn track_post(req: HttpRequest, body: Bytes, st: Arc<State>) -> Answer {
    let form = uploads::read_form(&req, body).await?;
    let _turn = st.writes.enter().await?;
    let answer = uploads::add_track(&st.engine, &form).await?;
    Ok(HttpResponse::Created().json(answer))
}

async fn track_delete(req: HttpRequest, _: Bytes, st: Arc<State>) -> Answer {
    let id = path_id(&req, "id")?;
    ok(st.engine.take_down(id).await?)
}

async fn ingest_post(_: HttpRequest, body: Bytes, st: Arc<State>) -> Answer {
    let Some(root) = st.config.ingest_root.clone() else {
        return Err(ApiError::new(
            403,
            "ingest_disabled",
            "this server has no --ingest-root: manifests cannot name audio",
        ));
    };
    let Ok(guard) = st.ingest_busy.clone().try_lock_owned() else {
        return Err(ApiError::new(
            409,
            "ingest_busy",
            "an ingest started over HTTP is still running",
        ));
    };
    let run = uploads::start_ingest(st.engine.clone(), root, body, guard).await?;
    Ok(HttpResponse::Accepted()
        .json(json!({ "run": run, "status": "running", "poll": format!("/v1/ingest/{run}") })))
}

async fn ingest_get(req: HttpRequest, _: Bytes, st: Arc<State>) -> Answer {
    let run = path_id(&req, "run")?;
    let row = st
        .engine
        .writer
        .run(run)
        .await?
        .ok_or_else(|| ApiError::new(404, "unknown_run", format!("no ingest run {run}")))?;
    let errors = st.engine.writer.open_errors(Some(run), 1000).await?;
    // On Postgres a run's analysis is queued work: its jobs by state and the rate.
    let jobs = match st.engine.writer.job_queue() {
        Some(q) => Some(q.counts(run).await?),
        None => None,
    };
    ok(json!({ "run": row, "jobs": jobs, "errors": errors }))
}

/// Runs `f` on an actix system (the runtime `server` needs), blocking the thread.
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    actix_web::rt::System::new().block_on(f)
}
