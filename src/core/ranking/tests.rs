use super::*;
use std::collections::HashMap;

fn m(s: &str) -> MemberId {
    MemberId::parse(s).unwrap()
}

fn names<'a>(v: &[Entry<'a>]) -> Vec<(&'a str, u64)> {
    v.iter().map(|e| (e.member, e.rank)).collect()
}

/// An event time in 2026; tests give times as offsets from it.
const T: i64 = 1_795_000_000_000;

/// A board after `events` of `(member, value, ts offset from T)`.
fn board(order: Order, op: Op, events: &[(&str, f64, i64)]) -> Ranking {
    let mut r = Ranking::new(order, op);
    for (who, v, ts) in events {
        r.apply(&m(who), *v, T + *ts);
    }
    r
}

fn reach(r: &Ranking, who: &str) -> i64 {
    r.get(who).unwrap().seq as i64 - T
}

#[test]
fn incr_adds_to_the_score_and_a_new_member_starts_at_zero() {
    let r = board(Order::Desc, Op::Incr, &[("a", 2.0, 1), ("a", 3.0, 2), ("b", -1.5, 3)]);
    assert_eq!(r.get("a").unwrap().score, 5.0);
    assert_eq!(r.get("b").unwrap().score, -1.5);
    assert_eq!(r.get("a").unwrap().ts, 0); // only `last` boards keep event times
    assert_eq!(r.len(), 2);
}

#[test]
fn best_keeps_the_better_score_under_the_order() {
    let r = board(Order::Desc, Op::Best, &[("a", 5.0, 1), ("a", 3.0, 2), ("a", 7.0, 3)]);
    assert_eq!(r.get("a").unwrap().score, 7.0);
    let r = board(Order::Asc, Op::Best, &[("a", 5.0, 1), ("a", 3.0, 2), ("a", 7.0, 3)]);
    assert_eq!(r.get("a").unwrap().score, 3.0);
}

#[test]
fn last_keeps_the_value_with_the_latest_ts_even_out_of_order() {
    let r = board(Order::Desc, Op::Last, &[("a", 5.0, 10), ("a", 9.0, 5), ("a", 1.0, 10)]);
    let row = r.get("a").unwrap();
    assert_eq!((row.score, row.ts), (1.0, T + 10)); // equal ts: the later-applied one wins
}

#[test]
fn an_update_that_leaves_the_score_equal_is_unchanged_and_keeps_the_reach_time() {
    let mut r = board(Order::Desc, Op::Incr, &[("a", 2.0, 1)]);
    assert!(!r.apply(&m("a"), 0.0, T + 5));
    assert_eq!(reach(&r, "a"), 1);
    assert_eq!(r.get("a").unwrap().ts, 0);

    let mut r = board(Order::Desc, Op::Best, &[("a", 2.0, 1)]);
    assert!(!r.apply(&m("a"), 2.0, T + 5));
    assert!(!r.apply(&m("a"), 2.0, T + 1));
    assert!(!r.apply(&m("a"), 1.0, T));
    assert_eq!(reach(&r, "a"), 1);
}

#[test]
fn last_with_the_same_value_and_a_newer_ts_persists_the_ts_but_keeps_the_reach_time() {
    let mut r = board(Order::Desc, Op::Last, &[("a", 2.0, 1)]);
    assert!(r.apply(&m("a"), 2.0, T + 9));
    let row = r.get("a").unwrap();
    assert_eq!((row.score, row.seq as i64 - T, row.ts), (2.0, 1, T + 9));
    assert!(!r.apply(&m("a"), 2.0, T + 9));
    assert!(!r.apply(&m("a"), 3.0, T + 8));
    assert_eq!(reach(&r, "a"), 1);
}

#[test]
fn equal_scores_are_ordered_by_who_reached_them_first_then_by_member_id() {
    let mut r = board(Order::Desc, Op::Incr, &[("c", 5.0, 1), ("b", 3.0, 2), ("a", 5.0, 3), ("b", 2.0, 4)]);
    // c reached 5 first, then a, then b
    assert_eq!(names(&r.top(0, 10, Ties::First)), [("c", 1), ("a", 2), ("b", 3)]);
    assert_eq!(names(&r.top(0, 10, Ties::Shared)), [("c", 1), ("a", 1), ("b", 1)]);
    // equal reach times (from rows) fall back to member byte order
    let rows = vec![
        Row { member: "z".into(), score: 1.0, sub: 0.0, seq: T as u64 + 7, ts: 0, meta: None },
        Row { member: "y".into(), score: 1.0, sub: 0.0, seq: T as u64 + 7, ts: 0, meta: None },
    ];
    r = Ranking::from_rows(Order::Desc, Op::Incr, rows);
    assert_eq!(names(&r.top(0, 10, Ties::First)), [("y", 1), ("z", 2)]);
}

#[test]
fn shared_ties_use_competition_ranking() {
    let r = board(Order::Desc, Op::Best, &[("a", 9.0, 1), ("b", 7.0, 2), ("c", 7.0, 3), ("d", 1.0, 4)]);
    assert_eq!(names(&r.top(0, 10, Ties::Shared)), [("a", 1), ("b", 2), ("c", 2), ("d", 4)]);
    assert_eq!(names(&r.top(2, 10, Ties::Shared)), [("c", 2), ("d", 4)]);
    assert_eq!(r.rank("c", Ties::Shared).unwrap().rank, 2);
    assert_eq!(r.rank("c", Ties::First).unwrap().rank, 3);
}

#[test]
fn ascending_boards_rank_the_lowest_score_first() {
    let r = board(Order::Asc, Op::Best, &[("slow", 70.5, 1), ("fast", 61.2, 2), ("neg", -3.0, 3)]);
    assert_eq!(names(&r.top(0, 10, Ties::First)), [("neg", 1), ("fast", 2), ("slow", 3)]);
}

#[test]
fn percentile_counts_members_with_a_strictly_worse_score() {
    let r = board(Order::Desc, Op::Incr, &[("a", 4.0, 1), ("b", 3.0, 1), ("c", 3.0, 1), ("d", 1.0, 1)]);
    let s = r.rank("b", Ties::Shared).unwrap();
    assert_eq!((s.rank, s.total, s.percentile), (2, 4, 25.0));
    assert_eq!(r.rank("a", Ties::Shared).unwrap().percentile, 75.0);
    assert_eq!(r.rank("d", Ties::Shared).unwrap().percentile, 0.0);
}

#[test]
fn negative_zero_is_stored_as_zero() {
    let r = board(Order::Desc, Op::Incr, &[("a", -0.0, 1), ("b", 0.0, 2)]);
    assert!(r.get("a").unwrap().score.is_sign_positive());
    assert_eq!(names(&r.top(0, 10, Ties::Shared)), [("a", 1), ("b", 1)]);
}

#[test]
fn non_finite_values_and_overflowing_sums_change_nothing() {
    let mut r = board(Order::Desc, Op::Incr, &[("a", f64::MAX, 1)]);
    assert!(!r.apply(&m("a"), f64::MAX, 2));
    assert!(!r.apply(&m("b"), f64::NAN, 2));
    assert_eq!(r.len(), 1);
}

#[test]
fn around_clips_at_both_ends() {
    let r = board(Order::Desc, Op::Incr, &[("a", 5.0, 1), ("b", 4.0, 1), ("c", 3.0, 1), ("d", 2.0, 1)]);
    assert_eq!(names(&r.around("a", 1, Ties::First).unwrap()), [("a", 1), ("b", 2)]);
    assert_eq!(names(&r.around("c", 1, Ties::First).unwrap()), [("b", 2), ("c", 3), ("d", 4)]);
    assert_eq!(names(&r.around("d", 5, Ties::First).unwrap()).len(), 4);
    assert_eq!(r.around("nobody", 1, Ties::First), None);
}

#[test]
fn lookup_lists_present_members_best_first_once() {
    let r = board(Order::Desc, Op::Incr, &[("a", 5.0, 1), ("b", 4.0, 1), ("c", 3.0, 1)]);
    assert_eq!(names(&r.lookup(&["c", "x", "a", "c"], Ties::First)), [("a", 1), ("c", 3)]);
}

#[test]
fn metadata_only_sticks_to_members_on_the_board() {
    let mut r = board(Order::Desc, Op::Incr, &[("a", 5.0, 1)]);
    assert!(!r.set_meta(&m("x"), Some("{}".into())));
    assert!(r.set_meta(&m("a"), Some(r#"{"name":"A"}"#.into())));
    assert!(!r.set_meta(&m("a"), Some(r#"{"name":"A"}"#.into())));
    assert_eq!(r.top(0, 1, Ties::First)[0].meta, Some(r#"{"name":"A"}"#));
    assert_eq!(r.rank("a", Ties::First).unwrap().meta, Some(r#"{"name":"A"}"#));
    assert!(r.set_meta(&m("a"), None));
    assert!(!r.set_meta(&m("a"), None));
}

#[test]
fn removing_a_member_drops_it_and_its_metadata() {
    let mut r = board(Order::Desc, Op::Incr, &[("a", 5.0, 1), ("b", 4.0, 1)]);
    r.set_meta(&m("a"), Some("1".into()));
    assert!(r.remove("a"));
    assert!(!r.remove("a"));
    assert_eq!(r.get("a"), None);
    assert_eq!(names(&r.top(0, 10, Ties::First)), [("b", 1)]);
    r.apply(&m("a"), 1.0, 2);
    assert_eq!(r.get("a").unwrap().meta, None);
}

#[test]
fn rebuilding_from_rows_keeps_the_order_and_the_reach_times() {
    let mut r = board(
        Order::Desc,
        Op::Incr,
        &[("b", 5.0, 1), ("a", 5.0, 2), ("c", 1.0, 3), ("e", 1.0, 3), ("d", 1.0, 3), ("f", 5.0, 1)],
    );
    r.set_meta(&m("c"), Some("true".into()));
    let rows: Vec<Row> = r.rows().collect();
    let order: Vec<&str> = rows.iter().map(|x| x.member.as_str()).collect();
    assert_eq!(order, ["b", "f", "a", "c", "d", "e"]);
    let mut shuffled = rows.clone();
    shuffled.reverse();
    let mut back = Ranking::from_rows(Order::Desc, Op::Incr, shuffled);
    assert_eq!(back.rows().collect::<Vec<_>>(), rows);
    // an incr that moves `d` on still measures reach in event time
    back.apply(&m("d"), 4.0, T + 2);
    assert_eq!((back.get("d").unwrap().score, reach(&back, "d")), (5.0, 3));
    assert_eq!(names(&back.top(0, 4, Ties::First)), [("b", 1), ("f", 2), ("a", 3), ("d", 4)]);
}

#[test]
fn a_duplicated_row_keeps_the_later_reach_time() {
    let row = |score: f64, at: i64| Row {
        member: "a".into(),
        score,
        sub: 0.0,
        seq: (T + at) as u64,
        ts: 0,
        meta: None,
    };
    let r = Ranking::from_rows(Order::Desc, Op::Incr, vec![row(3.0, 5), row(1.0, 2), row(9.0, 4)]);
    assert_eq!(r.len(), 1);
    assert_eq!((r.get("a").unwrap().score, reach(&r, "a")), (3.0, 5));
}

#[test]
fn a_rebuild_keeps_each_duplicated_members_later_row_and_its_metadata_whatever_the_size_hint() {
    // Several blocks of members, each of them given two or three rows: the
    // later-reached one wins (the later row on equal reach), with its own
    // metadata or none; long ids and `last` boards keep records, whose
    // losers' records are freed and taken by the next new members.
    let long = |i: usize| format!("a-member-id-longer-than-sixteen-bytes-{i}");
    for (op, id) in [(Op::Last, &long as &dyn Fn(usize) -> String), (Op::Incr, &|i| format!("m{i}"))] {
        let row = |i: usize, score: f64, at: i64, meta: Option<&str>| Row {
            member: id(i),
            score,
            sub: 0.0,
            seq: (T + at) as u64,
            ts: if op == Op::Last { T + at } else { 0 },
            meta: meta.map(str::to_string),
        };
        let mut rows = Vec::new();
        let mut want = HashMap::new();
        for i in 0..2000 {
            let first = row(i, (i % 13) as f64, (i % 5) as i64, Some("first"));
            let (second, winner) = match i % 3 {
                0 => {
                    let r = row(i, 50.0 + (i % 7) as f64, 10, None);
                    (r.clone(), r)
                }
                1 => (row(i, 99.0, -1, Some("stale")), first.clone()),
                _ => {
                    let r = row(i, (i % 11) as f64, (i % 5) as i64, Some("same reach, later row"));
                    (r.clone(), r)
                }
            };
            want.insert(id(i), winner);
            rows.push(first);
            rows.push(second);
            if i % 10 == 0 {
                rows.push(row(i, 1.0, -2, Some("oldest"))); // loses to both
            }
        }
        // rows of other members in between, and some skipped ones
        rows.rotate_left(777);
        rows.push(Row { member: String::new(), ..row(0, 1.0, 99, None) });
        rows.push(Row { score: f64::NAN, ..row(1, 1.0, 99, None) });
        let mut built = Vec::new();
        for hint in [0, 10, 2000, 4000, 100_000] {
            let mut r = Ranking::from_rows_seeded_sized(
                Order::Desc,
                op,
                Tiebreak::None,
                3,
                hint,
                rows.iter().cloned(),
            );
            check(&mut r);
            assert_eq!(r.len(), 2000);
            for (who, w) in &want {
                let got = r.get(who).unwrap();
                assert_eq!(
                    (got.score, got.seq, got.ts, got.meta.as_deref()),
                    (w.score, w.seq, w.ts, w.meta.as_deref())
                );
            }
            // new members after the rebuild (taking freed records) leave everyone else intact
            for i in 2000..2600 {
                r.apply(&m(&id(i)), 1000.0, T + 5);
            }
            check(&mut r);
            for (who, w) in &want {
                assert_eq!(r.get(who).unwrap().score, w.score);
            }
            built.push(r.rows().collect::<Vec<_>>());
        }
        assert!(built.windows(2).all(|w| w[0] == w[1]), "the hint changes nothing");
    }
}

#[test]
fn a_member_that_later_reaches_a_tied_score_ranks_below_the_one_who_held_it() {
    let mut r = board(Order::Desc, Op::Incr, &[("a", 3.0, 1), ("b", 1.0, 2)]);
    r.apply(&m("b"), 2.0, 3);
    assert_eq!(names(&r.top(0, 10, Ties::First)), [("a", 1), ("b", 2)]);
    r.apply(&m("a"), 1.0, 4);
    r.apply(&m("b"), 1.0, 5);
    assert_eq!(names(&r.top(0, 10, Ties::First)), [("a", 1), ("b", 2)]);
}

#[test]
fn members_reaching_the_same_score_at_the_same_time_are_ordered_by_member_id_bytes() {
    // byte order: a prefix first, uppercase before lowercase, multi-byte UTF-8 last
    let ids = ["b", "ab", "a", "B", "é", "a-", "aa"];
    for op in [Op::Incr, Op::Best, Op::Last] {
        for order in [Order::Desc, Order::Asc] {
            let ev: Vec<(&str, f64, i64)> = ids.iter().map(|&i| (i, 7.0, 4)).collect();
            let r = board(order, op, &ev);
            let got: Vec<String> =
                r.top(0, 10, Ties::First).into_iter().map(|e| e.member.to_string()).collect();
            assert_eq!(got, ["B", "a", "a-", "aa", "ab", "b", "é"], "{op:?} {order:?}");
            let rows: Vec<Row> = r.rows().collect();
            let back = Ranking::from_rows(order, op, rows.iter().rev().cloned());
            assert_eq!(back.rows().collect::<Vec<_>>(), rows);
        }
    }
}

#[test]
fn equal_score_and_time_ties_stay_in_id_order_as_members_move_through_a_large_board() {
    // enough members for many blocks; every score shared by hundreds at one time
    let mut r = Ranking::new(Order::Desc, Op::Incr);
    let id = |i: u32| format!("{:08x}", i.wrapping_mul(0x9E37_79B1));
    for i in 0..6000u32 {
        r.apply(&m(&id(i)), (i % 7) as f64, T);
    }
    for i in (0..6000u32).step_by(5) {
        r.apply(&m(&id(i)), 1.0, T);
    }
    for i in (0..6000u32).step_by(11) {
        r.remove(&id(i));
    }
    let rows: Vec<Row> = r.rows().collect();
    assert!(rows.windows(2).all(|w| w[0].score > w[1].score
        || (w[0].score == w[1].score && w[0].member.as_bytes() < w[1].member.as_bytes())));
    for (g, row) in rows.iter().enumerate().step_by(37) {
        assert_eq!(r.rank(&row.member, Ties::First).unwrap().rank, g as u64 + 1);
    }
    let back = Ranking::from_rows(Order::Desc, Op::Incr, rows.iter().rev().cloned());
    assert_eq!(back.rows().collect::<Vec<_>>(), rows);
}

#[test]
fn an_incr_delivered_late_does_not_move_a_member_ahead_of_one_who_reached_the_score_earlier_in_event_time() {
    // a reaches 5 at T+10; b's events reach 5 at T+20 but one is delivered last
    let r = board(Order::Desc, Op::Incr, &[("b", 2.0, 20), ("a", 5.0, 10), ("b", 3.0, 5)]);
    assert_eq!(reach(&r, "b"), 20);
    assert_eq!(names(&r.top(0, 10, Ties::First)), [("a", 1), ("b", 2)]);
    // the same events delivered in any other order give the same listing
    let r2 = board(Order::Desc, Op::Incr, &[("b", 3.0, 5), ("b", 2.0, 20), ("a", 5.0, 10)]);
    assert_eq!(r2.rows().collect::<Vec<_>>(), r.rows().collect::<Vec<_>>());
}

#[test]
fn an_incr_that_leaves_the_score_unchanged_does_not_move_the_reach_time() {
    let mut r = board(Order::Desc, Op::Incr, &[("a", 5.0, 10), ("b", 5.0, 20)]);
    assert!(!r.apply(&m("a"), 0.0, T + 30));
    assert_eq!(names(&r.top(0, 10, Ties::First)), [("a", 1), ("b", 2)]);
}

#[test]
fn a_best_score_equalled_earlier_in_event_time_moves_the_member_ahead() {
    let mut r = board(Order::Desc, Op::Best, &[("a", 8.0, 10), ("b", 8.0, 20)]);
    assert_eq!(names(&r.top(0, 10, Ties::First)), [("a", 1), ("b", 2)]);
    assert!(r.apply(&m("b"), 8.0, T + 5));
    let row = r.get("b").unwrap();
    assert_eq!((row.score, row.seq as i64 - T), (8.0, 5));
    assert_eq!(names(&r.top(0, 10, Ties::First)), [("b", 1), ("a", 2)]);
    // a strictly better value takes its own event time, even a later one
    r.apply(&m("a"), 9.0, T + 50);
    assert_eq!(reach(&r, "a"), 50);
    assert_eq!(names(&r.top(0, 10, Ties::First)), [("a", 1), ("b", 2)]);
}

#[test]
fn a_last_value_reached_later_in_event_time_ranks_below_an_equal_one_reached_earlier() {
    // b's older event arrives after its newer one and loses; a set 4 at T+10
    let r = board(Order::Desc, Op::Last, &[("b", 4.0, 30), ("a", 4.0, 10), ("b", 9.0, 20)]);
    assert_eq!((r.get("b").unwrap().score, reach(&r, "b"), r.get("b").unwrap().ts), (4.0, 30, T + 30));
    assert_eq!(names(&r.top(0, 10, Ties::First)), [("a", 1), ("b", 2)]);
    // re-sending the same value later keeps the earlier reach
    let mut r = board(Order::Desc, Op::Last, &[("a", 4.0, 10), ("b", 4.0, 20)]);
    r.apply(&m("a"), 4.0, T + 40);
    assert_eq!(names(&r.top(0, 10, Ties::First)), [("a", 1), ("b", 2)]);
}

#[test]
fn any_time_since_1970_orders_equal_scores_and_earlier_ones_count_as_1970() {
    let mut r = Ranking::new(Order::Desc, Op::Best);
    r.apply(&m("d"), 3.0, 2_000);
    r.apply(&m("c"), 3.0, 1_000);
    r.apply(&m("b"), 3.0, -5);
    r.apply(&m("a"), 3.0, 0);
    r.apply(&m("e"), 3.0, 1_000_000_000_000); // 2001
    assert_eq!(r.get("b").unwrap().seq, REACH_EPOCH_MS as u64);
    assert_eq!(r.get("c").unwrap().seq, 1_000);
    let order = [("a", 1), ("b", 2), ("c", 3), ("d", 4), ("e", 5)];
    assert_eq!(names(&r.top(0, 10, Ties::First)), order);
    // and they survive the snapshot
    let again = Ranking::from_rows(Order::Desc, Op::Best, r.rows());
    assert_eq!(names(&again.top(0, 10, Ties::First)), order);
}

/// Checks the tree's structure and that the id index names every member's cell.
fn check(r: &mut Ranking) {
    fn check_board<R: tree::RankKey>(b: &mut Board<R>) {
        let n = b.len();
        let (tree, names) = b.names();
        tree.check(&names);
        assert_eq!(names.index.len(), n, "one index entry per member");
    }
    match r {
        Ranking::Plain(b) => check_board(b),
        Ranking::Tie(b) => check_board(b),
    }
}

#[test]
fn members_stay_reachable_and_every_cell_exact_while_the_id_index_grows_and_shifts() {
    // The id index follows every member the tree moves (within a block, to a
    // neighbour block, in spills, splits and merges) and rehashes as it
    // grows; removals shift entries back. Heavy ties make comparisons read
    // ids. Short ids live in their cells, long ones and `last` boards' in
    // records.
    for (op, prefix) in [(Op::Last, ""), (Op::Incr, ""), (Op::Best, "a-member-id-of-more-than-16-bytes-")] {
        let mut r = Ranking::new(Order::Desc, op);
        let id = |i: u64| format!("{prefix}m{:x}", i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40);
        let mut live = std::collections::BTreeMap::new();
        let mut x = 7u64;
        for step in 0..30_000u64 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let who = id(x >> 50);
            if x >> 61 == 0 && live.contains_key(&who) {
                assert!(r.remove(&who));
                live.remove(&who);
            } else {
                let v = (x >> 20 & 7) as f64;
                let was = live.get(&who).copied();
                r.apply(&m(&who), v, T + step as i64);
                let now = match (op, was) {
                    (Op::Incr, Some(w)) => w + v,
                    (Op::Best, Some(w)) => v.max(w),
                    _ => v,
                };
                if x >> 13 & 7 == 0 {
                    r.set_meta(&m(&who), Some(format!("{step}")));
                }
                live.insert(who, now);
            }
            if step % 5000 == 4999 {
                check(&mut r);
            }
        }
        check(&mut r);
        assert_eq!(r.len(), live.len());
        for (who, v) in &live {
            assert_eq!(r.get(who).map(|row| row.score), Some(*v), "{who}");
        }
        let mut back = Ranking::from_rows(Order::Desc, op, r.rows());
        check(&mut back);
        assert_eq!(back.rows().collect::<Vec<_>>(), r.rows().collect::<Vec<_>>());
    }
}

#[test]
fn members_stay_findable_when_moves_reuse_cells_among_look_alike_index_entries() {
    // Ids with the same fingerprint in a 16-entry table: an entry is found by
    // fingerprint and location, so when one member moves into the cell
    // another is leaving, their entries may swap. Every member must still be
    // found at its cell (a lookup checks the id at each candidate cell), and
    // after removals too.
    let fp = |s: &str| (ids::hash(s.as_bytes(), 0) & 0x7f).max(1);
    let alike: Vec<String> =
        (0..200_000).map(|i| format!("m{i}")).filter(|s| fp(s) == fp("m0")).take(60).collect();
    assert_eq!(alike.len(), 60);
    let mut arena = Arena::new(false);
    let pays: HashMap<&str, Id16> = alike.iter().map(|s| (s.as_str(), arena.make(s, 0))).collect();
    let mut x = 5u64;
    let mut rnd = |n: u64| {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (x >> 33) % n
    };
    for _ in 0..300 {
        let who: Vec<&String> = (0..6).map(|_| &alike[rnd(60) as usize]).collect();
        let mut who: Vec<&String> = who.into_iter().fold(Vec::new(), |mut v, s| {
            if !v.contains(&s) {
                v.push(s);
            }
            v
        });
        let mut index = Index::default();
        index.rebuild(16, std::iter::empty());
        let mut cells: HashMap<Loc, &String> = HashMap::new();
        let pay = |s: &str| pays[s];
        let t = |s: &str| tag_of_len(s.len());
        let mut names = Names { index: &mut index, arena: &arena };
        for (i, s) in who.iter().enumerate() {
            names.moved(&[(pay(s), t(s), NEW, ids::loc(0, i))]);
            cells.insert(ids::loc(0, i), s);
        }
        // a rotation: each member takes the next one's cell, the last a new one
        let n = who.len();
        let moves: Vec<Move> = (0..n)
            .map(|i| {
                let to = if i + 1 < n { ids::loc(0, i + 1) } else { ids::loc(1, 0) };
                (pay(who[i]), t(who[i]), ids::loc(0, i), to)
            })
            .collect();
        names.moved(&moves);
        cells.clear();
        for (i, s) in who.iter().enumerate() {
            cells.insert(if i + 1 < n { ids::loc(0, i + 1) } else { ids::loc(1, 0) }, s);
        }
        let found = |index: &Index, cells: &HashMap<Loc, &String>, s: &str| {
            index
                .probe(ids::hash(s.as_bytes(), 0))
                .any(|(_, l)| cells.get(&l).is_some_and(|c| c.as_str() == s))
        };
        for s in &who {
            assert!(found(names.index, &cells, s), "{s} is found after the rotation");
        }
        // remove a random one: the entries after it shift back by their own homes
        let gone = who.remove(rnd(n as u64) as usize);
        let (e, l) = names
            .index
            .probe(ids::hash(gone.as_bytes(), 0))
            .find(|&(_, l)| cells.get(&l).is_some_and(|c| *c == gone))
            .unwrap();
        let cells2 = cells.clone();
        names.index.remove(e, |l| ids::hash(cells2[&l].as_bytes(), 0));
        cells.remove(&l);
        for s in &who {
            assert!(found(names.index, &cells, s), "{s} is found after removing {gone}");
        }
        assert!(!found(names.index, &cells, gone));
    }
}

#[test]
fn set_puts_a_member_at_the_given_score_and_reach_whatever_the_op() {
    for op in [Op::Incr, Op::Best, Op::Last] {
        let mut r = board(Order::Desc, op, &[("a", 5.0, 1), ("b", 5.0, 2), ("c", 1.0, 3)]);
        // lower than before, even on `best`; reached earlier than b: ranks first among the fives
        assert!(r.set(&m("c"), (5.0, 0.0), T, Some("{\"n\":1}".into())));
        assert_eq!(names(&r.top(0, 3, Ties::First)), vec![("c", 1), ("a", 2), ("b", 3)], "{op:?}");
        assert_eq!(r.get("c").unwrap().meta.as_deref(), Some("{\"n\":1}"));
        assert!(r.set(&m("a"), (-2.0, 0.0), T + 9, None));
        assert_eq!(r.get("a").unwrap().score, -2.0, "{op:?}");
        assert_eq!(reach(&r, "a"), 9);
        // a new member, and a value that is no number
        assert!(r.set(&m("d"), (0.5, 0.0), T, None));
        assert!(!r.set(&m("e"), (f64::NAN, 0.0), T, None));
        assert_eq!(r.len(), 4);
        // the export's reach times give the same order back
        let rows: Vec<(String, f64, i64)> =
            r.top(0, 10, Ties::First).iter().map(|e| (e.member.to_string(), e.score, e.reached)).collect();
        let mut copy = Ranking::new(Order::Desc, op);
        for (who, score, reached) in rows.iter().rev() {
            copy.set(&m(who), (*score, 0.0), *reached, None);
        }
        assert_eq!(names(&copy.top(0, 10, Ties::First)), names(&r.top(0, 10, Ties::First)));
    }
}

/// A builder fed borrowed rows (`RowRef`) makes the ranking `from_rows` makes
/// of the same rows: the same rows skipped, the same duplicate kept (the
/// later reach, the later row on equal reach), the same order of ties, on
/// every op and with and without a tiebreak, whatever the hint.
#[test]
fn a_builder_fed_borrowed_rows_equals_from_rows() {
    let id = |i: usize| if i % 3 == 0 { format!("a-rather-long-member-id-{i}") } else { format!("m{i}") };
    let mut rows = Vec::new();
    for i in 0..3000usize {
        // heavy ties of score, subscore and reach time
        let row = Row {
            member: id(i % 1100),
            score: (i % 7) as f64,
            sub: (i % 5) as f64 - 2.0,
            seq: (T + (i % 4) as i64 * if i % 2 == 0 { 1 } else { -1 }) as u64,
            ts: T + (i % 9) as i64,
            meta: None,
        };
        rows.push(row);
    }
    rows.push(Row { member: String::new(), ..rows[0].clone() });
    rows.push(Row { score: f64::INFINITY, ..rows[1].clone() });
    rows.push(Row { sub: f64::NAN, ..rows[2].clone() });
    rows.push(Row { member: "x".repeat(129), ..rows[3].clone() });
    for op in [Op::Incr, Op::Best, Op::Last] {
        for tb in [Tiebreak::None, Tiebreak::Asc, Tiebreak::Desc] {
            for order in [Order::Desc, Order::Asc] {
                let want = Ranking::from_rows_seeded(order, op, tb, 9, rows.iter().cloned());
                assert_eq!(want.len(), 1100);
                let want: Vec<Row> = want.rows().collect();
                for hint in [0, 5, rows.len(), 100_000] {
                    let mut b = RankingBuilder::new(order, op, tb, 9, hint);
                    for r in &rows {
                        b.push(r.row_ref());
                    }
                    assert!(!b.is_full());
                    let got = b.finish();
                    assert_eq!(got.rows().collect::<Vec<_>>(), want, "{op:?} {tb:?} {order:?} hint {hint}");
                    let mut again = got.clone();
                    again.apply(&m("late"), 3.0, T);
                    assert_eq!(again.len(), 1101);
                }
            }
        }
    }
}

/// A builder fed owned rows keeps their metadata, the kept duplicate's.
#[test]
fn a_builder_fed_owned_rows_keeps_the_kept_rows_metadata() {
    let row = |who: &str, seq: i64, meta: Option<&str>| Row {
        member: who.into(),
        score: 1.0,
        sub: 0.0,
        seq: (T + seq) as u64,
        ts: 0,
        meta: meta.map(str::to_string),
    };
    let rows =
        [row("a", 2, Some("new")), row("a", 1, Some("old")), row("b", 1, Some("b")), row("b", 1, None)];
    let mut b = RankingBuilder::new(Order::Desc, Op::Incr, Tiebreak::None, 0, 0);
    for r in rows.iter().cloned() {
        b.push_row(r);
    }
    let got = b.finish();
    let want = Ranking::from_rows(Order::Desc, Op::Incr, rows.iter().cloned());
    assert_eq!(got.rows().collect::<Vec<_>>(), want.rows().collect::<Vec<_>>());
    assert_eq!(got.get("a").unwrap().meta.as_deref(), Some("new"));
    assert_eq!(got.get("b").unwrap().meta, None);
}
