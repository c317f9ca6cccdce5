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
//! 1. Candidates: the track's nearest neighbours in the vector index with a cosine
//!    similarity of at least [`MIN_SIMILARITY`]. Copies of one recording embed almost
//!    identically (a codec moves the embedding by a cosine distance of 0.004 at the median,
//!    0.08 at most; other recordings are 0.40 or more away), so the lookup costs one
//!    approximate nearest-neighbour search (a fraction of a millisecond at a million
//!    tracks) and never compares the catalogue pairwise.
//! 2. Proof: the fingerprints must line up ([`embeddings::fingerprint::compare`]: the bit
//!    error rate at the best offset, over most of the longer one) and the durations must
//!    agree. Similar-sounding tracks of one soundtrack pass step 1 and fail here.
//! 3. Choice: among proven candidates, the closest fingerprint, then the lowest id.
//!
//! Assignment runs in change order, inside the derived-index catch-up, so it is
//! incremental, repeatable from the store alone (a rebuilt index assigns the same) and
//! as safe against kill -9 as the indexes themselves. A recording is never merged with
//! another after the fact: a track that matches two recordings joins the closer one (a
//! chain of near matches cannot glue distinct recordings together).

use std::collections::HashMap;

use embeddings::fingerprint::{compare, durations_agree, Match};
use rayon::prelude::*;

use crate::catalog::Change;
use crate::text::{CopyFacts, TextError, TextIndex};
use crate::vectors::VectorIndex;

/// Least cosine similarity of a candidate copy in the vector index (see the module docs).
pub const MIN_SIMILARITY: f32 = 0.8;

/// Nearest neighbours looked at per track.
pub const NEIGHBOURS: usize = 8;

/// Candidate list size of the neighbour search: copies are the very nearest, so a
/// narrow search finds them (the vector index's default serves ranked answers).
const EF: usize = 48;

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
    // The neighbour searches only read the vector index: run them in parallel.
    let neighbours: Vec<Vec<i64>> = changes
        .par_iter()
        .map(|c| match listenable(c, vectors.dim()) {
            Some(embedding) => vectors
                .search_ef(embedding, NEIGHBOURS + 1, EF, None)
                .into_iter()
                .filter(|&(id, sim)| id != c.id && sim >= MIN_SIMILARITY)
                .map(|(id, _)| id)
                .collect(),
            None => Vec::new(),
        })
        .collect();
    let mut out = Assigned::default();
    // The page's tracks as decided so far; `None`: no longer a candidate (taken down,
    // without analysis) even if an older document says otherwise.
    let mut page: HashMap<i64, Option<CopyFacts>> = HashMap::new();
    for (c, near) in changes.iter().zip(neighbours) {
        let Some(own) = own_facts(c, vectors.dim()) else {
            page.insert(c.id, None);
            continue;
        };
        let mut best: Option<(Match, CopyFacts)> = None;
        for n in near {
            let candidate = match page.get(&n) {
                Some(Some(f)) => f.clone(),
                Some(None) => continue,
                None => match text.copy_facts(n)? {
                    Some(f) => f,
                    None => continue,
                },
            };
            let Some(m) = same_recording(&own, &candidate) else {
                continue;
            };
            let better = match &best {
                None => true,
                Some((b, f)) => (m.bit_error_rate, candidate.id) < (b.bit_error_rate, f.id),
            };
            if better {
                best = Some((m, candidate));
            }
        }
        let recording = match best {
            Some((_, f)) => {
                out.recordings.insert(c.id, f.recording);
                out.copies_found += 1;
                f.recording
            }
            None => own.recording,
        };
        page.insert(c.id, Some(CopyFacts { recording, ..own }));
    }
    Ok(out)
}

/// The fingerprint match when `a` and `b` are copies of one recording.
pub fn same_recording(a: &CopyFacts, b: &CopyFacts) -> Option<Match> {
    if !durations_agree(a.duration_s, b.duration_s) {
        return None;
    }
    compare(&a.fingerprint, &b.fingerprint).filter(Match::is_same_recording)
}

/// The embedding of a change that can be matched: active, analysed in this index's
/// space, with a fingerprint.
fn listenable(c: &Change, dim: usize) -> Option<&[f32]> {
    let e = c.embedding.as_deref()?;
    (c.active && c.attributes.is_some() && !c.fingerprint.is_empty() && e.len() == dim).then_some(e)
}

fn own_facts(c: &Change, dim: usize) -> Option<CopyFacts> {
    listenable(c, dim)?;
    Some(CopyFacts {
        id: c.id,
        recording: crate::filter::recording_key(&c.recording),
        quality: c.quality,
        duration_s: c.duration_s.unwrap_or(0.0),
        fingerprint: c.fingerprint.clone(),
    })
}
