//! One board-period's ranking, held in a Durable Object's memory.
//!
//! Layout (see `scripts/bench.sh` for the bytes per member it comes to):
//! - `tree`: an order-statistic index of cells in blocks of 256. A cell holds
//!   a 16-byte `(score key, reach << 8 | id length - 1)` entry (24 bytes on
//!   boards with a `tiebreak`: the subscore key follows the score key; see
//!   [`Ranking`], which picks the cell by the board) and beside it
//!   the member's id: its bytes when they fit in 16 (on `incr` and `best`
//!   boards), else a reference to a record in `arena`. An entry keeps its cell
//!   while it moves within its block (a byte permutation per block holds the
//!   order), and a Fenwick tree of block counts answers rank, position and
//!   "how many are strictly better" in O(log n).
//! - `index`: a hash index of `u32` entries from member id to location
//!   (block and cell). Finding a member is its entry, then its cell, whose
//!   key and id lie side by side: two rounds of memory reads.
//! - `arena`: records for ids longer than 16 bytes and, on `last` boards,
//!   every member's event time of its last change.
//! - `meta`: a side map keyed by member id, only for members that have
//!   metadata.
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
//! Reach is kept in 56 bits of milliseconds since the Unix epoch
//! ([`REACH_EPOCH_MS`]): any time from 1970 for two million years (ingest
//! refuses earlier ones; the core counts them as reached at 1970, and later
//! ones at the last representable millisecond). [`Row::seq`]
//! carries the clamped reach as absolute ms since the Unix epoch.

pub mod checkpoint;
mod hidden;
mod ids;
mod probe;
mod tree;

use std::collections::HashMap;

use super::{Op, Order, Tiebreak, Ties};
use crate::domain::names::MemberId;
use ids::{Arena, Id16, Index, Loc, NEW};
pub use probe::{Counts, Spot};
use tree::{pack, reach, tag, Ent, Key, Members, Move, RankKey, Rk, Tree, REACH_MAX};

/// Reach time 0, in ms since the Unix epoch: the epoch itself.
pub const REACH_EPOCH_MS: i64 = 0;

/// An event time as the 56-bit reach stored in the index (clamped).
#[inline]
fn reach_of_ts(ts: i64) -> u64 {
    ts.saturating_sub(REACH_EPOCH_MS).clamp(0, REACH_MAX as i64) as u64
}

/// A persisted reach time (absolute ms, [`Row::seq`]) as the stored reach.
#[inline]
fn reach_of_ms(ms: u64) -> u64 {
    ms.saturating_sub(REACH_EPOCH_MS as u64).min(REACH_MAX)
}

type MetaMap = HashMap<Box<[u8]>, String>;

/// A member's persistent form.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub member: String,
    pub score: f64,
    /// The tie-break subscore (0 on boards without a `tiebreak`).
    pub sub: f64,
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

/// A [`Row`] without metadata, its member id borrowed (from a reader's
/// buffer): what [`RankingBuilder::push`] takes, so a cold load allocates
/// nothing per member.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RowRef<'a> {
    pub member: &'a str,
    pub score: f64,
    pub sub: f64,
    /// See [`Row::seq`].
    pub seq: u64,
    /// See [`Row::ts`].
    pub ts: i64,
}

impl Row {
    /// This row, borrowed, without its metadata.
    pub fn row_ref(&self) -> RowRef<'_> {
        RowRef { member: &self.member, score: self.score, sub: self.sub, seq: self.seq, ts: self.ts }
    }
}

impl RowRef<'_> {
    /// This row, owned (without metadata).
    pub fn to_row(self) -> Row {
        Row {
            member: self.member.to_owned(),
            score: self.score,
            sub: self.sub,
            seq: self.seq,
            ts: self.ts,
            meta: None,
        }
    }
}

/// One line of a listing, borrowing the member id and metadata from the
/// ranking: a page costs no allocation per line; whoever sends it copies
/// what it writes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Entry<'a> {
    pub rank: u64,
    pub member: &'a str,
    pub score: f64,
    /// The tie-break subscore (0 on boards without a `tiebreak`).
    pub sub: f64,
    /// When the member reached its score (reach time, ms since the Unix
    /// epoch): what exports carry so an import keeps the order of ties.
    pub reached: i64,
    /// Opaque JSON text.
    pub meta: Option<&'a str>,
}

/// One member's standing.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Standing<'a> {
    pub rank: u64,
    pub score: f64,
    /// The tie-break subscore (0 on boards without a `tiebreak`).
    pub sub: f64,
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

/// The rank key of a score and subscore: the subscore orders equal scores
/// under the board's `tiebreak`, and counts for nothing without one.
#[inline]
fn rank_key<R: RankKey>(score: f64, sub: f64, order: Order, tb: Tiebreak) -> R {
    let sub = match tb {
        Tiebreak::None => 0,
        Tiebreak::Asc => key_of_score(sub, Order::Asc),
        Tiebreak::Desc => key_of_score(sub, Order::Desc),
    };
    R::new(key_of_score(score, order), sub)
}

/// The subscore a rank key holds (0 without a `tiebreak`).
#[inline]
fn sub_of_key<R: RankKey>(k: R, tb: Tiebreak) -> f64 {
    match tb {
        Tiebreak::None => 0.0,
        Tiebreak::Asc => score_of_key(k.sub(), Order::Asc),
        Tiebreak::Desc => score_of_key(k.sub(), Order::Desc),
    }
}

#[inline]
fn normalize(x: f64) -> f64 {
    if x == 0.0 {
        0.0
    } else {
        x
    }
}

/// One board period's ranking over rank keys `R` (see [`Ranking`], which
/// picks `R` by the board's `tiebreak`).
pub struct Board<R> {
    order: Order,
    op: Op,
    tiebreak: Tiebreak,
    index: Index,
    arena: Arena,
    tree: Tree<R>,
    meta: MetaMap,
    hidden: hidden::Hidden<R>,
}

/// The id index and the arena, as the tree sees them: id bytes for ties, and
/// every change of a member's location followed in the index.
struct Names<'a> {
    index: &'a mut Index,
    arena: &'a Arena,
}

/// The id length a tag stands for.
#[inline]
fn id_len(t: u32) -> usize {
    (t & 0x7f) as usize + 1
}

/// The tag for an id of `len` bytes (1–128).
#[inline]
fn tag_of_len(len: usize) -> u32 {
    (len - 1) as u32
}

/// The id hash of the member with payload `pay` and tag `t`.
#[inline]
fn hash_of(arena: &Arena, pay: &Id16, t: u32) -> u64 {
    ids::hash(arena.bytes(pay, id_len(t)), arena.seed)
}

impl Names<'_> {
    #[inline]
    fn hash(&self, pay: &Id16, t: u32) -> u64 {
        hash_of(self.arena, pay, t)
    }
}

impl Members for Names<'_> {
    #[inline]
    fn bytes<'a>(&'a self, pay: &'a Id16, t: u32) -> &'a [u8] {
        self.arena.bytes(pay, id_len(t))
    }

    /// Each entry is found by its fingerprint and old location. Within a
    /// batch a location can be another mover's old one too (a block laid out
    /// again), and the entry found may then be that member's: the two swap
    /// entries. Harmless: both have the same fingerprint, and the one found
    /// comes first on this member's probe path, so each entry stays on the
    /// probe path of the member at its location, which a lookup checks.
    fn moved(&mut self, moves: &[Move]) {
        for (pay, t, from, to) in moves {
            let h = self.hash(pay, *t);
            if *from == NEW {
                self.index.place(h, *to);
            } else {
                self.index.relocate(h, *from, *to);
            }
        }
    }

    #[cfg(test)]
    fn is_at(&self, pay: &Id16, t: u32, at: Loc) -> bool {
        self.index.probe(self.hash(pay, t)).any(|(_, l)| l == at)
    }
}

impl<R: RankKey> Clone for Board<R> {
    fn clone(&self) -> Self {
        let mut r = Board::empty(self.order, self.op, self.tiebreak, self.arena.seed)
            .build_from_rows(self.len(), self.rows());
        for id in self.hidden() {
            r.set_hidden(id, true);
        }
        r
    }
}

impl<R: RankKey> std::fmt::Debug for Board<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ranking")
            .field("order", &self.order)
            .field("op", &self.op)
            .field("tiebreak", &self.tiebreak)
            .field("len", &self.len())
            .finish()
    }
}

/// A stand-in payload for unused slots of a listing's stack buffer.
static NO_ID: Id16 = [0; 16];

/// Rows beyond this many are not loaded by [`Ranking::from_rows`]: far more
/// than a Durable Object's memory holds, and its duplicate check names rows
/// by a 25-bit number.
const MAX_ROWS: usize = 30_000_000;

/// The tag of a row that lost to a later one of the same member while a
/// ranking is rebuilt: no id length has it (ids have 1 to 128 bytes).
const DROPPED: u32 = 0xff;

impl<R: RankKey> Board<R> {
    /// An empty ranking whose id hash is keyed with `seed`.
    fn empty(order: Order, op: Op, tiebreak: Tiebreak, seed: u64) -> Board<R> {
        let mut arena = Arena::new(matches!(op, Op::Last));
        arena.seed = seed;
        Board {
            order,
            op,
            tiebreak,
            index: Index::default(),
            arena,
            tree: Tree::default(),
            meta: MetaMap::default(),
            hidden: hidden::Hidden::default(),
        }
    }

    pub fn order(&self) -> Order {
        self.order
    }

    pub fn op(&self) -> Op {
        self.op
    }

    pub fn tiebreak(&self) -> Tiebreak {
        self.tiebreak
    }

    pub fn len(&self) -> usize {
        self.tree.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tree.len() == 0
    }

    /// The tree's view of the ids, for a change.
    #[inline]
    fn names(&mut self) -> (&mut Tree<R>, Names<'_>) {
        (&mut self.tree, Names { index: &mut self.index, arena: &self.arena })
    }

    /// The id bytes of the member with entry `k` and payload `pay`.
    #[inline]
    fn id_bytes<'a>(&'a self, k: Key<R>, pay: &'a Id16) -> &'a [u8] {
        self.arena.bytes(pay, id_len(tag(k)))
    }

    #[inline]
    fn id_str<'a>(&'a self, k: Key<R>, pay: &'a Id16) -> &'a str {
        // SAFETY: ids enter only from a whole `&str` (`apply`, `from_rows`),
        // and every id byte of it is kept, in its payload or its record.
        unsafe { std::str::from_utf8_unchecked(self.id_bytes(k, pay)) }
    }

    /// The member's entry in the id index and its location.
    #[inline]
    fn find_hashed(&self, id: &[u8], h: u64) -> Option<(usize, Loc)> {
        self.index.probe(h).find(|&(_, at)| {
            self.tree.prefetch_at(at);
            let (k, pay) = self.tree.entry(at);
            id_len(tag(k)) == id.len() && self.arena.bytes(pay, id.len()) == id
        })
    }

    #[inline]
    fn find(&self, id: &[u8]) -> Option<(usize, Loc)> {
        self.find_hashed(id, ids::hash(id, self.arena.seed))
    }

    #[inline]
    fn meta_of(&self, id: &[u8]) -> Option<&str> {
        if self.meta.is_empty() {
            return None;
        }
        self.meta.get(id).map(String::as_str)
    }

    fn row(&self, k: Key<R>, pay: &Id16) -> Row {
        let id = self.id_str(k, pay);
        Row {
            member: id.to_string(),
            score: score_of_key(k.0.score(), self.order),
            sub: sub_of_key(k.0, self.tiebreak),
            seq: REACH_EPOCH_MS as u64 + reach(k),
            ts: self.arena.ts(pay, id.len()),
            meta: self.meta_of(id.as_bytes()).map(str::to_string),
        }
    }

    fn entry<'a>(&'a self, rank: u64, k: Key<R>, pay: &'a Id16) -> Entry<'a> {
        let member = self.id_str(k, pay);
        Entry {
            rank,
            member,
            score: score_of_key(k.0.score(), self.order),
            sub: sub_of_key(k.0, self.tiebreak),
            reached: reach(k) as i64 + REACH_EPOCH_MS,
            meta: self.meta_of(member.as_bytes()),
        }
    }

    /// Applies one event's value at event time `ts` (ms since the Unix epoch);
    /// says whether the ranking changed (the member's row is then
    /// [`Ranking::get`]). Deduplicating events is the caller's job. A
    /// non-finite value, or an `incr` whose sum would not be finite, changes
    /// nothing. See the module doc for how each op moves the member's reach
    /// time.
    pub fn apply(&mut self, member: &MemberId, value: f64, ts: i64) -> bool {
        self.apply_sub(member, value, 0.0, ts)
    }

    /// [`Ranking::apply`] with the event's subscore (API 1.1 `tiebreak`):
    /// `incr` adds it to the member's, `best` keeps the subscore of the
    /// value it keeps (on an equal value the better subscore wins), `last`
    /// keeps the winning event's. Boards without a `tiebreak` ignore it.
    pub fn apply_sub(&mut self, member: &MemberId, value: f64, sub: f64, ts: i64) -> bool {
        let h = ids::hash(member.as_str().as_bytes(), self.arena.seed);
        let changed = self.apply_one(member, h, value, sub, ts);
        if changed && self.has_hidden() {
            self.refresh_if_hidden(member.as_str().as_bytes());
        }
        changed
    }

    /// Applies events in order, exactly as [`Ranking::apply`] on each would,
    /// and says which changed the ranking. Faster per event than one at a time
    /// (the Durable Object applies the Queue's batches this way): a member's
    /// index entry, then its cell, then the entries near its new place are
    /// cache misses that each wait on the one before, so one event alone waits
    /// on memory three times in a row. Here the first two rounds of reads are
    /// made for the whole batch in tight passes, where the misses overlap, and
    /// the events are then applied from cache.
    /// Each event is `(member, value, subscore, ts)`.
    pub fn apply_batch(&mut self, events: &[(&MemberId, f64, f64, i64)]) -> Vec<bool> {
        let seed = self.arena.seed;
        let hashes: Vec<u64> = events.iter().map(|e| ids::hash(e.0.as_str().as_bytes(), seed)).collect();
        self.index.touch_table(&hashes);
        let locs: Vec<Loc> = hashes.iter().filter_map(|&h| self.index.candidate(h)).collect();
        self.tree.touch_members(locs.iter().copied());
        self.arena.touch(locs.iter().map(|&l| {
            let (k, pay) = self.tree.entry(l);
            (pay, id_len(tag(k)))
        }));
        let changed: Vec<bool> =
            events.iter().zip(hashes).map(|(&(m, v, sub, ts), h)| self.apply_one(m, h, v, sub, ts)).collect();
        if self.has_hidden() {
            for (&(m, _, _, _), c) in events.iter().zip(&changed) {
                if *c {
                    self.refresh_if_hidden(m.as_str().as_bytes());
                }
            }
        }
        changed
    }

    /// Makes room in the id index for one more member.
    fn grow_index(&mut self) {
        let cap = self.index.grown_cap();
        let (index, tree, arena) = (&mut self.index, &self.tree, &self.arena);
        index.rebuild(cap, tree.cells().map(|(k, pay, at)| (hash_of(arena, pay, tag(k)), at)));
    }

    /// [`Ranking::apply`] given the hash of the member id.
    fn apply_one(&mut self, member: &MemberId, h: u64, value: f64, sub: f64, ts: i64) -> bool {
        let sub = if self.tiebreak == Tiebreak::None { 0.0 } else { normalize(sub) };
        if !value.is_finite() || !sub.is_finite() {
            return false;
        }
        let value = normalize(value);
        let at = reach_of_ts(ts);
        let id = member.as_str();
        let Some((_, here)) = self.find_hashed(id.as_bytes(), h) else {
            if !self.arena.has_room(id.len()) || !self.tree.has_room() || !self.index.has_room() {
                return false;
            }
            if self.index.is_full() {
                self.grow_index();
            }
            let pay = self.arena.make(id, ts);
            let k = pack(rank_key(value, sub, self.order, self.tiebreak), at, tag_of_len(id.len()));
            let (tree, mut names) = self.names();
            tree.insert(k, &pay, &mut names);
            return true;
        };
        let (old, pay) = self.tree.entry(here);
        let pay = *pay;
        let old_score = score_of_key(old.0.score(), self.order);
        let new_key = rank_key(value, sub, self.order, self.tiebreak);
        let (new_key, new_reach) = match self.op {
            Op::Incr => {
                let s = normalize(old_score + value);
                let sb = normalize(sub_of_key(old.0, self.tiebreak) + sub);
                if !s.is_finite() || !sb.is_finite() {
                    return false;
                }
                let nk = rank_key(s, sb, self.order, self.tiebreak);
                if nk == old.0 {
                    return false;
                }
                (nk, reach(old).max(at))
            }
            // the rank key orders (value, subscore): a better value, or an
            // equal one with a better subscore, wins
            Op::Best => {
                if new_key > old.0 || (new_key == old.0 && at >= reach(old)) {
                    return false;
                }
                (new_key, at)
            }
            Op::Last => {
                let cur = self.arena.ts(&pay, id.len());
                if ts < cur {
                    return false;
                }
                if new_key == old.0 {
                    if ts == cur {
                        return false;
                    }
                    self.arena.set_ts(&pay, ts);
                    return true;
                }
                self.arena.set_ts(&pay, ts);
                (new_key, at)
            }
        };
        let k = pack(new_key, new_reach, tag(old));
        let (tree, mut names) = self.names();
        tree.update(here, k, &mut names);
        true
    }

    /// Sets or clears a member's metadata (opaque JSON text). Only members on
    /// the board have metadata; returns whether anything changed.
    pub fn set_meta(&mut self, member: &MemberId, meta: Option<String>) -> bool {
        let id = member.as_str().as_bytes();
        if self.find(id).is_none() {
            return false;
        }
        match meta {
            Some(m) => {
                if self.meta.get(id) == Some(&m) {
                    return false;
                }
                self.meta.insert(id.into(), m);
                true
            }
            None => self.meta.remove(id).is_some(),
        }
    }

    /// Sets a member's score and subscore, reach time and metadata as given, whatever the
    /// board's op (an import, e.g. from a Redis sorted set or an export).
    /// False when the value is not finite or the ranking has no room.
    pub fn set(
        &mut self,
        member: &MemberId,
        (score, sub): (f64, f64),
        reached: i64,
        meta: Option<String>,
    ) -> bool {
        if !score.is_finite() || !sub.is_finite() {
            return false;
        }
        self.remove(member.as_str());
        if !self.apply_sub(member, score, sub, reached) {
            return false;
        }
        self.set_meta(member, meta);
        true
    }

    /// Removes a member; true if it was on the board.
    pub fn remove(&mut self, member: &str) -> bool {
        let Some((i, here)) = self.find(member.as_bytes()) else {
            return false;
        };
        // out of the index first: the tree may then move others (a merge)
        let (index, tree, arena) = (&mut self.index, &self.tree, &self.arena);
        index.remove(i, |l| {
            let (k, pay) = tree.entry(l);
            hash_of(arena, pay, tag(k))
        });
        let (tree, mut names) = self.names();
        let (k, pay) = tree.remove(here, &mut names);
        self.arena.release(&pay, id_len(tag(k)));
        self.meta.remove(member.as_bytes());
        if self.has_hidden() {
            self.refresh_if_hidden(member.as_bytes());
        }
        true
    }

    /// Whether `member` is on the board.
    pub fn contains(&self, member: &str) -> bool {
        self.find(member.as_bytes()).is_some()
    }

    pub fn get(&self, member: &str) -> Option<Row> {
        let (_, here) = self.find(member.as_bytes())?;
        let (k, pay) = self.tree.entry(here);
        Some(self.row(k, pay))
    }

    /// Rank of the entry at 0-based position `g` with score key `k`.
    #[inline]
    fn rank_at(&self, g: usize, k: R, ties: Ties) -> u64 {
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
        // The entries go to a stack buffer (a heap one only for long pages),
        // then every record's cache miss (long ids, `last` boards) is started
        // before the lines are built.
        let mut small: [(Key<R>, &Id16); 128] = [((R::default(), 0), &NO_ID); 128];
        let big: Vec<(Key<R>, &Id16)>;
        let ents: &[(Key<R>, &Id16)] = if n <= small.len() {
            for (d, e) in small.iter_mut().zip(self.tree.iter_from(start).take(n)) {
                *d = e;
            }
            &small[..n]
        } else {
            big = self.tree.iter_from(start).take(n).collect();
            &big
        };
        self.arena.touch(ents.iter().map(|&(k, pay)| (pay, id_len(tag(k)))));
        // the entry before the page: unless it ties with the first, the first
        // one's shared rank is its position (no count of better scores needed)
        let before = match ties {
            Ties::Shared if start > 0 && n > 0 => self.tree.iter_from(start - 1).next().map(|e| e.0),
            _ => None,
        };
        let mut out = Vec::with_capacity(n);
        let mut prev: Option<(R, u64)> = None; // (rank key, rank)
        for (i, &(k, pay)) in ents.iter().enumerate() {
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
            out.push(self.entry(rank, k, pay));
        }
        out
    }

    /// The best `limit` entries after skipping `offset`.
    pub fn top(&self, offset: usize, limit: usize, ties: Ties) -> Vec<Entry<'_>> {
        if self.has_hidden() {
            return self.top_visible(offset, limit, ties);
        }
        self.top_all(offset, limit, ties)
    }

    /// `top` with hidden members too, at their places (an export).
    pub fn top_all(&self, offset: usize, limit: usize, ties: Ties) -> Vec<Entry<'_>> {
        if ties == Ties::First {
            return self.listing(offset, limit);
        }
        self.listing_ties(offset, limit, ties)
    }

    pub fn rank(&self, member: &str, ties: Ties) -> Option<Standing<'_>> {
        if self.has_hidden() {
            return self.rank_visible(member, ties);
        }
        let (_, here) = self.find(member.as_bytes())?;
        let (g, k, better, not_worse) = self.tree.standing(here);
        let total = self.len() as u64;
        let worse = total - not_worse as u64;
        Some(Standing {
            rank: match ties {
                Ties::First => g as u64 + 1,
                Ties::Shared => better as u64 + 1,
            },
            score: score_of_key(k.0.score(), self.order),
            sub: sub_of_key(k.0, self.tiebreak),
            total,
            percentile: 100.0 * worse as f64 / total as f64,
            meta: self.meta_of(member.as_bytes()),
        })
    }

    /// Up to `radius` entries on each side of the member, the member included.
    pub fn around(&self, member: &str, radius: usize, ties: Ties) -> Option<Vec<Entry<'_>>> {
        if self.has_hidden() {
            return self.around_visible(member, radius, ties);
        }
        let (_, here) = self.find(member.as_bytes())?;
        let (g, _) = self.tree.position(here);
        let start = g.saturating_sub(radius);
        let end = g.saturating_add(radius).saturating_add(1).min(self.len());
        Some(self.listing_ties(start, end - start, ties))
    }

    /// The given members that are on the board, best first, each once.
    pub fn lookup(&self, members: &[&str], ties: Ties) -> Vec<Entry<'_>> {
        if self.has_hidden() {
            return self.lookup_visible(members, ties);
        }
        let mut found: Vec<(usize, Key<R>, Loc)> = members
            .iter()
            .filter_map(|m| self.find(m.as_bytes()))
            .map(|(_, here)| {
                let (g, k) = self.tree.position(here);
                (g, k, here)
            })
            .collect();
        found.sort_unstable_by_key(|f| f.0);
        found.dedup_by_key(|f| f.0);
        found
            .into_iter()
            .map(|(g, k, here)| self.entry(self.rank_at(g, k.0, ties), k, self.tree.entry(here).1))
            .collect()
    }

    /// Every member's row, in rank order.
    pub fn rows(&self) -> impl Iterator<Item = Row> + '_ {
        self.tree.iter_from(0).map(move |(k, pay)| self.row(k, pay))
    }

    /// This empty ranking filled with `rows` (see [`Ranking::from_rows`]);
    /// `expected`: how many rows to make room for at once (see
    /// [`Ranking::from_rows_seeded_sized`]).
    fn build_from_rows(self, expected: usize, rows: impl IntoIterator<Item = Row>) -> Board<R> {
        let rows = rows.into_iter();
        let mut b = Build::new(self, expected.max(rows.size_hint().0));
        for row in rows {
            b.push_row(row);
            if b.is_full() {
                break;
            }
        }
        b.finish()
    }
}

/// A ranking being rebuilt from rows, one at a time (see [`RankingBuilder`]).
///
/// Each row becomes its entry at once: key, reach and id payload (the id
/// inline when it fits, else an arena record), with its metadata set aside
/// by row number. A cold start so never holds every row's owned strings at
/// the same time (a 1M board peaked at 133 MB of wasm memory when rows were
/// collected whole). The entries are reserved once when their number is
/// known: grown by doubling, the vector would for a moment be there twice,
/// and in wasm, where memory never shrinks, each move leaves its old place
/// behind as a hole.
///
/// Duplicates are found as the rows come, while each id is still in cache:
/// the id index, its entries naming rows by number for now; the
/// later-reached row wins (the later one on equal reach). A row that loses
/// is marked by a tag no id length has ([`DROPPED`]), its arena record freed.
struct Build<R> {
    board: Board<R>,
    ents: Vec<Ent<R>>,
    metas: Vec<(u32, String)>,
    /// Rows taken (valid ones, duplicates included): at most [`MAX_ROWS`].
    taken: usize,
    dropped: usize,
}

impl<R: RankKey> Build<R> {
    fn new(board: Board<R>, expected: usize) -> Build<R> {
        let room = expected.min(MAX_ROWS);
        let mut board = board;
        board.index.rebuild(Index::cap_for(room), std::iter::empty());
        Build { board, ents: Vec::with_capacity(room), metas: Vec::new(), taken: 0, dropped: 0 }
    }

    /// Whether the build takes no more rows ([`MAX_ROWS`]).
    #[inline]
    fn is_full(&self) -> bool {
        self.taken >= MAX_ROWS
    }

    /// Makes room in the id index (naming rows by number) for more rows: as
    /// many as the entries have room for, and at least twice those held.
    #[cold]
    fn grow_index(&mut self) {
        let live = self.ents.len() - self.dropped;
        let cap = Index::cap_for(self.ents.capacity().max(live.saturating_mul(2)));
        let r = &mut self.board;
        let (arena, seed) = (&r.arena, r.arena.seed);
        let rows = self.ents.iter().enumerate().filter(|(_, e)| tag(e.0) != DROPPED);
        r.index.rebuild(
            cap,
            rows.map(|(i, e)| (ids::hash(arena.bytes(&e.1, id_len(tag(e.0))), seed), i as Loc)),
        );
    }

    #[inline]
    fn push_row(&mut self, row: Row) {
        let Row { member, score, sub, seq, ts, meta } = row;
        self.push(RowRef { member: &member, score, sub, seq, ts }, meta);
    }

    /// Takes one row (a row with a non-finite score or subscore, or an empty
    /// or over-long id, is skipped; so is every row after [`MAX_ROWS`]).
    #[inline]
    fn push(&mut self, row: RowRef<'_>, meta: Option<String>) {
        let id = row.member.as_bytes();
        if !(row.score.is_finite() && row.sub.is_finite() && !id.is_empty() && id.len() <= 128)
            || self.is_full()
        {
            return;
        }
        self.taken += 1;
        if self.board.index.is_full() {
            self.grow_index();
        }
        let i = self.ents.len();
        let r = &mut self.board;
        let len = id.len();
        let h = ids::hash(id, r.arena.seed);
        let pay = r.arena.make(row.member, row.ts);
        let mut k =
            pack(rank_key(row.score, row.sub, r.order, r.tiebreak), reach_of_ms(row.seq), tag_of_len(len));
        let (ents, arena) = (&mut self.ents, &r.arena);
        let seen = r
            .index
            .probe(h)
            .find(|&(_, l)| ents.get(l as usize).is_some_and(|e| arena.bytes(&e.1, id_len(tag(e.0))) == id));
        if let Some((e, l)) = seen {
            match ents.get_mut(l as usize) {
                Some(old) if reach(k) >= reach(old.0) => {
                    r.index.set(e, h, i as Loc);
                    r.arena.release(&old.1, len);
                    old.0 .1 |= DROPPED as u64;
                }
                // the earlier row stays
                _ => {
                    r.arena.release(&pay, len);
                    k.1 |= DROPPED as u64;
                }
            }
            self.dropped += 1;
        } else {
            r.index.place(h, i as Loc);
        }
        if let Some(m) = meta {
            self.metas.push((i as u32, m));
        }
        ents.push((k, pay));
    }

    /// The ranking: the rows kept, sorted, laid out in the tree.
    fn finish(self) -> Board<R> {
        let Build { board: mut r, mut ents, metas, dropped, .. } = self;
        let mut kept_meta: Vec<(Box<[u8]>, String)> = Vec::with_capacity(metas.len());
        for (i, m) in metas {
            if let Some(e) = ents.get(i as usize).filter(|e| tag(e.0) != DROPPED) {
                kept_meta.push((r.id_bytes(e.0, &e.1).into(), m));
            }
        }
        if dropped > 0 {
            ents.retain(|e| tag(e.0) != DROPPED);
        }
        // spare room (skipped rows, duplicates, a wrong count or none) back
        // before the sort: a shrink is in place
        ents.shrink_to_fit();
        {
            let arena = &r.arena;
            let cmp = |a: &Ent<R>, b: &Ent<R>| {
                (a.0 .0, reach(a.0)).cmp(&(b.0 .0, reach(b.0))).then_with(|| {
                    arena.bytes(&a.1, id_len(tag(a.0))).cmp(arena.bytes(&b.1, id_len(tag(b.0))))
                })
            };
            if !ents.windows(2).all(|w| cmp(&w[0], &w[1]).is_lt()) {
                ents.sort_unstable_by(cmp);
            }
        }
        for (id, m) in kept_meta {
            r.meta.insert(id, m);
        }
        // the index again, now filled with the entries' places in the tree
        r.index.rebuild(Index::cap_for(ents.len()), std::iter::empty());
        let (tree, mut names) = r.names();
        tree.bulk_load(ents, &mut names);
        r
    }
}

/// Builds a [`Ranking`] from rows pushed one at a time, borrowed or owned:
/// what [`Ranking::from_rows_seeded_sized`] does with an iterator, for a
/// reader that can lend each row out of its buffer (`domain::rows`) instead
/// of allocating its id. The result is the same as `from_rows_seeded_sized`
/// given the same rows in the same order (the same rows skipped, the same
/// duplicate kept, the same order of ties).
pub struct RankingBuilder(Builds);

enum Builds {
    Plain(Build<u64>),
    Tie(Build<Rk>),
}

impl RankingBuilder {
    /// A builder for a ranking keyed with `seed` (see [`Ranking::with_seed`]),
    /// with room for `expected` rows (only a hint, as in
    /// [`Ranking::from_rows_seeded_sized`]).
    pub fn new(order: Order, op: Op, tiebreak: Tiebreak, seed: u64, expected: usize) -> RankingBuilder {
        RankingBuilder(match Ranking::with_seed(order, op, tiebreak, seed) {
            Ranking::Plain(b) => Builds::Plain(Build::new(b, expected)),
            Ranking::Tie(b) => Builds::Tie(Build::new(b, expected)),
        })
    }

    /// Takes one row, without metadata.
    #[inline]
    pub fn push(&mut self, row: RowRef<'_>) {
        match &mut self.0 {
            Builds::Plain(b) => b.push(row, None),
            Builds::Tie(b) => b.push(row, None),
        }
    }

    /// Takes one owned row, with its metadata.
    pub fn push_row(&mut self, row: Row) {
        match &mut self.0 {
            Builds::Plain(b) => b.push_row(row),
            Builds::Tie(b) => b.push_row(row),
        }
    }

    /// Whether every further row would be ignored: [`Ranking::from_rows`]
    /// loads at most 30M rows (and stops reading there).
    pub fn is_full(&self) -> bool {
        match &self.0 {
            Builds::Plain(b) => b.is_full(),
            Builds::Tie(b) => b.is_full(),
        }
    }

    /// The ranking of the rows taken.
    pub fn finish(self) -> Ranking {
        match self.0 {
            Builds::Plain(b) => Ranking::Plain(b.finish()),
            Builds::Tie(b) => Ranking::Tie(b.finish()),
        }
    }
}

/// One board period's ranking. Boards without a `tiebreak` keep 32-byte
/// cells keyed by the score alone; boards with one keep 40-byte cells keyed
/// by (score, subscore): the subscore costs only the boards that use it.
/// Every method is the same on both.
#[derive(Clone, Debug)]
pub enum Ranking {
    Plain(Board<u64>),
    Tie(Board<Rk>),
}

/// Runs `$e` on the ranking's board, whichever its key.
macro_rules! each {
    ($s:expr, $b:ident => $e:expr) => {
        match $s {
            Ranking::Plain($b) => $e,
            Ranking::Tie($b) => $e,
        }
    };
}

impl Ranking {
    /// A ranking whose id hash is keyed with `seed`: the Durable Object
    /// passes a random one, so clients cannot choose ids that collide.
    pub fn with_seed(order: Order, op: Op, tiebreak: Tiebreak, seed: u64) -> Ranking {
        match tiebreak {
            Tiebreak::None => Ranking::Plain(Board::empty(order, op, tiebreak, seed)),
            _ => Ranking::Tie(Board::empty(order, op, tiebreak, seed)),
        }
    }

    /// `from_rows` into a ranking keyed with `seed` (see `with_seed`).
    pub fn from_rows_seeded(
        order: Order,
        op: Op,
        tiebreak: Tiebreak,
        seed: u64,
        rows: impl IntoIterator<Item = Row>,
    ) -> Ranking {
        Ranking::from_rows_seeded_sized(order, op, tiebreak, seed, 0, rows)
    }

    /// [`Ranking::from_rows_seeded`] told how many rows are coming
    /// (`expected`, e.g. `SELECT count(*)` of the table the rows are read
    /// from): the rebuild reserves room for their entries once instead of
    /// growing it by doubling, which would briefly hold the entries twice
    /// and, in wasm, leave every outgrown copy behind as a hole in a memory
    /// that never shrinks (1M members from an iterator without a length:
    /// a heap peak of 50 bytes per member instead of 40, and 64 MB of wasm
    /// memory added instead of 39; see `--cold` in `examples/bench.rs`).
    /// Only a hint, the result is the same whatever it is: more rows still
    /// all load (growing by doubling), fewer give the spare room back before
    /// the rest of the build. An overestimate is reserved as asked (up to
    /// 30M rows) until then. The iterator's own `size_hint` counts when it
    /// says more; 0 means no hint.
    pub fn from_rows_seeded_sized(
        order: Order,
        op: Op,
        tiebreak: Tiebreak,
        seed: u64,
        expected: usize,
        rows: impl IntoIterator<Item = Row>,
    ) -> Ranking {
        let rows = rows.into_iter();
        let mut b = RankingBuilder::new(order, op, tiebreak, seed, expected.max(rows.size_hint().0));
        for row in rows {
            b.push_row(row);
            if b.is_full() {
                break;
            }
        }
        b.finish()
    }

    /// A ranking without a `tiebreak`, with the fixed seed 0 (tests, benchmarks).
    pub fn new(order: Order, op: Op) -> Ranking {
        Ranking::with_seed(order, op, Tiebreak::None, 0)
    }

    /// A ranking whose equal scores are ordered by subscore under `tiebreak`
    /// (fixed seed 0).
    pub fn tiebroken(order: Order, op: Op, tiebreak: Tiebreak) -> Ranking {
        Ranking::with_seed(order, op, tiebreak, 0)
    }

    /// Rebuilds a ranking from rows in any order (fastest when already in rank
    /// order, as [`Ranking::rows`] yields them). Rows with a non-finite score
    /// or an empty or over-long member id are skipped; if a member appears
    /// twice, the row with the later reach time (`seq`) wins (the later row,
    /// when equal).
    pub fn from_rows(order: Order, op: Op, rows: impl IntoIterator<Item = Row>) -> Ranking {
        Ranking::from_rows_seeded(order, op, Tiebreak::None, 0, rows)
    }

    pub fn order(&self) -> Order {
        each!(self, b => b.order())
    }
    pub fn op(&self) -> Op {
        each!(self, b => b.op())
    }
    pub fn tiebreak(&self) -> Tiebreak {
        each!(self, b => b.tiebreak())
    }
    pub fn len(&self) -> usize {
        each!(self, b => b.len())
    }
    pub fn is_empty(&self) -> bool {
        each!(self, b => b.is_empty())
    }
    /// See [`Board::apply`].
    pub fn apply(&mut self, member: &MemberId, value: f64, ts: i64) -> bool {
        each!(self, b => b.apply(member, value, ts))
    }
    /// See [`Board::apply_sub`].
    pub fn apply_sub(&mut self, member: &MemberId, value: f64, sub: f64, ts: i64) -> bool {
        each!(self, b => b.apply_sub(member, value, sub, ts))
    }
    /// See [`Board::apply_batch`].
    pub fn apply_batch(&mut self, events: &[(&MemberId, f64, f64, i64)]) -> Vec<bool> {
        each!(self, b => b.apply_batch(events))
    }
    pub fn set_meta(&mut self, member: &MemberId, meta: Option<String>) -> bool {
        each!(self, b => b.set_meta(member, meta))
    }
    /// See [`Board::set`]: `score` is (score, subscore).
    pub fn set(&mut self, member: &MemberId, score: (f64, f64), reached: i64, meta: Option<String>) -> bool {
        each!(self, b => b.set(member, score, reached, meta))
    }
    pub fn remove(&mut self, member: &str) -> bool {
        each!(self, b => b.remove(member))
    }
    pub fn contains(&self, member: &str) -> bool {
        each!(self, b => b.contains(member))
    }
    pub fn get(&self, member: &str) -> Option<Row> {
        each!(self, b => b.get(member))
    }
    pub fn top(&self, offset: usize, limit: usize, ties: Ties) -> Vec<Entry<'_>> {
        each!(self, b => b.top(offset, limit, ties))
    }
    pub fn top_all(&self, offset: usize, limit: usize, ties: Ties) -> Vec<Entry<'_>> {
        each!(self, b => b.top_all(offset, limit, ties))
    }
    pub fn rank(&self, member: &str, ties: Ties) -> Option<Standing<'_>> {
        each!(self, b => b.rank(member, ties))
    }
    pub fn around(&self, member: &str, radius: usize, ties: Ties) -> Option<Vec<Entry<'_>>> {
        each!(self, b => b.around(member, radius, ties))
    }
    pub fn lookup(&self, members: &[&str], ties: Ties) -> Vec<Entry<'_>> {
        each!(self, b => b.lookup(members, ties))
    }
    /// Every member's row, in rank order.
    pub fn rows(&self) -> Box<dyn Iterator<Item = Row> + '_> {
        each!(self, b => Box::new(b.rows()))
    }
    pub fn set_hidden(&mut self, member: &str, hidden: bool) -> bool {
        each!(self, b => b.set_hidden(member, hidden))
    }
    pub fn is_hidden(&self, member: &str) -> bool {
        each!(self, b => b.is_hidden(member))
    }
    /// The hidden members, on the board or not, in no particular order.
    pub fn hidden(&self) -> Box<dyn Iterator<Item = &str> + '_> {
        each!(self, b => Box::new(b.hidden()))
    }
    pub fn visible_len(&self) -> usize {
        each!(self, b => b.visible_len())
    }
    /// See [`Board::counts`].
    pub fn counts(&self, s: &Spot, reader: Option<&str>) -> Counts {
        each!(self, b => b.counts(s, reader))
    }
    /// See [`Board::near`].
    pub fn near(
        &self,
        s: &Spot,
        reader: Option<&str>,
        before: usize,
        after: usize,
    ) -> (Counts, Vec<Entry<'_>>, Vec<Entry<'_>>) {
        each!(self, b => b.near(s, reader, before, after))
    }
    /// The spot of a listing's entry on this board.
    pub fn spot(&self, e: &Entry<'_>) -> Spot {
        Spot::of_entry(self.order(), self.tiebreak(), e)
    }
    /// See [`Board::for_each_rank`].
    pub fn for_each_rank(&self, ties: Ties, f: impl FnMut(&[u8], u64, (u64, u64, u64))) {
        each!(self, b => b.for_each_rank(ties, f))
    }
}

#[cfg(test)]
mod tests;
