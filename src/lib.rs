//! Podium: live leaderboards from event streams, on Cloudflare Workers.
//!
//! Layout (README has the data flow):
//! - `core/`    pure ranking core, no I/O, no clock: the ranking structure
//!   (`ranking`), UTC periods (`period`), board settings and routes (`catalog`).
//! - `domain/`  typed values parsed once at the edge (`BoardName`, `MemberId`,
//!   `Event`), and bearer-key checks.
//! - `error`    the one API error type and its mapping to HTTP.
//! - `protocol` the messages that cross the Queue and reach Durable Objects.
//! - `glue/`    the Worker itself (wasm32 only): route table, handlers,
//!   ingest, queue consumer, the board and catalog Durable Objects.

pub mod core;
pub mod domain;
pub mod error;
pub mod protocol;
pub mod routes;

#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
mod glue;
