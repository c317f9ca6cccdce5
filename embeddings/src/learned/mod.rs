//! Learned listening: two pre-trained musicnn models (Pons & Serra, 2019; ISC licence, see
//! `embeddings/models/`) run in process on a few 3-second patches of every track. They
//! give the tags the DSP cannot (genre, mood, era, instruments, voice: [`vocabulary`]) and
//! a learned 200-d embedding (the MTT model's penultimate layer) that joins the DSP
//! features (group `learned` in [`crate::features`]).
//!
//! Why musicnn: among models whose weights come from a registry package under a licence
//! that allows redistribution, it is the one that tags music (50 tags from the Million Song
//! Dataset: genres, moods, eras, voice; 50 from MagnaTagATune: instruments, voice) and is
//! small enough to run on every track on a CPU (0.8 M parameters, ~1.3 G multiply-adds per
//! patch). ARCHITECTURE.md has the comparison with the alternatives.
//!
//! Data flow: 16 kHz mono samples -> [`patches::PatchSampler`] (log-mel frames, at most
//! [`PATCH_BUDGET`] patches spread over the track) -> [`listen`] (both models on every
//! patch, scores and embeddings averaged over the patches) -> [`Listening`].

pub mod mel;
pub mod musicnn;
pub mod patches;
pub mod vocabulary;

use std::sync::OnceLock;

use ndarray::Array2;
use serde::{Deserialize, Serialize};

use mel::{Frame, BANDS};
use musicnn::{Musicnn, PATCH, PENULTIMATE, TAGS};

/// At most this many patches per track (between half and all of it are used on long
/// tracks): the models are most of the analysis cost (about 50 ms a patch a model on one
/// core), and on the dev corpus 4 patches gave within 0.01 of the precision@10 of 16
/// (docs/MEASUREMENTS.md, "Learned listening").
pub const PATCH_BUDGET: usize = 4;

/// The two models Motif ships.
pub struct Models {
    /// Trained on the Million Song Dataset's 50 most common last.fm tags.
    pub msd: Musicnn,
    /// Trained on MagnaTagATune's 50 most common tags.
    pub mtt: Musicnn,
}

static SHIPPED: OnceLock<Models> = OnceLock::new();

impl Models {
    /// The weights compiled into the binary, loaded once per process. A file that does not
    /// load is a build defect (a unit test loads them), not an input error.
    pub fn shipped() -> &'static Models {
        SHIPPED.get_or_init(|| Models {
            msd: Musicnn::load(include_bytes!("../../models/msd_musicnn.safetensors"))
                .expect("valid msd_musicnn.safetensors"),
            mtt: Musicnn::load(include_bytes!("../../models/mtt_musicnn.safetensors"))
                .expect("valid mtt_musicnn.safetensors"),
        })
    }
}

/// Each model's label scores for a track, averaged over the patches heard. Kept with the
/// analysis, so tag thresholds can change without decoding the audio again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelScores {
    /// MSD model scores, in [`vocabulary::MSD_LABELS`] order.
    pub msd: Vec<f32>,
    /// MTT model scores, in [`vocabulary::MTT_LABELS`] order.
    pub mtt: Vec<f32>,
    /// How many patches were heard.
    pub patches: usize,
}

/// What the models heard in a track.
#[derive(Debug, Clone, PartialEq)]
pub struct Listening {
    pub scores: ModelScores,
    /// The MTT model's penultimate layer (200 values), averaged over the patches: on the
    /// dev corpus it found same-soundtrack tracks better than the MSD model's (0.53
    /// against 0.48 precision@10 alone).
    pub embedding: Vec<f32>,
}

/// Runs both models over `patches` (each `PATCH` frames); `None` when there are none.
pub fn listen(patches: &[Vec<Frame>]) -> Option<Listening> {
    if patches.is_empty() {
        return None;
    }
    let models = Models::shipped();
    let mut msd_sum = vec![0.0; TAGS];
    let mut mtt_sum = vec![0.0; TAGS];
    let mut embedding = vec![0.0; PENULTIMATE];
    let add = |acc: &mut [f32], x: &[f32]| acc.iter_mut().zip(x).for_each(|(a, v)| *a += v);
    // One workspace per thread for its lifetime: fresh pages for ~25 MB of buffers on
    // every track cost as much as a third of the inference.
    thread_local! {
        static WORKSPACE: std::cell::RefCell<musicnn::Workspace> = Default::default();
    }
    WORKSPACE.with_borrow_mut(|ws| {
        for p in patches {
            let x = Array2::from_shape_vec((PATCH, BANDS), p.concat())
                .expect("a patch is PATCH frames of BANDS");
            let msd = models.msd.run(x.view(), ws);
            let mtt = models.mtt.run(x.view(), ws);
            add(&mut msd_sum, &msd.scores);
            add(&mut mtt_sum, &mtt.scores);
            add(&mut embedding, &mtt.penultimate);
        }
    });
    let n = patches.len() as f32;
    for v in [&mut msd_sum, &mut mtt_sum, &mut embedding] {
        v.iter_mut().for_each(|x| *x /= n);
    }
    Some(Listening {
        scores: ModelScores {
            msd: msd_sum,
            mtt: mtt_sum,
            patches: patches.len(),
        },
        embedding,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_models_load_with_their_labels() {
        let m = Models::shipped();
        assert_eq!(m.msd.labels, vocabulary::MSD_LABELS);
        assert_eq!(m.mtt.labels, vocabulary::MTT_LABELS);
    }
}
