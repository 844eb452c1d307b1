//! Webhooks (API 1.1 "Outbound notifications"), the pure part: what a hook
//! listens to, which ranking events a change of a board period's top makes,
//! how deliveries are retried, and how a body is signed. The glue stores the
//! hooks, runs the board's alarm and the delivery Queue around this.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::domain::BoardName;

/// The ranking events a hook may listen to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HookEvent {
    /// A day, week, month or season ended: its final total and top.
    PeriodEnded,
    /// The order of a board period's top `top` changed.
    TopChanged,
    /// A member in the top `top` was passed.
    Overtaken,
}

impl HookEvent {
    pub const ALL: [HookEvent; 3] = [HookEvent::PeriodEnded, HookEvent::TopChanged, HookEvent::Overtaken];

    pub fn as_str(self) -> &'static str {
        match self {
            HookEvent::PeriodEnded => "period_ended",
            HookEvent::TopChanged => "top_changed",
            HookEvent::Overtaken => "overtaken",
        }
    }

    pub fn parse(s: &str) -> Option<HookEvent> {
        HookEvent::ALL.into_iter().find(|e| e.as_str() == s)
    }
}

/// The most entries a hook's `top` holds (and a board period watches).
pub const MAX_TOP: usize = 100;

/// A hook as stored: where to POST, what to send, and the signing secret
/// (write-only: [`Hook::view`] leaves it out).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Hook {
    pub url: String,
    pub events: Vec<HookEvent>,
    /// `None`: every board.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boards: Option<Vec<BoardName>>,
    pub top: usize,
    pub secret: String,
}

impl Hook {
    pub fn listens(&self, board: &str, event: HookEvent) -> bool {
        self.events.contains(&event)
            && self.boards.as_ref().is_none_or(|bs| bs.iter().any(|b| b.as_str() == board))
    }

    /// The hook as the API shows it: everything but the secret.
    pub fn view(&self, name: &str) -> serde_json::Value {
        let mut v = serde_json::json!({
            "name": name,
            "url": self.url,
            "events": self.events,
            "top": self.top,
        });
        if let Some(b) = &self.boards {
            v["boards"] = serde_json::json!(b);
        }
        v
    }
}

/// What the top `n` of a board period did between two looks: its members
/// in order before and now, best first (`new` holds at least the top `n`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopChange {
    pub entered: Vec<String>,
    pub left: Vec<String>,
}

/// `Some` when the order of the top `n` changed (a member entered, left, or
/// two swapped); a change of scores that keeps the order is not one.
pub fn top_change(old: &[String], new: &[String], n: usize) -> Option<TopChange> {
    let (o, w) = (&old[..n.min(old.len())], &new[..n.min(new.len())]);
    if o == w {
        return None;
    }
    Some(TopChange {
        entered: w.iter().filter(|m| !o.contains(m)).cloned().collect(),
        left: o.iter().filter(|m| !w.contains(m)).cloned().collect(),
    })
}

/// A member of the old top `n` that someone passed, and the nearest member
/// now ahead of it that was not ahead before.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Overtake {
    pub member: String,
    pub by: String,
}

/// Who was passed in the old top `n`. `new` is the order now (at least as
/// long as the old top `n` plus those who passed its members; a member of
/// the old top missing from `new` fell below it, and its nearest passer is
/// taken from the end of `new`). Members `gone` from the board (removed,
/// hidden) were not passed.
pub fn overtakes(old: &[String], new: &[String], n: usize, gone: impl Fn(&str) -> bool) -> Vec<Overtake> {
    let mut out = Vec::new();
    for (i, m) in old.iter().take(n).enumerate() {
        if gone(m) {
            continue;
        }
        let ahead_before = &old[..i];
        let now_at = new.iter().position(|x| x == m).unwrap_or(new.len());
        let passer = new[..now_at].iter().rev().find(|x| !ahead_before.contains(x));
        if let Some(by) = passer {
            out.push(Overtake { member: m.clone(), by: by.clone() });
        }
    }
    out
}

/// A delivery is retried this many times before it becomes a dead letter
/// (wrangler.toml `max_retries` of the hooks Queue says the same).
pub const MAX_RETRIES: u32 = 10;
/// The longest delay a Queue retry takes (12 hours).
const MAX_DELAY_S: u64 = 12 * 3600;

/// The delay before retry `attempt` (1 after the first failure), tripling
/// from `base_s` up to 12 hours: with 10 s, ten retries span ~33 hours, so a
/// receiver down for a day still gets the event.
pub fn retry_delay_s(attempt: u32, base_s: u64) -> u64 {
    let factor = 3u64.saturating_pow(attempt.saturating_sub(1));
    base_s.saturating_mul(factor).min(MAX_DELAY_S)
}

/// The `Podium-Signature` header for `body` sent at `t` (unix seconds):
/// `t=<t>,v1=<hex HMAC-SHA256 of "<t>.<body>" keyed with the secret>`.
pub fn signature(secret: &str, t: i64, body: &str) -> String {
    format!("t={t},v1={}", hex::encode(mac(secret, t, body)))
}

fn mac(secret: &str, t: i64, body: &str) -> Vec<u8> {
    // HMAC takes keys of any length: new_from_slice cannot fail for it.
    let Ok(mut m) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else { return Vec::new() };
    m.update(t.to_string().as_bytes());
    m.update(b".");
    m.update(body.as_bytes());
    m.finalize().into_bytes().to_vec()
}

/// Checks a `Podium-Signature` header as a receiver would (constant time).
pub fn verify(secret: &str, header: &str, body: &str) -> bool {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", x)) => t = x.parse::<i64>().ok(),
            Some(("v1", x)) => v1 = hex::decode(x).ok(),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else { return false };
    let Ok(mut m) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else { return false };
    m.update(t.to_string().as_bytes());
    m.update(b".");
    m.update(body.as_bytes());
    m.verify_slice(&v1).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn the_signature_is_hmac_sha256_of_t_dot_body_in_hex() {
        // RFC 4231 test case 2 ("Jefe"), as "<t>.<body>" = "what do ya want for nothing?"
        // split at its first '.': t is not a number there, so check the MAC directly.
        let mut m = Hmac::<Sha256>::new_from_slice(b"Jefe").unwrap();
        m.update(b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(m.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let h = signature("0123456789abcdef", 1_764_000_000, r#"{"id":"e1"}"#);
        assert!(h.starts_with("t=1764000000,v1="));
        assert_eq!(h.len(), "t=1764000000,v1=".len() + 64);
        assert!(verify("0123456789abcdef", &h, r#"{"id":"e1"}"#));
        assert!(!verify("0123456789abcdeX", &h, r#"{"id":"e1"}"#));
        assert!(!verify("0123456789abcdef", &h, r#"{"id":"e2"}"#));
        assert!(!verify("0123456789abcdef", "t=1,v1=zz", "{}"));
    }

    #[test]
    fn a_reorder_or_a_newcomer_changes_the_top_and_a_score_change_alone_does_not() {
        let old = s(&["a", "b", "c", "d"]);
        assert_eq!(top_change(&old, &s(&["a", "b", "c", "x"]), 3), None, "below the top 3");
        assert_eq!(
            top_change(&old, &s(&["a", "x", "b", "c"]), 3),
            Some(TopChange { entered: s(&["x"]), left: s(&["c"]) })
        );
        assert_eq!(
            top_change(&old, &s(&["b", "a", "c"]), 3),
            Some(TopChange { entered: vec![], left: vec![] })
        );
        assert_eq!(top_change(&[], &s(&["a"]), 3), Some(TopChange { entered: s(&["a"]), left: vec![] }));
    }

    #[test]
    fn overtaken_names_each_passed_member_of_the_top_and_its_nearest_passer() {
        let old = s(&["a", "b", "c", "d"]);
        // x jumps from nowhere to second: b, c (and d, outside the top 3) were passed
        let got = overtakes(&old, &s(&["a", "x", "b", "c", "d"]), 3, |_| false);
        assert_eq!(
            got,
            vec![
                Overtake { member: "b".into(), by: "x".into() },
                Overtake { member: "c".into(), by: "x".into() }
            ]
        );
        // a and b swap: a was passed by b
        assert_eq!(
            overtakes(&old, &s(&["b", "a", "c", "d"]), 3, |_| false),
            vec![Overtake { member: "a".into(), by: "b".into() }]
        );
        // a member that fell out of the list: its passer is the nearest from the end
        assert_eq!(
            overtakes(&s(&["a", "b"]), &s(&["b", "y"]), 2, |_| false),
            vec![Overtake { member: "a".into(), by: "y".into() }]
        );
        // nobody passed: a member removed from ahead is not a pass, nor is it passed
        assert_eq!(overtakes(&old, &s(&["b", "c", "d"]), 3, |m| m == "a"), vec![]);
    }

    #[test]
    fn retries_triple_from_the_base_to_twelve_hours_and_span_more_than_a_day() {
        assert_eq!(retry_delay_s(1, 10), 10);
        assert_eq!(retry_delay_s(2, 10), 30);
        assert_eq!(retry_delay_s(9, 10), 12 * 3600);
        assert_eq!(retry_delay_s(40, 10), 12 * 3600);
        let total: u64 = (1..=MAX_RETRIES).map(|a| retry_delay_s(a, 10)).sum();
        assert!(total > 24 * 3600, "{total} s");
    }

    #[test]
    fn a_hook_listens_to_its_events_on_its_boards() {
        let mut h = Hook {
            url: "https://x.example/hook".into(),
            events: vec![HookEvent::TopChanged],
            boards: None,
            top: 10,
            secret: "s".repeat(16),
        };
        assert!(h.listens("likes", HookEvent::TopChanged));
        assert!(!h.listens("likes", HookEvent::Overtaken));
        h.boards = Some(vec![BoardName::parse("sales").unwrap()]);
        assert!(!h.listens("likes", HookEvent::TopChanged));
        assert!(h.listens("sales", HookEvent::TopChanged));
        assert!(!h.view("n").to_string().contains(&"s".repeat(16)), "the secret is never shown");
    }
}
