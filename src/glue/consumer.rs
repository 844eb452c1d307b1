//! The Queue consumer: groups a batch by board period and sends each board
//! one `/apply` per batch. A message is acked only when every board it feeds
//! confirmed; otherwise it is retried with a delay (boards dedupe by event
//! id, so the boards that already applied it are not counted twice).

use std::collections::BTreeMap;

use worker::{console_error, console_warn, Env, MessageBatch, MessageExt, QueueRetryOptionsBuilder};

use super::boards::spec;
use super::catalog;
use super::http::{call_object, now_ms, retention};
use crate::core::period::Period;
use crate::protocol::{ApplyBatch, ApplyEvent, ApplyResult, BoardSpec, QueuedEvent};

struct Group {
    spec: BoardSpec,
    events: Vec<ApplyEvent>,
    messages: Vec<usize>,
}

pub async fn consume(batch: MessageBatch<QueuedEvent>, env: Env) -> worker::Result<()> {
    let messages = batch.messages()?;
    let retry = QueueRetryOptionsBuilder::new().with_delay_seconds(2).build();
    let mut cat = match catalog::get(&env).await {
        Ok(c) => c,
        Err(_) => {
            batch.retry_all_with_options(&retry);
            return Ok(());
        }
    };
    // A board created after this isolate cached the catalog: refresh once.
    let stale = messages
        .iter()
        .flat_map(|m| m.body().to.iter())
        .any(|d| cat.boards.get(&d.board).is_none_or(|r| r.generation < d.generation));
    if stale {
        if let Ok(c) = catalog::fresh(&env).await {
            cat = c;
        }
    }
    let retention = retention(&env);
    let now = now_ms();

    let mut groups: BTreeMap<String, Group> = BTreeMap::new();
    for (i, m) in messages.iter().enumerate() {
        let ev = m.body();
        for d in &ev.to {
            let Some(r) = cat.boards.get(&d.board).filter(|r| r.generation == d.generation) else {
                // The board was deleted (or re-created) since: its old scores are gone.
                continue;
            };
            for w in &r.settings.windows {
                let p = Period::of(*w, ev.ts);
                if !retention.is_live(p, now) {
                    continue; // an event for a period no longer kept
                }
                let s = spec(&d.board, r, *w, &p.key());
                let g = groups.entry(s.object_name()).or_insert_with(|| Group {
                    spec: s,
                    events: vec![],
                    messages: vec![],
                });
                g.events.push(ApplyEvent {
                    id: ev.id.clone(),
                    member: ev.member.clone(),
                    value: d.value,
                    ts: ev.ts,
                    meta: ev.meta.clone(),
                });
                g.messages.push(i);
            }
        }
    }

    let ns = env.durable_object("BOARD")?;
    let calls = groups.into_values().map(|g| {
        let ns = &ns;
        async move {
            let ok = match ns.get_by_name(&g.spec.object_name()) {
                Ok(stub) => {
                    let batch = ApplyBatch { spec: g.spec.clone(), events: g.events };
                    call_object::<_, ApplyResult>(&stub, "/apply", &batch).await.is_ok()
                }
                Err(e) => {
                    console_error!("board stub: {e}");
                    false
                }
            };
            (ok, g.messages)
        }
    });
    let results = futures_util::future::join_all(calls).await;
    let mut failed = vec![false; messages.len()];
    for (ok, idx) in results {
        if !ok {
            for i in idx {
                failed[i] = true;
            }
        }
    }
    for (m, f) in messages.iter().zip(failed) {
        if f {
            console_warn!("retrying event {}", m.body().id);
            m.retry_with_options(&retry);
        } else {
            m.ack();
        }
    }
    Ok(())
}
