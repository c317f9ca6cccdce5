pub mod analyze;
pub mod bench;
pub mod eval;
pub mod files;
pub mod proc_stats;
