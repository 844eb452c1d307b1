//! Shadow-hidden members (API 1.1): a hidden member is left out of every
//! listing, `total`, and every other member's rank and percentile, while
//! its own standing reads as if it were visible.
//!
//! The hidden members on the board are kept in a sorted list of their
//! entries (rank key, reach, id: the tree's own order), beside the tree.
//! Every read then corrects the tree's O(log n) counts by a binary search
//! in that list: "how many hidden entries sort before this one", "how many
//! have a strictly better score". A read costs O(log n + log h) with h
//! hidden members (a listing start, O(log h · log n)); nothing scans the
//! board. A hidden member's own change moves its record in the list (O(h),
//! a memmove; hidden members are few: cheaters, not the crowd).

use std::collections::HashSet;

use super::tree::{reach, Key, RankKey};
use super::{Board, Entry, Standing, Ties};

/// A hidden member's place in the order: (rank key, reach, id bytes).
type Place<R> = (R, u64, Box<[u8]>);

#[derive(Default, Clone)]
pub(super) struct Hidden<R> {
    /// Every hidden id, on the board or not (a hidden member may arrive later).
    ids: HashSet<Box<[u8]>>,
    /// The hidden members on the board, in the board's order.
    on: Vec<Place<R>>,
}

/// The hidden entries a read leaves out: all, or all but the reader's own.
pub(super) struct View<'a, R> {
    on: &'a [Place<R>],
    /// The index in `on` of the member reading its own standing.
    skip: Option<usize>,
}

impl<R: RankKey> View<'_, R> {
    pub(super) fn len(&self) -> usize {
        self.on.len() - usize::from(self.skip.is_some())
    }

    /// How many of the left-out entries satisfy `pred`, a prefix predicate.
    fn count(&self, pred: impl Fn(&Place<R>) -> bool) -> usize {
        let pp = self.on.partition_point(pred);
        pp - usize::from(self.skip.is_some_and(|s| s < pp))
    }

    pub(super) fn before_entry(&self, k0: R, r: u64, id: &[u8]) -> usize {
        self.count(|h| (h.0, h.1, &h.2[..]) < (k0, r, id))
    }

    pub(super) fn better_score(&self, k0: R) -> usize {
        self.count(|h| h.0 < k0)
    }

    pub(super) fn not_worse_score(&self, k0: R) -> usize {
        self.count(|h| h.0 <= k0)
    }

    /// The `j`-th left-out entry (in order).
    fn get(&self, j: usize) -> Option<&Place<R>> {
        let i = match self.skip {
            Some(s) if j >= s => j + 1,
            _ => j,
        };
        self.on.get(i)
    }
}

impl<R: RankKey> Board<R> {
    /// Hides (or shows again) a member; true when that changed anything.
    /// A member not on the board may be hidden: it stays hidden when it comes.
    pub fn set_hidden(&mut self, member: &str, hidden: bool) -> bool {
        let id: Box<[u8]> = member.as_bytes().into();
        let changed = if hidden { self.hidden.ids.insert(id) } else { self.hidden.ids.remove(&id) };
        if changed {
            self.refresh_hidden(member.as_bytes());
        }
        changed
    }

    pub fn is_hidden(&self, member: &str) -> bool {
        self.hidden.ids.contains(member.as_bytes())
    }

    /// The hidden members, on the board or not, in no particular order.
    pub fn hidden(&self) -> impl Iterator<Item = &str> + '_ {
        self.hidden.ids.iter().filter_map(|b| std::str::from_utf8(b).ok())
    }

    /// Members a listing shows (`len` counts the hidden ones too).
    pub fn visible_len(&self) -> usize {
        self.len() - self.hidden.on.len()
    }

    pub(super) fn is_hidden_id(&self, id: &[u8]) -> bool {
        !self.hidden.ids.is_empty() && self.hidden.ids.contains(id)
    }

    pub(super) fn has_hidden(&self) -> bool {
        !self.hidden.ids.is_empty()
    }

    /// `refresh_hidden` for a member whose entry changed, only if it is
    /// hidden: a visible member's change costs one set lookup, not a scan.
    pub(super) fn refresh_if_hidden(&mut self, id: &[u8]) {
        if self.hidden.ids.contains(id) {
            self.refresh_hidden(id);
        }
    }

    /// Puts the member's record in the hidden list right after its entry
    /// changed (or leaves it out: not hidden, or not on the board).
    pub(super) fn refresh_hidden(&mut self, id: &[u8]) {
        if let Some(i) = self.hidden.on.iter().position(|h| &h.2[..] == id) {
            self.hidden.on.remove(i);
        }
        if !self.hidden.ids.contains(id) {
            return;
        }
        let Some((_, here)) = self.find(id) else { return };
        let (k, _) = self.tree.entry(here);
        let place: Place<R> = (k.0, reach(k), id.into());
        let at = self.hidden.on.partition_point(|h| (h.0, h.1, &h.2[..]) < (place.0, place.1, &place.2[..]));
        self.hidden.on.insert(at, place);
    }

    /// The view of a read by `reader` (its own entry counts as visible).
    pub(super) fn view(&self, reader: Option<&[u8]>) -> View<'_, R> {
        let skip = reader
            .filter(|id| self.hidden.ids.contains(*id))
            .and_then(|id| self.hidden.on.iter().position(|h| &h.2[..] == id));
        View { on: &self.hidden.on, skip }
    }

    fn left_out(&self, view: &View<'_, R>, id: &[u8]) -> bool {
        self.hidden.ids.contains(id) && view.skip.and_then(|s| view.on.get(s)).is_none_or(|h| &h.2[..] != id)
    }

    /// The shared rank of rank key `k0` among the view's visible entries.
    fn shared_rank(&self, view: &View<'_, R>, k0: R) -> u64 {
        (self.tree.count_before(k0, false) - view.better_score(k0)) as u64 + 1
    }

    /// Visible entries from visible position `start`, at most `limit`.
    pub(super) fn listing_visible(
        &self,
        view: &View<'_, R>,
        start: usize,
        limit: usize,
        ties: Ties,
    ) -> Vec<Entry<'_>> {
        // j: how many left-out entries lie before the start. The j-th one has
        // pos_j - j visible entries before it, a non-decreasing count.
        let (mut lo, mut hi) = (0, view.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            let visible_before = view
                .get(mid)
                .and_then(|h| self.find(&h.2))
                .map(|(_, here)| self.tree.position(here).0 - mid)
                .unwrap_or(usize::MAX);
            if visible_before <= start {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let mut out: Vec<Entry<'_>> = Vec::with_capacity(limit.min(1024));
        let mut prev: Option<(R, u64)> = None;
        for (k, pay) in self.tree.iter_from(start + lo) {
            if out.len() == limit {
                break;
            }
            let key: Key<R> = k;
            if self.left_out(view, self.id_bytes(key, pay)) {
                continue;
            }
            let g = start + out.len();
            let rank = match (ties, prev) {
                (Ties::First, _) => g as u64 + 1,
                (Ties::Shared, Some((pk, pr))) if pk == key.0 => pr,
                (Ties::Shared, Some(_)) => g as u64 + 1,
                (Ties::Shared, None) => self.shared_rank(view, key.0),
            };
            prev = Some((key.0, rank));
            out.push(self.entry(rank, key, pay));
        }
        out
    }

    pub(super) fn top_visible(&self, offset: usize, limit: usize, ties: Ties) -> Vec<Entry<'_>> {
        self.listing_visible(&self.view(None), offset, limit, ties)
    }

    pub(super) fn rank_visible(&self, member: &str, ties: Ties) -> Option<Standing<'_>> {
        let id = member.as_bytes();
        let (_, here) = self.find(id)?;
        let view = self.view(Some(id));
        let (g, k, better, not_worse) = self.tree.standing(here);
        let total = self.len() - view.len();
        let worse = (self.len() - not_worse) - (view.len() - view.not_worse_score(k.0));
        Some(Standing {
            rank: match ties {
                Ties::First => (g - view.before_entry(k.0, reach(k), id)) as u64 + 1,
                Ties::Shared => (better - view.better_score(k.0)) as u64 + 1,
            },
            score: super::score_of_key(k.0.score(), self.order),
            sub: super::sub_of_key(k.0, self.tiebreak),
            total: total as u64,
            percentile: 100.0 * worse as f64 / total as f64,
            meta: self.meta_of(id),
        })
    }

    pub(super) fn around_visible(&self, member: &str, radius: usize, ties: Ties) -> Option<Vec<Entry<'_>>> {
        let id = member.as_bytes();
        let (_, here) = self.find(id)?;
        let view = self.view(Some(id));
        let (g, k) = self.tree.position(here);
        let v = g - view.before_entry(k.0, reach(k), id);
        let total = self.len() - view.len();
        let start = v.saturating_sub(radius);
        let end = v.saturating_add(radius).saturating_add(1).min(total);
        Some(self.listing_visible(&view, start, end - start, ties))
    }

    pub(super) fn lookup_visible(&self, members: &[&str], ties: Ties) -> Vec<Entry<'_>> {
        let view = self.view(None);
        let mut found: Vec<(usize, Key<R>, super::Loc)> = members
            .iter()
            .filter(|m| !self.hidden.ids.contains(m.as_bytes()))
            .filter_map(|m| self.find(m.as_bytes()).map(|(_, here)| (m, here)))
            .map(|(m, here)| {
                let (g, k) = self.tree.position(here);
                (g - view.before_entry(k.0, reach(k), m.as_bytes()), k, here)
            })
            .collect();
        found.sort_unstable_by_key(|f| f.0);
        found.dedup_by_key(|f| f.0);
        found
            .into_iter()
            .map(|(v, k, here)| {
                let rank = match ties {
                    Ties::First => v as u64 + 1,
                    Ties::Shared => self.shared_rank(&view, k.0),
                };
                self.entry(rank, k, self.tree.entry(here).1)
            })
            .collect()
    }
}
