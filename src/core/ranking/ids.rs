//! Interned members: an open-addressing hash index (linear probing,
//! backward-shift deletion) whose entries say where everything about a member
//! is, beside a paged byte arena of records that hold the id bytes once.
//!
//! A member's *slot* is its entry's index in the hash index. Each entry is one
//! `u64`: an 8-bit hash fingerprint, the id length (7 bits), the record's
//! offset in 4-byte units (24 bits), and the block (17 bits) and cell (8 bits)
//! of the member's entry in the order index. So once a lookup reaches a
//! member's slot, its record and its cell are two independent reads whose
//! cache misses overlap, not a chain. Slots move when the index grows or a
//! deletion shifts entries back; each move is reported (block, cell, new
//! slot) so the order index, which names members by slot, can follow.
//!
//! A record is `[ts: i64, only on Op::Last boards][id bytes]`, padded to 4
//! bytes: a 16-byte id takes 16 bytes. Records never move: their offset
//! (`Ids::record`) is the key for anything kept on the side, like metadata.
//! 24 bits of 4-byte units address 64 MiB of records, and 24-bit slots a
//! 16M-entry index: both beyond what fits in a Durable Object next to the rest.

const PAGE: usize = 1 << 16;
const UNIT: usize = 4;
const MAX_REC: usize = (1 << 24) - 2;
/// Largest hash index: slots are 24 bits in the order index's entries.
const MAX_CAP: usize = 1 << 24;
/// Block ids fit in 17 bits of an entry.
pub(crate) const MAX_BLOCKS: usize = 1 << 17;

// entry layout, low bits first
const CELL_BITS: u32 = 8;
const BLOCK_SHIFT: u32 = 8;
const BLOCK_MASK: u64 = (1 << 17) - 1;
const REC_SHIFT: u32 = 25;
const REC_MASK: u64 = (1 << 24) - 1;
const LEN_SHIFT: u32 = 49;
const FP_SHIFT: u32 = 56;
const LOC_MASK: u64 = (1 << REC_SHIFT) - 1;

#[inline]
pub(crate) fn hash(b: &[u8]) -> u64 {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut h = (b.len() as u64).wrapping_mul(K) ^ 0x243F_6A88_85A3_08D3;
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
    h ^= h >> 32;
    h = h.wrapping_mul(0xD6E8_FEB8_6659_FD93);
    h ^ (h >> 29)
}

/// Told of every slot that moves: `(block, cell, new slot)` of the member's
/// entry in the order index.
pub(crate) trait Moved: FnMut(u32, usize, u32) {}
impl<F: FnMut(u32, usize, u32)> Moved for F {}

#[derive(Clone, Default)]
pub(crate) struct Ids {
    /// 0, or 8 when records keep an event time
    head: usize,
    pages: Vec<Vec<u8>>,
    /// freed records by size in units
    free: Vec<Vec<u32>>,
    table: Vec<u64>,
    len: usize,
}

impl Ids {
    /// Records keep an event time only when `with_ts`.
    pub fn new(with_ts: bool) -> Ids {
        Ids { head: if with_ts { 8 } else { 0 }, ..Ids::default() }
    }

    #[inline]
    fn units(&self, id_len: usize) -> usize {
        (self.head + id_len).div_ceil(UNIT)
    }

    /// Heap bytes held (capacity).
    #[allow(dead_code)]
    pub fn heap_bytes(&self) -> usize {
        self.pages.iter().map(|p| p.capacity()).sum::<usize>() + self.table.capacity() * 8
    }

    #[inline]
    fn pos(&self, h: u64) -> usize {
        ((h as u128 * self.table.len() as u128) >> 64) as usize
    }

    #[inline]
    fn fp(h: u64) -> u64 {
        // the low bits: `pos` uses the high ones
        (h & 0xff) << FP_SHIFT
    }

    #[inline]
    fn rec_of(e: u64) -> u32 {
        ((e >> REC_SHIFT & REC_MASK) - 1) as u32
    }

    #[inline]
    fn len_of(e: u64) -> usize {
        (e >> LEN_SHIFT & 0x7f) as usize + 1
    }

    /// Where the record behind an entry lies: its page and byte range there.
    #[inline]
    fn span(&self, e: u64) -> (usize, std::ops::Range<usize>) {
        let off = Self::rec_of(e) as usize * UNIT;
        (off / PAGE, off % PAGE..off % PAGE + self.head + Self::len_of(e))
    }

    /// The record behind an entry: `[ts][id]`.
    #[inline]
    fn rec_bytes(&self, e: u64) -> &[u8] {
        let (page, at) = self.span(e);
        &self.pages[page][at]
    }

    #[inline]
    fn rec_mut(&mut self, e: u64) -> &mut [u8] {
        let (page, at) = self.span(e);
        &mut self.pages[page][at]
    }

    #[inline]
    fn entry_bytes(&self, e: u64) -> &[u8] {
        &self.rec_bytes(e)[self.head..]
    }

    #[inline]
    pub fn bytes(&self, slot: u32) -> &[u8] {
        self.entry_bytes(self.table[slot as usize])
    }

    /// The member's record: it never moves while the member is on the board,
    /// so it keys what is kept on the side (slots move).
    #[inline]
    pub fn record(&self, slot: u32) -> u32 {
        Self::rec_of(self.table[slot as usize])
    }

    /// Reads the given slots' entries, then their records' first line, so
    /// that a following pass finds them cached; independent touches overlap
    /// their memory latency.
    #[inline]
    pub fn touch(&self, slots: impl Iterator<Item = u32> + Clone) {
        let mut acc = 0u64;
        for s in slots.clone() {
            acc ^= self.table[s as usize];
        }
        for s in slots {
            acc ^= self.bytes(s)[0] as u64;
        }
        std::hint::black_box(acc);
    }

    /// Reads the hash index line where each hash's probe starts (see `touch`).
    pub fn touch_table(&self, hashes: &[u64]) {
        if self.table.is_empty() {
            return;
        }
        let mut acc = 0u64;
        for &h in hashes {
            acc ^= self.table[self.pos(h)];
        }
        std::hint::black_box(acc);
    }

    /// The first slot on `h`'s probe path whose fingerprint matches: the
    /// member's, unless the fingerprint matched another id (1 in 256) or the
    /// member is new. Only a hint for `touch`: [`Ids::find`] compares the bytes.
    pub fn candidate(&self, h: u64) -> Option<u32> {
        self.probe(h).next()
    }

    /// The slots on `h`'s probe path whose fingerprint matches, in probe
    /// order, up to the first empty entry.
    #[inline]
    fn probe(&self, h: u64) -> impl Iterator<Item = u32> + '_ {
        let fp = Self::fp(h);
        let cap = self.table.len();
        let mut i = if self.len == 0 { cap } else { self.pos(h) };
        std::iter::from_fn(move || {
            while i < cap {
                let e = self.table[i];
                if e == 0 {
                    return None;
                }
                let at = i as u32;
                i = if i + 1 == cap { 0 } else { i + 1 };
                if e & (0xff << FP_SHIFT) == fp {
                    return Some(at);
                }
            }
            None
        })
    }

    #[inline]
    pub fn str(&self, slot: u32) -> &str {
        // SAFETY: records are only filled by `insert`, from a whole `&str`.
        unsafe { std::str::from_utf8_unchecked(self.bytes(slot)) }
    }

    #[inline]
    pub fn ts(&self, slot: u32) -> i64 {
        if self.head == 0 {
            return 0;
        }
        i64::from_le_bytes(self.rec_bytes(self.table[slot as usize])[..8].try_into().unwrap())
    }

    #[inline]
    pub fn set_ts(&mut self, slot: u32, ts: i64) {
        if self.head != 0 {
            let e = self.table[slot as usize];
            self.rec_mut(e)[..8].copy_from_slice(&ts.to_le_bytes());
        }
    }

    #[inline]
    pub fn find(&self, id: &[u8]) -> Option<u32> {
        self.find_hashed(id, hash(id))
    }

    /// [`Ids::find`] given `hash(id)`, for a caller that already has it.
    #[inline]
    pub fn find_hashed(&self, id: &[u8], h: u64) -> Option<u32> {
        self.probe(h).find(|&slot| {
            let e = self.table[slot as usize];
            Self::len_of(e) == id.len() && self.entry_bytes(e) == id
        })
    }

    /// Makes room in the hash index for `n` members without growing it again.
    pub fn reserve(&mut self, n: usize, moved: &mut impl Moved) {
        let want = (n * 10 / 9 + 16).min(MAX_CAP);
        if want > self.table.len() {
            self.rehash(want, moved);
        }
    }

    fn rehash(&mut self, cap: usize, moved: &mut impl Moved) {
        let old = std::mem::take(&mut self.table);
        self.table = vec![0; cap];
        for e in old {
            if e != 0 {
                let slot = self.place(e, hash(self.entry_bytes(e)));
                moved(block(e), cell(e), slot);
            }
        }
    }

    /// Puts entry `e` (its fingerprint included) on `h`'s probe path; returns its slot.
    #[inline]
    fn place(&mut self, e: u64, h: u64) -> u32 {
        let cap = self.table.len();
        let mut i = self.pos(h);
        while self.table[i] != 0 {
            i += 1;
            if i == cap {
                i = 0;
            }
        }
        self.table[i] = e;
        i as u32
    }

    /// Whether another id of `len` bytes fits.
    pub fn has_room(&self, len: usize) -> bool {
        let u = self.units(len);
        let records = self.free.get(u).is_some_and(|f| !f.is_empty())
            || self.pages.len() * (PAGE / UNIT) + u <= MAX_REC;
        records && (self.len + 1) * 10 <= MAX_CAP * 9
    }

    /// Interns an id (1–128 bytes) that is not present; returns its slot. Its
    /// block and cell read 0 until [`BlockOf::set_block_of`] sets them.
    /// Growing the index moves every other slot (see [`Moved`]).
    ///
    /// [`BlockOf::set_block_of`]: super::tree::BlockOf::set_block_of
    pub fn insert(&mut self, id: &str, ts: i64, moved: &mut impl Moved) -> u32 {
        let id = id.as_bytes();
        debug_assert!(!id.is_empty() && id.len() <= 128);
        if (self.len + 1) * 10 > self.table.len() * 9 {
            let cap = (self.table.len() * 3 / 2).clamp(16, MAX_CAP);
            self.rehash(cap, moved);
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
        assert!((rec as usize) <= MAX_REC, "member arena is full");
        let h = hash(id);
        let e = Self::fp(h) | (id.len() as u64 - 1) << LEN_SHIFT | (rec as u64 + 1) << REC_SHIFT;
        let head = self.head;
        let r = self.rec_mut(e);
        r[head..].copy_from_slice(id);
        let slot = self.place(e, h);
        self.set_ts(slot, ts);
        self.len += 1;
        slot
    }

    /// Forgets a member; its record is reused by a later id of the same size.
    /// The entries after it on its probe path may move back (see [`Moved`]).
    pub fn remove(&mut self, slot: u32, moved: &mut impl Moved) {
        let cap = self.table.len();
        let gone = self.table[slot as usize];
        // backward-shift deletion
        let mut hole = slot as usize;
        let mut j = hole;
        loop {
            j += 1;
            if j == cap {
                j = 0;
            }
            let e = self.table[j];
            if e == 0 {
                break;
            }
            let ideal = self.pos(hash(self.entry_bytes(e)));
            let d_ideal = (j + cap - ideal) % cap;
            let d_hole = (j + cap - hole) % cap;
            if d_ideal >= d_hole {
                self.table[hole] = e;
                moved(block(e), cell(e), hole as u32);
                hole = j;
            }
        }
        self.table[hole] = 0;
        let u = self.units(Self::len_of(gone));
        if self.free.len() <= u {
            self.free.resize(u + 1, Vec::new());
        }
        self.free[u].push(Self::rec_of(gone));
        self.len -= 1;
    }
}

#[inline]
fn block(e: u64) -> u32 {
    (e >> BLOCK_SHIFT & BLOCK_MASK) as u32
}

#[inline]
fn cell(e: u64) -> usize {
    (e & ((1 << CELL_BITS) - 1)) as usize
}

impl super::tree::BlockOf for Ids {
    #[inline]
    fn block_of(&self, slot: u32) -> (u32, usize) {
        let e = self.table[slot as usize];
        (block(e), cell(e))
    }
    #[inline]
    fn set_block_of(&mut self, slot: u32, block: u32, index: usize) {
        debug_assert!((block as usize) < MAX_BLOCKS && index < 256);
        let e = &mut self.table[slot as usize];
        *e = *e & !LOC_MASK | (block as u64) << BLOCK_SHIFT | index as u64;
    }
    #[inline]
    fn id_cmp(&self, a: u32, b: u32) -> std::cmp::Ordering {
        self.bytes(a).cmp(self.bytes(b))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tree::BlockOf;
    use super::*;
    use std::collections::HashMap;

    /// Interns `names`, giving member `i` the location (i, i % 256), and
    /// keeps a location → slot map up to date from the reported moves.
    fn interned(names: &[String]) -> (Ids, HashMap<(u32, usize), u32>) {
        let mut ids = Ids::new(true);
        let mut at: HashMap<(u32, usize), u32> = HashMap::new();
        for (i, n) in names.iter().enumerate() {
            let s = ids.insert(n, i as i64, &mut |b, c, s| {
                at.insert((b, c), s);
            });
            let loc = (i as u32, i % 256);
            ids.set_block_of(s, loc.0, loc.1);
            at.insert(loc, s);
        }
        (ids, at)
    }

    #[test]
    fn interned_ids_are_found_again_and_removal_keeps_the_others_reachable() {
        let names: Vec<String> = (0..5000).map(|i| format!("member-{i}").repeat(1 + i % 9)).collect();
        let (mut ids, mut at) = interned(&names);
        for (i, n) in names.iter().enumerate() {
            let s = ids.find(n.as_bytes()).unwrap();
            assert_eq!(ids.str(s), n);
            assert_eq!(ids.ts(s), i as i64);
            assert_eq!(at[&(i as u32, i % 256)], s, "every move was reported");
        }
        let records: Vec<u32> = names.iter().map(|n| ids.record(ids.find(n.as_bytes()).unwrap())).collect();
        for (i, n) in names.iter().enumerate() {
            if i % 3 == 0 {
                let s = ids.find(n.as_bytes()).unwrap();
                ids.remove(s, &mut |b, c, s| {
                    at.insert((b, c), s);
                });
            }
        }
        for (i, n) in names.iter().enumerate() {
            let s = ids.find(n.as_bytes());
            if i % 3 == 0 {
                assert_eq!(s, None);
                continue;
            }
            let s = s.unwrap();
            assert_eq!(at[&(i as u32, i % 256)], s, "every shift back was reported");
            assert_eq!(ids.block_of(s), (i as u32, i % 256));
            assert_eq!(ids.record(s), records[i], "records stay put");
            assert_eq!(ids.ts(s), i as i64);
        }
        assert_eq!(ids.find(b"nobody"), None);
        let s = ids.insert("member-0", 7, &mut |_, _, _| ());
        assert!(records.iter().step_by(3).any(|r| *r == ids.record(s)), "a freed record is reused");
        assert_eq!(ids.find(b"member-0"), Some(s));
        assert_eq!(ids.ts(s), 7);
    }

    #[test]
    fn an_id_that_is_a_prefix_of_another_is_a_different_member() {
        let mut ids = Ids::new(false);
        let a = ids.insert("abcd", 0, &mut |_, _, _| ());
        let b = ids.insert("abc", 0, &mut |_, _, _| ());
        assert_ne!(a, b);
        assert_eq!(ids.find(b"abcd"), Some(a));
        assert_eq!(ids.find(b"abc"), Some(b));
        assert_eq!(ids.find(b"ab"), None);
    }
}
