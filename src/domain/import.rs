//! An import body (API 1.1, `POST /v1/boards/{board}/import`): NDJSON, one
//! member per line, `{"member", "score", "subscore"?, "reached"?, "meta"?}`.
//! An export's own lines (with `rank` and `hidden`) read back as they are,
//! so an export imported elsewhere gives the same board.

use std::collections::{BTreeMap, HashSet};

use serde_json::value::RawValue;
use serde_json::Value;

use super::event::{parse_value, MAX_META_BYTES};
use super::MemberId;
use crate::error::ApiError;

/// An import body is at most 1 MiB, as an ingest body.
pub const MAX_IMPORT_BYTES: usize = 1024 * 1024;

/// One member as an import sets it.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportLine {
    pub member: MemberId,
    pub score: f64,
    /// The tie-break subscore (0 when absent; kept by boards with a `tiebreak`).
    pub sub: f64,
    /// When it reached the score (ms since the epoch); ties order by it.
    pub reached: i64,
    /// JSON object text, or none.
    pub meta: Option<String>,
    /// An export's `"hidden": true`: the member is hidden on the board.
    pub hidden: bool,
}

const FIELDS: [&str; 7] = ["member", "score", "subscore", "reached", "meta", "rank", "hidden"];

fn bad(index: usize, field: &str, message: impl Into<String>) -> ApiError {
    ApiError::InvalidEntry { index, field: field.into(), message: message.into() }
}

/// Parses a whole import body, all or nothing; `now_ms` is the default
/// `reached`. A member named twice is an error (which line would win is
/// not obvious to whoever wrote the file).
pub fn parse_import(body: &[u8], now_ms: i64) -> Result<Vec<ImportLine>, ApiError> {
    if body.len() > MAX_IMPORT_BYTES {
        return Err(ApiError::PayloadTooLarge { max: MAX_IMPORT_BYTES });
    }
    let text = std::str::from_utf8(body).map_err(|_| ApiError::InvalidJson {
        index: None,
        line: None,
        message: "body is not UTF-8".into(),
    })?;
    let mut out = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let i = out.len();
        let raw: &RawValue = serde_json::from_str(line).map_err(|e| ApiError::InvalidJson {
            index: Some(i),
            line: Some(n + 1),
            message: e.to_string(),
        })?;
        let entry = parse_line(raw, i, now_ms)?;
        if !seen.insert(entry.member.as_str().to_string()) {
            return Err(bad(i, "member", "appears on an earlier line too"));
        }
        out.push(entry);
    }
    if out.is_empty() {
        return Err(ApiError::InvalidBody { field: None, message: "the import carries no lines".into() });
    }
    Ok(out)
}

fn parse_line(raw: &RawValue, i: usize, now_ms: i64) -> Result<ImportLine, ApiError> {
    if let Some(k) = super::json::duplicate_key(raw.get()) {
        return Err(bad(i, &k, "appears twice in the line"));
    }
    let obj: BTreeMap<String, Value> =
        serde_json::from_str(raw.get()).map_err(|_| bad(i, "line", "must be a JSON object"))?;
    if let Some(k) = obj.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(ApiError::UnknownField { index: Some(i), field: k.clone() });
    }
    let member = match obj.get("member") {
        Some(Value::String(s)) => MemberId::parse(s).map_err(|e| bad(i, "member", e.to_string()))?,
        Some(_) => return Err(bad(i, "member", "must be a string")),
        None => return Err(bad(i, "member", "is required")),
    };
    let number = |field: &str| -> Result<Option<f64>, ApiError> {
        obj.get(field)
            .map(|v| {
                parse_value(v)
                    .map_err(|_| bad(i, field, "must be a finite number of at most 1e15 in absolute value"))
            })
            .transpose()
    };
    let score = number("score")?.ok_or_else(|| bad(i, "score", "is required"))?;
    let sub = number("subscore")?.unwrap_or(0.0);
    let reached = match obj.get("reached") {
        None | Some(Value::Null) => now_ms,
        Some(v) => v
            .as_i64()
            .filter(|t| *t >= 0)
            .ok_or_else(|| bad(i, "reached", "must be integer milliseconds since the epoch"))?,
    };
    let meta = match obj.get("meta") {
        None | Some(Value::Null) => None,
        Some(m @ Value::Object(_)) => {
            let text = m.to_string();
            if text.len() > MAX_META_BYTES {
                return Err(bad(i, "meta", format!("must be at most {MAX_META_BYTES} bytes as JSON")));
            }
            Some(text)
        }
        Some(_) => return Err(bad(i, "meta", "must be a JSON object")),
    };
    match obj.get("rank") {
        None | Some(Value::Number(_)) => {}
        Some(_) => {
            return Err(bad(i, "rank", "must be a number (it is ignored: the order comes from the scores)"))
        }
    }
    let hidden = match obj.get("hidden") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(bad(i, "hidden", "must be true or false")),
    };
    Ok(ImportLine { member, score, sub, reached, meta, hidden })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_764_000_000_000;

    fn parse(s: &str) -> Result<Vec<ImportLine>, ApiError> {
        parse_import(s.as_bytes(), NOW)
    }

    #[test]
    fn lines_become_members_with_now_as_the_default_reach_time() {
        let v = parse("{\"member\":\"a\",\"score\":12.5}\n\n{\"member\":\"b\",\"score\":3,\"reached\":5,\"meta\":{\"n\":1}}\n")
            .unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].reached, NOW);
        assert_eq!((v[1].score, v[1].reached, v[1].meta.as_deref()), (3.0, 5, Some("{\"n\":1}")));
    }

    #[test]
    fn an_exported_line_reads_back() {
        let v = parse("{\"rank\":1,\"member\":\"a\",\"score\":2,\"reached\":7,\"hidden\":false}").unwrap();
        assert_eq!(v[0].member.as_str(), "a");
    }

    #[test]
    fn the_first_bad_line_is_named_and_nothing_is_taken() {
        let e = parse("{\"member\":\"a\",\"score\":1}\n{\"member\":\"b\"}").unwrap_err();
        assert_eq!(e, bad(1, "score", "is required"));
        let e = parse("{\"member\":\"a\",\"score\":1}\n{\"member\":\"a\",\"score\":2}").unwrap_err();
        assert!(matches!(e, ApiError::InvalidEntry { index: 1, .. }));
        let e = parse("{\"member\":\"a\",\"score\":1e400}").unwrap_err();
        assert!(matches!(e, ApiError::InvalidJson { .. } | ApiError::InvalidEntry { .. }));
        let e = parse("{\"member\":\"a\",\"score\":1,\"x\":1}").unwrap_err();
        assert_eq!(e, ApiError::UnknownField { index: Some(0), field: "x".into() });
        assert!(parse("not json").is_err());
        assert!(parse("\n\n").is_err());
        assert!(parse("{\"member\":\"a\",\"score\":1,\"reached\":-1}").is_err());
        assert!(parse("{\"member\":\"\",\"score\":1}").is_err());
    }
}
