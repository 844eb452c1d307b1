//! `IntakeObject`: the durable front of the Queue. An ingest request is
//! answered 202 only once its packed messages are committed here (one SQLite
//! transaction: all of the request or none of it), so a request answered
//! with anything else enqueued nothing, and a request too large for one
//! `sendBatch` (1 MiB against 256 KB) is still all-or-nothing. The object's
//! alarm then forwards the messages to the Queue in order, deleting each
//! only after the Queue took it, and retries with backoff while the Queue
//! refuses. A message forwarded twice (a crash between send and delete) is
//! harmless: boards dedupe by event id.
//!
//! Requests are spread over `SHARDS` objects; a request with an
//! `Idempotency-Key` goes to the shard its key hashes to, which keeps the
//! first answer for 24 hours and gives it again to a repeat.

use std::cell::Cell;

use serde::Deserialize;
use worker::{console_error, durable_object, Env, Method, Request, Response, Result, State};

use super::http::{alarm_at, now_ms, rust_err};
use super::txn::{write_all, Stmt};
use crate::protocol::{IntakeCommand, IntakeReply, IntakeRequest};

/// How many intake objects share the ingest load.
pub const SHARDS: u32 = 16;
/// How long an idempotency key's first answer is kept.
pub const IDEMPOTENCY_MS: i64 = 24 * 3600 * 1000;
/// One `sendBatch` carries at most 100 messages and 256 KB.
const SEND_MAX_MESSAGES: usize = 100;
const SEND_MAX_BYTES: usize = 250_000;

/// The intake object a request goes to: by its idempotency key when it has
/// one (so a repeat finds the first answer), else spread by a random draw.
pub fn shard_name(idempotency: Option<&str>, random: f64) -> String {
    let n = match idempotency {
        // FNV-1a: a stable spread of keys, not a secret (keys are the holder's own).
        Some(k) => k.bytes().fold(0x811c9dc5u32, |h, b| (h ^ b as u32).wrapping_mul(0x01000193)) % SHARDS,
        None => ((random * SHARDS as f64) as u32).min(SHARDS - 1),
    };
    format!("intake-{n}")
}

#[durable_object]
pub struct IntakeObject {
    state: State,
    env: Env,
    ready: Cell<bool>,
    /// The alarm is set (or running): no need to set it again.
    alarm_pending: Cell<bool>,
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

impl IntakeObject {
    fn open(&self) -> Result<()> {
        if self.ready.get() {
            return Ok(());
        }
        let sql = self.state.storage().sql();
        // `refuse`: test faults only — how many more sends of this message
        // the "Queue" refuses.
        sql.exec(
            "CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL, \
             refuse INTEGER NOT NULL DEFAULT 0)",
            None,
        )?;
        sql.exec("CREATE TABLE IF NOT EXISTS idem (k TEXT PRIMARY KEY, answer TEXT NOT NULL, at INTEGER NOT NULL)", None)?;
        sql.exec("CREATE INDEX IF NOT EXISTS idem_at ON idem (at)", None)?;
        self.ready.set(true);
        Ok(())
    }

    async fn accept(&self, req: IntakeRequest) -> Result<IntakeReply> {
        self.open()?;
        let refuse = req.test_refuse;
        let now = now_ms();
        let sql = self.state.storage().sql();
        if let Some(k) = &req.idempotency {
            let first: Vec<Answer> = sql
                .exec(
                    "SELECT answer FROM idem WHERE k = ? AND at > ?",
                    vec![k.as_str().into(), ((now - IDEMPOTENCY_MS) as f64).into()],
                )?
                .to_array()?;
            if let Some(a) = first.into_iter().next() {
                return Ok(IntakeReply { answer: a.answer, repeat: true });
            }
        }
        let mut stmts = Vec::with_capacity(req.packs.len() + 1);
        for (i, body) in req.packs.into_iter().enumerate() {
            // Test fault: every message but the first is refused `refuse` times,
            // a Queue that gives up part-way through a request.
            let r = if i == 0 { 0 } else { refuse };
            stmts.push(Stmt::new("INSERT INTO outbox (body, refuse) VALUES (?, ?)", vec![body.into(), (r as f64).into()]));
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

    /// Sets the alarm to forward now, unless it is already set.
    async fn wake(&self, at: i64) -> Result<()> {
        if !self.alarm_pending.get() {
            self.state.storage().set_alarm(alarm_at(at)).await?;
            self.alarm_pending.set(true);
        }
        Ok(())
    }

    /// Forwards what the outbox holds, oldest first. Returns whether it is empty.
    async fn forward(&self) -> Result<bool> {
        self.open()?;
        let sql = self.state.storage().sql();
        let queue = self.env.queue("EVENTS")?;
        loop {
            let rows: Vec<Pending> = sql
                .exec("SELECT seq, body, refuse FROM outbox ORDER BY seq LIMIT ?", vec![(SEND_MAX_MESSAGES as f64).into()])?
                .to_array()?;
            if rows.is_empty() {
                return Ok(true);
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
            let batch = &rows[..take];
            if let Some(r) = batch.iter().find(|r| r.refuse > 0.0) {
                // Test fault: send what comes before the refused message, then fail.
                let before: Vec<&Pending> = batch.iter().take_while(|p| p.seq < r.seq).collect();
                if !before.is_empty() {
                    send(&queue, &before).await?;
                    sql.exec("DELETE FROM outbox WHERE seq < ?", vec![r.seq.into()])?;
                }
                sql.exec("UPDATE outbox SET refuse = refuse - 1 WHERE seq = ?", vec![r.seq.into()])?;
                return Err(rust_err("test fault: the queue refused a message"));
            }
            let refs: Vec<&Pending> = batch.iter().collect();
            send(&queue, &refs).await?;
            let last = batch.last().map(|r| r.seq).unwrap_or(0.0);
            sql.exec("DELETE FROM outbox WHERE seq <= ?", vec![last.into()])?;
        }
    }
}

async fn send(queue: &worker::Queue, rows: &[&Pending]) -> Result<()> {
    use worker::{BatchSendMessage, QueueContentType, RawMessageBuilder};
    let messages: Vec<_> = rows
        .iter()
        .map(|r| RawMessageBuilder::new(r.body.as_str().into()).build_with_content_type(QueueContentType::Text))
        .collect();
    queue.send_raw_batch(BatchSendMessage::from(messages)).await
}

impl worker::DurableObject for IntakeObject {
    fn new(state: State, env: Env) -> Self {
        IntakeObject { state, env, ready: Cell::new(false), alarm_pending: Cell::new(false), failures: Cell::new(0) }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        if req.method() != Method::Post {
            return Response::error("not found", 404);
        }
        let reply = match req.json::<IntakeCommand>().await? {
            IntakeCommand::Accept(r) => serde_json::to_value(self.accept(r).await?),
        };
        Response::from_json(&reply.map_err(rust_err)?)
    }

    async fn alarm(&self) -> Result<Response> {
        // Cleared first: an accept that lands while this alarm awaits sets a
        // new one, so its messages are never left waiting.
        self.alarm_pending.set(false);
        let now = now_ms();
        match self.forward().await {
            Ok(_) => self.failures.set(0),
            Err(e) => {
                let n = self.failures.get().saturating_add(1);
                self.failures.set(n);
                console_error!("intake: forwarding failed ({n} in a row): {e}");
                // 0.5 s, 1 s, 2 s, ... capped at 30 s.
                let wait = (500i64 << n.min(6)).min(30_000);
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

