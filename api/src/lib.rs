//! # api: the query engine and the HTTP routes over it
//!
//! [`engine::Engine`] owns the catalogue store and the derived indexes of one data folder
//! and answers queries as plain Rust calls: "more like this" ([`engine::Engine::similar`]),
//! text search with facets, hybrid fusion ([`hybrid`]), tags, playlists ([`playlist`]),
//! song paths, takedowns. [`params`] validates request parameters into engine inputs;
//! [`http`] maps routes onto the engine and errors onto DESIGN.md's JSON shape;
//! [`admission`] bounds the expensive requests (clip analysis, writes); [`copies`] shows
//! one copy per recording.

pub mod admission;
pub mod copies;
pub mod engine;
pub mod error;
pub mod http;
pub mod hybrid;
pub mod map;
pub mod media;
pub mod music;
pub mod page;
pub mod params;
pub mod playlist;
pub mod uploads;
pub mod view;

pub use engine::Engine;
pub use error::ApiError;
