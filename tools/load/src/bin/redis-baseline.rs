//! redis-baseline: the design Podium replaces, built as well as a user could
//! build it in Rust with the `redis` crate, for `make perf` to compare with.
//!
//! Producers XADD events (board, member, send time) to one stream, pipelined;
//! a consumer group of several consumers reads XREADGROUP COUNT 100, applies
//! each batch with pipelined ZINCRBY (optionally pre-aggregated: one ZINCRBY
//! per distinct board+member in the batch) and XACKs in the same pipeline.
//! Measures events/s applied (first XADD until every event's ZINCRBY is done),
//! checks every sorted set's sum exactly, and samples stream -> applied latency.
//! Prints a human summary and one JSON line starting with `{"tool":"redis-baseline"`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use redis::streams::StreamReadReply;
use serde_json::json;

use podium_load::{now_ms, percentile, round1, round2, Members};

#[derive(Parser, Debug)]
#[command(name = "redis-baseline", version, about = "Redis stream -> consumer group -> ZINCRBY baseline")]
struct Args {
    /// Redis to use (loopback; scripts/perf.sh starts a private one).
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    redis_url: String,
    /// Events to push through.
    #[arg(long, default_value_t = 100_000)]
    events: u64,
    /// Sorted sets (boards) the events spread over, uniformly.
    #[arg(long, default_value_t = 1)]
    boards: usize,
    /// Distinct members.
    #[arg(long, default_value_t = 10_000)]
    members: u64,
    /// Zipf exponent of member popularity (0 = uniform).
    #[arg(long, default_value_t = 1.0)]
    zipf: f64,
    /// Producer threads.
    #[arg(long, default_value_t = 2)]
    producers: usize,
    /// Consumers in the group (threads).
    #[arg(long, default_value_t = 2)]
    consumers: usize,
    /// XADDs per pipeline.
    #[arg(long, default_value_t = 1000)]
    pipeline: u64,
    /// XREADGROUP COUNT.
    #[arg(long, default_value_t = 100)]
    count: usize,
    /// One ZINCRBY per event instead of one per distinct member in a batch.
    #[arg(long)]
    no_aggregate: bool,
    /// Key prefix.
    #[arg(long, default_value = "perf")]
    prefix: String,
    /// Label copied into the JSON line.
    #[arg(long, default_value = "")]
    label: String,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 600.0)]
    timeout: f64,
    /// Seed of the member draw.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Exit 1 unless every event was applied and every sum is exact.
    #[arg(long)]
    strict: bool,
}

#[derive(Default)]
struct Shared {
    next: AtomicU64,
    applied: AtomicU64,
    stop: AtomicBool,
    done_at: Mutex<Option<Instant>>,
    produced_at: Mutex<Option<Instant>>,
    expected: Mutex<Vec<u64>>,
    latency: Mutex<Vec<f64>>,
    error: Mutex<Option<String>>,
}

impl Shared {
    fn fail(&self, e: anyhow::Error) {
        if let Ok(mut slot) = self.error.lock() {
            slot.get_or_insert(format!("{e:#}"));
        }
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn main() {
    match run() {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("redis-baseline: {e:#}");
            std::process::exit(2);
        }
    }
}

fn stream_key(a: &Args) -> String {
    format!("{}:events", a.prefix)
}

fn board_key(a: &Args, b: usize) -> String {
    format!("{}:board:{b}", a.prefix)
}

fn producer(tid: usize, a: &Args, client: &redis::Client, sh: &Shared) -> anyhow::Result<()> {
    let mut con = client.get_connection().context("producer connect")?;
    let mut members = Members::new(a.members, a.zipf, a.seed.wrapping_mul(31) ^ (tid as u64 + 1))?;
    let mut per_board = vec![0u64; a.boards];
    let key = stream_key(a);
    loop {
        if sh.stop.load(Ordering::Relaxed) {
            break;
        }
        let start = sh.next.fetch_add(a.pipeline, Ordering::Relaxed);
        if start >= a.events {
            break;
        }
        let n = a.pipeline.min(a.events - start);
        let mut pipe = redis::pipe();
        let t = now_ms();
        for _ in 0..n {
            let b = members.pick(a.boards);
            per_board[b] += 1;
            pipe.cmd("XADD")
                .arg(&key)
                .arg("*")
                .arg("b")
                .arg(b)
                .arg("m")
                .arg(format!("m{}", members.next_rank()))
                .arg("t")
                .arg(t)
                .ignore();
        }
        pipe.query::<()>(&mut con).context("XADD pipeline")?;
    }
    if let Ok(mut e) = sh.expected.lock() {
        for (x, y) in e.iter_mut().zip(&per_board) {
            *x += y;
        }
    }
    Ok(())
}

fn consumer(cid: usize, a: &Args, client: &redis::Client, sh: &Shared) -> anyhow::Result<()> {
    let mut con = client.get_connection().context("consumer connect")?;
    let key = stream_key(a);
    let name = format!("c{cid}");
    let aggregate = !a.no_aggregate;
    let mut lat = Vec::new();
    let mut agg: HashMap<(usize, String), u64> = HashMap::new();
    while !sh.stop.load(Ordering::Relaxed) && sh.applied.load(Ordering::Relaxed) < a.events {
        let reply: Option<StreamReadReply> = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg("g")
            .arg(&name)
            .arg("COUNT")
            .arg(a.count)
            .arg("BLOCK")
            .arg(100)
            .arg("STREAMS")
            .arg(&key)
            .arg(">")
            .query(&mut con)
            .context("XREADGROUP")?;
        let Some(reply) = reply else { continue };
        let mut pipe = redis::pipe();
        let mut ids = Vec::new();
        for sk in reply.keys {
            for e in sk.ids {
                let b: usize = e.get("b").context("entry without b")?;
                let m: String = e.get("m").context("entry without m")?;
                if ids.is_empty() {
                    // One latency sample per batch: XADD's time to applied.
                    if let Some(t) = e.get::<i64>("t") {
                        lat.push((now_ms() - t) as f64);
                    }
                }
                if aggregate {
                    *agg.entry((b, m)).or_default() += 1;
                } else {
                    pipe.cmd("ZINCRBY").arg(board_key(a, b)).arg(1).arg(m).ignore();
                }
                ids.push(e.id);
            }
        }
        if ids.is_empty() {
            continue;
        }
        for ((b, m), k) in agg.drain() {
            pipe.cmd("ZINCRBY").arg(board_key(a, b)).arg(k).arg(m).ignore();
        }
        pipe.cmd("XACK").arg(&key).arg("g").arg(&ids).ignore();
        pipe.query::<()>(&mut con).context("ZINCRBY/XACK pipeline")?;
        let total = sh.applied.fetch_add(ids.len() as u64, Ordering::Relaxed) + ids.len() as u64;
        if total >= a.events {
            if let Ok(mut d) = sh.done_at.lock() {
                d.get_or_insert_with(Instant::now);
            }
        }
    }
    if let Ok(mut all) = sh.latency.lock() {
        all.extend(lat);
    }
    Ok(())
}

fn run() -> anyhow::Result<i32> {
    let a = Args::parse();
    if a.boards == 0 || a.producers == 0 || a.consumers == 0 || a.pipeline == 0 || a.count == 0 {
        bail!("--boards, --producers, --consumers, --pipeline and --count must be at least 1");
    }
    let client = redis::Client::open(a.redis_url.as_str()).context("redis url")?;
    let mut con = client.get_connection().context("connect to redis")?;
    // A clean slate for this prefix: the stream, its group and the boards.
    let mut del = redis::cmd("DEL");
    del.arg(stream_key(&a));
    for b in 0..a.boards {
        del.arg(board_key(&a, b));
    }
    del.query::<()>(&mut con).context("DEL")?;
    redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(stream_key(&a))
        .arg("g")
        .arg("$")
        .arg("MKSTREAM")
        .query::<()>(&mut con)
        .context("XGROUP CREATE")?;

    let sh = Shared { expected: Mutex::new(vec![0; a.boards]), ..Default::default() };
    let t0 = Instant::now();
    let deadline = t0 + Duration::from_secs_f64(a.timeout);
    std::thread::scope(|s| {
        let (a, sh, client) = (&a, &sh, &client);
        let producers: Vec<_> = (0..a.producers)
            .map(|i| s.spawn(move || producer(i, a, client, sh).map_err(|e| sh.fail(e))))
            .collect();
        for i in 0..a.consumers {
            s.spawn(move || consumer(i, a, client, sh).map_err(|e| sh.fail(e)));
        }
        for p in producers {
            let _ = p.join();
        }
        if let Ok(mut d) = sh.produced_at.lock() {
            *d = Some(Instant::now());
        }
        // Bounded: the consumers stop by themselves when all is applied.
        while sh.applied.load(Ordering::Relaxed) < a.events && !sh.stop.load(Ordering::Relaxed) {
            if Instant::now() > deadline {
                sh.stop.store(true, Ordering::Relaxed);
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    });

    let applied = sh.applied.load(Ordering::Relaxed);
    let done = sh.done_at.lock().ok().and_then(|d| *d);
    let produced = sh.produced_at.lock().ok().and_then(|d| *d);
    let applied_secs = done.unwrap_or_else(Instant::now).duration_since(t0).as_secs_f64();
    let produce_secs = produced.unwrap_or_else(Instant::now).duration_since(t0).as_secs_f64();

    // Exact check: every sorted set sums to the events sent to it.
    let expected = sh.expected.lock().map(|e| e.clone()).unwrap_or_default();
    let mut mismatched = 0;
    for (b, &exp) in expected.iter().enumerate() {
        let all: Vec<(String, f64)> = redis::cmd("ZRANGE")
            .arg(board_key(&a, b))
            .arg(0)
            .arg(-1)
            .arg("WITHSCORES")
            .query(&mut con)
            .context("ZRANGE")?;
        let sum: f64 = all.iter().map(|(_, s)| s).sum();
        if sum != exp as f64 {
            mismatched += 1;
        }
    }
    let check = if mismatched == 0 && applied == a.events { "ok" } else { "mismatch" };
    let mut lat = sh.latency.lock().map(|v| v.clone()).unwrap_or_default();
    let error = sh.error.lock().ok().and_then(|e| e.clone());
    let report = json!({
        "tool": "redis-baseline",
        "label": a.label,
        "events": a.events,
        "boards": a.boards,
        "members": a.members,
        "zipf": a.zipf,
        "producers": a.producers,
        "consumers": a.consumers,
        "pipeline": a.pipeline,
        "count": a.count,
        "aggregate": !a.no_aggregate,
        "produce_seconds": round2(produce_secs),
        "produce_per_s": round1(a.events as f64 / produce_secs.max(1e-3)),
        "applied_events": applied,
        "applied_seconds": round2(applied_secs),
        "applied_per_s": round1(applied as f64 / applied_secs.max(1e-3)),
        "sum_check": check,
        "mismatched_boards": mismatched,
        "latency_ms": {
            "samples": lat.len(),
            "p50": percentile(&mut lat, 50.0).map(round1),
            "p99": percentile(&mut lat, 99.0).map(round1),
        },
        "error": error,
    });
    println!(
        "redis-baseline {}: {} events over {} boards, {} producers x pipeline {}, {} consumers x COUNT {} (aggregate {})",
        a.label, a.events, a.boards, a.producers, a.pipeline, a.consumers, a.count, !a.no_aggregate
    );
    println!(
        "  produced in {produce_secs:.2} s; applied {applied} in {applied_secs:.2} s = {} events/s; sums {check}; XADD->applied p50 {} ms p99 {} ms",
        report["applied_per_s"], report["latency_ms"]["p50"], report["latency_ms"]["p99"]
    );
    if let Some(e) = &report["error"].as_str() {
        println!("  error: {e}");
    }
    println!("{report}");
    Ok(if a.strict && (check != "ok" || report["error"] != serde_json::Value::Null) { 1 } else { 0 })
}
