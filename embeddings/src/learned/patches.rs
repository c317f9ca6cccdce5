//! Which 3-second patches of a track the model hears, chosen while the audio streams by,
//! in bounded memory and without knowing the length in advance.
//!
//! The track is cut into consecutive patches; patch `p` is kept when `p % stride == 0`.
//! Whenever more than `budget` patches are kept, the stride doubles and every other kept
//! patch goes. The result is between `budget / 2` and `budget` patches evenly spread over
//! the whole track (all of them for a short one), and frames of patches already out of
//! the running are never computed.

use super::mel::{Frame, LogMel};
use super::musicnn::PATCH;

pub struct PatchSampler {
    mel: LogMel,
    kept: Kept,
}

/// The patch choice proper, apart from the log-mel it is fed by.
struct Kept {
    budget: usize,
    stride: usize,
    /// Frames seen so far (computed or not).
    frames: usize,
    /// The patch being filled, when it is still wanted.
    current: Vec<Frame>,
    patches: Vec<(usize, Vec<Frame>)>,
}

impl PatchSampler {
    /// Keeps at most `budget` patches (at least 2).
    pub fn new(budget: usize) -> Self {
        PatchSampler {
            mel: LogMel::new(),
            kept: Kept {
                budget: budget.max(2),
                stride: 1,
                frames: 0,
                current: Vec::with_capacity(PATCH),
                patches: Vec::new(),
            },
        }
    }

    /// Pushes 16 kHz mono samples.
    pub fn push(&mut self, samples: &[f32]) {
        let kept = &mut self.kept;
        self.mel.push(samples, &mut |compute| kept.frame(compute));
    }

    /// The kept patches, in order. Audio shorter than one patch gives one patch made by
    /// repeating its frames (how musicnn was trained on short clips); no audio gives none.
    pub fn finish(mut self) -> Vec<Vec<Frame>> {
        let kept = &mut self.kept;
        self.mel.finish(&mut |compute| kept.frame(compute));
        let Kept {
            patches, current, ..
        } = self.kept;
        if patches.is_empty() && !current.is_empty() {
            let repeated = current.iter().cycle().take(PATCH).copied().collect();
            return vec![repeated];
        }
        patches.into_iter().map(|(_, p)| p).collect()
    }
}

impl Kept {
    fn frame(&mut self, compute: &mut dyn FnMut() -> Frame) {
        let patch = self.frames / PATCH;
        self.frames += 1;
        if !patch.is_multiple_of(self.stride) {
            return;
        }
        self.current.push(compute());
        if self.current.len() == PATCH {
            let full = std::mem::replace(&mut self.current, Vec::with_capacity(PATCH));
            self.patches.push((patch, full));
            if self.patches.len() > self.budget {
                self.stride *= 2;
                let stride = self.stride;
                self.patches.retain(|(p, _)| p.is_multiple_of(stride));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::learned::mel::HOP;

    fn patches(seconds: f32, budget: usize) -> Vec<Vec<Frame>> {
        let n = (seconds * 16_000.0) as usize;
        let signal: Vec<f32> = (0..n).map(|i| ((i % 97) as f32 / 97.0) - 0.5).collect();
        let mut s = PatchSampler::new(budget);
        for chunk in signal.chunks(1000) {
            s.push(chunk);
        }
        s.finish()
    }

    #[test]
    fn keeps_every_patch_of_a_short_track_and_a_spread_of_a_long_one() {
        // 10 s = 626 frames = 3 whole patches.
        assert_eq!(patches(10.0, 8).len(), 3);
        // 120 s = 7501 frames = 40 patches; the budget of 8 keeps 5 (stride 8: 0, 8, .. 32).
        let long = patches(120.0, 8);
        assert!((4..=8).contains(&long.len()), "{}", long.len());
        assert!(long.iter().all(|p| p.len() == PATCH));
    }

    #[test]
    fn audio_shorter_than_a_patch_is_repeated_to_fill_one() {
        let p = patches(1.0, 8);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].len(), PATCH);
        let frames = 1 + 16_000 / HOP;
        assert_eq!(p[0][0], p[0][frames]);
    }
}
