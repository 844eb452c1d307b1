//! Reads of a sharded board period (API 1.1 `shards`): each shard object
//! answers for its own members (`ShardQuery`), `core::shards` merges. Every
//! read is exact: the same entries, ranks, totals and percentiles as one
//! object fed the same events (the core's property test checks the merge).
//!
//! Round trips, all shards called at once in each:
//! - `top`: one (each shard's best `offset + limit`).
//! - a member's standing: two (its shard for its spot, then every shard's
//!   counts against it).
//! - `around`: two, a third under `shared` ties when the window's first
//!   entry may tie with entries before the window.
//! - `lookup`: two (the members' shards, then every shard's counts).
//! - listings take one more for `prev_rank` when the board has a
//!   checkpoint: each entry's place at its own shard's checkpoint, counted
//!   in every shard's checkpoint (`Checkpoint::count_before`), the same rank
//!   one object's checkpoint would give.
//!
//! An unsharded period is one call, as before.

use futures_util::future::try_join_all;
use worker::Env;

use super::boards::BoardClient;
use super::http::ApiResult;
use crate::core::ranking::{Counts, Spot};
use crate::core::shards;
use crate::core::Ties;
use crate::protocol::{BoardQuery, BoardSpec, EntryOut, QueryOut, ShardOut, ShardQuery};

/// Asks one shard.
async fn one(env: &Env, shard: &BoardSpec, q: ShardQuery) -> ApiResult<ShardOut> {
    BoardClient::of(env, shard)?.shard(q).await
}

/// Asks every shard of the period at once; answers in shard order.
async fn every(env: &Env, spec: &BoardSpec, q: &ShardQuery) -> ApiResult<Vec<ShardOut>> {
    try_join_all(spec.every_shard().into_iter().map(|s| {
        let q = q.clone();
        async move { one(env, &s, q).await }
    }))
    .await
}

/// Where an entry of this board sorts, from its wire form.
fn spot(spec: &BoardSpec, e: &EntryOut, reached: i64) -> Spot {
    Spot::of(spec.order, spec.tiebreak, e.score, e.subscore.unwrap_or(0.0), reached, &e.member)
}

/// An entry and where its member sorted at its shard's last checkpoint.
type Item = (EntryOut, Option<Spot>);

/// A shard's entries with their spots, in the shard's order.
fn spotted(spec: &BoardSpec, o: ShardOut) -> Vec<(Spot, Item)> {
    let mut prev = o.prev.into_iter();
    o.entries
        .into_iter()
        .zip(o.reached)
        .map(|(e, r)| (spot(spec, &e, r), (e, prev.next().flatten())))
        .collect()
}

/// The entries with their `prev_rank`: 1 + every shard's checkpoint
/// entries before each one's place at its own shard's checkpoint.
async fn with_prev(
    env: &Env,
    spec: &BoardSpec,
    ties: Ties,
    items: Vec<(Item, u64)>,
) -> ApiResult<Vec<EntryOut>> {
    let prev: Vec<Spot> = items.iter().filter_map(|((_, p), _)| p.clone()).collect();
    let outs = if prev.is_empty() {
        vec![]
    } else {
        every(env, spec, &ShardQuery::Counts { spots: vec![], reader: None, prev, ties }).await?
    };
    let mut i = 0;
    Ok(items
        .into_iter()
        .map(|((e, p), rank)| {
            let prev_rank = p.map(|_| {
                i += 1;
                prev_rank_at(&outs, i - 1)
            });
            EntryOut { rank, prev_rank, ..e }
        })
        .collect())
}

/// The shards' counts against their `i`-th spot, summed.
fn sum_at(outs: &[ShardOut], i: usize) -> Counts {
    outs.iter().filter_map(|o| o.counts.get(i).copied()).sum()
}

/// The rank at the checkpoint of the `i`-th `prev` spot: 1 + the shards'
/// checkpoint entries before it.
fn prev_rank_at(outs: &[ShardOut], i: usize) -> u64 {
    1 + outs.iter().filter_map(|o| o.prev_counts.get(i)).sum::<u64>()
}

/// How many visible entries of the whole period (as `reader` sees them)
/// have a strictly better rank key than `spot`: one round over every shard.
async fn better_than(
    env: &Env,
    spec: &BoardSpec,
    spot: &Spot,
    reader: Option<String>,
    ties: Ties,
) -> ApiResult<u64> {
    let q = ShardQuery::Counts { spots: vec![spot.clone()], reader, prev: vec![], ties };
    Ok(sum_at(&every(env, spec, &q).await?, 0).better)
}

/// Visible members and applied events of the whole period.
fn sizes(outs: &[ShardOut]) -> (u64, u64) {
    (outs.iter().map(|o| o.total).sum(), outs.iter().map(|o| o.events).sum())
}

fn not_found(total: u64, events: u64) -> QueryOut {
    QueryOut { total, events, found: false, entries: vec![], standing: None }
}

/// A read of the board period `spec`, whatever its shard count.
pub async fn query(env: &Env, spec: &BoardSpec, q: BoardQuery) -> ApiResult<QueryOut> {
    if !spec.is_sharded() {
        return BoardClient::of(env, spec)?.query(q).await;
    }
    match q {
        BoardQuery::Top { offset, limit, ties } => top(env, spec, offset, limit, ties).await,
        BoardQuery::Rank { member, ties } => rank(env, spec, member, ties).await,
        BoardQuery::Around { member, radius, ties } => around(env, spec, member, radius, ties).await,
        BoardQuery::Lookup { members, ties } => lookup(env, spec, members, ties).await,
    }
}

/// The most entries a sharded `top` gathers from its shards in all. A page
/// whose `offset + limit` from every shard would pass it is a deep page
/// (`deep_top`): its start is found by probing, and each shard sends only
/// a window around it.
pub const MAX_GATHERED: usize = 100_000;
/// Probes per shard and round of a deep page: each round narrows a shard's
/// bounds about this many times + 1, and every probe bounds every shard.
const PROBES: usize = 16;
/// A deep page that has not settled after this many rounds (only writes
/// racing the read could do that) is refused as busy.
const MAX_ROUNDS: usize = 12;

/// `MAX_GATHERED`, or with test faults on `SHARD_GATHER_MAX` (tests make
/// pages of a few hundred members deep, so that they are probed).
fn gather_max(env: &Env) -> usize {
    let test = || env.var("SHARD_GATHER_MAX").ok()?.to_string().parse().ok();
    super::faults::faults_on(env).then(test).flatten().unwrap_or(MAX_GATHERED)
}

async fn top(env: &Env, spec: &BoardSpec, offset: usize, limit: usize, ties: Ties) -> ApiResult<QueryOut> {
    let each = offset.saturating_add(limit);
    let budget = gather_max(env);
    if each.saturating_mul(spec.shards as usize) > budget {
        return deep_top(env, spec, offset, limit, ties, budget).await;
    }
    let outs = every(env, spec, &ShardQuery::Top { offset: 0, limit: each }).await?;
    let (total, events) = sizes(&outs);
    let lists = outs.into_iter().map(|o| spotted(spec, o)).collect();
    let page = shards::top(lists, offset, limit, ties).into_iter().map(|(_, e, r)| (e, r)).collect();
    let entries = with_prev(env, spec, ties, page).await?;
    Ok(QueryOut { total, events, found: true, entries, standing: None })
}

/// A page too deep for every shard to send its best `offset + limit`
/// (`core::shards::DeepPage`): the shards' totals; rounds of probes (up to
/// `PROBES` entries a shard, fetched, then counted on every shard) until
/// the windows hold at most `budget` entries; each shard's window;
/// and, under `shared` ties, the first entry's count of better ones. As
/// exact as a shallow page; 4 + 2 a round calls of every shard.
async fn deep_top(
    env: &Env,
    spec: &BoardSpec,
    offset: usize,
    limit: usize,
    ties: Ties,
    budget: usize,
) -> ApiResult<QueryOut> {
    let outs = every(env, spec, &ShardQuery::Top { offset: 0, limit: 0 }).await?;
    let (total, events) = sizes(&outs);
    let totals: Vec<u64> = outs.iter().map(|o| o.total).collect();
    let mut deep = shards::DeepPage::new(offset as u64, limit, totals, budget);
    let mut rounds = 0;
    while !deep.settled() {
        rounds += 1;
        if rounds > MAX_ROUNDS {
            return Err(crate::error::ApiError::Overloaded { retry_after_s: 1 });
        }
        let asks =
            deep.probes(PROBES).into_iter().enumerate().filter(|(_, p)| !p.is_empty()).map(|(k, places)| {
                let shard = spec.shard(k as u16);
                async move {
                    let out = one(env, &shard, ShardQuery::At { places: places.clone() }).await?;
                    ApiResult::Ok((k, places, out))
                }
            });
        // (shard, place) and spot of each probe whose entry came back
        let (mut probes, mut spots): (Vec<(usize, u64)>, Vec<Spot>) = (Vec::new(), Vec::new());
        for (k, places, out) in try_join_all(asks).await? {
            // Places rise, so a shard that shrank since its total answers a
            // prefix of them: those are probes all the same.
            for (p, (s, _)) in places.into_iter().zip(spotted(spec, out)) {
                probes.push((k, p));
                spots.push(s);
            }
        }
        let counted =
            every(env, spec, &ShardQuery::Counts { spots, reader: None, prev: vec![], ties }).await?;
        for (i, (k, place)) in probes.iter().enumerate() {
            let before: Vec<u64> = counted.iter().map(|o| o.counts.get(i).map_or(0, |c| c.before)).collect();
            deep.narrow(*k, *place, &before);
        }
    }
    let skip = deep.skip() as usize;
    let asks = deep.windows().into_iter().enumerate().map(|(k, (from, n))| {
        let shard = spec.shard(k as u16);
        async move {
            if n == 0 {
                return ApiResult::Ok(ShardOut::default());
            }
            one(env, &shard, ShardQuery::Top { offset: from as usize, limit: n as usize }).await
        }
    });
    let lists = try_join_all(asks).await?.into_iter().map(|o| spotted(spec, o)).collect();
    let page: Vec<(Spot, Item)> = shards::merge(lists).into_iter().skip(skip).take(limit).collect();
    // Under shared ties the first entry may tie with entries before the page.
    let better_first = match page.first() {
        Some((first, _)) if ties == Ties::Shared => better_than(env, spec, first, None, ties).await?,
        _ => 0,
    };
    let spots: Vec<&Spot> = page.iter().map(|(s, _)| s).collect();
    let ranks = shards::ranks(&spots, offset as u64, better_first, ties);
    let items = page.into_iter().map(|(_, item)| item).zip(ranks).collect();
    let entries = with_prev(env, spec, ties, items).await?;
    Ok(QueryOut { total, events, found: true, entries, standing: None })
}

/// The member's own standing on its shard, and its spot.
async fn own(env: &Env, spec: &BoardSpec, member: &str, ties: Ties) -> ApiResult<Option<(ShardOut, Spot)>> {
    let shard = spec.clone().for_member(member);
    let out = one(env, &shard, ShardQuery::Own { member: member.to_string(), ties }).await?;
    let spot = out.standing.as_ref().map(|st| {
        Spot::of(spec.order, spec.tiebreak, st.score, st.subscore.unwrap_or(0.0), out.own_reached, member)
    });
    Ok(spot.map(|s| (out, s)))
}

async fn rank(env: &Env, spec: &BoardSpec, member: String, ties: Ties) -> ApiResult<QueryOut> {
    let Some((mut mine, spot)) = own(env, spec, &member, ties).await? else {
        return Ok(not_found(0, 0));
    };
    let prev: Vec<Spot> = mine.own_prev.take().into_iter().collect();
    let had_prev = !prev.is_empty();
    let q = ShardQuery::Counts { spots: vec![spot], reader: Some(member), prev, ties };
    let outs = every(env, spec, &q).await?;
    let (total, events) = sizes(&outs);
    let (rank, all, percentile) = shards::standing(sum_at(&outs, 0), ties);
    let prev_rank = had_prev.then(|| prev_rank_at(&outs, 0));
    let standing = mine.standing.take().map(|st| crate::protocol::StandingOut {
        rank,
        total: all,
        percentile,
        prev_rank,
        ..st
    });
    Ok(QueryOut { total, events, found: true, entries: vec![], standing })
}

async fn around(
    env: &Env,
    spec: &BoardSpec,
    member: String,
    radius: usize,
    ties: Ties,
) -> ApiResult<QueryOut> {
    let Some((_, spot)) = own(env, spec, &member, ties).await? else {
        return Ok(not_found(0, 0));
    };
    let near = ShardQuery::Near {
        spot: spot.clone(),
        reader: Some(member.clone()),
        before: radius,
        after: radius + 1,
    };
    let outs = every(env, spec, &near).await?;
    let (total, events) = sizes(&outs);
    let mine = sum_at(&outs, 0);
    let (mut before, mut after) = (Vec::with_capacity(outs.len()), Vec::with_capacity(outs.len()));
    for o in outs {
        let split = o.split;
        let mut list = spotted(spec, o);
        let rest = list.split_off(split.min(list.len()));
        before.push(list);
        after.push(rest);
    }
    let (window, start) = shards::around(before, after, radius, mine.before);
    // Under shared ties the first entry's rank counts the entries strictly
    // better than it, which may lie before the window: one more round,
    // unless it is the member's own tie group (counted already).
    let better_first = match window.first() {
        Some((first, _)) if ties == Ties::Shared && start > 0 => {
            if first.ties_with(&spot) {
                mine.better
            } else {
                better_than(env, spec, first, Some(member), ties).await?
            }
        }
        _ => 0,
    };
    let spots: Vec<&Spot> = window.iter().map(|(s, _)| s).collect();
    let ranks = shards::ranks(&spots, start, better_first, ties);
    let entries = with_prev(env, spec, ties, window.into_iter().map(|(_, e)| e).zip(ranks).collect()).await?;
    Ok(QueryOut { total, events, found: true, entries, standing: None })
}

async fn lookup(env: &Env, spec: &BoardSpec, members: Vec<String>, ties: Ties) -> ApiResult<QueryOut> {
    // Each member from its own shard...
    let mut by_shard: Vec<Vec<String>> = vec![Vec::new(); spec.shards.max(1) as usize];
    for m in members {
        if let Some(list) = by_shard.get_mut(shards::shard_of(&m, spec.shards) as usize) {
            list.push(m);
        }
    }
    let asks = by_shard.into_iter().enumerate().filter(|(_, m)| !m.is_empty()).map(|(k, members)| {
        let shard = spec.shard(k as u16);
        async move { one(env, &shard, ShardQuery::Lookup { members }).await }
    });
    let mut found: Vec<(Spot, Item)> = Vec::new();
    for o in try_join_all(asks).await? {
        found.extend(spotted(spec, o));
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found.dedup_by(|a, b| a.0 == b.0);
    // ...then ranked against every shard.
    let spots: Vec<Spot> = found.iter().map(|(s, _)| s.clone()).collect();
    // (with the checkpoint counts for `prev_rank` in the same round)
    let prev: Vec<Spot> = found.iter().filter_map(|(_, (_, p))| p.clone()).collect();
    let outs = every(env, spec, &ShardQuery::Counts { spots, reader: None, prev, ties }).await?;
    let (total, events) = sizes(&outs);
    let mut p = 0;
    let entries = found
        .into_iter()
        .enumerate()
        .map(|(i, (_, (e, prev)))| {
            let prev_rank = prev.map(|_| {
                p += 1;
                prev_rank_at(&outs, p - 1)
            });
            EntryOut { rank: shards::rank_of(sum_at(&outs, i), ties), prev_rank, ..e }
        })
        .collect();
    Ok(QueryOut { total, events, found: true, entries, standing: None })
}
