//! Dead letters (API 1.1). Messages that exhausted the Queue's retries land
//! in `podium-events-dlq`; this worker consumes it into a store of
//! (event, board period) pairs: for each board period a message feeds, the
//! board is asked which of its events it has not applied, and only those
//! become dead letters (a pack of 1,000 events whose one board failed gives
//! dead letters for that board only). Re-driving sends each letter's event
//! straight to its board period (routes are not resolved again), with its
//! id, so an event that reached the board meanwhile is not counted twice
//! (boards keep dedupe records 8 days; letters are kept 7).
//!
//! The store is one Durable Object: dead letters are the rare path, and the
//! store is read by operators, not by ingest.

use std::cell::Cell;
use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;
use serde_json::{json, Value};
use wasm_bindgen::JsValue;
use worker::{
    console_error, durable_object, Env, MessageBatch, MessageExt, Method, Request, Response, Result, State,
};

use super::boards::BoardClient;
use super::consumer::{catalog_for, confirm_all, decode, group};
use super::http::{internal, json, read_json_body, ApiResult, Query, MAX_SMALL_BODY};
use super::objects::call_object;
use super::platform::{alarm_at, now_ms, retention, rust_err};
use super::txn::{write_all, Stmt};
use crate::domain::erased;
use crate::error::ApiError;
use crate::protocol::{
    meta_json, Ack, ApplyBatch, ApplyEvent, DeadCommand, DeadLetter, DeadPage, QueuedPack, Removed,
};

/// Dead letters are kept this long (API 1.1: 7 days).
pub const KEEP_MS: i64 = 7 * 24 * 3600 * 1000;
const STORE: &str = "dead-letters";
/// At most this many letters per list page and per re-drive.
const MAX_PAGE: usize = 1000;

/// A dead letter's id: unique per (board period, event id), 32 hex digits
/// (two FNV-1a hashes with different seeds; not a secret).
pub fn letter_id(object: &str, event_id: &str) -> String {
    let h = |seed: u64| {
        object
            .bytes()
            .chain([0u8])
            .chain(event_id.bytes())
            .fold(seed, |h, b| (h ^ b as u64).wrapping_mul(0x100000001b3))
    };
    format!("{:016x}{:016x}", h(0xcbf29ce484222325), h(0x84222325cbf29ce4))
}

async fn call<T: serde::de::DeserializeOwned>(env: &Env, cmd: &DeadCommand) -> ApiResult<T> {
    let stub = env
        .durable_object("DEAD")
        .and_then(|ns| ns.get_by_name(STORE))
        .map_err(|e| internal("dead-letter stub", e))?;
    call_object(&stub, "/cmd", cmd).await
}

/// Drops every dead letter of `member`'s events (an erasure).
pub async fn erase(env: &Env, member: &str, at: i64) -> ApiResult<Removed> {
    call(env, &DeadCommand::Erase { member: member.to_string(), at }).await
}

/// Events a full board period refused: dead letters with the reason.
pub async fn store_full(
    env: &Env,
    spec: &crate::protocol::BoardSpec,
    events: Vec<ApplyEvent>,
) -> ApiResult<Ack> {
    let now = now_ms();
    let name = spec.object_name();
    let max = super::board::max_members(env);
    let letters = events
        .into_iter()
        .map(|ev| DeadLetter {
            id: letter_id(&name, &ev.id),
            reason: format!(
                "board \"{}\" ({} {}) is full: it holds {max} members (BOARD_MAX_MEMBERS), and this event's \
                 member is new to it",
                spec.board,
                spec.window.as_str(),
                spec.period
            ),
            event: ev,
            spec: Some(spec.clone()),
            failed_at: now,
        })
        .collect();
    call(env, &DeadCommand::Store(letters)).await
}

/// The dead-letter queue's consumer.
pub async fn consume(batch: MessageBatch<JsValue>, env: Env) -> worker::Result<()> {
    let raw: Vec<_> = batch.raw_iter().collect();
    let now = now_ms();
    let mut letters: Vec<DeadLetter> = Vec::new();
    let mut packs: Vec<Option<QueuedPack>> = Vec::with_capacity(raw.len());
    for m in &raw {
        match decode(m) {
            Ok(p) => packs.push(Some(p)),
            Err(e) => {
                // Kept so an operator sees it; it cannot be re-driven.
                let text = m.body().as_string().unwrap_or_default();
                let excerpt: String = text.chars().take(200).collect();
                letters.push(DeadLetter {
                    id: letter_id("undecodable", &m.id()),
                    event: ApplyEvent {
                        id: m.id(),
                        member: String::new(),
                        value: 0.0,
                        sub: 0.0,
                        ts: now,
                        meta: None,
                        at: 0,
                    },
                    spec: None,
                    reason: format!("the Queue message does not decode ({e}); it begins: {excerpt}"),
                    failed_at: now,
                });
                packs.push(None);
            }
        }
    }
    let cat = match catalog_for(&env, &packs).await {
        Ok(c) => c,
        Err(_) => {
            batch.retry_all();
            return Ok(());
        }
    };
    for (name, g) in group(&packs, &cat, &retention(&env), now) {
        let ids: Vec<String> = g.events.iter().map(|e| e.id.clone()).collect();
        // Only what the board has not applied is dead; if it cannot say, all of it.
        let missing = match BoardClient::of(&env, &g.spec) {
            Ok(b) => b.missing(ids).await.map(|m| m.ids).ok(),
            Err(_) => None,
        };
        for ev in g.events {
            if missing.as_ref().is_some_and(|m| !m.contains(&ev.id)) {
                continue;
            }
            letters.push(DeadLetter {
                id: letter_id(&name, &ev.id),
                reason: format!(
                    "board \"{}\" ({} {}) did not apply it within the Queue's retries",
                    g.spec.board,
                    g.spec.window.as_str(),
                    g.spec.period
                ),
                event: ev,
                spec: Some(g.spec.clone()),
                failed_at: now,
            });
        }
    }
    if !letters.is_empty() && call::<Ack>(&env, &DeadCommand::Store(letters)).await.is_err() {
        console_error!("dead letters not stored; the dead-letter queue retries them");
        batch.retry_all();
        return Ok(());
    }
    let all = vec![true; packs.len()];
    confirm_all(&env, &packs, &all).await;
    batch.ack_all();
    Ok(())
}

/// A dead letter as the API shows it.
fn view(l: &DeadLetter) -> Value {
    let mut event = json!({
        "id": l.event.id,
        "member": l.event.member,
        "value": crate::protocol::number(l.event.value),
        "ts": l.event.ts,
    });
    if l.event.sub != 0.0 {
        event["subscore"] = crate::protocol::number(l.event.sub);
    }
    if let Some(m) = meta_json(l.event.meta.as_deref()) {
        event["meta"] = m;
    }
    let mut v = json!({ "id": l.id, "event": event, "reason": l.reason, "failed_at": l.failed_at });
    if let Some(s) = &l.spec {
        v["board"] = json!(s.board);
        v["window"] = json!(s.window);
        v["period"] = json!(s.period);
    } else {
        v["board"] = Value::Null;
    }
    v
}

/// `GET /v1/dead-letters?limit=&cursor=`
pub async fn list(req: &Request, env: &Env) -> ApiResult {
    let q = Query::of(req)?;
    let limit = q.int("limit", 100, 1, MAX_PAGE)?;
    let cursor = q.text("cursor").map(str::to_string);
    if cursor.as_ref().is_some_and(|c| c.len() != 32 || !c.bytes().all(|b| b.is_ascii_hexdigit())) {
        return Err(ApiError::InvalidParameter {
            field: "cursor".into(),
            message: "is not a cursor this API gave".into(),
        });
    }
    let page: DeadPage = call(env, &DeadCommand::List { limit, cursor }).await?;
    let letters: Vec<Value> = page.letters.iter().map(view).collect();
    json(200, &json!({ "dead_letters": letters, "next": page.next }))
}

/// A redrive of all (`{}`) goes through the letters a page at a time, by
/// id, and stops after this many pages (a million letters): a bound on one
/// request, far past the letters a deployment keeps for its 7 days.
const MAX_REDRIVE_PAGES: usize = 1_000;

/// `POST /v1/dead-letters/redrive` with `{"ids": [...]}` or `{}` (all).
pub async fn redrive(mut req: Request, env: &Env) -> ApiResult {
    let body = read_json_body(&mut req, MAX_SMALL_BODY).await?;
    let redriven = match parse_redrive(&body)? {
        Some(ids) => {
            let page: DeadPage = call(env, &DeadCommand::Get { ids: Some(ids), limit: MAX_PAGE }).await?;
            redrive_letters(env, page.letters).await?
        }
        None => {
            // Every letter, in id order: a letter that stays (its board
            // still fails) is passed by the cursor, not asked again.
            let (mut redriven, mut cursor) = (0, None);
            let limit = redrive_page(env);
            for _ in 0..MAX_REDRIVE_PAGES {
                let page: DeadPage = call(env, &DeadCommand::List { limit, cursor }).await?;
                redriven += redrive_letters(env, page.letters).await?;
                cursor = page.next;
                if cursor.is_none() {
                    break;
                }
            }
            redriven
        }
    };
    json(200, &json!({ "redriven": redriven }))
}

/// `MAX_PAGE`, or with test faults on `REDRIVE_PAGE` (a test redrives a
/// few dozen letters over several pages).
fn redrive_page(env: &Env) -> usize {
    let test = || env.var("REDRIVE_PAGE").ok()?.to_string().parse().ok();
    super::faults::faults_on(env).then(test).flatten().unwrap_or(MAX_PAGE).clamp(1, MAX_PAGE)
}

/// Sends each letter's event back to the board period that failed it, and
/// removes the letters those boards applied. → how many were removed.
async fn redrive_letters(env: &Env, letters: Vec<DeadLetter>) -> ApiResult<u64> {
    let mut by_board: BTreeMap<String, (crate::protocol::BoardSpec, Vec<DeadLetter>)> = BTreeMap::new();
    for l in letters {
        // A message that did not decode has no board period to go back to.
        let Some(spec) = l.spec.clone() else { continue };
        by_board.entry(spec.object_name()).or_insert_with(|| (spec, vec![])).1.push(l);
    }
    let mut redriven = 0u64;
    for (_, (spec, letters)) in by_board {
        let events: Vec<ApplyEvent> = letters.iter().map(|l| l.event.clone()).collect();
        let applied = match BoardClient::of(env, &spec) {
            Ok(b) => b.apply(ApplyBatch { spec: spec.clone(), events }).await.ok(),
            Err(_) => None,
        };
        if let Some(r) = applied {
            // Letters whose events the board refused again (full) stay.
            let still: Vec<&str> = r.rejected.iter().map(|e| e.id.as_str()).collect();
            let ids: Vec<String> = letters
                .iter()
                .filter(|l| !still.contains(&l.event.id.as_str()))
                .map(|l| l.id.clone())
                .collect();
            let r: Removed = call(env, &DeadCommand::Remove(ids)).await?;
            redriven += r.removed;
        }
    }
    Ok(redriven)
}

fn parse_redrive(body: &[u8]) -> ApiResult<Option<Vec<String>>> {
    let bad = |m: &str| ApiError::InvalidBody { field: Some("ids".into()), message: m.into() };
    // An absent body means "all"; whitespace alone is malformed JSON.
    let v: Value = if body.is_empty() {
        json!({})
    } else {
        crate::domain::json::parse(body).map_err(|e| ApiError::InvalidJson {
            index: None,
            line: None,
            message: e.to_string(),
        })?
    };
    let Value::Object(obj) = v else {
        return Err(ApiError::InvalidBody { field: None, message: "body must be a JSON object".into() });
    };
    if let Some(k) = obj.keys().find(|k| *k != "ids") {
        return Err(ApiError::UnknownField { index: None, field: k.clone() });
    }
    let Some(ids) = obj.get("ids") else { return Ok(None) };
    let Value::Array(items) = ids else { return Err(bad("must be an array of dead-letter ids")) };
    if items.len() > MAX_PAGE {
        return Err(bad("must hold at most 1000 ids"));
    }
    items
        .iter()
        .map(|i| {
            i.as_str()
                .filter(|s| s.len() <= 64)
                .map(str::to_string)
                .ok_or_else(|| bad("entries must be dead-letter ids"))
        })
        .collect::<ApiResult<Vec<_>>>()
        .map(Some)
}

/// `DELETE /v1/dead-letters/{id}`
pub async fn delete(env: &Env, id: &str) -> ApiResult {
    let r: Removed = call(env, &DeadCommand::Remove(vec![id.to_string()])).await?;
    if r.removed == 0 {
        return Err(ApiError::DeadLetterNotFound(id.chars().take(64).collect()));
    }
    Response::empty().map(|r| r.with_status(204)).map_err(|e| internal("response", e))
}

#[durable_object]
pub struct DeadLetterObject {
    state: State,
    ready: Cell<bool>,
}

#[derive(Deserialize)]
struct Stored {
    body: String,
}

#[derive(Deserialize)]
struct Oldest {
    at: Option<f64>,
}

impl DeadLetterObject {
    fn open(&self) -> Result<()> {
        if !self.ready.get() {
            let sql = self.state.storage().sql();
            sql.exec(
                "CREATE TABLE IF NOT EXISTS dead (id TEXT PRIMARY KEY, body TEXT NOT NULL, failed_at INTEGER NOT NULL)",
                None,
            )?;
            sql.exec("CREATE INDEX IF NOT EXISTS dead_at ON dead (failed_at)", None)?;
            // Recent erasures, each as of when it started.
            sql.exec(super::erasure::ERASED_TABLE, None)?;
            self.ready.set(true);
        }
        Ok(())
    }

    fn letters(rows: Vec<Stored>) -> Vec<DeadLetter> {
        rows.into_iter().filter_map(|r| serde_json::from_str(&r.body).ok()).collect()
    }

    async fn store(&self, letters: Vec<DeadLetter>) -> Result<Ack> {
        self.open()?;
        let letters = self.not_erased(letters)?;
        let mut stmts = Vec::with_capacity(letters.len());
        for l in &letters {
            stmts.push(Stmt::new(
                "INSERT INTO dead (id, body, failed_at) VALUES (?, ?, ?) ON CONFLICT(id) DO UPDATE SET \
                 body = excluded.body, failed_at = excluded.failed_at",
                vec![
                    l.id.as_str().into(),
                    serde_json::to_string(l).map_err(rust_err)?.into(),
                    (l.failed_at as f64).into(),
                ],
            ));
        }
        write_all(&self.state.storage(), stmts, None)?;
        self.schedule().await?;
        Ok(Ack { ok: true })
    }

    fn list(&self, limit: usize, cursor: Option<String>) -> Result<DeadPage> {
        self.open()?;
        let rows: Vec<Stored> = self
            .state
            .storage()
            .sql()
            .exec(
                "SELECT body FROM dead WHERE id > ? ORDER BY id LIMIT ?",
                vec![cursor.unwrap_or_default().into(), ((limit + 1) as f64).into()],
            )?
            .to_array()?;
        let more = rows.len() > limit;
        let mut letters = Self::letters(rows);
        letters.truncate(limit);
        let next = if more { letters.last().map(|l| l.id.clone()) } else { None };
        Ok(DeadPage { letters, next })
    }

    fn get(&self, ids: Option<Vec<String>>, limit: usize) -> Result<DeadPage> {
        self.open()?;
        let sql = self.state.storage().sql();
        let rows: Vec<Stored> = match ids {
            Some(ids) => sql
                .exec(
                    "SELECT body FROM dead WHERE id IN (SELECT value FROM json_each(?)) LIMIT ?",
                    vec![serde_json::to_string(&ids).map_err(rust_err)?.into(), (limit as f64).into()],
                )?
                .to_array()?,
            None => sql
                .exec("SELECT body FROM dead ORDER BY id LIMIT ?", vec![(limit as f64).into()])?
                .to_array()?,
        };
        Ok(DeadPage { letters: Self::letters(rows), next: None })
    }

    fn remove(&self, ids: Vec<String>) -> Result<Removed> {
        let ids = serde_json::to_string(&ids).map_err(rust_err)?;
        self.delete_where("id IN (SELECT value FROM json_each(?))", ids)
    }

    /// Drops the letters of events accepted before an erasure of their
    /// member (an event whose acceptance time is not known counts as
    /// before): an erasure that is done stays done.
    fn not_erased(&self, letters: Vec<DeadLetter>) -> Result<Vec<DeadLetter>> {
        if letters.is_empty() {
            return Ok(letters);
        }
        #[derive(Deserialize)]
        struct Row {
            digest: String,
            at: f64,
        }
        let digests: Vec<String> = letters.iter().map(|l| erased::digest(&l.event.member)).collect();
        let rows: Vec<Row> = self
            .state
            .storage()
            .sql()
            .exec(
                "SELECT digest, at FROM erased WHERE digest IN (SELECT value FROM json_each(?))",
                vec![serde_json::to_string(&digests).map_err(rust_err)?.into()],
            )?
            .to_array()?;
        if rows.is_empty() {
            return Ok(letters);
        }
        let erased_at: HashMap<String, i64> = rows.into_iter().map(|r| (r.digest, r.at as i64)).collect();
        Ok(letters
            .into_iter()
            .zip(digests)
            .filter(|(l, d)| erased_at.get(d).is_none_or(|&at| l.event.at > at))
            .map(|(l, _)| l)
            .collect())
    }

    fn erase(&self, member: &str, at: i64) -> Result<Removed> {
        self.open()?;
        super::erasure::remember(&self.state.storage().sql(), member, at)?;
        self.delete_where("json_extract(body, '$.event.member') = ?", member.to_string())
    }

    /// Deletes the letters matching `cond` (one `?`, bound to `arg`).
    fn delete_where(&self, cond: &str, arg: String) -> Result<Removed> {
        self.open()?;
        let sql = format!("DELETE FROM dead WHERE {cond} RETURNING id");
        let gone = self.state.storage().sql().exec(&sql, vec![arg.into()])?.to_array::<Value>()?;
        Ok(Removed { removed: gone.len() as u64 })
    }

    /// The alarm fires when the oldest letter is due to go.
    async fn schedule(&self) -> Result<()> {
        let oldest: Vec<Oldest> =
            self.state.storage().sql().exec("SELECT MIN(failed_at) AS at FROM dead", None)?.to_array()?;
        if let Some(at) = oldest.first().and_then(|o| o.at) {
            self.state.storage().set_alarm(alarm_at(at as i64 + KEEP_MS)).await?;
        }
        Ok(())
    }
}

impl worker::DurableObject for DeadLetterObject {
    fn new(state: State, _env: Env) -> Self {
        DeadLetterObject { state, ready: Cell::new(false) }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        if req.method() != Method::Post {
            return Response::error("not found", 404);
        }
        let reply = match req.json::<DeadCommand>().await? {
            DeadCommand::Store(letters) => serde_json::to_value(self.store(letters).await?),
            DeadCommand::List { limit, cursor } => serde_json::to_value(self.list(limit, cursor)?),
            DeadCommand::Get { ids, limit } => serde_json::to_value(self.get(ids, limit)?),
            DeadCommand::Remove(ids) => serde_json::to_value(self.remove(ids)?),
            DeadCommand::Erase { member, at } => serde_json::to_value(self.erase(&member, at)?),
        };
        Response::from_json(&reply.map_err(rust_err)?)
    }

    async fn alarm(&self) -> Result<Response> {
        self.open()?;
        self.state
            .storage()
            .sql()
            .exec("DELETE FROM dead WHERE failed_at <= ?", vec![((now_ms() - KEEP_MS) as f64).into()])?;
        self.schedule().await?;
        Response::ok("pruned")
    }
}
