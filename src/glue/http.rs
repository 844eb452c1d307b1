//! HTTP for the worker's clients: reading request bodies and query
//! parameters, JSON responses, the one mapping of an `ApiError` to a
//! response, CORS, and public reads' ETags and edge cache. Every handler
//! returns `ApiResult`. Calls to Durable Objects are `objects`'; the clock,
//! ids and alarms are `platform`'s.

use std::collections::HashMap;
use std::fmt::Display;

use serde::Serialize;
use worker::{console_error, Headers, Request, Response};

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

    /// A parameter where empty means "none": free text (`prefix=`,
    /// `cursor=`) and the choices that have a default (`window=`,
    /// `period=`, `format=`), as the contract's own templates
    /// (`top?…&window=&period=`) write them.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|s| !s.is_empty())
    }

    /// `offset` (≥ 0, default 0; no upper bound in the contract). An
    /// offset past any board's end reads an empty page, so a larger one is
    /// read as `MAX_OFFSET`: the answer is the same, and `offset + limit`
    /// stays far inside a wasm32 `usize`.
    pub fn offset(&self) -> ApiResult<usize> {
        const MAX_OFFSET: usize = 1 << 30;
        let Some(raw) = self.get("offset") else { return Ok(0) };
        if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ApiError::InvalidParameter {
                field: "offset".into(),
                message: "must be an integer ≥ 0".into(),
            });
        }
        Ok(raw.parse::<usize>().map_or(MAX_OFFSET, |n| n.min(MAX_OFFSET)))
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
    if declared.is_some() {
        // Its declared size is within `max` (checked above): one native
        // read. A JS stream reader per chunk costs the thread about a
        // millisecond a chunk (scripts/stalls.mjs, on object answers).
        let out = req.bytes().await.map_err(|_| ApiError::InvalidBody {
            field: None,
            message: "the body could not be read".into(),
        })?;
        if out.len() > max {
            return Err(ApiError::PayloadTooLarge { max });
        }
        return Ok(out);
    }
    // No declared size (chunked): read it a chunk at a time and stop at `max`.
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

/// Reads a JSON request body (every body but ingest's and imports'): as
/// `read_body`, then 415 when the body is sent with a `Content-Type` that is
/// not JSON (`application/json`, or any `+json` type). A body sent with no
/// `Content-Type` at all is read as JSON: the type is the client's claim,
/// and only a claim of something else is refused.
pub async fn read_json_body(req: &mut Request, max: usize) -> ApiResult<Vec<u8>> {
    let body = read_body(req, max).await?;
    let ct = req.headers().get("Content-Type").ok().flatten();
    if !body.is_empty() && !is_json_type(ct.as_deref()) {
        return Err(ApiError::UnsupportedMediaType);
    }
    Ok(body)
}

/// Whether a `Content-Type` (absent counts) names JSON.
pub fn is_json_type(ct: Option<&str>) -> bool {
    let Some(ct) = ct else { return true };
    let mime = ct.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
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
        if let Ok(Some(hit)) = cache.get(url.as_str(), true).await {
            let body = super::platform::body_of(hit).await.ok().and_then(|b| String::from_utf8(b).ok());
            if let Some(body) = body {
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
