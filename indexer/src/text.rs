//! The text index (tantivy): title, artists, album, genre and tags as BM25 text; tags also
//! as exact terms and facets (`/mood/calm`); every attribute, the release year and the
//! duration as fast fields for range filters. One document per active track, keyed by
//! the track id; a taken-down or updated track's old document is deleted by that key.
//!
//! Each commit carries the store change sequence it reflects as its payload, so the
//! sequence and the documents are durable together.

use std::path::Path;

use tantivy::collector::TopDocs;
use tantivy::query::QueryParser;
use tantivy::schema::{
    Facet, FacetOptions, Field, NumericOptions, Schema, Value, FAST, INDEXED, STORED, STRING, TEXT,
};
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term};

use crate::catalog::{Change, ATTRIBUTE_COLUMNS};

/// Why the text index cannot be opened or written.
#[derive(Debug, thiserror::Error)]
pub enum TextError {
    #[error("text index: {0}")]
    Tantivy(#[from] tantivy::TantivyError),
    #[error("text index directory {0}: {1}")]
    Dir(String, String),
    #[error("text index schema differs from this version's (rebuild it)")]
    Schema,
}

type Result<T> = std::result::Result<T, TextError>;

/// Field handles, resolved once from the schema.
#[derive(Clone, Debug)]
pub struct Fields {
    pub id: Field,
    pub external_id: Field,
    pub title: Field,
    pub artists: Field,
    pub album: Field,
    pub genre: Field,
    pub tags_text: Field,
    pub tag: Field,
    pub tag_facet: Field,
    pub key: Field,
    pub mode: Field,
    pub camelot: Field,
    pub year: Field,
    pub duration_s: Field,
    /// One f64 fast field per [`ATTRIBUTE_COLUMNS`] entry, same order.
    pub attributes: Vec<Field>,
}

/// The index schema (a change here means existing indexes are rebuilt).
pub fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let num = NumericOptions::default().set_indexed().set_fast();
    let id = b.add_u64_field("id", INDEXED | STORED | FAST);
    let external_id = b.add_text_field("external_id", STRING | STORED);
    let title = b.add_text_field("title", TEXT | STORED);
    let artists = b.add_text_field("artists", TEXT | STORED);
    let album = b.add_text_field("album", TEXT | STORED);
    let genre = b.add_text_field("genre", TEXT | STORED);
    let tags_text = b.add_text_field("tags", TEXT);
    let tag = b.add_text_field("tag", STRING | FAST);
    let tag_facet = b.add_facet_field("tag_facet", FacetOptions::default());
    let key = b.add_text_field("key", STRING | FAST);
    let mode = b.add_text_field("mode", STRING | FAST);
    let camelot = b.add_text_field("camelot", STRING | FAST);
    let year = b.add_i64_field("year", num.clone());
    let duration_s = b.add_f64_field("duration_s", num.clone());
    let attributes = ATTRIBUTE_COLUMNS
        .iter()
        .map(|c| b.add_f64_field(c, num.clone()))
        .collect();
    let fields = Fields {
        id,
        external_id,
        title,
        artists,
        album,
        genre,
        tags_text,
        tag,
        tag_facet,
        key,
        mode,
        camelot,
        year,
        duration_s,
        attributes,
    };
    (b.build(), fields)
}

/// A tantivy index of the catalogue's active tracks.
pub struct TextIndex {
    index: Index,
    fields: Fields,
    reader: IndexReader,
    writer: Option<IndexWriter>,
    seq: i64,
}

/// Memory for the writer: tantivy needs >= 15 MB per thread; more means fewer segments.
const WRITER_BYTES: usize = 200_000_000;

impl TextIndex {
    /// Opens the index in `dir`, creating an empty one when there is none. An index with
    /// another schema is an error ([`TextError::Schema`]): the caller rebuilds.
    pub fn open_or_create(dir: &Path) -> Result<TextIndex> {
        std::fs::create_dir_all(dir)
            .map_err(|e| TextError::Dir(dir.display().to_string(), e.to_string()))?;
        let (schema, fields) = schema();
        let index = if dir.join("meta.json").exists() {
            let index = Index::open_in_dir(dir)?;
            if index.schema() != schema {
                return Err(TextError::Schema);
            }
            index
        } else {
            Index::create_in_dir(dir, schema)?
        };
        Self::from_index(index, fields)
    }

    /// An index held in memory only (tests, benchmarks).
    pub fn in_memory() -> Result<TextIndex> {
        let (schema, fields) = schema();
        Self::from_index(Index::create_in_ram(schema), fields)
    }

    fn from_index(index: Index, fields: Fields) -> Result<TextIndex> {
        let seq = index
            .load_metas()?
            .payload
            .and_then(|p| serde_json::from_str::<serde_json::Value>(&p).ok())
            .and_then(|v| v.get("seq").and_then(|s| s.as_i64()))
            .unwrap_or(0);
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        Ok(TextIndex {
            index,
            fields,
            reader,
            writer: None,
            seq,
        })
    }

    /// The store change sequence of the last commit.
    pub fn seq(&self) -> i64 {
        self.seq
    }

    pub fn fields(&self) -> &Fields {
        &self.fields
    }

    /// The reader (reloaded after each commit).
    pub fn reader(&self) -> &IndexReader {
        &self.reader
    }

    fn writer(&mut self) -> Result<&mut IndexWriter> {
        if self.writer.is_none() {
            self.writer = Some(self.index.writer(WRITER_BYTES)?);
        }
        Ok(self.writer.as_mut().expect("writer just set"))
    }

    /// Applies store changes: each changed track's document is replaced (or removed,
    /// when the track is taken down or has no analysis yet). Visible after [`commit`].
    ///
    /// [`commit`]: Self::commit
    pub fn apply(&mut self, changes: &[Change]) -> Result<()> {
        let f = self.fields.clone();
        let w = self.writer()?;
        for c in changes {
            w.delete_term(Term::from_field_u64(f.id, c.id as u64));
            if c.active && c.attributes.is_some() {
                w.add_document(document(&f, c))?;
            }
        }
        Ok(())
    }

    /// Removes every document (a rebuild starts here).
    pub fn clear(&mut self) -> Result<()> {
        self.writer()?.delete_all_documents()?;
        Ok(())
    }

    /// Makes applied changes durable and visible, recording `seq` with them.
    pub fn commit(&mut self, seq: i64) -> Result<()> {
        let payload = serde_json::json!({ "seq": seq }).to_string();
        let w = self.writer()?;
        let mut prepared = w.prepare_commit()?;
        prepared.set_payload(&payload);
        prepared.commit()?;
        self.reader.reload()?;
        self.seq = seq;
        Ok(())
    }

    /// Waits for background merges and releases the writer (and its lock on the folder).
    pub fn close_writer(&mut self) -> Result<()> {
        if let Some(w) = self.writer.take() {
            w.wait_merging_threads()?;
        }
        Ok(())
    }

    /// Number of indexed (active) tracks.
    pub fn len(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every indexed track id, sorted (consistency checks against the store).
    pub fn track_ids(&self) -> Result<Vec<i64>> {
        let searcher = self.reader.searcher();
        let mut ids = Vec::new();
        for seg in searcher.segment_readers() {
            let col = seg.fast_fields().u64("id")?;
            for doc in seg.doc_ids_alive() {
                if let Some(v) = col.first(doc) {
                    ids.push(v as i64);
                }
            }
        }
        ids.sort_unstable();
        Ok(ids)
    }

    /// BM25 search over title, artists, album, genre and tags (tantivy's query syntax);
    /// track ids with scores, best first.
    pub fn search(&self, query: &str, limit: usize) -> Result<Vec<(i64, f32)>> {
        let f = &self.fields;
        let mut parser = QueryParser::for_index(
            &self.index,
            vec![f.title, f.artists, f.album, f.genre, f.tags_text],
        );
        parser.set_conjunction_by_default();
        let q = parser.parse_query(query).map_err(|e| {
            TextError::Tantivy(tantivy::TantivyError::InvalidArgument(e.to_string()))
        })?;
        let searcher = self.reader.searcher();
        let top = searcher.search(&q, &TopDocs::with_limit(limit.max(1)).order_by_score())?;
        let mut out = Vec::with_capacity(top.len());
        for (score, addr) in top {
            let doc: TantivyDocument = searcher.doc(addr)?;
            if let Some(id) = doc.get_first(f.id).and_then(|v| v.as_u64()) {
                out.push((id as i64, score));
            }
        }
        Ok(out)
    }
}

fn document(f: &Fields, c: &Change) -> TantivyDocument {
    let mut d = TantivyDocument::default();
    d.add_u64(f.id, c.id as u64);
    d.add_text(f.external_id, &c.external_id);
    if let Some(t) = &c.title {
        d.add_text(f.title, t);
    }
    for a in &c.artists {
        d.add_text(f.artists, a);
    }
    if let Some(a) = &c.album {
        d.add_text(f.album, a);
    }
    if let Some(g) = &c.genre {
        d.add_text(f.genre, g);
    }
    for t in &c.tags {
        d.add_text(f.tags_text, t.replace([':', '-', '_'], " "));
        d.add_text(f.tag, t);
        let parts: Vec<&str> = t.splitn(2, ':').collect();
        d.add_facet(f.tag_facet, Facet::from_path(parts));
    }
    if let Some((values, key, mode, camelot)) = &c.attributes {
        d.add_text(f.key, key);
        d.add_text(f.mode, mode);
        d.add_text(f.camelot, camelot);
        for (field, v) in f.attributes.iter().zip(values) {
            d.add_f64(*field, *v);
        }
    }
    if let Some(y) = c.release_year {
        d.add_i64(f.year, y as i64);
    }
    if let Some(s) = c.duration_s {
        d.add_f64(f.duration_s, s);
    }
    d
}
