//! Route endpoints: which boards an event type feeds.

use serde_json::json;
use worker::{Env, Request, Response};

use super::catalog::{self, CatalogOp};
use super::http::{internal, json, read_json_body, ApiResult, MAX_SMALL_BODY};
use crate::domain::settings::parse_route_targets;
use crate::domain::EventType;
use crate::error::ApiError;

fn event_type(raw: &str) -> ApiResult<EventType> {
    EventType::parse(raw)
        .map_err(|e| ApiError::InvalidParameter { field: "type".into(), message: e.to_string() })
}

pub async fn list(env: &Env) -> ApiResult {
    let cat = catalog::get(env, &[]).await?;
    json(200, &json!({ "routes": cat.routes }))
}

pub async fn get(env: &Env, raw: &str) -> ApiResult {
    let kind = event_type(raw)?;
    let cat = catalog::get(env, &[]).await?;
    let targets = cat.routes.get(&kind).ok_or_else(|| ApiError::RouteNotFound(raw.to_string()))?;
    json(200, &json!({ "type": kind, "targets": targets }))
}

pub async fn put(mut req: Request, env: &Env, raw: &str) -> ApiResult {
    let kind = event_type(raw)?;
    let body = read_json_body(&mut req, MAX_SMALL_BODY).await?;
    let targets = parse_route_targets(&body)?;
    let (cat, created) = catalog::apply(env, CatalogOp::PutRoute { kind: kind.clone(), targets }).await?;
    let targets = cat.routes.get(&kind).ok_or(ApiError::Internal)?;
    json(if created { 201 } else { 200 }, &json!({ "type": kind, "targets": targets }))
}

pub async fn delete(env: &Env, raw: &str) -> ApiResult {
    let kind = event_type(raw)?;
    let (_, existed) = catalog::apply(env, CatalogOp::DeleteRoute { kind }).await?;
    if !existed {
        return Err(ApiError::RouteNotFound(raw.to_string()));
    }
    Ok(Response::empty().map_err(|e| internal("response", e))?.with_status(204))
}
