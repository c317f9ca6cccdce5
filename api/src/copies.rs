//! One answer per recording: copies of one recording (found by their fingerprints, or
//! sharing an ISRC or the file's bytes; [`indexer::recordings`]) show as one track in every
//! list unless the caller asks for all copies (`copies=all`).
//!
//! Which copy shows: among the copies the query found (that passed its filters), the best
//! quality ([`indexer::catalog::rows::copy_quality`]: lossless first, then the higher
//! sample rate, then more channels), then the newest (the higher id), ranked by its own
//! score. Taking a copy down leaves the others, and the next best shows in its place.

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

/// What collapsing needs of a ranked item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopyOf {
    pub id: i64,
    pub recording: u64,
    pub quality: u64,
}

impl CopyOf {
    /// Whether `self` is the copy to show rather than `other`.
    fn beats(&self, other: &CopyOf) -> bool {
        (self.quality, self.id) > (other.quality, other.id)
    }
}

/// The copy answers show among `copies` of one recording (see the module docs).
pub fn shown(copies: impl IntoIterator<Item = CopyOf>) -> Option<CopyOf> {
    copies
        .into_iter()
        .reduce(|best, c| if c.beats(&best) { c } else { best })
}

/// Keeps one item per recording from `ranked` (best first): the best copy among each
/// recording's items, in the slot of its first (callers with scores sort again). Recordings in `taken` (the seeds') are
/// left out entirely. Returns the kept items and how many were collapsed away.
pub fn one_per_recording<T>(
    ranked: Vec<T>,
    copy_of: impl Fn(&T) -> CopyOf,
    taken: &HashSet<u64>,
) -> (Vec<T>, usize) {
    let mut slot: HashMap<u64, usize> = HashMap::new();
    let mut kept: Vec<T> = Vec::with_capacity(ranked.len());
    let mut collapsed = 0;
    for item in ranked {
        let c = copy_of(&item);
        if taken.contains(&c.recording) {
            collapsed += 1;
            continue;
        }
        match slot.get(&c.recording) {
            None => {
                slot.insert(c.recording, kept.len());
                kept.push(item);
            }
            Some(&i) => {
                collapsed += 1;
                if c.beats(&copy_of(&kept[i])) {
                    kept[i] = item;
                }
            }
        }
    }
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
