//! Property-based fuzzing of everything that parses client input: ingest
//! bodies (JSON and NDJSON), board and route bodies, strict JSON. Inputs are
//! raw bytes, JSON-shaped text, and mutations of valid events. Whatever
//! comes in, parsing never panics, an error is a 4xx, and an accepted event
//! obeys every rule of the contract.
//!
//! CI runs the default number of cases; a long run is
//! `PROPTEST_CASES=200000 cargo test --release --test fuzz_parse`
//! (failures are kept in tests/fuzz_parse.proptest-regressions and replayed
//! first on every run).

use podium::domain::event::{parse_body, MAX_ABS_VALUE, MAX_FUTURE_MS};
use podium::domain::settings::{parse_board_patch, parse_route_targets};
use podium::domain::BodyFormat;
use proptest::prelude::*;

const NOW: i64 = 1_764_000_000_000;

fn ids() -> impl FnMut() -> String {
    let mut n = 0u64;
    move || {
        n += 1;
        format!("srv-{n}")
    }
}

/// The rules an accepted event must obey, whatever the body was.
fn check_accepted(format: BodyFormat, body: &[u8]) {
    match parse_body(format, body, NOW, ids(), |_| Ok(())) {
        Ok(events) => {
            assert!(!events.is_empty() && events.len() <= 1000);
            for e in events {
                assert!(e.value.is_finite() && e.value.abs() <= MAX_ABS_VALUE, "value {}", e.value);
                assert!(e.ts >= 0 && e.ts <= NOW + MAX_FUTURE_MS, "ts {}", e.ts);
                let m = e.member.as_str();
                assert!(!m.is_empty() && m.len() <= 128 && !m.chars().any(char::is_control));
                assert!(!e.id.as_str().is_empty() && e.id.as_str().len() <= 128);
                if let Some(meta) = &e.meta {
                    assert!(meta.len() <= 1024 && meta.starts_with('{'));
                }
            }
        }
        Err(err) => {
            let s = err.status();
            assert!((400..500).contains(&s), "status {s} for a client body");
        }
    }
}

/// JSON-ish text: a valid event, then a few byte-level edits.
fn mutated_event() -> impl Strategy<Value = Vec<u8>> {
    let field = prop_oneof![
        Just("\"type\":\"like\"".to_string()),
        Just("\"member\":\"alice\"".to_string()),
        Just("\"board\":\"likes\"".to_string()),
        Just("\"value\":1e15".to_string()),
        Just("\"value\":-1e400".to_string()),
        Just("\"ts\":\"2026-11-30T00:00:00Z\"".to_string()),
        Just("\"ts\":-1".to_string()),
        Just("\"id\":\"\\ud800\"".to_string()),
        Just("\"meta\":{\"n\":{\"n\":[1,2,{}]}}".to_string()),
        Just("\"member\":\"\\u202e\\u0000\"".to_string()),
        "\"[a-z]{1,6}\":[0-9]{1,3}",
    ];
    (prop::collection::vec(field, 0..8), prop::collection::vec((any::<usize>(), any::<u8>()), 0..4)).prop_map(
        |(fields, edits)| {
            let mut b = format!("{{{}}}", fields.join(",")).into_bytes();
            for (at, byte) in edits {
                if !b.is_empty() {
                    let i = at % b.len();
                    b[i] = byte;
                }
            }
            b
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic_and_fail_as_client_errors(body in prop::collection::vec(any::<u8>(), 0..600)) {
        check_accepted(BodyFormat::Json, &body);
        check_accepted(BodyFormat::Ndjson, &body);
        let _ = parse_board_patch(&body).map_err(|e| assert!((400..500).contains(&e.status())));
        let _ = parse_route_targets(&body).map_err(|e| assert!((400..500).contains(&e.status())));
        let _ = podium::domain::json::parse(&body);
    }

    #[test]
    fn mutated_events_are_accepted_only_when_every_rule_holds(ev in mutated_event(), n in 1usize..4) {
        check_accepted(BodyFormat::Json, &ev);
        let arr = format!("[{}]", vec![String::from_utf8_lossy(&ev).into_owned(); n].join(","));
        check_accepted(BodyFormat::Json, arr.as_bytes());
        let lines = vec![String::from_utf8_lossy(&ev).into_owned(); n].join("\n");
        check_accepted(BodyFormat::Ndjson, lines.as_bytes());
    }

    #[test]
    fn nesting_and_repetition_never_panic(depth in 0usize..3000, open in prop::sample::select(vec!["[", "{\"a\":"]), dup in any::<bool>()) {
        let close = if open == "[" { "]" } else { "}" };
        let inner = if dup { "{\"type\":\"a\",\"type\":\"b\",\"member\":\"m\",\"board\":\"b\"}" } else { "1" };
        let body = format!("{}{}{}", open.repeat(depth), inner, close.repeat(depth));
        check_accepted(BodyFormat::Json, body.as_bytes());
        let _ = parse_board_patch(body.as_bytes());
    }
}
