//! `POST /v1/events?wait=applied` (API 1.1, read your write): after the
//! request is durable, wait until every board period it feeds has applied
//! its events (asking each for the ids it still misses), then answer the
//! members' new standings: a game submits a score and shows the new rank
//! without a second request. At most `WAIT_MAX_MS`; then it answers with
//! what is known and `"applied": false`.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;
use worker::Env;

use super::boards::{spec, BoardClient};
use super::http::{internal, json, ApiResult};
use super::platform::{now_ms, retention};
use crate::core::catalog::Catalog;
use crate::core::Window;
use crate::domain::event::MAX_FUTURE_MS;
use crate::protocol::{BoardQuery, BoardSpec, QueuedEvent};

/// A waiting request carries at most this many events.
pub const WAIT_MAX_EVENTS: usize = 100;
const WAIT_MAX_MS: i64 = 10_000;

/// One board period the request feeds: which ids it must apply, and whose
/// standings to report.
struct Target {
    spec: BoardSpec,
    ids: Vec<String>,
    members: Vec<String>,
}

#[derive(Serialize, Clone)]
struct Standing {
    board: String,
    window: Window,
    period: String,
    member: String,
    rank: u64,
    #[serde(serialize_with = "crate::protocol::score")]
    score: f64,
    /// On boards with a `tiebreak`, as their entries.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "crate::protocol::opt_score")]
    subscore: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    prev_rank: Option<u64>,
}

/// The board periods `events` feed, and for each event in order the
/// (object, member) pairs whose standings it answers: one standing per
/// event, board and window (API 1.1), so two events of one member on one
/// board give two standings (the same one: both are applied).
fn targets(
    cat: &Catalog,
    env: &Env,
    events: &[QueuedEvent],
    at: i64,
) -> (Vec<Target>, Vec<(String, String)>) {
    let now = now_ms();
    let keep = retention(env);
    let mut out: BTreeMap<String, Target> = BTreeMap::new();
    let mut order = Vec::new();
    for ev in events {
        for d in &ev.to {
            let Some(r) = cat.boards.get(&d.board) else { continue };
            for (w, key) in r.landing_periods(ev.ts, at, &keep, now, MAX_FUTURE_MS) {
                // (a sharded board: the member's own shard applies it)
                let s = spec(&d.board, r, w, &key).for_member(&ev.member);
                order.push((s.object_name(), ev.member.clone()));
                let t = out.entry(s.object_name()).or_insert_with(|| Target {
                    spec: s,
                    ids: vec![],
                    members: vec![],
                });
                t.ids.push(ev.id.clone());
                if !t.members.contains(&ev.member) {
                    t.members.push(ev.member.clone());
                }
            }
        }
    }
    (out.into_values().collect(), order)
}

/// Waits for `events` (accepted, with the 202 body `answer`) to be applied,
/// then answers 200 with the standings of each event's member on each board
/// period it fed.
pub async fn answer(env: &Env, cat: &Catalog, events: &[QueuedEvent], at: i64, answer: &str) -> ApiResult {
    let deadline = now_ms() + WAIT_MAX_MS;
    let mut body: Value = serde_json::from_str(answer).map_err(|e| internal("answer", e))?;
    // The ids the answer gives: on a repeated Idempotency-Key, those of the
    // first request (the events it enqueued), not this one's fresh ones.
    let mut events = events.to_vec();
    if let Some(ids) = body.get("ids").and_then(Value::as_array) {
        for (ev, id) in events.iter_mut().zip(ids) {
            if let Some(id) = id.as_str() {
                ev.id = id.to_string();
            }
        }
    }
    let (mut pending, order) = targets(cat, env, &events, at);
    let mut done: Vec<Target> = Vec::new();
    let mut pause: u64 = 20;
    while !pending.is_empty() && now_ms() < deadline {
        let asks = pending.iter().map(|t| async move {
            BoardClient::of(env, &t.spec)?.missing(t.ids.clone()).await.map(|m| m.ids)
        });
        let missing = futures_util::future::join_all(asks).await;
        let mut still = Vec::new();
        for (mut t, m) in pending.into_iter().zip(missing) {
            match m {
                Ok(ids) if ids.is_empty() => done.push(t),
                Ok(ids) => {
                    t.ids = ids;
                    still.push(t);
                }
                Err(_) => still.push(t),
            }
        }
        pending = still;
        if !pending.is_empty() {
            worker::Delay::from(std::time::Duration::from_millis(pause)).await;
            pause = (pause * 2).min(200);
        }
    }
    let applied = pending.is_empty();
    done.extend(pending);
    let mut known: BTreeMap<(String, String), Standing> = BTreeMap::new();
    for t in &done {
        let ties = cat.boards.iter().find(|(n, _)| n.as_str() == t.spec.board).map(|(_, r)| r.settings.ties);
        let ties = ties.unwrap_or_default();
        let name = t.spec.object_name();
        let standing = |member: String, rank, score, subscore, prev_rank| Standing {
            board: t.spec.board.clone(),
            window: t.spec.window,
            period: t.spec.period.clone(),
            member,
            rank,
            score,
            subscore,
            prev_rank,
        };
        // One lookup for the target's members; it leaves hidden members
        // out, so those ask as the member's own read does (API 1.1: a
        // hidden member's own client sees nothing unusual).
        let q = BoardQuery::Lookup { members: t.members.clone(), ties };
        let Ok(out) = super::shards::query(env, &t.spec, q).await else { continue };
        for e in out.entries {
            known.insert(
                (name.clone(), e.member.clone()),
                standing(e.member, e.rank, e.score, e.subscore, e.prev_rank),
            );
        }
        for m in &t.members {
            if known.contains_key(&(name.clone(), m.clone())) {
                continue;
            }
            let q = BoardQuery::Rank { member: m.clone(), ties };
            let Ok(out) = super::shards::query(env, &t.spec, q).await else { continue };
            if let Some(s) = out.standing.filter(|_| out.found) {
                known.insert(
                    (name.clone(), m.clone()),
                    standing(s.member, s.rank, s.score, s.subscore, s.prev_rank),
                );
            }
        }
    }
    let standings: Vec<&Standing> = order.iter().filter_map(|k| known.get(k)).collect();
    body["applied"] = Value::Bool(applied);
    body["standings"] = serde_json::to_value(&standings).map_err(|e| internal("standings", e))?;
    json(200, &body)
}
