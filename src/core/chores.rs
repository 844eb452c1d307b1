//! When a board period's alarm should fire. Time is an argument: the glue
//! passes `now` and what it knows, and sets the alarm this returns.

/// Event ids are remembered at least this long: the contract promises 24 h,
/// and as long as dead letters are kept (7 days) so that re-driving one
/// never counts an event twice; a day more for margin.
pub const DEDUPE_MS: i64 = 8 * 24 * 3600 * 1000;
/// Live updates are coalesced to at most one per this interval: the
/// contract's 500 ms plus a margin, because a push's trip to the hub and on
/// to a viewer varies by tens of ms, and two pushes 500 ms apart at the board
/// could reach a viewer 480 ms apart.
pub const PUBLISH_EVERY_MS: i64 = 550;
/// Webhooks look at a board period's top at most this often: `top_changed`
/// is at most one per board period per second, `overtaken` one per member
/// (API 1.1).
pub const HOOK_EVERY_MS: i64 = 1000;
/// A board period tells the catalog its counts (the `members` and `events`
/// of `GET /v1/boards`) at most this often while they change.
pub const REPORT_EVERY_MS: i64 = 1000;
/// A period whose counts the listing does not show (not the default
/// window's current period) is told so, and reports again only after this
/// long, in case the board's settings made it the shown one meanwhile.
pub const REPORT_QUIET_MS: i64 = 60 * 1000;
/// Pruning runs at most this often.
pub const PRUNE_MIN_GAP_MS: i64 = 60 * 1000;
/// A pruning pass goes through the dedupe records a slice at a time (the
/// table has no index on time: that index cost ~half of each record's
/// bytes); slices follow each other this far apart.
pub const PRUNE_SLICE_GAP_MS: i64 = 2 * 1000;

/// What a board period knows when it decides on its next alarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chores {
    pub now: i64,
    /// The ranking changed since the last push to live viewers.
    pub dirty: bool,
    /// A live hub has viewers of this period.
    pub watched: bool,
    pub last_publish: i64,
    /// When the oldest remembered event id was stored (a lower bound).
    pub oldest_seen: Option<i64>,
    /// A pruning pass is part-way through the records.
    pub pruning: bool,
    /// When this period's retention ends (`None` for all-time).
    pub expires_at: Option<i64>,
    /// How long event ids are remembered: `DEDUPE_MS`, shorter only in
    /// tests (the glue takes `DEDUPE_MS` from the environment only with
    /// test faults on).
    pub dedupe_ms: i64,
    /// Hooks watch this board's top (API 1.1 webhooks).
    pub hooked: bool,
    /// The ranking changed since the hooks last looked.
    pub hook_dirty: bool,
    pub last_hook_look: i64,
    /// When this period ends, until its end has been told (`None` for the
    /// all-time window, whose seasons end by a call instead).
    pub period_end: Option<i64>,
    /// A large checkpoint is being stored a slice per turn.
    pub checkpoint_storing: bool,
    /// The counts changed since the catalog last heard them.
    pub counts_dirty: bool,
    /// The catalog may hear them again from then on.
    pub report_after: i64,
}

impl Chores {
    /// The earliest time any chore is due, if any is pending.
    pub fn next_alarm(&self) -> Option<i64> {
        let publish =
            (self.dirty && self.watched).then(|| (self.last_publish + PUBLISH_EVERY_MS).max(self.now));
        // Wake when the oldest id passes the horizon, not on a timer.
        let prune = if self.pruning {
            Some(self.now + PRUNE_SLICE_GAP_MS)
        } else {
            let gap = PRUNE_MIN_GAP_MS.min(self.dedupe_ms);
            self.oldest_seen.map(|t| (t + self.dedupe_ms).max(self.now + gap))
        };
        let hooks =
            (self.hooked && self.hook_dirty).then(|| (self.last_hook_look + HOOK_EVERY_MS).max(self.now));
        let store = self.checkpoint_storing.then_some(self.now);
        let report = self.counts_dirty.then(|| self.report_after.max(self.now));
        [publish, prune, self.expires_at, hooks, self.period_end, store, report].into_iter().flatten().min()
    }

    /// The catalog is due this period's counts.
    pub fn report_due(&self) -> bool {
        self.counts_dirty && self.now >= self.report_after
    }

    /// The hooks are due a look at the top.
    pub fn hooks_due(&self) -> bool {
        self.hooked && self.hook_dirty && self.now >= self.last_hook_look + HOOK_EVERY_MS
    }

    /// The period has ended and its hooks have not been told.
    pub fn period_ended(&self) -> bool {
        self.period_end.is_some_and(|t| self.now >= t)
    }

    pub fn expired(&self) -> bool {
        self.expires_at.is_some_and(|t| self.now >= t)
    }

    pub fn publish_due(&self) -> bool {
        self.watched && self.dirty && self.now >= self.last_publish + PUBLISH_EVERY_MS
    }

    /// A pruning slice is due now.
    pub fn prune_due(&self) -> bool {
        self.pruning || self.oldest_seen.is_some_and(|t| self.now >= t + self.dedupe_ms)
    }

    /// Ids stored before this are pruned.
    pub fn prune_before(&self) -> i64 {
        self.now - self.dedupe_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idle(now: i64) -> Chores {
        Chores {
            now,
            dirty: false,
            watched: false,
            last_publish: 0,
            oldest_seen: None,
            pruning: false,
            expires_at: None,
            dedupe_ms: DEDUPE_MS,
            hooked: false,
            hook_dirty: false,
            last_hook_look: 0,
            period_end: None,
            checkpoint_storing: false,
            counts_dirty: false,
            report_after: 0,
        }
    }

    #[test]
    fn a_checkpoint_being_stored_is_due_at_once() {
        assert_eq!(Chores { checkpoint_storing: true, ..idle(5_000) }.next_alarm(), Some(5_000));
    }

    #[test]
    fn hooks_look_at_a_changed_top_at_most_once_a_second() {
        let c = Chores { hooked: true, hook_dirty: true, last_hook_look: 10_000, ..idle(10_200) };
        assert_eq!(c.next_alarm(), Some(11_000));
        assert!(!c.hooks_due());
        assert!(Chores { now: 11_000, ..c }.hooks_due());
        // nothing changed, or nobody listens: no alarm for hooks
        assert_eq!(Chores { hook_dirty: false, ..c }.next_alarm(), None);
        assert_eq!(Chores { hooked: false, ..c }.next_alarm(), None);
    }

    #[test]
    fn a_period_end_wakes_the_board_even_with_no_traffic() {
        let c = Chores { period_end: Some(86_400_000), ..idle(1_000) };
        assert_eq!(c.next_alarm(), Some(86_400_000));
        assert!(!c.period_ended());
        assert!(Chores { now: 86_400_000, ..c }.period_ended());
    }

    #[test]
    fn a_short_dedupe_horizon_prunes_that_soon() {
        let c = Chores { oldest_seen: Some(5_000), dedupe_ms: 3_000, ..idle(6_000) };
        // not before the horizon, nor sooner than the minimum gap (the horizon here)
        assert_eq!(c.next_alarm(), Some(9_000));
        assert!(!c.prune_due());
        assert!(Chores { now: 8_000, ..c }.prune_due());
        assert_eq!(Chores { now: 8_000, ..c }.prune_before(), 5_000);
    }

    #[test]
    fn an_idle_all_time_board_needs_no_alarm() {
        assert_eq!(idle(1_000).next_alarm(), None);
    }

    #[test]
    fn changes_nobody_watches_are_not_published() {
        let c = Chores { dirty: true, ..idle(1_000) };
        assert_eq!(c.next_alarm(), None);
        assert!(!c.publish_due());
    }

    #[test]
    fn watched_changes_are_published_at_most_every_550_ms() {
        let c = Chores { dirty: true, watched: true, last_publish: 10_000, ..idle(10_100) };
        assert_eq!(c.next_alarm(), Some(10_550));
        assert!(!c.publish_due());
        assert!(!Chores { now: 10_549, ..c }.publish_due());
        let later = Chores { now: 10_550, ..c };
        assert!(later.publish_due());
        let long_after = Chores { now: 50_000, ..c };
        assert_eq!(long_after.next_alarm(), Some(50_000));
    }

    #[test]
    fn event_ids_are_pruned_once_the_oldest_passes_the_horizon() {
        let c = Chores { oldest_seen: Some(5_000), ..idle(6_000) };
        assert_eq!(c.next_alarm(), Some(5_000 + DEDUPE_MS));
        assert_eq!(c.prune_before(), 6_000 - DEDUPE_MS);
    }

    #[test]
    fn a_pruning_pass_goes_slice_by_slice_until_it_is_done() {
        let c = Chores { oldest_seen: Some(5_000), ..idle(6_000) };
        assert!(!c.prune_due());
        assert!(Chores { now: 5_000 + DEDUPE_MS, ..c }.prune_due());
        let mid = Chores { pruning: true, ..c };
        assert!(mid.prune_due());
        assert_eq!(mid.next_alarm(), Some(6_000 + PRUNE_SLICE_GAP_MS));
    }

    #[test]
    fn an_expired_period_is_due_for_deletion() {
        let c = Chores { expires_at: Some(7_000), ..idle(6_000) };
        assert_eq!(c.next_alarm(), Some(7_000));
        assert!(!c.expired());
        assert!(Chores { now: 7_000, ..c }.expired());
    }

    #[test]
    fn counts_are_reported_at_most_once_a_second_while_they_change() {
        let c = Chores { counts_dirty: true, report_after: 11_000, ..idle(10_200) };
        assert_eq!(c.next_alarm(), Some(11_000));
        assert!(!c.report_due());
        assert!(Chores { now: 11_000, ..c }.report_due());
        assert_eq!(Chores { counts_dirty: false, ..c }.next_alarm(), None);
        assert_eq!(Chores { report_after: 0, ..c }.next_alarm(), Some(10_200));
    }
}
