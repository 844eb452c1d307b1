//! Interned members: one record per member in a paged byte arena,
//! `[ts: i64][block: u32][index hint: u16][len: u8][id bytes]`, padded to 8 bytes. A member's
//! slot is its record's offset in 8-byte units, so the id, its event time and
//! the block of the order index that holds it share one cache line.
//!
//! An open-addressing hash index (linear probing, backward-shift deletion) maps
//! id bytes to slots. Each index entry is one `u32`: an 8-bit hash fingerprint
//! and `slot + 1` in the low 24 bits, so a probe only touches the arena when
//! the fingerprint matches. 24 bits of 8-byte units address 128 MiB of records,
//! beyond what a Durable Object can hold.

const PAGE: usize = 1 << 16;
const UNIT: usize = 8;
const HEAD: usize = 15;
const SLOT_BITS: u32 = 24;
const SLOT_MASK: u32 = (1 << SLOT_BITS) - 1;
const MAX_SLOT: usize = SLOT_MASK as usize - 1;

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

fn units(id_len: usize) -> usize {
    (HEAD + id_len).div_ceil(UNIT)
}

#[derive(Clone, Default)]
pub(crate) struct Ids {
    pages: Vec<Vec<u8>>,
    /// freed records by size in units
    free: Vec<Vec<u32>>,
    table: Vec<u32>,
    len: usize,
}

impl Ids {
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
        &r[HEAD..HEAD + r[14] as usize]
    }

    /// Reads a record's first line so that a following pass finds it cached;
    /// independent touches overlap their memory latency.
    #[inline]
    pub fn touch(&self, slots: impl Iterator<Item = u32>) {
        let mut acc = 0u8;
        for s in slots {
            acc ^= self.rec(s)[14];
        }
        std::hint::black_box(acc);
    }

    #[inline]
    pub fn str(&self, slot: u32) -> &str {
        // SAFETY: records are only filled by `insert`, from a whole `&str`.
        unsafe { std::str::from_utf8_unchecked(self.bytes(slot)) }
    }

    #[inline]
    pub fn ts(&self, slot: u32) -> i64 {
        i64::from_le_bytes(self.rec(slot)[..8].try_into().unwrap())
    }

    #[inline]
    pub fn set_ts(&mut self, slot: u32, ts: i64) {
        self.rec_mut(slot)[..8].copy_from_slice(&ts.to_le_bytes());
    }


    #[inline]
    pub fn find(&self, id: &[u8]) -> Option<u32> {
        if self.len == 0 {
            return None;
        }
        let h = hash(id);
        let fp = Self::fp(h);
        let cap = self.table.len();
        let mut i = self.pos(h);
        loop {
            let e = self.table[i];
            if e == 0 {
                return None;
            }
            if e & !SLOT_MASK == fp {
                let slot = (e & SLOT_MASK) - 1;
                if self.bytes(slot) == id {
                    return Some(slot);
                }
            }
            i += 1;
            if i == cap {
                i = 0;
            }
        }
    }

    /// Makes room in the hash index for `n` members without rehashing.
    pub fn reserve(&mut self, n: usize) {
        let want = n * 20 / 17 + 16;
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
        let u = units(len);
        self.free.get(u).is_some_and(|f| !f.is_empty()) || self.pages.len() * (PAGE / UNIT) + u <= MAX_SLOT
    }

    /// Interns an id (1–128 bytes) that is not present; returns its slot.
    pub fn insert(&mut self, id: &str, ts: i64) -> u32 {
        let id = id.as_bytes();
        debug_assert!(!id.is_empty() && id.len() <= 128);
        if (self.len + 1) * 20 > self.table.len() * 17 {
            let cap = (self.table.len() * 3 / 2).max(16);
            self.rehash(cap);
        }
        let u = units(id.len());
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
        let r = self.rec_mut(slot);
        r[..8].copy_from_slice(&ts.to_le_bytes());
        r[8..14].fill(0xff);
        r[14] = id.len() as u8;
        r[HEAD..HEAD + id.len()].copy_from_slice(id);
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
        let u = units(self.bytes(slot).len());
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
        let r = self.rec(slot);
        (u32::from_le_bytes(r[8..12].try_into().unwrap()), u16::from_le_bytes([r[12], r[13]]) as usize)
    }
    #[inline]
    fn set_block_of(&mut self, slot: u32, block: u32, index: usize) {
        let r = self.rec_mut(slot);
        r[8..12].copy_from_slice(&block.to_le_bytes());
        r[12..14].copy_from_slice(&(index as u16).to_le_bytes());
    }
    #[inline]
    fn set_hint(&mut self, slot: u32, index: usize) {
        self.rec_mut(slot)[12..14].copy_from_slice(&(index as u16).to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interned_ids_are_found_again_and_removal_keeps_the_others_reachable() {
        let mut ids = Ids::default();
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
