//! Ingest -> visible latency, measured the way a person watching the page
//! would see it: a probe thread sends one event every ~200 ms through the same
//! `POST /v1/events` as the load, to a separate board with `op: last`, whose
//! value is the send time in ms; a WebSocket viewer of that board's live feed
//! records, for every probe value sent, how long until a pushed message showed
//! that value or a newer one. So each sample covers validation, the Queue, the
//! consumer, the board's apply, the live hub's (coalesced, <= 2/s) push and the
//! socket, under whatever load the senders put on the worker at the time.

use std::collections::VecDeque;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

use crate::client::Api;
use podium_load::now_ms;

#[derive(Default)]
pub struct Probe {
    /// Probe values (send times, ms) sent and not yet seen by the viewer.
    pending: Mutex<VecDeque<i64>>,
    /// Latency samples in ms.
    pub samples: Mutex<Vec<f64>>,
    /// The viewer has its first snapshot (the probe starts only then).
    pub connected: AtomicBool,
    pub stop_probe: AtomicBool,
    pub stop_viewer: AtomicBool,
    pub messages: AtomicU64,
    pub probes_sent: AtomicU64,
    pub probes_failed: AtomicU64,
    pub error: Mutex<Option<String>>,
}

impl Probe {
    pub fn pending_len(&self) -> usize {
        self.pending.lock().map(|p| p.len()).unwrap_or(0)
    }

    fn note_error(&self, e: String) {
        if let Ok(mut slot) = self.error.lock() {
            slot.get_or_insert(e);
        }
    }

    /// A pushed message showed the probe member with this score.
    fn seen(&self, score: i64) {
        let now = now_ms();
        let (Ok(mut pending), Ok(mut samples)) = (self.pending.lock(), self.samples.lock()) else {
            return;
        };
        while let Some(&t) = pending.front() {
            if t > score {
                break;
            }
            pending.pop_front();
            samples.push((now - t) as f64);
        }
    }
}

/// http(s)://host/... -> ws(s)://host/v1/boards/{board}/live?limit=10
pub fn live_url(base: &str, board: &str) -> String {
    let ws = if let Some(rest) = base.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = base.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        base.to_string()
    };
    format!("{ws}/v1/boards/{board}/live?limit=10")
}

fn set_timeout(ws: &mut WebSocket<MaybeTlsStream<TcpStream>>, d: Duration) -> std::io::Result<()> {
    match ws.get_mut() {
        MaybeTlsStream::Plain(s) => s.set_read_timeout(Some(d)),
        MaybeTlsStream::Rustls(s) => s.get_mut().set_read_timeout(Some(d)),
        // Other TLS backends are not compiled in.
        _ => Ok(()),
    }
}

/// Runs until `stop_viewer`; reconnects a few times if the socket drops.
pub fn viewer(url: &str, probe: &Probe) {
    let mut reconnects = 0;
    while !probe.stop_viewer.load(Ordering::Relaxed) && reconnects <= 5 {
        if reconnects > 0 {
            std::thread::sleep(Duration::from_millis(500));
        }
        reconnects += 1;
        let mut ws = match tungstenite::connect(url) {
            Ok((ws, _)) => ws,
            Err(e) => {
                probe.note_error(format!("live connect {url}: {e}"));
                continue;
            }
        };
        // A short read timeout lets the loop notice the stop flag.
        if let Err(e) = set_timeout(&mut ws, Duration::from_millis(300)) {
            probe.note_error(format!("live socket timeout: {e}"));
        }
        let mut last = i64::MIN;
        loop {
            if probe.stop_viewer.load(Ordering::Relaxed) {
                let _ = ws.close(None);
                let _ = ws.flush();
                return;
            }
            match ws.read() {
                Ok(Message::Text(t)) => {
                    probe.messages.fetch_add(1, Ordering::Relaxed);
                    probe.connected.store(true, Ordering::Relaxed);
                    if let Some(score) = probe_score(t.as_str()) {
                        if score > last {
                            last = score;
                            probe.seen(score);
                        }
                    }
                }
                Ok(Message::Close(frame)) => {
                    probe.note_error(format!("live socket closed by server: {frame:?}"));
                    break;
                }
                Ok(_) => {}
                Err(tungstenite::Error::Io(e))
                    if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                Err(e) => {
                    probe.note_error(format!("live socket: {e}"));
                    break;
                }
            }
        }
    }
}

/// The probe member's score in a snapshot/update message, if listed.
fn probe_score(text: &str) -> Option<i64> {
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    v.get("entries")?
        .as_array()?
        .iter()
        .find(|e| e.get("member").and_then(|m| m.as_str()) == Some("probe"))
        .and_then(|e| e.get("score"))
        .and_then(|s| s.as_f64())
        .map(|s| s as i64)
}

/// Sends one probe event every `interval` until `stop_probe`.
pub fn prober(api: &Api, event_type: &str, prefix: &str, interval: Duration, probe: &Probe) {
    let mut next = Instant::now();
    while !probe.stop_probe.load(Ordering::Relaxed) {
        let t = now_ms();
        // Queued before the POST: the viewer may see it before the 202 returns.
        if let Ok(mut p) = probe.pending.lock() {
            p.push_back(t);
        }
        let body =
            format!(r#"{{"type":"{event_type}","member":"probe","value":{t},"id":"{prefix}-probe-{t}"}}"#);
        probe.probes_sent.fetch_add(1, Ordering::Relaxed);
        let ok = matches!(api.post_events(&body, None), Ok(r) if r.ok());
        if !ok {
            // Never visible: drop it so it does not wait forever.
            probe.probes_failed.fetch_add(1, Ordering::Relaxed);
            if let Ok(mut p) = probe.pending.lock() {
                p.retain(|&x| x != t);
            }
        }
        next += interval;
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        } else {
            next = now;
        }
    }
}
