//! Interned members: one record per member in a paged byte arena,
//! `[head: u32][ts: i64, only for `Op::Last`][id bytes]`, padded to 4 bytes,
//! where `head` packs the id length (7 bits), the cell of the member's entry
//! in its block of the order index (8 bits) and that block's id (17 bits),
//! always exact. A member's slot is its record's offset in 4-byte units, so
//! the id and where its entry lives share one cache line. A 16-byte id takes a
//! 20-byte record.
//!
//! An open-addressing hash index (linear probing, backward-shift deletion) maps
//! id bytes to slots. Each index entry is one `u32`: an 8-bit hash fingerprint
//! and `slot + 1` in the low 24 bits, so a probe only touches the arena when
//! the fingerprint matches. 24 bits of 4-byte units address 64 MiB of records
//! (about 3M members with 16-byte ids), beyond what fits in a Durable Object
//! next to the rest of the index.

const PAGE: usize = 1 << 16;
const UNIT: usize = 4;
const SLOT_BITS: u32 = 24;
const SLOT_MASK: u32 = (1 << SLOT_BITS) - 1;
const MAX_SLOT: usize = SLOT_MASK as usize - 1;
/// Block ids fit in 17 bits of the record head.
pub(crate) const MAX_BLOCKS: usize = 1 << 17;

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

#[derive(Clone, Default)]
pub(crate) struct Ids {
    /// 4, or 12 when records keep an event time
    head: usize,
    pages: Vec<Vec<u8>>,
    /// freed records by size in units
    free: Vec<Vec<u32>>,
    table: Vec<u32>,
    len: usize,
}

impl Ids {
    /// Records keep an event time only when `with_ts`.
    pub fn new(with_ts: bool) -> Ids {
        Ids { head: if with_ts { 12 } else { 4 }, ..Ids::default() }
    }

    #[inline]
    fn units(&self, id_len: usize) -> usize {
        (self.head + id_len).div_ceil(UNIT)
    }

    #[inline]
    fn head_of(&self, slot: u32) -> u32 {
        u32::from_le_bytes(self.rec(slot)[..4].try_into().unwrap())
    }

    #[inline]
    fn set_head(&mut self, slot: u32, h: u32) {
        self.rec_mut(slot)[..4].copy_from_slice(&h.to_le_bytes());
    }

    /// Heap bytes held (capacity).
    #[allow(dead_code)]
    pub fn heap_bytes(&self) -> usize {
        self.pages.iter().map(|p| p.capacity()).sum::<usize>() + self.table.capacity() * 4
    }

    #[inline]
    fn pos(&self, h: u64) -> usize {
        ((h as u128 * self.table.len() as u128) >> 64) as usize
    }

    #[inline]
    fn fp(h: u64) -> u32 {
        (h as u32 & 0xff) << SLOT_BITS
    }

    #[inline]
    fn rec(&self, slot: u32) -> &[u8] {
        let off = slot as usize * UNIT;
        &self.pages[off / PAGE][off % PAGE..]
    }

    #[inline]
    fn rec_mut(&mut self, slot: u32) -> &mut [u8] {
        let off = slot as usize * UNIT;
        &mut self.pages[off / PAGE][off % PAGE..]
    }

    #[inline]
    pub fn bytes(&self, slot: u32) -> &[u8] {
        let r = self.rec(slot);
        let len = (r[0] & 0x7f) as usize + 1;
        &r[self.head..self.head + len]
    }

    /// Reads a record's first line so that a following pass finds it cached;
    /// independent touches overlap their memory latency.
    #[inline]
    pub fn touch(&self, slots: impl Iterator<Item = u32>) {
        let mut acc = 0u8;
        for s in slots {
            acc ^= self.rec(s)[0];
        }
        std::hint::black_box(acc);
    }

    /// Reads the hash index line where each hash's probe starts (see `touch`).
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

    /// The slot of the first entry on `h`'s probe path whose fingerprint
    /// matches: the member's record, unless the fingerprint matched another
    /// id (1 in 256) or the member is new. Only a hint for `touch`: [`Ids::find`]
    /// compares the bytes.
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
                i = if i + 1 == cap { 0 } else { i + 1 };
                if e & !SLOT_MASK == fp {
                    return Some((e & SLOT_MASK) - 1);
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
        if self.head == 4 {
            return 0;
        }
        i64::from_le_bytes(self.rec(slot)[4..12].try_into().unwrap())
    }

    #[inline]
    pub fn set_ts(&mut self, slot: u32, ts: i64) {
        if self.head != 4 {
            self.rec_mut(slot)[4..12].copy_from_slice(&ts.to_le_bytes());
        }
    }

    #[inline]
    pub fn find(&self, id: &[u8]) -> Option<u32> {
        self.find_hashed(id, hash(id))
    }

    /// [`Ids::find`] given `hash(id)`, for a caller that already has it.
    #[inline]
    pub fn find_hashed(&self, id: &[u8], h: u64) -> Option<u32> {
        self.probe(h).find(|&slot| self.bytes(slot) == id)
    }

    /// Makes room in the hash index for `n` members without rehashing.
    pub fn reserve(&mut self, n: usize) {
        let want = n * 10 / 9 + 16;
        if want > self.table.len() {
            self.rehash(want);
        }
    }

    fn rehash(&mut self, cap: usize) {
        let old = std::mem::take(&mut self.table);
        self.table = vec![0; cap];
        for e in old {
            if e != 0 {
                let slot = (e & SLOT_MASK) - 1;
                self.place(slot, hash(self.bytes(slot)));
            }
        }
    }

    #[inline]
    fn place(&mut self, slot: u32, h: u64) {
        let cap = self.table.len();
        let mut i = self.pos(h);
        while self.table[i] != 0 {
            i += 1;
            if i == cap {
                i = 0;
            }
        }
        self.table[i] = Self::fp(h) | (slot + 1);
    }

    /// Whether another id of `len` bytes fits.
    pub fn has_room(&self, len: usize) -> bool {
        let u = self.units(len);
        self.free.get(u).is_some_and(|f| !f.is_empty()) || self.pages.len() * (PAGE / UNIT) + u <= MAX_SLOT
    }

    /// Interns an id (1–128 bytes) that is not present; returns its slot.
    pub fn insert(&mut self, id: &str, ts: i64) -> u32 {
        let id = id.as_bytes();
        debug_assert!(!id.is_empty() && id.len() <= 128);
        if (self.len + 1) * 10 > self.table.len() * 9 {
            let cap = (self.table.len() * 3 / 2).max(16);
            self.rehash(cap);
        }
        let u = self.units(id.len());
        let slot = match self.free.get_mut(u).and_then(|f| f.pop()) {
            Some(s) => s,
            None => {
                let need = u * UNIT;
                if self.pages.last().is_none_or(|p| p.len() + need > PAGE) {
                    self.pages.push(Vec::with_capacity(PAGE));
                }
                let pi = self.pages.len() - 1;
                let page = &mut self.pages[pi];
                let slot = ((pi * PAGE + page.len()) / UNIT) as u32;
                page.resize(page.len() + need, 0);
                slot
            }
        };
        assert!((slot as usize) < MAX_SLOT, "member arena is full");
        let head = self.head;
        let r = self.rec_mut(slot);
        r[..4].copy_from_slice(&(id.len() as u32 - 1).to_le_bytes());
        r[head..head + id.len()].copy_from_slice(id);
        self.set_ts(slot, ts);
        self.place(slot, hash(id));
        self.len += 1;
        slot
    }

    /// Forgets a member; its record is reused by a later id of the same size.
    pub fn remove(&mut self, slot: u32) {
        let h = hash(self.bytes(slot));
        let cap = self.table.len();
        let mut i = self.pos(h);
        while self.table[i] & SLOT_MASK != slot + 1 {
            i += 1;
            if i == cap {
                i = 0;
            }
        }
        // backward-shift deletion
        let mut hole = i;
        let mut j = i;
        loop {
            j += 1;
            if j == cap {
                j = 0;
            }
            let e = self.table[j];
            if e == 0 {
                break;
            }
            let ideal = self.pos(hash(self.bytes((e & SLOT_MASK) - 1)));
            let d_ideal = (j + cap - ideal) % cap;
            let d_hole = (j + cap - hole) % cap;
            if d_ideal >= d_hole {
                self.table[hole] = e;
                hole = j;
            }
        }
        self.table[hole] = 0;
        let u = self.units(self.bytes(slot).len());
        if self.free.len() <= u {
            self.free.resize(u + 1, Vec::new());
        }
        self.free[u].push(slot);
        self.len -= 1;
    }
}

impl super::tree::BlockOf for Ids {
    #[inline]
    fn block_of(&self, slot: u32) -> (u32, usize) {
        let h = self.head_of(slot);
        (h >> 15, (h >> 7 & 0xff) as usize)
    }
    #[inline]
    fn set_block_of(&mut self, slot: u32, block: u32, index: usize) {
        debug_assert!((block as usize) < MAX_BLOCKS);
        let h = self.head_of(slot) & 0x7f;
        self.set_head(slot, h | (index as u32 & 0xff) << 7 | block << 15);
    }
    #[inline]
    fn id_cmp(&self, a: u32, b: u32) -> std::cmp::Ordering {
        self.bytes(a).cmp(self.bytes(b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interned_ids_are_found_again_and_removal_keeps_the_others_reachable() {
        let mut ids = Ids::new(true);
        let names: Vec<String> = (0..5000).map(|i| format!("member-{i}").repeat(1 + i % 9)).collect();
        let slots: Vec<u32> = names.iter().enumerate().map(|(i, n)| ids.insert(n, i as i64)).collect();
        for (i, (n, s)) in names.iter().zip(&slots).enumerate() {
            assert_eq!(ids.find(n.as_bytes()), Some(*s));
            assert_eq!(ids.str(*s), n);
            assert_eq!(ids.ts(*s), i as i64);
        }
        for (i, s) in slots.iter().enumerate() {
            if i % 3 == 0 {
                ids.remove(*s);
            }
        }
        for (i, (n, s)) in names.iter().zip(&slots).enumerate() {
            assert_eq!(ids.find(n.as_bytes()), if i % 3 == 0 { None } else { Some(*s) });
        }
        assert_eq!(ids.find(b"nobody"), None);
        let s = ids.insert("member-0", 7);
        assert!(slots.iter().step_by(3).any(|x| *x == s)); // a freed record is reused
        assert_eq!(ids.find(b"member-0"), Some(s));
        assert_eq!(ids.ts(s), 7);
    }
}
