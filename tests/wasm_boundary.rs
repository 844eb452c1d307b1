//! What only exists on wasm: values crossing between JS and Rust the way the
//! Queue and Durable Object bindings carry them (serde-wasm-bindgen), and the
//! runtime's random ids. Run with `cargo test --target wasm32-unknown-unknown`.
#![cfg(all(target_arch = "wasm32", target_os = "unknown"))]

use podium::core::catalog::Delivery;
use podium::domain::BoardName;
use podium::protocol::QueuedEvent;
use wasm_bindgen_test::wasm_bindgen_test;

fn sample() -> QueuedEvent {
    QueuedEvent {
        id: "évènement-🎉-1".into(),
        member: "<img src=x onerror=alert(1)>".into(),
        // Beyond 2^31 and near today's clock: must survive as an exact integer.
        ts: 1_795_305_600_123,
        // A subscore (API 1.1 tiebreak) that is not 0, so it is carried, not defaulted.
        sub: -2.5,
        meta: Some(r#"{"name":"Zoë"}"#.into()),
        to: vec![
            Delivery { board: BoardName::parse("sales").unwrap(), generation: 7, value: 19.99 },
            Delivery { board: BoardName::parse("orders").unwrap(), generation: 8, value: -1e15 },
        ],
    }
}

#[wasm_bindgen_test]
fn a_queued_event_survives_the_trip_through_a_js_value() {
    let ev = sample();
    let js = serde_wasm_bindgen::to_value(&ev).unwrap();
    let back: QueuedEvent = serde_wasm_bindgen::from_value(js).unwrap();
    assert_eq!(back, ev);
}

#[wasm_bindgen_test]
fn a_queued_event_written_by_js_as_json_is_read_back() {
    // What a message produced by JSON.parse looks like to the consumer.
    let text = serde_json::to_string(&sample()).unwrap();
    let parsed = js_sys::JSON::parse(&text).unwrap();
    let back: QueuedEvent = serde_wasm_bindgen::from_value(parsed).unwrap();
    assert_eq!(back, sample());
}

#[wasm_bindgen_test]
fn an_invalid_board_name_from_js_is_refused_at_the_boundary() {
    let text = serde_json::to_string(&sample()).unwrap().replace("\"sales\"", "\"Sales!\"");
    let parsed = js_sys::JSON::parse(&text).unwrap();
    assert!(serde_wasm_bindgen::from_value::<QueuedEvent>(parsed).is_err());
}

#[wasm_bindgen_test]
fn the_clock_and_dates_agree_between_js_and_the_core() {
    use podium::core::{period::Period, Window};
    let now = js_sys::Date::now() as i64;
    let js_day = js_sys::Date::new(&(now as f64).into()).to_iso_string().as_string().unwrap();
    assert_eq!(Period::of(Window::Day, now, &podium::core::zone::Zone::Utc).key(), js_day[..10]);
}

#[wasm_bindgen_test]
fn the_bundled_time_zone_database_agrees_with_the_js_runtime_on_wasm() {
    // jiff's embedded tzdb must load on wasm32 (no filesystem): a local date
    // in a zone with daylight saving matches what JS's Intl says for it.
    use podium::core::{period::Period, zone::Zone, Window};
    let ny = Zone::parse("America/New_York").expect("the bundled tzdb holds America/New_York");
    let opts = js_sys::Object::new();
    js_sys::Reflect::set(&opts, &"timeZone".into(), &"America/New_York".into()).unwrap();
    let fmt = js_sys::Intl::DateTimeFormat::new(&js_sys::Array::of1(&"en-CA".into()), &opts);
    // Either side of the two midnights around the 2026 fall-back night, and now.
    let now = js_sys::Date::now() as i64;
    let (fall, next) = (1_793_505_600_000i64, 1_793_595_600_000i64); // 2026-11-01 04:00Z (EDT midnight), 11-02 05:00Z (EST)
    for ts in [fall - 1, fall, next - 1, next, now] {
        let date = js_sys::Date::new(&(ts as f64).into());
        let js = fmt.format().call1(&fmt, &date).unwrap().as_string().unwrap();
        assert_eq!(Period::of(Window::Day, ts, &ny).key(), js, "at {ts}");
    }
}
