//! Structure: how much a track repeats itself, from a self-similarity matrix of half-second
//! blocks (pooled chroma and MFCCs).

use crate::dsp::cosine;

/// Longest sequence the self-similarity matrix is computed on; longer tracks are pooled
/// further, so cost stays bounded whatever the duration.
const MAX_BLOCKS: usize = 720;
/// Shortest repetition lag counted (in blocks of ~0.46 s: about 4 s).
const MIN_LAG: usize = 8;

/// Repetitiveness in 0..1: the best mean similarity along one diagonal (a lag) of the
/// self-similarity matrix, after removing the track's mean feature vector, so a steady
/// timbre alone does not count as repetition.
pub fn repetitiveness(blocks: &[Vec<f32>]) -> f32 {
    if blocks.len() < 2 * MIN_LAG {
        return 0.0;
    }
    let dim = blocks[0].len();
    let group = blocks.len().div_ceil(MAX_BLOCKS);
    let mut seq: Vec<Vec<f32>> = blocks
        .chunks(group)
        .map(|c| {
            let mut v = vec![0.0; dim];
            for b in c {
                v.iter_mut()
                    .zip(b)
                    .for_each(|(a, x)| *a += x / c.len() as f32);
            }
            v
        })
        .collect();
    // Standardise each dimension so chroma and MFCC weigh alike, and centre them.
    for d in 0..dim {
        let mean = seq.iter().map(|v| v[d]).sum::<f32>() / seq.len() as f32;
        let sd = (seq.iter().map(|v| (v[d] - mean).powi(2)).sum::<f32>() / seq.len() as f32).sqrt();
        for v in seq.iter_mut() {
            v[d] = if sd > 1e-6 { (v[d] - mean) / sd } else { 0.0 };
        }
    }
    let n = seq.len();
    let min_lag = (MIN_LAG / group).max(2);
    let mut best = 0.0f32;
    for lag in min_lag..n / 2 {
        let s: f32 = (0..n - lag)
            .map(|i| cosine(&seq[i], &seq[i + lag]))
            .sum::<f32>()
            / (n - lag) as f32;
        best = best.max(s);
    }
    best.clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loop_repeats_and_noise_does_not() {
        let pattern: Vec<Vec<f32>> = (0..16)
            .map(|i| (0..8).map(|d| ((i * 7 + d * 3) % 11) as f32).collect())
            .collect();
        let looped: Vec<Vec<f32>> = (0..160).map(|i| pattern[i % 16].clone()).collect();
        assert!(repetitiveness(&looped) > 0.9);
        let mut x = 12345u32;
        let noise: Vec<Vec<f32>> = (0..160)
            .map(|_| {
                (0..8)
                    .map(|_| {
                        x = x.wrapping_mul(1664525).wrapping_add(1013904223);
                        (x >> 8) as f32 / 16777216.0
                    })
                    .collect()
            })
            .collect();
        assert!(repetitiveness(&noise) < 0.3);
    }
}
