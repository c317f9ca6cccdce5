//! `motif`: the command line over Motif's library crates. Each subcommand lives in
//! `cmd/` and only wires arguments, parallelism and output around library calls.

mod cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
}

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
                .unwrap_or_else(|_| "warn,symphonia=error".into()),
        )
        .init();
    let result = match cli.command {
        Command::Analyze(a) => cmd::analyze::run(a),
        Command::Eval(a) => cmd::eval::run(a),
        Command::Bench(a) => cmd::bench::run(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("motif: error: {e:#}");
            ExitCode::from(1)
        }
    }
}
