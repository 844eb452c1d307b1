//! Rank movement (API 1.1): every member's rank at the board's last
//! checkpoint, taken on the hour (UTC), so reads can carry `prev_rank`.
//!
//! A checkpoint is the visible ranks at one instant, kept as `(id hash,
//! rank)` pairs grouped by the hash's top bits into buckets of ~8 (a
//! two-pass radix sort, see `group`); a lookup scans one bucket. 12 bytes per member plus
//! 0.5 per member of bucket starts. The hash is keyed (the seed is kept
//! with the checkpoint), so clients cannot aim two ids at one entry. The
//! board takes a checkpoint before the first change or read after each
//! boundary, so it holds the ranking exactly as it stood at the boundary.

use super::tree::{reach, RankKey};
use super::{ids, Board, Ranking, Spot, Ties};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Checkpoint {
    /// The boundary it was taken for (ms since the epoch).
    pub at: i64,
    seed: u64,
    /// Bucket `b` (the hash's top `bits` bits) holds entries
    /// `starts[b]..starts[b + 1]` of the arrays below.
    bits: u32,
    starts: Vec<u32>,
    /// Id hashes, grouped by bucket, and beside them (same index) the
    /// ranks: two arrays, 12 bytes per member (a `(u64, u32)` pair would
    /// pad to 16).
    hashes: Vec<u64>,
    ranks: Vec<u32>,
    /// Sharded boards only: where each entry sorted, so the members of other
    /// shards can be ranked against this shard's checkpoint.
    places: Option<Places>,
}

/// The visible entries' places at a checkpoint, in board order: (score key,
/// subscore key, reach) and the id bytes (concatenated, `ends[i]` the end
/// of entry `i`'s). 28 bytes per member plus its id.
#[derive(Debug, Clone, Default, PartialEq)]
struct Places {
    keys: Vec<(u64, u64, u64)>,
    ids: Vec<u8>,
    ends: Vec<u32>,
}

impl Places {
    fn id(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends.get(i - 1).copied().unwrap_or(0) as usize };
        let end = self.ends.get(i).copied().unwrap_or(0) as usize;
        self.ids.get(start..end).unwrap_or_default()
    }

    fn push(&mut self, key: (u64, u64, u64), id: &[u8]) {
        self.keys.push(key);
        self.ids.extend_from_slice(id);
        self.ends.push(self.ids.len() as u32);
    }
}

/// The latest checkpoint boundary at or before `now`, for checkpoints every
/// `every` ms (an hour: on the hour, UTC).
pub fn boundary(now: i64, every: i64) -> i64 {
    let every = every.max(1);
    now - now.rem_euclid(every)
}

/// Bits of bucket number for `n` entries: about 8 entries a bucket.
fn bucket_bits(n: usize) -> u32 {
    let buckets = (n / 8).max(1).next_power_of_two();
    buckets.trailing_zeros().min(24)
}

/// The bucket of hash `h`: its top `bits` bits.
fn bucket_of(h: u64, bits: u32) -> usize {
    if bits == 0 {
        0
    } else {
        (h >> (64 - bits)) as usize
    }
}

/// Sorts the pairs `(hs[i], rs[i])` by bucket (`bucket_of(h, bits)`),
/// stably, and returns the buckets' starts (`n_buckets + 1` of them).
///
/// A radix sort in two counting passes through a scratch copy: first by
/// the bucket's top 8 bits into the copy, then each of those 256 ranges
/// back by the rest. A one-pass scatter of a 1M board's pairs into ~128k
/// buckets misses the cache on nearly every write (28 ms of a 56 ms take,
/// measured natively); here the first pass writes 256 sequential streams
/// and the second a range that fits in cache (n/256 pairs). Being stable,
/// it keeps a grouped checkpoint's order (one read back from storage).
fn group(hs: &mut [u64], rs: &mut [u32], bits: u32) -> Vec<u32> {
    let n = hs.len().min(rs.len());
    let (hs, rs) = (&mut hs[..n], &mut rs[..n]);
    let mut starts = vec![0u32; (1usize << bits) + 1];
    for &h in hs.iter() {
        if let Some(c) = starts.get_mut(bucket_of(h, bits) + 1) {
            *c += 1;
        }
    }
    for b in 1..starts.len() {
        starts[b] += starts[b - 1];
    }
    let high = bits.min(8);
    let low = bits - high;
    let mut h2 = vec![0u64; n];
    let mut r2 = vec![0u32; n];
    // Pass 1, into the copy: by the top `high` bits of the bucket.
    let mut next: Vec<usize> = (0..1usize << high).map(|t| starts[t << low] as usize).collect();
    for (&h, &r) in hs.iter().zip(rs.iter()) {
        let slot = &mut next[bucket_of(h, bits) >> low];
        h2[*slot] = h;
        r2[*slot] = r;
        *slot += 1;
    }
    // Pass 2, back: each top range by the low bits.
    let mask = (1usize << low) - 1;
    let mut next: Vec<usize> = vec![0; mask + 1];
    for t in 0..1usize << high {
        let (lo, hi) = (starts[t << low] as usize, starts[(t + 1) << low] as usize);
        for (b, slot) in next.iter_mut().enumerate() {
            *slot = starts[(t << low) + b] as usize;
        }
        for (&h, &r) in h2[lo..hi].iter().zip(&r2[lo..hi]) {
            let slot = &mut next[bucket_of(h, bits) & mask];
            hs[*slot] = h;
            rs[*slot] = r;
            *slot += 1;
        }
    }
    starts
}

/// A checkpoint taken but not yet grouped: the pairs in board order. Taking
/// one is a walk of the ranking; grouping it (`group`) is as much work
/// again, and needs only the snapshot, so a board takes the snapshot at the
/// boundary and groups it in a later turn (its alarm, or the first read of
/// a `prev_rank`): a 1M board's checkpoint then holds no turn up for the
/// whole of it (issue 14: no apply delayed by more than 50 ms).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    at: i64,
    seed: u64,
    hashes: Vec<u64>,
    ranks: Vec<u32>,
    places: Option<Places>,
}

impl Snapshot {
    /// The visible ranks of `r` under `ties` as of boundary `at` (with each
    /// entry's place when `with_places`: a shard's), written into the
    /// buffers of `old`, a checkpoint no longer needed: a board's next
    /// hourly checkpoint then writes memory it already holds, with no fresh
    /// pages to fault in.
    pub fn take(old: Checkpoint, r: &Ranking, ties: Ties, at: i64, seed: u64, with_places: bool) -> Snapshot {
        let n = r.visible_len();
        let Checkpoint { mut hashes, mut ranks, places, .. } = old;
        hashes.clear();
        ranks.clear();
        hashes.reserve_exact(n);
        ranks.reserve_exact(n);
        let mut places = with_places.then(|| {
            let mut p = places.unwrap_or_default();
            p.keys.clear();
            p.ids.clear();
            p.ends.clear();
            p.keys.reserve_exact(n);
            p.ends.reserve_exact(n);
            // Ids of up to 16 bytes are the common case (growth covers the rest).
            p.ids.reserve(n * 16);
            p
        });
        r.for_each_rank(ties, |id, rank, key| {
            hashes.push(ids::hash(id, seed));
            ranks.push(rank.min(u64::from(u32::MAX)) as u32);
            if let Some(p) = places.as_mut() {
                p.push(key, id);
            }
        });
        Snapshot { at, seed, hashes, ranks, places }
    }

    /// The boundary it was taken for.
    pub fn at(&self) -> i64 {
        self.at
    }

    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    /// The checkpoint, its pairs grouped by bucket for lookups.
    pub fn group(self) -> Checkpoint {
        let mut cp = Checkpoint::grouped(self.at, self.seed, self.hashes, self.ranks);
        cp.places = self.places;
        cp
    }
}

impl Checkpoint {
    /// The visible ranks of `r` under `ties`, as of boundary `at`.
    pub fn take(r: &Ranking, ties: Ties, at: i64, seed: u64) -> Checkpoint {
        Snapshot::take(Checkpoint::default(), r, ties, at, seed, false).group()
    }

    /// `take` for one shard of a sharded board: it also keeps where each
    /// entry sorted, for [`Checkpoint::spot_of`] and [`Checkpoint::count_before`].
    pub fn take_with_places(r: &Ranking, ties: Ties, at: i64, seed: u64) -> Checkpoint {
        Snapshot::take(Checkpoint::default(), r, ties, at, seed, true).group()
    }

    /// Where `member` sorted at the checkpoint (a sharded board's shard
    /// that holds it); `None` when it was not on the board (or hidden), or
    /// this checkpoint keeps no places. Under `shared` ties only the spot's
    /// rank key counts (the reach is its tie group's first).
    pub fn spot_of(&self, member: &str) -> Option<Spot> {
        let p = self.places.as_ref()?;
        let pos = self.rank_of(member)?.checked_sub(1)? as usize;
        let &(k0, k1, r) = p.keys.get(pos)?;
        Some(Spot { key: (k0, k1), reach: r, member: member.to_string() })
    }

    /// How many entries of this checkpoint rank before `s` under `ties`
    /// (`first`: sort before it; `shared`: a strictly better rank key).
    /// Summed over a sharded board's shards, 1 + that is the rank at the
    /// checkpoint. 0 without places.
    pub fn count_before(&self, s: &Spot, ties: Ties) -> u64 {
        let Some(p) = self.places.as_ref() else { return 0 };
        let n = match ties {
            Ties::Shared => p.keys.partition_point(|k| (k.0, k.1) < s.key),
            Ties::First => {
                let (mut lo, mut hi) = (0, p.keys.len());
                let probe = (s.key.0, s.key.1, s.reach);
                while lo < hi {
                    let mid = lo + (hi - lo) / 2;
                    let below =
                        p.keys.get(mid).is_some_and(|k| (*k, p.id(mid)) < (probe, s.member.as_bytes()));
                    if below {
                        lo = mid + 1;
                    } else {
                        hi = mid;
                    }
                }
                lo
            }
        };
        n as u64
    }

    /// Groups entries by bucket (`group`).
    fn grouped(at: i64, seed: u64, mut hashes: Vec<u64>, mut ranks: Vec<u32>) -> Checkpoint {
        let bits = bucket_bits(hashes.len());
        let starts = group(&mut hashes, &mut ranks, bits);
        Checkpoint { at, seed, bits, starts, hashes, ranks, places: None }
    }

    /// The member's rank at the checkpoint; `None` when it was not on the
    /// board (or hidden) then.
    pub fn rank_of(&self, member: &str) -> Option<u64> {
        let h = ids::hash(member.as_bytes(), self.seed);
        let b = bucket_of(h, self.bits);
        let (lo, hi) = (*self.starts.get(b)? as usize, *self.starts.get(b + 1)? as usize);
        let i = self.hashes.get(lo..hi)?.iter().position(|&x| x == h)?;
        self.ranks.get(lo + i).map(|r| u64::from(*r))
    }

    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    /// Bytes per member held in memory (besides ~0.5 of bucket starts).
    pub const BYTES_PER_MEMBER: usize = 12;

    /// The entries as little-endian bytes, in chunks of at most `per` entries
    /// (for storage rows); with `at` and `seed`, `from_chunks` rebuilds it.
    /// A checkpoint with places (`take_with_places`) writes them after the
    /// pairs of each chunk, the chunk then opening with its entry count.
    pub fn chunks(&self, per: usize) -> impl Iterator<Item = Vec<u8>> + '_ {
        let per = per.max(1);
        self.hashes.chunks(per).zip(self.ranks.chunks(per)).enumerate().map(move |(c, (hs, rs))| {
            let mut out = Vec::with_capacity(hs.len() * 12 + 4);
            if self.places.is_some() {
                out.extend_from_slice(&(hs.len() as u32).to_le_bytes());
            }
            for (h, r) in hs.iter().zip(rs) {
                out.extend_from_slice(&h.to_le_bytes());
                out.extend_from_slice(&r.to_le_bytes());
            }
            if let Some(p) = &self.places {
                for i in c * per..c * per + hs.len() {
                    if let Some(k) = p.keys.get(i) {
                        for x in [k.0, k.1, k.2] {
                            out.extend_from_slice(&x.to_le_bytes());
                        }
                        let id = p.id(i);
                        out.push(id.len() as u8);
                        out.extend_from_slice(id);
                    }
                }
            }
            out
        })
    }

    /// Whether this checkpoint keeps places (its chunks are then read with
    /// `from_chunks(.., true, ..)`).
    pub fn has_places(&self) -> bool {
        self.places.is_some()
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Rebuilds a checkpoint from `chunks`' output (in order; a checkpoint
    /// stored sorted by hash, as sessions 7–8 wrote them, reads the same).
    pub fn from_chunks(
        at: i64,
        seed: u64,
        with_places: bool,
        chunks: impl IntoIterator<Item = Vec<u8>>,
    ) -> Checkpoint {
        let mut hashes = Vec::new();
        let mut ranks = Vec::new();
        let mut places = Places::default();
        let u64_at =
            |b: &[u8], i: usize| b.get(i..i + 8).and_then(|x| x.try_into().ok()).map(u64::from_le_bytes);
        for c in chunks {
            let (pairs, rest) = if with_places {
                let k = c.get(..4).and_then(|x| x.try_into().ok()).map_or(0, u32::from_le_bytes) as usize;
                let end = (4 + k * 12).min(c.len());
                (c.get(4..end).unwrap_or_default(), c.get(end..).unwrap_or_default())
            } else {
                (&c[..], &[][..])
            };
            for e in pairs.chunks_exact(12) {
                let mut h = [0u8; 8];
                let mut r = [0u8; 4];
                h.copy_from_slice(&e[..8]);
                r.copy_from_slice(&e[8..]);
                hashes.push(u64::from_le_bytes(h));
                ranks.push(u32::from_le_bytes(r));
            }
            let mut i = 0;
            while let (Some(k0), Some(k1), Some(r), Some(&len)) =
                (u64_at(rest, i), u64_at(rest, i + 8), u64_at(rest, i + 16), rest.get(i + 24))
            {
                let id = rest.get(i + 25..i + 25 + len as usize).unwrap_or_default();
                places.push((k0, k1, r), id);
                i += 25 + len as usize;
            }
        }
        let mut cp = Checkpoint::grouped(at, seed, hashes, ranks);
        if with_places {
            cp.places = Some(places);
        }
        cp
    }
}

impl<R: RankKey> Board<R> {
    /// Calls `f` with every visible member's id, rank under `ties` and place
    /// (score key, subscore key, reach), best first, without building a listing.
    pub fn for_each_rank(&self, ties: Ties, mut f: impl FnMut(&[u8], u64, (u64, u64, u64))) {
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
            f(id, rank, (k.0.score(), k.0.sub(), reach(k)));
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
        let back = Checkpoint::from_chunks(cp.at, cp.seed(), false, cp.chunks(2));
        assert_eq!(back, cp);
        assert_eq!(cp.len(), 3);
        // 12 bytes per member held: two arrays, no padding
        assert_eq!(cp.hashes.capacity() * 8 + cp.ranks.capacity() * 4, 3 * Checkpoint::BYTES_PER_MEMBER);
    }

    #[test]
    fn a_large_checkpoint_finds_every_member_and_only_them() {
        let events: Vec<(String, f64, i64)> =
            (0..5000).map(|i| (format!("m{i}"), (i % 700) as f64, i)).collect();
        let refs: Vec<(&str, f64, i64)> = events.iter().map(|(m, v, t)| (m.as_str(), *v, *t)).collect();
        let r = board(&refs);
        let cp = Checkpoint::take(&r, Ties::First, 0, 99);
        assert!(cp.bits > 5, "buckets of ~8: {}", cp.bits);
        for e in r.top(0, 5000, Ties::First) {
            assert_eq!(cp.rank_of(e.member), Some(e.rank), "{}", e.member);
        }
        assert_eq!(cp.rank_of("m5000"), None);
        let back = Checkpoint::from_chunks(cp.at, cp.seed(), false, cp.chunks(777));
        assert_eq!(back, cp);
    }

    #[test]
    fn a_checkpoint_taken_into_the_last_ones_buffers_equals_a_fresh_one() {
        let events: Vec<(String, f64, i64)> =
            (0..5000).map(|i| (format!("m{i}"), (i % 700) as f64, i)).collect();
        let refs: Vec<(&str, f64, i64)> = events.iter().map(|(m, v, t)| (m.as_str(), *v, *t)).collect();
        let mut r = board(&refs);
        let first = Checkpoint::take_with_places(&r, Ties::First, 0, 99);
        for i in (0..5000).step_by(7) {
            r.apply(&MemberId::parse(format!("m{i}").as_str()).unwrap(), 1000.0, 6000 + i);
        }
        r.set_hidden("m3", true);
        let again = Snapshot::take(first, &r, Ties::Shared, 1, 99, true);
        assert_eq!((again.at(), again.len()), (1, 4999));
        let again = again.group();
        assert_eq!(again, Checkpoint::take_with_places(&r, Ties::Shared, 1, 99));
        assert_eq!(again.rank_of("m3"), None);
        let plain = Snapshot::take(again, &r, Ties::First, 2, 5, false).group();
        assert_eq!(plain, Checkpoint::take(&r, Ties::First, 2, 5));
        assert!(!plain.has_places());
    }

    #[test]
    fn boundaries_fall_on_the_hour() {
        assert_eq!(boundary(7_200_000 + 5, 3_600_000), 7_200_000);
        assert_eq!(boundary(7_200_000, 3_600_000), 7_200_000);
        assert_eq!(boundary(-1, 3_600_000), -3_600_000);
        assert_eq!(boundary(5, 0), 5);
    }
}
