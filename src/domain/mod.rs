//! Typed values parsed once at the edge. Holding one of these proves the
//! input already passed the rules of `docs/api.md`.

pub mod auth;
pub mod erased;
pub mod event;
pub mod hook;
pub mod idempotency;
pub mod import;
pub mod json;
pub mod names;
pub mod rows;
pub mod settings;

pub use event::{BodyFormat, Event};
pub use idempotency::IdempotencyKey;
pub use names::{BoardName, EventId, EventType, MemberId, NameError};
