//! Strict JSON: bodies are parsed into `serde_json::Value` with duplicate
//! object keys refused at every depth. serde_json keeps the last of two
//! equal keys silently, so `{"value": 1, "value": 1e9}` would mean whatever
//! a reader happened to pick; Podium answers 400 instead.

use std::collections::HashSet;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// A JSON value whose objects have no repeated key.
pub struct Strict(pub Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Strict, D::Error> {
        d.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        serde_json::Number::from_f64(v).map(Value::Number).ok_or_else(|| E::custom("number out of range"))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(Strict(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        let mut seen = HashSet::new();
        while let Some(k) = map.next_key::<String>()? {
            if !seen.insert(k.clone()) {
                let shown: String = crate::error::excerpt(&k);
                return Err(de::Error::custom(format!("duplicate key \"{shown}\"")));
            }
            let Strict(v) = map.next_value()?;
            out.insert(k, v);
        }
        Ok(Value::Object(out))
    }
}

/// Parses `text` strictly.
pub fn parse(text: &[u8]) -> Result<Value, serde_json::Error> {
    serde_json::from_slice::<Strict>(text).map(|s| s.0)
}

/// The first key repeated in any object of `text` (already known to be JSON).
pub fn duplicate_key(text: &str) -> Option<String> {
    match serde_json::from_str::<Strict>(text) {
        Err(e) => {
            let m = e.to_string();
            let rest = m.strip_prefix("duplicate key \"")?;
            Some(rest.split('"').next().unwrap_or_default().to_string())
        }
        Ok(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_key_is_refused_at_any_depth_and_named() {
        assert!(parse(br#"{"a": 1, "b": {"c": [1, {"d": 2}]}}"#).is_ok());
        let e = parse(br#"{"a": 1, "a": 2}"#).unwrap_err();
        assert!(e.to_string().contains("duplicate key \"a\""), "{e}");
        assert!(parse(br#"[{"x": {"y": 1, "y": 1}}]"#).is_err());
        assert_eq!(duplicate_key(r#"{"meta": {"n": 1, "n": 2}}"#).as_deref(), Some("n"));
        assert_eq!(duplicate_key(r#"{"type": "a", "type": "b"}"#).as_deref(), Some("type"));
        assert_eq!(duplicate_key(r#"{"type": "a"}"#), None);
    }

    #[test]
    fn strict_values_equal_serde_json_values_when_keys_are_distinct() {
        let text = br#"{"n": -1, "u": 18446744073709551615, "f": 2.5, "s": "x", "z": null, "a": [true]}"#;
        assert_eq!(parse(text).unwrap(), serde_json::from_slice::<Value>(text).unwrap());
    }
}
