//! The route table: which endpoint a method and path name. Kept apart from
//! the handlers (and pure) so the whole API surface reads in one place.

/// An endpoint, with its path parameters percent-decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Health,
    Events,
    Routes,
    Route(String),
    Boards,
    Board(String),
    Top(String),
    Member(String, String),
    Around(String, String),
    Lookup(String),
    Live(String),
    Export(String),
    Import(String),
    /// `…/members/{member}/hidden`
    Hide(String, String),
    /// `…/hidden`: the board's hidden members
    HiddenList(String),
    Seasons(String),
    /// `/v1/members/{member}`: erasure across every board
    Erase(String),
    Erasure(String),
    DeadLetters,
    Redrive,
    DeadLetter(String),
    /// `/v1/hooks` (API 1.1 webhooks)
    Hooks,
    Hook(String),
    HookDeliveries(String),
    /// A `/v1/` path with a broken percent-escape (or one that is not
    /// UTF-8): malformed input, 400 whatever route it was meant for.
    Malformed,
}

impl Route {
    /// The methods an endpoint answers (besides OPTIONS), for 405 and `Allow`.
    pub fn allow(&self) -> &'static str {
        match self {
            Route::Health
            | Route::Routes
            | Route::Boards
            | Route::Top(_)
            | Route::Around(..)
            | Route::Live(_)
            | Route::Export(_)
            | Route::HiddenList(_)
            | Route::Erasure(_)
            | Route::Hooks
            | Route::HookDeliveries(_)
            | Route::DeadLetters => "GET",
            Route::Redrive => "POST",
            Route::DeadLetter(_) | Route::Erase(_) => "DELETE",
            Route::Malformed => "GET, PUT, POST, DELETE",
            Route::Events | Route::Lookup(_) | Route::Import(_) => "POST",
            Route::Route(_) | Route::Hook(_) => "GET, PUT, DELETE",
            Route::Board(_) => "GET, PUT, DELETE",
            Route::Member(..) => "GET, DELETE",
            Route::Hide(..) => "PUT, DELETE",
            Route::Seasons(_) => "GET, POST",
        }
    }

    pub fn allows(&self, method: &str) -> bool {
        self.allow().split(", ").any(|m| m == method)
    }
}

/// `/v1/...` path → route. `None` is a 404.
pub fn match_path(path: &str) -> Option<Route> {
    let rest = path.strip_prefix("/v1/")?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let Some(segs) = rest.split('/').map(percent_decode).collect::<Option<Vec<String>>>() else {
        return Some(Route::Malformed);
    };
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    let own = |x: &str| x.to_string();
    Some(match s.as_slice() {
        ["health"] => Route::Health,
        ["events"] => Route::Events,
        ["routes"] => Route::Routes,
        ["routes", t] => Route::Route(own(t)),
        ["boards"] => Route::Boards,
        ["boards", b] => Route::Board(own(b)),
        ["boards", b, "top"] => Route::Top(own(b)),
        ["boards", b, "members", m] => Route::Member(own(b), own(m)),
        ["boards", b, "members", m, "around"] => Route::Around(own(b), own(m)),
        ["boards", b, "members", m, "hidden"] => Route::Hide(own(b), own(m)),
        ["boards", b, "hidden"] => Route::HiddenList(own(b)),
        ["boards", b, "seasons"] => Route::Seasons(own(b)),
        ["boards", b, "lookup"] => Route::Lookup(own(b)),
        ["boards", b, "live"] => Route::Live(own(b)),
        ["boards", b, "export"] => Route::Export(own(b)),
        ["boards", b, "import"] => Route::Import(own(b)),
        ["members", m] => Route::Erase(own(m)),
        ["erasures", id] => Route::Erasure(own(id)),
        ["dead-letters"] => Route::DeadLetters,
        ["dead-letters", "redrive"] => Route::Redrive,
        ["dead-letters", id] => Route::DeadLetter(own(id)),
        ["hooks"] => Route::Hooks,
        ["hooks", n] => Route::Hook(own(n)),
        ["hooks", n, "deliveries"] => Route::HookDeliveries(own(n)),
        _ => return None,
    })
}

/// Decodes `%XX` escapes into UTF-8; `None` for broken escapes or bytes.
pub fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_path_has_a_route() {
        assert_eq!(match_path("/v1/health"), Some(Route::Health));
        assert_eq!(match_path("/v1/events"), Some(Route::Events));
        assert_eq!(match_path("/v1/dead-letters"), Some(Route::DeadLetters));
        assert_eq!(match_path("/v1/dead-letters/redrive"), Some(Route::Redrive));
        assert_eq!(match_path("/v1/dead-letters/0a1b"), Some(Route::DeadLetter("0a1b".into())));
        assert_eq!(match_path("/v1/routes/order"), Some(Route::Route("order".into())));
        assert_eq!(match_path("/v1/boards/likes/top"), Some(Route::Top("likes".into())));
        assert_eq!(
            match_path("/v1/boards/likes/members/alice/around"),
            Some(Route::Around("likes".into(), "alice".into()))
        );
        assert_eq!(match_path("/v1/boards/likes/live"), Some(Route::Live("likes".into())));
    }

    #[test]
    fn member_ids_in_paths_are_percent_decoded() {
        assert_eq!(
            match_path("/v1/boards/likes/members/%3Cimg%20src%3Dx%3E"),
            Some(Route::Member("likes".into(), "<img src=x>".into()))
        );
        assert_eq!(
            match_path("/v1/boards/likes/members/a%2Fb"),
            Some(Route::Member("likes".into(), "a/b".into()))
        );
        assert_eq!(match_path("/v1/boards/likes/members/%zz"), Some(Route::Malformed));
        assert_eq!(match_path("/v1/boards/%FF/top"), Some(Route::Malformed));
    }

    #[test]
    fn unknown_paths_and_near_misses_have_no_route() {
        assert_eq!(match_path("/v1/boardsx"), None);
        assert_eq!(match_path("/v2/health"), None);
        assert_eq!(match_path("/v1/boards/likes/top/extra"), None);
        assert_eq!(match_path("/v1/xhealth"), None);
    }

    #[test]
    fn methods_are_part_of_the_table() {
        assert!(Route::Board("b".into()).allows("PUT"));
        assert!(!Route::Top("b".into()).allows("POST"));
        assert_eq!(Route::Route("t".into()).allow(), "GET, PUT, DELETE");
    }
}
