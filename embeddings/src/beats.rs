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

/// Beats read at each end of a track for its [`EdgeTempi`]: about 8 s at 120 BPM, enough
/// for a median that one misplaced beat cannot move, short enough to follow a drift.
pub const EDGE_BEATS: usize = 16;

/// The tempo where a track starts and where it ends, from its beat times: what a mix
/// into or out of the track has to match. A live or rubato-ish recording drifts, and a
/// track whose intro is half-time has a different tempo at its start than on average.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EdgeTempi {
    /// BPM over the first [`EDGE_BEATS`] beat intervals.
    pub start_bpm: f32,
    /// BPM over the last [`EDGE_BEATS`] beat intervals.
    pub end_bpm: f32,
}

/// The [`EdgeTempi`] of beat times in seconds (increasing), each the median interval
/// over [`EDGE_BEATS`] intervals at that end. `None` with fewer than `EDGE_BEATS / 2`
/// intervals (too short, or no steady pulse tracked): the caller uses the global tempo.
pub fn edge_tempi(beat_times: &[f32]) -> Option<EdgeTempi> {
    let gaps: Vec<f32> = beat_times
        .windows(2)
        .map(|w| w[1] - w[0])
        .filter(|g| g.is_finite() && *g > 0.0)
        .collect();
    if gaps.len() < EDGE_BEATS / 2 {
        return None;
    }
    let n = gaps.len().min(EDGE_BEATS);
    let mut scratch = Vec::with_capacity(n);
    let start = crate::dsp::median(&gaps[..n], &mut scratch);
    let end = crate::dsp::median(&gaps[gaps.len() - n..], &mut scratch);
    Some(EdgeTempi {
        start_bpm: 60.0 / start,
        end_bpm: 60.0 / end,
    })
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

    #[test]
    fn edge_tempi_follow_a_drift_and_ignore_one_stray_beat() {
        // 120 BPM speeding up to 132 BPM over 64 beats, one beat misplaced near the start.
        let mut t = 0.0f32;
        let mut times = Vec::new();
        for k in 0..64 {
            times.push(t);
            let bpm = 120.0 + 12.0 * k as f32 / 63.0;
            t += 60.0 / bpm;
        }
        times[3] += 0.1;
        let e = edge_tempi(&times).unwrap();
        assert!((e.start_bpm - 121.5).abs() < 1.0, "{e:?}");
        assert!((e.end_bpm - 130.5).abs() < 1.0, "{e:?}");
    }

    #[test]
    fn too_few_beats_have_no_edge_tempi() {
        assert_eq!(edge_tempi(&[]), None);
        assert_eq!(edge_tempi(&[0.0, 0.5, 1.0, 1.5]), None);
        let steady: Vec<f32> = (0..9).map(|k| k as f32 * 0.5).collect();
        let e = edge_tempi(&steady).unwrap();
        assert!((e.start_bpm - 120.0).abs() < 1e-3 && (e.end_bpm - 120.0).abs() < 1e-3);
    }
}
