//! A typed client for Podium's HTTP API (docs/api.md; docs/openapi.yaml).
//!
//! ```no_run
//! # async fn demo() -> Result<(), podium_client::Error> {
//! use podium_client::{Client, Event};
//! let podium = Client::builder("http://127.0.0.1:8787").ingest_key("dev-ingest-key").build()?;
//! podium.ingest(&[Event::new("like", "alice").board("likes")]).await?;
//! let top = podium.top("likes", &Default::default()).await?;
//! println!("{} leads", top.entries[0].member);
//! # Ok(()) }
//! ```
//!
//! * Ingest gives every event without an `id` a random UUID and sends an
//!   `Idempotency-Key`, so retries (of 429 and 503, honouring `Retry-After`)
//!   never count an event twice. Other calls retry only when that is safe:
//!   reads, PUTs, and POST/DELETE with an `Idempotency-Key`.
//! * [`Client::live`] follows a board's live socket and reconnects with backoff.
//! * [`verify_webhook`] checks a delivery's `Podium-Signature`.
//! * [`blocking::Client`] wraps it all for threaded programs (tools/load).

pub mod blocking;
mod live;
pub mod models;
mod webhook;

use std::time::Duration;

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
pub use reqwest::Method;
use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

pub use live::{backoff_delay, LiveOptions, LiveStream};
pub use models::*;
pub use webhook::{sign_webhook, verify_webhook, verify_webhook_at, HookCommon, WebhookError, WebhookEvent};

/// The API's error body, `{"error": {"code", "message", "field"?, "index"?}}`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ApiError {
    #[serde(skip)]
    pub status: u16,
    /// Stable, snake_case (`board_not_found`, `invalid_event`, ...); `http_error` when the body had none.
    pub code: String,
    pub message: String,
    pub field: Option<String>,
    pub index: Option<u64>,
    /// Seconds, from `Retry-After`.
    #[serde(skip)]
    pub retry_after: Option<f64>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server answered outside 2xx (after any retries).
    #[error("HTTP {} {}: {}", .0.status, .0.code, .0.message)]
    Api(ApiError),
    #[error("request failed: {0}")]
    Http(#[from] reqwest::Error),
    #[error("HTTP {status}: body is not the expected JSON ({source}): {snippet}")]
    Decode { status: u16, source: serde_json::Error, snippet: String },
    #[error("live socket: {0}")]
    WebSocket(#[from] Box<tokio_tungstenite::tungstenite::Error>),
    /// The board was deleted while its live socket was open (close code 4404).
    #[error("the board was removed")]
    BoardRemoved,
    #[error("{0}")]
    Config(String),
}

impl Error {
    /// The HTTP status of an API answer, if this is one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api(e) => Some(e.status),
            _ => None,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Which key a request carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    None,
    Ingest,
    Admin,
}

/// A request as sent, answered with its status and body as text (no retries,
/// no error for 4xx/5xx): for programs that count statuses themselves.
#[derive(Debug, Clone)]
pub struct RawReply {
    pub status: u16,
    /// `Retry-After` in seconds, when sent as a number.
    pub retry_after: Option<f64>,
    pub body: String,
}

impl RawReply {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as JSON (any shape).
    pub fn json(&self) -> Result<serde_json::Value> {
        serde_json::from_str(&self.body).map_err(|source| Error::Decode {
            status: self.status,
            source,
            snippet: snippet(self.body.as_bytes()),
        })
    }
}

/// Query of the ranking reads: `window` and `period` (`2026-11-22`, `s2`, ...).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReadQuery {
    pub window: Option<Window>,
    pub period: Option<String>,
    /// `top`: entries (1–1000); `around`: radius (1–100).
    pub limit: Option<u32>,
    pub offset: Option<u64>,
}

impl ReadQuery {
    pub fn window(w: Window) -> Self {
        Self { window: Some(w), ..Self::default() }
    }
    fn pairs(&self, count_name: &'static str) -> Vec<(&'static str, String)> {
        present([
            ("window", self.window.map(|w| w.as_str().to_string())),
            ("period", self.period.clone()),
            (count_name, self.limit.map(|l| l.to_string())),
            ("offset", self.offset.map(|o| o.to_string())),
        ])
    }
}

/// encodeURIComponent's set: a member id with `/`, `?` or spaces stays one segment.
const SEGMENT: &AsciiSet =
    &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'!').remove(b'~').remove(b'*').remove(b'\'').remove(b'(').remove(b')');

fn seg(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT).to_string()
}

pub struct ClientBuilder {
    base: String,
    ingest_key: Option<String>,
    admin_key: Option<String>,
    retries: u32,
    timeout: Duration,
    max_retry_delay: Duration,
}

impl ClientBuilder {
    pub fn ingest_key(mut self, k: impl Into<String>) -> Self {
        self.ingest_key = Some(k.into());
        self
    }
    pub fn admin_key(mut self, k: impl Into<String>) -> Self {
        self.admin_key = Some(k.into());
        self
    }
    /// How many times a 429/503 is retried (default 4).
    pub fn retries(mut self, n: u32) -> Self {
        self.retries = n;
        self
    }
    /// Bound on each request, connect to last byte (default 30 s).
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }
    /// The longest wait between two tries (default 30 s).
    pub fn max_retry_delay(mut self, t: Duration) -> Self {
        self.max_retry_delay = t;
        self
    }
    pub fn build(self) -> Result<Client> {
        let base = self.base.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(Error::Config(format!("base URL must be http(s)://…, got {base:?}")));
        }
        let bearer = |k: Option<String>| -> Result<Option<HeaderValue>> {
            k.map(|k| {
                let mut v = HeaderValue::from_str(&format!("Bearer {k}"))
                    .map_err(|_| Error::Config("a key holds characters a header cannot".into()))?;
                v.set_sensitive(true);
                Ok(v)
            })
            .transpose()
        };
        let admin = bearer(self.admin_key)?;
        // The admin key may also ingest.
        let ingest = bearer(self.ingest_key)?.or_else(|| admin.clone());
        let http = reqwest::Client::builder().timeout(self.timeout).build()?;
        Ok(Client { http, base, ingest, admin, retries: self.retries, max_retry_delay: self.max_retry_delay })
    }
}

/// The async client. Cheap to clone (one connection pool).
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    ingest: Option<HeaderValue>,
    admin: Option<HeaderValue>,
    retries: u32,
    max_retry_delay: Duration,
}

struct Req {
    method: Method,
    path: String,
    query: Vec<(&'static str, String)>,
    auth: Auth,
    body: Option<(&'static str, Vec<u8>)>,
    idem: Option<String>,
    /// Whether resending cannot count anything twice.
    retry: bool,
}

impl Req {
    fn new(method: Method, path: String, auth: Auth) -> Self {
        // Reads and PUTs (they set a state) may be resent; POST/DELETE only with a key.
        let retry = matches!(method, Method::GET | Method::HEAD | Method::PUT);
        Req { method, path, query: Vec::new(), auth, body: None, idem: None, retry }
    }
    fn json<T: Serialize + ?Sized>(mut self, body: &T) -> Result<Self> {
        let bytes = serde_json::to_vec(body)
            .map_err(|e| Error::Config(format!("body does not serialise: {e}")))?;
        self.body = Some(("application/json", bytes));
        Ok(self)
    }
    /// An `Idempotency-Key` (a fresh UUID unless given): the server answers a repeat with the first answer.
    fn idempotent(mut self, key: Option<&str>) -> Self {
        self.idem = Some(key.map(str::to_string).unwrap_or_else(|| uuid::Uuid::new_v4().to_string()));
        self.retry = true;
        self
    }
    fn query(mut self, q: Vec<(&'static str, String)>) -> Self {
        self.query = q;
        self
    }
}

impl Client {
    pub fn builder(base_url: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            base: base_url.into(),
            ingest_key: None,
            admin_key: None,
            retries: 4,
            timeout: Duration::from_secs(30),
            max_retry_delay: Duration::from_secs(30),
        }
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    fn build(&self, r: &Req) -> Result<reqwest::RequestBuilder> {
        let mut b = self.http.request(r.method.clone(), format!("{}{}", self.base, r.path));
        if !r.query.is_empty() {
            b = b.query(&r.query);
        }
        let key = match r.auth {
            Auth::None => None,
            Auth::Ingest => Some(self.ingest.as_ref().ok_or_else(|| Error::Config("no ingest or admin key".into()))?),
            Auth::Admin => Some(self.admin.as_ref().ok_or_else(|| Error::Config("no admin key".into()))?),
        };
        if let Some(k) = key {
            b = b.header(AUTHORIZATION, k.clone());
        }
        if let Some(k) = &r.idem {
            b = b.header("idempotency-key", k);
        }
        if let Some((ct, bytes)) = &r.body {
            b = b.header(CONTENT_TYPE, *ct).body(bytes.clone());
        }
        Ok(b)
    }

    /// Sends with retries of 429/503 when safe; any answer outside 2xx is `Error::Api`.
    async fn send(&self, r: Req) -> Result<(StatusCode, Vec<u8>)> {
        let mut attempt = 0u32;
        loop {
            let resp = self.build(&r)?.send().await?;
            let status = resp.status();
            let retry_after = retry_after(resp.headers());
            if r.retry
                && attempt < self.retries
                && matches!(status, StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE)
            {
                let wait = retry_after
                    .map(Duration::from_secs_f64)
                    .unwrap_or_else(|| Duration::from_millis(250 << attempt.min(10)));
                tokio::time::sleep(wait.min(self.max_retry_delay)).await;
                attempt += 1;
                continue;
            }
            let body = resp.bytes().await?.to_vec();
            if !status.is_success() {
                #[derive(Deserialize)]
                struct Wrapper {
                    error: ApiError,
                }
                let mut e = serde_json::from_slice::<Wrapper>(&body).map(|w| w.error).unwrap_or_else(|_| ApiError {
                    status: 0,
                    code: "http_error".into(),
                    message: snippet(&body),
                    field: None,
                    index: None,
                    retry_after: None,
                });
                e.status = status.as_u16();
                e.retry_after = retry_after;
                return Err(Error::Api(e));
            }
            return Ok((status, body));
        }
    }

    async fn json<T: DeserializeOwned>(&self, r: Req) -> Result<T> {
        let (status, body) = self.send(r).await?;
        serde_json::from_slice(&body).map_err(|source| Error::Decode {
            status: status.as_u16(),
            source,
            snippet: snippet(&body),
        })
    }

    async fn empty(&self, r: Req) -> Result<()> {
        self.send(r).await.map(|_| ())
    }

    /// One request as given, its answer as data whatever the status (no
    /// retries): for load tools that tally statuses. `path` starts with `/`.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        auth: Auth,
        body: Option<(&'static str, Vec<u8>)>,
        idempotency_key: Option<&str>,
    ) -> Result<RawReply> {
        let mut r = Req::new(method, path.to_string(), auth);
        r.body = body;
        r.idem = idempotency_key.map(str::to_string);
        let resp = self.build(&r)?.send().await?;
        let status = resp.status().as_u16();
        let retry_after = retry_after(resp.headers());
        let body = resp.text().await?;
        Ok(RawReply { status, retry_after, body })
    }

    pub async fn health(&self) -> Result<Health> {
        self.json(Req::new(Method::GET, "/v1/health".into(), Auth::None)).await
    }

    // ---------- ingest ----------

    fn with_ids(events: &[Event]) -> Vec<Event> {
        events
            .iter()
            .map(|e| {
                let mut e = e.clone();
                e.id.get_or_insert_with(|| uuid::Uuid::new_v4().to_string());
                e
            })
            .collect()
    }

    /// `POST /v1/events` (1–1000 events). Events without an id get a UUID,
    /// so the retries this makes (429/503) and any the caller makes with the
    /// same events count each event once.
    pub async fn ingest(&self, events: &[Event]) -> Result<Accepted> {
        let r = Req::new(Method::POST, "/v1/events".into(), Auth::Ingest).json(&Self::with_ids(events))?.idempotent(None);
        self.json(r).await
    }

    /// `POST /v1/events?wait=applied` (≤ 100 events): answers once applied, with standings.
    pub async fn ingest_and_wait(&self, events: &[Event]) -> Result<Applied> {
        let r = Req::new(Method::POST, "/v1/events".into(), Auth::Ingest)
            .json(&Self::with_ids(events))?
            .idempotent(None)
            .query(vec![("wait", "applied".into())]);
        self.json(r).await
    }

    // ---------- boards ----------

    pub async fn list_boards(&self, limit: Option<u32>, cursor: Option<&str>, prefix: Option<&str>) -> Result<BoardPage> {
        let q = present([("limit", limit.map(|l| l.to_string())), ("cursor", cursor.map(str::to_string)), ("prefix", prefix.map(str::to_string))]);
        self.json(Req::new(Method::GET, "/v1/boards".into(), Auth::None).query(q)).await
    }

    pub async fn board(&self, board: &str) -> Result<Board> {
        self.json(Req::new(Method::GET, format!("/v1/boards/{}", seg(board)), Auth::None)).await
    }

    pub async fn put_board(&self, board: &str, settings: &BoardSettings) -> Result<Board> {
        self.json(Req::new(Method::PUT, format!("/v1/boards/{}", seg(board)), Auth::Admin).json(settings)?).await
    }

    pub async fn delete_board(&self, board: &str) -> Result<()> {
        self.empty(Req::new(Method::DELETE, format!("/v1/boards/{}", seg(board)), Auth::Admin).idempotent(None)).await
    }

    // ---------- routes ----------

    pub async fn routes(&self) -> Result<Routes> {
        self.json(Req::new(Method::GET, "/v1/routes".into(), Auth::None)).await
    }

    pub async fn route(&self, event_type: &str) -> Result<Route> {
        self.json(Req::new(Method::GET, format!("/v1/routes/{}", seg(event_type)), Auth::None)).await
    }

    pub async fn put_route(&self, event_type: &str, targets: &[RouteTarget]) -> Result<Route> {
        #[derive(Serialize)]
        struct Body<'a> {
            targets: &'a [RouteTarget],
        }
        let r = Req::new(Method::PUT, format!("/v1/routes/{}", seg(event_type)), Auth::Admin).json(&Body { targets })?;
        self.json(r).await
    }

    pub async fn delete_route(&self, event_type: &str) -> Result<()> {
        self.empty(Req::new(Method::DELETE, format!("/v1/routes/{}", seg(event_type)), Auth::Admin).idempotent(None))
            .await
    }

    // ---------- rankings (public) ----------

    /// The top `q.limit` (default 10) from `q.offset`.
    pub async fn top(&self, board: &str, q: &ReadQuery) -> Result<Listing> {
        self.json(Req::new(Method::GET, format!("/v1/boards/{}/top", seg(board)), Auth::None).query(q.pairs("limit")))
            .await
    }

    /// A member's standing; not on the board → `Error::Api` 404 `member_not_found`.
    pub async fn member(&self, board: &str, member: &str, q: &ReadQuery) -> Result<Standing> {
        let path = format!("/v1/boards/{}/members/{}", seg(board), seg(member));
        self.json(Req::new(Method::GET, path, Auth::None).query(q.pairs("limit"))).await
    }

    /// Up to `q.limit` (the radius, default 5) entries each side of the member.
    pub async fn around(&self, board: &str, member: &str, q: &ReadQuery) -> Result<Listing> {
        let path = format!("/v1/boards/{}/members/{}/around", seg(board), seg(member));
        self.json(Req::new(Method::GET, path, Auth::None).query(q.pairs("radius"))).await
    }

    /// Those of `members` (≤ 100) on the board, best first.
    pub async fn lookup(&self, board: &str, members: &[&str], q: &ReadQuery) -> Result<Listing> {
        #[derive(Serialize)]
        struct Body<'a> {
            members: &'a [&'a str],
        }
        let mut r = Req::new(Method::POST, format!("/v1/boards/{}/lookup", seg(board)), Auth::None)
            .json(&Body { members })?
            .query(q.pairs("limit"));
        r.retry = true; // a read
        self.json(r).await
    }

    /// Follows the board's live socket (see [`LiveStream::next`]).
    pub fn live(&self, board: &str, opts: LiveOptions) -> LiveStream {
        LiveStream::new(&self.base, board, opts)
    }

    // ---------- seasons ----------

    pub async fn seasons(&self, board: &str) -> Result<Seasons> {
        self.json(Req::new(Method::GET, format!("/v1/boards/{}/seasons", seg(board)), Auth::None)).await
    }

    /// Archives the all window's ranking and starts a new season (once per key).
    pub async fn new_season(&self, board: &str, idempotency_key: Option<&str>) -> Result<NewSeason> {
        let r = Req::new(Method::POST, format!("/v1/boards/{}/seasons", seg(board)), Auth::Admin)
            .idempotent(idempotency_key);
        self.json(r).await
    }

    // ---------- members (admin) ----------

    pub async fn remove_member(&self, board: &str, member: &str) -> Result<Removed> {
        let path = format!("/v1/boards/{}/members/{}", seg(board), seg(member));
        self.json(Req::new(Method::DELETE, path, Auth::Admin).idempotent(None)).await
    }

    pub async fn set_hidden(&self, board: &str, member: &str, hidden: bool) -> Result<HiddenState> {
        let path = format!("/v1/boards/{}/members/{}/hidden", seg(board), seg(member));
        let r = if hidden {
            Req::new(Method::PUT, path, Auth::Admin)
        } else {
            Req::new(Method::DELETE, path, Auth::Admin).idempotent(None)
        };
        self.json(r).await
    }

    pub async fn hidden(&self, board: &str) -> Result<HiddenList> {
        self.json(Req::new(Method::GET, format!("/v1/boards/{}/hidden", seg(board)), Auth::Admin)).await
    }

    /// Erases a member from every board; poll [`Client::erasure`] until `done`.
    pub async fn erase_member(&self, member: &str) -> Result<ErasureStarted> {
        self.json(Req::new(Method::DELETE, format!("/v1/members/{}", seg(member)), Auth::Admin).idempotent(None)).await
    }

    pub async fn erasure(&self, id: &str) -> Result<Erasure> {
        self.json(Req::new(Method::GET, format!("/v1/erasures/{}", seg(id)), Auth::Admin)).await
    }

    // ---------- export / import (admin) ----------

    /// The ranking as NDJSON (`csv: false`) or CSV text, best first.
    pub async fn export(&self, board: &str, q: &ReadQuery, csv: bool) -> Result<String> {
        let mut pairs = q.pairs("limit");
        pairs.push(("format", if csv { "csv" } else { "ndjson" }.into()));
        let r = Req::new(Method::GET, format!("/v1/boards/{}/export", seg(board)), Auth::Admin).query(pairs);
        let (_, body) = self.send(r).await?;
        Ok(String::from_utf8_lossy(&body).into_owned())
    }

    /// Sets members' scores (≤ 1 MiB of NDJSON per call, all or nothing).
    pub async fn import(&self, board: &str, lines: &[ImportLine], q: &ReadQuery, idempotency_key: Option<&str>) -> Result<Imported> {
        let mut text = Vec::new();
        for l in lines {
            serde_json::to_writer(&mut text, l).map_err(|e| Error::Config(format!("import line: {e}")))?;
            text.push(b'\n');
        }
        let mut r = Req::new(Method::POST, format!("/v1/boards/{}/import", seg(board)), Auth::Admin)
            .idempotent(idempotency_key)
            .query(q.pairs("limit"));
        r.body = Some(("application/x-ndjson", text));
        self.json(r).await
    }

    // ---------- dead letters (admin) ----------

    pub async fn dead_letters(&self, limit: Option<u32>, cursor: Option<&str>) -> Result<DeadLetterPage> {
        let q = present([("limit", limit.map(|l| l.to_string())), ("cursor", cursor.map(str::to_string))]);
        self.json(Req::new(Method::GET, "/v1/dead-letters".into(), Auth::Admin).query(q)).await
    }

    /// Re-drives the given dead letters, or (`None`) the first 1000.
    pub async fn redrive(&self, ids: Option<&[String]>) -> Result<Redriven> {
        let body = match ids {
            Some(ids) => serde_json::json!({ "ids": ids }),
            None => serde_json::json!({}),
        };
        self.json(Req::new(Method::POST, "/v1/dead-letters/redrive".into(), Auth::Admin).json(&body)?.idempotent(None))
            .await
    }

    pub async fn delete_dead_letter(&self, id: &str) -> Result<()> {
        self.empty(Req::new(Method::DELETE, format!("/v1/dead-letters/{}", seg(id)), Auth::Admin).idempotent(None))
            .await
    }

    // ---------- hooks (admin) ----------

    pub async fn hooks(&self) -> Result<Hooks> {
        self.json(Req::new(Method::GET, "/v1/hooks".into(), Auth::Admin)).await
    }

    pub async fn hook(&self, name: &str) -> Result<Hook> {
        self.json(Req::new(Method::GET, format!("/v1/hooks/{}", seg(name)), Auth::Admin)).await
    }

    /// Creates (`secret` required) or replaces a hook.
    pub async fn put_hook(&self, name: &str, hook: &HookBody) -> Result<Hook> {
        self.json(Req::new(Method::PUT, format!("/v1/hooks/{}", seg(name)), Auth::Admin).json(hook)?).await
    }

    pub async fn delete_hook(&self, name: &str) -> Result<()> {
        self.empty(Req::new(Method::DELETE, format!("/v1/hooks/{}", seg(name)), Auth::Admin).idempotent(None)).await
    }

    pub async fn deliveries(&self, name: &str, limit: Option<u32>) -> Result<Deliveries> {
        let q = present([("limit", limit.map(|l| l.to_string()))]);
        self.json(Req::new(Method::GET, format!("/v1/hooks/{}/deliveries", seg(name)), Auth::Admin).query(q)).await
    }
}

/// The query pairs that have a value.
fn present<const N: usize>(pairs: [(&'static str, Option<String>); N]) -> Vec<(&'static str, String)> {
    pairs.into_iter().filter_map(|(k, v)| Some((k, v?))).collect()
}

fn retry_after(h: &reqwest::header::HeaderMap) -> Option<f64> {
    h.get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
}

fn snippet(body: &[u8]) -> String {
    String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_encode_like_encode_uri_component() {
        assert_eq!(seg("a b/c?d"), "a%20b%2Fc%3Fd");
        assert_eq!(seg("Zoë"), "Zo%C3%AB");
        assert_eq!(seg("a-b_c.d~e"), "a-b_c.d~e");
    }

    #[test]
    fn route_values_read_both_forms() {
        let r: Routes = serde_json::from_str(r#"{"routes":{"order":[{"board":"sales","value":"value"},{"board":"orders","value":1}],"like":[{"board":"likes"}]}}"#).unwrap();
        assert_eq!(r.routes["order"][0].value, Some(TargetValue::Event(EventValue::Value)));
        assert_eq!(r.routes["order"][1].value, Some(TargetValue::Fixed(1.0)));
        assert_eq!(r.routes["like"][0].value, None);
    }
}
