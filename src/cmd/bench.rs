//! `motif bench`: decode-only, analysis without the learned models, analysis without the
//! fingerprint and full-analysis throughput in x realtime per core, measured in the same
//! run on the same files (decode-only is the baseline), plus the models' load time and peak
//! memory.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use embeddings::{AnalysisConfig, Normalizer};

use super::proc_stats::{peak_rss_mib, thread_cpu_seconds};

#[derive(clap::Args)]
pub struct Args {
    /// Files or directories (default: the bundled fixtures).
    pub paths: Vec<PathBuf>,
    /// Passes over the files (the best pass per file counts, to damp noise).
    #[arg(long, default_value_t = 1)]
    pub repeat: usize,
}

#[derive(Default)]
struct Row {
    files: usize,
    audio_s: f64,
    decode_cpu: f64,
    dsp_cpu: f64,
    no_fp_cpu: f64,
    analyse_cpu: f64,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let paths = if args.paths.is_empty() {
        vec![PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/audio"
        ))]
    } else {
        args.paths.clone()
    };
    let files = indexer::source::collect_audio(&paths);
    let config = AnalysisConfig::default();
    let without_models = AnalysisConfig {
        learned: false,
        ..AnalysisConfig::default()
    };
    let without_fingerprint = AnalysisConfig {
        fingerprint: false,
        ..AnalysisConfig::default()
    };
    let normalizer = Normalizer::default_for_version();
    let t_load = thread_cpu_seconds();
    embeddings::learned::Models::shipped();
    let load_s = thread_cpu_seconds() - t_load;
    let mut rows: BTreeMap<String, Row> = BTreeMap::new();
    let mut failures = 0;
    // One thread, so CPU time per file is this thread's own clock.
    for path in &files {
        let mut best_dec = f64::MAX;
        let mut best_dsp = f64::MAX;
        let mut best_no_fp = f64::MAX;
        let mut best_ana = f64::MAX;
        let mut audio = None;
        for _ in 0..args.repeat.max(1) {
            let t0 = thread_cpu_seconds();
            let d = embeddings::decode_only(path);
            let t1 = thread_cpu_seconds();
            let dsp = embeddings::analyze_with(path, &without_models, normalizer);
            let t2 = thread_cpu_seconds();
            let a = embeddings::analyze_with(path, &config, normalizer);
            let t3 = thread_cpu_seconds();
            let no_fp = embeddings::analyze_with(path, &without_fingerprint, normalizer);
            let t4 = thread_cpu_seconds();
            match (d, dsp, a, no_fp) {
                (Ok(_), Ok(_), Ok(a), Ok(_)) => {
                    best_dec = best_dec.min(t1 - t0);
                    best_dsp = best_dsp.min(t2 - t1);
                    best_ana = best_ana.min(t3 - t2);
                    best_no_fp = best_no_fp.min(t4 - t3);
                    audio = Some(a);
                }
                _ => break,
            }
        }
        let Some(a) = audio else {
            failures += 1;
            continue;
        };
        let key = format!(
            "{} {} Hz x{}",
            a.audio.stream.codec, a.audio.stream.sample_rate, a.audio.stream.channels
        );
        for k in [key, "all".to_string()] {
            let r = rows.entry(k).or_default();
            r.files += 1;
            r.audio_s += a.audio.duration_s;
            r.decode_cpu += best_dec;
            r.dsp_cpu += best_dsp;
            r.no_fp_cpu += best_no_fp;
            r.analyse_cpu += best_ana;
        }
    }
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{:<28} {:>5} {:>9} {:>10} {:>12} {:>9} {:>9} {:>11} {:>13} {:>9} {:>11} {:>8}",
        "group",
        "files",
        "audio_s",
        "decode_s",
        "decode_x_rt",
        "dsp_s",
        "dsp_x_rt",
        "analysis_s",
        "analysis_x_rt",
        "ana/dec",
        "model_share",
        "fp_share"
    )?;
    for (k, r) in &rows {
        let x = |cpu: f64| {
            if cpu > 0.0 {
                r.audio_s / cpu
            } else {
                f64::INFINITY
            }
        };
        writeln!(
            out,
            "{:<28} {:>5} {:>9.1} {:>10.2} {:>12.0} {:>9.2} {:>9.0} {:>11.2} {:>13.0} {:>9.2} {:>11.2} {:>8.3}",
            k,
            r.files,
            r.audio_s,
            r.decode_cpu,
            x(r.decode_cpu),
            r.dsp_cpu,
            x(r.dsp_cpu),
            r.analyse_cpu,
            x(r.analyse_cpu),
            r.analyse_cpu / r.decode_cpu.max(1e-9),
            1.0 - r.dsp_cpu / r.analyse_cpu.max(1e-9),
            1.0 - r.no_fp_cpu / r.analyse_cpu.max(1e-9)
        )?;
    }
    writeln!(
        out,
        "x_rt = audio seconds per CPU second on one core; dsp_s is the analysis without the \
         learned models, analysis_s the full analysis (both include their own decoding); \
         model_share = 1 - dsp_s / analysis_s; fp_share = 1 - (analysis without the \
         fingerprint) / analysis_s."
    )?;
    writeln!(
        out,
        "model load: {:.3} s CPU (both models, once per process)",
        load_s
    )?;
    writeln!(
        out,
        "peak RSS: {:.1} MiB; files that failed: {failures}",
        peak_rss_mib()
    )?;
    Ok(ExitCode::SUCCESS)
}
