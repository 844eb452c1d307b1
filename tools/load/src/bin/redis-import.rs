//! redis-import: moves a Redis sorted set into a Podium board period
//! (API 1.1 `POST /v1/boards/{board}/import`), best first, with a progress bar.
//!
//! Reads the set in slices (`ZRANGE key start stop REV WITHSCORES` for a `desc`
//! board, ascending for `asc`), writes NDJSON lines of at most ~1 MiB per
//! request, and sends each with an `Idempotency-Key` made of the set, board
//! and slice, so a retried request sets nothing twice. Redis keeps no time
//! at which a member reached its score: every line gets the same `reached`
//! (`--reached`, default now), so ties order by member id on the board.
//! Prints a summary and one JSON line starting with `{"tool":"redis-import"`.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use podium_load::client::Api;
use podium_load::now_ms;

#[derive(Parser, Debug)]
#[command(name = "redis-import", version, about = "Import a Redis sorted set into a Podium board")]
struct Args {
    /// The Redis holding the sorted set.
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    redis_url: String,
    /// The sorted set's key.
    #[arg(long)]
    key: String,
    /// Podium's base URL.
    #[arg(long, env = "PODIUM_URL", default_value = "http://127.0.0.1:8787")]
    url: String,
    /// The board to import into (it must exist; `PUT /v1/boards/{board}` first).
    #[arg(long)]
    board: String,
    #[arg(long, env = "PODIUM_ADMIN_KEY", default_value = "dev-admin-key")]
    admin_key: String,
    /// The board's window and period (default: the board's first window, current period).
    #[arg(long)]
    window: Option<String>,
    #[arg(long)]
    period: Option<String>,
    /// Read the set lowest first (for an `asc` board, e.g. lap times).
    #[arg(long)]
    asc: bool,
    /// Members read from Redis per ZRANGE.
    #[arg(long, default_value_t = 5000)]
    slice: usize,
    /// The `reached` time of every member (ms since the epoch; default now).
    #[arg(long)]
    reached: Option<i64>,
}

/// Under the import's 1 MiB limit, with room for one more line.
const MAX_REQUEST: usize = 1_000_000;

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let client = redis::Client::open(args.redis_url.as_str()).context("redis url")?;
    let mut conn = client.get_connection().context("connecting to redis")?;
    let total: u64 = redis::cmd("ZCARD").arg(&args.key).query(&mut conn).context("ZCARD")?;
    if total == 0 {
        bail!("sorted set {:?} is empty or missing", args.key);
    }
    let api = Api::new(&args.url, "", &args.admin_key, Duration::from_secs(60))?;
    let mut path = format!("/v1/boards/{}/import", args.board);
    let mut qs = Vec::new();
    if let Some(w) = &args.window {
        qs.push(format!("window={w}"));
    }
    if let Some(p) = &args.period {
        qs.push(format!("period={p}"));
    }
    if !qs.is_empty() {
        path = format!("{path}?{}", qs.join("&"));
    }
    let reached = args.reached.unwrap_or_else(now_ms);
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{spinner} {bar:40} {pos}/{len} members  {per_sec}  eta {eta}")
            .context("progress style")?,
    );
    let started = Instant::now();
    let mut imported: u64 = 0;
    let mut requests = 0u64;
    let mut body = String::new();
    let send = |body: &mut String, requests: &mut u64| -> anyhow::Result<u64> {
        if body.is_empty() {
            return Ok(0);
        }
        let idem = format!("redis-import:{}:{}:{}:{}", args.key, args.board, reached, *requests);
        let mut attempt = 0;
        let reply = loop {
            let r = api.post_ndjson_admin(&path, body, &idem).context("POST import")?;
            if r.status == 429 && attempt < 10 {
                attempt += 1;
                std::thread::sleep(Duration::from_secs_f64(r.retry_after.unwrap_or(1.0)));
                continue;
            }
            break r;
        };
        if !reply.ok() {
            bail!("import refused: {} {:.300}", reply.status, reply.body);
        }
        let n = reply.json()?["imported"].as_u64().unwrap_or(0);
        *requests += 1;
        body.clear();
        Ok(n)
    };
    let mut start = 0usize;
    loop {
        let stop = start + args.slice - 1;
        let mut cmd = redis::cmd("ZRANGE");
        cmd.arg(&args.key).arg(start).arg(stop);
        if !args.asc {
            cmd.arg("REV");
        }
        let page: Vec<(String, f64)> = cmd.arg("WITHSCORES").query(&mut conn).context("ZRANGE")?;
        for (member, score) in &page {
            let line = json!({ "member": member, "score": score, "reached": reached }).to_string();
            if body.len() + line.len() + 1 > MAX_REQUEST {
                imported += send(&mut body, &mut requests)?;
            }
            body.push_str(&line);
            body.push('\n');
        }
        bar.inc(page.len() as u64);
        if page.len() < args.slice {
            break;
        }
        start += args.slice;
    }
    imported += send(&mut body, &mut requests)?;
    bar.finish();
    let secs = started.elapsed().as_secs_f64();
    println!(
        "redis-import: {imported} of {total} members from {} into {} in {requests} requests, {secs:.1} s ({:.0} members/s)",
        args.key,
        args.board,
        imported as f64 / secs.max(1e-9)
    );
    println!(
        "{}",
        json!({"tool": "redis-import", "key": args.key, "board": args.board, "members": total,
               "imported": imported, "requests": requests, "seconds": secs})
    );
    if imported != total {
        bail!("imported {imported} members, but the set holds {total}");
    }
    Ok(())
}
