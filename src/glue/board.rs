//! `BoardObject`: one board period's ranking (e.g. `likes@3/day/2026-11-22`).
//!
//! The ranking lives in memory (the core's `Ranking`) and in SQLite: each
//! batch's changed member rows, event ids and events counter are written in
//! one transaction before the object answers, so an acknowledged event
//! survives eviction and restarts, and a failed batch leaves no trace. A
//! member hit many times in one batch is written once. The alarm does what
//! can wait: push the top to live viewers (at most every 550 ms), prune event
//! ids older than the dedupe horizon, and delete an expired period.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeSet, HashMap, HashSet};

use serde::Deserialize;
use worker::{
    console_error, durable_object, Env, Method, Request, Response, Result, SqlStorage, SqlStorageValue, State,
};

use super::faults::{faults_on, Fault};
use super::kv;
use super::platform::{now_ms, retention, rust_err};
use super::rows::MemberRows;
use super::txn::{write_all, Stmt};
use crate::core::chores::{Chores, REPORT_EVERY_MS, REPORT_QUIET_MS};
use crate::core::hooks::{overtakes, top_change, HookEvent, MAX_TOP};
use crate::core::period::Period;
use crate::core::ranking::checkpoint::{boundary, Checkpoint, Snapshot};
use crate::core::ranking::{Ranking, RankingBuilder, Row};
use crate::core::{Op, Order, Tiebreak, Ties};
use crate::domain::MemberId;
use crate::protocol::{
    json_arrays, meta_json, Ack, ApplyBatch, ApplyResult, BoardCommand, BoardQuery, BoardSpec, EntryOut,
    ExportLine, ExportPage, HookDelivery, ImportRow, Imported, Missing, QueryOut, Removal, Removed, ShardOut,
    ShardQuery, StandingOut, TopOut, LIVE_MAX_LIMIT,
};

#[durable_object]
pub struct BoardObject {
    state: State,
    env: Env,
    ranking: RefCell<Option<Ranking>>,
    spec: RefCell<Option<BoardSpec>>,
    /// A live hub has viewers for this period: push changes to it.
    watched: Cell<bool>,
    /// Something changed since the last push.
    dirty: Cell<bool>,
    last_publish: Cell<i64>,
    alarm_at: Cell<Option<i64>>,
    /// Events this board period applied (duplicates not counted); stored in
    /// `kv` with each batch.
    events: Cell<u64>,
    /// When the oldest dedupe record was written (a lower bound; `kv`).
    dedupe_since: Cell<Option<i64>>,
    /// A pruning pass's position: the last id it went past (`kv`).
    prune_cursor: RefCell<Option<String>>,
    /// Member removals (table `removed`): an event for the member accepted
    /// before the time given is not applied, whenever it arrives.
    removed: RefCell<HashMap<String, i64>>,
    /// This period is in its board's index (`kv`), so removals reach it.
    registered: Cell<bool>,
    /// How many times this object was wiped: an apply in slices that sees
    /// it change across a yield stops (see `apply_in_slices`).
    wipes: Cell<u64>,
    /// Ranks at the last checkpoint (table `checkpoint`, `kv`), for `prev_rank`.
    checkpoint: RefCell<Option<Checkpoint>>,
    /// A checkpoint taken at the boundary but not grouped yet: `cp()`
    /// groups it, in a later turn than the one that took it when it can.
    snapshot: RefCell<Option<Snapshot>>,
    /// Webhooks (API 1.1): the largest `top` hooks watch on this board (0:
    /// none), from the isolate's cache of hooks.
    hook_top: Cell<usize>,
    /// The ranking changed since the hooks last looked.
    hook_dirty: Cell<bool>,
    last_hook_look: Cell<i64>,
    /// The order of the top the hooks saw last (`kv` "hook_seen"): what
    /// `top_changed` and `overtaken` compare with.
    hook_seen: RefCell<Option<Vec<String>>>,
    /// This period's end was told to its hooks (`kv` "ended").
    ended: Cell<bool>,
    /// The next slice of the last checkpoint to store (`None`: stored).
    cp_stored: Cell<Option<usize>>,
    /// The counts changed since the catalog last heard them (`GET /v1/boards`
    /// lists what boards report, asking none).
    counts_dirty: Cell<bool>,
    /// The catalog heard this period's counts since they last changed (`kv`
    /// "reported"): an object woken cold reports them only when not, so a
    /// read that wakes it sets no alarm before it answers.
    reported: Cell<bool>,
    /// When the catalog may hear them next.
    report_after: Cell<i64>,
}

/// Checkpoint entries stored per turn: 1.2 MB (`CHECKPOINT_SLICE` with
/// test faults on).
const CHECKPOINT_SLICE: usize = 100_000;

/// Members applied per turn (see `BoardObject::apply_slice`).
const APPLY_SLICE: usize = 1_000;

/// The version of a board object's tables (`BoardObject::migrate`).
const SCHEMA: &str = "3";

/// Checkpoint entries as stored: slices of the checkpoint taken at `at`.
const CHECKPOINT_ROWS: &str =
    "CREATE TABLE IF NOT EXISTS checkpoint_rows (at INTEGER NOT NULL, i INTEGER NOT NULL, data BLOB NOT NULL, \
     PRIMARY KEY (at, i))";

/// JSON arrays of at most ~512 KB for `json_each(?)` statements: a bound
/// value must stay well under SQLite's 2 MB.
fn json_chunks<T: serde::Serialize>(items: &[T]) -> Result<Vec<String>> {
    json_arrays(items, "[", "]", 512 * 1024).map_err(rust_err)
}

/// Writes member rows given as a JSON array of `[member, score, seq, ts,
/// sub]` ([`row_json`]); a new member starts without metadata, an existing
/// one keeps its own.
const UPSERT_MEMBERS: &str = "INSERT INTO members (member, score, seq, ts, sub, meta) \
     SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, NULL FROM json_each(?) \
     WHERE true ON CONFLICT(member) DO UPDATE SET score = excluded.score, seq = excluded.seq, \
     ts = excluded.ts, sub = excluded.sub";

/// A member row as `UPSERT_MEMBERS` takes it.
fn row_json(r: &Row) -> serde_json::Value {
    serde_json::json!([r.member, r.score, r.seq, r.ts, r.sub])
}

/// Sets members' metadata, given as a JSON array of `[member, meta]` (meta
/// `"{}"` or `null` clears it). Metadata lives only in SQLite (issue 12:
/// a board's memory must not grow with 1 KiB per member); reads fetch it for
/// the members they list.
const SET_META: &str = "UPDATE members SET meta = NULLIF(j.value ->> 1, '{}') \
     FROM json_each(?) AS j WHERE members.member = j.value ->> 0";

/// The most members a board period holds (`BOARD_MAX_MEMBERS`, default
/// 1,000,000): a full ranking loads in ~80 MB of the isolate's 128 MB.
pub fn max_members(env: &Env) -> usize {
    env.var("BOARD_MAX_MEMBERS").ok().and_then(|v| v.to_string().parse().ok()).unwrap_or(1_000_000)
}

/// A fresh random key for a ranking's member-id hash (from a
/// `crypto.randomUUID`: its two halves XORed, so the few fixed version and
/// variant bits of one half meet random bits of the other). It lives only
/// in memory: the index is rebuilt under a new key on every load.
fn hash_key() -> u64 {
    super::platform::random_uuid_bytes()
        .map(|b| {
            let n = u128::from_be_bytes(b);
            (n >> 64) as u64 ^ n as u64
        })
        .unwrap_or(0x9E37_79B9_7F4A_7C15)
}

impl BoardObject {
    fn sql(&self) -> SqlStorage {
        self.state.storage().sql()
    }

    /// A test-only setting: read only with test faults on, never in production.
    fn test_var<T: std::str::FromStr>(&self, name: &str) -> Option<T> {
        if !faults_on(&self.env) {
            return None;
        }
        self.env.var(name).ok()?.to_string().parse().ok()
    }

    /// The ranking changed: live viewers and hooks have something new.
    fn mark_changed(&self) {
        self.dirty.set(true);
        self.hook_dirty.set(true);
        self.counts_dirty.set(true);
        if self.reported.replace(false) {
            // (one write per report, not per change: only the first change
            // after one. An apply clears it in its own transaction instead;
            // the rarer changes here write it in the same turn.)
            if let Err(e) = kv::put(&self.sql(), "reported", "0") {
                console_error!("reported flag not cleared: {e:?}");
            }
        }
    }

    /// The tables, and the moves of layouts stored by older versions: run
    /// once per object, then `schema` says so. A cold start of an object at
    /// the current version runs no DDL: each statement a cold object runs is
    /// prepared afresh (~90 µs here), and the read that woke it waits.
    fn migrate(&self, sql: &SqlStorage, schema: Option<&str>) -> Result<()> {
        sql.exec(
            "CREATE TABLE IF NOT EXISTS members (member TEXT PRIMARY KEY, score REAL NOT NULL, \
             seq INTEGER NOT NULL, ts INTEGER NOT NULL, meta TEXT, sub REAL NOT NULL DEFAULT 0)",
            None,
        )?;
        // Boards stored before the tiebreak (session 9) have no `sub` column.
        // (a query that names a missing column fails to prepare)
        if schema != Some("2") && sql.exec("SELECT sub FROM members LIMIT 0", None).is_err() {
            sql.exec("ALTER TABLE members ADD COLUMN sub REAL NOT NULL DEFAULT 0", None)?;
        }
        // Dedupe records: one per applied event id. WITHOUT ROWID keeps the
        // id once (as the key of the table itself) instead of in a rowid
        // table plus its primary-key index: one B-tree insert fewer per event.
        // No index on `at` (it cost about half of each record's bytes and
        // an index write per event): pruning walks the table by id, a slice
        // per alarm, and `kv` keeps when the oldest record was written.
        sql.exec(
            "CREATE TABLE IF NOT EXISTS dedupe (id TEXT PRIMARY KEY, at INTEGER NOT NULL) WITHOUT ROWID",
            None,
        )?;
        sql.exec("DROP INDEX IF EXISTS dedupe_at", None)?;
        // Boards stored before session 6 kept them in a rowid table `seen`.
        let legacy: Vec<serde_json::Value> = sql
            .exec("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'seen'", None)?
            .to_array()?;
        if !legacy.is_empty() {
            sql.exec("INSERT OR IGNORE INTO dedupe (id, at) SELECT id, at FROM seen", None)?;
            sql.exec("DROP TABLE seen", None)?;
            kv::put(sql, "prune_cursor", "")?;
        }
        sql.exec("CREATE TABLE IF NOT EXISTS removed (member TEXT PRIMARY KEY, at INTEGER NOT NULL)", None)?;
        sql.exec("CREATE TABLE IF NOT EXISTS hidden (member TEXT PRIMARY KEY)", None)?;
        sql.exec("CREATE TABLE IF NOT EXISTS checkpoint (n INTEGER PRIMARY KEY, data BLOB NOT NULL)", None)?;
        sql.exec(CHECKPOINT_ROWS, None)?;
        kv::put(sql, "schema", SCHEMA)
    }

    /// Loads the ranking from SQLite on first use after a cold start.
    fn ensure_loaded(&self) -> Result<()> {
        if self.ranking.borrow().is_some() {
            return Ok(());
        }
        let sql = self.sql();
        let mut kv = kv::all(&sql)?;
        if kv.get("schema").map(String::as_str) != Some(SCHEMA) {
            self.migrate(&sql, kv.get("schema").map(String::as_str))?;
            kv = kv::all(&sql)?;
        }
        let key = |k: &str| kv.get(k).map(String::as_str);
        #[derive(Deserialize)]
        struct Tomb {
            member: String,
            at: f64,
        }
        let tombs: Vec<Tomb> = sql.exec("SELECT member, at FROM removed", None)?.to_array()?;
        *self.removed.borrow_mut() = tombs.into_iter().map(|t| (t.member, t.at as i64)).collect();
        self.registered.set(key("registered") == Some("1"));
        self.dedupe_since.set(key("dedupe_since").and_then(|v| v.parse().ok()));
        *self.prune_cursor.borrow_mut() = key("prune_cursor").map(str::to_string);

        let spec: Option<BoardSpec> = key("spec").and_then(|v| serde_json::from_str(v).ok());
        let watched = key("watched") == Some("1");
        self.events.set(key("events").and_then(|v| v.parse().ok()).unwrap_or(0));
        self.ended.set(key("ended") == Some("1"));
        *self.hook_seen.borrow_mut() = key("hook_seen").and_then(|v| serde_json::from_str(v).ok());
        self.watched.set(watched);
        // After an eviction, push once more in case a change was not yet published.
        self.dirty.set(watched);
        // Streamed a packed chunk at a time (`rows`): a million-member board
        // must not become one giant JS array on the way in, nor cross the
        // JS↔wasm boundary once per column.
        let started = now_ms();
        let mut rows = MemberRows::open(&sql)?;
        let (order, op, tb) = spec.as_ref().map(|s| (s.order, s.op, s.tiebreak)).unwrap_or((
            Order::Desc,
            Op::Incr,
            Tiebreak::None,
        ));
        let mut build = RankingBuilder::new(order, op, tb, hash_key(), rows.count);
        rows.feed(&mut build);
        let ranking = build.finish();
        if let Some(e) = rows.failed.take() {
            return Err(e);
        }
        if ranking.len() >= 100_000 {
            // Large boards say what their cold start cost (scripts/million.mjs reads it).
            let pages = core::arch::wasm32::memory_size(0);
            worker::console_log!(
                "board {} loaded {} members in {} ms; wasm memory {} MB; rows read and packed in {} ms",
                spec.as_ref().map(|s| s.object_name()).unwrap_or_default(),
                ranking.len(),
                now_ms() - started,
                pages * 64 / 1024,
                rows.read_ms
            );
        }
        let mut ranking = ranking;
        #[derive(Deserialize)]
        struct Hid {
            member: String,
        }
        for h in sql.exec("SELECT member FROM hidden", None)?.to_array::<Hid>()? {
            ranking.set_hidden(&h.member, true);
        }
        // A period that holds members and has not reported its counts since
        // they last changed (or was stored before the flag: one moved from
        // the single catalog record) reports them after it wakes, with its
        // next alarm: the catalog learns them without a new event.
        self.reported.set(key("reported") == Some("1"));
        self.counts_dirty.set(spec.is_some() && !ranking.is_empty() && !self.reported.get());
        *self.ranking.borrow_mut() = Some(ranking);
        *self.spec.borrow_mut() = spec;
        *self.snapshot.borrow_mut() = None;
        *self.checkpoint.borrow_mut() = self.load_checkpoint(key("checkpoint"))?;
        Ok(())
    }

    /// The checkpoint that `kv`'s `checkpoint` (`stored`) names.
    fn load_checkpoint(&self, stored: Option<&str>) -> Result<Option<Checkpoint>> {
        let sql = self.sql();
        // "at:seed", and ":p" after them when it keeps places (a shard's).
        let Some((at, seed, places)) = stored.and_then(|v| {
            let mut parts = v.split(':');
            let at = parts.next()?.parse::<i64>().ok()?;
            let seed = parts.next()?.parse::<u64>().ok()?;
            Some((at, seed, parts.next() == Some("p")))
        }) else {
            return Ok(None);
        };
        let blobs = |q: &str, args: Vec<SqlStorageValue>| -> Result<Vec<Vec<u8>>> {
            let mut out = Vec::new();
            for row in sql.exec(q, args)?.raw() {
                if let Some(SqlStorageValue::Blob(b)) = row?.into_iter().next() {
                    out.push(b);
                }
            }
            Ok(out)
        };
        let mut chunks =
            blobs("SELECT data FROM checkpoint_rows WHERE at = ? ORDER BY i", vec![(at as f64).into()])?;
        if chunks.is_empty() {
            // stored before session 9, in one table
            chunks = blobs("SELECT data FROM checkpoint ORDER BY n", vec![])?;
        }
        Ok(Some(Checkpoint::from_chunks(at, seed, places, chunks)))
    }

    /// Stores the next slice of the checkpoint taken last (entries
    /// `CHECKPOINT_SLICE` at a time, each in its own turn, so storing a 1M
    /// board's 12 MB never holds an apply up for long). The last slice makes
    /// it the stored one and drops the one before; until then the stored
    /// checkpoint is the previous one (after an eviction in between, the
    /// next read takes a checkpoint from the ranking as it is then).
    fn store_checkpoint_slice(&self) -> Result<()> {
        let guard = self.cp();
        let Some(cp) = guard.as_ref() else {
            self.cp_stored.set(None);
            return Ok(());
        };
        let Some(next) = self.cp_stored.get() else { return Ok(()) };
        let slice = self.checkpoint_slice();
        let chunk = cp.chunks(slice).nth(next);
        let mut stmts = Vec::new();
        if let Some(chunk) = chunk {
            stmts.push(Stmt::new(
                "INSERT OR REPLACE INTO checkpoint_rows (at, i, data) VALUES (?, ?, ?)",
                vec![(cp.at as f64).into(), (next as f64).into(), SqlStorageValue::Blob(chunk)],
            ));
        }
        let last = next + 1 >= cp.len().div_ceil(slice);
        if last {
            stmts.push(Stmt::new(
                "INSERT INTO kv (k, v) VALUES ('checkpoint', ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v",
                vec![format!("{}:{}{}", cp.at, cp.seed(), if cp.has_places() { ":p" } else { "" }).into()],
            ));
            stmts.push(Stmt::new("DELETE FROM checkpoint_rows WHERE at <> ?", vec![(cp.at as f64).into()]));
            stmts.push(Stmt::new("DELETE FROM checkpoint", vec![]));
        }
        write_all(&self.state.storage(), stmts, None)?;
        self.cp_stored.set(if last { None } else { Some(next + 1) });
        Ok(())
    }

    /// Checkpoint entries stored per turn (tests make it small, so a few
    /// members take several turns).
    fn checkpoint_slice(&self) -> usize {
        self.test_var::<usize>("CHECKPOINT_SLICE").filter(|n| *n > 0).unwrap_or(CHECKPOINT_SLICE)
    }

    /// How often checkpoints are taken (`CHECKPOINT_EVERY_MS`, default an
    /// hour; tests shorten it).
    fn checkpoint_every(&self) -> i64 {
        self.env
            .var("CHECKPOINT_EVERY_MS")
            .ok()
            .and_then(|v| v.to_string().parse().ok())
            .filter(|ms: &i64| *ms > 0)
            .unwrap_or(3_600_000)
    }

    /// Takes the checkpoint of the latest boundary unless this period holds
    /// it already. Called before every change and read: the first one after
    /// a boundary sees the ranking exactly as it stood at the boundary.
    fn ensure_checkpoint(&self) -> Result<bool> {
        let at = boundary(now_ms(), self.checkpoint_every());
        let held = match self.snapshot.borrow().as_ref() {
            Some(s) => Some(s.at()),
            None => self.checkpoint.borrow().as_ref().map(|c| c.at),
        };
        if held.is_some_and(|h| h >= at) {
            return Ok(false);
        }
        let (ties, sharded) =
            self.spec.borrow().as_ref().map(|s| (s.ties, s.is_sharded())).unwrap_or((Ties::Shared, false));
        let started = now_ms();
        // The last checkpoint's buffers take the new one (no second copy
        // alive, no fresh memory to fault in).
        *self.snapshot.borrow_mut() = None;
        let old = self.checkpoint.borrow_mut().take().unwrap_or_default();
        let snap = {
            let guard = self.ranking.borrow();
            let r = guard.as_ref().ok_or_else(|| rust_err("ranking not loaded"))?;
            // A shard's checkpoint keeps places: the board's `prev_rank`
            // counts the entries before a member in every shard's.
            Snapshot::take(old, r, ties, at, hash_key(), sharded)
        };
        let len = snap.len();
        self.cp_stored.set(Some(0));
        // A small checkpoint is grouped and stored at once; a large one is
        // grouped in a later turn (the alarm's, or the first `prev_rank`
        // read's) and stored a slice per turn (`Chores::checkpoint_storing`).
        let deferred = len > self.checkpoint_slice();
        *self.snapshot.borrow_mut() = Some(snap);
        if !deferred {
            self.store_checkpoint_slice()?;
        }
        if len >= 100_000 {
            // Large boards say what a checkpoint held them up (scripts/million.mjs reads it).
            worker::console_log!(
                "checkpoint of {} members: snapshot taken in {} ms",
                len,
                now_ms() - started
            );
        }
        // Viewers' arrows change with it.
        if self.watched.get() && len > 0 {
            self.mark_changed();
        }
        Ok(deferred)
    }

    /// The last checkpoint, grouping a snapshot first if one is waiting.
    fn cp(&self) -> std::cell::Ref<'_, Option<Checkpoint>> {
        let waiting = self.snapshot.borrow_mut().take();
        if let Some(snap) = waiting {
            let started = now_ms();
            let len = snap.len();
            *self.checkpoint.borrow_mut() = Some(snap.group());
            if len >= 100_000 {
                worker::console_log!("checkpoint of {} members: grouped in {} ms", len, now_ms() - started);
            }
        }
        self.checkpoint.borrow()
    }

    /// `prev_rank` of a member, from the last checkpoint.
    fn prev_rank(&self, member: &str) -> Option<u64> {
        self.cp().as_ref().and_then(|c| c.rank_of(member))
    }

    /// Whether this board period's board has a `tiebreak` (its entries then
    /// carry subscores).
    fn tiebroken(&self) -> bool {
        self.spec.borrow().as_ref().is_some_and(|s| !s.tiebreak.is_none())
    }

    fn entry_out(&self, e: crate::core::ranking::Entry<'_>) -> EntryOut {
        let mut out = EntryOut::of(e, self.tiebroken());
        out.prev_rank = self.prev_rank(&out.member);
        out
    }

    /// Records which board period this object is, the first time it is told.
    fn adopt_spec(&self, spec: &BoardSpec) -> Result<()> {
        let same = self.spec.borrow().as_ref() == Some(spec);
        if same {
            return Ok(());
        }
        // Viewers see ranks: new tie rules are a change to push to them.
        if self.spec.borrow().as_ref().is_some_and(|old| old.ties != spec.ties) {
            self.mark_changed();
        }
        let mut ranking = self.ranking.borrow_mut();
        if let Some(r) = ranking.as_mut() {
            // Order and op are fixed once a board holds scores (the catalog
            // refuses such changes); an empty ranking simply takes them.
            if r.is_empty() && (r.order() != spec.order || r.op() != spec.op || r.tiebreak() != spec.tiebreak)
            {
                *r = Ranking::with_seed(spec.order, spec.op, spec.tiebreak, hash_key());
            }
        }
        kv::put(&self.sql(), "spec", &serde_json::to_string(spec).map_err(rust_err)?)?;
        *self.spec.borrow_mut() = Some(spec.clone());
        Ok(())
    }

    /// Applies a batch atomically: the dedupe records, the member rows, the
    /// events counter and the in-memory ranking change together or not at
    /// all. Reads first (which ids this board already applied: one
    /// statement), then the ranking changes in memory, then every write in
    /// one `transactionSync`. If the transaction fails, the caller drops the
    /// in-memory ranking, which reloads from storage as it was; if the wasm
    /// instance traps, memory is gone and the transaction rolled back.
    fn apply(&self, batch: ApplyBatch) -> Result<ApplyResult> {
        self.ensure_loaded()?;
        self.adopt_spec(&batch.spec)?;
        let now = now_ms();
        let faults = faults_on(&self.env);

        let ids: Vec<&str> = batch.events.iter().map(|e| e.id.as_str()).collect();
        let known = self.known_ids(&ids)?;

        let mut fresh_ids: Vec<String> = Vec::with_capacity(batch.events.len());
        let mut batch_ids: HashSet<String> = HashSet::with_capacity(batch.events.len());
        let mut fresh_events = Vec::with_capacity(batch.events.len());
        let mut fault = None;
        let mut rejected = Vec::new();
        // Events for a removed member accepted before its removal: kept as
        // applied (their ids stay known) but they change nothing.
        let mut dropped = 0usize;
        let duplicates;
        let mut touched: BTreeSet<String> = BTreeSet::new();
        let mut metas: std::collections::BTreeMap<String, String> = std::collections::BTreeMap::new();
        {
            let mut guard = self.ranking.borrow_mut();
            let ranking = guard.as_mut().ok_or_else(|| rust_err("ranking not loaded"))?;
            let total = batch.events.len();
            let cap = max_members(&self.env);
            let mut new_members: HashSet<String> = HashSet::new();
            for ev in batch.events {
                if known.contains(&ev.id) || !batch_ids.insert(ev.id.clone()) {
                    continue;
                }
                if self.removed.borrow().get(&ev.member).is_some_and(|at| ev.at < *at) {
                    fresh_ids.push(ev.id);
                    dropped += 1;
                    continue;
                }
                // A new member of a full board period is not applied (and
                // gets no dedupe record): it goes back as a dead letter.
                if !ranking.contains(&ev.member) && !new_members.contains(&ev.member) {
                    if ranking.len() + new_members.len() >= cap {
                        rejected.push(ev);
                        continue;
                    }
                    new_members.insert(ev.member.clone());
                }
                if faults && fault.is_none() {
                    fault = Fault::of(&ev.member, now);
                }
                fresh_ids.push(ev.id);
                let Ok(member) = MemberId::parse(ev.member) else { continue };
                fresh_events.push((member, ev.value, ev.sub, ev.ts, ev.meta));
            }
            duplicates = (total - fresh_ids.len() - rejected.len() + dropped) as u32;
            let changed =
                ranking.apply_batch(&fresh_events.iter().map(|e| (&e.0, e.1, e.2, e.3)).collect::<Vec<_>>());
            // metadata after the scores: it only sticks to members on the board
            let op = ranking.op();
            for ((member, _, _, _, meta), changed) in fresh_events.into_iter().zip(changed) {
                // On `last` boards an event older than the member's latest
                // lost: its metadata is as stale as its value.
                let lost = op == Op::Last && !changed;
                let on_board = ranking.contains(member.as_str());
                if let Some(m) = meta.filter(|_| !lost && on_board) {
                    // the batch's latest wins; `{}` clears
                    metas.insert(member.as_str().to_string(), m);
                    touched.insert(member.into_string());
                } else if changed {
                    touched.insert(member.into_string());
                }
            }
        }
        // Test faults strike after the in-memory ranking changed and before
        // anything is written: the worst moment for memory and storage to part.
        let txn_fault = match fault {
            Some(Fault::Fail) => return Err(rust_err("test fault: board failed mid-batch")),
            Some(Fault::Panic) => panic!("test fault: board panicked mid-batch"),
            Some(Fault::Transaction) => Some(1),
            None => None,
        };
        let applied = (fresh_ids.len() - dropped) as u32;
        if fresh_ids.is_empty() {
            return Ok(ApplyResult { applied, duplicates, rejected });
        }
        let rows: Vec<serde_json::Value> = {
            let guard = self.ranking.borrow();
            let ranking = guard.as_ref().ok_or_else(|| rust_err("ranking not loaded"))?;
            touched.iter().filter_map(|m| ranking.get(m)).map(|r| row_json(&r)).collect()
        };
        let metas: Vec<(String, String)> = metas.into_iter().collect();
        let events = self.events.get() + applied as u64;
        // One statement per ~512 KB of ids or rows (a bound value must stay
        // well under SQLite's 2 MB), not one per event.
        let mut stmts = Vec::new();
        for chunk in json_chunks(&fresh_ids)? {
            stmts.push(Stmt::new(
                "INSERT INTO dedupe (id, at) SELECT value, ? FROM json_each(?)",
                vec![(now as f64).into(), chunk.into()],
            ));
        }
        for chunk in json_chunks(&rows)? {
            stmts.push(Stmt::new(UPSERT_MEMBERS, vec![chunk.into()]));
        }
        for chunk in json_chunks(&metas)? {
            stmts.push(Stmt::new(SET_META, vec![chunk.into()]));
        }
        stmts.push(Stmt::new(
            "INSERT INTO kv (k, v) VALUES ('events', ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v",
            vec![events.to_string().into()],
        ));
        if self.events.get() == 0 {
            // When the period got its first event (test period ends count from it).
            stmts.push(Stmt::new(
                "INSERT OR IGNORE INTO kv (k, v) VALUES ('born', ?)",
                vec![now.to_string().into()],
            ));
        }
        let since = self.dedupe_since.get().unwrap_or(now);
        if self.dedupe_since.get().is_none() {
            stmts.push(Stmt::new(
                "INSERT INTO kv (k, v) VALUES ('dedupe_since', ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v",
                vec![since.to_string().into()],
            ));
        }
        // The first change after a report clears its flag in the change's own
        // transaction, so no failure can keep "reported" beside a change the
        // catalog has not heard (a cold wake would not report it).
        let clears_report = !touched.is_empty() && self.reported.get();
        if clears_report {
            stmts.push(Stmt::new(
                "INSERT INTO kv (k, v) VALUES ('reported', '0') ON CONFLICT(k) DO UPDATE SET v = excluded.v",
                Vec::new(),
            ));
        }
        write_all(&self.state.storage(), stmts, txn_fault)?;
        self.events.set(events);
        self.dedupe_since.set(Some(since));
        if clears_report {
            self.reported.set(false);
        }
        if !touched.is_empty() {
            self.mark_changed();
        }
        Ok(ApplyResult { applied, duplicates, rejected })
    }

    /// Members applied per turn (`APPLY_SLICE` in tests; a slice holds at
    /// most ten times as many events). A Queue batch can bring a board tens
    /// of thousands of events; on a big board each member's row upsert
    /// touches pages SQLite has not cached, so one turn for all of them held
    /// every read of the board up for 300–500 ms (`scripts/million.mjs`).
    fn apply_slice(&self) -> usize {
        self.test_var("APPLY_SLICE").filter(|n| *n > 0).unwrap_or(APPLY_SLICE)
    }

    /// Applies a batch a slice of members at a time (`core::slices`), and
    /// yields between slices so the requests queued at this object (reads
    /// above all) wait for one slice, not the whole batch. Each slice is
    /// atomic (`apply`), so a failure part-way leaves the earlier slices
    /// applied and their ids known: the Queue's retry finds them duplicates,
    /// exactly as when the consumer sends a batch again. What runs in the
    /// yields is respected: a wipe (the window dropped, the period expired,
    /// the board deleted) ends the batch, as if all of it had come before
    /// the wipe; settings changed meanwhile are kept, not overwritten by the
    /// batch's older ones.
    async fn apply_in_slices(&self, batch: ApplyBatch) -> Result<ApplyResult> {
        let ApplyBatch { spec, events } = batch;
        let per = self.apply_slice();
        let slices =
            crate::core::slices::by_member(events, |e| e.member.as_str(), per, per.saturating_mul(10));
        let wipes = self.wipes.get();
        let mut total = ApplyResult { applied: 0, duplicates: 0, rejected: vec![] };
        for (i, events) in slices.into_iter().enumerate() {
            let spec = if i == 0 {
                spec.clone()
            } else {
                worker::Delay::from(std::time::Duration::ZERO).await;
                if self.wipes.get() != wipes {
                    worker::console_log!("a wipe came between slices of a batch: its rest is not applied");
                    break;
                }
                // (`apply` loads again if a request run meanwhile unloaded it)
                self.spec.borrow().clone().unwrap_or_else(|| spec.clone())
            };
            let r = self.apply(ApplyBatch { spec, events }).inspect_err(|_| {
                // Storage rolled back; memory may be ahead of it: reload on next use.
                *self.ranking.borrow_mut() = None;
            })?;
            total.applied += r.applied;
            total.duplicates += r.duplicates;
            total.rejected.extend(r.rejected);
        }
        Ok(total)
    }

    /// Which of `ids` this board period has applied (one statement per ~512 KB).
    fn known_ids(&self, ids: &[&str]) -> Result<HashSet<String>> {
        #[derive(Deserialize)]
        struct Seen {
            id: String,
        }
        let mut known: HashSet<String> = HashSet::new();
        for chunk in json_chunks(ids)? {
            let rows = self
                .sql()
                .exec(
                    "SELECT s.id AS id FROM json_each(?) j JOIN dedupe s ON s.id = j.value",
                    vec![chunk.into()],
                )?
                .to_array::<Seen>()?;
            known.extend(rows.into_iter().map(|r| r.id));
        }
        Ok(known)
    }

    fn missing(&self, ids: Vec<String>) -> Result<Missing> {
        self.ensure_loaded()?;
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let known = self.known_ids(&refs)?;
        Ok(Missing { ids: ids.into_iter().filter(|i| !known.contains(i)).collect() })
    }

    fn query(&self, q: BoardQuery) -> Result<QueryOut> {
        self.ensure_loaded()?;
        let guard = self.ranking.borrow();
        let r = guard.as_ref().ok_or_else(|| rust_err("ranking not loaded"))?;
        // Hidden members are in no one's total but their own standing's.
        let total = r.visible_len() as u64;
        let events = self.events.get();
        let tiebroken = self.tiebroken();
        let entries =
            |v: Vec<crate::core::ranking::Entry<'_>>| v.into_iter().map(|e| self.entry_out(e)).collect();
        let mut out = match q {
            BoardQuery::Top { offset, limit, ties } => QueryOut {
                total,
                events,
                found: true,
                entries: entries(r.top(offset, limit, ties)),
                standing: None,
            },
            BoardQuery::Rank { member, ties } => {
                match r.rank(&member, ties).map(|st| (st, self.prev_rank(&member))) {
                    Some((s, prev_rank)) => QueryOut {
                        total,
                        events,
                        found: true,
                        entries: vec![],
                        standing: Some(StandingOut {
                            member,
                            rank: s.rank,
                            score: s.score,
                            subscore: tiebroken.then_some(s.sub),
                            total: s.total,
                            percentile: s.percentile,
                            meta: meta_json(s.meta),
                            prev_rank,
                        }),
                    },
                    None => QueryOut { total, events, found: false, entries: vec![], standing: None },
                }
            }
            BoardQuery::Around { member, radius, ties } => match r.around(&member, radius, ties) {
                Some(v) => QueryOut { total, events, found: true, entries: entries(v), standing: None },
                None => QueryOut { total, events, found: false, entries: vec![], standing: None },
            },
            BoardQuery::Lookup { members, ties } => {
                let refs: Vec<&str> = members.iter().map(String::as_str).collect();
                QueryOut {
                    total,
                    events,
                    found: true,
                    entries: entries(r.lookup(&refs, ties)),
                    standing: None,
                }
            }
        };
        drop(guard);
        self.fill_meta(&mut out.entries)?;
        if let Some(st) = out.standing.as_mut() {
            st.meta = self.metas_of(&[st.member.as_str()])?.remove(&st.member);
        }
        Ok(out)
    }

    /// One shard's part of a read of a sharded board (`glue::shards` merges
    /// the shards' answers). Entries carry no `prev_rank`: a shard's own
    /// checkpoint ranks are not the board's.
    fn shard_query(&self, q: ShardQuery) -> Result<ShardOut> {
        self.ensure_loaded()?;
        let guard = self.ranking.borrow();
        let r = guard.as_ref().ok_or_else(|| rust_err("ranking not loaded"))?;
        let tiebroken = self.tiebroken();
        let mut out =
            ShardOut { total: r.visible_len() as u64, events: self.events.get(), ..ShardOut::default() };
        let cp = self.cp();
        let prev_of = |m: &str| cp.as_ref().and_then(|c| c.spot_of(m));
        let put = |out: &mut ShardOut, v: Vec<crate::core::ranking::Entry<'_>>| {
            for e in v {
                out.reached.push(e.reached);
                out.prev.push(prev_of(e.member));
                out.entries.push(EntryOut::of(e, tiebroken));
            }
        };
        match q {
            ShardQuery::Top { offset, limit } => put(&mut out, r.top(offset, limit, Ties::First)),
            ShardQuery::At { places } => {
                for p in places {
                    put(&mut out, r.top(usize::try_from(p).unwrap_or(usize::MAX), 1, Ties::First));
                }
            }
            ShardQuery::Lookup { members } => {
                let refs: Vec<&str> = members.iter().map(String::as_str).collect();
                put(&mut out, r.lookup(&refs, Ties::First));
            }
            ShardQuery::Own { member, ties } => {
                if let (Some(st), Some(row)) = (r.rank(&member, ties), r.get(&member)) {
                    out.own_reached = row.seq as i64;
                    out.own_prev = prev_of(&member);
                    out.standing = Some(StandingOut {
                        member,
                        rank: st.rank,
                        score: st.score,
                        subscore: tiebroken.then_some(st.sub),
                        total: st.total,
                        percentile: st.percentile,
                        meta: None,
                        prev_rank: None,
                    });
                }
            }
            ShardQuery::Counts { spots, reader, prev, ties } => {
                out.counts = spots.iter().map(|s| r.counts(s, reader.as_deref())).collect();
                out.prev_counts =
                    prev.iter().map(|s| cp.as_ref().map_or(0, |c| c.count_before(s, ties))).collect();
            }
            ShardQuery::Near { spot, reader, before, after } => {
                let (counts, b, a) = r.near(&spot, reader.as_deref(), before, after);
                out.counts = vec![counts];
                out.split = b.len();
                put(&mut out, b);
                put(&mut out, a);
            }
        }
        drop(guard);
        drop(cp);
        self.fill_meta(&mut out.entries)?;
        if let Some(st) = out.standing.as_mut() {
            st.meta = self.metas_of(&[st.member.as_str()])?.remove(&st.member);
        }
        Ok(out)
    }

    /// The top a live hub shows: the best `LIVE_MAX_LIMIT` under the board's ties.
    fn live_top(&self) -> Result<TopOut> {
        self.ensure_loaded()?;
        let period = self.spec.borrow().as_ref().map(|s| s.period.clone()).unwrap_or_default();
        let (total, entries) = self.top_entries(LIVE_MAX_LIMIT)?;
        Ok(TopOut { period, total, entries })
    }

    /// The stored metadata of these members (those that have some), as JSON.
    fn metas_of(&self, members: &[&str]) -> Result<HashMap<String, serde_json::Value>> {
        #[derive(Deserialize)]
        struct M {
            member: String,
            meta: String,
        }
        let mut out = HashMap::new();
        if members.is_empty() {
            return Ok(out);
        }
        for chunk in json_chunks(members)? {
            let rows: Vec<M> = self
                .sql()
                .exec(
                    "SELECT member, meta FROM members WHERE member IN (SELECT value FROM json_each(?)) \
                     AND meta IS NOT NULL",
                    vec![chunk.into()],
                )?
                .to_array()?;
            for m in rows {
                if let Some(v) = meta_json(Some(&m.meta)) {
                    out.insert(m.member, v);
                }
            }
        }
        Ok(out)
    }

    /// Listed entries get their members' metadata from storage.
    fn fill_meta(&self, entries: &mut [EntryOut]) -> Result<()> {
        let names: Vec<&str> = entries.iter().map(|e| e.member.as_str()).collect();
        let mut metas = self.metas_of(&names)?;
        for e in entries.iter_mut() {
            e.meta = metas.remove(&e.member);
        }
        Ok(())
    }

    fn chores(&self) -> Result<Chores> {
        Ok(Chores {
            now: now_ms(),
            dirty: self.dirty.get(),
            watched: self.watched.get(),
            last_publish: self.last_publish.get(),
            oldest_seen: self.dedupe_since.get(),
            pruning: self.prune_cursor.borrow().is_some(),
            expires_at: self.expiry(),
            dedupe_ms: self.dedupe_ms(),
            hooked: self.hook_top.get() > 0,
            hook_dirty: self.hook_dirty.get(),
            last_hook_look: self.last_hook_look.get(),
            period_end: if self.ended.get() { None } else { self.period_end()? },
            checkpoint_storing: self.cp_stored.get().is_some(),
            counts_dirty: self.counts_dirty.get(),
            report_after: self.report_after.get(),
        })
    }

    /// When this period ends (`None` for the all-time window: its seasons
    /// end by a call). With test faults on, `TEST_PERIOD_END_MS` moves a
    /// period's end to that long after its first event (so a test sees
    /// `period_ended` fire from the alarm without waiting for midnight).
    fn period_end(&self) -> Result<Option<i64>> {
        let spec = self.spec.borrow();
        let Some(spec) = spec.as_ref() else { return Ok(None) };
        if spec.window == crate::core::Window::All {
            return Ok(None);
        }
        if let Some(ms) = self.test_var::<i64>("TEST_PERIOD_END_MS") {
            let born = kv::get(&self.sql(), "born")?.and_then(|v| v.parse::<i64>().ok());
            return Ok(born.map(|b| b + ms));
        }
        Ok(Period::parse(spec.window, &spec.period).map(|p| p.end_ms(&spec.tz)))
    }

    /// Which hooks watch this board, from the isolate's cache (a change of
    /// hooks reaches a board within 5 seconds). A failure keeps what was known.
    async fn refresh_hooks(&self) {
        let Some(board) = self.spec.borrow().as_ref().map(|s| s.board.clone()) else { return };
        match super::hooks::all(&self.env).await {
            Ok(hooks) => self.hook_top.set(super::hooks::watching(&hooks, &board).1),
            Err(e) => console_error!("hooks unavailable: {e:?}"),
        }
    }

    /// The top `n` as the API shows it (metadata included), and the total.
    fn top_entries(&self, n: usize) -> Result<(u64, Vec<EntryOut>)> {
        let ties = self.spec.borrow().as_ref().map(|s| s.ties).unwrap_or(Ties::Shared);
        let guard = self.ranking.borrow();
        let r = guard.as_ref().ok_or_else(|| rust_err("ranking not loaded"))?;
        let total = r.visible_len() as u64;
        let mut entries: Vec<EntryOut> = r.top(0, n, ties).into_iter().map(|e| self.entry_out(e)).collect();
        drop(guard);
        self.fill_meta(&mut entries)?;
        Ok((total, entries))
    }

    /// A ranking event of this board period for one hook: the body as sent.
    fn hook_event(
        &self,
        spec: &BoardSpec,
        hook: &str,
        kind: HookEvent,
        fields: serde_json::Value,
    ) -> HookDelivery {
        let id = super::platform::new_id();
        let mut body = serde_json::json!({
            "id": id,
            "type": kind,
            "board": spec.board,
            "window": spec.window,
            "period": spec.period,
            "at": now_ms(),
        });
        if let (Some(b), serde_json::Value::Object(f)) = (body.as_object_mut(), fields) {
            b.extend(f);
        }
        HookDelivery { hook: hook.to_string(), id, kind, board: spec.board.clone(), body: body.to_string() }
    }

    /// The top `n` of the whole board period and its total: this object's,
    /// or on a sharded board every shard's merged (`glue::shards`).
    async fn board_top(&self, spec: &BoardSpec, n: usize) -> Result<(u64, Vec<EntryOut>)> {
        if !spec.is_sharded() {
            return self.top_entries(n);
        }
        let q = BoardQuery::Top { offset: 0, limit: n, ties: spec.ties };
        let out = super::shards::query(&self.env, spec, q).await.map_err(|e| rust_err(format!("{e:?}")))?;
        Ok((out.total, out.entries))
    }

    /// The current ranks of these members (`None`: gone or hidden).
    async fn ranks_of(&self, spec: &BoardSpec, members: &[String]) -> Result<HashMap<String, Option<u64>>> {
        let mut ranks: HashMap<String, Option<u64>> = members.iter().map(|m| (m.clone(), None)).collect();
        if spec.is_sharded() {
            let q = BoardQuery::Lookup { members: members.to_vec(), ties: spec.ties };
            let out =
                super::shards::query(&self.env, spec, q).await.map_err(|e| rust_err(format!("{e:?}")))?;
            for e in out.entries {
                ranks.insert(e.member, Some(e.rank));
            }
            return Ok(ranks);
        }
        let guard = self.ranking.borrow();
        let r = guard.as_ref().ok_or_else(|| rust_err("ranking not loaded"))?;
        for (m, rank) in ranks.iter_mut() {
            if r.contains(m) && !r.is_hidden(m) {
                *rank = r.rank(m, spec.ties).map(|s| s.rank);
            }
        }
        Ok(ranks)
    }

    /// Compares the top with what the hooks saw last and enqueues
    /// `top_changed` and `overtaken` for each hook that listens. On a
    /// sharded board shard 0 does it for the whole board: another shard
    /// that changed only tells shard 0 (`BoardCommand::Changed`).
    async fn look_for_hooks(&self) -> Result<()> {
        self.hook_dirty.set(false);
        self.last_hook_look.set(now_ms());
        let Some(spec) = self.spec.borrow().clone() else { return Ok(()) };
        let hooks = super::hooks::all(&self.env).await.map_err(|e| rust_err(format!("{e:?}")))?;
        let top = super::hooks::watching(&hooks, &spec.board).1;
        self.hook_top.set(top);
        if top == 0 {
            return Ok(());
        }
        if spec.shard != 0 {
            let first = spec.shard(0);
            let board =
                super::boards::BoardClient::of(&self.env, &first).map_err(|e| rust_err(format!("{e:?}")))?;
            board.changed(&first).await.map_err(|e| rust_err(format!("{e:?}")))?;
            return Ok(());
        }
        // Twice the top: a member passed and pushed out of it is still found.
        let (_, listed) = self.board_top(&spec, (2 * top).min(2 * MAX_TOP)).await?;
        let now_order: Vec<String> = listed.into_iter().map(|e| e.member).collect();
        let seen = self.hook_seen.borrow().clone().unwrap_or_default();
        let ranks = self.ranks_of(&spec, &seen).await?;
        // Never looked before: the hooks saw an empty board (a hook added to
        // a board with scores hears its whole top enter once).
        let old = self.hook_seen.replace(Some(now_order.clone())).unwrap_or_default();
        kv::put(&self.sql(), "hook_seen", &serde_json::to_string(&now_order).map_err(rust_err)?)?;
        let mut out = Vec::new();
        for (name, h) in hooks.iter() {
            if h.listens(&spec.board, HookEvent::TopChanged) {
                if let Some(ch) = top_change(&old, &now_order, h.top) {
                    let (_, entries) = self.board_top(&spec, h.top).await?;
                    let f = serde_json::json!({ "entries": entries, "entered": ch.entered, "left": ch.left });
                    out.push(self.hook_event(&spec, name, HookEvent::TopChanged, f));
                }
            }
            if h.listens(&spec.board, HookEvent::Overtaken) {
                let gone = |m: &str| ranks.get(m).is_none_or(Option::is_none);
                for o in overtakes(&old, &now_order, h.top, gone) {
                    let rank = ranks.get(&o.member).copied().flatten();
                    let f = serde_json::json!({ "member": o.member, "by": o.by, "rank": rank });
                    out.push(self.hook_event(&spec, name, HookEvent::Overtaken, f));
                }
            }
        }
        super::hooks::enqueue(&self.env, &out).await
    }

    /// Tells the hooks that listen that this period ended: its final total
    /// and top. Marked told first, so a retried alarm does not tell twice.
    async fn tell_period_ended(&self) -> Result<()> {
        self.ended.set(true);
        kv::put(&self.sql(), "ended", "1")?;
        let Some(spec) = self.spec.borrow().clone() else { return Ok(()) };
        // A sharded period ends once, told by shard 0 with the whole board's top.
        if spec.shard != 0 {
            return Ok(());
        }
        let hooks = super::hooks::all(&self.env).await.map_err(|e| rust_err(format!("{e:?}")))?;
        let mut out = Vec::new();
        // A season is named as reads name it: `s1` for the first (stored as `all`).
        let season = (spec.window == crate::core::Window::All)
            .then(|| crate::core::catalog::archived_name(&spec.period).to_string());
        for (name, h) in hooks.iter().filter(|(_, h)| h.listens(&spec.board, HookEvent::PeriodEnded)) {
            let (total, entries) = self.board_top(&spec, h.top).await?;
            let mut f = serde_json::json!({ "total": total, "entries": entries });
            if let Some(s) = &season {
                f["period"] = serde_json::json!(s);
            }
            out.push(self.hook_event(&spec, name, HookEvent::PeriodEnded, f));
        }
        super::hooks::enqueue(&self.env, &out).await
    }

    /// Tells the catalog this period's counts. The catalog keeps only those
    /// of the board's default window's current period and says so; another
    /// period stays quiet a while. A failure tries again a second later.
    async fn report_counts(&self) {
        self.counts_dirty.set(false);
        let Some(spec) = self.spec.borrow().clone() else { return };
        let Ok(name) = crate::domain::BoardName::parse(spec.board.as_str()) else { return };
        let members = self.ranking.borrow().as_ref().map_or(0, |r| r.visible_len() as u64);
        let counts = crate::core::catalog::Reported {
            window: spec.window,
            period: spec.period,
            shard: spec.shard,
            members,
            events: self.events.get(),
        };
        let op = super::catalog::CatalogOp::Report { name, generation: spec.generation, counts };
        let now = now_ms();
        let wipes = self.wipes.get();
        let heard = super::catalog::report(&self.env, op).await;
        // Kept: the catalog lists them (a period it does not count reports
        // again after it wakes, in case it becomes the counted one). Not if
        // they changed again, or the period was wiped, while it was asked.
        if matches!(heard, Ok(true))
            && !self.counts_dirty.get()
            && !self.reported.get()
            && self.wipes.get() == wipes
        {
            match kv::put(&self.sql(), "reported", "1") {
                Ok(()) => self.reported.set(true),
                Err(e) => console_error!("reported flag not set: {e:?}"),
            }
        }
        // (`REPORT_EVERY_MS` in tests: a longer gap lets a test change a
        // period and crash the worker before the next report.)
        let every = self.test_var("REPORT_EVERY_MS").filter(|ms| *ms > 0).unwrap_or(REPORT_EVERY_MS);
        let wait = match heard {
            Ok(true) => every,
            Ok(false) => REPORT_QUIET_MS,
            Err(e) => {
                console_error!("counts not reported: {e:?}");
                self.counts_dirty.set(true);
                every
            }
        };
        self.report_after.set(now + wait);
    }

    /// Sets the alarm for the earliest chore the core says is due.
    async fn schedule(&self) -> Result<()> {
        self.refresh_hooks().await;
        let Some(want) = self.chores()?.next_alarm() else { return Ok(()) };
        if self.alarm_at.get().is_none() {
            self.alarm_at.set(self.state.storage().get_alarm().await?);
        }
        if self.alarm_at.get().is_none_or(|at| at > want) {
            self.state.storage().set_alarm(super::platform::alarm_at(want)).await?;
            self.alarm_at.set(Some(want));
        }
        Ok(())
    }

    /// One slice of a pruning pass: up to `PRUNE_SLICE` records after the
    /// cursor are read, those older than the horizon deleted. When the pass
    /// reaches the end, the oldest record it kept becomes `dedupe_since`.
    fn prune_slice(&self, before: i64) -> Result<()> {
        const PRUNE_SLICE: usize = 50_000;
        #[derive(Deserialize)]
        struct Rec {
            id: String,
            at: f64,
        }
        let sql = self.sql();
        let cursor = self.prune_cursor.borrow().clone().unwrap_or_default();
        let recs: Vec<Rec> = sql
            .exec(
                "SELECT id, at FROM dedupe WHERE id > ? ORDER BY id LIMIT ?",
                vec![cursor.as_str().into(), (PRUNE_SLICE as f64).into()],
            )?
            .to_array()?;
        let stale: Vec<&str> =
            recs.iter().filter(|r| (r.at as i64) < before).map(|r| r.id.as_str()).collect();
        for chunk in json_chunks(&stale)? {
            sql.exec("DELETE FROM dedupe WHERE id IN (SELECT value FROM json_each(?))", vec![chunk.into()])?;
        }
        // The oldest kept so far in this pass, carried in kv between slices.
        let kept_min = recs.iter().filter(|r| (r.at as i64) >= before).map(|r| r.at as i64).min();
        let pass_min = kv::get(&sql, "prune_min")?.and_then(|v| v.parse::<i64>().ok());
        let pass_min = match (pass_min, kept_min) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if recs.len() < PRUNE_SLICE {
            // The pass is done: the oldest record left is the next horizon.
            sql.exec("DELETE FROM kv WHERE k IN ('prune_cursor', 'prune_min')", None)?;
            match pass_min {
                Some(t) => kv::put(&sql, "dedupe_since", &t.to_string())?,
                None => {
                    sql.exec("DELETE FROM kv WHERE k = 'dedupe_since'", None)?;
                }
            }
            *self.prune_cursor.borrow_mut() = None;
            self.dedupe_since.set(pass_min);
        } else {
            let last = recs.last().map(|r| r.id.clone()).unwrap_or_default();
            kv::put(&sql, "prune_cursor", &last)?;
            if let Some(t) = pass_min {
                kv::put(&sql, "prune_min", &t.to_string())?;
            }
            *self.prune_cursor.borrow_mut() = Some(last);
        }
        Ok(())
    }

    /// How long event ids are remembered: 8 days; `DEDUPE_MS` shortens it
    /// only with test faults on (the contract promises at least 24 hours).
    fn dedupe_ms(&self) -> i64 {
        self.test_var::<i64>("DEDUPE_MS").filter(|ms| *ms > 0).unwrap_or(crate::core::chores::DEDUPE_MS)
    }

    fn expiry(&self) -> Option<i64> {
        let spec = self.spec.borrow();
        let spec = spec.as_ref()?;
        let period = Period::parse(spec.window, &spec.period)?;
        retention(&self.env).expires_at(period, &spec.tz)
    }

    /// Pushes the current top to the live hub; stops watching when it has no viewers.
    async fn publish(&self) -> Result<()> {
        let Some(spec) = self.spec.borrow().clone() else { return Ok(()) };
        let top = self.live_top()?;
        self.dirty.set(false);
        self.last_publish.set(now_ms());
        let v = super::live::LiveClient::root(&self.env, &spec)?
            .publish(top)
            .await
            .map_err(|_| rust_err("live hub did not take the update"))?;
        if v.viewers == 0 {
            self.set_watched(false)?;
        }
        Ok(())
    }

    fn set_watched(&self, on: bool) -> Result<()> {
        if self.watched.get() != on {
            self.watched.set(on);
            kv::put(&self.sql(), "watched", if on { "1" } else { "0" })?;
        }
        Ok(())
    }

    /// Puts this period in its board's index (once) and takes the board's
    /// removals from the answer, before the period's first write.
    async fn register(&self, spec: &BoardSpec) -> Result<()> {
        if self.registered.get() {
            return Ok(());
        }
        let index = super::index::IndexClient::of(&self.env, spec).map_err(super::index::api_to_worker)?;
        let tombs = index.register(spec).await.map_err(super::index::api_to_worker)?;
        for (member, at) in tombs.removed {
            self.tombstone(&member, at)?;
        }
        for member in tombs.hidden {
            self.hide(&member, true)?;
        }
        kv::put(&self.sql(), "registered", "1")?;
        self.registered.set(true);
        Ok(())
    }

    fn tombstone(&self, member: &str, at: i64) -> Result<()> {
        let mut removed = self.removed.borrow_mut();
        if removed.get(member).is_some_and(|t| *t >= at) {
            return Ok(());
        }
        self.sql().exec(
            "INSERT INTO removed (member, at) VALUES (?, ?) ON CONFLICT(member) DO UPDATE SET at = excluded.at",
            vec![member.into(), (at as f64).into()],
        )?;
        removed.insert(member.to_string(), at);
        Ok(())
    }

    /// Whether `spec`'s period is still kept (seasons of the all window,
    /// `s2`, ..., never expire).
    fn is_live(&self, spec: &BoardSpec) -> bool {
        spec.window == crate::core::Window::All
            || Period::parse(spec.window, &spec.period)
                .is_some_and(|p| retention(&self.env).expires_at(p, &spec.tz).is_none_or(|t| now_ms() < t))
    }

    /// Removes `member` from this period; events for it accepted before
    /// `at` will not bring it back. (The caller leaves expired periods alone.)
    fn remove(&self, spec: &BoardSpec, member: &str, at: i64, how: Removal) -> Result<Removed> {
        if how == Removal::Check {
            let here = self.ranking.borrow().as_ref().is_some_and(|r| r.contains(member));
            return Ok(Removed { removed: u64::from(here) });
        }
        if self.spec.borrow().is_none() {
            self.adopt_spec(spec)?;
        }
        self.tombstone(member, at)?;
        let was = self.ranking.borrow_mut().as_mut().is_some_and(|r| r.remove(member));
        if was {
            self.sql().exec("DELETE FROM members WHERE member = ?", vec![member.into()])?;
            self.mark_changed();
        }
        if how == Removal::Erase {
            self.hide(member, false)?;
        }
        Ok(Removed { removed: u64::from(was) })
    }

    /// Hides a member from every read but its own, or shows it again.
    fn hide(&self, member: &str, hidden: bool) -> Result<()> {
        self.ensure_loaded()?;
        let changed = self.ranking.borrow_mut().as_mut().is_some_and(|r| r.set_hidden(member, hidden));
        if !changed {
            return Ok(());
        }
        if hidden {
            self.sql().exec("INSERT OR IGNORE INTO hidden (member) VALUES (?)", vec![member.into()])?;
        } else {
            self.sql().exec("DELETE FROM hidden WHERE member = ?", vec![member.into()])?;
        }
        self.mark_changed();
        Ok(())
    }

    /// A page of the ranking for an export, best first.
    fn export(&self, offset: usize, limit: usize, ties: Ties) -> Result<ExportPage> {
        self.ensure_loaded()?;
        let guard = self.ranking.borrow();
        let r = guard.as_ref().ok_or_else(|| rust_err("ranking not loaded"))?;
        // Every member at its place, the hidden ones flagged.
        let tiebroken = self.tiebroken();
        let mut lines: Vec<ExportLine> = r
            .top_all(offset, limit, ties)
            .into_iter()
            .map(|e| ExportLine {
                rank: e.rank,
                member: e.member.to_string(),
                score: e.score,
                subscore: tiebroken.then_some(e.sub),
                reached: e.reached,
                meta: meta_json(e.meta),
                hidden: r.is_hidden(e.member),
            })
            .collect();
        let total = r.len() as u64;
        drop(guard);
        let names: Vec<&str> = lines.iter().map(|l| l.member.as_str()).collect();
        let mut metas = self.metas_of(&names)?;
        for l in lines.iter_mut() {
            l.meta = metas.remove(&l.member);
        }
        Ok(ExportPage { total, lines })
    }

    /// Whether these members would fit in this period (`full`: they would
    /// take it past `BOARD_MAX_MEMBERS`); changes nothing.
    fn room_for(&self, lines: &[ImportRow]) -> Result<Imported> {
        let guard = self.ranking.borrow();
        let ranking = guard.as_ref().ok_or_else(|| rust_err("ranking not loaded"))?;
        let newcomers = lines.iter().filter(|l| !ranking.contains(&l.member)).count();
        Ok(Imported { imported: 0, full: ranking.len() + newcomers > max_members(&self.env) })
    }

    /// Sets members' scores as given, all or nothing: memory first, then one
    /// transaction; if it fails the caller drops the in-memory ranking.
    fn import(&self, lines: Vec<ImportRow>) -> Result<Imported> {
        if self.room_for(&lines)?.full {
            return Ok(Imported { imported: 0, full: true });
        }
        let mut guard = self.ranking.borrow_mut();
        let ranking = guard.as_mut().ok_or_else(|| rust_err("ranking not loaded"))?;
        let mut rows = Vec::with_capacity(lines.len());
        let mut metas = Vec::with_capacity(lines.len());
        for l in &lines {
            let member = MemberId::parse(l.member.clone()).map_err(rust_err)?;
            if !ranking.set(&member, (l.score, l.sub), l.reached, None) {
                return Err(rust_err("import: the ranking refused a member"));
            }
            if let Some(r) = ranking.get(&l.member) {
                rows.push(row_json(&r));
            }
            // As given: a line without meta leaves the member without any.
            metas.push((l.member.clone(), l.meta.clone().unwrap_or_else(|| "{}".into())));
        }
        drop(guard);
        let mut stmts: Vec<Stmt> = json_chunks(&rows)?
            .into_iter()
            .map(|chunk| Stmt::new(UPSERT_MEMBERS, vec![chunk.into()]))
            .collect();
        stmts.extend(json_chunks(&metas)?.into_iter().map(|chunk| Stmt::new(SET_META, vec![chunk.into()])));
        write_all(&self.state.storage(), stmts, None)?;
        self.mark_changed();
        Ok(Imported { imported: lines.len() as u64, full: false })
    }

    async fn wipe(&self) -> Result<()> {
        self.wipes.set(self.wipes.get() + 1);
        // (nothing left to report: no alarm brings the emptied object back)
        self.counts_dirty.set(false);
        self.reported.set(false);
        self.state.storage().delete_alarm().await?;
        self.state.storage().delete_all().await?;
        *self.ranking.borrow_mut() = None;
        *self.spec.borrow_mut() = None;
        self.cp_stored.set(None);
        self.watched.set(false);
        self.alarm_at.set(None);
        self.events.set(0);
        self.dedupe_since.set(None);
        *self.prune_cursor.borrow_mut() = None;
        self.removed.borrow_mut().clear();
        self.registered.set(false);
        *self.checkpoint.borrow_mut() = None;
        *self.snapshot.borrow_mut() = None;
        Ok(())
    }
}

impl worker::DurableObject for BoardObject {
    fn new(state: State, env: Env) -> Self {
        BoardObject {
            state,
            env,
            ranking: RefCell::new(None),
            spec: RefCell::new(None),
            watched: Cell::new(false),
            dirty: Cell::new(false),
            last_publish: Cell::new(0),
            alarm_at: Cell::new(None),
            events: Cell::new(0),
            dedupe_since: Cell::new(None),
            prune_cursor: RefCell::new(None),
            removed: RefCell::new(HashMap::new()),
            registered: Cell::new(false),
            wipes: Cell::new(0),
            checkpoint: RefCell::new(None),
            snapshot: RefCell::new(None),
            hook_top: Cell::new(0),
            hook_dirty: Cell::new(false),
            last_hook_look: Cell::new(0),
            hook_seen: RefCell::new(None),
            ended: Cell::new(false),
            cp_stored: Cell::new(None),
            counts_dirty: Cell::new(false),
            reported: Cell::new(false),
            report_after: Cell::new(0),
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        if req.method() != Method::Post {
            return Response::error("not found", 404);
        }
        let cmd = req.json::<BoardCommand>().await?;
        // Removals and hides fan out to every period a board ever had: one
        // past its retention is left untouched (no storage brought back).
        let expired = match &cmd {
            BoardCommand::Remove { spec, .. } | BoardCommand::Hide { spec, .. } => !self.is_live(spec),
            _ => false,
        };
        if !expired && !matches!(cmd, BoardCommand::Wipe | BoardCommand::Missing(_)) {
            self.ensure_loaded()?;
            // A large checkpoint's snapshot was this turn's work: anything
            // but an apply (which needs no `prev_rank`) lets the board's
            // queued requests run before it groups the checkpoint, so no
            // turn holds both halves.
            if self.ensure_checkpoint()? && !matches!(cmd, BoardCommand::Apply(_)) {
                worker::Delay::from(std::time::Duration::ZERO).await;
                // (a request run meanwhile may have wiped or unloaded it)
                self.ensure_loaded()?;
            }
        }
        let reply = match cmd {
            BoardCommand::Apply(batch) => {
                self.register(&batch.spec).await?;
                let result = self.apply_in_slices(batch).await?;
                self.schedule().await?;
                serde_json::to_value(result)
            }
            BoardCommand::Query(q) => serde_json::to_value(self.query(q)?),
            BoardCommand::Shard(q) => serde_json::to_value(self.shard_query(q)?),
            BoardCommand::Watch(spec) => {
                self.adopt_spec(&spec)?;
                self.set_watched(true)?;
                serde_json::to_value(self.live_top()?)
            }
            BoardCommand::Respec(spec) => {
                self.adopt_spec(&spec)?;
                self.schedule().await?;
                serde_json::to_value(Ack { ok: true })
            }
            BoardCommand::Wipe => {
                self.wipe().await?;
                serde_json::to_value(Ack { ok: true })
            }
            BoardCommand::Missing(ids) => serde_json::to_value(self.missing(ids)?),
            BoardCommand::Hide { .. } if expired => serde_json::to_value(Ack { ok: true }),
            BoardCommand::Remove { .. } if expired => serde_json::to_value(Removed { removed: 0 }),
            BoardCommand::Hide { spec, member, hidden } => {
                self.register(&spec).await?;
                if self.spec.borrow().is_none() {
                    self.adopt_spec(&spec)?;
                }
                self.hide(&member, hidden)?;
                self.schedule().await?;
                serde_json::to_value(Ack { ok: true })
            }
            BoardCommand::Export { offset, limit, ties } => {
                serde_json::to_value(self.export(offset, limit, ties)?)
            }
            BoardCommand::Import { lines, dry: true, .. } => serde_json::to_value(self.room_for(&lines)?),
            BoardCommand::Import { spec, lines, .. } => {
                self.register(&spec).await?;
                self.adopt_spec(&spec)?;
                let out = self.import(lines).inspect_err(|_| {
                    *self.ranking.borrow_mut() = None;
                })?;
                self.schedule().await?;
                serde_json::to_value(out)
            }
            BoardCommand::Ended(spec) => {
                self.adopt_spec(&spec)?;
                self.tell_period_ended().await?;
                serde_json::to_value(Ack { ok: true })
            }
            BoardCommand::Changed(spec) => {
                // Another shard of this board changed: the hooks look (shard 0).
                self.adopt_spec(&spec)?;
                self.hook_dirty.set(true);
                self.schedule().await?;
                serde_json::to_value(Ack { ok: true })
            }
            BoardCommand::Remove { spec, member, at, how } => {
                let out = self.remove(&spec, &member, at, how)?;
                self.schedule().await?;
                serde_json::to_value(out)
            }
        };
        // A checkpoint taken by a read is stored by the alarm, a slice a turn;
        // counts a wake left to report are told by the alarm too.
        if self.cp_stored.get().is_some() || (self.counts_dirty.get() && self.alarm_at.get().is_none()) {
            self.schedule().await?;
        }
        Response::from_json(&reply.map_err(rust_err)?)
    }

    async fn alarm(&self) -> Result<Response> {
        self.alarm_at.set(None);
        self.ensure_loaded()?;
        let chores = self.chores()?;
        if chores.expired() {
            self.wipe().await?;
            return Response::ok("expired");
        }
        // A large checkpoint takes two turns of its own: the snapshot, in
        // whichever turn first crosses the boundary, and the grouping, in
        // the next alarm (sooner if a read needs a `prev_rank`). The other
        // chores wait for the alarm after, which `checkpoint_storing` sets
        // for now.
        if self.snapshot.borrow().is_some() {
            drop(self.cp());
            self.schedule().await?;
            return Response::ok("checkpoint grouped");
        }
        if chores.publish_due() {
            if self.ensure_checkpoint()? {
                self.schedule().await?;
                return Response::ok("checkpoint taken");
            }
            if let Err(e) = self.publish().await {
                console_error!("publish failed: {e}");
            }
        }
        if chores.prune_due() {
            self.prune_slice(chores.prune_before())?;
        }
        if chores.checkpoint_storing {
            let t = now_ms();
            self.store_checkpoint_slice()?;
            let len = self.cp().as_ref().map(|c| c.len()).unwrap_or(0);
            if len >= 100_000 {
                worker::console_log!("checkpoint of {len} members: a slice stored in {} ms", now_ms() - t);
            }
        }
        // Webhooks only enqueue: a slow receiver never holds the board up.
        if chores.hooks_due() {
            if let Err(e) = self.look_for_hooks().await {
                console_error!("webhooks: {e}");
            }
        }
        if chores.period_ended() {
            if let Err(e) = self.tell_period_ended().await {
                console_error!("webhooks (period end): {e}");
            }
        }
        if chores.report_due() {
            self.report_counts().await;
        }
        self.schedule().await?;
        Response::ok("done")
    }
}
