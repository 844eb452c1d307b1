//! What both sources do with a batch of broker messages: map each to an
//! event (or a dead-letter reason), send the events to Podium, and say per
//! message whether it may be acknowledged and whether it is a dead letter.
//! The sources differ only in how they read, acknowledge and dead-letter.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{info, warn};

use crate::error::{Error, Result};
use crate::mapping::{Mapping, Message};
use crate::podium::{Batch, Podium, State};
use crate::stats::{Backoff, Stats};

/// What became of one message.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Podium accepted its event: acknowledge it.
    Forwarded,
    /// It cannot become an accepted event: dead-letter it with the reason, then acknowledge it.
    Dead(String),
    /// Not yet sent (Podium unavailable): keep it for a retry.
    Pending,
}

/// A source batch in flight: the mapped events and each message's slot in it.
pub struct Work {
    slots: Vec<Result<usize, String>>,
    batch: Batch,
}

impl Work {
    /// Maps every message; counts those without an identity (at least once).
    pub fn new(mapping: &Mapping, msgs: &[&dyn Message], stats: &Stats, source: &str) -> Work {
        let mut events = Vec::with_capacity(msgs.len());
        let mut slots = Vec::with_capacity(msgs.len());
        let mut no_id = 0;
        for m in msgs {
            match mapping.event(*m) {
                Ok(e) => {
                    if e.id.is_none() {
                        no_id += 1;
                    }
                    slots.push(Ok(events.len()));
                    events.push(e);
                }
                Err(reason) => slots.push(Err(match m.problem() {
                    Some(p) => format!("{reason} ({p})"),
                    None => reason,
                })),
            }
        }
        if no_id > 0 {
            Stats::add(&stats.no_identity, no_id);
            tracing::debug!(source, count = no_id, "messages without identity: delivered at least once, not exactly once");
        }
        Work { batch: Batch::new(&events), slots }
    }

    pub fn verdicts(&self) -> Vec<Verdict> {
        self.slots
            .iter()
            .map(|s| match s {
                Err(reason) => Verdict::Dead(format!("unparseable: {reason}")),
                Ok(i) => match &self.batch.states[*i] {
                    State::Accepted => Verdict::Forwarded,
                    State::Rejected(r) => Verdict::Dead(r.clone()),
                    State::Pending => Verdict::Pending,
                },
            })
            .collect()
    }
}

/// Sends work to Podium for one source, with that source's backoff.
pub struct Sender {
    pub podium: Arc<Podium>,
    pub stats: Arc<Stats>,
    backoff: Backoff,
    max_backoff: Duration,
    source: String,
    /// When this source's current outage began: shared by its batches in
    /// flight, so that each source logs an outage's start and end once.
    down_since: Arc<std::sync::Mutex<Option<std::time::Instant>>>,
}

impl Sender {
    pub fn new(podium: Arc<Podium>, stats: Arc<Stats>, max_backoff: Duration, source: &str) -> Sender {
        Sender { podium, stats, backoff: Backoff::new(max_backoff), max_backoff, source: source.to_string(), down_since: Arc::default() }
    }

    /// A sender for another batch in flight, with its own backoff.
    pub fn fork(&self) -> Sender {
        Sender { down_since: self.down_since.clone(), ..Sender::new(self.podium.clone(), self.stats.clone(), self.max_backoff, &self.source) }
    }

    fn down_since(&self) -> std::sync::MutexGuard<'_, Option<std::time::Instant>> {
        // Plain bookkeeping: a poisoned lock still holds a usable Instant.
        self.down_since.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a failure; true when it starts this source's outage.
    fn outage_starts(&self) -> bool {
        let mut since = self.down_since();
        since.is_none() && since.replace(std::time::Instant::now()).is_none()
    }

    /// Records a success; how long the outage lasted, if there was one.
    fn outage_ends(&self) -> Option<Duration> {
        self.down_since().take().map(|t| t.elapsed())
    }

    /// One round of sending. `None`: every event is accepted or rejected.
    /// `Some(wait)`: Podium is unavailable; wait that long before the next
    /// attempt. The outage is logged when it starts and at each retry, and
    /// shown in the progress line until Podium answers again.
    pub async fn round(&mut self, work: &mut Work) -> Result<Option<Duration>> {
        let before = work.batch.states.iter().filter(|s| **s == State::Accepted).count();
        let sent = self.podium.send(&mut work.batch).await;
        let after = work.batch.states.iter().filter(|s| **s == State::Accepted).count();
        Stats::add(&self.stats.forwarded, after - before);
        match sent? {
            Ok(()) => {
                self.backoff.reset();
                self.stats.podium_up();
                if let Some(down) = self.outage_ends() {
                    info!(source = %self.source, down_ms = down.as_millis() as u64, "podium answers again: resuming");
                }
                Ok(None)
            }
            Err(u) => {
                let wait = self.backoff.next(u.retry_after);
                self.stats.podium_down(&u.reason);
                if self.outage_starts() {
                    warn!(source = %self.source, reason = %u.reason, "podium unavailable: backing off, nothing is acknowledged meanwhile");
                }
                warn!(source = %self.source, reason = %u.reason, retry_in_ms = wait.as_millis() as u64, "podium request failed: will retry");
                Ok(Some(wait))
            }
        }
    }
}

/// Sleeps `wait` unless asked to stop first; true when asked to stop.
pub async fn sleep_or_stop(wait: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    if *stop.borrow() {
        return true;
    }
    tokio::select! {
        _ = tokio::time::sleep(wait) => false,
        _ = stop.changed() => true,
    }
}

/// Whether a batch ended because the bridge was asked to stop.
pub enum Handled {
    Done,
    Stopped,
}

/// A source's batches in flight: up to `max` Podium requests at once, since
/// one request waits on Podium's durable commit (tens of ms for 1000 events)
/// and the next batch can be read and sent meanwhile. Dropping it aborts
/// what is still in flight, which the broker then redelivers (unacked).
pub struct Inflight {
    set: JoinSet<Result<Handled>>,
    max: usize,
}

impl Inflight {
    pub fn new(max: usize) -> Inflight {
        Inflight { set: JoinSet::new(), max: max.max(1) }
    }

    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    pub fn spawn(&mut self, batch: impl Future<Output = Result<Handled>> + Send + 'static) {
        self.set.spawn(batch);
    }

    /// Waits for one batch in flight to finish. `Ok(true)`: it stopped for a shutdown.
    pub async fn join_one(&mut self) -> Result<bool> {
        match self.set.join_next().await {
            None => Ok(false),
            Some(done) => match done.map_err(|e| Error::Broker(format!("a batch task failed: {e}")))?? {
                Handled::Done => Ok(false),
                Handled::Stopped => Ok(true),
            },
        }
    }

    /// Waits until another batch may start. `Ok(true)`: the bridge is stopping.
    pub async fn make_room(&mut self) -> Result<bool> {
        while self.set.len() >= self.max {
            if self.join_one().await? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Waits for every batch in flight. `Ok(true)`: one of them stopped for a shutdown.
    pub async fn drain(&mut self) -> Result<bool> {
        let mut stopped = false;
        while !self.set.is_empty() {
            stopped |= self.join_one().await?;
        }
        Ok(stopped)
    }
}
