//! The embedding: a fixed-dimension, L2-normalised vector made from the raw features by a
//! [`Normalizer`] (per-dimension standardisation, the learned group projected on its
//! [`LEARNED_COMPONENTS`] principal axes, then one weight per feature group).
//!
//! Why a projection: the learned group has 200 dimensions, and on the dev corpus its top
//! 32 principal components find similar tracks as well as all 200 do (precision@10 0.608
//! against 0.610 combined with the signal-processing groups; docs/MEASUREMENTS.md), so
//! the embedding stays at 107 dimensions instead of 275: a third of the vector index's
//! memory and distance cost at a million tracks.
//!
//! The normaliser is data, not code: it is fitted on a set of analyses and serialised, so
//! the space can be refitted and every embedding rebuilt from stored raw features without
//! decoding audio again (DESIGN.md principle 2). The default one ships with the crate
//! (`default_normalizer.json`), fitted on real recordings with `motif eval --write-normalizer`.

use serde::{Deserialize, Serialize};

use crate::features::{groups, Group, DSP_DIM, FEATURE_DIM};
use crate::learned::musicnn::PENULTIMATE;
use ndarray::{Array1, Array2};

/// Principal components of the learned group kept in the embedding.
pub const LEARNED_COMPONENTS: usize = 32;
/// Dimension of the embedding: the signal-processing features, then the learned group's
/// components.
pub const EMBEDDING_DIM: usize = DSP_DIM + LEARNED_COMPONENTS;

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
    /// The learned group's principal axes, fitted on its standardised values:
    /// [`LEARNED_COMPONENTS`] rows of [`PENULTIMATE`] numbers, row-major, strongest first.
    pub learned_axes: Vec<f32>,
}

/// Why a normaliser cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum NormalizerError {
    #[error("normaliser has {got} dimensions, the feature layout has {want}")]
    Dimension { got: usize, want: usize },
    #[error("normaliser has {got} learned-axis values, expected {want}")]
    Axes { got: usize, want: usize },
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
        if n.learned_axes.len() != LEARNED_COMPONENTS * PENULTIMATE {
            return Err(NormalizerError::Axes {
                got: n.learned_axes.len(),
                want: LEARNED_COMPONENTS * PENULTIMATE,
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
        let learned = Array2::from_shape_fn((features.len(), FEATURE_DIM - DSP_DIM), |(r, c)| {
            let d = DSP_DIM + c;
            f64::from(standardise(features[r][d], mean[d], std[d]))
        });
        Ok(Normalizer {
            version: version.to_string(),
            analyzer_version: crate::ANALYZER_VERSION.to_string(),
            fitted_on: features.len(),
            mean,
            std,
            weights,
            learned_axes: principal_axes(&learned, LEARNED_COMPONENTS),
        })
    }

    /// The embedding of a raw feature vector ([`EMBEDDING_DIM`] values): every dimension
    /// standardised; the signal-processing groups as they are and the learned group
    /// projected on its principal axes; each group scaled by its weight over the square
    /// root of its size (so a group's pull does not depend on how many dimensions it has);
    /// L2-normalised.
    pub fn embed(&self, features: &[f32]) -> Vec<f32> {
        let (groups, counts) = groups();
        let z: Vec<f32> = (0..FEATURE_DIM)
            .map(|d| standardise(features[d], self.mean[d], self.std[d]))
            .collect();
        let mut v: Vec<f32> = Vec::with_capacity(EMBEDDING_DIM);
        v.extend((0..DSP_DIM).map(|d| {
            let g = groups[d];
            z[d] * self.weights.get(g) / (counts[g as usize] as f32).sqrt()
        }));
        let scale = self.weights.learned / (LEARNED_COMPONENTS as f32).sqrt();
        v.extend(
            self.learned_axes
                .chunks_exact(PENULTIMATE)
                .map(|axis| crate::dsp::dot(axis, &z[DSP_DIM..]) * scale),
        );
        l2_normalise(&mut v);
        v
    }
}

/// One standardised value, clamped to 6 standard deviations (a wild value in one
/// dimension must not swamp the rest).
fn standardise(x: f32, mean: f32, std: f32) -> f32 {
    let z = ((x - mean) / std).clamp(-6.0, 6.0);
    if z.is_finite() {
        z
    } else {
        0.0
    }
}

/// The `k` strongest principal axes of `rows` (already centred near zero by the
/// standardisation), by orthogonal iteration on their covariance: deterministic, strongest
/// first, each axis's largest component positive. A tiny ridge keeps axes defined when
/// there are fewer rows than axes.
fn principal_axes(rows: &Array2<f64>, k: usize) -> Vec<f32> {
    let (n, dim) = rows.dim();
    let cov = rows.t().dot(rows) / n.max(1) as f64 + Array2::<f64>::eye(dim) * 1e-9;
    // Start from the first k unit vectors, mixed so none is orthogonal to the answer.
    let mut q = Array2::from_shape_fn((dim, k), |(i, c)| {
        if i == c {
            1.0
        } else {
            1e-3 * ((i * 7 + c * 13) % 11) as f64
        }
    });
    orthonormalise(&mut q);
    for _ in 0..300 {
        q = cov.dot(&q);
        orthonormalise(&mut q);
    }
    // Strongest first (the Rayleigh quotient), with a fixed sign.
    let mut axes: Vec<Array1<f64>> = q.columns().into_iter().map(|c| c.to_owned()).collect();
    axes.sort_by(|a, b| b.dot(&cov.dot(b)).total_cmp(&a.dot(&cov.dot(a))));
    for v in &mut axes {
        let peak = v.fold(0.0f64, |m, &x| if x.abs() > m.abs() { x } else { m });
        if peak < 0.0 {
            v.mapv_inplace(|x| -x);
        }
    }
    axes.iter().flatten().map(|&x| x as f32).collect()
}

/// Modified Gram-Schmidt over the columns, in place.
fn orthonormalise(q: &mut Array2<f64>) {
    for i in 0..q.ncols() {
        for j in 0..i {
            let d = q.column(i).dot(&q.column(j));
            let prev = q.column(j).to_owned();
            q.column_mut(i).scaled_add(-d, &prev);
        }
        let norm = q.column(i).dot(&q.column(i)).sqrt().max(1e-300);
        q.column_mut(i).mapv_inplace(|x| x / norm);
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
        assert_eq!(e.len(), EMBEDDING_DIM);
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
