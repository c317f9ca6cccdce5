//! The model's input: a 16 kHz log-mel spectrogram equal to librosa's, which musicnn was
//! trained on (512-point FFT, hop 256, periodic Hann window, centred frames with zero
//! padding, 96 Slaney-normalised mel bands up to 8 kHz, power, then `log10(10000 x + 1)`).

use crate::dsp::{FrameSplitter, PowerSpectrum};

/// Sample rate the model listens at.
pub const RATE: u32 = 16_000;
/// FFT size and hop in samples.
pub const FFT: usize = 512;
pub const HOP: usize = 256;
/// Mel bands per frame.
pub const BANDS: usize = 96;

/// One log-mel frame.
pub type Frame = [f32; BANDS];

/// A mel filterbank built as `librosa.filters.mel(sr=16000, n_fft=512, n_mels=96)` builds
/// it (Slaney mel scale and area normalisation, computed in f64, kept as f32), stored
/// sparsely: for each band, its first FFT bin and weights.
pub struct SlaneyMel {
    bands: Vec<(usize, Vec<f32>)>,
}

/// The Slaney mel scale: linear up to 1 kHz (`F_SP` Hz a mel), logarithmic above (a
/// factor of 6.4 every 27 mel).
const F_SP: f64 = 200.0 / 3.0;
const MIN_LOG_HZ: f64 = 1000.0;
const MIN_LOG_MEL: f64 = MIN_LOG_HZ / F_SP;

fn log_step() -> f64 {
    6.4f64.ln() / 27.0
}

/// Hz to mel on the Slaney scale.
fn hz_to_mel(hz: f64) -> f64 {
    if hz >= MIN_LOG_HZ {
        MIN_LOG_MEL + (hz / MIN_LOG_HZ).ln() / log_step()
    } else {
        hz / F_SP
    }
}

fn mel_to_hz(mel: f64) -> f64 {
    if mel >= MIN_LOG_MEL {
        MIN_LOG_HZ * (log_step() * (mel - MIN_LOG_MEL)).exp()
    } else {
        F_SP * mel
    }
}

impl SlaneyMel {
    pub fn new() -> Self {
        let n_bins = FFT / 2 + 1;
        let f_max = RATE as f64 / 2.0;
        let (lo, hi) = (hz_to_mel(0.0), hz_to_mel(f_max));
        let edges: Vec<f64> = (0..BANDS + 2)
            .map(|i| mel_to_hz(lo + (hi - lo) * i as f64 / (BANDS + 1) as f64))
            .collect();
        let bin_hz = |k: usize| f_max * k as f64 / (n_bins - 1) as f64;
        let bands = (0..BANDS)
            .map(|b| {
                let (left, centre, right) = (edges[b], edges[b + 1], edges[b + 2]);
                let norm = 2.0 / (right - left);
                let weights: Vec<(usize, f32)> = (0..n_bins)
                    .filter_map(|k| {
                        let f = bin_hz(k);
                        let up = (f - left) / (centre - left);
                        let down = (right - f) / (right - centre);
                        let w = up.min(down).max(0.0) * norm;
                        (w > 0.0).then_some((k, w as f32))
                    })
                    .collect();
                let first = weights.first().map_or(0, |w| w.0);
                (first, weights.into_iter().map(|w| w.1).collect())
            })
            .collect();
        SlaneyMel { bands }
    }

    /// Mel band powers of one power spectrum.
    pub fn apply(&self, power: &[f32], out: &mut [f32; BANDS]) {
        for (o, (first, w)) in out.iter_mut().zip(&self.bands) {
            *o = power[*first..*first + w.len()]
                .iter()
                .zip(w)
                .map(|(p, w)| p * w)
                .sum();
        }
    }
}

impl Default for SlaneyMel {
    fn default() -> Self {
        Self::new()
    }
}

/// Log compression of the musicnn input.
pub fn compress(x: f32) -> f32 {
    (10_000.0 * x + 1.0).log10()
}

/// Streams 16 kHz samples into log-mel frames, centred as librosa centres them: the first
/// frame is centred on sample 0 (half a frame of zeros before it) and `finish` adds half a
/// frame of zeros after the end, so a signal of n samples gives `1 + n / 256` frames.
pub struct LogMel {
    split: FrameSplitter,
    spectrum: PowerSpectrum,
    bank: SlaneyMel,
    started: bool,
}

impl LogMel {
    pub fn new() -> Self {
        LogMel {
            split: FrameSplitter::new(FFT, HOP),
            spectrum: PowerSpectrum::new(FFT),
            bank: SlaneyMel::new(),
            started: false,
        }
    }

    /// Pushes samples. `sink` is called once per frame with a function that computes it:
    /// a caller that does not want the frame does not call it, and saves the FFT.
    pub fn push(&mut self, samples: &[f32], sink: &mut impl FnMut(&mut dyn FnMut() -> Frame)) {
        if !self.started {
            self.started = true;
            self.feed(&[0.0; FFT / 2], sink);
        }
        self.feed(samples, sink);
    }

    /// Flushes the end padding.
    pub fn finish(&mut self, sink: &mut impl FnMut(&mut dyn FnMut() -> Frame)) {
        if self.started {
            self.feed(&[0.0; FFT / 2], sink);
        }
    }

    fn feed(&mut self, samples: &[f32], sink: &mut impl FnMut(&mut dyn FnMut() -> Frame)) {
        let LogMel {
            split,
            spectrum,
            bank,
            ..
        } = self;
        split.push(samples, |frame| {
            sink(&mut || {
                spectrum.compute(frame);
                let mut bands = [0.0f32; BANDS];
                bank.apply(&spectrum.power, &mut bands);
                bands.iter_mut().for_each(|b| *b = compress(*b));
                bands
            })
        });
    }
}

impl Default for LogMel {
    fn default() -> Self {
        Self::new()
    }
}

/// Every log-mel frame of a whole 16 kHz signal (for tests and the reference check).
pub fn log_mel(samples: &[f32]) -> Vec<Frame> {
    let mut mel = LogMel::new();
    let mut frames = Vec::new();
    let mut sink = |compute: &mut dyn FnMut() -> Frame| frames.push(compute());
    mel.push(samples, &mut sink);
    mel.finish(&mut sink);
    frames
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_count_and_band_placement_follow_librosa() {
        // 1 + n / hop frames.
        let n = 16_000;
        let tone: Vec<f32> = (0..n)
            .map(|i| (2.0 * std::f32::consts::PI * 1000.0 * i as f32 / RATE as f32).sin())
            .collect();
        let frames = log_mel(&tone);
        assert_eq!(frames.len(), 1 + n / HOP);
        // A 1 kHz tone peaks in the band centred nearest 1 kHz (band 14 on the Slaney
        // scale: edges are 15 mel apart from 0 to 8 kHz over 97 steps).
        let mid = &frames[frames.len() / 2];
        let peak = (0..BANDS)
            .max_by(|&a, &b| mid[a].total_cmp(&mid[b]))
            .unwrap();
        let centre_hz = |b: usize| {
            let hi = hz_to_mel(8000.0);
            mel_to_hz(hi * (b + 1) as f64 / (BANDS + 1) as f64)
        };
        assert!((centre_hz(peak) - 1000.0).abs() < 80.0, "{peak}");
        // Silence is log10(1) = 0.
        assert!(log_mel(&[0.0; 2048]).iter().flatten().all(|&x| x == 0.0));
    }

    #[test]
    fn slaney_scale_round_trips() {
        for hz in [0.0, 440.0, 1000.0, 4000.0, 8000.0] {
            assert!((mel_to_hz(hz_to_mel(hz)) - hz).abs() < 1e-6);
        }
    }
}
