//! Calendar periods (day, ISO week, month, all-time) counted in a board's
//! local civil days (`core::zone`: UTC by default).
//!
//! Every period is a half-open interval `[start_ms, end_ms)` of Unix
//! milliseconds; its bounds are local midnights, so they need the zone.
//! Keys: `all`, `2026-11-22`, `2026-W47`, `2026-11` (years are written and parsed
//! as exactly four digits, 0000–9999).

use super::zone::Zone;
use super::Window;

pub const MS_PER_DAY: i64 = 86_400_000;

/// Days since 1970-01-01 of the proleptic Gregorian date `y-m-d`
/// (Howard Hinnant's `days_from_civil`). `m` is 1–12, `d` is 1–31; not validated.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let (m, d) = (m as i64, d as i64);
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400; // [0, 399]
    let mp = (m + 9) % 12; // March = 0
    let doy = (153 * mp + 2) / 5 + d - 1; // [0, 365]
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // [0, 146096]
    era * 146_097 + doe - 719_468
}

/// Inverse of [`days_from_civil`]: `(year, month 1–12, day 1–31)`.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097; // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11]
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(y) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Monday = 0 … Sunday = 6. 1970-01-01 was a Thursday.
fn weekday(day: i64) -> i64 {
    (day + 3).rem_euclid(7)
}

/// The Monday of ISO week 1 of ISO year `y` (the week holding January 4th).
fn iso_week1_monday(y: i64) -> i64 {
    let jan4 = days_from_civil(y, 1, 4);
    jan4 - weekday(jan4)
}

/// `(iso_year, iso_week)` of the week starting on Monday `monday`.
fn iso_week_of_monday(monday: i64) -> (i64, u32) {
    let thursday = monday + 3;
    let (y, _, _) = civil_from_days(thursday);
    let week = (monday - iso_week1_monday(y)) / 7 + 1;
    (y, week as u32)
}

/// One period of a window: the window plus its first day (days since the epoch;
/// 0 for `All`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Period {
    window: Window,
    start_day: i64,
}

impl Period {
    /// The all-time period.
    pub const ALL: Period = Period { window: Window::All, start_day: 0 };

    /// The period of `window` containing the instant `ts_ms` (Unix ms) in `zone`.
    pub fn of(window: Window, ts_ms: i64, zone: &Zone) -> Period {
        let day = zone.day_of(ts_ms);
        let start_day = match window {
            Window::All => 0,
            Window::Day => day,
            Window::Week => day - weekday(day),
            Window::Month => {
                let (y, m, _) = civil_from_days(day);
                days_from_civil(y, m, 1)
            }
        };
        Period { window, start_day }
    }

    /// Parses a period key of `window`; strict: exact digit counts, real dates,
    /// weeks that exist in their ISO year, and the key must match the window.
    pub fn parse(window: Window, key: &str) -> Option<Period> {
        let b = key.as_bytes();
        let num = |s: &[u8]| -> Option<i64> {
            if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
                return None;
            }
            Some(s.iter().fold(0i64, |n, c| n * 10 + (c - b'0') as i64))
        };
        match window {
            Window::All => (key == "all").then_some(Period::ALL),
            Window::Day => {
                if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
                    return None;
                }
                let (y, m, d) = (num(&b[0..4])?, num(&b[5..7])? as u32, num(&b[8..10])? as u32);
                if !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) {
                    return None;
                }
                Some(Period { window, start_day: days_from_civil(y, m, d) })
            }
            Window::Week => {
                if b.len() != 8 || b[4] != b'-' || b[5] != b'W' {
                    return None;
                }
                let (y, w) = (num(&b[0..4])?, num(&b[6..8])?);
                if w < 1 {
                    return None;
                }
                let start_day = iso_week1_monday(y) + 7 * (w - 1);
                // Week 53 only exists in some years: the week must still belong to `y`.
                (iso_week_of_monday(start_day) == (y, w as u32)).then_some(Period { window, start_day })
            }
            Window::Month => {
                if b.len() != 7 || b[4] != b'-' {
                    return None;
                }
                let (y, m) = (num(&b[0..4])?, num(&b[5..7])? as u32);
                if !(1..=12).contains(&m) {
                    return None;
                }
                Some(Period { window, start_day: days_from_civil(y, m, 1) })
            }
        }
    }

    pub fn window(&self) -> Window {
        self.window
    }

    /// The period's key; the inverse of [`Period::parse`] (for years 0000–9999).
    pub fn key(&self) -> String {
        match self.window {
            Window::All => "all".to_string(),
            Window::Day => {
                let (y, m, d) = civil_from_days(self.start_day);
                format!("{y:04}-{m:02}-{d:02}")
            }
            Window::Week => {
                let (y, w) = iso_week_of_monday(self.start_day);
                format!("{y:04}-W{w:02}")
            }
            Window::Month => {
                let (y, m, _) = civil_from_days(self.start_day);
                format!("{y:04}-{m:02}")
            }
        }
    }

    /// First instant (inclusive) in `zone`: its first day's local midnight;
    /// `i64::MIN` for `All`.
    pub fn start_ms(&self, zone: &Zone) -> i64 {
        match self.window {
            Window::All => i64::MIN,
            _ => zone.day_start_ms(self.start_day),
        }
    }

    /// End instant (exclusive) in `zone`; `i64::MAX` for `All`.
    pub fn end_ms(&self, zone: &Zone) -> i64 {
        match self.window {
            Window::All => i64::MAX,
            _ => self.next().start_ms(zone),
        }
    }

    /// The following period; `All` stays `All`.
    pub fn next(&self) -> Period {
        self.after(1)
    }

    /// The period `n` after this one (`next()` applied `n` times, in O(1)).
    pub fn after(&self, n: u32) -> Period {
        let n = n as i64;
        let start_day = match self.window {
            Window::All => 0,
            Window::Day => self.start_day + n,
            Window::Week => self.start_day + 7 * n,
            Window::Month => {
                let (y, m, _) = civil_from_days(self.start_day);
                let months = y * 12 + (m as i64 - 1) + n;
                days_from_civil(months.div_euclid(12), (months.rem_euclid(12) + 1) as u32, 1)
            }
        };
        Period { window: self.window, start_day }
    }

    /// The preceding period; `All` stays `All`.
    pub fn prev(&self) -> Period {
        let start_day = match self.window {
            Window::All => 0,
            Window::Day => self.start_day - 1,
            Window::Week => self.start_day - 7,
            Window::Month => {
                let (y, m, _) = civil_from_days(self.start_day - 1);
                days_from_civil(y, m, 1)
            }
        };
        Period { window: self.window, start_day }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const UTC: &Zone = &Zone::Utc;

    fn ms(y: i64, m: u32, d: u32) -> i64 {
        days_from_civil(y, m, d) * MS_PER_DAY
    }

    fn key(w: Window, ts: i64) -> String {
        Period::of(w, ts, UTC).key()
    }

    #[test]
    fn the_epoch_is_day_zero_and_round_trips() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }

    #[test]
    fn civil_dates_round_trip_over_many_centuries() {
        for z in (-1_000_000..1_000_000).step_by(37) {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
            assert!(d >= 1 && d <= days_in_month(y, m));
        }
    }

    #[test]
    fn new_years_day_2027_is_in_week_53_of_2026() {
        assert_eq!(key(Window::Week, ms(2027, 1, 1)), "2026-W53");
    }

    #[test]
    fn december_30_2024_is_in_week_1_of_2025() {
        assert_eq!(key(Window::Week, ms(2024, 12, 30)), "2025-W01");
    }

    #[test]
    fn november_22_2026_is_the_sunday_ending_week_47() {
        let ts = ms(2026, 11, 22) + 23 * 3_600_000;
        assert_eq!(key(Window::Week, ts), "2026-W47");
        assert_eq!(key(Window::Day, ts), "2026-11-22");
        assert_eq!(key(Window::Month, ts), "2026-11");
        assert_eq!(key(Window::All, ts), "all");
        let w = Period::of(Window::Week, ts, UTC);
        assert_eq!(w.start_ms(UTC), ms(2026, 11, 16));
        assert_eq!(w.end_ms(UTC), ms(2026, 11, 23));
    }

    #[test]
    fn weeks_start_on_monday_at_midnight_utc() {
        let monday = ms(2026, 11, 23);
        assert_eq!(key(Window::Week, monday - 1), "2026-W47");
        assert_eq!(key(Window::Week, monday), "2026-W48");
    }

    #[test]
    fn instants_before_the_epoch_fall_in_the_right_day() {
        assert_eq!(key(Window::Day, -1), "1969-12-31");
        assert_eq!(key(Window::Month, -1), "1969-12");
        assert_eq!(key(Window::Week, -1), "1970-W01"); // Mon 1969-12-29 .. Sun 1970-01-04
    }

    #[test]
    fn parse_accepts_well_formed_keys_of_its_window() {
        assert_eq!(Period::parse(Window::Day, "2026-11-22").unwrap().start_ms(UTC), ms(2026, 11, 22));
        assert_eq!(Period::parse(Window::Week, "2026-W53").unwrap().start_ms(UTC), ms(2026, 12, 28));
        assert_eq!(Period::parse(Window::Month, "2024-02").unwrap().end_ms(UTC), ms(2024, 3, 1));
        assert_eq!(Period::parse(Window::Day, "2024-02-29").unwrap().key(), "2024-02-29");
        assert_eq!(Period::parse(Window::All, "all"), Some(Period::ALL));
    }

    #[test]
    fn parse_rejects_invalid_dates_weeks_and_formats() {
        for (w, k) in [
            (Window::Day, "2026-02-30"),
            (Window::Day, "2025-02-29"),
            (Window::Day, "2026-13-01"),
            (Window::Day, "2026-00-10"),
            (Window::Day, "2026-11-00"),
            (Window::Day, "2026-1-22"),
            (Window::Day, "2026-11-22 "),
            (Window::Day, "+026-11-22"),
            (Window::Week, "2026-W54"),
            (Window::Week, "2025-W53"),
            (Window::Week, "2026-W00"),
            (Window::Week, "2026-w47"),
            (Window::Week, "2026-W7"),
            (Window::Month, "2026-13"),
            (Window::Month, "2026-00"),
            (Window::Month, "26-11"),
            (Window::All, "ALL"),
            (Window::All, ""),
        ] {
            assert_eq!(Period::parse(w, k), None, "{k}");
        }
    }

    #[test]
    fn parse_rejects_a_key_of_another_window() {
        assert_eq!(Period::parse(Window::Week, "2026-11-22"), None);
        assert_eq!(Period::parse(Window::Day, "2026-W47"), None);
        assert_eq!(Period::parse(Window::Month, "2026-11-22"), None);
        assert_eq!(Period::parse(Window::Day, "all"), None);
        assert_eq!(Period::parse(Window::All, "2026-11"), None);
    }

    #[test]
    fn all_time_spans_everything_and_never_moves() {
        let p = Period::of(Window::All, 123, UTC);
        assert_eq!((p.start_ms(UTC), p.end_ms(UTC)), (i64::MIN, i64::MAX));
        assert_eq!(p.next(), p);
        assert_eq!(p.prev(), p);
        assert_eq!(p.window(), Window::All);
    }

    #[test]
    fn next_and_prev_step_over_month_and_year_boundaries() {
        let dec = Period::parse(Window::Month, "2026-12").unwrap();
        assert_eq!(dec.next().key(), "2027-01");
        assert_eq!(dec.next().prev(), dec);
        let w53 = Period::parse(Window::Week, "2026-W53").unwrap();
        assert_eq!(w53.next().key(), "2027-W01");
        let feb28 = Period::parse(Window::Day, "2028-02-28").unwrap();
        assert_eq!(feb28.next().key(), "2028-02-29");
    }

    fn any_window() -> impl Strategy<Value = Window> {
        prop_oneof![Just(Window::All), Just(Window::Day), Just(Window::Week), Just(Window::Month)]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn every_period_round_trips_and_contains_its_bounds(
            w in any_window(),
            // years 0001 .. 9998 so that keys stay four digits
            ts in ms(1, 1, 8)..ms(9998, 12, 20),
        ) {
            let p = Period::of(w, ts, UTC);
            prop_assert_eq!(p.window(), w);
            prop_assert_eq!(Period::parse(w, &p.key()), Some(p));
            prop_assert!(p.start_ms(UTC) <= ts && ts < p.end_ms(UTC));
            if w != Window::All {
                prop_assert_eq!(Period::of(w, p.start_ms(UTC), UTC), p);
                prop_assert_eq!(Period::of(w, p.end_ms(UTC) - 1, UTC), p);
                prop_assert_eq!(p.next().prev(), p);
                prop_assert_eq!(p.next().start_ms(UTC), p.end_ms(UTC));
                prop_assert_eq!(Period::of(w, p.start_ms(UTC) - 1, UTC), p.prev());
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]
        #[test]
        fn after_n_is_next_applied_n_times(w in any_window(), ts in ms(1971, 1, 1)..ms(2100, 1, 1), n in 0u32..500) {
            let p = Period::of(w, ts, UTC);
            let mut q = p;
            for _ in 0..n {
                q = q.next();
            }
            prop_assert_eq!(p.after(n), q);
        }
    }

    const ZONES: [&str; 6] = [
        "Asia/Shanghai",
        "America/New_York",
        "Europe/London",
        "Australia/Lord_Howe",
        "America/Havana",
        "Pacific/Kiritimati",
    ];

    #[test]
    fn a_shanghai_board_counts_8am_utc_in_the_local_day_and_midnight_utc_in_the_next() {
        let z = Zone::parse("Asia/Shanghai").unwrap();
        // 2026-11-22 15:59:59.999 UTC is 23:59:59.999 in Shanghai; a ms later is the 23rd there.
        let t = ms(2026, 11, 22) + 16 * 3_600_000;
        assert_eq!(Period::of(Window::Day, t - 1, &z).key(), "2026-11-22");
        assert_eq!(Period::of(Window::Day, t, &z).key(), "2026-11-23");
        assert_eq!(Period::of(Window::Day, t - 1, UTC).key(), "2026-11-22");
        // Sunday 2026-11-29 16:00 UTC is Monday 00:00 in Shanghai: a new ISO week there.
        assert_eq!(Period::of(Window::Week, ms(2026, 11, 29) + 16 * 3_600_000, &z).key(), "2026-W49");
        assert_eq!(Period::of(Window::Week, ms(2026, 11, 29) + 16 * 3_600_000, UTC).key(), "2026-W48");
        let d = Period::parse(Window::Day, "2026-11-23").unwrap();
        assert_eq!(d.start_ms(&z), t);
        assert_eq!(d.end_ms(&z) - d.start_ms(&z), 86_400_000);
    }

    #[test]
    fn a_day_a_zone_skipped_holds_no_instant_and_its_neighbours_meet() {
        // Kiritimati moved from UTC-10 to UTC+14 at local midnight starting
        // 1994-12-31: that day never happened there (a fresh-clone CI's
        // property test drew 1994-12-31 10:00 UTC, session 15).
        let z = Zone::parse("Pacific/Kiritimati").unwrap();
        let skipped = Period::parse(Window::Day, "1994-12-31").unwrap();
        assert_eq!(skipped.start_ms(&z), skipped.end_ms(&z));
        let t = ms(1994, 12, 31) + 10 * 3_600_000;
        assert_eq!(Period::of(Window::Day, t, &z).key(), "1995-01-01");
        assert_eq!(Period::of(Window::Day, t - 1, &z).key(), "1994-12-30");
        assert_eq!(Period::parse(Window::Day, "1994-12-30").unwrap().end_ms(&z), t);
    }

    #[test]
    fn a_new_york_month_with_a_daylight_saving_change_is_an_hour_short_or_long() {
        let z = Zone::parse("America/New_York").unwrap();
        let mar = Period::parse(Window::Month, "2026-03").unwrap();
        assert_eq!(mar.end_ms(&z) - mar.start_ms(&z), 31 * 86_400_000 - 3_600_000);
        let nov = Period::parse(Window::Month, "2026-11").unwrap();
        assert_eq!(nov.end_ms(&z) - nov.start_ms(&z), 30 * 86_400_000 + 3_600_000);
        assert_eq!(nov.start_ms(&z), ms(2026, 11, 1) + 4 * 3_600_000); // EDT, -4
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn every_local_period_holds_its_instants_and_meets_its_neighbours(
            w in any_window(),
            zone in 0usize..6,
            ts in ms(1971, 1, 1)..ms(2100, 1, 1),
        ) {
            let z = Zone::parse(ZONES[zone]).unwrap();
            let p = Period::of(w, ts, &z);
            prop_assert_eq!(Period::parse(w, &p.key()), Some(p));
            prop_assert!(p.start_ms(&z) <= ts && ts < p.end_ms(&z));
            if w != Window::All {
                prop_assert_eq!(Period::of(w, p.start_ms(&z), &z), p);
                prop_assert_eq!(Period::of(w, p.end_ms(&z) - 1, &z), p);
                // The instant before falls in the period before, past any
                // day the zone skipped (it holds no instant).
                let mut before = p.prev();
                while before.start_ms(&z) == before.end_ms(&z) {
                    before = before.prev();
                }
                prop_assert_eq!(Period::of(w, p.start_ms(&z) - 1, &z), before);
                prop_assert_eq!(p.next().start_ms(&z), p.end_ms(&z));
            }
        }
    }
}
