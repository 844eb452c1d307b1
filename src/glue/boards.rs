//! Board endpoints: settings (admin) and rankings (public reads).

use serde::Serialize;
use serde_json::{json, Value};
use worker::{Env, Request, Response, Stub};

use super::catalog::{self, CatalogOp};
use super::http::{internal, json, read_json_body, ApiResult, Query, MAX_SMALL_BODY};
use super::live::LiveClient;
use super::objects::call_object;
use super::platform::{now_ms, retention};
use crate::core::catalog::{archived_name, parse_season, season_key, BoardRecord, Catalog};
use crate::core::period::Period;
use crate::core::{Ties, Window};
use crate::domain::event::MAX_FUTURE_MS;
use crate::domain::settings::parse_board_patch;
use crate::domain::{BoardName, MemberId};
use crate::error::ApiError;
use crate::protocol::{
    Ack, ApplyBatch, ApplyResult, BoardCommand, BoardQuery, BoardSpec, ExportPage, ImportRow, Imported,
    Missing, QueryOut, Removal, Removed, ShardOut, ShardQuery, TopOut, LIVE_MAX_LIMIT,
};

/// The board a path names; a name that breaks the naming rules is a 400
/// (it could never exist), which repeats none of it.
pub fn board_name(raw: &str) -> ApiResult<BoardName> {
    BoardName::parse(raw)
        .map_err(|e| ApiError::InvalidParameter { field: "board".into(), message: e.to_string() })
}

fn record<'c>(cat: &'c Catalog, name: &BoardName) -> ApiResult<&'c BoardRecord> {
    cat.boards.get(name).ok_or_else(|| ApiError::BoardNotFound(name.to_string()))
}

pub fn spec(name: &BoardName, r: &BoardRecord, window: Window, period: &str) -> BoardSpec {
    BoardSpec {
        board: name.to_string(),
        generation: r.generation,
        window,
        period: period.to_string(),
        order: r.settings.order,
        op: r.settings.op,
        ties: r.settings.ties,
        tz: r.settings.tz.clone(),
        tiebreak: r.settings.tiebreak,
        shards: r.settings.shards,
        shard: 0,
    }
}

/// The one caller of a board object: each method sends one `BoardCommand`
/// and reads its one reply type, so call sites spell neither.
pub struct BoardClient(Stub);

impl BoardClient {
    pub fn of(env: &Env, spec: &BoardSpec) -> ApiResult<BoardClient> {
        env.durable_object("BOARD")
            .and_then(|ns| ns.get_by_name(&spec.object_name()))
            .map(BoardClient)
            .map_err(|e| internal("board stub", e))
    }

    pub async fn apply(&self, b: ApplyBatch) -> ApiResult<ApplyResult> {
        call_object(&self.0, "/cmd", &BoardCommand::Apply(b)).await
    }

    pub async fn query(&self, q: BoardQuery) -> ApiResult<QueryOut> {
        call_object(&self.0, "/cmd", &BoardCommand::Query(q)).await
    }

    /// One shard's part of a sharded read (see `glue::shards`).
    pub async fn shard(&self, q: ShardQuery) -> ApiResult<ShardOut> {
        call_object(&self.0, "/cmd", &BoardCommand::Shard(q)).await
    }

    pub async fn watch(&self, s: &BoardSpec) -> ApiResult<TopOut> {
        call_object(&self.0, "/cmd", &BoardCommand::Watch(s.clone())).await
    }

    pub async fn respec(&self, s: &BoardSpec) -> ApiResult<Ack> {
        call_object(&self.0, "/cmd", &BoardCommand::Respec(s.clone())).await
    }

    /// The period ended early (a season archived): its hooks hear `period_ended`.
    pub async fn ended(&self, s: &BoardSpec) -> ApiResult<Ack> {
        call_object(&self.0, "/cmd", &BoardCommand::Ended(s.clone())).await
    }

    /// Another shard of this sharded period changed (see `BoardCommand::Changed`).
    pub async fn changed(&self, s: &BoardSpec) -> ApiResult<Ack> {
        call_object(&self.0, "/cmd", &BoardCommand::Changed(s.clone())).await
    }

    pub async fn wipe(&self) -> ApiResult<Ack> {
        call_object(&self.0, "/cmd", &BoardCommand::Wipe).await
    }

    pub async fn missing(&self, ids: Vec<String>) -> ApiResult<Missing> {
        call_object(&self.0, "/cmd", &BoardCommand::Missing(ids)).await
    }

    pub async fn export(&self, offset: usize, limit: usize, ties: Ties) -> ApiResult<ExportPage> {
        call_object(&self.0, "/cmd", &BoardCommand::Export { offset, limit, ties }).await
    }

    pub async fn import(&self, spec: &BoardSpec, lines: Vec<ImportRow>, dry: bool) -> ApiResult<Imported> {
        call_object(&self.0, "/cmd", &BoardCommand::Import { spec: spec.clone(), lines, dry }).await
    }

    pub async fn hide(&self, spec: &BoardSpec, member: &str, hidden: bool) -> ApiResult<Ack> {
        let cmd = BoardCommand::Hide { spec: spec.clone(), member: member.to_string(), hidden };
        call_object(&self.0, "/cmd", &cmd).await
    }

    pub async fn remove(&self, spec: &BoardSpec, member: &str, at: i64, how: Removal) -> ApiResult<Removed> {
        let cmd = BoardCommand::Remove { spec: spec.clone(), member: member.to_string(), at, how };
        call_object(&self.0, "/cmd", &cmd).await
    }
}

/// The window and period a read names (`window=`, `period=`), checked
/// against the board's settings and the retention.
fn pick_period(env: &Env, r: &BoardRecord, q: &Query) -> ApiResult<(Window, String)> {
    let window = match q.text("window") {
        None => r.settings.default_window(),
        Some(w) => Window::parse(w).filter(|w| r.settings.windows.contains(w)).ok_or_else(|| {
            let kept: Vec<&str> = r.settings.windows.iter().map(|w| w.as_str()).collect();
            ApiError::InvalidParameter {
                field: "window".into(),
                message: format!("must be one of: {}", kept.join(", ")),
            }
        })?,
    };
    let now = now_ms();
    let Some(raw) = q.text("period") else { return Ok((window, r.current_key(window, now))) };
    if window == Window::All {
        // `all` is the current season; `sN` a season up to the current one.
        if raw == "all" {
            return Ok((window, r.current_key(window, now)));
        }
        return match parse_season(raw) {
            Some(n) if n <= r.current_season() => Ok((window, season_key(n))),
            Some(_) => Err(ApiError::PeriodNotFound(raw.to_string())),
            None => Err(ApiError::InvalidParameter {
                field: "period".into(),
                message: "must be \"all\" or a season (s1, s2, ...) in the all window".into(),
            }),
        };
    }
    let p = Period::parse(window, raw).ok_or_else(|| ApiError::InvalidParameter {
        field: "period".into(),
        message: format!(
            "is not a {} period (e.g. {})",
            window.as_str(),
            Period::of(window, now, &r.settings.tz).key()
        ),
    })?;
    if !retention(env).is_live(p, &r.settings.tz, now, MAX_FUTURE_MS) {
        return Err(ApiError::PeriodNotFound(raw.to_string()));
    }
    Ok((window, p.key()))
}

pub(super) struct Target {
    pub name: BoardName,
    pub record: BoardRecord,
    pub spec: BoardSpec,
}

pub(super) async fn target(env: &Env, raw_board: &str, q: &Query) -> ApiResult<Target> {
    let name = board_name(raw_board)?;
    let cat = catalog::get(env, std::slice::from_ref(&name)).await?;
    let record = record(&cat, &name)?.clone();
    let (window, key) = pick_period(env, &record, q)?;
    let spec = spec(&name, &record, window, &key);
    Ok(Target { name, record, spec })
}

async fn ask(env: &Env, t: &Target, query: BoardQuery) -> ApiResult<QueryOut> {
    if !t.record.scored && !scored_now(env, &t.name).await? {
        return Ok(nothing(&query));
    }
    super::shards::query(env, &t.spec, query).await
}

/// Whether any event or import has reached the board, asked of the catalog
/// itself. Both mark the board scored before anything is enqueued or
/// written, so "no" means every period of it is empty; the isolate's copy
/// of the record may be up to 4 s old, so a "no" from it is checked here
/// (one call to the warm catalog object). A read of a board that holds
/// nothing then wakes none of its objects: locally a cold object costs
/// ~10 ms to start, and on the platform an empty one would be created.
async fn scored_now(env: &Env, name: &BoardName) -> ApiResult<bool> {
    let cat = catalog::fresh(env, std::slice::from_ref(name)).await?;
    Ok(cat.boards.get(name).is_some_and(|r| r.scored))
}

/// What a board period that holds nothing answers `query` (as its object
/// would: listings are empty, a member is not found).
fn nothing(query: &BoardQuery) -> QueryOut {
    let found = match query {
        BoardQuery::Top { .. } | BoardQuery::Lookup { .. } => true,
        BoardQuery::Rank { .. } | BoardQuery::Around { .. } => false,
    };
    QueryOut { total: 0, events: 0, found, entries: vec![], standing: None }
}

pub(super) fn ties(t: &Target) -> Ties {
    t.record.settings.ties
}

#[derive(Serialize)]
struct Listing<'a> {
    board: &'a str,
    window: Window,
    period: &'a str,
    total: u64,
    entries: Vec<crate::protocol::EntryOut>,
}

/// The period a read names, as answers show it: the first season's key is
/// `all` (as before seasons existed), shown as `s1` once it is past.
pub(super) fn shown_period(t: &Target) -> &str {
    match t.spec.window == Window::All && t.record.current_season() > 1 {
        true => archived_name(&t.spec.period),
        false => &t.spec.period,
    }
}

fn listing(t: &Target, out: QueryOut) -> ApiResult {
    json(
        200,
        &Listing {
            board: t.name.as_str(),
            window: t.spec.window,
            period: shown_period(t),
            total: out.total,
            entries: out.entries,
        },
    )
}

pub async fn top(req: &Request, env: &Env, board: &str) -> ApiResult {
    let q = Query::of(req)?;
    let limit = q.int("limit", 10, 1, 1000)?;
    let offset = q.offset()?;
    let t = target(env, board, &q).await?;
    let out = ask(env, &t, BoardQuery::Top { offset, limit, ties: ties(&t) }).await?;
    listing(&t, out)
}

fn member_name(raw: &str) -> ApiResult<MemberId> {
    MemberId::parse(raw)
        .map_err(|e| ApiError::InvalidParameter { field: "member".into(), message: e.to_string() })
}

pub async fn member(req: &Request, env: &Env, board: &str, member: &str) -> ApiResult {
    let q = Query::of(req)?;
    let m = member_name(member)?;
    let t = target(env, board, &q).await?;
    let out = ask(env, &t, BoardQuery::Rank { member: m.to_string(), ties: ties(&t) }).await?;
    match out.standing {
        Some(s) if out.found => json(200, &s),
        _ => Err(ApiError::MemberNotFound(m.to_string())),
    }
}

/// `DELETE /v1/boards/{board}/members/{member}` (API 1.1): the member
/// leaves every window, period and season of the board. The board's index
/// records the removal first (periods created later learn it when they
/// register), then names every period object, and each drops the member and
/// keeps the removal time, so events accepted before the call and delivered
/// after it never bring the score back. → `{"removed": n}`, n the periods it
/// was on; 404 when it is on none, and then nothing is recorded (a refused
/// request changes nothing: events for it still on their way count).
pub async fn remove_member(env: &Env, board: &str, member: &str) -> ApiResult {
    let name = board_name(board)?;
    let m = member_name(member)?;
    let cat = catalog::get(env, std::slice::from_ref(&name)).await?;
    let r = record(&cat, &name)?;
    let at = now_ms();
    if remove_from(env, &name, r, m.as_str(), at, Removal::Check).await? == 0 {
        return Err(ApiError::MemberNotFound(m.to_string()));
    }
    let removed = remove_from(env, &name, r, m.as_str(), at, Removal::Remove).await?;
    json(200, &json!({ "removed": removed }))
}

/// The index object of board `name` (`r`'s generation).
fn index_of(env: &Env, name: &BoardName, r: &BoardRecord) -> ApiResult<super::index::IndexClient> {
    super::index::IndexClient::of(env, &spec(name, r, r.settings.default_window(), ""))
}

/// Calls `each` on every period object the index named, a few at a time (a
/// board keeps up to hundreds of past periods), and returns their answers.
async fn each_period<'a, T, F>(
    periods: &'a [BoardSpec],
    each: impl Fn(&'a BoardSpec) -> F,
) -> ApiResult<Vec<T>>
where
    F: std::future::Future<Output = ApiResult<T>>,
{
    let mut out = Vec::with_capacity(periods.len());
    for chunk in periods.chunks(16) {
        for r in futures_util::future::join_all(chunk.iter().map(&each)).await {
            out.push(r?);
        }
    }
    Ok(out)
}

/// Removes `member` from every period of board `name` (`r`), as of `at`
/// (or, for `Removal::Check`, only looks): how many periods it was on.
pub async fn remove_from(
    env: &Env,
    name: &BoardName,
    r: &BoardRecord,
    member: &str,
    at: i64,
    how: Removal,
) -> ApiResult<u64> {
    let periods = index_of(env, name, r)?.remove(member, at, how).await?.periods;
    let outs =
        each_period(&periods, |s| async move { BoardClient::of(env, s)?.remove(s, member, at, how).await })
            .await?;
    Ok(outs.iter().map(|o| o.removed).sum())
}

/// `PUT|DELETE /v1/boards/{board}/members/{member}/hidden` (API 1.1):
/// hides a member from everyone but itself on every window, period and
/// season of the board, or shows it again. Recorded in the board's index
/// (periods created later take it when they register), then sent to every
/// period. A member not on the board may be hidden: it applies when it comes.
pub async fn hide_member(env: &Env, board: &str, member: &str, hidden: bool) -> ApiResult {
    let name = board_name(board)?;
    let m = member_name(member)?;
    let cat = catalog::get(env, std::slice::from_ref(&name)).await?;
    let r = record(&cat, &name)?;
    let periods = index_of(env, &name, r)?.hide(m.as_str(), hidden).await?.periods;
    let m = m.as_str();
    each_period(&periods, |s| async move { BoardClient::of(env, s)?.hide(s, m, hidden).await }).await?;
    json(200, &json!({ "member": m, "hidden": hidden }))
}

/// `GET /v1/boards/{board}/hidden` (API 1.1, admin): the hidden members, by id.
pub async fn hidden_list(env: &Env, board: &str) -> ApiResult {
    let name = board_name(board)?;
    let cat = catalog::get(env, std::slice::from_ref(&name)).await?;
    let r = record(&cat, &name)?;
    let list = index_of(env, &name, r)?.hidden().await?;
    json(200, &json!({ "board": name.as_str(), "hidden": list.hidden }))
}

pub async fn around(req: &Request, env: &Env, board: &str, member: &str) -> ApiResult {
    let q = Query::of(req)?;
    let radius = q.int("radius", 5, 1, 100)?;
    let m = member_name(member)?;
    let t = target(env, board, &q).await?;
    let out = ask(env, &t, BoardQuery::Around { member: m.to_string(), radius, ties: ties(&t) }).await?;
    if !out.found {
        return Err(ApiError::MemberNotFound(m.to_string()));
    }
    listing(&t, out)
}

pub async fn lookup(mut req: Request, env: &Env, board: &str) -> ApiResult {
    let q = Query::of(&req)?;
    let t = target(env, board, &q).await?;
    let body = read_json_body(&mut req, MAX_SMALL_BODY).await?;
    let members = parse_lookup(&body)?;
    let out = ask(env, &t, BoardQuery::Lookup { members, ties: ties(&t) }).await?;
    listing(&t, out)
}

const MAX_LOOKUP: usize = 100;

fn parse_lookup(body: &[u8]) -> ApiResult<Vec<String>> {
    let bad = |m: &str| ApiError::InvalidBody { field: Some("members".into()), message: m.into() };
    let v: Value = crate::domain::json::parse(body).map_err(|e| ApiError::InvalidJson {
        index: None,
        line: None,
        message: e.to_string(),
    })?;
    let Value::Object(obj) = v else {
        return Err(ApiError::InvalidBody { field: None, message: "body must be a JSON object".into() });
    };
    if let Some(k) = obj.keys().find(|k| *k != "members") {
        return Err(ApiError::UnknownField { index: None, field: k.clone() });
    }
    let Some(Value::Array(items)) = obj.get("members") else {
        return Err(bad("is required and must be an array"));
    };
    if items.len() > MAX_LOOKUP {
        return Err(bad("must hold at most 100 members"));
    }
    items
        .iter()
        .map(|m| {
            m.as_str()
                .and_then(|s| MemberId::parse(s).ok())
                .map(MemberId::into_string)
                .ok_or_else(|| bad("entries must be member ids (1-128 bytes, no control characters)"))
        })
        .collect()
}

pub async fn live(req: Request, env: &Env, board: &str) -> ApiResult {
    let q = Query::of(&req)?;
    let limit = q.int("limit", 10, 1, LIVE_MAX_LIMIT)?;
    let t = target(env, board, &q).await?;
    if q.text("period").is_some() {
        return Err(ApiError::InvalidParameter {
            field: "period".into(),
            message: "is not supported: live follows the current period".into(),
        });
    }
    let upgrade = req.headers().get("Upgrade").ok().flatten().unwrap_or_default();
    if !upgrade.eq_ignore_ascii_case("websocket") {
        return Err(ApiError::NotWebSocket);
    }
    let hub = LiveClient::root(env, &t.spec).map_err(|e| internal("live stub", e))?;
    hub.connect(&t.spec, limit, None).await.map_err(|e| internal("live connect", e))
}

/// The public view of a board.
fn board_view(name: &BoardName, r: &BoardRecord, counts: Counts) -> Value {
    let mut v = json!({
        "name": name,
        "title": r.settings.title,
        "order": r.settings.order,
        "op": r.settings.op,
        "windows": r.settings.windows,
        "ties": r.settings.ties,
        "tz": r.settings.tz,
        "tiebreak": r.settings.tiebreak,
        "shards": r.settings.shards,
    });
    if let Some(m) = r.settings.min {
        v["min"] = crate::protocol::number(m);
    }
    if let Some(m) = r.settings.max {
        v["max"] = crate::protocol::number(m);
    }
    v["members"] = json!(counts.members);
    v["events"] = json!(counts.events);
    v["season"] = json!(r.current_season());
    v
}

/// How many members, and how many events applied, in the board's default
/// window's current period.
#[derive(Clone, Copy, Default)]
struct Counts {
    members: u64,
    events: u64,
}

async fn counts(env: &Env, name: &BoardName, r: &BoardRecord) -> ApiResult<Counts> {
    let w = r.settings.default_window();
    let s = spec(name, r, w, &r.current_key(w, now_ms()));
    let out =
        super::shards::query(env, &s, BoardQuery::Top { offset: 0, limit: 0, ties: Ties::Shared }).await?;
    Ok(Counts { members: out.total, events: out.events })
}

fn periods(r: &BoardRecord) -> Value {
    let now = now_ms();
    let mut m = serde_json::Map::new();
    for w in r.settings.windows.iter().filter(|w| **w != Window::All) {
        m.insert(w.as_str().into(), json!(Period::of(*w, now, &r.settings.tz).key()));
    }
    Value::Object(m)
}

/// `GET /v1/boards?limit=&cursor=&prefix=` (API 1.1): boards by name, a
/// page at a time. `cursor` is the `next` of the page before (the last name
/// it listed); `prefix` keeps the names that start with it. Its cost is the
/// page's, whatever the number of boards.
pub async fn list(req: &Request, env: &Env) -> ApiResult {
    let q = Query::of(req)?;
    let limit = q.int("limit", 100, 1, 1000)?;
    let prefix = q.text("prefix").unwrap_or_default();
    if prefix.len() > 64 {
        return Err(ApiError::InvalidParameter {
            field: "prefix".into(),
            message: "must be at most 64 bytes".into(),
        });
    }
    let after = q
        .text("cursor")
        .map(|c| {
            BoardName::parse(c).map_err(|_| ApiError::InvalidParameter {
                field: "cursor".into(),
                message: "is not a cursor this API gave (the `next` of a page)".into(),
            })
        })
        .transpose()?;
    // One range of the catalog's name index, with the counts each board
    // reported itself (they may lag a second or so): no board is asked.
    let (page, next) = catalog::list(env, prefix, after, limit).await?;
    let boards: Vec<Value> = page
        .iter()
        .map(|b| board_view(&b.name, &b.record, Counts { members: b.members, events: b.events }))
        .collect();
    json(200, &json!({ "boards": boards, "next": next }))
}

pub async fn get(env: &Env, board: &str) -> ApiResult {
    let name = board_name(board)?;
    let cat = catalog::get(env, std::slice::from_ref(&name)).await?;
    let r = record(&cat, &name)?;
    let mut v = board_view(&name, r, counts(env, &name, r).await?);
    v["periods"] = periods(r);
    json(200, &v)
}

pub async fn put(mut req: Request, env: &Env, board: &str) -> ApiResult {
    let name = BoardName::parse(board)
        .map_err(|e| ApiError::InvalidParameter { field: "board".into(), message: e.to_string() })?;
    let body = read_json_body(&mut req, MAX_SMALL_BODY).await?;
    let patch = parse_board_patch(&body)?;
    let (cat, created, before) = catalog::put_board(env, name.clone(), patch).await?;
    let r = record(&cat, &name)?;
    // A window no longer kept loses its scores, as a deleted board does, so
    // adding it back later starts it empty rather than with a gap.
    if let Some(old) = before.filter(|old| old.generation == r.generation) {
        let dropped: Vec<Window> =
            old.settings.windows.iter().copied().filter(|w| !r.settings.windows.contains(w)).collect();
        wipe_current(env, &name, &old, &dropped).await?;
        // New tie rules change the ranks live viewers see: the current
        // periods take them now and push them (spaced as any change).
        if old.settings.ties != r.settings.ties {
            let now = now_ms();
            for w in r.settings.windows.iter().filter(|w| old.settings.windows.contains(w)) {
                for s in spec(&name, r, *w, &r.current_key(*w, now)).every_shard() {
                    BoardClient::of(env, &s)?.respec(&s).await?;
                }
            }
        }
    }
    // a new board (a new generation, too) holds no one yet: no need to ask it
    let c = if created { Counts::default() } else { counts(env, &name, r).await? };
    let mut v = board_view(&name, r, c);
    v["periods"] = periods(r);
    json(if created { 201 } else { 200 }, &v)
}

/// Empties the current period of each of `windows` of board `name` (as
/// `r` describes it) and closes its live sockets; older periods expire with
/// their retention.
async fn wipe_current(env: &Env, name: &BoardName, r: &BoardRecord, windows: &[Window]) -> ApiResult<()> {
    let now = now_ms();
    for w in windows {
        let s = spec(name, r, *w, &r.current_key(*w, now));
        for shard in s.every_shard() {
            BoardClient::of(env, &shard)?.wipe().await?;
        }
        LiveClient::root(env, &s).map_err(|e| internal("live stub", e))?.wipe().await?;
    }
    Ok(())
}

pub async fn delete(env: &Env, board: &str) -> ApiResult {
    let name = board_name(board)?;
    let before = catalog::fresh(env, std::slice::from_ref(&name)).await?;
    let r = record(&before, &name)?.clone();
    catalog::apply(env, CatalogOp::DeleteBoard { name: name.clone() }).await?;
    // Scores of the deleted generation are unreachable now; wipe them anyway.
    wipe_current(env, &name, &r, &r.settings.windows).await?;
    Ok(Response::empty().map_err(|e| internal("response", e))?.with_status(204))
}
