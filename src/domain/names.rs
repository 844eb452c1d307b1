use std::fmt;

/// Why a name was refused; the caller turns it into an API error with a field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameError {
    Empty,
    TooLong { max: usize },
    BadPattern,
    ControlChar,
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameError::Empty => write!(f, "must not be empty"),
            NameError::TooLong { max } => write!(f, "must be at most {max} bytes"),
            NameError::BadPattern => write!(f, "has characters outside the allowed pattern"),
            NameError::ControlChar => write!(f, "must not contain control characters"),
        }
    }
}

/// `^[a-z0-9][a-z0-9_-]{0,63}$`
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BoardName(String);

/// `^[a-z0-9][a-z0-9_.-]{0,63}$`
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventType(String);

/// 1–128 bytes of UTF-8 without control characters. Any other text is data.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MemberId(String);

/// 1–128 bytes; the idempotency key of an event.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventId(String);

fn slug(s: &str, extra: &[u8]) -> Result<(), NameError> {
    let b = s.as_bytes();
    match b.first() {
        None => return Err(NameError::Empty),
        Some(c) if !(c.is_ascii_lowercase() || c.is_ascii_digit()) => return Err(NameError::BadPattern),
        _ => {}
    }
    if b.len() > 64 {
        return Err(NameError::TooLong { max: 64 });
    }
    if b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || extra.contains(c)) {
        Ok(())
    } else {
        Err(NameError::BadPattern)
    }
}

fn text(s: &str, max: usize) -> Result<(), NameError> {
    if s.is_empty() {
        return Err(NameError::Empty);
    }
    if s.len() > max {
        return Err(NameError::TooLong { max });
    }
    if s.chars().any(char::is_control) {
        return Err(NameError::ControlChar);
    }
    Ok(())
}

macro_rules! name_type {
    ($t:ident, $check:expr) => {
        impl $t {
            pub fn parse(s: impl Into<String>) -> Result<Self, NameError> {
                let s = s.into();
                let check: fn(&str) -> Result<(), NameError> = $check;
                check(&s)?;
                Ok($t(s))
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
            pub fn into_string(self) -> String {
                self.0
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl AsRef<str> for $t {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }
        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                $t::parse(s).map_err(serde::de::Error::custom)
            }
        }
    };
}

name_type!(BoardName, |s| slug(s, b"_-"));
name_type!(EventType, |s| slug(s, b"_.-"));
name_type!(MemberId, |s| text(s, 128));
name_type!(EventId, |s| text(s, 128));

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn board_names_follow_the_documented_pattern() {
        assert!(BoardName::parse("likes").is_ok());
        assert!(BoardName::parse("0-top_sellers").is_ok());
        assert_eq!(BoardName::parse(""), Err(NameError::Empty));
        assert_eq!(BoardName::parse("Likes"), Err(NameError::BadPattern));
        assert_eq!(BoardName::parse("_likes"), Err(NameError::BadPattern));
        assert_eq!(BoardName::parse("a.b"), Err(NameError::BadPattern));
        assert!(BoardName::parse("a".repeat(64)).is_ok());
        assert_eq!(BoardName::parse("a".repeat(65)), Err(NameError::TooLong { max: 64 }));
    }

    #[test]
    fn event_types_may_contain_dots() {
        assert!(EventType::parse("game.score").is_ok());
        assert_eq!(EventType::parse(".x"), Err(NameError::BadPattern));
    }

    #[test]
    fn member_ids_are_any_text_without_control_characters() {
        assert!(MemberId::parse("<img src=x onerror=alert(1)>").is_ok());
        assert!(MemberId::parse("Zoë 🎉").is_ok());
        assert_eq!(MemberId::parse("a\nb"), Err(NameError::ControlChar));
        assert_eq!(MemberId::parse("\u{7f}"), Err(NameError::ControlChar));
        assert!(MemberId::parse("é".repeat(64)).is_ok()); // 128 bytes
        assert_eq!(MemberId::parse("é".repeat(64) + "x"), Err(NameError::TooLong { max: 128 }));
    }
}
