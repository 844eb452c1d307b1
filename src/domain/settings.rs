//! Parsing the bodies of `PUT /v1/boards/{board}` and `PUT /v1/routes/{type}`.

use serde_json::{Map, Value};

use crate::core::catalog::{BoardPatch, RouteTarget, TargetValue};
use crate::core::template::BoardTemplate;
use crate::core::zone::Zone;
use crate::core::{Op, Order, Tiebreak, Ties, Window};
use crate::error::ApiError;

const MAX_TITLE_BYTES: usize = 200;
const MAX_TARGETS: usize = 32;

fn bad(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::InvalidBody { field: Some(field.into()), message: message.into() }
}

fn object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match super::json::parse(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(ApiError::InvalidBody { field: None, message: "body must be a JSON object".into() }),
        Err(e) => Err(ApiError::InvalidJson { index: None, line: None, message: e.to_string() }),
    }
}

fn reject_unknown(m: &Map<String, Value>, known: &[&str]) -> Result<(), ApiError> {
    match m.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => Err(ApiError::UnknownField { index: None, field: k.clone() }),
        None => Ok(()),
    }
}

fn choice<T>(m: &Map<String, Value>, field: &str, options: &[(&str, T)]) -> Result<Option<T>, ApiError>
where
    T: Copy,
{
    match m.get(field) {
        None => Ok(None),
        Some(Value::String(s)) => options
            .iter()
            .find(|(name, _)| name == s)
            .map(|(_, v)| Some(*v))
            .ok_or_else(|| bad(field, format!("must be one of {}", names(options)))),
        Some(_) => Err(bad(field, format!("must be one of {}", names(options)))),
    }
}

fn names<T>(options: &[(&str, T)]) -> String {
    options.iter().map(|(n, _)| format!("\"{n}\"")).collect::<Vec<_>>().join(", ")
}

fn bound(m: &Map<String, Value>, field: &str) -> Result<Option<Option<f64>>, ApiError> {
    match m.get(field) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(v) => match v.as_f64() {
            Some(x) if x.is_finite() => Ok(Some(Some(x))),
            _ => Err(bad(field, "must be a finite number or null")),
        },
    }
}

/// API 1.1's `shards`: an integer from 1 to 64.
fn shards(m: &Map<String, Value>) -> Result<Option<u16>, ApiError> {
    match m.get("shards") {
        None => Ok(None),
        Some(v) => match v.as_u64() {
            Some(n) if (1..=crate::core::shards::MAX_SHARDS as u64).contains(&n) => Ok(Some(n as u16)),
            _ => Err(bad("shards", "must be an integer from 1 to 64")),
        },
    }
}

/// Body of `PUT /v1/boards/{board}`; every field optional.
pub fn parse_board_patch(body: &[u8]) -> Result<BoardPatch, ApiError> {
    // Only a body that is absent means "all defaults"; whitespace alone is
    // not JSON, and a client that sent some meant to send something.
    if body.is_empty() {
        return Ok(BoardPatch::default());
    }
    let m = object(body)?;
    reject_unknown(
        &m,
        &["title", "order", "op", "windows", "ties", "min", "max", "tiebreak", "tz", "shards"],
    )?;
    let title = match m.get("title") {
        None => None,
        Some(Value::String(t)) if !t.trim().is_empty() && t.len() <= MAX_TITLE_BYTES => Some(t.clone()),
        Some(_) => {
            return Err(bad(
                "title",
                format!("must be a non-empty string of at most {MAX_TITLE_BYTES} bytes"),
            ))
        }
    };
    let windows = match m.get("windows") {
        None => None,
        Some(Value::Array(items)) => {
            let mut ws = Vec::new();
            for item in items {
                let w = item.as_str().and_then(Window::parse).ok_or_else(|| {
                    bad("windows", "entries must be \"all\", \"day\", \"week\" or \"month\"")
                })?;
                if !ws.contains(&w) {
                    ws.push(w);
                }
            }
            if ws.is_empty() {
                return Err(bad("windows", "must name at least one window"));
            }
            Some(ws)
        }
        Some(_) => return Err(bad("windows", "must be an array")),
    };
    Ok(BoardPatch {
        title,
        order: choice(&m, "order", &[("desc", Order::Desc), ("asc", Order::Asc)])?,
        op: choice(&m, "op", &[("incr", Op::Incr), ("best", Op::Best), ("last", Op::Last)])?,
        windows,
        ties: choice(&m, "ties", &[("shared", Ties::Shared), ("first", Ties::First)])?,
        min: bound(&m, "min")?,
        max: bound(&m, "max")?,
        tz: match m.get("tz") {
            None => None,
            Some(Value::String(z)) => Some(Zone::parse(z).ok_or_else(|| {
                bad("tz", "is not an IANA time zone this deployment knows (e.g. \"Asia/Shanghai\", \"UTC\")")
            })?),
            Some(_) => return Err(bad("tz", "must be an IANA time zone name such as \"UTC\"")),
        },
        tiebreak: choice(
            &m,
            "tiebreak",
            &[("none", Tiebreak::None), ("asc", Tiebreak::Asc), ("desc", Tiebreak::Desc)],
        )?,
        shards: shards(&m)?,
    })
}

/// Body of `PUT /v1/routes/{type}`: `{"targets": [{"board": "sales", "value": "value"}]}`.
pub fn parse_route_targets(body: &[u8]) -> Result<Vec<RouteTarget>, ApiError> {
    let m = object(body)?;
    reject_unknown(&m, &["targets"])?;
    let Some(Value::Array(items)) = m.get("targets") else {
        return Err(bad("targets", "is required and must be an array"));
    };
    if items.is_empty() || items.len() > MAX_TARGETS {
        return Err(bad("targets", format!("must hold 1 to {MAX_TARGETS} targets")));
    }
    let mut out: Vec<RouteTarget> = Vec::new();
    for item in items {
        let Value::Object(t) = item else {
            return Err(bad("targets", "entries must be objects"));
        };
        reject_unknown(t, &["board", "value"])?;
        let board = t
            .get("board")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("board", "is required"))
            .and_then(|b| BoardTemplate::parse(b).map_err(|e| bad("board", e)))?;
        let value = match t.get("value") {
            None => None,
            Some(Value::String(s)) if s == "value" => Some(TargetValue::EventValue),
            Some(v) => match v.as_f64() {
                Some(x) if x.is_finite() && x.abs() <= crate::domain::event::MAX_ABS_VALUE => {
                    Some(TargetValue::Fixed(x))
                }
                _ => return Err(bad("value", "must be \"value\" or a finite number")),
            },
        };
        if out.iter().any(|o| o.board == board) {
            return Err(bad("board", format!("\"{board}\" appears twice")));
        }
        out.push(RouteTarget { board, value });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_board_body_changes_nothing() {
        assert_eq!(parse_board_patch(b"").unwrap(), BoardPatch::default());
        assert_eq!(parse_board_patch(b"{}").unwrap(), BoardPatch::default());
    }

    #[test]
    fn a_body_of_only_whitespace_is_malformed_json() {
        assert_eq!(parse_board_patch(b" ").unwrap_err().code(), "invalid_json");
        assert_eq!(parse_board_patch(b"\n\t").unwrap_err().code(), "invalid_json");
    }

    #[test]
    fn board_settings_are_parsed_and_checked() {
        let p = parse_board_patch(br#"{"title":"Laps","order":"asc","op":"best","windows":["day","all","day"],"ties":"first","min":0,"max":null}"#).unwrap();
        assert_eq!(p.order, Some(Order::Asc));
        assert_eq!(p.op, Some(Op::Best));
        assert_eq!(p.windows, Some(vec![Window::Day, Window::All]));
        assert_eq!(p.ties, Some(Ties::First));
        assert_eq!(p.min, Some(Some(0.0)));
        assert_eq!(p.max, Some(None));
        let e = parse_board_patch(br#"{"order":"up"}"#).unwrap_err();
        assert_eq!(e.body()["error"]["field"], "order");
        assert_eq!(parse_board_patch(br#"{"windows":[]}"#).unwrap_err().code(), "invalid_body");
        assert_eq!(parse_board_patch(br#"{"colour":"red"}"#).unwrap_err().code(), "unknown_field");
        // API 1.1 fields
        assert!(parse_board_patch(br#"{"tiebreak":"none","tz":"UTC","shards":1}"#).is_ok());
        assert_eq!(parse_board_patch(br#"{"shards":64}"#).unwrap().shards, Some(64));
        let tb = parse_board_patch(br#"{"tiebreak":"asc"}"#).unwrap().tiebreak;
        assert_eq!(tb, Some(Tiebreak::Asc));
        let tz = parse_board_patch(br#"{"tz":"Asia/Shanghai"}"#).unwrap().tz;
        assert_eq!(tz.as_ref().map(|z| z.name()), Some("Asia/Shanghai"));
        for (body, field) in [
            (r#"{"tz":"Mars/Olympus_Mons"}"#, "tz"),
            (r#"{"tz":"../../etc/passwd"}"#, "tz"),
            (r#"{"tz":3}"#, "tz"),
            (r#"{"tiebreak":"up"}"#, "tiebreak"),
            (r#"{"tiebreak":1}"#, "tiebreak"),
            (r#"{"shards":0}"#, "shards"),
            (r#"{"shards":65}"#, "shards"),
            (r#"{"shards":2.5}"#, "shards"),
            (r#"{"shards":"4"}"#, "shards"),
        ] {
            let e = parse_board_patch(body.as_bytes()).unwrap_err();
            assert_eq!(e.body()["error"]["field"], field, "{body}");
        }
        assert_eq!(parse_board_patch(b"[1]").unwrap_err().code(), "invalid_body");
    }

    #[test]
    fn route_targets_take_the_event_value_or_a_fixed_number() {
        let t = parse_route_targets(
            br#"{"targets":[{"board":"sales","value":"value"},{"board":"orders","value":1},{"board":"x"}]}"#,
        )
        .unwrap();
        assert_eq!(t[0].value, Some(TargetValue::EventValue));
        assert_eq!(t[1].value, Some(TargetValue::Fixed(1.0)));
        assert_eq!(t[2].value, None);
        assert!(parse_route_targets(br#"{"targets":[]}"#).is_err());
        assert!(parse_route_targets(br#"{"targets":[{"board":"a"},{"board":"a"}]}"#).is_err());
        assert!(parse_route_targets(br#"{"targets":[{"board":"Bad"}]}"#).is_err());
        assert!(parse_route_targets(br#"{"targets":[{"board":"a","value":"twice"}]}"#).is_err());
    }
}
