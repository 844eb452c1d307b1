//! Podium: live leaderboards from event streams, on Cloudflare Workers.
//!
//! Layout (README has the data flow):
//! - `core/`    pure ranking core, no I/O, no clock: the ranking structure
//!   (`ranking`, with shadow-hidden members), periods in a board's time
//!   zone (`period`, `zone`: IANA zones from jiff's bundled tzdb), board
//!   settings and routes (`catalog`: a view of the routes and the boards a
//!   request names, the isolate's lookup cache, listed counts), retention,
//!   when a board's alarm is due (`chores`, count reports included),
//!   webhooks' pure part (`hooks`: which ranking events a change of the top
//!   makes, retry delays, signatures), and sharded boards' merge (`shards`:
//!   which shard holds a member, merged listings and ranks from the shards'
//!   counts, where a deep page starts: `DeepPage`), and how a board cuts a
//!   batch into turns (`slices`: whole members per slice).
//! - `domain/`  typed values parsed once at the edge (`BoardName`, `MemberId`,
//!   `Event`, import lines, `IdempotencyKey`), strict JSON (no repeated
//!   keys), bearer keys, member rows as a board's cold load gets them in
//!   bulk (`rows`).
//! - `error`    the one API error type and its mapping to HTTP.
//! - `protocol` what crosses the Queue (packed messages) and the typed
//!   commands each Durable Object takes (`BoardCommand` and its
//!   `ShardQuery`, `LiveCommand`, `IntakeCommand`, `DeadCommand`, ...),
//!   each sent by one client type in the glue (`BoardClient`, `LiveClient`, ...).
//! - `routes`   the route table.
//! - `glue/`    the Worker itself (wasm32 only): handlers, ingest and its
//!   durable `IntakeObject`, the Queue consumer, `BoardObject`,
//!   `CatalogObject` (one SQLite row per board, routes as one record),
//!   `LiveObject`, the dead-letter store, a board's
//!   `BoardIndexObject` (its periods, removals, hidden members), erasures
//!   (`ErasureObject`), export/import (`transfer`), `?wait=applied`
//!   (`wait`), webhooks (`hooks`: `HookObject`, `/v1/hooks`, the delivery
//!   consumer), reads of sharded boards (`shards`: one `ShardQuery` per
//!   shard, merged by `core::shards`), `transactionSync` (`txn`), test
//!   faults (`faults`, off unless `PODIUM_TEST_FAULTS=1`), and the helpers
//!   under them all: `http` (request bodies, query parameters, JSON
//!   responses, the error mapping, CORS, cached reads), `objects` (calls to
//!   Durable Objects), `platform` (clock, ids, alarm times, the runtime's
//!   error type, `RETAIN_PERIODS`) and `rows` (a board's cold load: SQLite
//!   concatenates a range of rows per string; a JS helper packs the rest).
//! - `js/entry.mjs` the worker's JS entry around the wasm bundle: it fails a
//!   Queue consumer invocation that a panic's wasm reset left unsettled.

pub mod core;
pub mod domain;
pub mod error;
pub mod protocol;
pub mod routes;

#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
mod glue;
