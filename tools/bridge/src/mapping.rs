//! The mapping from one broker message to one Podium event (the `[*.event]`
//! tables of the config). Each event field is a constant, a reference into
//! the message (`{ from = "field.type" }`) or a template
//! (`{ template = "level-{body.level}" }`). A message the mapping cannot turn
//! into an event gives a reason, and the source dead-letters it.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};
use std::collections::BTreeMap;

use crate::error::{config, Result};

/// Where a value comes from inside a message, parsed once from the config.
#[derive(Debug, Clone, PartialEq)]
pub enum Path {
    /// A Redis stream entry's field.
    Field(String),
    /// A path into the JSON body (RabbitMQ); empty = the whole body.
    Body(Vec<String>),
    /// An AMQP header (the message's `headers` table).
    Header(String),
    /// The AMQP routing key.
    RoutingKey,
    /// The AMQP `message-id` property.
    MessageId,
    /// The AMQP `timestamp` property (seconds since the epoch).
    Timestamp,
    /// The message's identity: the Redis entry id, or the AMQP message-id.
    Id,
    /// The stream or queue name.
    Source,
}

impl Path {
    pub fn parse(s: &str) -> Result<Path> {
        let (head, rest) = match s.split_once('.') {
            Some((h, r)) => (h, Some(r)),
            None => (s, None),
        };
        let named = |kind: &str| match rest {
            Some(r) if !r.is_empty() => Ok(r.to_string()),
            _ => Err(config(format!("`{s}`: `{kind}.` needs a name after the dot"))),
        };
        Ok(match head {
            "field" => Path::Field(named("field")?),
            "header" => Path::Header(named("header")?),
            "body" => Path::Body(rest.map(|r| r.split('.').map(str::to_string).collect()).unwrap_or_default()),
            "routing_key" if rest.is_none() => Path::RoutingKey,
            "message_id" if rest.is_none() => Path::MessageId,
            "timestamp" if rest.is_none() => Path::Timestamp,
            "id" if rest.is_none() => Path::Id,
            "source" if rest.is_none() => Path::Source,
            _ => {
                return Err(config(format!(
                    "`{s}`: expected field.NAME, body[.PATH], header.NAME, routing_key, message_id, timestamp, id or source"
                )))
            }
        })
    }

    /// Whether a message of this broker can carry the path (checked once at start-up).
    fn fits(&self, broker: Broker) -> bool {
        match self {
            Path::Field(_) => broker == Broker::Redis,
            Path::Body(_) | Path::Header(_) | Path::RoutingKey | Path::MessageId | Path::Timestamp => broker == Broker::Amqp,
            Path::Id | Path::Source => true,
        }
    }
}

/// As written in the config, for reasons and errors.
impl std::fmt::Display for Path {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Path::Field(n) => write!(f, "field.{n}"),
            Path::Body(keys) if keys.is_empty() => write!(f, "body"),
            Path::Body(keys) => write!(f, "body.{}", keys.join(".")),
            Path::Header(n) => write!(f, "header.{n}"),
            Path::RoutingKey => write!(f, "routing_key"),
            Path::MessageId => write!(f, "message_id"),
            Path::Timestamp => write!(f, "timestamp"),
            Path::Id => write!(f, "id"),
            Path::Source => write!(f, "source"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Broker {
    Redis,
    Amqp,
}

/// What a message offers the mapping: implemented by each source's message.
pub trait Message {
    /// The value at `path`, `None` when the message has none there.
    fn get(&self, path: &Path) -> Option<Json>;

    /// Why parts of the message cannot be read (a body that is not JSON), to
    /// explain a dead letter.
    fn problem(&self) -> Option<String> {
        None
    }
}

/// The unit of a numeric `ts`: Podium wants milliseconds; Python's
/// `time.time()` (the first seed's timestamp) gives seconds.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq)]
#[serde(rename_all = "lowercase")]
pub enum TsUnit {
    S,
    #[default]
    Ms,
}

/// One event field's spec as written in the config.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum SpecToml {
    From(FromToml),
    Template(TemplateToml),
    Str(String),
    Num(f64),
    Bool(bool),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FromToml {
    from: String,
    /// Used when the message has nothing at `from`; without it that message is unparseable.
    default: Option<toml::Value>,
    /// For `ts` only: the unit of a numeric timestamp.
    unit: Option<TsUnit>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateToml {
    template: String,
}

/// The `[*.event]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "lowercase")]
pub struct EventToml {
    #[serde(rename = "type")]
    kind: SpecToml,
    member: SpecToml,
    value: Option<SpecToml>,
    board: Option<SpecToml>,
    ts: Option<SpecToml>,
    id: Option<SpecToml>,
    #[serde(default)]
    meta: BTreeMap<String, SpecToml>,
}

/// A parsed spec.
#[derive(Debug, Clone)]
enum Spec {
    Const(Json),
    From { path: Path, default: Option<Json>, unit: TsUnit },
    Template(Vec<Piece>),
}

#[derive(Debug, Clone)]
enum Piece {
    Text(String),
    Ref(Path),
}

impl Spec {
    fn parse(t: &SpecToml, what: &str, broker: Broker) -> Result<Spec> {
        let check = |p: Path| {
            if p.fits(broker) {
                Ok(p)
            } else {
                Err(config(format!("{what}: `{p}` does not exist in a {broker:?} message")))
            }
        };
        Ok(match t {
            SpecToml::Str(s) => Spec::Const(Json::String(s.clone())),
            SpecToml::Num(n) => Spec::Const(serde_json::Number::from_f64(*n).map(Json::Number).ok_or_else(|| config(format!("{what}: not a finite number")))?),
            SpecToml::Bool(b) => Spec::Const(Json::Bool(*b)),
            SpecToml::From(f) => {
                if f.unit.is_some() && what != "ts" {
                    return Err(config(format!("{what}: `unit` applies to ts only")));
                }
                let default = match &f.default {
                    Some(v) => Some(serde_json::to_value(v).map_err(|e| config(format!("{what}: default: {e}")))?),
                    None => None,
                };
                Spec::From { path: check(Path::parse(&f.from)?)?, default, unit: f.unit.unwrap_or_default() }
            }
            SpecToml::Template(t) => {
                let mut pieces = Vec::new();
                let mut rest = t.template.as_str();
                while let Some(open) = rest.find('{') {
                    if open > 0 {
                        pieces.push(Piece::Text(rest[..open].to_string()));
                    }
                    let close = rest[open..].find('}').ok_or_else(|| config(format!("{what}: unclosed {{ in template")))?;
                    pieces.push(Piece::Ref(check(Path::parse(&rest[open + 1..open + close])?)?));
                    rest = &rest[open + close + 1..];
                }
                if !rest.is_empty() {
                    pieces.push(Piece::Text(rest.to_string()));
                }
                Spec::Template(pieces)
            }
        })
    }

    /// The spec's value for one message; `Ok(None)` when the message has nothing there.
    fn eval(&self, msg: &dyn Message) -> Result<Option<Json>, String> {
        match self {
            Spec::Const(v) => Ok(Some(v.clone())),
            Spec::From { path, default, .. } => Ok(msg.get(path).or_else(|| default.clone())),
            Spec::Template(pieces) => {
                let mut out = String::new();
                for p in pieces {
                    match p {
                        Piece::Text(t) => out.push_str(t),
                        Piece::Ref(path) => match msg.get(path) {
                            Some(v) => out.push_str(&as_text(&v).ok_or_else(|| format!("template: {path} is not a string or number"))?),
                            None => return Err(format!("template: the message has no {path}")),
                        },
                    }
                }
                Ok(Some(Json::String(out)))
            }
        }
    }

    fn unit(&self) -> TsUnit {
        match self {
            Spec::From { unit, .. } => *unit,
            _ => TsUnit::Ms,
        }
    }

    /// Says what the spec reads from, for reasons.
    fn describe(&self) -> String {
        match self {
            Spec::From { path, .. } => path.to_string(),
            Spec::Const(_) => "a constant".into(),
            Spec::Template(_) => "a template".into(),
        }
    }
}

fn as_text(v: &Json) -> Option<String> {
    match v {
        Json::String(s) => Some(s.clone()),
        Json::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// One event for `POST /v1/events`, in the API's field names.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Event {
    #[serde(rename = "type")]
    pub kind: String,
    pub member: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub board: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ts: Option<Json>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta: Option<Map<String, Json>>,
}

/// A source's whole mapping, parsed and checked against its broker at start-up.
#[derive(Debug, Clone)]
pub struct Mapping {
    kind: Spec,
    member: Spec,
    value: Option<Spec>,
    board: Option<Spec>,
    ts: Option<Spec>,
    id: Spec,
    meta: Vec<(String, Spec)>,
}

/// Podium's limit on an event id (API.md, Ingest).
const MAX_ID_BYTES: usize = 128;

impl Mapping {
    /// `default_id` is the broker's own identity (Redis: `{stream}:{entry id}`
    /// via `Path::Id`; AMQP: the message-id), used when the config names none.
    pub fn parse(t: &EventToml, broker: Broker) -> Result<Mapping> {
        let opt = |s: &Option<SpecToml>, what: &str| s.as_ref().map(|s| Spec::parse(s, what, broker)).transpose();
        Ok(Mapping {
            kind: Spec::parse(&t.kind, "type", broker)?,
            member: Spec::parse(&t.member, "member", broker)?,
            value: opt(&t.value, "value")?,
            board: opt(&t.board, "board")?,
            ts: opt(&t.ts, "ts")?,
            id: opt(&t.id, "id")?.unwrap_or(Spec::From { path: Path::Id, default: None, unit: TsUnit::Ms }),
            meta: t.meta.iter().map(|(k, s)| Ok((k.clone(), Spec::parse(s, &format!("meta.{k}"), broker)?))).collect::<Result<_>>()?,
        })
    }

    /// The event for one message, or why there is none (the dead-letter reason).
    pub fn event(&self, msg: &dyn Message) -> Result<Event, String> {
        let required_text = |spec: &Spec, what: &str| -> Result<String, String> {
            match spec.eval(msg)? {
                Some(v) => as_text(&v).ok_or_else(|| format!("{what} from {} is not a string: {v}", spec.describe())),
                None => Err(format!("{what}: the message has no {}", spec.describe())),
            }
        };
        let optional = |spec: &Option<Spec>, what: &str| -> Result<Option<Json>, String> {
            match spec {
                None => Ok(None),
                Some(s) => match s.eval(msg)? {
                    Some(v) => Ok(Some(v)),
                    None => Err(format!("{what}: the message has no {} (give the spec a default)", s.describe())),
                },
            }
        };
        let value = match optional(&self.value, "value")? {
            None => None,
            Some(v) => Some(number(&v).ok_or_else(|| format!("value is not a number: {v}"))?),
        };
        let board = match optional(&self.board, "board")? {
            None => None,
            Some(v) => Some(as_text(&v).ok_or_else(|| format!("board is not a string: {v}"))?),
        };
        let ts = match (&self.ts, optional(&self.ts, "ts")?) {
            (Some(spec), Some(v)) => Some(timestamp(v, spec.unit())?),
            _ => None,
        };
        // A message without identity is still forwarded (at least once).
        let id = match self.id.eval(msg)? {
            Some(v) => {
                let id = as_text(&v).ok_or_else(|| format!("id is not a string: {v}"))?;
                if id.is_empty() || id.len() > MAX_ID_BYTES {
                    return Err(format!("id must be 1-{MAX_ID_BYTES} bytes, is {}", id.len()));
                }
                Some(id)
            }
            None => None,
        };
        let mut meta = Map::new();
        for (k, spec) in &self.meta {
            if let Some(v) = spec.eval(msg)? {
                meta.insert(k.clone(), v);
            }
        }
        Ok(Event {
            kind: required_text(&self.kind, "type")?,
            member: required_text(&self.member, "member")?,
            value,
            board,
            id,
            ts,
            meta: if meta.is_empty() { None } else { Some(meta) },
        })
    }
}

/// A number from JSON: a number, or a string holding one (Redis fields are strings).
fn number(v: &Json) -> Option<f64> {
    match v {
        Json::Number(n) => n.as_f64(),
        Json::String(s) => s.trim().parse::<f64>().ok().filter(|f| f.is_finite()),
        _ => None,
    }
}

/// `ts` as Podium takes it: integer milliseconds, or an RFC 3339 string
/// passed through (Podium validates it; a bad one is a 400 → dead letter).
fn timestamp(v: Json, unit: TsUnit) -> Result<Json, String> {
    match number(&v) {
        Some(n) => {
            let ms = match unit {
                TsUnit::S => n * 1000.0,
                TsUnit::Ms => n,
            };
            // i64 milliseconds cover ±292 million years; anything outside is garbage.
            if !(ms.abs() < 9.0e15) {
                return Err(format!("ts out of range: {v}"));
            }
            Ok(Json::from(ms.round() as i64))
        }
        None => match v {
            Json::String(s) => Ok(Json::String(s)),
            other => Err(format!("ts is neither a number nor a string: {other}")),
        },
    }
}

/// Looks `path` up in a JSON document (object keys, or array indices).
pub fn json_path(doc: &Json, path: &[String]) -> Option<Json> {
    let mut cur = doc;
    for key in path {
        cur = match cur {
            Json::Object(m) => m.get(key)?,
            Json::Array(a) => a.get(key.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    if cur.is_null() {
        None
    } else {
        Some(cur.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct Fields(HashMap<&'static str, &'static str>);
    impl Message for Fields {
        fn get(&self, path: &Path) -> Option<Json> {
            match path {
                Path::Field(f) => self.0.get(f.as_str()).map(|v| Json::String(v.to_string())),
                Path::Id => Some(Json::String("user_actions:1-0".into())),
                _ => None,
            }
        }
    }

    fn mapping(toml_text: &str) -> Mapping {
        let t: EventToml = toml::from_str(toml_text).expect("test config parses");
        Mapping::parse(&t, Broker::Redis).expect("test mapping is valid")
    }

    #[test]
    fn the_first_seeds_entry_becomes_one_event_per_action_with_the_stream_id() {
        let m = mapping(
            r#"
            type = "action"
            member = { from = "field.type" }
            board = "rankings"
            ts = { from = "field.timestamp", unit = "s" }
            "#,
        );
        let e = m.event(&Fields(HashMap::from([("type", "like"), ("timestamp", "1764500000.1234")]))).expect("maps");
        assert_eq!(e.member, "like");
        assert_eq!(e.kind, "action");
        assert_eq!(e.board.as_deref(), Some("rankings"));
        assert_eq!(e.id.as_deref(), Some("user_actions:1-0"));
        assert_eq!(e.ts, Some(Json::from(1_764_500_000_123i64)));
        assert_eq!(e.value, None);
    }

    #[test]
    fn a_missing_field_or_a_non_number_value_is_a_reason_not_an_event() {
        let m = mapping(r#"type = "t"
member = { from = "field.who" }
value = { from = "field.n" }"#);
        let err = m.event(&Fields(HashMap::from([("n", "2")]))).expect_err("no member");
        assert!(err.contains("member"), "{err}");
        let err = m.event(&Fields(HashMap::from([("who", "a"), ("n", "lots")]))).expect_err("bad value");
        assert!(err.contains("value is not a number"), "{err}");
        let ok = m.event(&Fields(HashMap::from([("who", "a"), ("n", " 2.5 ")]))).expect("maps");
        assert_eq!(ok.value, Some(2.5));
    }

    #[test]
    fn templates_defaults_and_meta_fill_in() {
        let m = mapping(
            r#"
            type = "t"
            member = { from = "field.who" }
            board = { template = "level-{field.level}" }
            value = { from = "field.n", default = 1 }
            meta = { name = { from = "field.name", default = "anon" }, level = { from = "field.level" } }
            "#,
        );
        let e = m.event(&Fields(HashMap::from([("who", "a"), ("level", "3")]))).expect("maps");
        assert_eq!(e.board.as_deref(), Some("level-3"));
        assert_eq!(e.value, Some(1.0));
        assert_eq!(serde_json::to_value(&e.meta).expect("json"), serde_json::json!({"name": "anon", "level": "3"}));
    }

    #[test]
    fn a_path_that_the_broker_cannot_carry_is_a_config_error() {
        let t: EventToml = toml::from_str("type = \"t\"\nmember = { from = \"body.member\" }").expect("parses");
        assert!(Mapping::parse(&t, Broker::Redis).is_err());
        assert!(Mapping::parse(&t, Broker::Amqp).is_ok());
        assert!(Path::parse("nonsense.x").is_err());
        assert!(Path::parse("field.").is_err());
    }

    #[test]
    fn json_paths_walk_objects_and_arrays() {
        let doc = serde_json::json!({"a": {"b": [10, {"c": "x"}]}, "n": null});
        assert_eq!(json_path(&doc, &["a".into(), "b".into(), "1".into(), "c".into()]), Some(Json::from("x")));
        assert_eq!(json_path(&doc, &["a".into(), "b".into(), "0".into()]), Some(Json::from(10)));
        assert_eq!(json_path(&doc, &["n".into()]), None);
        assert_eq!(json_path(&doc, &["zz".into()]), None);
    }
}
