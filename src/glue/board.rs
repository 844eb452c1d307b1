//! `BoardObject`: one board period's ranking (e.g. `likes@3/day/2026-11-22`).
//!
//! The ranking lives in memory (the core's `Ranking`) and in SQLite: each
//! batch's changed member rows and event ids are written before the object
//! answers, so an acknowledged event survives eviction and restarts. A
//! member hit many times in one batch is written once. The alarm does what
//! can wait: push the top to live viewers (at most every 550 ms), prune event
//! ids older than the dedupe horizon, and delete an expired period.

use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;

use serde::Deserialize;
use worker::{console_error, durable_object, Env, Method, Request, Response, Result, SqlStorageValue, State};

use super::http::{now_ms, retention, rust_err};
use super::kv;
use crate::core::chores::Chores;
use crate::core::period::Period;
use crate::core::ranking::{Ranking, Row};
use crate::core::{Op, Order, Ties};
use crate::domain::MemberId;
use crate::protocol::{
    meta_json, ApplyBatch, ApplyResult, BoardQuery, BoardSpec, EntryOut, QueryOut, StandingOut, TopOut,
    LIVE_MAX_LIMIT,
};

#[durable_object]
pub struct BoardObject {
    state: State,
    env: Env,
    ranking: RefCell<Option<Ranking>>,
    spec: RefCell<Option<BoardSpec>>,
    /// A live hub has viewers for this period: push changes to it.
    watched: Cell<bool>,
    /// Something changed since the last push.
    dirty: Cell<bool>,
    last_publish: Cell<i64>,
    alarm_at: Cell<Option<i64>>,
}

fn member_row(cols: Vec<SqlStorageValue>) -> Result<Row> {
    let num = |v: &SqlStorageValue| match v {
        SqlStorageValue::Integer(i) => Some(*i as f64),
        SqlStorageValue::Float(f) => Some(*f),
        _ => None,
    };
    match cols.as_slice() {
        [SqlStorageValue::String(member), score, seq, ts, meta] => Ok(Row {
            member: member.clone(),
            score: num(score).ok_or_else(|| rust_err("bad score column"))?,
            seq: num(seq).ok_or_else(|| rust_err("bad seq column"))? as u64,
            ts: num(ts).ok_or_else(|| rust_err("bad ts column"))? as i64,
            meta: match meta {
                SqlStorageValue::String(m) => Some(m.clone()),
                _ => None,
            },
        }),
        _ => Err(rust_err("bad members row")),
    }
}

impl BoardObject {
    fn sql(&self) -> worker::SqlStorage {
        self.state.storage().sql()
    }

    /// Loads the ranking from SQLite on first use after a cold start.
    fn ensure_loaded(&self) -> Result<()> {
        if self.ranking.borrow().is_some() {
            return Ok(());
        }
        let sql = self.sql();
        kv::open(&sql)?;
        sql.exec(
            "CREATE TABLE IF NOT EXISTS members (member TEXT PRIMARY KEY, score REAL NOT NULL, \
             seq INTEGER NOT NULL, ts INTEGER NOT NULL, meta TEXT)",
            None,
        )?;
        sql.exec("CREATE TABLE IF NOT EXISTS seen (id TEXT PRIMARY KEY, at INTEGER NOT NULL)", None)?;
        sql.exec("CREATE INDEX IF NOT EXISTS seen_at ON seen (at)", None)?;

        let spec: Option<BoardSpec> = kv::get(&sql, "spec")?.and_then(|v| serde_json::from_str(&v).ok());
        let watched = kv::get(&sql, "watched")?.as_deref() == Some("1");
        self.watched.set(watched);
        // After an eviction, push once more in case a change was not yet published.
        self.dirty.set(watched);
        // Streamed row by row: a million-member board must not become one
        // giant JS array on the way in.
        let cursor = sql.exec("SELECT member, score, seq, ts, meta FROM members", None)?;
        let mut failed = None;
        let rows = cursor.raw().map_while(|raw| match raw.and_then(member_row) {
            Ok(row) => Some(row),
            Err(e) => {
                failed = Some(e);
                None
            }
        });
        let (order, op) = spec.as_ref().map(|s| (s.order, s.op)).unwrap_or((Order::Desc, Op::Incr));
        let ranking = Ranking::from_rows(order, op, rows);
        if let Some(e) = failed {
            return Err(e);
        }
        *self.ranking.borrow_mut() = Some(ranking);
        *self.spec.borrow_mut() = spec;
        Ok(())
    }

    /// Records which board period this object is, the first time it is told.
    fn adopt_spec(&self, spec: &BoardSpec) -> Result<()> {
        let same = self.spec.borrow().as_ref() == Some(spec);
        if same {
            return Ok(());
        }
        // Viewers see ranks: new tie rules are a change to push to them.
        if self.spec.borrow().as_ref().is_some_and(|old| old.ties != spec.ties) {
            self.dirty.set(true);
        }
        let mut ranking = self.ranking.borrow_mut();
        if let Some(r) = ranking.as_mut() {
            // Order and op are fixed once a board holds scores (the catalog
            // refuses such changes); an empty ranking simply takes them.
            if r.is_empty() && (r.order() != spec.order || r.op() != spec.op) {
                *r = Ranking::new(spec.order, spec.op);
            }
        }
        kv::put(&self.sql(), "spec", &serde_json::to_string(spec).map_err(rust_err)?)?;
        *self.spec.borrow_mut() = Some(spec.clone());
        Ok(())
    }

    fn apply(&self, batch: ApplyBatch) -> Result<ApplyResult> {
        self.ensure_loaded()?;
        self.adopt_spec(&batch.spec)?;
        let now = now_ms();
        let sql = self.sql();
        let mut touched: BTreeSet<String> = BTreeSet::new();
        let (mut applied, mut duplicates) = (0u32, 0u32);
        {
            let mut guard = self.ranking.borrow_mut();
            let ranking = guard.as_mut().ok_or_else(|| rust_err("ranking not loaded"))?;
            // Dedupe first (the id row is the dedupe record: a redelivered
            // event finds it), then apply the fresh events as one batch, which
            // the ranking does faster than one at a time.
            let mut fresh_events = Vec::with_capacity(batch.events.len());
            for ev in batch.events {
                let fresh = sql
                    .exec(
                        "INSERT INTO seen (id, at) VALUES (?, ?) ON CONFLICT(id) DO NOTHING RETURNING id",
                        vec![ev.id.into(), (now as f64).into()],
                    )?
                    .to_array::<serde_json::Value>()?;
                if fresh.is_empty() {
                    duplicates += 1;
                    continue;
                }
                applied += 1;
                let Ok(member) = MemberId::parse(ev.member) else { continue };
                fresh_events.push((member, ev.value, ev.ts, ev.meta));
            }
            let changed =
                ranking.apply_batch(&fresh_events.iter().map(|e| (&e.0, e.1, e.2)).collect::<Vec<_>>());
            // metadata after the scores: it only sticks to members on the board
            let op = ranking.op();
            for ((member, _, _, meta), mut changed) in fresh_events.into_iter().zip(changed) {
                // On `last` boards an event older than the member's latest
                // lost: its metadata is as stale as its value.
                let lost = op == Op::Last && !changed;
                if let Some(m) = meta.filter(|_| !lost) {
                    // `{}` clears: listings show `meta` only when there is some
                    changed |= ranking.set_meta(&member, (m != "{}").then_some(m));
                }
                if changed {
                    touched.insert(member.into_string());
                }
            }
            for m in &touched {
                let Some(row) = ranking.get(m) else { continue };
                sql.exec(
                    "INSERT INTO members (member, score, seq, ts, meta) VALUES (?, ?, ?, ?, ?) \
                     ON CONFLICT(member) DO UPDATE SET score = excluded.score, seq = excluded.seq, \
                     ts = excluded.ts, meta = excluded.meta",
                    vec![
                        row.member.into(),
                        row.score.into(),
                        (row.seq as f64).into(),
                        (row.ts as f64).into(),
                        row.meta.map(Into::into).unwrap_or(worker::SqlStorageValue::Null),
                    ],
                )?;
            }
        }
        if !touched.is_empty() {
            self.dirty.set(true);
        }
        Ok(ApplyResult { applied, duplicates })
    }

    fn query(&self, q: BoardQuery) -> Result<QueryOut> {
        self.ensure_loaded()?;
        let guard = self.ranking.borrow();
        let r = guard.as_ref().ok_or_else(|| rust_err("ranking not loaded"))?;
        let total = r.len() as u64;
        let entries = |v: Vec<crate::core::ranking::Entry<'_>>| v.into_iter().map(EntryOut::from).collect();
        Ok(match q {
            BoardQuery::Top { offset, limit, ties } => {
                QueryOut { total, found: true, entries: entries(r.top(offset, limit, ties)), standing: None }
            }
            BoardQuery::Rank { member, ties } => match r.rank(&member, ties) {
                Some(s) => QueryOut {
                    total,
                    found: true,
                    entries: vec![],
                    standing: Some(StandingOut {
                        member,
                        rank: s.rank,
                        score: s.score,
                        total: s.total,
                        percentile: s.percentile,
                        meta: meta_json(s.meta),
                    }),
                },
                None => QueryOut { total, found: false, entries: vec![], standing: None },
            },
            BoardQuery::Around { member, radius, ties } => match r.around(&member, radius, ties) {
                Some(v) => QueryOut { total, found: true, entries: entries(v), standing: None },
                None => QueryOut { total, found: false, entries: vec![], standing: None },
            },
            BoardQuery::Lookup { members, ties } => {
                let refs: Vec<&str> = members.iter().map(String::as_str).collect();
                QueryOut { total, found: true, entries: entries(r.lookup(&refs, ties)), standing: None }
            }
        })
    }

    /// The top a live hub shows: the best `LIVE_MAX_LIMIT` under the board's ties.
    fn live_top(&self) -> Result<TopOut> {
        self.ensure_loaded()?;
        let spec = self.spec.borrow().clone();
        let guard = self.ranking.borrow();
        let r = guard.as_ref().ok_or_else(|| rust_err("ranking not loaded"))?;
        let ties = spec.as_ref().map(|s| s.ties).unwrap_or(Ties::Shared);
        Ok(TopOut {
            period: spec.map(|s| s.period).unwrap_or_default(),
            total: r.len() as u64,
            entries: r.top(0, LIVE_MAX_LIMIT, ties).into_iter().map(EntryOut::from).collect(),
        })
    }

    fn chores(&self) -> Result<Chores> {
        Ok(Chores {
            now: now_ms(),
            dirty: self.dirty.get(),
            watched: self.watched.get(),
            last_publish: self.last_publish.get(),
            oldest_seen: self.oldest_seen()?,
            expires_at: self.expiry(),
        })
    }

    /// Sets the alarm for the earliest chore the core says is due.
    async fn schedule(&self) -> Result<()> {
        let Some(want) = self.chores()?.next_alarm() else { return Ok(()) };
        if self.alarm_at.get().is_none() {
            self.alarm_at.set(self.state.storage().get_alarm().await?);
        }
        if self.alarm_at.get().is_none_or(|at| at > want) {
            self.state.storage().set_alarm(super::http::alarm_at(want)).await?;
            self.alarm_at.set(Some(want));
        }
        Ok(())
    }

    fn oldest_seen(&self) -> Result<Option<i64>> {
        #[derive(Deserialize)]
        struct Oldest {
            at: Option<f64>,
        }
        let rows: Vec<Oldest> = self.sql().exec("SELECT MIN(at) AS at FROM seen", None)?.to_array()?;
        Ok(rows.first().and_then(|r| r.at).map(|a| a as i64))
    }

    fn expiry(&self) -> Option<i64> {
        let spec = self.spec.borrow();
        let spec = spec.as_ref()?;
        let period = Period::parse(spec.window, &spec.period)?;
        retention(&self.env).expires_at(period)
    }

    /// Pushes the current top to the live hub; stops watching when it has no viewers.
    async fn publish(&self) -> Result<()> {
        let Some(spec) = self.spec.borrow().clone() else { return Ok(()) };
        let top = self.live_top()?;
        self.dirty.set(false);
        self.last_publish.set(now_ms());
        let stub = self.env.durable_object("LIVE")?.get_by_name(&spec.live_object_name())?;
        #[derive(Deserialize)]
        struct Viewers {
            viewers: usize,
        }
        let v: Viewers = super::http::call_object(&stub, "/publish", &top)
            .await
            .map_err(|_| rust_err("live hub did not take the update"))?;
        if v.viewers == 0 {
            self.set_watched(false)?;
        }
        Ok(())
    }

    fn set_watched(&self, on: bool) -> Result<()> {
        if self.watched.get() != on {
            self.watched.set(on);
            kv::put(&self.sql(), "watched", if on { "1" } else { "0" })?;
        }
        Ok(())
    }

    async fn wipe(&self) -> Result<()> {
        self.state.storage().delete_alarm().await?;
        self.state.storage().delete_all().await?;
        *self.ranking.borrow_mut() = None;
        *self.spec.borrow_mut() = None;
        self.watched.set(false);
        self.alarm_at.set(None);
        Ok(())
    }
}

impl worker::DurableObject for BoardObject {
    fn new(state: State, env: Env) -> Self {
        BoardObject {
            state,
            env,
            ranking: RefCell::new(None),
            spec: RefCell::new(None),
            watched: Cell::new(false),
            dirty: Cell::new(false),
            last_publish: Cell::new(0),
            alarm_at: Cell::new(None),
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        if req.method() != Method::Post {
            return Response::error("not found", 404);
        }
        match req.path().as_str() {
            "/apply" => {
                let batch: ApplyBatch = req.json().await?;
                let result = self.apply(batch).inspect_err(|_| {
                    // Memory may be ahead of storage now: reload on next use.
                    *self.ranking.borrow_mut() = None;
                })?;
                self.schedule().await?;
                Response::from_json(&result)
            }
            "/query" => Response::from_json(&self.query(req.json().await?)?),
            "/watch" => {
                let spec: BoardSpec = req.json().await?;
                self.ensure_loaded()?;
                self.adopt_spec(&spec)?;
                self.set_watched(true)?;
                Response::from_json(&self.live_top()?)
            }
            "/respec" => {
                let spec: BoardSpec = req.json().await?;
                self.ensure_loaded()?;
                self.adopt_spec(&spec)?;
                self.schedule().await?;
                Response::from_json(&serde_json::json!({"ok": true}))
            }
            "/wipe" => {
                self.wipe().await?;
                Response::from_json(&serde_json::json!({"wiped": true}))
            }
            _ => Response::error("not found", 404),
        }
    }

    async fn alarm(&self) -> Result<Response> {
        self.alarm_at.set(None);
        self.ensure_loaded()?;
        let chores = self.chores()?;
        if chores.expired() {
            self.wipe().await?;
            return Response::ok("expired");
        }
        if chores.publish_due() {
            if let Err(e) = self.publish().await {
                console_error!("publish failed: {e}");
            }
        }
        self.sql().exec("DELETE FROM seen WHERE at < ?", vec![(chores.prune_before() as f64).into()])?;
        self.schedule().await?;
        Response::ok("done")
    }
}
