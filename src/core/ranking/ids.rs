//! Interned member ids: every id is stored once, length-prefixed, in a paged
//! byte arena; an open-addressing hash index (linear probing, backward-shift
//! deletion) maps id bytes to a dense `u32` slot. Each index entry is one `u32`:
//! an 8-bit hash fingerprint and `slot + 1` in the low 24 bits, so a probe only
//! touches the arena when the fingerprint matches.

const PAGE: usize = 1 << 16;
const FREE: u32 = u32::MAX;
const SLOT_BITS: u32 = 24;
const SLOT_MASK: u32 = (1 << SLOT_BITS) - 1;
/// The most members one ranking can hold (16.7 M; far beyond a 128 MB Durable Object).
pub const MAX_MEMBERS: usize = SLOT_MASK as usize - 1;

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
    pages: Vec<Vec<u8>>,
    /// slot -> arena offset (`FREE` when the slot is unused)
    offs: Vec<u32>,
    free: Vec<u32>,
    table: Vec<u32>,
    len: usize,
    garbage: usize,
}

impl Ids {
    pub fn len(&self) -> usize {
        self.len
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
    pub fn bytes(&self, slot: u32) -> &[u8] {
        let off = self.offs[slot as usize] as usize;
        let page = &self.pages[off / PAGE];
        let o = off % PAGE;
        let n = page[o] as usize;
        &page[o + 1..o + 1 + n]
    }

    #[inline]
    pub fn str(&self, slot: u32) -> &str {
        // Only ever filled from `&str`.
        std::str::from_utf8(self.bytes(slot)).unwrap_or_default()
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

    /// Makes room for `n` members in total without rehashing.
    pub fn reserve(&mut self, n: usize) {
        self.offs.reserve_exact(n.saturating_sub(self.offs.len()));
        let want = n * 20 / 17 + 16;
        if want > self.table.len() {
            self.rehash(want);
        }
    }

    fn rehash(&mut self, cap: usize) {
        self.table = vec![0; cap];
        for slot in 0..self.offs.len() as u32 {
            if self.offs[slot as usize] != FREE {
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

    /// Interns an id that is not present; returns its slot.
    pub fn insert(&mut self, id: &[u8]) -> u32 {
        debug_assert!(!id.is_empty() && id.len() <= 255);
        assert!(self.len < MAX_MEMBERS, "ranking is full");
        if (self.len + 1) * 20 > self.table.len() * 17 {
            let cap = (self.table.len() * 3 / 2).max(16);
            self.rehash(cap);
        }
        let need = 1 + id.len();
        if self.pages.last().map_or(true, |p| p.len() + need > PAGE) {
            self.pages.push(Vec::with_capacity(PAGE));
        }
        let pi = self.pages.len() - 1;
        let page = &mut self.pages[pi];
        let off = (pi * PAGE + page.len()) as u32;
        page.push(id.len() as u8);
        page.extend_from_slice(id);
        let slot = match self.free.pop() {
            Some(s) => {
                self.offs[s as usize] = off;
                s
            }
            None => {
                self.offs.push(off);
                (self.offs.len() - 1) as u32
            }
        };
        self.place(slot, hash(id));
        self.len += 1;
        slot
    }

    /// Forgets a slot (its arena bytes become garbage until the next rebuild).
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
        self.garbage += 1 + self.bytes(slot).len();
        self.offs[slot as usize] = FREE;
        self.free.push(slot);
        self.len -= 1;
    }

    /// Bytes held on the heap (for reports).
    pub fn heap_bytes(&self) -> usize {
        self.pages.len() * PAGE + self.offs.capacity() * 4 + self.free.capacity() * 4 + self.table.capacity() * 4
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interned_ids_are_found_again_and_removal_keeps_the_others_reachable() {
        let mut ids = Ids::default();
        let names: Vec<String> = (0..5000).map(|i| format!("member-{i}")).collect();
        let slots: Vec<u32> = names.iter().map(|n| ids.insert(n.as_bytes())).collect();
        for (n, s) in names.iter().zip(&slots) {
            assert_eq!(ids.find(n.as_bytes()), Some(*s));
            assert_eq!(ids.str(*s), n);
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
        let s = ids.insert(b"again");
        assert_eq!(ids.find(b"again"), Some(s));
    }
}
