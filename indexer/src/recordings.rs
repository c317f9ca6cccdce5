//! Recordings: which tracks are copies of one recording (re-deliveries under new ids,
//! other encodes, a few seconds trimmed, a gain change), so that answers show one of them.
//!
//! Every track belongs to one recording, named by a number kept in the text index
//! ([`crate::text::Fields::recording`]); collapsing keeps one track per number. A track
//! starts in its own recording ([`crate::filter::recording_key`] of its ISRC, else of its
//! file's content hash, so identical files and equal ISRCs are one recording without any
//! listening). When the derived indexes apply a change, [`assign`] looks for an existing
//! track it is a copy of and, if there is one, puts it in that track's recording:
//!
//! 1. Candidates, two lookups that never compare the catalogue pairwise: the
//!    [`SHARING`] tracks sharing the most whole fingerprint values with it (an inverted
//!    index in the text index, [`crate::text::TextIndex::sharing_values`]; a re-encode
//!    keeps many values whole), and its [`NEIGHBOURS`] nearest neighbours in the vector
//!    index with a cosine similarity of at least [`MIN_SIMILARITY`] (real copies embed
//!    almost identically: a codec moves the embedding by a cosine distance of 0.004 at
//!    the median, 0.08 at most, against 0.40 or more to other recordings). Each finds
//!    copies the other misses: a low-bitrate encode of a short song may keep one value
//!    whole, an 8 kHz copy may embed far away. A short track (up to
//!    [`embeddings::fingerprint::FINE_UP_TO_S`]) is also looked up by its fine
//!    fingerprint's values: a scrap of a jingle has no fingerprint values at all.
//! 2. Proof: the fingerprints must line up ([`embeddings::fingerprint::same_recording`]:
//!    the bit error rate at the best offset, over most of the shorter one; the fine
//!    fingerprints where the fingerprints are too short to overlap) and the durations must
//!    agree (an excerpt of a longer track is another track). Similar-sounding tracks of one soundtrack pass step 1 and fail here.
//! 3. Choice: among proven candidates, the closest fingerprint (ties: the lower recording
//!    number).
//!
//! Assignment runs in change order, inside the derived-index catch-up, so it is
//! incremental, repeatable from the store alone (a rebuilt index assigns the same) and
//! as safe against kill -9 as the indexes themselves. A recording is never merged with
//! another after the fact: a track that matches two recordings joins the closer one (a
//! chain of near matches cannot glue distinct recordings together).

use std::collections::HashMap;

use embeddings::fingerprint::{fine_lookup_values, lookup_values, query_values, Evidence, Match};
use rayon::prelude::*;

use crate::catalog::Change;
use crate::text::{CopyFacts, TextError, TextIndex};
use crate::vectors::VectorIndex;

/// Least cosine similarity of a candidate copy in the vector index. Real copies embed
/// almost identically (see the module docs), but a low-bitrate encode of a short,
/// synthetic song can move as far as 0.5 (the fixtures' Opus and MP3 pop song), so the
/// bar is low and the fingerprint decides.
pub const MIN_SIMILARITY: f32 = 0.4;

/// Nearest neighbours looked at per track.
pub const NEIGHBOURS: usize = 16;

/// Tracks sharing the most fingerprint values looked at per track.
pub const SHARING: usize = 8;

/// Candidate list size of the neighbour search: copies are among the very nearest, so a
/// narrow search finds them (the vector index's default serves ranked answers).
const EF: usize = 64;

/// What [`assign`] decided for one page of changes.
#[derive(Debug, Default)]
pub struct Assigned {
    /// Track id -> recording, for every track that joined another track's recording.
    pub recordings: HashMap<i64, u64>,
    /// How many tracks joined another track's recording (copies found).
    pub copies_found: u64,
}

/// Finds, for every change in order, an earlier track it is a copy of. `vectors` must
/// already hold the page's embeddings; `text` holds the earlier tracks' documents (the
/// page's own come from `changes`).
pub fn assign(
    changes: &[Change],
    vectors: &VectorIndex,
    text: &TextIndex,
) -> Result<Assigned, TextError> {
    let dim = vectors.dim();
    // Where each track of the page is, and what it is now (None: no longer a candidate,
    // taken down or without a fingerprint, even if an older document says otherwise).
    let position: HashMap<i64, usize> =
        changes.iter().enumerate().map(|(i, c)| (c.id, i)).collect();
    let own: Vec<Option<CopyFacts>> = changes.iter().map(|c| own_facts(c, dim)).collect();
    let values: Vec<Lookup> = own
        .iter()
        .map(|f| f.as_ref().map(Lookup::of).unwrap_or_default())
        .collect();
    // The page's tracks by lookup value (they are not in the text index yet).
    let mut in_page: HashMap<(Evidence, u32), Vec<usize>> = HashMap::new();
    for (i, lookup) in values.iter().enumerate() {
        for key in lookup.keys() {
            in_page.entry(key).or_default().push(i);
        }
    }
    let page = Page {
        changes,
        position: &position,
        own: &own,
        values: &values,
        in_page: &in_page,
        vectors,
        text,
    };
    // Searching and proving only read the indexes: run them in parallel, then decide in
    // change order.
    let proven: Vec<Vec<(Match, Candidate)>> = (0..changes.len())
        .into_par_iter()
        .map(|i| page.proven_copies(i))
        .collect::<Result<_, _>>()?;
    let mut out = Assigned::default();
    let mut decided: Vec<Option<u64>> = vec![None; changes.len()];
    for (i, (me, matches)) in own.iter().zip(proven).enumerate() {
        let Some(me) = me else { continue };
        // The closest proven copy whose recording is known: an indexed track, or one of
        // this page decided before this one (a later one will consider this one).
        let best = matches
            .into_iter()
            .filter_map(|(m, cand)| {
                let recording = match cand {
                    Candidate::Indexed(r) => r,
                    Candidate::InPage(j) if j < i => decided[j]?,
                    Candidate::InPage(_) => return None,
                };
                Some((m.bit_error_rate, recording))
            })
            .min_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let recording = match best {
            Some((_, r)) => {
                out.recordings.insert(changes[i].id, r);
                out.copies_found += 1;
                r
            }
            None => me.recording,
        };
        decided[i] = Some(recording);
    }
    Ok(out)
}

/// One page of changes and the indexes, as the parallel proving step reads them.
struct Page<'a> {
    changes: &'a [Change],
    position: &'a HashMap<i64, usize>,
    own: &'a [Option<CopyFacts>],
    values: &'a [Lookup],
    in_page: &'a HashMap<(Evidence, u32), Vec<usize>>,
    vectors: &'a VectorIndex,
    text: &'a TextIndex,
}

impl Page<'_> {
    /// The candidates of change `i` that its fingerprint proves to be copies.
    fn proven_copies(&self, i: usize) -> Result<Vec<(Match, Candidate)>, TextError> {
        let c = &self.changes[i];
        let (Some(me), Some(embedding)) = (&self.own[i], c.embedding.as_deref()) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for n in self.candidates(i, me, embedding)? {
            let (facts, candidate) = match self.position.get(&n) {
                Some(&j) => match &self.own[j] {
                    Some(f) => (f.clone(), Candidate::InPage(j)),
                    None => continue,
                },
                None => match self.text.copy_facts(n)? {
                    Some(f) => {
                        let r = f.recording;
                        (f, Candidate::Indexed(r))
                    }
                    None => continue,
                },
            };
            if let Some(m) = same_recording(me, &facts) {
                out.push((m, candidate));
            }
        }
        Ok(out)
    }

    /// Change `i`'s candidate copies (ids, itself left out): vector neighbours, indexed
    /// tracks sharing fingerprint values, and earlier tracks of the page sharing values.
    fn candidates(
        &self,
        i: usize,
        me: &CopyFacts,
        embedding: &[f32],
    ) -> Result<Vec<i64>, TextError> {
        let mut candidates: Vec<i64> = self
            .vectors
            .search_ef(embedding, NEIGHBOURS + 1, EF, None)
            .into_iter()
            .filter(|&(_, sim)| sim >= MIN_SIMILARITY)
            .map(|(n, _)| n)
            .collect();
        let lookup = &self.values[i];
        for (by, values) in [
            (Evidence::Fingerprint, &lookup.coarse),
            (Evidence::FineFingerprint, &lookup.fine),
        ] {
            candidates.extend(
                self.text
                    .sharing_values(by, &query_values(values), SHARING)?
                    .into_iter()
                    .map(|(n, _)| n),
            );
        }
        candidates.extend(
            lookup
                .keys()
                .filter_map(|key| self.in_page.get(&key))
                .flatten()
                .filter(|&&j| j < i)
                .map(|&j| self.changes[j].id),
        );
        candidates.sort_unstable();
        candidates.dedup();
        candidates.retain(|&n| n != me.id);
        Ok(candidates)
    }
}

/// Where a proven copy's recording comes from.
#[derive(Debug, Clone, Copy)]
enum Candidate {
    /// A track already in the text index, with its recording.
    Indexed(u64),
    /// The page's change at this position (its recording is decided in order).
    InPage(usize),
}

/// The fingerprint match when `a` and `b` are copies of one recording.
pub fn same_recording(a: &CopyFacts, b: &CopyFacts) -> Option<Match> {
    embeddings::fingerprint::same_recording(a.prints(), b.prints())
}

/// A track's lookup values, by fingerprint.
#[derive(Debug, Default)]
struct Lookup {
    coarse: Vec<u32>,
    fine: Vec<u32>,
}

impl Lookup {
    fn of(f: &CopyFacts) -> Lookup {
        Lookup {
            coarse: lookup_values(&f.fingerprint),
            fine: fine_lookup_values(&f.fine_fingerprint),
        }
    }

    /// Every value with the fingerprint it belongs to.
    fn keys(&self) -> impl Iterator<Item = (Evidence, u32)> + '_ {
        let coarse = self.coarse.iter().map(|&v| (Evidence::Fingerprint, v));
        coarse.chain(self.fine.iter().map(|&v| (Evidence::FineFingerprint, v)))
    }
}

/// The embedding of a change that can be matched: active, analysed in this index's
/// space, with a fingerprint or a fine one (a scrap of a second or two has only that).
fn listenable(c: &Change, dim: usize) -> Option<&[f32]> {
    let e = c.embedding.as_deref()?;
    let printed = !c.fingerprint.is_empty() || !c.fine_fingerprint.is_empty();
    (c.active && c.attributes.is_some() && printed && e.len() == dim).then_some(e)
}

fn own_facts(c: &Change, dim: usize) -> Option<CopyFacts> {
    listenable(c, dim)?;
    Some(CopyFacts {
        id: c.id,
        recording: crate::filter::recording_key(&c.recording),
        quality: c.quality,
        duration_s: c.duration_s.unwrap_or(0.0),
        fingerprint: c.fingerprint.clone(),
        fine_fingerprint: c.fine_fingerprint.clone(),
    })
}
