//! The live socket, `GET /v1/boards/{board}/live?limit=&window=`: typed
//! snapshot/update messages, reconnecting with backoff until the board is
//! removed or the stream is dropped.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::models::{LiveKind, LiveMessage, Window};
use crate::{seg, ApiError, Error, Result};

#[derive(Debug, Clone)]
pub struct LiveOptions {
    /// Entries per message, 1–100 (default: the server's, 10).
    pub limit: Option<u32>,
    pub window: Option<Window>,
    /// The n-th reconnect waits about min(cap, base·2^n), half of it jittered.
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
}

impl Default for LiveOptions {
    fn default() -> Self {
        Self { limit: None, window: None, backoff_base: Duration::from_millis(500), backoff_cap: Duration::from_secs(15) }
    }
}

/// The n-th backoff delay with "equal jitter": half fixed, half random, so
/// many viewers of a restarted server do not all come back at once.
pub fn backoff_delay(attempt: u32, base: Duration, cap: Duration) -> Duration {
    let exp = base.saturating_mul(1u32 << attempt.min(20)).min(cap);
    let random = (uuid::Uuid::new_v4().as_u128() % 1_000_000) as f64 / 1_000_000.0;
    exp / 2 + exp.mul_f64(random / 2.0)
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A board's live feed. Call [`LiveStream::next`] in a loop.
pub struct LiveStream {
    url: String,
    opts: LiveOptions,
    ws: Option<Socket>,
    attempt: u32,
    /// Reconnects so far (a test or a status line can show it).
    pub reconnects: u64,
}

impl LiveStream {
    pub(crate) fn new(base: &str, board: &str, opts: LiveOptions) -> Self {
        let ws_base = if let Some(rest) = base.strip_prefix("https://") {
            format!("wss://{rest}")
        } else {
            format!("ws://{}", base.strip_prefix("http://").unwrap_or(base))
        };
        let mut url = format!("{ws_base}/v1/boards/{}/live", seg(board));
        let mut sep = '?';
        if let Some(l) = opts.limit {
            url.push_str(&format!("{sep}limit={l}"));
            sep = '&';
        }
        if let Some(w) = opts.window {
            url.push_str(&format!("{sep}window={}", w.as_str()));
        }
        Self { url, opts, ws: None, attempt: 0, reconnects: 0 }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The next snapshot or update. Reconnects (with backoff) when the socket
    /// drops; after a reconnect the first message is a fresh `snapshot`.
    /// Errors: the board was removed (`Error::BoardRemoved`), or the server
    /// refused the upgrade with a 4xx other than 429 (`Error::Api`: an
    /// unknown board or a bad parameter; retrying would not help).
    pub async fn next(&mut self) -> Result<LiveMessage> {
        loop {
            let Some(ws) = self.ws.as_mut() else {
                match tokio_tungstenite::connect_async(self.url.as_str()).await {
                    Ok((ws, _)) => self.ws = Some(ws),
                    Err(tungstenite::Error::Http(resp)) if resp.status().is_client_error() && resp.status() != 429 => {
                        let body = resp.body().as_deref().unwrap_or_default();
                        let mut e = serde_json::from_slice::<serde_json::Value>(body)
                            .ok()
                            .and_then(|v| serde_json::from_value::<ApiError>(v.get("error")?.clone()).ok())
                            .unwrap_or(ApiError {
                                status: 0,
                                code: "http_error".into(),
                                message: format!("live upgrade refused: {}", resp.status()),
                                field: None,
                                index: None,
                                retry_after: None,
                            });
                        e.status = resp.status().as_u16();
                        return Err(Error::Api(e));
                    }
                    Err(_) => self.backoff().await,
                }
                continue;
            };
            match ws.next().await {
                Some(Ok(Message::Text(t))) => {
                    // Anything else (e.g. "pong") is not a message of the feed.
                    if let Ok(msg) = serde_json::from_str::<LiveMessage>(t.as_str()) {
                        if msg.kind == LiveKind::Snapshot {
                            self.attempt = 0; // healthy again
                        }
                        return Ok(msg);
                    }
                }
                Some(Ok(Message::Close(Some(frame)))) if frame.code == CloseCode::Library(4404) => {
                    self.ws = None;
                    return Err(Error::BoardRemoved);
                }
                Some(Ok(Message::Ping(p))) => {
                    let _ = ws.send(Message::Pong(p)).await;
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => {
                    self.ws = None;
                    self.backoff().await;
                }
            }
        }
    }

    async fn backoff(&mut self) {
        let d = backoff_delay(self.attempt, self.opts.backoff_base, self.opts.backoff_cap);
        self.attempt += 1;
        self.reconnects += 1;
        tokio::time::sleep(d).await;
    }

    /// Closes the socket (politely); a later `next` connects again.
    pub async fn close(&mut self) {
        if let Some(mut ws) = self.ws.take() {
            let _ = ws.close(None).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_the_cap_with_equal_jitter() {
        let (b, c) = (Duration::from_millis(500), Duration::from_secs(15));
        for attempt in 0..10 {
            let exp = (b * (1 << attempt)).min(c);
            let d = backoff_delay(attempt, b, c);
            assert!(d >= exp / 2 && d <= exp, "attempt {attempt}: {d:?} not in [{:?}, {exp:?}]", exp / 2);
        }
    }

    #[test]
    fn live_urls() {
        let s = LiveStream::new("https://p.example", "a b", LiveOptions { limit: Some(5), window: Some(Window::Day), ..Default::default() });
        assert_eq!(s.url(), "wss://p.example/v1/boards/a%20b/live?limit=5&window=day");
        let s = LiveStream::new("http://127.0.0.1:8787", "likes", LiveOptions::default());
        assert_eq!(s.url(), "ws://127.0.0.1:8787/v1/boards/likes/live");
    }
}
