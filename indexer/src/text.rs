//! The text index (tantivy): title, artists, album, genre and tags as BM25 text; tags also
//! as exact terms and facets (`/mood/calm`); every attribute, the release year and the
//! duration as fast fields for range filters. One document per active track, keyed by
//! the track id; a taken-down or updated track's old document is deleted by that key.
//!
//! Each commit carries the store change sequence it reflects as its payload, so the
//! sequence and the documents are durable together.

use std::path::Path;

use std::collections::HashMap;
use std::ops::Bound;

use tantivy::collector::{Collector, Count, SegmentCollector, TopDocs};
use tantivy::columnar::{Column, StrColumn};
use tantivy::query::{
    AllQuery, BooleanQuery, ConstScoreQuery, Occur, Query, QueryParser, RangeQuery, TermQuery,
};
use tantivy::schema::{
    Facet, FacetOptions, Field, IndexRecordOption, NumericOptions, Schema, Value, FAST, INDEXED,
    STORED, STRING, TEXT,
};
use tantivy::{
    DocId, DocSet, Index, IndexReader, IndexWriter, ReloadPolicy, Score, SegmentReader,
    TantivyDocument, Term,
};

use crate::catalog::{Change, ATTRIBUTE_COLUMNS, ATTRIBUTE_COUNT};
use crate::filter::{artist_key, camelot_number, recording_key, Filter, NumField, TrackSet};
use embeddings::fingerprint::{Evidence, Prints};

/// Why the text index cannot be opened or written.
#[derive(Debug, thiserror::Error)]
pub enum TextError {
    #[error("text index: {0}")]
    Tantivy(#[from] tantivy::TantivyError),
    #[error("text index directory {0}: {1}")]
    Dir(String, String),
    #[error("text index schema differs from this version's (rebuild it)")]
    Schema,
    #[error("text query: {0}")]
    Query(String),
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
    /// [`artist_key`] of each credited artist (exclusion filters, artist spacing).
    pub artist_key: Field,
    /// The recording the track is a copy of ([`crate::recordings`]): the key of the
    /// recording it was matched to by its fingerprint, else [`recording_key`] of its ISRC or
    /// content hash. Collapsing keeps one track per value.
    pub recording: Field,
    /// [`crate::catalog::rows::copy_quality`]: which copy of a recording to show.
    pub quality: Field,
    /// The acoustic fingerprint, little-endian u32 values (stored: candidate copies are
    /// checked against it).
    pub fingerprint: Field,
    /// The fingerprint's lookup values as terms (all of a short one's, a fixed quarter of a
    /// longer one's: `embeddings::fingerprint::lookup_values`): copies keep many values
    /// whole, so the tracks sharing the most are candidate copies
    /// ([`TextIndex::sharing_values`]).
    pub fingerprint_values: Field,
    /// The fine fingerprint of a short track, little-endian u32 values (stored).
    pub fine_fingerprint: Field,
    /// The fine fingerprint's distinct non-silent values as terms
    /// (`embeddings::fingerprint::fine_lookup_values`): how copies of a short track whose
    /// fingerprint is too short to share values are found.
    pub fine_values: Field,
    /// [`camelot_number`] (harmonic ordering without string lookups).
    pub camelot_n: Field,
    /// 1 when the track is tagged `tempo:free` (playlists leave its tempo out of
    /// transitions).
    pub free_pulse: Field,
    /// BPM where the track starts and where it ends, from its beat times
    /// (`embeddings::beats::edge_tempi`); absent without enough beats. A playlist
    /// transition matches the end of one track to the start of the next.
    pub tempo_start: Field,
    pub tempo_end: Field,
    /// One f64 fast field per [`ATTRIBUTE_COLUMNS`] entry, same order.
    pub attributes: Vec<Field>,
}

/// The index schema (a change here means existing indexes are rebuilt).
pub fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let num = NumericOptions::default()
        .set_indexed()
        .set_fast()
        .set_stored();
    let id = b.add_u64_field("id", INDEXED | STORED | FAST);
    let external_id = b.add_text_field("external_id", STRING | STORED);
    let title = b.add_text_field("title", TEXT | STORED);
    let artists = b.add_text_field("artists", TEXT | STORED);
    let album = b.add_text_field("album", TEXT | STORED);
    let genre = b.add_text_field("genre", TEXT | STORED);
    let tags_text = b.add_text_field("tags", TEXT);
    let tag = b.add_text_field("tag", STRING | FAST | STORED);
    let tag_facet = b.add_facet_field("tag_facet", FacetOptions::default());
    let key = b.add_text_field("key", STRING | FAST | STORED);
    let mode = b.add_text_field("mode", STRING | FAST | STORED);
    let camelot = b.add_text_field("camelot", STRING | FAST | STORED);
    let year = b.add_i64_field("year", num.clone());
    let duration_s = b.add_f64_field("duration_s", num.clone());
    let artist_key = b.add_u64_field("artist_key", INDEXED | FAST);
    let recording = b.add_u64_field("recording", INDEXED | FAST | STORED);
    let quality = b.add_u64_field("quality", FAST | STORED);
    let fingerprint = b.add_bytes_field("fingerprint", STORED);
    let fingerprint_values = b.add_u64_field("fingerprint_values", INDEXED);
    let fine_fingerprint = b.add_bytes_field("fine_fingerprint", STORED);
    let fine_values = b.add_u64_field("fine_values", INDEXED);
    let camelot_n = b.add_u64_field("camelot_n", FAST);
    let free_pulse = b.add_u64_field("free_pulse", FAST);
    let tempo_start = b.add_f64_field("tempo_start", FAST);
    let tempo_end = b.add_f64_field("tempo_end", FAST);
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
        artist_key,
        recording,
        quality,
        fingerprint,
        fingerprint_values,
        fine_fingerprint,
        fine_values,
        camelot_n,
        free_pulse,
        tempo_start,
        tempo_end,
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
    /// when the track is taken down or has no analysis yet). A track's recording is the
    /// one `recordings` assigns it ([`crate::recordings::assign`]), else its own.
    /// Visible after [`commit`].
    ///
    /// [`commit`]: Self::commit
    pub fn apply(&mut self, changes: &[Change], recordings: &HashMap<i64, u64>) -> Result<()> {
        let f = self.fields.clone();
        let w = self.writer()?;
        for c in changes {
            w.delete_term(Term::from_field_u64(f.id, c.id as u64));
            if c.active && c.attributes.is_some() {
                let recording = recordings
                    .get(&c.id)
                    .copied()
                    .unwrap_or_else(|| recording_key(&c.recording));
                w.add_document(document(&f, c, recording))?;
            }
        }
        Ok(())
    }

    /// What a committed track's document says about it as a copy of a recording.
    pub fn copy_facts(&self, id: i64) -> Result<Option<CopyFacts>> {
        let f = &self.fields;
        let Some(doc) = stored_doc(&self.reader.searcher(), f, id)? else {
            return Ok(None);
        };
        Ok(Some(CopyFacts {
            id,
            recording: u64_of(&doc, f.recording),
            quality: u64_of(&doc, f.quality),
            duration_s: doc
                .get_first(f.duration_s)
                .and_then(|v| v.as_f64())
                .unwrap_or(0.0),
            fingerprint: u32s_of(&doc, f.fingerprint),
            fine_fingerprint: u32s_of(&doc, f.fine_fingerprint),
        }))
    }

    /// The `k` tracks sharing the most of `values` (lookup values of the fingerprint `by`
    /// names), most first, with how many they share.
    pub fn sharing_values(
        &self,
        by: Evidence,
        values: &[u32],
        k: usize,
    ) -> Result<Vec<(i64, u32)>> {
        if values.is_empty() || k == 0 {
            return Ok(Vec::new());
        }
        let f = &self.fields;
        let field = match by {
            Evidence::Fingerprint => f.fingerprint_values,
            Evidence::FineFingerprint => f.fine_values,
        };
        let clauses: Vec<(Occur, Box<dyn Query>)> = values
            .iter()
            .map(|&v| {
                let term = TermQuery::new(
                    Term::from_field_u64(field, u64::from(v)),
                    IndexRecordOption::Basic,
                );
                (
                    Occur::Should,
                    Box::new(ConstScoreQuery::new(Box::new(term), 1.0)) as Box<dyn Query>,
                )
            })
            .collect();
        let searcher = self.reader.searcher();
        let top = searcher.search(
            &BooleanQuery::new(clauses),
            &TopDocs::with_limit(k).order_by_score(),
        )?;
        Ok(scored_ids(&searcher, top)?
            .into_iter()
            .map(|(id, shared)| (id, shared.round() as u32))
            .collect())
    }

    /// The ids of the tracks that are copies of `recording`, sorted.
    pub fn copies_of(&self, recording: u64) -> Result<Vec<i64>> {
        let q = TermQuery::new(
            Term::from_field_u64(self.fields.recording, recording),
            IndexRecordOption::Basic,
        );
        let mut ids = self.reader.searcher().search(&q, &IdCollector)?;
        ids.sort_unstable();
        Ok(ids)
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
        let page = self.search_page(Some(query), &Filter::default(), limit, 0)?;
        Ok(page.hits)
    }

    /// Parses free text (tantivy syntax: words are ANDed, `"quoted phrases"`, `field:word`)
    /// against title, artists, album, genre and tags.
    pub fn parse_text(&self, text: &str) -> Result<Box<dyn Query>> {
        let f = &self.fields;
        let mut parser = QueryParser::for_index(
            &self.index,
            vec![f.title, f.artists, f.album, f.genre, f.tags_text],
        );
        parser.set_conjunction_by_default();
        parser
            .parse_query(text)
            .map_err(|e| TextError::Query(e.to_string()))
    }

    /// The query matching exactly the documents that pass `filter` (and `text`, if any).
    pub fn query(&self, text: Option<&str>, filter: &Filter) -> Result<Box<dyn Query>> {
        let f = &self.fields;
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        match text.map(str::trim).filter(|t| !t.is_empty()) {
            Some(t) => clauses.push((Occur::Must, self.parse_text(t)?)),
            None => clauses.push((Occur::Must, Box::new(AllQuery))),
        }
        let term_q = |field: Field, v: &str| -> Box<dyn Query> {
            Box::new(TermQuery::new(
                Term::from_field_text(field, v),
                IndexRecordOption::Basic,
            ))
        };
        let any_of = |qs: Vec<Box<dyn Query>>| -> Box<dyn Query> {
            Box::new(BooleanQuery::new(
                qs.into_iter().map(|q| (Occur::Should, q)).collect(),
            ))
        };
        for t in &filter.tags_all {
            clauses.push((Occur::Must, term_q(f.tag, t)));
        }
        if !filter.tags_any.is_empty() {
            let qs = filter.tags_any.iter().map(|t| term_q(f.tag, t)).collect();
            clauses.push((Occur::Must, any_of(qs)));
        }
        for t in &filter.tags_none {
            clauses.push((Occur::MustNot, term_q(f.tag, t)));
        }
        if !filter.keys.is_empty() {
            let qs = filter.keys.iter().map(|k| term_q(f.key, k)).collect();
            clauses.push((Occur::Must, any_of(qs)));
        }
        if let Some(m) = &filter.mode {
            clauses.push((Occur::Must, term_q(f.mode, m)));
        }
        if !filter.camelot.is_empty() {
            let qs = filter
                .camelot
                .iter()
                .map(|c| term_q(f.camelot, c))
                .collect();
            clauses.push((Occur::Must, any_of(qs)));
        }
        for a in &filter.artists_none {
            clauses.push((
                Occur::MustNot,
                Box::new(TermQuery::new(
                    Term::from_field_u64(f.artist_key, artist_key(a)),
                    IndexRecordOption::Basic,
                )),
            ));
        }
        // A free pulse's tempo is only its likeliest period: BPM ranges leave it out.
        let tempo = NumField::parse("tempo_bpm");
        if filter
            .ranges
            .iter()
            .any(|r| Some(r.field) == tempo && (r.min.is_some() || r.max.is_some()))
        {
            clauses.push((Occur::MustNot, term_q(f.tag, embeddings::tags::FREE_TEMPO)));
        }
        for r in &filter.ranges {
            if r.min.is_none() && r.max.is_none() {
                continue;
            }
            let bound = |v: Option<f64>| -> Bound<Term> {
                match (v, r.field) {
                    (None, _) => Bound::Unbounded,
                    (Some(x), NumField::Year) => {
                        Bound::Included(Term::from_field_i64(f.year, x.round() as i64))
                    }
                    (Some(x), NumField::Duration) => {
                        Bound::Included(Term::from_field_f64(f.duration_s, x))
                    }
                    (Some(x), NumField::Attribute(i)) => {
                        Bound::Included(Term::from_field_f64(f.attributes[i], x))
                    }
                }
            };
            let (lo, hi) = (bound(r.min), bound(r.max));
            // A range with only one end needs the field named on the open end too.
            let field = match r.field {
                NumField::Year => f.year,
                NumField::Duration => f.duration_s,
                NumField::Attribute(i) => f.attributes[i],
            };
            let (lo, hi) = match (lo, hi) {
                (Bound::Unbounded, hi) => (open_end(field, r.field, true), hi),
                (lo, Bound::Unbounded) => (lo, open_end(field, r.field, false)),
                both => both,
            };
            clauses.push((Occur::Must, Box::new(RangeQuery::new(lo, hi))));
        }
        if clauses.len() == 1 {
            return Ok(clauses.pop().expect("one clause").1);
        }
        Ok(Box::new(BooleanQuery::new(clauses)))
    }

    /// The ids of every indexed track that passes `filter`.
    pub fn matching(&self, filter: &Filter) -> Result<TrackSet> {
        let q = self.query(None, filter)?;
        let ids = self.reader.searcher().search(&q, &IdCollector)?;
        Ok(ids.into_iter().collect())
    }

    /// One page of tracks matching `text` and `filter`: by BM25 when there is text, else
    /// by track id; with the total number of matches.
    pub fn search_page(
        &self,
        text: Option<&str>,
        filter: &Filter,
        limit: usize,
        offset: usize,
    ) -> Result<Page> {
        self.search_page_with(text, filter, limit, offset, false)
    }

    /// [`search_page`](Self::search_page), with the matches' tag counts (facets) gathered
    /// in the same pass over the matching documents when `facets` is set.
    pub fn search_page_with(
        &self,
        text: Option<&str>,
        filter: &Filter,
        limit: usize,
        offset: usize,
        facets: bool,
    ) -> Result<Page> {
        let q = self.query(text, filter)?;
        let searcher = self.reader.searcher();
        let has_text = text.is_some_and(|t| !t.trim().is_empty());
        let tag_counter = facets.then_some(TagCounter);
        if !has_text {
            let (mut ids, counts) = searcher.search(&q, &(IdCollector, tag_counter))?;
            ids.sort_unstable();
            let total = ids.len() as u64;
            let hits = ids
                .into_iter()
                .skip(offset)
                .take(limit)
                .map(|id| (id, 1.0))
                .collect();
            return Ok(Page {
                hits,
                total,
                tag_counts: counts.map(sorted_counts),
            });
        }
        let (top, total, counts) = searcher.search(
            &q,
            &(
                TopDocs::with_limit(limit.max(1))
                    .and_offset(offset)
                    .order_by_score(),
                Count,
                tag_counter,
            ),
        )?;
        Ok(Page {
            hits: scored_ids(&searcher, top)?,
            total: total as u64,
            tag_counts: counts.map(sorted_counts),
        })
    }

    /// The `k` best BM25 matches of `text` under `filter`, without counting all matches
    /// (lets tantivy skip blocks that cannot make the top `k`).
    pub fn top_hits(&self, text: &str, filter: &Filter, k: usize) -> Result<Vec<(i64, f32)>> {
        let q = self.query(Some(text), filter)?;
        let searcher = self.reader.searcher();
        let top = searcher.search(&q, &TopDocs::with_limit(k.max(1)).order_by_score())?;
        scored_ids(&searcher, top)
    }

    /// How many matching tracks carry each tag (facet counts), most frequent first.
    pub fn tag_counts(&self, text: Option<&str>, filter: &Filter) -> Result<Vec<(String, u64)>> {
        let q = self.query(text, filter)?;
        let counts = self.reader.searcher().search(&q, &TagCounter)?;
        Ok(sorted_counts(counts))
    }

    /// Whether any indexed track carries `tag`.
    pub fn has_tag(&self, tag: &str) -> bool {
        let term = Term::from_field_text(self.fields.tag, tag);
        self.reader.searcher().doc_freq(&term).unwrap_or(0) > 0
    }

    /// The stored cards of `ids` (missing ones are skipped), in the order asked.
    pub fn cards(&self, ids: &[i64]) -> Result<Vec<Card>> {
        let searcher = self.reader.searcher();
        let f = &self.fields;
        let mut out = Vec::with_capacity(ids.len());
        for &id in ids {
            if let Some(doc) = stored_doc(&searcher, f, id)? {
                out.push(card(f, id, &doc));
            }
        }
        Ok(out)
    }

    /// The compact rows of the given tracks (absent ones skipped), sorted by id.
    ///
    /// Each id is looked up in the term dictionary on its own. A term-set query instead
    /// walks the dictionary with an automaton, which was a fifth of a 50-track playlist's
    /// CPU at 1M tracks (p50 45 ms, 30 ms with the lookups; docs/MEASUREMENTS.md).
    pub fn rows_of(&self, ids: impl Iterator<Item = i64>) -> Result<Vec<Row>> {
        let ids: Vec<i64> = ids.collect();
        let searcher = self.reader.searcher();
        let mut rows = Vec::with_capacity(ids.len());
        for (ord, seg) in searcher.segment_readers().iter().enumerate() {
            let postings_of = seg.inverted_index(self.fields.id)?;
            let alive = seg.alive_bitset();
            let mut reader = RowCollector.for_segment(ord as u32, seg)?;
            for &id in &ids {
                let term = Term::from_field_u64(self.fields.id, id as u64);
                let Some(mut postings) = postings_of
                    .read_postings(&term, IndexRecordOption::Basic)
                    .map_err(|e| TextError::Tantivy(e.into()))?
                else {
                    continue;
                };
                let mut doc = postings.doc();
                while doc != tantivy::TERMINATED {
                    if alive.is_none_or(|a| a.is_alive(doc)) {
                        reader.collect(doc, 0.0);
                    }
                    doc = postings.advance();
                }
            }
            rows.extend(reader.harvest());
        }
        rows.sort_unstable_by_key(|r| r.id);
        Ok(rows)
    }
}

/// The far end of a one-sided range: i64/f64 extremes of the field's type.
fn open_end(field: Field, kind: NumField, low: bool) -> Bound<Term> {
    match kind {
        NumField::Year => Bound::Included(Term::from_field_i64(
            field,
            if low { i64::MIN } else { i64::MAX },
        )),
        _ => Bound::Included(Term::from_field_f64(
            field,
            if low { f64::MIN } else { f64::MAX },
        )),
    }
}

/// A page of hits and how many documents matched in all.
#[derive(Debug, Clone, Default)]
pub struct Page {
    pub hits: Vec<(i64, f32)>,
    pub total: u64,
    /// Tags of all matches with counts, most frequent first (when asked for).
    pub tag_counts: Option<Vec<(String, u64)>>,
}

fn sorted_counts(counts: HashMap<String, u64>) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = counts.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v
}

/// A track as answers show it, read from its stored document.
#[derive(Debug, Clone, PartialEq)]
pub struct Card {
    pub id: i64,
    pub external_id: String,
    pub title: Option<String>,
    pub artists: Vec<String>,
    pub album: Option<String>,
    pub genre: Option<String>,
    pub year: Option<i64>,
    pub duration_s: Option<f64>,
    pub key: Option<String>,
    pub mode: Option<String>,
    pub camelot: Option<String>,
    pub tags: Vec<String>,
    /// [`ATTRIBUTE_COLUMNS`] values.
    pub attributes: [f64; ATTRIBUTE_COUNT],
    pub recording: u64,
    /// [`crate::catalog::rows::copy_quality`].
    pub quality: u64,
}

fn card(f: &Fields, id: i64, doc: &TantivyDocument) -> Card {
    let text = |field: Field| {
        doc.get_first(field)
            .and_then(|v| v.as_str())
            .map(str::to_string)
    };
    let texts = |field: Field| -> Vec<String> {
        doc.get_all(field)
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect()
    };
    let mut attributes = [0.0; ATTRIBUTE_COUNT];
    for (slot, field) in attributes.iter_mut().zip(&f.attributes) {
        *slot = doc
            .get_first(*field)
            .and_then(|v| v.as_f64())
            .unwrap_or(0.0);
    }
    Card {
        id,
        external_id: text(f.external_id).unwrap_or_default(),
        title: text(f.title),
        artists: texts(f.artists),
        album: text(f.album),
        genre: text(f.genre),
        year: doc.get_first(f.year).and_then(|v| v.as_i64()),
        duration_s: doc.get_first(f.duration_s).and_then(|v| v.as_f64()),
        key: text(f.key),
        mode: text(f.mode),
        camelot: text(f.camelot),
        tags: texts(f.tag),
        attributes,
        recording: u64_of(doc, f.recording),
        quality: u64_of(doc, f.quality),
    }
}

/// The stored document of track `id`, if it is indexed.
fn stored_doc(
    searcher: &tantivy::Searcher,
    f: &Fields,
    id: i64,
) -> Result<Option<TantivyDocument>> {
    let q = TermQuery::new(
        Term::from_field_u64(f.id, id as u64),
        IndexRecordOption::Basic,
    );
    let top = searcher.search(&q, &TopDocs::with_limit(1).order_by_score())?;
    match top.first() {
        Some((_, addr)) => Ok(Some(searcher.doc(*addr)?)),
        None => Ok(None),
    }
}

/// A stored fingerprint field of a document (empty when absent).
fn u32s_of(doc: &TantivyDocument, field: Field) -> Vec<u32> {
    doc.get_first(field)
        .and_then(|v| v.as_bytes())
        .map(crate::catalog::rows::u32s_from_bytes)
        .unwrap_or_default()
}

/// A stored u64 field of a document (0 when absent).
fn u64_of(doc: &TantivyDocument, field: Field) -> u64 {
    doc.get_first(field).and_then(|v| v.as_u64()).unwrap_or(0)
}

/// A track as a copy of a recording: what deciding whether another track is the same
/// recording needs.
#[derive(Debug, Clone, PartialEq)]
pub struct CopyFacts {
    pub id: i64,
    pub recording: u64,
    pub quality: u64,
    pub duration_s: f64,
    pub fingerprint: Vec<u32>,
    pub fine_fingerprint: Vec<u32>,
}

impl CopyFacts {
    /// The fingerprints as `embeddings::fingerprint`'s copy rule reads them.
    pub fn prints(&self) -> Prints<'_> {
        Prints {
            coarse: &self.fingerprint,
            fine: &self.fine_fingerprint,
            duration_s: self.duration_s,
        }
    }
}

/// What a playlist needs of a candidate, read from fast fields (no stored documents).
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub id: i64,
    pub attributes: [f32; ATTRIBUTE_COUNT],
    pub duration_s: f32,
    /// [`camelot_number`]; 0 unknown.
    pub camelot: u8,
    /// No steady pulse (`tempo:free`): its tempo is only a likeliest period.
    pub free_pulse: bool,
    /// BPM at the track's start and end from its beats; 0 where the track had too few.
    pub tempo_start: f32,
    pub tempo_end: f32,
    pub artists: Vec<u64>,
    pub recording: u64,
    /// [`crate::catalog::rows::copy_quality`].
    pub quality: u64,
}

impl Row {
    /// The tempo a transition into this track meets: at its start where its beats say,
    /// else its global tempo.
    pub fn start_bpm(&self) -> f32 {
        if self.tempo_start > 0.0 {
            self.tempo_start
        } else {
            self.attributes[0]
        }
    }

    /// The tempo a transition out of this track leaves from: at its end where its beats
    /// say, else its global tempo.
    pub fn end_bpm(&self) -> f32 {
        if self.tempo_end > 0.0 {
            self.tempo_end
        } else {
            self.attributes[0]
        }
    }
}

/// Track ids with their scores, from top documents.
fn scored_ids(
    searcher: &tantivy::Searcher,
    top: Vec<(Score, tantivy::DocAddress)>,
) -> Result<Vec<(i64, f32)>> {
    let mut hits = Vec::with_capacity(top.len());
    for (score, addr) in top {
        let col = searcher
            .segment_reader(addr.segment_ord)
            .fast_fields()
            .u64("id")?;
        if let Some(id) = col.first(addr.doc_id) {
            hits.push((id as i64, score));
        }
    }
    Ok(hits)
}

/// Collects matching track ids.
struct IdCollector;

struct IdSegment {
    ids: Column<u64>,
    out: Vec<i64>,
}

impl Collector for IdCollector {
    type Fruit = Vec<i64>;
    type Child = IdSegment;

    fn for_segment(&self, _: u32, seg: &SegmentReader) -> tantivy::Result<IdSegment> {
        Ok(IdSegment {
            ids: seg.fast_fields().u64("id")?,
            out: Vec::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<Vec<i64>>) -> tantivy::Result<Vec<i64>> {
        Ok(fruits.concat())
    }
}

impl SegmentCollector for IdSegment {
    type Fruit = Vec<i64>;

    fn collect(&mut self, doc: DocId, _: Score) {
        if let Some(id) = self.ids.first(doc) {
            self.out.push(id as i64);
        }
    }

    fn harvest(self) -> Vec<i64> {
        self.out
    }
}

/// Counts tags over matching documents (term ordinals per segment, names at the end).
struct TagCounter;

struct TagSegment {
    tags: Option<StrColumn>,
    counts: Vec<u64>,
}

impl Collector for TagCounter {
    type Fruit = HashMap<String, u64>;
    type Child = TagSegment;

    fn for_segment(&self, _: u32, seg: &SegmentReader) -> tantivy::Result<TagSegment> {
        let tags = seg.fast_fields().str("tag")?;
        let n = tags.as_ref().map_or(0, |t| t.num_terms());
        Ok(TagSegment {
            tags,
            counts: vec![0; n],
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<HashMap<String, u64>>) -> tantivy::Result<Self::Fruit> {
        let mut all = HashMap::new();
        for m in fruits {
            for (k, v) in m {
                *all.entry(k).or_insert(0) += v;
            }
        }
        Ok(all)
    }
}

impl SegmentCollector for TagSegment {
    type Fruit = HashMap<String, u64>;

    fn collect(&mut self, doc: DocId, _: Score) {
        if let Some(t) = &self.tags {
            for ord in t.term_ords(doc) {
                if let Some(c) = self.counts.get_mut(ord as usize) {
                    *c += 1;
                }
            }
        }
    }

    fn harvest(self) -> HashMap<String, u64> {
        let mut out = HashMap::new();
        if let Some(t) = &self.tags {
            for (ord, &n) in self.counts.iter().enumerate() {
                let mut name = String::new();
                if n > 0 && t.ord_to_str(ord as u64, &mut name).unwrap_or(false) {
                    out.insert(name, n);
                }
            }
        }
        out
    }
}

/// Reads [`Row`]s of matching documents from fast fields.
struct RowCollector;

struct RowSegment {
    id: Column<u64>,
    attributes: Vec<Column<f64>>,
    duration: Column<f64>,
    camelot: Column<u64>,
    free_pulse: Column<u64>,
    tempo_start: Column<f64>,
    tempo_end: Column<f64>,
    artists: Column<u64>,
    recording: Column<u64>,
    quality: Column<u64>,
    out: Vec<Row>,
}

impl Collector for RowCollector {
    type Fruit = Vec<Row>;
    type Child = RowSegment;

    fn for_segment(&self, _: u32, seg: &SegmentReader) -> tantivy::Result<RowSegment> {
        let ff = seg.fast_fields();
        Ok(RowSegment {
            id: ff.u64("id")?,
            attributes: ATTRIBUTE_COLUMNS
                .iter()
                .map(|c| ff.f64(c))
                .collect::<tantivy::Result<_>>()?,
            duration: ff.f64("duration_s")?,
            camelot: ff.u64("camelot_n")?,
            free_pulse: ff.u64("free_pulse")?,
            tempo_start: ff.f64("tempo_start")?,
            tempo_end: ff.f64("tempo_end")?,
            artists: ff.u64("artist_key")?,
            recording: ff.u64("recording")?,
            quality: ff.u64("quality")?,
            out: Vec::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<Vec<Row>>) -> tantivy::Result<Vec<Row>> {
        Ok(fruits.concat())
    }
}

impl SegmentCollector for RowSegment {
    type Fruit = Vec<Row>;

    fn collect(&mut self, doc: DocId, _: Score) {
        let Some(id) = self.id.first(doc) else { return };
        let mut attributes = [0.0f32; ATTRIBUTE_COUNT];
        for (slot, col) in attributes.iter_mut().zip(&self.attributes) {
            *slot = col.first(doc).unwrap_or(0.0) as f32;
        }
        self.out.push(Row {
            id: id as i64,
            attributes,
            duration_s: self.duration.first(doc).unwrap_or(0.0) as f32,
            camelot: self.camelot.first(doc).unwrap_or(0) as u8,
            free_pulse: self.free_pulse.first(doc).unwrap_or(0) == 1,
            tempo_start: self.tempo_start.first(doc).unwrap_or(0.0) as f32,
            tempo_end: self.tempo_end.first(doc).unwrap_or(0.0) as f32,
            artists: self.artists.values_for_doc(doc).collect(),
            recording: self.recording.first(doc).unwrap_or(0),
            quality: self.quality.first(doc).unwrap_or(0),
        });
    }

    fn harvest(self) -> Vec<Row> {
        self.out
    }
}

fn document(f: &Fields, c: &Change, recording: u64) -> TantivyDocument {
    let mut d = TantivyDocument::default();
    d.add_u64(f.id, c.id as u64);
    d.add_text(f.external_id, &c.external_id);
    if let Some(t) = &c.title {
        d.add_text(f.title, t);
    }
    for a in &c.artists {
        d.add_text(f.artists, a);
        d.add_u64(f.artist_key, artist_key(a));
    }
    d.add_u64(f.recording, recording);
    d.add_u64(f.quality, c.quality);
    if !c.fingerprint.is_empty() {
        d.add_bytes(
            f.fingerprint,
            &crate::catalog::rows::u32s_to_bytes(&c.fingerprint),
        );
        for v in embeddings::fingerprint::lookup_values(&c.fingerprint) {
            d.add_u64(f.fingerprint_values, u64::from(v));
        }
    }
    if !c.fine_fingerprint.is_empty() {
        d.add_bytes(
            f.fine_fingerprint,
            &crate::catalog::rows::u32s_to_bytes(&c.fine_fingerprint),
        );
        for v in embeddings::fingerprint::fine_lookup_values(&c.fine_fingerprint) {
            d.add_u64(f.fine_values, u64::from(v));
        }
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
        d.add_u64(f.camelot_n, camelot_number(camelot));
        let free = c.tags.iter().any(|t| t == embeddings::tags::FREE_TEMPO);
        d.add_u64(f.free_pulse, free as u64);
        if let Some(e) = c.edge_tempi {
            d.add_f64(f.tempo_start, f64::from(e.start_bpm));
            d.add_f64(f.tempo_end, f64::from(e.end_bpm));
        }
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
