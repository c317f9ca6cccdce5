//! `analyze(path) -> Analysis`: the one entry point that runs decode -> downmix/resample ->
//! frame features -> track-level attributes, tags, raw features and embedding.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::attributes::{Attributes, Mode, PitchClass, Pulse};
use crate::decode::{AudioStream, StreamInfo};
use crate::dsp::{cosine, FrameSplitter, RunningStats};
use crate::embedding::Normalizer;
use crate::error::{AnalysisError, ErrorKind};
use crate::features::{DSP_DIM, FEATURE_DIM};
use crate::fingerprint::Fingerprinter;
use crate::learned::{self, musicnn::PENULTIMATE, patches::PatchSampler, vocabulary};
use crate::loudness::{Loudness, FLOOR_DB};
use crate::resample::{downmix_into, MonoResampler};
use crate::rhythm::{self, Rhythm, FPS};
use crate::tags::{self, Tag};
use crate::timbre::{self, Timbre, N_MFCC};
use crate::tonal::{self, Chroma};
use crate::{structure, ANALYSIS_RATE, ANALYZER_VERSION};

/// Main frames per structure block (0.46 s), equal to 5 chroma hops.
const BLOCK_FRAMES: usize = BLOCK_CHROMA * tonal::HOP / timbre::HOP;
const BLOCK_CHROMA: usize = 5;

/// Limits that keep one bad or huge file from hurting a batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnalysisConfig {
    /// Larger files are refused before decoding (`too_large`).
    pub max_file_bytes: u64,
    /// Decoding stops with `too_long` past this much audio.
    pub max_duration_s: f64,
    /// Shorter audio is refused (`too_short`): tempo and key need a few seconds.
    pub min_duration_s: f64,
    /// Streams with more samples per second than this (rate x channels) are refused
    /// before decoding (`unsupported_format`): decoding and loudness cost grow with it,
    /// so a server analysing clips from anyone bounds it.
    #[serde(default = "no_rate_limit")]
    pub max_samples_per_s: u64,
    /// Run the learned models ([`crate::learned`]). Off only to measure what they cost
    /// (`motif bench`): the analysis then has no learned tags and its learned features are
    /// zero, so it does not belong in a catalogue.
    #[serde(default = "yes")]
    pub learned: bool,
    /// Compute the acoustic fingerprint ([`crate::fingerprint`]). Off only to measure what
    /// it costs (`motif bench`): without it, copies of the track are not found.
    #[serde(default = "yes")]
    pub fingerprint: bool,
}

fn yes() -> bool {
    true
}

fn no_rate_limit() -> u64 {
    u64::MAX
}

impl Default for AnalysisConfig {
    fn default() -> Self {
        AnalysisConfig {
            max_file_bytes: 2 << 30,
            max_duration_s: 4.0 * 3600.0,
            min_duration_s: 1.0,
            max_samples_per_s: no_rate_limit(),
            learned: true,
            fingerprint: true,
        }
    }
}

/// What the audio is, as decoded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AudioInfo {
    #[serde(flatten)]
    pub stream: StreamInfo,
    /// Decoded duration in seconds.
    pub duration_s: f64,
}

/// The full description of one track.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    /// [`ANALYZER_VERSION`] of the code that produced this.
    pub analyzer_version: String,
    pub audio: AudioInfo,
    pub attributes: Attributes,
    /// Derived `facet:value` tags (source: analysis).
    pub tags: Vec<Tag>,
    /// Beat times in seconds from the start, increasing (empty when no beat was tracked).
    #[serde(default)]
    pub beats: Vec<f32>,
    /// Raw feature vector, layout in [`crate::features`].
    pub features: Vec<f32>,
    /// The embedding under the normaliser named by `embedding_space`.
    pub embedding: Vec<f32>,
    /// [`Normalizer::version`] of the embedding.
    pub embedding_space: String,
    /// The acoustic fingerprint of the first [`fingerprint::SECONDS`] ([`crate::fingerprint`]),
    /// by which copies of one recording are found; empty when the audio is too short.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fingerprint: Vec<u32>,
    /// The fine fingerprint of a track up to [`fingerprint::FINE_UP_TO_S`] long (empty for
    /// longer tracks): what tells copies of very short audio apart, whose fingerprint is
    /// too short to compare.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fine_fingerprint: Vec<u32>,
    /// The learned models' raw label scores ([`crate::learned`]); the learned tags are
    /// derived from them. Absent when the models did not run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_scores: Option<learned::ModelScores>,
    /// Things worth knowing that did not stop the analysis (skipped packets, truncation).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// Analyses one file with the default normaliser. Never panics: a panic inside is caught
/// and returned as an `internal` error.
pub fn analyze(path: &Path, config: &AnalysisConfig) -> Result<Analysis, AnalysisError> {
    analyze_with(path, config, Normalizer::default_for_version())
}

/// Analyses one file, embedding it with `normalizer`.
pub fn analyze_with(
    path: &Path,
    config: &AnalysisConfig,
    normalizer: &Normalizer,
) -> Result<Analysis, AnalysisError> {
    match catch_unwind(AssertUnwindSafe(|| analyze_inner(path, config, normalizer))) {
        Ok(r) => r,
        Err(panic) => {
            let msg = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(AnalysisError::new(
                ErrorKind::Internal,
                path,
                format!("analyser panicked: {msg}"),
            ))
        }
    }
}

/// Decodes only (no analysis): returns the decoded duration in seconds. For benchmarks.
pub fn decode_only(path: &Path) -> Result<f64, AnalysisError> {
    let mut stream = AudioStream::open(path)?;
    let mut frames = 0u64;
    while let Some(block) = stream.next_block()? {
        frames += (block.samples.len() / block.channels) as u64;
    }
    Ok(frames as f64 / stream.info().sample_rate.max(1) as f64)
}

/// Frame-level state at the analysis rate.
struct Frames {
    main: FrameSplitter,
    chroma_split: FrameSplitter,
    timbre: Timbre,
    chroma: Chroma,
    onset: Vec<f32>,
    onset_low: Vec<f32>,
    rms_db: RunningStats,
    second_power: f64,
    second_frames: usize,
    seconds_db: Vec<f32>,
    mfcc_block: [f32; N_MFCC],
    mfcc_block_frames: usize,
    mfcc_blocks: Vec<[f32; N_MFCC]>,
    peak_rms_db: f32,
}

impl Frames {
    fn new() -> Self {
        Frames {
            main: FrameSplitter::new(timbre::FRAME, timbre::HOP),
            chroma_split: FrameSplitter::new(tonal::FRAME, tonal::HOP),
            timbre: Timbre::new(),
            chroma: Chroma::new(),
            onset: Vec::new(),
            onset_low: Vec::new(),
            rms_db: RunningStats::default(),
            second_power: 0.0,
            second_frames: 0,
            seconds_db: Vec::new(),
            mfcc_block: [0.0; N_MFCC],
            mfcc_block_frames: 0,
            mfcc_blocks: Vec::new(),
            peak_rms_db: f32::MIN,
        }
    }

    fn push(&mut self, samples: &[f32]) {
        let Frames {
            main,
            chroma_split,
            timbre,
            chroma,
            onset,
            onset_low,
            rms_db,
            second_power,
            second_frames,
            seconds_db,
            mfcc_block,
            mfcc_block_frames,
            mfcc_blocks,
            peak_rms_db,
        } = self;
        main.push(samples, |f| {
            let out = timbre.frame(f);
            onset.push(out.onset);
            onset_low.push(out.onset_low);
            if out.rms_db > -70.0 {
                rms_db.push(out.rms_db as f64);
            }
            *peak_rms_db = peak_rms_db.max(out.rms_db);
            *second_power += 10f64.powf(out.rms_db as f64 / 10.0);
            *second_frames += 1;
            if *second_frames == FPS.round() as usize {
                seconds_db
                    .push((10.0 * (*second_power / *second_frames as f64 + 1e-12).log10()) as f32);
                *second_power = 0.0;
                *second_frames = 0;
            }
            mfcc_block
                .iter_mut()
                .zip(&out.mfcc)
                .for_each(|(a, x)| *a += x);
            *mfcc_block_frames += 1;
            if *mfcc_block_frames == BLOCK_FRAMES {
                mfcc_blocks.push(mfcc_block.map(|x| x / BLOCK_FRAMES as f32));
                *mfcc_block = [0.0; N_MFCC];
                *mfcc_block_frames = 0;
            }
        });
        chroma_split.push(samples, |f| chroma.frame(f));
    }
}

fn analyze_inner(
    path: &Path,
    config: &AnalysisConfig,
    normalizer: &Normalizer,
) -> Result<Analysis, AnalysisError> {
    let size = std::fs::metadata(path)
        .map_err(|e| AnalysisError::new(ErrorKind::Io, path, format!("cannot stat: {e}")))?
        .len();
    if size > config.max_file_bytes {
        return Err(AnalysisError::new(
            ErrorKind::TooLarge,
            path,
            format!("{size} bytes, over the limit of {}", config.max_file_bytes),
        ));
    }
    let mut stream = AudioStream::open(path)?;
    let mut warnings = Vec::new();
    let mut setup: Option<(u32, usize, Loudness, MonoResampler, MonoResampler)> = None;
    let mut printer: Option<Fingerprinter> = None;
    let mut sampler = PatchSampler::new(learned::PATCH_BUDGET);
    let mut frames = Frames::new();
    let mut mono = Vec::new();
    let mut input_frames = 0u64;
    while let Some(block) = stream.next_block()? {
        let (rate, channels) = (block.sample_rate, block.channels);
        let block = block.samples;
        let (r0, c0, loudness, resampler, to_16k) = match &mut setup {
            Some(s) => s,
            None => {
                let per_s = u64::from(rate) * channels as u64;
                if per_s > config.max_samples_per_s {
                    return Err(AnalysisError::new(
                        ErrorKind::UnsupportedFormat,
                        path,
                        format!(
                            "{rate} Hz with {channels} channels is {per_s} samples a second, \
                             over this server's limit of {}",
                            config.max_samples_per_s
                        ),
                    ));
                }
                if !(8_000..=384_000).contains(&rate) || channels > 32 {
                    return Err(AnalysisError::new(
                        ErrorKind::UnsupportedFormat,
                        path,
                        format!(
                            "{rate} Hz with {channels} channels is outside what Motif analyses"
                        ),
                    ));
                }
                let resampler = |to| {
                    MonoResampler::new(rate, to)
                        .map_err(|m| AnalysisError::new(ErrorKind::UnsupportedFormat, path, m))
                };
                if config.fingerprint {
                    printer = Some(
                        Fingerprinter::new(ANALYSIS_RATE)
                            .map_err(|m| AnalysisError::new(ErrorKind::Internal, path, m))?,
                    );
                }
                setup.insert((
                    rate,
                    channels,
                    Loudness::new(channels, rate),
                    resampler(ANALYSIS_RATE)?,
                    resampler(learned::mel::RATE)?,
                ))
            }
        };
        if (*r0, *c0) != (rate, channels) {
            warnings.push(format!(
                "the stream changed from {r0} Hz x{c0} to {rate} Hz x{channels}; analysed the part before"
            ));
            break;
        }
        input_frames += (block.len() / channels) as u64;
        if input_frames as f64 / rate as f64 > config.max_duration_s {
            return Err(AnalysisError::new(
                ErrorKind::TooLong,
                path,
                format!("longer than the limit of {} s", config.max_duration_s),
            ));
        }
        loudness.push(block);
        downmix_into(block, channels, &mut mono);
        resampler.push(&mono, &mut |s| {
            frames.push(s);
            if let Some(p) = printer.as_mut() {
                p.push(s);
            }
        });
        if config.learned {
            to_16k.push(&mono, &mut |s| sampler.push(s));
        }
    }
    let Some((rate, _, mut loudness, mut resampler, mut to_16k)) = setup else {
        return Err(AnalysisError::new(
            ErrorKind::Corrupt,
            path,
            "no audio could be decoded",
        ));
    };
    resampler.finish(&mut |s| {
        frames.push(s);
        if let Some(p) = printer.as_mut() {
            p.push(s);
        }
    });
    let prints = printer.map(Fingerprinter::finish).unwrap_or_default();
    if config.learned {
        to_16k.finish(&mut |s| sampler.push(s));
    }
    if let Some(why) = stream.ended_early() {
        warnings.push(why.to_string());
    }
    if stream.bad_packets() > 0 {
        warnings.push(format!(
            "{} undecodable packets skipped",
            stream.bad_packets()
        ));
    }
    let duration_s = input_frames as f64 / rate as f64;
    if duration_s < config.min_duration_s {
        return Err(AnalysisError::new(
            ErrorKind::TooShort,
            path,
            format!(
                "{duration_s:.2} s of audio; at least {} s needed",
                config.min_duration_s
            ),
        ));
    }
    let loud = loudness.finish();
    if frames.peak_rms_db < -70.0 {
        return Err(AnalysisError::new(
            ErrorKind::Silent,
            path,
            format!(
                "the audio is silent (loudest frame {:.1} dBFS)",
                frames.peak_rms_db
            ),
        ));
    }
    let novelty = rhythm::Novelty::of(&frames.onset, &frames.onset_low);
    let rhythm = rhythm::analyse(&novelty, &frames.chroma.frames).unwrap_or(Rhythm {
        tempo_bpm: 120.0,
        strongest_bpm: 120.0,
        metre: None,
        tempo_confidence: 0.0,
        tempo_stability: 0.0,
        beat_strength: 0.0,
        syncopation: 0.0,
        onset_rate: 0.0,
        tempogram: [0.0; 9],
        steady: false,
        distinctness: 0.0,
        beats: Vec::new(),
    });
    let (attributes, mut features) = describe(&frames, &rhythm, loud);
    if let Some(dir) = std::env::var_os(DUMP_SIGNALS) {
        dump_signals(Path::new(&dir), path, &frames, &rhythm);
    }
    let listening = learned::listen(&sampler.finish());
    match &listening {
        Some(l) => features.extend(&l.embedding),
        None => features.resize(FEATURE_DIM, 0.0),
    }
    // One guard for the whole vector: a non-finite value would poison the normaliser and
    // cannot be written as JSON.
    features.iter_mut().for_each(|x| {
        if !x.is_finite() {
            *x = 0.0
        }
    });
    let beats = rhythm
        .beats
        .iter()
        .map(|&f| rhythm::frame_time(f))
        .collect();
    let mut tags = tags::derive(&attributes);
    if let Some(l) = &listening {
        tags.extend(vocabulary::tags(&l.scores));
    }
    let embedding = normalizer.embed(&features);
    Ok(Analysis {
        analyzer_version: ANALYZER_VERSION.to_string(),
        audio: AudioInfo {
            stream: stream.info().clone(),
            duration_s,
        },
        attributes,
        tags,
        beats,
        features,
        embedding,
        embedding_space: normalizer.version.clone(),
        fingerprint: prints.coarse,
        fine_fingerprint: prints.fine,
        model_scores: listening.map(|l| l.scores),
        warnings,
    })
}

/// The environment variable naming a folder into which each analysis writes the signals
/// the learned tempo level and metre are fitted on (`eval/ears/fit.py`): a developer's
/// hook, off unless set.
pub const DUMP_SIGNALS: &str = "MOTIF_DUMP_SIGNALS";

/// Writes `<dir>/<file name>.json` with the onset envelopes, the chroma frames and the
/// rhythm's results. Best effort: a failure to write is reported on stderr, never fails
/// the analysis.
fn dump_signals(dir: &Path, path: &Path, frames: &Frames, rhythm: &Rhythm) {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let json = serde_json::json!({
        "onset": frames.onset,
        "onset_low": frames.onset_low,
        "chroma": frames.chroma.frames,
        "key_chroma": frames.chroma.key_chroma(),
        "strongest": rhythm.strongest_bpm,
        "tempo": rhythm.tempo_bpm,
        "metre": rhythm.metre.map(|m| (m.beats_per_bar, m.compound)),
    });
    let out = dir.join(format!("{name}.json"));
    if let Err(e) = std::fs::write(&out, json.to_string()) {
        eprintln!("{DUMP_SIGNALS}: cannot write {}: {e}", out.display());
    }
}

fn clip01(x: f32) -> f32 {
    if x.is_finite() {
        x.clamp(0.0, 1.0)
    } else {
        0.0
    }
}

/// Turns frame statistics into the attributes and the signal-processing part of the raw
/// feature vector (the first [`DSP_DIM`] dimensions; the learned group follows).
fn describe(
    fr: &Frames,
    rh: &Rhythm,
    loud: crate::loudness::LoudnessResult,
) -> (Attributes, Vec<f32>) {
    let t = &fr.timbre;
    let key = fr.chroma.key();
    let mean_chroma = fr.chroma.mean();
    let entropy = fr.chroma.entropy();

    // Half-second chroma blocks: chord changes and (with MFCC blocks) self-similarity.
    let chroma_blocks: Vec<[f32; 12]> = fr
        .chroma
        .frames
        .chunks(BLOCK_CHROMA)
        .map(|c| {
            let mut m = [0.0f32; 12];
            for f in c {
                m.iter_mut().zip(f).for_each(|(a, x)| *a += x);
            }
            m
        })
        .collect();
    let voiced: Vec<&[f32; 12]> = chroma_blocks
        .iter()
        .filter(|b| b.iter().sum::<f32>() > 0.0)
        .collect();
    let changes = voiced
        .windows(2)
        .filter(|w| cosine(w[0], w[1]) < 0.9)
        .count();
    let change_rate = if voiced.len() > 1 {
        changes as f32 / (voiced.len() - 1) as f32
    } else {
        0.0
    };
    let blocks: Vec<Vec<f32>> = chroma_blocks
        .iter()
        .zip(&fr.mfcc_blocks)
        .map(|(c, m)| c.iter().chain(&m[1..]).copied().collect())
        .collect();
    let repetitiveness = structure::repetitiveness(&blocks);

    let loud_secs: Vec<f32> = fr
        .seconds_db
        .iter()
        .copied()
        .filter(|&d| d > -60.0)
        .collect();
    let dynamic_complexity = if loud_secs.is_empty() {
        0.0
    } else {
        let m = loud_secs.iter().sum::<f32>() / loud_secs.len() as f32;
        loud_secs.iter().map(|d| (d - m).abs()).sum::<f32>() / loud_secs.len() as f32
    };

    let percussiveness = t.percussiveness();
    let flux_mean = t.flux.mean() as f32;
    let high_share = (t.bands[2].mean() + t.bands[3].mean()) as f32;
    let energy = clip01(
        0.35 * clip01((loud.integrated_lufs + 35.0) / 30.0)
            + 0.25 * clip01(rh.onset_rate / 8.0)
            + 0.2 * clip01(flux_mean / 4.0)
            + 0.2 * clip01(high_share / 0.3),
    );
    let tempo_pref = {
        let z = (rh.tempo_bpm / 118.0).log2() / 0.35;
        (-0.5 * z * z).exp()
    };
    let danceability = clip01(
        (0.45 * rh.beat_strength + 0.25 * rh.tempo_stability + 0.3 * tempo_pref)
            * rh.tempo_confidence.powf(0.3),
    );
    let centroid = t.centroid.mean() as f32;
    let brightness = clip01((centroid.max(1.0) / 400.0).log2() / (6000.0f32 / 400.0).log2());
    let flatness = t.flatness.mean() as f32;
    let acousticness = clip01(
        0.4 * clip01(dynamic_complexity / 6.0)
            + 0.3 * (1.0 - clip01(flatness / 0.3))
            + 0.3 * (1.0 - rh.tempo_stability * rh.tempo_confidence),
    );
    let harmonic_complexity = clip01(0.5 * clip01((entropy - 0.5) / 0.5) + 0.5 * change_rate);
    let tonic = PitchClass::ALL[key.tonic];
    let attributes = Attributes {
        tempo_bpm: rh.tempo_bpm,
        tempo_confidence: rh.tempo_confidence,
        pulse: if rh.steady {
            Pulse::Steady
        } else {
            Pulse::Free
        },
        metre: rh.metre,
        key: tonic,
        mode: if key.major { Mode::Major } else { Mode::Minor },
        key_strength: key.strength,
        camelot: tonal::camelot(key.tonic, key.major),
        loudness_lufs: loud.integrated_lufs,
        loudness_range_lu: loud.range_lu,
        true_peak_dbtp: loud.true_peak_dbtp,
        energy,
        danceability,
        brightness,
        percussiveness,
        acousticness,
        syncopation: rh.syncopation,
        harmonic_complexity,
        repetitiveness,
        dynamic_complexity,
        onset_rate: rh.onset_rate,
    };

    let mut f = Vec::with_capacity(DSP_DIM + PENULTIMATE);
    f.extend(t.mfcc.iter().map(|s| s.mean() as f32));
    f.extend(t.mfcc.iter().map(|s| s.std() as f32));
    for s in [&t.centroid, &t.rolloff] {
        f.push(s.mean() as f32 / 1000.0);
        f.push(s.std() as f32 / 1000.0);
    }
    for s in [&t.flatness, &t.flux] {
        f.push(s.mean() as f32);
        f.push(s.std() as f32);
    }
    f.extend(t.bands.iter().map(|s| s.mean() as f32));
    f.extend((0..12).map(|i| mean_chroma[(i + key.tonic) % 12]));
    f.push(key.strength);
    f.push(if key.major { 1.0 } else { 0.0 });
    f.push(entropy);
    f.push(change_rate);
    f.push((rh.tempo_bpm / 120.0).log2());
    f.push(rh.tempo_confidence);
    f.push(rh.tempo_stability);
    f.push(rh.beat_strength);
    f.push(rh.syncopation);
    f.push(rh.onset_rate / 10.0);
    f.push(percussiveness);
    f.extend(rh.tempogram);
    f.push(loud.integrated_lufs / 20.0);
    f.push(loud.range_lu / 10.0);
    f.push(loud.true_peak_dbtp.max(FLOOR_DB) / 10.0);
    f.push(dynamic_complexity / 10.0);
    f.push(fr.rms_db.std() as f32 / 10.0);
    debug_assert_eq!(f.len(), DSP_DIM);
    (attributes, f)
}
