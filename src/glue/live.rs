//! `LiveObject`: the WebSocket hub of one board window (e.g. `likes@3/day/live`).
//!
//! It outlives periods: viewers stay connected across a rollover and get a
//! fresh `snapshot`. Sockets are accepted through the hibernation API, so
//! idle viewers cost nothing and keep nothing awake. Board periods push their
//! top here (coalesced to one push per 550 ms by their alarms); the hub sends
//! each viewer an `update` only when its own top `limit` or the total changed.

use std::cell::RefCell;

use serde::{Deserialize, Serialize};
use worker::{
    console_warn, durable_object, Env, Method, Request, Response, Result, State, WebSocket,
    WebSocketIncomingMessage, WebSocketPair,
};

use super::boards::BoardClient;
use super::http::{now_ms, rust_err};
use super::kv;
use crate::core::period::Period;
use crate::protocol::{BoardQuery, BoardSpec, LiveMessage, TopOut, LIVE_MAX_LIMIT};

pub const SPEC_HEADER: &str = "X-Podium-Spec";

/// The order of period keys of one window: dates and `YYYY-Www` sort as
/// text; seasons (`all` = the first, `s2`, `s10`) by number.
fn period_order(key: &str) -> (u64, &str) {
    match crate::core::catalog::parse_season(key) {
        Some(n) => (u64::from(n), ""),
        None if key == "all" => (1, ""),
        None => (0, key),
    }
}

#[derive(Serialize, Deserialize)]
struct Attachment {
    limit: usize,
}

/// The top `limit` a socket asked for when it connected.
fn limit_of(ws: &WebSocket) -> usize {
    ws.deserialize_attachment::<Attachment>().ok().flatten().map_or(10, |a| a.limit)
}

#[derive(Clone, Serialize, Deserialize)]
struct HubState {
    spec: BoardSpec,
    top: TopOut,
}

#[durable_object]
pub struct LiveObject {
    state: State,
    env: Env,
    hub: RefCell<Option<HubState>>,
}

impl LiveObject {
    fn load(&self) -> Result<Option<HubState>> {
        if let Some(h) = self.hub.borrow().as_ref() {
            return Ok(Some(h.clone()));
        }
        let sql = self.state.storage().sql();
        kv::open(&sql)?;
        let hub: Option<HubState> = kv::get(&sql, "hub")?.and_then(|v| serde_json::from_str(&v).ok());
        *self.hub.borrow_mut() = hub.clone();
        Ok(hub)
    }

    fn save(&self, hub: HubState) -> Result<()> {
        let text = serde_json::to_string(&hub).map_err(rust_err)?;
        kv::put(&self.state.storage().sql(), "hub", &text)?;
        *self.hub.borrow_mut() = Some(hub);
        Ok(())
    }

    /// Asks a board period for its top, which also makes it push changes
    /// here. A sharded period: every shard is asked to push, and the top is
    /// the shards' merged top.
    async fn watch(&self, spec: &BoardSpec) -> Result<TopOut> {
        if !spec.is_sharded() {
            let board = BoardClient::of(&self.env, spec).map_err(|_| rust_err("board stub"))?;
            return board.watch(spec).await.map_err(|_| rust_err("board did not answer watch"));
        }
        let env = &self.env;
        futures_util::future::try_join_all(
            spec.every_shard().into_iter().map(|s| async move { BoardClient::of(env, &s)?.watch(&s).await }),
        )
        .await
        .map_err(|_| rust_err("a shard did not answer watch"))?;
        self.merged_top(spec).await
    }

    /// The top of a sharded period: its shards' tops merged (`glue::shards`).
    async fn merged_top(&self, spec: &BoardSpec) -> Result<TopOut> {
        let q = BoardQuery::Top { offset: 0, limit: LIVE_MAX_LIMIT, ties: spec.ties };
        let out = super::shards::query(&self.env, spec, q).await.map_err(|_| rust_err("sharded top"))?;
        Ok(TopOut { period: spec.period.clone(), total: out.total, entries: out.entries })
    }

    fn send(&self, ws: &WebSocket, limit: usize, kind: &str, hub: &HubState) {
        let entries = &hub.top.entries[..hub.top.entries.len().min(limit)];
        let msg = LiveMessage {
            kind,
            board: &hub.spec.board,
            window: hub.spec.window,
            period: &hub.top.period,
            total: hub.top.total,
            entries,
        };
        if let Err(e) = ws.send(&msg) {
            // A broken socket: drop it; the viewer reconnects.
            console_warn!("dropping a live socket: {e}");
            let _ = ws.close(Some(1011), Some("send failed"));
        }
    }

    fn broadcast(&self, kind: &str, hub: &HubState, old: Option<&TopOut>) {
        for ws in self.state.get_websockets() {
            let limit = limit_of(&ws);
            let changed = match old {
                None => true,
                Some(old) => {
                    let cut = |t: &TopOut| t.entries.iter().take(limit).cloned().collect::<Vec<_>>();
                    old.total != hub.top.total || cut(old) != cut(&hub.top)
                }
            };
            if changed {
                self.send(&ws, limit, kind, hub);
            }
        }
    }

    /// Wakes at the end of the current period so viewers see the next one begin.
    async fn schedule_rollover(&self, spec: &BoardSpec) -> Result<()> {
        if let Some(p) = Period::parse(spec.window, &spec.period) {
            let mut end = p.end_ms(&spec.tz);
            // a merged push waiting for its gap keeps its earlier alarm
            let sql = self.state.storage().sql();
            if kv::get(&sql, "merge_pending")?.is_some() {
                let last: i64 = kv::get(&sql, "merged_at")?.and_then(|v| v.parse().ok()).unwrap_or(0);
                end = end.min(last + MERGE_GAP_MS);
            }
            if end < i64::MAX && !self.state.get_websockets().is_empty() {
                self.state.storage().set_alarm(super::http::alarm_at(end)).await?;
            }
        }
        Ok(())
    }

    async fn open_socket(&self, req: Request) -> Result<Response> {
        // A hub holds at most this many sockets (the platform's hard cap is
        // 32,768 hibernated sockets per object; a broadcast is one loop of
        // sends). More viewers are refused until the live fan-out over many
        // hubs exists (issue 13).
        let cap =
            self.env.var("LIVE_MAX_VIEWERS").ok().and_then(|v| v.to_string().parse().ok()).unwrap_or(10_000);
        if self.state.get_websockets().len() >= cap {
            return super::http::error_response(&crate::error::ApiError::Overloaded { retry_after_s: 30 });
        }
        let spec: BoardSpec = req
            .headers()
            .get(SPEC_HEADER)?
            .and_then(|h| serde_json::from_str(&h).ok())
            .ok_or_else(|| rust_err("connect without a spec"))?;
        let limit: usize = req
            .url()?
            .query_pairs()
            .find(|(k, _)| k == "limit")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(10);
        let top = self.watch(&spec).await?;
        let old = self.load()?;
        let rolled = old.as_ref().is_some_and(|h| h.spec.period != spec.period);
        let fresh = HubState { spec: spec.clone(), top };
        // The saved top is what the viewers already here last got, and the
        // board's next push is compared with it: a change the new viewer's
        // snapshot already holds must still reach them.
        let seen = match old {
            Some(h) if !rolled && !self.state.get_websockets().is_empty() => h.top,
            _ => fresh.top.clone(),
        };
        self.save(HubState { spec: spec.clone(), top: seen })?;
        if rolled {
            self.broadcast("snapshot", &fresh, None);
        }

        let pair = WebSocketPair::new()?;
        let server = pair.server;
        self.state.accept_web_socket(&server);
        server.serialize_attachment(Attachment { limit })?;
        self.send(&server, limit, "snapshot", &fresh);
        self.schedule_rollover(&spec).await?;
        Response::from_websocket(pair.client)
    }

    /// A new period began that no clock can tell (a season): viewers get
    /// its snapshot now, and pushes from earlier periods are ignored.
    async fn roll(&self, spec: BoardSpec) -> Result<()> {
        if self.load()?.is_none() {
            return Ok(());
        }
        let top = self.watch(&spec).await?;
        let hub = HubState { spec, top };
        self.save(hub.clone())?;
        self.broadcast("snapshot", &hub, None);
        Ok(())
    }

    async fn publish(&self, top: TopOut) -> Result<usize> {
        let Some(old) = self.load()? else { return Ok(0) };
        if period_order(&top.period) < period_order(&old.spec.period) {
            // A late event for a past period: nobody watches that one.
            return Ok(0);
        }
        if old.spec.is_sharded() {
            // One shard changed: the viewers get the merged top, at most
            // every MERGE_GAP_MS (each shard spaces its own pushes, but N
            // shards would push N times as often).
            let mut spec = old.spec.clone();
            spec.period = top.period.clone();
            let sql = self.state.storage().sql();
            let last: i64 = kv::get(&sql, "merged_at")?.and_then(|v| v.parse().ok()).unwrap_or(0);
            let due = last + MERGE_GAP_MS;
            if now_ms() < due {
                kv::put(&sql, "merge_pending", &serde_json::to_string(&spec).map_err(rust_err)?)?;
                let storage = self.state.storage();
                if storage.get_alarm().await?.is_none_or(|at| at > due) {
                    storage.set_alarm(super::http::alarm_at(due)).await?;
                }
                return Ok(self.state.get_websockets().len());
            }
            return self.push_merged(spec, old).await;
        }
        let kind = if top.period == old.spec.period { "update" } else { "snapshot" };
        let mut spec = old.spec.clone();
        spec.period = top.period.clone();
        let hub = HubState { spec, top };
        self.save(hub.clone())?;
        self.broadcast(kind, &hub, (kind == "update").then_some(&old.top));
        Ok(self.state.get_websockets().len())
    }
}

/// The least time between two pushes of a sharded board's merged top.
const MERGE_GAP_MS: i64 = 500;

impl LiveObject {
    /// Reads the merged top of sharded period `spec` and sends it to the
    /// viewers whose part of it changed.
    async fn push_merged(&self, spec: BoardSpec, old: HubState) -> Result<usize> {
        let sql = self.state.storage().sql();
        kv::put(&sql, "merged_at", &now_ms().to_string())?;
        kv::delete(&sql, "merge_pending")?;
        let top = self.merged_top(&spec).await?;
        let kind = if spec.period == old.spec.period { "update" } else { "snapshot" };
        let hub = HubState { spec, top };
        self.save(hub.clone())?;
        self.broadcast(kind, &hub, (kind == "update").then_some(&old.top));
        Ok(self.state.get_websockets().len())
    }

    /// A merged push that waited for its gap, if one is due.
    async fn pending_merge(&self) -> Result<()> {
        let sql = self.state.storage().sql();
        let Some(spec) = kv::get(&sql, "merge_pending")?.and_then(|v| serde_json::from_str(&v).ok()) else {
            return Ok(());
        };
        match self.load()? {
            Some(old) => self.push_merged(spec, old).await.map(|_| ()),
            None => kv::delete(&sql, "merge_pending"),
        }
    }
}

impl worker::DurableObject for LiveObject {
    fn new(state: State, env: Env) -> Self {
        LiveObject { state, env, hub: RefCell::new(None) }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        match (req.method(), req.path().as_str()) {
            (Method::Get, "/connect") => self.open_socket(req).await,
            (Method::Post, "/publish") => {
                let top: TopOut = req.json().await?;
                let viewers = self.publish(top).await?;
                Response::from_json(&serde_json::json!({ "viewers": viewers }))
            }
            (Method::Post, "/roll") => {
                let spec: BoardSpec = req.json().await?;
                self.roll(spec).await?;
                Response::from_json(&serde_json::json!({ "ok": true }))
            }
            (Method::Post, "/wipe") => {
                for ws in self.state.get_websockets() {
                    let _ = ws.close(Some(4404), Some("board deleted"));
                }
                self.state.storage().delete_all().await?;
                *self.hub.borrow_mut() = None;
                Response::from_json(&serde_json::json!({ "wiped": true }))
            }
            _ => Response::error("not found", 404),
        }
    }

    async fn alarm(&self) -> Result<Response> {
        self.pending_merge().await?;
        let Some(old) = self.load()? else { return Response::ok("idle") };
        if old.spec.window == crate::core::Window::All {
            // Seasons roll by `roll`, not by the clock.
            return Response::ok("no rollover");
        }
        if self.state.get_websockets().is_empty() {
            return Response::ok("no viewers");
        }
        let current = Period::of(old.spec.window, now_ms(), &old.spec.tz).key();
        if current != old.spec.period {
            let mut spec = old.spec.clone();
            spec.period = current;
            let top = self.watch(&spec).await?;
            let hub = HubState { spec: spec.clone(), top };
            self.save(hub.clone())?;
            self.broadcast("snapshot", &hub, None);
            self.schedule_rollover(&spec).await?;
        } else {
            self.schedule_rollover(&old.spec).await?;
        }
        Response::ok("rolled")
    }

    async fn websocket_message(&self, ws: WebSocket, message: WebSocketIncomingMessage) -> Result<()> {
        // Viewers only listen; a "ping" gets a "pong" so clients can check liveness.
        if let WebSocketIncomingMessage::String(s) = message {
            if s == "ping" {
                let _ = ws.send_with_str("pong");
            }
        }
        Ok(())
    }

    async fn websocket_close(
        &self,
        ws: WebSocket,
        _code: usize,
        _reason: String,
        _clean: bool,
    ) -> Result<()> {
        let _ = ws.close(Some(1000), Some("bye"));
        Ok(())
    }

    async fn websocket_error(&self, ws: WebSocket, _error: worker::Error) -> Result<()> {
        let _ = ws.close(Some(1011), Some("error"));
        Ok(())
    }
}
