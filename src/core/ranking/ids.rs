//! Member ids: where they are stored and how a member is found.
//!
//! A member's id lives in its cell of the order index (see `tree.rs`), as a
//! 16-byte *payload* beside its score: the id bytes themselves when the id
//! is at most 16 bytes and the board keeps no event times, else a reference
//! to a *record* in [`Arena`], a paged byte arena of `[ts: i64, only on
//! Op::Last boards][id bytes]` records padded to 4 bytes. The id length is
//! kept in the cell's key (its low bits, the *tag*), so a payload's bytes are
//! `Arena::bytes(payload, len)`.
//!
//! [`Index`] finds a member's cell from its id: an open-addressing hash table
//! (linear probing, backward-shift deletion) of `u32` entries, each a 7-bit
//! hash fingerprint and the member's location (block << 8 | cell). A lookup
//! reads its entry, then the cell, whose key, id and position bytes lie in
//! one block: two rounds of memory reads. When the tree moves a member to
//! another cell it reports the move, and the entry is found again by the
//! id's hash and the old location, and rewritten (when a batch of moves
//! reuses cells, two look-alike entries may swap: see `Members::moved` in
//! `mod.rs`).

const PAGE: usize = 1 << 16;
const UNIT: usize = 4;
const MAX_REC: usize = u32::MAX as usize / 2;
/// Largest hash index (far beyond what fits a Durable Object; small enough
/// for `* 10` on 32-bit targets).
const MAX_CAP: usize = 1 << 28;
/// Block ids fit in 17 bits of a location.
pub(crate) const MAX_BLOCKS: usize = 1 << 17;

/// A member's id as kept in its cell: inline bytes, or a record reference.
pub(crate) type Id16 = [u8; 16];

/// Where a member's entry is in the order index: `block << 8 | cell`.
pub(crate) type Loc = u32;

/// The location a member "moves from" when it enters the order index.
pub(crate) const NEW: Loc = u32::MAX;

const LOC_BITS: u32 = 25;
const LOC_MASK: u32 = (1 << LOC_BITS) - 1;

#[inline]
pub(crate) fn loc(block: u32, cell: usize) -> Loc {
    debug_assert!((block as usize) < MAX_BLOCKS && cell < 256);
    block << 8 | cell as u32
}

#[inline]
pub(crate) fn block_of(l: Loc) -> u32 {
    l >> 8
}

#[inline]
pub(crate) fn cell_of(l: Loc) -> usize {
    (l & 0xff) as usize
}

#[inline]
pub(crate) fn hash(b: &[u8], seed: u64) -> u64 {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    // Keyed: the seed (random per ranking in the Durable Object) goes into
    // the state before any byte and into the final mix, so clients, who
    // choose member ids, cannot aim ids at one probe run without it. Not a
    // cryptographic PRF; SipHash would cost ~15 ns more per op.
    let mut h = (b.len() as u64).wrapping_mul(K) ^ 0x243F_6A88_85A3_08D3 ^ seed;
    let mut c = b.chunks_exact(8);
    for w in &mut c {
        let w = u64::from_le_bytes(w.try_into().unwrap());
        h = (h ^ w).wrapping_mul(K).rotate_left(29);
    }
    let r = c.remainder();
    if !r.is_empty() {
        let mut t = [0u8; 8];
        t[..r.len()].copy_from_slice(r);
        h = (h ^ u64::from_le_bytes(t)).wrapping_mul(K).rotate_left(29);
    }
    h ^= (h >> 32) ^ seed.rotate_left(17);
    h = h.wrapping_mul(0xD6E8_FEB8_6659_FD93);
    h ^ (h >> 29)
}

/// Records for the ids that do not fit their cell (and, on `last` boards,
/// every member's event time).
#[derive(Clone, Default)]
pub(crate) struct Arena {
    /// The key of the id hash (`hash`): random per ranking in production.
    pub seed: u64,
    /// 0, or 8 when records keep an event time
    head: usize,
    pages: Vec<Vec<u8>>,
    /// freed records by size in units
    free: Vec<Vec<u32>>,
}

impl Arena {
    /// Records keep an event time only when `with_ts`.
    pub fn new(with_ts: bool) -> Arena {
        Arena { head: if with_ts { 8 } else { 0 }, ..Arena::default() }
    }

    /// Whether an id of `len` bytes is kept in a record rather than inline.
    #[inline]
    fn in_record(&self, len: usize) -> bool {
        self.head != 0 || len > 16
    }

    #[inline]
    fn units(&self, len: usize) -> usize {
        (self.head + len).div_ceil(UNIT)
    }

    /// Heap bytes held (capacity).
    #[cfg(test)]
    pub fn heap_bytes(&self) -> usize {
        self.pages.iter().map(|p| p.capacity()).sum()
    }

    #[inline]
    fn rec(pay: &Id16) -> usize {
        u32::from_le_bytes([pay[0], pay[1], pay[2], pay[3]]) as usize * UNIT
    }

    /// The record behind a payload: `[ts][id]`.
    #[inline]
    fn record(&self, pay: &Id16, len: usize) -> &[u8] {
        let off = Self::rec(pay);
        &self.pages[off / PAGE][off % PAGE..off % PAGE + self.head + len]
    }

    /// The id bytes of a member whose cell holds `pay`, of `len` bytes.
    #[inline]
    pub fn bytes<'a>(&'a self, pay: &'a Id16, len: usize) -> &'a [u8] {
        if self.in_record(len) {
            &self.record(pay, len)[self.head..]
        } else {
            &pay[..len]
        }
    }

    /// Reads the first line of the records behind those of these payloads
    /// that have one, so that a following pass finds them cached (see
    /// `Index::touch_table`).
    #[inline]
    pub fn touch<'a>(&self, pays: impl Iterator<Item = (&'a Id16, usize)>) {
        if self.pages.is_empty() {
            return;
        }
        let mut acc = 0u8;
        for (p, len) in pays.filter(|&(_, len)| self.in_record(len)) {
            acc ^= self.record(p, len)[0];
        }
        std::hint::black_box(acc);
    }

    /// The event time kept for a member (0 on boards that keep none).
    #[inline]
    pub fn ts(&self, pay: &Id16, len: usize) -> i64 {
        if self.head == 0 {
            return 0;
        }
        i64::from_le_bytes(self.record(pay, len)[..8].try_into().unwrap())
    }

    #[inline]
    pub fn set_ts(&mut self, pay: &Id16, ts: i64) {
        if self.head != 0 {
            let off = Self::rec(pay);
            self.pages[off / PAGE][off % PAGE..off % PAGE + 8].copy_from_slice(&ts.to_le_bytes());
        }
    }

    /// Whether another id of `len` bytes fits.
    pub fn has_room(&self, len: usize) -> bool {
        if !self.in_record(len) {
            return true;
        }
        let u = self.units(len);
        self.free.get(u).is_some_and(|f| !f.is_empty()) || self.pages.len() * (PAGE / UNIT) + u <= MAX_REC
    }

    /// The payload for a new member's id (1–128 bytes), with a record when it
    /// needs one.
    pub fn make(&mut self, id: &str, ts: i64) -> Id16 {
        let id = id.as_bytes();
        debug_assert!(!id.is_empty() && id.len() <= 128);
        let mut pay = [0u8; 16];
        if !self.in_record(id.len()) {
            pay[..id.len()].copy_from_slice(id);
            return pay;
        }
        let u = self.units(id.len());
        let rec = match self.free.get_mut(u).and_then(|f| f.pop()) {
            Some(s) => s,
            None => {
                let need = u * UNIT;
                if self.pages.last().is_none_or(|p| p.len() + need > PAGE) {
                    self.pages.push(Vec::with_capacity(PAGE));
                }
                let pi = self.pages.len() - 1;
                let page = &mut self.pages[pi];
                let rec = ((pi * PAGE + page.len()) / UNIT) as u32;
                page.resize(page.len() + need, 0);
                rec
            }
        };
        pay[..4].copy_from_slice(&rec.to_le_bytes());
        let off = rec as usize * UNIT;
        let head = self.head;
        self.pages[off / PAGE][off % PAGE + head..off % PAGE + head + id.len()].copy_from_slice(id);
        self.set_ts(&pay, ts);
        pay
    }

    /// Frees a departed member's record, if it had one, for a later id of
    /// the same size.
    pub fn release(&mut self, pay: &Id16, len: usize) {
        if !self.in_record(len) {
            return;
        }
        let u = self.units(len);
        if self.free.len() <= u {
            self.free.resize(u + 1, Vec::new());
        }
        self.free[u].push((Self::rec(pay) / UNIT) as u32);
    }
}

/// The hash index from member id to location (see the module doc).
#[derive(Clone, Default)]
pub(crate) struct Index {
    table: Vec<u32>,
    len: usize,
}

impl Index {
    #[inline]
    fn pos(&self, h: u64) -> usize {
        ((h as u128 * self.table.len() as u128) >> 64) as usize
    }

    /// 1..=127 from the hash's low bits (`pos` uses the high ones): never 0,
    /// so an entry is never 0, which marks a free one.
    #[inline]
    fn fp(h: u64) -> u32 {
        ((h & 0x7f) as u32).max(1) << LOC_BITS
    }

    #[inline]
    fn next(&self, i: usize) -> usize {
        if i + 1 == self.table.len() {
            0
        } else {
            i + 1
        }
    }

    /// Members held.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether inserting one more member needs a bigger table first.
    #[inline]
    pub fn is_full(&self) -> bool {
        (self.len + 1) * 10 > self.table.len() * 9
    }

    /// The table size to grow to from here.
    pub fn grown_cap(&self) -> usize {
        (self.table.len() * 3 / 2).clamp(16, MAX_CAP)
    }

    /// Whether another member fits at all.
    pub fn has_room(&self) -> bool {
        (self.len + 1) * 10 <= MAX_CAP * 9
    }

    /// The capacity that holds `n` members without growing.
    pub fn cap_for(n: usize) -> usize {
        (n * 10 / 9 + 16).min(MAX_CAP)
    }

    /// Replaces the table with one of `cap` entries holding the given
    /// members, `(hash of id, location)` (the same table, cleared, when it
    /// has that size).
    pub fn rebuild(&mut self, cap: usize, members: impl Iterator<Item = (u64, Loc)>) {
        if self.table.len() == cap {
            self.table.fill(0);
        } else {
            self.table = Vec::new();
            self.table = vec![0; cap];
        }
        self.len = 0;
        for (h, l) in members {
            self.place(h, l);
        }
    }

    /// Enters a member (not present) at location `l`; the table has room.
    #[inline]
    pub fn place(&mut self, h: u64, l: Loc) {
        debug_assert!(self.len < self.table.len());
        let mut i = self.pos(h);
        while self.table[i] != 0 {
            i = self.next(i);
        }
        self.table[i] = Self::fp(h) | l;
        self.len += 1;
    }

    /// Points entry `e` (of the member whose id hashes to `h`) at `l`.
    #[inline]
    pub fn set(&mut self, e: usize, h: u64, l: Loc) {
        self.table[e] = Self::fp(h) | l;
    }

    /// The member whose id hashes to `h` moved from `from` to `to`.
    #[inline]
    pub fn relocate(&mut self, h: u64, from: Loc, to: Loc) {
        let want = Self::fp(h) | from;
        let mut i = self.pos(h);
        loop {
            let e = self.table[i];
            debug_assert!(e != 0, "moved member {from:#x} is not in the index");
            if e == want || e == 0 {
                break;
            }
            i = self.next(i);
        }
        self.table[i] = Self::fp(h) | to;
    }

    /// The entries on `h`'s probe path whose fingerprint matches, as
    /// (entry index, location), in probe order, up to the first free entry.
    #[inline]
    pub fn probe(&self, h: u64) -> impl Iterator<Item = (usize, Loc)> + '_ {
        let fp = Self::fp(h);
        let cap = self.table.len();
        let mut i = if self.len == 0 { cap } else { self.pos(h) };
        std::iter::from_fn(move || {
            while i < cap {
                let e = self.table[i];
                if e == 0 {
                    return None;
                }
                let at = i;
                i = self.next(i);
                if e & !LOC_MASK == fp {
                    return Some((at, e & LOC_MASK));
                }
            }
            None
        })
    }

    /// The first location on `h`'s probe path whose fingerprint matches: the
    /// member's, unless the fingerprint matched another id or the member is
    /// new. Only a hint, for touching memory ahead.
    #[inline]
    pub fn candidate(&self, h: u64) -> Option<Loc> {
        self.probe(h).next().map(|(_, l)| l)
    }

    /// Reads the table line where each hash's probe starts, so that a
    /// following pass finds them cached; independent reads overlap their
    /// memory latency.
    pub fn touch_table(&self, hashes: &[u64]) {
        if self.table.is_empty() {
            return;
        }
        let mut acc = 0u32;
        for &h in hashes {
            acc ^= self.table[self.pos(h)];
        }
        std::hint::black_box(acc);
    }

    /// Forgets entry `i`; `hash_at` gives the id hash of the member at a
    /// location (for the entries after it, which may move back).
    pub fn remove(&mut self, i: usize, hash_at: impl Fn(Loc) -> u64) {
        let cap = self.table.len();
        // backward-shift deletion
        let mut hole = i;
        let mut j = hole;
        loop {
            j = self.next(j);
            let e = self.table[j];
            if e == 0 {
                break;
            }
            let ideal = self.pos(hash_at(e & LOC_MASK));
            let d_ideal = (j + cap - ideal) % cap;
            let d_hole = (j + cap - hole) % cap;
            if d_ideal >= d_hole {
                self.table[hole] = e;
                hole = j;
            }
        }
        self.table[hole] = 0;
        self.len -= 1;
    }

    /// Every location in the table (for checks).
    #[cfg(test)]
    pub fn locations(&self) -> Vec<Loc> {
        self.table.iter().filter(|&&e| e != 0).map(|e| e & LOC_MASK).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn short_ids_live_in_their_payload_and_long_ones_or_timed_ones_in_records() {
        let mut a = Arena::new(false);
        let p = a.make("sixteen-bytes-id", 5);
        assert_eq!(a.bytes(&p, 16), b"sixteen-bytes-id");
        assert_eq!(&p, b"sixteen-bytes-id", "inline");
        assert_eq!(a.heap_bytes(), 0);
        let long = "x".repeat(17);
        let q = a.make(&long, 5);
        assert_eq!(a.bytes(&q, 17), long.as_bytes());
        assert!(a.heap_bytes() > 0);
        assert_eq!(a.ts(&q, 17), 0, "no times kept");

        let mut t = Arena::new(true);
        let p = t.make("ab", 42);
        assert_eq!(t.bytes(&p, 2), b"ab");
        assert_eq!(t.ts(&p, 2), 42);
        t.set_ts(&p, 43);
        assert_eq!(t.ts(&p, 2), 43);
        t.release(&p, 2);
        let r = t.make("cd", 1);
        assert_eq!(&r[..4], &p[..4], "a freed record is reused by an id of its size");
        assert_eq!(t.bytes(&r, 2), b"cd");
        assert_eq!(t.ts(&r, 2), 1);
    }

    #[test]
    fn the_id_hash_depends_on_its_key() {
        let a = hash(b"member-1", 1);
        assert_ne!(a, hash(b"member-1", 2));
        assert_eq!(a, hash(b"member-1", 1));
        // Ids that share an index slot under one key are spread under another.
        let slot = |id: &str, seed: u64| hash(id.as_bytes(), seed) & 0xfff;
        let same: Vec<String> =
            (0..200_000).map(|i| format!("m{i}")).filter(|m| slot(m, 7) == slot("m0", 7)).collect();
        assert!(same.len() > 10);
        let spread: std::collections::HashSet<u64> = same.iter().map(|m| slot(m, 8)).collect();
        assert!(spread.len() > same.len() / 2, "{} of {}", spread.len(), same.len());
    }

    #[test]
    fn entries_are_found_moved_and_removed_with_the_others_still_reachable() {
        let names: Vec<String> = (0..5000).map(|i| format!("member-{i}")).collect();
        let hs: Vec<u64> = names.iter().map(|n| hash(n.as_bytes(), 0)).collect();
        let mut at: HashMap<Loc, usize> = HashMap::new();
        let mut ix = Index::default();
        for (i, &h) in hs.iter().enumerate() {
            if ix.is_full() {
                let cap = ix.grown_cap();
                let all: Vec<(u64, Loc)> = at.iter().map(|(&l, &m)| (hs[m], l)).collect();
                ix.rebuild(cap, all.into_iter());
            }
            let l = loc(i as u32 / 200, i % 200);
            ix.place(h, l);
            at.insert(l, i);
        }
        let find = |ix: &Index, at: &HashMap<Loc, usize>, m: usize| {
            ix.probe(hs[m]).find(|&(_, l)| at.get(&l) == Some(&m))
        };
        // move every third member somewhere new
        for m in (0..5000).step_by(3) {
            let (_, from) = find(&ix, &at, m).unwrap();
            let to = loc(100 + m as u32 / 200, m % 200);
            ix.relocate(hs[m], from, to);
            at.remove(&from);
            at.insert(to, m);
        }
        // remove every fifth
        for m in (0..5000).step_by(5) {
            let (i, l) = find(&ix, &at, m).unwrap();
            let hash_at = |l: Loc| hs[at[&l]];
            ix.remove(i, hash_at);
            at.remove(&l);
        }
        for m in 0..5000 {
            assert_eq!(find(&ix, &at, m).is_some(), m % 5 != 0, "member {m}");
        }
        let mut locs = ix.locations();
        locs.sort();
        let mut want: Vec<Loc> = at.keys().copied().collect();
        want.sort();
        assert_eq!(locs, want, "one entry per member, at its location");
    }
}
