//! Loudness after ITU-R BS.1770-4 / EBU R128: integrated loudness (gated), loudness range
//! (EBU Tech 3342) and true peak ([`crate::truepeak`]), on the file's own channels and
//! sample rate, before any downmix.
//!
//! Why not the `ebur128` crate on the hot path: it re-sums every 400 ms block and every
//! 3 s block sample by sample in f64, which cost more than all of Motif's feature
//! extraction (44.1 kHz stereo). This meter keeps one energy per 100 ms sub-block and
//! builds the gating blocks from those, which is exact for the 100 ms step both
//! standards use. A test checks it against `ebur128` on every fixture.

use crate::truepeak::TruePeak;

/// Floor reported for silent or unmeasurable audio, in LUFS / dBTP.
pub const FLOOR_DB: f32 = -70.0;
const ABSOLUTE_GATE_LUFS: f64 = -70.0;

/// What the meter measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoudnessResult {
    pub integrated_lufs: f32,
    pub range_lu: f32,
    pub true_peak_dbtp: f32,
}

/// A biquad section, transposed direct form II, in f64 (the 38 Hz high-pass has poles
/// close to the unit circle).
#[derive(Clone)]
struct Biquad {
    b: [f64; 3],
    a: [f64; 2],
    z: [f64; 2],
}

impl Biquad {
    #[inline]
    fn run(&mut self, x: f64) -> f64 {
        let y = self.b[0] * x + self.z[0];
        self.z[0] = self.b[1] * x - self.a[0] * y + self.z[1];
        self.z[1] = self.b[2] * x - self.a[1] * y;
        y
    }
}

/// The K-weighting pre-filter (high-shelf + high-pass), for any sample rate, with the
/// analogue prototype parameters used by libebur128.
fn k_weighting(rate: f64) -> [Biquad; 2] {
    let (f0, g, q) = (1681.974450955533, 3.999843853973347, 0.7071752369554196);
    let k = (std::f64::consts::PI * f0 / rate).tan();
    let vh = 10f64.powf(g / 20.0);
    let vb = vh.powf(0.4996667741545416);
    let a0 = 1.0 + k / q + k * k;
    let shelf = Biquad {
        b: [
            (vh + vb * k / q + k * k) / a0,
            2.0 * (k * k - vh) / a0,
            (vh - vb * k / q + k * k) / a0,
        ],
        a: [2.0 * (k * k - 1.0) / a0, (1.0 - k / q + k * k) / a0],
        z: [0.0; 2],
    };
    let (f0, q) = (38.13547087602444, 0.5003270373238773);
    let k = (std::f64::consts::PI * f0 / rate).tan();
    let a0 = 1.0 + k / q + k * k;
    let highpass = Biquad {
        b: [1.0, -2.0, 1.0],
        a: [2.0 * (k * k - 1.0) / a0, (1.0 - k / q + k * k) / a0],
        z: [0.0; 2],
    };
    [shelf, highpass]
}

/// BS.1770 channel weights in the default order (L, R, C, LFE, Ls, Rs; further channels
/// not counted), as `ebur128`'s default channel map.
fn channel_weights(channels: usize) -> Vec<f64> {
    match channels {
        4 => vec![1.0, 1.0, 1.41, 1.41],
        5 => vec![1.0, 1.0, 1.0, 1.41, 1.41],
        n => (0..n)
            .map(|c| match c {
                0..=2 => 1.0,
                4 | 5 => 1.41,
                _ => 0.0,
            })
            .collect(),
    }
}

/// The loudness meter for one track.
pub struct Loudness {
    channels: usize,
    weights: Vec<f64>,
    filters: Vec<[Biquad; 2]>,
    sub_len: usize,
    sub_pos: usize,
    sub_acc: f64,
    /// Weighted mean-square energy of each complete 100 ms sub-block.
    subblocks: Vec<f64>,
    peak: TruePeak,
}

fn energy_to_lufs(e: f64) -> f64 {
    -0.691 + 10.0 * e.log10()
}

fn lufs_to_energy(l: f64) -> f64 {
    10f64.powf((l + 0.691) / 10.0)
}

impl Loudness {
    pub fn new(channels: usize, rate: u32) -> Self {
        Loudness {
            channels,
            weights: channel_weights(channels),
            filters: vec![k_weighting(rate as f64); channels],
            sub_len: ((rate as f64 / 10.0).round() as usize).max(1),
            sub_pos: 0,
            sub_acc: 0.0,
            subblocks: Vec::new(),
            peak: TruePeak::new(channels),
        }
    }

    /// Feeds interleaved samples.
    pub fn push(&mut self, interleaved: &[f32]) {
        self.peak.push(interleaved);
        for frame in interleaved.chunks_exact(self.channels) {
            let mut e = 0.0;
            for ((x, f), w) in frame.iter().zip(self.filters.iter_mut()).zip(&self.weights) {
                let shelved = f[0].run(*x as f64);
                let y = f[1].run(shelved);
                e += w * y * y;
            }
            self.sub_acc += e;
            self.sub_pos += 1;
            if self.sub_pos == self.sub_len {
                self.subblocks.push(self.sub_acc / self.sub_len as f64);
                // Flush denormals that the filters' decaying state could leave behind.
                for f in self.filters.iter_mut().flat_map(|f| f.iter_mut()) {
                    for z in f.z.iter_mut() {
                        if z.abs() < 1e-30 {
                            *z = 0.0;
                        }
                    }
                }
                self.sub_pos = 0;
                self.sub_acc = 0.0;
            }
        }
    }

    /// Mean energies of windows of `len` sub-blocks ending every `step` sub-blocks.
    fn blocks(&self, len: usize, first_end: usize, step: usize) -> Vec<f64> {
        let s = &self.subblocks;
        (first_end..=s.len())
            .step_by(step)
            .map(|end| s[end - len..end].iter().sum::<f64>() / len as f64)
            .collect()
    }

    pub fn finish(&mut self) -> LoudnessResult {
        let peak = self.peak.finish() as f64;
        let true_peak_dbtp = if peak > 0.0 {
            ((20.0 * peak.log10()) as f32).max(FLOOR_DB)
        } else {
            FLOOR_DB
        };
        let abs_gate = lufs_to_energy(ABSOLUTE_GATE_LUFS);

        // Integrated: 400 ms blocks every 100 ms, absolute then relative (-10 LU) gate.
        let momentary: Vec<f64> = self
            .blocks(4, 4, 1)
            .into_iter()
            .filter(|&e| e >= abs_gate)
            .collect();
        let integrated = if momentary.is_empty() {
            FLOOR_DB
        } else {
            let rel_gate = momentary.iter().sum::<f64>() / momentary.len() as f64 * 0.1;
            let gated: Vec<f64> = momentary.into_iter().filter(|&e| e >= rel_gate).collect();
            let mean = gated.iter().sum::<f64>() / gated.len().max(1) as f64;
            (energy_to_lufs(mean) as f32).max(FLOOR_DB)
        };

        // Range: 3 s blocks every second, absolute gate, relative gate -20 LU, then the
        // spread between the 10th and 95th percentiles.
        let mut short: Vec<f64> = self
            .blocks(30, 30, 10)
            .into_iter()
            .filter(|&e| e >= abs_gate)
            .collect();
        short.sort_by(f64::total_cmp);
        let range_lu = if short.is_empty() {
            0.0
        } else {
            let rel_gate = short.iter().sum::<f64>() / short.len() as f64 * 0.01;
            let kept = &short[short.partition_point(|&e| e < rel_gate)..];
            match kept.len().checked_sub(1) {
                Some(last) => {
                    let hi = kept[(last as f64 * 0.95 + 0.5) as usize];
                    let lo = kept[(last as f64 * 0.1 + 0.5) as usize];
                    (energy_to_lufs(hi) - energy_to_lufs(lo)) as f32
                }
                None => 0.0,
            }
        };
        LoudnessResult {
            integrated_lufs: integrated,
            range_lu,
            true_peak_dbtp,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 20 s test signal: stereo tones with a loudness step half-way, plus noise.
    fn signal(rate: u32, channels: usize) -> Vec<f32> {
        let mut x = 1u32;
        (0..rate as usize * 20)
            .flat_map(|n| {
                let t = n as f32 / rate as f32;
                let gain = if t < 10.0 { 0.1 } else { 0.5 };
                (0..channels)
                    .map(|c| {
                        x = x.wrapping_mul(1664525).wrapping_add(1013904223);
                        let noise = (x >> 9) as f32 / 8388608.0 - 1.0;
                        gain * ((2.0 * std::f32::consts::PI * (220.0 * (c + 1) as f32) * t).sin()
                            * 0.7
                            + 0.1 * noise)
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    #[test]
    fn agrees_with_ebur128() {
        for (rate, channels) in [(44100u32, 2usize), (22050, 1), (48000, 6), (8000, 8)] {
            let x = signal(rate, channels);
            let mut ours = Loudness::new(channels, rate);
            for b in x.chunks(4096 * channels) {
                ours.push(b);
            }
            let r = ours.finish();
            let mut m =
                ebur128::EbuR128::new(channels as u32, rate, ebur128::Mode::I | ebur128::Mode::LRA)
                    .unwrap();
            m.add_frames_f32(&x).unwrap();
            let (i, lra) = (
                m.loudness_global().unwrap() as f32,
                m.loudness_range().unwrap() as f32,
            );
            assert!(
                (r.integrated_lufs - i).abs() < 0.05,
                "{rate} Hz x{channels}: I {} vs {i}",
                r.integrated_lufs
            );
            assert!(
                (r.range_lu - lra).abs() < 0.1,
                "{rate} Hz x{channels}: LRA {} vs {lra}",
                r.range_lu
            );
        }
    }

    #[test]
    fn silence_reads_the_floor() {
        let mut m = Loudness::new(2, 44100);
        m.push(&vec![0.0; 44100 * 2 * 5]);
        let r = m.finish();
        assert_eq!(r.integrated_lufs, FLOOR_DB);
        assert_eq!(r.range_lu, 0.0);
        assert_eq!(r.true_peak_dbtp, FLOOR_DB);
    }
}
