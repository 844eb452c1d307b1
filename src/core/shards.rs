//! Sharded boards (API 1.1 `shards`): one board period spread over N
//! rankings, each member in exactly one (by a fixed hash of its id), read as
//! if it were one ranking.
//!
//! The reads are exact because every shard can say, in O(log² n), how its
//! visible entries stand against any [`Spot`] ([`Counts`]): a member's rank is
//! 1 + the sum over shards of the entries before it (`first` ties) or
//! strictly better (`shared`), `total` and percentiles are sums too. A
//! listing merges the shards' listings in board order (each shard's own
//! listing is already in that order) and ranks the merged entries by their
//! global position. Which shard holds which member is [`shard_of`]; the
//! merge and the ranks are here, the I/O (one call per shard) in the glue.

use super::ranking::{Counts, Spot};
use super::Ties;

/// The most shards a board may have.
pub const MAX_SHARDS: u16 = 64;

/// The shard (0..shards) that holds `member`: a fixed hash (FNV-1a, then a
/// 64-bit finaliser so that ids differing in one byte spread), mapped to the
/// range by a multiply-shift. Fixed across isolates and releases: changing
/// it would move members between shards.
pub fn shard_of(member: &str, shards: u16) -> u16 {
    if shards <= 1 {
        return 0;
    }
    let mut h =
        member.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3));
    // splitmix64's finaliser
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^= h >> 31;
    ((h as u128 * shards as u128) >> 64) as u16
}

/// The ingest partition (0..queues) of a board's events: a deployment with
/// N event queues spreads its boards over them by the same fixed hash, so
/// its intake is N times one queue's.
pub fn partition_of(board: &str, queues: u16) -> u16 {
    shard_of(board, queues)
}

/// The shards' listings (each in board order, each item with its spot) as
/// one listing in board order. A member is on one shard only, so no spot
/// repeats.
pub fn merge<T>(lists: Vec<Vec<(Spot, T)>>) -> Vec<(Spot, T)> {
    let mut all: Vec<(Spot, T)> = lists.into_iter().flatten().collect();
    // Each list is sorted, so this is a merge of runs for the sort.
    all.sort_by(|a, b| a.0.cmp(&b.0));
    all
}

/// The ranks of a merged listing whose first entry is at global position
/// `start` (0-based) and whose first rank key has `better_first` entries
/// strictly better on the whole board (only read under `shared` ties, and
/// only when the first entry may tie with entries before the listing).
pub fn ranks(spots: &[&Spot], start: u64, better_first: u64, ties: Ties) -> Vec<u64> {
    let mut out: Vec<u64> = Vec::with_capacity(spots.len());
    for (i, s) in spots.iter().enumerate() {
        let g = start + i as u64;
        let rank = match ties {
            Ties::First => g + 1,
            Ties::Shared => match (i.checked_sub(1).and_then(|p| spots.get(p)), out.last()) {
                (Some(prev), Some(&r)) if prev.ties_with(s) => r,
                (Some(_), _) => g + 1,
                (None, _) => better_first + 1,
            },
        };
        out.push(rank);
    }
    out
}

/// `top(offset, limit)` of the whole board from each shard's best
/// `offset + limit` visible entries (everything that can be in the page or
/// before it): the page, each item with its rank.
pub fn top<T>(lists: Vec<Vec<(Spot, T)>>, offset: usize, limit: usize, ties: Ties) -> Vec<(Spot, T, u64)> {
    let all = merge(lists);
    let end = offset.saturating_add(limit).min(all.len());
    // Ranked from the first entry: under `shared` ties a page's first rank
    // depends on the entries before it, which are all here.
    let ranked = {
        let spots: Vec<&Spot> = all.iter().take(end).map(|(s, _)| s).collect();
        ranks(&spots, 0, 0, ties)
    };
    all.into_iter()
        .zip(ranked)
        .skip(offset)
        .take(end.saturating_sub(offset))
        .map(|((s, t), r)| (s, t, r))
        .collect()
}

/// A member's standing from the shards' counts against its spot (summed,
/// each taken with the member as the reader): (rank, total, percentile).
pub fn standing(sum: Counts, ties: Ties) -> (u64, u64, f64) {
    let rank = 1 + match ties {
        Ties::First => sum.before,
        Ties::Shared => sum.better,
    };
    let worse = sum.total.saturating_sub(sum.not_worse);
    let percentile = if sum.total == 0 { 0.0 } else { 100.0 * worse as f64 / sum.total as f64 };
    (rank, sum.total, percentile)
}

/// The rank of an entry at `spot` from the shards' counts against it.
pub fn rank_of(sum: Counts, ties: Ties) -> u64 {
    standing(sum, ties).0
}

/// `around`'s window from the shards' answers to [`Ranking::near`]
/// (`before`: each shard's nearest entries before the member; `after`:
/// each shard's entries from the member on): up to `radius` on each side
/// of the member, the member included, and the global position of the
/// window's first entry, given the member's own (`at`: the sum of the
/// shards' `before` counts).
///
/// [`Ranking::near`]: super::ranking::Ranking::near
pub fn around<T>(
    before: Vec<Vec<(Spot, T)>>,
    after: Vec<Vec<(Spot, T)>>,
    radius: usize,
    at: u64,
) -> (Vec<(Spot, T)>, u64) {
    let mut b = merge(before);
    let keep_from = b.len().saturating_sub(radius);
    let mut window: Vec<(Spot, T)> = b.drain(keep_from..).collect();
    let start = at - window.len() as u64;
    window.extend(merge(after).into_iter().take(radius + 1));
    (window, start)
}

/// A page of a sharded board too deep for every shard to send its best
/// `offset + limit` entries: where it starts, found without reading what
/// comes before it.
///
/// Let `c[i]` be how many of shard `i`'s entries come before global place
/// `offset` (0-based). The page is then the merge of each shard's entries
/// from `c[i]` on. `c` is not known, but bounds on it are: `lo[i] ≤ c[i] ≤
/// hi[i]`. A probe narrows them: an entry at place `p` of shard `i`,
/// counted on every shard (`before[j]`: shard `j`'s entries before it; their
/// sum is its global place `g`):
/// - if `g < offset`, everything before it is before the page: `lo[j] ≥
///   before[j]` on every shard, and `lo[i] ≥ p + 1`;
/// - else everything from it on is not: `hi[j] ≤ before[j]`.
///
/// Once the windows `[lo[i], hi[i] + limit)` hold at most `budget` entries
/// in all, each shard sends its window. Whatever a window leaves out comes
/// before the page (below `lo`) or after it (past `hi + limit`: more than
/// `limit` places past an entry that is not before `offset`), and the
/// windows' entries that come before the page number exactly `offset - Σ
/// lo`: the merged windows, after that many, start the page.
#[derive(Debug, Clone, PartialEq)]
pub struct DeepPage {
    offset: u64,
    limit: u64,
    totals: Vec<u64>,
    lo: Vec<u64>,
    hi: Vec<u64>,
    budget: u64,
}

impl DeepPage {
    /// `totals`: each shard's visible entries. Before any probe a shard
    /// holds at least what the others cannot (`offset` − their totals)
    /// before the page and at most `offset` or all it has.
    pub fn new(offset: u64, limit: usize, totals: Vec<u64>, budget: usize) -> DeepPage {
        let all: u64 = totals.iter().sum();
        let hi: Vec<u64> = totals.iter().map(|&n| n.min(offset)).collect();
        let lo = totals.iter().zip(&hi).map(|(&n, &h)| offset.saturating_sub(all - n).min(h)).collect();
        DeepPage { offset, limit: limit as u64, totals, lo, hi, budget: budget as u64 }
    }

    /// How many entries the windows hold now.
    pub fn gathered(&self) -> u64 {
        self.windows().iter().map(|&(_, n)| n).sum()
    }

    /// Whether the windows are small enough to send, or can shrink no more
    /// (every shard's place known).
    pub fn settled(&self) -> bool {
        self.gathered() <= self.budget || self.lo.iter().zip(&self.hi).all(|(l, h)| l >= h)
    }

    /// The places to probe next on each shard: up to `k` spread evenly over
    /// `[lo, hi)`, where each answers "is `c` past this place?".
    pub fn probes(&self, k: usize) -> Vec<Vec<u64>> {
        self.lo
            .iter()
            .zip(&self.hi)
            .map(|(&lo, &hi)| {
                let width = hi.saturating_sub(lo);
                let mut places: Vec<u64> =
                    (1..=k as u64).map(|j| lo + width * j / (k as u64 + 1)).filter(|&p| p < hi).collect();
                places.dedup();
                places
            })
            .collect()
    }

    /// Narrows the bounds with a probe: the entry at `place` of `shard`,
    /// with `before[j]` entries of shard `j` before it. (Bounds that cross,
    /// as writes between the rounds can make them, are closed up: the read
    /// is then as good as any read of a board that moves while it is read.)
    pub fn narrow(&mut self, shard: usize, place: u64, before: &[u64]) {
        let g: u64 = before.iter().sum();
        for (j, &b) in before.iter().enumerate() {
            let (Some(lo), Some(hi)) = (self.lo.get_mut(j), self.hi.get_mut(j)) else { continue };
            if g < self.offset {
                let at_least = if j == shard { b.max(place + 1) } else { b };
                *lo = (*lo).max(at_least).min(*hi);
            } else {
                *hi = (*hi).min(b).max(*lo);
            }
        }
    }

    /// Each shard's window: the place to send from and how many.
    pub fn windows(&self) -> Vec<(u64, u64)> {
        self.lo
            .iter()
            .zip(&self.hi)
            .zip(&self.totals)
            .map(|((&lo, &hi), &n)| (lo, (hi + self.limit).min(n).saturating_sub(lo)))
            .collect()
    }

    /// How many of the merged windows' entries come before the page.
    pub fn skip(&self) -> u64 {
        self.offset.saturating_sub(self.lo.iter().sum())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_spread_over_every_shard_about_evenly_and_always_to_the_same_one() {
        for n in [2u16, 7, 64] {
            let mut seen = vec![0usize; n as usize];
            for i in 0..64_000 {
                let m = format!("user-{i}");
                let s = shard_of(&m, n);
                assert_eq!(s, shard_of(&m, n));
                seen[s as usize] += 1;
            }
            let mean = 64_000 / n as usize;
            assert!(seen.iter().all(|&c| c > mean * 8 / 10 && c < mean * 12 / 10), "{n}: {seen:?}");
        }
        assert_eq!(shard_of("anyone", 1), 0);
        // pinned: a change of the hash would move stored members between shards
        assert_eq!([shard_of("alice", 8), shard_of("bob", 8), shard_of("carol", 8)], [6, 3, 1]);
    }

    fn spot(score: u64, reach: u64, m: &str) -> Spot {
        Spot { key: (score, 0), reach, member: m.into() }
    }

    #[test]
    fn spots_cross_json_with_their_64_bit_keys_as_text() {
        let s = Spot { key: (u64::MAX - 1, 1 << 60), reach: (1 << 56) - 1, member: "zoë".into() };
        let text = serde_json::to_string(&s).unwrap();
        assert!(!text.contains(&format!(":{}", u64::MAX - 1)), "{text}");
        assert_eq!(serde_json::from_str::<Spot>(&text).unwrap(), s);
    }

    #[test]
    fn a_deep_page_is_probed_down_to_windows_that_hold_it_and_past_the_end_gathers_nothing() {
        // Two shards of 1,000 interleaved: shard 0 holds the even global
        // places, shard 1 the odd ones.
        let global = |shard: usize, place: u64| 2 * place + shard as u64;
        let before = |g: u64| [g.div_ceil(2), g / 2];
        let mut deep = DeepPage::new(1_001, 10, vec![1_000, 1_000], 40);
        assert!(!deep.settled());
        let mut rounds = 0;
        while !deep.settled() {
            rounds += 1;
            for (shard, places) in deep.probes(3).into_iter().enumerate() {
                for p in places {
                    deep.narrow(shard, p, &before(global(shard, p)));
                }
            }
        }
        assert!(rounds <= 4, "{rounds} rounds");
        assert!(deep.gathered() <= 40, "{deep:?}");
        // The merged windows, after `skip`, start at global place 1,001.
        let mut merged: Vec<u64> = deep
            .windows()
            .iter()
            .enumerate()
            .flat_map(|(shard, &(from, n))| (from..from + n).map(move |p| global(shard, p)))
            .collect();
        merged.sort_unstable();
        let page: Vec<u64> = merged.into_iter().skip(deep.skip() as usize).take(10).collect();
        assert_eq!(page, (1_001..1_011).collect::<Vec<u64>>());

        let past = DeepPage::new(5_000, 10, vec![400, 400], 100);
        assert!(past.settled());
        assert_eq!(past.gathered(), 0);
    }

    #[test]
    fn shared_ranks_carry_a_tie_from_before_the_listing_and_first_ranks_are_positions() {
        let (a, b, c) = (spot(5, 1, "a"), spot(5, 2, "b"), spot(7, 0, "c"));
        let spots = [&a, &b, &c];
        // two entries before the listing, one of them tied with `a`
        assert_eq!(ranks(&spots, 2, 1, Ties::Shared), vec![2, 2, 5]);
        assert_eq!(ranks(&spots, 2, 1, Ties::First), vec![3, 4, 5]);
    }
}
