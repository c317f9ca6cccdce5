//! Tonality: chroma (pitch-class energy) from spectral peaks, the key by correlation with
//! key profiles (on a second chroma where each peak also counts for the notes it may be a
//! harmonic of), and the harmonic statistics the raw feature vector keeps.

use crate::dsp::PowerSpectrum;
use crate::ANALYSIS_RATE;

/// Chroma STFT frame length (186 ms at 22.05 kHz: 5.4 Hz bins, enough to split semitones
/// down to about 90 Hz).
pub const FRAME: usize = 4096;
/// Chroma hop (93 ms).
pub const HOP: usize = 2048;
const F_MIN: f32 = 55.0;
const F_MAX: f32 = 5000.0;
const MAX_PEAKS: usize = 60;
/// For the key, a spectral peak also counts for the notes it may be a harmonic of: the
/// pitch classes of its frequency divided by 2..=KEY_HARMONICS, each weighted
/// KEY_HARMONIC_DECAY times the one before (Essentia's HPCP does the same). Chosen on
/// render-scores.py set seed 1 only (MIREX 0.808 -> 0.921 there; see docs/MEASUREMENTS.md
/// for the sets it was not chosen on).
const KEY_HARMONICS: usize = 6;
const KEY_HARMONIC_DECAY: f32 = 0.8;

/// Pitch-class names, sharps only, index 0 = C.
pub const PITCH_CLASSES: [&str; 12] = [
    "C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B",
];

/// The major and minor key profiles the chroma is correlated with: half the textbook
/// profiles ([`textbook_profiles`]) and half what pieces in those keys sound like through
/// this module's harmonic-summed chroma, each standardised (mean 0, SD 1) before they are
/// added. The textbook profiles come from listeners' ratings and note counts in scores;
/// what the key chroma hears adds the harmonics and the sustained notes, which the
/// textbook profiles read as a relative or dominant key. `LEARNED_*` is the mean key chroma
/// (unit sum, rotated to the tonic) of the 136 pieces of score set A
/// (`render-scores.py --seed 1 --scale 3`), and the learned share, 0.5, was chosen by
/// 5-fold cross-validation on set A alone (`eval/ears/key_profiles.py`; held-out figures
/// in docs/MEASUREMENTS.md).
fn profiles() -> ([f32; 12], [f32; 12]) {
    const LEARNED_SHARE: f32 = 0.5;
    const LEARNED_MAJOR: [f32; 12] = [
        0.164378, 0.024879, 0.117924, 0.027889, 0.119544, 0.097314, 0.035292, 0.158698, 0.032287,
        0.102975, 0.039382, 0.079438,
    ];
    const LEARNED_MINOR: [f32; 12] = [
        0.147444, 0.033494, 0.091806, 0.120597, 0.039694, 0.122514, 0.029678, 0.139619, 0.075533,
        0.044739, 0.111067, 0.043813,
    ];
    fn standardised(p: &[f32; 12]) -> [f32; 12] {
        let (mean, sd) = crate::dsp::mean_sd(p);
        p.map(|x| (x - mean) / sd)
    }
    fn mix(textbook: &[f32; 12], learned: &[f32; 12]) -> [f32; 12] {
        let (t, l) = (standardised(textbook), standardised(learned));
        std::array::from_fn(|i| (1.0 - LEARNED_SHARE) * t[i] + LEARNED_SHARE * l[i])
    }
    let (major, minor) = textbook_profiles();
    (mix(&major, &LEARNED_MAJOR), mix(&minor, &LEARNED_MINOR))
}

/// The textbook key profiles: the average of Krumhansl-Kessler's probe-tone ratings and
/// Temperley's Kostka-Payne corpus frequencies, each scaled to unit sum first.
fn textbook_profiles() -> ([f32; 12], [f32; 12]) {
    const KK_MAJOR: [f32; 12] = [
        6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88,
    ];
    const KK_MINOR: [f32; 12] = [
        6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17,
    ];
    const T_MAJOR: [f32; 12] = [
        0.748, 0.060, 0.488, 0.082, 0.670, 0.460, 0.096, 0.715, 0.104, 0.366, 0.057, 0.400,
    ];
    const T_MINOR: [f32; 12] = [
        0.712, 0.084, 0.474, 0.618, 0.049, 0.460, 0.105, 0.747, 0.404, 0.067, 0.133, 0.330,
    ];
    fn blend(a: &[f32; 12], b: &[f32; 12]) -> [f32; 12] {
        let (sa, sb): (f32, f32) = (a.iter().sum(), b.iter().sum());
        std::array::from_fn(|i| a[i] / sa + b[i] / sb)
    }
    (blend(&KK_MAJOR, &T_MAJOR), blend(&KK_MINOR, &T_MINOR))
}

fn pearson(a: &[f32; 12], b: &[f32; 12]) -> f32 {
    let ma = a.iter().sum::<f32>() / 12.0;
    let mb = b.iter().sum::<f32>() / 12.0;
    let (mut ab, mut aa, mut bb) = (0.0, 0.0, 0.0);
    for i in 0..12 {
        let (x, y) = (a[i] - ma, b[i] - mb);
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    if aa <= 0.0 || bb <= 0.0 {
        0.0
    } else {
        ab / (aa * bb).sqrt()
    }
}

/// The estimated key.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KeyEstimate {
    /// Tonic pitch class, 0 = C.
    pub tonic: usize,
    /// True for major, false for minor.
    pub major: bool,
    /// Correlation of the chroma with the winning key profile, clipped to 0..1.
    pub strength: f32,
}

/// Accumulates chroma frames for a whole track.
pub struct Chroma {
    spectrum: PowerSpectrum,
    bin_hz: f32,
    /// One unit-max chroma vector per chroma frame (all zero for silent frames).
    pub frames: Vec<[f32; 12]>,
    /// Sum over frames of the unit-max harmonic-summed chroma the key is read from.
    key_sum: [f32; 12],
    peaks: Vec<(f32, f32)>,
}

impl Default for Chroma {
    fn default() -> Self {
        Self::new()
    }
}

impl Chroma {
    pub fn new() -> Self {
        Chroma {
            spectrum: PowerSpectrum::new(FRAME),
            bin_hz: ANALYSIS_RATE as f32 / FRAME as f32,
            frames: Vec::new(),
            key_sum: [0.0; 12],
            peaks: Vec::with_capacity(512),
        }
    }

    /// Adds the chroma of one frame: spectral peaks (parabolically interpolated) between
    /// 55 Hz and 5 kHz, each adding its magnitude to its pitch class with a cos² weight
    /// over +/- half a semitone, so slightly detuned notes still count.
    pub fn frame(&mut self, frame: &[f32]) {
        self.spectrum.compute(frame);
        let p = &self.spectrum.power;
        let lo = (F_MIN / self.bin_hz).floor().max(1.0) as usize;
        let hi = ((F_MAX / self.bin_hz).ceil() as usize).min(p.len() - 2);
        let max = p[lo..=hi].iter().cloned().fold(0.0f32, f32::max);
        let mut chroma = [0.0f32; 12];
        if max > 1e-6 {
            self.peaks.clear();
            let floor = max * 1e-6;
            for k in lo..=hi {
                if p[k] > floor && p[k] > p[k - 1] && p[k] >= p[k + 1] {
                    let (a, b, c) = (p[k - 1].sqrt(), p[k].sqrt(), p[k + 1].sqrt());
                    let denom = a - 2.0 * b + c;
                    let delta = if denom.abs() > 1e-12 {
                        0.5 * (a - c) / denom
                    } else {
                        0.0
                    };
                    let mag = b - 0.25 * (a - c) * delta;
                    self.peaks.push(((k as f32 + delta) * self.bin_hz, mag));
                }
            }
            if self.peaks.len() > MAX_PEAKS {
                self.peaks
                    .select_nth_unstable_by(MAX_PEAKS, |x, y| y.1.total_cmp(&x.1));
                self.peaks.truncate(MAX_PEAKS);
            }
            let mut key_chroma = [0.0f32; 12];
            for &(freq, mag) in &self.peaks {
                let (pc, w) = pitch_class(freq);
                chroma[pc] += w * mag;
                key_chroma[pc] += w * mag;
                // Each peak also counts, less, for the notes it may be a harmonic of:
                // sustained timbres (organ, strings, brass) put much of a note's energy
                // in its 3rd harmonic, a fifth above, which otherwise pulls the key up
                // a fifth.
                let mut weight = 1.0;
                for h in 2..=KEY_HARMONICS {
                    weight *= KEY_HARMONIC_DECAY;
                    let (pc, w) = pitch_class(freq / h as f32);
                    key_chroma[pc] += weight * w * mag;
                }
            }
            for c in [&mut chroma, &mut key_chroma] {
                let m = c.iter().cloned().fold(0.0f32, f32::max);
                if m > 0.0 {
                    c.iter_mut().for_each(|x| *x /= m);
                }
            }
            for (s, k) in self.key_sum.iter_mut().zip(key_chroma) {
                *s += k;
            }
        }
        self.frames.push(chroma);
    }

    /// Mean chroma over the frames with sound, scaled to unit sum.
    pub fn mean(&self) -> [f32; 12] {
        let mut m = [0.0f32; 12];
        for f in &self.frames {
            for i in 0..12 {
                m[i] += f[i];
            }
        }
        let s: f32 = m.iter().sum();
        if s > 0.0 {
            m.iter_mut().for_each(|x| *x /= s);
        }
        m
    }

    /// The harmonic-summed chroma the key is read from, scaled to unit sum (the plain
    /// [`Chroma::mean`] when no frame had sound).
    pub fn key_chroma(&self) -> [f32; 12] {
        let s: f32 = self.key_sum.iter().sum();
        if s <= 0.0 {
            return self.mean();
        }
        self.key_sum.map(|x| x / s)
    }

    /// The key whose profile correlates best with the harmonic-summed chroma.
    pub fn key(&self) -> KeyEstimate {
        estimate_key(&self.key_chroma())
    }

    /// Mean normalised entropy of the chroma frames (0: one pitch class, 1: all equal).
    pub fn entropy(&self) -> f32 {
        let mut sum = 0.0;
        let mut n = 0;
        for f in &self.frames {
            let s: f32 = f.iter().sum();
            if s <= 0.0 {
                continue;
            }
            let h: f32 = f
                .iter()
                .filter(|&&x| x > 0.0)
                .map(|&x| {
                    let p = x / s;
                    -p * p.ln()
                })
                .sum();
            sum += h / 12f32.ln();
            n += 1;
        }
        if n == 0 {
            0.0
        } else {
            sum / n as f32
        }
    }
}

/// The pitch class of a frequency and its cos² weight over +/- half a semitone.
fn pitch_class(freq: f32) -> (usize, f32) {
    let semis = 12.0 * (freq / 440.0).log2() + 9.0; // 0 = C
    let nearest = semis.round();
    let w = (std::f32::consts::PI * (semis - nearest)).cos().powi(2);
    ((nearest as i64).rem_euclid(12) as usize, w)
}

/// Correlates a chroma vector with the 24 rotated key profiles.
pub fn estimate_key(chroma: &[f32; 12]) -> KeyEstimate {
    let (major, minor) = profiles();
    let mut best = KeyEstimate {
        tonic: 0,
        major: true,
        strength: f32::MIN,
    };
    for tonic in 0..12 {
        let rotated: [f32; 12] = std::array::from_fn(|i| chroma[(i + tonic) % 12]);
        for (profile, is_major) in [(&major, true), (&minor, false)] {
            let r = pearson(&rotated, profile);
            if r > best.strength {
                best = KeyEstimate {
                    tonic,
                    major: is_major,
                    strength: r,
                };
            }
        }
    }
    best.strength = best.strength.clamp(0.0, 1.0);
    best
}

/// The harmonic change between consecutive chroma frames: one minus their cosine (1 where
/// either is silent). Read by the metrical level and the metre, which look for its period.
pub(crate) fn harmonic_change(chroma: &[[f32; 12]]) -> Vec<f32> {
    chroma
        .windows(2)
        .map(|w| 1.0 - crate::dsp::cosine(&w[0], &w[1]))
        .collect()
}

/// The Camelot wheel code of a key (`8A` = A minor, `8B` = C major).
pub fn camelot(tonic: usize, major: bool) -> String {
    let major_tonic = if major { tonic } else { (tonic + 3) % 12 };
    let number = (major_tonic * 7 % 12 + 7) % 12 + 1;
    format!("{number}{}", if major { 'B' } else { 'A' })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn camelot_codes() {
        assert_eq!(camelot(0, true), "8B");
        assert_eq!(camelot(9, false), "8A");
        assert_eq!(camelot(7, true), "9B");
        assert_eq!(camelot(5, true), "7B");
        assert_eq!(camelot(4, false), "9A");
        assert_eq!(camelot(6, false), "11A");
        assert_eq!(camelot(11, true), "1B");
    }

    /// An organ-like note (a strong 3rd harmonic, a fifth above) counts for its own
    /// pitch class in the key chroma, where the plain chroma gives the fifth nearly as
    /// much.
    #[test]
    fn harmonics_count_for_their_fundamental_in_the_key_chroma() {
        let f0 = 130.81; // C3
        let amps = [1.0f32, 0.7, 1.0, 0.5, 0.6, 0.4];
        let rate = ANALYSIS_RATE as f32;
        let mut c = Chroma::new();
        for start in (0..8).map(|i| i * HOP) {
            let frame: Vec<f32> = (start..start + FRAME)
                .map(|n| {
                    let t = n as f32 / rate;
                    amps.iter()
                        .enumerate()
                        .map(|(h, a)| a * (std::f32::consts::TAU * f0 * (h + 1) as f32 * t).sin())
                        .sum()
                })
                .collect();
            c.frame(&frame);
        }
        let plain = c.mean();
        let (c_pc, g_pc) = (0, 7);
        let key_ratio = c.key_sum[g_pc] / c.key_sum[c_pc];
        let plain_ratio = plain[g_pc] / plain[c_pc];
        assert!(plain_ratio > 0.6, "plain chroma G/C {plain_ratio}");
        assert!(
            key_ratio < 0.8 * plain_ratio,
            "key chroma G/C {key_ratio} vs plain {plain_ratio}"
        );
        let max = c.key_sum.iter().cloned().fold(0.0f32, f32::max);
        assert_eq!(c.key_sum[c_pc], max);
    }

    /// The profiles are half learned, yet a chroma shaped like a textbook profile is still
    /// read as that profile's key, in every key.
    #[test]
    fn textbook_profiles_keep_their_keys() {
        let (major, minor) = textbook_profiles();
        for tonic in 0..12 {
            for (p, is_major) in [(&major, true), (&minor, false)] {
                let c: [f32; 12] = std::array::from_fn(|i| p[(i + 12 - tonic) % 12]);
                let k = estimate_key(&c);
                assert_eq!((k.tonic, k.major), (tonic, is_major));
                assert!(k.strength > 0.8, "{k:?}");
            }
        }
    }

    #[test]
    fn profile_itself_is_its_key() {
        let (major, minor) = profiles();
        for tonic in 0..12 {
            let c: [f32; 12] = std::array::from_fn(|i| major[(i + 12 - tonic) % 12]);
            let k = estimate_key(&c);
            assert_eq!((k.tonic, k.major), (tonic, true));
            let c: [f32; 12] = std::array::from_fn(|i| minor[(i + 12 - tonic) % 12]);
            let k = estimate_key(&c);
            assert_eq!((k.tonic, k.major), (tonic, false));
        }
    }
}
