//! One answer per recording: copies of one recording (found by their fingerprints, or
//! sharing an ISRC or the file's bytes; [`indexer::recordings`]) show as one track in every
//! list unless the caller asks for all copies (`copies=all`).
//!
//! Which copy shows: among the copies the query found (that passed its filters), the
//! complete ones (at least [`COMPLETE_SHARE`] of the longest one's duration: a 1-s scrap
//! of a 13-s jingle is a copy of it, yet should not stand for it), the best quality
//! ([`indexer::catalog::rows::copy_quality`]: lossless first, then the higher sample rate,
//! then more channels), then the newest (the higher id), ranked by its own score. Taking a
//! copy down leaves the others, and the next best shows in its place.

use std::collections::{HashMap, HashSet};

use serde::Deserialize;

use crate::error::{ApiError, ApiResult};

/// Whether answers show one copy per recording or every copy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Copies {
    #[default]
    One,
    All,
}

impl Copies {
    /// Parses the `copies` parameter (absent: one).
    pub fn parse(value: Option<&str>) -> ApiResult<Copies> {
        match value {
            None | Some("one") => Ok(Copies::One),
            Some("all") => Ok(Copies::All),
            Some(other) => Err(ApiError::bad(
                "bad_copies",
                format!("copies={other}: use `one` (the default) or `all`"),
            )),
        }
    }
}

/// Copies at least this share of the longest copy's duration are complete; shorter ones
/// are excerpts or scraps of the recording and show only when nothing complete does.
pub const COMPLETE_SHARE: f32 = 0.8;

/// What collapsing needs of a ranked item.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CopyOf {
    pub id: i64,
    pub recording: u64,
    pub quality: u64,
    pub duration_s: f32,
}

impl CopyOf {
    /// Whether `self` is the copy to show rather than `other`, both complete.
    fn beats(&self, other: &CopyOf) -> bool {
        (self.quality, self.id) > (other.quality, other.id)
    }
}

/// The copy answers show among `copies` of one recording (see the module docs).
pub fn shown(copies: impl IntoIterator<Item = CopyOf>) -> Option<CopyOf> {
    let copies: Vec<CopyOf> = copies.into_iter().collect();
    shown_at(&copies).map(|i| copies[i])
}

/// Where in `copies` the copy [`shown`] is: callers holding items beside the copies pick
/// the item by its position instead of searching for its id again.
fn shown_at(copies: &[CopyOf]) -> Option<usize> {
    let longest = copies.iter().map(|c| c.duration_s).fold(0.0, f32::max);
    (0..copies.len())
        .filter(|&i| copies[i].duration_s >= COMPLETE_SHARE * longest)
        .reduce(|best, i| {
            if copies[i].beats(&copies[best]) {
                i
            } else {
                best
            }
        })
}

/// Keeps one item per recording from `ranked` (best first): the copy [`shown`] among each
/// recording's items, in the slot of its first (callers with scores sort again).
/// Recordings in `taken` (the seeds') are left out entirely. Returns the kept items and
/// how many were collapsed away.
pub fn one_per_recording<T>(
    ranked: Vec<T>,
    copy_of: impl Fn(&T) -> CopyOf,
    taken: &HashSet<u64>,
) -> (Vec<T>, usize) {
    let copies: Vec<CopyOf> = ranked.iter().map(copy_of).collect();
    // Each recording's items, recordings in the order of their first item.
    let mut order: Vec<u64> = Vec::new();
    let mut items: HashMap<u64, Vec<usize>> = HashMap::new();
    for (i, c) in copies.iter().enumerate() {
        if !taken.contains(&c.recording) {
            items
                .entry(c.recording)
                .or_insert_with(|| {
                    order.push(c.recording);
                    Vec::new()
                })
                .push(i);
        }
    }
    // Which item shows in which slot.
    let mut slot_of: HashMap<usize, usize> = HashMap::new();
    for (slot, recording) in order.iter().enumerate() {
        let group = &items[recording];
        let candidates: Vec<CopyOf> = group.iter().map(|&i| copies[i]).collect();
        let chosen = shown_at(&candidates).map_or(group[0], |k| group[k]);
        slot_of.insert(chosen, slot);
    }
    let mut kept: Vec<Option<T>> = (0..order.len()).map(|_| None).collect();
    let total = copies.len();
    for (i, item) in ranked.into_iter().enumerate() {
        if let Some(&slot) = slot_of.get(&i) {
            kept[slot] = Some(item);
        }
    }
    let kept: Vec<T> = kept.into_iter().flatten().collect();
    let collapsed = total - kept.len();
    (kept, collapsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(id: i64, recording: u64, quality: u64) -> CopyOf {
        CopyOf {
            id,
            recording,
            quality,
            duration_s: 200.0,
        }
    }

    #[test]
    fn the_best_copy_takes_the_first_copys_place() {
        let ranked = vec![
            c(1, 10, 5),
            c(2, 20, 5),
            c(3, 10, 9),
            c(4, 10, 9),
            c(5, 30, 1),
        ];
        let (kept, collapsed) = one_per_recording(ranked, |x| *x, &HashSet::new());
        // Recording 10: copies 3 and 4 have the better quality, 4 is newer.
        assert_eq!(kept.iter().map(|x| x.id).collect::<Vec<_>>(), vec![4, 2, 5]);
        assert_eq!(collapsed, 2);
    }

    /// A scrap of a recording (its fine fingerprint found it) never stands for it while a
    /// complete copy is among the items, whatever its quality; alone, it shows.
    #[test]
    fn a_complete_copy_shows_before_a_better_scrap() {
        let full_mp3 = CopyOf {
            duration_s: 12.6,
            ..c(1, 10, 1)
        };
        let trimmed_mp3 = CopyOf {
            duration_s: 10.5,
            ..c(2, 10, 1)
        };
        let scrap_flac = CopyOf {
            duration_s: 1.0,
            ..c(3, 10, 9)
        };
        let (kept, collapsed) = one_per_recording(
            vec![scrap_flac, full_mp3, trimmed_mp3],
            |x| *x,
            &HashSet::new(),
        );
        // Both MP3s are complete (10.5 s is over 0.8 of 12.6 s); the newer one shows.
        assert_eq!(kept, vec![trimmed_mp3]);
        assert_eq!(collapsed, 2);
        assert_eq!(shown([scrap_flac]), Some(scrap_flac));
        assert_eq!(shown([scrap_flac, full_mp3]), Some(full_mp3));
        assert_eq!(shown([]), None);
    }

    #[test]
    fn a_seeds_recording_is_left_out() {
        let ranked = vec![c(1, 10, 5), c(2, 20, 5)];
        let taken: HashSet<u64> = [10].into_iter().collect();
        let (kept, collapsed) = one_per_recording(ranked, |x| *x, &taken);
        assert_eq!(kept, vec![c(2, 20, 5)]);
        assert_eq!(collapsed, 1);
    }

    #[test]
    fn copies_parameter() {
        assert_eq!(Copies::parse(None).unwrap(), Copies::One);
        assert_eq!(Copies::parse(Some("all")).unwrap(), Copies::All);
        assert!(Copies::parse(Some("some")).is_err());
    }
}
