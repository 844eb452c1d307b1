use super::*;

fn m(s: &str) -> MemberId {
    MemberId::parse(s).unwrap()
}

fn names(v: &[Entry]) -> Vec<(&str, u64)> {
    v.iter().map(|e| (e.member.as_str(), e.rank)).collect()
}

fn board(order: Order, op: Op, events: &[(&str, f64, i64)]) -> Ranking {
    let mut r = Ranking::new(order, op);
    for (who, v, ts) in events {
        r.apply(&m(who), *v, *ts);
    }
    r
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
    assert_eq!((row.score, row.ts), (1.0, 10)); // equal ts: the later-applied one wins
}

#[test]
fn an_update_that_leaves_the_score_equal_is_unchanged_and_keeps_seq() {
    let mut r = board(Order::Desc, Op::Incr, &[("a", 2.0, 1)]);
    let seq = r.get("a").unwrap().seq;
    assert_eq!(r.apply(&m("a"), 0.0, 5), Applied::Unchanged);
    assert_eq!(r.get("a").unwrap().seq, seq);
    assert_eq!(r.get("a").unwrap().ts, 0);

    let mut r = board(Order::Desc, Op::Best, &[("a", 2.0, 1)]);
    assert_eq!(r.apply(&m("a"), 2.0, 5), Applied::Unchanged);
    assert_eq!(r.apply(&m("a"), 1.0, 5), Applied::Unchanged);
}

#[test]
fn last_with_the_same_value_and_a_newer_ts_persists_the_ts_but_keeps_seq() {
    let mut r = board(Order::Desc, Op::Last, &[("a", 2.0, 1)]);
    let seq = r.get("a").unwrap().seq;
    match r.apply(&m("a"), 2.0, 9) {
        Applied::Changed(row) => assert_eq!((row.score, row.seq, row.ts), (2.0, seq, 9)),
        other => panic!("{other:?}"),
    }
    assert_eq!(r.apply(&m("a"), 2.0, 9), Applied::Unchanged);
}

#[test]
fn equal_scores_are_ordered_by_who_reached_them_first_then_by_member_id() {
    let mut r = board(Order::Desc, Op::Incr, &[("c", 5.0, 1), ("b", 3.0, 2), ("a", 5.0, 3), ("b", 2.0, 4)]);
    // c reached 5 first, then a, then b
    assert_eq!(names(&r.top(0, 10, Ties::First)), [("c", 1), ("a", 2), ("b", 3)]);
    assert_eq!(names(&r.top(0, 10, Ties::Shared)), [("c", 1), ("a", 1), ("b", 1)]);
    // equal seqs (from rows) fall back to member byte order
    let rows = vec![
        Row { member: "z".into(), score: 1.0, seq: 7, ts: 0, meta: None },
        Row { member: "y".into(), score: 1.0, seq: 7, ts: 0, meta: None },
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
    assert_eq!(r.apply(&m("a"), f64::MAX, 2), Applied::Unchanged);
    assert_eq!(r.apply(&m("b"), f64::NAN, 2), Applied::Unchanged);
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
    assert_eq!(r.top(0, 1, Ties::First)[0].meta.as_deref(), Some(r#"{"name":"A"}"#));
    assert_eq!(r.rank("a", Ties::First).unwrap().meta.as_deref(), Some(r#"{"name":"A"}"#));
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
fn rebuilding_from_rows_continues_seqs_and_keeps_the_order() {
    let mut r = board(Order::Desc, Op::Incr, &[("a", 5.0, 1), ("b", 5.0, 2), ("c", 1.0, 3)]);
    r.set_meta(&m("c"), Some("true".into()));
    let rows: Vec<Row> = r.rows().collect();
    let mut shuffled = rows.clone();
    shuffled.reverse();
    let mut back = Ranking::from_rows(Order::Desc, Op::Incr, shuffled);
    assert_eq!(back.rows().collect::<Vec<_>>(), rows);
    let max = rows.iter().map(|r| r.seq).max().unwrap();
    match back.apply(&m("c"), 1.0, 4) {
        Applied::Changed(row) => assert!(row.seq > max),
        other => panic!("{other:?}"),
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
