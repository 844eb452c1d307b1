//! Rank movement (API 1.1): every member's rank at the board's last
//! checkpoint, taken on the hour (UTC), so reads can carry `prev_rank`.
//!
//! A checkpoint is the visible ranks at one instant, kept as a list of
//! `(id hash, rank)` sorted by hash: 12 bytes per member, a lookup is a
//! binary search. The hash is keyed (the seed is kept with the checkpoint),
//! so clients cannot aim two ids at one entry. The board takes a checkpoint
//! before the first change or read after each boundary, so it holds the
//! ranking exactly as it stood at the boundary.

use super::tree::RankKey;
use super::{ids, Board, Ranking, Ties};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Checkpoint {
    /// The boundary it was taken for (ms since the epoch).
    pub at: i64,
    seed: u64,
    /// Id hashes, sorted, and beside them (same index) the ranks: two
    /// arrays, 12 bytes per member (a `(u64, u32)` pair would pad to 16).
    hashes: Vec<u64>,
    ranks: Vec<u32>,
}

/// The latest checkpoint boundary at or before `now`, for checkpoints every
/// `every` ms (an hour: on the hour, UTC).
pub fn boundary(now: i64, every: i64) -> i64 {
    let every = every.max(1);
    now - now.rem_euclid(every)
}

impl Checkpoint {
    /// The visible ranks of `r` under `ties`, as of boundary `at`.
    pub fn take(r: &Ranking, ties: Ties, at: i64, seed: u64) -> Checkpoint {
        let mut pairs: Vec<(u64, u32)> = Vec::with_capacity(r.visible_len());
        r.for_each_rank(ties, |id, rank| {
            pairs.push((ids::hash(id, seed), rank.min(u64::from(u32::MAX)) as u32));
        });
        Checkpoint::from_pairs(at, seed, pairs)
    }

    fn from_pairs(at: i64, seed: u64, mut pairs: Vec<(u64, u32)>) -> Checkpoint {
        pairs.sort_unstable_by_key(|e| e.0);
        let hashes = pairs.iter().map(|e| e.0).collect();
        let ranks = pairs.iter().map(|e| e.1).collect();
        Checkpoint { at, seed, hashes, ranks }
    }

    /// The member's rank at the checkpoint; `None` when it was not on the
    /// board (or hidden) then.
    pub fn rank_of(&self, member: &str) -> Option<u64> {
        let h = ids::hash(member.as_bytes(), self.seed);
        let i = self.hashes.binary_search(&h).ok()?;
        self.ranks.get(i).map(|r| u64::from(*r))
    }

    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    /// Bytes per member held in memory.
    pub const BYTES_PER_MEMBER: usize = 12;

    /// The entries as little-endian bytes, in chunks of at most `per` entries
    /// (for storage rows); with `at` and `seed`, `from_chunks` rebuilds it.
    pub fn chunks(&self, per: usize) -> impl Iterator<Item = Vec<u8>> + '_ {
        let per = per.max(1);
        self.hashes.chunks(per).zip(self.ranks.chunks(per)).map(|(hs, rs)| {
            let mut out = Vec::with_capacity(hs.len() * 12);
            for (h, r) in hs.iter().zip(rs) {
                out.extend_from_slice(&h.to_le_bytes());
                out.extend_from_slice(&r.to_le_bytes());
            }
            out
        })
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Rebuilds a checkpoint from `chunks`' output (in order).
    pub fn from_chunks(at: i64, seed: u64, chunks: impl IntoIterator<Item = Vec<u8>>) -> Checkpoint {
        let mut pairs = Vec::new();
        for c in chunks {
            for e in c.chunks_exact(12) {
                let mut h = [0u8; 8];
                let mut r = [0u8; 4];
                h.copy_from_slice(&e[..8]);
                r.copy_from_slice(&e[8..]);
                pairs.push((u64::from_le_bytes(h), u32::from_le_bytes(r)));
            }
        }
        Checkpoint::from_pairs(at, seed, pairs)
    }
}

impl<R: RankKey> Board<R> {
    /// Calls `f` with every visible member's id and rank under `ties`, best
    /// first, without building a listing.
    pub fn for_each_rank(&self, ties: Ties, mut f: impl FnMut(&[u8], u64)) {
        let mut shown = 0u64;
        let mut prev: Option<(R, u64)> = None;
        for (k, pay) in self.tree.iter_from(0) {
            let id = self.id_bytes(k, pay);
            if self.is_hidden_id(id) {
                continue;
            }
            shown += 1;
            let rank = match (ties, prev) {
                (Ties::Shared, Some((pk, pr))) if pk == k.0 => pr,
                _ => shown,
            };
            prev = Some((k.0, rank));
            f(id, rank);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{Op, Order};
    use crate::domain::names::MemberId;

    fn board(events: &[(&str, f64, i64)]) -> Ranking {
        let mut r = Ranking::new(Order::Desc, Op::Incr);
        for (m, v, ts) in events {
            r.apply(&MemberId::parse(*m).unwrap(), *v, *ts);
        }
        r
    }

    #[test]
    fn a_checkpoint_keeps_every_visible_rank_as_it_stood() {
        let mut r = board(&[("a", 5.0, 1), ("b", 5.0, 2), ("c", 1.0, 3), ("d", 9.0, 4)]);
        r.set_hidden("d", true);
        let cp = Checkpoint::take(&r, Ties::Shared, 3_600_000, 42);
        assert_eq!((cp.rank_of("a"), cp.rank_of("b"), cp.rank_of("c")), (Some(1), Some(1), Some(3)));
        assert_eq!(cp.rank_of("d"), None, "hidden members have no visible rank");
        assert_eq!(cp.rank_of("zed"), None);
        let first = Checkpoint::take(&r, Ties::First, 0, 7);
        assert_eq!((first.rank_of("a"), first.rank_of("b"), first.rank_of("c")), (Some(1), Some(2), Some(3)));
        // later changes leave it as it was
        r.apply(&MemberId::parse("c").unwrap(), 10.0, 5);
        assert_eq!(cp.rank_of("c"), Some(3));
        let back = Checkpoint::from_chunks(cp.at, cp.seed(), cp.chunks(2));
        assert_eq!(back, cp);
        assert_eq!(cp.len(), 3);
        // 12 bytes per member held: two arrays, no padding
        assert_eq!(cp.hashes.capacity() * 8 + cp.ranks.capacity() * 4, 3 * Checkpoint::BYTES_PER_MEMBER);
    }

    #[test]
    fn boundaries_fall_on_the_hour() {
        assert_eq!(boundary(7_200_000 + 5, 3_600_000), 7_200_000);
        assert_eq!(boundary(7_200_000, 3_600_000), 7_200_000);
        assert_eq!(boundary(-1, 3_600_000), -3_600_000);
        assert_eq!(boundary(5, 0), 5);
    }
}
