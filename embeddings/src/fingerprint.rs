//! Acoustic fingerprints: is this the same recording as that one?
//!
//! The fingerprint is chromaprint's (the AcoustID algorithm, through the
//! `rusty-chromaprint` crate): one 32-bit value every 0.124 s, sixteen 2-bit quantised
//! responses of filters over a few seconds of a 12-band chroma image. Re-encoding, a gain change or a
//! trimmed start flips only a few bits of each value, and many values survive whole,
//! while another recording, even in the same key and tempo, agrees on about half the bits
//! (chance).
//!
//! Motif fingerprints the first [`SECONDS`] of every track during analysis. Two
//! fingerprints are one recording ([`compare`], [`Match::is_same_recording`]) when, at the
//! best shift (a trimmed or padded start shifts it), they differ in few of their bits over
//! most of the shorter one's length, and their durations agree. Candidates come from an inverted index over the values
//! ([`lookup_values`]: copies keep many values whole) and from the vector index, never from
//! comparing the whole catalogue (`indexer::recordings`).

use rusty_chromaprint::{Configuration, Fingerprinter as Chromaprint};

/// How much of each track is fingerprinted: enough to survive a few seconds trimmed at
/// either end, small enough to store (about 1.9 KB a track) and quick to compute.
pub const SECONDS: f64 = 60.0;

/// Seconds between two fingerprint values (chromaprint's 4096-sample frames at 11,025 Hz,
/// hop a third of a frame).
pub const VALUE_SECONDS: f32 = 1365.0 / 11_025.0;

/// Most differing bits (as a share of the overlap's bits) for two fingerprints to be one
/// recording. Chosen on 24 dev-corpus files against their MP3, Opus, AAC and FLAC encodes,
/// trimmed by up to 5 s and changed in gain by up to 3 dB: copies differed in at most
/// 0.08 of their bits, other recordings in at least 0.41 (docs/MEASUREMENTS.md).
pub const MAX_BIT_ERROR_RATE: f32 = 0.25;

/// Least share of the shorter fingerprint that the overlap at the matched offset must
/// cover. Of the shorter one, not the longer: a jingle of 8 s with 5 s trimmed is still
/// that jingle. An excerpt (a 30-second preview of a longer track) is told apart by its
/// duration instead ([`durations_agree`]), which every caller checks too; within that
/// slack (12 s) an excerpt of a short track is a copy of it (the fixtures' 4-s excerpts
/// of their 12.6-s pop song are).
pub const MIN_MATCHED_SHARE: f32 = 0.5;

/// Least overlap, in values (about 1 s), for a match to say anything: over fewer bits, a
/// low error rate can happen by chance at one of the ~160 shifts tried. Chromaprint gives
/// a 5-s jingle only about 20 values (its filters need 2-3 s before the first), so a
/// trimmed copy of one keeps a handful. Chosen on the duplicates bench (docs/MEASUREMENTS.md):
/// other recordings under 40 s stayed at 0.31 or more of their bits at every floor from 4 to
/// 24 values.
pub const MIN_OVERLAP_VALUES: usize = 8;

/// Largest shift looked at between two fingerprints, in seconds: silence or a few
/// seconds trimmed or added at the start.
pub const MAX_SHIFT_S: f32 = 10.0;

/// Durations of two copies of one recording differ by at most this many seconds (a few
/// seconds trimmed or padded at either end), or this share of the longer one (a slower
/// fade-out on a remaster).
pub const MAX_DURATION_GAP_S: f64 = 12.0;
pub const MAX_DURATION_GAP_SHARE: f64 = 0.1;

/// Whether two tracks' durations allow them to be one recording.
pub fn durations_agree(a_s: f64, b_s: f64) -> bool {
    (a_s - b_s).abs() <= MAX_DURATION_GAP_S.max(MAX_DURATION_GAP_SHARE * a_s.max(b_s))
}

/// Computes a fingerprint of the first [`SECONDS`] of a mono stream.
pub struct Fingerprinter {
    inner: Chromaprint,
    /// Samples still to hear.
    left: usize,
    buf: Vec<i16>,
}

impl Fingerprinter {
    /// A fingerprinter for mono samples at `rate` Hz (at least 8 kHz).
    pub fn new(rate: u32) -> Result<Self, String> {
        let mut inner = Chromaprint::new(&Configuration::preset_test2());
        inner
            .start(rate, 1)
            .map_err(|e| format!("cannot fingerprint at {rate} Hz: {}", e.to_string().trim()))?;
        Ok(Fingerprinter {
            inner,
            left: (SECONDS * f64::from(rate)) as usize,
            buf: Vec::new(),
        })
    }

    /// Pushes mono samples in [-1, 1]; samples past [`SECONDS`] are ignored.
    pub fn push(&mut self, samples: &[f32]) {
        let take = samples.len().min(self.left);
        if take == 0 {
            return;
        }
        self.left -= take;
        self.buf.clear();
        self.buf.extend(
            samples[..take]
                .iter()
                .map(|&x| (x.clamp(-1.0, 1.0) * 32767.0) as i16),
        );
        self.inner.consume(&self.buf);
    }

    /// The fingerprint (empty when the audio was too short for one value).
    pub fn finish(mut self) -> Vec<u32> {
        self.inner.finish();
        self.inner.fingerprint().to_vec()
    }
}

/// A value repeated more often than this within one fingerprint (silence, a held drone)
/// says little about which recording it is and is not used for lookups.
const MAX_REPEATS: usize = 8;

/// Fingerprints up to this many values (about 20 s) index every value; longer ones a
/// quarter of them, chosen by value, so both copies of a recording keep the same ones.
const INDEX_ALL_UP_TO: usize = 160;

/// Most values one lookup asks for.
const MAX_QUERY_VALUES: usize = 96;

/// A hash of a value that orders values the same way everywhere (Fibonacci hashing).
fn rank(v: u32) -> u32 {
    v.wrapping_mul(0x9E37_79B1)
}

/// The fingerprint values a track is indexed under, for finding its copies: its distinct
/// values (silence left out), all of them for a short track, a fixed quarter of them for a
/// longer one (a copy that keeps a value whole keeps it in the same quarter). A quarter of
/// a minute's values is ~120 terms a track: about a quarter of the index size and build
/// time of indexing them all, and a re-encode of a longer track still keeps dozens whole.
pub fn lookup_values(fingerprint: &[u32]) -> Vec<u32> {
    let mut counts: std::collections::HashMap<u32, usize> = Default::default();
    for &v in fingerprint {
        *counts.entry(v).or_default() += 1;
    }
    let all = fingerprint.len() <= INDEX_ALL_UP_TO;
    let mut values: Vec<u32> = counts
        .into_iter()
        .filter(|&(v, n)| n <= MAX_REPEATS && (all || rank(v) < 1 << 30))
        .map(|(v, _)| v)
        .collect();
    values.sort_unstable();
    values
}

/// The values a lookup for a track's copies asks for, given its [`lookup_values`]: at
/// most [`MAX_QUERY_VALUES`] of them (the lowest ranked, which a longer copy's index keeps).
pub fn query_values(lookup: &[u32]) -> Vec<u32> {
    let mut values = lookup.to_vec();
    if values.len() > MAX_QUERY_VALUES {
        values.sort_unstable_by_key(|&v| rank(v));
        values.truncate(MAX_QUERY_VALUES);
        values.sort_unstable();
    }
    values
}

/// How two fingerprints line up.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Match {
    /// Where `b` starts in `a`, in seconds (negative: `b` starts earlier).
    pub offset_s: f32,
    /// Values of the overlap at that offset.
    pub overlap: usize,
    /// The overlap as a share of the longer fingerprint (evidence shown in answers).
    pub matched_share: f32,
    /// The overlap as a share of the shorter fingerprint (what [`compare`] requires).
    pub covered_share: f32,
    /// Whole values that agree at that offset.
    pub votes: usize,
    /// Share of differing bits over the overlap.
    pub bit_error_rate: f32,
}

impl Match {
    /// Whether the two are one recording (see the module docs for the thresholds).
    pub fn is_same_recording(&self) -> bool {
        self.covered_share >= MIN_MATCHED_SHARE
            && self.overlap >= MIN_OVERLAP_VALUES
            && self.bit_error_rate <= MAX_BIT_ERROR_RATE
    }
}

/// Aligns `b` on `a` at the shift (up to [`MAX_SHIFT_S`] either way) with the fewest
/// differing bits among those where the overlap covers at least [`MIN_MATCHED_SHARE`] of
/// the shorter one and at least [`MIN_OVERLAP_VALUES`] values; `None` when no shift does.
///
/// Every shift is tried rather than only those where whole values agree: a low-bitrate
/// encode of a short song can keep as few as one value whole while differing in only 8 %
/// of its bits. About 160 shifts of 484 values: tens of microseconds.
pub fn compare(a: &[u32], b: &[u32]) -> Option<Match> {
    let (shorter, longer) = (a.len().min(b.len()), a.len().max(b.len()));
    let min_overlap =
        ((MIN_MATCHED_SHARE * shorter as f32).ceil() as usize).max(MIN_OVERLAP_VALUES);
    let max_shift = (MAX_SHIFT_S / VALUE_SECONDS) as isize;
    let mut best: Option<(u32, usize, isize)> = None; // (bits, overlap, offset)
    for offset in -max_shift..=max_shift {
        // a[i] lines up with b[i - offset].
        let (ia, ib) = if offset >= 0 {
            (offset as usize, 0)
        } else {
            (0, (-offset) as usize)
        };
        if ia >= a.len() || ib >= b.len() {
            continue;
        }
        let n = (a.len() - ia).min(b.len() - ib);
        if n < min_overlap {
            continue;
        }
        let bits: u32 = a[ia..ia + n]
            .iter()
            .zip(&b[ib..ib + n])
            .map(|(x, y)| (x ^ y).count_ones())
            .sum();
        // Compare rates without dividing: bits / n < best_bits / best_n.
        let better = match best {
            None => true,
            Some((bb, bn, _)) => u64::from(bits) * (bn as u64) < u64::from(bb) * (n as u64),
        };
        if better {
            best = Some((bits, n, offset));
        }
    }
    let (bits, overlap, offset) = best?;
    let (ia, ib) = if offset >= 0 {
        (offset as usize, 0)
    } else {
        (0, (-offset) as usize)
    };
    let votes = a[ia..ia + overlap]
        .iter()
        .zip(&b[ib..ib + overlap])
        .filter(|(x, y)| x == y)
        .count();
    Some(Match {
        offset_s: offset as f32 * VALUE_SECONDS,
        overlap,
        matched_share: overlap as f32 / longer as f32,
        covered_share: overlap as f32 / shorter as f32,
        votes,
        bit_error_rate: bits as f32 / (32 * overlap) as f32,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic pseudo-random fingerprint.
    fn random(n: usize, seed: u32) -> Vec<u32> {
        let mut x = seed.wrapping_mul(2_654_435_761).max(1);
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x
            })
            .collect()
    }

    #[test]
    fn a_shifted_noisy_copy_matches_at_its_offset() {
        let a = random(480, 1);
        // Trimmed by 20 values, then a bit flipped in every third value.
        let b: Vec<u32> = a[20..]
            .iter()
            .enumerate()
            .map(|(i, &v)| if i % 3 == 0 { v ^ (1 << (i % 32)) } else { v })
            .collect();
        let m = compare(&a, &b).unwrap();
        assert!((m.offset_s - 20.0 * VALUE_SECONDS).abs() < 1e-4, "{m:?}");
        assert_eq!(m.overlap, 460);
        assert!(m.bit_error_rate < 0.02, "{m:?}");
        assert_eq!(m.votes, 460 - 154);
        assert!(m.is_same_recording());
        // The other way round, the offset is negative.
        let back = compare(&b, &a).unwrap();
        assert!((back.offset_s + 20.0 * VALUE_SECONDS).abs() < 1e-4);
    }

    #[test]
    fn other_recordings_do_not_match() {
        let a = random(480, 1);
        let b = random(480, 2);
        match compare(&a, &b) {
            None => {}
            Some(m) => {
                assert!(!m.is_same_recording(), "{m:?}");
                assert!(m.bit_error_rate > 0.4, "{m:?}");
            }
        }
    }

    #[test]
    fn an_excerpt_lines_up_but_its_duration_tells_it_apart() {
        let a = random(480, 3);
        // A fifth of it, from the start: every bit agrees over all of the shorter one.
        let m = compare(&a, &a[..96]).unwrap();
        assert_eq!(m.bit_error_rate, 0.0);
        assert!((m.matched_share - 0.2).abs() < 1e-6, "{m:?}");
        assert_eq!(m.covered_share, 1.0);
        // A 12-second excerpt of a minute or more is another track, by its duration.
        assert!(!durations_agree(12.0, 60.0));
        assert!(!durations_agree(30.0, 240.0));
        assert!(durations_agree(240.0, 250.0));
    }

    /// A short jingle with most of it trimmed is still that jingle; a scrap of a few
    /// values is too little to tell.
    #[test]
    fn a_trimmed_short_track_matches_but_a_scrap_does_not() {
        let jingle = random(40, 7); // about 5 s
        let trimmed = &jingle[28..]; // 3.5 s cut from the start, 12 values left
        let m = compare(&jingle, trimmed).unwrap();
        assert!(m.is_same_recording(), "{m:?}");
        assert!(m.matched_share < MIN_MATCHED_SHARE, "{m:?}");
        assert!(durations_agree(5.0, 1.5));
        assert_eq!(compare(&jingle, &jingle[..MIN_OVERLAP_VALUES - 1]), None);
        // Another short track is not it.
        let other = random(30, 8);
        assert!(compare(&jingle, &other).is_none_or(|m| !m.is_same_recording()));
    }

    #[test]
    fn lookup_values_leave_out_silence() {
        let mut fp = vec![7u32; 100];
        fp.extend(random(10, 5));
        let values = lookup_values(&fp);
        assert_eq!(values.len(), 10);
        assert!(!values.contains(&7));
    }

    #[test]
    fn a_long_fingerprint_is_indexed_by_a_quarter_of_its_values() {
        let long = random(480, 6);
        let indexed = lookup_values(&long);
        assert!((80..=160).contains(&indexed.len()), "{}", indexed.len());
        let asked = query_values(&indexed);
        assert!(asked.len() <= MAX_QUERY_VALUES);
        assert!(asked.iter().all(|v| indexed.binary_search(v).is_ok()));
        // A copy that keeps values whole is indexed under the same ones.
        let copy: Vec<u32> = long[5..].to_vec();
        let shared = lookup_values(&copy)
            .iter()
            .filter(|v| indexed.binary_search(v).is_ok())
            .count();
        assert!(shared + 5 >= indexed.len());
    }

    #[test]
    fn fingerprints_a_tone_and_stops_after_a_minute() {
        let rate = 22_050;
        let mut f = Fingerprinter::new(rate).unwrap();
        let tone: Vec<f32> = (0..rate as usize * 90)
            .map(|i| (i as f32 * 440.0 * std::f32::consts::TAU / rate as f32).sin() * 0.5)
            .collect();
        for c in tone.chunks(4096) {
            f.push(c);
        }
        let fp = f.finish();
        // About 60 s / 0.124 s values, less chromaprint's start-up delay.
        assert!((440..=490).contains(&fp.len()), "{}", fp.len());
    }
}
