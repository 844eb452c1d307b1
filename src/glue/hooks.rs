//! Webhooks (API 1.1 "Outbound notifications"): the hooks and their
//! delivery log in one `HookObject` (name "hooks"), cached per isolate like
//! the catalog; `/v1/hooks` handlers; the delivery consumer of the hooks
//! Queue, which signs and POSTs each ranking event and retries with backoff;
//! and the consumer of its dead-letter queue.
//!
//! Board period objects make the events (`board.rs`) and only enqueue them:
//! a slow or failing receiver never slows ingest or ranking.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use futures_util::future::{select, Either};
use serde::Deserialize;
use wasm_bindgen::JsValue;
use worker::{
    console_error, durable_object, AbortController, Delay, Env, Fetch, Headers, MessageBatch, MessageExt,
    Method, QueueRetryOptionsBuilder, RawMessage, Request, RequestInit, Response, Result, SqlStorageValue,
    State,
};

use super::http::{internal, json, read_json_body, ApiResult, MAX_SMALL_BODY};
use super::kv;
use super::objects::call_object;
use super::platform::{now_ms, rust_err};
use crate::core::hooks::{retry_delay_s, signature, Hook, HookEvent};
use crate::domain::erased;
use crate::domain::hook::parse_hook;
use crate::domain::BoardName;
use crate::error::ApiError;
use crate::protocol::{
    Ack, Attempts, DeliveryList, DeliveryOut, HookCommand, HookDelivery, HookList, HookPut, Removed,
};

/// How long an isolate trusts its copy of the hooks (as the catalog: a
/// change reaches every board within 5 seconds).
const CACHE_MS: i64 = 4_000;
/// A receiver that has not answered in this long has failed this attempt.
const TIMEOUT_MS: u64 = 10_000;
/// Deliveries kept per hook in the log (the oldest go first).
const LOG_KEEP: usize = 1000;
/// The hooks Queue's dead-letter queue (wrangler.toml).
pub const HOOKS_DLQ: &str = "podium-hooks-dlq";
/// The hooks Queue (wrangler.toml).
pub const HOOKS_QUEUE: &str = "podium-hooks";

/// The isolate's copy of the hooks and when it was fetched.
type Cached = Option<(i64, Rc<Vec<(String, Hook)>>)>;

thread_local! {
    static CACHE: RefCell<Cached> = const { RefCell::new(None) };
}

fn stub(env: &Env) -> ApiResult<worker::Stub> {
    env.durable_object("HOOKS").and_then(|ns| ns.get_by_name("hooks")).map_err(|e| internal("hooks stub", e))
}

async fn call<T: serde::de::DeserializeOwned>(env: &Env, cmd: &HookCommand) -> ApiResult<T> {
    call_object(&stub(env)?, "/cmd", cmd).await
}

/// Every hook (secrets included: for signing), from this isolate's cache
/// when it is fresh enough.
pub async fn all(env: &Env) -> ApiResult<Rc<Vec<(String, Hook)>>> {
    if let Some((at, hooks)) = CACHE.with(|c| c.borrow().clone()) {
        if now_ms() - at < CACHE_MS {
            return Ok(hooks);
        }
    }
    fresh(env).await
}

/// Every hook straight from its object (the API answers from it, not from
/// the cache), refreshing this isolate's copy.
async fn fresh(env: &Env) -> ApiResult<Rc<Vec<(String, Hook)>>> {
    let list: HookList = call(env, &HookCommand::List).await?;
    let hooks = Rc::new(list.hooks);
    CACHE.with(|c| *c.borrow_mut() = Some((now_ms(), hooks.clone())));
    Ok(hooks)
}

/// The hook as the API shows it, or 404.
async fn view_of(env: &Env, name: &BoardName) -> ApiResult<serde_json::Value> {
    let hooks = fresh(env).await?;
    let found = hooks.iter().find(|(n, _)| n == name.as_str());
    found.map(|(n, h)| h.view(n)).ok_or_else(|| ApiError::HookNotFound(name.to_string()))
}

fn forget() {
    CACHE.with(|c| *c.borrow_mut() = None);
}

fn hook_name(raw: &str) -> ApiResult<BoardName> {
    BoardName::parse(raw)
        .map_err(|e| ApiError::InvalidParameter { field: "name".into(), message: e.to_string() })
}

fn allow_http(env: &Env) -> bool {
    env.var("ALLOW_HTTP_HOOKS")
        .map(|v| matches!(v.to_string().as_str(), "1" | "on" | "true"))
        .unwrap_or(false)
}

// ---- the API -------------------------------------------------------------

pub async fn list(env: &Env) -> ApiResult {
    let views: Vec<_> = fresh(env).await?.iter().map(|(n, h)| h.view(n)).collect();
    json(200, &serde_json::json!({ "hooks": views }))
}

pub async fn get(env: &Env, name: &str) -> ApiResult {
    json(200, &view_of(env, &hook_name(name)?).await?)
}

pub async fn put(mut req: Request, env: &Env, name: &str) -> ApiResult {
    let name = hook_name(name)?;
    let body = read_json_body(&mut req, MAX_SMALL_BODY).await?;
    let h = parse_hook(&body, allow_http(env))?;
    let cmd = HookCommand::Put {
        name: name.to_string(),
        url: h.url,
        events: h.events,
        boards: h.boards,
        top: h.top,
        secret: h.secret,
    };
    let created = match call::<HookPut>(env, &cmd).await? {
        HookPut::Done { created } => created,
        HookPut::NeedsSecret => {
            return Err(ApiError::InvalidBody {
                field: Some("secret".into()),
                message: "is required for a new hook (16 to 256 characters)".into(),
            })
        }
    };
    json(if created { 201 } else { 200 }, &view_of(env, &name).await?)
}

pub async fn delete(env: &Env, name: &str) -> ApiResult {
    let name = hook_name(name)?;
    let r: Removed = call(env, &HookCommand::Delete { name: name.to_string() }).await?;
    forget();
    if r.removed == 0 {
        return Err(ApiError::HookNotFound(name.to_string()));
    }
    Ok(Response::empty().map_err(|e| internal("response", e))?.with_status(204))
}

pub async fn deliveries(req: &Request, env: &Env, name: &str) -> ApiResult {
    let name = hook_name(name)?;
    let q = super::http::Query::of(req)?;
    let limit = q.int("limit", 50, 1, 1000)?;
    view_of(env, &name).await?;
    let list: DeliveryList = call(env, &HookCommand::Deliveries { name: name.to_string(), limit }).await?;
    json(200, &serde_json::json!({ "hook": name.as_str(), "deliveries": list.deliveries }))
}

/// Erasure: no dead delivery keeps the member.
pub async fn erase(env: &Env, member: &str) -> ApiResult<()> {
    call::<Ack>(env, &HookCommand::Erase { member: member.to_string() }).await.map(|_| ())
}

// ---- making events ---------------------------------------------------------

/// Puts ranking events on the hooks Queue (from a board period object).
pub async fn enqueue(env: &Env, deliveries: &[HookDelivery]) -> Result<()> {
    if deliveries.is_empty() {
        return Ok(());
    }
    use worker::{BatchSendMessage, QueueContentType, RawMessageBuilder};
    let queue = env.queue("HOOK_QUEUE")?;
    // A Queue batch takes at most 100 messages.
    for chunk in deliveries.chunks(100) {
        let mut messages = Vec::with_capacity(chunk.len());
        for d in chunk {
            let text = serde_json::to_string(d).map_err(rust_err)?;
            messages.push(
                RawMessageBuilder::new(text.as_str().into()).build_with_content_type(QueueContentType::Text),
            );
        }
        queue.send_raw_batch(BatchSendMessage::from(messages)).await?;
    }
    Ok(())
}

// ---- delivering ------------------------------------------------------------

fn decode(m: &RawMessage) -> Option<HookDelivery> {
    serde_json::from_str(&m.body().as_string()?).ok()
}

/// The delay before the first retry (then tripled each time, up to 12 h):
/// 10 s, or `HOOK_RETRY_BASE_S` (tests make it short).
fn retry_base_s(env: &Env) -> u64 {
    env.var("HOOK_RETRY_BASE_S")
        .ok()
        .and_then(|v| v.to_string().parse().ok())
        .filter(|s| *s > 0)
        .unwrap_or(10)
}

/// POSTs one event, signed; `Err` says why the attempt failed.
async fn post(hook: &Hook, d: &HookDelivery) -> std::result::Result<(), String> {
    let t = now_ms() / 1000;
    let headers = Headers::new();
    let set = |k: &str, v: &str| headers.set(k, v).map_err(|e| e.to_string());
    set("Content-Type", "application/json")?;
    set("User-Agent", "Podium-Webhooks/1")?;
    set("Podium-Event-Id", &d.id)?;
    set("Podium-Event-Type", d.kind.as_str())?;
    set("Podium-Signature", &signature(&hook.secret, t, &d.body))?;
    let mut init = RequestInit::new();
    init.with_method(Method::Post).with_headers(headers).with_body(Some(JsValue::from_str(&d.body)));
    // A redirect is an answer that is not a 2xx (API 1.1): retried, never
    // followed (following it would post the signed body to an address the
    // hook's URL rules never checked).
    init.with_redirect(worker::RequestRedirect::Manual);
    let req = Request::new_with_init(&hook.url, &init).map_err(|e| format!("bad request: {e}"))?;
    let abort = AbortController::default();
    let signal = abort.signal();
    let fetch = Fetch::Request(req);
    let fetch = Box::pin(fetch.send_with_signal(&signal));
    let timeout = Box::pin(Delay::from(Duration::from_millis(TIMEOUT_MS)));
    // Bound before it is returned: the futures borrow `signal` and must be
    // dropped first.
    let outcome = match select(fetch, timeout).await {
        Either::Left((Ok(resp), _)) if (200..300).contains(&resp.status_code()) => Ok(()),
        Either::Left((Ok(resp), _)) => Err(format!("the receiver answered {}", resp.status_code())),
        Either::Left((Err(e), _)) => Err(format!("the request failed: {e}")),
        Either::Right(_) => {
            abort.abort();
            Err(format!("no answer within {} s", TIMEOUT_MS / 1000))
        }
    };
    outcome
}

async fn record(env: &Env, d: &HookDelivery, status: &str, error: Option<String>) -> ApiResult<u32> {
    let cmd = HookCommand::Record { delivery: d.clone(), status: status.into(), error };
    call::<Attempts>(env, &cmd).await.map(|a| a.attempts)
}

/// The hooks Queue's consumer: each event to its hook, in order; a failure
/// is retried after a growing delay (the Queue moves it to the dead-letter
/// queue after `MAX_RETRIES`).
pub async fn deliver(batch: MessageBatch<JsValue>, env: Env) -> Result<()> {
    let base = retry_base_s(&env);
    let hooks = all(&env).await.map_err(|e| rust_err(format!("{e:?}")))?;
    for m in batch.raw_iter() {
        let Some(d) = decode(&m) else {
            console_error!("hook delivery {} does not decode; dropped", m.id());
            m.ack();
            continue;
        };
        let Some((_, hook)) = hooks.iter().find(|(n, _)| *n == d.hook) else {
            // The hook was deleted: nobody to tell.
            let _ = record(&env, &d, "dropped", Some("the hook was deleted".into())).await;
            m.ack();
            continue;
        };
        match post(hook, &d).await {
            Ok(()) => {
                if let Err(e) = record(&env, &d, "delivered", None).await {
                    console_error!("delivery log: {e:?}");
                }
                m.ack();
            }
            Err(why) => {
                let attempts = record(&env, &d, "failed", Some(why)).await.unwrap_or(1);
                let delay = retry_delay_s(attempts, base).min(u32::MAX as u64) as u32;
                m.retry_with_options(&QueueRetryOptionsBuilder::new().with_delay_seconds(delay).build());
            }
        }
    }
    Ok(())
}

/// The hooks dead-letter queue's consumer: the delivery is kept as dead,
/// body and all, in the log.
pub async fn bury(batch: MessageBatch<JsValue>, env: Env) -> Result<()> {
    for m in batch.raw_iter() {
        if let Some(d) = decode(&m) {
            let why = format!("gave up after {} retries", crate::core::hooks::MAX_RETRIES);
            if record(&env, &d, "dead", Some(why)).await.is_err() {
                m.retry();
                continue;
            }
        }
        m.ack();
    }
    Ok(())
}

// ---- the object ------------------------------------------------------------

/// The hooks of the deployment and their delivery log, in SQLite.
#[durable_object]
pub struct HookObject {
    state: State,
}

impl HookObject {
    fn sql(&self) -> worker::SqlStorage {
        self.state.storage().sql()
    }

    fn open(&self) -> Result<()> {
        let sql = self.sql();
        kv::open(&sql)?;
        sql.exec("CREATE TABLE IF NOT EXISTS hooks (name TEXT PRIMARY KEY, def TEXT NOT NULL)", None)?;
        sql.exec(
            "CREATE TABLE IF NOT EXISTS deliveries (hook TEXT NOT NULL, id TEXT NOT NULL, type TEXT NOT NULL, \
             board TEXT NOT NULL, status TEXT NOT NULL, attempts INTEGER NOT NULL, last_error TEXT, \
             created INTEGER NOT NULL, updated INTEGER NOT NULL, body TEXT, PRIMARY KEY (hook, id))",
            None,
        )?;
        sql.exec("CREATE INDEX IF NOT EXISTS deliveries_by_time ON deliveries (hook, created)", None)?;
        // Recent erasures, each as of when it finished.
        sql.exec(super::erasure::ERASED_TABLE, None)?;
        Ok(())
    }

    /// Whether `body` names a member whose erasure finished after the body
    /// was made (a body of unknown time counts as made before): a delivery
    /// that dies late keeps no such body.
    fn names_erased(&self, body: &str) -> Result<bool> {
        let (names, made) = erased::names_in_body(body);
        if names.is_empty() {
            return Ok(false);
        }
        #[derive(Deserialize)]
        struct N {
            n: f64,
        }
        let rows: Vec<N> = self
            .sql()
            .exec(
                "SELECT count(*) AS n FROM erased WHERE digest IN (SELECT value FROM json_each(?)) AND at >= ?",
                vec![
                    serde_json::to_string(&names).map_err(rust_err)?.into(),
                    (made.unwrap_or(i64::MIN) as f64).into(),
                ],
            )?
            .to_array()?;
        Ok(rows.first().is_some_and(|r| r.n > 0.0))
    }

    fn hooks(&self) -> Result<Vec<(String, Hook)>> {
        #[derive(Deserialize)]
        struct Row {
            name: String,
            def: String,
        }
        let rows: Vec<Row> =
            self.sql().exec("SELECT name, def FROM hooks ORDER BY name", None)?.to_array()?;
        Ok(rows.into_iter().filter_map(|r| Some((r.name, serde_json::from_str(&r.def).ok()?))).collect())
    }

    fn run(&self, cmd: HookCommand) -> Result<serde_json::Value> {
        let sql = self.sql();
        let out = match cmd {
            HookCommand::List => serde_json::to_value(HookList { hooks: self.hooks()? }),
            HookCommand::Put { name, url, events, boards, top, secret } => {
                let old = self.hooks()?.into_iter().find(|(n, _)| *n == name).map(|(_, h)| h);
                let Some(secret) = secret.or_else(|| old.as_ref().map(|h| h.secret.clone())) else {
                    return serde_json::to_value(HookPut::NeedsSecret).map_err(rust_err);
                };
                let hook = Hook { url, events, boards, top, secret };
                let def = serde_json::to_string(&hook).map_err(rust_err)?;
                sql.exec(
                    "INSERT INTO hooks (name, def) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET def = excluded.def",
                    vec![name.into(), def.into()],
                )?;
                serde_json::to_value(HookPut::Done { created: old.is_none() })
            }
            HookCommand::Delete { name } => {
                let existed = self.hooks()?.iter().any(|(n, _)| *n == name);
                sql.exec("DELETE FROM hooks WHERE name = ?", vec![name.clone().into()])?;
                sql.exec("DELETE FROM deliveries WHERE hook = ?", vec![name.into()])?;
                serde_json::to_value(Removed { removed: u64::from(existed) })
            }
            HookCommand::Record { delivery: d, status, error } => {
                let now = now_ms() as f64;
                // The body is kept only while the delivery is dead (a dead
                // letter to read), and never when it names a member erased
                // since it was made.
                let body = match status == "dead" && !self.names_erased(&d.body)? {
                    true => Some(d.body.clone()),
                    false => None,
                };
                let tried = u32::from(status == "delivered" || status == "failed");
                sql.exec(
                    "INSERT INTO deliveries (hook, id, type, board, status, attempts, last_error, created, updated, body) \
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(hook, id) DO UPDATE SET \
                     status = excluded.status, attempts = attempts + excluded.attempts, \
                     last_error = COALESCE(excluded.last_error, last_error), updated = excluded.updated, \
                     body = excluded.body",
                    vec![
                        d.hook.clone().into(),
                        d.id.clone().into(),
                        d.kind.as_str().into(),
                        d.board.clone().into(),
                        status.into(),
                        (tried as f64).into(),
                        error.map(SqlStorageValue::from).unwrap_or(SqlStorageValue::Null),
                        now.into(),
                        now.into(),
                        body.map(SqlStorageValue::from).unwrap_or(SqlStorageValue::Null),
                    ],
                )?;
                sql.exec(
                    "DELETE FROM deliveries WHERE hook = ? AND created < (SELECT created FROM deliveries \
                     WHERE hook = ? ORDER BY created DESC LIMIT 1 OFFSET ?)",
                    vec![d.hook.clone().into(), d.hook.clone().into(), (LOG_KEEP as f64).into()],
                )?;
                #[derive(Deserialize)]
                struct A {
                    attempts: f64,
                }
                let a: Vec<A> = sql
                    .exec(
                        "SELECT attempts FROM deliveries WHERE hook = ? AND id = ?",
                        vec![d.hook.into(), d.id.into()],
                    )?
                    .to_array()?;
                serde_json::to_value(Attempts { attempts: a.first().map(|a| a.attempts as u32).unwrap_or(0) })
            }
            HookCommand::Deliveries { name, limit } => {
                #[derive(Deserialize)]
                struct Row {
                    id: String,
                    #[serde(rename = "type")]
                    kind: String,
                    board: String,
                    status: String,
                    attempts: f64,
                    last_error: Option<String>,
                    created: f64,
                    updated: f64,
                }
                let rows: Vec<Row> = sql
                    .exec(
                        "SELECT id, type, board, status, attempts, last_error, created, updated FROM deliveries \
                         WHERE hook = ? ORDER BY created DESC, id LIMIT ?",
                        vec![name.into(), (limit as f64).into()],
                    )?
                    .to_array()?;
                let deliveries = rows
                    .into_iter()
                    .map(|r| DeliveryOut {
                        id: r.id,
                        kind: r.kind,
                        board: r.board,
                        status: r.status,
                        attempts: r.attempts as u32,
                        last_error: r.last_error,
                        created: r.created as i64,
                        updated: r.updated as i64,
                    })
                    .collect();
                serde_json::to_value(DeliveryList { deliveries })
            }
            HookCommand::Erase { member } => {
                // Bodies are JSON: the member appears as a JSON string.
                let needle = serde_json::to_string(&member).map_err(rust_err)?;
                sql.exec(
                    "DELETE FROM deliveries WHERE body IS NOT NULL AND instr(body, ?) > 0",
                    vec![needle.into()],
                )?;
                super::erasure::remember(&sql, &member, now_ms())?;
                serde_json::to_value(Ack { ok: true })
            }
        };
        out.map_err(rust_err)
    }
}

impl worker::DurableObject for HookObject {
    fn new(state: State, _env: Env) -> Self {
        HookObject { state }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        if req.method() != Method::Post || req.path() != "/cmd" {
            return Response::error("not found", 404);
        }
        let cmd: HookCommand = req.json().await?;
        self.open()?;
        Response::from_json(&self.run(cmd)?)
    }
}

/// Which hooks want events of `board`, and the largest `top` among those
/// that watch its top (0 when none does).
pub fn watching(hooks: &[(String, Hook)], board: &str) -> (bool, usize) {
    let ends = hooks.iter().any(|(_, h)| h.listens(board, HookEvent::PeriodEnded));
    let top = hooks
        .iter()
        .filter(|(_, h)| h.listens(board, HookEvent::TopChanged) || h.listens(board, HookEvent::Overtaken))
        .map(|(_, h)| h.top)
        .max()
        .unwrap_or(0);
    (ends, top)
}
