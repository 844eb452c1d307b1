//! `IntakeObject`: the durable front of the Queue. An ingest request is
//! answered 202 only once its packed messages are committed here (one SQLite
//! transaction: all of the request or none of it), so a request answered
//! with anything else enqueued nothing, and a request too large for one
//! `sendBatch` (1 MiB against 256 KB) is still all-or-nothing. The object's
//! alarm then forwards the messages to the Queue in order, and retries with
//! backoff while the Queue refuses. A message is deleted only when the
//! consumer confirms that every board it feeds applied it (`Done`); one left
//! unconfirmed is sent again after `REDELIVER_MS`. A message forwarded twice
//! is harmless: boards dedupe by event id.
//!
//! Requests are spread over `SHARDS` objects; a request with an
//! `Idempotency-Key` goes to the shard its key hashes to, which keeps the
//! first answer for 24 hours and gives it again to a repeat.

use std::cell::Cell;

use serde::Deserialize;
use worker::{console_error, durable_object, Env, Method, Request, Response, Result, State};

use super::http::{internal, ApiResult};
use super::objects::call_object_raw;
use super::platform::{alarm_at, now_ms, rust_err};
use super::txn::{write_all, Stmt};
use crate::protocol::{partition_of_pack, Ack, Claimed, IntakeCommand, IntakeReply, IntakeRequest, Recalled};

/// How many intake objects share the ingest load.
pub const SHARDS: u32 = 16;
/// How long an idempotency key's first answer is kept.
pub const IDEMPOTENCY_MS: i64 = 24 * 3600 * 1000;
/// What an `idem` row holds while the request that claimed its key runs
/// (a kept answer is a JSON object, never this).
const CLAIM: &str = "claimed";
/// A claim stands this long: a worker that died mid-request leaves its key
/// claimed until then, and a repeat may run after it.
pub const CLAIM_MS: i64 = 60_000;
/// One `sendBatch` carries at most 100 messages and 256 KB.
const SEND_MAX_MESSAGES: usize = 100;
const SEND_MAX_BYTES: usize = 250_000;

/// The intake object a request goes to: by its idempotency key when it has
/// one (so a repeat finds the first answer: always over the first `SHARDS`,
/// so a change of `INTAKE_SHARDS` never moves a key), else spread by a
/// random draw over `shards` (`INTAKE_SHARDS`, at least `SHARDS`).
pub fn shard_name(idempotency: Option<&str>, random: f64, shards: u32) -> String {
    let shards = shards.max(SHARDS);
    let n = match idempotency {
        // FNV-1a: a stable spread of keys, not a secret (keys are the holder's own).
        Some(k) => k.bytes().fold(0x811c9dc5u32, |h, b| (h ^ b as u32).wrapping_mul(0x01000193)) % SHARDS,
        None => ((random * shards as f64) as u32).min(shards - 1),
    };
    format!("intake-{n}")
}

/// How many intake objects take requests without an idempotency key
/// (`INTAKE_SHARDS`, default and minimum `SHARDS`): each writes every
/// request it takes, so a deployment past a few thousand requests/s adds
/// more (docs/scaling.md).
pub fn intake_shards(env: &Env) -> u32 {
    env.var("INTAKE_SHARDS")
        .ok()
        .and_then(|v| v.to_string().parse().ok())
        .map_or(SHARDS, |n: u32| n.clamp(SHARDS, 4096))
}

#[durable_object]
pub struct IntakeObject {
    state: State,
    env: Env,
    ready: Cell<bool>,
    /// When the alarm is set for, as far as this instance knows.
    alarm_at: Cell<Option<i64>>,
    /// Consecutive failed forwards, for the backoff.
    failures: Cell<u32>,
}

#[derive(Deserialize)]
struct Answer {
    answer: String,
}

#[derive(Deserialize)]
struct Pending {
    seq: f64,
    body: String,
    refuse: f64,
}

#[derive(Deserialize)]
struct Oldest {
    at: Option<f64>,
}

/// A message the consumer has not confirmed this long after it was sent is
/// sent again (a consumer invocation can be lost: under `wrangler dev` a
/// panic resets the wasm instance that runs it, and the local Queue keeps
/// messages in memory only). Boards dedupe by id, so a copy is harmless.
pub const REDELIVER_MS: i64 = 60_000;
/// After this many sends a message is given up: the Queue's own retries
/// have put every copy in the dead-letter queue by then.
const MAX_SENDS: f64 = 5.0;

impl IntakeObject {
    fn open(&self) -> Result<()> {
        if self.ready.get() {
            return Ok(());
        }
        let sql = self.state.storage().sql();
        // `sent_at`: 0 until first sent. `refuse` (test faults only): how
        // many more sends of this message the "Queue" refuses.
        sql.exec(
            "CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL, \
             sent_at INTEGER NOT NULL DEFAULT 0, sends INTEGER NOT NULL DEFAULT 0, \
             refuse INTEGER NOT NULL DEFAULT 0)",
            None,
        )?;
        sql.exec("CREATE INDEX IF NOT EXISTS outbox_sent ON outbox (sent_at)", None)?;
        sql.exec(
            "CREATE TABLE IF NOT EXISTS idem (k TEXT PRIMARY KEY, answer TEXT NOT NULL, at INTEGER NOT NULL)",
            None,
        )?;
        sql.exec("CREATE INDEX IF NOT EXISTS idem_at ON idem (at)", None)?;
        self.ready.set(true);
        Ok(())
    }

    async fn accept(&self, req: IntakeRequest) -> Result<IntakeReply> {
        self.open()?;
        let refuse = req.test_refuse;
        let now = now_ms();
        if let Some(answer) =
            req.idempotency.as_deref().map(|k| self.recall(k)).transpose()?.and_then(|r| r.answer)
        {
            return Ok(IntakeReply { answer, repeat: true });
        }
        let mut stmts = Vec::with_capacity(req.packs.len() + 1);
        for (i, body) in req.packs.into_iter().enumerate() {
            // Test fault: every message but the first is refused `refuse` times,
            // a Queue that gives up part-way through a request.
            let r = if i == 0 { 0 } else { refuse };
            stmts.push(Stmt::new(
                "INSERT INTO outbox (body, refuse) VALUES (?, ?)",
                vec![body.into(), (r as f64).into()],
            ));
        }
        if let Some(k) = req.idempotency {
            stmts.push(Stmt::new(
                "INSERT INTO idem (k, answer, at) VALUES (?, ?, ?) ON CONFLICT(k) DO UPDATE SET \
                 answer = excluded.answer, at = excluded.at",
                vec![k.into(), req.answer.clone().into(), (now as f64).into()],
            ));
        }
        // The alarm is set before the write (a crash between the two leaves an
        // alarm with nothing to do, never messages with no alarm), and checked
        // again after it, in case that alarm already ran while we awaited.
        self.wake(now).await?;
        write_all(&self.state.storage(), stmts, req.test_fail_after.map(|k| k as usize))?;
        self.wake(now).await?;
        Ok(IntakeReply { answer: req.answer, repeat: false })
    }

    fn recall(&self, key: &str) -> Result<Recalled> {
        self.open()?;
        let rows: Vec<Answer> = self
            .state
            .storage()
            .sql()
            .exec(
                "SELECT answer FROM idem WHERE k = ? AND at > ? AND answer <> ?",
                vec![key.into(), ((now_ms() - IDEMPOTENCY_MS) as f64).into(), CLAIM.into()],
            )?
            .to_array()?;
        Ok(Recalled { answer: rows.into_iter().next().map(|a| a.answer) })
    }

    /// The kept answer for `key`; else, unless another request's claim
    /// stands, a claim for this one. One turn of the object, no await: two
    /// requests with one key cannot both claim it.
    fn claim(&self, key: &str) -> Result<Claimed> {
        self.open()?;
        let now = now_ms();
        #[derive(Deserialize)]
        struct Row {
            answer: String,
            at: f64,
        }
        let sql = self.state.storage().sql();
        let rows: Vec<Row> =
            sql.exec("SELECT answer, at FROM idem WHERE k = ?", vec![key.into()])?.to_array()?;
        match rows.into_iter().next() {
            Some(r) if r.answer != CLAIM && r.at as i64 > now - IDEMPOTENCY_MS => {
                return Ok(Claimed { answer: Some(r.answer), busy: false })
            }
            Some(r) if r.answer == CLAIM && r.at as i64 > now - CLAIM_MS => {
                return Ok(Claimed { answer: None, busy: true })
            }
            _ => {}
        }
        sql.exec(
            "INSERT INTO idem (k, answer, at) VALUES (?, ?, ?) ON CONFLICT(k) DO UPDATE SET \
             answer = excluded.answer, at = excluded.at",
            vec![key.into(), CLAIM.into(), (now as f64).into()],
        )?;
        Ok(Claimed { answer: None, busy: false })
    }

    /// The claimed request's first answer: it replaces the claim (and never
    /// a kept answer).
    fn remember(&self, key: &str, answer: &str) -> Result<Ack> {
        self.open()?;
        self.state.storage().sql().exec(
            "INSERT INTO idem (k, answer, at) VALUES (?, ?, ?) ON CONFLICT(k) DO UPDATE SET \
             answer = excluded.answer, at = excluded.at WHERE idem.answer = ?",
            vec![key.into(), answer.into(), (now_ms() as f64).into(), CLAIM.into()],
        )?;
        Ok(Ack { ok: true })
    }

    /// The claimed request was refused: its key is free for a retry.
    fn release(&self, key: &str) -> Result<Ack> {
        self.open()?;
        self.state
            .storage()
            .sql()
            .exec("DELETE FROM idem WHERE k = ? AND answer = ?", vec![key.into(), CLAIM.into()])?;
        Ok(Ack { ok: true })
    }

    /// The consumer applied these messages everywhere: forget them.
    fn done(&self, seqs: Vec<i64>) -> Result<Ack> {
        self.open()?;
        let list = serde_json::to_string(&seqs).map_err(rust_err)?;
        self.state
            .storage()
            .sql()
            .exec("DELETE FROM outbox WHERE seq IN (SELECT value FROM json_each(?))", vec![list.into()])?;
        Ok(Ack { ok: true })
    }

    /// Makes sure the alarm fires by `at`.
    async fn wake(&self, at: i64) -> Result<()> {
        if self.alarm_at.get().is_none_or(|t| t > at) {
            self.state.storage().set_alarm(alarm_at(at)).await?;
            self.alarm_at.set(Some(at));
        }
        Ok(())
    }

    /// Sends every message that is due (never sent, or sent `REDELIVER_MS`
    /// ago and not confirmed), oldest first. Returns when the next one falls
    /// due, if any is left.
    async fn forward(&self, now: i64) -> Result<Option<i64>> {
        self.open()?;
        let sql = self.state.storage().sql();
        let due = (now - REDELIVER_MS) as f64;
        let given_up = sql
            .exec(
                "DELETE FROM outbox WHERE sent_at > 0 AND sent_at <= ? AND sends >= ? RETURNING seq",
                vec![due.into(), MAX_SENDS.into()],
            )?
            .to_array::<serde_json::Value>()?;
        if !given_up.is_empty() {
            console_error!(
                "intake: {} messages unconfirmed after {MAX_SENDS} sends: see the dead-letter queue",
                given_up.len()
            );
        }
        loop {
            let rows: Vec<Pending> = sql
                .exec(
                    "SELECT seq, body, refuse FROM outbox WHERE sent_at <= ? ORDER BY seq LIMIT ?",
                    vec![due.into(), (SEND_MAX_MESSAGES as f64).into()],
                )?
                .to_array()?;
            if rows.is_empty() {
                break;
            }
            let mut take = 0;
            let mut bytes = 0;
            for r in &rows {
                if take > 0 && bytes + r.body.len() > SEND_MAX_BYTES {
                    break;
                }
                bytes += r.body.len();
                take += 1;
            }
            let batch = rows.get(..take).unwrap_or_default();
            let refused = batch.iter().position(|r| r.refuse > 0.0);
            let sendable = batch.get(..refused.unwrap_or(take)).unwrap_or_default();
            if !sendable.is_empty() {
                // Each pack to its ingest partition's queue, in order within each.
                let mut by_queue: std::collections::BTreeMap<u16, Vec<&Pending>> = Default::default();
                for r in sendable {
                    by_queue.entry(partition_of_pack(&r.body)).or_default().push(r);
                }
                for (k, rows) in by_queue {
                    self.send(&self.env.queue(&queue_binding(k))?, &rows).await?;
                }
                let seqs: Vec<f64> = sendable.iter().map(|r| r.seq).collect();
                sql.exec(
                    "UPDATE outbox SET sent_at = ?, sends = sends + 1 WHERE seq IN (SELECT value FROM json_each(?))",
                    vec![(now as f64).into(), serde_json::to_string(&seqs).map_err(rust_err)?.into()],
                )?;
                // Progress: the backoff starts again from its shortest wait.
                self.failures.set(0);
            }
            if let Some(r) = refused.and_then(|i| batch.get(i)) {
                sql.exec("UPDATE outbox SET refuse = refuse - 1 WHERE seq = ?", vec![r.seq.into()])?;
                return Err(rust_err("test fault: the queue refused a message"));
            }
        }
        let oldest: Vec<Oldest> = sql.exec("SELECT MIN(sent_at) AS at FROM outbox", None)?.to_array()?;
        Ok(oldest.first().and_then(|o| o.at).map(|at| at as i64 + REDELIVER_MS))
    }

    /// Sends messages, each stamped with where it came from so the consumer
    /// can confirm it.
    async fn send(&self, queue: &worker::Queue, rows: &[&Pending]) -> Result<()> {
        use worker::{BatchSendMessage, QueueContentType, RawMessageBuilder};
        // The object's id (hex): the consumer reaches it by id, no name needed.
        let src = self.state.id().to_string();
        let messages: Vec<_> = rows
            .iter()
            .map(|r| {
                let body = stamp(&r.body, &src, r.seq as i64);
                RawMessageBuilder::new(body.as_str().into()).build_with_content_type(QueueContentType::Text)
            })
            .collect();
        queue.send_raw_batch(BatchSendMessage::from(messages)).await
    }
}

/// How many event queues (ingest partitions) the deployment has:
/// `EVENT_QUEUES` (default 1), each bound as `queue_binding(k)` in
/// wrangler.toml. Boards are spread over them by `core::shards::partition_of`.
pub fn event_queues(env: &Env) -> u16 {
    env.var("EVENT_QUEUES")
        .ok()
        .and_then(|v| v.to_string().parse::<u16>().ok())
        .map_or(1, |n| n.clamp(1, MAX_EVENT_QUEUES))
}

/// At most this many event queues (an account holds 10,000 queues).
const MAX_EVENT_QUEUES: u16 = 100;

/// The producer binding of event queue `k`: `EVENTS`, `EVENTS_1`, `EVENTS_2`, ...
fn queue_binding(k: u16) -> String {
    if k == 0 {
        "EVENTS".into()
    } else {
        format!("EVENTS_{k}")
    }
}

/// `{"events":[...]}` → `{"src":"<intake id>","seq":17,"events":[...]}`.
fn stamp(body: &str, src: &str, seq: i64) -> String {
    let rest = body.strip_prefix('{').unwrap_or(body);
    let src = serde_json::to_string(src).unwrap_or_else(|_| "\"\"".into());
    format!("{{\"src\":{src},\"seq\":{seq},{rest}")
}

impl worker::DurableObject for IntakeObject {
    fn new(state: State, env: Env) -> Self {
        IntakeObject {
            state,
            env,
            ready: Cell::new(false),
            alarm_at: Cell::new(None),
            failures: Cell::new(0),
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        if req.method() != Method::Post {
            return Response::error("not found", 404);
        }
        let text = req.text().await?;
        let cmd = IntakeCommand::from_wire(&text).map_err(rust_err)?;
        let reply = match cmd {
            IntakeCommand::Accept(r) => serde_json::to_value(self.accept(r).await?),
            IntakeCommand::Done(seqs) => serde_json::to_value(self.done(seqs)?),
            IntakeCommand::Claim(key) => serde_json::to_value(self.claim(&key)?),
            IntakeCommand::Release(key) => serde_json::to_value(self.release(&key)?),
            IntakeCommand::Remember { key, answer } => serde_json::to_value(self.remember(&key, &answer)?),
        };
        Response::from_json(&reply.map_err(rust_err)?)
    }

    async fn alarm(&self) -> Result<Response> {
        // Cleared first: an accept that lands while this alarm awaits sets a
        // new one, so its messages are never left waiting.
        self.alarm_at.set(None);
        let now = now_ms();
        match self.forward(now).await {
            Ok(Some(next)) => self.wake(next).await?,
            Ok(None) => {}
            Err(e) => {
                let n = self.failures.get().saturating_add(1);
                self.failures.set(n);
                console_error!("intake: forwarding failed ({n} in a row): {e}");
                // 0.5 s, 1 s, 2 s, ... capped at 30 s, counted from the last
                // time a message went through.
                let wait = (250i64 << n.min(7)).min(30_000);
                self.wake(now + wait).await?;
            }
        }
        self.state
            .storage()
            .sql()
            .exec("DELETE FROM idem WHERE at < ?", vec![((now - IDEMPOTENCY_MS) as f64).into()])?;
        Response::ok("forwarded")
    }
}

/// Sends one command to an intake object in its wire form (a JSON head line,
/// then any packs as plain lines) and reads its one reply.
pub async fn call<T: serde::de::DeserializeOwned>(stub: &worker::Stub, cmd: IntakeCommand) -> ApiResult<T> {
    let wire = cmd.to_wire().map_err(|e| internal("intake command", e))?;
    call_object_raw(stub, "/cmd", wire).await
}

/// The consumer's confirmation: these messages of intake `src` (its id) are
/// applied everywhere. A confirmation that does not arrive only means the
/// messages are sent once more.
pub async fn confirm(env: &Env, src: &str, seqs: Vec<i64>) -> ApiResult<Ack> {
    let stub = env
        .durable_object("INTAKE")
        .and_then(|ns| ns.id_from_string(src)?.get_stub())
        .map_err(|e| internal("intake stub", e))?;
    call(&stub, IntakeCommand::Done(seqs)).await
}

/// The intake shard that keeps an idempotency key's first answer.
fn idem_stub(env: &Env, key: &str) -> ApiResult<worker::Stub> {
    env.durable_object("INTAKE")
        .and_then(|ns| ns.get_by_name(&shard_name(Some(key), 0.0, SHARDS)))
        .map_err(|e| internal("intake stub", e))
}

/// The first answer kept for `key`, or the key claimed for this request,
/// or `busy` (API 1.1 `Idempotency-Key` on any POST or DELETE; ingest keeps
/// its own with the request).
pub async fn claim(env: &Env, key: &str) -> ApiResult<Claimed> {
    call(&idem_stub(env, key)?, IntakeCommand::Claim(key.to_string())).await
}

/// Frees a claimed key whose request was refused (a retry may run).
pub async fn release(env: &Env, key: &str) -> ApiResult<Ack> {
    call(&idem_stub(env, key)?, IntakeCommand::Release(key.to_string())).await
}

/// Keeps `answer` as the first answer for `key` (a later one never replaces it).
pub async fn remember(env: &Env, key: &str, answer: String) -> ApiResult<Ack> {
    call(&idem_stub(env, key)?, IntakeCommand::Remember { key: key.to_string(), answer }).await
}
