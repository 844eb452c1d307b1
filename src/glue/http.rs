//! Response helpers: JSON bodies, the error mapping, CORS, query parameters,
//! and calls to Durable Objects. Every handler returns `ApiResult`.

use std::collections::HashMap;
use std::fmt::Display;

use serde::{de::DeserializeOwned, Serialize};
use wasm_bindgen::JsCast;
use worker::{console_error, Headers, Method, Request, RequestInit, Response, Stub};

use crate::error::ApiError;

pub type ApiResult<T = Response> = Result<T, ApiError>;

/// Logs an internal failure and hides it from the client.
pub fn internal(context: &str, e: impl Display) -> ApiError {
    console_error!("internal error ({context}): {e}");
    ApiError::Internal
}

pub fn json<T: Serialize>(status: u16, body: &T) -> ApiResult {
    let text = serde_json::to_string(body).map_err(|e| internal("serialize", e))?;
    raw_json(status, text)
}

/// A JSON body already serialized (e.g. an answer kept for a repeat).
pub fn raw_json(status: u16, text: String) -> ApiResult {
    let headers = Headers::new();
    headers.set("Content-Type", "application/json; charset=utf-8").map_err(|e| internal("headers", e))?;
    Ok(Response::ok(text).map_err(|e| internal("response", e))?.with_status(status).with_headers(headers))
}

/// Whether test faults are switched on (`PODIUM_TEST_FAULTS=1` in `.dev.vars`
/// or the environment). Off unless set: production never honours them.
pub fn faults_on(env: &worker::Env) -> bool {
    env.var("PODIUM_TEST_FAULTS").map(|v| v.to_string() == "1").unwrap_or(false)
        || env.secret("PODIUM_TEST_FAULTS").map(|v| v.to_string() == "1").unwrap_or(false)
}

/// The one place an `ApiError` becomes a response.
pub fn error_response(e: &ApiError) -> worker::Result<Response> {
    let headers = Headers::new();
    headers.set("Content-Type", "application/json; charset=utf-8")?;
    for (k, v) in e.headers() {
        headers.set(k, &v)?;
    }
    Ok(Response::ok(e.body().to_string())?.with_status(e.status()).with_headers(headers))
}

/// Everything the worker answers may be read cross-origin: reads are public,
/// and writes need a bearer key (no cookies), so `*` exposes nothing.
pub fn with_cors(mut r: Response) -> Response {
    let h = r.headers_mut();
    let _ = h.set("Access-Control-Allow-Origin", "*");
    let _ = h.set("Access-Control-Expose-Headers", "Retry-After, ETag");
    r
}

/// A CORS preflight: the route's methods, and the request headers the
/// browser asks for (header names only; bearer keys, not cookies, guard the
/// writes, so any header may come along).
pub fn preflight(allow: &str, asked: Option<&str>) -> ApiResult {
    let h = Headers::new();
    let _ = h.set("Access-Control-Allow-Methods", &format!("{allow}, OPTIONS"));
    let names = asked
        .filter(|a| a.len() <= 1024 && a.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_, ".contains(&b)));
    let _ = h.set("Access-Control-Allow-Headers", names.unwrap_or("Authorization, Content-Type"));
    let _ = h.set("Vary", "Access-Control-Request-Headers");
    let _ = h.set("Access-Control-Max-Age", "86400");
    Ok(Response::empty().map_err(|e| internal("preflight", e))?.with_status(204).with_headers(h))
}

/// Query parameters, first value wins.
pub struct Query(HashMap<String, String>);

impl Query {
    pub fn of(req: &Request) -> ApiResult<Query> {
        let url = req.url().map_err(|e| internal("url", e))?;
        let mut m = HashMap::new();
        for (k, v) in url.query_pairs() {
            m.entry(k.into_owned()).or_insert_with(|| v.into_owned());
        }
        Ok(Query(m))
    }

    /// A parameter as sent. Present but empty (`?window=`) is a value, and
    /// the parameter's parser says whether it is a valid one.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// A free-text parameter where empty means "none" (`prefix=`, `cursor=`).
    pub fn text(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|s| !s.is_empty())
    }

    /// An integer parameter within `[min, max]`, or its default.
    pub fn int(&self, name: &str, default: usize, min: usize, max: usize) -> ApiResult<usize> {
        // Present but empty (`?limit=`) is a malformed integer, not "absent".
        let Some(raw) = self.get(name) else { return Ok(default) };
        match raw.parse::<usize>() {
            Ok(n) if (min..=max).contains(&n) => Ok(n),
            _ => Err(ApiError::InvalidParameter {
                field: name.into(),
                message: format!("must be an integer from {min} to {max}"),
            }),
        }
    }
}

/// Calls a Durable Object with a JSON body and reads a JSON answer. Its
/// non-2xx answers are internal errors: objects only answer the worker.
pub async fn call_object<B: Serialize, T: DeserializeOwned>(
    stub: &Stub,
    path: &str,
    body: &B,
) -> ApiResult<T> {
    let text = serde_json::to_string(body).map_err(|e| internal("serialize", e))?;
    call_object_raw(stub, path, text).await
}

/// `call_object` with a body already encoded (e.g. an intake command's wire form).
pub async fn call_object_raw<T: DeserializeOwned>(stub: &Stub, path: &str, text: String) -> ApiResult<T> {
    let headers = Headers::new();
    let _ = headers.set("Content-Type", "application/json");
    let mut init = RequestInit::new();
    init.with_method(Method::Post).with_headers(headers).with_body(Some(text.into()));
    let req = Request::new_with_init(&format!("https://object{path}"), &init)
        .map_err(|e| internal("request", e))?;
    let mut resp = stub.fetch_with_request(req).await.map_err(|e| internal(path, e))?;
    let status = resp.status_code();
    let body = resp.text().await.map_err(|e| internal(path, e))?;
    if !(200..300).contains(&status) {
        return Err(internal(path, format!("object answered {status}: {body}")));
    }
    serde_json::from_str(&body).map_err(|e| internal(path, e))
}

/// Every body but ingest's (and imports') is at most this large (API 1.1).
pub const MAX_SMALL_BODY: usize = 64 * 1024;

/// Reads a request body of at most `max` bytes: 413 at once when the
/// declared `Content-Length` is larger (without waiting for the body), and
/// 413 as soon as a body sent without one (chunked) passes the limit, so no
/// body is ever buffered past it.
pub async fn read_body(req: &mut Request, max: usize) -> ApiResult<Vec<u8>> {
    use futures_util::StreamExt;
    let declared = req.headers().get("Content-Length").ok().flatten();
    if let Some(n) = declared.as_deref().map(str::trim) {
        match n.parse::<u64>() {
            Ok(n) if n > max as u64 => return Err(ApiError::PayloadTooLarge { max }),
            Ok(_) => {}
            Err(_) => {
                return Err(ApiError::InvalidBody {
                    field: None,
                    message: "Content-Length is not a number".into(),
                })
            }
        }
    }
    if req.inner().body().is_none() {
        return Ok(Vec::new());
    }
    let mut stream = req.stream().map_err(|e| internal("body stream", e))?;
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| ApiError::InvalidBody {
            field: None,
            message: "the body could not be read".into(),
        })?;
        if out.len() + chunk.len() > max {
            return Err(ApiError::PayloadTooLarge { max });
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// Milliseconds since the epoch, from the runtime's clock.
pub fn now_ms() -> i64 {
    js_sys::Date::now() as i64
}

/// A random id (UUID v4) for events sent without one.
pub fn new_id() -> String {
    let crypto = js_sys::Reflect::get(&js_sys::global(), &"crypto".into()).ok();
    let uuid = crypto.and_then(|c| {
        let f = js_sys::Reflect::get(&c, &"randomUUID".into()).ok()?;
        let f: js_sys::Function = f.dyn_into().ok()?;
        f.call0(&c).ok()?.as_string()
    });
    uuid.unwrap_or_else(|| format!("{:x}-{:x}", now_ms(), (js_sys::Math::random() * 1e15) as u64))
}

/// An alarm time at an absolute instant (a plain `i64` would be an offset).
pub fn alarm_at(ms: i64) -> worker::ScheduledTime {
    worker::ScheduledTime::new(js_sys::Date::new(&(ms as f64).into()))
}

/// A failure inside a Durable Object, as the runtime's error type.
pub fn rust_err(e: impl Display) -> worker::Error {
    worker::Error::RustError(e.to_string())
}

/// How many past periods are kept (`RETAIN_PERIODS`), defaults when unset.
pub fn retention(env: &worker::Env) -> crate::core::retention::Retention {
    env.var("RETAIN_PERIODS")
        .map(|v| crate::core::retention::Retention::parse(&v.to_string()))
        .unwrap_or_default()
}

/// A public ranking read (API 1.1): an `ETag` over the body, `Cache-Control:
/// public, max-age=1`, 304 for a matching `If-None-Match`; and unless the
/// deployment sets `READ_CACHE = "off"`, the answer is kept in the edge
/// cache (the Cache API of the data centre) for that second, so a hot read
/// is served there and not by the board's object. Only 200s are kept.
///
/// `generation` is the board's generation (none: the board does not exist
/// here, so nothing is read from or kept in the cache): it is part of the
/// cache key, so a deleted or re-created board is never answered from the
/// answers kept for the one before.
pub async fn cached_read(
    req: &Request,
    env: &worker::Env,
    generation: Option<u64>,
    compute: impl std::future::Future<Output = ApiResult>,
) -> ApiResult {
    let on = generation.is_some() && env.var("READ_CACHE").map(|v| v.to_string() != "off").unwrap_or(true);
    let mut url = req.url().map_err(|e| internal("url", e))?;
    url.query_pairs_mut().append_pair("podium-generation", &generation.unwrap_or_default().to_string());
    let url = url.to_string();
    let asked = req.headers().get("If-None-Match").ok().flatten();
    let cache = worker::Cache::default();
    if on {
        if let Ok(Some(mut hit)) = cache.get(url.as_str(), true).await {
            if let Ok(body) = hit.text().await {
                return fresh_read(body, asked.as_deref(), "hit");
            }
        }
    }
    let mut resp = compute.await?;
    if resp.status_code() != 200 {
        return Ok(resp);
    }
    let body = resp.text().await.map_err(|e| internal("read body", e))?;
    if on {
        // A failed put only costs the next reader a trip to the object.
        if let Err(e) = cache.put(url.as_str(), fresh_read(body.clone(), None, "stored")?).await {
            worker::console_warn!("read cache put failed: {e}");
        }
    }
    fresh_read(body, asked.as_deref(), "miss")
}

/// A read's answer with its validators: 304 when `asked` names its ETag.
fn fresh_read(body: String, asked: Option<&str>, cache: &str) -> ApiResult {
    let etag = format!("\"{:016x}\"", crate::domain::idempotency::fnv64(body.as_bytes()));
    let matches = asked.is_some_and(|a| {
        a.split(',').map(|t| t.trim().trim_start_matches("W/")).any(|t| t == etag || t == "*")
    });
    let headers = Headers::new();
    let set = |k: &str, v: &str| headers.set(k, v).map_err(|e| internal("headers", e));
    set("ETag", &etag)?;
    set("Cache-Control", "public, max-age=1")?;
    set("X-Podium-Cache", cache)?;
    if matches {
        return Ok(Response::empty()
            .map_err(|e| internal("response", e))?
            .with_status(304)
            .with_headers(headers));
    }
    set("Content-Type", "application/json; charset=utf-8")?;
    Ok(Response::ok(body).map_err(|e| internal("response", e))?.with_headers(headers))
}
