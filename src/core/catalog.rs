//! Board settings and routes (the platform's rules), as a plain value the
//! catalog Durable Object persists. Resolving an event to its deliveries is
//! pure, so ingest and tests share it.

use std::collections::BTreeMap;

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
}

impl BoardRecord {
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
    /// A new board beyond [`MAX_BOARDS`].
    TooManyBoards,
    /// An event would create a board, and the deployment does not allow it
    /// (`AUTO_CREATE_BOARDS` off, or `AUTO_CREATE_MAX` such boards exist).
    NotAutoCreated(BoardName),
    /// The patch makes the settings inconsistent (e.g. min > max).
    Invalid(String),
}

/// The most boards a deployment holds. The catalog is one record that every
/// isolate caches and every change rewrites, and `GET /v1/boards` asks each
/// board for its member count (one subrequest each): past about a thousand
/// boards both outgrow what a Worker may spend on one request.
pub const MAX_BOARDS: usize = 1000;

/// Whether events may create boards, and how many such boards may exist
/// (API 1.1: `AUTO_CREATE_BOARDS`, `AUTO_CREATE_MAX`). Boards created by
/// events are counted apart from the admin's: they never use up what `PUT`
/// may create. Both kinds are capped at `MAX_BOARDS` each while the catalog
/// is one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AutoCreate {
    pub on: bool,
    pub max: usize,
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

    fn allows(&self, existing_auto: usize, new: usize) -> bool {
        self.on && existing_auto + new <= self.max.min(MAX_BOARDS)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Catalog {
    pub boards: BTreeMap<BoardName, BoardRecord>,
    pub routes: BTreeMap<EventType, Vec<RouteTarget>>,
    pub next_generation: u64,
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

    /// Makes sure each board exists (with defaults) and is marked as scored;
    /// boards it creates are `auto`, within `auto`'s limits (all or none).
    /// Returns whether anything changed.
    pub fn ensure_scored<'a>(
        &mut self,
        boards: impl IntoIterator<Item = &'a BoardName> + Clone,
        auto: AutoCreate,
    ) -> Result<bool, PatchError> {
        let new: Vec<&BoardName> =
            boards.clone().into_iter().filter(|b| !self.boards.contains_key(*b)).collect();
        if let Some(first) = new.first() {
            let existing_auto = self.boards.values().filter(|r| r.auto).count();
            if !auto.allows(existing_auto, new.len()) {
                return Err(PatchError::NotAutoCreated((*first).clone()));
            }
        }
        let mut changed = false;
        for b in boards {
            match self.boards.get_mut(b) {
                Some(r) if r.scored => {}
                Some(r) => {
                    r.scored = true;
                    changed = true;
                }
                None => {
                    let generation = self.fresh_generation();
                    self.boards.insert(
                        b.clone(),
                        BoardRecord {
                            settings: BoardSettings::defaults(b),
                            generation,
                            scored: true,
                            auto: true,
                            seasons: Vec::new(),
                        },
                    );
                    changed = true;
                }
            }
        }
        Ok(changed)
    }

    fn fresh_generation(&mut self) -> u64 {
        self.next_generation += 1;
        self.next_generation
    }

    /// Creates or changes a board. Returns whether it was created.
    pub fn put_board(&mut self, name: &BoardName, patch: BoardPatch) -> Result<bool, PatchError> {
        let existing = self.boards.get(name);
        if existing.is_none() && self.boards.values().filter(|r| !r.auto).count() >= MAX_BOARDS {
            return Err(PatchError::TooManyBoards);
        }
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
        let (generation, seasons) = match existing {
            Some(r) => (r.generation, r.seasons.clone()),
            None => (self.fresh_generation(), Vec::new()),
        };
        self.boards.insert(name.clone(), BoardRecord { settings: s, generation, scored, auto, seasons });
        Ok(created)
    }

    /// Starts a new season of the `all` window at `at`; the new season's
    /// number, or `None` for an unknown board.
    pub fn new_season(&mut self, name: &BoardName, at: i64) -> Option<u32> {
        let r = self.boards.get_mut(name)?;
        // Seasons start in order even if clocks disagree by a little.
        let at = r.seasons.last().map_or(at, |last| at.max(*last + 1));
        r.seasons.push(at);
        Some(r.current_season())
    }

    pub fn delete_board(&mut self, name: &BoardName) -> Option<BoardRecord> {
        self.boards.remove(name)
    }
}

#[cfg(test)]
mod season_tests {
    use super::*;

    #[test]
    fn an_event_belongs_to_the_season_in_which_it_was_accepted() {
        let mut c = Catalog::default();
        let b = BoardName::parse("laps").unwrap();
        c.put_board(&b, BoardPatch::default()).unwrap();
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
        c.put_board(&b, BoardPatch { title: Some("Laps".into()), ..BoardPatch::default() }).unwrap();
        assert_eq!(r(&c).current_season(), 3);
        assert_eq!(c.new_season(&BoardName::parse("nope").unwrap(), 1), None);
        assert_eq!((parse_season("s2"), parse_season("s1"), parse_season("s0")), (Some(2), Some(1), None));
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
        c.put_board(&b("score"), patch).unwrap();
        assert!(c.resolve(&event("x", Some("score"), 10.0)).is_ok());
        assert!(matches!(c.resolve(&event("x", Some("score"), 10.5)), Err(ResolveError::OutOfRange { .. })));
        assert!(matches!(c.resolve(&event("x", Some("score"), -1.0)), Err(ResolveError::OutOfRange { .. })));
    }

    #[test]
    fn order_and_op_are_fixed_once_a_board_holds_scores() {
        let mut c = Catalog::default();
        c.put_board(&b("laps"), BoardPatch { order: Some(Order::Asc), ..Default::default() }).unwrap();
        c.put_board(&b("laps"), BoardPatch { order: Some(Order::Desc), ..Default::default() }).unwrap();
        c.ensure_scored([&b("laps")], AutoCreate::default()).unwrap();
        let e = c.put_board(&b("laps"), BoardPatch { order: Some(Order::Asc), ..Default::default() });
        assert_eq!(e, Err(PatchError::FixedOnceScored("order")));
        let e = c.put_board(&b("laps"), BoardPatch { op: Some(Op::Best), ..Default::default() });
        assert_eq!(e, Err(PatchError::FixedOnceScored("op")));
        // Restating the same values, or changing ties, is fine.
        let same = BoardPatch { order: Some(Order::Desc), ties: Some(Ties::First), ..Default::default() };
        assert_eq!(c.put_board(&b("laps"), same), Ok(false));
    }

    #[test]
    fn a_recreated_board_gets_a_new_generation() {
        let mut c = Catalog::default();
        c.ensure_scored([&b("likes")], AutoCreate::default()).unwrap();
        let g1 = c.boards[&b("likes")].generation;
        c.delete_board(&b("likes"));
        c.ensure_scored([&b("likes")], AutoCreate::default()).unwrap();
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
        assert!(matches!(c.put_board(&b("x"), p), Err(PatchError::Invalid(_))));
    }

    #[test]
    fn boards_created_by_events_never_use_up_what_the_admin_may_create() {
        let mut c = Catalog::default();
        let auto = AutoCreate { on: true, max: 2 };
        assert_eq!(c.ensure_scored([&b("e1"), &b("e2")], auto), Ok(true));
        assert!(c.boards[&b("e1")].auto);
        // A third by an event is refused, naming it; nothing is created.
        assert_eq!(c.ensure_scored([&b("e3"), &b("e1")], auto), Err(PatchError::NotAutoCreated(b("e3"))));
        assert!(!c.boards.contains_key(&b("e3")));
        // The admin still creates up to the full limit.
        for i in 0..MAX_BOARDS {
            assert_eq!(c.put_board(&b(&format!("b{i}")), BoardPatch::default()), Ok(true));
        }
        assert_eq!(c.put_board(&b("one-more"), BoardPatch::default()), Err(PatchError::TooManyBoards));
        // Existing boards take events whatever the limits.
        let off = AutoCreate { on: false, max: 0 };
        assert_eq!(c.ensure_scored([&b("b0"), &b("e1")], off), Ok(true));
        assert_eq!(c.ensure_scored([&b("new")], off), Err(PatchError::NotAutoCreated(b("new"))));
        // A PUT of a board an event created keeps it counted as such.
        assert_eq!(c.put_board(&b("e1"), BoardPatch::default()), Ok(false));
        assert!(c.boards[&b("e1")].auto);
    }

    #[test]
    fn auto_create_settings_are_read_leniently() {
        assert_eq!(AutoCreate::parse(None, None), AutoCreate::default());
        assert_eq!(AutoCreate::parse(Some("off"), Some("5")), AutoCreate { on: false, max: 5 });
        assert_eq!(AutoCreate::parse(Some("ON"), Some("x")), AutoCreate { on: true, max: 10_000 });
    }
}
