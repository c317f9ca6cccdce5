//! `motif analyze FILE_OR_DIR...`

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;

use anyhow::Context;
use embeddings::{AnalysisConfig, Normalizer};
use indicatif::{ParallelProgressIterator, ProgressBar, ProgressStyle};
use rayon::prelude::*;
use serde_json::json;

pub const LONG_ABOUT: &str =
    "Analyse audio files (MP3, FLAC, Ogg Vorbis, Opus, WAV, AAC and ALAC in MP4/M4A) and \
print one JSON object per file on stdout, as each finishes, using every core.

Directories are scanned recursively for audio extensions. A file that cannot be analysed \
prints {\"path\", \"error\": {\"kind\", \"message\"}} and the run goes on. Exit code: 0 when \
every file succeeded, 2 when some failed, 1 on a fatal error, 64 on a bad command line.";

pub const FIELDS: &str = "OUTPUT FIELDS (one object per line; --pretty indents)
  path                      the file as given or found
  analysis.analyzer_version version of the analyser (stored analyses re-run when it changes)
  analysis.audio            container, codec, sample_rate (Hz), channels, bits_per_sample,
                            duration_s (decoded seconds)
  analysis.attributes
    tempo_bpm               global tempo, 30-250 BPM
    tempo_confidence        0-1, strength of the beat periodicity (at most 0.2 when free)
    pulse                   steady, or free: no periodicity stands out (tempo:free tag)
    metre                   {beats_per_bar: 2|3|4, compound: bool}, or null (free pulse,
                            too few beats)
    key, mode               tonal centre (C..B with sharps) and major/minor
    key_strength            0-1, correlation with the key profile
    camelot                 Camelot wheel code, 1A-12B (A = minor, B = major)
    loudness_lufs           EBU R128 integrated loudness (LUFS)
    loudness_range_lu       EBU R128 loudness range (LU)
    true_peak_dbtp          EBU R128 true peak (dBTP)
    energy                  0-1 perceived intensity (loudness, onsets, flux, treble)
    danceability            0-1 beat strength, tempo stability, tempo near 118 BPM
    brightness              0-1 spectral centroid, 400 Hz -> 0, 6 kHz -> 1
    percussiveness          0-1 percussive share of energy (harmonic/percussive split)
    acousticness            0-1 heuristic estimate: acoustic rather than electronic
    syncopation             0-1 onset energy on off-beat 8ths and 16ths
    harmonic_complexity     0-1 chroma entropy and chord-change rate
    repetitiveness          0-1 strength of repeated structure (self-similarity)
    dynamic_complexity      dB, mean deviation of one-second levels
    onset_rate              onsets per second
  analysis.tags             [{name: \"facet:value\", score: 0-1}], e.g. tempo:fast,
                            tempo:free, meter:3, meter:compound, key:A-minor, mode:minor,
                            camelot:8A, energy:high, groove:danceable, timbre:bright;
                            from the learned models genre:*, mood:*, era:*,
                            instrument:*, vocals:* (score = the model's)
  analysis.beats            beat times in seconds from the start
  analysis.model_scores     the learned models' raw label scores {msd: [50], mtt: [50],
                            patches}; label order in embeddings::learned::vocabulary
  analysis.features         raw feature vector (275 numbers; layout: timbre 38, harmony 16,
                            rhythm 16, dynamics 5, learned 200; see embeddings::features)
  analysis.embedding        L2-normalised embedding (107 numbers) in embedding_space
  analysis.fingerprint      chromaprint of the first 60 s (u32 values, one every 0.124 s;
                            absent when the audio is too short for one)
  analysis.fine_fingerprint chromaprint at a 23-ms hop of a track up to 16 s long (absent
                            for longer ones): how copies of very short audio are found
  analysis.warnings         non-fatal problems (skipped packets, truncated stream)
  error.kind                io, empty, unsupported_format, unsupported_codec, corrupt,
                            too_short, too_long, too_large, silent, internal
  error.message             what went wrong, for a human";

#[derive(clap::Args)]
pub struct Args {
    /// Files or directories to analyse.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Indent the JSON for humans.
    #[arg(long)]
    pub pretty: bool,
    /// Worker threads (default: all cores).
    #[arg(long, short = 'j')]
    pub jobs: Option<usize>,
    /// Leave out the raw feature vector and the embedding.
    #[arg(long)]
    pub no_vectors: bool,
    /// Embed with this normaliser (JSON from `motif eval --write-normalizer`).
    #[arg(long)]
    pub normalizer: Option<PathBuf>,
    /// Refuse files longer than this many seconds.
    #[arg(long, default_value_t = AnalysisConfig::default().max_duration_s)]
    pub max_duration: f64,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let normalizer = match &args.normalizer {
        Some(p) => Normalizer::from_json(
            &std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?,
        )
        .with_context(|| format!("loading normaliser {}", p.display()))?,
        None => Normalizer::default_for_version().clone(),
    };
    let config = AnalysisConfig {
        max_duration_s: args.max_duration,
        ..AnalysisConfig::default()
    };
    let files = indexer::source::collect_audio(&args.paths);
    anyhow::ensure!(
        !files.is_empty(),
        "no audio files under {} (looked for: {})",
        args.paths
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
        indexer::source::AUDIO_EXTENSIONS.join(", ")
    );
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(args.jobs.unwrap_or(0))
        .build()
        .context("starting worker threads")?;
    let bar = if std::io::stderr().is_terminal() {
        ProgressBar::new(files.len() as u64).with_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} files  {per_sec}  ETA {eta}  {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        )
    } else {
        ProgressBar::hidden()
    };
    let out = Mutex::new(std::io::stdout());
    let failed = std::sync::atomic::AtomicUsize::new(0);
    pool.install(|| {
        files
            .par_iter()
            .progress_with(bar.clone())
            .for_each(|path| {
                let value = match embeddings::analyze_with(path, &config, &normalizer) {
                    Ok(mut a) => {
                        if args.no_vectors {
                            a.features.clear();
                            a.embedding.clear();
                        }
                        json!({ "path": path, "analysis": a })
                    }
                    Err(e) => {
                        failed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        json!({ "path": path, "error": { "kind": e.kind, "message": e.message } })
                    }
                };
                let text = if args.pretty {
                    serde_json::to_string_pretty(&value)
                } else {
                    serde_json::to_string(&value)
                }
                .unwrap_or_else(|e| {
                    format!(
                        "{{\"path\":{:?},\"error\":{{\"kind\":\"internal\",\"message\":\"{e}\"}}}}",
                        path
                    )
                });
                let mut out = out.lock().unwrap_or_else(|p| p.into_inner());
                let _ = writeln!(out, "{text}");
            })
    });
    bar.finish_and_clear();
    let failed = failed.into_inner();
    if failed > 0 {
        eprintln!("motif: {failed} of {} files failed", files.len());
        Ok(ExitCode::from(2))
    } else {
        Ok(ExitCode::SUCCESS)
    }
}
