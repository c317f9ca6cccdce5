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

#[cfg(test)]
mod tests {
    use super::*;

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
