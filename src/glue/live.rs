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
use super::kv;
use super::platform::{now_ms, rust_err};
use crate::core::period::Period;
use crate::error::ApiError;
use crate::protocol::{
    Ack, BoardQuery, BoardSpec, LiveCommand, LiveMessage, PushKind, TopOut, Viewers, LIVE_MAX_LIMIT,
};

pub const SPEC_HEADER: &str = "X-Podium-Spec";

/// The one caller of live objects: each method sends one `LiveCommand` and
/// reads its one reply type, and `connect` forwards a viewer's upgrade, so
/// no call site spells a path.
pub struct LiveClient(worker::Stub);

impl LiveClient {
    /// The root of board window `spec` (`{board}@{gen}/{window}/live`).
    pub fn root(env: &Env, spec: &BoardSpec) -> Result<LiveClient> {
        env.durable_object("LIVE")?.get_by_name(&spec.live_object_name()).map(LiveClient)
    }

    /// Hub `k` of that root (`…/live#k`).
    pub fn hub(env: &Env, spec: &BoardSpec, k: usize) -> Result<LiveClient> {
        env.durable_object("LIVE")?.get_by_name(&format!("{}#{k}", spec.live_object_name())).map(LiveClient)
    }

    async fn send<T: serde::de::DeserializeOwned>(
        &self,
        cmd: &LiveCommand,
    ) -> std::result::Result<T, ApiError> {
        super::objects::call_object(&self.0, "/cmd", cmd).await
    }

    pub async fn publish(&self, top: TopOut) -> std::result::Result<Viewers, ApiError> {
        self.send(&LiveCommand::Publish(top)).await
    }

    pub async fn roll(&self, spec: &BoardSpec) -> std::result::Result<Ack, ApiError> {
        self.send(&LiveCommand::Roll(spec.clone())).await
    }

    async fn relay(&self, cmd: &LiveCommand) -> std::result::Result<Viewers, ApiError> {
        self.send(cmd).await
    }

    async fn left(&self, hub: usize, viewers: usize) -> std::result::Result<Ack, ApiError> {
        self.send(&LiveCommand::Left { hub, viewers }).await
    }

    pub async fn wipe(&self) -> std::result::Result<Ack, ApiError> {
        self.send(&LiveCommand::Wipe).await
    }

    /// Hands a viewer's WebSocket upgrade for board window `spec`, top
    /// `limit`, to this object (`hub`: the root forwarding it to hub `k`);
    /// its answer, the upgrade, goes back to the viewer as is.
    pub async fn connect(&self, spec: &BoardSpec, limit: usize, hub: Option<usize>) -> Result<Response> {
        let mut fwd = Request::new(&format!("https://object/connect?limit={limit}"), Method::Get)?;
        let h = fwd.headers_mut()?;
        h.set("Upgrade", "websocket")?;
        h.set(SPEC_HEADER, &serde_json::to_string(spec).map_err(rust_err)?)?;
        if let Some(k) = hub {
            h.set(HUB_HEADER, &k.to_string())?;
        }
        self.0.fetch_with_request(fwd).await
    }
}

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

    fn send(&self, ws: &WebSocket, limit: usize, kind: PushKind, hub: &HubState) {
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

    fn broadcast(&self, kind: PushKind, hub: &HubState, old: Option<&TopOut>) {
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
            if end < i64::MAX && self.viewers()? > 0 {
                self.state.storage().set_alarm(super::platform::alarm_at(end)).await?;
            }
        }
        Ok(())
    }

    async fn open_socket(&self, req: Request) -> Result<Response> {
        // `ping` → `pong` by the platform: a viewer's keep-alive wakes nothing.
        let pair = worker::worker_sys::WebSocketRequestResponsePair::new("ping", "pong")
            .map_err(|_| rust_err("auto-response"))?;
        self.state.set_websocket_auto_response(&pair);
        let as_hub: Option<usize> = req.headers().get(HUB_HEADER)?.and_then(|h| h.parse().ok());
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
        if let Some(k) = as_hub {
            kv::open(&self.state.storage().sql())?;
            kv::put(&self.state.storage().sql(), "hub_index", &k.to_string())?;
        } else {
            // The root: a window's viewers, at most `LIVE_MAX_VIEWERS`, are
            // spread over hubs of at most `LIVE_HUB_CAP` each, the root
            // holding the first ones itself.
            let max = self.var("LIVE_MAX_VIEWERS", DEFAULT_MAX_VIEWERS);
            let mut hubs = self.hubs()?;
            hubs[0] = self.state.get_websockets().len();
            if hubs.iter().sum::<usize>() >= max {
                return super::http::error_response(&crate::error::ApiError::Overloaded {
                    retry_after_s: 30,
                });
            }
            let cap = self.var("LIVE_HUB_CAP", DEFAULT_HUB_CAP).max(1);
            if hubs[0] >= cap {
                let k = hubs.iter().skip(1).position(|n| *n < cap).map_or(hubs.len(), |i| i + 1);
                if k == hubs.len() {
                    hubs.push(0);
                }
                hubs[k] += 1;
                self.save_hubs(&hubs)?;
                return self.forward_to_hub(&spec, limit, k).await;
            }
        }
        let top = self.watch(&spec).await?;
        let old = self.load()?;
        let rolled = old.as_ref().is_some_and(|h| h.spec.period != spec.period);
        let fresh = HubState { spec: spec.clone(), top };
        // The saved top is what the viewers already here last got, and the
        // board's next push is compared with it: a change the new viewer's
        // snapshot already holds must still reach them.
        let seen = match old {
            Some(h) if !rolled && self.viewers()? > 0 => h.top,
            _ => fresh.top.clone(),
        };
        self.save(HubState { spec: spec.clone(), top: seen })?;
        if rolled {
            self.fan_out(PushKind::Snapshot, &fresh, None).await?;
        }

        let pair = WebSocketPair::new()?;
        let server = pair.server;
        self.state.accept_web_socket(&server);
        server.serialize_attachment(Attachment { limit })?;
        self.send(&server, limit, PushKind::Snapshot, &fresh);
        if as_hub.is_none() {
            // Rollovers are the root's: it relays the new period's snapshot.
            self.schedule_rollover(&spec).await?;
        }
        // Which hub holds the socket (0: the root), for operators and tests.
        let resp = Response::from_websocket(pair.client)?;
        resp.headers().set(HUB_HEADER, &as_hub.unwrap_or(0).to_string())?;
        Ok(resp)
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
        self.fan_out(PushKind::Snapshot, &hub, None).await?;
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
                    storage.set_alarm(super::platform::alarm_at(due)).await?;
                }
                return Ok(self.state.get_websockets().len());
            }
            return self.push_merged(spec, old).await;
        }
        let mut spec = old.spec.clone();
        spec.period = top.period.clone();
        self.show(HubState { spec, top }, old).await
    }

    /// Makes `hub` the top the viewers have, replacing `old`: within the
    /// same period an `update` to the viewers whose part of it changed; in a
    /// new period a `snapshot` to all.
    async fn show(&self, hub: HubState, old: HubState) -> Result<usize> {
        let kind = if hub.spec.period == old.spec.period { PushKind::Update } else { PushKind::Snapshot };
        self.save(hub.clone())?;
        self.fan_out(kind, &hub, (kind == PushKind::Update).then_some(&old.top)).await
    }
}

/// Sent with a viewer's connect forwarded by the root to hub `k`.
const HUB_HEADER: &str = "X-Podium-Hub";
/// Viewers of one board window, over all its hubs (`LIVE_MAX_VIEWERS`).
const DEFAULT_MAX_VIEWERS: usize = 1_000_000;
/// Viewers per hub (`LIVE_HUB_CAP`): a broadcast is one loop of sends on
/// the hub's thread, and the platform's cap is 32,768 sockets per object.
const DEFAULT_HUB_CAP: usize = 2_000;

impl LiveObject {
    fn var(&self, name: &str, default: usize) -> usize {
        self.env.var(name).ok().and_then(|v| v.to_string().parse().ok()).unwrap_or(default)
    }

    /// The root's count of viewers sent to each hub (index 0: its own).
    fn hubs(&self) -> Result<Vec<usize>> {
        let sql = self.state.storage().sql();
        kv::open(&sql)?;
        let mut hubs: Vec<usize> =
            kv::get(&sql, "hubs")?.and_then(|v| serde_json::from_str(&v).ok()).unwrap_or_default();
        if hubs.is_empty() {
            hubs.push(0);
        }
        Ok(hubs)
    }

    /// Viewers of this window: a hub's own; the root's and all its hubs'.
    fn viewers(&self) -> Result<usize> {
        kv::open(&self.state.storage().sql())?;
        let own = self.state.get_websockets().len();
        if kv::get(&self.state.storage().sql(), "hub_index")?.is_some() {
            return Ok(own);
        }
        Ok(own + self.hubs()?.iter().skip(1).sum::<usize>())
    }

    fn save_hubs(&self, hubs: &[usize]) -> Result<()> {
        kv::put(&self.state.storage().sql(), "hubs", &serde_json::to_string(hubs).map_err(rust_err)?)
    }

    /// Hands a viewer's connect to hub `k`; its answer (the upgrade) goes back as is.
    async fn forward_to_hub(&self, spec: &BoardSpec, limit: usize, k: usize) -> Result<Response> {
        LiveClient::hub(&self.env, spec, k)?.connect(spec, limit, Some(k)).await
    }

    /// Sends a change to this root's viewers and relays it to every hub that
    /// has some; the viewers there are, in all (hub counts corrected by
    /// their answers, so an emptied hub is relayed nothing more).
    async fn fan_out(&self, kind: PushKind, hub: &HubState, old: Option<&TopOut>) -> Result<usize> {
        self.broadcast(kind, hub, old);
        let mut hubs = self.hubs()?;
        hubs[0] = self.state.get_websockets().len();
        let relay = LiveCommand::Relay { kind, spec: hub.spec.clone(), top: hub.top.clone() };
        let calls = hubs.iter().enumerate().skip(1).filter(|(_, n)| **n > 0).map(|(k, _)| {
            let relay = &relay;
            async move {
                let v = LiveClient::hub(&self.env, &hub.spec, k)?
                    .relay(relay)
                    .await
                    .map_err(|_| rust_err("hub did not take the relay"))?;
                Ok::<(usize, usize), worker::Error>((k, v.viewers))
            }
        });
        for r in futures_util::future::join_all(calls).await {
            match r {
                Ok((k, n)) => {
                    if let Some(c) = hubs.get_mut(k) {
                        *c = n;
                    }
                }
                Err(e) => console_warn!("live relay: {e}"),
            }
        }
        self.save_hubs(&hubs)?;
        Ok(hubs.iter().sum())
    }

    /// A hub whose viewer left tells its root how many it has now (so the
    /// root sends new viewers here again, and relays nothing to an empty hub).
    async fn tell_root_left(&self, gone: &WebSocket) {
        let sql = self.state.storage().sql();
        let Ok(Some(k)) = kv::get(&sql, "hub_index").map(|v| v.and_then(|v| v.parse::<usize>().ok())) else {
            return;
        };
        let Ok(Some(h)) = self.load() else { return };
        let Ok(root) = LiveClient::root(&self.env, &h.spec) else { return };
        // the closing socket may still be listed
        let viewers = self.state.get_websockets().iter().filter(|w| *w != gone).count();
        if root.left(k, viewers).await.is_err() {
            console_warn!("live hub {k}: its root did not hear a viewer leave");
        }
    }

    /// A hub takes the root's change: its viewers whose part of it changed
    /// get it (compared with what this hub sent last).
    fn relayed(&self, kind: PushKind, hub: HubState) -> Result<usize> {
        let old = self.load()?;
        self.save(hub.clone())?;
        let before = old.as_ref().filter(|o| o.spec.period == hub.spec.period).map(|o| &o.top);
        let kind =
            if kind == PushKind::Update && before.is_some() { PushKind::Update } else { PushKind::Snapshot };
        self.broadcast(kind, &hub, if kind == PushKind::Update { before } else { None });
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
        self.show(HubState { spec, top }, old).await
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
            (Method::Post, "/cmd") => match req.json::<LiveCommand>().await? {
                LiveCommand::Publish(top) => {
                    Response::from_json(&Viewers { viewers: self.publish(top).await? })
                }
                LiveCommand::Roll(spec) => {
                    self.roll(spec).await?;
                    Response::from_json(&Ack { ok: true })
                }
                LiveCommand::Relay { kind, spec, top } => {
                    Response::from_json(&Viewers { viewers: self.relayed(kind, HubState { spec, top })? })
                }
                LiveCommand::Left { hub, viewers } => {
                    let mut hubs = self.hubs()?;
                    if let Some(c) = hubs.get_mut(hub) {
                        *c = viewers;
                        self.save_hubs(&hubs)?;
                    }
                    Response::from_json(&Ack { ok: true })
                }
                LiveCommand::Wipe => {
                    // The root wipes its hubs too.
                    if let Some(h) = self.load()? {
                        for k in 1..self.hubs()?.len() {
                            if let Ok(hub) = LiveClient::hub(&self.env, &h.spec, k) {
                                if hub.wipe().await.is_err() {
                                    console_warn!("live hub {k} was not wiped");
                                }
                            }
                        }
                    }
                    for ws in self.state.get_websockets() {
                        let _ = ws.close(Some(4404), Some("board deleted"));
                    }
                    self.state.storage().delete_all().await?;
                    *self.hub.borrow_mut() = None;
                    Response::from_json(&Ack { ok: true })
                }
            },
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
        if self.viewers()? == 0 {
            return Response::ok("no viewers");
        }
        let current = Period::of(old.spec.window, now_ms(), &old.spec.tz).key();
        if current != old.spec.period {
            let mut spec = old.spec.clone();
            spec.period = current;
            let top = self.watch(&spec).await?;
            let hub = HubState { spec: spec.clone(), top };
            self.save(hub.clone())?;
            self.fan_out(PushKind::Snapshot, &hub, None).await?;
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
        self.tell_root_left(&ws).await;
        Ok(())
    }

    async fn websocket_error(&self, ws: WebSocket, _error: worker::Error) -> Result<()> {
        let _ = ws.close(Some(1011), Some("error"));
        self.tell_root_left(&ws).await;
        Ok(())
    }
}
