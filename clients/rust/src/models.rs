//! The API's bodies as Rust types (docs/openapi.yaml, components/schemas).
//! Responses are read leniently (fields the server adds later are ignored);
//! optional fields are `Option`s, so absent and present are told apart.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A member's metadata, e.g. `{"name": "Alice"}` (at most 1 KiB as JSON).
pub type Meta = serde_json::Map<String, serde_json::Value>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Window {
    All,
    Day,
    Week,
    Month,
}

impl Window {
    pub fn as_str(self) -> &'static str {
        match self {
            Window::All => "all",
            Window::Day => "day",
            Window::Week => "week",
            Window::Month => "month",
        }
    }
}

/// When an event happened: ms since the epoch, or an RFC 3339 text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Ts {
    Millis(i64),
    Rfc3339(String),
}

/// One event for `POST /v1/events`. Build with [`Event::new`] and the setters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    #[serde(rename = "type")]
    pub event_type: String,
    pub member: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub board: Option<String>,
    /// The event's idempotency key; [`crate::Client::ingest`] fills in a UUID when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ts: Option<Ts>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta: Option<Meta>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscore: Option<f64>,
}

impl Event {
    pub fn new(event_type: impl Into<String>, member: impl Into<String>) -> Self {
        Self {
            event_type: event_type.into(),
            member: member.into(),
            value: None,
            board: None,
            id: None,
            ts: None,
            meta: None,
            subscore: None,
        }
    }
    pub fn value(mut self, v: f64) -> Self {
        self.value = Some(v);
        self
    }
    pub fn board(mut self, b: impl Into<String>) -> Self {
        self.board = Some(b.into());
        self
    }
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }
    pub fn ts(mut self, ts: Ts) -> Self {
        self.ts = Some(ts);
        self
    }
    pub fn meta(mut self, meta: Meta) -> Self {
        self.meta = Some(meta);
        self
    }
    pub fn subscore(mut self, s: f64) -> Self {
        self.subscore = Some(s);
        self
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Accepted {
    pub accepted: u32,
    pub ids: Vec<String>,
}

/// `POST /v1/events?wait=applied`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Applied {
    pub accepted: u32,
    pub ids: Vec<String>,
    /// False when 10 s passed first.
    pub applied: bool,
    pub standings: Vec<AppliedStanding>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct AppliedStanding {
    pub board: String,
    pub window: Window,
    pub period: String,
    pub member: String,
    pub rank: u64,
    pub score: f64,
    pub prev_rank: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Health {
    pub ok: bool,
    pub version: String,
}

/// A board as `GET /v1/boards` lists it; `GET /v1/boards/{board}` adds `periods`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Board {
    pub name: String,
    pub title: String,
    pub order: String,
    pub op: String,
    pub windows: Vec<Window>,
    pub ties: String,
    pub tz: String,
    pub tiebreak: String,
    /// How many Durable Objects share each period (1 by default).
    #[serde(default = "one")]
    pub shards: u16,
    pub min: Option<f64>,
    pub max: Option<f64>,
    /// Members in the default window's current period.
    pub members: u64,
    /// Events that period applied.
    pub events: u64,
    pub season: Option<u32>,
    /// The current period of each non-`all` window (one board only).
    pub periods: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct BoardPage {
    pub boards: Vec<Board>,
    /// The cursor of the next page; `None` after the last.
    pub next: Option<String>,
}

/// `PUT /v1/boards/{board}`: fields left `None` keep their value.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct BoardSettings {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// `desc` (default) or `asc`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order: Option<String>,
    /// `incr` (default), `best` or `last`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub op: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub windows: Option<Vec<Window>>,
    /// `shared` (default) or `first`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ties: Option<String>,
    /// `Some(None)` sends `null`, which clears the bound.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min: Option<Option<f64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<Option<f64>>,
    /// `none` (default), `asc` or `desc`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tiebreak: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tz: Option<String>,
    /// 1–64: how many Durable Objects share each period's writes; fixed
    /// once the board holds scores.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shards: Option<u16>,
}

fn one() -> u16 {
    1
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub rank: u64,
    pub member: String,
    pub score: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscore: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Meta>,
    /// The rank at the last hourly checkpoint; `None` when not on the board then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev_rank: Option<u64>,
}

/// `top`, `around`, `lookup`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Listing {
    pub board: String,
    pub window: Window,
    pub period: String,
    pub total: u64,
    pub entries: Vec<Entry>,
}

/// One member's standing, `GET /v1/boards/{board}/members/{member}`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Standing {
    pub member: String,
    pub rank: u64,
    pub score: f64,
    pub subscore: Option<f64>,
    pub total: u64,
    pub percentile: f64,
    pub meta: Option<Meta>,
    pub prev_rank: Option<u64>,
}

/// What a route target adds to its board: the event's own value, or a fixed number.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TargetValue {
    Fixed(f64),
    Event(EventValue),
}

/// The text `"value"`: use the event's value.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum EventValue {
    #[serde(rename = "value")]
    Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouteTarget {
    /// A board name or a template such as `level-{meta.level}`.
    pub board: String,
    /// Absent: the event's value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<TargetValue>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Route {
    #[serde(rename = "type")]
    pub event_type: String,
    pub targets: Vec<RouteTarget>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Routes {
    pub routes: BTreeMap<String, Vec<RouteTarget>>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Season {
    pub season: u32,
    pub started: Option<i64>,
    pub ended: Option<i64>,
    pub members: u64,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Seasons {
    pub current: u32,
    pub seasons: Vec<Season>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct NewSeason {
    pub season: u32,
    pub started: i64,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Removed {
    pub removed: u64,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ErasureStarted {
    pub erasure: String,
    pub status: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Erasure {
    /// `running` or `done`.
    pub status: String,
    pub boards: Option<u64>,
    pub periods: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct HiddenState {
    pub member: String,
    pub hidden: bool,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct HiddenList {
    pub board: String,
    pub hidden: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Imported {
    pub imported: u64,
}

/// An import line (`POST …/import`, NDJSON).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImportLine {
    pub member: String,
    pub score: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscore: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reached: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta: Option<Meta>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct DeadLetter {
    pub id: String,
    /// The event as that board period applies it.
    pub event: serde_json::Value,
    /// `None` for a Queue message that did not decode.
    pub board: Option<String>,
    pub window: Option<Window>,
    pub period: Option<String>,
    pub reason: String,
    pub failed_at: i64,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct DeadLetterPage {
    pub dead_letters: Vec<DeadLetter>,
    pub next: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Redriven {
    pub redriven: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HookEvent {
    PeriodEnded,
    TopChanged,
    Overtaken,
}

/// `PUT /v1/hooks/{name}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HookBody {
    pub url: String,
    pub events: Vec<HookEvent>,
    /// `None`: every board.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub boards: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top: Option<u32>,
    /// Required for a new hook; write-only (never returned).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Hook {
    pub name: String,
    pub url: String,
    pub events: Vec<HookEvent>,
    pub boards: Option<Vec<String>>,
    pub top: u32,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Hooks {
    pub hooks: Vec<Hook>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Delivered,
    Failed,
    Dead,
    Dropped,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Delivery {
    /// The event's id (its `Podium-Event-Id`).
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: HookEvent,
    pub board: String,
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub created: i64,
    pub updated: i64,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Deliveries {
    pub hook: String,
    pub deliveries: Vec<Delivery>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LiveKind {
    Snapshot,
    Update,
}

/// A message of the live socket.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct LiveMessage {
    #[serde(rename = "type")]
    pub kind: LiveKind,
    pub board: String,
    pub window: Window,
    pub period: String,
    pub total: u64,
    pub entries: Vec<Entry>,
}
