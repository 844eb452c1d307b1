//! The Worker: the fetch handler dispatching the route table, the Queue
//! consumer, and the Durable Object classes. Thin: rules live in `core`.

mod board;
mod boards;
mod catalog;
mod consumer;
mod dead;
mod erasure;
mod faults;
mod hooks;
mod http;
mod index;
mod ingest;
mod intake;
mod kv;
mod live;
mod objects;
mod platform;
mod rows;
mod rules;
mod seasons;
mod shards;
mod transfer;
mod txn;
mod wait;

use serde_json::json;
use worker::{event, Context, Env, MessageBatch, Request, Response};

use crate::domain::auth::{bearer, role_of, Role};
use crate::domain::IdempotencyKey;
use crate::error::ApiError;
use crate::routes::{match_path, Route};
use http::{error_response, json, preflight, with_cors, ApiResult};
use wasm_bindgen::JsValue;

#[event(start)]
fn start() {
    console_error_panic_hook::set_once();
}

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> worker::Result<Response> {
    let resp = match idempotent(req, &env).await {
        Ok(r) => r,
        Err(e) => error_response(&e)?,
    };
    // A WebSocket upgrade's headers are immutable; everything else gets CORS.
    if resp.status_code() == 101 {
        return Ok(resp);
    }
    Ok(with_cors(resp))
}

#[event(queue)]
async fn queue(batch: MessageBatch<JsValue>, env: Env, _ctx: Context) -> worker::Result<()> {
    match batch.queue().as_str() {
        DEAD_LETTER_QUEUE => dead::consume(batch, env).await,
        hooks::HOOKS_QUEUE => hooks::deliver(batch, env).await,
        hooks::HOOKS_DLQ => hooks::bury(batch, env).await,
        _ => consumer::consume(batch, env).await,
    }
}

/// The events queue's dead-letter queue (wrangler.toml), consumed into the
/// dead-letter store.
const DEAD_LETTER_QUEUE: &str = "podium-events-dlq";

/// The request's bearer token ("" without one): who holds an idempotency key.
fn bearer_token(req: &Request) -> String {
    bearer(req.headers().get("Authorization").ok().flatten().as_deref()).unwrap_or_default().to_string()
}

/// Which role the request's bearer key grants, if any.
fn role(req: &Request, env: &Env) -> Option<Role> {
    let header = req.headers().get("Authorization").ok().flatten();
    let token = bearer(header.as_deref())?;
    let secret = |name: &str| {
        env.secret(name)
            .map(|s| s.to_string())
            .or_else(|_| env.var(name).map(|v| v.to_string()))
            .unwrap_or_default()
    };
    role_of(token, &secret("INGEST_KEYS"), &secret("ADMIN_KEY"))
}

/// The request's key must grant `needed`, and the key must be within the
/// deployment's request rate (the `WRITE_LIMIT` rate-limiting binding of
/// wrangler.toml, per key; a deployment without the binding is not limited).
async fn authorize(req: &Request, env: &Env, needed: Role) -> ApiResult<()> {
    match role(req, env) {
        Some(r) if r >= needed => {}
        _ => return Err(ApiError::Unauthorized),
    }
    let Ok(limiter) = env.rate_limiter(RATE_LIMITER) else { return Ok(()) };
    // Per key, not per header text: `bearer k` and `Bearer  k` are one key.
    // The limiter sees a hash of the key, never the key.
    let key = crate::domain::idempotency::fnv64(bearer_token(req).as_bytes());
    match limiter.limit(format!("{key:016x}")).await {
        Ok(outcome) if !outcome.success => Err(ApiError::RateLimited { retry_after_s: RATE_PERIOD_S }),
        Ok(_) => Ok(()),
        Err(e) => {
            // Fail open: a limiter outage must not stop ingest.
            worker::console_warn!("rate limiter unavailable: {e}");
            Ok(())
        }
    }
}

/// The rate-limiting binding and its period (wrangler.toml `[[ratelimits]]`).
const RATE_LIMITER: &str = "WRITE_LIMIT";
const RATE_PERIOD_S: u32 = 10;

/// `Idempotency-Key` on a POST or DELETE (API 1.1; ingest keeps its own,
/// with the request, in `ingest`): a repeat from the same key holder within
/// 24 hours gets the first 2xx answer again and runs nothing. Only 2xx
/// answers are kept: a refused request changed nothing and may be retried.
async fn idempotent(req: Request, env: &Env) -> ApiResult {
    let method = req.inner().method().to_ascii_uppercase();
    let header = req.headers().get("Idempotency-Key").ok().flatten();
    // Only for a write the route table answers: a wrong path or method gets
    // its 404 or 405 whatever key it carries.
    let path = req.path();
    let answered =
        match_path(&path).is_some_and(|r| r != Route::Malformed && r != Route::Events && r.allows(&method));
    // (A request without a good key gets its 401 from the endpoint; only a
    // key holder's answers are kept.)
    let keyed = (method == "POST" || method == "DELETE") && answered && role(&req, env).is_some();
    let Some(raw) = header.filter(|_| keyed) else {
        return dispatch(req, env).await;
    };
    let holder = bearer_token(&req);
    let key = format!("req:{}:{}", method, IdempotencyKey::parse(&raw, &holder)?.scoped());
    // What the request asks: a key used again for another request (another
    // path, query or body) is the client's mistake, not a repeat.
    let fingerprint = {
        let mut probe = req.clone().map_err(|e| http::internal("clone request", e))?;
        let url = req.url().map_err(|e| http::internal("url", e))?;
        let mut bytes = format!("{method} {}?{}\n", url.path(), url.query().unwrap_or_default()).into_bytes();
        // Read up to the endpoint's own limit, never past it (a larger
        // body is the 413 the endpoint would give).
        bytes.extend(http::read_body(&mut probe, body_limit(&path)).await?);
        format!("{:016x}", crate::domain::idempotency::fnv64(&bytes))
    };
    // The first answer, or the key for this request; a repeat that comes
    // while the first still runs waits for its answer.
    let deadline = crate::glue::platform::now_ms() + CLAIM_WAIT_MS;
    let kept_answer = loop {
        let c = intake::claim(env, &key).await?;
        if c.answer.is_some() || !c.busy {
            break c.answer;
        }
        if crate::glue::platform::now_ms() > deadline {
            return Err(ApiError::Conflict(
                "a request with this Idempotency-Key is still running; retry it later".into(),
            ));
        }
        worker::Delay::from(std::time::Duration::from_millis(100)).await;
    };
    if let Some(first) = kept_answer {
        #[derive(serde::Deserialize)]
        struct Kept {
            status: u16,
            body: String,
            #[serde(default)]
            fp: Option<String>,
        }
        let kept: Kept = serde_json::from_str(&first).map_err(|e| http::internal("kept answer", e))?;
        if kept.fp.is_some_and(|fp| fp != fingerprint) {
            return Err(ApiError::IdempotencyKeyReused);
        }
        if kept.status == 204 {
            return Ok(Response::empty().map_err(|e| http::internal("response", e))?.with_status(204));
        }
        return http::raw_json(kept.status, kept.body);
    }
    let mut resp = match dispatch(req, env).await {
        Ok(r) if (200..300).contains(&r.status_code()) => r,
        refused => {
            // Refused: it changed nothing, and a retry with the key may run.
            if intake::release(env, &key).await.is_err() {
                worker::console_warn!("idempotency key not released; a retry waits out its claim");
            }
            return refused;
        }
    };
    let body = resp.cloned().map_err(|e| http::internal("clone", e))?.text().await.unwrap_or_default();
    let kept = json!({ "status": resp.status_code(), "body": body, "fp": fingerprint }).to_string();
    if intake::remember(env, &key, kept).await.is_err() {
        worker::console_warn!("idempotency key not kept; a repeat would run again");
    }
    Ok(resp)
}

/// How long a repeat waits for the first request with its key to finish
/// before it is answered 409 (a claim itself stands `intake::CLAIM_MS`).
const CLAIM_WAIT_MS: i64 = 10_000;

/// A ranking read through the edge cache, keyed by the board's generation.
async fn cached(
    req: &Request,
    env: &Env,
    board: &str,
    read: impl std::future::Future<Output = ApiResult>,
) -> ApiResult {
    let generation = match crate::domain::BoardName::parse(board) {
        Ok(name) => {
            catalog::get(env, std::slice::from_ref(&name)).await?.boards.get(&name).map(|r| r.generation)
        }
        Err(_) => None,
    };
    http::cached_read(req, env, generation, read).await
}

/// The largest body `path` takes (API 1.1): 1 MiB for ingest and imports,
/// 64 KiB for any other.
fn body_limit(path: &str) -> usize {
    match match_path(path) {
        Some(Route::Events) => crate::domain::event::MAX_BODY_BYTES,
        Some(Route::Import(_)) => crate::domain::import::MAX_IMPORT_BYTES,
        _ => http::MAX_SMALL_BODY,
    }
}

async fn dispatch(req: Request, env: &Env) -> ApiResult {
    let path = req.path();
    let route = match_path(&path).ok_or(ApiError::NotFound)?;
    if route == Route::Malformed {
        return Err(ApiError::InvalidParameter {
            field: "path".into(),
            message: "has a broken percent-escape or is not UTF-8".into(),
        });
    }
    // The method as sent: worker's `Method` maps every unknown one (PROPFIND,
    // MKCOL, ...) to GET, which would answer them as reads.
    let method = req.inner().method().to_ascii_uppercase();
    if method == "OPTIONS" {
        let asked = req.headers().get("Access-Control-Request-Headers").ok().flatten();
        return preflight(route.allow(), asked.as_deref());
    }
    let method = if method == "HEAD" { "GET".to_string() } else { method };
    if !route.allows(&method) {
        return Err(ApiError::MethodNotAllowed { allow: route.allow() });
    }
    // Every body has a limit, also where the endpoint reads none (a DELETE,
    // hiding a member, a new season): a declared size past it is a 413,
    // after the key is known good (a request without one gets its 401).
    // (Bodies that are read are checked as they are read, chunked ones
    // included; one that is never read is never buffered.)
    let declared = req.headers().get("Content-Length").ok().flatten();
    let oversized =
        declared.and_then(|n| n.trim().parse::<u64>().ok()).is_some_and(|n| n > body_limit(&path) as u64);
    if oversized && role(&req, env).is_some() {
        return Err(ApiError::PayloadTooLarge { max: body_limit(&path) });
    }
    match (route, method.as_str()) {
        (Route::Health, _) => {
            let version = env
                .var("PODIUM_VERSION")
                .map(|v| v.to_string())
                .unwrap_or_else(|_| env!("CARGO_PKG_VERSION").into());
            json(200, &json!({ "ok": true, "version": version }))
        }
        (Route::Events, _) => {
            authorize(&req, env, Role::Ingest).await?;
            let holder = bearer_token(&req);
            ingest::post_events(req, env, &holder).await
        }
        (Route::Routes, _) => rules::list(env).await,
        (Route::Route(t), "GET") => rules::get(env, &t).await,
        (Route::Route(t), "PUT") => {
            authorize(&req, env, Role::Admin).await?;
            rules::put(req, env, &t).await
        }
        (Route::Route(t), _) => {
            authorize(&req, env, Role::Admin).await?;
            rules::delete(env, &t).await
        }
        (Route::Boards, _) => boards::list(&req, env).await,
        (Route::Board(b), "GET") => cached(&req, env, &b, boards::get(env, &b)).await,
        (Route::Board(b), "PUT") => {
            authorize(&req, env, Role::Admin).await?;
            boards::put(req, env, &b).await
        }
        (Route::Board(b), _) => {
            authorize(&req, env, Role::Admin).await?;
            boards::delete(env, &b).await
        }
        (Route::Top(b), _) => cached(&req, env, &b, boards::top(&req, env, &b)).await,
        (Route::Member(b, m), "GET") => cached(&req, env, &b, boards::member(&req, env, &b, &m)).await,
        (Route::Member(b, m), _) => {
            authorize(&req, env, Role::Admin).await?;
            boards::remove_member(env, &b, &m).await
        }
        (Route::Around(b, m), _) => cached(&req, env, &b, boards::around(&req, env, &b, &m)).await,
        (Route::Lookup(b), _) => boards::lookup(req, env, &b).await,
        (Route::Hide(b, m), method) => {
            authorize(&req, env, Role::Admin).await?;
            boards::hide_member(env, &b, &m, method == "PUT").await
        }
        (Route::Seasons(b), "GET") => seasons::list(env, &b).await,
        (Route::Seasons(b), _) => {
            authorize(&req, env, Role::Admin).await?;
            seasons::start(env, &b).await
        }
        (Route::HiddenList(b), _) => {
            authorize(&req, env, Role::Admin).await?;
            boards::hidden_list(env, &b).await
        }
        (Route::Export(b), _) => {
            authorize(&req, env, Role::Admin).await?;
            transfer::export(&req, env, &b).await
        }
        (Route::Import(b), _) => {
            authorize(&req, env, Role::Admin).await?;
            transfer::import(req, env, &b).await
        }
        (Route::Live(b), _) => boards::live(req, env, &b).await,
        (Route::Erase(m), _) => {
            authorize(&req, env, Role::Admin).await?;
            erasure::start(env, &m).await
        }
        (Route::Erasure(id), _) => {
            authorize(&req, env, Role::Admin).await?;
            erasure::status(env, &id).await
        }
        (Route::DeadLetters, _) => {
            authorize(&req, env, Role::Admin).await?;
            dead::list(&req, env).await
        }
        (Route::Redrive, _) => {
            authorize(&req, env, Role::Admin).await?;
            dead::redrive(req, env).await
        }
        (Route::DeadLetter(id), _) => {
            authorize(&req, env, Role::Admin).await?;
            dead::delete(env, &id).await
        }
        (Route::Hooks, _) => {
            authorize(&req, env, Role::Admin).await?;
            hooks::list(env).await
        }
        (Route::Hook(n), "GET") => {
            authorize(&req, env, Role::Admin).await?;
            hooks::get(env, &n).await
        }
        (Route::Hook(n), "PUT") => {
            authorize(&req, env, Role::Admin).await?;
            hooks::put(req, env, &n).await
        }
        (Route::Hook(n), _) => {
            authorize(&req, env, Role::Admin).await?;
            hooks::delete(env, &n).await
        }
        (Route::HookDeliveries(n), _) => {
            authorize(&req, env, Role::Admin).await?;
            hooks::deliveries(&req, env, &n).await
        }
        (Route::Malformed, _) => Err(ApiError::NotFound),
    }
}
