//! The ranking against an obviously-correct model: a Vec sorted by the rules
//! (better score, then earlier reach time in event time, then member id bytes),
//! for every op × order × tiebreak × ties combination, with heavy ties (of
//! scores, subscores and event times), out-of-order event times and removals.

use podium::core::ranking::checkpoint::Checkpoint;
use podium::core::ranking::{Counts, Entry, Ranking, Row, Spot, Standing};
use podium::core::shards::{self, shard_of};
use podium::core::{Op, Order, Tiebreak, Ties};
use podium::domain::names::MemberId;
use proptest::prelude::*;

/// What the model says an event did: nothing, or the member's new row.
#[derive(Clone, Debug, PartialEq)]
enum Applied {
    Unchanged,
    Changed(Row),
}

#[derive(Clone, Debug)]
enum Cmd {
    Apply(usize, f64, f64, i64),
    Remove(usize),
    Meta(usize, Option<u8>),
    Rebuild(bool),
}

struct Model {
    rows: Vec<Row>,
    order: Order,
    tb: Tiebreak,
}

/// Reach times are kept in ms from the Unix epoch, in 56 bits.
const EPOCH: i64 = 0;
const REACH_MAX: i64 = (1 << 56) - 1;
/// 2020-01-01T00:00Z in ms, near which most test events happen.
const T2020: i64 = 1_577_836_800_000;

/// The reach time a ranking keeps for event time `ts` (`Row::seq`).
fn reach_of(ts: i64) -> u64 {
    (EPOCH + (ts - EPOCH).clamp(0, REACH_MAX)) as u64
}

fn better(order: Order, a: f64, b: f64) -> bool {
    match order {
        Order::Desc => a > b,
        Order::Asc => a < b,
    }
}

/// Whether subscore `a` is better than `b` under a tiebreak (never without one).
fn better_sub(tb: Tiebreak, a: f64, b: f64) -> bool {
    match tb {
        Tiebreak::None => false,
        Tiebreak::Asc => a < b,
        Tiebreak::Desc => a > b,
    }
}

/// Whether (score, subscore) `a` ranks strictly before `b`.
fn better_pair(order: Order, tb: Tiebreak, a: (f64, f64), b: (f64, f64)) -> bool {
    better(order, a.0, b.0) || (a.0 == b.0 && better_sub(tb, a.1, b.1))
}

fn norm(x: f64) -> f64 {
    if x == 0.0 {
        0.0
    } else {
        x
    }
}

impl Model {
    fn new(order: Order, tb: Tiebreak) -> Model {
        Model { rows: vec![], order, tb }
    }

    fn sorted(&self) -> Vec<Row> {
        let (order, tb) = (self.order, self.tb);
        let mut v = self.rows.clone();
        v.sort_by(|a, b| {
            let s = if better_pair(order, tb, (a.score, a.sub), (b.score, b.sub)) {
                std::cmp::Ordering::Less
            } else if better_pair(order, tb, (b.score, b.sub), (a.score, a.sub)) {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            };
            s.then(a.seq.cmp(&b.seq)).then(a.member.as_bytes().cmp(b.member.as_bytes()))
        });
        v
    }

    fn apply(&mut self, op: Op, member: &str, value: f64, sub: f64, ts: i64) -> Applied {
        let (order, tb) = (self.order, self.tb);
        let value = norm(value);
        // boards without a tiebreak ignore subscores
        let sub = if tb == Tiebreak::None { 0.0 } else { norm(sub) };
        let at = reach_of(ts);
        // only `last` boards keep the last writer's event time; the others report 0
        let ts = if matches!(op, Op::Last) { ts } else { 0 };
        match self.rows.iter_mut().find(|r| r.member == member) {
            None => {
                let row = Row { member: member.into(), score: value, sub, seq: at, ts, meta: None };
                self.rows.push(row.clone());
                Applied::Changed(row)
            }
            Some(r) => {
                let same = value == r.score && sub == r.sub;
                let (new, new_sub, reach) = match op {
                    Op::Incr => {
                        let (s, sb) = (norm(r.score + value), norm(r.sub + sub));
                        if s == r.score && sb == r.sub {
                            return Applied::Unchanged;
                        }
                        (s, sb, r.seq.max(at))
                    }
                    Op::Best => {
                        if same && at < r.seq {
                            r.seq = at;
                            return Applied::Changed(r.clone());
                        }
                        if !better_pair(order, tb, (value, sub), (r.score, r.sub)) {
                            return Applied::Unchanged;
                        }
                        (value, sub, at)
                    }
                    Op::Last => {
                        if ts < r.ts {
                            return Applied::Unchanged;
                        }
                        if same {
                            if ts == r.ts {
                                return Applied::Unchanged;
                            }
                            r.ts = ts;
                            return Applied::Changed(r.clone());
                        }
                        (value, sub, at)
                    }
                };
                r.score = new;
                r.sub = new_sub;
                r.seq = reach;
                r.ts = ts;
                Applied::Changed(r.clone())
            }
        }
    }

    /// The listing of `s` (this model's rows, `sorted`).
    fn entries<'a>(&self, s: &'a [Row], ties: Ties) -> Vec<Entry<'a>> {
        let (order, tb) = (self.order, self.tb);
        s.iter()
            .enumerate()
            .map(|(i, r)| Entry {
                rank: match ties {
                    Ties::First => i as u64 + 1,
                    Ties::Shared => {
                        1 + s
                            .iter()
                            .filter(|o| better_pair(order, tb, (o.score, o.sub), (r.score, r.sub)))
                            .count() as u64
                    }
                },
                member: r.member.as_str(),
                score: r.score,
                sub: r.sub,
                reached: r.seq as i64,
                meta: r.meta.as_deref(),
            })
            .collect()
    }
}

fn name(i: usize) -> String {
    // varied lengths and bytes, ids differ in their first and last bytes
    match i % 3 {
        0 => format!("m{i}"),
        1 => format!("{i:0>16}"),
        _ => format!("Zoë-{i}-🎉"),
    }
}

fn check(r: &Ranking, m: &Model, ties: Ties, pool: usize) {
    let sorted = m.sorted();
    let want = m.entries(&sorted, ties);
    assert_eq!(r.len(), want.len());
    assert_eq!(r.is_empty(), want.is_empty());
    assert_eq!(r.rows().collect::<Vec<_>>(), sorted);
    for off in [0, 1, 3, want.len().saturating_sub(2), want.len(), want.len() + 5] {
        for lim in [1, 4, 1000] {
            let end = (off + lim).min(want.len());
            let exp = if off < want.len() { want[off..end].to_vec() } else { vec![] };
            assert_eq!(r.top(off, lim, ties), exp, "top({off},{lim})");
        }
    }
    for i in 0..pool {
        let who = name(i);
        let pos = want.iter().position(|e| e.member == who);
        let st = r.rank(&who, ties);
        match pos {
            None => {
                assert_eq!(st, None);
                assert_eq!(r.get(&who), None);
                assert_eq!(r.around(&who, 2, ties), None);
            }
            Some(p) => {
                let e = &want[p];
                let total = want.len() as u64;
                let worse = want
                    .iter()
                    .filter(|o| better_pair(m.order, m.tb, (e.score, e.sub), (o.score, o.sub)))
                    .count();
                assert_eq!(
                    st,
                    Some(Standing {
                        rank: e.rank,
                        score: e.score,
                        sub: e.sub,
                        total,
                        percentile: 100.0 * worse as f64 / total as f64,
                        meta: e.meta,
                    })
                );
                for radius in [0, 1, 3] {
                    let lo = p.saturating_sub(radius);
                    let hi = (p + radius + 1).min(want.len());
                    assert_eq!(r.around(&who, radius, ties).unwrap(), want[lo..hi].to_vec());
                }
            }
        }
    }
    let ask: Vec<String> = (0..pool).step_by(2).chain([0, 1, pool + 1]).map(name).collect();
    let ask: Vec<&str> = ask.iter().map(|s| s.as_str()).collect();
    let exp: Vec<Entry> = want.iter().filter(|e| ask.contains(&e.member)).cloned().collect();
    assert_eq!(r.lookup(&ask, ties), exp);
}

fn run((op, order, tb, ties): Combo, pool: usize, cmds: Vec<Cmd>, check_every: usize) {
    let mut r = Ranking::tiebroken(order, op, tb);
    let mut m = Model::new(order, tb);
    for (n, c) in cmds.into_iter().enumerate() {
        match c {
            Cmd::Apply(i, v, sub, ts) => {
                let who = name(i % pool);
                let changed = r.apply_sub(&MemberId::parse(who.clone()).unwrap(), v, sub, ts);
                let mut exp = m.apply(op, &who, v, sub, ts);
                if let Applied::Changed(row) = &mut exp {
                    row.meta = m.rows.iter().find(|x| x.member == who).unwrap().meta.clone();
                }
                // what it says, and the member's row it leaves
                let got = if changed { Applied::Changed(r.get(&who).unwrap()) } else { Applied::Unchanged };
                assert_eq!(got, exp);
            }
            Cmd::Remove(i) => {
                let who = name(i % pool);
                let had = m.rows.iter().any(|x| x.member == who);
                m.rows.retain(|x| x.member != who);
                assert_eq!(r.remove(&who), had);
            }
            Cmd::Meta(i, v) => {
                let who = name(i % pool);
                let meta = v.map(|b| format!("{{\"v\":{b}}}"));
                let exp = match m.rows.iter_mut().find(|x| x.member == who) {
                    Some(row) if row.meta != meta => {
                        row.meta = meta.clone();
                        true
                    }
                    _ => false,
                };
                assert_eq!(r.set_meta(&MemberId::parse(who).unwrap(), meta), exp);
            }
            Cmd::Rebuild(shuffle) => {
                let mut rows: Vec<Row> = r.rows().collect();
                if shuffle {
                    rows.reverse();
                    let k = rows.len() / 3;
                    rows.rotate_left(k);
                }
                r = Ranking::from_rows_seeded(order, op, tb, 0, rows);
            }
        }
        if check_every > 0 && n % check_every == 0 {
            check(&r, &m, ties, pool);
        }
    }
    check(&r, &m, ties, pool);
    // a rebuild from the rows, in rank order and shuffled, answers every read the same
    let rows: Vec<Row> = r.rows().collect();
    check(&Ranking::from_rows_seeded(order, op, tb, 0, rows.clone()), &m, ties, pool);
    let mut shuffled = rows;
    shuffled.reverse();
    let third = shuffled.len() / 3;
    shuffled.rotate_left(third);
    let back = Ranking::from_rows_seeded(order, op, tb, 0, shuffled);
    check(&back, &m, ties, pool);
}

type Combo = (Op, Order, Tiebreak, Ties);

fn combo() -> impl Strategy<Value = Combo> {
    (
        prop_oneof![Just(Op::Incr), Just(Op::Best), Just(Op::Last)],
        prop_oneof![Just(Order::Desc), Just(Order::Asc)],
        prop_oneof![Just(Tiebreak::None), Just(Tiebreak::Asc), Just(Tiebreak::Desc)],
        prop_oneof![Just(Ties::Shared), Just(Ties::First)],
    )
}

/// Subscores: a tiny domain (many equal pairs), or a wide one.
fn sub(heavy: bool) -> BoxedStrategy<f64> {
    if heavy {
        prop_oneof![Just(0.0), Just(-0.0), Just(1.0), Just(-1.5), Just(3.0)].boxed()
    } else {
        prop_oneof![(-8i32..8).prop_map(|x| x as f64), -1e6..1e6f64].boxed()
    }
}

fn value(heavy: bool) -> BoxedStrategy<f64> {
    if heavy {
        // tiny domain: many equal scores, zeros and negative zeros
        prop_oneof![Just(0.0), Just(-0.0), Just(1.0), Just(-1.0), Just(2.0)].boxed()
    } else {
        prop_oneof![(-50i32..50).prop_map(|x| x as f64 / 4.0), -1e6..1e6f64].boxed()
    }
}

/// Event times: mostly a few milliseconds after 2020-01-01 in any order (equal
/// times are frequent), some near or before 1970 (clamped to it) or past the
/// 56-bit range (clamped to its end).
fn ts() -> BoxedStrategy<i64> {
    prop_oneof![
        20 => (0i64..6).prop_map(|t| T2020 + t),
        1 => prop_oneof![Just(0i64), Just(1i64), Just(-1i64), Just(-2i64)],
        1 => prop_oneof![Just(EPOCH + REACH_MAX), Just(EPOCH + REACH_MAX + 1), Just(i64::MAX)],
    ]
    .boxed()
}

fn cmds(pool: usize, len: usize, heavy: bool) -> impl Strategy<Value = Vec<Cmd>> {
    let c = prop_oneof![
        12 => (0..pool, value(heavy), sub(heavy), ts()).prop_map(|(i, v, sb, t)| Cmd::Apply(i, v, sb, t)),
        1 => (0..pool).prop_map(Cmd::Remove),
        1 => (0..pool, proptest::option::of(0u8..3)).prop_map(|(i, v)| Cmd::Meta(i, v)),
        1 => any::<bool>().prop_map(Cmd::Rebuild),
    ];
    proptest::collection::vec(c, 0..len)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn small_boards_with_heavy_ties_match_the_model(
        combo in combo(),
        (pool, cmds) in (1usize..10, any::<bool>())
            .prop_flat_map(|(pool, heavy)| (Just(pool), cmds(pool, 60, heavy))),
    ) {
        run(combo, pool, cmds, 1);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn every_op_order_tiebreak_and_ties_combination_matches_the_model(
        combo in combo(),
        cmds in cmds(12, 80, true),
    ) {
        run(combo, 12, cmds, 1);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn large_boards_that_split_and_merge_blocks_match_the_model(
        combo in combo(),
        cmds in cmds(900, 2500, false),
    ) {
        run(combo, 900, cmds, 0);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(60))]

    /// The board Durable Object applies the Queue's batches with
    /// `apply_batch`: it must say the same and leave the same board as
    /// applying each event in turn, repeated members and all.
    #[test]
    fn a_batch_applies_exactly_like_its_events_one_at_a_time(
        (op, order, tb, _ties) in combo(),
        heavy in any::<bool>(),
        events in proptest::collection::vec((0usize..300, -1e3..1e3f64, -4i32..4, ts()), 0..1500),
        cuts in proptest::collection::vec(1usize..120, 1..40),
    ) {
        let values: Vec<(MemberId, f64, f64, i64)> = events
            .iter()
            .map(|&(i, v, sb, t)| {
                let v = if heavy { (v as i64 % 3) as f64 } else { v };
                (MemberId::parse(name(i)).unwrap(), v, sb as f64, t)
            })
            .collect();
        let mut one = Ranking::tiebroken(order, op, tb);
        let want: Vec<bool> =
            values.iter().map(|(m, v, sb, t)| one.apply_sub(m, *v, *sb, *t)).collect();
        let mut batched = Ranking::tiebroken(order, op, tb);
        let mut got = Vec::new();
        let mut rest: &[(MemberId, f64, f64, i64)] = &values;
        for c in cuts.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (now, later) = rest.split_at((*c).min(rest.len()));
            let refs: Vec<(&MemberId, f64, f64, i64)> = now.iter().map(|(m, v, sb, t)| (m, *v, *sb, *t)).collect();
            got.extend(batched.apply_batch(&refs));
            rest = later;
        }
        prop_assert_eq!(got, want);
        prop_assert_eq!(batched.rows().collect::<Vec<_>>(), one.rows().collect::<Vec<_>>());
    }
}

#[derive(Clone, Debug)]
enum HideCmd {
    Apply(usize, f64, f64, i64),
    Remove(usize),
    Hide(usize, bool),
    Rebuild,
}

/// A ranking of `rows` alone: what a board without the left-out members reads.
fn oracle((order, op, tb): (Order, Op, Tiebreak), rows: Vec<Row>) -> Ranking {
    Ranking::from_rows_seeded(order, op, tb, 0, rows)
}

fn check_hidden(
    r: &Ranking,
    plain: &Ranking,
    hidden: &[bool],
    rules: (Order, Op, Tiebreak),
    ties: Ties,
    pool: usize,
) {
    // Hiding changes no score: the rows are the board's, hidden ones included.
    let rows: Vec<Row> = r.rows().collect();
    assert_eq!(rows, plain.rows().collect::<Vec<_>>());
    let is_hidden = |m: &str| (0..pool).any(|i| hidden[i] && name(i) == m);
    let visible: Vec<Row> = rows.iter().filter(|x| !is_hidden(&x.member)).cloned().collect();
    let vis = oracle(rules, visible.clone());
    assert_eq!(r.visible_len(), vis.len());
    for off in [0, 1, 2, 5, vis.len().saturating_sub(1), vis.len() + 2] {
        for lim in [1, 3, 1000] {
            assert_eq!(r.top(off, lim, ties), vis.top(off, lim, ties), "top({off},{lim})");
        }
    }
    let ask: Vec<String> = (0..pool).map(name).collect();
    let ask: Vec<&str> = ask.iter().map(String::as_str).collect();
    assert_eq!(r.lookup(&ask, ties), vis.lookup(&ask, ties));
    for (i, hidden_i) in hidden.iter().enumerate().take(pool) {
        let who = name(i);
        if *hidden_i {
            // Its own reads: as if it were the one visible hidden member.
            let mut own_rows = visible.clone();
            own_rows.extend(rows.iter().filter(|x| x.member == who).cloned());
            let own = oracle(rules, own_rows);
            assert_eq!(r.rank(&who, ties), own.rank(&who, ties), "own standing of hidden {who}");
            for radius in [0, 1, 3] {
                assert_eq!(r.around(&who, radius, ties), own.around(&who, radius, ties));
            }
        } else {
            assert_eq!(r.rank(&who, ties), vis.rank(&who, ties), "standing of {who}");
            for radius in [0, 2] {
                assert_eq!(r.around(&who, radius, ties), vis.around(&who, radius, ties));
            }
        }
    }
}

fn run_hidden((op, order, tb, ties): Combo, pool: usize, cmds: Vec<HideCmd>) {
    let mut r = Ranking::tiebroken(order, op, tb);
    let mut plain = Ranking::tiebroken(order, op, tb);
    let rules = (order, op, tb);
    let mut hidden = vec![false; pool];
    for (n, c) in cmds.into_iter().enumerate() {
        match c {
            HideCmd::Apply(i, v, sb, ts) => {
                let who = MemberId::parse(name(i % pool)).unwrap();
                assert_eq!(r.apply_sub(&who, v, sb, ts), plain.apply_sub(&who, v, sb, ts));
            }
            HideCmd::Remove(i) => {
                let who = name(i % pool);
                assert_eq!(r.remove(&who), plain.remove(&who));
            }
            HideCmd::Hide(i, on) => {
                let i = i % pool;
                assert_eq!(r.set_hidden(&name(i), on), hidden[i] != on);
                hidden[i] = on;
            }
            HideCmd::Rebuild => {
                // The board object reloads rows, then its hidden list.
                let mut back = oracle(rules, r.rows().collect::<Vec<_>>());
                for (i, h) in hidden.iter().enumerate() {
                    if *h {
                        back.set_hidden(&name(i), true);
                    }
                }
                r = back;
            }
        }
        if n % 7 == 0 {
            check_hidden(&r, &plain, &hidden, rules, ties, pool);
        }
    }
    check_hidden(&r, &plain, &hidden, rules, ties, pool);
}

fn hide_cmds(pool: usize, len: usize) -> impl Strategy<Value = Vec<HideCmd>> {
    let c = prop_oneof![
        10 => (0..pool, value(true), sub(true), ts()).prop_map(|(i, v, sb, t)| HideCmd::Apply(i, v, sb, t)),
        1 => (0..pool).prop_map(HideCmd::Remove),
        3 => (0..pool, any::<bool>()).prop_map(|(i, on)| HideCmd::Hide(i, on)),
        1 => Just(HideCmd::Rebuild),
    ];
    proptest::collection::vec(c, 0..len)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Shadow-hiding (API 1.1): with updates, removals, hides and unhides
    /// mixed, ties heavy, every read equals a board of the visible members
    /// alone, and a hidden member's own reads equal a board of the visible
    /// members and itself.
    #[test]
    fn hidden_members_leave_every_read_but_their_own(
        combo in combo(),
        cmds in hide_cmds(12, 120),
    ) {
        run_hidden(combo, 12, cmds);
    }
}

/// A board spread over shards (API 1.1 `shards`), read the way the worker
/// reads one: each shard answers for itself, `core::shards` merges.
struct Sharded {
    shards: Vec<Ranking>,
}

impl Sharded {
    fn owner(&self, m: &str) -> &Ranking {
        &self.shards[shard_of(m, self.shards.len() as u16) as usize]
    }

    fn owner_mut(&mut self, m: &str) -> &mut Ranking {
        let n = self.shards.len() as u16;
        &mut self.shards[shard_of(m, n) as usize]
    }

    fn sum(&self, s: &Spot, reader: Option<&str>) -> Counts {
        self.shards.iter().map(|r| r.counts(s, reader)).sum()
    }

    /// A shard's entries with their spots (the worker's wire form).
    fn spotted<'a>(r: &'a Ranking, v: Vec<Entry<'a>>) -> Vec<(Spot, Entry<'a>)> {
        v.into_iter().map(|e| (r.spot(&e), e)).collect()
    }

    fn ranked<'a>(v: impl IntoIterator<Item = (Entry<'a>, u64)>) -> Vec<Entry<'a>> {
        v.into_iter().map(|(e, rank)| Entry { rank, ..e }).collect()
    }

    fn top(&self, offset: usize, limit: usize, ties: Ties) -> Vec<Entry<'_>> {
        let lists = self.shards.iter().map(|r| Self::spotted(r, r.top(0, offset + limit, ties))).collect();
        Self::ranked(shards::top(lists, offset, limit, ties).into_iter().map(|(_, e, r)| (e, r)))
    }

    /// `top` as the glue reads a page too deep for every shard to send its
    /// best `offset + limit`: the shards' totals, rounds of `k` probes per
    /// shard until the windows hold at most `budget` entries, then each
    /// shard's window, merged.
    fn deep_top(&self, offset: usize, limit: usize, ties: Ties, budget: usize, k: usize) -> Vec<Entry<'_>> {
        let totals = self.shards.iter().map(|r| r.visible_len() as u64).collect();
        let mut deep = shards::DeepPage::new(offset as u64, limit, totals, budget);
        let mut rounds = 0;
        while !deep.settled() {
            rounds += 1;
            assert!(rounds < 64, "probing settles: {deep:?}");
            for (i, places) in deep.probes(k).into_iter().enumerate() {
                let r = &self.shards[i];
                for p in places {
                    let e = r.top(p as usize, 1, ties).into_iter().next().expect("a probed place exists");
                    let spot = r.spot(&e);
                    let before: Vec<u64> = self.shards.iter().map(|r| r.counts(&spot, None).before).collect();
                    deep.narrow(i, p, &before);
                }
            }
        }
        assert!(deep.gathered() <= (budget as u64).max((limit * self.shards.len()) as u64), "{deep:?}");
        let lists = self
            .shards
            .iter()
            .zip(deep.windows())
            .map(|(r, (from, n))| Self::spotted(r, r.top(from as usize, n as usize, ties)))
            .collect();
        let page: Vec<(Spot, Entry<'_>)> =
            shards::merge(lists).into_iter().skip(deep.skip() as usize).take(limit).collect();
        let better_first = page.first().map_or(0, |(s, _)| self.sum(s, None).better);
        let spots: Vec<&Spot> = page.iter().map(|(s, _)| s).collect();
        let ranks = shards::ranks(&spots, offset as u64, better_first, ties);
        Self::ranked(page.into_iter().map(|(_, e)| e).zip(ranks))
    }

    fn spot_of(&self, m: &str) -> Option<Spot> {
        let r = self.owner(m);
        r.get(m).map(|row| Spot::of(r.order(), r.tiebreak(), row.score, row.sub, row.seq as i64, m))
    }

    fn rank(&self, m: &str, ties: Ties) -> Option<Standing<'_>> {
        let own = self.owner(m).rank(m, ties)?;
        let spot = self.spot_of(m)?;
        let (rank, total, percentile) = shards::standing(self.sum(&spot, Some(m)), ties);
        Some(Standing { rank, total, percentile, ..own })
    }

    fn around(&self, m: &str, radius: usize, ties: Ties) -> Option<Vec<Entry<'_>>> {
        let spot = self.spot_of(m)?;
        let (mut before, mut after, mut counts) = (vec![], vec![], vec![]);
        for r in &self.shards {
            // As the glue does: each shard's counts come with its neighbours.
            let (c, b, a) = r.near(&spot, Some(m), radius, radius + 1);
            counts.push(c);
            before.push(Self::spotted(r, b));
            after.push(Self::spotted(r, a));
        }
        let at = counts.into_iter().sum::<Counts>().before;
        let (window, start) = shards::around(before, after, radius, at);
        let better_first = window.first().map_or(0, |(s, _)| self.sum(s, Some(m)).better);
        let spots: Vec<&Spot> = window.iter().map(|(s, _)| s).collect();
        let ranks = shards::ranks(&spots, start, better_first, ties);
        Some(Self::ranked(window.into_iter().map(|(_, e)| e).zip(ranks)))
    }

    fn lookup(&self, members: &[&str], ties: Ties) -> Vec<Entry<'_>> {
        let mut found: Vec<(Spot, Entry<'_>)> = members
            .iter()
            .flat_map(|m| {
                let r = self.owner(m);
                Self::spotted(r, r.lookup(&[m], ties))
            })
            .map(|(s, e)| {
                let rank = shards::rank_of(self.sum(&s, None), ties);
                (s, Entry { rank, ..e })
            })
            .collect();
        found.sort_by(|a, b| a.0.cmp(&b.0));
        found.dedup_by(|a, b| a.0 == b.0);
        found.into_iter().map(|(_, e)| e).collect()
    }
}

fn check_sharded(s: &Sharded, one: &Ranking, ties: Ties, pool: usize) {
    let total: usize = s.shards.iter().map(Ranking::visible_len).sum();
    assert_eq!(total, one.visible_len());
    for off in [0, 1, 2, 5, total / 2, total.saturating_sub(1), total, total + 2] {
        for lim in [1, 3, 100] {
            assert_eq!(s.top(off, lim, ties), one.top(off, lim, ties), "top({off},{lim})");
            // Deep pages: probed down to windows of at most `budget` entries
            // (0: until every shard's place is known).
            for (budget, k) in [(0, 1), (4, 2), (10_000, 3)] {
                assert_eq!(
                    s.deep_top(off, lim, ties, budget, k),
                    one.top(off, lim, ties),
                    "deep top({off},{lim}), budget {budget}, {k} probes a shard"
                );
            }
        }
    }
    let ask: Vec<String> = (0..pool).chain([0, pool + 1]).map(name).collect();
    let ask: Vec<&str> = ask.iter().map(String::as_str).collect();
    assert_eq!(s.lookup(&ask, ties), one.lookup(&ask, ties));
    for who in (0..pool).map(name) {
        assert_eq!(s.rank(&who, ties), one.rank(&who, ties), "standing of {who}");
        for radius in [0, 1, 3] {
            assert_eq!(s.around(&who, radius, ties), one.around(&who, radius, ties), "around {who}");
        }
    }
}

/// `prev_rank` on a sharded board: 1 + the sum over the shards' checkpoints
/// of the entries before the member's place at its own shard's checkpoint,
/// equal to one ranking's checkpoint rank.
fn check_sharded_checkpoints(s: &Sharded, cps: &[Checkpoint], one: &Checkpoint, ties: Ties, pool: usize) {
    for who in (0..pool).map(name) {
        let own = &cps[shard_of(&who, s.shards.len() as u16) as usize];
        let prev =
            own.spot_of(&who).map(|spot| 1 + cps.iter().map(|c| c.count_before(&spot, ties)).sum::<u64>());
        assert_eq!(prev, one.rank_of(&who), "prev_rank of {who}");
    }
}

fn run_sharded((op, order, tb, ties): Combo, n: u16, pool: usize, cmds: Vec<HideCmd>) {
    let mut one = Ranking::tiebroken(order, op, tb);
    let mut s = Sharded { shards: (0..n).map(|_| Ranking::tiebroken(order, op, tb)).collect() };
    let mut checkpoints: Option<(Vec<Checkpoint>, Checkpoint)> = None;
    for (k, c) in cmds.into_iter().enumerate() {
        match c {
            HideCmd::Apply(i, v, sb, ts) => {
                let who = MemberId::parse(name(i % pool)).unwrap();
                assert_eq!(
                    s.owner_mut(who.as_str()).apply_sub(&who, v, sb, ts),
                    one.apply_sub(&who, v, sb, ts)
                );
            }
            HideCmd::Remove(i) => {
                let who = name(i % pool);
                assert_eq!(s.owner_mut(&who).remove(&who), one.remove(&who));
            }
            HideCmd::Hide(i, on) => {
                let who = name(i % pool);
                assert_eq!(s.owner_mut(&who).set_hidden(&who, on), one.set_hidden(&who, on));
            }
            HideCmd::Rebuild => {
                // A checkpoint of every shard and of the one ranking, stored and read back.
                let back =
                    |c: Checkpoint| Checkpoint::from_chunks(c.at, c.seed(), c.has_places(), c.chunks(3));
                let cps =
                    s.shards.iter().map(|r| back(Checkpoint::take_with_places(r, ties, 0, 5))).collect();
                checkpoints = Some((cps, Checkpoint::take(&one, ties, 0, 9)));
            }
        }
        if k % 7 == 0 {
            check_sharded(&s, &one, ties, pool);
        }
        if let Some((cps, one_cp)) = &checkpoints {
            check_sharded_checkpoints(&s, cps, one_cp, ties, pool);
        }
    }
    check_sharded(&s, &one, ties, pool);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Sharded boards (API 1.1 `shards`): for random events, removals and
    /// hides, with heavy ties, every read of an N-shard board (top at any
    /// offset, a member's standing, around, lookup) equals the read of one
    /// ranking fed the same events.
    /// (and every member's rank at a checkpoint of all the shards equals
    /// its rank at a checkpoint of the one ranking: `prev_rank`.)
    #[test]
    fn every_read_of_a_sharded_board_equals_the_read_of_one_ranking(
        combo in combo(),
        n in prop_oneof![Just(2u16), Just(3), Just(5)],
        cmds in hide_cmds(16, 120),
    ) {
        run_sharded(combo, n, 16, cmds);
    }
}
