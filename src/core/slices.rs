//! Cutting a board's batch of events into slices it applies one turn at a
//! time (see `BoardObject::apply_in_slices`).
//!
//! Members are gathered: all of a member's events in the batch sit together,
//! in their order, and a slice ends after `max_members` members or
//! `max_events` events (then the member at the cut runs on into the next
//! slice, still in order). Members are independent (a member's reach comes
//! from its events' `ts`, not from the batch's order), so applying the
//! slices one after another gives each member what the whole batch would,
//! and a member touched by many events is written to storage once or twice,
//! not once per slice it would otherwise fall in. Two things can differ
//! from one pass over the batch: on a board at its member cap, which new
//! members are refused follows this order instead; and an id sent twice
//! for different members is taken by whichever comes first here.

use std::collections::HashMap;

/// `items` cut into slices of at most `max_members` distinct members and at
/// most `max_events` items (both at least 1), members in the order of their
/// first item, each member's items in their order.
pub fn by_member<T, F>(items: Vec<T>, member: F, max_members: usize, max_events: usize) -> Vec<Vec<T>>
where
    F: Fn(&T) -> &str,
{
    let (max_members, max_events) = (max_members.max(1), max_events.max(1));
    if items.is_empty() {
        return vec![];
    }
    // Within both bounds however many members it has: no need to count them.
    if items.len() <= max_members.min(max_events) {
        return vec![items];
    }
    // Each item's member as a group number, numbered by first appearance.
    let groups: Vec<usize> = {
        let mut seen: HashMap<&str, usize> = HashMap::new();
        items
            .iter()
            .map(|it| {
                let next = seen.len();
                *seen.entry(member(it)).or_insert(next)
            })
            .collect()
    };
    let distinct = groups.iter().max().map_or(0, |g| g + 1);
    if distinct <= max_members && items.len() <= max_events {
        return vec![items];
    }
    let mut tagged: Vec<(usize, T)> = groups.into_iter().zip(items).collect();
    // Stable: a member's items keep their order.
    tagged.sort_by_key(|(g, _)| *g);
    let mut out = Vec::new();
    let mut cur: Vec<T> = Vec::new();
    let mut members = 0usize;
    let mut last = None;
    for (g, it) in tagged {
        let new_member = last != Some(g);
        if !cur.is_empty() && (cur.len() >= max_events || (new_member && members >= max_members)) {
            out.push(std::mem::take(&mut cur));
            members = 0;
        }
        if new_member || cur.is_empty() {
            members += 1;
        }
        last = Some(g);
        cur.push(it);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cut(items: &[(u8, u32)], m: usize, e: usize) -> Vec<Vec<(String, u32)>> {
        let owned: Vec<(String, u32)> = items.iter().map(|(k, i)| (format!("m{k}"), *i)).collect();
        by_member(owned, |x| x.0.as_str(), m, e)
    }

    #[test]
    fn a_batch_within_both_bounds_is_one_slice_in_its_own_order() {
        let s = cut(&[(2, 0), (1, 1), (2, 2)], 2, 3);
        assert_eq!(s, vec![vec![("m2".into(), 0), ("m1".into(), 1), ("m2".into(), 2)]]);
        assert!(cut(&[], 1, 1).is_empty());
    }

    #[test]
    fn a_member_s_events_are_gathered_into_one_slice() {
        // Three members, two per slice: m1's later event joins its first.
        let s = cut(&[(1, 0), (2, 1), (3, 2), (1, 3)], 2, 100);
        assert_eq!(
            s,
            vec![vec![("m1".into(), 0), ("m1".into(), 3), ("m2".into(), 1)], vec![("m3".into(), 2)]]
        );
    }

    #[test]
    fn one_member_with_more_events_than_a_slice_runs_on_in_order() {
        let s = cut(&[(1, 0), (1, 1), (1, 2), (2, 3)], 10, 2);
        assert_eq!(
            s,
            vec![vec![("m1".into(), 0), ("m1".into(), 1)], vec![("m1".into(), 2), ("m2".into(), 3)]]
        );
    }

    proptest! {
        #[test]
        fn slices_keep_every_event_once_each_member_in_order_within_the_bounds(
            items in proptest::collection::vec(0u8..20, 0..300),
            m in 1usize..8,
            e in 1usize..40,
        ) {
            let items: Vec<(u8, u32)> = items.into_iter().enumerate().map(|(i, k)| (k, i as u32)).collect();
            let slices = cut(&items, m, e);
            // every event exactly once
            let mut ids: Vec<u32> = slices.iter().flatten().map(|x| x.1).collect();
            ids.sort_unstable();
            prop_assert_eq!(ids, (0..items.len() as u32).collect::<Vec<_>>());
            // each member's events in their order, in a run of adjacent slices
            let mut seen: std::collections::HashMap<&str, (u32, usize)> = Default::default();
            for (k, s) in slices.iter().enumerate() {
                for x in s {
                    if let Some((i, at)) = seen.get(x.0.as_str()) {
                        prop_assert!(*i < x.1, "member {} out of order", x.0);
                        prop_assert!(k - at <= 1, "member {} split apart", x.0);
                    }
                    seen.insert(x.0.as_str(), (x.1, k));
                }
            }
            // and no slice ends early: it is full of events, or of members
            // with the next slice starting a new one
            for pair in slices.windows(2) {
                let (s, t) = (&pair[0], &pair[1]);
                let distinct = s.iter().map(|x| x.0.as_str()).collect::<std::collections::HashSet<_>>().len();
                let full_of_members = distinct == m && s.last().map(|x| &x.0) != t.first().map(|x| &x.0);
                prop_assert!(s.len() == e || full_of_members, "a slice ended early: {:?} then {:?}", s, t);
            }
            for s in &slices {
                prop_assert!(!s.is_empty() && s.len() <= e);
                let ms: std::collections::HashSet<&str> = s.iter().map(|x| x.0.as_str()).collect();
                prop_assert!(ms.len() <= m);
            }
        }
    }
}
