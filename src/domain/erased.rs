//! What the dead-letter store and the webhook log remember of an erasure.
//!
//! API 1.1: once an erasure is done, no dead letter or webhook delivery log
//! holds the member, "events accepted before the call included". Such an
//! event can still fail after the erasure finished (it was on the Queue, or
//! its webhook delivery was being retried for up to a day), so both stores
//! keep a list of recent erasures and refuse what a late failure would add.
//! The list holds a SHA-256 digest of each member id, not the id: a store of
//! erasures must not itself hold the member.

use sha2::{Digest, Sha256};

/// How long an erasure is remembered: longer than anything accepted before
/// it can still fail (a Queue keeps a message at most 14 days; a webhook is
/// retried for ~33 hours).
pub const KEEP_MS: i64 = 15 * 24 * 3600 * 1000;

/// The digest an erasure is remembered by (lowercase hex SHA-256 of the id).
pub fn digest(member: &str) -> String {
    hex::encode(Sha256::digest(member.as_bytes()))
}

/// The digests of every string in a webhook body (the member ids it names
/// are strings: `member`, `by`, `entered`, `left`, entries' `member`), and
/// the body's `at` (ms; when the ranking event was made). A body that is not
/// JSON names nobody.
pub fn names_in_body(body: &str) -> (Vec<String>, Option<i64>) {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(body) else { return (Vec::new(), None) };
    let mut out = Vec::new();
    collect(&v, &mut out);
    out.sort_unstable();
    out.dedup();
    (out, v.get("at").and_then(|a| a.as_i64()))
}

fn collect(v: &serde_json::Value, out: &mut Vec<String>) {
    use serde_json::Value::*;
    match v {
        String(s) => out.push(digest(s)),
        Array(items) => items.iter().for_each(|i| collect(i, out)),
        Object(fields) => fields.values().for_each(|f| collect(f, out)),
        Null | Bool(_) | Number(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_digest_is_stable_and_does_not_hold_the_id() {
        let d = digest("alice@example.com");
        assert_eq!(d.len(), 64);
        assert_eq!(d, digest("alice@example.com"));
        assert_ne!(d, digest("alice@example.co"));
        assert!(!d.contains("alice"));
        // Pinned: changing the digest would forget every stored erasure.
        assert_eq!(digest("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn every_member_a_webhook_body_names_is_found_with_its_time() {
        let body = r#"{"id":"e1","type":"top_changed","board":"likes","at":1700000000123,
            "entries":[{"member":"ann","score":3,"rank":1}],"entered":["bob"],"left":["cy"],
            "member":"dan","by":"eve"}"#;
        let (names, at) = names_in_body(body);
        assert_eq!(at, Some(1_700_000_000_123));
        for m in ["ann", "bob", "cy", "dan", "eve"] {
            assert!(names.contains(&digest(m)), "{m}");
        }
        assert!(!names.contains(&digest("zed")));
    }

    #[test]
    fn a_body_that_is_not_json_names_nobody() {
        assert_eq!(names_in_body("not json"), (Vec::new(), None));
    }
}
