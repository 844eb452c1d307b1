//! The catalog: board settings and routes, held by one Durable Object
//! (`CatalogObject`, name "catalog") and cached per isolate for at most
//! `CACHE_MS`, so a change reaches every isolate within 5 seconds.

use std::cell::RefCell;
use std::rc::Rc;

use serde::{Deserialize, Serialize};
use worker::{durable_object, Env, Method, Request, Response, Result, State};

use super::http::{call_object, internal, now_ms, rust_err, ApiResult};
use super::kv;
use crate::core::catalog::{AutoCreate, BoardPatch, Catalog, PatchError, RouteTarget, MAX_BOARDS};
use crate::domain::{BoardName, EventType};
use crate::error::ApiError;

/// How long an isolate trusts its copy of the catalog.
pub const CACHE_MS: i64 = 4_000;

/// A change to the catalog, sent to its Durable Object.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum CatalogOp {
    Get,
    EnsureScored {
        boards: Vec<BoardName>,
        auto: AutoCreate,
    },
    PutBoard {
        name: BoardName,
        patch: BoardPatch,
    },
    DeleteBoard {
        name: BoardName,
    },
    PutRoute {
        kind: EventType,
        targets: Vec<RouteTarget>,
    },
    DeleteRoute {
        kind: EventType,
    },
    /// A new season of the board's `all` window, starting at `at`.
    NewSeason {
        name: BoardName,
        at: i64,
    },
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum CatalogReply {
    /// `changed`: the op created (PUT) or removed (DELETE) something.
    Done {
        catalog: Catalog,
        changed: bool,
    },
    Conflict {
        message: String,
    },
    Invalid {
        message: String,
    },
    /// An event would create this board, which the deployment does not allow.
    NotAutoCreated {
        board: BoardName,
    },
}

thread_local! {
    static CACHE: RefCell<Option<(i64, Rc<Catalog>)>> = const { RefCell::new(None) };
}

fn remember(c: Catalog) -> Rc<Catalog> {
    let rc = Rc::new(c);
    CACHE.with(|cell| *cell.borrow_mut() = Some((now_ms(), rc.clone())));
    rc
}

/// The catalog, from this isolate's cache when it is fresh enough.
pub async fn get(env: &Env) -> ApiResult<Rc<Catalog>> {
    let cached = CACHE.with(|cell| cell.borrow().clone());
    if let Some((at, c)) = cached {
        if now_ms() - at < CACHE_MS {
            return Ok(c);
        }
    }
    fresh(env).await
}

/// The catalog as it was at `at` or later: the cached copy if it was
/// fetched at or after `at`, else a fresh one.
pub async fn as_of(env: &Env, at: i64) -> ApiResult<Rc<Catalog>> {
    let cached = CACHE.with(|cell| cell.borrow().clone());
    match cached {
        Some((fetched, c)) if fetched >= at => Ok(c),
        _ => fresh(env).await,
    }
}

/// The catalog straight from its object (for when the cache may be behind).
pub async fn fresh(env: &Env) -> ApiResult<Rc<Catalog>> {
    apply(env, CatalogOp::Get).await.map(|(c, _)| c)
}

/// Applies a change and refreshes this isolate's cache with the result.
pub async fn apply(env: &Env, op: CatalogOp) -> ApiResult<(Rc<Catalog>, bool)> {
    let ns = env.durable_object("CATALOG").map_err(|e| internal("catalog binding", e))?;
    let stub = ns.get_by_name("catalog").map_err(|e| internal("catalog stub", e))?;
    match call_object::<_, CatalogReply>(&stub, "/op", &op).await? {
        CatalogReply::Done { catalog, changed } => Ok((remember(catalog), changed)),
        CatalogReply::Conflict { message } => Err(ApiError::Conflict(message)),
        CatalogReply::Invalid { message } => Err(ApiError::InvalidBody { field: None, message }),
        CatalogReply::NotAutoCreated { board } => {
            Err(ApiError::NotAutoCreated { index: None, board: board.to_string() })
        }
    }
}

/// The Durable Object that owns the catalog. One instance; it holds the
/// catalog in memory and writes it through to SQLite on every change.
#[durable_object]
pub struct CatalogObject {
    state: State,
    catalog: RefCell<Option<Catalog>>,
}

impl CatalogObject {
    fn load(&self) -> Result<Catalog> {
        if let Some(c) = self.catalog.borrow().as_ref() {
            return Ok(c.clone());
        }
        let sql = self.state.storage().sql();
        kv::open(&sql)?;
        let c = match kv::get(&sql, "catalog")? {
            Some(v) => serde_json::from_str(&v).map_err(rust_err)?,
            None => Catalog::default(),
        };
        *self.catalog.borrow_mut() = Some(c.clone());
        Ok(c)
    }

    fn save(&self, c: &Catalog) -> Result<()> {
        let text = serde_json::to_string(c).map_err(rust_err)?;
        kv::put(&self.state.storage().sql(), "catalog", &text)?;
        *self.catalog.borrow_mut() = Some(c.clone());
        Ok(())
    }

    fn run(&self, op: CatalogOp) -> Result<CatalogReply> {
        let mut c = self.load()?;
        let changed = match op {
            CatalogOp::Get => return Ok(CatalogReply::Done { catalog: c, changed: false }),
            CatalogOp::EnsureScored { boards, auto } => match c.ensure_scored(boards.iter(), auto) {
                Ok(changed) => {
                    if changed {
                        self.save(&c)?;
                    }
                    false
                }
                Err(PatchError::NotAutoCreated(board)) => return Ok(CatalogReply::NotAutoCreated { board }),
                Err(_) => return Ok(too_many_boards()),
            },
            CatalogOp::PutBoard { name, patch } => match c.put_board(&name, patch) {
                Ok(created) => {
                    self.save(&c)?;
                    created
                }
                Err(PatchError::FixedOnceScored(field)) => {
                    return Ok(CatalogReply::Conflict {
                        message: format!("{field} cannot change: the board already holds scores"),
                    })
                }
                Err(PatchError::Invalid(message)) => return Ok(CatalogReply::Invalid { message }),
                Err(PatchError::TooManyBoards | PatchError::NotAutoCreated(_)) => {
                    return Ok(too_many_boards())
                }
            },
            CatalogOp::DeleteBoard { name } => {
                let existed = c.delete_board(&name).is_some();
                if existed {
                    self.save(&c)?;
                }
                existed
            }
            CatalogOp::PutRoute { kind, targets } => {
                let created = c.routes.insert(kind, targets).is_none();
                self.save(&c)?;
                created
            }
            CatalogOp::DeleteRoute { kind } => {
                let existed = c.routes.remove(&kind).is_some();
                if existed {
                    self.save(&c)?;
                }
                existed
            }
            CatalogOp::NewSeason { name, at } => {
                let started = c.new_season(&name, at).is_some();
                if started {
                    self.save(&c)?;
                }
                started
            }
        };
        Ok(CatalogReply::Done { catalog: c, changed })
    }
}

fn too_many_boards() -> CatalogReply {
    CatalogReply::Conflict {
        message: format!("this deployment holds its limit of {MAX_BOARDS} boards: delete one first"),
    }
}

impl worker::DurableObject for CatalogObject {
    fn new(state: State, _env: Env) -> Self {
        CatalogObject { state, catalog: RefCell::new(None) }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        if req.method() != Method::Post || req.path() != "/op" {
            return Response::error("not found", 404);
        }
        let op: CatalogOp = req.json().await?;
        Response::from_json(&self.run(op)?)
    }
}
