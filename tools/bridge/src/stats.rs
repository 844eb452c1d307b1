//! Counters shared by every source, the progress line built from them, and
//! Podium's reachability state (shown in the line while the bridge backs off).

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Default)]
pub struct Stats {
    /// Messages read from the brokers (a redelivery counts again).
    pub received: AtomicU64,
    /// Events Podium answered 202 for.
    pub forwarded: AtomicU64,
    /// Messages moved to a dead-letter stream or queue.
    pub dead_lettered: AtomicU64,
    /// Podium requests that failed and were retried (or nacked for redelivery).
    pub retries: AtomicU64,
    /// Messages forwarded without an identity: at least once, not exactly once.
    pub no_identity: AtomicU64,
    /// Messages not yet forwarded, per source, as last measured.
    lag: Mutex<BTreeMap<String, u64>>,
    /// Since when and why Podium is unreachable; `None` while it answers.
    down: Mutex<Option<(Instant, String)>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic elsewhere while holding the lock leaves plain counters behind: still usable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Stats {
    pub fn add(counter: &AtomicU64, n: usize) {
        counter.fetch_add(n as u64, Relaxed);
    }

    pub fn set_lag(&self, source: &str, lag: u64) {
        lock(&self.lag).insert(source.to_string(), lag);
    }

    /// Records a failed request (the progress line shows the outage).
    pub fn podium_down(&self, reason: &str) {
        self.retries.fetch_add(1, Relaxed);
        let mut d = lock(&self.down);
        match d.as_mut() {
            Some((_, r)) => *r = reason.to_string(),
            None => *d = Some((Instant::now(), reason.to_string())),
        }
    }

    /// Records an answer: the outage, if any, is over.
    pub fn podium_up(&self) {
        lock(&self.down).take();
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            received: self.received.load(Relaxed),
            forwarded: self.forwarded.load(Relaxed),
            dead_lettered: self.dead_lettered.load(Relaxed),
            retries: self.retries.load(Relaxed),
            no_identity: self.no_identity.load(Relaxed),
        }
    }

    /// The progress line: rates since the previous line, totals, lag, Podium's state.
    pub fn line(&self, prev: &Snapshot, elapsed: Duration) -> (String, Snapshot) {
        let now = self.snapshot();
        let secs = elapsed.as_secs_f64().max(1e-3);
        let rate = |a: u64, b: u64| (a.saturating_sub(b)) as f64 / secs;
        let lag: Vec<String> = lock(&self.lag).iter().map(|(k, v)| format!("{k}={v}")).collect();
        let state = match &*lock(&self.down) {
            None => "podium ok".to_string(),
            Some((since, why)) => format!("PODIUM DOWN {}s, backing off ({why})", since.elapsed().as_secs()),
        };
        let line = format!(
            "in {:.0}/s out {:.0}/s | received {} forwarded {} dead-lettered {} retries {} no-identity {} | lag {} | {}",
            rate(now.received, prev.received),
            rate(now.forwarded, prev.forwarded),
            now.received,
            now.forwarded,
            now.dead_lettered,
            now.retries,
            now.no_identity,
            if lag.is_empty() { "-".into() } else { lag.join(" ") },
            state
        );
        (line, now)
    }
}

#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Snapshot {
    pub received: u64,
    pub forwarded: u64,
    pub dead_lettered: u64,
    pub retries: u64,
    pub no_identity: u64,
}

/// Prints the progress line to stderr every `every` (stdout carries the JSON
/// logs): rewritten in place on a terminal, one line per tick otherwise.
pub async fn progress(stats: std::sync::Arc<Stats>, every: Duration) {
    let tty = std::io::stderr().is_terminal();
    let mut prev = stats.snapshot();
    let mut t = Instant::now();
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tick.tick().await;
        let (line, now) = stats.line(&prev, t.elapsed());
        prev = now;
        t = Instant::now();
        let mut err = std::io::stderr().lock();
        // A closed stderr must not stop the bridge: the line is informational.
        let _ = if tty { write!(err, "\r\x1b[2K{line}") } else { writeln!(err, "{line}") };
        let _ = err.flush();
    }
}

/// Bounded exponential backoff: doubles from 250 ms up to a ceiling, honours
/// a longer `Retry-After`, and starts over after a success.
pub struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(250);

    pub fn new(max: Duration) -> Backoff {
        Backoff { next: Self::FIRST.min(max), max }
    }

    pub fn reset(&mut self) {
        self.next = Self::FIRST.min(self.max);
    }

    /// The wait before the next attempt.
    pub fn next(&mut self, retry_after: Option<Duration>) -> Duration {
        let wait = retry_after.map_or(self.next, |r| r.max(self.next)).min(self.max);
        self.next = (self.next * 2).min(self.max);
        wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_ceiling_and_starts_over() {
        let mut b = Backoff::new(Duration::from_secs(2));
        let waits: Vec<u128> = (0..6).map(|_| b.next(None).as_millis()).collect();
        assert_eq!(waits, [250, 500, 1000, 2000, 2000, 2000]);
        assert_eq!(b.next(Some(Duration::from_secs(60))), Duration::from_secs(2), "Retry-After is bounded too");
        b.reset();
        assert_eq!(b.next(Some(Duration::from_millis(700))), Duration::from_millis(700));
    }

    #[test]
    fn the_progress_line_shows_rates_lag_and_an_outage() {
        let s = Stats::default();
        Stats::add(&s.received, 10);
        Stats::add(&s.forwarded, 8);
        s.set_lag("user_actions", 5);
        s.podium_down("connection refused");
        s.podium_down("connection refused");
        let (line, _) = s.line(&Snapshot::default(), Duration::from_secs(2));
        assert!(line.starts_with("in 5/s out 4/s"), "{line}");
        assert!(line.contains("lag user_actions=5"), "{line}");
        assert!(line.contains("PODIUM DOWN") && line.contains("retries 2"), "{line}");
        s.podium_up();
        assert!(s.line(&Snapshot::default(), Duration::from_secs(1)).0.ends_with("podium ok"));
    }
}
