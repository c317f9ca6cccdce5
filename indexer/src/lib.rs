//! # indexer: catalogue ingestion
//!
//! Data flows one way: [`source`] turns a directory or a JSONL [`manifest`] into track
//! specifications; [`pipeline`] hashes, skips what is unchanged, analyses the rest in
//! parallel and writes batches into the [`catalog`] (Postgres or SQLite, the source of
//! truth); [`derived`] then brings the vector index ([`vectors`], HNSW) and the text index
//! ([`text`], tantivy) up to the store's change sequence, deciding on the way which tracks
//! are copies of one recording ([`recordings`]). Both indexes can be rebuilt from the store
//! alone.

pub mod catalog;
pub mod derived;
pub mod filter;
pub mod jobs;
pub mod manifest;
pub mod pipeline;
pub mod recordings;
pub mod source;
pub mod synthetic;
pub mod text;
pub mod vectors;
pub mod worker;

pub use catalog::Catalog;
pub use embeddings::Analysis;
