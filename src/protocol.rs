//! What crosses the Queue and the Durable Object boundary, as plain serde
//! types, so the shapes are checked natively and never drift between sides.

use serde::{Deserialize, Serialize};

use crate::core::catalog::Delivery;
use crate::core::{Op, Order, Ties, Window};

/// A Queue message: one accepted event, its boards resolved at ingest so a
/// route change never re-routes an event that was already acknowledged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueuedEvent {
    pub id: String,
    pub member: String,
    pub ts: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<String>,
    pub to: Vec<Delivery>,
}

/// Which ranking a board Durable Object holds, and the settings it applies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BoardSpec {
    pub board: String,
    pub generation: u64,
    pub window: Window,
    pub period: String,
    pub order: Order,
    pub op: Op,
    pub ties: Ties,
}

impl BoardSpec {
    /// The Durable Object name of this board period.
    pub fn object_name(&self) -> String {
        format!("{}@{}/{}/{}", self.board, self.generation, self.window.as_str(), self.period)
    }

    /// The Durable Object that holds the live sockets of this board window,
    /// whatever the period: it outlives period rollovers.
    pub fn live_object_name(&self) -> String {
        format!("{}@{}/{}/live", self.board, self.generation, self.window.as_str())
    }
}

/// One event as a board applies it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApplyEvent {
    pub id: String,
    pub member: String,
    pub value: f64,
    pub ts: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<String>,
}

/// Consumer → board: one request per board period per Queue batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApplyBatch {
    pub spec: BoardSpec,
    pub events: Vec<ApplyEvent>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ApplyResult {
    pub applied: u32,
    pub duplicates: u32,
}

/// A ranking entry as the API and the live socket show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntryOut {
    pub rank: u64,
    pub member: String,
    #[serde(serialize_with = "score")]
    pub score: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<serde_json::Value>,
}

/// The top of a board period: what `top` returns and what the live hub pushes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopOut {
    pub period: String,
    pub total: u64,
    pub entries: Vec<EntryOut>,
}

/// Whole numbers print as integers (`6`, not `6.0`), as clients expect.
pub fn score<S: serde::Serializer>(x: &f64, s: S) -> Result<S::Ok, S::Error> {
    if x.fract() == 0.0 && x.abs() < 9.0e15 {
        s.serialize_i64(*x as i64)
    } else {
        s.serialize_f64(*x)
    }
}

/// A number as JSON, whole numbers as integers.
pub fn number(x: f64) -> serde_json::Value {
    score(&x, serde_json::value::Serializer).unwrap_or(serde_json::Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_scores_are_written_as_integers_and_others_as_decimals() {
        let e = EntryOut { rank: 1, member: "a".into(), score: 6.0, meta: None };
        assert_eq!(serde_json::to_string(&e).unwrap(), r#"{"rank":1,"member":"a","score":6}"#);
        let e = EntryOut { score: 2.5, ..e };
        assert_eq!(serde_json::to_string(&e).unwrap(), r#"{"rank":1,"member":"a","score":2.5}"#);
    }
}

/// The largest `limit` a live socket may ask for.
pub const LIVE_MAX_LIMIT: usize = 100;

/// Worker → board: a read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "q", rename_all = "snake_case")]
pub enum BoardQuery {
    Top { offset: usize, limit: usize, ties: Ties },
    Rank { member: String, ties: Ties },
    Around { member: String, radius: usize, ties: Ties },
    Lookup { members: Vec<String>, ties: Ties },
}

/// A member's standing as `GET .../members/{member}` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StandingOut {
    pub member: String,
    pub rank: u64,
    #[serde(serialize_with = "score")]
    pub score: f64,
    pub total: u64,
    #[serde(serialize_with = "score")]
    pub percentile: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<serde_json::Value>,
}

/// Board → worker: a read's answer. `found` is false when the member asked
/// about (rank, around) is not on the board.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryOut {
    pub total: u64,
    pub found: bool,
    #[serde(default)]
    pub entries: Vec<EntryOut>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub standing: Option<StandingOut>,
}

/// Meta is stored as JSON text; clients get it back as JSON.
pub fn meta_json(meta: Option<&str>) -> Option<serde_json::Value> {
    meta.and_then(|m| serde_json::from_str(m).ok())
}

impl From<crate::core::ranking::Entry<'_>> for EntryOut {
    fn from(e: crate::core::ranking::Entry<'_>) -> Self {
        EntryOut { rank: e.rank, member: e.member.to_string(), score: e.score, meta: meta_json(e.meta) }
    }
}

/// The live socket's messages.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LiveMessage<'a> {
    #[serde(rename = "type")]
    pub kind: &'a str,
    pub board: &'a str,
    pub window: Window,
    pub period: &'a str,
    pub total: u64,
    pub entries: &'a [EntryOut],
}
