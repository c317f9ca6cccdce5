//! # indexer: catalogue ingestion (issue 3)
//!
//! So far: [`manifest`], the delivery format (JSONL, one track operation per line) with
//! validation that reports each bad line by number and keeps the rest. The store, the
//! vector and text indexes and the pipeline come next.

pub mod manifest;

pub use embeddings::Analysis;
