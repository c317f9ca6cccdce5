//! The catalogue ingestion pipeline (issue 3): manifest, store, vector and text indexes.
//! Empty until ingestion lands; it depends on `embeddings` for `Analysis`.

pub use embeddings::Analysis;
