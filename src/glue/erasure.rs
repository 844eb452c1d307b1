//! Erasure of a member across every board (API 1.1, `DELETE
//! /v1/members/{member}` → 202, `GET /v1/erasures/{id}`).
//!
//! The request only starts an `ErasureObject` (one per erasure) and answers:
//! its cost does not grow with the number of boards. The object's alarm
//! then walks the catalog's boards by name (pages of its name index), `SLICE` at a time, removing the
//! member from every period of each (as `DELETE …/members/{member}` does, as
//! of the erasure's start, so events accepted before it never bring the
//! member back), and at the end drops the member's dead letters. Its place
//! in the walk is stored after every slice, so a restart resumes it.

use serde::{Deserialize, Serialize};
use worker::{durable_object, Env, Method, Request, Response, Result, State};

use super::boards::remove_from;
use super::http::{internal, json, ApiResult};
use super::kv;
use super::objects::call_object;
use super::platform::{alarm_at, new_id, now_ms, rust_err};
use crate::domain::{erased, BoardName};
use crate::error::ApiError;
use crate::protocol::{ErasureCommand, ErasureStatus, Removal};

/// Boards per alarm.
const SLICE: usize = 10;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Job {
    member: String,
    at: i64,
    /// The last board done (by name); "" before the first.
    after: String,
    boards: u64,
    periods: u64,
    done: bool,
}

#[durable_object]
pub struct ErasureObject {
    state: State,
    env: Env,
}

impl ErasureObject {
    fn job(&self) -> Result<Option<Job>> {
        let sql = self.state.storage().sql();
        kv::open(&sql)?;
        Ok(kv::get(&sql, "job")?.and_then(|v| serde_json::from_str(&v).ok()))
    }

    fn save(&self, job: &Job) -> Result<()> {
        kv::put(&self.state.storage().sql(), "job", &serde_json::to_string(job).map_err(rust_err)?)
    }

    fn status(job: Option<&Job>) -> ErasureStatus {
        match job {
            None => ErasureStatus { status: "unknown".into(), boards: 0, periods: 0 },
            Some(j) => ErasureStatus {
                status: if j.done { "done" } else { "running" }.into(),
                boards: j.boards,
                periods: j.periods,
            },
        }
    }

    /// One slice of the walk; true when the whole erasure is done.
    async fn step(&self, job: &mut Job) -> ApiResult<bool> {
        let after = BoardName::parse(&job.after).ok();
        let (slice, _) = super::catalog::list(&self.env, "", after, SLICE).await?;
        for b in &slice {
            let removed =
                remove_from(&self.env, &b.name, &b.record, &job.member, job.at, Removal::Erase).await?;
            if removed > 0 {
                job.boards += 1;
                job.periods += removed;
            }
            job.after = b.name.to_string();
        }
        if slice.len() == SLICE {
            return Ok(false);
        }
        super::dead::erase(&self.env, &job.member, job.at).await?;
        // and the webhook deliveries kept as dead letters (their bodies)
        super::hooks::erase(&self.env, &job.member).await?;
        job.done = true;
        Ok(true)
    }
}

impl worker::DurableObject for ErasureObject {
    fn new(state: State, env: Env) -> Self {
        ErasureObject { state, env }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        if req.method() != Method::Post {
            return Response::error("not found", 404);
        }
        let reply = match req.json::<ErasureCommand>().await? {
            ErasureCommand::Start { member, at } => {
                if self.job()?.is_none() {
                    let job = Job { member, at, after: String::new(), boards: 0, periods: 0, done: false };
                    self.save(&job)?;
                    self.state.storage().set_alarm(alarm_at(now_ms())).await?;
                }
                Self::status(self.job()?.as_ref())
            }
            ErasureCommand::Status => Self::status(self.job()?.as_ref()),
        };
        Response::from_json(&reply)
    }

    async fn alarm(&self) -> Result<Response> {
        let Some(mut job) = self.job()? else { return Response::ok("no job") };
        if job.done {
            return Response::ok("done");
        }
        match self.step(&mut job).await {
            Ok(done) => {
                self.save(&job)?;
                if !done {
                    self.state.storage().set_alarm(alarm_at(now_ms())).await?;
                }
            }
            Err(e) => {
                // Keep what was done; try the rest again shortly.
                self.save(&job)?;
                worker::console_warn!("erasure step failed, retrying: {e:?}");
                self.state.storage().set_alarm(alarm_at(now_ms() + 1000)).await?;
            }
        }
        Response::ok("step")
    }
}

fn stub(env: &Env, id: &str) -> ApiResult<worker::Stub> {
    env.durable_object("ERASURE").and_then(|ns| ns.get_by_name(id)).map_err(|e| internal("erasure stub", e))
}

/// The list of recent erasures the dead-letter store and the webhook log
/// each keep (`domain::erased`): a member's digest, and the time from which
/// the store refuses what a late failure would add.
pub const ERASED_TABLE: &str =
    "CREATE TABLE IF NOT EXISTS erased (digest TEXT PRIMARY KEY, at INTEGER NOT NULL)";

/// Remembers an erasure of `member` as of `at` in a store's `erased` table
/// (a later time wins), and forgets those older than `erased::KEEP_MS`.
pub fn remember(sql: &worker::SqlStorage, member: &str, at: i64) -> Result<()> {
    sql.exec(
        "INSERT INTO erased (digest, at) VALUES (?, ?) ON CONFLICT(digest) DO UPDATE SET at = max(at, excluded.at)",
        vec![erased::digest(member).into(), (at as f64).into()],
    )?;
    sql.exec("DELETE FROM erased WHERE at < ?", vec![((now_ms() - erased::KEEP_MS) as f64).into()])?;
    Ok(())
}

/// `DELETE /v1/members/{member}` (admin): starts an erasure → 202.
pub async fn start(env: &Env, member: &str) -> ApiResult {
    let m = crate::domain::MemberId::parse(member)
        .map_err(|e| ApiError::InvalidParameter { field: "member".into(), message: e.to_string() })?;
    let id = new_id().replace('-', "");
    let cmd = ErasureCommand::Start { member: m.into_string(), at: now_ms() };
    let st: ErasureStatus = call_object(&stub(env, &id)?, "/cmd", &cmd).await?;
    json(202, &serde_json::json!({ "erasure": id, "status": st.status }))
}

/// `GET /v1/erasures/{id}` (admin).
pub async fn status(env: &Env, id: &str) -> ApiResult {
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::ErasureNotFound(id.to_string()));
    }
    let st: ErasureStatus = call_object(&stub(env, id)?, "/cmd", &ErasureCommand::Status).await?;
    if st.status == "unknown" {
        return Err(ApiError::ErasureNotFound(id.to_string()));
    }
    json(200, &st)
}
