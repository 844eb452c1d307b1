//! Webhook deliveries: their bodies, and the check of
//! `Podium-Signature: t=<unix s>,v1=<hex HMAC-SHA256 of "<t>.<body>">`
//! (docs/api.md, "Webhooks (1.1)").

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

use crate::models::{Entry, Window};

/// Fields every delivery carries. `id` is also the `Podium-Event-Id` header: dedupe by it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct HookCommon {
    pub id: String,
    pub board: String,
    pub window: Window,
    /// `all`, `2026-11-22`, `2026-W47`, `2026-11`, or `s2` for a season.
    pub period: String,
    /// When it was made, ms since the epoch.
    pub at: i64,
}

/// A verified delivery.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum WebhookEvent {
    TopChanged {
        #[serde(flatten)]
        common: HookCommon,
        entries: Vec<Entry>,
        entered: Vec<String>,
        left: Vec<String>,
    },
    Overtaken {
        #[serde(flatten)]
        common: HookCommon,
        member: String,
        by: String,
        rank: u64,
    },
    PeriodEnded {
        #[serde(flatten)]
        common: HookCommon,
        total: u64,
        entries: Vec<Entry>,
    },
}

impl WebhookEvent {
    pub fn common(&self) -> &HookCommon {
        match self {
            WebhookEvent::TopChanged { common, .. }
            | WebhookEvent::Overtaken { common, .. }
            | WebhookEvent::PeriodEnded { common, .. } => common,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum WebhookError {
    #[error("Podium-Signature has no t=<unix seconds>")]
    NoTimestamp,
    #[error("Podium-Signature has no v1=<64 hex>")]
    NoSignature,
    #[error("signature time {0} is outside the tolerance")]
    Expired(i64),
    #[error("no v1 signature matches the secret")]
    Mismatch,
    #[error("signed body is not a delivery: {0}")]
    Body(String),
}

type HmacSha256 = Hmac<Sha256>;

fn hex32(s: &str) -> Option<[u8; 32]> {
    let b = s.as_bytes();
    if b.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in b.chunks_exact(2).enumerate() {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        out[i] = (hi * 16 + lo) as u8;
    }
    Some(out)
}

/// Checks a delivery against the hook's secret and returns its typed body.
/// `raw_body` must be the bytes as received; `tolerance` bounds how far `t`
/// may be from now (a replayed old delivery is refused; 300 s is usual).
pub fn verify_webhook(
    secret: &[u8],
    header: &str,
    raw_body: &[u8],
    tolerance: Duration,
) -> Result<WebhookEvent, WebhookError> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    verify_webhook_at(secret, header, raw_body, tolerance, now)
}

/// [`verify_webhook`] with the clock given (unix seconds), for tests.
pub fn verify_webhook_at(
    secret: &[u8],
    header: &str,
    raw_body: &[u8],
    tolerance: Duration,
    now: i64,
) -> Result<WebhookEvent, WebhookError> {
    let mut t: Option<i64> = None;
    let mut sigs = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = v.trim().parse().ok().filter(|t: &i64| *t >= 0),
            // Several v1 values may come (while a secret is rotated): any one will do.
            Some(("v1", v)) => sigs.extend(hex32(v.trim())),
            _ => {}
        }
    }
    let t = t.ok_or(WebhookError::NoTimestamp)?;
    if sigs.is_empty() {
        return Err(WebhookError::NoSignature);
    }
    if now.abs_diff(t) > tolerance.as_secs() {
        return Err(WebhookError::Expired(t));
    }
    let mut ok = false;
    for sig in &sigs {
        let mut mac = HmacSha256::new_from_slice(secret).map_err(|_| WebhookError::Mismatch)?;
        mac.update(t.to_string().as_bytes());
        mac.update(b".");
        mac.update(raw_body);
        // verify_slice compares in constant time.
        ok |= mac.verify_slice(sig).is_ok();
    }
    if !ok {
        return Err(WebhookError::Mismatch);
    }
    serde_json::from_slice(raw_body).map_err(|e| WebhookError::Body(e.to_string()))
}

/// The header Podium would send for this body at time `t`: for testing a receiver.
pub fn sign_webhook(secret: &[u8], raw_body: &[u8], t: i64) -> String {
    // new_from_slice accepts a key of any length for HMAC; the fallback keeps this total.
    let Ok(mut mac) = HmacSha256::new_from_slice(secret) else { return String::new() };
    mac.update(format!("{t}.").as_bytes());
    mac.update(raw_body);
    let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    format!("t={t},v1={hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str = r#"{"id":"e1","type":"overtaken","board":"likes","window":"all","period":"all","at":1764000000000,"member":"bob","by":"carol","rank":2}"#;

    #[test]
    fn known_vector_matches_node_crypto() {
        // From node: createHmac('sha256','0123456789abcdef').update('1764000000.'+BODY).digest('hex')
        let h = sign_webhook(b"0123456789abcdef", BODY.as_bytes(), 1_764_000_000);
        assert_eq!(h, "t=1764000000,v1=67d9254d5553106f2f9ef5444ad6952e5eaa652aff8bbf5d2c3d0604facb2976");
        let ev = verify_webhook_at(b"0123456789abcdef", &h, BODY.as_bytes(), Duration::from_secs(300), 1_764_000_100);
        match ev {
            Ok(WebhookEvent::Overtaken { member, by, rank, common }) => {
                assert_eq!((member.as_str(), by.as_str(), rank, common.id.as_str()), ("bob", "carol", 2, "e1"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn refuses_wrong_secret_tampered_body_old_time_and_bad_headers() {
        let h = sign_webhook(b"0123456789abcdef", BODY.as_bytes(), 1_764_000_000);
        let tol = Duration::from_secs(300);
        let at = 1_764_000_000;
        assert_eq!(verify_webhook_at(b"another-secret-16", &h, BODY.as_bytes(), tol, at), Err(WebhookError::Mismatch));
        let tampered = BODY.replace("\"rank\":2", "\"rank\":1");
        assert_eq!(verify_webhook_at(b"0123456789abcdef", &h, tampered.as_bytes(), tol, at), Err(WebhookError::Mismatch));
        assert_eq!(
            verify_webhook_at(b"0123456789abcdef", &h, BODY.as_bytes(), tol, at + 301),
            Err(WebhookError::Expired(at))
        );
        assert_eq!(verify_webhook_at(b"k", "v1=00", BODY.as_bytes(), tol, at), Err(WebhookError::NoTimestamp));
        assert_eq!(verify_webhook_at(b"k", "t=5,v1=zz", BODY.as_bytes(), tol, 5), Err(WebhookError::NoSignature));
    }
}
