//! Parsing an ingest body into typed events: the only place raw event JSON
//! is looked at. Everything after this works with `Event`.

use std::collections::BTreeMap;

use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::{BoardName, EventId, EventType, MemberId, NameError};
use crate::core::period::days_from_civil;
use crate::error::ApiError;

pub const MAX_EVENTS: usize = 1000;
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
pub const MAX_META_BYTES: usize = 1024;
pub const MAX_ABS_VALUE: f64 = 1e15;
/// Events may be stamped at most this far ahead of the server's clock.
pub const MAX_FUTURE_MS: i64 = 5 * 60 * 1000;

/// One validated event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub kind: EventType,
    pub member: MemberId,
    pub value: f64,
    /// API 1.1 `subscore` (0 when absent): orders equal scores on boards
    /// with a `tiebreak`; boards without one ignore it.
    pub sub: f64,
    pub board: Option<BoardName>,
    pub id: EventId,
    /// Milliseconds since the epoch.
    pub ts: i64,
    /// The member's metadata as compact JSON text (an object of at most 1 KiB).
    pub meta: Option<String>,
}

/// The two body formats `POST /v1/events` takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    Json,
    Ndjson,
}

impl BodyFormat {
    /// From a `Content-Type` header; anything else is a 415.
    pub fn from_content_type(ct: Option<&str>) -> Result<BodyFormat, ApiError> {
        let mime =
            ct.and_then(|c| c.split(';').next()).map(|m| m.trim().to_ascii_lowercase()).unwrap_or_default();
        match mime.as_str() {
            "application/json" => Ok(BodyFormat::Json),
            "application/x-ndjson" | "application/ndjson" | "application/jsonl" => Ok(BodyFormat::Ndjson),
            _ => Err(ApiError::UnsupportedMediaType),
        }
    }
}

/// Parses a whole request body. All-or-nothing: the first bad event's error
/// comes back with its index. `new_id` mints ids for events that bring none;
/// `check` is each event's further rule (its boards' value bounds), run as
/// soon as it is parsed so that "the first bad event" is the first in the
/// body whichever rule it breaks.
///
/// Each event is cut out of the body as raw JSON first and its fields are
/// read one by one, so a field JSON can write but not hold (a number such
/// as `1e400`, which is no finite `f64`) is that event's field error, not
/// a whole-body parse error.
pub fn parse_body(
    format: BodyFormat,
    body: &[u8],
    now_ms: i64,
    mut new_id: impl FnMut() -> String,
    mut check: impl FnMut(&Event) -> Result<(), ApiError>,
) -> Result<Vec<Event>, ApiError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(ApiError::PayloadTooLarge { max: MAX_BODY_BYTES });
    }
    let mut events = Vec::new();
    let mut add = |raw: &RawValue, events: &mut Vec<Event>| {
        let i = events.len();
        let ev = parse_event(raw, now_ms, &mut new_id).and_then(|ev| check(&ev).map(|()| ev));
        events.push(ev.map_err(|e| e.at_index(i))?);
        Ok::<(), ApiError>(())
    };
    match format {
        BodyFormat::Json => {
            let not_json = |e: serde_json::Error| ApiError::InvalidJson {
                index: None,
                line: None,
                message: e.to_string(),
            };
            let raw: &RawValue = serde_json::from_slice(body).map_err(not_json)?;
            let items: Vec<&RawValue> = match raw.get().as_bytes().first() {
                Some(b'[') => serde_json::from_str(raw.get()).map_err(not_json)?,
                Some(b'{') => vec![raw],
                _ => {
                    return Err(ApiError::InvalidBody {
                        field: None,
                        message: "body must be an event object or an array of events".into(),
                    })
                }
            };
            if items.is_empty() {
                return Err(ApiError::EmptyBatch);
            }
            if items.len() > MAX_EVENTS {
                return Err(ApiError::TooManyEvents { max: MAX_EVENTS });
            }
            for raw in items {
                add(raw, &mut events)?;
            }
        }
        BodyFormat::Ndjson => {
            let text = std::str::from_utf8(body).map_err(|_| ApiError::InvalidJson {
                index: None,
                line: None,
                message: "body is not UTF-8".into(),
            })?;
            for (n, line) in text.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() {
                    continue;
                }
                if events.len() == MAX_EVENTS {
                    return Err(ApiError::TooManyEvents { max: MAX_EVENTS });
                }
                let raw: &RawValue = serde_json::from_str(line).map_err(|e| ApiError::InvalidJson {
                    index: Some(events.len()),
                    line: Some(n + 1),
                    message: e.to_string(),
                })?;
                add(raw, &mut events)?;
            }
            if events.is_empty() {
                return Err(ApiError::EmptyBatch);
            }
        }
    }
    Ok(events)
}

const FIELDS: [&str; 8] = ["type", "member", "value", "board", "id", "ts", "meta", "subscore"];

/// A server-assigned event id: a UUIDv7 (RFC 9562), the time in ms first,
/// then 74 of the `random` bits. A board remembers every applied id in an
/// index; ids in time order land at its end, where random UUIDs (v4) landed
/// on a random page of it, a page read and write per event on a board that
/// has applied millions (`scripts/million.mjs`).
pub fn time_ordered_id(now_ms: i64, random: &[u8; 10]) -> String {
    uuid::Builder::from_unix_timestamp_millis(now_ms.max(0) as u64, random)
        .into_uuid()
        .hyphenated()
        .to_string()
}

fn invalid(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::InvalidEvent { index: None, field: field.into(), message: message.into() }
}

fn name_err(field: &str, e: NameError) -> ApiError {
    invalid(field, e.to_string())
}

fn string_field<'a>(obj: &'a Map<String, Value>, field: &str) -> Result<Option<&'a str>, ApiError> {
    match obj.get(field) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(invalid(field, "must be a string")),
    }
}

/// One event object, as raw JSON → `Event`.
fn parse_event(raw: &RawValue, now_ms: i64, new_id: &mut impl FnMut() -> String) -> Result<Event, ApiError> {
    if let Some(k) = super::json::duplicate_key(raw.get()) {
        return Err(invalid(&k, "appears twice in the event (or in its meta)"));
    }
    let fields: BTreeMap<String, &RawValue> =
        serde_json::from_str(raw.get()).map_err(|_| invalid("event", "must be a JSON object"))?;
    if let Some(k) = fields.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(ApiError::UnknownField { index: None, field: k.clone() });
    }
    let mut obj = Map::new();
    for (k, v) in fields {
        let value = match serde_json::from_str::<Value>(v.get()) {
            Ok(value) => value,
            // JSON has no non-finite numbers, but its syntax writes numbers
            // too large for an f64
            Err(_) if k == "value" => return Err(invalid("value", "must be a finite number")),
            Err(e) => return Err(invalid(&k, format!("is not a value this API can read: {e}"))),
        };
        obj.insert(k, value);
    }
    let kind = string_field(&obj, "type")?.ok_or_else(|| invalid("type", "is required"))?;
    let kind = EventType::parse(kind).map_err(|e| name_err("type", e))?;
    let member = string_field(&obj, "member")?.ok_or_else(|| invalid("member", "is required"))?;
    let member = MemberId::parse(member).map_err(|e| name_err("member", e))?;
    let value = match obj.get("value") {
        None => 1.0,
        Some(v) => parse_value(v)?,
    };
    let sub = match obj.get("subscore") {
        None => 0.0,
        Some(v) => parse_value(v)
            .map_err(|_| invalid("subscore", "must be a finite number of at most 1e15 in absolute value"))?,
    };
    let board = string_field(&obj, "board")?
        .map(|b| BoardName::parse(b).map_err(|e| name_err("board", e)))
        .transpose()?;
    let id = match string_field(&obj, "id")? {
        Some(id) => EventId::parse(id).map_err(|e| name_err("id", e))?,
        None => EventId::parse(new_id()).map_err(|e| name_err("id", e))?,
    };
    let ts = match obj.get("ts") {
        None => now_ms,
        Some(v) => parse_ts(v)?,
    };
    if ts > now_ms + MAX_FUTURE_MS {
        return Err(invalid("ts", "is more than 5 minutes in the future"));
    }
    let meta = match obj.get("meta") {
        None => None,
        Some(m @ Value::Object(_)) => {
            let text = m.to_string();
            if text.len() > MAX_META_BYTES {
                return Err(invalid("meta", format!("must be at most {MAX_META_BYTES} bytes as JSON")));
            }
            Some(text)
        }
        Some(_) => return Err(invalid("meta", "must be a JSON object")),
    };
    Ok(Event { kind, member, value, sub, board, id, ts, meta })
}

/// A value for a score: a finite number of at most 1e15 in absolute value.
pub fn parse_value(v: &Value) -> Result<f64, ApiError> {
    let x = v.as_f64().ok_or_else(|| invalid("value", "must be a finite number"))?;
    if !x.is_finite() {
        return Err(invalid("value", "must be a finite number"));
    }
    if x.abs() > MAX_ABS_VALUE {
        return Err(invalid("value", "must be at most 1e15 in absolute value"));
    }
    Ok(if x == 0.0 { 0.0 } else { x })
}

fn parse_ts(v: &Value) -> Result<i64, ApiError> {
    let bad = || invalid("ts", "must be integer milliseconds since the epoch or an RFC 3339 string");
    match v {
        Value::Number(n) => {
            let ms = match n.as_i64() {
                Some(ms) => ms,
                None => {
                    let f = n.as_f64().ok_or_else(bad)?;
                    if f.fract() != 0.0 || f.abs() > 9.0e15 {
                        return Err(bad());
                    }
                    f as i64
                }
            };
            not_before_1970(ms)
        }
        Value::String(s) => parse_rfc3339(s).ok_or_else(bad).and_then(not_before_1970),
        _ => Err(bad()),
    }
}

fn not_before_1970(ms: i64) -> Result<i64, ApiError> {
    if ms < 0 {
        return Err(invalid("ts", "must not be before 1970"));
    }
    Ok(ms)
}

/// `2026-11-22T10:00:00Z`, `2026-11-22t10:00:00.123+01:00`, `2026-11-22 10:00:00Z`.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = b.get(r)?;
        if part.iter().all(u8::is_ascii_digit) {
            std::str::from_utf8(part).ok()?.parse().ok()
        } else {
            None
        }
    };
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo as u32) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut ms = 0i64;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        i = start;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return None;
        }
        // Milliseconds: the first three fraction digits, right-padded.
        let frac: String = s[start..i].chars().chain("000".chars()).take(3).collect();
        ms = frac.parse().ok()?;
    }
    let offset_min = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
            let (oh, om) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
            if oh > 23 || om > 59 {
                return None;
            }
            let m = oh * 60 + om;
            if *sign == b'-' {
                -m
            } else {
                m
            }
        }
        _ => return None,
    };
    let days = days_from_civil(y, mo as u32, d as u32);
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec.min(59) - offset_min * 60;
    Some(secs * 1000 + ms)
}

fn days_in_month(y: i64, m: u32) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn server_ids_are_uuid_v7_and_sort_by_time() {
        let a = time_ordered_id(1_700_000_000_000, &[0xff; 10]);
        let b = time_ordered_id(1_700_000_000_001, &[0; 10]);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "7", "version nibble: {a}");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"), "variant: {a}");
        assert!(a < b, "a later id sorts after: {a} {b}");
        assert!(EventId::parse(a).is_ok());
    }
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_795_400_000_000;

    fn parse(body: &str) -> Result<Vec<Event>, ApiError> {
        let mut n = 0;
        let new_id = || {
            n += 1;
            format!("gen-{n}")
        };
        parse_body(BodyFormat::Json, body.as_bytes(), NOW, new_id, |_| Ok(()))
    }

    fn ndjson(body: &str) -> Result<Vec<Event>, ApiError> {
        parse_body(BodyFormat::Ndjson, body.as_bytes(), NOW, || "id".into(), |_| Ok(()))
    }

    fn err_of(body: &str) -> serde_json::Value {
        parse(body).unwrap_err().body()["error"].clone()
    }

    #[test]
    fn a_single_event_gets_defaults_for_value_ts_and_id() {
        let evs = parse(r#"{"type":"like","member":"alice"}"#).unwrap();
        assert_eq!(evs.len(), 1);
        assert_eq!(evs[0].value, 1.0);
        assert_eq!(evs[0].ts, NOW);
        assert_eq!(evs[0].id.as_str(), "gen-1");
        assert_eq!(evs[0].board, None);
    }

    #[test]
    fn an_array_is_parsed_in_order_and_keeps_given_ids() {
        let evs = parse(r#"[{"type":"like","member":"a","id":"x1"},{"type":"order","member":"b","value":9.5,"board":"sales"}]"#).unwrap();
        assert_eq!(evs[0].id.as_str(), "x1");
        assert_eq!(evs[1].value, 9.5);
        assert_eq!(evs[1].board.as_ref().unwrap().as_str(), "sales");
    }

    #[test]
    fn ndjson_lines_are_events_and_blank_lines_are_skipped() {
        let body = "{\"type\":\"like\",\"member\":\"a\"}\n\n{\"type\":\"like\",\"member\":\"b\"}\n";
        let evs = ndjson(body).unwrap();
        assert_eq!(evs.len(), 2);
        let bad = "{\"type\":\"like\",\"member\":\"a\"}\n\n{oops\n";
        let e = ndjson(bad).unwrap_err();
        assert_eq!(e.body()["error"]["index"], json!(1));
        assert_eq!(e.code(), "invalid_json");
        assert!(e.body()["error"]["message"].as_str().unwrap().starts_with("line 3 "), "{e:?}");
        assert_eq!(ndjson("\n \n").unwrap_err().code(), "empty_batch");
    }

    #[test]
    fn an_event_breaking_a_board_rule_comes_before_a_later_malformed_event() {
        let body = r#"[{"type":"l","member":"a","value":50},{"type":"l","member":"b","value":"x"}]"#;
        let cap = |ev: &Event| match ev.value > 10.0 {
            true => Err(ApiError::ValueOutOfRange { index: None, message: "too big".into() }),
            false => Ok(()),
        };
        let e = parse_body(BodyFormat::Json, body.as_bytes(), NOW, || "id".into(), cap).unwrap_err();
        assert_eq!((e.code(), e.body()["error"]["index"].clone()), ("value_out_of_range", json!(0)));
        let lines = "{\"type\":\"l\",\"member\":\"a\",\"value\":50}\n{oops\n";
        let e = parse_body(BodyFormat::Ndjson, lines.as_bytes(), NOW, || "id".into(), cap).unwrap_err();
        assert_eq!((e.code(), e.body()["error"]["index"].clone()), ("value_out_of_range", json!(0)));
    }

    #[test]
    fn the_first_bad_event_is_named_by_index_and_field() {
        let e = err_of(
            r#"[{"type":"like","member":"a"},{"type":"like","member":"b","value":"x"},{"type":"Bad","member":"c"}]"#,
        );
        assert_eq!(e["code"], "invalid_event");
        assert_eq!(e["index"], 1);
        assert_eq!(e["field"], "value");
    }

    #[test]
    fn a_subscore_is_a_bounded_finite_number() {
        assert!(parse(r#"{"type":"lap","member":"a","value":3,"subscore":-12.5}"#).is_ok());
        for bad in [r#""x""#, "1e16", "null"] {
            let e = err_of(&format!(r#"{{"type":"lap","member":"a","subscore":{bad}}}"#));
            assert_eq!(e["field"], "subscore", "{bad}");
        }
    }

    #[test]
    fn unknown_fields_are_refused() {
        let e = err_of(r#"{"type":"like","member":"a","score":3}"#);
        assert_eq!(e["code"], "unknown_field");
        assert_eq!(e["field"], "score");
    }

    #[test]
    fn missing_or_malformed_names_are_refused() {
        assert_eq!(err_of(r#"{"member":"a"}"#)["field"], "type");
        assert_eq!(err_of(r#"{"type":"like"}"#)["field"], "member");
        assert_eq!(err_of(r#"{"type":"like","member":""}"#)["field"], "member");
        assert_eq!(err_of(r#"{"type":"like","member":"a\u0007"}"#)["field"], "member");
        assert_eq!(
            err_of(&format!(r#"{{"type":"like","member":"{}"}}"#, "m".repeat(129)))["field"],
            "member"
        );
        assert_eq!(err_of(r#"{"type":"like","member":"a","board":"Sales"}"#)["field"], "board");
        assert_eq!(err_of(r#"{"type":"like","member":"a","id":""}"#)["field"], "id");
        assert_eq!(err_of(r#"{"type":"like","member":7}"#)["field"], "member");
        // JSON escapes that name no Unicode text
        let e = err_of(r#"[{"type":"like","member":"a"},{"type":"like","member":"\ud800"}]"#);
        assert_eq!(
            (e["code"].as_str(), e["index"].as_u64(), e["field"].as_str()),
            (Some("invalid_event"), Some(1), Some("member"))
        );
    }

    #[test]
    fn values_must_be_finite_and_bounded() {
        assert_eq!(err_of(r#"{"type":"like","member":"a","value":1e16}"#)["field"], "value");
        assert_eq!(err_of(r#"{"type":"like","member":"a","value":null}"#)["field"], "value");
        assert!(parse(r#"{"type":"like","member":"a","value":-1e15}"#).is_ok());
        // JSON writes numbers no f64 holds: that event's value error, not a body error
        let e = err_of(r#"[{"type":"like","member":"a"},{"type":"like","member":"a","value":-1e400}]"#);
        assert_eq!(
            (e["code"].as_str(), e["index"].as_u64(), e["field"].as_str()),
            (Some("invalid_event"), Some(1), Some("value"))
        );
        let e = err_of(r#"[{"type":"like","member":"a","ts":1e400}]"#);
        assert_eq!((e["code"].as_str(), e["field"].as_str()), (Some("invalid_event"), Some("ts")));
    }

    #[test]
    fn ts_is_milliseconds_or_rfc3339_and_not_far_in_the_future() {
        let evs = parse(r#"[{"type":"l","member":"a","ts":1000},{"type":"l","member":"a","ts":"2026-11-22T00:00:00Z"},{"type":"l","member":"a","ts":"2026-11-22T01:00:00.5+01:00"}]"#).unwrap();
        assert_eq!(evs[0].ts, 1000);
        assert_eq!(evs[1].ts, 1_795_305_600_000);
        assert_eq!(evs[2].ts, 1_795_305_600_500);
        assert_eq!(err_of(r#"{"type":"l","member":"a","ts":"yesterday"}"#)["field"], "ts");
        assert_eq!(err_of(r#"{"type":"l","member":"a","ts":1.5}"#)["field"], "ts");
        assert_eq!(err_of(r#"{"type":"l","member":"a","ts":"1969-12-31T23:59:59Z"}"#)["field"], "ts");
        assert_eq!(err_of(r#"{"type":"l","member":"a","ts":"0000-01-01T00:00:00Z"}"#)["field"], "ts");
        let ahead = NOW + MAX_FUTURE_MS + 1;
        assert_eq!(err_of(&format!(r#"{{"type":"l","member":"a","ts":{ahead}}}"#))["field"], "ts");
        assert!(parse(&format!(r#"{{"type":"l","member":"a","ts":{}}}"#, NOW + MAX_FUTURE_MS)).is_ok());
    }

    #[test]
    fn rfc3339_rejects_impossible_dates() {
        assert_eq!(parse_rfc3339("2026-02-29T00:00:00Z"), None);
        assert_eq!(parse_rfc3339("2024-02-29T00:00:00Z"), Some(1_709_164_800_000));
        assert_eq!(parse_rfc3339("2026-11-22T24:00:00Z"), None);
        assert_eq!(parse_rfc3339("2026-11-22T10:00:00"), None);
    }

    #[test]
    fn meta_is_an_object_of_at_most_one_kibibyte() {
        let evs = parse(r#"{"type":"l","member":"a","meta":{"name":"Alice"}}"#).unwrap();
        assert_eq!(evs[0].meta.as_deref(), Some(r#"{"name":"Alice"}"#));
        assert_eq!(err_of(r#"{"type":"l","member":"a","meta":"Alice"}"#)["field"], "meta");
        let big = format!(r#"{{"type":"l","member":"a","meta":{{"n":"{}"}}}}"#, "x".repeat(1100));
        assert_eq!(err_of(&big)["field"], "meta");
    }

    #[test]
    fn batch_size_and_emptiness_are_checked() {
        assert_eq!(parse("[]").unwrap_err().code(), "empty_batch");
        let many = format!("[{}]", vec![r#"{"type":"l","member":"a"}"#; 1001].join(","));
        assert_eq!(parse(&many).unwrap_err().code(), "too_many_events");
        assert_eq!(parse("42").unwrap_err().code(), "invalid_body");
        assert_eq!(parse(" \n [{\"type\":\"l\",\"member\":\"a\"}] \n").unwrap().len(), 1);
        assert_eq!(parse("\t{\"type\":\"l\",\"member\":\"a\"}").unwrap().len(), 1);
        assert_eq!(parse("{").unwrap_err().code(), "invalid_json");
    }

    #[test]
    fn content_types_other_than_json_and_ndjson_are_refused() {
        assert_eq!(
            BodyFormat::from_content_type(Some("application/json; charset=utf-8")),
            Ok(BodyFormat::Json)
        );
        assert_eq!(BodyFormat::from_content_type(Some("application/x-ndjson")), Ok(BodyFormat::Ndjson));
        assert_eq!(BodyFormat::from_content_type(Some("text/plain")), Err(ApiError::UnsupportedMediaType));
        assert_eq!(BodyFormat::from_content_type(None), Err(ApiError::UnsupportedMediaType));
    }
}
