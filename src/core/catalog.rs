//! Board settings and routes (the platform's rules). The catalog Durable
//! Object keeps one row per board and one record of routes; a [`Catalog`]
//! here is a view of it: the routes plus the records of the boards a request
//! or a batch names (never all boards). Resolving an event to its deliveries
//! and every change to a board are pure functions of that view, so ingest,
//! the object and tests share them.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use super::period::Period;
use super::retention::Retention;
use super::zone::Zone;
use super::{Op, Order, Tiebreak, Ties, Window};
use crate::domain::{BoardName, Event, EventType};

/// A board's settings as `PUT /v1/boards/{board}` sets them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BoardSettings {
    pub title: String,
    pub order: Order,
    pub op: Op,
    pub windows: Vec<Window>,
    pub ties: Ties,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// Where the board's days, weeks and months begin (API 1.1 `tz`).
    #[serde(default, skip_serializing_if = "Zone::is_utc")]
    pub tz: Zone,
    /// How subscores order equal scores (API 1.1 `tiebreak`).
    #[serde(default, skip_serializing_if = "Tiebreak::is_none")]
    pub tiebreak: Tiebreak,
    /// How many Durable Objects share each period's writes (API 1.1
    /// `shards`, 1–64; see `core::shards`).
    #[serde(default = "one_shard", skip_serializing_if = "is_one_shard")]
    pub shards: u16,
}

fn one_shard() -> u16 {
    1
}

fn is_one_shard(n: &u16) -> bool {
    *n == 1
}

impl BoardSettings {
    pub fn defaults(name: &BoardName) -> BoardSettings {
        BoardSettings {
            title: name.as_str().to_string(),
            order: Order::Desc,
            op: Op::Incr,
            windows: vec![Window::All],
            ties: Ties::Shared,
            min: None,
            max: None,
            tz: Zone::Utc,
            tiebreak: Tiebreak::None,
            shards: 1,
        }
    }

    /// The window reads use when none is named: `all`, else the first kept.
    pub fn default_window(&self) -> Window {
        if self.windows.contains(&Window::All) {
            Window::All
        } else {
            self.windows.first().copied().unwrap_or(Window::All)
        }
    }

    pub fn in_bounds(&self, v: f64) -> bool {
        self.min.is_none_or(|m| v >= m) && self.max.is_none_or(|m| v <= m)
    }
}

/// A change to a board's settings; absent fields keep their value, and
/// `min`/`max` set to `null` clear the bound.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BoardPatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<Order>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op: Option<Op>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub windows: Option<Vec<Window>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ties: Option<Ties>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "some")]
    pub min: Option<Option<f64>>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "some")]
    pub max: Option<Option<f64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tz: Option<Zone>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tiebreak: Option<Tiebreak>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shards: Option<u16>,
}

/// Keeps `null` apart from absent: absent is `None`, `null` is `Some(None)`.
fn some<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// What a board is, plus what the platform needs to know about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BoardRecord {
    pub settings: BoardSettings,
    /// Distinguishes a board from an earlier board of the same name that was
    /// deleted: storage names include it, so a deleted board's scores never return.
    pub generation: u64,
    /// Set once an event was accepted for the board: `order` and `op` are fixed from then on.
    pub scored: bool,
    /// Created by an event (not by `PUT`): counted against `AUTO_CREATE_MAX`,
    /// never against what the admin may create.
    #[serde(default)]
    pub auto: bool,
    /// (API 1.1) When each season after the first began (ms): season n+2
    /// began at `seasons[n]`. Seasons split the `all` window only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub seasons: Vec<i64>,
    /// A mark by an ingest that only that request has relied on so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tentative: Option<Tentative>,
    /// When the board was created (ms): its first season's start. 0 for a
    /// board created before this was recorded.
    #[serde(default, skip_serializing_if = "unrecorded")]
    pub created: i64,
}

fn unrecorded(t: &i64) -> bool {
    *t == 0
}

/// A mark an ingest made (it created the board, or marked it as holding
/// scores) while nobody else has relied on it. The request undoes it if
/// its events are then refused (API 1.1: a request answered with anything
/// but a 2xx changed nothing). Whoever relies on the board before `until`
/// settles the mark (another ingest, an import, an admin's change); after
/// `until` it is settled anyway, and no undo can take it back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tentative {
    pub token: String,
    pub until: i64,
    /// The mark created the board (else the board existed without scores).
    pub created: bool,
}

/// Who marks boards in `Catalog::ensure_scored`, and when.
#[derive(Debug, Clone, Copy)]
pub struct Marker<'a> {
    /// The ingest's token, whose marks stay tentative until `until`; `None`
    /// for a caller that never undoes (an import).
    pub token: Option<&'a str>,
    pub now: i64,
    pub until: i64,
}

impl BoardRecord {
    /// Whether the board's mark may still be undone at `now` by the
    /// request that made it (then a cached copy of it is not enough to
    /// rely on: the catalog must hear of the new reliance).
    pub fn tentative_at(&self, now: i64) -> Option<&Tentative> {
        self.tentative.as_ref().filter(|t| t.until > now)
    }

    /// The season now (the first is 1).
    pub fn current_season(&self) -> u32 {
        1 + self.seasons.len() as u32
    }

    /// The season an event accepted at `at` belongs to.
    pub fn season_at(&self, at: i64) -> u32 {
        1 + self.seasons.iter().filter(|s| **s <= at).count() as u32
    }

    /// The board periods an event stamped `ts` and accepted at `at` lands in,
    /// as `(window, period key)`: its day, week or month by its `ts` (in the
    /// board's zone); in the `all` window, its season by when it was
    /// accepted. Periods `keep` no longer holds at `now`, or begun later than
    /// `now + ahead_ms`, are left out.
    pub fn landing_periods<'a>(
        &'a self,
        ts: i64,
        at: i64,
        keep: &'a Retention,
        now: i64,
        ahead_ms: i64,
    ) -> impl Iterator<Item = (Window, String)> + 'a {
        let tz = &self.settings.tz;
        self.settings.windows.iter().filter_map(move |&w| {
            let p = Period::of(w, ts, tz);
            if !keep.is_live(p, tz, now, ahead_ms) {
                return None;
            }
            Some((w, if w == Window::All { season_key(self.season_at(at)) } else { p.key() }))
        })
    }

    /// The key of window `w`'s current period at `now`.
    pub fn current_key(&self, w: Window, now: i64) -> String {
        match w {
            Window::All => season_key(self.current_season()),
            _ => Period::of(w, now, &self.settings.tz).key(),
        }
    }
}

/// A season's period key: `all` for the first (as before seasons existed),
/// `s2`, `s3`, ... after it.
pub fn season_key(n: u32) -> String {
    if n <= 1 {
        "all".into()
    } else {
        format!("s{n}")
    }
}

/// A season's key as answers and webhooks name it once it is archived:
/// the first season, stored as `all`, is `s1`; any other key is itself.
pub fn archived_name(key: &str) -> &str {
    match key {
        "all" => "s1",
        other => other,
    }
}

/// The season a key of the `all` window names: `s1`, `s2`, ...; `all` is
/// `None` (the caller's current season).
pub fn parse_season(key: &str) -> Option<u32> {
    let n = key.strip_prefix('s')?;
    if n.starts_with('0') || n.len() > 9 {
        return None;
    }
    n.parse().ok().filter(|n| *n >= 1)
}

/// Where a route sends an event, and with what value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouteTarget {
    /// A board name, or (API 1.1) a template over the event's fields.
    pub board: super::template::BoardTemplate,
    /// `None`: not given, which means the event's value (and is echoed back as not given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<TargetValue>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TargetValue {
    /// Use the event's own value.
    EventValue,
    Fixed(f64),
}

impl Serialize for TargetValue {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            TargetValue::EventValue => s.serialize_str("value"),
            TargetValue::Fixed(x) => crate::protocol::score(x, s),
        }
    }
}

impl<'de> Deserialize<'de> for TargetValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::String(s) if s == "value" => Ok(TargetValue::EventValue),
            serde_json::Value::Number(n) => {
                n.as_f64().map(TargetValue::Fixed).ok_or_else(|| serde::de::Error::custom("bad number"))
            }
            _ => Err(serde::de::Error::custom("expected \"value\" or a number")),
        }
    }
}

/// One board an accepted event must reach, with the value it brings there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    pub board: BoardName,
    pub generation: u64,
    pub value: f64,
}

/// The lowest and the highest value a request brings to a board: what the
/// board's bounds are checked against before it is marked as holding scores
/// (both ends in bounds means every value between is).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivered {
    pub board: BoardName,
    pub lo: f64,
    pub hi: f64,
}

impl Delivered {
    /// The span of each board `deliveries` reach, in the order first reached.
    pub fn spans<'a>(deliveries: impl IntoIterator<Item = &'a Delivery>) -> Vec<Delivered> {
        let mut out: Vec<Delivered> = Vec::new();
        let mut at: HashMap<&BoardName, usize> = HashMap::new();
        for d in deliveries {
            match at.get(&d.board).and_then(|&i| out.get_mut(i)) {
                Some(s) => {
                    s.lo = s.lo.min(d.value);
                    s.hi = s.hi.max(d.value);
                }
                None => {
                    at.insert(&d.board, out.len());
                    out.push(Delivered { board: d.board.clone(), lo: d.value, hi: d.value });
                }
            }
        }
        out
    }
}

/// Why an event cannot be accepted.
#[derive(Debug, Clone, PartialEq)]
pub enum ResolveError {
    Unroutable,
    /// A route's board template that the event's fields do not fill into a
    /// valid board name.
    Unfilled {
        template: String,
    },
    OutOfRange {
        board: BoardName,
        value: f64,
    },
}

/// Why a settings change was refused.
#[derive(Debug, Clone, PartialEq)]
pub enum PatchError {
    /// `order`, `op` or `tz` would change under existing scores.
    FixedOnceScored(&'static str),
    /// An event would create a board, and the deployment does not allow it
    /// (`AUTO_CREATE_BOARDS` off, or `AUTO_CREATE_MAX` such boards exist).
    NotAutoCreated(BoardName),
    /// The patch makes the settings inconsistent (e.g. min > max).
    Invalid(String),
}

/// Whether events may create boards, and how many such boards may exist
/// (API 1.1: `AUTO_CREATE_BOARDS`, `AUTO_CREATE_MAX`). Boards created by
/// events are counted apart from the admin's: they never use up what `PUT`
/// may create, and `PUT` has no limit but storage. The cap is the
/// operator's guard against a producer bug (a template over a random field)
/// filling the deployment with boards; raise it for per-level or
/// per-product boards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AutoCreate {
    pub on: bool,
    pub max: u64,
}

impl Default for AutoCreate {
    fn default() -> Self {
        AutoCreate { on: true, max: 10_000 }
    }
}

impl AutoCreate {
    /// From the two settings' texts; anything unreadable keeps the default.
    pub fn parse(on: Option<&str>, max: Option<&str>) -> AutoCreate {
        let d = AutoCreate::default();
        AutoCreate {
            on: match on.map(|s| s.trim().to_ascii_lowercase()) {
                Some(s) if ["off", "false", "0", "no"].contains(&s.as_str()) => false,
                _ => d.on,
            },
            max: max.and_then(|m| m.trim().parse().ok()).unwrap_or(d.max),
        }
    }

    fn allows(&self, existing_auto: u64, new: usize) -> bool {
        self.on && existing_auto.saturating_add(new as u64) <= self.max
    }
}

/// The event types' routes: few (one per event type), so kept as one record.
pub type Routes = BTreeMap<EventType, Vec<RouteTarget>>;

/// What the catalog object counts beside its rows, so that no change has to
/// count the rows: the last generation handed out, and how many boards
/// events created (for `AUTO_CREATE_MAX`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    pub next_generation: u64,
    pub auto_boards: u64,
}

impl Counters {
    fn fresh_generation(&mut self) -> u64 {
        self.next_generation += 1;
        self.next_generation
    }
}

/// The routes and the records of some boards: those a request, an event
/// batch or a change named. A board absent from `boards` was either not
/// asked about or does not exist; whoever built the view knows which.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Catalog {
    pub boards: BTreeMap<BoardName, BoardRecord>,
    pub routes: Routes,
}

impl Catalog {
    /// The boards an event feeds: its own `board` (with its value) first,
    /// then its type's route targets, each board at most once. Boards not yet
    /// in the catalog get generation 0 and default settings until `ensure`.
    pub fn resolve(&self, event: &Event) -> Result<Vec<Delivery>, ResolveError> {
        let mut out: Vec<Delivery> = Vec::new();
        let mut push = |board: &BoardName, value: f64| -> Result<(), ResolveError> {
            if out.iter().any(|d| &d.board == board) {
                return Ok(());
            }
            let (generation, ok) = match self.boards.get(board) {
                Some(r) => (r.generation, r.settings.in_bounds(value)),
                None => (0, true),
            };
            if !ok {
                return Err(ResolveError::OutOfRange { board: board.clone(), value });
            }
            out.push(Delivery { board: board.clone(), generation, value });
            Ok(())
        };
        if let Some(b) = &event.board {
            push(b, event.value)?;
        }
        let mut meta = None;
        for t in self.routes.get(&event.kind).into_iter().flatten() {
            let v = match t.value.unwrap_or(TargetValue::EventValue) {
                TargetValue::EventValue => event.value,
                TargetValue::Fixed(x) => x,
            };
            // A template whose fields give no valid name makes the event unroutable.
            let board = t
                .board
                .fill(event, &mut meta)
                .ok_or_else(|| ResolveError::Unfilled { template: t.board.to_string() })?;
            push(&board, v)?;
        }
        if out.is_empty() {
            return Err(ResolveError::Unroutable);
        }
        Ok(out)
    }

    /// Whether every span of `within` is in its board's bounds (a board the
    /// view lacks has none: one an event creates takes the defaults).
    pub fn within_bounds(&self, within: &[Delivered]) -> bool {
        within.iter().all(|d| {
            self.boards.get(&d.board).is_none_or(|r| r.settings.in_bounds(d.lo) && r.settings.in_bounds(d.hi))
        })
    }

    /// Makes sure each board exists (with defaults) and is marked as scored;
    /// boards it creates are `auto`, within `auto`'s limits (all or none).
    /// The view must hold every one of `boards` that exists. Returns the
    /// boards whose record changed (the rows to write).
    pub fn ensure_scored<'a>(
        &mut self,
        boards: impl IntoIterator<Item = &'a BoardName> + Clone,
        auto: AutoCreate,
        counters: &mut Counters,
        by: Marker<'_>,
    ) -> Result<Vec<BoardName>, PatchError> {
        let mut new: Vec<&BoardName> = Vec::new();
        for b in boards.clone() {
            if !self.boards.contains_key(b) && !new.contains(&b) {
                new.push(b);
            }
        }
        if let Some(first) = new.first() {
            if !auto.allows(counters.auto_boards, new.len()) {
                return Err(PatchError::NotAutoCreated((*first).clone()));
            }
        }
        let mark =
            |created| by.token.map(|token| Tentative { token: token.to_string(), until: by.until, created });
        let mut changed = Vec::new();
        for b in boards {
            match self.boards.get_mut(b) {
                Some(r) if r.scored => {
                    // Another request's mark, relied on now: it stays.
                    let theirs = r.tentative_at(by.now).is_some_and(|t| by.token != Some(t.token.as_str()));
                    if theirs {
                        r.tentative = None;
                        changed.push(b.clone());
                    }
                }
                Some(r) => {
                    r.scored = true;
                    r.tentative = mark(false);
                    changed.push(b.clone());
                }
                None => {
                    let generation = counters.fresh_generation();
                    counters.auto_boards += 1;
                    self.boards.insert(
                        b.clone(),
                        BoardRecord {
                            settings: BoardSettings::defaults(b),
                            generation,
                            scored: true,
                            auto: true,
                            seasons: Vec::new(),
                            tentative: mark(true),
                            created: by.now,
                        },
                    );
                    changed.push(b.clone());
                }
            }
        }
        Ok(changed)
    }

    /// Takes back the marks of the ingest `token` that nobody else relied
    /// on (its request was refused after `ensure_scored`): a board it
    /// created is removed, a board it marked holds no scores again. The
    /// view must hold `boards`. Returns the boards whose record changed.
    pub fn undo_marks(
        &mut self,
        boards: &[BoardName],
        token: &str,
        now: i64,
        counters: &mut Counters,
    ) -> Vec<BoardName> {
        let mut changed = Vec::new();
        for b in boards {
            let Some(created) = self
                .boards
                .get(b)
                .and_then(|r| r.tentative_at(now))
                .filter(|t| t.token == token)
                .map(|t| t.created)
            else {
                continue;
            };
            if created {
                self.delete_board(b, counters);
            } else if let Some(r) = self.boards.get_mut(b) {
                r.scored = false;
                r.tentative = None;
            }
            changed.push(b.clone());
        }
        changed
    }

    /// Creates or changes a board. Returns whether it was created.
    /// The view must hold the board if it exists.
    pub fn put_board(
        &mut self,
        name: &BoardName,
        patch: BoardPatch,
        counters: &mut Counters,
        now: i64,
    ) -> Result<bool, PatchError> {
        let existing = self.boards.get(name);
        let auto = existing.is_some_and(|r| r.auto);
        let mut s = existing.map(|r| r.settings.clone()).unwrap_or_else(|| BoardSettings::defaults(name));
        let scored = existing.is_some_and(|r| r.scored);
        if scored && patch.order.is_some_and(|o| o != s.order) {
            return Err(PatchError::FixedOnceScored("order"));
        }
        if scored && patch.op.is_some_and(|o| o != s.op) {
            return Err(PatchError::FixedOnceScored("op"));
        }
        // A new zone would move every period boundary under the scores kept.
        if scored && patch.tz.as_ref().is_some_and(|z| *z != s.tz) {
            return Err(PatchError::FixedOnceScored("tz"));
        }
        // Kept subscores of a board without one are all 0: no order to keep.
        if scored && patch.tiebreak.is_some_and(|t| t != s.tiebreak) {
            return Err(PatchError::FixedOnceScored("tiebreak"));
        }
        // Members live in the shard their id hashes to among this many.
        if scored && patch.shards.is_some_and(|n| n != s.shards) {
            return Err(PatchError::FixedOnceScored("shards"));
        }
        if let Some(t) = patch.title {
            s.title = t;
        }
        if let Some(o) = patch.order {
            s.order = o;
        }
        if let Some(o) = patch.op {
            s.op = o;
        }
        if let Some(w) = patch.windows {
            s.windows = w;
        }
        if let Some(t) = patch.ties {
            s.ties = t;
        }
        if let Some(m) = patch.min {
            s.min = m;
        }
        if let Some(m) = patch.max {
            s.max = m;
        }
        if let Some(z) = patch.tz {
            s.tz = z;
        }
        if let Some(t) = patch.tiebreak {
            s.tiebreak = t;
        }
        if let Some(n) = patch.shards {
            s.shards = n;
        }
        if let (Some(lo), Some(hi)) = (s.min, s.max) {
            if lo > hi {
                return Err(PatchError::Invalid("min must not be greater than max".into()));
            }
        }
        let created = existing.is_none();
        let (generation, seasons, since) = match existing {
            Some(r) => (r.generation, r.seasons.clone(), r.created),
            None => (counters.fresh_generation(), Vec::new(), now),
        };
        // An admin's change relies on the board: a mark on it is settled.
        let tentative = None;
        let record =
            BoardRecord { settings: s, generation, scored, auto, seasons, tentative, created: since };
        self.boards.insert(name.clone(), record);
        Ok(created)
    }

    /// Starts a new season of the `all` window at `at`; the new season's
    /// number, or `None` for an unknown board.
    pub fn new_season(&mut self, name: &BoardName, at: i64) -> Option<u32> {
        let r = self.boards.get_mut(name)?;
        // Seasons start in order even if clocks disagree by a little.
        let at = r.seasons.last().map_or(at, |last| at.max(*last + 1));
        r.seasons.push(at);
        r.tentative = None;
        Some(r.current_season())
    }

    pub fn delete_board(&mut self, name: &BoardName, counters: &mut Counters) -> Option<BoardRecord> {
        let r = self.boards.remove(name)?;
        if r.auto {
            counters.auto_boards = counters.auto_boards.saturating_sub(1);
        }
        Some(r)
    }
}

/// What a board period (one shard of it, on a sharded board) told the
/// catalog of its counts (API 1.1 `members` and `events` of `GET
/// /v1/boards`): each reports itself, at most about once a second, so
/// listing asks no board.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reported {
    pub window: Window,
    pub period: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub shard: u16,
    pub members: u64,
    pub events: u64,
}

fn is_zero(n: &u16) -> bool {
    *n == 0
}

impl BoardRecord {
    /// The period whose counts a listing shows: the default window's current one.
    pub fn counted_period(&self, now: i64) -> (Window, String) {
        let w = self.settings.default_window();
        (w, self.current_key(w, now))
    }

    fn counts_for(&self, r: &Reported, now: i64) -> bool {
        let (w, key) = self.counted_period(now);
        r.window == w && r.period == key && r.shard < self.settings.shards.max(1)
    }

    /// The reports to keep once board period `generation`'s report `new`
    /// comes (`None`: the listing does not show it, keep what was kept):
    /// the last one of each shard of the counted period.
    pub fn take_report(
        &self,
        kept: Vec<Reported>,
        generation: u64,
        new: Reported,
        now: i64,
    ) -> Option<Vec<Reported>> {
        if generation != self.generation || !self.counts_for(&new, now) {
            return None;
        }
        let mut out: Vec<Reported> =
            kept.into_iter().filter(|r| self.counts_for(r, now) && r.shard != new.shard).collect();
        out.push(new);
        out.sort_by_key(|r| r.shard);
        Some(out)
    }

    /// `(members, events)` as a listing shows them at `now`: the sums of
    /// the shards' last reports of the counted period. A period that has not
    /// reported (a new day, a new season, a board no event reached) holds
    /// nothing yet.
    pub fn listed_counts(&self, kept: &[Reported], now: i64) -> (u64, u64) {
        kept.iter()
            .filter(|r| self.counts_for(r, now))
            .fold((0, 0), |(m, e), r| (m + r.members, e + r.events))
    }
}

/// The names a listing reads as one range of the name index: from `prefix`
/// (inclusive) up to the first name past every name that starts with it
/// (exclusive; `None`: no end). Board names are printable ASCII, below
/// `\u{7f}`, so `prefix + "\u{7f}"` is past every such name and before
/// every other greater one.
pub fn prefix_range(prefix: &str) -> (String, Option<String>) {
    let end = (!prefix.is_empty()).then(|| format!("{prefix}\u{7f}"));
    (prefix.to_string(), end)
}

/// An isolate's copies of catalog parts, each with the time its fetch began,
/// so a reader asks for "fetched at or after t" (`t = now - CACHE_MS` for a
/// request, a batch's newest acceptance for the consumer, `i64::MAX` for
/// straight from the object). A board not in the catalog is kept as `None`
/// (a known absence), as a copy of the whole catalog used to be.
#[derive(Debug, Default)]
pub struct LookupCache {
    routes: Option<(i64, Routes)>,
    boards: HashMap<BoardName, (i64, Option<BoardRecord>)>,
}

impl LookupCache {
    /// Past this many boards, copies older than the caller's horizon are
    /// dropped, and if that is not enough all are: an isolate's memory stays
    /// bounded whatever the number of boards.
    pub const MAX_BOARDS_KEPT: usize = 20_000;

    /// What must be fetched for a view of `names` as of `since`: whether the
    /// routes are too old, and the boards that are missing or too old.
    pub fn stale(&self, names: &[BoardName], since: i64) -> (bool, Vec<BoardName>) {
        let routes = self.routes.as_ref().is_none_or(|(at, _)| *at < since);
        let mut boards: Vec<BoardName> = Vec::new();
        for n in names {
            let old = self.boards.get(n).is_none_or(|(at, _)| *at < since);
            if old && !boards.contains(n) {
                boards.push(n.clone());
            }
        }
        (routes, boards)
    }

    /// The view of `names` from the copies held, whatever their age.
    pub fn view(&self, names: &[BoardName]) -> Catalog {
        let boards = names.iter().filter_map(|n| Some((n.clone(), self.boards.get(n)?.1.clone()?))).collect();
        Catalog { boards, routes: self.routes.as_ref().map(|(_, r)| r.clone()).unwrap_or_default() }
    }

    /// Keeps what a fetch begun at `at` returned: `view`'s routes when
    /// `with_routes`, and for each of `asked` its record or its absence. A
    /// copy newer than `at` is never replaced by an older one.
    pub fn remember(
        &mut self,
        at: i64,
        view: &Catalog,
        with_routes: bool,
        asked: &[BoardName],
        keep_since: i64,
    ) {
        if with_routes && self.routes.as_ref().is_none_or(|(t, _)| *t <= at) {
            self.routes = Some((at, view.routes.clone()));
        }
        if self.boards.len() + asked.len() > Self::MAX_BOARDS_KEPT {
            self.boards.retain(|_, (t, _)| *t >= keep_since);
            if self.boards.len() + asked.len() > Self::MAX_BOARDS_KEPT {
                self.boards.clear();
            }
        }
        for n in asked {
            if self.boards.get(n).is_none_or(|(t, _)| *t <= at) {
                self.boards.insert(n.clone(), (at, view.boards.get(n).cloned()));
            }
        }
    }
}

#[cfg(test)]
mod season_tests {
    use super::*;

    #[test]
    fn an_event_belongs_to_the_season_in_which_it_was_accepted() {
        let mut c = Catalog::default();
        let mut n = Counters::default();
        let b = BoardName::parse("laps").unwrap();
        c.put_board(&b, BoardPatch::default(), &mut n, 0).unwrap();
        let r = |c: &Catalog| c.boards[&b].clone();
        assert_eq!(r(&c).current_key(Window::All, 5), "all");
        assert_eq!(c.new_season(&b, 1000), Some(2));
        assert_eq!(c.new_season(&b, 900), Some(3), "a later season never starts before an earlier one");
        let rec = r(&c);
        assert_eq!(rec.seasons, vec![1000, 1001]);
        let keep = Retention::default();
        let landing = |rec: &BoardRecord, ts: i64, at: i64| -> Vec<(Window, String)> {
            rec.landing_periods(ts, at, &keep, 6000, 0).collect()
        };
        let all = |k: &str| vec![(Window::All, k.to_string())];
        assert_eq!(landing(&rec, 5, 999), all("all"));
        assert_eq!(landing(&rec, 5, 1000), all("s2"));
        assert_eq!(landing(&rec, 5, 5000), all("s3"));
        assert_eq!(rec.current_key(Window::All, 0), "s3");
        // day, week and month go by the event's own time
        let mut days = rec.clone();
        days.settings.windows = vec![Window::All, Window::Day];
        assert_eq!(
            landing(&days, 0, 5000),
            vec![(Window::All, "s3".into()), (Window::Day, "1970-01-01".into())]
        );
        // a period begun after `now` (plus the allowance) is left out
        assert_eq!(landing(&days, 86_400_000, 5000), all("s3"));
        // settings changes keep the seasons
        c.put_board(&b, BoardPatch { title: Some("Laps".into()), ..BoardPatch::default() }, &mut n, 0)
            .unwrap();
        assert_eq!(r(&c).current_season(), 3);
        assert_eq!(c.new_season(&BoardName::parse("nope").unwrap(), 1), None);
        assert_eq!((parse_season("s2"), parse_season("s1"), parse_season("s0")), (Some(2), Some(1), None));
        assert_eq!((archived_name("all"), archived_name("s3")), ("s1", "s3"));
        assert_eq!((parse_season("all"), parse_season("s02"), parse_season("sx")), (None, None, None));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{EventId, MemberId};

    fn b(s: &str) -> BoardName {
        BoardName::parse(s).unwrap()
    }

    fn event(kind: &str, board: Option<&str>, value: f64) -> Event {
        Event {
            kind: EventType::parse(kind).unwrap(),
            member: MemberId::parse("alice").unwrap(),
            value,
            sub: 0.0,
            board: board.map(b),
            id: EventId::parse("e1").unwrap(),
            ts: 0,
            meta: None,
        }
    }

    fn seed_routes() -> Catalog {
        let mut c = Catalog::default();
        c.routes.insert(
            EventType::parse("order").unwrap(),
            vec![
                RouteTarget {
                    board: crate::core::template::BoardTemplate::parse("sales").unwrap(),
                    value: Some(TargetValue::EventValue),
                },
                RouteTarget {
                    board: crate::core::template::BoardTemplate::parse("orders").unwrap(),
                    value: Some(TargetValue::Fixed(1.0)),
                },
                RouteTarget {
                    board: crate::core::template::BoardTemplate::parse("count").unwrap(),
                    value: None,
                },
            ],
        );
        c
    }

    #[test]
    fn a_route_fans_one_event_out_with_its_value_or_a_fixed_number() {
        let c = seed_routes();
        let d = c.resolve(&event("order", None, 25.0)).unwrap();
        let got: Vec<_> = d.iter().map(|d| (d.board.as_str(), d.value)).collect();
        assert_eq!(got, vec![("sales", 25.0), ("orders", 1.0), ("count", 25.0)]);
    }

    #[test]
    fn a_route_is_echoed_as_it_was_given() {
        let c = seed_routes();
        let json = serde_json::to_string(&c.routes).unwrap();
        assert_eq!(
            json,
            r#"{"order":[{"board":"sales","value":"value"},{"board":"orders","value":1},{"board":"count"}]}"#
        );
        let back: BTreeMap<EventType, Vec<RouteTarget>> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, c.routes);
    }

    #[test]
    fn an_event_naming_a_board_goes_there_besides_its_route_once_per_board() {
        let c = seed_routes();
        let d = c.resolve(&event("order", Some("sales"), 5.0)).unwrap();
        let got: Vec<_> = d.iter().map(|d| (d.board.as_str(), d.value)).collect();
        assert_eq!(got, vec![("sales", 5.0), ("orders", 1.0), ("count", 5.0)]);
    }

    #[test]
    fn an_event_without_board_or_route_is_unroutable() {
        assert_eq!(seed_routes().resolve(&event("like", None, 1.0)), Err(ResolveError::Unroutable));
    }

    #[test]
    fn values_outside_a_boards_bounds_are_refused() {
        let mut c = Catalog::default();
        let patch = BoardPatch { min: Some(Some(0.0)), max: Some(Some(10.0)), ..Default::default() };
        c.put_board(&b("score"), patch, &mut Counters::default(), 0).unwrap();
        assert!(c.resolve(&event("x", Some("score"), 10.0)).is_ok());
        assert!(matches!(c.resolve(&event("x", Some("score"), 10.5)), Err(ResolveError::OutOfRange { .. })));
        assert!(matches!(c.resolve(&event("x", Some("score"), -1.0)), Err(ResolveError::OutOfRange { .. })));
    }

    /// A marker whose marks are settled at once (as an import's are).
    const SURE: Marker<'static> = Marker { token: None, now: 0, until: 0 };

    fn by(token: &str, now: i64) -> Marker<'_> {
        Marker { token: Some(token), now, until: now + 60_000 }
    }

    #[test]
    fn a_refused_ingest_takes_back_the_boards_it_created_and_the_marks_it_made() {
        let mut c = Catalog::default();
        let n = &mut Counters::default();
        c.put_board(&b("old"), BoardPatch::default(), n, 0).unwrap();
        let auto = AutoCreate { on: true, max: 10 };
        let marked = c.ensure_scored([&b("old"), &b("new")], auto, n, by("r1", 1_000)).unwrap();
        assert_eq!(marked, vec![b("old"), b("new")]);
        assert!(c.boards[&b("old")].scored && c.boards[&b("new")].scored);
        assert_eq!(n.auto_boards, 1);
        // Another request's token takes back nothing.
        assert!(c.undo_marks(&[b("old"), b("new")], "r2", 2_000, n).is_empty());
        let undone = c.undo_marks(&[b("old"), b("new")], "r1", 2_000, n);
        assert_eq!(undone, vec![b("old"), b("new")]);
        assert!(!c.boards.contains_key(&b("new")), "the board it created is gone");
        assert_eq!(n.auto_boards, 0);
        let old = &c.boards[&b("old")];
        assert!(!old.scored && old.tentative.is_none(), "the board it marked holds no scores again");
        assert_eq!(
            c.put_board(&b("old"), BoardPatch { order: Some(Order::Asc), ..Default::default() }, n, 0),
            Ok(false)
        );
    }

    #[test]
    fn a_mark_another_request_relied_on_is_not_taken_back() {
        let auto = AutoCreate { on: true, max: 10 };
        let n = &mut Counters::default();
        // Another ingest (or an import) found the board marked.
        for other in [by("r2", 1_500), SURE] {
            let mut c = Catalog::default();
            c.ensure_scored([&b("new")], auto, n, by("r1", 1_000)).unwrap();
            assert_eq!(
                c.ensure_scored([&b("new")], auto, n, other).unwrap(),
                vec![b("new")],
                "settling is a write"
            );
            assert!(c.boards[&b("new")].tentative.is_none());
            assert!(c.undo_marks(&[b("new")], "r1", 2_000, n).is_empty());
            assert!(c.boards[&b("new")].scored);
        }
        // The same request asking again settles nothing.
        let mut c = Catalog::default();
        c.ensure_scored([&b("new")], auto, n, by("r1", 1_000)).unwrap();
        assert!(c.ensure_scored([&b("new")], auto, n, by("r1", 1_100)).unwrap().is_empty());
        // An admin's change settles it.
        c.put_board(&b("new"), BoardPatch { title: Some("New".into()), ..Default::default() }, n, 0).unwrap();
        assert!(c.undo_marks(&[b("new")], "r1", 2_000, n).is_empty());
        // Past `until` the mark is settled for everyone, undo included.
        c.ensure_scored([&b("late")], auto, n, by("r3", 1_000)).unwrap();
        assert!(c.boards[&b("late")].tentative_at(30_000).is_some());
        assert!(c.boards[&b("late")].tentative_at(61_000).is_none());
        assert!(c.undo_marks(&[b("late")], "r3", 61_000, n).is_empty());
        assert!(c.ensure_scored([&b("late")], auto, n, by("r4", 61_000)).unwrap().is_empty(), "no write");
    }

    #[test]
    fn order_and_op_are_fixed_once_a_board_holds_scores() {
        let mut c = Catalog::default();
        let n = &mut Counters::default();
        c.put_board(&b("laps"), BoardPatch { order: Some(Order::Asc), ..Default::default() }, n, 0).unwrap();
        c.put_board(&b("laps"), BoardPatch { order: Some(Order::Desc), ..Default::default() }, n, 0).unwrap();
        c.ensure_scored([&b("laps")], AutoCreate::default(), n, SURE).unwrap();
        let e = c.put_board(&b("laps"), BoardPatch { order: Some(Order::Asc), ..Default::default() }, n, 0);
        assert_eq!(e, Err(PatchError::FixedOnceScored("order")));
        let e = c.put_board(&b("laps"), BoardPatch { op: Some(Op::Best), ..Default::default() }, n, 0);
        assert_eq!(e, Err(PatchError::FixedOnceScored("op")));
        // Restating the same values, or changing ties, is fine.
        let same = BoardPatch { order: Some(Order::Desc), ties: Some(Ties::First), ..Default::default() };
        assert_eq!(c.put_board(&b("laps"), same, n, 0), Ok(false));
    }

    #[test]
    fn a_board_keeps_the_time_it_was_created_by_put_or_by_an_event() {
        let mut c = Catalog::default();
        let n = &mut Counters::default();
        c.put_board(&b("put"), BoardPatch::default(), n, 1_000).unwrap();
        c.put_board(&b("put"), BoardPatch { title: Some("T".into()), ..Default::default() }, n, 2_000)
            .unwrap();
        assert_eq!(c.boards[&b("put")].created, 1_000);
        let auto = AutoCreate { on: true, max: 10 };
        c.ensure_scored([&b("ev")], auto, n, by("r", 3_000)).unwrap();
        c.ensure_scored([&b("ev"), &b("put")], auto, n, by("s", 4_000)).unwrap();
        assert_eq!((c.boards[&b("ev")].created, c.boards[&b("put")].created), (3_000, 1_000));
        // A record from before `created` reads as 0 and writes nothing.
        let old: BoardRecord = serde_json::from_str(
            &serde_json::to_string(&c.boards[&b("put")])
                .unwrap()
                .replace("\"created\":1000", "\"created\":0"),
        )
        .unwrap();
        assert_eq!(old.created, 0);
        assert!(!serde_json::to_string(&old).unwrap().contains("\"created\":0"));
    }

    #[test]
    fn a_recreated_board_gets_a_new_generation() {
        let mut c = Catalog::default();
        let n = &mut Counters::default();
        c.ensure_scored([&b("likes")], AutoCreate::default(), n, SURE).unwrap();
        let g1 = c.boards[&b("likes")].generation;
        assert_eq!(n.auto_boards, 1);
        c.delete_board(&b("likes"), n);
        assert_eq!(n.auto_boards, 0, "a deleted board created by an event no longer counts");
        c.ensure_scored([&b("likes")], AutoCreate::default(), n, SURE).unwrap();
        assert_ne!(c.boards[&b("likes")].generation, g1);
    }

    #[test]
    fn a_patch_keeps_null_bounds_apart_from_absent_ones_across_json() {
        let p = BoardPatch { min: Some(None), max: Some(Some(3.0)), ..Default::default() };
        let back: BoardPatch = serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
        assert_eq!(back, p);
    }

    #[test]
    fn min_above_max_is_refused() {
        let mut c = Catalog::default();
        let p = BoardPatch { min: Some(Some(5.0)), max: Some(Some(1.0)), ..Default::default() };
        assert!(matches!(c.put_board(&b("x"), p, &mut Counters::default(), 0), Err(PatchError::Invalid(_))));
    }

    #[test]
    fn a_request_s_spans_are_the_lowest_and_highest_value_per_board_in_first_reached_order() {
        let d = |board: &str, value: f64| Delivery { board: b(board), generation: 1, value };
        let spans = Delivered::spans(&[d("y", 3.0), d("x", -1.0), d("y", 9.0), d("y", 1.0)]);
        assert_eq!(
            spans,
            vec![
                Delivered { board: b("y"), lo: 1.0, hi: 9.0 },
                Delivered { board: b("x"), lo: -1.0, hi: -1.0 }
            ]
        );
    }

    #[test]
    fn spans_are_within_bounds_only_when_both_ends_are_and_unknown_boards_have_none() {
        let mut c = Catalog::default();
        let p = BoardPatch { min: Some(Some(0.0)), max: Some(Some(10.0)), ..Default::default() };
        c.put_board(&b("x"), p, &mut Counters::default(), 0).unwrap();
        let span = |board: &str, lo: f64, hi: f64| vec![Delivered { board: b(board), lo, hi }];
        assert!(c.within_bounds(&span("x", 0.0, 10.0)));
        assert!(!c.within_bounds(&span("x", -0.5, 3.0)));
        assert!(!c.within_bounds(&span("x", 3.0, 10.5)));
        assert!(c.within_bounds(&span("new", -1e300, 1e300)));
        assert!(c.within_bounds(&[]));
    }

    #[test]
    fn boards_created_by_events_never_use_up_what_the_admin_may_create() {
        let mut c = Catalog::default();
        let n = &mut Counters::default();
        let auto = AutoCreate { on: true, max: 2 };
        assert_eq!(
            c.ensure_scored([&b("e1"), &b("e2"), &b("e1")], auto, n, SURE),
            Ok(vec![b("e1"), b("e2")])
        );
        assert!(c.boards[&b("e1")].auto);
        assert_eq!(n.auto_boards, 2);
        // A third by an event is refused, naming it; nothing is created.
        assert_eq!(
            c.ensure_scored([&b("e3"), &b("e1")], auto, n, SURE),
            Err(PatchError::NotAutoCreated(b("e3")))
        );
        assert!(!c.boards.contains_key(&b("e3")));
        // The admin creates without a limit (2,500 here: more than the old cap of 1,000).
        for i in 0..2_500 {
            assert_eq!(c.put_board(&b(&format!("b{i}")), BoardPatch::default(), n, 0), Ok(true));
        }
        assert_eq!(n.auto_boards, 2, "boards created by PUT are not counted as created by events");
        // Existing boards take events whatever the limits.
        let off = AutoCreate { on: false, max: 0 };
        assert_eq!(c.ensure_scored([&b("b0"), &b("e1")], off, n, SURE), Ok(vec![b("b0")]));
        assert_eq!(c.ensure_scored([&b("new")], off, n, SURE), Err(PatchError::NotAutoCreated(b("new"))));
        // A PUT of a board an event created keeps it counted as such.
        assert_eq!(c.put_board(&b("e1"), BoardPatch::default(), n, 0), Ok(false));
        assert!(c.boards[&b("e1")].auto);
        // Generations are never handed out twice.
        let mut gens: Vec<u64> = c.boards.values().map(|r| r.generation).collect();
        gens.sort_unstable();
        gens.dedup();
        assert_eq!(gens.len(), c.boards.len());
    }

    #[test]
    fn a_listing_shows_the_counts_its_default_windows_current_period_reported() {
        let mut c = Catalog::default();
        let n = &mut Counters::default();
        let w = BoardPatch { windows: Some(vec![Window::Day, Window::All]), ..Default::default() };
        c.put_board(&b("d"), w, n, 0).unwrap();
        let r = c.boards[&b("d")].clone();
        let now = 86_400_000 + 5;
        let rep = |window, period: &str, shard, members| Reported {
            window,
            period: period.into(),
            shard,
            members,
            events: members * 2,
        };
        let all = rep(Window::All, "all", 0, 3);
        let kept = r.take_report(vec![], r.generation, all.clone(), now).unwrap();
        assert_eq!(r.listed_counts(&kept, now), (3, 6));
        let day = rep(Window::Day, "1970-01-02", 0, 1);
        assert_eq!(r.take_report(kept.clone(), r.generation, day, now), None, "not the default window");
        assert_eq!(
            r.take_report(kept.clone(), r.generation + 1, all.clone(), now),
            None,
            "another generation"
        );
        assert_eq!(r.listed_counts(&[], now), (0, 0));
        // A new season begins empty: the last report was of the old one.
        c.new_season(&b("d"), 10);
        let r2 = c.boards[&b("d")].clone();
        assert_eq!(r2.take_report(kept.clone(), r2.generation, all.clone(), now), None);
        assert_eq!(r2.listed_counts(&kept, now), (0, 0));
        // Only day kept: yesterday's counts are not today's.
        let mut days = r.clone();
        days.settings.windows = vec![Window::Day];
        let y = vec![rep(Window::Day, "1970-01-01", 0, 3)];
        assert_eq!(days.listed_counts(&y, now), (0, 0));
        assert_eq!(days.listed_counts(&y, 5), (3, 6));
        // A sharded board lists the sum of its shards' last reports.
        let mut sh = r.clone();
        sh.settings.shards = 3;
        let mut kept = vec![];
        for (shard, m) in [(0, 4), (2, 5), (0, 6)] {
            kept = sh.take_report(kept, sh.generation, rep(Window::All, "all", shard, m), now).unwrap();
        }
        assert_eq!(sh.listed_counts(&kept, now), (11, 22), "shard 0's second report replaced its first");
        assert_eq!(
            sh.take_report(kept, sh.generation, rep(Window::All, "all", 3, 1), now),
            None,
            "no shard 3"
        );
    }

    #[test]
    fn a_prefix_is_one_range_of_names() {
        assert_eq!(prefix_range(""), (String::new(), None));
        let (from, to) = prefix_range("lv-1");
        let to = to.unwrap();
        for (name, inside) in [
            ("lv-1", true),
            ("lv-1-9", true),
            ("lv-1zz", true),
            ("lv-10", true),
            ("lv-0", false),
            ("lv-2", false),
            ("lv-", false),
            ("lv", false),
        ] {
            let got = name >= from.as_str() && name < to.as_str();
            assert_eq!(got, inside, "{name}");
            assert_eq!(name.starts_with("lv-1"), inside, "{name}");
        }
    }

    #[test]
    fn the_lookup_cache_answers_from_copies_new_enough_and_remembers_absence() {
        let mut c = Catalog::default();
        let n = &mut Counters::default();
        c.put_board(&b("a"), BoardPatch::default(), n, 0).unwrap();
        let mut cache = LookupCache::default();
        let names = [b("a"), b("gone")];
        assert_eq!(cache.stale(&names, 0), (true, vec![b("a"), b("gone")]));
        cache.remember(100, &c, true, &names, 0);
        assert_eq!(cache.stale(&names, 100), (false, vec![]));
        assert_eq!(
            cache.stale(&names, 101),
            (true, vec![b("a"), b("gone")]),
            "as of a later time: fetch again"
        );
        let v = cache.view(&names);
        assert!(v.boards.contains_key(&b("a")) && !v.boards.contains_key(&b("gone")));
        // An older answer arriving late never replaces a newer copy.
        cache.remember(50, &Catalog::default(), true, &[b("a")], 0);
        assert!(cache.view(&[b("a")]).boards.contains_key(&b("a")));
        assert_eq!(cache.stale(&[b("a")], 100), (false, vec![]));
        // Bounded: past the limit, old copies go.
        let many: Vec<BoardName> = (0..LookupCache::MAX_BOARDS_KEPT).map(|i| b(&format!("m{i}"))).collect();
        cache.remember(200, &Catalog::default(), false, &many, 150);
        assert_eq!(cache.stale(&[b("a")], 0), (false, vec![b("a")]));
        assert_eq!(cache.stale(&many[..1], 100), (false, vec![]));
    }

    #[test]
    fn auto_create_settings_are_read_leniently() {
        assert_eq!(AutoCreate::parse(None, None), AutoCreate::default());
        assert_eq!(AutoCreate::parse(Some("off"), Some("5")), AutoCreate { on: false, max: 5 });
        assert_eq!(AutoCreate::parse(Some("ON"), Some("x")), AutoCreate { on: true, max: 10_000 });
    }
}
