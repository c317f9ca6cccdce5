//! Motif's musicnn against the reference implementation: `embeddings/models/convert.py
//! reference` ran musicnn's TensorFlow graph (restored from the original checkpoints) and
//! librosa's log-mel on these 16 kHz clips of the fixture songs and wrote every patch's tag
//! scores and penultimate layer to `reference.json`. Motif decodes the same files, computes
//! its own log-mel and runs its own network: every number must agree within 1e-3.
//!
//! `MOTIF_MODEL_REFERENCE=a.json:b.json` adds reference files made the same way from
//! audio that cannot be committed (the dev corpus; docs/MEASUREMENTS.md); the committed
//! file is checked either way.

use std::path::{Path, PathBuf};

use embeddings::decode::AudioStream;
use embeddings::learned::mel::log_mel;
use embeddings::learned::musicnn::{Workspace, PATCH};
use embeddings::learned::Models;
use ndarray::Array2;
use serde_json::Value;

const TOLERANCE: f64 = 1e-3;

fn committed_reference() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/model/reference.json")
}

fn decode_mono_16k(path: &Path) -> Vec<f32> {
    let mut stream = AudioStream::open(path).unwrap_or_else(|e| panic!("{e}"));
    let mut samples = Vec::new();
    while let Some(block) = stream.next_block().unwrap() {
        assert_eq!((block.sample_rate, block.channels), (16_000, 1));
        samples.extend_from_slice(block.samples);
    }
    samples
}

fn assert_close(what: &str, ours: &[f32], theirs: &Value) -> f64 {
    let theirs = theirs.as_array().expect("array");
    assert_eq!(ours.len(), theirs.len(), "{what}: length");
    let mut worst = 0.0f64;
    for (i, (a, b)) in ours.iter().zip(theirs).enumerate() {
        let d = (*a as f64 - b.as_f64().unwrap()).abs();
        assert!(d <= TOLERANCE, "{what}[{i}]: ours {a}, reference {b}");
        worst = worst.max(d);
    }
    worst
}

/// Checks every patch of every file of one reference JSON (paths relative to it); returns
/// the patches checked and the largest difference.
fn check_reference(reference_path: &Path) -> (usize, f64) {
    let text = std::fs::read_to_string(reference_path)
        .unwrap_or_else(|e| panic!("{}: {e}", reference_path.display()));
    let reference: Value = serde_json::from_str(&text).unwrap();
    let dir = reference_path.parent().unwrap();
    let files = reference["files"].as_array().unwrap();
    let models = Models::shipped();
    let mut ws = Workspace::default();
    let mut patches_checked = 0;
    let mut worst = 0.0f64;
    for file in files {
        let name = file["file"].as_str().unwrap();
        let frames = log_mel(&decode_mono_16k(&dir.join(name)));
        assert_eq!(
            frames.len() as u64,
            file["mel_frames"].as_u64().unwrap(),
            "{name}"
        );
        let mean = frames.iter().flatten().map(|&x| x as f64).sum::<f64>()
            / (frames.len() * frames[0].len()) as f64;
        let want = file["mel_mean"].as_f64().unwrap();
        assert!(
            (mean - want).abs() < 1e-4,
            "{name}: mel mean {mean}, reference {want}"
        );
        for (model_name, model) in [("MSD_musicnn", &models.msd), ("MTT_musicnn", &models.mtt)] {
            let expected = &file["models"][model_name];
            let patches: Vec<&[[f32; 96]]> = frames.chunks_exact(PATCH).collect();
            assert_eq!(patches.len(), expected["scores"].as_array().unwrap().len());
            for (i, patch) in patches.into_iter().enumerate() {
                let x = Array2::from_shape_vec((PATCH, 96), patch.concat()).unwrap();
                let out = model.run(x.view(), &mut ws);
                let what = format!("{name} {model_name} patch {i}");
                worst = worst.max(assert_close(
                    &format!("{what} scores"),
                    &out.scores,
                    &expected["scores"][i],
                ));
                worst = worst.max(assert_close(
                    &format!("{what} penultimate"),
                    &out.penultimate,
                    &expected["penultimate"][i],
                ));
                patches_checked += 1;
            }
        }
    }
    (patches_checked, worst)
}

#[test]
fn musicnn_matches_the_tensorflow_reference_within_1e_3() {
    let (patches, worst) = check_reference(&committed_reference());
    assert!(patches >= 10, "{patches} patches");
    eprintln!("fixture clips: {patches} patches, largest difference {worst:.2e}");
    for extra in std::env::var("MOTIF_MODEL_REFERENCE")
        .unwrap_or_default()
        .split(':')
        .filter(|p| !p.is_empty())
    {
        let (patches, worst) = check_reference(Path::new(extra));
        assert!(patches > 0, "{extra}: no patches");
        eprintln!("{extra}: {patches} patches, largest difference {worst:.2e}");
    }
}
