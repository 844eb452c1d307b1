//! A route target's board (API 1.1): a board name, or a template over the
//! event's fields (`"level-{meta.level}"`, `"{type}-{meta.region}"`), so one
//! route feeds many boards. The filled-in text must be a valid board name,
//! else the event is unroutable.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::domain::names::BoardName;
use crate::domain::Event;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Type,
    Member,
    Meta(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoardTemplate {
    text: String,
    parts: Vec<Part>,
}

/// Longest template text (a filled-in name is at most 64 bytes anyway).
const MAX_TEMPLATE: usize = 200;

impl BoardTemplate {
    /// A plain board name, or a template whose literal parts use board-name
    /// characters and whose placeholders are `{type}`, `{member}` or
    /// `{meta.<key>}` (key: letters, digits, `_`, `-`; 1-64 bytes).
    pub fn parse(s: &str) -> Result<BoardTemplate, String> {
        if !s.contains(['{', '}']) {
            let name = BoardName::parse(s).map_err(|e| e.to_string())?;
            return Ok(BoardTemplate { text: name.to_string(), parts: vec![Part::Text(name.to_string())] });
        }
        if s.len() > MAX_TEMPLATE {
            return Err(format!("must be at most {MAX_TEMPLATE} bytes"));
        }
        let mut parts = Vec::new();
        let mut rest = s;
        while !rest.is_empty() {
            match rest.find('{') {
                Some(0) => {
                    let end = rest.find('}').ok_or("has a `{` without its `}`")?;
                    let field = rest.get(1..end).unwrap_or_default();
                    parts.push(match field {
                        "type" => Part::Type,
                        "member" => Part::Member,
                        f => match f.strip_prefix("meta.") {
                            Some(k)
                                if !k.is_empty()
                                    && k.len() <= 64
                                    && k.bytes()
                                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') =>
                            {
                                Part::Meta(k.to_string())
                            }
                            _ => {
                                return Err(format!(
                                    "names `{{{f}}}`: use {{type}}, {{member}} or {{meta.<key>}}"
                                ))
                            }
                        },
                    });
                    rest = rest.get(end + 1..).unwrap_or_default();
                }
                found => {
                    let end = found.unwrap_or(rest.len());
                    let text = rest.get(..end).unwrap_or_default();
                    if text.contains('}')
                        || !text
                            .bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
                    {
                        return Err("outside placeholders may hold only a-z, 0-9, `_` and `-`".into());
                    }
                    parts.push(Part::Text(text.to_string()));
                    rest = rest.get(end..).unwrap_or_default();
                }
            }
        }
        Ok(BoardTemplate { text: s.to_string(), parts })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The board this target names for `event`, if its fields give a valid
    /// name. `meta` is the event's metadata, parsed at most once per event
    /// by the caller (`None` until needed).
    pub fn fill(&self, event: &Event, meta: &mut Option<Map<String, Value>>) -> Option<BoardName> {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Type => out.push_str(event.kind.as_str()),
                Part::Member => out.push_str(event.member.as_str()),
                Part::Meta(k) => {
                    let m = meta.get_or_insert_with(|| {
                        event.meta.as_deref().and_then(|t| serde_json::from_str(t).ok()).unwrap_or_default()
                    });
                    match m.get(k)? {
                        Value::String(s) => out.push_str(s),
                        Value::Number(n) => out.push_str(&n.to_string()),
                        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
                        _ => return None,
                    }
                }
            }
        }
        BoardName::parse(&out).ok()
    }
}

impl Serialize for BoardTemplate {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for BoardTemplate {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        BoardTemplate::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl std::fmt::Display for BoardTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::event::{parse_body, BodyFormat};

    fn event(json: &str) -> Event {
        parse_body(BodyFormat::Json, json.as_bytes(), 0, || "id".into(), |_| Ok(())).unwrap().remove(0)
    }

    fn fill(t: &str, ev: &str) -> Option<String> {
        BoardTemplate::parse(t).unwrap().fill(&event(ev), &mut None).map(|b| b.to_string())
    }

    #[test]
    fn a_template_is_filled_from_the_event_type_member_and_meta() {
        let ev = r#"{"type":"score","member":"p1","meta":{"level":3,"region":"eu","pro":true}}"#;
        assert_eq!(fill("level-{meta.level}", ev).as_deref(), Some("level-3"));
        assert_eq!(fill("{type}-{meta.region}", ev).as_deref(), Some("score-eu"));
        assert_eq!(fill("by-{member}", ev).as_deref(), Some("by-p1"));
        assert_eq!(fill("pro-{meta.pro}", ev).as_deref(), Some("pro-true"));
        assert_eq!(fill("plain", ev).as_deref(), Some("plain"));
    }

    #[test]
    fn fields_that_do_not_give_a_board_name_give_no_board() {
        let ev = r#"{"type":"score","member":"Bad Name","meta":{"region":"EU West","obj":{}}}"#;
        assert_eq!(fill("r-{meta.region}", ev), None, "uppercase and a space");
        assert_eq!(fill("r-{meta.missing}", ev), None);
        assert_eq!(fill("r-{meta.obj}", ev), None);
        assert_eq!(fill("m-{member}", ev), None);
        assert_eq!(fill("x-{meta.region}", r#"{"type":"score","member":"a"}"#), None, "no meta");
    }

    #[test]
    fn malformed_templates_are_refused() {
        for t in ["level-{meta.}", "{nope}", "a-{type", "A-{type}", "a}b", "{meta.a b}", "", "x y"] {
            assert!(BoardTemplate::parse(t).is_err(), "{t}");
        }
        assert_eq!(BoardTemplate::parse("sales").unwrap().as_str(), "sales");
        let t: BoardTemplate = serde_json::from_str("\"lvl-{meta.level}\"").unwrap();
        assert_eq!(serde_json::to_string(&t).unwrap(), "\"lvl-{meta.level}\"");
    }
}
