//! Pieces shared by `podium-load`, `redis-baseline` and `redis-import` (the
//! HTTP client): the member draw (so
//! both systems see the same skew), percentiles and clock helpers.

pub mod client;

use std::time::{SystemTime, UNIX_EPOCH};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Zipf};

/// Draws member ranks 1..=n with P(k) proportional to k^-s (bounded Zipf).
/// `s = 0` is uniform. scripts/perf_seed.py draws from the same law, so the
/// Python seed, the Rust baseline and Podium rank the same kind of crowd:
/// a few hot members and a long tail.
pub struct Members {
    rng: SmallRng,
    zipf: Option<Zipf<f64>>,
    n: u64,
}

impl Members {
    pub fn new(n: u64, s: f64, seed: u64) -> anyhow::Result<Self> {
        anyhow::ensure!(n >= 1, "--members must be at least 1");
        anyhow::ensure!(s.is_finite() && s >= 0.0, "--zipf must be a finite number >= 0");
        let zipf = if s == 0.0 {
            None
        } else {
            Some(Zipf::new(n as f64, s).map_err(|e| anyhow::anyhow!("zipf({n}, {s}): {e}"))?)
        };
        Ok(Self { rng: SmallRng::seed_from_u64(seed), zipf, n })
    }

    /// A member rank in 1..=n.
    pub fn next_rank(&mut self) -> u64 {
        match &self.zipf {
            // Zipf yields a float holding an integer in [1, n]; clamp guards
            // the conversion against rounding at the ends.
            Some(z) => (z.sample(&mut self.rng) as u64).clamp(1, self.n),
            None => self.rng.random_range(1..=self.n),
        }
    }

    /// A uniform index in 0..k (which board or event type an event takes).
    pub fn pick(&mut self, k: usize) -> usize {
        if k <= 1 {
            0
        } else {
            self.rng.random_range(0..k)
        }
    }
}

/// Milliseconds since the Unix epoch (wall clock: the probe's value is
/// compared with the viewer's clock on the same machine).
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// CPU seconds (user + system) this process has used so far, from
/// /proc/self/stat (Linux; `None` elsewhere). Reported so a reader can tell
/// how much of the 2 cores the load tool itself took from the server.
pub fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(") ")?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the file: indexes 11 and 12 here
    // (the field after the name, "state", is index 0).
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    // USER_HZ is 100 on every Linux architecture Podium's tools run on.
    Some(ticks / 100.0)
}

/// Nearest-rank percentile of an unsorted sample; `None` when empty.
pub fn percentile(samples: &mut [f64], p: f64) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    samples.sort_by(|a, b| a.total_cmp(b));
    let rank = ((p / 100.0) * samples.len() as f64).ceil() as usize;
    let idx = rank.clamp(1, samples.len()) - 1;
    Some(samples[idx])
}

/// Rounds for the report (figures, not noise).
pub fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// Seconds to 2 decimals, parsed back from text so the JSON shows `3.24`
/// rather than `3.2399999999999998`.
pub fn round2(x: f64) -> f64 {
    format!("{x:.2}").parse().unwrap_or(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_nearest_rank() {
        let mut v: Vec<f64> = (1..=100).map(|x| x as f64).collect();
        assert_eq!(percentile(&mut v, 50.0), Some(50.0));
        assert_eq!(percentile(&mut v, 99.0), Some(99.0));
        assert_eq!(percentile(&mut [], 50.0), None);
    }

    #[test]
    fn zipf_stays_in_range_and_is_skewed() -> anyhow::Result<()> {
        let mut m = Members::new(1000, 1.0, 7)?;
        let mut first = 0;
        for _ in 0..10_000 {
            let r = m.next_rank();
            assert!((1..=1000).contains(&r));
            if r == 1 {
                first += 1;
            }
        }
        // H(1000) ~ 7.49, so rank 1 takes ~13% of draws; uniform would be 0.1%.
        assert!(first > 800, "rank 1 drawn {first} times");
        Ok(())
    }
}
