//! The query engine and HTTP routes (issue 4). Empty until the query API lands.

pub use embeddings::Analysis;
