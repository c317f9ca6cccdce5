//! Loudness after EBU R128 (integrated loudness and loudness range with the `ebur128`
//! crate; true peak with [`crate::truepeak`]), on the file's own channels and sample rate,
//! before any downmix.

use ebur128::{EbuR128, Mode};

use crate::truepeak::TruePeak;

/// Floor reported for silent or unmeasurable audio, in LUFS / dBTP.
pub const FLOOR_DB: f32 = -70.0;

/// The EBU R128 meter for one track.
pub struct Loudness {
    meter: Option<EbuR128>,
    peak: TruePeak,
}

/// What the meter measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoudnessResult {
    pub integrated_lufs: f32,
    pub range_lu: f32,
    pub true_peak_dbtp: f32,
}

impl Loudness {
    /// A meter for `channels` at `rate` Hz. Rates or layouts the meter refuses leave it
    /// disabled; the result then reads [`FLOOR_DB`].
    pub fn new(channels: usize, rate: u32) -> Self {
        let meter = EbuR128::new(channels as u32, rate, Mode::I | Mode::LRA).ok();
        Loudness {
            meter,
            peak: TruePeak::new(channels),
        }
    }

    /// Feeds interleaved samples.
    pub fn push(&mut self, interleaved: &[f32]) {
        self.peak.push(interleaved);
        if let Some(m) = self.meter.as_mut() {
            if m.add_frames_f32(interleaved).is_err() {
                self.meter = None;
            }
        }
    }

    pub fn finish(&mut self) -> LoudnessResult {
        let peak = self.peak.finish() as f64;
        let true_peak_dbtp = if peak > 0.0 {
            ((20.0 * peak.log10()) as f32).max(FLOOR_DB)
        } else {
            FLOOR_DB
        };
        let Some(m) = self.meter.as_ref() else {
            return LoudnessResult {
                integrated_lufs: FLOOR_DB,
                range_lu: 0.0,
                true_peak_dbtp,
            };
        };
        let finite = |v: Result<f64, _>, floor: f32| {
            v.ok()
                .filter(|x: &f64| x.is_finite())
                .map(|x| (x as f32).max(floor))
                .unwrap_or(floor)
        };
        LoudnessResult {
            integrated_lufs: finite(m.loudness_global(), FLOOR_DB),
            range_lu: finite(m.loudness_range(), 0.0),
            true_peak_dbtp,
        }
    }
}
