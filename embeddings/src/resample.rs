//! Downmix to mono and stream-resample to the analysis rate with `rubato`.

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Indexing, Resampler};

/// Input frames per resampler call.
const CHUNK: usize = 1024;

/// Averages the channels of an interleaved block into `out` (cleared first).
pub fn downmix_into(interleaved: &[f32], channels: usize, out: &mut Vec<f32>) {
    out.clear();
    if channels == 1 {
        out.extend_from_slice(interleaved);
        return;
    }
    let scale = 1.0 / channels as f32;
    out.extend(
        interleaved
            .chunks_exact(channels)
            .map(|frame| frame.iter().sum::<f32>() * scale),
    );
}

/// A streaming mono resampler: push blocks of any length, receive output in `sink` calls.
///
/// The FFT resampler's start-up delay is trimmed so output sample 0 lines up with input
/// sample 0, and `finish` flushes the tail so no audio is lost at the end.
pub struct MonoResampler {
    inner: Option<Fft<f32>>,
    pending: Vec<f32>,
    out: Vec<f32>,
    to_trim: usize,
    produced_target: f64,
    produced: usize,
    ratio: f64,
}

impl MonoResampler {
    /// A resampler from `from` Hz to `to` Hz (a pass-through when they are equal).
    pub fn new(from: u32, to: u32) -> Result<Self, String> {
        let ratio = to as f64 / from as f64;
        if from == to {
            return Ok(MonoResampler {
                inner: None,
                pending: Vec::new(),
                out: Vec::new(),
                to_trim: 0,
                produced_target: 0.0,
                produced: 0,
                ratio,
            });
        }
        let inner = Fft::<f32>::new(from as usize, to as usize, CHUNK, 1, FixedSync::Input)
            .map_err(|e| format!("cannot resample {from} Hz to {to} Hz: {e}"))?;
        let out = vec![0.0; inner.output_frames_max()];
        let to_trim = inner.output_delay();
        Ok(MonoResampler {
            inner: Some(inner),
            pending: Vec::with_capacity(CHUNK * 2),
            out,
            to_trim,
            produced_target: 0.0,
            produced: 0,
            ratio,
        })
    }

    /// Feeds mono samples; resampled audio goes to `sink` as it becomes available.
    pub fn push(&mut self, mono: &[f32], sink: &mut impl FnMut(&[f32])) {
        self.produced_target += mono.len() as f64 * self.ratio;
        if self.inner.is_none() {
            sink(mono);
            return;
        }
        self.pending.extend_from_slice(mono);
        let mut start = 0;
        while self.pending.len() - start >= CHUNK {
            self.run_chunk(start, None, sink);
            start += CHUNK;
        }
        self.pending.drain(..start);
    }

    /// Flushes what is left (zero-padded), emitting exactly as many samples as the input
    /// length implies at the new rate.
    pub fn finish(&mut self, sink: &mut impl FnMut(&[f32])) {
        if self.inner.is_none() {
            return;
        }
        let target = self.produced_target.round() as usize;
        let mut guard = 0;
        while self.produced < target && guard < 64 {
            let partial = self.pending.len().min(CHUNK);
            self.pending.resize(CHUNK, 0.0);
            let limit = target - self.produced;
            self.run_chunk(0, Some((partial, limit)), sink);
            self.pending.clear();
            guard += 1;
        }
    }

    fn run_chunk(
        &mut self,
        start: usize,
        partial: Option<(usize, usize)>,
        sink: &mut impl FnMut(&[f32]),
    ) {
        let Some(inner) = self.inner.as_mut() else {
            return;
        };
        let input = match InterleavedSlice::new(&self.pending[start..start + CHUNK], 1, CHUNK) {
            Ok(i) => i,
            Err(_) => return,
        };
        let out_len = self.out.len();
        let Ok(mut output) = InterleavedSlice::new_mut(&mut self.out, 1, out_len) else {
            return;
        };
        let indexing = partial.map(|(len, _)| Indexing::new().partial_len(len));
        let Ok((_, written)) = inner.process_into_buffer(&input, &mut output, indexing.as_ref())
        else {
            return;
        };
        let mut slice = &self.out[..written];
        let trim = self.to_trim.min(slice.len());
        slice = &slice[trim..];
        self.to_trim -= trim;
        if let Some((_, limit)) = partial {
            slice = &slice[..slice.len().min(limit)];
        }
        self.produced += slice.len();
        if !slice.is_empty() {
            sink(slice);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resample_sine(from: u32, to: u32, freq: f32, seconds: f32) -> Vec<f32> {
        let n = (from as f32 * seconds) as usize;
        let input: Vec<f32> = (0..n)
            .map(|i| (2.0 * std::f32::consts::PI * freq * i as f32 / from as f32).sin())
            .collect();
        let mut r = MonoResampler::new(from, to).unwrap();
        let mut out = Vec::new();
        for block in input.chunks(777) {
            r.push(block, &mut |s| out.extend_from_slice(s));
        }
        r.finish(&mut |s| out.extend_from_slice(s));
        out
    }

    #[test]
    fn keeps_length_and_phase() {
        for &from in &[8000u32, 44100, 48000, 96000, 192000] {
            let out = resample_sine(from, 22050, 440.0, 2.0);
            assert_eq!(out.len(), 44100, "from {from}");
            // Compare the middle with the ideal sine at the new rate: the delay was trimmed
            // (to within half an output sample, 0.08 at 440 Hz).
            for i in (20000..21000).step_by(37) {
                let ideal = (2.0 * std::f32::consts::PI * 440.0 * i as f32 / 22050.0).sin();
                assert!(
                    (out[i] - ideal).abs() < 0.08,
                    "from {from} at {i}: {} vs {ideal}",
                    out[i]
                );
            }
        }
    }

    #[test]
    fn downmix_averages() {
        let mut out = Vec::new();
        downmix_into(&[1.0, 0.0, 0.5, 0.5], 2, &mut out);
        assert_eq!(out, vec![0.5, 0.5]);
    }
}
