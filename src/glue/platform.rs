//! What the Workers runtime gives the glue, behind plain functions: the
//! clock, random ids, alarm times, the runtime's error type and a response's
//! whole body in one read; and the one
//! deployment setting several modules read (`RETAIN_PERIODS`). The core
//! takes all of these as arguments (it never reads a clock or the Env), so
//! the glue reads them here, in one place, and passes them in.
//!
//! Other settings live beside the one module that reads them (e.g.
//! `INTAKE_SHARDS` in `intake`, `READ_CACHE` in `http`); the test-fault
//! switch lives in `faults`, with the faults it switches on.

use std::fmt::Display;

use wasm_bindgen::JsCast;

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

/// 16 bytes of a fresh `crypto.randomUUID` (the platform's CSPRNG; 122 of
/// the 128 bits are random, the version and variant bits are not), or
/// `None` where the runtime has no `randomUUID`.
pub fn random_uuid_bytes() -> Option<[u8; 16]> {
    uuid::Uuid::parse_str(&new_id()).ok().map(|u| u.into_bytes())
}

/// A fresh id for an event sent without one: a UUIDv7
/// (`domain::event::time_ordered_id`) whose random bits are the last ten
/// bytes of a `crypto.randomUUID` (v7 sets its own version and variant
/// bits over the v4's: 74 random bits stay).
pub fn new_event_id() -> String {
    let v4 = random_uuid_bytes().unwrap_or_default();
    let mut random = [0u8; 10];
    random.copy_from_slice(&v4[6..]);
    crate::domain::event::time_ordered_id(now_ms(), &random)
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

/// A response's whole body, read by the runtime in one call. workers-rs's
/// `text()`/`bytes()` pull a streamed body (an object's answer, a cache hit)
/// chunk by chunk through a JS reader, which profiled at ~1.8 ms of the
/// thread per read of a board (scripts/stalls.mjs).
pub async fn body_of(resp: worker::Response) -> worker::Result<Vec<u8>> {
    // Statuses that carry no body: converting one with a body would throw.
    if matches!(resp.status_code(), 101 | 204 | 205 | 304) {
        return Ok(Vec::new());
    }
    let resp = worker::web_sys::Response::from(resp);
    let buf = wasm_bindgen_futures::JsFuture::from(resp.array_buffer()?).await?;
    Ok(js_sys::Uint8Array::new(&buf).to_vec())
}
