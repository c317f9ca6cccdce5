//! The embedding: a fixed-dimension, L2-normalised vector made from the raw features by a
//! [`Normalizer`] (per-dimension standardisation, then one weight per feature group).
//!
//! The normaliser is data, not code: it is fitted on a set of analyses and serialised, so
//! the space can be refitted and every embedding rebuilt from stored raw features without
//! decoding audio again (DESIGN.md principle 2). The default one ships with the crate
//! (`default_normalizer.json`), fitted on real recordings with `motif eval --write-normalizer`.

use serde::{Deserialize, Serialize};

use crate::features::{groups, Group, FEATURE_DIM};

/// Weight of each feature group in the embedding.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GroupWeights {
    pub timbre: f32,
    pub harmony: f32,
    pub rhythm: f32,
    pub dynamics: f32,
    /// The learned (musicnn) group.
    pub learned: f32,
}

impl GroupWeights {
    pub fn get(&self, g: Group) -> f32 {
        match g {
            Group::Timbre => self.timbre,
            Group::Harmony => self.harmony,
            Group::Rhythm => self.rhythm,
            Group::Dynamics => self.dynamics,
            Group::Learned => self.learned,
        }
    }
}

impl Default for GroupWeights {
    fn default() -> Self {
        GroupWeights {
            timbre: 1.0,
            harmony: 1.0,
            rhythm: 1.0,
            dynamics: 1.0,
            learned: 1.0,
        }
    }
}

/// Maps raw feature vectors into the embedding space.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Normalizer {
    /// Identifies the space: embeddings from different versions must not be compared.
    pub version: String,
    /// The analyser version whose feature layout this was fitted on.
    pub analyzer_version: String,
    /// How many analyses it was fitted on.
    pub fitted_on: usize,
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
    pub weights: GroupWeights,
}

/// Why a normaliser cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum NormalizerError {
    #[error("normaliser has {got} dimensions, the feature layout has {want}")]
    Dimension { got: usize, want: usize },
    #[error("cannot fit a normaliser on {0} analyses (need at least 2)")]
    TooFew(usize),
    #[error("invalid normaliser JSON: {0}")]
    Json(#[from] serde_json::Error),
}

impl Normalizer {
    /// The normaliser that ships with this analyser version (parsed once).
    pub fn default_for_version() -> &'static Normalizer {
        static DEFAULT: std::sync::OnceLock<Normalizer> = std::sync::OnceLock::new();
        // Checked by a unit test; a broken file is a build defect, not an input error.
        DEFAULT.get_or_init(|| {
            serde_json::from_str(include_str!("default_normalizer.json"))
                .expect("valid default_normalizer.json")
        })
    }

    /// Reads a normaliser from JSON and checks it matches the feature layout.
    pub fn from_json(text: &str) -> Result<Normalizer, NormalizerError> {
        let n: Normalizer = serde_json::from_str(text)?;
        if n.mean.len() != FEATURE_DIM || n.std.len() != FEATURE_DIM {
            return Err(NormalizerError::Dimension {
                got: n.mean.len(),
                want: FEATURE_DIM,
            });
        }
        Ok(n)
    }

    /// Fits mean and standard deviation per dimension on `features`.
    pub fn fit(
        features: &[&[f32]],
        weights: GroupWeights,
        version: &str,
    ) -> Result<Normalizer, NormalizerError> {
        if features.len() < 2 {
            return Err(NormalizerError::TooFew(features.len()));
        }
        if let Some(bad) = features.iter().find(|f| f.len() != FEATURE_DIM) {
            return Err(NormalizerError::Dimension {
                got: bad.len(),
                want: FEATURE_DIM,
            });
        }
        let n = features.len() as f64;
        let mut mean = vec![0.0f32; FEATURE_DIM];
        let mut std = vec![0.0f32; FEATURE_DIM];
        for d in 0..FEATURE_DIM {
            let m = features.iter().map(|f| f[d] as f64).sum::<f64>() / n;
            let v = features
                .iter()
                .map(|f| (f[d] as f64 - m).powi(2))
                .sum::<f64>()
                / n;
            mean[d] = m as f32;
            std[d] = v.sqrt().max(1e-6) as f32;
        }
        Ok(Normalizer {
            version: version.to_string(),
            analyzer_version: crate::ANALYZER_VERSION.to_string(),
            fitted_on: features.len(),
            mean,
            std,
            weights,
        })
    }

    /// The embedding of a raw feature vector: standardised, each group scaled by its weight
    /// over the square root of its size (so a group's pull does not depend on how many
    /// dimensions it has), L2-normalised. Same dimension as the features.
    pub fn embed(&self, features: &[f32]) -> Vec<f32> {
        let (groups, counts) = groups();
        let mut v: Vec<f32> = features
            .iter()
            .zip(groups)
            .enumerate()
            .map(|(d, (x, g))| {
                let z = ((x - self.mean[d]) / self.std[d]).clamp(-6.0, 6.0);
                z * self.weights.get(*g) / (counts[*g as usize] as f32).sqrt()
            })
            .collect();
        l2_normalise(&mut v);
        v
    }
}

/// Scales `v` to unit length (leaves an all-zero vector as it is).
pub fn l2_normalise(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 {
        v.iter_mut().for_each(|x| *x /= n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_normaliser_loads_and_embeds_to_unit_length() {
        let n = Normalizer::default_for_version();
        assert_eq!(n.mean.len(), FEATURE_DIM);
        let x: Vec<f32> = (0..FEATURE_DIM).map(|i| i as f32 * 0.1).collect();
        let e = n.embed(&x);
        assert_eq!(e.len(), FEATURE_DIM);
        let norm: f32 = e.iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4);
    }

    #[test]
    fn fit_round_trips_through_json() {
        let a: Vec<f32> = (0..FEATURE_DIM).map(|i| i as f32).collect();
        let b: Vec<f32> = (0..FEATURE_DIM).map(|i| 2.0 * i as f32 + 1.0).collect();
        let n = Normalizer::fit(&[&a, &b], GroupWeights::default(), "test").unwrap();
        let back = Normalizer::from_json(&serde_json::to_string(&n).unwrap()).unwrap();
        assert_eq!(n, back);
        assert!(Normalizer::fit(&[&a], GroupWeights::default(), "x").is_err());
    }
}
