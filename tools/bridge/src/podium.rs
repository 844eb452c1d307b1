//! Podium's ingest API as the sources use it: a batch of mapped events goes
//! out in as few `POST /v1/events` as the limits allow (≤ 1000 events and
//! < 1 MiB each). A request is all-or-nothing (API.md), so an event Podium
//! rejects (400/422 naming its `index`) is set aside for the dead letters and
//! the rest is sent again at once; anything that says "not now" (5xx, 429,
//! no answer) is returned to the source, which retries after a backoff.

use std::collections::VecDeque;
use std::time::Duration;

use crate::config::PodiumConfig;
use crate::error::{Error, Result};
use crate::mapping::Event;

/// Podium's body limit is 1 MiB; leave room for the brackets and commas.
const MAX_BODY: usize = 1_000_000;

/// Where one event of a batch stands.
#[derive(Debug, Clone, PartialEq)]
pub enum State {
    Pending,
    Accepted,
    /// Podium refused this event; the reason goes with its dead letter.
    Rejected(String),
}

/// One source batch's events, serialized once, and where each stands. A
/// batch that failed half-way keeps its states, so a retry sends only what
/// Podium has not accepted yet.
pub struct Batch {
    json: Vec<String>,
    pub states: Vec<State>,
}

impl Batch {
    pub fn new(events: &[Event]) -> Batch {
        let json = events
            .iter()
            // An Event is strings, finite numbers and JSON values, so this
            // cannot fail; were it to, Podium refuses the `null` by index
            // and that message becomes a dead letter, not a broken body.
            .map(|e| serde_json::to_string(e).unwrap_or_else(|_| "null".into()))
            .collect::<Vec<_>>();
        Batch { states: vec![State::Pending; json.len()], json }
    }

    fn pending(&self) -> Vec<usize> {
        (0..self.json.len()).filter(|&i| self.states[i] == State::Pending).collect()
    }
}

/// Why a round of sending stopped before the batch was done.
#[derive(Debug)]
pub struct Unavailable {
    pub reason: String,
    pub retry_after: Option<Duration>,
}

enum Answer {
    Accepted,
    Rejected { index: Option<usize>, reason: String },
    Unavailable(Unavailable),
}

pub struct Podium {
    http: reqwest::Client,
    events_url: String,
    auth: String,
    batch: usize,
}

impl Podium {
    pub fn new(cfg: &PodiumConfig) -> Result<Podium> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(cfg.timeout_ms))
            .user_agent(concat!("podium-bridge/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Config(format!("http client: {e}")))?;
        Ok(Podium { http, events_url: format!("{}/v1/events", cfg.url), auth: format!("Bearer {}", cfg.key), batch: cfg.batch })
    }

    /// Sends every pending event of `batch`. `Ok(Ok(()))`: each is now
    /// accepted or rejected. `Ok(Err(_))`: Podium is unavailable; what was
    /// accepted so far stays marked. `Err`: Podium refuses the bridge itself.
    pub async fn send(&self, batch: &mut Batch) -> Result<Result<(), Unavailable>> {
        let mut work: VecDeque<Vec<usize>> = self.chunks(batch, batch.pending()).into();
        while let Some(chunk) = work.pop_front() {
            match self.post(batch, &chunk).await? {
                Answer::Accepted => {
                    for &i in &chunk {
                        batch.states[i] = State::Accepted;
                    }
                }
                Answer::Rejected { index: Some(k), reason } if k < chunk.len() => {
                    batch.states[chunk[k]] = State::Rejected(reason);
                    let rest: Vec<usize> = chunk.iter().copied().filter(|&i| i != chunk[k]).collect();
                    if !rest.is_empty() {
                        work.push_front(rest);
                    }
                }
                Answer::Rejected { reason, .. } if chunk.len() == 1 => batch.states[chunk[0]] = State::Rejected(reason),
                // A refusal that names no event (a 413, say): halve until it does.
                Answer::Rejected { .. } => {
                    let (a, b) = chunk.split_at(chunk.len() / 2);
                    work.push_front(b.to_vec());
                    work.push_front(a.to_vec());
                }
                Answer::Unavailable(u) => return Ok(Err(u)),
            }
        }
        Ok(Ok(()))
    }

    /// Splits the pending events into requests within Podium's limits.
    fn chunks(&self, batch: &Batch, pending: Vec<usize>) -> Vec<Vec<usize>> {
        let mut out: Vec<Vec<usize>> = Vec::new();
        let mut bytes = 0;
        for i in pending {
            let len = batch.json[i].len() + 1;
            match out.last_mut() {
                Some(c) if c.len() < self.batch && bytes + len <= MAX_BODY => {
                    c.push(i);
                    bytes += len;
                }
                _ => {
                    out.push(vec![i]);
                    bytes = len + 1;
                }
            }
        }
        out
    }

    async fn post(&self, batch: &Batch, chunk: &[usize]) -> Result<Answer> {
        let mut body = String::with_capacity(chunk.iter().map(|&i| batch.json[i].len() + 1).sum::<usize>() + 2);
        body.push('[');
        for (n, &i) in chunk.iter().enumerate() {
            if n > 0 {
                body.push(',');
            }
            body.push_str(&batch.json[i]);
        }
        body.push(']');
        let sent = self
            .http
            .post(&self.events_url)
            .header(reqwest::header::AUTHORIZATION, &self.auth)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await;
        let resp = match sent {
            Ok(r) => r,
            Err(e) => return Ok(Answer::Unavailable(Unavailable { reason: transport_reason(&e), retry_after: None })),
        };
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let text = match resp.text().await {
            Ok(t) => t,
            Err(e) => return Ok(Answer::Unavailable(Unavailable { reason: transport_reason(&e), retry_after: None })),
        };
        Ok(match status {
            200..=299 => Answer::Accepted,
            400 | 413 | 422 => {
                let err = serde_json::from_str::<serde_json::Value>(&text).ok();
                let err = err.as_ref().and_then(|v| v.get("error"));
                let index = err.and_then(|e| e.get("index")).and_then(|i| i.as_u64()).map(|i| i as usize);
                let what = err
                    .map(|e| format!("{} {}: {}", status, e.get("code").and_then(|c| c.as_str()).unwrap_or("?"), e.get("message").and_then(|m| m.as_str()).unwrap_or("")))
                    .unwrap_or_else(|| format!("{status}: {}", text.chars().take(200).collect::<String>()));
                Answer::Rejected { index, reason: format!("podium rejected the event: {what}") }
            }
            401 | 403 | 404 | 405 | 415 => {
                return Err(Error::Podium(format!("{status} from {}: {}", self.events_url, text.chars().take(200).collect::<String>())))
            }
            _ => Answer::Unavailable(Unavailable { reason: format!("HTTP {status}"), retry_after }),
        })
    }
}

/// A short reason for a failed request, without the URL's details repeated.
fn transport_reason(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timeout".into()
    } else if e.is_connect() {
        "connection refused".into()
    } else {
        let mut s = e.to_string();
        let mut src = std::error::Error::source(e);
        while let Some(c) = src {
            s = format!("{s}: {c}");
            src = c.source();
        }
        s
    }
}
