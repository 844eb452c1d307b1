//! `BoardIndexObject`: one per board generation (`likes@3/index`). It knows
//! which period objects of the board exist (each registers before its first
//! write) and keeps the board's member removals, so a removal reaches every
//! window, period and season without guessing which periods hold data, and
//! a period object created later (an event still in flight for an old day)
//! learns of the removals before it applies anything.
//!
//! The two commands are atomic in the object (no await between read and
//! write), so a period registering while a removal runs either is in the
//! removal's fan-out list or gets the removal in its registration reply.

use worker::{durable_object, Env, Method, Request, Response, Result, State};

use super::http::ApiResult;
use super::kv;
use super::objects::call_object;
use super::platform::rust_err;
use crate::error::ApiError;
use crate::protocol::{BoardSpec, HiddenList, IndexCommand, Periods, Removal, Tombstones};

#[durable_object]
pub struct BoardIndexObject {
    state: State,
}

impl BoardIndexObject {
    fn sql(&self) -> worker::SqlStorage {
        self.state.storage().sql()
    }

    fn open(&self) -> Result<()> {
        let sql = self.sql();
        kv::open(&sql)?;
        sql.exec("CREATE TABLE IF NOT EXISTS periods (name TEXT PRIMARY KEY, spec TEXT NOT NULL)", None)?;
        sql.exec("CREATE TABLE IF NOT EXISTS removed (member TEXT PRIMARY KEY, at INTEGER NOT NULL)", None)?;
        sql.exec("CREATE TABLE IF NOT EXISTS hidden (member TEXT PRIMARY KEY)", None)?;
        Ok(())
    }

    fn tombstones(&self) -> Result<Tombstones> {
        #[derive(serde::Deserialize)]
        struct Row {
            member: String,
            at: f64,
        }
        let rows: Vec<Row> = self.sql().exec("SELECT member, at FROM removed", None)?.to_array()?;
        Ok(Tombstones {
            removed: rows.into_iter().map(|r| (r.member, r.at as i64)).collect(),
            hidden: self.hidden_list()?.hidden,
        })
    }

    fn hidden_list(&self) -> Result<HiddenList> {
        #[derive(serde::Deserialize)]
        struct Row {
            member: String,
        }
        let rows: Vec<Row> =
            self.sql().exec("SELECT member FROM hidden ORDER BY member", None)?.to_array()?;
        Ok(HiddenList { hidden: rows.into_iter().map(|r| r.member).collect() })
    }

    fn periods(&self) -> Result<Periods> {
        #[derive(serde::Deserialize)]
        struct Row {
            spec: String,
        }
        let rows: Vec<Row> = self.sql().exec("SELECT spec FROM periods ORDER BY name", None)?.to_array()?;
        Ok(Periods { periods: rows.into_iter().filter_map(|r| serde_json::from_str(&r.spec).ok()).collect() })
    }

    fn hide(&self, member: &str, hidden: bool) -> Result<Periods> {
        self.open()?;
        if hidden {
            self.sql().exec("INSERT OR IGNORE INTO hidden (member) VALUES (?)", vec![member.into()])?;
        } else {
            self.sql().exec("DELETE FROM hidden WHERE member = ?", vec![member.into()])?;
        }
        self.periods()
    }

    fn register(&self, spec: &BoardSpec) -> Result<Tombstones> {
        self.open()?;
        let text = serde_json::to_string(spec).map_err(rust_err)?;
        // The latest spec wins: settings such as ties change over time.
        self.sql().exec(
            "INSERT INTO periods (name, spec) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET spec = excluded.spec",
            vec![spec.object_name().into(), text.into()],
        )?;
        self.tombstones()
    }

    fn remove(&self, member: &str, at: i64, how: Removal) -> Result<Periods> {
        self.open()?;
        let sql = self.sql();
        if how == Removal::Check {
            return self.periods();
        }
        if how == Removal::Erase {
            sql.exec("DELETE FROM hidden WHERE member = ?", vec![member.into()])?;
        }
        sql.exec(
            "INSERT INTO removed (member, at) VALUES (?, ?) \
             ON CONFLICT(member) DO UPDATE SET at = max(at, excluded.at)",
            vec![member.into(), (at as f64).into()],
        )?;
        self.periods()
    }
}

impl worker::DurableObject for BoardIndexObject {
    fn new(state: State, _env: Env) -> Self {
        BoardIndexObject { state }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        if req.method() != Method::Post {
            return Response::error("not found", 404);
        }
        let reply = match req.json::<IndexCommand>().await? {
            IndexCommand::Register(spec) => serde_json::to_value(self.register(&spec)?),
            IndexCommand::Remove { member, at, how } => serde_json::to_value(self.remove(&member, at, how)?),
            IndexCommand::Hide { member, hidden } => serde_json::to_value(self.hide(&member, hidden)?),
            IndexCommand::Hidden => {
                self.open()?;
                serde_json::to_value(self.hidden_list()?)
            }
        };
        Response::from_json(&reply.map_err(rust_err)?)
    }
}

/// The one caller of a board's index object.
pub struct IndexClient(worker::Stub);

impl IndexClient {
    /// The index of `spec`'s board generation.
    pub fn of(env: &Env, spec: &BoardSpec) -> ApiResult<IndexClient> {
        env.durable_object("INDEX")
            .and_then(|ns| ns.get_by_name(&spec.index_object_name()))
            .map(IndexClient)
            .map_err(|e| super::http::internal("index stub", e))
    }

    pub async fn register(&self, spec: &BoardSpec) -> ApiResult<Tombstones> {
        call_object(&self.0, "/cmd", &IndexCommand::Register(spec.clone())).await
    }

    pub async fn remove(&self, member: &str, at: i64, how: Removal) -> ApiResult<Periods> {
        call_object(&self.0, "/cmd", &IndexCommand::Remove { member: member.to_string(), at, how }).await
    }

    pub async fn hide(&self, member: &str, hidden: bool) -> ApiResult<Periods> {
        call_object(&self.0, "/cmd", &IndexCommand::Hide { member: member.to_string(), hidden }).await
    }

    pub async fn hidden(&self) -> ApiResult<HiddenList> {
        call_object(&self.0, "/cmd", &IndexCommand::Hidden).await
    }
}

/// For callers inside objects, whose errors are `worker::Error`.
pub fn api_to_worker(e: ApiError) -> worker::Error {
    rust_err(format!("{e:?}"))
}
