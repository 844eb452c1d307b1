//! Bearer keys. Comparison takes the same time whatever the bytes, and every
//! configured key is compared, so timing tells nothing about a key.

/// Which writes a key allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Ingest,
    Admin,
}

/// Constant-time equality over the longer of the two lengths.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    let n = a.len().max(b.len());
    let mut diff = (a.len() ^ b.len()) as u8 | ((a.len() ^ b.len()) >> 8) as u8;
    for i in 0..n {
        diff |= a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0);
    }
    diff == 0
}

/// The `Bearer` token of an `Authorization` header value.
pub fn bearer(header: Option<&str>) -> Option<&str> {
    let h = header?.trim();
    let (scheme, token) = h.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty()).then(|| token.trim())
}

/// The role a presented token grants, checking every key without short-circuit.
pub fn role_of(token: &str, ingest_keys: &str, admin_key: &str) -> Option<Role> {
    let mut ingest = false;
    for k in ingest_keys.split(',').map(str::trim).filter(|k| !k.is_empty()) {
        ingest |= ct_eq(token.as_bytes(), k.as_bytes());
    }
    let admin = !admin_key.is_empty() & ct_eq(token.as_bytes(), admin_key.as_bytes());
    if admin {
        Some(Role::Admin)
    } else if ingest {
        Some(Role::Ingest)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_keys_match_and_near_misses_do_not() {
        assert!(ct_eq(b"secret", b"secret"));
        assert!(!ct_eq(b"secret", b"secreT"));
        assert!(!ct_eq(b"secret", b"secret2"));
        assert!(!ct_eq(b"", b"x"));
        // Lengths that differ by a multiple of 256 still differ.
        assert!(!ct_eq(&[0u8; 256], &[]));
    }

    #[test]
    fn the_admin_key_may_ingest_but_ingest_keys_are_not_admin() {
        assert_eq!(role_of("k2", "k1, k2", "adm"), Some(Role::Ingest));
        assert_eq!(role_of("adm", "k1", "adm"), Some(Role::Admin));
        assert_eq!(role_of("nope", "k1", "adm"), None);
        assert_eq!(role_of("", "", ""), None);
    }

    #[test]
    fn only_bearer_tokens_are_read() {
        assert_eq!(bearer(Some("Bearer abc")), Some("abc"));
        assert_eq!(bearer(Some("bearer  abc ")), Some("abc"));
        assert_eq!(bearer(Some("Basic abc")), None);
        assert_eq!(bearer(Some("Bearer ")), None);
        assert_eq!(bearer(None), None);
    }
}
