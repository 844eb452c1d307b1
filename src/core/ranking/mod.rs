//! One board-period's ranking, held in a Durable Object's memory.
//!
//! Layout (about 44 bytes per member rebuilt, 47 loaded by inserts, with
//! 16-byte ids on an `incr` board; see `scripts/bench.sh`):
//! - `ids`: a hash index of `u64` entries, one per member, each naming the
//!   member's record and the block and cell of its entry in `tree`; the
//!   records (16 bytes for a 16-byte id, 8 more on `last` boards, which keep
//!   event times) hold each id once, in a paged byte arena. A member's *slot*
//!   is its entry's index in the hash index.
//! - `tree`: an order-statistic index of 16-byte `(score key, reach << 24 | slot)`
//!   entries in blocks of 256 cells, where an entry keeps its cell while it
//!   moves within its block (a byte permutation per block holds the order),
//!   with a Fenwick tree of block counts:
//!   rank, position and "how many are strictly better" in O(log n). Finding a
//!   member is its hash slot, then its record and its cell side by side: two
//!   rounds of memory reads, not a chain of three.
//! - `meta`: a side map keyed by record (slots move, records don't), only
//!   for members that have metadata.
//!
//! The score is stored as a `u64` key whose ascending order is "better first"
//! under the board's [`Order`], so every listing is one ascending walk:
//! better score, then earlier reach time, then member id bytes (memcmp order, a
//! prefix first; the index compares ids only between entries equal on score
//! and reach).
//!
//! The reach time is the *event* time (`ts`, ms since the Unix epoch) at which
//! the member reached its score, so the order does not depend on the order in
//! which events are delivered:
//! - `incr`: a change of score sets reach to the latest `ts` seen so far
//!   (`max(old reach, ts)`; a new member: `ts`); an event that leaves the score
//!   unchanged changes nothing;
//! - `best`: a strictly better value sets the score and reach = `ts`; an equal
//!   value with an earlier `ts` moves reach earlier; a worse one does nothing;
//! - `last`: the event with the latest `ts` wins (equal `ts`: the later
//!   applied); a winning new value sets reach = `ts`, a winning equal value
//!   only updates the last-writer `ts` (kept in the member's record) and keeps
//!   reach.
//!
//! Reach is kept in 40 bits of milliseconds since 2020-01-01T00:00Z
//! ([`REACH_EPOCH_MS`]), up to mid-2054: **events before 2020 count as reached
//! at 2020-01-01** (so among them equal scores are ordered by member id), later
//! than 2054 as reached at the last representable millisecond. [`Row::seq`]
//! carries the clamped reach as absolute ms since the Unix epoch.

mod ids;
mod tree;

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use super::{Op, Order, Ties};
use crate::domain::names::MemberId;
use ids::Ids;
use tree::{pack, reach, slot, Key, Tree, REACH_MAX};

/// 2020-01-01T00:00Z in ms since the Unix epoch: reach time 0.
pub const REACH_EPOCH_MS: i64 = 1_577_836_800_000;

/// An event time as the 40-bit reach stored in the index (clamped).
#[inline]
fn reach_of_ts(ts: i64) -> u64 {
    ts.saturating_sub(REACH_EPOCH_MS).clamp(0, REACH_MAX as i64) as u64
}

/// A persisted reach time (absolute ms, [`Row::seq`]) as the stored reach.
#[inline]
fn reach_of_ms(ms: u64) -> u64 {
    ms.saturating_sub(REACH_EPOCH_MS as u64).min(REACH_MAX)
}

/// Hasher for the `u32` record keys of the metadata side map.
#[derive(Default)]
struct RecordHasher(u64);
impl Hasher for RecordHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, b: &[u8]) {
        for &x in b {
            self.0 = (self.0 << 8 | x as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u32(&mut self, x: u32) {
        self.0 = (x as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}
type MetaMap = HashMap<u32, String, BuildHasherDefault<RecordHasher>>;

/// A member's persistent form.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub member: String,
    pub score: f64,
    /// When the member reached `score`, in event time (ms since the Unix
    /// epoch), clamped to 2020-01-01..2054 (see the module doc). Decides the
    /// order among equal scores, before the member id.
    pub seq: u64,
    /// Event time of the last change on `last` boards (the only op that
    /// compares event times); 0 on `incr` and `best` boards, which don't keep it.
    pub ts: i64,
    /// Opaque JSON text.
    pub meta: Option<String>,
}

/// One line of a listing, borrowing the member id and metadata from the
/// ranking: a page costs no allocation per line; whoever sends it copies
/// what it writes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Entry<'a> {
    pub rank: u64,
    pub member: &'a str,
    pub score: f64,
    /// Opaque JSON text.
    pub meta: Option<&'a str>,
}

/// One member's standing.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Standing<'a> {
    pub rank: u64,
    pub score: f64,
    pub total: u64,
    /// 100 × (members with a strictly worse score) / total.
    pub percentile: f64,
    pub meta: Option<&'a str>,
}

const SIGN: u64 = 1 << 63;

/// Maps a finite score to a `u64` whose ascending order is "better first".
#[inline]
fn key_of_score(score: f64, order: Order) -> u64 {
    let b = normalize(score).to_bits();
    let asc = if b & SIGN != 0 { !b } else { b | SIGN };
    match order {
        Order::Asc => asc,
        Order::Desc => !asc,
    }
}

#[inline]
fn score_of_key(k: u64, order: Order) -> f64 {
    let asc = match order {
        Order::Asc => k,
        Order::Desc => !k,
    };
    f64::from_bits(if asc & SIGN != 0 { asc & !SIGN } else { !asc })
}

#[inline]
fn normalize(x: f64) -> f64 {
    if x == 0.0 {
        0.0
    } else {
        x
    }
}

pub struct Ranking {
    order: Order,
    op: Op,
    ids: Ids,
    tree: Tree,
    meta: MetaMap,
}

impl Clone for Ranking {
    fn clone(&self) -> Self {
        Ranking::from_rows(self.order, self.op, self.rows())
    }
}

impl std::fmt::Debug for Ranking {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ranking")
            .field("order", &self.order)
            .field("op", &self.op)
            .field("len", &self.len())
            .finish()
    }
}

impl Ranking {
    pub fn new(order: Order, op: Op) -> Ranking {
        Ranking {
            order,
            op,
            ids: Ids::new(matches!(op, Op::Last)),
            tree: Tree::default(),
            meta: MetaMap::default(),
        }
    }

    pub fn order(&self) -> Order {
        self.order
    }

    pub fn op(&self) -> Op {
        self.op
    }

    pub fn len(&self) -> usize {
        self.tree.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tree.len() == 0
    }

    #[inline]
    fn meta_of(&self, slot: u32) -> Option<&str> {
        if self.meta.is_empty() {
            return None;
        }
        self.meta.get(&self.ids.record(slot)).map(String::as_str)
    }

    fn row(&self, slot: u32, k: Key) -> Row {
        Row {
            member: self.ids.str(slot).to_string(),
            score: score_of_key(k.0, self.order),
            seq: REACH_EPOCH_MS as u64 + reach(k),
            ts: self.ids.ts(slot),
            meta: self.meta_of(slot).map(str::to_string),
        }
    }

    fn entry(&self, rank: u64, k: Key) -> Entry<'_> {
        Entry {
            rank,
            member: self.ids.str(slot(k)),
            score: score_of_key(k.0, self.order),
            meta: self.meta_of(slot(k)),
        }
    }

    /// Applies one event's value at event time `ts` (ms since the Unix epoch);
    /// says whether the ranking changed (the member's row is then
    /// [`Ranking::get`]). Deduplicating events is the caller's job. A
    /// non-finite value, or an `incr` whose sum would not be finite, changes
    /// nothing. See the module doc for how each op moves the member's reach
    /// time.
    pub fn apply(&mut self, member: &MemberId, value: f64, ts: i64) -> bool {
        let h = ids::hash(member.as_str().as_bytes());
        self.apply_one(member, h, value, ts)
    }

    /// Applies events in order, exactly as [`Ranking::apply`] on each would,
    /// and says which changed the ranking. Faster per event than one at a time
    /// (the Durable Object applies the Queue's batches this way): a member's
    /// hash slot, then its record and cell, then the entries near its new
    /// place are cache misses that each wait on the one before, so one event
    /// alone waits on memory three times in a row. Here the first two rounds
    /// of reads are made for the whole batch in tight passes, where the misses
    /// overlap, and the events are then applied from cache.
    pub fn apply_batch(&mut self, events: &[(&MemberId, f64, i64)]) -> Vec<bool> {
        let hashes: Vec<u64> = events.iter().map(|e| ids::hash(e.0.as_str().as_bytes())).collect();
        self.ids.touch_table(&hashes);
        let slots: Vec<Option<u32>> = hashes.iter().map(|&h| self.ids.candidate(h)).collect();
        self.ids.touch(slots.iter().flatten().copied());
        self.tree.touch_members(slots.iter().flatten().copied(), &self.ids);
        events.iter().zip(hashes).map(|(&(m, v, ts), h)| self.apply_one(m, h, v, ts)).collect()
    }

    /// [`Ranking::apply`] given the hash of the member id.
    fn apply_one(&mut self, member: &MemberId, h: u64, value: f64, ts: i64) -> bool {
        if !value.is_finite() {
            return false;
        }
        let value = normalize(value);
        let at = reach_of_ts(ts);
        let Some(slot) = self.ids.find_hashed(member.as_str().as_bytes(), h) else {
            if !self.ids.has_room(member.as_str().len()) || !self.tree.has_room() {
                return false;
            }
            let tree = &mut self.tree;
            let slot = self.ids.insert(member.as_str(), ts, &mut |b, c, s| tree.set_slot(b, c, s));
            let k = pack(key_of_score(value, self.order), at, slot);
            self.tree.insert(k, &mut self.ids);
            return true;
        };
        let old = self.tree.key_of(slot, &self.ids);
        let old_score = score_of_key(old.0, self.order);
        let (new_key, new_reach) = match self.op {
            Op::Incr => {
                let s = normalize(old_score + value);
                if !s.is_finite() || s == old_score {
                    return false;
                }
                (key_of_score(s, self.order), reach(old).max(at))
            }
            Op::Best => {
                let nk = key_of_score(value, self.order);
                if nk > old.0 || (nk == old.0 && at >= reach(old)) {
                    return false;
                }
                (nk, at)
            }
            Op::Last => {
                let cur = self.ids.ts(slot);
                if ts < cur {
                    return false;
                }
                if value == old_score {
                    if ts == cur {
                        return false;
                    }
                    self.ids.set_ts(slot, ts);
                    return true;
                }
                self.ids.set_ts(slot, ts);
                (key_of_score(value, self.order), at)
            }
        };
        let k = pack(new_key, new_reach, slot);
        self.tree.update(slot, k, &mut self.ids);
        true
    }

    /// Sets or clears a member's metadata (opaque JSON text). Only members on
    /// the board have metadata; returns whether anything changed.
    pub fn set_meta(&mut self, member: &MemberId, meta: Option<String>) -> bool {
        let Some(slot) = self.ids.find(member.as_str().as_bytes()) else {
            return false;
        };
        let rec = self.ids.record(slot);
        match meta {
            Some(m) => {
                if self.meta.get(&rec) == Some(&m) {
                    return false;
                }
                self.meta.insert(rec, m);
                true
            }
            None => self.meta.remove(&rec).is_some(),
        }
    }

    /// Removes a member; true if it was on the board.
    pub fn remove(&mut self, member: &str) -> bool {
        let Some(slot) = self.ids.find(member.as_bytes()) else {
            return false;
        };
        self.tree.remove(slot, &mut self.ids);
        self.meta.remove(&self.ids.record(slot));
        let tree = &mut self.tree;
        self.ids.remove(slot, &mut |b, c, s| tree.set_slot(b, c, s));
        true
    }

    pub fn get(&self, member: &str) -> Option<Row> {
        let slot = self.ids.find(member.as_bytes())?;
        Some(self.row(slot, self.tree.key_of(slot, &self.ids)))
    }

    /// Rank of the entry at 0-based position `g` with score key `k`.
    #[inline]
    fn rank_at(&self, g: usize, k: u64, ties: Ties) -> u64 {
        match ties {
            Ties::First => g as u64 + 1,
            Ties::Shared => self.tree.count_before(k, false) as u64 + 1,
        }
    }

    /// Entries from position `start`, at most `limit`.
    fn listing(&self, start: usize, limit: usize) -> Vec<Entry<'_>> {
        self.listing_ties(start, limit, Ties::First)
    }

    fn listing_ties(&self, start: usize, limit: usize, ties: Ties) -> Vec<Entry<'_>> {
        let n = limit.min(self.len().saturating_sub(start));
        // The keys go to a stack buffer (a heap one only for long pages), then
        // every record's cache miss is started before the entries are built.
        let mut small = [(0u64, 0u64); 128];
        let big: Vec<Key>;
        let keys: &[Key] = if n <= small.len() {
            for (d, k) in small.iter_mut().zip(self.tree.iter_from(start).take(n)) {
                *d = k;
            }
            &small[..n]
        } else {
            big = self.tree.iter_from(start).take(n).collect();
            &big
        };
        self.ids.touch(keys.iter().map(|&k| slot(k)));
        // the entry before the page: unless it ties with the first, the first
        // one's shared rank is its position (no count of better scores needed)
        let before = match ties {
            Ties::Shared if start > 0 && n > 0 => self.tree.iter_from(start - 1).next(),
            _ => None,
        };
        let mut out = Vec::with_capacity(n);
        let mut prev: Option<(u64, u64)> = None; // (score key, rank)
        for (i, &k) in keys.iter().enumerate() {
            let g = start + i;
            let rank = match (ties, prev) {
                (Ties::First, _) => g as u64 + 1,
                (Ties::Shared, Some((pk, pr))) if pk == k.0 => pr,
                (Ties::Shared, Some(_)) => g as u64 + 1,
                (Ties::Shared, None) => match before {
                    Some(b) if b.0 == k.0 => self.rank_at(g, k.0, ties),
                    _ => g as u64 + 1,
                },
            };
            prev = Some((k.0, rank));
            out.push(self.entry(rank, k));
        }
        out
    }

    /// The best `limit` entries after skipping `offset`.
    pub fn top(&self, offset: usize, limit: usize, ties: Ties) -> Vec<Entry<'_>> {
        if ties == Ties::First {
            return self.listing(offset, limit);
        }
        self.listing_ties(offset, limit, ties)
    }

    pub fn rank(&self, member: &str, ties: Ties) -> Option<Standing<'_>> {
        let slot = self.ids.find(member.as_bytes())?;
        let (g, k, better, not_worse) = self.tree.standing(slot, &self.ids);
        let total = self.len() as u64;
        let worse = total - not_worse as u64;
        Some(Standing {
            rank: match ties {
                Ties::First => g as u64 + 1,
                Ties::Shared => better as u64 + 1,
            },
            score: score_of_key(k.0, self.order),
            total,
            percentile: 100.0 * worse as f64 / total as f64,
            meta: self.meta_of(slot),
        })
    }

    /// Up to `radius` entries on each side of the member, the member included.
    pub fn around(&self, member: &str, radius: usize, ties: Ties) -> Option<Vec<Entry<'_>>> {
        let slot = self.ids.find(member.as_bytes())?;
        let (g, _) = self.tree.position(slot, &self.ids);
        let start = g.saturating_sub(radius);
        let end = g.saturating_add(radius).saturating_add(1).min(self.len());
        Some(self.listing_ties(start, end - start, ties))
    }

    /// The given members that are on the board, best first, each once.
    pub fn lookup(&self, members: &[&str], ties: Ties) -> Vec<Entry<'_>> {
        let mut found: Vec<(usize, Key)> = members
            .iter()
            .filter_map(|m| self.ids.find(m.as_bytes()))
            .map(|slot| self.tree.position(slot, &self.ids))
            .collect();
        found.sort_unstable_by_key(|f| f.0);
        found.dedup_by_key(|f| f.0);
        self.ids.touch(found.iter().map(|f| slot(f.1)));
        found.into_iter().map(|(g, k)| self.entry(self.rank_at(g, k.0, ties), k)).collect()
    }

    /// Every member's row, in rank order.
    pub fn rows(&self) -> impl Iterator<Item = Row> + '_ {
        self.tree.iter_from(0).map(move |k| self.row(slot(k), k))
    }

    /// Rebuilds a ranking from rows in any order (fastest when already in rank
    /// order, as [`Ranking::rows`] yields them). Rows with a non-finite score
    /// or an empty or over-long member id are skipped; if a member appears twice, the row
    /// with the later reach time (`seq`) wins.
    pub fn from_rows(order: Order, op: Op, rows: impl IntoIterator<Item = Row>) -> Ranking {
        let mut r = Ranking::new(order, op);
        let mut rows: Vec<(u64, u64, Row)> = rows
            .into_iter()
            .filter(|row| row.score.is_finite() && !row.member.is_empty() && row.member.len() <= 128)
            .map(|row| (key_of_score(row.score, order), reach_of_ms(row.seq), row))
            .collect();
        let cmp = |a: &(u64, u64, Row), b: &(u64, u64, Row)| {
            (a.0, a.1, a.2.member.as_bytes()).cmp(&(b.0, b.1, b.2.member.as_bytes()))
        };
        if !rows.windows(2).all(|w| cmp(&w[0], &w[1]).is_lt()) {
            rows.sort_unstable_by(cmp);
        }
        let n = rows.len();
        // no slot moves after this: `keys` names members by slot
        r.ids.reserve(n, &mut |_, _, _| ());
        let mut keys: Vec<Key> = Vec::with_capacity(n);
        let mut dups = false;
        for (k, at, row) in rows {
            let slot = match r.ids.find(row.member.as_bytes()) {
                Some(slot) => {
                    // duplicate member: keep the row with the later reach
                    dups = true;
                    let i = keys.iter().position(|&x| tree::slot(x) == slot).unwrap();
                    if at < reach(keys[i]) {
                        continue;
                    }
                    keys[i] = pack(k, at, slot);
                    slot
                }
                None => {
                    let slot = r.ids.insert(&row.member, row.ts, &mut |_, _, _| ());
                    keys.push(pack(k, at, slot));
                    slot
                }
            };
            r.ids.set_ts(slot, row.ts);
            let rec = r.ids.record(slot);
            match row.meta {
                Some(m) => {
                    r.meta.insert(rec, m);
                }
                None => {
                    r.meta.remove(&rec);
                }
            }
        }
        if dups {
            keys.sort_unstable_by(|&a, &b| tree::cmp(a, b, &r.ids));
        }
        r.tree.bulk_load(keys.len(), keys, &mut r.ids);
        r
    }
}

#[cfg(test)]
mod tests;
