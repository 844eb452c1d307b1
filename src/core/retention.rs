//! How long past periods are kept: `RETAIN_PERIODS = "day:400,week:160,month:60"`
//! keeps the current period plus that many past ones of each window.

use super::period::Period;
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
    pub fn expires_at(&self, p: Period) -> Option<i64> {
        let keep = self.keep(p.window())?;
        let mut q = p;
        for _ in 0..=keep {
            q = q.next();
        }
        Some(q.start_ms())
    }

    /// Whether a period may be read or written at `now`: not in the future
    /// and not yet expired.
    pub fn is_live(&self, p: Period, now_ms: i64) -> bool {
        let current = Period::of(p.window(), now_ms);
        if p.start_ms() > current.start_ms() {
            return false;
        }
        self.expires_at(p).is_none_or(|t| now_ms < t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(r.expires_at(p), Some(day("2026-11-23").start_ms()));
        assert!(r.is_live(p, day("2026-11-22").start_ms()));
        assert!(!r.is_live(p, day("2026-11-23").start_ms()));
    }

    #[test]
    fn future_periods_are_not_live_and_all_time_never_expires() {
        let r = Retention::default();
        let now = day("2026-11-22").start_ms() + 1;
        assert!(!r.is_live(day("2026-11-23"), now));
        assert!(r.is_live(day("2026-11-22"), now));
        assert!(r.is_live(Period::of(Window::All, now), now));
        assert_eq!(r.expires_at(Period::of(Window::All, now)), None);
    }
}
