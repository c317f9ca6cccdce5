//! Similarity evaluation: leave-one-out precision@k with labels (e.g. "same soundtrack").
//! Used by `motif eval` to compare the embedding with a plain MFCC baseline on the same
//! files, and to choose the default group weights by measurement.

use crate::embedding::l2_normalise;

/// Mean over items of the share of its `k` nearest neighbours (cosine, itself excluded)
/// that carry the same label. Items whose label occurs once are skipped.
pub fn precision_at_k(vectors: &[Vec<f32>], labels: &[String], k: usize) -> f64 {
    assert_eq!(vectors.len(), labels.len());
    let unit: Vec<Vec<f32>> = vectors
        .iter()
        .map(|v| {
            let mut v = v.clone();
            l2_normalise(&mut v);
            v
        })
        .collect();
    let mut total = 0.0;
    let mut counted = 0usize;
    for i in 0..unit.len() {
        if labels.iter().filter(|l| **l == labels[i]).count() < 2 {
            continue;
        }
        let mut sims: Vec<(f32, usize)> = (0..unit.len())
            .filter(|&j| j != i)
            .map(|j| (unit[i].iter().zip(&unit[j]).map(|(a, b)| a * b).sum(), j))
            .collect();
        sims.sort_by(|a, b| b.0.total_cmp(&a.0));
        let kk = k.min(sims.len());
        let hits = sims[..kk]
            .iter()
            .filter(|(_, j)| labels[*j] == labels[i])
            .count();
        total += hits as f64 / kk as f64;
        counted += 1;
    }
    if counted == 0 {
        0.0
    } else {
        total / counted as f64
    }
}

/// Expected precision@k of a random ranking: for each item, (same-label items - 1) / (n - 1).
pub fn random_precision(labels: &[String]) -> f64 {
    let n = labels.len();
    let eligible: Vec<f64> = labels
        .iter()
        .map(|l| labels.iter().filter(|m| *m == l).count())
        .filter(|&c| c >= 2)
        .map(|c| (c - 1) as f64 / (n - 1) as f64)
        .collect();
    if eligible.is_empty() {
        0.0
    } else {
        eligible.iter().sum::<f64>() / eligible.len() as f64
    }
}

/// Standardises each dimension over the set (z-scores), for baselines without a normaliser.
pub fn standardise(vectors: &[Vec<f32>]) -> Vec<Vec<f32>> {
    if vectors.is_empty() {
        return Vec::new();
    }
    let dim = vectors[0].len();
    let n = vectors.len() as f32;
    let mean: Vec<f32> = (0..dim)
        .map(|d| vectors.iter().map(|v| v[d]).sum::<f32>() / n)
        .collect();
    let sd: Vec<f32> = (0..dim)
        .map(|d| {
            (vectors
                .iter()
                .map(|v| (v[d] - mean[d]).powi(2))
                .sum::<f32>()
                / n)
                .sqrt()
                .max(1e-6)
        })
        .collect();
    vectors
        .iter()
        .map(|v| {
            v.iter()
                .enumerate()
                .map(|(d, x)| (x - mean[d]) / sd[d])
                .collect()
        })
        .collect()
}

/// Tempo Accuracy1 (MIREX): the estimate is within 4 % of the truth.
pub fn tempo_accuracy1(estimate: f32, truth: f32) -> bool {
    (estimate / truth - 1.0).abs() <= 0.04
}

/// Tempo Accuracy2: within 4 % of the truth or of 2x, 1/2, 3x or 1/3 of it (octave errors).
pub fn tempo_accuracy2(estimate: f32, truth: f32) -> bool {
    [1.0, 2.0, 0.5, 3.0, 1.0 / 3.0]
        .iter()
        .any(|f| tempo_accuracy1(estimate, truth * f))
}

/// MIREX weighted key score (as mir_eval, ascending fifths only): 1.0 same key, 0.5 the
/// estimate a perfect fifth above in the same mode, 0.3 relative major/minor, 0.2 parallel
/// major/minor, else 0. Tonics are pitch classes (0 = C).
pub fn key_score(est_tonic: usize, est_major: bool, true_tonic: usize, true_major: bool) -> f64 {
    let up = (est_tonic + 12 - true_tonic) % 12;
    match (est_major == true_major, up) {
        (true, 0) => 1.0,
        (true, 7) => 0.5,
        (false, 9) if true_major => 0.3,
        (false, 3) if !true_major => 0.3,
        (false, 0) => 0.2,
        _ => 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirex_key_weights() {
        assert_eq!(key_score(9, false, 9, false), 1.0); // A minor = A minor
        assert_eq!(key_score(7, true, 0, true), 0.5); // G major for C major: fifth above
        assert_eq!(key_score(9, false, 0, true), 0.3); // A minor for C major: relative
        assert_eq!(key_score(0, true, 9, false), 0.3); // C major for A minor: relative
        assert_eq!(key_score(0, false, 0, true), 0.2); // C minor for C major: parallel
        assert_eq!(key_score(2, true, 0, true), 0.0);
    }

    #[test]
    fn tempo_accuracies() {
        assert!(tempo_accuracy1(123.0, 120.0));
        assert!(!tempo_accuracy1(126.0, 120.0));
        assert!(!tempo_accuracy1(60.0, 120.0) && tempo_accuracy2(60.0, 120.0));
        assert!(tempo_accuracy2(361.0, 120.0) && !tempo_accuracy2(180.0, 120.0));
    }

    #[test]
    fn separable_clusters_score_one() {
        let v = vec![
            vec![1.0, 0.0],
            vec![0.9, 0.1],
            vec![0.0, 1.0],
            vec![0.1, 0.9],
        ];
        let l: Vec<String> = ["a", "a", "b", "b"].iter().map(|s| s.to_string()).collect();
        assert_eq!(precision_at_k(&v, &l, 1), 1.0);
        assert!((random_precision(&l) - 1.0 / 3.0).abs() < 1e-9);
    }
}
