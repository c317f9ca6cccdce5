pub mod analyze;
pub mod bench;
pub mod errors;
pub mod eval;
pub mod index;
pub mod proc_stats;
pub mod reindex;
pub mod store;
