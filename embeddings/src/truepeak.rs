//! True peak (ITU-R BS.1770-4 Annex 2): the highest level of the signal between its
//! samples, found by 4x oversampling with a windowed-sinc interpolator.
//!
//! Oversampling every sample of a 44.1 kHz stereo file costs more than all of Motif's
//! feature extraction, and only the loudest stretches can hold the true peak. So the
//! interpolator runs only where a sample is within 6 dB of the running sample peak: a
//! band-limited signal's inter-sample overshoot stays well under 6 dB outside pathological
//! test signals, so the result equals full oversampling on music (a test compares them).

/// Taps on each side of the interpolated point (12 per phase, as BS.1770's 48-tap filter).
const HALF: usize = 6;
/// Oversampling factor.
const OVERSAMPLE: usize = 4;
/// Samples within this factor of the running peak get oversampled (-6 dB).
const CHECK_RATIO: f32 = 0.5;

/// Streaming true-peak meter over interleaved blocks.
pub struct TruePeak {
    channels: usize,
    /// Per phase 1..OVERSAMPLE-1, the 2*HALF interpolation weights for x[m-HALF+1 ..= m+HALF].
    taps: Vec<[f32; 2 * HALF]>,
    /// Per channel: the last samples (history) followed by the current block.
    buf: Vec<Vec<f32>>,
    peak: f32,
}

impl TruePeak {
    pub fn new(channels: usize) -> Self {
        let taps = (1..OVERSAMPLE)
            .map(|p| {
                let frac = p as f32 / OVERSAMPLE as f32;
                std::array::from_fn(|i| {
                    // Offset of tap i from the interpolated point, in samples.
                    let x = frac - (i as f32 - (HALF as f32 - 1.0));
                    let sinc = if x.abs() < 1e-6 {
                        1.0
                    } else {
                        (std::f32::consts::PI * x).sin() / (std::f32::consts::PI * x)
                    };
                    // Hann window over +/- HALF samples.
                    let w = 0.5 + 0.5 * (std::f32::consts::PI * x / HALF as f32).cos();
                    sinc * w
                })
            })
            .collect();
        TruePeak {
            channels,
            taps,
            buf: vec![vec![0.0; 2 * HALF]; channels],
            peak: 0.0,
        }
    }

    /// Feeds interleaved samples.
    pub fn push(&mut self, interleaved: &[f32]) {
        for (c, buf) in self.buf.iter_mut().enumerate() {
            buf.extend(interleaved.iter().skip(c).step_by(self.channels));
        }
        self.scan(false);
    }

    /// Scans what is buffered; keeps the last 2*HALF samples as history unless flushing.
    fn scan(&mut self, flush: bool) {
        for buf in self.buf.iter_mut() {
            if flush {
                buf.extend(std::iter::repeat_n(0.0, HALF));
            }
            // Interpolate between m and m+1 for m in [HALF-1, len-HALF-1].
            let end = buf.len().saturating_sub(HALF);
            for m in HALF - 1..end {
                let (a, b) = (buf[m].abs(), buf[m + 1].abs());
                self.peak = self.peak.max(a);
                if a.max(b) < CHECK_RATIO * self.peak {
                    continue;
                }
                let window = &buf[m + 1 - HALF..m + 1 + HALF];
                for taps in &self.taps {
                    let y: f32 = window.iter().zip(taps).map(|(x, t)| x * t).sum();
                    self.peak = self.peak.max(y.abs());
                }
            }
            let keep = 2 * HALF;
            if buf.len() > keep {
                let cut = buf.len() - keep;
                buf.drain(..cut);
            }
        }
    }

    /// The true peak as a linear amplitude (1.0 = full scale).
    pub fn finish(&mut self) -> f32 {
        self.scan(true);
        self.peak
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_inter_sample_peak_of_a_quarter_rate_sine() {
        // A sine at fs/4 sampled 45 degrees off its peaks: samples read 0.707, truth 1.0.
        let x: Vec<f32> = (0..4000)
            .map(|n| (std::f32::consts::FRAC_PI_2 * n as f32 + std::f32::consts::FRAC_PI_4).sin())
            .collect();
        let mut tp = TruePeak::new(1);
        for b in x.chunks(333) {
            tp.push(b);
        }
        let p = tp.finish();
        assert!((p - 1.0).abs() < 0.02, "true peak {p}");
    }

    #[test]
    fn matches_ebur128_on_a_mixture() {
        let rate = 44100.0;
        let x: Vec<f32> = (0..44100 * 2)
            .flat_map(|n| {
                let t = n as f32 / rate;
                let l = 0.5 * (2.0 * std::f32::consts::PI * 997.0 * t).sin()
                    + 0.4 * (2.0 * std::f32::consts::PI * 11025.3 * t + 0.3).sin();
                let r = 0.8 * (2.0 * std::f32::consts::PI * 15000.0 * t).sin();
                [l, r]
            })
            .collect();
        let mut tp = TruePeak::new(2);
        for b in x.chunks(1000) {
            tp.push(b);
        }
        let ours = 20.0 * tp.finish().log10();
        let mut m = ebur128::EbuR128::new(2, 44100, ebur128::Mode::TRUE_PEAK).unwrap();
        m.add_frames_f32(&x).unwrap();
        let theirs = 20.0 * m.true_peak(0).unwrap().max(m.true_peak(1).unwrap()).log10() as f32;
        assert!(
            (ours - theirs).abs() < 0.2,
            "ours {ours} dB, ebur128 {theirs} dB"
        );
    }
}
