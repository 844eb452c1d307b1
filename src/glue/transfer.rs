//! Export and import of a board period (API 1.1, admin).
//!
//! An export is streamed page by page from the board object (a million
//! members never sit whole in the worker); an import is parsed and checked
//! whole in the worker, then set in one transaction by the board object.

use futures_util::stream;
use worker::{Env, Request, Response};

use super::boards::{target, ties, BoardClient};
use super::catalog::{self, CatalogOp};
use super::http::{internal, json, now_ms, read_body, ApiResult, Query};
use crate::core::catalog::AutoCreate;
use crate::domain::import::{parse_import, MAX_IMPORT_BYTES};
use crate::error::ApiError;
use crate::protocol::{csv_header, ImportRow};

/// Lines per call to the board object: ~150 KB of JSON.
const EXPORT_PAGE: usize = 1000;

#[derive(Clone, Copy, PartialEq)]
enum Format {
    Ndjson,
    Csv,
}

pub async fn export(req: &Request, env: &Env, board: &str) -> ApiResult {
    let q = Query::of(req)?;
    let format = match q.get("format") {
        None | Some("ndjson") => Format::Ndjson,
        Some("csv") => Format::Csv,
        Some(_) => {
            return Err(ApiError::InvalidParameter {
                field: "format".into(),
                message: "must be ndjson or csv".into(),
            })
        }
    };
    let t = target(env, board, &q).await?;
    let ties = ties(&t);
    let client = std::rc::Rc::new(BoardClient::of(env, &t.spec)?);
    // The first page before the answer: a board that cannot be read is an
    // error status, not a cut-off 200.
    let first = client.export(0, EXPORT_PAGE, ties).await?;
    let render = move |page: crate::protocol::ExportPage| -> Vec<u8> {
        let mut out = String::new();
        for line in &page.lines {
            match format {
                Format::Csv => out.push_str(&line.csv()),
                Format::Ndjson => {
                    if let Ok(text) = serde_json::to_string(line) {
                        out.push_str(&text);
                        out.push('\n');
                    }
                }
            }
        }
        out.into_bytes()
    };
    let tiebroken = !t.spec.tiebreak.is_none();
    let mut head = if format == Format::Csv { csv_header(tiebroken).as_bytes().to_vec() } else { Vec::new() };
    let more = first.lines.len() == EXPORT_PAGE;
    head.extend(render(first));
    // Then page after page, each fetched when the client has read the last.
    let rest = stream::unfold((EXPORT_PAGE, more), move |(offset, more)| {
        let client = client.clone();
        async move {
            if !more {
                return None;
            }
            match client.export(offset, EXPORT_PAGE, ties).await {
                Ok(page) => {
                    let more = page.lines.len() == EXPORT_PAGE;
                    Some((Ok::<Vec<u8>, worker::Error>(render(page)), (offset + EXPORT_PAGE, more)))
                }
                // The status is sent: cut the body short, so the client sees a failed transfer.
                Err(e) => Some((
                    Err(worker::Error::RustError(format!("export page failed: {e:?}"))),
                    (offset, false),
                )),
            }
        }
    });
    let body = futures_util::StreamExt::chain(stream::once(async move { Ok(head) }), rest);
    let resp = Response::from_stream(body).map_err(|e| internal("export stream", e))?;
    let (kind, ext) = match format {
        Format::Csv => ("text/csv; charset=utf-8", "csv"),
        Format::Ndjson => ("application/x-ndjson", "ndjson"),
    };
    let h = resp.headers().clone();
    h.set("Content-Type", kind).map_err(|e| internal("headers", e))?;
    let name = format!("{}-{}-{}.{ext}", t.name.as_str(), t.spec.window.as_str(), t.spec.period);
    h.set("Content-Disposition", &format!("attachment; filename=\"{name}\""))
        .map_err(|e| internal("headers", e))?;
    h.set("Cache-Control", "no-store").map_err(|e| internal("headers", e))?;
    Ok(resp.with_headers(h))
}

pub async fn import(mut req: Request, env: &Env, board: &str) -> ApiResult {
    let q = Query::of(&req)?;
    let declared =
        req.headers().get("Content-Length").ok().flatten().and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_IMPORT_BYTES as u64) {
        return Err(ApiError::PayloadTooLarge { max: MAX_IMPORT_BYTES });
    }
    let kind = req.headers().get("Content-Type").ok().flatten().unwrap_or_default();
    let media = kind.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    if !matches!(media.as_str(), "application/x-ndjson" | "application/ndjson" | "application/jsonl") {
        return Err(ApiError::UnsupportedMediaType);
    }
    let t = target(env, board, &q).await?;
    let body = read_body(&mut req, MAX_IMPORT_BYTES).await?;
    let lines = parse_import(&body, now_ms())?;
    let s = &t.record.settings;
    for (i, l) in lines.iter().enumerate() {
        let low = s.min.is_some_and(|m| l.score < m);
        let high = s.max.is_some_and(|m| l.score > m);
        if low || high {
            return Err(ApiError::InvalidEntry {
                index: i,
                field: "score".into(),
                message: format!("{} is outside the board's min/max", l.score),
            });
        }
    }
    // The board holds scores now: its order and op are fixed from here on.
    catalog::apply(
        env,
        CatalogOp::EnsureScored { boards: vec![t.name.clone()], auto: AutoCreate::default() },
    )
    .await?;
    let to_hide: Vec<String> =
        lines.iter().filter(|l| l.hidden).map(|l| l.member.as_str().to_string()).collect();
    let rows: Vec<ImportRow> = lines
        .into_iter()
        .map(|l| ImportRow {
            member: l.member.into_string(),
            score: l.score,
            sub: l.sub,
            reached: l.reached,
            meta: l.meta,
        })
        .collect();
    let out = BoardClient::of(env, &t.spec)?.import(&t.spec, rows).await?;
    if out.full {
        return Err(ApiError::Conflict(format!(
            "the import would take {} past the most members a board period holds",
            t.spec.period
        )));
    }
    // An export's hidden members stay hidden on the board it moves to.
    for m in &to_hide {
        super::boards::hide_member(env, t.name.as_str(), m, true).await?;
    }
    json(200, &serde_json::json!({ "imported": out.imported }))
}
