//! Metre: how many beats make a bar (2, 3 or 4) and whether each beat divides in three
//! (6/8-style compound time), read from the tracked beats.
//!
//! Three things mark a downbeat in audio: it is louder (accent), the bass plays on it, and
//! the harmony changes there. Each beat gets those three measures, standardised and
//! summed; for a bar of `m` beats, the bar's phase whose beats stand out most from the
//! others gives the contrast `c_m`. Bars also repeat: the onset pattern inside a beat
//! (12 points per beat) correlates best with the pattern `m` beats later, giving `s_m`.
//! Triple time wins when both say 3 more than 2 or 4; between 2 and 4, the contrast
//! decides. Compound time: the onsets inside a beat fall on its thirds more than on its
//! half. Constants were chosen on score set A only (docs/MEASUREMENTS.md).

use serde::{Deserialize, Serialize};

use crate::dsp::{cosine, mean_sd};

/// Onset frames per chroma frame ([`crate::tonal::HOP`] / [`crate::timbre::HOP`]).
const ONSET_PER_CHROMA: usize = crate::tonal::HOP / crate::timbre::HOP;
/// Half-width (onset frames, ~35 ms) of the window an accent is read from.
const ACCENT_HALF_WIDTH: usize = 3;
/// Points sampled inside each beat for the within-beat onset pattern.
const SUBDIVISION_POINTS: usize = 12;
/// Weight of the bar-repetition measure next to the downbeat contrast.
const REPEAT_WEIGHT: f32 = 3.0;
/// Triple time needs its combined evidence over 2 and 4 to exceed this.
const TRIPLE_MARGIN: f32 = 0.3;
/// Four beats to the bar unless two beats' contrast beats it by this much.
const DUPLE_MARGIN: f32 = 1.0;
/// Compound when onsets on the beat's thirds reach this share of those on its half.
const COMPOUND_RATIO: f32 = 1.8;
/// Fewer tracked beats than this say nothing about bars.
const MIN_BEATS: usize = 12;

/// Beats per bar and how each beat divides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metre {
    /// 2, 3 or 4.
    pub beats_per_bar: u8,
    /// Each beat divides in three (6/8, 9/8, 12/8).
    pub compound: bool,
}

impl Metre {
    /// The tag value: `2`, `3`, `4`.
    pub fn name(&self) -> String {
        self.beats_per_bar.to_string()
    }
}

/// Estimates the metre from beat positions (onset frames), the full-band and bass novelty
/// (onset frames) and the chroma frames. `None` with too few beats.
pub fn estimate(
    beats: &[usize],
    novelty: &[f32],
    bass: &[f32],
    chroma: &[[f32; 12]],
) -> Option<Metre> {
    if beats.len() < MIN_BEATS || novelty.is_empty() {
        return None;
    }
    let accent = |x: &[f32], b: usize| {
        let (lo, hi) = (
            b.saturating_sub(ACCENT_HALF_WIDTH),
            (b + ACCENT_HALF_WIDTH + 1).min(x.len()),
        );
        x.get(lo..hi)
            .map(|w| w.iter().copied().fold(0.0f32, f32::max))
            .unwrap_or(0.0)
    };
    let loud: Vec<f32> = beats.iter().map(|&b| accent(novelty, b)).collect();
    let low: Vec<f32> = beats.iter().map(|&b| accent(bass, b)).collect();
    let change = harmonic_change(beats, chroma);
    let (za, zb, zc) = (standard(&loud), standard(&low), standard(&change));
    let per_beat: Vec<f32> = (0..beats.len()).map(|i| za[i] + zb[i] + zc[i]).collect();
    let contrast = [2, 3, 4].map(|m| downbeat_contrast(&per_beat, m));
    let pattern = within_beat_pattern(beats, novelty);
    let mean: [f32; SUBDIVISION_POINTS] = std::array::from_fn(|k| {
        pattern.iter().map(|p| p[k]).sum::<f32>() / pattern.len().max(1) as f32
    });
    let repeat = [2, 3, 4].map(|m| lag_similarity(&pattern, &mean, m));
    let triple = (contrast[1] - contrast[0].max(contrast[2]))
        + REPEAT_WEIGHT * (repeat[1] - repeat[0].max(repeat[2]));
    let beats_per_bar = if triple > TRIPLE_MARGIN {
        3
    } else if contrast[0] > contrast[2] + DUPLE_MARGIN {
        2
    } else {
        4
    };
    let half = mean[SUBDIVISION_POINTS / 2];
    let thirds = (mean[SUBDIVISION_POINTS / 3] + mean[2 * SUBDIVISION_POINTS / 3]) / 2.0;
    let thirds_over_half = if half > 0.0 {
        thirds / half
    } else if thirds > 0.0 {
        f32::INFINITY
    } else {
        0.0
    };
    Some(Metre {
        beats_per_bar,
        compound: thirds_over_half >= COMPOUND_RATIO,
    })
}

/// Cosine distance between the mean chroma of the beat before and of the beat starting
/// at each beat (0 for the first).
fn harmonic_change(beats: &[usize], chroma: &[[f32; 12]]) -> Vec<f32> {
    if chroma.is_empty() {
        return vec![0.0; beats.len()];
    }
    // Chroma frame k is centred one onset hop-group later than onset frame k * 8.
    let frame = |b: usize| {
        (b.saturating_sub(ONSET_PER_CHROMA) as f32 / ONSET_PER_CHROMA as f32).round() as usize
    };
    let segment = |i: usize| -> [f32; 12] {
        let a = frame(beats[i]).min(chroma.len() - 1);
        let b = frame(beats[i + 1]).clamp(a + 1, chroma.len());
        let mut m = [0.0f32; 12];
        for c in &chroma[a..b] {
            m.iter_mut().zip(c).for_each(|(x, y)| *x += y);
        }
        m
    };
    let segments: Vec<[f32; 12]> = (0..beats.len() - 1).map(segment).collect();
    let mut out = vec![0.0; beats.len()];
    let sounding = |s: &[f32; 12]| s.iter().any(|&x| x > 0.0);
    for i in 1..segments.len() {
        if sounding(&segments[i - 1]) && sounding(&segments[i]) {
            out[i] = 1.0 - cosine(&segments[i - 1], &segments[i]);
        }
    }
    out
}

/// Zero mean, unit variance (all zeros when constant).
fn standard(x: &[f32]) -> Vec<f32> {
    let (mean, sd) = mean_sd(x);
    x.iter()
        .map(|v| if sd > 0.0 { (v - mean) / sd } else { 0.0 })
        .collect()
}

/// The largest, over the `m` phases, of the mean of the beats at that phase minus the
/// mean of the rest.
fn downbeat_contrast(per_beat: &[f32], m: usize) -> f32 {
    (0..m)
        .filter_map(|phase| {
            let (mut on, mut n_on, mut off, mut n_off) = (0.0f32, 0usize, 0.0f32, 0usize);
            for (i, v) in per_beat.iter().enumerate() {
                if i % m == phase {
                    on += v;
                    n_on += 1;
                } else {
                    off += v;
                    n_off += 1;
                }
            }
            (n_on > 2 && n_off > 2).then(|| on / n_on as f32 - off / n_off as f32)
        })
        .fold(f32::MIN, f32::max)
        .max(-10.0)
}

/// The novelty at [`SUBDIVISION_POINTS`] evenly spaced points of each beat.
fn within_beat_pattern(beats: &[usize], novelty: &[f32]) -> Vec<[f32; SUBDIVISION_POINTS]> {
    beats
        .windows(2)
        .map(|w| {
            let step = (w[1] - w[0]) as f32 / SUBDIVISION_POINTS as f32;
            std::array::from_fn(|k| {
                let t = w[0] + (k as f32 * step) as usize;
                novelty.get(t).copied().unwrap_or(0.0)
            })
        })
        .collect()
}

/// Mean cosine similarity of the patterns `lag` beats apart, centred on their `mean`.
fn lag_similarity(
    patterns: &[[f32; SUBDIVISION_POINTS]],
    mean: &[f32; SUBDIVISION_POINTS],
    lag: usize,
) -> f32 {
    if patterns.len() <= lag + 2 {
        return 0.0;
    }
    let centred: Vec<[f32; SUBDIVISION_POINTS]> = patterns
        .iter()
        .map(|p| std::array::from_fn(|k| p[k] - mean[k]))
        .collect();
    let pairs = centred.len() - lag;
    (0..pairs)
        .map(|i| cosine(&centred[i], &centred[i + lag]))
        .sum::<f32>()
        / pairs as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A beat every 40 frames; the bar's first beat louder, with bass and a new chord.
    fn accented(bar: usize, beats: usize) -> (Vec<usize>, Vec<f32>, Vec<f32>, Vec<[f32; 12]>) {
        let period = 40;
        let pos: Vec<usize> = (0..beats).map(|i| 20 + i * period).collect();
        let n = 20 + beats * period + 40;
        let (mut nov, mut bass) = (vec![0.0f32; n], vec![0.0f32; n]);
        for (i, &p) in pos.iter().enumerate() {
            let down = i % bar == 0;
            nov[p] = if down { 1.0 } else { 0.5 };
            bass[p] = if down { 1.0 } else { 0.1 };
            nov[p + period / 2] = 0.2;
        }
        let mut chroma = vec![[0.0f32; 12]; n / ONSET_PER_CHROMA + 1];
        for (k, c) in chroma.iter_mut().enumerate() {
            let beat = (k * ONSET_PER_CHROMA).saturating_sub(20) / period;
            c[(beat / bar * 7) % 12] = 1.0;
        }
        (pos, nov, bass, chroma)
    }

    #[test]
    fn finds_accented_bars_of_three_and_four() {
        for bar in [3, 4] {
            let (b, nov, bass, chroma) = accented(bar, 48);
            let e = estimate(&b, &nov, &bass, &chroma).unwrap();
            assert_eq!(e.beats_per_bar as usize, bar, "{e:?}");
            assert!(!e.compound, "{e:?}");
        }
    }

    #[test]
    fn too_few_beats_say_nothing() {
        let (b, nov, bass, chroma) = accented(3, 8);
        assert!(estimate(&b, &nov, &bass, &chroma).is_none());
        assert!(estimate(&[], &[], &[], &[]).is_none());
    }
}
