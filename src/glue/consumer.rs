//! The Queue consumer. Each message is a pack of events (protocol
//! `QueuedPack`) and is decoded on its own: one that does not decode is
//! retried alone (and dead-lettered after its retries), never failing the
//! rest of the batch. The events of all good messages are grouped by board
//! period and each board period gets one `Apply` per batch. A message is
//! acked only when every board period its events feed confirmed; otherwise
//! it is retried with a delay (boards dedupe by event id, so the boards that
//! already applied it do not count it twice).

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};

use wasm_bindgen::JsValue;
use worker::{
    console_error, console_warn, Env, MessageBatch, MessageExt, QueueRetryOptionsBuilder, RawMessage,
};

use super::boards::{spec, BoardClient};
use super::catalog;
use super::http::ApiResult;
use super::intake::confirm;
use super::platform::{now_ms, retention};
use crate::core::catalog::Catalog;
use crate::core::retention::Retention;
use crate::core::shards::shard_of;
use crate::core::Window;
use crate::domain::event::MAX_FUTURE_MS;
use crate::domain::BoardName;
use crate::protocol::{ApplyBatch, ApplyEvent, BoardSpec, QueuedPack};

pub struct Group {
    pub spec: BoardSpec,
    pub events: Vec<ApplyEvent>,
    /// Which messages (by index in the batch) fed this group.
    pub messages: Vec<usize>,
}

/// The events of the decoded messages (`None`: did not decode), grouped by
/// the board period each feeds under the catalog's current boards, keyed by
/// the period's object name.
pub fn group(
    packs: &[Option<QueuedPack>],
    cat: &Catalog,
    retention: &Retention,
    now: i64,
) -> BTreeMap<String, Group> {
    // Groups are found by (board, window, period, shard): a board's
    // generation is fixed within one catalog, so that names one object. A
    // group's spec and object name are built once, when it is first met,
    // not for every event (they were ~1 µs of each event's consumer time).
    let mut found: HashMap<(&str, Window, String, u16), usize> = HashMap::new();
    let mut groups: Vec<Group> = Vec::new();
    for (i, pack) in packs.iter().enumerate() {
        let Some(pack) = pack else { continue };
        for ev in &pack.events {
            for d in &ev.to {
                let Some(r) = cat.boards.get(&d.board).filter(|r| r.generation == d.generation) else {
                    // The board was deleted (or re-created) since: its old scores are gone.
                    continue;
                };
                // An event ahead of the clock (ingest allows 5 minutes)
                // counts in its own period, even one not begun yet.
                for (w, key) in r.landing_periods(ev.ts, pack.at, retention, now, MAX_FUTURE_MS) {
                    // A sharded board's member lives in one of its objects.
                    let shard = shard_of(&ev.member, r.settings.shards);
                    let k = match found.entry((d.board.as_str(), w, key, shard)) {
                        Entry::Occupied(o) => *o.get(),
                        Entry::Vacant(v) => {
                            let s = spec(&d.board, r, w, &v.key().2).for_member(&ev.member);
                            groups.push(Group { spec: s, events: vec![], messages: vec![] });
                            *v.insert(groups.len() - 1)
                        }
                    };
                    let Some(g) = groups.get_mut(k) else { continue };
                    g.events.push(ApplyEvent {
                        id: ev.id.clone(),
                        member: ev.member.clone(),
                        value: d.value,
                        sub: ev.sub,
                        ts: ev.ts,
                        meta: ev.meta.clone(),
                        at: pack.at,
                    });
                    if g.messages.last() != Some(&i) {
                        g.messages.push(i);
                    }
                }
            }
        }
    }
    groups.into_iter().map(|g| (g.spec.object_name(), g)).collect()
}

pub fn decode(m: &RawMessage) -> Result<QueuedPack, String> {
    let body = m.body();
    match body.as_string() {
        Some(text) => serde_json::from_str(&text).map_err(|e| e.to_string()),
        None => Err("message body is not text".into()),
    }
}

pub async fn consume(batch: MessageBatch<JsValue>, env: Env) -> worker::Result<()> {
    let retry = QueueRetryOptionsBuilder::new().with_delay_seconds(2).build();
    let raw: Vec<RawMessage> = batch.raw_iter().collect();
    let mut packs: Vec<Option<QueuedPack>> = Vec::with_capacity(raw.len());
    for m in &raw {
        match decode(m) {
            Ok(p) => packs.push(Some(p)),
            Err(e) => {
                console_error!("message {} does not decode ({e}); retrying it alone", m.id());
                m.retry_with_options(&retry);
                packs.push(None);
            }
        }
    }
    let Ok(cat) = catalog_for(&env, &packs).await else {
        for (m, p) in raw.iter().zip(&packs) {
            if p.is_some() {
                m.retry_with_options(&retry);
            }
        }
        return Ok(());
    };
    let groups = group(&packs, &cat, &retention(&env), now_ms());

    let calls = groups.into_values().map(|g| {
        let env = &env;
        async move {
            let ok = match BoardClient::of(env, &g.spec) {
                Ok(board) => {
                    let batch = ApplyBatch { spec: g.spec.clone(), events: g.events };
                    match board.apply(batch).await {
                        // Events the board refused (full) are kept as dead
                        // letters; if they cannot be, the message is retried.
                        Ok(r) if !r.rejected.is_empty() => {
                            super::dead::store_full(env, &g.spec, r.rejected).await.is_ok()
                        }
                        Ok(_) => true,
                        Err(_) => false,
                    }
                }
                Err(_) => false,
            };
            (ok, g.messages)
        }
    });
    let results = futures_util::future::join_all(calls).await;
    let mut failed = vec![false; raw.len()];
    for (ok, idx) in results {
        if !ok {
            for i in idx {
                if let Some(f) = failed.get_mut(i) {
                    *f = true;
                }
            }
        }
    }
    let applied: Vec<bool> = failed.iter().map(|f| !f).collect();
    confirm_all(&env, &packs, &applied).await;
    for ((m, f), p) in raw.iter().zip(failed).zip(&packs) {
        if p.is_none() {
            continue; // already retried as undecodable
        }
        if f {
            console_warn!("retrying message {}", m.id());
            m.retry_with_options(&retry);
        } else {
            m.ack();
        }
    }
    Ok(())
}

/// The records of the boards the batch feeds, at least as new as the
/// newest message's acceptance, and refreshed once more when a message names
/// a board generation it does not know yet.
pub async fn catalog_for(env: &Env, packs: &[Option<QueuedPack>]) -> ApiResult<Catalog> {
    // A season begun after the cached copy was fetched decides where events
    // accepted since go: a message accepted after the copy needs a newer one.
    // (One catalog read per batch at most, of the boards it names; a batch
    // carries up to 100,000 events.)
    let newest = packs.iter().flatten().map(|p| p.at).max().unwrap_or(0);
    let deliveries = || packs.iter().flatten().flat_map(|p| &p.events).flat_map(|ev| &ev.to);
    let mut names: Vec<BoardName> = deliveries().map(|d| d.board.clone()).collect();
    names.sort_unstable();
    names.dedup();
    let cat = catalog::as_of(env, newest, &names).await?;
    let stale = deliveries().any(|d| cat.boards.get(&d.board).is_none_or(|r| r.generation < d.generation));
    if stale {
        if let Ok(c) = catalog::fresh(env, &names).await {
            return Ok(c);
        }
    }
    Ok(cat)
}

/// Tells each intake which of its messages are done with (`done[i]` for
/// `packs[i]`), so it forgets them instead of sending them again. A
/// confirmation that fails only means a harmless second delivery.
pub async fn confirm_all(env: &Env, packs: &[Option<QueuedPack>], done: &[bool]) {
    let mut by_src: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    for (p, d) in packs.iter().zip(done) {
        if let (Some(QueuedPack { src: Some(src), seq: Some(seq), .. }), true) = (p, d) {
            by_src.entry(src.as_str()).or_default().push(*seq);
        }
    }
    let confirms = by_src.into_iter().map(|(src, seqs)| async move {
        if confirm(env, src, seqs).await.is_err() {
            console_warn!("intake {src} not told; its messages will be sent again (harmless)");
        }
    });
    futures_util::future::join_all(confirms).await;
}
