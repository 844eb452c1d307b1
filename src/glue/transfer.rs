//! Export and import of a board period (API 1.1, admin).
//!
//! An export is streamed page by page from the board object (a million
//! members never sit whole in the worker); an import is parsed and checked
//! whole in the worker, then set in one transaction by the board object.

use futures_util::stream;
use worker::{Env, Request, Response};

use super::boards::{target, ties, BoardClient};
use super::catalog::{self, CatalogOp};
use super::http::{internal, json, read_body, ApiResult, Query};
use super::platform::now_ms;
use crate::core::catalog::AutoCreate;
use crate::core::ranking::Spot;
use crate::core::shards::shard_of;
use crate::core::Ties;
use crate::domain::import::{parse_import, MAX_IMPORT_BYTES};
use crate::error::ApiError;
use crate::protocol::{csv_header, BoardSpec, ExportLine, ImportRow};

/// Lines per call to the board object: ~150 KB of JSON.
const EXPORT_PAGE: usize = 1000;

#[derive(Clone, Copy, PartialEq)]
enum Format {
    Ndjson,
    Csv,
}

pub async fn export(req: &Request, env: &Env, board: &str) -> ApiResult {
    let q = Query::of(req)?;
    let format = match q.text("format") {
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
    let mut pages = Pages::new(env, &t.spec, ties)?;
    // The first page before the answer: a board that cannot be read is an
    // error status, not a cut-off 200.
    let first = pages.next().await?;
    let render = move |lines: Vec<ExportLine>| -> Vec<u8> {
        let mut out = String::new();
        for line in &lines {
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
    let more = !first.is_empty();
    head.extend(render(first));
    // Then page after page, each fetched when the client has read the last.
    let rest = stream::unfold((pages, more), move |(mut pages, more)| async move {
        if !more {
            return None;
        }
        match pages.next().await {
            Ok(lines) if lines.is_empty() => None,
            Ok(lines) => Some((Ok::<Vec<u8>, worker::Error>(render(lines)), (pages, true))),
            // The status is sent: cut the body short, so the client sees a failed transfer.
            Err(e) => {
                Some((Err(worker::Error::RustError(format!("export page failed: {e:?}"))), (pages, false)))
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
    let name =
        format!("{}-{}-{}.{ext}", t.name.as_str(), t.spec.window.as_str(), super::boards::shown_period(&t));
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
    let full = || {
        ApiError::Conflict(format!(
            "the import would take {} past the most members a board period holds",
            t.spec.period
        ))
    };
    // Each member to its own shard (one part on an unsharded board).
    let parts: Vec<(BoardSpec, Vec<ImportRow>)> = if t.spec.is_sharded() {
        let mut parts: Vec<Vec<ImportRow>> = vec![Vec::new(); t.spec.shards as usize];
        for row in rows {
            if let Some(p) = parts.get_mut(shard_of(&row.member, t.spec.shards) as usize) {
                p.push(row);
            }
        }
        t.spec.every_shard().into_iter().zip(parts).filter(|(_, p)| !p.is_empty()).collect()
    } else {
        vec![(t.spec.clone(), rows)]
    };
    // Every part first says whether it fits, so a full board refuses the
    // import (409) before anything is set or marked.
    for (s, part) in &parts {
        if BoardClient::of(env, s)?.import(s, part.clone(), true).await?.full {
            return Err(full());
        }
    }
    // The board holds scores now: its order and op are fixed from here on.
    catalog::apply(
        env,
        CatalogOp::EnsureScored {
            boards: vec![t.name.clone()],
            within: vec![],
            auto: AutoCreate::default(),
            token: None,
        },
    )
    .await?;
    let mut imported = 0;
    for (s, part) in parts {
        let out = BoardClient::of(env, &s)?.import(&s, part, false).await?;
        if out.full {
            return Err(full());
        }
        imported += out.imported;
    }
    // An export's hidden members stay hidden on the board it moves to.
    for m in &to_hide {
        super::boards::hide_member(env, t.name.as_str(), m, true).await?;
    }
    json(200, &serde_json::json!({ "imported": imported }))
}

/// An export's pages, best first: of the one board object, or of every
/// shard of a sharded period merged in board order and ranked as one board
/// (each shard read a page at a time, so the worker holds at most a page
/// per shard).
struct Pages {
    spec: BoardSpec,
    ties: Ties,
    shards: Vec<Shard>,
    /// Lines given so far, and the last one's rank key and rank (for ties).
    given: u64,
    last: Option<(Spot, u64)>,
}

struct Shard {
    client: BoardClient,
    offset: usize,
    done: bool,
    buffer: std::collections::VecDeque<(Spot, ExportLine)>,
}

impl Pages {
    fn new(env: &Env, spec: &BoardSpec, ties: Ties) -> ApiResult<Pages> {
        let shards = spec
            .every_shard()
            .iter()
            .map(|s| {
                Ok(Shard {
                    client: BoardClient::of(env, s)?,
                    offset: 0,
                    done: false,
                    buffer: Default::default(),
                })
            })
            .collect::<ApiResult<Vec<Shard>>>()?;
        Ok(Pages { spec: spec.clone(), ties, shards, given: 0, last: None })
    }

    /// The next page (empty: the export is done).
    async fn next(&mut self) -> ApiResult<Vec<ExportLine>> {
        if let [one] = self.shards.as_mut_slice() {
            // One object: its pages are the export's, ranks and all.
            if one.done {
                return Ok(vec![]);
            }
            let page = one.client.export(one.offset, EXPORT_PAGE, self.ties).await?;
            one.offset += EXPORT_PAGE;
            one.done = page.lines.len() < EXPORT_PAGE;
            return Ok(page.lines);
        }
        let mut out = Vec::with_capacity(EXPORT_PAGE);
        while out.len() < EXPORT_PAGE {
            for sh in self.shards.iter_mut().filter(|s| s.buffer.is_empty() && !s.done) {
                let page = sh.client.export(sh.offset, EXPORT_PAGE, self.ties).await?;
                sh.offset += EXPORT_PAGE;
                sh.done = page.lines.len() < EXPORT_PAGE;
                let spec = &self.spec;
                sh.buffer.extend(page.lines.into_iter().map(|l| {
                    let spot = Spot::of(
                        spec.order,
                        spec.tiebreak,
                        l.score,
                        l.subscore.unwrap_or(0.0),
                        l.reached,
                        &l.member,
                    );
                    (spot, l)
                }));
            }
            // The best head among the shards (each shard's lines are in order).
            let best = self
                .shards
                .iter()
                .enumerate()
                .filter_map(|(i, s)| s.buffer.front().map(|(spot, _)| (i, spot)))
                .min_by(|a, b| a.1.cmp(b.1))
                .map(|(i, _)| i);
            let Some((spot, mut line)) =
                best.and_then(|i| self.shards.get_mut(i)).and_then(|s| s.buffer.pop_front())
            else {
                break;
            };
            self.given += 1;
            line.rank = match (&self.last, self.ties) {
                (Some((prev, r)), Ties::Shared) if prev.ties_with(&spot) => *r,
                _ => self.given,
            };
            self.last = Some((spot, line.rank));
            out.push(line);
        }
        Ok(out)
    }
}
