//! The metrical level: of the tempi simply related to the strongest periodicity (1/4x to
//! 4x), which one is the beat a score writes as its quarter note.
//!
//! The periodicity alone cannot say: a piece in eighth notes at 80 BPM repeats at 80, 160
//! and 40 BPM alike, and a hand-set prior (session 7's log-normal around 120 BPM) fits one
//! generator of test music and misses on the next. So the choice is learned: each
//! candidate tempo gets a few measures of how the music moves at that period (how
//! periodic the full band and the bass are at fractions and multiples of it, how many
//! onsets fall in one beat, how periodic the harmony's changes are), and a logistic model
//! fitted on rendered scores (`eval/ears/fit.py`, score sets never used to report a
//! figure) scores them; the best-scoring candidate wins.

use crate::rhythm::{at, comb, local_peak, FPS, MAX_BPM, MIN_BPM, RELATED_RATIOS};
use crate::tonal;

mod weights;

/// Fractions and multiples of a candidate's period at which the full-band and the bass
/// periodicity are read.
const LAGS: [f32; 8] = [0.5, 1.0 / 3.0, 2.0 / 3.0, 1.0, 1.5, 2.0, 3.0, 4.0];
/// Chroma frames per second.
const CHROMA_FPS: f32 = crate::ANALYSIS_RATE as f32 / tonal::HOP as f32;
/// Measures per candidate before the relative ones (see [`measures`]).
pub(crate) const BASE: usize = 2 + 2 * LAGS.len() + 4 + 3;
/// All measures: the base ones, then each but the two tempo terms relative to the best
/// candidate's.
pub(crate) const FEATURES: usize = BASE + (BASE - 2);

/// What the level (and the metre) is chosen from, measured once per track.
pub struct Evidence<'a> {
    /// The full-band onset novelty itself.
    pub full_novelty: &'a [f32],
    /// Mean windowed autocorrelation of the full-band novelty, of the bass novelty, and of
    /// both mixed (the one the tempo was found on).
    pub full: Vec<f32>,
    pub bass: Vec<f32>,
    pub mixed: &'a [f32],
    /// Onset peaks per second in the full-band and bass novelty.
    pub onset_rate: f32,
    pub bass_onset_rate: f32,
    /// The harmonic change between consecutive chroma frames
    /// ([`tonal::harmonic_change`]), and its mean windowed autocorrelation after
    /// removing its local mean ([`harmony_acf`]).
    pub harmonic_change: Vec<f32>,
    pub harmony: Vec<f32>,
}

impl<'a> Evidence<'a> {
    /// Gathers the evidence from the novelty curves, their mean autocorrelations and the
    /// chroma frames.
    pub fn new(
        full_novelty: &'a [f32],
        bass_novelty: &[f32],
        full: Vec<f32>,
        bass: Vec<f32>,
        mixed: &'a [f32],
        chroma: &[[f32; 12]],
    ) -> Evidence<'a> {
        let harmonic_change = tonal::harmonic_change(chroma);
        Evidence {
            full_novelty,
            onset_rate: peak_rate(full_novelty),
            bass_onset_rate: peak_rate(bass_novelty),
            full,
            bass,
            mixed,
            harmony: harmony_acf(&harmonic_change),
            harmonic_change,
        }
    }
}

/// The chosen tempo: the best-scoring candidate related to `strongest` (BPM).
pub fn choose(evidence: &Evidence<'_>, strongest: f32) -> f32 {
    let candidates: Vec<f32> = RELATED_RATIOS
        .iter()
        .map(|r| strongest * r)
        .filter(|b| (MIN_BPM..=MAX_BPM).contains(b))
        .map(|b| refine(evidence.mixed, b))
        .collect();
    let base: Vec<[f32; BASE]> = candidates.iter().map(|&b| measures(evidence, b)).collect();
    let mut best_of = [f32::MIN; BASE];
    for m in &base {
        for (x, v) in best_of.iter_mut().zip(m) {
            *x = x.max(*v);
        }
    }
    let score = |m: &[f32; BASE]| -> f32 {
        let mut features = [0.0f32; FEATURES];
        features[..BASE].copy_from_slice(m);
        for i in 2..BASE {
            features[BASE + i - 2] = m[i] - best_of[i];
        }
        features
            .iter()
            .enumerate()
            .map(|(i, x)| (x - weights::MEAN[i]) / weights::SD[i] * weights::COEF[i])
            .sum()
    };
    candidates
        .iter()
        .zip(&base)
        .map(|(&b, m)| (b, score(m)))
        .fold((strongest, f32::MIN), |a, c| if c.1 > a.1 { c } else { a })
        .0
}

/// The tempo within 3 % of `bpm` whose pulse train is strongest.
fn refine(acf: &[f32], bpm: f32) -> f32 {
    local_peak(bpm, 1.03, 1.002, |b| comb(acf, 60.0 * FPS / b))
}

/// The base measures of one candidate tempo.
fn measures(e: &Evidence<'_>, bpm: f32) -> [f32; BASE] {
    let period = 60.0 * FPS / bpm;
    let tempo = (bpm / 120.0).log2();
    let per_beat = |rate: f32| (rate.max(0.05) * 60.0 / bpm).log2();
    let (onsets, bass_onsets) = (per_beat(e.onset_rate), per_beat(e.bass_onset_rate));
    let chroma_period = 60.0 * CHROMA_FPS / bpm;
    let mut m = Vec::with_capacity(BASE);
    m.extend([tempo, tempo * tempo]);
    m.extend(LAGS.iter().map(|k| at(&e.full, k * period)));
    m.extend(LAGS.iter().map(|k| at(&e.bass, k * period)));
    m.extend([
        onsets,
        onsets * onsets,
        bass_onsets,
        bass_onsets * bass_onsets,
    ]);
    m.extend([1.0, 2.0, 0.5].map(|k| at(&e.harmony, k * chroma_period)));
    std::array::from_fn(|i| m[i])
}

/// Local maxima above the mean plus one standard deviation, per second.
fn peak_rate(novelty: &[f32]) -> f32 {
    if novelty.len() < 3 {
        return 0.0;
    }
    let (mean, sd) = crate::dsp::mean_sd(novelty);
    let threshold = mean + sd;
    let peaks = novelty
        .windows(3)
        .filter(|w| w[1] > w[0] && w[1] >= w[2] && w[1] > threshold)
        .count();
    peaks as f32 / (novelty.len() as f32 / FPS)
}

/// The mean windowed autocorrelation of the harmonic change less its local mean (11
/// frames, about 1 s), positive part.
fn harmony_acf(change: &[f32]) -> Vec<f32> {
    if change.len() < 2 {
        return Vec::new();
    }
    let n = change.len();
    let local: Vec<f32> = (0..n)
        .map(|i| {
            let (a, b) = (i.saturating_sub(5), (i + 6).min(n));
            let mean = change[a..b].iter().sum::<f32>() / 11.0;
            (change[i] - mean).max(0.0)
        })
        .collect();
    let window = (12.0 * CHROMA_FPS) as usize;
    crate::rhythm::mean_acf(&local, window)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_weights_fit_the_measures() {
        assert_eq!(weights::MEAN.len(), FEATURES);
        assert_eq!(weights::SD.len(), FEATURES);
        assert_eq!(weights::COEF.len(), FEATURES);
        assert!(weights::SD.iter().all(|s| *s > 0.0));
    }

    #[test]
    fn the_choice_is_one_of_the_related_tempi() {
        // A click every 0.5 s with softer eighths between: 120 BPM and its relatives.
        let mut nov = vec![0.0f32; (30.0 * FPS) as usize];
        let period = 0.5 * FPS;
        let mut t = 0.0;
        while (t as usize) < nov.len() {
            nov[t as usize] = 1.0;
            if ((t + period / 2.0) as usize) < nov.len() {
                nov[(t + period / 2.0) as usize] = 0.4;
            }
            t += period;
        }
        let window = (12.0 * FPS) as usize;
        let acf = crate::rhythm::mean_acf(&nov, window);
        let e = Evidence::new(&nov, &nov, acf.clone(), acf.clone(), &acf, &[]);
        let got = choose(&e, 120.0);
        assert!(
            RELATED_RATIOS
                .iter()
                .any(|r| (got / (120.0 * r) - 1.0).abs() < 0.04),
            "{got}"
        );
    }
}
