//! Parsing the body of `PUT /v1/hooks/{name}` (API 1.1 webhooks).

use serde_json::{Map, Value};

use crate::core::hooks::{HookEvent, MAX_TOP};
use crate::domain::BoardName;
use crate::error::ApiError;

const MAX_URL_BYTES: usize = 2048;
const MIN_SECRET_CHARS: usize = 16;
const MAX_SECRET_CHARS: usize = 256;
const MAX_BOARDS: usize = 100;
const DEFAULT_TOP: usize = 10;

/// A hook's definition as a PUT gives it. `secret` is `None` when the body
/// leaves it out (allowed when the hook exists: it keeps its secret).
#[derive(Debug, Clone, PartialEq)]
pub struct HookBody {
    pub url: String,
    pub events: Vec<HookEvent>,
    pub boards: Option<Vec<BoardName>>,
    pub top: usize,
    pub secret: Option<String>,
}

fn bad(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::InvalidBody { field: Some(field.into()), message: message.into() }
}

/// The body of `PUT /v1/hooks/{name}`. `allow_http`: the deployment sets
/// `ALLOW_HTTP_HOOKS`, so `http://` to `localhost`/`127.0.0.1` is taken too.
pub fn parse_hook(body: &[u8], allow_http: bool) -> Result<HookBody, ApiError> {
    let m: Map<String, Value> = match super::json::parse(body) {
        Ok(Value::Object(m)) => m,
        Ok(_) => {
            return Err(ApiError::InvalidBody { field: None, message: "body must be a JSON object".into() })
        }
        Err(e) => return Err(ApiError::InvalidJson { index: None, line: None, message: e.to_string() }),
    };
    if let Some(k) = m.keys().find(|k| !["url", "events", "boards", "top", "secret"].contains(&k.as_str())) {
        return Err(ApiError::UnknownField { index: None, field: k.clone() });
    }
    let url = match m.get("url") {
        Some(Value::String(u)) => parse_url(u, allow_http)?,
        Some(_) => return Err(bad("url", "must be a string")),
        None => return Err(bad("url", "is required")),
    };
    let events = match m.get("events") {
        Some(Value::Array(items)) if !items.is_empty() => {
            let mut out = Vec::new();
            for item in items {
                let e = item.as_str().and_then(HookEvent::parse).ok_or_else(|| {
                    bad("events", "entries must be \"period_ended\", \"top_changed\" or \"overtaken\"")
                })?;
                if !out.contains(&e) {
                    out.push(e);
                }
            }
            out
        }
        Some(_) => return Err(bad("events", "must be a non-empty array")),
        None => return Err(bad("events", "is required")),
    };
    let boards = match m.get("boards") {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) if !items.is_empty() && items.len() <= MAX_BOARDS => {
            let mut out: Vec<BoardName> = Vec::new();
            for item in items {
                let name = item
                    .as_str()
                    .ok_or_else(|| bad("boards", "entries must be board names"))
                    .and_then(|s| BoardName::parse(s).map_err(|e| bad("boards", e.to_string())))?;
                if !out.contains(&name) {
                    out.push(name);
                }
            }
            Some(out)
        }
        Some(_) => {
            return Err(bad("boards", format!("must be an array of 1 to {MAX_BOARDS} board names, or null")))
        }
    };
    let top = match m.get("top") {
        None => DEFAULT_TOP,
        Some(v) => match v.as_u64() {
            Some(n) if (1..=MAX_TOP as u64).contains(&n) => n as usize,
            _ => return Err(bad("top", format!("must be an integer from 1 to {MAX_TOP}"))),
        },
    };
    let secret = match m.get("secret") {
        None => None,
        // Counted in characters, as JSON Schema's minLength/maxLength count
        // (a character is at least a byte: 16 of them are ≥ 16 bytes).
        Some(Value::String(s)) if (MIN_SECRET_CHARS..=MAX_SECRET_CHARS).contains(&s.chars().count()) => {
            Some(s.clone())
        }
        Some(_) => {
            return Err(bad(
                "secret",
                format!("must be a string of {MIN_SECRET_CHARS} to {MAX_SECRET_CHARS} characters"),
            ))
        }
    };
    Ok(HookBody { url, events, boards, top, secret })
}

/// `https://host[:port][/path]`, or with `allow_http` `http://localhost` or
/// `http://127.0.0.1` (any port): a receiver reached over TLS, or one on
/// the same machine in development.
fn parse_url(u: &str, allow_http: bool) -> Result<String, ApiError> {
    let fail = |msg: &str| Err(bad("url", msg));
    if u.len() > MAX_URL_BYTES || u.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return fail("must be at most 2048 bytes with no spaces");
    }
    let (scheme, rest) = match u.split_once("://") {
        Some((s, r)) => (s.to_ascii_lowercase(), r),
        None => return fail("must be an absolute https:// URL"),
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return fail("must not carry a user or password");
    }
    let host = match authority.rsplit_once(':') {
        Some((h, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => h,
        Some(_) => return fail("has a malformed port"),
        None => authority,
    };
    if host.is_empty() {
        return fail("has no host");
    }
    let local = matches!(host.to_ascii_lowercase().as_str(), "localhost" | "127.0.0.1");
    match scheme.as_str() {
        "https" => Ok(u.to_string()),
        "http" if allow_http && local => Ok(u.to_string()),
        "http" if local => fail("http:// is taken only when the deployment sets ALLOW_HTTP_HOOKS"),
        _ => fail("must be https://, or http:// to localhost or 127.0.0.1 with ALLOW_HTTP_HOOKS"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(body: &str, allow_http: bool) -> String {
        let e = parse_hook(body.as_bytes(), allow_http).unwrap_err();
        e.body()["error"]["field"].as_str().unwrap_or_default().to_string()
    }

    #[test]
    fn a_full_body_is_taken_with_defaults_for_top_and_boards() {
        let h = parse_hook(
            br#"{"url":"https://example.com/podium","events":["top_changed","overtaken","top_changed"],"secret":"0123456789abcdef"}"#,
            false,
        )
        .unwrap();
        assert_eq!(h.events, vec![HookEvent::TopChanged, HookEvent::Overtaken]);
        assert_eq!((h.top, h.boards, h.secret.as_deref()), (10, None, Some("0123456789abcdef")));
        let h = parse_hook(
            br#"{"url":"http://127.0.0.1:9999/x","events":["period_ended"],"boards":["likes"],"top":3}"#,
            true,
        )
        .unwrap();
        assert_eq!((h.top, h.boards.map(|b| b.len()), h.secret), (3, Some(1), None));
    }

    #[test]
    fn bad_fields_are_400_naming_the_field() {
        for (body, allow, field) in [
            (r#"{"events":["top_changed"]}"#, false, "url"),
            (r#"{"url":"ftp://x","events":["top_changed"]}"#, false, "url"),
            (r#"{"url":"http://127.0.0.1/x","events":["top_changed"]}"#, false, "url"),
            (r#"{"url":"http://example.com/x","events":["top_changed"]}"#, true, "url"),
            (r#"{"url":"https://u:p@example.com","events":["top_changed"]}"#, false, "url"),
            (r#"{"url":"https://","events":["top_changed"]}"#, false, "url"),
            (r#"{"url":"https://a.b","events":[]}"#, false, "events"),
            (r#"{"url":"https://a.b","events":["won"]}"#, false, "events"),
            (r#"{"url":"https://a.b","events":["overtaken"],"top":0}"#, false, "top"),
            (r#"{"url":"https://a.b","events":["overtaken"],"top":101}"#, false, "top"),
            (r#"{"url":"https://a.b","events":["overtaken"],"secret":"short"}"#, false, "secret"),
            (r#"{"url":"https://a.b","events":["overtaken"],"boards":["bad name!"]}"#, false, "boards"),
            (r#"{"url":"https://a.b","events":["overtaken"],"boards":[]}"#, false, "boards"),
        ] {
            assert_eq!(field_of(body, allow), field, "{body}");
        }
        let e = parse_hook(br#"{"url":"https://a.b","events":["overtaken"],"colour":1}"#, false).unwrap_err();
        assert_eq!(e.code(), "unknown_field");
    }
}
