//! Where the catalogue lives: the options every store-backed command shares.

use std::path::PathBuf;

use anyhow::Context;
use indexer::vectors::Engine;
use indexer::Catalog;

/// `--database` and `--data-dir`, with environment fallbacks.
#[derive(clap::Args, Debug, Clone)]
pub struct StoreArgs {
    /// Catalogue database: `postgres://user@host/db` (production) or a SQLite path
    /// (default: `<data-dir>/motif.db`, created when missing).
    #[arg(long, env = "MOTIF_DATABASE_URL")]
    pub database: Option<String>,
    /// Folder for the embedded database, the derived indexes (HNSW, tantivy) and locks.
    #[arg(long, env = "MOTIF_DATA_DIR", default_value = "motif-data")]
    pub data_dir: PathBuf,
}

/// `--vector-engine`, for the commands that build vector indexes.
#[derive(clap::Args, Debug, Clone, Copy, Default)]
pub struct VectorArgs {
    /// HNSW engine of a new or rebuilt vector index: `graph` (our own) or `hnsw-rs`. An
    /// index already in the data folder keeps the engine it was built with until
    /// `motif reindex --vector-engine ...` rebuilds it.
    #[arg(long, env = "MOTIF_VECTOR_ENGINE", default_value_t = Engine::default())]
    pub vector_engine: Engine,
}

impl StoreArgs {
    /// The database URL in effect.
    pub fn url(&self) -> String {
        match &self.database {
            Some(u) => u.clone(),
            None => format!("sqlite://{}", self.data_dir.join("motif.db").display()),
        }
    }

    /// Prints the configuration (without a password) and opens the store, applying
    /// migrations.
    pub async fn open(&self) -> anyhow::Result<Catalog> {
        self.open_with(indexer::catalog::PoolSize::default()).await
    }

    /// [`open`](Self::open) with a pool of the given size (Postgres).
    pub async fn open_with(&self, pool: indexer::catalog::PoolSize) -> anyhow::Result<Catalog> {
        let url = self.url();
        eprintln!(
            "motif: database {} | data dir {}",
            redact(&url),
            self.data_dir.display()
        );
        std::fs::create_dir_all(&self.data_dir)
            .with_context(|| format!("creating data dir {}", self.data_dir.display()))?;
        Catalog::open_with(&url, pool)
            .await
            .with_context(|| format!("opening the catalogue at {}", redact(&url)))
    }
}

/// `postgres://user:secret@host/db` -> `postgres://user:***@host/db`.
pub fn redact(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        if let Some((creds, host)) = rest.split_once('@') {
            if let Some((user, _)) = creds.split_once(':') {
                return format!("{scheme}://{user}:***@{host}");
            }
        }
    }
    url.to_string()
}

/// A multi-threaded tokio runtime for one command.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")
}
