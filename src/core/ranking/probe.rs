//! Reads about a place on the board that need not be a member of it: what
//! a sharded board (API 1.1 `shards`, [`crate::core::shards`]) asks each of
//! its shards to rank a member held by another shard exactly.
//!
//! A [`Spot`] is where an entry sorts: rank key, reach, member id, the
//! tree's own order. [`Board::counts`] says how many of this board's
//! visible entries sort before a spot, have a strictly better rank key, or a
//! not-worse one, in O(log² n) (the tree's counts, then a binary search
//! over the tie group by position) plus the hidden members' correction;
//! nothing scans the board.

use super::tree::{reach, RankKey};
use super::{key_of_score, reach_of_ms, Board, Entry, Order, Tiebreak};

/// Where an entry sorts on its board, as plain numbers every shard of the
/// board computes alike: (score key, subscore key) ascending is better
/// first, then earlier reach, then member id bytes.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(into = "SpotWire", try_from = "SpotWire")]
pub struct Spot {
    pub key: (u64, u64),
    pub reach: u64,
    pub member: String,
}

/// A spot as JSON: its 64-bit keys as decimal text, since a Durable
/// Object's request body is parsed by JavaScript, whose numbers keep 53 bits.
#[derive(serde::Serialize, serde::Deserialize)]
struct SpotWire {
    k: String,
    s: String,
    r: String,
    m: String,
}

impl From<Spot> for SpotWire {
    fn from(x: Spot) -> SpotWire {
        SpotWire { k: x.key.0.to_string(), s: x.key.1.to_string(), r: x.reach.to_string(), m: x.member }
    }
}

impl TryFrom<SpotWire> for Spot {
    type Error = std::num::ParseIntError;
    fn try_from(w: SpotWire) -> Result<Spot, Self::Error> {
        Ok(Spot { key: (w.k.parse()?, w.s.parse()?), reach: w.r.parse()?, member: w.m })
    }
}

impl Spot {
    /// The spot of a member with this score, subscore and reach time (ms
    /// since the Unix epoch) on a board with this order and tiebreak.
    pub fn of(order: Order, tiebreak: Tiebreak, score: f64, sub: f64, reached: i64, member: &str) -> Spot {
        let sub = match tiebreak {
            Tiebreak::None => 0,
            Tiebreak::Asc => key_of_score(sub, Order::Asc),
            Tiebreak::Desc => key_of_score(sub, Order::Desc),
        };
        Spot {
            key: (key_of_score(score, order), sub),
            reach: reach_of_ms(reached.max(0) as u64),
            member: member.to_string(),
        }
    }

    /// The spot of a listing's entry.
    pub fn of_entry(order: Order, tiebreak: Tiebreak, e: &Entry<'_>) -> Spot {
        Spot::of(order, tiebreak, e.score, e.sub, e.reached, e.member)
    }

    /// Whether two spots share a rank under `shared` ties (equal rank keys).
    pub fn ties_with(&self, other: &Spot) -> bool {
        self.key == other.key
    }
}

/// How a board's visible entries stand against a spot (the reader's own
/// entry counts as visible: see [`Board::counts`]). Counts of several
/// shards add up to the counts of the whole board.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Counts {
    /// Entries with a strictly better rank key (score, then subscore).
    pub better: u64,
    /// Entries that sort before the spot (better key, or equal key and
    /// earlier reach, or equal reach and a smaller id).
    pub before: u64,
    /// Entries whose rank key is not worse (equal ones included).
    pub not_worse: u64,
    /// Visible entries.
    pub total: u64,
}

impl std::ops::Add for Counts {
    type Output = Counts;
    fn add(self, o: Counts) -> Counts {
        Counts {
            better: self.better + o.better,
            before: self.before + o.before,
            not_worse: self.not_worse + o.not_worse,
            total: self.total + o.total,
        }
    }
}

impl std::iter::Sum for Counts {
    fn sum<I: Iterator<Item = Counts>>(iter: I) -> Counts {
        iter.fold(Counts::default(), |a, b| a + b)
    }
}

impl<R: RankKey> Board<R> {
    fn rank_key_of(&self, s: &Spot) -> R {
        R::new(s.key.0, s.key.1)
    }

    /// How many entries (hidden ones too) sort before `s`.
    fn position_before(&self, s: &Spot) -> usize {
        let k0 = self.rank_key_of(s);
        let (mut lo, mut hi) = (self.tree.count_before(k0, false), self.tree.count_before(k0, true));
        // The tie group [lo, hi) is ordered by (reach, id): binary search it
        // by position (each probe an O(log n) walk), not a scan of the group.
        let id = s.member.as_bytes();
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let below = self
                .tree
                .iter_from(mid)
                .next()
                .is_some_and(|(k, pay)| (reach(k), self.id_bytes(k, pay)) < (s.reach, id));
            if below {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// This board's visible entries against spot `s`, as member `reader`
    /// sees them (its own entry visible even when hidden; `None`: as the
    /// public sees them).
    pub fn counts(&self, s: &Spot, reader: Option<&str>) -> Counts {
        let k0 = self.rank_key_of(s);
        let view = self.view(reader.map(str::as_bytes));
        let better = self.tree.count_before(k0, false) - view.better_score(k0);
        let not_worse = self.tree.count_before(k0, true) - view.not_worse_score(k0);
        let before = self.position_before(s) - view.before_entry(k0, s.reach, s.member.as_bytes());
        Counts {
            better: better as u64,
            before: before as u64,
            not_worse: not_worse as u64,
            total: (self.len() - view.len()) as u64,
        }
    }

    /// The spot's [`Board::counts`], and the visible entries (as `reader`
    /// sees them) next to it: up to `before` of those sorting before it (the
    /// nearest, in order) and up to `after` from it on (the spot's own entry
    /// first, if on this board). Their ranks are this board's alone: a
    /// sharded read ranks them again. (One search for the spot serves both.)
    pub fn near(
        &self,
        s: &Spot,
        reader: Option<&str>,
        before: usize,
        after: usize,
    ) -> (Counts, Vec<Entry<'_>>, Vec<Entry<'_>>) {
        let counts = self.counts(s, reader);
        let view = self.view(reader.map(str::as_bytes));
        let v = counts.before as usize;
        let start = v.saturating_sub(before);
        let ties = super::Ties::First;
        let (b, a) = (
            self.listing_visible(&view, start, v - start, ties),
            self.listing_visible(&view, v, after, ties),
        );
        (counts, b, a)
    }
}
