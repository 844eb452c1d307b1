//! A RabbitMQ queue (AMQP 0-9-1) as a source. Manual acknowledgements: the
//! broker hands over up to `batch × inflight` unacknowledged messages (the
//! prefetch), the bridge sends each batch to Podium in one request, a few
//! batches in flight, and acks a message only after the 202 (a dead letter
//! once its publish to the dead-letter queue is confirmed). When Podium is unavailable the batch is nacked with requeue,
//! so the broker keeps it, and the bridge waits out its backoff.
//!
//! The event id is the AMQP `message-id` (or a field the mapping names). A
//! message with neither, like the second seed's pika producer sends, can only
//! be delivered at least once: a crash between Podium's 202 and the ack
//! makes the broker redeliver it and Podium count it again. Such messages
//! are counted (`no-identity` in the progress line and the final summary).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{Channel, Connection, ConnectionProperties};
use serde_json::Value as Json;
use tokio::sync::{watch, Mutex};
use tracing::{info, warn};

use crate::config::AmqpSource;
use crate::error::{Error, Result};
use crate::forward::{sleep_or_stop, Handled, Inflight, Sender, Verdict, Work};
use crate::mapping::{json_path, Message, Path};
use crate::stats::Stats;

struct Msg<'a> {
    queue: &'a str,
    d: &'a Delivery,
    /// The body parsed as JSON once, or why it is not JSON.
    body: std::result::Result<Json, String>,
}

impl Message for Msg<'_> {
    fn get(&self, path: &Path) -> Option<Json> {
        let p = &self.d.properties;
        match path {
            Path::Body(keys) => json_path(self.body.as_ref().ok()?, keys),
            Path::Header(h) => p.headers().as_ref()?.inner().get(h.as_str()).and_then(amqp_json),
            Path::RoutingKey => Some(Json::String(self.d.routing_key.as_str().to_string())),
            Path::MessageId | Path::Id => p.message_id().as_ref().map(|m| Json::String(m.as_str().to_string())),
            Path::Timestamp => p.timestamp().map(Json::from),
            Path::Source => Some(Json::String(self.queue.to_string())),
            Path::Field(_) => None,
        }
    }

    fn problem(&self) -> Option<String> {
        self.body.as_ref().err().cloned()
    }
}

/// A header value as JSON (numbers, strings, booleans; other AMQP types read as missing).
fn amqp_json(v: &AMQPValue) -> Option<Json> {
    Some(match v {
        AMQPValue::Boolean(b) => Json::Bool(*b),
        AMQPValue::ShortShortInt(n) => Json::from(*n),
        AMQPValue::ShortShortUInt(n) => Json::from(*n),
        AMQPValue::ShortInt(n) => Json::from(*n),
        AMQPValue::ShortUInt(n) => Json::from(*n),
        AMQPValue::LongInt(n) => Json::from(*n),
        AMQPValue::LongUInt(n) => Json::from(*n),
        AMQPValue::LongLongInt(n) => Json::from(*n),
        AMQPValue::Timestamp(n) => Json::from(*n),
        AMQPValue::Float(f) => Json::Number(serde_json::Number::from_f64(f64::from(*f))?),
        AMQPValue::Double(f) => Json::Number(serde_json::Number::from_f64(*f)?),
        AMQPValue::ShortString(s) => Json::String(s.as_str().to_string()),
        AMQPValue::LongString(s) => Json::String(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        _ => return None,
    })
}

pub async fn run(cfg: &AmqpSource, sender: Sender, once: bool, mut stop: watch::Receiver<bool>) -> Result<()> {
    let cfg = Arc::new(cfg.clone());
    let conn = Connection::connect(&cfg.url, ConnectionProperties::default()).await?;
    let ch = conn.create_channel().await?;
    if cfg.declare {
        // Declared as the producer declares it (the seed: a plain, non-durable
        // queue_declare); a mismatch is the broker's PRECONDITION_FAILED.
        let opts = QueueDeclareOptions { durable: cfg.durable, ..QueueDeclareOptions::default() };
        ch.queue_declare(cfg.queue.as_str().into(), opts, FieldTable::default()).await?;
    }
    // Dead letters go through a confirmed channel into a durable queue: the
    // original is acked only once the broker holds its dead letter.
    let dl = conn.create_channel().await?;
    dl.confirm_select(ConfirmSelectOptions::default()).await?;
    dl.queue_declare(cfg.dead_letter.as_str().into(), QueueDeclareOptions::durable(), FieldTable::default()).await?;
    // Enough unacked messages for every batch in flight.
    let prefetch = (cfg.batch * cfg.inflight).min(u16::MAX as usize) as u16;
    ch.basic_qos(prefetch, BasicQosOptions::default()).await?;
    let mut consumer = ch
        .basic_consume(cfg.queue.as_str().into(), "podium-bridge".into(), BasicConsumeOptions::default(), FieldTable::default())
        .await?;
    let lag = tokio::spawn(poll_lag(conn.create_channel().await?, cfg.queue.clone(), sender.stats.clone()));
    let linger = Duration::from_millis(cfg.linger_ms);
    let mut inflight = Inflight::new(cfg.inflight);
    let acks = Arc::new(Acks { ch: ch.clone(), batches: Mutex::new(VecDeque::new()) });
    let result = async {
        loop {
            if *stop.borrow() || inflight.make_room().await? {
                break;
            }
            let first = if once {
                // --once: drained when nothing arrives for a second, nothing is in flight and the broker holds nothing ready.
                match tokio::time::timeout(Duration::from_secs(1), consumer.next()).await {
                    Ok(d) => d,
                    Err(_) if !inflight.is_empty() => {
                        if inflight.join_one().await? {
                            break;
                        }
                        continue;
                    }
                    Err(_) if ready(&ch, &cfg.queue).await? == 0 => break,
                    Err(_) => continue,
                }
            } else {
                tokio::select! {
                    d = consumer.next() => d,
                    _ = stop.changed() => break,
                    // A batch that failed for good ends the source now, not at the next delivery.
                    done = inflight.join_one(), if !inflight.is_empty() => {
                        if done? {
                            break;
                        }
                        continue;
                    }
                }
            };
            let mut batch = vec![delivery(first)?];
            // Whatever else the broker has ready, waiting at most `linger` for it.
            while batch.len() < cfg.batch {
                match tokio::time::timeout(linger, consumer.next()).await {
                    Ok(d) => batch.push(delivery(d)?),
                    Err(_) => break,
                }
            }
            acks.open(batch.last().map_or(0, |d| d.delivery_tag)).await;
            let (cfg, ch, dl, acks, mut sender, mut stop) = (cfg.clone(), ch.clone(), dl.clone(), acks.clone(), sender.fork(), stop.clone());
            inflight.spawn(async move {
                match handle(&cfg, &ch, &dl, &acks, &mut sender, &batch).await? {
                    // Podium unavailable: the batch is back in the queue; this slot waits out the backoff.
                    Some(wait) if sleep_or_stop(wait, &mut stop).await => Ok(Handled::Stopped),
                    _ => Ok(Handled::Done),
                }
            });
        }
        inflight.drain().await.map(|_| ())
    }
    .await;
    lag.abort();
    // Unacked deliveries go back to the queue when the connection closes.
    let _ = conn.close(200, "podium-bridge stopping".into()).await;
    result
}

/// How a batch in flight ended, for [`Acks`].
#[derive(Clone, Copy, PartialEq)]
enum Settled {
    /// Not yet.
    InFlight,
    /// Every message forwarded or dead-lettered: acked with the batches before it.
    Whole,
    /// Already acked and nacked message by message.
    OneByOne,
}

/// Acks batches in delivery order, one `multiple` ack for all that are done.
/// A batch's delivery tags are contiguous (read in order from one channel),
/// so a `multiple` ack up to the last tag of a finished run of batches
/// settles exactly them; a batch finished early waits for those before it,
/// since the same ack would settle their messages too. One frame per batch
/// rather than one per message keeps the broker's work per message low.
struct Acks {
    ch: Channel,
    batches: Mutex<VecDeque<(u64, Settled)>>,
}

impl Acks {
    /// Registers a batch (its last delivery tag) before it is sent.
    async fn open(&self, last_tag: u64) {
        self.batches.lock().await.push_back((last_tag, Settled::InFlight));
    }

    async fn settle(&self, last_tag: u64, how: Settled) -> Result<()> {
        // Held across the ack, so acks leave in tag order.
        let mut q = self.batches.lock().await;
        if let Some(b) = q.iter_mut().find(|b| b.0 == last_tag) {
            b.1 = how;
        }
        let mut upto = None;
        while let Some(&(tag, how)) = q.front() {
            match how {
                Settled::InFlight => break,
                Settled::Whole => upto = Some(tag),
                Settled::OneByOne => {}
            }
            q.pop_front();
        }
        if let Some(tag) = upto {
            self.ch.basic_ack(tag, BasicAckOptions { multiple: true }).await?;
        }
        Ok(())
    }
}

fn delivery(d: Option<lapin::Result<Delivery>>) -> Result<Delivery> {
    match d {
        Some(d) => Ok(d?),
        None => Err(Error::Broker("the broker cancelled the consumer".into())),
    }
}

/// Messages ready in the queue (not counting those delivered and unacked).
async fn ready(ch: &Channel, queue: &str) -> Result<u32> {
    let q = ch.queue_declare(queue.into(), QueueDeclareOptions { passive: true, ..QueueDeclareOptions::default() }, FieldTable::default()).await?;
    Ok(q.message_count())
}

/// Forwards one batch. Acks what Podium took or what went to the dead
/// letters (through [`Acks`]); nacks the rest with requeue and returns the
/// backoff to wait.
async fn handle(cfg: &AmqpSource, ch: &Channel, dl: &Channel, acks: &Acks, sender: &mut Sender, batch: &[Delivery]) -> Result<Option<Duration>> {
    Stats::add(&sender.stats.received, batch.len());
    let msgs: Vec<Msg> = batch
        .iter()
        .map(|d| Msg { queue: &cfg.queue, d, body: serde_json::from_slice(&d.data).map_err(|e| format!("body is not JSON: {e}")) })
        .collect();
    let mut work = Work::new(&cfg.mapping, &msgs.iter().map(|m| m as &dyn Message).collect::<Vec<_>>(), &sender.stats, &cfg.queue);
    let wait = sender.round(&mut work).await?;
    let verdicts = work.verdicts();
    let mut dead = 0;
    for (d, v) in batch.iter().zip(&verdicts) {
        if let Verdict::Dead(reason) = v {
            warn!(queue = %cfg.queue, delivery_tag = d.delivery_tag, dead_letter = %cfg.dead_letter, %reason, "dead-lettered a message");
            dead_letter(cfg, dl, d, reason).await?;
            dead += 1;
        }
    }
    Stats::add(&sender.stats.dead_lettered, dead);
    let last = batch.last().map_or(0, |d| d.delivery_tag);
    if wait.is_none() {
        acks.settle(last, Settled::Whole).await?;
        return Ok(None);
    }
    // Podium unavailable: what is not yet sent goes back to the queue; the
    // rest of this batch is acked one by one (the frames queued together).
    let mut requeued = 0;
    let mut settle = Vec::with_capacity(batch.len());
    for (d, v) in batch.iter().zip(&verdicts) {
        if *v == Verdict::Pending {
            requeued += 1;
            settle.push(futures_util::future::Either::Left(ch.basic_nack(d.delivery_tag, BasicNackOptions { multiple: false, requeue: true })));
        } else {
            settle.push(futures_util::future::Either::Right(ch.basic_ack(d.delivery_tag, BasicAckOptions { multiple: false })));
        }
    }
    futures_util::future::try_join_all(settle).await?;
    acks.settle(last, Settled::OneByOne).await?;
    info!(queue = %cfg.queue, requeued, "nacked messages back to the broker (requeue) until podium answers");
    Ok(wait)
}

async fn dead_letter(cfg: &AmqpSource, dl: &Channel, d: &Delivery, reason: &str) -> Result<()> {
    let mut headers = d.properties.headers().clone().unwrap_or_default();
    headers.insert("x-podium-reason".into(), AMQPValue::LongString(reason.into()));
    headers.insert("x-podium-source-queue".into(), AMQPValue::LongString(cfg.queue.as_str().into()));
    let props = d.properties.clone().with_headers(headers);
    let confirm = dl
        .basic_publish(ShortString::from(""), cfg.dead_letter.as_str().into(), BasicPublishOptions::default(), &d.data, props)
        .await?
        .await?;
    if !confirm.is_ack() {
        return Err(Error::Broker(format!("the broker refused the dead letter for queue {}", cfg.dead_letter)));
    }
    Ok(())
}

async fn poll_lag(ch: Channel, queue: String, stats: std::sync::Arc<Stats>) {
    loop {
        if let Ok(n) = ready(&ch, &queue).await {
            stats.set_lag(&queue, u64::from(n));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
