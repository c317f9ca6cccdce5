//! Beat tracking: where the beats fall, given the onset novelty and the beat period the
//! tempo stage chose. Dynamic programming over the novelty (Ellis, "Beat tracking by
//! dynamic programming", 2007): each frame's best score is its own (standardised)
//! novelty plus the best predecessor's score, penalised by how far the gap strays from
//! the period on a log scale. The best path through the whole track is the beat list, so a
//! beat can sit where there is no onset (a rest on the beat) without the grid drifting.

/// How strongly gaps are pulled to the period: the penalty is `TIGHTNESS * ln(gap/period)²`
/// in units of the novelty's standard deviation (librosa's default is the same 100).
const TIGHTNESS: f32 = 100.0;

/// Beat positions (onset-envelope frame indices, increasing) for a beat period of
/// `period` frames. Empty when the envelope is shorter than two periods or silent.
pub fn track(novelty: &[f32], period: f32) -> Vec<usize> {
    let n = novelty.len();
    if period.is_nan() || period < 2.0 || (n as f32) < 2.0 * period {
        return Vec::new();
    }
    let (_, sd) = crate::dsp::mean_sd(novelty);
    if sd <= 0.0 {
        return Vec::new();
    }
    let local: Vec<f32> = novelty.iter().map(|x| x / sd).collect();
    let lo = (period / 2.0).round().max(1.0) as usize;
    let hi = (period * 2.0).round() as usize;
    let penalty: Vec<f32> = (lo..=hi)
        .map(|gap| -TIGHTNESS * (gap as f32 / period).ln().powi(2))
        .collect();
    let mut score = local.clone();
    let mut from: Vec<Option<usize>> = vec![None; n];
    for t in lo..n {
        let mut best: Option<(usize, f32)> = None;
        for (k, gap) in (lo..=hi.min(t)).enumerate() {
            let v = score[t - gap] + penalty[k];
            if best.is_none_or(|(_, b)| v > b) {
                best = Some((t - gap, v));
            }
        }
        if let Some((p, v)) = best.filter(|(_, v)| *v > 0.0) {
            score[t] = local[t] + v;
            from[t] = Some(p);
        }
    }
    // The path ends at the best-scoring frame of the last period.
    let tail = n.saturating_sub(period.ceil() as usize);
    let Some(mut t) = (tail..n).max_by(|a, b| score[*a].total_cmp(&score[*b])) else {
        return Vec::new();
    };
    let mut beats = vec![t];
    while let Some(p) = from[t] {
        beats.push(p);
        t = p;
    }
    beats.reverse();
    beats
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_a_click_train_including_a_missing_click() {
        let period = 40.0;
        let mut nov = vec![0.0f32; 2000];
        for k in 0..50 {
            let t = 13 + k * 40;
            if k != 20 && t < nov.len() {
                nov[t] = 1.0;
            }
        }
        let beats = track(&nov, period);
        assert!(beats.len() >= 48, "{} beats", beats.len());
        for w in beats.windows(2) {
            assert_eq!(w[1] - w[0], 40, "{beats:?}");
        }
        assert_eq!(beats[0] % 40, 13);
    }

    #[test]
    fn short_or_silent_input_has_no_beats() {
        assert!(track(&[0.0; 1000], 40.0).is_empty());
        assert!(track(&[1.0; 50], 40.0).is_empty());
        assert!(track(&[1.0; 500], f32::NAN).is_empty());
        assert!(track(&[], 40.0).is_empty());
    }
}
