//! A board's time zone (API 1.1 `tz`): where its days, weeks and months
//! begin. Periods are counted in local civil days; the zone turns an instant
//! into its local day and a local day into its first instant.
//!
//! UTC is plain arithmetic. Other zones come from the IANA database that
//! `jiff` embeds (no filesystem on the edge), with daylight-saving changes:
//! a local day is 23, 24 or 25 hours long, and a day whose midnight falls in
//! a gap starts at the first instant after the gap.

use std::fmt;

use jiff::tz::TimeZone;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::period::{civil_from_days, MS_PER_DAY};

/// A board's time zone. Equal when the names are equal.
#[derive(Clone, Default)]
pub enum Zone {
    #[default]
    Utc,
    Iana {
        name: String,
        tz: TimeZone,
    },
}

impl Zone {
    /// An IANA zone name (`Asia/Shanghai`); `UTC` and `Etc/UTC` are UTC.
    /// `None` for a name the database does not hold.
    pub fn parse(name: &str) -> Option<Zone> {
        if name == "UTC" || name == "Etc/UTC" {
            return Some(Zone::Utc);
        }
        // Names are ASCII (`America/Argentina/Buenos_Aires`); anything else,
        // or a path trick, never reaches the database lookup.
        let plausible = !name.is_empty()
            && name.len() <= 64
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"/_-+".contains(&b))
            && !name.starts_with('/')
            && !name.contains("//");
        if !plausible {
            return None;
        }
        // The database's own spelling (lookups ignore case), so one zone has
        // one name: `asia/shanghai` is stored and shown as `Asia/Shanghai`.
        let tz = TimeZone::get(name).ok()?;
        let name = tz.iana_name().unwrap_or(name).to_string();
        if name == "UTC" || name == "Etc/UTC" {
            return Some(Zone::Utc);
        }
        Some(Zone::Iana { name, tz })
    }

    pub fn name(&self) -> &str {
        match self {
            Zone::Utc => "UTC",
            Zone::Iana { name, .. } => name,
        }
    }

    pub fn is_utc(&self) -> bool {
        matches!(self, Zone::Utc)
    }

    /// Offset from UTC at instant `ts_ms`, in ms.
    fn offset_ms(&self, ts_ms: i64) -> i64 {
        match self {
            Zone::Utc => 0,
            Zone::Iana { tz, .. } => match Timestamp::from_millisecond(ts_ms) {
                Ok(t) => tz.to_offset(t).seconds() as i64 * 1000,
                Err(_) => 0,
            },
        }
    }

    /// The local civil day (days since 1970-01-01) that holds instant `ts_ms`:
    /// the day `d` with `day_start_ms(d) <= ts_ms < day_start_ms(d + 1)`.
    pub fn day_of(&self, ts_ms: i64) -> i64 {
        let guess = ts_ms.saturating_add(self.offset_ms(ts_ms)).div_euclid(MS_PER_DAY);
        if self.is_utc() {
            return guess;
        }
        // Where midnight repeats (clocks back at 00:00), an instant of the
        // repeated hour reads as the day before, yet follows the new day's
        // start: the day boundaries, not the wall clock, decide.
        if ts_ms >= self.day_start_ms(guess + 1) {
            guess + 1
        } else if ts_ms < self.day_start_ms(guess) {
            guess - 1
        } else {
            guess
        }
    }

    /// The first instant (Unix ms) of local civil day `day`.
    pub fn day_start_ms(&self, day: i64) -> i64 {
        let utc = day.saturating_mul(MS_PER_DAY);
        let Zone::Iana { tz, .. } = self else { return utc };
        let (y, m, d) = civil_from_days(day);
        let local = i16::try_from(y)
            .ok()
            .and_then(|y| jiff::civil::DateTime::new(y, m as i8, d as i8, 0, 0, 0, 0).ok());
        // `compatible`: a midnight in a gap moves past the gap (the day's first
        // instant); a repeated midnight takes its first occurrence.
        match local.map(|dt| tz.to_ambiguous_timestamp(dt).compatible()) {
            Some(Ok(t)) => t.as_millisecond(),
            // Outside jiff's years (±9999): no real event gets here.
            _ => utc,
        }
    }
}

impl PartialEq for Zone {
    fn eq(&self, other: &Zone) -> bool {
        self.name() == other.name()
    }
}
impl Eq for Zone {}

impl fmt::Debug for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Zone({})", self.name())
    }
}

impl Serialize for Zone {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Zone {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Zone, D::Error> {
        let name = String::deserialize(d)?;
        Zone::parse(&name).ok_or_else(|| serde::de::Error::custom(format!("unknown time zone {name:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::period::days_from_civil as day;

    const H: i64 = 3_600_000;

    fn ny() -> Zone {
        Zone::parse("America/New_York").unwrap()
    }

    #[test]
    fn utc_and_its_alias_are_utc_and_unknown_names_are_refused() {
        assert_eq!(Zone::parse("UTC"), Some(Zone::Utc));
        assert_eq!(Zone::parse("Etc/UTC"), Some(Zone::Utc));
        for bad in [
            "",
            "Mars/Olympus",
            "../etc/passwd",
            "/etc/localtime",
            "Asia//Tokyo",
            "Europe/Pari\u{0}s",
            "x".repeat(65).as_str(),
        ] {
            assert_eq!(Zone::parse(bad), None, "{bad:?}");
        }
        assert_eq!(Zone::parse("Asia/Shanghai").unwrap().name(), "Asia/Shanghai");
        assert_eq!(Zone::parse("asia/SHANGHAI").unwrap().name(), "Asia/Shanghai");
        assert_eq!(Zone::parse("utc"), Some(Zone::Utc));
    }

    #[test]
    fn a_shanghai_day_starts_at_16_00_utc_the_day_before() {
        let z = Zone::parse("Asia/Shanghai").unwrap();
        let d = day(2026, 11, 22);
        assert_eq!(z.day_start_ms(d), day(2026, 11, 21) * MS_PER_DAY + 16 * H);
        assert_eq!(z.day_of(z.day_start_ms(d)), d);
        assert_eq!(z.day_of(z.day_start_ms(d) - 1), d - 1);
    }

    #[test]
    fn new_york_days_are_23_and_25_hours_long_at_the_daylight_saving_changes() {
        let z = ny();
        // 2026-03-08: clocks go 02:00 -> 03:00 (EST -5 -> EDT -4).
        let spring = day(2026, 3, 8);
        assert_eq!(z.day_start_ms(spring + 1) - z.day_start_ms(spring), 23 * H);
        // 2026-11-01: clocks go 02:00 -> 01:00 (EDT -4 -> EST -5).
        let fall = day(2026, 11, 1);
        assert_eq!(z.day_start_ms(fall + 1) - z.day_start_ms(fall), 25 * H);
        assert_eq!(z.day_start_ms(fall), day(2026, 11, 1) * MS_PER_DAY + 4 * H);
        // Both 01:30s of the fall-back night are on Nov 1.
        assert_eq!(z.day_of(z.day_start_ms(fall) + 90 * 60_000), fall);
        assert_eq!(z.day_of(z.day_start_ms(fall) + 150 * 60_000), fall);
        assert_eq!(z.day_of(z.day_start_ms(fall + 1) - 1), fall);
    }

    #[test]
    fn a_midnight_in_a_gap_starts_the_day_after_the_gap() {
        // America/Havana springs forward at 00:00 -> 01:00 (2026-03-08).
        let z = Zone::parse("America/Havana").unwrap();
        let d = day(2026, 3, 8);
        let start = z.day_start_ms(d);
        assert_eq!(z.day_of(start), d);
        assert_eq!(z.day_of(start - 1), d - 1);
        assert_eq!(z.day_start_ms(d + 1) - start, 23 * H);
    }

    #[test]
    fn every_instant_of_a_year_falls_in_the_day_whose_bounds_hold_it() {
        for name in
            ["America/New_York", "Europe/London", "Australia/Lord_Howe", "America/Havana", "Asia/Kathmandu"]
        {
            let z = Zone::parse(name).unwrap();
            let mut t = day(2026, 1, 1) * MS_PER_DAY;
            while t < day(2027, 1, 1) * MS_PER_DAY {
                let d = z.day_of(t);
                assert!(z.day_start_ms(d) <= t && t < z.day_start_ms(d + 1), "{name} at {t}");
                t += 17 * 60_000; // every 17 minutes: crosses every transition
            }
        }
    }

    #[test]
    fn a_zone_round_trips_through_json_by_name() {
        let z = ny();
        let s = serde_json::to_string(&z).unwrap();
        assert_eq!(s, "\"America/New_York\"");
        assert_eq!(serde_json::from_str::<Zone>(&s).unwrap(), z);
        assert!(serde_json::from_str::<Zone>("\"Nowhere/Land\"").is_err());
    }
}
