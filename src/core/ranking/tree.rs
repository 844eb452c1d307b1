//! An order-statistic index: a sorted sequence of fixed-capacity blocks (a
//! two-level B+tree) whose block counts live in a Fenwick tree, so position
//! and rank queries are O(log n) and an insert moves at most one block's tail.
//!
//! Entries are 16 bytes, `(key, reach << 24 | slot)`, in `(key, reach, member
//! id bytes)` order, all unique (ids are unique). `key` is the score mapped to
//! a `u64` whose ascending order is "better first", `reach` the 40-bit time the
//! member reached it (see `mod.rs`), `slot` (24 bits) the member's record. Slots
//! are not in id order, so entries equal on `(key, reach)` are ordered by
//! comparing the ids ([`BlockOf::id_cmp`]); that only happens on such ties, so
//! the common comparison stays two integer compares. Each block is one
//! allocation: 4 KiB of entries and one tag byte (a hash of the slot) per entry.
//! The block id holding each member is kept by the caller (`BlockOf`), so a
//! member is found without knowing its score.
//! A full block first spills into a neighbour with room (B*-tree style) and
//! only splits when both are (nearly) full, which keeps blocks ~85% full.

pub(crate) const CAP: usize = 256;
const BULK_FILL: usize = CAP * 15 / 16;

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

/// Where the tree records which block holds a member, with a hint of its
/// index there (exact when it was placed; later inserts and removals in the
/// block let it drift, so lookups search around it).
pub(crate) trait BlockOf {
    fn block_of(&self, slot: u32) -> (u32, usize);
    fn set_block_of(&mut self, slot: u32, block: u32, index: usize);
    fn set_hint(&mut self, slot: u32, index: usize);
    /// Order of two members' id bytes.
    fn id_cmp(&self, a: u32, b: u32) -> std::cmp::Ordering;
}

impl BlockOf for Vec<u32> {
    fn block_of(&self, slot: u32) -> (u32, usize) {
        (self[slot as usize], 0)
    }
    fn set_block_of(&mut self, slot: u32, block: u32, _index: usize) {
        if self.len() <= slot as usize {
            self.resize(slot as usize + 1, u32::MAX);
        }
        self[slot as usize] = block;
    }
    fn set_hint(&mut self, _slot: u32, _index: usize) {}
    /// Test double: the id order is the slot order.
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

/// One byte of a slot's hash: a block keeps one per entry, so a member whose
/// index hint went stale is found by scanning 256 bytes, not 4 KiB of entries.
#[inline]
fn tag(slot: u32) -> u8 {
    (slot.wrapping_mul(0x9E37_79B1) >> 24) as u8
}

struct Block {
    kv: [Key; CAP],
    tags: [u8; CAP],
}

impl Block {
    fn new() -> Box<Block> {
        Box::new(Block { kv: [(0, 0); CAP], tags: [0; CAP] })
    }
    #[inline]
    fn key(&self, i: usize) -> Key {
        self.kv[i]
    }
    #[inline]
    fn set(&mut self, i: usize, k: Key) {
        self.kv[i] = k;
        self.tags[i] = tag(slot(k));
    }
    #[inline]
    fn copy_within(&mut self, src: std::ops::Range<usize>, dst: usize) {
        self.kv.copy_within(src.clone(), dst);
        self.tags.copy_within(src, dst);
    }
    /// Copies entries `src` of `from` to index `dst` of `self`.
    #[inline]
    fn copy_from(&mut self, dst: usize, from: &Block, src: std::ops::Range<usize>) {
        self.kv[dst..dst + src.len()].copy_from_slice(&from.kv[src.clone()]);
        self.tags[dst..dst + src.len()].copy_from_slice(&from.tags[src]);
    }
    /// Whether entry `i` sorts before `k`.
    #[inline]
    fn less(&self, i: usize, k: Key, bo: &impl BlockOf) -> bool {
        lt(self.kv[i], k, bo)
    }
    /// First index whose entry is not less than `k` (among the first `n`).
    #[inline]
    fn lower_bound(&self, n: usize, k: Key, bo: &impl BlockOf) -> usize {
        let (mut lo, mut hi) = (0, n);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if self.less(mid, k, bo) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }
    /// Number of entries (among the first `n`) whose score key is < `k` (or <= when `inclusive`).
    #[inline]
    fn count_keys(&self, n: usize, k: u64, inclusive: bool) -> usize {
        self.kv[..n].partition_point(|&(x, _)| x < k || (inclusive && x == k))
    }
    /// Index of `slot`: at `hint` (exact unless later moves in the block
    /// shifted it), next to it, else by its tag.
    #[inline]
    fn find_slot_near(&self, n: usize, slot: u32, hint: usize) -> usize {
        let h = hint.min(n.saturating_sub(1));
        if self::slot(self.kv[h]) == slot {
            return h;
        }
        self.find_slot(n, slot)
    }
    #[inline]
    fn find_slot(&self, n: usize, slot: u32) -> usize {
        let t = tag(slot);
        let mut base = 0;
        for c in self.tags[..n].chunks(32) {
            // a whole chunk compared at once: vectorizes
            let mut m = c.iter().enumerate().fold(0u32, |m, (j, &x)| m | ((x == t) as u32) << j);
            while m != 0 {
                let i = base + m.trailing_zeros() as usize;
                if self::slot(self.kv[i]) == slot {
                    return i;
                }
                m &= m - 1;
            }
            base += c.len();
        }
        unreachable!("slot not in its block")
    }
}

#[derive(Default)]
pub(crate) struct Tree {
    blocks: Vec<Option<Box<Block>>>,
    lens: Vec<u32>,
    free_ids: Vec<u32>,
    /// block ids by position
    order: Vec<u32>,
    /// block id -> position
    pos: Vec<u32>,
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
        self.free_ids.len() + super::ids::MAX_BLOCKS > self.blocks.len() + 1
    }

    #[inline]
    fn block(&self, id: u32) -> &Block {
        self.blocks[id as usize].as_deref().unwrap()
    }

    #[inline]
    fn block_mut(&mut self, id: u32) -> &mut Block {
        self.blocks[id as usize].as_deref_mut().unwrap()
    }

    fn new_block(&mut self) -> u32 {
        match self.free_ids.pop() {
            Some(id) => {
                self.blocks[id as usize] = Some(Block::new());
                self.lens[id as usize] = 0;
                id
            }
            None => {
                self.blocks.push(Some(Block::new()));
                self.lens.push(0);
                self.pos.push(0);
                (self.blocks.len() - 1) as u32
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

    /// Rebuilds positions, firsts and the Fenwick tree after the block sequence changed.
    fn reindex(&mut self) {
        let m = self.order.len();
        self.fen.clear();
        self.fen.resize(m + 1, 0);
        self.firsts.clear();
        for (p, &id) in self.order.iter().enumerate() {
            self.pos[id as usize] = p as u32;
            self.fen[p + 1] = self.lens[id as usize];
            self.firsts.push(self.blocks[id as usize].as_deref().unwrap().key(0));
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
        self.lens[self.order[p] as usize] as usize
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
            self.block_mut(id).set(0, k);
            self.lens[id as usize] = 1;
            bo.set_block_of(slot(k), id, 0);
            self.len = 1;
            self.reindex();
            return;
        }
        let mut p = self.block_for(k, bo);
        if self.len_at(p) == CAP {
            self.make_room(p, bo);
            p = self.block_for(k, bo);
            near_end = None;
        }
        let id = self.order[p];
        let n = self.lens[id as usize] as usize;
        let b = self.block_mut(id);
        let i = match near_end {
            None => b.lower_bound(n, k, bo),
            Some(true) => partition_near(n, n, |x| b.less(x, k, bo)),
            Some(false) => partition_near(n, 0, |x| b.less(x, k, bo)),
        };
        b.copy_within(i..n, i + 1);
        b.set(i, k);
        self.lens[id as usize] += 1;
        bo.set_block_of(slot(k), id, i);
        if i == 0 {
            self.firsts[p] = k;
        }
        self.fen_add(p, 1);
        self.len += 1;
    }

    /// Moves `cnt` entries from the end of block `p` to the front of block `p + 1`.
    fn shift_right(&mut self, p: usize, cnt: usize, bo: &mut impl BlockOf) {
        let (lid, rid) = (self.order[p], self.order[p + 1]);
        let (ln, rn) = (self.lens[lid as usize] as usize, self.lens[rid as usize] as usize);
        let mut r = self.blocks[rid as usize].take().unwrap();
        let l = self.block(lid);
        r.copy_within(0..rn, cnt);
        r.copy_from(0, l, ln - cnt..ln);
        for (x, &k) in r.kv[..cnt].iter().enumerate() {
            bo.set_block_of(slot(k), rid, x);
        }
        self.firsts[p + 1] = r.key(0);
        self.blocks[rid as usize] = Some(r);
        self.lens[lid as usize] -= cnt as u32;
        self.lens[rid as usize] += cnt as u32;
        self.fen_add(p, -(cnt as i32));
        self.fen_add(p + 1, cnt as i32);
    }

    /// Moves `cnt` entries from the front of block `p` to the end of block `p - 1`.
    fn shift_left(&mut self, p: usize, cnt: usize, bo: &mut impl BlockOf) {
        let (lid, rid) = (self.order[p - 1], self.order[p]);
        let (ln, rn) = (self.lens[lid as usize] as usize, self.lens[rid as usize] as usize);
        let mut l = self.blocks[lid as usize].take().unwrap();
        let r = self.block_mut(rid);
        l.copy_from(ln, r, 0..cnt);
        r.copy_within(cnt..rn, 0);
        let first = r.key(0);
        for (x, &k) in l.kv[ln..ln + cnt].iter().enumerate() {
            bo.set_block_of(slot(k), lid, ln + x);
        }
        self.blocks[lid as usize] = Some(l);
        self.firsts[p] = first;
        self.lens[lid as usize] += cnt as u32;
        self.lens[rid as usize] -= cnt as u32;
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
        let nid = self.new_block();
        let half = CAP / 2;
        let mut b = self.blocks[nid as usize].take().unwrap();
        let a = self.block(id);
        b.copy_from(0, a, half..CAP);
        for (x, &k) in b.kv[..CAP - half].iter().enumerate() {
            bo.set_block_of(slot(k), nid, x);
        }
        self.blocks[nid as usize] = Some(b);
        self.lens[id as usize] = half as u32;
        self.lens[nid as usize] = (CAP - half) as u32;
        self.order.insert(p + 1, nid);
        self.reindex();
    }

    fn drop_block(&mut self, p: usize) {
        let id = self.order.remove(p);
        self.blocks[id as usize] = None;
        self.lens[id as usize] = 0;
        self.free_ids.push(id);
    }

    /// Removes a member's entry; returns its key.
    pub fn remove(&mut self, slot: u32, bo: &mut impl BlockOf) -> Key {
        let (id, hint) = bo.block_of(slot);
        let p = self.pos[id as usize] as usize;
        let n = self.lens[id as usize] as usize;
        let b = self.block_mut(id);
        let i = b.find_slot_near(n, slot, hint);
        let k = b.key(i);
        b.copy_within(i + 1..n, i);
        let first = b.key(0);
        let n = n - 1;
        self.lens[id as usize] = n as u32;
        self.len -= 1;
        if n == 0 {
            self.drop_block(p);
            self.reindex();
            return k;
        }
        if i == 0 {
            self.firsts[p] = first;
        }
        self.fen_add(p, -1);
        if n < CAP / 4 {
            self.maybe_merge(p, bo);
        }
        k
    }

    /// Replaces a member's key; stays inside its block when the new key belongs there.
    pub fn update(&mut self, slot: u32, k: Key, bo: &mut impl BlockOf) {
        let (id, hint) = bo.block_of(slot);
        let p = self.pos[id as usize] as usize;
        let n = self.lens[id as usize] as usize;
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
        let b = self.block_mut(id);
        let i = b.find_slot_near(n, slot, hint);
        let old = b.kv[i];
        // Scores spread evenly within a block, so the new index is guessed by
        // interpolating keys (the block's edges come from `firsts`, in cache);
        // the search then starts at the guess, not at a walk over every line.
        let guess = |from: u64, to: u64, len: usize| -> usize {
            if to <= from {
                return 0;
            }
            let f = k.0.saturating_sub(from).min(to - from) as f64 / (to - from) as f64;
            (f * len as f64) as usize
        };
        let at = if lt(k, old, bo) {
            let j = partition_near(i, guess(lo_key, old.0, i), |x| lt(b.kv[x], k, bo));
            b.copy_within(j..i, j + 1);
            j
        } else {
            let m = n - i - 1;
            let g = match hi_key {
                Some(h) => guess(old.0, h, m + 1),
                None => 0,
            };
            let j = i + 1 + partition_near(m, g, |x| lt(b.kv[i + 1 + x], k, bo));
            b.copy_within(i + 1..j, i);
            j - 1
        };
        b.set(at, k);
        self.firsts[p] = b.key(0);
        bo.set_hint(slot, at);
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
        let ln = self.lens[lid as usize] as usize;
        let rn = self.lens[rid as usize] as usize;
        let rb = self.blocks[rid as usize].take().unwrap();
        let lb = self.block_mut(lid);
        lb.copy_from(ln, &rb, 0..rn);
        for (x, &k) in rb.kv[..rn].iter().enumerate() {
            bo.set_block_of(slot(k), lid, ln + x);
        }
        self.lens[lid as usize] = (ln + rn) as u32;
        self.blocks[rid as usize] = Some(rb);
        self.drop_block(right);
        self.reindex();
    }

    /// The key of a member's entry.
    #[inline]
    pub fn key_of(&self, slot: u32, bo: &impl BlockOf) -> Key {
        let (id, hint) = bo.block_of(slot);
        let b = self.block(id);
        b.key(b.find_slot_near(self.lens[id as usize] as usize, slot, hint))
    }

    /// 0-based position of a member in the order, with its key.
    #[inline]
    pub fn position(&self, slot: u32, bo: &impl BlockOf) -> (usize, Key) {
        let (id, hint) = bo.block_of(slot);
        let p = self.pos[id as usize] as usize;
        let b = self.block(id);
        let i = b.find_slot_near(self.lens[id as usize] as usize, slot, hint);
        (self.fen_prefix(p) + i, b.key(i))
    }

    /// A member's 0-based position, key, and the numbers of entries with a
    /// strictly better score key and with a not-worse one. Answers from the
    /// member's own block unless its tie group crosses the block's edge.
    #[inline]
    pub fn standing(&self, slot: u32, bo: &impl BlockOf) -> (usize, Key, usize, usize) {
        let (id, hint) = bo.block_of(slot);
        let p = self.pos[id as usize] as usize;
        let b = self.block(id);
        let n = self.lens[id as usize] as usize;
        let i = b.find_slot_near(n, slot, hint);
        let k = b.key(i);
        let before = self.fen_prefix(p);
        let c = partition_near(n, i, |x| b.kv[x].0 < k.0);
        let better = if c > 0 || p == 0 { before + c } else { self.count_before(k.0, false) };
        let c = partition_near(n, i, |x| b.kv[x].0 <= k.0);
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
        self.fen_prefix(pp - 1) + self.block(id).count_keys(self.lens[id as usize] as usize, k, inclusive)
    }

    /// Entries in order from global index `start`.
    pub fn iter_from(&self, start: usize) -> impl Iterator<Item = Key> + '_ {
        let (mut p, mut i) = if start >= self.len { (self.order.len(), 0) } else { self.fen_find(start) };
        std::iter::from_fn(move || {
            while p < self.order.len() {
                let id = self.order[p];
                if i < self.lens[id as usize] as usize {
                    i += 1;
                    return Some(self.block(id).key(i - 1));
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
        self.blocks.reserve_exact(nblocks);
        self.lens.reserve_exact(nblocks);
        self.pos.reserve_exact(nblocks);
        self.order.reserve_exact(nblocks);
        let mut cur: Option<u32> = None;
        for k in sorted {
            let id = match cur {
                Some(id) if (self.lens[id as usize] as usize) < BULK_FILL => id,
                _ => {
                    let id = self.new_block();
                    self.order.push(id);
                    cur = Some(id);
                    id
                }
            };
            let n = self.lens[id as usize] as usize;
            self.block_mut(id).set(n, k);
            self.lens[id as usize] += 1;
            bo.set_block_of(slot(k), id, n);
            self.len += 1;
        }
        self.reindex();
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
            assert_eq!(self.firsts[p], self.block(id).key(0));
            assert_eq!(self.fen_prefix(p + 1) - self.fen_prefix(p), self.lens[id as usize] as usize);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn blocks_spill_split_and_merge_while_positions_stay_exact() {
        let mut t = Tree::default();
        let mut bo: Vec<u32> = Vec::new();
        let mut x = 12345u64;
        let mut rnd = move || {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            x >> 33
        };
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
