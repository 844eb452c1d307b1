//! The catalog: board settings and routes, held by one Durable Object
//! (`CatalogObject`, name "catalog") as rows of its SQLite storage, one per
//! board, keyed by name, plus one record of routes (there is one route per
//! event type: few). Nothing reads the whole catalog: a request or a batch
//! looks up the boards it names, and `GET /v1/boards` reads one range of the
//! name index. Each isolate keeps the parts it looked up for at most
//! `CACHE_MS`, so a change reaches every isolate within 5 seconds.
//!
//! Boards report their own counts here (`CatalogOp::Report`, from a board
//! period's alarm, at most about once a second), so a listing asks no board.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};
use worker::{durable_object, Env, Method, Request, Response, Result, SqlStorage, State};

use super::http::{internal, ApiResult};
use super::kv;
use super::objects::call_object;
use super::platform::{now_ms, rust_err};
use super::txn::{write_all, Stmt};
use crate::core::catalog::{
    prefix_range, AutoCreate, BoardPatch, BoardRecord, Catalog, Counters, Delivered, LookupCache, Marker,
    PatchError, Reported, RouteTarget, Routes,
};
use crate::domain::{BoardName, EventType};
use crate::error::ApiError;

/// How long an isolate trusts its copies of catalog parts.
pub const CACHE_MS: i64 = 4_000;

/// How long an ingest's marks can be taken back (its request is over long
/// before: the intake answers or fails within seconds). Until then another
/// request that relies on such a board asks the catalog, which settles it.
const TENTATIVE_MS: i64 = 60_000;

/// A request to the catalog object.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum CatalogOp {
    /// The routes and the records of `names` that exist. → `Done`
    Lookup {
        names: Vec<BoardName>,
    },
    /// Creates the boards that do not exist and marks them all as holding
    /// scores, unless a span of `within` is out of its board's bounds: then
    /// nothing changes (the request fails on the records sent back). One
    /// call both looks up and marks: a board's first event costs one round
    /// trip to this object, not two. → `Done`
    EnsureScored {
        boards: Vec<BoardName>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        within: Vec<Delivered>,
        auto: AutoCreate,
        /// An ingest's token: its marks stay tentative (`core::catalog::
        /// Tentative`) for `TENTATIVE_MS`, so it can take them back.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token: Option<String>,
    },
    /// The ingest `token` was refused after `EnsureScored`: its marks that
    /// nobody relied on are taken back. → `Done`
    UndoMarks {
        boards: Vec<BoardName>,
        token: String,
    },
    PutBoard {
        name: BoardName,
        patch: BoardPatch,
    },
    DeleteBoard {
        name: BoardName,
    },
    PutRoute {
        kind: EventType,
        targets: Vec<RouteTarget>,
    },
    DeleteRoute {
        kind: EventType,
    },
    /// A new season of the board's `all` window, starting at `at`.
    NewSeason {
        name: BoardName,
        at: i64,
    },
    /// Up to `limit` boards whose names start with `prefix`, after `after`,
    /// by name, with their reported counts. → `Listed`
    List {
        prefix: String,
        after: Option<BoardName>,
        limit: usize,
    },
    /// A board period's (or one shard's) counts, from its alarm. → `Reported`
    Report {
        name: BoardName,
        generation: u64,
        counts: Reported,
    },
}

impl CatalogOp {
    /// The boards whose records the op's answer carries, present or not
    /// (an absent one is known not to exist): what the isolate may cache.
    fn names(&self) -> Vec<BoardName> {
        match self {
            CatalogOp::Lookup { names } => names.clone(),
            CatalogOp::EnsureScored { boards, .. } | CatalogOp::UndoMarks { boards, .. } => boards.clone(),
            CatalogOp::PutBoard { name, .. }
            | CatalogOp::DeleteBoard { name }
            | CatalogOp::NewSeason { name, .. } => vec![name.clone()],
            CatalogOp::PutRoute { .. }
            | CatalogOp::DeleteRoute { .. }
            | CatalogOp::List { .. }
            | CatalogOp::Report { .. } => vec![],
        }
    }
}

/// One board of a listing, with the counts it last reported.
#[derive(Debug, Serialize, Deserialize)]
pub struct Listed {
    pub name: BoardName,
    pub record: BoardRecord,
    pub members: u64,
    pub events: u64,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum CatalogReply {
    /// The routes and the op's boards as they are after it. `changed`: the
    /// op created (PUT) or removed (DELETE) something.
    Done {
        catalog: Catalog,
        changed: bool,
        /// `PutBoard`: the board's record before the op (`None`: it was new),
        /// so a PUT needs one call to learn what it changed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        before: Option<BoardRecord>,
    },
    Listed {
        boards: Vec<Listed>,
        /// The cursor of the following page.
        next: Option<BoardName>,
    },
    /// Whether the listing shows this period's counts; a period told `false`
    /// stops reporting for a while.
    Reported {
        counted: bool,
    },
    Conflict {
        message: String,
    },
    Invalid {
        message: String,
    },
    /// An event would create this board, which the deployment does not allow.
    NotAutoCreated {
        board: BoardName,
    },
}

thread_local! {
    static CACHE: RefCell<LookupCache> = RefCell::new(LookupCache::default());
}

/// The routes and the records of `names`, from this isolate's copies when
/// they are fresh enough (≤ `CACHE_MS`).
pub async fn get(env: &Env, names: &[BoardName]) -> ApiResult<Catalog> {
    view(env, names, now_ms() - CACHE_MS + 1).await
}

/// The routes and the records of `names` as they were at `at` or later: the
/// copies fetched at or after `at`, the rest fetched now.
pub async fn as_of(env: &Env, at: i64, names: &[BoardName]) -> ApiResult<Catalog> {
    view(env, names, at).await
}

/// The routes and the records of `names` straight from the object (for
/// when the copies may be behind).
pub async fn fresh(env: &Env, names: &[BoardName]) -> ApiResult<Catalog> {
    view(env, names, i64::MAX).await
}

async fn view(env: &Env, names: &[BoardName], since: i64) -> ApiResult<Catalog> {
    let (routes_old, missing) = CACHE.with(|c| c.borrow().stale(names, since));
    if routes_old || !missing.is_empty() {
        apply(env, CatalogOp::Lookup { names: missing }).await?;
    }
    Ok(CACHE.with(|c| c.borrow().view(names)))
}

/// For an ingest: the records of `names`, every one marked as holding
/// scores (created first if it does not exist, within `auto`), unless a
/// span of `within` is out of its board's bounds; then nothing is marked,
/// and the caller finds the first bad event in the records. Records this
/// isolate holds fresh and marked cost no call; the rest are one call that
/// looks them up and marks them together. The records returned for those
/// are the catalog's answer itself (what it decided by), not the cache,
/// which a concurrent fetch may have moved on.
pub async fn scoring(
    env: &Env,
    names: &[BoardName],
    within: Vec<Delivered>,
    auto: impl FnOnce() -> AutoCreate,
    token: &str,
) -> ApiResult<BTreeMap<BoardName, BoardRecord>> {
    let now = now_ms();
    let (_, stale) = CACHE.with(|c| c.borrow().stale(names, now - CACHE_MS + 1));
    let held = CACHE.with(|c| c.borrow().view(names));
    let stale: HashSet<&BoardName> = stale.iter().collect();
    // A tentative mark held here is not enough: the catalog must hear that
    // this request relies on it too, or its maker could take it back.
    let (unsure, sure): (Vec<BoardName>, Vec<BoardName>) = names.iter().cloned().partition(|n| {
        stale.contains(n) || !held.boards.get(n).is_some_and(|r| r.scored && r.tentative_at(now).is_none())
    });
    let mut boards: BTreeMap<BoardName, BoardRecord> =
        sure.into_iter().filter_map(|n| held.boards.get(&n).cloned().map(|r| (n, r))).collect();
    if !unsure.is_empty() {
        let asked: HashSet<&BoardName> = unsure.iter().collect();
        let (ask, rest): (Vec<Delivered>, Vec<Delivered>) =
            within.into_iter().partition(|d| asked.contains(&d.board));
        // A board held here refuses a value: the request fails, so the rest
        // are only looked up (the caller names the first bad event in order).
        let op = if held.within_bounds(&rest) {
            CatalogOp::EnsureScored { boards: unsure, within: ask, auto: auto(), token: Some(token.into()) }
        } else {
            CatalogOp::Lookup { names: unsure }
        };
        let (reply, _) = apply(env, op).await?;
        boards.extend(reply.boards);
    }
    Ok(boards)
}

/// The ingest `token` was refused after `scoring` marked `boards` (its
/// answer): the marks it made there that nobody relied on are taken back,
/// so the refused request changed nothing. A failure here is logged: the
/// boards then stay marked, as if the request had been accepted empty.
pub async fn undo_marks(env: &Env, boards: &BTreeMap<BoardName, BoardRecord>, token: &str) {
    let ours: Vec<BoardName> = boards
        .iter()
        .filter(|(_, r)| r.tentative.as_ref().is_some_and(|t| t.token == token))
        .map(|(n, _)| n.clone())
        .collect();
    if ours.is_empty() {
        return;
    }
    if let Err(e) = apply(env, CatalogOp::UndoMarks { boards: ours, token: token.into() }).await {
        worker::console_error!("a refused ingest's board marks stay: {e:?}");
    }
}

fn stub(env: &Env) -> ApiResult<worker::Stub> {
    let ns = env.durable_object("CATALOG").map_err(|e| internal("catalog binding", e))?;
    ns.get_by_name("catalog").map_err(|e| internal("catalog stub", e))
}

fn refused(reply: CatalogReply) -> ApiError {
    match reply {
        CatalogReply::Conflict { message } => ApiError::Conflict(message),
        CatalogReply::Invalid { message } => ApiError::InvalidBody { field: None, message },
        CatalogReply::NotAutoCreated { board } => {
            ApiError::NotAutoCreated { index: None, board: board.to_string() }
        }
        CatalogReply::Done { .. } | CatalogReply::Listed { .. } | CatalogReply::Reported { .. } => {
            internal("catalog", "an answer of another kind")
        }
    }
}

/// Applies a change (or a lookup) and refreshes this isolate's copies with
/// the result: the routes and the boards the op named.
pub async fn apply(env: &Env, op: CatalogOp) -> ApiResult<(Catalog, bool)> {
    apply_seeing(env, op).await.map(|(c, changed, _)| (c, changed))
}

/// `PUT /v1/boards/{board}`: the change, and the record it replaced
/// (`None`: the board is new).
pub async fn put_board(
    env: &Env,
    name: BoardName,
    patch: BoardPatch,
) -> ApiResult<(Catalog, bool, Option<BoardRecord>)> {
    apply_seeing(env, CatalogOp::PutBoard { name, patch }).await
}

async fn apply_seeing(env: &Env, op: CatalogOp) -> ApiResult<(Catalog, bool, Option<BoardRecord>)> {
    let names = op.names();
    let at = now_ms();
    match call_object::<_, CatalogReply>(&stub(env)?, "/op", &op).await? {
        CatalogReply::Done { catalog, changed, before } => {
            CACHE.with(|c| c.borrow_mut().remember(at, &catalog, true, &names, now_ms() - CACHE_MS));
            Ok((catalog, changed, before))
        }
        other => Err(refused(other)),
    }
}

/// A page of the listing: up to `limit` boards after `after` whose names
/// start with `prefix`, and the cursor of the next page.
pub async fn list(
    env: &Env,
    prefix: &str,
    after: Option<BoardName>,
    limit: usize,
) -> ApiResult<(Vec<Listed>, Option<BoardName>)> {
    let op = CatalogOp::List { prefix: prefix.to_string(), after, limit };
    match call_object::<_, CatalogReply>(&stub(env)?, "/op", &op).await? {
        CatalogReply::Listed { boards, next } => Ok((boards, next)),
        other => Err(refused(other)),
    }
}

/// A board period's counts; whether the listing shows them.
pub async fn report(env: &Env, op: CatalogOp) -> ApiResult<bool> {
    match call_object::<_, CatalogReply>(&stub(env)?, "/op", &op).await? {
        CatalogReply::Reported { counted } => Ok(counted),
        other => Err(refused(other)),
    }
}

/// The catalog's rows: one per board, its record (JSON) and its last
/// reported counts (JSON, `NULL` before the first). The primary key is the
/// name index that lookups and listings read.
const BOARDS_TABLE: &str =
    "CREATE TABLE IF NOT EXISTS boards (name TEXT PRIMARY KEY, record TEXT NOT NULL, counts TEXT)";
const UPSERT_BOARD: &str = "INSERT INTO boards (name, record) VALUES (?, ?) \
     ON CONFLICT(name) DO UPDATE SET record = excluded.record";
const DELETE_BOARD: &str = "DELETE FROM boards WHERE name = ?";
const PUT_KV: &str = "INSERT INTO kv (k, v) VALUES (?, ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v";
/// Every board name is below this (names are ASCII, `\u{7f}` is not in one).
const PAST_EVERY_NAME: &str = "\u{7f}";

#[derive(Deserialize)]
struct Row {
    name: String,
    record: String,
    counts: Option<String>,
}

impl Row {
    /// The name, the record, and the counts last reported (one per shard).
    fn parse(self) -> Result<(BoardName, BoardRecord, Vec<Reported>)> {
        let name = BoardName::parse(self.name).map_err(|e| rust_err(format!("stored board name: {e}")))?;
        let record = serde_json::from_str(&self.record).map_err(rust_err)?;
        let counts = self.counts.as_deref().and_then(|c| serde_json::from_str(c).ok()).unwrap_or_default();
        Ok((name, record, counts))
    }
}

/// The catalog before it was rows (one `kv` record), read once to move it.
#[derive(Deserialize)]
struct WholeCatalog {
    boards: BTreeMap<BoardName, BoardRecord>,
    routes: Routes,
    next_generation: u64,
}

/// The Durable Object that owns the catalog. One instance; it keeps the
/// routes and counters in memory and reads board rows per op.
#[durable_object]
pub struct CatalogObject {
    state: State,
    meta: RefCell<Option<(Routes, Counters)>>,
}

fn json_text<T: Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(rust_err)
}

impl CatalogObject {
    fn sql(&self) -> SqlStorage {
        self.state.storage().sql()
    }

    /// The routes and counters; on the first use, the tables, and the move
    /// of a catalog kept as one record into rows (one transaction).
    fn meta(&self) -> Result<(Routes, Counters)> {
        if let Some(m) = self.meta.borrow().as_ref() {
            return Ok(m.clone());
        }
        let sql = self.sql();
        kv::open(&sql)?;
        sql.exec(BOARDS_TABLE, None)?;
        if let Some(old) = kv::get(&sql, "catalog")? {
            let old: WholeCatalog = serde_json::from_str(&old).map_err(rust_err)?;
            let counters = Counters {
                next_generation: old.next_generation,
                auto_boards: old.boards.values().filter(|r| r.auto).count() as u64,
            };
            let mut stmts = Vec::new();
            for (name, record) in &old.boards {
                stmts.push(Stmt::new(UPSERT_BOARD, vec![name.as_str().into(), json_text(record)?.into()]));
            }
            stmts.push(Stmt::new(PUT_KV, vec!["routes".into(), json_text(&old.routes)?.into()]));
            stmts.push(Stmt::new(PUT_KV, vec!["counters".into(), json_text(&counters)?.into()]));
            stmts.push(Stmt::new("DELETE FROM kv WHERE k = 'catalog'", vec![]));
            write_all(&self.state.storage(), stmts, None)?;
        }
        let routes: Routes = match kv::get(&sql, "routes")? {
            Some(v) => serde_json::from_str(&v).map_err(rust_err)?,
            None => Routes::default(),
        };
        let counters: Counters = match kv::get(&sql, "counters")? {
            Some(v) => serde_json::from_str(&v).map_err(rust_err)?,
            None => Counters::default(),
        };
        *self.meta.borrow_mut() = Some((routes.clone(), counters));
        Ok((routes, counters))
    }

    /// The routes and the records of `names` that exist.
    fn view(&self, names: &[BoardName]) -> Result<Catalog> {
        let (routes, _) = self.meta()?;
        let mut boards = BTreeMap::new();
        if !names.is_empty() {
            let rows: Vec<Row> = self
                .sql()
                .exec(
                    "SELECT name, record, counts FROM boards WHERE name IN (SELECT value FROM json_each(?))",
                    vec![json_text(&names)?.into()],
                )?
                .to_array()?;
            for row in rows {
                let (name, record, _) = row.parse()?;
                boards.insert(name, record);
            }
        }
        Ok(Catalog { boards, routes })
    }

    /// Writes the records of `upsert` as `c` holds them (a name `c` lacks
    /// is deleted), the routes when `routes` and the counters, in one
    /// transaction; then keeps routes and counters in memory.
    fn commit(&self, c: &Catalog, upsert: &[BoardName], routes: bool, counters: Counters) -> Result<()> {
        let mut stmts = Vec::new();
        for name in upsert {
            stmts.push(match c.boards.get(name) {
                Some(r) => Stmt::new(UPSERT_BOARD, vec![name.as_str().into(), json_text(r)?.into()]),
                None => Stmt::new(DELETE_BOARD, vec![name.as_str().into()]),
            });
        }
        if routes {
            stmts.push(Stmt::new(PUT_KV, vec!["routes".into(), json_text(&c.routes)?.into()]));
        }
        stmts.push(Stmt::new(PUT_KV, vec!["counters".into(), json_text(&counters)?.into()]));
        write_all(&self.state.storage(), stmts, None)?;
        *self.meta.borrow_mut() = Some((c.routes.clone(), counters));
        Ok(())
    }

    fn list(&self, prefix: &str, after: Option<BoardName>, limit: usize) -> Result<CatalogReply> {
        let (from, to) = prefix_range(prefix);
        // One lower bound, the tighter of the prefix's and the cursor's:
        // given both, SQLite's planner starts the range at either, and from
        // the prefix's it scanned every name before the cursor (a page deep
        // in 100,000 boards cost ~7 ms more than the first).
        let (start, op) = match after.map(BoardName::into_string) {
            Some(a) if a >= from => (a, ">"),
            _ => (from, ">="),
        };
        let rows: Vec<Row> = self
            .sql()
            .exec(
                &format!(
                    "SELECT name, record, counts FROM boards WHERE name {op} ? AND name < ? ORDER BY name LIMIT ?"
                ),
                vec![
                    start.into(),
                    to.unwrap_or_else(|| PAST_EVERY_NAME.into()).into(),
                    ((limit + 1) as f64).into(),
                ],
            )?
            .to_array()?;
        let more = rows.len() > limit;
        let now = now_ms();
        let mut boards = Vec::with_capacity(limit.min(rows.len()));
        for row in rows.into_iter().take(limit) {
            let (name, record, counts) = row.parse()?;
            let (members, events) = record.listed_counts(&counts, now);
            boards.push(Listed { name, record, members, events });
        }
        let next = if more { boards.last().map(|b| b.name.clone()) } else { None };
        Ok(CatalogReply::Listed { boards, next })
    }

    fn report(&self, name: &BoardName, generation: u64, counts: Reported) -> Result<CatalogReply> {
        let rows: Vec<Row> = self
            .sql()
            .exec("SELECT name, record, counts FROM boards WHERE name = ?", vec![name.as_str().into()])?
            .to_array()?;
        let Some(row) = rows.into_iter().next() else { return Ok(CatalogReply::Reported { counted: false }) };
        let (_, record, kept) = row.parse()?;
        let Some(kept) = record.take_report(kept, generation, counts, now_ms()) else {
            return Ok(CatalogReply::Reported { counted: false });
        };
        self.sql().exec(
            "UPDATE boards SET counts = ? WHERE name = ?",
            vec![json_text(&kept)?.into(), name.as_str().into()],
        )?;
        Ok(CatalogReply::Reported { counted: true })
    }

    fn run(&self, op: CatalogOp) -> Result<CatalogReply> {
        let (_, mut counters) = self.meta()?;
        let names = op.names();
        let mut c = self.view(&names)?;
        let mut before = None;
        let changed = match op {
            CatalogOp::Lookup { .. } => false,
            CatalogOp::List { prefix, after, limit } => return self.list(&prefix, after, limit),
            CatalogOp::Report { name, generation, counts } => return self.report(&name, generation, counts),
            CatalogOp::EnsureScored { within, .. } if !c.within_bounds(&within) => false,
            CatalogOp::UndoMarks { boards, token } => {
                let written = c.undo_marks(&boards, &token, now_ms(), &mut counters);
                if !written.is_empty() {
                    self.commit(&c, &written, false, counters)?;
                }
                !written.is_empty()
            }
            CatalogOp::EnsureScored { boards, auto, token, .. } => {
                let now = now_ms();
                let by = Marker { token: token.as_deref(), now, until: now + TENTATIVE_MS };
                match c.ensure_scored(boards.iter(), auto, &mut counters, by) {
                    Ok(written) => {
                        if !written.is_empty() {
                            self.commit(&c, &written, false, counters)?;
                        }
                        false
                    }
                    Err(PatchError::NotAutoCreated(board)) => {
                        return Ok(CatalogReply::NotAutoCreated { board })
                    }
                    Err(PatchError::Invalid(message)) => return Ok(CatalogReply::Invalid { message }),
                    Err(PatchError::FixedOnceScored(_)) => false,
                }
            }
            CatalogOp::PutBoard { name, patch } => {
                before = c.boards.get(&name).cloned();
                match c.put_board(&name, patch, &mut counters, now_ms()) {
                    Ok(created) => {
                        self.commit(&c, std::slice::from_ref(&name), false, counters)?;
                        created
                    }
                    Err(PatchError::FixedOnceScored(field)) => {
                        return Ok(CatalogReply::Conflict {
                            message: format!("{field} cannot change: the board already holds scores"),
                        })
                    }
                    Err(PatchError::Invalid(message)) => return Ok(CatalogReply::Invalid { message }),
                    Err(PatchError::NotAutoCreated(board)) => {
                        return Ok(CatalogReply::NotAutoCreated { board })
                    }
                }
            }
            CatalogOp::DeleteBoard { name } => {
                let existed = c.delete_board(&name, &mut counters).is_some();
                if existed {
                    self.commit(&c, std::slice::from_ref(&name), false, counters)?;
                }
                existed
            }
            CatalogOp::PutRoute { kind, targets } => {
                let created = c.routes.insert(kind, targets).is_none();
                self.commit(&c, &[], true, counters)?;
                created
            }
            CatalogOp::DeleteRoute { kind } => {
                let existed = c.routes.remove(&kind).is_some();
                if existed {
                    self.commit(&c, &[], true, counters)?;
                }
                existed
            }
            CatalogOp::NewSeason { name, at } => {
                let started = c.new_season(&name, at).is_some();
                if started {
                    self.commit(&c, std::slice::from_ref(&name), false, counters)?;
                }
                started
            }
        };
        Ok(CatalogReply::Done { catalog: c, changed, before })
    }
}

impl worker::DurableObject for CatalogObject {
    fn new(state: State, _env: Env) -> Self {
        CatalogObject { state, meta: RefCell::new(None) }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        if req.method() != Method::Post || req.path() != "/op" {
            return Response::error("not found", 404);
        }
        let op: CatalogOp = req.json().await?;
        Response::from_json(&self.run(op)?)
    }
}
