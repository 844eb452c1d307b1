//! `Idempotency-Key` (API 1.1): any string of 1–128 bytes, scoped to the
//! key holder, so two holders' keys never collide and a holder cannot see
//! another's first answer.
//!
//! The runtime hands header values over as UTF-8 text (workerd decodes
//! them; bytes that are not UTF-8 become U+FFFD, cloudflare/workerd#6927),
//! so a key's length is its UTF-8 length: the bytes sent, for any key that
//! is UTF-8.

use crate::error::ApiError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    key: String,
    holder: u64,
}

impl IdempotencyKey {
    /// `holder` is the bearer token; only a hash of it is kept.
    pub fn parse(raw: &str, holder: &str) -> Result<IdempotencyKey, ApiError> {
        if !(1..=128).contains(&raw.len()) {
            return Err(ApiError::InvalidParameter {
                field: "Idempotency-Key".into(),
                message: format!("must be 1-128 bytes; this one is {}", raw.len()),
            });
        }
        Ok(IdempotencyKey { key: raw.to_string(), holder: fnv64(holder.as_bytes()) })
    }

    /// The key as the intake stores it: the holder's hash, then the key.
    pub fn scoped(&self) -> String {
        format!("{:016x}:{}", self.holder, self.key)
    }
}

/// FNV-1a: tells key holders apart without storing their tokens (also the
/// rate limiter's key).
pub fn fnv64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325u64, |h, b| (h ^ *b as u64).wrapping_mul(0x100000001b3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_key_from_two_holders_is_two_keys() {
        let a = IdempotencyKey::parse("order-17", "key-a").unwrap();
        let b = IdempotencyKey::parse("order-17", "key-b").unwrap();
        assert_ne!(a.scoped(), b.scoped());
        assert_eq!(a.scoped(), IdempotencyKey::parse("order-17", "key-a").unwrap().scoped());
        assert!(!a.scoped().contains("key-a"));
    }

    #[test]
    fn any_key_of_1_to_128_bytes_is_taken_and_its_length_is_counted_in_bytes() {
        assert!(IdempotencyKey::parse("", "h").is_err());
        assert!(IdempotencyKey::parse(&"k".repeat(129), "h").is_err());
        assert!(IdempotencyKey::parse(&"k".repeat(128), "h").is_ok());
        assert!(IdempotencyKey::parse("naïve ключ 🔑", "h").is_ok());
        // "é" is two bytes: 64 of them fit, 65 do not.
        assert!(IdempotencyKey::parse(&"é".repeat(64), "h").is_ok());
        assert!(IdempotencyKey::parse(&"é".repeat(65), "h").is_err());
        let a = IdempotencyKey::parse("ключ", "h").unwrap();
        assert_ne!(a.scoped(), IdempotencyKey::parse("клюк", "h").unwrap().scoped());
    }
}
