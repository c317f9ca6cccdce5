//! `motif reindex`: refit the embedding space on the stored raw features and rebuild both
//! derived indexes from the store alone (no audio is decoded).

use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use embeddings::Normalizer;
use indexer::derived::DerivedIndexes;
use indexer::vectors::HnswParams;

use super::store::{self, StoreArgs, VectorArgs};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub vectors: VectorArgs,
    /// Keep the current embedding space; only rebuild the indexes.
    #[arg(long)]
    pub no_refit: bool,
    /// HNSW links per node.
    #[arg(long, default_value_t = HnswParams::default().m)]
    pub m: usize,
    /// HNSW candidate list size while building.
    #[arg(long, default_value_t = HnswParams::default().ef_construction)]
    pub ef_construction: usize,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let params = HnswParams {
        m: args.m,
        ef_construction: args.ef_construction,
        ..HnswParams::default()
    };
    let rt = store::runtime()?;
    rt.block_on(async {
        let started = Instant::now();
        let catalog = args.store.open().await?;
        if !args.no_refit {
            let mut features = catalog.all_features().await?;
            // Analyses of an older layout cannot join this space; they wait for
            // `motif index --reanalyze` (and stay out of the vector index meanwhile).
            let total = features.len();
            features.retain(|(_, f)| f.len() == embeddings::features::FEATURE_DIM);
            if features.len() < total {
                eprintln!(
                    "motif: {} of {total} analyses have another feature layout (an older \
                     analyser) and were left out; `motif index --reanalyze` analyses them again",
                    total - features.len()
                );
            }
            if features.len() >= 2 {
                let refs: Vec<&[f32]> = features.iter().map(|(_, f)| f.as_slice()).collect();
                let version = format!(
                    "{}+refit-{}-{}",
                    embeddings::ANALYZER_VERSION,
                    features.len(),
                    indexer::catalog::rows::now_ms()
                );
                let n = Normalizer::fit(&refs, Normalizer::default_for_version().weights, &version)
                    .context("fitting the normaliser")?;
                let embedded: Vec<(i64, Vec<f32>)> =
                    features.iter().map(|(id, f)| (*id, n.embed(f))).collect();
                catalog.set_space(&n, &embedded).await?;
                eprintln!(
                    "motif: refitted the embedding space on {} analyses: {version}",
                    features.len()
                );
            } else {
                eprintln!("motif: fewer than 2 analyses; keeping the embedding space");
            }
        }
        let mut idx = DerivedIndexes::open(
            &args.store.data_dir,
            embeddings::embedding::EMBEDDING_DIM,
            params,
            args.vectors.vector_engine,
        )?;
        idx.reset(params)?;
        let report = idx.catch_up(&catalog).await?;
        idx.close()?;
        catalog.close().await;
        println!(
            "rebuilt indexes at change {}: {} vectors ({} engine), {} text documents in {:.1} s",
            report.seq,
            idx.vectors.len(),
            idx.vectors.engine(),
            idx.text.len(),
            started.elapsed().as_secs_f64()
        );
        if report.copies_found > 0 {
            println!(
                "{} tracks are copies of another track's recording (by fingerprint)",
                report.copies_found
            );
        }
        if report.other_dimension > 0 {
            println!(
                "{} tracks have embeddings of an older analyser: text only until `motif index --reanalyze`",
                report.other_dimension
            );
        }
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}
