//! What crosses the Queue and the Durable Object boundary, as plain serde
//! types, so the shapes are checked natively and never drift between sides.

use serde::{Deserialize, Serialize};

use crate::core::catalog::Delivery;
use crate::core::ranking::{Counts, Spot};
use crate::core::zone::Zone;
use crate::core::{Op, Order, Tiebreak, Ties, Window};

/// Subscores of 0 are left out of the wire (most boards have no tiebreak).
fn no_sub(x: &f64) -> bool {
    *x == 0.0
}

fn no_tiebreak(t: &Tiebreak) -> bool {
    *t == Tiebreak::None
}

/// A Queue message: one accepted event, its boards resolved at ingest so a
/// route change never re-routes an event that was already acknowledged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueuedEvent {
    pub id: String,
    pub member: String,
    pub ts: i64,
    /// API 1.1 `subscore` (0 when absent).
    #[serde(default, skip_serializing_if = "no_sub")]
    pub sub: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<String>,
    pub to: Vec<Delivery>,
}

/// A Queue message: many accepted events packed into one JSON text, so that
/// a queue's message rate is not the cap on events (5,000 messages/s carry
/// hundreds of thousands of events). Sent with the `text` content type: the
/// consumer decodes each message on its own, so one that does not decode
/// fails alone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueuedPack {
    /// The ingest partition (event queue) it goes to (0: the first; see
    /// `pack_partitioned`).
    #[serde(default, skip_serializing_if = "is_zero_u16")]
    pub q: u16,
    /// The intake object that sent it and its number there, for the
    /// consumer's confirmation (absent in packs not yet sent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<i64>,
    /// When Podium accepted these events (ms): the request's 202. Member
    /// removals drop events accepted before them, whenever they arrive.
    #[serde(default)]
    pub at: i64,
    pub events: Vec<QueuedEvent>,
}

/// A packed message stays under this many bytes (the Queue takes 128 KB,
/// about 100 B of it metadata; 1 KB = 1,000 B).
pub const PACK_MAX_BYTES: usize = 100_000;

/// Packs events accepted at `at` into Queue message texts of at most
/// `PACK_MAX_BYTES` each (an event alone is far smaller: its meta is at most
/// 1 KiB), in order.
pub fn pack(events: &[QueuedEvent], at: i64) -> Result<Vec<String>, serde_json::Error> {
    json_arrays(events, &format!("{{\"at\":{at},\"events\":["), "]}", PACK_MAX_BYTES)
}

fn is_zero_u16(n: &u16) -> bool {
    *n == 0
}

/// `pack` for a deployment with `queues` event queues: each event goes to
/// the queue of each board it feeds (`core::shards::partition_of`), split
/// into one copy per queue when its boards lie in several (each copy with
/// those boards only: boards dedupe per board, so a copy never counts
/// twice). Packs for queue k > 0 open with `{"q":k,`; `partition_of_pack`
/// reads it back without parsing the rest.
pub fn pack_partitioned(
    events: &[QueuedEvent],
    at: i64,
    queues: u16,
) -> Result<Vec<String>, serde_json::Error> {
    if queues <= 1 {
        return pack(events, at);
    }
    let mut parts: Vec<Vec<QueuedEvent>> = vec![Vec::new(); queues as usize];
    for ev in events {
        let mut by: Vec<Vec<Delivery>> = vec![Vec::new(); queues as usize];
        for d in &ev.to {
            if let Some(list) =
                by.get_mut(crate::core::shards::partition_of(d.board.as_str(), queues) as usize)
            {
                list.push(d.clone());
            }
        }
        for (k, to) in by.into_iter().enumerate().filter(|(_, to)| !to.is_empty()) {
            if let Some(part) = parts.get_mut(k) {
                part.push(QueuedEvent { to, ..ev.clone() });
            }
        }
    }
    let mut out = Vec::new();
    for (k, part) in parts.iter().enumerate() {
        let head = if k == 0 {
            format!("{{\"at\":{at},\"events\":[")
        } else {
            format!("{{\"q\":{k},\"at\":{at},\"events\":[")
        };
        out.extend(json_arrays(part, &head, "]}", PACK_MAX_BYTES)?);
    }
    Ok(out)
}

/// The event queue a pack goes to (its leading `"q"`, else 0).
pub fn partition_of_pack(body: &str) -> u16 {
    body.strip_prefix("{\"q\":")
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// `items` as JSON texts `head item,item,... tail`, each at most `max` bytes
/// long (unless one item alone is longer), in order; none for no items.
pub fn json_arrays<T: Serialize>(
    items: &[T],
    head: &str,
    tail: &str,
    max: usize,
) -> Result<Vec<String>, serde_json::Error> {
    let mut out = Vec::new();
    let mut cur = String::from(head);
    for item in items {
        let one = serde_json::to_string(item)?;
        if cur.len() > head.len() && cur.len() + one.len() + 1 + tail.len() > max {
            cur.push_str(tail);
            out.push(std::mem::replace(&mut cur, String::from(head)));
        }
        if cur.len() > head.len() {
            cur.push(',');
        }
        cur.push_str(&one);
    }
    if cur.len() > head.len() {
        cur.push_str(tail);
        out.push(cur);
    }
    Ok(out)
}

/// Worker → intake object: one accepted request, made durable before the
/// worker answers 202; the intake forwards its packs to the Queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IntakeRequest {
    /// The Queue messages (packed JSON texts) of the request.
    pub packs: Vec<String>,
    /// The request's `Idempotency-Key`, scoped to its key holder (hashed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency: Option<String>,
    /// The answer to give now and to every repeat of the same key.
    pub answer: String,
    /// Test faults only (`PODIUM_TEST_FAULTS`): how many times the Queue
    /// refuses each message of the request after its first.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub test_refuse: u32,
    /// Test faults only: the intake's transaction fails after this many of
    /// its writes, so the request is refused part-way through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_fail_after: Option<u32>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Intake → worker: the answer to give (the first one, on a repeat).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IntakeReply {
    pub answer: String,
    pub repeat: bool,
}

/// Every command the intake object takes, and the one reply type of each.
/// On the wire (`to_wire`) a command is one line of JSON, then for `Accept`
/// its packs, one per line, as they are: packs are JSON texts already, and
/// carrying them as JSON strings would escape and unescape every quote of
/// up to 1 MiB per request (measured: the largest serde cost of ingest).
#[derive(Debug, Clone, PartialEq)]
pub enum IntakeCommand {
    /// → `IntakeReply`
    Accept(IntakeRequest),
    /// The consumer applied these messages (by `seq`) everywhere. → `Ack`
    Done(Vec<i64>),
    /// The first answer kept for an idempotency key (any POST or DELETE),
    /// or, when there is none and no other request holds the key, the key
    /// claimed for this request, in one step. → `Claimed`
    Claim(String),
    /// The claimed request failed (not a 2xx): free its key. → `Ack`
    Release(String),
    /// Keep `answer` for `key` for 24 hours. → `Ack`
    Remember { key: String, answer: String },
}

/// An answer kept for an idempotency key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recalled {
    pub answer: Option<String>,
}

/// The intake's answer to `Claim`: the first answer, if one is kept;
/// else `busy` when another request holds the key (it is running), else
/// the key is now this request's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claimed {
    pub answer: Option<String>,
    pub busy: bool,
}

/// An intake command without its packs: the first line of its wire form.
#[derive(Serialize, Deserialize)]
#[serde(tag = "cmd", content = "args", rename_all = "snake_case")]
enum IntakeHead {
    Accept {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        idempotency: Option<String>,
        answer: String,
        #[serde(default, skip_serializing_if = "is_zero")]
        test_refuse: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        test_fail_after: Option<u32>,
    },
    Done(Vec<i64>),
    Claim(String),
    Release(String),
    Remember {
        key: String,
        answer: String,
    },
}

impl IntakeCommand {
    pub fn to_wire(&self) -> Result<String, serde_json::Error> {
        match self {
            IntakeCommand::Accept(r) => {
                let mut out = serde_json::to_string(&IntakeHead::Accept {
                    idempotency: r.idempotency.clone(),
                    answer: r.answer.clone(),
                    test_refuse: r.test_refuse,
                    test_fail_after: r.test_fail_after,
                })?;
                for p in &r.packs {
                    out.push('\n');
                    out.push_str(p);
                }
                Ok(out)
            }
            IntakeCommand::Done(seqs) => serde_json::to_string(&IntakeHead::Done(seqs.clone())),
            IntakeCommand::Claim(k) => serde_json::to_string(&IntakeHead::Claim(k.clone())),
            IntakeCommand::Release(k) => serde_json::to_string(&IntakeHead::Release(k.clone())),
            IntakeCommand::Remember { key, answer } => {
                serde_json::to_string(&IntakeHead::Remember { key: key.clone(), answer: answer.clone() })
            }
        }
    }

    /// The inverse of `to_wire`. A pack is a JSON text without raw newlines
    /// (serde_json escapes them inside strings), so lines split it exactly.
    pub fn from_wire(text: &str) -> Result<IntakeCommand, serde_json::Error> {
        let mut lines = text.split('\n');
        let head: IntakeHead = serde_json::from_str(lines.next().unwrap_or_default())?;
        Ok(match head {
            IntakeHead::Accept { idempotency, answer, test_refuse, test_fail_after } => {
                let packs = lines.filter(|l| !l.is_empty()).map(str::to_string).collect();
                IntakeCommand::Accept(IntakeRequest {
                    packs,
                    idempotency,
                    answer,
                    test_refuse,
                    test_fail_after,
                })
            }
            IntakeHead::Done(seqs) => IntakeCommand::Done(seqs),
            IntakeHead::Claim(k) => IntakeCommand::Claim(k),
            IntakeHead::Release(k) => IntakeCommand::Release(k),
            IntakeHead::Remember { key, answer } => IntakeCommand::Remember { key, answer },
        })
    }
}

/// Every command a board object takes, and the one reply type of each.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "cmd", content = "args", rename_all = "snake_case")]
pub enum BoardCommand {
    /// → `ApplyResult`
    Apply(ApplyBatch),
    /// → `QueryOut`
    Query(BoardQuery),
    /// → `TopOut` (and the board pushes to its live hub from now on)
    Watch(BoardSpec),
    /// → `Ack`
    Respec(BoardSpec),
    /// → `Ack`
    Wipe,
    /// Which of these event ids this board period has not applied. → `Missing`
    Missing(Vec<String>),
    /// Removes a member; events for it accepted before `at` are dropped
    /// whenever they arrive. → `Removed` (1 if it was on this period)
    Remove {
        spec: BoardSpec,
        member: String,
        at: i64,
        #[serde(default)]
        how: Removal,
    },
    /// Hides a member from everyone but itself, or shows it again. → `Ack`
    Hide { spec: BoardSpec, member: String, hidden: bool },
    /// A page of the ranking for an export, best first. → `ExportPage`
    Export { offset: usize, limit: usize, ties: Ties },
    /// Sets these members' scores as given, all or nothing (`dry`: only
    /// says whether they would fit). → `Imported`
    Import {
        spec: BoardSpec,
        lines: Vec<ImportRow>,
        #[serde(default)]
        dry: bool,
    },
    /// This board period ended before its time (a season archived): its
    /// hooks get `period_ended` now. → `Ack`
    Ended(BoardSpec),
    /// A read of one shard of a sharded board (`glue::shards` merges). → `ShardOut`
    Shard(ShardQuery),
    /// Another shard of this sharded board period changed (sent to shard
    /// 0, which looks for webhook events for the whole board). → `Ack`
    Changed(BoardSpec),
}

/// Every command a live object (a board window's root, or one of its hubs)
/// takes, and the one reply type of each. A viewer's WebSocket upgrade is
/// not one of them: it reaches the object as the request it is
/// (`glue::live::LiveClient::connect`).
/// What a live push is (its `type` on the socket): the whole top (a
/// viewer's first message, or a new period) or a change within the period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PushKind {
    Snapshot,
    Update,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "cmd", content = "args", rename_all = "snake_case")]
pub enum LiveCommand {
    /// A board period's new top, from its board object. → `Viewers` (the
    /// root's and all its hubs')
    Publish(TopOut),
    /// A new season began: the all window's viewers move to it. → `Ack`
    Roll(BoardSpec),
    /// The root's change for one hub's viewers. → `Viewers` (the hub's)
    Relay { kind: PushKind, spec: BoardSpec, top: TopOut },
    /// Hub `hub` lost a viewer and has `viewers` now (hub → root). → `Ack`
    Left { hub: usize, viewers: usize },
    /// The board was deleted: every viewer is closed and the object
    /// forgets (a root wipes its hubs first). → `Ack`
    Wipe,
}

/// How many viewers a live object serves after a command.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Viewers {
    pub viewers: usize,
}

/// Worker → one shard of a sharded board period: what the merge needs from
/// it (see `core::shards`). Entries come with their reach times, so the
/// reader can place them among the other shards' entries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "q", rename_all = "snake_case")]
pub enum ShardQuery {
    /// `limit` visible entries from place `offset` (0: the best).
    Top {
        #[serde(default)]
        offset: usize,
        limit: usize,
    },
    /// The visible entry at each of `places` (a deep page's probes), in
    /// order; a place past the end has none.
    At { places: Vec<u64> },
    /// The member's own standing (hidden or not) and its reach time.
    Own { member: String, ties: Ties },
    /// The entries of these members that are on this shard and visible.
    Lookup { members: Vec<String> },
    /// How this shard's visible entries (as `reader` sees them) stand
    /// against each spot, and how many entries of its last checkpoint
    /// rank before each of `prev` (places at the checkpoint), under `ties`.
    Counts {
        spots: Vec<Spot>,
        reader: Option<String>,
        #[serde(default)]
        prev: Vec<Spot>,
        #[serde(default)]
        ties: Ties,
    },
    /// Up to `before` visible entries before `spot` and up to `after` from it on.
    Near { spot: Spot, reader: Option<String>, before: usize, after: usize },
}

/// One shard's answer to a `ShardQuery`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ShardOut {
    /// Visible members and applied events of this shard.
    pub total: u64,
    pub events: u64,
    /// Entries (ranks are this shard's own), each with its reach time in `reached`.
    #[serde(default)]
    pub entries: Vec<EntryOut>,
    #[serde(default)]
    pub reached: Vec<i64>,
    /// `Near`: how many of `entries` sort before the spot.
    #[serde(default)]
    pub split: usize,
    #[serde(default)]
    pub counts: Vec<Counts>,
    /// `Own`: the member's standing on this shard and its reach time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub standing: Option<StandingOut>,
    #[serde(default)]
    pub own_reached: i64,
    /// Where each entry's member (and `Own`'s member) sorted at this
    /// shard's last checkpoint (`None`: not on the board then).
    #[serde(default)]
    pub prev: Vec<Option<Spot>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub own_prev: Option<Spot>,
    /// `Counts`: this shard's checkpoint entries before each `prev` spot.
    #[serde(default)]
    pub prev_counts: Vec<u64>,
}

/// One member of an export, as the API writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportLine {
    pub rank: u64,
    pub member: String,
    #[serde(serialize_with = "score")]
    pub score: f64,
    /// On boards with a `tiebreak` only.
    #[serde(default, skip_serializing_if = "Option::is_none", serialize_with = "opt_score")]
    pub subscore: Option<f64>,
    pub reached: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<serde_json::Value>,
    /// Only when true.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub hidden: bool,
}

/// The CSV export's first line (a `subscore` column on boards with a `tiebreak`).
pub fn csv_header(tiebreak: bool) -> &'static str {
    if tiebreak {
        "rank,member,score,subscore,reached,meta,hidden\r\n"
    } else {
        "rank,member,score,reached,meta,hidden\r\n"
    }
}

impl ExportLine {
    /// The line as a CSV record (RFC 4180, CRLF). Text cells that a
    /// spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab or CR
    /// first) get a leading `'`, the OWASP advice; numbers are written as is.
    pub fn csv(&self) -> String {
        let score = number(self.score).to_string();
        let sub = self.subscore.map(|s| format!("{},", number(s))).unwrap_or_default();
        let meta = self.meta.as_ref().map(|m| m.to_string()).unwrap_or_default();
        format!(
            "{},{},{},{}{},{},{}\r\n",
            self.rank,
            csv_text(&self.member),
            score,
            sub,
            self.reached,
            csv_text(&meta),
            if self.hidden { "true" } else { "" }
        )
    }
}

/// A text cell: formula-escaped, then quoted when it holds a comma, quote or line break.
pub fn csv_text(s: &str) -> String {
    let risky = matches!(s.chars().next(), Some('=' | '+' | '-' | '@' | '\t' | '\r'));
    let cell = if risky { format!("'{s}") } else { s.to_string() };
    if cell.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", cell.replace('"', "\"\""))
    } else {
        cell
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportPage {
    pub total: u64,
    pub lines: Vec<ExportLine>,
}

/// One member as an import sets it (parsed and checked by the worker).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportRow {
    pub member: String,
    pub score: f64,
    /// API 1.1 `subscore` (0 when absent; kept on boards with a `tiebreak`).
    #[serde(default, skip_serializing_if = "no_sub")]
    pub sub: f64,
    pub reached: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<String>,
}

/// A board period's answer to `Import`: how many it set, or that the
/// period would hold more members than it may (then it set none).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Imported {
    pub imported: u64,
    #[serde(default)]
    pub full: bool,
}

/// Every command a board's index object takes (one per board generation:
/// which period objects exist, and the board's member removals).
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "cmd", content = "args", rename_all = "snake_case")]
pub enum IndexCommand {
    /// A period object holds (or is about to hold) scores. → `Tombstones`
    Register(BoardSpec),
    /// Records a removal (unless `how` is `Check`) and → `Periods`: every
    /// period object registered.
    Remove {
        member: String,
        at: i64,
        #[serde(default)]
        how: Removal,
    },
    /// Records a member hidden (or shown again) and → `Periods`.
    Hide { member: String, hidden: bool },
    /// The hidden members. → `HiddenList`
    Hidden,
}

/// What a member removal does at a board's index and period objects.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Removal {
    /// Changes nothing: says whether the member is there (`DELETE
    /// …/members/{m}` asks first, so its 404 changes nothing).
    Check,
    /// Removes the member and keeps the removal's time.
    #[default]
    Remove,
    /// As `Remove`, and the member is no longer hidden (an erasure: no
    /// list of the board holds the member any more).
    Erase,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HiddenList {
    pub hidden: Vec<String>,
}

/// A board's member removals: events for `member` accepted before `at` are
/// not applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tombstones {
    pub removed: Vec<(String, i64)>,
    /// The board's hidden members.
    #[serde(default)]
    pub hidden: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Periods {
    pub periods: Vec<BoardSpec>,
}

/// A board period's answer to `Missing`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Missing {
    pub ids: Vec<String>,
}

/// An (event, board period) pair that the Queue could not deliver (API 1.1):
/// kept 7 days, listed, re-driven to `spec` alone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// Unique per (event id, board period).
    pub id: String,
    pub event: ApplyEvent,
    /// The board period it failed on; `None` for a message that did not decode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<BoardSpec>,
    pub reason: String,
    pub failed_at: i64,
}

/// Every command the dead-letter store takes, and the one reply type of each.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "cmd", content = "args", rename_all = "snake_case")]
pub enum DeadCommand {
    /// → `Ack`
    Store(Vec<DeadLetter>),
    /// Ordered by id, after `cursor`. → `DeadPage`
    List { limit: usize, cursor: Option<String> },
    /// These (or, for `None`, up to `limit` of all). → `DeadPage`
    Get { ids: Option<Vec<String>>, limit: usize },
    /// → `Removed`
    Remove(Vec<String>),
    /// Every letter of this member's events (an erasure started at `at`),
    /// and every later one of an event accepted before `at`. → `Removed`
    Erase { member: String, at: i64 },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadPage {
    pub letters: Vec<DeadLetter>,
    pub next: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Removed {
    pub removed: u64,
}

/// Every command an erasure object takes (`DELETE /v1/members/{member}`).
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "cmd", content = "args", rename_all = "snake_case")]
pub enum ErasureCommand {
    /// → `ErasureStatus`
    Start { member: String, at: i64 },
    /// → `ErasureStatus` (`status` "unknown" for an erasure never started)
    Status,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErasureStatus {
    /// `running`, `done` or `unknown`
    pub status: String,
    /// Boards the member was removed from, and periods, so far.
    pub boards: u64,
    pub periods: u64,
}

/// A command's reply that carries nothing but success.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Ack {
    pub ok: bool,
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
    /// The board's zone: where this period begins and ends (retention, rollover).
    #[serde(default, skip_serializing_if = "Zone::is_utc")]
    pub tz: Zone,
    /// API 1.1 `tiebreak`: how subscores order equal scores.
    #[serde(default, skip_serializing_if = "no_tiebreak")]
    pub tiebreak: Tiebreak,
    /// API 1.1 `shards`: how many objects hold this board period...
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub shards: u16,
    /// ...and which of them (0-based) this spec names.
    #[serde(default, skip_serializing_if = "is_shard_zero")]
    pub shard: u16,
}

fn one() -> u16 {
    1
}

fn is_one(n: &u16) -> bool {
    *n == 1
}

fn is_shard_zero(n: &u16) -> bool {
    *n == 0
}

impl BoardSpec {
    /// The Durable Object name of this board period (of this shard: shard 0
    /// keeps the unsharded name).
    pub fn object_name(&self) -> String {
        let base = format!("{}@{}/{}/{}", self.board, self.generation, self.window.as_str(), self.period);
        match self.shard {
            0 => base,
            k => format!("{base}#{k}"),
        }
    }

    /// Whether the period is spread over more than one object.
    pub fn is_sharded(&self) -> bool {
        self.shards > 1
    }

    /// The spec of the shard that holds `member`.
    pub fn for_member(mut self, member: &str) -> BoardSpec {
        self.shard = crate::core::shards::shard_of(member, self.shards);
        self
    }

    /// The spec of shard `k`.
    pub fn shard(&self, k: u16) -> BoardSpec {
        BoardSpec { shard: k, ..self.clone() }
    }

    /// The specs of every shard of this period, shard 0 first.
    pub fn every_shard(&self) -> Vec<BoardSpec> {
        (0..self.shards.max(1)).map(|k| self.shard(k)).collect()
    }

    /// The Durable Object that holds the live sockets of this board window,
    /// whatever the period: it outlives period rollovers.
    pub fn live_object_name(&self) -> String {
        format!("{}@{}/{}/live", self.board, self.generation, self.window.as_str())
    }

    /// The index object of this board generation (all windows and periods).
    pub fn index_object_name(&self) -> String {
        format!("{}@{}/index", self.board, self.generation)
    }
}

/// One event as a board applies it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApplyEvent {
    pub id: String,
    pub member: String,
    pub value: f64,
    #[serde(default, skip_serializing_if = "no_sub")]
    pub sub: f64,
    pub ts: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<String>,
    /// When Podium accepted it (ms; 0 when not known).
    #[serde(default)]
    pub at: i64,
}

/// Consumer → board: one request per board period per Queue batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApplyBatch {
    pub spec: BoardSpec,
    pub events: Vec<ApplyEvent>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApplyResult {
    pub applied: u32,
    pub duplicates: u32,
    /// Events for new members of a board period that is full: not applied
    /// (no dedupe record either), to become dead letters.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rejected: Vec<ApplyEvent>,
}

/// A ranking entry as the API and the live socket show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntryOut {
    pub rank: u64,
    pub member: String,
    #[serde(serialize_with = "score")]
    pub score: f64,
    /// (API 1.1) On boards with a `tiebreak` only.
    #[serde(default, skip_serializing_if = "Option::is_none", serialize_with = "opt_score")]
    pub subscore: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<serde_json::Value>,
    /// (API 1.1) The member's rank at the board's last checkpoint; absent
    /// when it was not on the board then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev_rank: Option<u64>,
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

/// `score` for an optional number (skipped when absent).
pub fn opt_score<S: serde::Serializer>(x: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
    match x {
        Some(v) => score(v, s),
        None => s.serialize_none(),
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
    fn scores_and_percentiles_cross_between_objects_to_the_last_bit() {
        // serde_json's default float parser may be 1 ulp off; the
        // `float_roundtrip` feature is what keeps a standing read through
        // a board object equal to one computed in the worker.
        for x in [94.16666666666667, 100.0 * 113.0 / 120.0, 0.1 + 0.2, 1e-300, 123456.78901234567] {
            let text = serde_json::to_string(&x).unwrap();
            assert_eq!(serde_json::from_str::<f64>(&text).unwrap().to_bits(), f64::to_bits(x), "{text}");
        }
    }

    #[test]
    fn whole_scores_are_written_as_integers_and_others_as_decimals() {
        let e =
            EntryOut { rank: 1, member: "a".into(), score: 6.0, subscore: None, meta: None, prev_rank: None };
        assert_eq!(serde_json::to_string(&e).unwrap(), r#"{"rank":1,"member":"a","score":6}"#);
        let e = EntryOut { score: 2.5, ..e };
        assert_eq!(serde_json::to_string(&e).unwrap(), r#"{"rank":1,"member":"a","score":2.5}"#);
    }

    fn event(i: usize, meta_bytes: usize) -> QueuedEvent {
        QueuedEvent {
            id: format!("id-{i}"),
            member: format!("member-{i}"),
            ts: 1_764_000_000_000 + i as i64,
            sub: 0.0,
            meta: (meta_bytes > 0).then(|| format!("{{\"n\":\"{}\"}}", "x".repeat(meta_bytes))),
            to: vec![],
        }
    }

    #[test]
    fn packed_messages_stay_under_the_queue_limit_and_keep_every_event_in_order() {
        // 1000 events with 1 KiB of meta each: a full 1 MiB request.
        let events: Vec<QueuedEvent> = (0..1000).map(|i| event(i, 1000)).collect();
        let packs = pack(&events, 7).unwrap();
        assert!(packs.len() > 1);
        assert!(packs.iter().all(|p| p.len() <= PACK_MAX_BYTES), "a pack over the limit");
        let back: Vec<QueuedEvent> =
            packs.iter().flat_map(|p| serde_json::from_str::<QueuedPack>(p).unwrap().events).collect();
        assert_eq!(back, events);
    }

    #[test]
    fn partitioned_packs_carry_each_board_on_its_queue_and_split_events_that_feed_several() {
        use crate::core::shards::partition_of;
        let boards: Vec<String> = (0..40).map(|i| format!("b{i}")).collect();
        let to = |names: &[&String]| -> Vec<Delivery> {
            names
                .iter()
                .map(|b| Delivery {
                    board: crate::domain::BoardName::parse(b.as_str()).unwrap(),
                    generation: 1,
                    value: 1.0,
                })
                .collect()
        };
        // two boards on different queues, and every board once
        let (a, b) = {
            let a = &boards[0];
            let b = boards.iter().find(|b| partition_of(b, 3) != partition_of(a, 3)).unwrap();
            (a, b)
        };
        let mut events = vec![QueuedEvent { to: to(&[a, b]), ..event(0, 0) }];
        events.extend(
            boards.iter().enumerate().map(|(i, bd)| QueuedEvent { to: to(&[bd]), ..event(i + 1, 0) }),
        );
        let packs = pack_partitioned(&events, 9, 3).unwrap();
        let mut seen: Vec<(String, String)> = vec![];
        let mut queues = std::collections::BTreeSet::new();
        for p in &packs {
            let q = partition_of_pack(p);
            let pack: QueuedPack = serde_json::from_str(p).unwrap();
            assert_eq!(pack.q, q);
            assert_eq!(pack.at, 9);
            queues.insert(q);
            for ev in pack.events {
                for d in ev.to {
                    assert_eq!(partition_of(d.board.as_str(), 3), q, "{} on queue {q}", d.board);
                    seen.push((ev.id.clone(), d.board.to_string()));
                }
            }
        }
        assert_eq!(queues.len(), 3, "40 boards fill 3 queues");
        // every (event, board) delivery exactly once
        let mut want: Vec<(String, String)> =
            events.iter().flat_map(|e| e.to.iter().map(|d| (e.id.clone(), d.board.to_string()))).collect();
        want.sort();
        seen.sort();
        assert_eq!(seen, want);
        // one queue: the packs as before
        assert_eq!(pack_partitioned(&events, 9, 1).unwrap(), pack(&events, 9).unwrap());
        assert_eq!(partition_of_pack(&pack(&events, 9).unwrap()[0]), 0);
    }

    #[test]
    fn small_requests_are_one_message_and_an_empty_one_is_none() {
        let events: Vec<QueuedEvent> = (0..1000).map(|i| event(i, 0)).collect();
        assert_eq!(pack(&events, 7).unwrap().len(), 1);
        assert!(pack(&[], 7).unwrap().is_empty());
    }

    #[test]
    fn intake_commands_cross_the_wire_unchanged_with_packs_as_plain_lines() {
        let events: Vec<QueuedEvent> = (0..3000).map(|i| event(i, 100)).collect();
        let mut with_newline = event(1, 0);
        with_newline.meta = Some("{\"n\":\"a\\nb\"}".into());
        let mut packs = pack(&events, 7).unwrap();
        packs.extend(pack(&[with_newline], 7).unwrap());
        let cmd = IntakeCommand::Accept(IntakeRequest {
            packs,
            idempotency: Some("k".into()),
            answer: "{\"accepted\":1}".into(),
            test_refuse: 2,
            test_fail_after: None,
        });
        let wire = cmd.to_wire().unwrap();
        assert_eq!(IntakeCommand::from_wire(&wire).unwrap(), cmd);
        let done = IntakeCommand::Done(vec![1, 5]);
        assert_eq!(IntakeCommand::from_wire(&done.to_wire().unwrap()).unwrap(), done);
        let keep = IntakeCommand::Remember { key: "k".into(), answer: "{\"status\":204}\n".into() };
        assert_eq!(IntakeCommand::from_wire(&keep.to_wire().unwrap()).unwrap(), keep);
        for cmd in [IntakeCommand::Claim("req:POST:k".into()), IntakeCommand::Release("req:POST:k".into())] {
            assert_eq!(IntakeCommand::from_wire(&cmd.to_wire().unwrap()).unwrap(), cmd);
        }
        assert!(IntakeCommand::from_wire("not json").is_err());
    }

    #[test]
    fn csv_cells_that_a_spreadsheet_would_run_are_escaped_and_quoted() {
        assert_eq!(csv_text("alice"), "alice");
        assert_eq!(csv_text("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_text("+1"), "'+1");
        assert_eq!(csv_text("-2"), "'-2");
        assert_eq!(csv_text("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_text("a,b"), "\"a,b\"");
        assert_eq!(csv_text("line\nbreak"), "\"line\nbreak\"");
        let line = ExportLine {
            rank: 2,
            member: "=cmd".into(),
            score: -3.5,
            subscore: None,
            reached: 7,
            meta: Some(serde_json::json!({"n": "x,y"})),
            hidden: true,
        };
        assert_eq!(line.csv(), "2,'=cmd,-3.5,7,\"{\"\"n\"\":\"\"x,y\"\"}\",true\r\n");
        // boards with a tiebreak: the subscore column after the score
        let line = ExportLine { subscore: Some(12.0), hidden: false, meta: None, ..line };
        assert_eq!(line.csv(), "2,'=cmd,-3.5,12,7,,\r\n");
        assert_eq!(csv_header(true), "rank,member,score,subscore,reached,meta,hidden\r\n");
    }

    #[test]
    fn board_commands_are_tagged_with_their_arguments() {
        let q = BoardCommand::Query(BoardQuery::Top { offset: 0, limit: 1, ties: Ties::Shared });
        let v = serde_json::to_value(&q).unwrap();
        assert_eq!(v["cmd"], "query");
        assert_eq!(v["args"]["q"], "top");
        let back: BoardCommand = serde_json::from_value(v).unwrap();
        assert!(matches!(back, BoardCommand::Query(BoardQuery::Top { limit: 1, .. })));
        let wipe = serde_json::to_string(&BoardCommand::Wipe).unwrap();
        assert_eq!(wipe, r#"{"cmd":"wipe"}"#);
    }

    #[test]
    fn live_commands_are_tagged_with_their_arguments() {
        let left = serde_json::to_value(LiveCommand::Left { hub: 3, viewers: 7 }).unwrap();
        assert_eq!(left, serde_json::json!({"cmd": "left", "args": {"hub": 3, "viewers": 7}}));
        let top = TopOut { period: "all".into(), total: 0, entries: vec![] };
        let publish = serde_json::to_string(&LiveCommand::Publish(top.clone())).unwrap();
        match serde_json::from_str(&publish).unwrap() {
            LiveCommand::Publish(back) => assert_eq!(back, top),
            other => panic!("{other:?}"),
        }
        assert_eq!(serde_json::to_string(&LiveCommand::Wipe).unwrap(), r#"{"cmd":"wipe"}"#);
    }

    #[test]
    fn a_push_kind_is_the_type_viewers_see() {
        let top = TopOut { period: "all".into(), total: 0, entries: vec![] };
        let msg = LiveMessage {
            kind: PushKind::Update,
            board: "b",
            window: crate::core::Window::All,
            period: "all",
            total: 0,
            entries: &[],
        };
        assert_eq!(serde_json::to_value(&msg).unwrap()["type"], "update");
        let spec: BoardSpec = serde_json::from_value(serde_json::json!({
            "board": "b", "generation": 1, "window": "all", "period": "all",
            "order": "desc", "op": "incr", "ties": "shared"
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        let relay = serde_json::to_value(LiveCommand::Relay { kind: PushKind::Snapshot, spec, top }).unwrap();
        assert_eq!(relay["args"]["kind"], "snapshot");
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
    #[serde(default, skip_serializing_if = "Option::is_none", serialize_with = "opt_score")]
    pub subscore: Option<f64>,
    pub total: u64,
    #[serde(serialize_with = "score")]
    pub percentile: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev_rank: Option<u64>,
}

/// Board → worker: a read's answer. `found` is false when the member asked
/// about (rank, around) is not on the board.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryOut {
    pub total: u64,
    /// Events this board period applied (duplicates not counted).
    #[serde(default)]
    pub events: u64,
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

impl EntryOut {
    /// An entry as the API shows it; `tiebreak`: whether the board has one
    /// (only then entries carry a `subscore`).
    pub fn of(e: crate::core::ranking::Entry<'_>, tiebreak: bool) -> Self {
        EntryOut {
            rank: e.rank,
            member: e.member.to_string(),
            score: e.score,
            subscore: tiebreak.then_some(e.sub),
            meta: meta_json(e.meta),
            prev_rank: None,
        }
    }
}

/// The live socket's messages.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LiveMessage<'a> {
    #[serde(rename = "type")]
    pub kind: PushKind,
    pub board: &'a str,
    pub window: Window,
    pub period: &'a str,
    pub total: u64,
    pub entries: &'a [EntryOut],
}

/// Worker, board objects and the delivery consumer → the hooks object
/// (API 1.1 webhooks). Secrets cross only here, inside the deployment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum HookCommand {
    /// → `HookList`
    List,
    /// Creates or replaces a hook; `secret: None` keeps the hook's own.
    /// → `HookPut`
    Put {
        name: String,
        url: String,
        events: Vec<crate::core::hooks::HookEvent>,
        #[serde(default)]
        boards: Option<Vec<crate::domain::BoardName>>,
        top: usize,
        #[serde(default)]
        secret: Option<String>,
    },
    /// → `Removed` (1 if it existed)
    Delete { name: String },
    /// One delivery attempt's outcome (`status`: "delivered", "failed",
    /// "dead", "dropped"). → `Attempts` (this delivery's attempts so far)
    Record { delivery: HookDelivery, status: String, error: Option<String> },
    /// → `DeliveryList`
    Deliveries { name: String, limit: usize },
    /// Erasure: dead deliveries naming the member are deleted, and a later
    /// dead delivery made before now keeps no body. → `Ack`
    Erase { member: String },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HookList {
    pub hooks: Vec<(String, crate::core::hooks::Hook)>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum HookPut {
    Done {
        created: bool,
    },
    /// A new hook needs a secret.
    NeedsSecret,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Attempts {
    pub attempts: u32,
}

/// A Queue message of the hooks Queue: one ranking event for one hook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HookDelivery {
    pub hook: String,
    /// The event's `id` (the receiver's `Podium-Event-Id`).
    pub id: String,
    #[serde(rename = "type")]
    pub kind: crate::core::hooks::HookEvent,
    pub board: String,
    /// The JSON body sent, signed as it is.
    pub body: String,
}

/// One delivery as `GET /v1/hooks/{name}/deliveries` lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveryOut {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub board: String,
    pub status: String,
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    pub created: i64,
    pub updated: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveryList {
    pub deliveries: Vec<DeliveryOut>,
}
