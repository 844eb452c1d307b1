//! `POST /v1/events`: auth, parse, route, then hand the whole request to an
//! intake object (glue/intake.rs). A request is all or nothing: every event
//! is parsed and routed before anything is written, and 202 is returned only
//! once the intake committed every packed message in one transaction; it
//! forwards them to the Queue.

use serde_json::json;
use worker::{Env, Request};

use super::catalog;
use super::faults::faults_on;
use super::http::{internal, raw_json, read_body, ApiResult};
use super::intake::{self, shard_name};
use super::platform::{new_event_id, now_ms};
use crate::core::catalog::{AutoCreate, Catalog, Delivered, ResolveError};
use crate::domain::event::{parse_body, MAX_BODY_BYTES};
use crate::domain::IdempotencyKey;
use crate::domain::{BoardName, BodyFormat, Event};
use crate::error::ApiError;
use crate::protocol::{pack_partitioned, IntakeCommand, IntakeReply, IntakeRequest, QueuedEvent};

pub async fn post_events(mut req: Request, env: &Env, holder: &str) -> ApiResult {
    // `?wait=applied` (API 1.1): answer once the events are applied, with standings.
    let wait = match super::http::Query::of(&req)?.get("wait") {
        None => false,
        Some("applied") => true,
        Some(_) => {
            return Err(ApiError::InvalidParameter {
                field: "wait".into(),
                message: "must be \"applied\"".into(),
            })
        }
    };
    let idempotency = match req.headers().get("Idempotency-Key").ok().flatten() {
        Some(k) => Some(IdempotencyKey::parse(&k, holder)?),
        None => None,
    };
    // The content type is checked before the body is read (415 before 413
    // only when the size is not declared).
    let declared =
        req.headers().get("Content-Length").ok().flatten().and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(ApiError::PayloadTooLarge { max: MAX_BODY_BYTES });
    }
    let format = BodyFormat::from_content_type(req.headers().get("Content-Type").ok().flatten().as_deref())?;
    let body = read_body(&mut req, MAX_BODY_BYTES).await?;
    // Routes come first: each event is routed as it is parsed, so the error
    // names the first bad event whatever rule it breaks. The records of the
    // boards the events reach (generation, bounds) are looked up next, by
    // name: no step reads more of the catalog than this request names.
    let routes = catalog::get(env, &[]).await?;
    let mut messages = Vec::new();
    let now = now_ms();
    let parsed = parse_body(format, &body, now, new_event_id, |ev| {
        messages.push(resolve(&routes, ev)?);
        Ok(())
    });
    let names = board_names(&messages);
    let events = match parsed {
        Ok(events) => events,
        // An event before the one that failed may break its board's bounds.
        Err(e) => {
            let cat = catalog::get(env, &names).await?;
            return Err(first_out_of_range(&cat, &messages).unwrap_or(e));
        }
    };
    if wait && events.len() > super::wait::WAIT_MAX_EVENTS {
        return Err(ApiError::TooManyEvents { max: super::wait::WAIT_MAX_EVENTS });
    }
    // Boards met for the first time are created (with defaults) and marked as
    // holding scores before anything is enqueued, so their order/op are
    // fixed; in the same call to the catalog as their lookup, and only if
    // the request's values are within their bounds (a request refused
    // changes nothing).
    let within = Delivered::spans(messages.iter().flat_map(|m| &m.to));
    let auto = || {
        AutoCreate::parse(
            env.var("AUTO_CREATE_BOARDS").ok().map(|v| v.to_string()).as_deref(),
            env.var("AUTO_CREATE_MAX").ok().map(|v| v.to_string()).as_deref(),
        )
    };
    // The marks this request makes stay tentative until it is answered: if
    // it is refused after this (the intake fails), it takes them back.
    let token = super::platform::new_id();
    let boards = catalog::scoring(env, &names, within, auto, &token).await.map_err(|e| {
        // Name the first event that would have created the refused board.
        match &e {
            ApiError::NotAutoCreated { board, .. } => {
                let i = messages.iter().position(|m| m.to.iter().any(|d| d.board.as_str() == board));
                match i {
                    Some(i) => e.at_index(i),
                    None => e,
                }
            }
            _ => e,
        }
    })?;
    // Routed again by the routes that named the boards (a copy of them
    // refreshed meanwhile could name others, never looked up or marked).
    let cat = Catalog { boards, routes: routes.routes };
    let (messages, reply) = match enqueue(&req, env, &cat, &events, now, idempotency).await {
        Ok(done) => done,
        Err(e) => {
            catalog::undo_marks(env, &cat.boards, &token).await;
            return Err(e);
        }
    };
    if wait {
        return super::wait::answer(env, &cat, &messages, now, &reply.answer).await;
    }
    raw_json(202, reply.answer)
}

/// Routes `events` by `cat` and hands them to an intake object: `Ok` once
/// it committed them all (it forwards them to the Queue), with the answer.
async fn enqueue(
    req: &Request,
    env: &Env,
    cat: &Catalog,
    events: &[Event],
    now: i64,
    idempotency: Option<IdempotencyKey>,
) -> Result<(Vec<QueuedEvent>, IntakeReply), ApiError> {
    let messages = resolve_all(cat, events)?;
    let ids: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
    let answer = serde_json::to_string(&json!({ "accepted": events.len(), "ids": ids }))
        .map_err(|e| internal("answer", e))?;
    let packs = pack_partitioned(&messages, now, super::intake::event_queues(env))
        .map_err(|e| internal("pack", e))?;
    // Test faults (off unless PODIUM_TEST_FAULTS=1): a Queue that refuses
    // part-way, an intake that fails part-way through its write.
    let fault = |name: &str| -> Option<u32> {
        faults_on(env).then(|| req.headers().get(name).ok().flatten()?.parse().ok()).flatten()
    };
    let test_refuse = fault("X-Podium-Test-Refuse").unwrap_or(0);
    let test_fail_after = fault("X-Podium-Test-Intake-Fail");
    let idempotency = idempotency.map(|k| k.scoped());
    let shard = shard_name(idempotency.as_deref(), js_sys::Math::random(), intake::intake_shards(env));
    let stub = env
        .durable_object("INTAKE")
        .and_then(|ns| ns.get_by_name(&shard))
        .map_err(|e| internal("intake stub", e))?;
    let cmd =
        IntakeCommand::Accept(IntakeRequest { packs, idempotency, answer, test_refuse, test_fail_after });
    // Nothing is enqueued unless the intake committed the whole request; if it
    // did not answer, the client may retry (with or without ids) safely.
    let reply: IntakeReply =
        intake::call(&stub, cmd).await.map_err(|_| ApiError::Overloaded { retry_after_s: 1 })?;
    Ok((messages, reply))
}

/// An event's message for the Queue: its deliveries by the catalog's rules.
fn resolve(cat: &Catalog, ev: &Event) -> Result<QueuedEvent, ApiError> {
    let to = cat.resolve(ev).map_err(|e| match e {
        ResolveError::Unroutable => ApiError::Unroutable { index: None, event_type: ev.kind.to_string() },
        ResolveError::Unfilled { template } => ApiError::Unfilled { index: None, template },
        ResolveError::OutOfRange { board, value } => out_of_range(cat, &board, value),
    })?;
    Ok(QueuedEvent {
        id: ev.id.to_string(),
        member: ev.member.to_string(),
        ts: ev.ts,
        sub: ev.sub,
        meta: ev.meta.clone(),
        to,
    })
}

fn out_of_range(cat: &Catalog, board: &BoardName, value: f64) -> ApiError {
    let (min, max) = cat.boards.get(board).map_or((None, None), |r| (r.settings.min, r.settings.max));
    let bounds = match (min, max) {
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

/// The first of `messages` (routed without the boards' records) that a
/// board's bounds refuse.
fn first_out_of_range(cat: &Catalog, messages: &[QueuedEvent]) -> Option<ApiError> {
    messages.iter().enumerate().find_map(|(i, m)| {
        m.to.iter()
            .find(|d| cat.boards.get(&d.board).is_some_and(|r| !r.settings.in_bounds(d.value)))
            .map(|d| out_of_range(cat, &d.board, d.value).at_index(i))
    })
}

/// The boards `messages` reach, each once, in the order first reached.
fn board_names(messages: &[QueuedEvent]) -> Vec<BoardName> {
    let mut seen = std::collections::HashSet::new();
    messages.iter().flat_map(|m| &m.to).filter(|d| seen.insert(&d.board)).map(|d| d.board.clone()).collect()
}

fn resolve_all(cat: &Catalog, events: &[Event]) -> Result<Vec<QueuedEvent>, ApiError> {
    events.iter().enumerate().map(|(i, ev)| resolve(cat, ev).map_err(|e| e.at_index(i))).collect()
}
