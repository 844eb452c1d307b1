//! Seasons (API 1.1): `POST /v1/boards/{board}/seasons` archives the `all`
//! window's ranking and starts the next season empty; `GET` lists them.
//!
//! A season is a board period of the `all` window (`all` for the first,
//! then `s2`, `s3`, ...). The catalog keeps when each began; an event
//! belongs to the season in which Podium accepted it (every Queue message
//! carries its acceptance time), so events accepted before the call and
//! delivered after it still count in the archived season.

use serde_json::{json, Value};
use worker::Env;

use super::boards::{board_name, spec, BoardClient};
use super::catalog::{self, CatalogOp};
use super::http::{internal, json, ApiResult};
use super::live::LiveClient;
use super::platform::now_ms;
use crate::core::catalog::season_key;
use crate::core::{Ties, Window};
use crate::error::ApiError;
use crate::protocol::BoardQuery;

pub async fn start(env: &Env, board: &str) -> ApiResult {
    let name = board_name(board)?;
    let before = catalog::fresh(env, std::slice::from_ref(&name)).await?;
    let r = before.boards.get(&name).ok_or_else(|| ApiError::BoardNotFound(name.to_string()))?;
    if !r.settings.windows.contains(&Window::All) {
        return Err(ApiError::Conflict(format!(
            "board \"{name}\" keeps no all window: seasons split the all window"
        )));
    }
    let (cat, _) = catalog::apply(env, CatalogOp::NewSeason { name: name.clone(), at: now_ms() }).await?;
    let r = cat.boards.get(&name).ok_or_else(|| ApiError::BoardNotFound(name.to_string()))?;
    let season = r.current_season();
    let started = r.seasons.last().copied().unwrap_or_default();
    // Live viewers of the all window move to the new season at once.
    let s = spec(&name, r, Window::All, &season_key(season));
    let hub = LiveClient::root(env, &s).map_err(|e| internal("live stub", e))?;
    if hub.roll(&s).await.is_err() {
        worker::console_warn!("live hub of {} did not take the new season", s.board);
    }
    // The archived season's hooks hear that it ended (API 1.1 `period_ended`).
    let (ends, _) = super::hooks::watching(&super::hooks::all(env).await?, name.as_str());
    if ends && season > 1 {
        let archived = spec(&name, r, Window::All, &season_key(season - 1));
        BoardClient::of(env, &archived)?.ended(&archived).await?;
    }
    json(200, &json!({ "season": season, "started": started }))
}

pub async fn list(env: &Env, board: &str) -> ApiResult {
    let name = board_name(board)?;
    let cat = catalog::get(env, std::slice::from_ref(&name)).await?;
    let r = cat.boards.get(&name).ok_or_else(|| ApiError::BoardNotFound(name.to_string()))?;
    let current = r.current_season();
    let counts = futures_util::future::join_all((1..=current).map(|n| {
        let s = spec(&name, r, Window::All, &season_key(n));
        async move {
            let q = BoardQuery::Top { offset: 0, limit: 0, ties: Ties::Shared };
            super::shards::query(env, &s, q).await.map(|o| o.total)
        }
    }))
    .await;
    let mut seasons = Vec::new();
    for (n, members) in (1..=current).zip(counts) {
        let i = n as usize;
        seasons.push(json!({
            "season": n,
            // The first season began with the board (not recorded for
            // boards created before `created` was: then null).
            "started": match n {
                1 => Some(r.created).filter(|t| *t > 0).map_or(Value::Null, |t| json!(t)),
                _ => json!(r.seasons.get(i - 2)),
            },
            "ended": r.seasons.get(i - 1),
            "members": members?,
        }));
    }
    json(200, &json!({ "current": current, "seasons": seasons }))
}
