//! Metre: how many beats make a bar (2, 3 or 4) and whether each beat divides in three
//! (6/8-style compound time), as felt.
//!
//! A bar shows in audio as periodicity at a multiple of the beat: the onsets, the bass and
//! above all the harmony repeat or change every 2, 3 or 4 beats (or every 1.5 or 3 for a
//! compound bar counted in quarter notes). Compound time also shows inside the beat:
//! onsets fall on its thirds rather than its half. A hand-set rule over such measures
//! (analyser 0.3.0 to 0.6.0) did no better than always answering 4 on scores it was not
//! tuned on, so the measures are weighed by a multinomial logistic model fitted on
//! rendered scores (`eval/ears/fit.py`), like the metrical level's ([`crate::level`]).

use serde::{Deserialize, Serialize};

use crate::level::Evidence;
use crate::rhythm::{at, mean_acf, FPS};

mod weights;

/// The classes the model tells apart, in the order of its weights.
const CLASSES: [Metre; 6] = [
    Metre::simple(2),
    Metre::simple(3),
    Metre::simple(4),
    Metre::compound(2),
    Metre::compound(3),
    Metre::compound(4),
];
/// Multiples of the beat period at which periodicity marks a bar.
const BAR_LAGS: [f32; 6] = [1.5, 2.0, 3.0, 4.0, 6.0, 8.0];
/// Fractions of the beat read next to them (subdivision in two or three).
const BEAT_FRACTIONS: [f32; 2] = [0.5, 1.0 / 3.0];
/// Points sampled inside each beat for the within-beat onset pattern.
const POINTS: usize = 12;
/// Chroma frames per second.
const CHROMA_FPS: f32 = crate::ANALYSIS_RATE as f32 / crate::tonal::HOP as f32;
/// The harmony's periodicity is read over windows this long (s): a bar of 8 beats at 60
/// BPM is 8 s, and a window shows lags up to half its length.
const HARMONY_WINDOW_S: f32 = 24.0;
/// Measures the model reads (see [`measures`]).
pub(crate) const FEATURES: usize = 1 + 2 * (BAR_LAGS.len() + 2) + BAR_LAGS.len() + 5;
/// Fewer beats than this say nothing about bars.
const MIN_BEATS: f32 = 12.0;

/// Beats per bar and how each beat divides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metre {
    /// 2, 3 or 4.
    pub beats_per_bar: u8,
    /// Each beat divides in three (6/8, 9/8, 12/8).
    pub compound: bool,
}

impl Metre {
    const fn simple(beats_per_bar: u8) -> Metre {
        Metre {
            beats_per_bar,
            compound: false,
        }
    }

    const fn compound(beats_per_bar: u8) -> Metre {
        Metre {
            beats_per_bar,
            compound: true,
        }
    }

    /// The tag value: `2`, `3`, `4`.
    pub fn name(&self) -> String {
        self.beats_per_bar.to_string()
    }
}

/// Estimates the metre of music whose beat is `bpm`, from the evidence the level was
/// chosen on and the chroma frames. `None` when the track holds under [`MIN_BEATS`] beats.
pub fn estimate(evidence: &Evidence<'_>, bpm: f32) -> Option<Metre> {
    let beats = evidence.full_novelty.len() as f32 / FPS * bpm / 60.0;
    if bpm.is_nan() || bpm <= 0.0 || beats < MIN_BEATS {
        return None;
    }
    let x = measures(evidence, bpm);
    let z: Vec<f32> = (0..FEATURES)
        .map(|i| (x[i] - weights::MEAN[i]) / weights::SD[i])
        .collect();
    CLASSES
        .iter()
        .enumerate()
        .map(|(c, metre)| {
            let row = &weights::COEF[c * FEATURES..(c + 1) * FEATURES];
            let score = weights::INTERCEPT[c] + row.iter().zip(&z).map(|(w, v)| w * v).sum::<f32>();
            (*metre, score)
        })
        .fold(None, |best: Option<(Metre, f32)>, c| match best {
            Some(b) if b.1 >= c.1 => Some(b),
            _ => Some(c),
        })
        .map(|(m, _)| m)
}

/// The measures of a beat of `bpm`: the tempo, the full-band and bass periodicity at bar
/// lengths and beat fractions, the harmony's periodicity at bar lengths, and the onsets
/// on the thirds and the half of a beat and of a dotted beat.
fn measures(e: &Evidence<'_>, bpm: f32) -> [f32; FEATURES] {
    let period = 60.0 * FPS / bpm;
    let chroma_period = 60.0 * CHROMA_FPS / bpm;
    let harmony = mean_acf(&e.harmonic_change, (HARMONY_WINDOW_S * CHROMA_FPS) as usize);
    let lags = || BAR_LAGS.iter().chain(&BEAT_FRACTIONS);
    let beat = within(e.full_novelty, period);
    let dotted = within(e.full_novelty, 1.5 * period);
    let mut m = vec![(bpm / 120.0).log2()];
    m.extend(lags().map(|k| at(&e.full, k * period)));
    m.extend(lags().map(|k| at(&e.bass, k * period)));
    m.extend(BAR_LAGS.iter().map(|k| at(&harmony, k * chroma_period)));
    m.extend([
        beat[4] + beat[8],
        beat[6],
        beat[3] + beat[9],
        dotted[4] + dotted[8],
        dotted[6],
    ]);
    std::array::from_fn(|i| m[i])
}

/// The novelty at [`POINTS`] evenly spaced points of each `period`-long cell, the cells
/// starting at the phase whose grid collects the most novelty; averaged over the cells and
/// scaled to a maximum of 1.
fn within(novelty: &[f32], period: f32) -> [f32; POINTS] {
    let n = novelty.len();
    let mut best = (f32::MIN, 0.0f32);
    let mut phase = 0.0f32;
    while phase < period {
        let (mut sum, mut count) = (0.0f32, 0usize);
        let mut t = phase;
        while (t.round() as usize) < n {
            sum += novelty[t.round() as usize];
            count += 1;
            t += period;
        }
        let mean = if count > 0 { sum / count as f32 } else { 0.0 };
        if mean > best.0 {
            best = (mean, phase);
        }
        phase += 1.0;
    }
    let mut cells = [0.0f32; POINTS];
    let mut count = 0usize;
    let mut t = best.1;
    while t + period < n as f32 {
        for (k, c) in cells.iter_mut().enumerate() {
            *c += novelty[(t + k as f32 * period / POINTS as f32) as usize];
        }
        count += 1;
        t += period;
    }
    let max = cells.iter().copied().fold(0.0f32, f32::max) / count.max(1) as f32;
    cells.map(|c| c / count.max(1) as f32 / (max + 1e-9))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_weights_fit_the_measures() {
        assert_eq!(weights::MEAN.len(), FEATURES);
        assert_eq!(weights::SD.len(), FEATURES);
        assert_eq!(weights::COEF.len(), FEATURES * CLASSES.len());
        assert_eq!(weights::INTERCEPT.len(), CLASSES.len());
    }

    #[test]
    fn too_few_beats_say_nothing() {
        let nov = vec![0.5f32; (5.0 * FPS) as usize];
        let e = Evidence::new(&nov, &nov, vec![1.0; 10], vec![1.0; 10], &[1.0; 10], &[]);
        assert!(estimate(&e, 120.0).is_none());
        assert!(estimate(&e, 0.0).is_none());
    }

    #[test]
    fn a_beat_in_three_shows_on_its_thirds() {
        let period = 40.0;
        let nov: Vec<f32> = (0..4000)
            .map(|t| match t % 40 {
                0 => 1.0,
                13 | 26 => 0.6,
                _ => 0.0,
            })
            .collect();
        let w = within(&nov, period);
        assert!(w[4] > 0.5 && w[8] > 0.5 && w[6] < 0.1, "{w:?}");
        assert_eq!(w[0], 1.0);
    }
}
