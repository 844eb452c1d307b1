//! Typed values parsed once at the edge. Holding one of these proves the
//! input already passed the rules of `docs/api.md`.

mod names;

pub use names::{BoardName, EventId, EventType, MemberId, NameError};
