//! Small signal-processing building blocks shared by the feature extractors.

use std::sync::Arc;

use realfft::{RealFftPlanner, RealToComplex};

/// Cuts a stream of samples into overlapping frames of `size` samples every `hop` samples.
///
/// The first frame starts at sample 0; samples are kept only until the frame that needs
/// them has been emitted, so memory is one frame whatever the stream length.
pub struct FrameSplitter {
    size: usize,
    hop: usize,
    buf: Vec<f32>,
}

impl FrameSplitter {
    pub fn new(size: usize, hop: usize) -> Self {
        FrameSplitter {
            size,
            hop,
            buf: Vec::with_capacity(size + hop),
        }
    }

    /// Appends samples and calls `on_frame` for every complete frame.
    pub fn push(&mut self, samples: &[f32], mut on_frame: impl FnMut(&[f32])) {
        let mut rest = samples;
        while !rest.is_empty() {
            let take = (self.size - self.buf.len()).min(rest.len());
            self.buf.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.buf.len() == self.size {
                on_frame(&self.buf);
                self.buf.drain(..self.hop);
            }
        }
    }
}

/// A windowed real FFT that turns a frame into its power spectrum (`size / 2 + 1` bins).
pub struct PowerSpectrum {
    fft: Arc<dyn RealToComplex<f32>>,
    window: Vec<f32>,
    input: Vec<f32>,
    output: Vec<realfft::num_complex::Complex<f32>>,
    scratch: Vec<realfft::num_complex::Complex<f32>>,
    /// The last computed power spectrum.
    pub power: Vec<f32>,
}

impl PowerSpectrum {
    pub fn new(size: usize) -> Self {
        let fft = RealFftPlanner::<f32>::new().plan_fft_forward(size);
        let window = (0..size)
            .map(|i| 0.5 - 0.5 * (2.0 * std::f32::consts::PI * i as f32 / size as f32).cos())
            .collect();
        let input = fft.make_input_vec();
        let output = fft.make_output_vec();
        let scratch = fft.make_scratch_vec();
        PowerSpectrum {
            fft,
            window,
            input,
            output,
            scratch,
            power: vec![0.0; size / 2 + 1],
        }
    }

    /// Computes the power spectrum of `frame` (which must be `size` long) into `self.power`.
    pub fn compute(&mut self, frame: &[f32]) {
        for ((x, s), w) in self.input.iter_mut().zip(frame).zip(&self.window) {
            *x = s * w;
        }
        // The only error is a length mismatch, excluded by construction.
        let _ = self
            .fft
            .process_with_scratch(&mut self.input, &mut self.output, &mut self.scratch);
        for (p, c) in self.power.iter_mut().zip(&self.output) {
            *p = c.norm_sqr();
        }
    }
}

/// Running mean and standard deviation (Welford), in f64 so hours of frames stay exact.
#[derive(Debug, Clone, Default)]
pub struct RunningStats {
    n: u64,
    mean: f64,
    m2: f64,
}

impl RunningStats {
    pub fn push(&mut self, x: f64) {
        if !x.is_finite() {
            return;
        }
        self.n += 1;
        let d = x - self.mean;
        self.mean += d / self.n as f64;
        self.m2 += d * (x - self.mean);
    }
    pub fn count(&self) -> u64 {
        self.n
    }
    pub fn mean(&self) -> f64 {
        self.mean
    }
    pub fn std(&self) -> f64 {
        if self.n < 2 {
            0.0
        } else {
            (self.m2 / self.n as f64).sqrt()
        }
    }
}

/// Hz to mel (Slaney-free HTK formula: simple and monotonic, all we need).
pub fn hz_to_mel(hz: f32) -> f32 {
    2595.0 * (1.0 + hz / 700.0).log10()
}

fn mel_to_hz(mel: f32) -> f32 {
    700.0 * (10f32.powf(mel / 2595.0) - 1.0)
}

/// A triangular mel filterbank stored sparsely: for each band, (first bin, weights).
pub struct MelBank {
    pub bands: Vec<(usize, Vec<f32>)>,
}

impl MelBank {
    pub fn new(n_bands: usize, fft_size: usize, rate: f32, f_min: f32, f_max: f32) -> Self {
        let bins = fft_size / 2 + 1;
        let bin_hz = rate / fft_size as f32;
        let (m0, m1) = (hz_to_mel(f_min), hz_to_mel(f_max));
        let edges: Vec<f32> = (0..n_bands + 2)
            .map(|i| mel_to_hz(m0 + (m1 - m0) * i as f32 / (n_bands + 1) as f32))
            .collect();
        let bands = (0..n_bands)
            .map(|b| {
                let (lo, mid, hi) = (edges[b], edges[b + 1], edges[b + 2]);
                let first = ((lo / bin_hz).floor() as usize).min(bins - 1);
                let last = ((hi / bin_hz).ceil() as usize).min(bins - 1);
                let mut w: Vec<f32> = (first..=last)
                    .map(|k| {
                        let f = k as f32 * bin_hz;
                        if f <= lo || f >= hi {
                            0.0
                        } else if f <= mid {
                            (f - lo) / (mid - lo)
                        } else {
                            (hi - f) / (hi - mid)
                        }
                    })
                    .collect();
                // Narrow low bands can fall between bins: give them the nearest bin.
                if w.iter().all(|&x| x == 0.0) {
                    w = vec![0.0; last - first + 1];
                    let k = ((mid / bin_hz).round() as usize).clamp(first, last);
                    w[k - first] = 1.0;
                }
                let sum: f32 = w.iter().sum();
                w.iter_mut().for_each(|x| *x /= sum);
                (first, w)
            })
            .collect();
        MelBank { bands }
    }

    pub fn apply(&self, power: &[f32], out: &mut [f32]) {
        for (o, (first, w)) in out.iter_mut().zip(&self.bands) {
            *o = power[*first..*first + w.len()]
                .iter()
                .zip(w)
                .map(|(p, w)| p * w)
                .sum();
        }
    }
}

/// An orthonormal DCT-II matrix with `n_out` rows over `n_in` inputs (for MFCCs).
pub fn dct_matrix(n_out: usize, n_in: usize) -> Vec<Vec<f32>> {
    (0..n_out)
        .map(|k| {
            let scale = if k == 0 {
                (1.0 / n_in as f32).sqrt()
            } else {
                (2.0 / n_in as f32).sqrt()
            };
            (0..n_in)
                .map(|n| {
                    scale * (std::f32::consts::PI * k as f32 * (n as f32 + 0.5) / n_in as f32).cos()
                })
                .collect()
        })
        .collect()
}

/// Mean and (population) standard deviation of a slice, in f32 (0, 0 when empty).
pub fn mean_sd(x: &[f32]) -> (f32, f32) {
    if x.is_empty() {
        return (0.0, 0.0);
    }
    let n = x.len() as f32;
    let mean = x.iter().sum::<f32>() / n;
    let sd = (x.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / n).sqrt();
    (mean, sd)
}

/// Median of a small slice (copied into `scratch`).
pub fn median(values: &[f32], scratch: &mut Vec<f32>) -> f32 {
    scratch.clear();
    scratch.extend_from_slice(values);
    let mid = scratch.len() / 2;
    let (_, m, _) = scratch.select_nth_unstable_by(mid, |a, b| a.total_cmp(b));
    *m
}

/// Dot product of two vectors (over the shorter one's length).
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Cosine similarity of two vectors (0 when either is all zeros).
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let (mut ab, mut aa, mut bb) = (0.0f32, 0.0f32, 0.0f32);
    for (x, y) in a.iter().zip(b) {
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    if aa <= 0.0 || bb <= 0.0 {
        0.0
    } else {
        ab / (aa.sqrt() * bb.sqrt())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitter_emits_every_hop() {
        let mut s = FrameSplitter::new(4, 2);
        let mut frames = Vec::new();
        s.push(&[0.0, 1.0, 2.0], |f| frames.push(f.to_vec()));
        s.push(&[3.0, 4.0, 5.0, 6.0, 7.0], |f| frames.push(f.to_vec()));
        assert_eq!(
            frames,
            vec![
                vec![0.0, 1.0, 2.0, 3.0],
                vec![2.0, 3.0, 4.0, 5.0],
                vec![4.0, 5.0, 6.0, 7.0]
            ]
        );
    }

    #[test]
    fn spectrum_peaks_at_the_sine() {
        let mut ps = PowerSpectrum::new(1024);
        let frame: Vec<f32> = (0..1024)
            .map(|i| (2.0 * std::f32::consts::PI * 100.0 * i as f32 / 1024.0).sin())
            .collect();
        ps.compute(&frame);
        let peak = ps
            .power
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .unwrap()
            .0;
        assert_eq!(peak, 100);
    }

    #[test]
    fn running_stats() {
        let mut r = RunningStats::default();
        for x in [1.0, 2.0, 3.0, 4.0] {
            r.push(x);
        }
        assert!((r.mean() - 2.5).abs() < 1e-12);
        assert!((r.std() - 1.118033988).abs() < 1e-6);
    }
}
