//! An order-statistic index: a sorted sequence of fixed-capacity blocks (a
//! two-level B+tree) whose block counts live in a Fenwick tree, so position
//! and rank queries are O(log n).
//!
//! Each cell holds an entry, `(rank key, reach << 8 | tag)`, and the
//! member's id *payload* (16 bytes, see `ids.rs`): 32 bytes in all when the
//! rank key is the score's `u64`, 40 when it is `(score key, subscore key)`
//! ([`Rk`], boards with a `tiebreak`); the tree is generic over the key
//! ([`RankKey`]). Entries are in `(key, reach, member id bytes)` order, all
//! unique (ids are unique). The score is mapped to a `u64` whose ascending
//! order is "better first", the subscore the same way; entries share a rank
//! exactly when their rank keys are equal. `reach` is the
//! 56-bit time the member reached it (see `mod.rs`), `tag` the id length
//! minus one. Entries equal on `(key, reach)` are ordered by comparing the
//! ids ([`Members::bytes`]); that only happens on such ties, so the common
//! comparison stays two integer compares. A member is named by its
//! location, `block << 8 | cell` ([`Loc`]), which the id index maps its id to.
//!
//! A block is one allocation of 256 cells, an occupancy bitmap, a
//! permutation (`order`: the cells in entry order, one byte each) and a
//! bitmap of which positions tie with the one before. A member keeps its cell
//! while it moves within the block, so finding a member is one read of its
//! cell, and its position a scan of the order bytes for its cell's byte
//! (eight at a time); a move changes no other member's location: only
//! permutation bytes move. Every change of a member's location is reported
//! ([`Members::moved`]) so the id index can follow. A new or moving entry
//! takes the free cell nearest its neighbours' cells, so cells stay close to
//! entry order and a search through the permutation reads nearby cache
//! lines, much as in a plain sorted block; spills, splits and merges lay
//! blocks out in order again.
//! A full block first spills into a neighbour with room (B*-tree style) and
//! only splits when both are (nearly) full, which keeps blocks ~85% full.

pub(crate) const CAP: usize = 256;
/// Cells filled per block by a rebuild: 12 free cells each take the first
/// new members without a spill, and the rest is memory (a rebuilt board is
/// ~40 bytes per member; see `scripts/bench.sh`).
const BULK_FILL: usize = CAP - 12;
/// Entries a bulk load takes from the tail of its vector before it gives
/// their memory back: 64 blocks' worth (~0.5 MB), so the freed piece holds
/// most of the blocks that come next, and a shrink costs nothing per entry.
const BULK_SHRINK: usize = 64 * BULK_FILL;
const WORDS: usize = CAP / 64;
/// Entries read on each side of a search's starting guess (see `Block::touch_near`).
const TOUCH: usize = 8;

use super::ids::{block_of, cell_of, loc, Id16, Loc, MAX_BLOCKS, NEW};

/// A rank key: what orders entries before reach time and id, and what
/// entries that share a rank have equal. Boards without a `tiebreak` use
/// the score key alone (`u64`: 32-byte cells); boards with one use
/// `(score key, subscore key)` ([`Rk`]: 40-byte cells), so the subscore
/// costs only the boards that have one.
pub trait RankKey: Copy + Ord + Default + std::fmt::Debug {
    fn new(score: u64, sub: u64) -> Self;
    /// The score key (the subscore key is only a tie-break).
    fn score(self) -> u64;
    /// The subscore key (0 where there is none).
    fn sub(self) -> u64;
}

impl RankKey for u64 {
    #[inline(always)]
    fn new(score: u64, _sub: u64) -> Self {
        score
    }
    #[inline(always)]
    fn score(self) -> u64 {
        self
    }
    #[inline(always)]
    fn sub(self) -> u64 {
        0
    }
}

/// The rank key of boards with a `tiebreak`: `(score key, subscore key)`.
pub type Rk = (u64, u64);

impl RankKey for Rk {
    #[inline(always)]
    fn new(score: u64, sub: u64) -> Self {
        (score, sub)
    }
    #[inline(always)]
    fn score(self) -> u64 {
        self.0
    }
    #[inline(always)]
    fn sub(self) -> u64 {
        self.1
    }
}

/// `(rank key, reach << 8 | tag)`
pub(crate) type Key<R> = (R, u64);

/// An entry with its member's id payload, in flight between cells.
pub(crate) type Ent<R> = (Key<R>, Id16);

/// One member's change of location: `(payload, tag, from, to)`; `from` is
/// [`NEW`] for a member entering the index.
pub(crate) type Move = (Id16, u32, Loc, Loc);

pub(crate) const REACH_MAX: u64 = (1 << 56) - 1;

#[inline]
pub(crate) fn pack<R: RankKey>(key: R, reach: u64, tag: u32) -> Key<R> {
    debug_assert!(tag < 1 << 8);
    (key, reach.min(REACH_MAX) << 8 | tag as u64)
}

#[inline]
pub(crate) fn tag<R>(k: Key<R>) -> u32 {
    k.1 as u32 & 0xff
}

#[inline]
pub(crate) fn reach<R>(k: Key<R>) -> u64 {
    k.1 >> 8
}

/// Whether entry `x` (id payload `xi`) sorts before `k` (payload `ki`): by
/// score key, then reach, then (only when both are equal) member id bytes.
#[inline(always)]
pub(crate) fn lt<R: RankKey>(x: Key<R>, xi: &Id16, k: Key<R>, ki: &Id16, m: &impl Members) -> bool {
    match by_key(x, k) {
        Some(o) => o.is_lt(),
        None => tie_lt(x, xi, k, ki, m),
    }
}

/// The order of two entries by rank key, then reach; `None` when both are
/// equal and only the member ids can decide.
#[inline(always)]
fn by_key<R: RankKey>(x: Key<R>, k: Key<R>) -> Option<std::cmp::Ordering> {
    if x.0 != k.0 {
        return Some(x.0.cmp(&k.0));
    }
    if (x.1 ^ k.1) >> 8 != 0 {
        return Some(x.1.cmp(&k.1));
    }
    None
}

#[cold]
#[inline(never)]
fn tie_lt<R>(x: Key<R>, xi: &Id16, k: Key<R>, ki: &Id16, m: &impl Members) -> bool {
    m.bytes(xi, tag(x)) < m.bytes(ki, tag(k))
}

/// The full order of entries (see [`lt`]).
#[cfg(test)]
pub(crate) fn cmp<R: RankKey>(x: &Ent<R>, k: &Ent<R>, m: &impl Members) -> std::cmp::Ordering {
    by_key(x.0, k.0).unwrap_or_else(|| m.bytes(&x.1, tag(x.0)).cmp(m.bytes(&k.1, tag(k.0))))
}

/// What the tree needs of the members' ids: their bytes, for ties, and a
/// listener for every change of a member's location.
pub(crate) trait Members {
    /// The id bytes of a member with payload `pay` and tag `tag`.
    fn bytes<'a>(&'a self, pay: &'a Id16, tag: u32) -> &'a [u8];
    /// Members changed location, in this order. A `from` may be a location
    /// another member has just moved to (a block laid out again, or a member
    /// moving to another block while a merge reuses its old cell).
    fn moved(&mut self, moves: &[Move]);
    /// Whether the listener has the member with this payload at `at` (for
    /// checks).
    #[cfg(test)]
    fn is_at(&self, pay: &Id16, tag: u32, at: Loc) -> bool;
}

/// Partition point of a monotone `pred` (true, then false) over `0..n`,
/// searched outward from `hint`: the answer is usually a few entries away, in
/// the cache lines already loaded, where a plain binary search would touch
/// about eight cold lines of a block.
#[inline]
fn partition_near(n: usize, hint: usize, pred: impl Fn(usize) -> bool) -> usize {
    let (mut lo, mut hi);
    if hint < n && pred(hint) {
        lo = hint + 1;
        hi = n;
        let mut step = 1;
        loop {
            let probe = hint + step;
            if probe >= n {
                break;
            }
            if pred(probe) {
                lo = probe + 1;
                step *= 2;
            } else {
                hi = probe;
                break;
            }
        }
    } else {
        let h = hint.min(n);
        hi = h;
        lo = 0;
        let mut step = 1;
        while step <= h {
            let probe = h - step;
            if pred(probe) {
                lo = probe + 1;
                break;
            }
            hi = probe;
            step *= 2;
        }
    }
    while lo < hi {
        let mid = (lo + hi) / 2;
        if pred(mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

/// Interpolated position of `k` between two known keys at two positions:
/// scores spread evenly within a block, so the guess lands a few entries from
/// the answer and the search starts there instead of bisecting a cold block.
#[inline]
fn interpolate(k: u64, lo: (u64, usize), hi: (u64, usize)) -> usize {
    if hi.0 <= lo.0 || hi.1 <= lo.1 {
        return lo.1;
    }
    let f = k.saturating_sub(lo.0).min(hi.0 - lo.0) as f64 / (hi.0 - lo.0) as f64;
    lo.1 + (f * (hi.1 - lo.1) as f64) as usize
}

/// Asks the memory system for the cache line holding `x`, without waiting
/// for it: independent misses then overlap instead of following each other.
/// (wasm has no prefetch; there it is a read, which still starts the miss.)
#[inline(always)]
pub(crate) fn prefetch<T>(x: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is only a hint; `x` is a valid reference anyway.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>((x as *const T).cast::<i8>())
    }
    #[cfg(not(target_arch = "x86_64"))]
    // SAFETY: `x` is a valid reference, so its first byte is readable.
    std::hint::black_box(unsafe { std::ptr::read_volatile((x as *const T).cast::<u8>()) });
}

/// An entry and its member's id payload, side by side: a lookup reads one
/// line for both. (Keeping the entries apart, for denser searches, measured
/// slower, as did groups of eight entries then their eight ids.) 32 bytes
/// with a `u64` rank key; 40 with a subscore, only on boards with a
/// `tiebreak` (`make bench`, 1M members rebuilt: 39.6 and 48.0 bytes per
/// member).
#[derive(Clone, Copy)]
#[repr(C)]
struct Cell<R> {
    k: Key<R>,
    id: Id16,
}

/// The order bytes and bitmaps first, then the cells: 8.5 KB (10.5 KB with
/// subscores) in one allocation. Aligned to a cache line, so 32-byte cells
/// (320 bytes in) each sit in one half of a line.
#[repr(C, align(64))]
struct Block<R> {
    /// the occupied cells in entry order (the first `len`)
    order: [u8; CAP],
    /// occupied cells
    occ: [u64; WORDS],
    /// by position: bit `j` says the entry at `j` has the same score key as
    /// the one at `j - 1`, so a member's tie group is found without reading
    /// its neighbours' cells
    eq: [u64; WORDS],
    /// entry cells
    cells: [Cell<R>; CAP],
}

impl<R: RankKey> Block<R> {
    fn new() -> Box<Block<R>> {
        Box::new(Block {
            order: [0; CAP],
            occ: [0; WORDS],
            eq: [0; WORDS],
            cells: [Cell { k: (R::default(), 0), id: [0; 16] }; CAP],
        })
    }
    /// Starts reading the order bytes and bitmaps, which locating and
    /// moving an entry read right after its cell.
    #[inline(always)]
    fn prefetch_header(&self) {
        for l in 0..CAP / 64 {
            prefetch(&self.order[l * 64]);
        }
        prefetch(&self.occ);
    }
    /// Entry at position `j`.
    #[inline]
    fn at(&self, j: usize) -> Key<R> {
        self.cells[self.order[j] as usize].k
    }
    /// Id payload of the entry at position `j`.
    #[inline]
    fn id_at(&self, j: usize) -> &Id16 {
        &self.cells[self.order[j] as usize].id
    }
    #[cfg(test)]
    fn is_free(&self, c: usize) -> bool {
        self.occ[c / 64] >> (c % 64) & 1 == 0
    }
    #[inline]
    fn mark(&mut self, c: usize) {
        self.occ[c / 64] |= 1 << (c % 64);
    }
    #[inline]
    fn unmark(&mut self, c: usize) {
        self.occ[c / 64] &= !(1 << (c % 64));
    }
    /// First free cell at or after `c`.
    #[inline]
    fn free_from(&self, c: usize) -> Option<usize> {
        let mut w = c / 64;
        if w >= WORDS {
            return None;
        }
        let mut bits = !self.occ[w] & (!0u64 << (c % 64));
        loop {
            if bits != 0 {
                return Some(w * 64 + bits.trailing_zeros() as usize);
            }
            w += 1;
            if w == WORDS {
                return None;
            }
            bits = !self.occ[w];
        }
    }
    /// Last free cell at or before `c`.
    #[inline]
    fn free_upto(&self, c: usize) -> Option<usize> {
        let mut w = c / 64;
        let mut bits = !self.occ[w] & (!0u64 >> (63 - c % 64));
        loop {
            if bits != 0 {
                return Some(w * 64 + 63 - bits.leading_zeros() as usize);
            }
            if w == 0 {
                return None;
            }
            w -= 1;
            bits = !self.occ[w];
        }
    }
    /// The free cell nearest to `c` (`c` itself when free).
    #[inline]
    fn free_near(&self, c: usize) -> Option<usize> {
        let c = c.min(CAP - 1);
        match (self.free_upto(c), self.free_from(c)) {
            (Some(l), Some(r)) => Some(if c - l <= r - c { l } else { r }),
            (l, r) => l.or(r),
        }
    }
    /// Position of the entry in cell `c` (among the first `n`): where `c`
    /// is in `order`, found eight bytes at a time outward from where cell
    /// `c` would be if cells were in entry order. Cells drift from their
    /// positions as entries pass each other (at 1M members: the first word
    /// read holds it ~45% of the time, one of the first three ~75%). A byte
    /// per cell holding its position would save the scan (~35 ns of a rank)
    /// but cost 1.2 B/member and rewriting positions on every move.
    #[inline]
    fn position_of(&self, n: usize, c: usize) -> usize {
        const ONES: u64 = 0x0101_0101_0101_0101;
        let pat = c as u64 * ONES;
        let find = |w: usize| {
            let x = u64::from_le_bytes(self.order[w * 8..w * 8 + 8].try_into().unwrap()) ^ pat;
            // a zero byte of `x` is `c`; the lowest one sets the lowest bit
            // here (higher bits can be false positives; they are never read)
            let mut z = x.wrapping_sub(ONES) & !x & (ONES << 7);
            if n - w * 8 < 8 {
                z &= (1 << ((n - w * 8) * 8)) - 1; // bytes past `n` are stale
            }
            (z != 0).then(|| w * 8 + z.trailing_zeros() as usize / 8)
        };
        let words = n.div_ceil(8);
        let w0 = (c * n / CAP / 8).min(words - 1);
        for d in 0..words {
            let hit = if w0 + d < words { find(w0 + d) } else { None };
            if let Some(j) = hit.or_else(|| if d > 0 && d <= w0 { find(w0 - d) } else { None }) {
                debug_assert!(j < n && self.order[j] as usize == c);
                return j;
            }
        }
        unreachable!("cell {c} is not in the block's order")
    }
    /// The cell for a new entry at position `j` (between the entries now at
    /// `j - 1` and `j`, of `n`): a free cell between its neighbours' cells,
    /// else the free cell nearest to them. None only when the block is full.
    #[inline]
    fn cell_for(&self, n: usize, j: usize) -> Option<usize> {
        let left = (j > 0).then(|| self.order[j - 1] as usize);
        let right = (j < n).then(|| self.order[j] as usize);
        self.cell_between(left, right)
    }
    /// The free cell for an entry whose neighbours are in cells `left` and `right`.
    #[inline]
    fn cell_between(&self, left: Option<usize>, right: Option<usize>) -> Option<usize> {
        let near = match (left, right) {
            (Some(l), Some(r)) if l < r => l + (r - l) / 2,
            (Some(l), _) => l + 1,
            (None, Some(r)) => r.saturating_sub(1),
            (None, None) => CAP / 2,
        };
        self.free_near(near)
    }
    /// Moves the entry at position `i` (of `n`) to position `j` among the
    /// others, with key `k`, into a free cell near its new neighbours' (its
    /// own cell if that is nearest); returns the cell. Only the order bytes
    /// between `i` and `j` move, so a short move is cheap.
    fn relocate(&mut self, n: usize, i: usize, j: usize, k: Key<R>) -> usize {
        let old = self.order[i] as usize;
        self.unmark(old);
        // the new neighbours, in today's positions
        let left = (j > 0).then(|| self.order[if j <= i { j - 1 } else { j }] as usize);
        let right = (j + 1 < n).then(|| self.order[if j < i { j } else { j + 1 }] as usize);
        let c = self.cell_between(left, right).unwrap_or(old);
        self.mark(c);
        self.cells[c].k = k;
        self.cells[c].id = self.cells[old].id;
        if j < i {
            self.order.copy_within(j..i, j + 1);
        } else {
            self.order.copy_within(i + 1..=j, i);
        }
        self.order[j] = c as u8;
        self.drop_bit(n, i);
        self.insert_bit(j);
        self.set_eq(n, j);
        self.set_eq(n, j + 1);
        c
    }
    /// Puts `k` (payload `pay`) in cell `c` at position `j` (of `n`).
    #[inline]
    fn put(&mut self, n: usize, j: usize, c: usize, k: Key<R>, pay: &Id16) {
        self.cells[c].k = k;
        self.cells[c].id = *pay;
        self.mark(c);
        self.order.copy_within(j..n, j + 1);
        self.order[j] = c as u8;
        self.insert_bit(j);
        self.set_eq(n + 1, j);
        self.set_eq(n + 1, j + 1);
    }
    /// Takes out the entry at position `j` (of `n`); returns its cell.
    #[inline]
    fn take(&mut self, n: usize, j: usize) -> usize {
        let c = self.order[j] as usize;
        self.order.copy_within(j + 1..n, j);
        self.unmark(c);
        self.drop_bit(n, j);
        c
    }
    /// Recomputes tie bit `j` (of `n` entries).
    #[inline]
    fn set_eq(&mut self, n: usize, j: usize) {
        if j >= n.min(CAP) {
            return;
        }
        let same = j > 0 && self.at(j).0 == self.at(j - 1).0;
        let (w, b) = (j / 64, j % 64);
        self.eq[w] = self.eq[w] & !(1 << b) | (same as u64) << b;
    }
    /// Recomputes every tie bit.
    fn set_all_eq(&mut self, n: usize) {
        self.eq = [0; WORDS];
        for j in 1..n {
            self.set_eq(n, j);
        }
    }
    /// Shifts tie bits at `j` and above up by one (bit `j` becomes 0).
    #[inline]
    fn insert_bit(&mut self, j: usize) {
        let (w, b) = (j / 64, j % 64);
        for x in (w + 1..WORDS).rev() {
            self.eq[x] = self.eq[x] << 1 | self.eq[x - 1] >> 63;
        }
        let low = self.eq[w] & ((1u64 << b) - 1);
        self.eq[w] = (self.eq[w] & !((1u64 << b) - 1)) << 1 | low;
    }
    /// Tie bit `j`.
    #[inline]
    fn eq_bit(&self, j: usize) -> bool {
        self.eq[j / 64] >> (j % 64) & 1 == 1
    }
    /// Drops the entry at position `j` (of `n`) from the tie bits: the bits
    /// above it shift down, and the entry after it ties with the one before
    /// it exactly when the dropped entry tied with both (keys are sorted), so
    /// no neighbour's cell is read.
    #[inline]
    fn drop_bit(&mut self, n: usize, j: usize) {
        let joined = j > 0 && j + 1 < n && self.eq_bit(j) && self.eq_bit(j + 1);
        self.remove_bit(j);
        if j + 1 < n {
            let (w, b) = (j / 64, j % 64);
            self.eq[w] = self.eq[w] & !(1 << b) | (joined as u64) << b;
        }
    }
    /// Drops tie bit `j`, shifting the ones above it down.
    #[inline]
    fn remove_bit(&mut self, j: usize) {
        let (w, b) = (j / 64, j % 64);
        let low = self.eq[w] & ((1u64 << b) - 1);
        let high = if b == 63 { 0 } else { self.eq[w] >> (b + 1) << b };
        self.eq[w] = high | low;
        for x in w + 1..WORDS {
            self.eq[x - 1] |= (self.eq[x] & 1) << 63;
            self.eq[x] >>= 1;
        }
    }
    /// How many entries just before position `i` (down from `i - 1`) share
    /// its score key.
    #[inline]
    fn ties_before(&self, i: usize) -> usize {
        let mut run = 0;
        let mut w = i / 64;
        let mut bits = self.eq[w] << (63 - i % 64);
        let mut avail = i % 64 + 1;
        loop {
            let lead = (!bits).leading_zeros() as usize;
            if lead < avail {
                return run + lead;
            }
            run += avail;
            if w == 0 {
                return run;
            }
            w -= 1;
            bits = self.eq[w];
            avail = 64;
        }
    }
    /// How many entries just after position `i` (of `n`) share its score key.
    #[inline]
    fn ties_after(&self, n: usize, i: usize) -> usize {
        let mut run = 0;
        let mut j = i + 1;
        while j < n {
            let bits = self.eq[j / 64] >> (j % 64);
            let avail = (64 - j % 64).min(n - j);
            let t = (!bits).trailing_zeros() as usize;
            if t < avail {
                return run + t;
            }
            run += avail;
            j += avail;
        }
        run
    }
    /// First position whose entry is not less than `k` (among the first `n`),
    /// searched outward from `guess`.
    #[inline]
    fn lower_bound(&self, n: usize, guess: usize, k: Key<R>, ki: &Id16, m: &impl Members) -> usize {
        partition_near(n, guess, |j| lt(self.at(j), self.id_at(j), k, ki, m))
    }
    /// Number of entries (among the first `n`) whose rank key is < `k` (or <= when `inclusive`).
    #[inline]
    fn count_keys(&self, n: usize, k: R, inclusive: bool) -> usize {
        partition_near(n, n / 2, |j| {
            let x = self.at(j).0;
            x < k || (inclusive && x == k)
        })
    }
    /// Reads the entries near position `g` (of `n`) in one pass: their cells
    /// are independent loads, so their misses overlap, and the search that
    /// follows finds them cached instead of waiting on each probe in turn.
    #[inline]
    fn touch_near(&self, n: usize, g: usize) {
        let mut acc = 0u64;
        for j in g.saturating_sub(TOUCH)..(g + TOUCH).min(n) {
            acc ^= self.at(j).1;
        }
        std::hint::black_box(acc);
    }
    /// The entry at position `j`, with its payload and location (this block
    /// being `id`).
    #[inline]
    fn located(&self, id: u32, j: usize) -> (Key<R>, Id16, Loc) {
        let c = self.order[j] as usize;
        (self.cells[c].k, self.cells[c].id, loc(id, c))
    }
    /// Entries in order, with their payloads and locations (this block being `id`).
    fn entries(&self, id: u32, n: usize) -> impl Iterator<Item = (Key<R>, Id16, Loc)> + '_ {
        (0..n).map(move |j| self.located(id, j))
    }
}

/// A block id's block, entry count and position in the sequence, side by
/// side: one cache line answers all three.
#[derive(Default)]
struct Meta<R> {
    block: Option<Box<Block<R>>>,
    len: u32,
    pos: u32,
}

#[derive(Default)]
pub(crate) struct Tree<R> {
    /// by block id
    meta: Vec<Meta<R>>,
    free_ids: Vec<u32>,
    /// block ids by position
    order: Vec<u32>,
    /// by position: first entry of the block
    firsts: Vec<Key<R>>,
    /// Fenwick tree over positions (1-based)
    fen: Vec<u32>,
    len: usize,
}

impl<R: RankKey> Tree<R> {
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether an insert may split a block: block ids must fit the 17 bits
    /// of a location (see `ids.rs`).
    pub fn has_room(&self) -> bool {
        self.free_ids.len() + MAX_BLOCKS > self.meta.len() + 1
    }

    #[inline]
    fn block(&self, id: u32) -> &Block<R> {
        self.meta[id as usize].block.as_deref().unwrap()
    }

    #[inline]
    fn block_mut(&mut self, id: u32) -> &mut Block<R> {
        self.meta[id as usize].block.as_deref_mut().unwrap()
    }

    fn new_block(&mut self) -> u32 {
        match self.free_ids.pop() {
            Some(id) => {
                self.meta[id as usize].block = Some(Block::new());
                self.meta[id as usize].len = 0;
                id
            }
            None => {
                self.meta.push(Meta { block: Some(Block::new()), len: 0, pos: 0 });
                (self.meta.len() - 1) as u32
            }
        }
    }

    fn fen_add(&mut self, p: usize, d: i32) {
        let m = self.order.len();
        let mut i = p + 1;
        while i <= m {
            self.fen[i] = self.fen[i].wrapping_add(d as u32);
            i += i & i.wrapping_neg();
        }
    }

    /// Entries in positions `[0, p)`.
    #[inline]
    fn fen_prefix(&self, p: usize) -> usize {
        let mut s = 0usize;
        let mut i = p;
        while i > 0 {
            s += self.fen[i] as usize;
            i &= i - 1;
        }
        s
    }

    /// (position, index) of global index `g < len`.
    #[inline]
    fn fen_find(&self, g: usize) -> (usize, usize) {
        let m = self.order.len();
        let mut p = 0;
        let mut rem = g;
        let mut step = if m == 0 { 0 } else { 1 << (usize::BITS - 1 - m.leading_zeros()) };
        while step > 0 {
            let q = p + step;
            if q <= m && (self.fen[q] as usize) <= rem {
                p = q;
                rem -= self.fen[q] as usize;
            }
            step >>= 1;
        }
        (p, rem)
    }

    /// Rebuilds the positions from `from` on and the Fenwick tree after the
    /// block sequence changed there (the caller keeps `firsts` in step: reading
    /// every block's first entry again would be a cache miss per block).
    fn reindex(&mut self, from: usize) {
        let m = self.order.len();
        self.fen.clear();
        self.fen.resize(m + 1, 0);
        for (p, &id) in self.order.iter().enumerate() {
            if p >= from {
                self.meta[id as usize].pos = p as u32;
            }
            self.fen[p + 1] = self.meta[id as usize].len;
        }
        for i in 1..=m {
            let j = i + (i & i.wrapping_neg());
            if j <= m {
                self.fen[j] += self.fen[i];
            }
        }
    }

    /// The order of the first entry of the block at position `p` and `k`
    /// (payload `ki`). `firsts` holds only keys (half the cache lines to
    /// search); on a tie the id comes from the block.
    #[inline(always)]
    fn cmp_first(&self, p: usize, k: Key<R>, ki: &Id16, m: &impl Members) -> std::cmp::Ordering {
        by_key(self.firsts[p], k).unwrap_or_else(|| self.first_tie(p, k, ki, m))
    }

    #[cold]
    #[inline(never)]
    fn first_tie(&self, p: usize, k: Key<R>, ki: &Id16, m: &impl Members) -> std::cmp::Ordering {
        let f = self.firsts[p];
        m.bytes(self.block(self.order[p]).id_at(0), tag(f)).cmp(m.bytes(ki, tag(k)))
    }

    /// Position of the block an entry with key `k` (payload `ki`) belongs in.
    #[inline]
    fn block_for(&self, k: Key<R>, ki: &Id16, m: &impl Members) -> usize {
        let (mut lo, mut hi) = (0, self.firsts.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            if self.cmp_first(mid, k, ki, m).is_gt() {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        lo.saturating_sub(1)
    }

    #[inline]
    fn len_at(&self, p: usize) -> usize {
        self.meta[self.order[p] as usize].len as usize
    }

    /// The first entry of block `id` (not empty).
    #[inline]
    fn first_of(&self, id: u32) -> Key<R> {
        self.block(id).at(0)
    }

    /// Lays `entries` (sorted, each with the location it comes from) out over
    /// block `id`'s cells in order, with the free cells spread evenly between
    /// them, and reports the members that changed location.
    fn lay_out(&mut self, id: u32, entries: &[(Key<R>, Id16, Loc)], m: &mut impl Members) {
        let n = entries.len();
        debug_assert!(n <= CAP);
        let b = self.block_mut(id);
        b.occ = [0; WORDS];
        let mut moves: Vec<Move> = Vec::with_capacity(n);
        for (j, &(k, pay, from)) in entries.iter().enumerate() {
            let c = j * CAP / n;
            b.cells[c].k = k;
            b.cells[c].id = pay;
            b.mark(c);
            b.order[j] = c as u8;
            let to = loc(id, c);
            if to != from {
                moves.push((pay, tag(k), from, to));
            }
        }
        b.set_all_eq(n);
        self.meta[id as usize].len = n as u32;
        if !moves.is_empty() {
            m.moved(&moves);
        }
    }

    /// Puts `k` (payload `pay`, coming from `from`) at position `j` of block
    /// `id` (which has room), in the free cell nearest its neighbours' cells.
    /// Counts it in the block's length.
    fn put(&mut self, id: u32, j: usize, k: Key<R>, pay: &Id16, from: Loc, m: &mut impl Members) {
        let n = self.meta[id as usize].len as usize;
        debug_assert!(n < CAP, "put into a full block");
        let b = self.block_mut(id);
        // an invariant, not input: a block that is not full has a free cell
        let c = b.cell_for(n, j).expect("a block with room has a free cell");
        b.put(n, j, c, k, pay);
        self.meta[id as usize].len += 1;
        m.moved(&[(*pay, tag(k), from, loc(id, c))]);
    }

    /// Inserts a new member's entry.
    pub fn insert(&mut self, k: Key<R>, pay: &Id16, m: &mut impl Members) {
        self.insert_near(k, pay, NEW, None, m)
    }

    /// Inserts `k` for the member coming from `from`; `near_end` says where
    /// in its block the key likely goes (an entry moving to a neighbour block
    /// lands near the edge it crossed), so the search starts there instead of
    /// bisecting a cold block.
    fn insert_near(
        &mut self,
        k: Key<R>,
        pay: &Id16,
        from: Loc,
        mut near_end: Option<bool>,
        m: &mut impl Members,
    ) {
        if self.order.is_empty() {
            let id = self.new_block();
            self.order.push(id);
            self.lay_out(id, &[(k, *pay, from)], m);
            self.len = 1;
            self.firsts.push(k);
            self.reindex(0);
            return;
        }
        let mut p = self.block_for(k, pay, m);
        if self.len_at(p) == CAP {
            self.make_room(p, m);
            p = self.block_for(k, pay, m);
            near_end = None;
        }
        let id = self.order[p];
        let n = self.meta[id as usize].len as usize;
        let guess = match near_end {
            Some(true) => n,
            Some(false) => 0,
            None => match self.firsts.get(p + 1) {
                Some(f) => interpolate(k.0.score(), (self.firsts[p].0.score(), 0), (f.0.score(), n)),
                None => n / 2,
            },
        };
        let b = self.block(id);
        b.touch_near(n, guess);
        let j = b.lower_bound(n, guess, k, pay, m);
        self.put(id, j, k, pay, from, m);
        if j == 0 {
            self.firsts[p] = k;
        }
        self.fen_add(p, 1);
        self.len += 1;
    }

    /// Moves `cnt` entries from the end of block `p` to the front of block `p + 1`.
    fn shift_right(&mut self, p: usize, cnt: usize, m: &mut impl Members) {
        let (lid, rid) = (self.order[p], self.order[p + 1]);
        let (ln, rn) = (self.meta[lid as usize].len as usize, self.meta[rid as usize].len as usize);
        let l = self.block_mut(lid);
        let mut moved: Vec<(Key<R>, Id16, Loc)> = (ln - cnt..ln).map(|j| l.located(lid, j)).collect();
        // the tail goes: the others keep their cells, positions and tie bits
        for j in ln - cnt..ln {
            let c = l.order[j] as usize;
            l.unmark(c);
        }
        self.meta[lid as usize].len -= cnt as u32;
        moved.extend(self.block(rid).entries(rid, rn));
        self.lay_out(rid, &moved, m);
        self.firsts[p + 1] = moved[0].0;
        self.fen_add(p, -(cnt as i32));
        self.fen_add(p + 1, cnt as i32);
    }

    /// Moves `cnt` entries from the front of block `p` to the end of block `p - 1`.
    fn shift_left(&mut self, p: usize, cnt: usize, m: &mut impl Members) {
        let (lid, rid) = (self.order[p - 1], self.order[p]);
        let (ln, rn) = (self.meta[lid as usize].len as usize, self.meta[rid as usize].len as usize);
        let mut moved: Vec<(Key<R>, Id16, Loc)> = self.block(lid).entries(lid, ln).collect();
        let r = self.block_mut(rid);
        moved.extend((0..cnt).map(|j| r.located(rid, j)));
        for j in 0..cnt {
            let c = r.order[j] as usize;
            r.unmark(c);
        }
        r.order.copy_within(cnt..rn, 0);
        r.set_all_eq(rn - cnt);
        self.meta[rid as usize].len -= cnt as u32;
        let first = self.first_of(rid);
        self.lay_out(lid, &moved, m);
        self.firsts[p] = first;
        self.fen_add(p - 1, cnt as i32);
        self.fen_add(p, -(cnt as i32));
    }

    /// Frees room in the full block at `p`: spill to a neighbour with room, else split.
    fn make_room(&mut self, p: usize, m: &mut impl Members) {
        let nb = self.order.len();
        if p + 1 < nb && self.len_at(p + 1) < CAP - CAP / 32 {
            let cnt = (CAP - self.len_at(p + 1)) / 2;
            self.shift_right(p, cnt, m);
        } else if p > 0 && self.len_at(p - 1) < CAP - CAP / 32 {
            let cnt = (CAP - self.len_at(p - 1)) / 2;
            self.shift_left(p, cnt, m);
        } else {
            self.split(p, m);
        }
    }

    fn split(&mut self, p: usize, m: &mut impl Members) {
        let id = self.order[p];
        let n = self.meta[id as usize].len as usize;
        let all: Vec<(Key<R>, Id16, Loc)> = self.block(id).entries(id, n).collect();
        let half = n / 2;
        let nid = self.new_block();
        self.lay_out(id, &all[..half], m);
        self.lay_out(nid, &all[half..], m);
        self.order.insert(p + 1, nid);
        self.firsts.insert(p + 1, all[half].0);
        self.reindex(p + 1);
    }

    fn drop_block(&mut self, p: usize) {
        let id = self.order.remove(p);
        self.firsts.remove(p);
        self.meta[id as usize].block = None;
        self.meta[id as usize].len = 0;
        self.free_ids.push(id);
    }

    /// Removes the entry at `at`; returns it. The member is not reported as
    /// moved (it leaves); others may be, when blocks merge.
    pub fn remove(&mut self, at: Loc, m: &mut impl Members) -> Ent<R> {
        let (id, c) = (block_of(at), cell_of(at));
        let p = self.meta[id as usize].pos as usize;
        let n = self.meta[id as usize].len as usize;
        let b = self.block_mut(id);
        let gone = (b.cells[c].k, b.cells[c].id);
        let j = b.position_of(n, c);
        b.take(n, j);
        let n = n - 1;
        self.meta[id as usize].len = n as u32;
        self.len -= 1;
        if n == 0 {
            self.drop_block(p);
            self.reindex(p);
            return gone;
        }
        if j == 0 {
            self.firsts[p] = self.first_of(id);
        }
        self.fen_add(p, -1);
        if n < CAP / 4 {
            self.maybe_merge(p, m);
        }
        gone
    }

    /// Replaces the key of the member at `at` (its tag unchanged); stays
    /// inside its block when the new key belongs there.
    pub fn update(&mut self, at: Loc, k: Key<R>, m: &mut impl Members) {
        let (id, c) = (block_of(at), cell_of(at));
        let p = self.meta[id as usize].pos as usize;
        let pay = self.block(id).cells[c].id;
        let in_block = (p == 0 || self.cmp_first(p, k, &pay, m).is_lt())
            && (p + 1 == self.order.len() || self.cmp_first(p + 1, k, &pay, m).is_gt());
        if !in_block {
            let toward_front = p > 0 && self.cmp_first(p, k, &pay, m).is_gt();
            // Its index entry names `at` until it lands, though a merge on
            // the way may give that cell to another member (see
            // `Members::moved`).
            self.remove(at, m);
            self.insert_near(k, &pay, at, Some(toward_front), m);
            return;
        }
        let lo_key = self.firsts[p].0.score();
        let hi_key = self.firsts.get(p + 1).map(|f| f.0.score());
        let n = self.meta[id as usize].len as usize;
        let b = self.block_mut(id);
        let old = b.cells[c].k;
        let i = b.position_of(n, c);
        // the new position among the others, guessed by interpolating keys
        // (the block's edges come from `firsts`, in cache)
        let j = if lt(k, &pay, old, &pay, m) {
            let g = interpolate(k.0.score(), (lo_key, 0), (old.0.score(), i));
            b.touch_near(i, g);
            partition_near(i, g, |x| lt(b.at(x), b.id_at(x), k, &pay, m))
        } else {
            let g = match hi_key {
                Some(h) => interpolate(k.0.score(), (old.0.score(), i + 1), (h, n)),
                None => i + 1,
            };
            b.touch_near(n, g);
            i + partition_near(n - i - 1, g - (i + 1), |x| {
                lt(b.at(i + 1 + x), b.id_at(i + 1 + x), k, &pay, m)
            })
        };
        if j == i {
            // same neighbours: same cell
            b.cells[c].k = k;
            b.set_eq(n, i);
            b.set_eq(n, i + 1);
        } else {
            let c2 = b.relocate(n, i, j, k);
            if c2 != c {
                m.moved(&[(pay, tag(k), at, loc(id, c2))]);
            }
        }
        if i == 0 || j == 0 {
            self.firsts[p] = self.first_of(id);
        }
    }

    /// Merges the block at `p` into a neighbour when both fit in 3/4 of a block.
    fn maybe_merge(&mut self, p: usize, m: &mut impl Members) {
        let n = self.len_at(p);
        let (left, right) = if p + 1 < self.order.len() && n + self.len_at(p + 1) <= CAP * 3 / 4 {
            (p, p + 1)
        } else if p > 0 && n + self.len_at(p - 1) <= CAP * 3 / 4 {
            (p - 1, p)
        } else {
            return;
        };
        let (lid, rid) = (self.order[left], self.order[right]);
        let mut all: Vec<(Key<R>, Id16, Loc)> =
            self.block(lid).entries(lid, self.meta[lid as usize].len as usize).collect();
        all.extend(self.block(rid).entries(rid, self.meta[rid as usize].len as usize));
        self.lay_out(lid, &all, m);
        self.drop_block(right);
        self.reindex(right);
    }

    /// Reads each member's cell, id payload and the order bytes where its
    /// position is likely found, for `Ranking::apply_batch`.
    pub fn touch_members(&self, locs: impl Iterator<Item = Loc>) {
        let mut acc = 0u64;
        for l in locs {
            let (id, c) = (block_of(l), cell_of(l));
            let Some(m) = self.meta.get(id as usize) else { continue };
            let Some(b) = m.block.as_deref() else { continue };
            acc ^= b.cells[c].k.1 ^ b.cells[c].id[0] as u64 ^ b.order[c * m.len as usize / CAP] as u64;
        }
        std::hint::black_box(acc);
    }

    /// Starts reading what locating the member at `at` reads after its cell
    /// (a location the id index holds).
    #[inline]
    pub fn prefetch_at(&self, at: Loc) {
        if let Some(b) = self.meta.get(block_of(at) as usize).and_then(|m| m.block.as_deref()) {
            b.prefetch_header();
        }
    }

    /// The entry and payload of the member at `at` (a location the id index
    /// holds, so a member is there).
    #[inline]
    pub fn entry(&self, at: Loc) -> (Key<R>, &Id16) {
        let b = self.block(block_of(at));
        (b.cells[cell_of(at)].k, &b.cells[cell_of(at)].id)
    }

    /// 0-based position of the member at `at` in the order, with its key.
    #[inline]
    pub fn position(&self, at: Loc) -> (usize, Key<R>) {
        let (id, c) = (block_of(at), cell_of(at));
        let p = self.meta[id as usize].pos as usize;
        let b = self.block(id);
        let k = b.cells[c].k;
        let before = self.fen_prefix(p);
        (before + b.position_of(self.meta[id as usize].len as usize, c), k)
    }

    /// The member at `at`'s 0-based position, key, and the numbers of entries
    /// with a strictly better score key and with a not-worse one. Answers
    /// from the member's own block unless its tie group crosses the block's edge.
    #[inline]
    pub fn standing(&self, at: Loc) -> (usize, Key<R>, usize, usize) {
        let (id, c) = (block_of(at), cell_of(at));
        let p = self.meta[id as usize].pos as usize;
        let b = self.block(id);
        let n = self.meta[id as usize].len as usize;
        let k = b.cells[c].k;
        let before = self.fen_prefix(p);
        let i = b.position_of(n, c);
        let better_in = i - b.ties_before(i);
        let better = if better_in > 0 || p == 0 { before + better_in } else { self.count_before(k.0, false) };
        let c = i + 1 + b.ties_after(n, i);
        let not_worse = if c < n || p + 1 == self.order.len() || self.firsts[p + 1].0 > k.0 {
            before + c
        } else {
            self.count_before(k.0, true)
        };
        (before + i, k, better, not_worse)
    }

    /// Number of entries whose rank key is `< k` (or `<= k` when `inclusive`). O(log n).
    #[inline]
    pub fn count_before(&self, k: R, inclusive: bool) -> usize {
        let pp = self.firsts.partition_point(|f| f.0 < k || (inclusive && f.0 == k));
        if pp == 0 {
            return 0;
        }
        let id = self.order[pp - 1];
        self.fen_prefix(pp - 1) + self.block(id).count_keys(self.meta[id as usize].len as usize, k, inclusive)
    }

    /// Entries in order from global index `start`, with their payloads.
    pub fn iter_from(&self, start: usize) -> impl Iterator<Item = (Key<R>, &Id16)> + '_ {
        let (mut p, mut i) = if start >= self.len { (self.order.len(), 0) } else { self.fen_find(start) };
        std::iter::from_fn(move || {
            while p < self.order.len() {
                let id = self.order[p];
                if i < self.meta[id as usize].len as usize {
                    i += 1;
                    let b = self.block(id);
                    return Some((b.at(i - 1), b.id_at(i - 1)));
                }
                p += 1;
                i = 0;
            }
            None
        })
    }

    /// Every entry with its payload and location, in no particular order.
    pub fn cells(&self) -> impl Iterator<Item = (Key<R>, &Id16, Loc)> + '_ {
        self.order.iter().flat_map(move |&id| {
            let b = self.block(id);
            b.order[..self.meta[id as usize].len as usize]
                .iter()
                .map(move |&c| (b.cells[c as usize].k, &b.cells[c as usize].id, loc(id, c as usize)))
        })
    }

    /// Replaces the content with new members' entries given in strictly
    /// increasing order (see [`lt`]); each is reported as moved from [`NEW`].
    ///
    /// The blocks are filled from the last one back, each from the tail of
    /// `sorted`, which gives the memory back (a shrink in place) every
    /// [`BULK_SHRINK`] entries: the entries and the blocks made of them are
    /// never both whole in memory (a rebuild of 1M members peaked at 73 bytes
    /// per member, for a ranking of 40, when the blocks were filled from an
    /// iterator over a whole vector), and the allocator reuses the freed tail
    /// for the next blocks.
    pub fn bulk_load(&mut self, mut sorted: Vec<Ent<R>>, m: &mut impl Members) {
        *self = Tree::default();
        let n = sorted.len();
        let nblocks = n.div_ceil(BULK_FILL);
        // block ids are positions, as when the blocks are made in order
        self.meta.reserve_exact(nblocks);
        self.meta.extend((0..nblocks).map(|_| Meta { block: None, len: 0, pos: 0 }));
        self.order = (0..nblocks as u32).collect();
        self.firsts = vec![(R::default(), 0); nblocks];
        let mut chunk: Vec<(Key<R>, Id16, Loc)> = Vec::with_capacity(BULK_FILL);
        for p in (0..nblocks).rev() {
            chunk.extend(sorted.drain(p * BULK_FILL..).map(|(k, pay)| (k, pay, NEW)));
            if sorted.capacity() - sorted.len() >= BULK_SHRINK {
                sorted.shrink_to_fit();
            }
            let id = p as u32;
            self.meta[p].block = Some(Block::new());
            self.lay_out(id, &chunk, m);
            self.firsts[p] = chunk[0].0;
            self.len += chunk.len();
            chunk.clear();
        }
        self.reindex(0);
    }

    #[cfg(test)]
    pub fn check(&self, m: &impl Members) {
        let all: Vec<Ent<R>> = self.iter_from(0).map(|(k, p)| (k, *p)).collect();
        assert_eq!(all.len(), self.len);
        assert!(all.windows(2).all(|w| lt(w[0].0, &w[0].1, w[1].0, &w[1].1, m)));
        for (p, &id) in self.order.iter().enumerate() {
            let b = self.block(id);
            let n = self.meta[id as usize].len as usize;
            assert_eq!(self.firsts[p], b.at(0));
            assert_eq!(self.fen_prefix(p + 1) - self.fen_prefix(p), n);
            assert_eq!(b.occ.iter().map(|w| w.count_ones()).sum::<u32>() as usize, n);
            for j in 0..n {
                let same = j > 0 && b.at(j).0 == b.at(j - 1).0;
                assert_eq!(b.eq[j / 64] >> (j % 64) & 1 == 1, same, "tie bit {j}");
            }
            let mut seen = std::collections::HashSet::new();
            for j in 0..n {
                let c = b.order[j] as usize;
                assert!(!b.is_free(c) && seen.insert(c), "the order lists each occupied cell once");
                let at = loc(id, c);
                assert!(
                    m.is_at(&b.cells[c].id, tag(b.cells[c].k), at),
                    "a member's recorded location is its cell"
                );
                let (g, k) = self.position(at);
                assert_eq!((all[g].0, all[g].1), (k, b.cells[c].id), "position of the entry in cell {c}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// Test listener: members are numbers, their 4 big-endian bytes the
    /// payload (so id order is number order); locations by number.
    #[derive(Default)]
    struct Names(HashMap<u32, Loc>);

    fn pay(s: u32) -> Id16 {
        let mut p = [0; 16];
        p[..4].copy_from_slice(&s.to_be_bytes());
        p
    }

    fn num(p: &Id16) -> u32 {
        u32::from_be_bytes([p[0], p[1], p[2], p[3]])
    }

    impl Names {
        fn at(&self, s: u32) -> Loc {
            self.0[&s]
        }
    }

    impl Members for Names {
        fn bytes<'a>(&'a self, pay: &'a Id16, _tag: u32) -> &'a [u8] {
            &pay[..4]
        }
        fn moved(&mut self, moves: &[Move]) {
            for &(p, _, from, to) in moves {
                if from != NEW {
                    assert_eq!(self.0.get(&num(&p)), Some(&from), "a move starts where the member was");
                }
                self.0.insert(num(&p), to);
            }
        }
        fn is_at(&self, pay: &Id16, _tag: u32, at: Loc) -> bool {
            self.0.get(&num(pay)) == Some(&at)
        }
    }

    /// A small deterministic random stream for the tests below.
    fn lcg(seed: u64) -> impl FnMut() -> u64 {
        let mut x = seed;
        move || {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            x >> 33
        }
    }

    fn sorted(m: &Names, mut v: Vec<Ent<Rk>>) -> Vec<Ent<Rk>> {
        v.sort_by(|a, b| cmp(a, b, m));
        v
    }

    fn listed(t: &Tree<Rk>, from: usize) -> Vec<Ent<Rk>> {
        t.iter_from(from).map(|(k, p)| (k, *p)).collect()
    }

    #[test]
    fn searching_outward_from_a_hint_finds_the_same_partition_point() {
        for n in 0..40 {
            for cut in 0..=n {
                for hint in 0..=n + 2 {
                    assert_eq!(partition_near(n, hint, |x| x < cut), cut, "n={n} cut={cut} hint={hint}");
                }
            }
        }
    }

    #[test]
    fn ascending_and_descending_inserts_spill_into_both_neighbours_and_stay_exact() {
        for descending in [false, true] {
            let mut t = Tree::default();
            let mut m = Names::default();
            for s in 0..3000u32 {
                let key = if descending { 10_000 - s as u64 } else { s as u64 };
                t.insert(pack((key, 0), 0, 0), &pay(s), &mut m);
                if s % 97 == 0 {
                    t.check(&m);
                }
            }
            t.check(&m);
            assert_eq!(t.len(), 3000);
        }
    }

    #[test]
    fn random_inserts_moves_and_removals_on_a_large_tree_keep_every_cell_exact() {
        let mut t = Tree::default();
        let mut m = Names::default();
        let mut next = lcg(99);
        let mut rnd = move |n: u64| next() % n;
        let mut live: Vec<Option<Key<Rk>>> = Vec::new();
        for step in 0..40_000u32 {
            let s = rnd(6000) as u32;
            // few distinct scores: long tie runs that cross block edges
            let k = pack((rnd(400), rnd(2)), rnd(3), 0);
            match live.get(s as usize).copied().flatten() {
                None if rnd(4) > 0 => {
                    if live.len() <= s as usize {
                        live.resize(s as usize + 1, None);
                    }
                    t.insert(k, &pay(s), &mut m);
                    live[s as usize] = Some(k);
                }
                Some(old) if rnd(5) == 0 => {
                    let at = m.at(s);
                    assert_eq!(t.remove(at, &mut m), (old, pay(s)));
                    m.0.remove(&s);
                    live[s as usize] = None;
                }
                Some(_) => {
                    t.update(m.at(s), k, &mut m);
                    live[s as usize] = Some(k);
                }
                None => {}
            }
            if step % 4000 == 0 {
                t.check(&m);
            }
        }
        t.check(&m);
        let want =
            sorted(&m, live.iter().enumerate().filter_map(|(s, k)| k.map(|k| (k, pay(s as u32)))).collect());
        assert_eq!(listed(&t, 0), want);
        for (g, e) in want.iter().enumerate().step_by(37) {
            let k = e.0;
            let st = t.standing(m.at(num(&e.1)));
            let better = want.partition_point(|j| j.0 .0 < k.0);
            let not_worse = want.partition_point(|j| j.0 .0 <= k.0);
            assert_eq!(st, (g, k, better, not_worse));
        }
        // drain to empty: merges and dropped blocks
        for (s, k) in live.iter().enumerate() {
            if let Some(k) = k {
                let at = m.at(s as u32);
                assert_eq!(t.remove(at, &mut m), (*k, pay(s as u32)));
                m.0.remove(&(s as u32));
            }
        }
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn blocks_spill_split_and_merge_while_positions_stay_exact() {
        let mut t = Tree::default();
        let mut m = Names::default();
        let mut rnd = lcg(12345);
        let mut keys: Vec<Ent<Rk>> = Vec::new();
        for s in 0..5000u32 {
            let k = pack((rnd() % 50, rnd() % 2), s as u64, 0);
            t.insert(k, &pay(s), &mut m);
            keys.push((k, pay(s)));
        }
        t.check(&m);
        // moves, some inside their block, some across
        for s in (0..5000u32).step_by(3) {
            let k = pack((rnd() % 60, rnd() % 2), 10_000 + s as u64, 0);
            t.update(m.at(s), k, &mut m);
            keys[s as usize].0 = k;
        }
        t.check(&m);
        let keys = sorted(&m, keys);
        for (g, e) in keys.iter().enumerate().step_by(97) {
            let k = e.0;
            assert_eq!(t.position(m.at(num(&e.1))).0, g);
            assert_eq!(t.count_before(k.0, false), keys.partition_point(|j| j.0 .0 < k.0));
            assert_eq!(t.count_before(k.0, true), keys.partition_point(|j| j.0 .0 <= k.0));
            let st = t.standing(m.at(num(&e.1)));
            assert_eq!(
                st,
                (g, k, keys.partition_point(|j| j.0 .0 < k.0), keys.partition_point(|j| j.0 .0 <= k.0))
            );
        }
        for e in keys.iter().filter(|e| !num(&e.1).is_multiple_of(7)) {
            let s = num(&e.1);
            let at = m.at(s);
            assert_eq!(t.remove(at, &mut m), *e);
            m.0.remove(&s);
        }
        t.check(&m);
        assert_eq!(t.len(), keys.iter().filter(|e| num(&e.1).is_multiple_of(7)).count());
        let again = listed(&t, 0);
        let mut u = Tree::default();
        let mut m2 = Names::default();
        u.bulk_load(again.clone(), &mut m2);
        u.check(&m2);
        assert_eq!(listed(&u, 3), again[3..].to_vec());
        let at = m2.at(num(&again[5].1));
        assert_eq!(u.entry(at), (again[5].0, &again[5].1));
    }
}
