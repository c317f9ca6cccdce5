//! The derived indexes of a data folder, kept in step with the store.
//!
//! `<data-dir>/vectors/` holds the HNSW index and `<data-dir>/text/` the tantivy index.
//! Each records the store change sequence it reflects; [`DerivedIndexes::catch_up`] reads
//! `changes_since(seq)` and applies them (a taken-down track becomes a tombstone at once).
//! An index that is missing, unreadable or from another schema starts empty at sequence 0,
//! so catching up rebuilds it from the store: the store is the only truth.

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::catalog::{Catalog, CatalogError, Change};
use crate::recordings;
use crate::text::{TextError, TextIndex};
use crate::vectors::{Engine, HnswParams, VectorError, VectorIndex};

/// Why the derived indexes could not be brought up to date.
#[derive(Debug, thiserror::Error)]
pub enum DerivedError {
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Vectors(#[from] VectorError),
    #[error(transparent)]
    Text(#[from] TextError),
    #[error("index lock {0}: {1}")]
    Lock(PathBuf, std::io::Error),
}

type Result<T> = std::result::Result<T, DerivedError>;

/// Changes read from the store per round trip while catching up.
pub const PAGE: i64 = 20_000;

/// An exclusive claim on a data folder's indexes (`<data-dir>/indexes.lock`): a running
/// server holds it for its lifetime, so a `motif index` run against the same folder
/// leaves the indexes to the server, which catches up from the store by itself.
#[derive(Debug)]
pub struct IndexLock {
    _file: File,
}

impl IndexLock {
    /// Takes the lock if no other holder has it; `Ok(None)` when it is held.
    pub fn try_acquire(data_dir: &Path) -> Result<Option<IndexLock>> {
        let path = data_dir.join("indexes.lock");
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| DerivedError::Lock(path.clone(), e))?;
        match file.try_lock() {
            Ok(()) => Ok(Some(IndexLock { _file: file })),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(DerivedError::Lock(path, e)),
        }
    }
}

/// What opening and catching up did, for the run summary.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct CatchUp {
    /// Changes applied.
    pub applied: u64,
    /// The change sequence both indexes now reflect.
    pub seq: i64,
    /// Indexes that could not be loaded and were rebuilt from the store, with why.
    pub rebuilt: Vec<String>,
    /// Indexes kept as found although the configuration asks for something else (a
    /// vector index built by another engine), with what rebuilds them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub kept: Vec<String>,
    /// Why the indexes were left alone (a running server holds them and catches up itself).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    /// Active tracks left out of the vector index because their embedding has another
    /// dimension than this analyser's (analysed by an older version: `motif index
    /// --reanalyze` brings them back). They stay in the text index.
    #[serde(skip_serializing_if = "is_zero")]
    pub other_dimension: u64,
    /// Tracks found to be copies of a recording already in the catalogue (by their
    /// fingerprints, [`crate::recordings`]).
    pub copies_found: u64,
}

/// What applying one page of changes did beyond applying them.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Applied {
    /// See [`CatchUp::other_dimension`].
    pub other_dimension: u64,
    /// See [`CatchUp::copies_found`].
    pub copies_found: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The HNSW and tantivy indexes of one data folder.
pub struct DerivedIndexes {
    dir: PathBuf,
    pub vectors: VectorIndex,
    pub text: TextIndex,
    /// The engine a rebuilt vector index uses (a loaded one keeps its own).
    engine: Engine,
    rebuilt: Vec<String>,
    kept: Vec<String>,
    /// The sequence of the last change applied to the text index (committed or not).
    text_applied: i64,
    /// Whether the vector index changed since it was last saved.
    vectors_dirty: bool,
}

impl DerivedIndexes {
    /// Opens the indexes under `data_dir` (creating it), falling back to empty ones where
    /// they are missing or unreadable. `dim` is the embedding dimension; `engine` builds a
    /// new or rebuilt vector index. A vector index built by another engine is kept and
    /// used as it is (a rebuild of a large catalogue takes minutes, and a server started
    /// without the flag must not start one), noted in [`CatchUp::kept`];
    /// [`reset`](Self::reset) (`motif reindex`) rebuilds it on `engine`.
    pub fn open(
        data_dir: &Path,
        dim: usize,
        params: HnswParams,
        engine: Engine,
    ) -> Result<DerivedIndexes> {
        let vec_dir = data_dir.join("vectors");
        let mut rebuilt = Vec::new();
        let mut kept = Vec::new();
        let vectors = match VectorIndex::load(&vec_dir) {
            Ok(v) if v.dim() == dim => {
                if v.engine() != engine {
                    kept.push(format!(
                        "vectors: built by the {} engine, kept although {engine} is \
                         configured; `motif reindex --vector-engine {engine}` rebuilds it",
                        v.engine()
                    ));
                }
                v
            }
            Ok(v) => {
                rebuilt.push(format!("vectors: dimension {} != {dim}", v.dim()));
                VectorIndex::new(engine, dim, params, 0)?
            }
            Err(e) => {
                if vec_dir.exists() {
                    rebuilt.push(format!("vectors: {e}"));
                }
                VectorIndex::new(engine, dim, params, 0)?
            }
        };
        let text_dir = data_dir.join("text");
        let text = match TextIndex::open_or_create(&text_dir) {
            Ok(t) => t,
            Err(e) => {
                rebuilt.push(format!("text: {e}"));
                let _ = std::fs::remove_dir_all(&text_dir);
                TextIndex::open_or_create(&text_dir)?
            }
        };
        let text_applied = text.seq();
        Ok(DerivedIndexes {
            dir: data_dir.to_path_buf(),
            vectors,
            text,
            engine,
            rebuilt,
            kept,
            text_applied,
            vectors_dirty: false,
        })
    }

    /// Empties both indexes (sequence 0), so that the next catch-up rebuilds them from the
    /// store: tombstones are compacted away and the graph is built afresh, on the engine
    /// given to [`open`](Self::open).
    pub fn reset(&mut self, params: HnswParams) -> Result<()> {
        self.vectors = VectorIndex::new(self.engine, self.vectors.dim(), params, 0)?;
        self.text.clear()?;
        self.text.commit(0)?;
        self.text_applied = 0;
        self.vectors_dirty = true;
        Ok(())
    }

    /// The change sequence up to which both indexes have applied every change (the
    /// text index's part may still await [`commit_text`](Self::commit_text)).
    pub fn applied_seq(&self) -> i64 {
        self.vectors.seq().min(self.text_applied)
    }

    /// Reasons indexes were rebuilt when opened (reported once).
    pub fn take_rebuilt(&mut self) -> Vec<String> {
        std::mem::take(&mut self.rebuilt)
    }

    /// Applies one page of store changes, in change order, to whichever index lacks them:
    /// vector changes are live at once, text changes after [`commit_text`](Self::commit_text).
    /// The vectors go first: the text documents carry each track's recording, which
    /// [`recordings::assign`] finds among the track's neighbours in the vector index.
    pub fn apply(&mut self, changes: Vec<Change>) -> Result<Applied> {
        let Some(last) = changes.last().map(|c| c.seq) else {
            return Ok(Applied::default());
        };
        let mut applied = Applied::default();
        let (vseq, tseq) = (self.vectors.seq(), self.text_applied);
        // Pages come in change order, so what an index lacks is a suffix of each page.
        let vec_from = changes.partition_point(|c| c.seq <= vseq);
        if vec_from < changes.len() {
            let mut ups = Vec::new();
            let dim = self.vectors.dim();
            for c in changes.iter().skip(vec_from) {
                match (&c.embedding, c.active) {
                    (Some(e), true) if e.len() == dim => ups.push((c.id, e.clone())),
                    (Some(_), true) => {
                        // An older analyser's layout: searchable by text, not by vector,
                        // until it is analysed again.
                        applied.other_dimension += 1;
                        self.vectors.remove(c.id);
                    }
                    _ => {
                        self.vectors.remove(c.id);
                    }
                }
            }
            if !ups.is_empty() {
                self.vectors.upsert(&ups)?;
            }
            self.vectors.set_seq(last);
            self.vectors_dirty = true;
        }
        let text_from = changes.partition_point(|c| c.seq <= tseq);
        if text_from < changes.len() {
            let page = &changes[text_from..];
            let found = recordings::assign(page, &self.vectors, &self.text)?;
            applied.copies_found = found.copies_found;
            self.text.apply(page, &found.recordings)?;
            self.text_applied = last;
        }
        Ok(applied)
    }

    /// Makes the text changes applied so far visible and durable.
    pub fn commit_text(&mut self) -> Result<()> {
        if self.text_applied != self.text.seq() {
            self.text.commit(self.text_applied)?;
        }
        Ok(())
    }

    /// Whether the vector index has changes not yet saved.
    pub fn vectors_dirty(&self) -> bool {
        self.vectors_dirty
    }

    /// Saves the vector index (atomically) to `<data-dir>/vectors`.
    pub fn save_vectors(&mut self) -> Result<()> {
        self.vectors.save(&self.dir.join("vectors"))?;
        self.vectors_dirty = false;
        Ok(())
    }

    /// Applies every store change after the indexes' sequences, then saves both.
    pub async fn catch_up(&mut self, catalog: &Catalog) -> Result<CatchUp> {
        let mut report = CatchUp {
            rebuilt: std::mem::take(&mut self.rebuilt),
            kept: std::mem::take(&mut self.kept),
            ..CatchUp::default()
        };
        // Each index follows from its own sequence; reading from the lower one and
        // skipping what an index already has keeps them independent.
        // An index ahead of the store belongs to another (or a restored) database: start
        // over rather than serve tracks the store does not have.
        let store_seq = catalog.max_seq().await?;
        if self.vectors.seq() > store_seq || self.text.seq() > store_seq {
            report.rebuilt.push(format!(
                "indexes at sequence {} / {} but the store is at {store_seq}",
                self.vectors.seq(),
                self.text.seq()
            ));
            self.reset(self.vectors.params())?;
        }
        let before = self.applied_seq();
        let mut after = before;
        loop {
            let changes = catalog.changes_since(after, PAGE).await?;
            let Some(last) = changes.last().map(|c| c.seq) else {
                break;
            };
            report.applied += changes.len() as u64;
            let applied = self.apply(changes)?;
            report.other_dimension += applied.other_dimension;
            report.copies_found += applied.copies_found;
            // Committed page by page: the next page's tracks are matched against this
            // page's documents (recordings::assign reads committed documents).
            self.commit_text()?;
            after = last;
        }
        let seq = after.max(self.vectors.seq()).max(self.text_applied);
        self.text_applied = seq;
        self.commit_text()?;
        if self.vectors.seq() != seq {
            self.vectors.set_seq(seq);
            self.vectors_dirty = true;
        }
        if self.vectors_dirty || !self.dir.join("vectors").exists() {
            self.save_vectors()?;
        }
        report.seq = seq;
        Ok(report)
    }

    /// Releases the text index writer (waiting for merges) so another process can write.
    pub fn close(&mut self) -> Result<()> {
        self.text.close_writer()?;
        Ok(())
    }
}
