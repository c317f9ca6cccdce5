//! `motif serve`: the query API over HTTP.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use api::admission::GateLimits;
use api::engine::{Engine, Limits};
use api::http::ServeConfig;
use api::uploads::ClipLimits;
use indexer::catalog::PoolSize;
use indexer::Catalog;

use super::store::{redact, StoreArgs, VectorArgs};

#[derive(clap::Args, Clone)]
pub struct Args {
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub vectors: VectorArgs,
    /// A streaming replica of the `--database` primary (`postgres://...`): queries and the
    /// indexes' catch-up read it, writes go to the primary; `/v1/health` reports its lag.
    #[arg(long, env = "MOTIF_REPLICA_URL")]
    pub replica: Option<String>,
    /// Address to listen on (port 0 picks a free port, printed at start-up).
    #[arg(long, env = "MOTIF_BIND", default_value = "127.0.0.1:7878")]
    pub bind: String,
    /// Bearer token that write routes (POST /v1/tracks, DELETE /v1/tracks/{id},
    /// POST /v1/ingest) require; without one, writes are refused.
    #[arg(long, env = "MOTIF_API_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Folder that manifests posted to /v1/ingest name their audio under.
    #[arg(long, env = "MOTIF_INGEST_ROOT")]
    pub ingest_root: Option<PathBuf>,
    /// Folder GET /v1/tracks/{id}/audio may serve audio from (repeatable; the ingest
    /// root and the data folder's uploads/ always are). A track's relative source is
    /// looked up under each; nothing outside them is served, symlinks included.
    #[arg(long = "media-root", env = "MOTIF_MEDIA_ROOTS", value_delimiter = ':')]
    pub media_roots: Vec<PathBuf>,
    /// HTTP worker threads.
    #[arg(long, env = "MOTIF_WORKERS", default_value_t = 2)]
    pub workers: usize,
    /// How often the indexes catch up with the store's change log, in milliseconds.
    #[arg(long, env = "MOTIF_REFRESH_MS", default_value_t = 1000)]
    pub refresh_ms: u64,
    #[command(flatten)]
    pub limits: LimitArgs,
}

/// What one request may cost (docs/SECURITY.md lists every limit). The defaults are
/// `ServeConfig::default()`'s, read through [`LimitArgs::default`].
#[derive(clap::Args, Clone, Debug)]
pub struct LimitArgs {
    /// Longest audio clip POST /v1/similar analyses, in seconds.
    #[arg(long, env = "MOTIF_MAX_CLIP_SECONDS", default_value_t = LimitArgs::default().max_clip_seconds)]
    pub max_clip_seconds: f64,
    /// Clip analyses at once (POST /v1/similar with audio); more wait in a queue.
    #[arg(long, env = "MOTIF_CLIP_WORKERS", default_value_t = LimitArgs::default().clip_workers)]
    pub clip_workers: usize,
    /// Clip requests that may wait for a turn; beyond that, 503 with Retry-After.
    #[arg(long, env = "MOTIF_CLIP_QUEUE", default_value_t = LimitArgs::default().clip_queue)]
    pub clip_queue: usize,
    /// Track uploads that may wait for their turn (one runs at a time); beyond that,
    /// 503 with Retry-After.
    #[arg(long, env = "MOTIF_UPLOAD_QUEUE", default_value_t = LimitArgs::default().upload_queue)]
    pub upload_queue: usize,
    /// Longest time to receive a JSON request body, in seconds (uploads get ten times it).
    #[arg(long, env = "MOTIF_BODY_TIMEOUT_S", default_value_t = LimitArgs::default().body_timeout_s)]
    pub body_timeout_s: u64,
}

impl Default for LimitArgs {
    fn default() -> Self {
        let d = ServeConfig::default();
        LimitArgs {
            max_clip_seconds: d.clip_limits.max_seconds,
            clip_workers: d.clip_gate.running,
            clip_queue: d.clip_gate.queue,
            upload_queue: d.write_gate.queue,
            body_timeout_s: d.json_body_timeout.as_secs(),
        }
    }
}

impl Args {
    pub fn config(&self) -> anyhow::Result<ServeConfig> {
        anyhow::ensure!(self.workers > 0, "--workers must be at least 1");
        anyhow::ensure!(self.refresh_ms > 0, "--refresh-ms must be at least 1");
        anyhow::ensure!(
            self.limits.max_clip_seconds.is_finite() && self.limits.max_clip_seconds >= 1.0,
            "--max-clip-seconds must be at least 1"
        );
        anyhow::ensure!(
            self.limits.clip_workers > 0,
            "--clip-workers must be at least 1"
        );
        anyhow::ensure!(
            self.limits.body_timeout_s > 0,
            "--body-timeout-s must be at least 1"
        );
        let defaults = ServeConfig::default();
        let ingest_root = match &self.ingest_root {
            Some(r) => Some(
                r.canonicalize()
                    .with_context(|| format!("--ingest-root {}", r.display()))?,
            ),
            None => None,
        };
        let media_roots = self
            .media_roots
            .iter()
            .map(|r| {
                r.canonicalize()
                    .with_context(|| format!("--media-root {}", r.display()))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(ServeConfig {
            token: self.token.clone().filter(|t| !t.is_empty()),
            ingest_root,
            media_roots,
            refresh_every: Duration::from_millis(self.refresh_ms),
            workers: self.workers,
            clip_limits: ClipLimits {
                max_seconds: self.limits.max_clip_seconds,
                ..defaults.clip_limits
            },
            clip_gate: GateLimits {
                running: self.limits.clip_workers,
                queue: self.limits.clip_queue,
                ..defaults.clip_gate
            },
            write_gate: GateLimits {
                queue: self.limits.upload_queue,
                ..defaults.write_gate
            },
            json_body_timeout: Duration::from_secs(self.limits.body_timeout_s),
            upload_body_timeout: Duration::from_secs(self.limits.body_timeout_s * 10),
            body_idle_timeout: Duration::from_secs(self.limits.body_timeout_s.min(10)),
            ..defaults
        })
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let config = args.config()?;
    api::http::block_on(async move {
        let engine = match &args.replica {
            Some(r) => open_replica_engine(&args.store, r, args.vectors).await?,
            None => open_engine(&args.store, args.vectors).await?,
        };
        serve(engine, config, &args.bind, |_, _| {}).await
    })
}

/// Opens the store and the indexes (catching up), as every server start does.
/// On Postgres, queries and writes get pools of their own: uploads waiting for the run
/// lock hold connections, and must not take the ones queries and refreshes need.
pub async fn open_engine(store: &StoreArgs, vectors: VectorArgs) -> anyhow::Result<Arc<Engine>> {
    let readers = PoolSize {
        max_connections: 8,
        acquire_timeout: Duration::from_secs(5),
    };
    let catalog = store.open_with(readers).await?;
    let writer = match &catalog {
        Catalog::Postgres(_) => {
            let writers = PoolSize {
                max_connections: 4,
                acquire_timeout: Duration::from_secs(10),
            };
            Catalog::open_with(&store.url(), writers)
                .await
                .context("opening the write pool")?
        }
        Catalog::Sqlite(_) => catalog.clone(),
    };
    let limits = Limits {
        vector_engine: vectors.vector_engine,
        ..Limits::default()
    };
    let engine = Engine::open(catalog, &store.data_dir, limits)
        .await
        .context("opening the indexes")?
        .with_writer(writer);
    crate::release_free_memory();
    Ok(Arc::new(engine))
}

/// [`open_engine`] reading a streaming replica: the primary (`--database`) is opened
/// first, for writes and its migrations; then the replica, for queries and catch-up.
pub async fn open_replica_engine(
    store: &StoreArgs,
    replica: &str,
    vectors: VectorArgs,
) -> anyhow::Result<Arc<Engine>> {
    let writers = PoolSize {
        max_connections: 4,
        acquire_timeout: Duration::from_secs(10),
    };
    let writer = store.open_with(writers).await?;
    anyhow::ensure!(
        writer.job_queue().is_some(),
        "--replica needs a Postgres primary (--database postgres://...)"
    );
    eprintln!("motif: reading from replica {}", redact(replica));
    let readers = PoolSize {
        max_connections: 8,
        acquire_timeout: Duration::from_secs(5),
    };
    let catalog = Catalog::open_replica(replica, readers)
        .await
        .with_context(|| format!("opening the replica at {}", redact(replica)))?;
    let limits = Limits {
        vector_engine: vectors.vector_engine,
        ..Limits::default()
    };
    let engine = Engine::open_split(catalog, writer, true, &store.data_dir, limits)
        .await
        .context("opening the indexes")?;
    crate::release_free_memory();
    Ok(Arc::new(engine))
}

/// Binds, prints the configuration, calls `ready` with the address and the engine, and
/// serves until interrupted; then saves the vector index.
pub async fn serve(
    engine: Arc<Engine>,
    config: ServeConfig,
    bind: &str,
    ready: impl FnOnce(std::net::SocketAddr, &Engine),
) -> anyhow::Result<ExitCode> {
    let listener = TcpListener::bind(bind).with_context(|| format!("binding {bind}"))?;
    let addr = listener.local_addr()?;
    eprintln!(
        "motif: serving http://{addr}/v1 | page http://{addr}/ | workers {} | writes {} | ingest root {} | media roots {} | refresh every {} ms",
        config.workers,
        if config.token.is_some() { "need the bearer token" } else { "disabled (no --token)" },
        config.ingest_root.as_ref().map_or("none".to_string(), |r| redact(&r.display().to_string())),
        config.media_roots.len() + usize::from(config.ingest_root.is_some()) + 1,
        config.refresh_every.as_millis(),
    );
    ready(addr, &engine);
    let server = api::http::server(engine.clone(), config, listener)?;
    server.await.context("HTTP server")?;
    eprintln!("motif: stopping; saving the vector index");
    engine
        .persist()
        .map_err(|e| anyhow::anyhow!("saving the vector index: {e}"))?;
    Ok(ExitCode::SUCCESS)
}
