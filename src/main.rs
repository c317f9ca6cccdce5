//! `motif`: the command line over Motif's library crates. Each subcommand lives in
//! `cmd/` and only wires arguments, parallelism and output around library calls.

mod cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc instead of the system allocator: chosen when hnsw_rs made one small
/// allocation per graph link (docs/MEASUREMENTS.md); our flat graph makes a few large
/// ones, and the allocator stays for the many small ones of tantivy, sqlx and actix
/// (not re-measured since).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Hands memory freed by a big one-off job (loading the indexes reads files through
/// buffers, a rebuild holds a page of store rows at a time) back to the system, so a
/// long-running process does not keep it resident.
pub fn release_free_memory() {
    // SAFETY: mi_collect only walks mimalloc's own free lists; it may be called at any
    // time from any thread.
    unsafe { libmimalloc_sys::mi_collect(true) }
}

#[derive(Parser)]
#[command(name = "motif", version, about = "Music search and recommendation backend", long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Analyse audio files: one JSON object per file on stdout.
    #[command(long_about = cmd::analyze::LONG_ABOUT, after_long_help = cmd::analyze::FIELDS)]
    Analyze(cmd::analyze::Args),
    /// Evaluate the analyser on a labelled corpus: similarity precision@k against an MFCC
    /// baseline, attribute dumps for comparison with a peer, and normaliser fitting.
    Eval(cmd::eval::Args),
    /// Benchmark decoding and analysis throughput (x realtime per core) and peak memory.
    Bench(cmd::bench::Args),
    /// Benchmark store writes (Postgres, SQLite) and HNSW/tantivy builds on synthetic
    /// analyses, with recall against exact search.
    BenchIndex(cmd::bench_index::Args),
    /// Ingest a directory or a JSONL manifest into the catalogue and update the indexes.
    #[command(long_about = cmd::index::LONG_ABOUT)]
    Index(cmd::index::Args),
    /// Work the Postgres analysis queue: claim jobs, analyse, write (run many, anywhere).
    #[command(long_about = cmd::worker::LONG_ABOUT)]
    Worker(cmd::worker::Args),
    /// List items that failed to ingest and have not gone in since.
    Errors(cmd::errors::Args),
    /// Refit the embedding space and rebuild the HNSW and text indexes from the store.
    Reindex(cmd::reindex::Args),
    /// Serve the query API over HTTP (similar, search, hybrid, tags, playlists, ingest).
    Serve(cmd::serve::Args),
    /// Index the bundled fixtures (or a folder) with SQLite, serve them on 127.0.0.1 and
    /// print example requests.
    Quickstart(cmd::quickstart::Args),
}

/// Default log filter: warnings, except the decoders' own complaints about bad files,
/// which Motif reports itself as typed errors.
const QUIET_DECODERS: &str = "warn,sqlx::query=error,symphonia=off,symphonia_core=off,symphonia_bundle_flac=off,symphonia_bundle_mp3=off,symphonia_codec_aac=off,symphonia_codec_alac=off,symphonia_codec_pcm=off,symphonia_codec_vorbis=off,symphonia_format_isomp4=off,symphonia_format_ogg=off,symphonia_format_riff=off,symphonia_metadata=off";

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let usage = e.use_stderr();
            let _ = e.print();
            // 0 for --help/--version; 64 (EX_USAGE) for a bad command line, so that 2 keeps
            // meaning "some files failed".
            return ExitCode::from(if usage { 64 } else { 0 });
        }
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("MOTIF_LOG")
                .unwrap_or_else(|_| QUIET_DECODERS.into()),
        )
        .init();
    let result = match cli.command {
        Command::Analyze(a) => cmd::analyze::run(a),
        Command::Eval(a) => cmd::eval::run(a),
        Command::Bench(a) => cmd::bench::run(a),
        Command::BenchIndex(a) => cmd::bench_index::run(a),
        Command::Index(a) => cmd::index::run(a),
        Command::Worker(a) => cmd::worker::run(a),
        Command::Errors(a) => cmd::errors::run(a),
        Command::Reindex(a) => cmd::reindex::run(a),
        Command::Serve(a) => cmd::serve::run(a),
        Command::Quickstart(a) => cmd::quickstart::run(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("motif: error: {e:#}");
            ExitCode::from(1)
        }
    }
}
