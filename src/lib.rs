//! Podium: live leaderboards from event streams, on Cloudflare Workers.
//!
//! Layout (see README for the data flow):
//! - `core/`   pure ranking core: ranking structure, ops, ties, periods. No I/O.
//! - `domain/` typed values parsed once at the edge (`BoardName`, `MemberId`, `Event`).
//! - `glue/`   the Worker (wasm32 only): routes, ingest, queue consumer, Durable Objects.

pub mod core;
pub mod domain;
