//! Timbre: what one short frame of sound is made of. Runs on the main STFT
//! ([`FRAME`] samples every [`HOP`] at [`crate::ANALYSIS_RATE`]) and produces, per frame, the
//! onset strength that the rhythm stage needs, plus running statistics for the raw features.

use crate::dsp::{dct_matrix, median, MelBank, PowerSpectrum, RunningStats};
use crate::ANALYSIS_RATE;

/// Main STFT frame length in samples (46 ms at 22.05 kHz).
pub const FRAME: usize = 1024;
/// Main STFT hop in samples (11.6 ms: 86.13 frames per second; the onset envelope needs
/// this resolution for tempo).
pub const HOP: usize = 256;
/// Mel bands of the log-mel spectrogram.
pub const MEL_BANDS: usize = 40;
/// MFCC coefficients kept (including c0, the log energy).
pub const N_MFCC: usize = 13;
/// Spectral statistics and the harmonic/percussive separation run on every DETAIL-th frame
/// only: they are track-level averages, and half the frames estimate them as well.
const DETAIL: u64 = 2;
/// Detail frames of the time median of the harmonic/percussive separation (~200 ms, odd).
const HPSS_TIME: usize =
    (0.2 * crate::ANALYSIS_RATE as f32 / (HOP as u64 * DETAIL) as f32) as usize | 1;
/// Bands of the frequency median of the harmonic/percussive separation.
const HPSS_FREQ: usize = 7;
/// Mel bands whose centres lie under about 300 Hz.
const LOW_BANDS: usize = 4;
/// Floor of the log-mel spectrogram in dB relative to a full-scale sine.
const DB_FLOOR: f32 = -80.0;
/// Band edges (Hz) of the four energy-ratio bands: bass, low-mid, high-mid, treble.
const BAND_EDGES: [f32; 5] = [0.0, 250.0, 2000.0, 6000.0, 11025.0];

/// Per-frame results handed on to the rhythm and structure stages.
pub struct FrameOut {
    /// Positive log-mel spectral flux (dB per band, averaged over bands).
    pub onset: f32,
    /// The same over the bass bands only (centres under 300 Hz): kick and bass notes mark
    /// the beat level, where hats and arpeggios mark its subdivisions.
    pub onset_low: f32,
    /// Frame RMS in dBFS (a full-scale sine reads about -3 dB).
    pub rms_db: f32,
    /// The MFCCs of this frame.
    pub mfcc: [f32; N_MFCC],
}

/// Accumulates timbre statistics over all frames of a track.
pub struct Timbre {
    spectrum: PowerSpectrum,
    mel: MelBank,
    dct: Vec<Vec<f32>>,
    norm: f32,
    mel_power: Vec<f32>,
    magnitude: Vec<f32>,
    mel_db: Vec<f32>,
    prev_db: Vec<f32>,
    have_prev: bool,
    band_bins: [usize; 5],
    bin_hz: f32,
    // HPSS ring of mel power frames.
    ring: Vec<Vec<f32>>,
    ring_pos: usize,
    ring_len: usize,
    scratch: Vec<f32>,
    column: Vec<f32>,
    pub(crate) percussive_energy: f64,
    pub(crate) hpss_energy: f64,
    // Running statistics.
    pub(crate) mfcc: [RunningStats; N_MFCC],
    pub(crate) centroid: RunningStats,
    pub(crate) rolloff: RunningStats,
    pub(crate) flatness: RunningStats,
    pub(crate) flux: RunningStats,
    pub(crate) bands: [RunningStats; 4],
    pub(crate) frames: u64,
}

/// Mean positive change (dB) from `prev` to `cur` over the bands: half-wave rectified flux.
fn positive_flux(cur: &[f32], prev: &[f32]) -> f32 {
    cur.iter()
        .zip(prev)
        .map(|(a, b)| (a - b).max(0.0))
        .sum::<f32>()
        / cur.len() as f32
}

impl Default for Timbre {
    fn default() -> Self {
        Self::new()
    }
}

impl Timbre {
    pub fn new() -> Self {
        let rate = ANALYSIS_RATE as f32;
        let bin_hz = rate / FRAME as f32;
        // Hann window: a full-scale sine has peak-bin power (sum(w) / 2)^2 = (FRAME / 4)^2.
        let norm = 1.0 / ((FRAME as f32 / 4.0).powi(2));
        let band_bins = BAND_EDGES.map(|f| ((f / bin_hz).round() as usize).min(FRAME / 2 + 1));
        Timbre {
            spectrum: PowerSpectrum::new(FRAME),
            mel: MelBank::new(MEL_BANDS, FRAME, rate, 30.0, 11_000.0),
            dct: dct_matrix(N_MFCC, MEL_BANDS),
            norm,
            mel_power: vec![0.0; MEL_BANDS],
            magnitude: vec![0.0; FRAME / 2 + 1],
            mel_db: vec![0.0; MEL_BANDS],
            prev_db: vec![0.0; MEL_BANDS],
            have_prev: false,
            band_bins,
            bin_hz,
            ring: vec![vec![0.0; MEL_BANDS]; HPSS_TIME],
            ring_pos: 0,
            ring_len: 0,
            scratch: Vec::with_capacity(HPSS_TIME),
            column: vec![0.0; HPSS_TIME],
            percussive_energy: 0.0,
            hpss_energy: 0.0,
            mfcc: Default::default(),
            centroid: RunningStats::default(),
            rolloff: RunningStats::default(),
            flatness: RunningStats::default(),
            flux: RunningStats::default(),
            bands: Default::default(),
            frames: 0,
        }
    }

    /// Analyses one frame of [`FRAME`] samples.
    pub fn frame(&mut self, frame: &[f32]) -> FrameOut {
        self.frames += 1;
        let ms = frame.iter().map(|x| x * x).sum::<f32>() / frame.len() as f32;
        let rms_db = 10.0 * (ms + 1e-12).log10();

        self.spectrum.compute(frame);
        let norm = self.norm;
        self.spectrum.power.iter_mut().for_each(|p| *p *= norm);
        let power = &self.spectrum.power;
        self.mel.apply(power, &mut self.mel_power);
        for (d, p) in self.mel_db.iter_mut().zip(&self.mel_power) {
            *d = (10.0 * (p + 1e-12).log10()).max(DB_FLOOR);
        }

        // Onset strength: how much louder the bands got since the last frame.
        let (onset, onset_low) = if self.have_prev {
            (
                positive_flux(&self.mel_db, &self.prev_db),
                positive_flux(&self.mel_db[..LOW_BANDS], &self.prev_db[..LOW_BANDS]),
            )
        } else {
            (0.0, 0.0)
        };
        self.prev_db.copy_from_slice(&self.mel_db);
        self.have_prev = true;

        let mut mfcc = [0.0f32; N_MFCC];
        for (c, row) in mfcc.iter_mut().zip(&self.dct) {
            *c = row.iter().zip(&self.mel_db).map(|(w, x)| w * x).sum();
        }

        // Spectral shape, only on frames with sound in them (silence has no shape).
        let detail = self.frames.is_multiple_of(DETAIL);
        let total: f32 = if detail { power[1..].iter().sum() } else { 0.0 };
        if detail && rms_db > -70.0 && total > 0.0 {
            for (s, c) in self.mfcc.iter_mut().zip(&mfcc) {
                s.push(*c as f64);
            }
            // Centroid and roll-off over the magnitude spectrum (the usual definition: on
            // power, the bass dominates and every track reads as dark).
            for (m, p) in self.magnitude.iter_mut().zip(power.iter()) {
                *m = p.sqrt();
            }
            let mag = &self.magnitude;
            let mag_total: f32 = mag[1..].iter().sum();
            let centroid = mag
                .iter()
                .enumerate()
                .skip(1)
                .map(|(k, m)| k as f32 * m)
                .sum::<f32>()
                / mag_total
                * self.bin_hz;
            self.centroid.push(centroid as f64);
            let mut acc = 0.0;
            let mut roll = mag.len() - 1;
            for (k, m) in mag.iter().enumerate().skip(1) {
                acc += m;
                if acc >= 0.85 * mag_total {
                    roll = k;
                    break;
                }
            }
            self.rolloff.push((roll as f32 * self.bin_hz) as f64);
            // Flatness over the mel bands: geometric over arithmetic mean (1 = white noise).
            let n = MEL_BANDS as f32;
            let mel = &self.mel_power;
            let log_mean = mel.iter().map(|p| (p + 1e-12).ln()).sum::<f32>() / n;
            let mean = mel.iter().sum::<f32>() / n;
            self.flatness
                .push((log_mean.exp() / mean.max(1e-12)).min(1.0) as f64);
            self.flux.push(onset as f64);
            for (i, s) in self.bands.iter_mut().enumerate() {
                let (a, b) = (self.band_bins[i].max(1), self.band_bins[i + 1]);
                let e: f32 = power[a..b.max(a)].iter().sum();
                s.push((e / total) as f64);
            }
        }

        if detail {
            self.hpss_step();
        }
        FrameOut {
            onset,
            onset_low,
            rms_db,
            mfcc,
        }
    }

    /// Harmonic/percussive separation by median filtering (Fitzgerald 2010) on the mel
    /// spectrogram: a sound steady in time is harmonic, one spread across frequency is
    /// percussive. Accumulates the percussive share of energy, frame by frame.
    fn hpss_step(&mut self) {
        self.ring[self.ring_pos].copy_from_slice(&self.mel_power);
        self.ring_pos = (self.ring_pos + 1) % HPSS_TIME;
        self.ring_len = (self.ring_len + 1).min(HPSS_TIME);
        if self.ring_len < HPSS_TIME {
            return;
        }
        let centre = (self.ring_pos + HPSS_TIME / 2) % HPSS_TIME;
        let half = HPSS_FREQ / 2;
        for b in 0..MEL_BANDS {
            for t in 0..HPSS_TIME {
                self.column[t] = self.ring[t][b];
            }
            let h = median(&self.column, &mut self.scratch);
            let lo = b.saturating_sub(half);
            let hi = (b + half + 1).min(MEL_BANDS);
            let p = median(&self.ring[centre][lo..hi], &mut self.scratch);
            let e = self.ring[centre][b] as f64;
            let (h2, p2) = ((h as f64).powi(2), (p as f64).powi(2));
            if h2 + p2 > 0.0 {
                self.percussive_energy += e * p2 / (h2 + p2);
            }
            self.hpss_energy += e;
        }
    }

    /// Percussive share of the energy, 0..1.
    pub fn percussiveness(&self) -> f32 {
        if self.hpss_energy > 0.0 {
            (self.percussive_energy / self.hpss_energy) as f32
        } else {
            0.0
        }
    }
}
