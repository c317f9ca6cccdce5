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
//!
//! Very short audio is the exception: chromaprint's filters need 2-3 s of audio before
//! their first value, so a jingle trimmed to 1-3 s has no fingerprint at all. Tracks up to
//! [`FINE_UP_TO_S`] also get a **fine fingerprint**: the same algorithm at half the frame
//! and a sixth of the hop (values every 23 ms, the first after 0.6 s). Where two
//! fingerprints cannot overlap enough to say anything, the fine ones decide
//! ([`evidence`]), with digital silence left out of the comparison: silence agrees with
//! silence and says nothing about which recording it is.

use rusty_chromaprint::{Configuration, Fingerprinter as Chromaprint};

/// Which fingerprint a [`Match`] compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Evidence {
    /// The fingerprint of the first [`SECONDS`].
    Fingerprint,
    /// The fine fingerprint of a short track ([`FINE_UP_TO_S`]).
    FineFingerprint,
}

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

/// Tracks up to this long also get a fine fingerprint. A copy whose fingerprint is too
/// short to compare (under ~3.5 s of audio, fewer than [`MIN_OVERLAP_VALUES`] values) can
/// only be a copy of a track at most [`MAX_DURATION_GAP_S`] longer, so 16 s covers every
/// pair the fingerprint cannot decide.
pub const FINE_UP_TO_S: f64 = 16.0;

/// Frame and hop of the fine fingerprint, in samples at chromaprint's 11,025 Hz: half the
/// frame and a sixth of the hop of the fingerprint, so its first value comes after 0.6 s
/// (2.4 s for the fingerprint) and a 1-s scrap still has a dozen values.
const FINE_FRAME: usize = 2048;
const FINE_HOP: usize = 256;

/// Seconds between two fine fingerprint values.
pub const FINE_VALUE_SECONDS: f32 = FINE_HOP as f32 / 11_025.0;

/// Most differing bits over the non-silent overlap for two fine fingerprints to be one
/// recording. On the duplicates bench's short tracks (docs/MEASUREMENTS.md), copies
/// differed in at most 0.075 of their bits, other tracks of agreeing duration in at least
/// 0.29 (chosen on that bench's own data, so its figure there is not an independent one).
pub const FINE_MAX_BIT_ERROR_RATE: f32 = 0.17;

/// Least non-silent overlap, in fine values (0.37 s), for a fine match to say anything.
pub const FINE_MIN_OVERLAP_VALUES: usize = 16;

/// The value chromaprint gives digital silence (an all-zero chroma image), the same for
/// both fingerprints (checked by a test). Left out of fine comparisons and of lookups.
pub const SILENCE: u32 = 0x256d_f977;

/// Whether two tracks' durations allow them to be one recording.
pub fn durations_agree(a_s: f64, b_s: f64) -> bool {
    (a_s - b_s).abs() <= MAX_DURATION_GAP_S.max(MAX_DURATION_GAP_SHARE * a_s.max(b_s))
}

/// A track's fingerprints, as [`Fingerprinter::finish`] gives them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fingerprints {
    /// The first [`SECONDS`]; empty when the audio was too short for one value.
    pub coarse: Vec<u32>,
    /// The whole track at a finer hop, only for tracks up to [`FINE_UP_TO_S`].
    pub fine: Vec<u32>,
}

/// Computes a fingerprint of the first [`SECONDS`] of a mono stream, and the fine one of
/// a short stream.
pub struct Fingerprinter {
    inner: Chromaprint,
    rate: u32,
    /// Samples still to hear.
    left: usize,
    buf: Vec<i16>,
    /// The stream so far while it is short enough for a fine fingerprint (computed at the
    /// end, once the length is known, so longer tracks pay nothing for it; at most
    /// 16 s x 22,050 Hz x 2 bytes = 706 KB).
    short: Option<Vec<i16>>,
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
            rate,
            left: (SECONDS * f64::from(rate)) as usize,
            buf: Vec::new(),
            short: Some(Vec::new()),
        })
    }

    /// Pushes mono samples in [-1, 1]; samples past [`SECONDS`] are ignored.
    pub fn push(&mut self, samples: &[f32]) {
        let take = samples.len().min(self.left);
        self.left -= take;
        let fine_cap = (FINE_UP_TO_S * f64::from(self.rate)) as usize;
        if self
            .short
            .as_ref()
            .is_some_and(|short| short.len() + samples.len() > fine_cap)
        {
            self.short = None;
        }
        // Past the first minute of a track longer than FINE_UP_TO_S there is nothing to do.
        let needed = if self.short.is_some() {
            samples.len()
        } else {
            take
        };
        if needed == 0 {
            return;
        }
        self.buf.clear();
        self.buf.extend(
            samples[..needed]
                .iter()
                .map(|&x| (x.clamp(-1.0, 1.0) * 32767.0) as i16),
        );
        if take > 0 {
            self.inner.consume(&self.buf[..take]);
        }
        if let Some(short) = &mut self.short {
            short.extend_from_slice(&self.buf);
        }
    }

    /// The fingerprints of what was pushed.
    pub fn finish(mut self) -> Fingerprints {
        self.inner.finish();
        let fine = match self.short.take() {
            Some(samples) => fine_fingerprint(&samples, self.rate),
            None => Vec::new(),
        };
        Fingerprints {
            coarse: self.inner.fingerprint().to_vec(),
            fine,
        }
    }
}

/// The fine fingerprint of mono samples at `rate` Hz (empty when too short for a value).
fn fine_fingerprint(samples: &[i16], rate: u32) -> Vec<u32> {
    let config = Configuration::preset_test2()
        .with_frame_size(FINE_FRAME)
        .with_frame_overlap(FINE_FRAME - FINE_HOP);
    let mut printer = Chromaprint::new(&config);
    if printer.start(rate, 1).is_err() {
        // The same rate was accepted for the fingerprint in `new`.
        return Vec::new();
    }
    printer.consume(samples);
    printer.finish();
    printer.fingerprint().to_vec()
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

/// The fine fingerprint values a short track is indexed under: its distinct values,
/// silence left out. Only tracks up to [`FINE_UP_TO_S`] have them (at most ~690 values),
/// and copies keep many whole (on the duplicates bench, a 1.2-s scrap still kept 2 of its
/// original's and shared none with any other track).
pub fn fine_lookup_values(fine: &[u32]) -> Vec<u32> {
    let mut values: Vec<u32> = fine.iter().copied().filter(|&v| v != SILENCE).collect();
    values.sort_unstable();
    values.dedup();
    values
}

/// How two fingerprints line up.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Match {
    /// Which fingerprints were compared.
    pub by: Evidence,
    /// Where `b` starts in `a`, in seconds (negative: `b` starts earlier).
    pub offset_s: f32,
    /// Values of the overlap at that offset (for fine fingerprints, the non-silent ones).
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
        let (max_rate, min_overlap) = match self.by {
            Evidence::Fingerprint => (MAX_BIT_ERROR_RATE, MIN_OVERLAP_VALUES),
            Evidence::FineFingerprint => (FINE_MAX_BIT_ERROR_RATE, FINE_MIN_OVERLAP_VALUES),
        };
        self.covered_share >= MIN_MATCHED_SHARE
            && self.overlap >= min_overlap
            && self.bit_error_rate <= max_rate
    }
}

/// The fingerprints of a track, as the copy rule reads them.
#[derive(Debug, Clone, Copy)]
pub struct Prints<'a> {
    pub coarse: &'a [u32],
    pub fine: &'a [u32],
    pub duration_s: f64,
}

/// The match when `a` and `b` are copies of one recording: their durations agree and
/// their [`evidence`] says so.
pub fn same_recording(a: Prints<'_>, b: Prints<'_>) -> Option<Match> {
    if !durations_agree(a.duration_s, b.duration_s) {
        return None;
    }
    evidence(a, b).filter(Match::is_same_recording)
}

/// How two tracks line up: by their fingerprints where those overlap enough to say
/// anything ([`compare`]), else by their fine fingerprints ([`compare_fine`]).
pub fn evidence(a: Prints<'_>, b: Prints<'_>) -> Option<Match> {
    compare(a.coarse, b.coarse).or_else(|| compare_fine(a.fine, b.fine))
}

/// Aligns `b` on `a` at the shift (up to [`MAX_SHIFT_S`] either way) with the fewest
/// differing bits among those where the overlap covers at least [`MIN_MATCHED_SHARE`] of
/// the shorter one and at least [`MIN_OVERLAP_VALUES`] values; `None` when no shift does.
///
/// Every shift is tried rather than only those where whole values agree: a low-bitrate
/// encode of a short song can keep as few as one value whole while differing in only 8 %
/// of its bits. About 160 shifts of 484 values: tens of microseconds.
pub fn compare(a: &[u32], b: &[u32]) -> Option<Match> {
    Scan {
        by: Evidence::Fingerprint,
        value_s: VALUE_SECONDS,
        min_values: MIN_OVERLAP_VALUES,
        skip_silence: false,
    }
    .compare(a, b)
}

/// [`compare`] for fine fingerprints: positions where either is digital silence are left
/// out, and the shares are of the non-silent values (a silent file has none, so it is
/// never a copy by its fine fingerprint; its fingerprint still compares).
pub fn compare_fine(a: &[u32], b: &[u32]) -> Option<Match> {
    Scan {
        by: Evidence::FineFingerprint,
        value_s: FINE_VALUE_SECONDS,
        min_values: FINE_MIN_OVERLAP_VALUES,
        skip_silence: true,
    }
    .compare(a, b)
}

/// One way of sliding two fingerprints over each other: [`compare`] and [`compare_fine`]
/// differ only in these.
struct Scan {
    /// What a match found this way is evidence by.
    by: Evidence,
    /// Seconds a value.
    value_s: f32,
    /// Least (counted) overlap a shift needs, however short the fingerprints.
    min_values: usize,
    /// Leave out positions where either value is [`SILENCE`].
    skip_silence: bool,
}

/// The best shift a [`Scan`] found.
struct Best {
    bits: u32,
    /// Positions counted.
    overlap: usize,
    /// `a[i]` lines up with `b[i - offset]`.
    offset: isize,
}

impl Scan {
    /// The best alignment of `b` on `a`, its shares taken of the values counted.
    fn compare(&self, a: &[u32], b: &[u32]) -> Option<Match> {
        let (na, nb) = (self.counted(a), self.counted(b));
        let shorter = na.min(nb);
        let min_overlap =
            ((MIN_MATCHED_SHARE * shorter as f32).ceil() as usize).max(self.min_values);
        self.best(a, b, min_overlap)
            .map(|best| self.to_match(best, a, b, shorter, na.max(nb)))
    }

    /// Values of `f` that count: all, or the non-silent ones.
    fn counted(&self, f: &[u32]) -> usize {
        if self.skip_silence {
            f.iter().filter(|&&v| v != SILENCE).count()
        } else {
            f.len()
        }
    }

    fn best(&self, a: &[u32], b: &[u32], min_overlap: usize) -> Option<Best> {
        let max_shift = (MAX_SHIFT_S / self.value_s) as isize;
        let mut best: Option<Best> = None;
        for offset in -max_shift..=max_shift {
            let Some((x, y)) = overlap_at(a, b, offset) else {
                continue;
            };
            if x.len() < min_overlap {
                continue;
            }
            let (bits, n) = self.differing_bits(x, y);
            if n < min_overlap {
                continue;
            }
            // Compare rates without dividing: bits / n < best_bits / best_n.
            let better = best.as_ref().is_none_or(|b| {
                u64::from(bits) * (b.overlap as u64) < u64::from(b.bits) * (n as u64)
            });
            if better {
                best = Some(Best {
                    bits,
                    overlap: n,
                    offset,
                });
            }
        }
        best
    }

    /// Differing bits and positions counted over two aligned runs of values.
    fn differing_bits(&self, x: &[u32], y: &[u32]) -> (u32, usize) {
        let pairs = x.iter().zip(y);
        if self.skip_silence {
            pairs
                .filter(|&(&p, &q)| p != SILENCE && q != SILENCE)
                .fold((0, 0), |(bits, n), (p, q)| {
                    (bits + (p ^ q).count_ones(), n + 1)
                })
        } else {
            (pairs.map(|(p, q)| (p ^ q).count_ones()).sum(), x.len())
        }
    }

    /// `best` as a [`Match`]: votes are the positions where whole values agree (silence
    /// left out when the scan leaves it out), shares are of the counted values.
    fn to_match(&self, best: Best, a: &[u32], b: &[u32], shorter: usize, longer: usize) -> Match {
        let (x, y) = overlap_at(a, b, best.offset).unwrap_or_default();
        let votes = x
            .iter()
            .zip(y)
            .filter(|&(p, q)| p == q && !(self.skip_silence && *p == SILENCE))
            .count();
        Match {
            by: self.by,
            offset_s: best.offset as f32 * self.value_s,
            overlap: best.overlap,
            matched_share: best.overlap as f32 / longer.max(1) as f32,
            covered_share: best.overlap as f32 / shorter.max(1) as f32,
            votes,
            bit_error_rate: best.bits as f32 / (32 * best.overlap.max(1)) as f32,
        }
    }
}

/// The runs of `a` and `b` that overlap when `a[i]` lines up with `b[i - offset]`.
fn overlap_at<'a>(a: &'a [u32], b: &'a [u32], offset: isize) -> Option<(&'a [u32], &'a [u32])> {
    let (ia, ib) = if offset >= 0 {
        (offset as usize, 0)
    } else {
        (0, offset.unsigned_abs())
    };
    if ia >= a.len() || ib >= b.len() {
        return None;
    }
    let n = (a.len() - ia).min(b.len() - ib);
    Some((&a[ia..ia + n], &b[ib..ib + n]))
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
        assert!(
            (440..=490).contains(&fp.coarse.len()),
            "{}",
            fp.coarse.len()
        );
        // Ninety seconds is no short track: no fine fingerprint.
        assert!(fp.fine.is_empty());
    }

    /// A short stream gets a fine fingerprint at its finer hop; digital silence gives
    /// [`SILENCE`] in both fingerprints.
    #[test]
    fn a_short_stream_gets_a_fine_fingerprint_and_silence_its_own_value() {
        let rate = 22_050;
        let prints = |samples: &[f32]| {
            let mut f = Fingerprinter::new(rate).unwrap();
            for c in samples.chunks(1000) {
                f.push(c);
            }
            f.finish()
        };
        let silence = prints(&vec![0.0; rate as usize * 5]);
        assert!(!silence.coarse.is_empty() && silence.coarse.iter().all(|&v| v == SILENCE));
        assert!(!silence.fine.is_empty() && silence.fine.iter().all(|&v| v == SILENCE));
        // Two seconds: no fingerprint value yet, but ~60 fine ones.
        let chirp: Vec<f32> = (0..rate as usize * 2)
            .map(|i| {
                let t = i as f32 / rate as f32;
                (t * (300.0 + 400.0 * t) * std::f32::consts::TAU).sin() * 0.5
            })
            .collect();
        let short = prints(&chirp);
        assert!(
            short.coarse.len() < MIN_OVERLAP_VALUES,
            "{}",
            short.coarse.len()
        );
        assert!(
            (50..=70).contains(&short.fine.len()),
            "{}",
            short.fine.len()
        );
        // Exactly FINE_UP_TO_S still has one; a sample more has none.
        let at_limit = vec![0.1; (FINE_UP_TO_S * rate as f64) as usize];
        assert!(!prints(&at_limit).fine.is_empty());
        let over: Vec<f32> = vec![0.1; at_limit.len() + 1];
        assert!(prints(&over).fine.is_empty());
    }

    /// Fine fingerprints decide only where the fingerprints cannot overlap enough, and
    /// silence in both says nothing.
    #[test]
    fn fine_fingerprints_decide_where_fingerprints_are_too_short() {
        let fine = random(200, 11); // about 4.6 s
        let scrap: Vec<u32> = fine[120..160]
            .iter()
            .enumerate()
            .map(|(i, &v)| if i % 2 == 0 { v ^ 0b101 } else { v })
            .collect();
        let track = Prints {
            coarse: &[1, 2, 3],
            fine: &fine,
            duration_s: 5.0,
        };
        let copy = Prints {
            coarse: &[],
            fine: &scrap,
            duration_s: 1.5,
        };
        let m = same_recording(track, copy).unwrap();
        assert_eq!(m.by, Evidence::FineFingerprint);
        assert!(
            (m.offset_s - 120.0 * FINE_VALUE_SECONDS).abs() < 1e-4,
            "{m:?}"
        );
        assert_eq!(m.overlap, 40);
        // Another short track is not it.
        let other = random(60, 12);
        let stranger = Prints {
            coarse: &[],
            fine: &other,
            duration_s: 1.5,
        };
        assert_eq!(same_recording(track, stranger), None);
        // Long enough fingerprints decide alone, even against agreeing fine ones.
        let a = random(100, 13);
        let b = random(100, 14);
        let coarse_a = Prints {
            coarse: &a,
            fine: &fine,
            duration_s: 13.0,
        };
        let coarse_b = Prints {
            coarse: &b,
            fine: &fine,
            duration_s: 13.0,
        };
        assert_eq!(
            evidence(coarse_a, coarse_b).map(|m| m.by),
            Some(Evidence::Fingerprint)
        );
        assert_eq!(same_recording(coarse_a, coarse_b), None);
        // Silence against silence: no evidence at all, however long.
        let quiet = vec![SILENCE; 300];
        let hush = Prints {
            coarse: &[],
            fine: &quiet,
            duration_s: 7.0,
        };
        assert_eq!(compare_fine(&quiet, &quiet), None);
        assert_eq!(same_recording(hush, hush), None);
        // A scrap that is half silence is compared on its sound alone.
        let mut padded = vec![SILENCE; 40];
        padded.extend_from_slice(&fine[..40]);
        let m = compare_fine(&fine, &padded).unwrap();
        assert_eq!((m.overlap, m.bit_error_rate), (40, 0.0), "{m:?}");
        assert!(fine_lookup_values(&padded).iter().all(|&v| v != SILENCE));
    }
}
