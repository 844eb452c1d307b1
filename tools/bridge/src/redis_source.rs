//! A Redis stream as a source: a consumer group read in `XREADGROUP` batches.
//! An entry is `XACK`ed only once Podium answered 202 for its event (or it
//! went to the dead-letter stream, in the same MULTI as its XACK), so a crash
//! leaves it pending: this consumer reads its own pending entries first when
//! it starts again, and `XAUTOCLAIM` takes over entries that another (dead)
//! consumer of the group left pending for `claim_idle_ms`. The event id is
//! `{stream}:{entry id}`, so a redelivered entry is applied once by Podium.

use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use redis::streams::{StreamAutoClaimOptions, StreamAutoClaimReply, StreamId, StreamReadOptions, StreamReadReply};
use redis::AsyncCommands;
use serde_json::Value as Json;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::config::RedisSource;
use crate::error::Result;
use crate::forward::{sleep_or_stop, Handled, Inflight, Sender, Verdict, Work};
use crate::mapping::{Message, Path};
use crate::stats::Stats;

struct Entry<'a> {
    stream: &'a str,
    id: String,
    fields: Vec<(String, String)>,
}

impl Message for Entry<'_> {
    fn get(&self, path: &Path) -> Option<Json> {
        match path {
            Path::Field(f) => self.fields.iter().find(|(k, _)| k == f).map(|(_, v)| Json::String(v.clone())),
            Path::Id => Some(Json::String(format!("{}:{}", self.stream, self.id))),
            Path::Source => Some(Json::String(self.stream.to_string())),
            _ => None,
        }
    }

    fn problem(&self) -> Option<String> {
        // An entry has at least one field: none means it was deleted (XDEL,
        // MAXLEN trimming) while pending, and only its id is left.
        self.fields.is_empty().then(|| "the entry was deleted from the stream while pending".to_string())
    }
}

pub async fn run(cfg: &RedisSource, mut sender: Sender, once: bool, mut stop: watch::Receiver<bool>) -> Result<()> {
    let cfg = Arc::new(cfg.clone());
    let client = redis::Client::open(cfg.url.as_str())?;
    // XREADGROUP BLOCK holds a reply for block_ms: the response timeout must outlast it.
    let conn_cfg = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(10)))
        .set_response_timeout(Some(Duration::from_millis(cfg.block_ms) + Duration::from_secs(30)));
    let mut con = client.get_multiplexed_async_connection_with_config(&conn_cfg).await?;
    let created: redis::RedisResult<()> = con.xgroup_create_mkstream(&cfg.stream, &cfg.group, &cfg.start).await;
    match created {
        Ok(()) => info!(stream = %cfg.stream, group = %cfg.group, start = %cfg.start, "created the consumer group"),
        Err(e) if e.code() == Some("BUSYGROUP") => {}
        Err(e) => return Err(e.into()),
    }
    // The lag poller has its own connection: a blocked XREADGROUP would delay it.
    let lag = tokio::spawn(poll_lag(client.get_multiplexed_async_connection_with_config(&conn_cfg).await?, cfg.clone(), sender.stats.clone()));
    let result = consume(&cfg, &mut con, &mut sender, once, &mut stop).await;
    lag.abort();
    result
}

async fn consume(cfg: &Arc<RedisSource>, con: &mut MultiplexedConnection, sender: &mut Sender, once: bool, stop: &mut watch::Receiver<bool>) -> Result<()> {
    // 1. This consumer's own pending entries: read before a crash, never acked.
    let mut cursor = "0".to_string();
    loop {
        let entries = read(cfg, con, &cursor, None).await?;
        let Some(last) = entries.last() else { break };
        cursor = last.id.clone();
        info!(stream = %cfg.stream, count = entries.len(), "re-sending entries this consumer had read but not acknowledged");
        if let Handled::Stopped = handle(cfg, con, sender, entries, stop).await? {
            return Ok(());
        }
    }
    // 2. New entries, a few batches in flight, taking over other consumers'
    // stale pending entries now and then. The claim waits for what is in
    // flight, so that a batch of ours waiting out a Podium outage is never
    // claimed back by ourselves.
    let claim_every = Duration::from_millis((cfg.claim_idle_ms / 2).max(100));
    let mut next_claim = Instant::now();
    let mut inflight = Inflight::new(cfg.inflight);
    loop {
        if *stop.borrow() || inflight.make_room().await? {
            break;
        }
        if Instant::now() >= next_claim {
            if inflight.drain().await? {
                break;
            }
            if let Handled::Stopped = claim(cfg, con, sender, stop).await? {
                break;
            }
            next_claim = Instant::now() + claim_every;
        }
        // Block only when idle: a blocked XREADGROUP would hold up the XACKs
        // of the batches in flight, which share this connection.
        let block = if once || !inflight.is_empty() { None } else { Some(cfg.block_ms) };
        let entries = read(cfg, con, ">", block).await?;
        if entries.is_empty() {
            if !inflight.is_empty() {
                if inflight.join_one().await? {
                    break;
                }
                continue;
            }
            // --once drains: a read that finds nothing new, with nothing in flight, ends it.
            if once {
                break;
            }
            continue;
        }
        let (cfg, mut con, mut sender, mut stop) = (cfg.clone(), con.clone(), sender.fork(), stop.clone());
        inflight.spawn(async move { handle(&cfg, &mut con, &mut sender, entries, &mut stop).await });
    }
    inflight.drain().await.map(|_| ())
}

async fn read(cfg: &RedisSource, con: &mut MultiplexedConnection, id: &str, block_ms: Option<u64>) -> Result<Vec<StreamId>> {
    let mut opts = StreamReadOptions::default().group(&cfg.group, &cfg.consumer).count(cfg.batch);
    if let Some(ms) = block_ms {
        opts = opts.block(ms as usize);
    }
    let reply: Option<StreamReadReply> = con.xread_options(&[&cfg.stream], &[id], &opts).await?;
    Ok(reply.into_iter().flat_map(|r| r.keys).flat_map(|k| k.ids).collect())
}

/// XAUTOCLAIM every entry of the group idle for claim_idle_ms, and forwards it.
async fn claim(cfg: &RedisSource, con: &mut MultiplexedConnection, sender: &mut Sender, stop: &mut watch::Receiver<bool>) -> Result<Handled> {
    let mut cursor = "0-0".to_string();
    loop {
        let reply: StreamAutoClaimReply = con
            .xautoclaim_options(&cfg.stream, &cfg.group, &cfg.consumer, cfg.claim_idle_ms, &cursor, StreamAutoClaimOptions::default().count(cfg.batch))
            .await?;
        if !reply.claimed.is_empty() {
            info!(stream = %cfg.stream, count = reply.claimed.len(), idle_ms = cfg.claim_idle_ms, "claimed entries another consumer left pending (XAUTOCLAIM)");
            if let Handled::Stopped = handle(cfg, con, sender, reply.claimed, stop).await? {
                return Ok(Handled::Stopped);
            }
        }
        if reply.next_stream_id == "0-0" {
            return Ok(Handled::Done);
        }
        cursor = reply.next_stream_id;
    }
}

/// Forwards one batch of entries; then dead-letters and acknowledges them in one MULTI.
async fn handle(cfg: &RedisSource, con: &mut MultiplexedConnection, sender: &mut Sender, entries: Vec<StreamId>, stop: &mut watch::Receiver<bool>) -> Result<Handled> {
    let entries: Vec<Entry> = entries
        .into_iter()
        .map(|e| Entry {
            stream: &cfg.stream,
            fields: e
                .map
                .iter()
                // A binary (non-UTF-8) value reads as missing: the mapping then names the field.
                .filter_map(|(k, v)| Some((k.clone(), redis::from_redis_value_ref::<String>(v).ok()?)))
                .collect(),
            id: e.id,
        })
        .collect();
    Stats::add(&sender.stats.received, entries.len());
    let mut work = Work::new(&cfg.mapping, &entries.iter().map(|e| e as &dyn Message).collect::<Vec<_>>(), &sender.stats, &cfg.stream);
    while let Some(wait) = sender.round(&mut work).await? {
        if sleep_or_stop(wait, stop).await {
            // Nothing of this batch is acked: it stays pending for the next start.
            return Ok(Handled::Stopped);
        }
    }
    let mut pipe = redis::pipe();
    pipe.atomic();
    let mut dead = 0;
    for (e, v) in entries.iter().zip(work.verdicts()) {
        if let Verdict::Dead(reason) = v {
            warn!(stream = %cfg.stream, id = %e.id, dead_letter = %cfg.dead_letter, %reason, "dead-lettered an entry");
            let mut fields: Vec<(String, String)> = e.fields.clone();
            fields.push(("podium_reason".into(), reason));
            fields.push(("podium_source".into(), format!("{}:{}", cfg.stream, e.id)));
            pipe.xadd(&cfg.dead_letter, "*", &fields).ignore();
            dead += 1;
        }
    }
    let ids: Vec<&str> = entries.iter().map(|e| e.id.as_str()).collect();
    pipe.xack(&cfg.stream, &cfg.group, &ids).ignore();
    pipe.query_async::<()>(con).await?;
    Stats::add(&sender.stats.dead_lettered, dead);
    Ok(Handled::Done)
}

/// Entries not yet acknowledged: never delivered to the group (`lag`, Redis
/// ≥ 7) plus delivered and pending.
async fn poll_lag(mut con: MultiplexedConnection, cfg: Arc<RedisSource>, stats: std::sync::Arc<Stats>) {
    loop {
        let groups: redis::RedisResult<redis::streams::StreamInfoGroupsReply> = con.xinfo_groups(&cfg.stream).await;
        if let Ok(g) = groups {
            if let Some(g) = g.groups.iter().find(|g| g.name == cfg.group) {
                stats.set_lag(&cfg.stream, (g.lag.unwrap_or(0) + g.pending) as u64);
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
