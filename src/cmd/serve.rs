//! `motif serve`: the query API over HTTP.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use api::engine::{Engine, Limits};
use api::http::ServeConfig;

use super::store::{redact, StoreArgs};

#[derive(clap::Args, Clone)]
pub struct Args {
    #[command(flatten)]
    pub store: StoreArgs,
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
    /// HTTP worker threads.
    #[arg(long, env = "MOTIF_WORKERS", default_value_t = 2)]
    pub workers: usize,
    /// How often the indexes catch up with the store's change log, in milliseconds.
    #[arg(long, env = "MOTIF_REFRESH_MS", default_value_t = 1000)]
    pub refresh_ms: u64,
}

impl Args {
    pub fn config(&self) -> anyhow::Result<ServeConfig> {
        anyhow::ensure!(self.workers > 0, "--workers must be at least 1");
        anyhow::ensure!(self.refresh_ms > 0, "--refresh-ms must be at least 1");
        let ingest_root = match &self.ingest_root {
            Some(r) => Some(
                r.canonicalize()
                    .with_context(|| format!("--ingest-root {}", r.display()))?,
            ),
            None => None,
        };
        Ok(ServeConfig {
            token: self.token.clone().filter(|t| !t.is_empty()),
            ingest_root,
            refresh_every: Duration::from_millis(self.refresh_ms),
            workers: self.workers,
            ..ServeConfig::default()
        })
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let config = args.config()?;
    api::http::block_on(async move {
        let engine = open_engine(&args.store).await?;
        serve(engine, config, &args.bind, |_, _| {}).await
    })
}

/// Opens the store and the indexes (catching up), as every server start does.
pub async fn open_engine(store: &StoreArgs) -> anyhow::Result<Arc<Engine>> {
    let catalog = store.open().await?;
    let engine = Engine::open(catalog, &store.data_dir, Limits::default())
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
        "motif: serving http://{addr}/v1 | workers {} | writes {} | ingest root {} | refresh every {} ms",
        config.workers,
        if config.token.is_some() { "need the bearer token" } else { "disabled (no --token)" },
        config.ingest_root.as_ref().map_or("none".to_string(), |r| redact(&r.display().to_string())),
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
