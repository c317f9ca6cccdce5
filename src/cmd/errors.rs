//! `motif errors`: the items that failed and have not gone in since.

use std::process::ExitCode;

use super::store::{self, StoreArgs};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Only errors of this ingest run.
    #[arg(long)]
    pub run: Option<i64>,
    /// At most this many, newest first.
    #[arg(long, default_value_t = 100)]
    pub limit: i64,
    /// One JSON object per line.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(args.limit > 0, "--limit must be at least 1");
    let rt = store::runtime()?;
    let rows = rt.block_on(async {
        let catalog = args.store.open().await?;
        let rows = catalog.open_errors(args.run, args.limit).await;
        catalog.close().await;
        anyhow::Ok(rows?)
    })?;
    for r in &rows {
        if args.json {
            println!("{}", serde_json::to_string(r)?);
        } else {
            let at = match (&r.source, r.line) {
                (Some(s), Some(l)) => format!("{s}:{l}"),
                (Some(s), None) => s.clone(),
                (None, Some(l)) => format!("line {l}"),
                (None, None) => "-".into(),
            };
            println!(
                "run {} [{}] {} {}: {}",
                r.run_id,
                r.kind,
                r.external_id.as_deref().unwrap_or("-"),
                at,
                r.message
            );
        }
    }
    if !args.json {
        eprintln!("{} open error(s)", rows.len());
    }
    Ok(ExitCode::SUCCESS)
}
