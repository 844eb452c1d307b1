//! podium-load: drives a Podium deployment (local `wrangler dev` or deployed)
//! through its public API and measures what a user would: events/s accepted,
//! events/s applied (read back from the boards), an exact check of every
//! board's sum, ingest -> visible latency from a live viewer, and errors by
//! status. Prints a human summary and one JSON line starting with
//! `{"tool":"podium-load"` for scripts (scripts/perf.sh).

// The report's json! literal is large; the macro needs more than the default 128.
#![recursion_limit = "256"]

use podium_load::client;
mod live;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{json, Value};

use client::{Api, Reply};
use podium_load::{now_ms, percentile, process_cpu_seconds, round1, round2, Members};

#[derive(Parser, Debug)]
#[command(
    name = "podium-load",
    version,
    about = "Load generator for Podium: accepted and applied throughput, exact sums, live latency",
    after_help = "Boards are named PREFIX-b0.., event types PREFIX.t0.., the probe board PREFIX-probe.\n\
                  Type i routes to boards i, i+1, .. i+fanout-1 (mod boards) with value 1, so a board's\n\
                  score sum must equal the number of accepted events routed to it."
)]
struct Args {
    /// Podium origin, local or deployed.
    #[arg(long, env = "PODIUM_URL", default_value = "http://127.0.0.1:8787")]
    url: String,
    /// Ingest key (Authorization: Bearer) for POST /v1/events.
    #[arg(long, env = "PODIUM_INGEST_KEY", default_value = "dev-ingest-key")]
    ingest_key: String,
    /// Admin key, used to create the boards and routes.
    #[arg(long, env = "PODIUM_ADMIN_KEY", default_value = "dev-admin-key")]
    admin_key: String,
    /// Number of boards the load spreads over.
    #[arg(long, default_value_t = 1)]
    boards: usize,
    /// Number of event types (routes); default: one per board.
    #[arg(long)]
    types: Option<usize>,
    /// Boards each event type feeds (its route's targets).
    #[arg(long, default_value_t = 1)]
    fanout: usize,
    /// Shard objects of every board (API 1.1 `shards`, 1-64).
    #[arg(long, default_value_t = 1)]
    shards: u16,
    /// Windows of every board, comma-separated (all, day, week, month).
    #[arg(long, default_value = "all")]
    windows: String,
    /// Distinct members.
    #[arg(long, default_value_t = 10_000)]
    members: u64,
    /// Zipf exponent of member popularity (0 = uniform).
    #[arg(long, default_value_t = 1.0)]
    zipf: f64,
    /// Events per POST (1..=1000).
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// Concurrent sender threads (one request in flight each).
    #[arg(long, default_value_t = 4)]
    threads: usize,
    /// Target rate in events/s over all threads; 0 = as fast as possible.
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// Send this many events (default 100000 unless --duration is given).
    #[arg(long, conflicts_with = "duration")]
    events: Option<u64>,
    /// Send for this many seconds instead of a fixed count.
    #[arg(long)]
    duration: Option<f64>,
    /// Give every event an id (default): a retried request is then deduped.
    #[arg(long, overrides_with = "no_ids")]
    ids: bool,
    /// Send events without ids (the server assigns them).
    #[arg(long, overrides_with = "ids")]
    no_ids: bool,
    /// Send an Idempotency-Key header with every POST (API 1.1).
    #[arg(long)]
    idempotency_key: bool,
    /// Name prefix of this run's boards and types (default: a fresh one per run).
    #[arg(long)]
    prefix: Option<String>,
    /// Label copied into the JSON line (a scenario name).
    #[arg(long, default_value = "")]
    label: String,
    /// Retries of one request after 429 (honouring Retry-After), 5xx or a
    /// transport error (the last two only when events have ids or an
    /// Idempotency-Key is sent, so a retry cannot count twice).
    #[arg(long, default_value_t = 20)]
    max_retries: u32,
    /// Stop sending after this many seconds even if the count is not reached.
    #[arg(long, default_value_t = 900.0)]
    send_timeout: f64,
    /// After sending: how long to wait for the boards to hold every accepted event.
    #[arg(long, default_value_t = 120.0)]
    settle_timeout: f64,
    /// Interval between polls of the boards' counters once sending is over
    /// (the resolution of the applied time), ms.
    #[arg(long, default_value_t = 250)]
    poll_ms: u64,
    /// Interval between polls while still sending (they only feed the
    /// progress bar), ms.
    #[arg(long, default_value_t = 2000)]
    progress_poll_ms: u64,
    /// Probe interval for the live latency, ms; 0 turns the probe and viewer off.
    #[arg(long, default_value_t = 200)]
    probe_ms: u64,
    /// Per-request timeout, seconds.
    #[arg(long, default_value_t = 30.0)]
    http_timeout: f64,
    /// Seconds to wait after creating routes before sending (a deployment's
    /// isolates may cache routes up to 5 s; wrangler dev needs 0).
    #[arg(long, default_value_t = 0.0)]
    setup_wait: f64,
    /// Delete this run's boards and routes at the end.
    #[arg(long)]
    cleanup: bool,
    /// Seed of the member draw.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// No progress bar (logs, CI).
    #[arg(long)]
    no_progress: bool,
    /// Exit 1 unless every sent event was accepted (no 5xx or transport error
    /// even if retried), applied, and every sum is exact.
    #[arg(long)]
    strict: bool,
}

/// Everything the run is about, derived once from the arguments.
struct Plan {
    /// Shard objects per board.
    shards: u16,
    boards: Vec<String>,
    types: Vec<String>,
    /// For each type, the board indexes it routes to.
    routes: Vec<Vec<usize>>,
    windows: Vec<String>,
    total: Option<u64>,
    duration: Option<Duration>,
    prefix: String,
    ids: bool,
}

/// Counters shared by the sender threads and the main thread.
#[derive(Default)]
struct Tally {
    next: AtomicU64,
    stop: AtomicBool,
    running: AtomicUsize,
    sent: AtomicU64,
    accepted: AtomicU64,
    /// Events in requests that finally failed with a status (not enqueued, per the API).
    failed: AtomicU64,
    /// Events in requests whose outcome is unknown (transport error, no retry).
    uncertain: AtomicU64,
    /// 202s whose `accepted` differed from the events sent.
    accept_mismatch: AtomicU64,
    retries_429: AtomicU64,
    retries_other: AtomicU64,
    transport_errors: AtomicU64,
    accepted_by_type: Vec<AtomicU64>,
    statuses: Mutex<BTreeMap<u16, u64>>,
    first_error: Mutex<Option<String>>,
    post_ms: Mutex<Vec<f64>>,
}

impl Tally {
    fn status(&self, s: u16) {
        if let Ok(mut m) = self.statuses.lock() {
            *m.entry(s).or_default() += 1;
        }
    }
    fn error(&self, e: String) {
        if let Ok(mut slot) = self.first_error.lock() {
            slot.get_or_insert(e);
        }
    }
}

/// What the poller has seen of the boards.
struct Applied {
    /// Latest counter read per board (events mode) or score sum (scores mode).
    counts: Vec<AtomicU64>,
    /// Set by the main thread once sending ends: what each board must reach.
    expected: Mutex<Option<Vec<u64>>>,
    /// When each board was first seen holding its expected count.
    done_at: Mutex<Vec<Option<Instant>>>,
    /// "events" (the board object's counter) or "scores" (summed through top).
    mode: Mutex<&'static str>,
    poll_errors: AtomicU64,
    stop: AtomicBool,
    all_done: AtomicBool,
    /// Set with `expected`: ends a slow between-rounds wait at once.
    sending_over: AtomicBool,
}

fn main() {
    match run() {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("podium-load: {e:#}");
            std::process::exit(2);
        }
    }
}

fn valid_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-' || *c == b'_')
}

fn plan(a: &Args) -> anyhow::Result<Plan> {
    if !(1..=1000).contains(&a.batch) {
        bail!("--batch must be 1..=1000 (the API's limit per request)");
    }
    if a.boards == 0 || a.threads == 0 {
        bail!("--boards and --threads must be at least 1");
    }
    let ntypes = a.types.unwrap_or(a.boards).max(1);
    if a.fanout == 0 || a.fanout > a.boards || a.fanout > 32 {
        bail!("--fanout must be 1..=min(boards, 32)");
    }
    if !(a.rate.is_finite() && a.rate >= 0.0) {
        bail!("--rate must be >= 0");
    }
    let prefix = match &a.prefix {
        Some(p) => p.clone(),
        // Fresh names per run: a board already holding events would break the sum check.
        None => format!("load{}", now_ms() % 100_000_000_000),
    };
    if !valid_name(&format!("{prefix}-probe")) || prefix.len() > 40 {
        bail!("--prefix must be a valid board name start ([a-z0-9][a-z0-9_-]*, <= 40 bytes)");
    }
    let boards: Vec<String> = (0..a.boards).map(|i| format!("{prefix}-b{i}")).collect();
    let types: Vec<String> = (0..ntypes).map(|i| format!("{prefix}.t{i}")).collect();
    let routes = (0..ntypes).map(|t| (0..a.fanout).map(|k| (t + k) % a.boards).collect()).collect();
    let windows: Vec<String> =
        a.windows.split(',').map(|w| w.trim().to_string()).filter(|w| !w.is_empty()).collect();
    if windows.is_empty() {
        bail!("--windows must name at least one window");
    }
    let duration = a.duration.map(Duration::from_secs_f64);
    let total = if duration.is_some() { None } else { Some(a.events.unwrap_or(100_000)) };
    if !(1..=64).contains(&a.shards) {
        bail!("--shards must be 1..=64");
    }
    Ok(Plan { boards, types, routes, windows, total, duration, prefix, ids: !a.no_ids, shards: a.shards })
}

fn expect_ok(what: &str, r: Result<Reply, client::Error>) -> anyhow::Result<Reply> {
    let r = r.with_context(|| format!("{what}: request failed"))?;
    if !r.ok() {
        bail!("{what}: status {}: {:.300}", r.status, r.body);
    }
    Ok(r)
}

fn setup(api: &Api, p: &Plan, probe: bool) -> anyhow::Result<()> {
    // Health first, bounded: a worker still starting gets a few seconds.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match api.get("/v1/health") {
            Ok(r) if r.ok() => break,
            other => {
                if Instant::now() > deadline {
                    let why = match other {
                        Ok(r) => format!("status {}", r.status),
                        Err(e) => e.to_string(),
                    };
                    bail!("{}/v1/health not ok: {why}", api.base());
                }
                std::thread::sleep(Duration::from_millis(300));
            }
        }
    }
    let windows = serde_json::to_string(&p.windows)?;
    for (i, b) in p.boards.iter().enumerate() {
        let body =
            format!(r#"{{"title":"load {} board {i}","windows":{windows},"shards":{}}}"#, p.prefix, p.shards);
        expect_ok(&format!("PUT /v1/boards/{b}"), api.put_admin(&format!("/v1/boards/{b}"), &body))?;
    }
    for (t, targets) in p.types.iter().zip(&p.routes) {
        let targets: Vec<Value> =
            targets.iter().map(|&b| json!({"board": p.boards[b], "value": 1})).collect();
        let body = json!({ "targets": targets }).to_string();
        expect_ok(&format!("PUT /v1/routes/{t}"), api.put_admin(&format!("/v1/routes/{t}"), &body))?;
    }
    if probe {
        let b = format!("{}-probe", p.prefix);
        expect_ok(
            "PUT probe board",
            api.put_admin(
                &format!("/v1/boards/{b}"),
                r#"{"title":"load probe","op":"last","windows":["all"]}"#,
            ),
        )?;
        let body = json!({"targets": [{"board": b, "value": "value"}]}).to_string();
        expect_ok("PUT probe route", api.put_admin(&format!("/v1/routes/{}.probe", p.prefix), &body))?;
    }
    Ok(())
}

fn cleanup(api: &Api, p: &Plan) {
    for t in p.types.iter().cloned().chain([format!("{}.probe", p.prefix)]) {
        let _ = api.delete_admin(&format!("/v1/routes/{t}"));
    }
    for b in p.boards.iter().cloned().chain([format!("{}-probe", p.prefix)]) {
        let _ = api.delete_admin(&format!("/v1/boards/{b}"));
    }
}

/// One sender thread: claims blocks of events from the shared counter, paces
/// them to the target rate, and posts them with bounded retries.
fn sender(tid: usize, a: &Args, p: &Plan, api: &Api, tally: &Tally, t0: Instant) {
    let seed = a.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (tid as u64 + 1);
    let mut members = match Members::new(a.members, a.zipf, seed) {
        Ok(m) => m,
        Err(e) => {
            tally.error(format!("{e:#}"));
            return;
        }
    };
    let ntypes = p.types.len();
    let batch = a.batch as u64;
    let mut body = String::with_capacity(a.batch * 96);
    let mut per_type = vec![0u64; ntypes];
    let mut seq = 0u64;
    let mut req_seq = 0u64;
    let mut lat = Vec::new();
    let send_timeout = Duration::from_secs_f64(a.send_timeout);
    loop {
        if tally.stop.load(Ordering::Relaxed) {
            break;
        }
        let start = tally.next.fetch_add(batch, Ordering::Relaxed);
        let n = match p.total {
            Some(total) if start >= total => break,
            Some(total) => batch.min(total - start),
            None => batch,
        };
        // Global pacing: the block starting at event i is due at t0 + i / rate.
        if a.rate > 0.0 {
            let due = t0 + Duration::from_secs_f64(start as f64 / a.rate);
            if let Some(d) = p.duration {
                if due > t0 + d {
                    break;
                }
            }
            while Instant::now() < due && !tally.stop.load(Ordering::Relaxed) {
                std::thread::sleep((due - Instant::now()).min(Duration::from_millis(100)));
            }
        }
        if let Some(d) = p.duration {
            if t0.elapsed() >= d {
                break;
            }
        }
        if t0.elapsed() >= send_timeout {
            tally.stop.store(true, Ordering::Relaxed);
            break;
        }
        body.clear();
        per_type.iter_mut().for_each(|c| *c = 0);
        body.push('[');
        for i in 0..n {
            if i > 0 {
                body.push(',');
            }
            let t = members.pick(ntypes);
            per_type[t] += 1;
            let m = members.next_rank();
            // Writing to a String cannot fail.
            let _ = write!(body, r#"{{"type":"{}","member":"m{m}""#, p.types[t]);
            if p.ids {
                let _ = write!(body, r#","id":"{}-{tid}-{seq}""#, p.prefix);
            }
            seq += 1;
            body.push('}');
        }
        body.push(']');
        req_seq += 1;
        let idem = a.idempotency_key.then(|| format!("{}-{tid}-r{req_seq}", p.prefix));
        tally.sent.fetch_add(n, Ordering::Relaxed);
        post_with_retries(a, p, api, tally, &body, idem.as_deref(), n, &per_type, &mut lat);
    }
    if let Ok(mut all) = tally.post_ms.lock() {
        all.extend(lat);
    }
}

#[allow(clippy::too_many_arguments)]
fn post_with_retries(
    a: &Args,
    p: &Plan,
    api: &Api,
    tally: &Tally,
    body: &str,
    idem: Option<&str>,
    n: u64,
    per_type: &[u64],
    lat: &mut Vec<f64>,
) {
    // A retry of anything but a 429 is safe only when the events carry ids or
    // the request an Idempotency-Key: the first try may have been applied.
    let dedupe = p.ids || idem.is_some();
    let mut attempt = 0u32;
    loop {
        let t = Instant::now();
        let res = api.post_events(body, idem);
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
        match res {
            Ok(r) if r.ok() => {
                tally.status(r.status);
                let got = r.json().ok().and_then(|v| v.get("accepted").and_then(Value::as_u64));
                if got != Some(n) {
                    tally.accept_mismatch.fetch_add(1, Ordering::Relaxed);
                    tally.error(format!("202 said accepted {got:?} for {n} events"));
                }
                tally.accepted.fetch_add(n, Ordering::Relaxed);
                for (c, &k) in tally.accepted_by_type.iter().zip(per_type) {
                    c.fetch_add(k, Ordering::Relaxed);
                }
                return;
            }
            Ok(r) => {
                tally.status(r.status);
                let retryable = r.status == 429 || (r.status >= 500 && dedupe);
                if retryable && attempt < a.max_retries && !tally.stop.load(Ordering::Relaxed) {
                    attempt += 1;
                    if r.status == 429 {
                        tally.retries_429.fetch_add(1, Ordering::Relaxed);
                    } else {
                        tally.retries_other.fetch_add(1, Ordering::Relaxed);
                    }
                    // Honour Retry-After (bounded so the run stays bounded).
                    let wait = r.retry_after.unwrap_or(0.5 * attempt as f64).clamp(0.05, 10.0);
                    std::thread::sleep(Duration::from_secs_f64(wait));
                    continue;
                }
                tally.failed.fetch_add(n, Ordering::Relaxed);
                tally.error(format!("POST /v1/events: status {}: {:.300}", r.status, r.body));
                // A client error will not go away: stop instead of failing every request.
                if (400..500).contains(&r.status) && r.status != 429 {
                    tally.stop.store(true, Ordering::Relaxed);
                }
                return;
            }
            Err(e) => {
                tally.transport_errors.fetch_add(1, Ordering::Relaxed);
                if dedupe && attempt < a.max_retries && !tally.stop.load(Ordering::Relaxed) {
                    attempt += 1;
                    tally.retries_other.fetch_add(1, Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(200 * attempt as u64));
                    continue;
                }
                tally.uncertain.fetch_add(n, Ordering::Relaxed);
                tally.error(format!("POST /v1/events: {e}"));
                return;
            }
        }
    }
}

/// Sum of the scores of a board's default window, paged through `top`.
fn board_sum(api: &Api, board: &str) -> anyhow::Result<(f64, u64)> {
    let mut offset = 0u64;
    let mut sum = 0.0;
    loop {
        let path = format!("/v1/boards/{board}/top?limit=1000&offset={offset}");
        let r = api.get(&path).with_context(|| format!("GET {path}"))?;
        if !r.ok() {
            bail!("GET {path}: status {}: {:.200}", r.status, r.body);
        }
        let v = r.json()?;
        let entries =
            v.get("entries").and_then(Value::as_array).with_context(|| format!("GET {path}: no entries"))?;
        for e in entries {
            sum += e.get("score").and_then(Value::as_f64).unwrap_or(0.0);
        }
        offset += entries.len() as u64;
        let total = v.get("total").and_then(Value::as_u64).unwrap_or(0);
        if entries.is_empty() || offset >= total {
            return Ok((sum, total));
        }
    }
}

/// Reads one board's applied count: the `events` counter of API 1.1 when the
/// board object has it, otherwise the sum of its scores (every event is +1).
fn board_count(api: &Api, board: &str, applied: &Applied) -> anyhow::Result<u64> {
    let use_events = applied.mode.lock().map(|m| *m != "scores").unwrap_or(true);
    if use_events {
        let path = format!("/v1/boards/{board}");
        let r = api.get(&path).with_context(|| format!("GET {path}"))?;
        if !r.ok() {
            bail!("GET {path}: status {}", r.status);
        }
        if let Some(n) = r.json()?.get("events").and_then(Value::as_f64) {
            if let Ok(mut m) = applied.mode.lock() {
                *m = "events";
            }
            return Ok(n.max(0.0).round() as u64);
        }
        // The worker predates the counter: fall back for the rest of the run.
        if let Ok(mut m) = applied.mode.lock() {
            *m = "scores";
        }
    }
    let (sum, _) = board_sum(api, board)?;
    Ok(sum.max(0.0).round() as u64)
}

/// Polls the boards until told to stop or until every board holds what the
/// main thread says it should (once sending is over).
fn poller(api: &Api, p: &Plan, applied: &Applied, poll: Duration, sending_poll: Duration) {
    while !applied.stop.load(Ordering::Relaxed) {
        let round = Instant::now();
        let expected = applied.expected.lock().ok().and_then(|e| e.clone());
        for (i, b) in p.boards.iter().enumerate() {
            if applied.stop.load(Ordering::Relaxed) {
                return;
            }
            let already = applied.done_at.lock().map(|d| d[i].is_some()).unwrap_or(false);
            if already {
                continue;
            }
            match board_count(api, b, applied) {
                Ok(n) => {
                    applied.counts[i].store(n, Ordering::Relaxed);
                    if let Some(exp) = &expected {
                        if n >= exp[i] {
                            if let Ok(mut d) = applied.done_at.lock() {
                                d[i] = Some(Instant::now());
                            }
                        }
                    }
                }
                Err(_) => {
                    applied.poll_errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        if expected.is_some() {
            let all = applied.done_at.lock().map(|d| d.iter().all(Option::is_some)).unwrap_or(false);
            if all {
                applied.all_done.store(true, Ordering::Relaxed);
                return;
            }
        }
        // While sending, the counts only feed the progress bar: poll slowly so
        // the reads take little from the server being measured.
        let wait = if expected.is_some() { poll } else { poll.max(sending_poll) };
        let until = round + wait;
        while Instant::now() < until
            && !applied.stop.load(Ordering::Relaxed)
            && (expected.is_some() || !applied.sending_over.load(Ordering::Relaxed))
        {
            std::thread::sleep((until - Instant::now()).min(Duration::from_millis(20)));
        }
    }
}

fn bar(no_progress: bool, len: u64, template: &str) -> ProgressBar {
    let pb = ProgressBar::with_draw_target(
        Some(len),
        if no_progress { ProgressDrawTarget::hidden() } else { ProgressDrawTarget::stderr_with_hz(4) },
    );
    if let Ok(style) = ProgressStyle::with_template(template) {
        pb.set_style(style.progress_chars("=> "));
    }
    pb
}

fn run() -> anyhow::Result<i32> {
    let a = Args::parse();
    let p = plan(&a)?;
    let api = Api::new(&a.url, &a.ingest_key, &a.admin_key, Duration::from_secs_f64(a.http_timeout))?;
    let probe_on = a.probe_ms > 0;
    setup(&api, &p, probe_on).context("setting up boards and routes")?;
    if a.setup_wait > 0.0 {
        std::thread::sleep(Duration::from_secs_f64(a.setup_wait));
    }

    let tally = Tally {
        accepted_by_type: (0..p.types.len()).map(|_| AtomicU64::new(0)).collect(),
        ..Default::default()
    };
    let applied = Applied {
        counts: (0..p.boards.len()).map(|_| AtomicU64::new(0)).collect(),
        expected: Mutex::new(None),
        done_at: Mutex::new(vec![None; p.boards.len()]),
        mode: Mutex::new("unknown"),
        poll_errors: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        all_done: AtomicBool::new(false),
        sending_over: AtomicBool::new(false),
    };
    let probe = live::Probe::default();
    let probe_board = format!("{}-probe", p.prefix);
    let probe_type = format!("{}.probe", p.prefix);
    let ws_url = live::live_url(api.base(), &probe_board);
    let fanout = a.fanout as f64;

    let mut report = None;
    std::thread::scope(|s| -> anyhow::Result<()> {
        if probe_on {
            s.spawn(|| live::viewer(&ws_url, &probe));
            // Wait (bounded) for the first snapshot so the probe is watched from the start.
            let until = Instant::now() + Duration::from_secs(10);
            while !probe.connected.load(Ordering::Relaxed) && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(50));
            }
            let api2 = Api::new(&a.url, &a.ingest_key, &a.admin_key, Duration::from_secs(10))?;
            let (probe_ref, pt, pp) = (&probe, &probe_type, &p.prefix);
            let interval = Duration::from_millis(a.probe_ms);
            s.spawn(move || live::prober(&api2, pt, pp, interval, probe_ref));
        }
        let poll_api = Api::new(&a.url, &a.ingest_key, &a.admin_key, Duration::from_secs(10))?;
        let (pr, ap) = (&p, &applied);
        let poll = Duration::from_millis(a.poll_ms.max(20));
        let sending_poll = Duration::from_millis(a.progress_poll_ms.max(20));
        s.spawn(move || poller(&poll_api, pr, ap, poll, sending_poll));

        // --- send phase ------------------------------------------------------
        let t0 = Instant::now();
        tally.running.store(a.threads, Ordering::Relaxed);
        // One client per sender thread (each blocking client runs its own
        // current-thread runtime), made before any thread starts.
        let apis = (0..a.threads)
            .map(|_| Api::new(&a.url, &a.ingest_key, &a.admin_key, Duration::from_secs_f64(a.http_timeout)))
            .collect::<anyhow::Result<Vec<_>>>()?;
        for (tid, api) in (0..a.threads).zip(apis) {
            let (a, p, tally) = (&a, &p, &tally);
            s.spawn(move || {
                sender(tid, a, p, &api, tally, t0);
                tally.running.fetch_sub(1, Ordering::Relaxed);
            });
        }
        let (len, by_time) = match (p.total, p.duration) {
            (Some(n), _) => (n, false),
            (None, Some(d)) => (d.as_millis() as u64, true),
            (None, None) => (0, false),
        };
        let pb = bar(a.no_progress, len, "send  [{elapsed_precise}] [{bar:30}] {percent:>3}% {msg}");
        while tally.running.load(Ordering::Relaxed) > 0 {
            std::thread::sleep(Duration::from_millis(200));
            let acc = tally.accepted.load(Ordering::Relaxed);
            let el = t0.elapsed().as_secs_f64().max(1e-3);
            let app: u64 = applied.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum();
            pb.set_position(if by_time {
                (t0.elapsed().as_millis() as u64).min(len)
            } else {
                acc + tally.failed.load(Ordering::Relaxed) + tally.uncertain.load(Ordering::Relaxed)
            });
            pb.set_message(format!(
                "accepted {acc} ({:.0}/s) applied ~{:.0} 429s {} errors {}",
                acc as f64 / el,
                app as f64 / fanout,
                tally.retries_429.load(Ordering::Relaxed),
                tally.failed.load(Ordering::Relaxed) + tally.uncertain.load(Ordering::Relaxed),
            ));
        }
        let send_secs = t0.elapsed().as_secs_f64();
        pb.finish_and_clear();
        probe.stop_probe.store(true, Ordering::Relaxed);

        // --- settle phase: wait for the boards to hold every accepted event ---
        let mut expected = vec![0u64; p.boards.len()];
        for (t, targets) in p.routes.iter().enumerate() {
            let k = tally.accepted_by_type[t].load(Ordering::Relaxed);
            for &b in targets {
                expected[b] += k;
            }
        }
        let accepted = tally.accepted.load(Ordering::Relaxed);
        if let Ok(mut e) = applied.expected.lock() {
            *e = Some(expected.clone());
        }
        applied.sending_over.store(true, Ordering::Relaxed);
        let settle_until = Instant::now() + Duration::from_secs_f64(a.settle_timeout);
        let exp_total: u64 = expected.iter().sum();
        let pb = bar(a.no_progress, exp_total, "apply [{elapsed_precise}] [{bar:30}] {percent:>3}% {msg}");
        while !applied.all_done.load(Ordering::Relaxed) && Instant::now() < settle_until {
            std::thread::sleep(Duration::from_millis(200));
            let held: u64 =
                applied.counts.iter().zip(&expected).map(|(c, &e)| c.load(Ordering::Relaxed).min(e)).sum();
            pb.set_position(held);
            pb.set_message(format!("{:.0} of {accepted} events applied", held as f64 / fanout));
        }
        pb.finish_and_clear();
        applied.stop.store(true, Ordering::Relaxed);
        let settled = applied.all_done.load(Ordering::Relaxed);
        let done_at = applied.done_at.lock().map(|d| d.iter().flatten().max().copied()).unwrap_or(None);
        let applied_secs = match (settled, done_at) {
            (true, Some(d)) => d.duration_since(t0).as_secs_f64(),
            _ => t0.elapsed().as_secs_f64(),
        };
        let held: u64 =
            applied.counts.iter().zip(&expected).map(|(c, &e)| c.load(Ordering::Relaxed).min(e)).sum();
        let applied_events = if settled { accepted } else { (held as f64 / fanout) as u64 };

        // --- exact check: every board's score sum equals what was accepted ---
        // Reads may come from the edge cache for up to 1 s: a mismatch is
        // re-read a couple of times before it is reported.
        let mut mismatches: Vec<Value> = Vec::new();
        let mut check = "skipped";
        let mut check_error = None;
        for attempt in 0..3 {
            if attempt > 0 {
                std::thread::sleep(Duration::from_millis(1500));
            }
            mismatches.clear();
            check_error = None;
            for (i, b) in p.boards.iter().enumerate() {
                match board_sum(&api, b) {
                    Ok((sum, _)) if sum == expected[i] as f64 => {}
                    Ok((sum, members)) => mismatches.push(json!({
                        "board": b, "expected": expected[i], "sum": sum, "members": members,
                        "counter": applied.counts[i].load(Ordering::Relaxed),
                    })),
                    Err(e) => {
                        check_error = Some(format!("{e:#}"));
                        break;
                    }
                }
            }
            check = if check_error.is_some() {
                "error"
            } else if mismatches.is_empty() {
                "ok"
            } else {
                "mismatch"
            };
            // Retry only a mismatch that may still be settling or cached.
            if check == "ok" || !settled && Instant::now() > settle_until + Duration::from_secs(5) {
                break;
            }
        }

        // Give the viewer a moment to see the last probes, then stop it.
        let until = Instant::now() + Duration::from_secs(5);
        while probe_on && probe.pending_len() > 0 && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(100));
        }
        probe.stop_viewer.store(true, Ordering::Relaxed);

        let mut lat = probe.samples.lock().map(|v| v.clone()).unwrap_or_default();
        let mut post = tally.post_ms.lock().map(|v| v.clone()).unwrap_or_default();
        let statuses: serde_json::Map<String, Value> = tally
            .statuses
            .lock()
            .map(|m| m.iter().map(|(k, v)| (k.to_string(), json!(v))).collect())
            .unwrap_or_default();
        let failed = tally.failed.load(Ordering::Relaxed);
        let uncertain = tally.uncertain.load(Ordering::Relaxed);
        let errors = failed + uncertain;
        let mode = applied.mode.lock().map(|m| *m).unwrap_or("unknown");
        let opt = |x: Option<f64>| x.map(round1);
        report = Some(json!({
            "tool": "podium-load",
            "version": env!("CARGO_PKG_VERSION"),
            "label": a.label,
            "url": api.base(),
            "prefix": p.prefix,
            "boards": p.boards.len(),
            "types": p.types.len(),
            "fanout": a.fanout,
            "windows": p.windows,
            "members": a.members,
            "zipf": a.zipf,
            "batch": a.batch,
            "threads": a.threads,
            "rate": a.rate,
            "ids": p.ids,
            "idempotency_key": a.idempotency_key,
            "events_sent": tally.sent.load(Ordering::Relaxed),
            "events_accepted": accepted,
            "events_failed": failed,
            "events_uncertain": uncertain,
            "send_seconds": round2(send_secs),
            "accepted_per_s": round1(accepted as f64 / send_secs.max(1e-3)),
            "applied_mode": mode,
            "settled": settled,
            "applied_events": applied_events,
            "applied_seconds": round2(applied_secs),
            "applied_per_s": round1(applied_events as f64 / applied_secs.max(1e-3)),
            "shards": a.shards,
            // Members hash evenly over a board's shards: each shard object's share.
            "applied_per_s_per_shard_object": round1(
                applied_events as f64 / applied_secs.max(1e-3) / (a.boards * a.shards.max(1) as usize) as f64
            ),
            "sum_check": check,
            "sum_check_error": check_error,
            "mismatches": mismatches.iter().take(10).cloned().collect::<Vec<_>>(),
            "mismatched_boards": mismatches.len(),
            "latency_ms": {
                "samples": lat.len(),
                "p50": opt(percentile(&mut lat, 50.0)),
                "p99": opt(percentile(&mut lat, 99.0)),
                "max": opt(percentile(&mut lat, 100.0)),
                "probes_sent": probe.probes_sent.load(Ordering::Relaxed),
                "probes_failed": probe.probes_failed.load(Ordering::Relaxed),
                "live_messages": probe.messages.load(Ordering::Relaxed),
                "live_error": probe.error.lock().ok().and_then(|e| e.clone()),
            },
            "post_ms": {
                "requests": post.len(),
                "p50": opt(percentile(&mut post, 50.0)),
                "p99": opt(percentile(&mut post, 99.0)),
            },
            "status": statuses,
            "retries_429": tally.retries_429.load(Ordering::Relaxed),
            "retries_other": tally.retries_other.load(Ordering::Relaxed),
            "transport_errors": tally.transport_errors.load(Ordering::Relaxed),
            "accept_mismatch": tally.accept_mismatch.load(Ordering::Relaxed),
            "poll_errors": applied.poll_errors.load(Ordering::Relaxed),
            "errors": errors,
            "client_cpu_seconds": process_cpu_seconds().map(round2),
            "first_error": tally.first_error.lock().ok().and_then(|e| e.clone()),
        }));
        Ok(())
    })?;
    let report = report.context("no report")?;
    if a.cleanup {
        cleanup(&api, &p);
    }
    print_summary(&report);
    println!("{report}");

    // A retried 5xx or transport error still fails a strict run: the server
    // should only ever answer 202 or 429 to valid events.
    let server_errors = report["status"]
        .as_object()
        .map(|m| m.iter().filter(|(k, _)| k.parse::<u16>().is_ok_and(|s| s >= 500)).count())
        .unwrap_or(0);
    let ok = report["sum_check"] == "ok"
        && report["settled"] == true
        && report["errors"] == 0
        && report["accept_mismatch"] == 0
        && report["transport_errors"] == 0
        && server_errors == 0;
    Ok(if a.strict && !ok { 1 } else { 0 })
}

/// A JSON value as a person reads it: strings without their quotes.
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".to_string(),
        other => other.to_string(),
    }
}

fn print_summary(r: &Value) {
    let f = |k: &str| text(r.get(k).unwrap_or(&Value::Null));
    let lat = &r["latency_ms"];
    let label = r["label"].as_str().filter(|l| !l.is_empty()).map(|l| format!(" {l}"));
    println!("podium-load{} against {}", label.unwrap_or_default(), f("url"));
    println!(
        "  mix: {} boards (windows {}), {} types x fanout {}, {} members zipf {}, {} events/request, {} threads, rate {}, ids {}",
        f("boards"), f("windows"), f("types"), f("fanout"), f("members"), f("zipf"),
        f("batch"), f("threads"),
        if r["rate"] == 0.0 { "max".to_string() } else { r["rate"].to_string() },
        f("ids"),
    );
    println!(
        "  accepted: {} of {} events in {} s = {} events/s",
        f("events_accepted"),
        f("events_sent"),
        f("send_seconds"),
        f("accepted_per_s")
    );
    println!(
        "  applied:  {} events in {} s from the first send = {} events/s (settled: {}, read from: {})",
        f("applied_events"),
        f("applied_seconds"),
        f("applied_per_s"),
        f("settled"),
        f("applied_mode")
    );
    println!(
        "  per board object: {} events/s ({} boards x {} shards; a board's members hash evenly over its shards)",
        f("applied_per_s_per_shard_object"),
        f("boards"),
        f("shards")
    );
    println!("  sums:     {} ({} boards mismatched)", f("sum_check"), f("mismatched_boards"));
    if lat["probes_sent"] == 0 {
        println!("  ingest->visible: not measured (probe off or never started)");
    } else {
        println!(
            "  ingest->visible (live viewer): p50 {} ms, p99 {} ms, max {} ms over {} probes",
            text(&lat["p50"]),
            text(&lat["p99"]),
            text(&lat["max"]),
            text(&lat["samples"])
        );
    }
    println!(
        "  statuses: {} ; 429 retries {}, other retries {}, transport errors {}, failed events {}, uncertain {}",
        f("status"), f("retries_429"), f("retries_other"), f("transport_errors"),
        f("events_failed"), f("events_uncertain")
    );
    println!(
        "  this tool's own CPU: {} s over {} s of sending and applying",
        f("client_cpu_seconds"),
        f("applied_seconds")
    );
    if let Some(e) = r["first_error"].as_str() {
        println!("  first error: {e}");
    }
    if let Some(e) = r["latency_ms"]["live_error"].as_str() {
        println!("  live viewer: {e}");
    }
}
