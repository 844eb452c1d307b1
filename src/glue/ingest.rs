//! `POST /v1/events`: auth, parse, route, enqueue. A request is all or
//! nothing: every event is parsed and routed before anything is sent, and
//! 202 is returned only once the Queue took every message.

use serde_json::json;
use worker::{Env, Queue, Request};

use super::catalog::{self, CatalogOp};
use super::http::{internal, json, new_id, now_ms, ApiResult};
use crate::core::catalog::{Catalog, ResolveError};
use crate::domain::event::{parse_body, MAX_BODY_BYTES};
use crate::domain::{BoardName, BodyFormat, Event};
use crate::error::ApiError;
use crate::protocol::QueuedEvent;

/// Queues take at most 100 messages and 256 KB per `sendBatch`.
const SEND_MAX_MESSAGES: usize = 100;
const SEND_MAX_BYTES: usize = 240 * 1024;

pub async fn post_events(mut req: Request, env: &Env) -> ApiResult {
    let declared = req.headers().get("Content-Length").ok().flatten().and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES) {
        return Err(ApiError::PayloadTooLarge { max: MAX_BODY_BYTES });
    }
    let format = BodyFormat::from_content_type(req.headers().get("Content-Type").ok().flatten().as_deref())?;
    let body = req
        .bytes()
        .await
        .map_err(|_| ApiError::InvalidBody { field: None, message: "the body could not be read".into() })?;
    // The catalog comes first: each event is routed as it is parsed, so the
    // error names the first bad event whatever rule it breaks.
    let mut cat = catalog::get(env).await?;
    let mut messages = Vec::new();
    let events = parse_body(format, &body, now_ms(), new_id, |ev| {
        messages.push(resolve(&cat, ev)?);
        Ok(())
    })?;
    // Boards met for the first time are created (with defaults) and marked as
    // holding scores before anything is enqueued, so their order/op are fixed.
    let unknown: Vec<BoardName> = needs_ensure(&cat, &messages);
    if !unknown.is_empty() {
        let (fresh, _) = catalog::apply(env, CatalogOp::EnsureScored { boards: unknown }).await?;
        cat = fresh;
        messages = resolve_all(&cat, &events)?;
    }

    let queue: Queue = env.queue("EVENTS").map_err(|e| internal("queue binding", e))?;
    for chunk in chunks(&messages) {
        if let Err(e) = queue.send_batch(chunk.to_vec()).await {
            // Earlier chunks may already be queued; a client retrying with the
            // same ids is safe (boards dedupe by id), so tell it to retry.
            let _ = internal("queue send", e);
            return Err(ApiError::Overloaded { retry_after_s: 1 });
        }
    }
    let ids: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
    json(202, &json!({ "accepted": events.len(), "ids": ids }))
}

/// An event's message for the Queue: its deliveries by the catalog's rules.
fn resolve(cat: &Catalog, ev: &Event) -> Result<QueuedEvent, ApiError> {
    let to = cat.resolve(ev).map_err(|e| match e {
        ResolveError::Unroutable => ApiError::Unroutable { index: None, event_type: ev.kind.to_string() },
        ResolveError::OutOfRange { board, value } => {
            let s = &cat.boards[&board].settings;
            let bounds = match (s.min, s.max) {
                (Some(lo), Some(hi)) => format!("from {lo} to {hi}"),
                (Some(lo), None) => format!("at least {lo}"),
                (None, Some(hi)) => format!("at most {hi}"),
                (None, None) => "in range".into(),
            };
            ApiError::ValueOutOfRange {
                index: None,
                message: format!("{value} is out of range for board \"{board}\": must be {bounds}"),
            }
        }
    })?;
    Ok(QueuedEvent {
        id: ev.id.to_string(),
        member: ev.member.to_string(),
        ts: ev.ts,
        meta: ev.meta.clone(),
        to,
    })
}

fn resolve_all(cat: &Catalog, events: &[Event]) -> Result<Vec<QueuedEvent>, ApiError> {
    events.iter().enumerate().map(|(i, ev)| resolve(cat, ev).map_err(|e| e.at_index(i))).collect()
}

fn needs_ensure(cat: &Catalog, messages: &[QueuedEvent]) -> Vec<BoardName> {
    let mut out: Vec<BoardName> = Vec::new();
    for d in messages.iter().flat_map(|m| &m.to) {
        let known = cat.boards.get(&d.board).is_some_and(|r| r.scored);
        if !known && !out.contains(&d.board) {
            out.push(d.board.clone());
        }
    }
    out
}

/// Splits messages into `sendBatch` calls within the Queue's limits.
fn chunks(messages: &[QueuedEvent]) -> Vec<&[QueuedEvent]> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, m) in messages.iter().enumerate() {
        let size = serde_json::to_string(m).map(|s| s.len()).unwrap_or(SEND_MAX_BYTES) + 64;
        if i > start && (i - start == SEND_MAX_MESSAGES || bytes + size > SEND_MAX_BYTES) {
            out.push(&messages[start..i]);
            start = i;
            bytes = 0;
        }
        bytes += size;
    }
    if start < messages.len() {
        out.push(&messages[start..]);
    }
    out
}
