//! The raw feature vector: its documented layout, in five groups.
//!
//! | group | dims | content |
//! |---|---|---|
//! | timbre | 38 | MFCC 0-12 mean (13) and std (13); spectral centroid, roll-off (85 %), flatness and flux, mean and std (8); share of energy in 0-250 Hz, 250-2000 Hz, 2-6 kHz, 6-11 kHz (4) |
//! | harmony | 16 | mean chroma rotated so the estimated tonic is first, unit sum (12); key strength; mode (1 major, 0 minor); chroma entropy; chord-change rate |
//! | rhythm | 16 | log2(tempo / 120); tempo confidence; tempo stability; beat strength; syncopation; onset rate / 10; percussiveness; autocorrelation of the onset envelope at 1/4, 1/3, 1/2, 2/3, 3/4, 3/2, 2, 3 and 4 beat periods (9) |
//! | dynamics | 5 | integrated loudness / 20 (LUFS); loudness range / 10 (LU); true peak / 10 (dBTP); dynamic complexity / 10 (dB); frame RMS std / 10 (dB) |
//! | learned | 200 | the MTT musicnn model's penultimate layer, averaged over the patches heard ([`crate::learned`]) |
//!
//! The scalings only keep magnitudes comparable for a human reading the vector; the
//! [`crate::Normalizer`] standardises every dimension anyway. Changing the layout means
//! bumping [`crate::ANALYZER_VERSION`].

use serde::{Deserialize, Serialize};

/// The five feature groups; the embedding weighs them separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Group {
    Timbre,
    Harmony,
    Rhythm,
    Dynamics,
    Learned,
}

impl Group {
    pub const ALL: [Group; 5] = [
        Group::Timbre,
        Group::Harmony,
        Group::Rhythm,
        Group::Dynamics,
        Group::Learned,
    ];
}

/// Dimensions of the signal-processing groups (timbre, harmony, rhythm, dynamics).
pub const DSP_DIM: usize = 75;
/// Number of dimensions of the raw feature vector.
pub const FEATURE_DIM: usize = DSP_DIM + crate::learned::musicnn::PENULTIMATE;

/// Name and group of every dimension, in order.
pub fn layout() -> Vec<(String, Group)> {
    let mut v = Vec::with_capacity(FEATURE_DIM);
    for i in 0..13 {
        v.push((format!("mfcc{i}_mean"), Group::Timbre));
    }
    for i in 0..13 {
        v.push((format!("mfcc{i}_std"), Group::Timbre));
    }
    for s in ["centroid", "rolloff", "flatness", "flux"] {
        v.push((format!("{s}_mean"), Group::Timbre));
        v.push((format!("{s}_std"), Group::Timbre));
    }
    for b in ["bass", "low_mid", "high_mid", "treble"] {
        v.push((format!("energy_share_{b}"), Group::Timbre));
    }
    for i in 0..12 {
        v.push((format!("chroma_from_tonic_{i}"), Group::Harmony));
    }
    for s in [
        "key_strength",
        "mode_major",
        "chroma_entropy",
        "chord_change_rate",
    ] {
        v.push((s.to_string(), Group::Harmony));
    }
    for s in [
        "log2_tempo_over_120",
        "tempo_confidence",
        "tempo_stability",
        "beat_strength",
        "syncopation",
        "onset_rate",
        "percussiveness",
    ] {
        v.push((s.to_string(), Group::Rhythm));
    }
    for r in ["1/4", "1/3", "1/2", "2/3", "3/4", "3/2", "2", "3", "4"] {
        v.push((format!("onset_acf_at_{r}_beat"), Group::Rhythm));
    }
    for s in [
        "loudness_lufs",
        "loudness_range_lu",
        "true_peak_dbtp",
        "dynamic_complexity",
        "rms_std",
    ] {
        v.push((s.to_string(), Group::Dynamics));
    }
    for i in 0..crate::learned::musicnn::PENULTIMATE {
        v.push((format!("learned_{i}"), Group::Learned));
    }
    v
}

/// The group of every dimension and the size of each group (indexed by `Group as usize`),
/// computed once: the embedding needs them for every vector.
pub fn groups() -> &'static ([Group; FEATURE_DIM], [usize; Group::ALL.len()]) {
    static GROUPS: std::sync::OnceLock<([Group; FEATURE_DIM], [usize; Group::ALL.len()])> =
        std::sync::OnceLock::new();
    GROUPS.get_or_init(|| {
        let l = layout();
        let mut counts = [0usize; Group::ALL.len()];
        for (_, g) in &l {
            counts[*g as usize] += 1;
        }
        (std::array::from_fn(|d| l[d].1), counts)
    })
}

/// Indices of the MFCC mean and std dimensions: the plain "MFCC mean+std" baseline.
pub fn mfcc_baseline_dims() -> std::ops::Range<usize> {
    0..26
}

#[cfg(test)]
mod tests {
    #[test]
    fn layout_has_feature_dim_entries() {
        assert_eq!(super::layout().len(), super::FEATURE_DIM);
    }
}
