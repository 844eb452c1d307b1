//! The one error type of the HTTP API, and the one place that maps it to a
//! status code and a JSON body. Internal failures are logged by the glue and
//! reach clients only as a bare `internal_error`.

use serde_json::{json, Value};

#[derive(Debug, Clone, PartialEq)]
pub enum ApiError {
    /// The body (or an NDJSON line) is not JSON.
    InvalidJson {
        /// the event the bad NDJSON line would have been
        index: Option<usize>,
        /// that line, counting from 1 (blank lines included)
        line: Option<usize>,
        message: String,
    },
    /// An event broke a field rule.
    InvalidEvent {
        index: Option<usize>,
        field: String,
        message: String,
    },
    /// A line of an import broke a field rule.
    InvalidEntry {
        index: usize,
        field: String,
        message: String,
    },
    /// An object carried a field the API does not define.
    UnknownField {
        index: Option<usize>,
        field: String,
    },
    /// An event's value is outside its board's `min`/`max`.
    ValueOutOfRange {
        index: Option<usize>,
        message: String,
    },
    TooManyEvents {
        max: usize,
    },
    EmptyBatch,
    /// A query parameter is malformed or out of bounds.
    InvalidParameter {
        field: String,
        message: String,
    },
    /// A board or route body is malformed.
    InvalidBody {
        field: Option<String>,
        message: String,
    },
    Unauthorized,
    NotFound,
    BoardNotFound(String),
    MemberNotFound(String),
    PeriodNotFound(String),
    RouteNotFound(String),
    DeadLetterNotFound(String),
    ErasureNotFound(String),
    HookNotFound(String),
    MethodNotAllowed {
        allow: &'static str,
    },
    Conflict(String),
    PayloadTooLarge {
        max: usize,
    },
    UnsupportedMediaType,
    Unroutable {
        index: Option<usize>,
        event_type: String,
    },
    /// An event's fields do not fill a route's board template into a name.
    Unfilled {
        index: Option<usize>,
        template: String,
    },
    /// An event would create a board, which the deployment does not allow.
    NotAutoCreated {
        index: Option<usize>,
        board: String,
    },
    NotWebSocket,
    /// An `Idempotency-Key` sent again with another request (path, query or body).
    IdempotencyKeyReused,
    Overloaded {
        retry_after_s: u32,
    },
    /// The key sent more requests than the deployment's rate allows.
    RateLimited {
        retry_after_s: u32,
    },
    Internal,
}

/// What an error message may repeat of the client's input: at most 40
/// characters, with control, format (bidi) and other invisible characters
/// escaped, so a message never carries a hostile payload back whole.
pub fn excerpt(s: &str) -> String {
    const MAX: usize = 40;
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i == MAX {
            out.push('…');
            break;
        }
        let invisible = c.is_control()
            || matches!(c as u32, 0x00AD | 0x061C | 0x180E | 0x200B..=0x200F | 0x2028..=0x202E | 0x2060..=0x206F | 0xFEFF | 0xFFF9..=0xFFFB);
        if invisible || c == '"' || c == '\\' {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

impl ApiError {
    pub fn status(&self) -> u16 {
        use ApiError::*;
        match self {
            InvalidJson { .. }
            | InvalidEvent { .. }
            | InvalidEntry { .. }
            | UnknownField { .. }
            | ValueOutOfRange { .. }
            | TooManyEvents { .. }
            | EmptyBatch
            | InvalidParameter { .. }
            | InvalidBody { .. } => 400,
            Unauthorized => 401,
            NotFound
            | BoardNotFound(_)
            | MemberNotFound(_)
            | PeriodNotFound(_)
            | RouteNotFound(_)
            | DeadLetterNotFound(_)
            | ErasureNotFound(_)
            | HookNotFound(_) => 404,
            MethodNotAllowed { .. } => 405,
            Conflict(_) => 409,
            PayloadTooLarge { .. } => 413,
            UnsupportedMediaType => 415,
            Unroutable { .. } | Unfilled { .. } | NotAutoCreated { .. } | IdempotencyKeyReused => 422,
            NotWebSocket => 426,
            Overloaded { .. } | RateLimited { .. } => 429,
            Internal => 500,
        }
    }

    pub fn code(&self) -> &'static str {
        use ApiError::*;
        match self {
            InvalidJson { .. } => "invalid_json",
            InvalidEvent { .. } => "invalid_event",
            InvalidEntry { .. } => "invalid_entry",
            UnknownField { .. } => "unknown_field",
            ValueOutOfRange { .. } => "value_out_of_range",
            TooManyEvents { .. } => "too_many_events",
            EmptyBatch => "empty_batch",
            InvalidParameter { .. } => "invalid_parameter",
            InvalidBody { .. } => "invalid_body",
            Unauthorized => "unauthorized",
            NotFound => "not_found",
            BoardNotFound(_) => "board_not_found",
            MemberNotFound(_) => "member_not_found",
            PeriodNotFound(_) => "period_not_found",
            RouteNotFound(_) => "route_not_found",
            DeadLetterNotFound(_) => "dead_letter_not_found",
            ErasureNotFound(_) => "erasure_not_found",
            HookNotFound(_) => "hook_not_found",
            MethodNotAllowed { .. } => "method_not_allowed",
            Conflict(_) => "conflict",
            PayloadTooLarge { .. } => "payload_too_large",
            UnsupportedMediaType => "unsupported_media_type",
            Unroutable { .. } | Unfilled { .. } | NotAutoCreated { .. } => "unroutable_event",
            NotWebSocket => "upgrade_required",
            IdempotencyKeyReused => "idempotency_key_reused",
            Overloaded { .. } => "overloaded",
            RateLimited { .. } => "rate_limited",
            Internal => "internal_error",
        }
    }

    fn message(&self) -> String {
        use ApiError::*;
        let at =
            |index: &Option<usize>| index.map(|i| format!("events[{i}]")).unwrap_or_else(|| "event".into());
        match self {
            InvalidJson { line: Some(n), message, .. } => format!("line {n} is not valid JSON: {message}"),
            InvalidJson { line: None, message, .. } => format!("body is not valid JSON: {message}"),
            InvalidEvent { index, field, message } => format!("{}.{field} {message}", at(index)),
            InvalidEntry { index, field, message } => format!("lines[{index}].{field} {message}"),
            UnknownField { index: Some(i), field } => {
                format!("events[{i}] has unknown field \"{}\"", excerpt(field))
            }
            UnknownField { index: None, field } => format!("unknown field \"{}\"", excerpt(field)),
            ValueOutOfRange { index, message } => format!("{}.value {message}", at(index)),
            TooManyEvents { max } => format!("a request carries at most {max} events"),
            EmptyBatch => "the request carries no events".into(),
            InvalidParameter { field, message } => format!("{field} {message}"),
            InvalidBody { field: Some(f), message } => format!("{f} {message}"),
            InvalidBody { field: None, message } => message.clone(),
            Unauthorized => "missing or wrong key: send Authorization: Bearer <key>".into(),
            NotFound => "no such endpoint".into(),
            BoardNotFound(b) => format!("board \"{}\" does not exist", excerpt(b)),
            MemberNotFound(m) => format!("member \"{}\" is not on this board", excerpt(m)),
            PeriodNotFound(p) => format!("period \"{}\" is not kept", excerpt(p)),
            RouteNotFound(t) => format!("no route for event type \"{}\"", excerpt(t)),
            DeadLetterNotFound(id) => format!("no dead letter \"{}\"", excerpt(id)),
            ErasureNotFound(id) => format!("no erasure \"{}\"", excerpt(id)),
            HookNotFound(name) => format!("no hook \"{}\"", excerpt(name)),
            MethodNotAllowed { allow } => format!("method not allowed; allowed: {allow}"),
            Conflict(m) => m.clone(),
            PayloadTooLarge { max } => format!("body is larger than {max} bytes"),
            UnsupportedMediaType => "send Content-Type: application/json or application/x-ndjson".into(),
            Unroutable { index, event_type } => {
                format!(
                    "{} names no board and no route exists for type \"{}\"",
                    at(index),
                    excerpt(event_type)
                )
            }
            Unfilled { index, template } => format!(
                "{}'s fields do not fill the route's board template \"{}\" into a board name \
                 (lowercase a-z, 0-9, `_`, `-`, at most 64 bytes)",
                at(index),
                excerpt(template)
            ),
            NotAutoCreated { index, board } => format!(
                "{} would create board \"{}\", and this deployment does not create boards from events \
                 (AUTO_CREATE_BOARDS is off or AUTO_CREATE_MAX is reached); create it with PUT",
                at(index),
                excerpt(board)
            ),
            NotWebSocket => "this endpoint needs a WebSocket upgrade".into(),
            IdempotencyKeyReused => {
                "this Idempotency-Key was used within 24 hours for another request (path, query or body); \
                 use a new key for a new request"
                    .into()
            }
            Overloaded { .. } => "overloaded; retry later".into(),
            RateLimited { retry_after_s } => {
                format!("this key sent more requests than the deployment allows; retry in {retry_after_s} s")
            }
            Internal => "internal error".into(),
        }
    }

    fn field(&self) -> Option<&str> {
        use ApiError::*;
        match self {
            InvalidEvent { field, .. }
            | InvalidEntry { field, .. }
            | UnknownField { field, .. }
            | InvalidParameter { field, .. } => Some(field),
            InvalidBody { field, .. } => field.as_deref(),
            ValueOutOfRange { .. } => Some("value"),
            Unroutable { .. } => Some("type"),
            Unfilled { .. } => Some("meta"),
            NotAutoCreated { .. } => Some("board"),
            _ => None,
        }
    }

    fn index(&self) -> Option<usize> {
        use ApiError::*;
        match self {
            InvalidJson { index, .. }
            | InvalidEvent { index, .. }
            | UnknownField { index, .. }
            | ValueOutOfRange { index, .. }
            | Unroutable { index, .. }
            | Unfilled { index, .. }
            | NotAutoCreated { index, .. } => *index,
            InvalidEntry { index, .. } => Some(*index),
            _ => None,
        }
    }

    /// Extra headers the status needs (`Allow`, `Retry-After`).
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        match self {
            ApiError::MethodNotAllowed { allow } => vec![("Allow", (*allow).to_string())],
            ApiError::Overloaded { retry_after_s } | ApiError::RateLimited { retry_after_s } => {
                vec![("Retry-After", retry_after_s.to_string())]
            }
            ApiError::Unauthorized => vec![("WWW-Authenticate", "Bearer".into())],
            _ => vec![],
        }
    }

    /// The JSON body: `{"error": {"code", "message", "field"?, "index"?}}`.
    pub fn body(&self) -> Value {
        let mut e = json!({"code": self.code(), "message": self.message()});
        if let Some(f) = self.field() {
            e["field"] = json!(f);
        }
        if let Some(i) = self.index() {
            e["index"] = json!(i);
        }
        json!({ "error": e })
    }

    /// The same error, now known to concern `events[index]`.
    pub fn at_index(self, i: usize) -> ApiError {
        use ApiError::*;
        match self {
            InvalidEvent { field, message, .. } => InvalidEvent { index: Some(i), field, message },
            UnknownField { field, .. } => UnknownField { index: Some(i), field },
            ValueOutOfRange { message, .. } => ValueOutOfRange { index: Some(i), message },
            Unroutable { event_type, .. } => Unroutable { index: Some(i), event_type },
            Unfilled { template, .. } => Unfilled { index: Some(i), template },
            NotAutoCreated { board, .. } => NotAutoCreated { index: Some(i), board },
            InvalidJson { line, message, .. } => InvalidJson { index: Some(i), line, message },
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn messages_repeat_only_a_short_escaped_excerpt_of_hostile_input() {
        let hostile = format!("\u{202e}evil\u{0}\"{}", "x".repeat(5000));
        let m = ApiError::MemberNotFound(hostile).body().to_string();
        assert!(m.len() < 300, "{m}");
        assert!(!m.contains('\u{202e}') && !m.contains('\u{0}'));
        assert!(m.contains("\\\\u{202e}evil"), "{m}");
        assert_eq!(excerpt("alice"), "alice");
        assert_eq!(excerpt(&"é".repeat(41)), format!("{}…", "é".repeat(40)));
    }

    use super::*;

    #[test]
    fn an_invalid_event_names_its_index_and_field() {
        let e = ApiError::InvalidEvent {
            index: None,
            field: "value".into(),
            message: "must be a finite number".into(),
        }
        .at_index(3);
        assert_eq!(e.status(), 400);
        assert_eq!(
            e.body(),
            json!({"error": {"code": "invalid_event", "message": "events[3].value must be a finite number", "field": "value", "index": 3}})
        );
    }

    #[test]
    fn internal_errors_carry_no_detail() {
        let e = ApiError::Internal;
        assert_eq!(e.status(), 500);
        assert_eq!(e.body(), json!({"error": {"code": "internal_error", "message": "internal error"}}));
    }

    #[test]
    fn overload_says_when_to_retry() {
        let e = ApiError::Overloaded { retry_after_s: 2 };
        assert_eq!(e.status(), 429);
        assert_eq!(e.headers(), vec![("Retry-After", "2".to_string())]);
    }
}
