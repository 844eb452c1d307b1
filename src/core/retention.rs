//! How long past periods are kept: `RETAIN_PERIODS = "day:400,week:160,month:60"`
//! keeps the current period plus that many past ones of each window.

use super::period::Period;
use super::zone::Zone;
use super::Window;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub day: u32,
    pub week: u32,
    pub month: u32,
}

impl Default for Retention {
    fn default() -> Self {
        Retention { day: 400, week: 160, month: 60 }
    }
}

impl Retention {
    /// Parses `day:400,week:160,month:60`; missing windows keep their default,
    /// malformed text gives the defaults (a bad setting must not lose data).
    pub fn parse(s: &str) -> Retention {
        let mut r = Retention::default();
        for part in s.split(',') {
            let Some((w, n)) = part.split_once(':') else { continue };
            let Ok(n) = n.trim().parse::<u32>() else { continue };
            match Window::parse(w.trim()) {
                Some(Window::Day) => r.day = n,
                Some(Window::Week) => r.week = n,
                Some(Window::Month) => r.month = n,
                _ => {}
            }
        }
        r
    }

    fn keep(&self, w: Window) -> Option<u32> {
        match w {
            Window::All => None,
            Window::Day => Some(self.day),
            Window::Week => Some(self.week),
            Window::Month => Some(self.month),
        }
    }

    /// When a period's scores are deleted: once `keep` newer periods have
    /// ended after it. `None` for all-time.
    pub fn expires_at(&self, p: Period, zone: &Zone) -> Option<i64> {
        let keep = self.keep(p.window())?;
        Some(p.after(keep.saturating_add(1)).start_ms(zone))
    }

    /// Whether a period may be read or written at `now_ms`: not yet expired,
    /// and begun by `now_ms + ahead_ms`. Events may be stamped up to a few
    /// minutes ahead of the clock (API 1.1): such an event counts in its own
    /// period, and that period can be read, before the clock reaches it.
    pub fn is_live(&self, p: Period, zone: &Zone, now_ms: i64, ahead_ms: i64) -> bool {
        let latest = Period::of(p.window(), now_ms.saturating_add(ahead_ms), zone);
        if p.start_ms(zone) > latest.start_ms(zone) {
            return false;
        }
        self.expires_at(p, zone).is_none_or(|t| now_ms < t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UTC: &Zone = &Zone::Utc;

    fn day(s: &str) -> Period {
        Period::parse(Window::Day, s).unwrap()
    }

    #[test]
    fn settings_are_read_per_window_with_defaults_for_the_rest() {
        assert_eq!(Retention::parse("day:7"), Retention { day: 7, week: 160, month: 60 });
        assert_eq!(Retention::parse("nonsense"), Retention::default());
    }

    #[test]
    fn a_day_is_kept_for_the_configured_number_of_later_days() {
        let r = Retention { day: 2, week: 1, month: 1 };
        let p = day("2026-11-20");
        // Kept while 2026-11-21 and 2026-11-22 are the newer days; gone on the 23rd.
        assert_eq!(r.expires_at(p, UTC), Some(day("2026-11-23").start_ms(UTC)));
        assert!(r.is_live(p, UTC, day("2026-11-22").start_ms(UTC), 0));
        assert!(!r.is_live(p, UTC, day("2026-11-23").start_ms(UTC), 0));
    }

    #[test]
    fn future_periods_are_not_live_and_all_time_never_expires() {
        let r = Retention::default();
        let now = day("2026-11-22").start_ms(UTC) + 1;
        assert!(!r.is_live(day("2026-11-23"), UTC, now, 0));
        assert!(!r.is_live(day("2026-11-23"), UTC, now, AHEAD));
        assert!(r.is_live(day("2026-11-22"), UTC, now, 0));
        assert!(r.is_live(Period::of(Window::All, now, UTC), UTC, now, 0));
        assert_eq!(r.expires_at(Period::of(Window::All, now, UTC), UTC), None);
    }

    const AHEAD: i64 = 5 * 60 * 1000;
    const MIN: i64 = 60 * 1000;

    /// An event stamped `ahead` ms after `now`, as ingest accepts it: the
    /// periods of its `ts` that must be writable.
    fn writable_periods_of_an_event_ahead(now: i64, ahead: i64) -> Vec<Period> {
        let r = Retention::default();
        let ts = now + ahead;
        [Window::All, Window::Day, Window::Week, Window::Month]
            .into_iter()
            .map(|w| Period::of(w, ts, UTC))
            .filter(|p| r.is_live(*p, UTC, now, AHEAD))
            .collect()
    }

    fn every_window_of(ts: i64) -> Vec<Period> {
        [Window::All, Window::Day, Window::Week, Window::Month]
            .into_iter()
            .map(|w| Period::of(w, ts, UTC))
            .collect()
    }

    #[test]
    fn an_event_stamped_in_the_next_day_counts_in_that_day_in_the_last_minutes_of_a_day() {
        // 23:58 on a Tuesday; the event says 00:01 on Wednesday.
        let now = day("2026-11-24").start_ms(UTC) + 24 * 60 * MIN - 2 * MIN;
        let got = writable_periods_of_an_event_ahead(now, 3 * MIN);
        assert_eq!(got, every_window_of(now + 3 * MIN));
        assert_eq!(got[1].key(), "2026-11-25");
    }

    #[test]
    fn an_event_stamped_in_the_next_week_counts_in_that_week_in_the_last_minutes_of_a_sunday() {
        let now = day("2026-11-29").start_ms(UTC) + 24 * 60 * MIN - MIN; // Sunday 23:59
        let got = writable_periods_of_an_event_ahead(now, 5 * MIN);
        assert_eq!(got, every_window_of(now + 5 * MIN));
        assert_eq!(got[2].key(), "2026-W49");
    }

    #[test]
    fn an_event_stamped_in_the_next_month_counts_in_that_month_in_the_last_minutes_of_a_month() {
        let now = day("2026-11-30").start_ms(UTC) + 24 * 60 * MIN - 4 * MIN;
        let got = writable_periods_of_an_event_ahead(now, 5 * MIN);
        assert_eq!(got, every_window_of(now + 5 * MIN));
        assert_eq!(got[3].key(), "2026-12");
    }

    #[test]
    fn an_event_stamped_in_the_next_year_counts_in_its_day_week_and_month_in_the_last_minutes_of_a_year() {
        let now = day("2026-12-31").start_ms(UTC) + 24 * 60 * MIN - MIN;
        let got = writable_periods_of_an_event_ahead(now, MIN);
        assert_eq!(got, every_window_of(now + MIN));
        let keys: Vec<String> = got.iter().map(|p| p.key()).collect();
        // 2027-01-01 is a Friday: ISO week 53 of 2026.
        assert_eq!(keys, ["all", "2027-01-01", "2026-W53", "2027-01"]);
    }

    #[test]
    fn a_period_further_ahead_than_the_allowance_is_not_writable() {
        let r = Retention::default();
        let now = day("2026-11-24").start_ms(UTC) + 24 * 60 * MIN - 10 * MIN;
        assert!(!r.is_live(day("2026-11-25"), UTC, now, AHEAD));
        assert!(r.is_live(day("2026-11-25"), UTC, now + 6 * MIN, AHEAD));
    }

    #[test]
    fn a_local_day_expires_at_local_midnight() {
        let z = Zone::parse("Asia/Tokyo").unwrap();
        let r = Retention { day: 0, week: 1, month: 1 };
        let p = day("2026-11-22");
        // Tokyo's 2026-11-23 begins at 15:00 UTC on the 22nd.
        assert_eq!(r.expires_at(p, &z), Some(day("2026-11-22").start_ms(UTC) + 15 * 60 * MIN));
        assert!(r.is_live(p, &z, day("2026-11-22").start_ms(UTC) + 15 * 60 * MIN - 1, 0));
        assert!(!r.is_live(p, &z, day("2026-11-22").start_ms(UTC) + 15 * 60 * MIN, 0));
    }
}
