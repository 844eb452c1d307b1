//! An order-statistic index: a sorted sequence of fixed-capacity blocks (a
//! two-level B+tree) whose block counts live in a Fenwick tree, so position
//! and rank queries are O(log n).
//!
//! Entries are 16 bytes, `(key, reach << 24 | slot)`, in `(key, reach, member
//! id bytes)` order, all unique (ids are unique). `key` is the score mapped to
//! a `u64` whose ascending order is "better first", `reach` the 40-bit time the
//! member reached it (see `mod.rs`), `slot` (24 bits) the member's record. Slots
//! are not in id order, so entries equal on `(key, reach)` are ordered by
//! comparing the ids ([`BlockOf::id_cmp`]); that only happens on such ties, so
//! the common comparison stays two integer compares.
//!
//! A block is one allocation of 256 entry cells, an occupancy bitmap, a
//! permutation (`order`: the cells in entry order, one byte each) and a
//! bitmap of which positions tie with the one before. A member keeps its cell
//! while it moves within the block and its id entry names the block and cell
//! exactly ([`BlockOf`]), so finding a member is one read of its cell, and
//! its position a scan of the order bytes for its cell's byte (eight at a
//! time); a move rewrites no other member's id entry and no positions: only
//! permutation bytes move. A new or moving entry takes the free cell nearest
//! its neighbours' cells, so cells stay close to entry order and a search
//! through the permutation reads nearby cache lines, much as in a plain
//! sorted block; spills, splits and merges lay blocks out in order again.
//! A full block first spills into a neighbour with room (B*-tree style) and
//! only splits when both are (nearly) full, which keeps blocks ~85% full.

pub(crate) const CAP: usize = 256;
const BULK_FILL: usize = CAP * 15 / 16;
const WORDS: usize = CAP / 64;
/// Entries read on each side of a search's starting guess (see `Block::touch_near`).
const TOUCH: usize = 8;

/// `(score key, reach << 24 | slot)`
pub(crate) type Key = (u64, u64);

pub(crate) const REACH_MAX: u64 = (1 << 40) - 1;

#[inline]
pub(crate) fn pack(key: u64, reach: u64, slot: u32) -> Key {
    debug_assert!(slot < 1 << 24);
    (key, reach.min(REACH_MAX) << 24 | slot as u64)
}

#[inline]
pub(crate) fn slot(k: Key) -> u32 {
    k.1 as u32 & 0xff_ffff
}

#[inline]
pub(crate) fn reach(k: Key) -> u64 {
    k.1 >> 24
}

/// Whether entry `x` sorts before `k`: by score key, then reach, then (only
/// when both are equal) member id bytes.
#[inline(always)]
pub(crate) fn lt(x: Key, k: Key, bo: &impl BlockOf) -> bool {
    if x.0 != k.0 {
        return x.0 < k.0;
    }
    if (x.1 ^ k.1) >> 24 != 0 {
        return x.1 < k.1;
    }
    tie_lt(x, k, bo)
}

#[cold]
#[inline(never)]
fn tie_lt(x: Key, k: Key, bo: &impl BlockOf) -> bool {
    bo.id_cmp(slot(x), slot(k)).is_lt()
}

/// The full order of entries (see [`lt`]).
#[inline]
pub(crate) fn cmp(x: Key, k: Key, bo: &impl BlockOf) -> std::cmp::Ordering {
    (x.0, x.1 >> 24).cmp(&(k.0, k.1 >> 24)).then_with(|| bo.id_cmp(slot(x), slot(k)))
}

/// Where the tree records which block and cell hold a member: always exact.
pub(crate) trait BlockOf {
    fn block_of(&self, slot: u32) -> (u32, usize);
    fn set_block_of(&mut self, slot: u32, block: u32, cell: usize);
    /// Order of two members' id bytes.
    fn id_cmp(&self, a: u32, b: u32) -> std::cmp::Ordering;
}

/// Test double: block and cell by slot; the id order is the slot order.
impl BlockOf for Vec<(u32, u32)> {
    fn block_of(&self, slot: u32) -> (u32, usize) {
        let (b, c) = self[slot as usize];
        (b, c as usize)
    }
    fn set_block_of(&mut self, slot: u32, block: u32, cell: usize) {
        if self.len() <= slot as usize {
            self.resize(slot as usize + 1, (u32::MAX, 0));
        }
        self[slot as usize] = (block, cell as u32);
    }
    fn id_cmp(&self, a: u32, b: u32) -> std::cmp::Ordering {
        a.cmp(&b)
    }
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

struct Block {
    /// entry cells
    kv: [Key; CAP],
    /// the occupied cells in entry order (the first `len`)
    order: [u8; CAP],
    /// occupied cells
    occ: [u64; WORDS],
    /// by position: bit `j` says the entry at `j` has the same score key as
    /// the one at `j - 1`, so a member's tie group is found without reading
    /// its neighbours' cells
    eq: [u64; WORDS],
}

impl Block {
    fn new() -> Box<Block> {
        Box::new(Block { kv: [(0, 0); CAP], order: [0; CAP], occ: [0; WORDS], eq: [0; WORDS] })
    }
    /// Entry at position `j`.
    #[inline]
    fn at(&self, j: usize) -> Key {
        self.kv[self.order[j] as usize]
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
    fn relocate(&mut self, n: usize, i: usize, j: usize, k: Key) -> usize {
        let old = self.order[i] as usize;
        self.unmark(old);
        // the new neighbours, in today's positions
        let left = (j > 0).then(|| self.order[if j <= i { j - 1 } else { j }] as usize);
        let right = (j + 1 < n).then(|| self.order[if j < i { j } else { j + 1 }] as usize);
        let c = self.cell_between(left, right).unwrap_or(old);
        self.mark(c);
        self.kv[c] = k;
        if j < i {
            self.order.copy_within(j..i, j + 1);
        } else {
            self.order.copy_within(i + 1..=j, i);
        }
        self.order[j] = c as u8;
        self.remove_bit(i);
        self.insert_bit(j);
        for x in [i, i + 1, j, j + 1] {
            self.set_eq(n, x);
        }
        c
    }
    /// Puts `k` in cell `c` at position `j` (of `n`).
    #[inline]
    fn put(&mut self, n: usize, j: usize, c: usize, k: Key) {
        self.kv[c] = k;
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
        self.remove_bit(j);
        self.set_eq(n - 1, j);
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
    fn lower_bound(&self, n: usize, guess: usize, k: Key, bo: &impl BlockOf) -> usize {
        partition_near(n, guess, |j| lt(self.at(j), k, bo))
    }
    /// Number of entries (among the first `n`) whose score key is < `k` (or <= when `inclusive`).
    #[inline]
    fn count_keys(&self, n: usize, k: u64, inclusive: bool) -> usize {
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
            acc ^= self.at(j).0;
        }
        std::hint::black_box(acc);
    }
    /// Entries in order.
    fn entries(&self, n: usize) -> impl Iterator<Item = Key> + '_ {
        self.order[..n].iter().map(|&c| self.kv[c as usize])
    }
}

/// A block id's block, entry count and position in the sequence, side by
/// side: one cache line answers all three.
#[derive(Default)]
struct Meta {
    block: Option<Box<Block>>,
    len: u32,
    pos: u32,
}

#[derive(Default)]
pub(crate) struct Tree {
    /// by block id
    meta: Vec<Meta>,
    free_ids: Vec<u32>,
    /// block ids by position
    order: Vec<u32>,
    /// by position: first entry of the block
    firsts: Vec<Key>,
    /// Fenwick tree over positions (1-based)
    fen: Vec<u32>,
    len: usize,
}

impl Tree {
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether an insert may split a block: block ids must fit the member
    /// records' 17 bits (see `ids.rs`).
    pub fn has_room(&self) -> bool {
        self.free_ids.len() + super::ids::MAX_BLOCKS > self.meta.len() + 1
    }

    #[inline]
    fn block(&self, id: u32) -> &Block {
        self.meta[id as usize].block.as_deref().unwrap()
    }

    #[inline]
    fn block_mut(&mut self, id: u32) -> &mut Block {
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

    /// Position of the block an entry with key `k` belongs in.
    #[inline]
    fn block_for(&self, k: Key, bo: &impl BlockOf) -> usize {
        self.firsts.partition_point(|&f| !lt(k, f, bo)).saturating_sub(1)
    }

    #[inline]
    fn len_at(&self, p: usize) -> usize {
        self.meta[self.order[p] as usize].len as usize
    }

    /// Lays `entries` (sorted) out over block `id`'s cells in order, with the
    /// free cells spread evenly between them, and records every member's cell.
    fn lay_out(&mut self, id: u32, entries: &[Key], bo: &mut impl BlockOf) {
        let n = entries.len();
        debug_assert!(n <= CAP);
        let b = self.block_mut(id);
        b.occ = [0; WORDS];
        for (j, &k) in entries.iter().enumerate() {
            let c = j * CAP / n;
            b.kv[c] = k;
            b.mark(c);
            b.order[j] = c as u8;
            bo.set_block_of(slot(k), id, c);
        }
        b.set_all_eq(n);
        self.meta[id as usize].len = n as u32;
    }

    /// Puts `k` at position `j` of block `id` (which has room), in the free
    /// cell nearest its neighbours' cells. Counts it in the block's length.
    fn put(&mut self, id: u32, j: usize, k: Key, bo: &mut impl BlockOf) {
        let n = self.meta[id as usize].len as usize;
        debug_assert!(n < CAP, "put into a full block");
        let b = self.block_mut(id);
        // an invariant, not input: a block that is not full has a free cell
        let c = b.cell_for(n, j).expect("a block with room has a free cell");
        b.put(n, j, c, k);
        self.meta[id as usize].len += 1;
        bo.set_block_of(slot(k), id, c);
    }

    pub fn insert(&mut self, k: Key, bo: &mut impl BlockOf) {
        self.insert_near(k, None, bo)
    }

    /// Inserts `k`; `near_end` says where in its block the key likely goes
    /// (an entry moving to a neighbour block lands near the edge it crossed),
    /// so the search starts there instead of bisecting a cold block.
    fn insert_near(&mut self, k: Key, mut near_end: Option<bool>, bo: &mut impl BlockOf) {
        if self.order.is_empty() {
            let id = self.new_block();
            self.order.push(id);
            self.lay_out(id, &[k], bo);
            self.len = 1;
            self.firsts.push(k);
            self.reindex(0);
            return;
        }
        let mut p = self.block_for(k, bo);
        if self.len_at(p) == CAP {
            self.make_room(p, bo);
            p = self.block_for(k, bo);
            near_end = None;
        }
        let id = self.order[p];
        let n = self.meta[id as usize].len as usize;
        let guess = match near_end {
            Some(true) => n,
            Some(false) => 0,
            None => match self.firsts.get(p + 1) {
                Some(f) => interpolate(k.0, (self.firsts[p].0, 0), (f.0, n)),
                None => n / 2,
            },
        };
        let b = self.block(id);
        b.touch_near(n, guess);
        let j = b.lower_bound(n, guess, k, bo);
        self.put(id, j, k, bo);
        if j == 0 {
            self.firsts[p] = k;
        }
        self.fen_add(p, 1);
        self.len += 1;
    }

    /// Moves `cnt` entries from the end of block `p` to the front of block `p + 1`.
    fn shift_right(&mut self, p: usize, cnt: usize, bo: &mut impl BlockOf) {
        let (lid, rid) = (self.order[p], self.order[p + 1]);
        let (ln, rn) = (self.meta[lid as usize].len as usize, self.meta[rid as usize].len as usize);
        let l = self.block_mut(lid);
        let mut moved: Vec<Key> = (ln - cnt..ln).map(|j| l.at(j)).collect();
        // the tail goes: the others keep their cells, positions and tie bits
        for j in ln - cnt..ln {
            let c = l.order[j] as usize;
            l.unmark(c);
        }
        self.meta[lid as usize].len -= cnt as u32;
        moved.extend(self.block(rid).entries(rn));
        self.lay_out(rid, &moved, bo);
        self.firsts[p + 1] = moved[0];
        self.fen_add(p, -(cnt as i32));
        self.fen_add(p + 1, cnt as i32);
    }

    /// Moves `cnt` entries from the front of block `p` to the end of block `p - 1`.
    fn shift_left(&mut self, p: usize, cnt: usize, bo: &mut impl BlockOf) {
        let (lid, rid) = (self.order[p - 1], self.order[p]);
        let (ln, rn) = (self.meta[lid as usize].len as usize, self.meta[rid as usize].len as usize);
        let mut moved: Vec<Key> = self.block(lid).entries(ln).collect();
        let r = self.block_mut(rid);
        moved.extend((0..cnt).map(|j| r.at(j)));
        for j in 0..cnt {
            let c = r.order[j] as usize;
            r.unmark(c);
        }
        r.order.copy_within(cnt..rn, 0);
        r.set_all_eq(rn - cnt);
        let first = r.at(0);
        self.meta[rid as usize].len -= cnt as u32;
        self.lay_out(lid, &moved, bo);
        self.firsts[p] = first;
        self.fen_add(p - 1, cnt as i32);
        self.fen_add(p, -(cnt as i32));
    }

    /// Frees room in the full block at `p`: spill to a neighbour with room, else split.
    fn make_room(&mut self, p: usize, bo: &mut impl BlockOf) {
        let m = self.order.len();
        if p + 1 < m && self.len_at(p + 1) < CAP - CAP / 32 {
            let cnt = (CAP - self.len_at(p + 1)) / 2;
            self.shift_right(p, cnt, bo);
        } else if p > 0 && self.len_at(p - 1) < CAP - CAP / 32 {
            let cnt = (CAP - self.len_at(p - 1)) / 2;
            self.shift_left(p, cnt, bo);
        } else {
            self.split(p, bo);
        }
    }

    fn split(&mut self, p: usize, bo: &mut impl BlockOf) {
        let id = self.order[p];
        let n = self.meta[id as usize].len as usize;
        let all: Vec<Key> = self.block(id).entries(n).collect();
        let half = n / 2;
        let nid = self.new_block();
        self.lay_out(id, &all[..half], bo);
        self.lay_out(nid, &all[half..], bo);
        self.order.insert(p + 1, nid);
        self.firsts.insert(p + 1, all[half]);
        self.reindex(p + 1);
    }

    fn drop_block(&mut self, p: usize) {
        let id = self.order.remove(p);
        self.firsts.remove(p);
        self.meta[id as usize].block = None;
        self.meta[id as usize].len = 0;
        self.free_ids.push(id);
    }

    /// Removes a member's entry; returns its key.
    pub fn remove(&mut self, slot: u32, bo: &mut impl BlockOf) -> Key {
        let (id, c) = bo.block_of(slot);
        let p = self.meta[id as usize].pos as usize;
        let n = self.meta[id as usize].len as usize;
        let b = self.block_mut(id);
        let k = b.kv[c];
        let j = b.position_of(n, c);
        b.take(n, j);
        let n = n - 1;
        self.meta[id as usize].len = n as u32;
        self.len -= 1;
        if n == 0 {
            self.drop_block(p);
            self.reindex(p);
            return k;
        }
        if j == 0 {
            self.firsts[p] = self.block(id).at(0);
        }
        self.fen_add(p, -1);
        if n < CAP / 4 {
            self.maybe_merge(p, bo);
        }
        k
    }

    /// Replaces a member's key; stays inside its block when the new key belongs there.
    pub fn update(&mut self, slot: u32, k: Key, bo: &mut impl BlockOf) {
        let (id, c) = bo.block_of(slot);
        let p = self.meta[id as usize].pos as usize;
        let in_block = (p == 0 || lt(self.firsts[p], k, bo))
            && (p + 1 == self.order.len() || lt(k, self.firsts[p + 1], bo));
        if !in_block {
            let toward_front = p > 0 && lt(k, self.firsts[p], bo);
            self.remove(slot, bo);
            self.insert_near(k, Some(toward_front), bo);
            return;
        }
        let lo_key = self.firsts[p].0;
        let hi_key = self.firsts.get(p + 1).map(|f| f.0);
        let n = self.meta[id as usize].len as usize;
        let b = self.block_mut(id);
        let old = b.kv[c];
        let i = b.position_of(n, c);
        // the new position among the others, guessed by interpolating keys
        // (the block's edges come from `firsts`, in cache)
        let j = if lt(k, old, bo) {
            let g = interpolate(k.0, (lo_key, 0), (old.0, i));
            b.touch_near(i, g);
            partition_near(i, g, |x| lt(b.at(x), k, bo))
        } else {
            let g = match hi_key {
                Some(h) => interpolate(k.0, (old.0, i + 1), (h, n)),
                None => i + 1,
            };
            b.touch_near(n, g);
            i + partition_near(n - i - 1, g - (i + 1), |x| lt(b.at(i + 1 + x), k, bo))
        };
        if j == i {
            // same neighbours: same cell
            b.kv[c] = k;
            b.set_eq(n, i);
            b.set_eq(n, i + 1);
        } else {
            let c2 = b.relocate(n, i, j, k);
            if c2 != c {
                bo.set_block_of(slot, id, c2);
            }
        }
        if i == 0 || j == 0 {
            self.firsts[p] = self.block(id).at(0);
        }
    }

    /// Merges the block at `p` into a neighbour when both fit in 3/4 of a block.
    fn maybe_merge(&mut self, p: usize, bo: &mut impl BlockOf) {
        let n = self.len_at(p);
        let (left, right) = if p + 1 < self.order.len() && n + self.len_at(p + 1) <= CAP * 3 / 4 {
            (p, p + 1)
        } else if p > 0 && n + self.len_at(p - 1) <= CAP * 3 / 4 {
            (p - 1, p)
        } else {
            return;
        };
        let (lid, rid) = (self.order[left], self.order[right]);
        let mut all: Vec<Key> = self.block(lid).entries(self.meta[lid as usize].len as usize).collect();
        all.extend(self.block(rid).entries(self.meta[rid as usize].len as usize));
        self.lay_out(lid, &all, bo);
        self.drop_block(right);
        self.reindex(right);
    }

    /// Reads each member's cell and the order bytes where its position is
    /// likely found, for `Ranking::apply_batch`.
    pub fn touch_members(&self, slots: impl Iterator<Item = u32>, bo: &impl BlockOf) {
        let mut acc = 0u64;
        for s in slots {
            let (id, c) = bo.block_of(s);
            let Some(m) = self.meta.get(id as usize) else { continue };
            let Some(b) = m.block.as_deref() else { continue };
            let c = c.min(CAP - 1);
            acc ^= b.kv[c].1 ^ b.order[c * m.len as usize / CAP] as u64;
        }
        std::hint::black_box(acc);
    }

    /// Renames the member in cell `cell` of block `id` to `slot` (the id
    /// index moved it).
    #[inline]
    pub fn set_slot(&mut self, id: u32, cell: usize, slot: u32) {
        let p = self.meta[id as usize].pos as usize;
        let b = self.block_mut(id);
        let k = &mut b.kv[cell];
        k.1 = k.1 & !0xff_ffff | slot as u64;
        let (k, first) = (*k, b.order[0] as usize == cell);
        // `firsts` holds a copy of each block's first entry
        if first {
            self.firsts[p] = k;
        }
    }

    /// The key of a member's entry.
    #[inline]
    pub fn key_of(&self, slot: u32, bo: &impl BlockOf) -> Key {
        let (id, c) = bo.block_of(slot);
        self.block(id).kv[c]
    }

    /// 0-based position of a member in the order, with its key.
    #[inline]
    pub fn position(&self, slot: u32, bo: &impl BlockOf) -> (usize, Key) {
        let (id, c) = bo.block_of(slot);
        let p = self.meta[id as usize].pos as usize;
        let b = self.block(id);
        let k = b.kv[c];
        let before = self.fen_prefix(p);
        (before + b.position_of(self.meta[id as usize].len as usize, c), k)
    }

    /// A member's 0-based position, key, and the numbers of entries with a
    /// strictly better score key and with a not-worse one. Answers from the
    /// member's own block unless its tie group crosses the block's edge.
    #[inline]
    pub fn standing(&self, slot: u32, bo: &impl BlockOf) -> (usize, Key, usize, usize) {
        let (id, c) = bo.block_of(slot);
        let p = self.meta[id as usize].pos as usize;
        let b = self.block(id);
        let n = self.meta[id as usize].len as usize;
        let k = b.kv[c];
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

    /// Number of entries whose score key is `< k` (or `<= k` when `inclusive`). O(log n).
    #[inline]
    pub fn count_before(&self, k: u64, inclusive: bool) -> usize {
        let pp = self.firsts.partition_point(|f| f.0 < k || (inclusive && f.0 == k));
        if pp == 0 {
            return 0;
        }
        let id = self.order[pp - 1];
        self.fen_prefix(pp - 1) + self.block(id).count_keys(self.meta[id as usize].len as usize, k, inclusive)
    }

    /// Entries in order from global index `start`.
    pub fn iter_from(&self, start: usize) -> impl Iterator<Item = Key> + '_ {
        let (mut p, mut i) = if start >= self.len { (self.order.len(), 0) } else { self.fen_find(start) };
        std::iter::from_fn(move || {
            while p < self.order.len() {
                let id = self.order[p];
                if i < self.meta[id as usize].len as usize {
                    i += 1;
                    return Some(self.block(id).at(i - 1));
                }
                p += 1;
                i = 0;
            }
            None
        })
    }

    /// Replaces the content with `n` entries given in strictly increasing order (see [`lt`]).
    pub fn bulk_load(&mut self, n: usize, sorted: impl IntoIterator<Item = Key>, bo: &mut impl BlockOf) {
        *self = Tree::default();
        let nblocks = n.div_ceil(BULK_FILL);
        self.meta.reserve_exact(nblocks);
        self.order.reserve_exact(nblocks);
        let mut chunk: Vec<Key> = Vec::with_capacity(BULK_FILL);
        let flush = |t: &mut Tree, chunk: &mut Vec<Key>, bo: &mut _| {
            if chunk.is_empty() {
                return;
            }
            let id = t.new_block();
            t.order.push(id);
            t.lay_out(id, chunk, bo);
            t.firsts.push(chunk[0]);
            t.len += chunk.len();
            chunk.clear();
        };
        for k in sorted {
            chunk.push(k);
            if chunk.len() == BULK_FILL {
                flush(self, &mut chunk, bo);
            }
        }
        flush(self, &mut chunk, bo);
        self.reindex(0);
    }

    #[cfg(test)]
    pub fn check(&self, bo: &impl BlockOf) {
        let all: Vec<Key> = self.iter_from(0).collect();
        assert_eq!(all.len(), self.len);
        assert!(all.windows(2).all(|w| lt(w[0], w[1], bo)));
        for (g, k) in all.iter().enumerate() {
            assert_eq!(self.position(slot(*k), bo), (g, *k));
        }
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
                assert_eq!(bo.block_of(slot(b.kv[c])), (id, c), "a member's id entry names its cell");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic random stream for the tests below.
    fn lcg(seed: u64) -> impl FnMut() -> u64 {
        let mut x = seed;
        move || {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            x >> 33
        }
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
            let mut bo: Vec<(u32, u32)> = Vec::new();
            for s in 0..3000u32 {
                let key = if descending { 10_000 - s as u64 } else { s as u64 };
                t.insert(pack(key, 0, s), &mut bo);
                if s % 97 == 0 {
                    t.check(&bo);
                }
            }
            t.check(&bo);
            assert_eq!(t.len(), 3000);
        }
    }

    #[test]
    fn random_inserts_moves_and_removals_on_a_large_tree_keep_every_cell_exact() {
        let mut t = Tree::default();
        let mut bo: Vec<(u32, u32)> = Vec::new();
        let mut next = lcg(99);
        let mut rnd = move |n: u64| next() % n;
        let mut live: Vec<Option<Key>> = Vec::new();
        for step in 0..40_000u32 {
            let s = rnd(6000) as u32;
            // few distinct scores: long tie runs that cross block edges
            let k = pack(rnd(400), rnd(3), s);
            match live.get(s as usize).copied().flatten() {
                None if rnd(4) > 0 => {
                    if live.len() <= s as usize {
                        live.resize(s as usize + 1, None);
                    }
                    t.insert(k, &mut bo);
                    live[s as usize] = Some(k);
                }
                Some(old) if rnd(5) == 0 => {
                    assert_eq!(t.remove(s, &mut bo), old);
                    live[s as usize] = None;
                }
                Some(_) => {
                    t.update(s, k, &mut bo);
                    live[s as usize] = Some(k);
                }
                None => {}
            }
            if step % 4000 == 0 {
                t.check(&bo);
            }
        }
        t.check(&bo);
        let mut want: Vec<Key> = live.iter().flatten().copied().collect();
        want.sort_by(|a, b| cmp(*a, *b, &bo));
        assert_eq!(t.iter_from(0).collect::<Vec<_>>(), want);
        for (g, k) in want.iter().enumerate().step_by(37) {
            let st = t.standing(slot(*k), &bo);
            let better = want.partition_point(|j| j.0 < k.0);
            let not_worse = want.partition_point(|j| j.0 <= k.0);
            assert_eq!(st, (g, *k, better, not_worse));
        }
        // drain to empty: merges and dropped blocks
        for (s, k) in live.iter().enumerate() {
            if let Some(k) = k {
                assert_eq!(t.remove(s as u32, &mut bo), *k);
            }
        }
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn blocks_spill_split_and_merge_while_positions_stay_exact() {
        let mut t = Tree::default();
        let mut bo: Vec<(u32, u32)> = Vec::new();
        let mut rnd = lcg(12345);
        let mut keys = Vec::new();
        for s in 0..5000u32 {
            let k = pack(rnd() % 50, s as u64, s);
            t.insert(k, &mut bo);
            keys.push(k);
        }
        t.check(&bo);
        // moves, some inside their block, some across
        for s in (0..5000u32).step_by(3) {
            let k = pack(rnd() % 60, 10_000 + s as u64, s);
            t.update(s, k, &mut bo);
            keys[s as usize] = k;
        }
        t.check(&bo);
        keys.sort();
        for (g, k) in keys.iter().enumerate().step_by(97) {
            assert_eq!(t.position(slot(*k), &bo).0, g);
            assert_eq!(t.count_before(k.0, false), keys.partition_point(|j| j.0 < k.0));
            assert_eq!(t.count_before(k.0, true), keys.partition_point(|j| j.0 <= k.0));
            let st = t.standing(slot(*k), &bo);
            assert_eq!(
                st,
                (g, *k, keys.partition_point(|j| j.0 < k.0), keys.partition_point(|j| j.0 <= k.0))
            );
        }
        for k in keys.iter().filter(|k| !slot(**k).is_multiple_of(7)) {
            assert_eq!(t.remove(slot(*k), &mut bo), *k);
        }
        t.check(&bo);
        assert_eq!(t.len(), keys.iter().filter(|k| slot(**k).is_multiple_of(7)).count());
        let again: Vec<Key> = t.iter_from(0).collect();
        let mut u = Tree::default();
        u.bulk_load(again.len(), again.iter().copied(), &mut bo);
        u.check(&bo);
        assert_eq!(u.iter_from(3).collect::<Vec<_>>(), again[3..].to_vec());
    }
}
