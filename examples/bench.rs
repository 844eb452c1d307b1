//! Ranking benchmark: 1,000,000 members with 16-byte ids, a random stream of
//! increments, per-op medians, bytes per member from a counting allocator, and
//! (natively, with `--redis HOST:PORT`) the same workload against Redis.
//!
//! Run through `scripts/bench.sh`; prints `RESULT <name> <value>` lines that the
//! script turns into a table. Builds for the host and for wasm32-wasip1.
//!
//! Arguments: `[--n MEMBERS] [--ops OPS] [--redis HOST:PORT] [--cold [--hint] [--text [--borrowed]]]`
//! (`--cold`: only a cold start's rebuild, see `cold`; `--cold --text
//! [--borrowed]`: its rows parsed from SQLite's text chunks too, see `cold_text`).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::Instant;

use podium::core::ranking::checkpoint::{Checkpoint, Snapshot};
use podium::core::ranking::{Ranking, Row};
use podium::core::{Op, Order, Tiebreak, Ties};
use podium::domain::names::MemberId;

struct Counting;
static LIVE: AtomicUsize = AtomicUsize::new(0);
/// High-water mark of `LIVE` (reset to `LIVE` before a measured phase).
static PEAK: AtomicUsize = AtomicUsize::new(0);

// The benchmark is single-threaded: a plain load + store keeps the count
// without a locked read-modify-write on every allocation, so the timed ops pay
// for their allocations, not for the instrumentation.
#[inline]
fn add(n: usize) {
    let live = LIVE.load(Relaxed).wrapping_add(n);
    LIVE.store(live, Relaxed);
    if live > PEAK.load(Relaxed) {
        PEAK.store(live, Relaxed);
    }
}
#[inline]
fn sub(n: usize) {
    LIVE.store(LIVE.load(Relaxed).wrapping_sub(n), Relaxed);
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        add(l.size());
        System.alloc(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        sub(l.size());
        System.dealloc(p, l)
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        add(l.size());
        System.alloc_zeroed(l)
    }
    // A growing realloc may move, so for a moment both blocks count (the
    // peak stays an upper bound); a shrinking one is done in place (dlmalloc,
    // wasm's allocator, splits the block and frees its tail), so only the
    // smaller size counts.
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        if n >= l.size() {
            add(n);
            sub(l.size());
        } else {
            sub(l.size() - n);
        }
        System.realloc(p, l, n)
    }
}

#[global_allocator]
static A: Counting = Counting;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        ((self.next() as u128 * n as u128) >> 64) as usize
    }
}

/// Member `i`'s 16-byte id (distinct for distinct `i`: splitmix64 is a bijection).
fn id(i: usize) -> MemberId {
    MemberId::parse(format!("{:016x}", Rng(i as u64).next())).unwrap()
}

/// Event times (ms): the load's events one ms apart from 2026-11-18, then the
/// updates. Equal scores are ordered by when they were reached in event time
/// (then member id), so the times are realistic, not all equal: events before
/// 2020 would all count as reached at 2020-01-01 and leave every equal score
/// to a member id comparison.
const T0: i64 = 1_795_000_000_000;

/// Member `i`'s initial score, uniform in 0..SCORE_RANGE (default 1,000,000:
/// about one member per score unit at 1M, so an increment of 1..100 moves a
/// member ~50 places; `SCORE_RANGE=50000 --n 50000` keeps that density on a
/// board that fits in cache, which shows the compute part of an update).
fn initial(i: usize) -> f64 {
    let range = std::env::var("SCORE_RANGE").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    Rng(!(i as u64)).below(range) as f64
}

/// Whether consecutive ids' bytes lie close together, ascending (most pairs
/// within 64 bytes), as the comment on their allocation in `main` expects.
fn in_op_order(ids: &[MemberId]) -> bool {
    let close = ids
        .windows(2)
        .filter(|w| (0..=64).contains(&(w[1].as_str().as_ptr() as isize - w[0].as_str().as_ptr() as isize)))
        .count();
    close * 10 >= ids.len().saturating_sub(1) * 9
}

/// Median of per-op times (ns) over batches of `batch` ops.
fn median_ns(batches: usize, batch: usize, mut f: impl FnMut(usize)) -> f64 {
    let mut t: Vec<f64> = (0..batches)
        .map(|b| {
            let s = Instant::now();
            for i in 0..batch {
                f(b * batch + i);
            }
            s.elapsed().as_nanos() as f64 / batch as f64
        })
        .collect();
    t.sort_by(|a, b| a.partial_cmp(b).unwrap());
    t[t.len() / 2]
}

fn result(name: &str, v: impl std::fmt::Display) {
    println!("RESULT {name} {v}");
}

#[cfg(target_arch = "wasm32")]
fn linear_memory() -> usize {
    core::arch::wasm32::memory_size(0) * 65536
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |k: &str| args.iter().position(|a| a == k).and_then(|i| args.get(i + 1)).cloned();
    let n: usize = arg("--n").map_or(1_000_000, |v| v.parse().unwrap());
    let ops: usize = arg("--ops").map_or(200_000, |v| v.parse().unwrap());
    let redis = arg("--redis");
    let target = if cfg!(target_arch = "wasm32") { "wasm" } else { "native" };
    if args.iter().any(|a| a == "--cold") {
        eprintln!("[{target}] cold start of {n} members");
        let has = |k: &str| args.iter().any(|a| a == k);
        cold(n, has("--hint"), has("--text"), has("--borrowed"));
        return;
    }
    eprintln!("[{target}] {n} members, {ops} ops per measurement");

    let mut rng = Rng(42);
    let upd: Vec<(usize, f64)> = (0..ops).map(|_| (rng.below(n), 1.0 + rng.below(100) as f64)).collect();
    let probes: Vec<usize> = (0..ops).map(|_| rng.below(n)).collect();
    let upd_batched: Vec<(usize, f64)> =
        (0..ops).map(|_| (rng.below(n), 1.0 + rng.below(100) as f64)).collect();

    // The ids each op asks for, made before the load so the allocator lays
    // them out in op order: a request's id is hot in cache when the Durable
    // Object handles it (just parsed from the event). Made after the load,
    // they would land in the holes it left, scattered, and every op would
    // first wait on a cache miss for its own id.
    let upd_ids: Vec<MemberId> = upd.iter().map(|(m, _)| id(*m)).collect();
    let batched_ids: Vec<MemberId> = upd_batched.iter().map(|(m, _)| id(*m)).collect();
    let probe_ids: Vec<MemberId> = probes.iter().map(|m| id(*m)).collect();
    eprintln!("ids laid out in op order: {}", in_op_order(&upd_ids) && in_op_order(&probe_ids));

    // load
    #[cfg(target_arch = "wasm32")]
    let memory_before = linear_memory();
    let before = LIVE.load(Relaxed);
    let t = Instant::now();
    let mut r = Ranking::new(Order::Desc, Op::Incr);
    for i in 0..n {
        r.apply(&id(i), initial(i), T0 + i as i64);
    }
    let load_s = t.elapsed().as_secs_f64();
    let bytes = LIVE.load(Relaxed) - before;
    result("load_s", format!("{load_s:.3}"));
    result("bytes_per_member", format!("{:.1}", bytes as f64 / n as f64));
    // The whole linear memory includes this harness's op lists and ids (made
    // before the load); what the board needs is what the load added.
    #[cfg(target_arch = "wasm32")]
    {
        result("wasm_linear_memory_mb", format!("{:.1}", linear_memory() as f64 / 1048576.0));
        result(
            "wasm_board_memory_mb",
            format!("{:.1}", (linear_memory() - memory_before) as f64 / 1048576.0),
        );
    }

    // calibration: one dependent random read in a 32 MiB array (DRAM latency incl. TLB misses)
    {
        let len = 8 << 20; // u32s
        let mut next: Vec<u32> = (0..len as u32).collect();
        let mut x = Rng(7);
        for i in (1..len).rev() {
            next.swap(i, x.below(i));
        }
        let mut at = 0u32;
        let ns = median_ns(50, 2000, |_| at = next[at as usize]);
        std::hint::black_box(at);
        result("dram_random_read_ns", format!("{ns:.0}"));
    }

    // per-op medians
    let batch = 1000;
    let nb = ops / batch;
    let update = median_ns(nb, batch, |i| {
        std::hint::black_box(r.apply(&upd_ids[i], upd[i].1, T0 + (n + i) as i64));
    });
    result("update_ns", format!("{update:.0}"));
    // The Durable Object applies the Queue's batches (up to 100 events per
    // board period) with `apply_batch`; a fresh stream of members, so none is
    // cached from the run above.
    let update_batched = {
        let mut t: Vec<f64> = (0..nb)
            .map(|b| {
                let events: Vec<Vec<(&MemberId, f64, f64, i64)>> = (b * batch..(b + 1) * batch)
                    .step_by(100)
                    .map(|c| {
                        (c..c + 100)
                            .map(|i| (&batched_ids[i], upd_batched[i].1, 0.0, T0 + (n + ops + i) as i64))
                            .collect()
                    })
                    .collect();
                let s = Instant::now();
                for e in &events {
                    std::hint::black_box(r.apply_batch(e));
                }
                s.elapsed().as_nanos() as f64 / batch as f64
            })
            .collect();
        t.sort_by(|a, b| a.partial_cmp(b).unwrap());
        t[t.len() / 2]
    };
    result("update_batch100_ns", format!("{update_batched:.0}"));
    let rank = median_ns(nb, batch, |i| {
        std::hint::black_box(r.rank(probe_ids[i].as_str(), Ties::Shared));
    });
    result("rank_ns", format!("{rank:.0}"));

    let rank_first = median_ns(nb, batch, |i| {
        std::hint::black_box(r.rank(probe_ids[i].as_str(), Ties::First));
    });
    result("rank_first_ns", format!("{rank_first:.0}"));
    let top = median_ns(200, 50, |i| {
        std::hint::black_box(r.top((i % 7) * 1000, 100, Ties::Shared));
    });
    result("top100_ns", format!("{top:.0}"));
    let around = median_ns(nb / 4, batch / 4, |i| {
        std::hint::black_box(r.around(probe_ids[i].as_str(), 10, Ties::Shared));
    });
    result("around10_ns", format!("{around:.0}"));
    // Diagnostics: the same ops on the 64 leading members, which stay in cache
    // (increments keep them at the top), so the gap to the figures above is
    // what the ops wait on memory (see DRAM random read).
    let hot: Vec<MemberId> =
        r.top(0, 64, Ties::First).into_iter().map(|e| MemberId::parse(e.member).unwrap()).collect();
    let update_hot = median_ns(nb, batch, |i| {
        std::hint::black_box(r.apply(&hot[i % 64], upd[i].1, T0 + (n + 2 * ops + i) as i64));
    });
    result("update_hot_ns", format!("{update_hot:.0}"));
    let rank_hot = median_ns(nb, batch, |i| {
        std::hint::black_box(r.rank(hot[i % 64].as_str(), Ties::Shared));
    });
    result("rank_hot_ns", format!("{rank_hot:.0}"));
    drop(hot);
    let bytes = LIVE.load(Relaxed) - before;
    result("bytes_per_member_after_updates", format!("{:.1}", bytes as f64 / n as f64));

    // Movement (API 1.1): a checkpoint of every rank, its cost and memory;
    // first the walk it makes over the ranking alone (ids in rank order).
    let t = Instant::now();
    let mut acc = 0u64;
    r.for_each_rank(Ties::Shared, |id, rank, _| acc ^= id.len() as u64 ^ rank);
    std::hint::black_box(acc);
    result("rank_walk_ms", format!("{:.1}", t.elapsed().as_secs_f64() * 1000.0));
    let before_cp = LIVE.load(Relaxed);
    let t = Instant::now();
    let cp = Checkpoint::take(&r, Ties::Shared, 0, 7);
    result("checkpoint_take_ms", format!("{:.1}", t.elapsed().as_secs_f64() * 1000.0));
    result(
        "checkpoint_bytes_per_member",
        format!("{:.1}", (LIVE.load(Relaxed) - before_cp) as f64 / n as f64),
    );
    // The board's next hourly checkpoint reuses the last one's buffers.
    // The board takes it in two turns: the snapshot (a walk) at the
    // boundary, the grouping later; each is one turn's hold-up.
    let t = Instant::now();
    let snap = Snapshot::take(cp, &r, Ties::Shared, 1, 7, false);
    result("checkpoint_snapshot_ms", format!("{:.1}", t.elapsed().as_secs_f64() * 1000.0));
    let t = Instant::now();
    let cp = snap.group();
    result("checkpoint_group_ms", format!("{:.1}", t.elapsed().as_secs_f64() * 1000.0));
    let prev = median_ns(nb, batch, |i| {
        std::hint::black_box(cp.rank_of(probe_ids[i].as_str()));
    });
    result("prev_rank_ns", format!("{prev:.0}"));
    drop(cp);
    // A shard's checkpoint (sharded boards) also keeps each entry's place.
    let before_cp = LIVE.load(Relaxed);
    let t = Instant::now();
    let snap = Snapshot::take(Checkpoint::default(), &r, Ties::Shared, 0, 7, true);
    let snapped = t.elapsed();
    let cp = snap.group();
    result("checkpoint_with_places_take_ms", format!("{:.1}", t.elapsed().as_secs_f64() * 1000.0));
    result("checkpoint_with_places_snapshot_ms", format!("{:.1}", snapped.as_secs_f64() * 1000.0));
    result(
        "checkpoint_with_places_bytes_per_member",
        format!("{:.1}", (LIVE.load(Relaxed) - before_cp) as f64 / n as f64),
    );
    let spots: Vec<_> = probe_ids.iter().filter_map(|m| cp.spot_of(m.as_str())).collect();
    let counted = median_ns(nb, batch, |i| {
        if let Some(s) = spots.get(i % spots.len().max(1)) {
            std::hint::black_box(cp.count_before(s, Ties::First));
        }
    });
    result("checkpoint_count_before_ns", format!("{counted:.0}"));
    drop((cp, spots));
    // Shadow-hidden members: 100 of them, what they cost in memory and per read.
    let before_h = LIVE.load(Relaxed);
    for i in 0..100 {
        r.set_hidden(id(i * 9973 % n).as_str(), true);
    }
    result("hidden100_bytes", LIVE.load(Relaxed) - before_h);
    let rank_h = median_ns(nb, batch, |i| {
        std::hint::black_box(r.rank(probe_ids[i].as_str(), Ties::Shared));
    });
    result("rank_with_100_hidden_ns", format!("{rank_h:.0}"));
    let top_h = median_ns(200, 50, |i| {
        std::hint::black_box(r.top((i % 7) * 1000, 100, Ties::Shared));
    });
    result("top100_with_100_hidden_ns", format!("{top_h:.0}"));
    let update_h = median_ns(nb, batch, |i| {
        std::hint::black_box(r.apply(&upd_ids[i], upd[i].1, T0 + (n + 3 * ops + i) as i64));
    });
    result("update_with_100_hidden_ns", format!("{update_h:.0}"));
    for i in 0..100 {
        r.set_hidden(id(i * 9973 % n).as_str(), false);
    }
    drop((upd_ids, batched_ids, probe_ids));

    // rebuild
    let rows: Vec<Row> = r.rows().collect();
    drop(r);
    // The peak a rebuild reaches above what was live before it (the rows
    // themselves excluded: they are fed one at a time, as the Durable
    // Object streams them from SQLite); wasm memory never shrinks, so this
    // transient peak, not the steady size, is what a cold start costs.
    let base = LIVE.load(Relaxed);
    PEAK.store(base, Relaxed);
    let t = Instant::now();
    let r2 = Ranking::from_rows(Order::Desc, Op::Incr, rows.iter().cloned());
    let rebuild = t.elapsed().as_secs_f64();
    let peak = PEAK.load(Relaxed) - base;
    result("rebuild_s", format!("{rebuild:.3}"));
    result("rebuild_peak_bytes_per_member", format!("{:.1}", peak as f64 / n as f64));
    // bytes held by a ranking: total live minus everything else still alive
    let held = |r: Ranking| {
        let other = LIVE.load(Relaxed);
        drop(r);
        other - LIVE.load(Relaxed)
    };
    result("bytes_per_member_rebuilt", format!("{:.1}", held(r2) as f64 / n as f64));
    // the same rows on a board with a tiebreak: 40-byte cells (API 1.1 subscores)
    let base = LIVE.load(Relaxed);
    PEAK.store(base, Relaxed);
    let tie = Ranking::from_rows_seeded(Order::Desc, Op::Incr, Tiebreak::Asc, 0, rows.iter().cloned());
    result(
        "rebuild_peak_bytes_per_member_tiebreak",
        format!("{:.1}", (PEAK.load(Relaxed) - base) as f64 / n as f64),
    );
    drop(rows);
    result("bytes_per_member_rebuilt_tiebreak", format!("{:.1}", held(tie) as f64 / n as f64));

    #[cfg(not(target_arch = "wasm32"))]
    if let Some(addr) = redis {
        redis_bench(&addr, n, &upd, &probes);
    }
    #[cfg(target_arch = "wasm32")]
    let _ = redis;
}

/// `--cold`: only a Durable Object's cold start, in a fresh process: the
/// ranking rebuilt from rows streamed one at a time in insertion order (as
/// `SELECT ... FROM members` yields them: ids `member-000000123`, scores in
/// no order), through an iterator that does not know its length (the
/// SQLite cursor's); with `--hint`, told the number of rows as the Durable
/// Object is (`SELECT count(*)`). Reports the build time, the peak and
/// steady heap bytes per member and, on wasm, how far the linear memory grew.
/// The cold load's text chunks: what SQLite concatenates per range of 4,096
/// rowids (`member \t score \t seq \t ts \t sub` lines), rows in insertion order.
fn cold_texts(n: usize) -> Vec<String> {
    (0..n)
        .step_by(4096)
        .map(|lo| {
            let mut t = String::new();
            for i in lo..(lo + 4096).min(n) {
                if i > lo {
                    t.push('\n');
                }
                t.push_str(&format!("member-{i:09}\t{}\t{}\t0\t0", initial(i), T0 + i as i64));
            }
            t
        })
        .collect()
}

fn cold(n: usize, hint: bool, text: bool, borrowed: bool) {
    if text {
        return cold_text(n, hint, borrowed);
    }
    let rows = (0..n).map_while(|i| {
        Some(Row {
            member: format!("member-{i:09}"),
            score: initial(i),
            sub: 0.0,
            seq: (T0 + i as i64) as u64,
            ts: 0,
            meta: None,
        })
    });
    #[cfg(target_arch = "wasm32")]
    let memory_before = linear_memory();
    let base = LIVE.load(Relaxed);
    PEAK.store(base, Relaxed);
    let t = Instant::now();
    let expected = if hint { n } else { 0 };
    let r = Ranking::from_rows_seeded_sized(Order::Desc, Op::Incr, Tiebreak::None, 0, expected, rows);
    let rebuild = t.elapsed().as_secs_f64();
    let peak = PEAK.load(Relaxed) - base;
    let steady = LIVE.load(Relaxed) - base;
    assert_eq!(r.len(), n);
    result("cold_rebuild_s", format!("{rebuild:.3}"));
    result("cold_rebuild_peak_bytes_per_member", format!("{:.1}", peak as f64 / n as f64));
    result("cold_bytes_per_member", format!("{:.1}", steady as f64 / n as f64));
    #[cfg(target_arch = "wasm32")]
    result(
        "cold_wasm_memory_growth_mb",
        format!("{:.1}", (linear_memory() - memory_before) as f64 / 1048576.0),
    );
}

/// `--cold --text`: the cold load as the Durable Object does it, from the
/// text chunks SQLite makes (made before the clock starts): parsing the rows
/// and the rebuild; owned rows into `from_rows_seeded_sized`, or with
/// `--borrowed` rows lent by `TextRows::next_ref` to a `RankingBuilder` (the
/// Durable Object's way).
fn cold_text(n: usize, hint: bool, borrowed: bool) {
    use podium::core::ranking::RankingBuilder;
    use podium::domain::rows::TextRows;
    let texts = cold_texts(n);
    let expected = if hint { n } else { 0 };
    let t = Instant::now();
    let r = if borrowed {
        let mut b = RankingBuilder::new(Order::Desc, Op::Incr, Tiebreak::None, 0, expected);
        for text in texts {
            let mut rows = TextRows::new(text);
            while let Some(row) = rows.next_ref() {
                b.push(row.unwrap());
            }
        }
        b.finish()
    } else {
        let rows = texts.into_iter().flat_map(|t| TextRows::new(t).map(|r| r.unwrap()));
        Ranking::from_rows_seeded_sized(Order::Desc, Op::Incr, Tiebreak::None, 0, expected, rows)
    };
    let rebuild = t.elapsed().as_secs_f64();
    assert_eq!(r.len(), n);
    result("cold_text_parse_and_rebuild_s", format!("{rebuild:.3}"));
}

#[cfg(not(target_arch = "wasm32"))]
fn redis_bench(addr: &str, n: usize, upd: &[(usize, f64)], probes: &[usize]) {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpStream;

    struct Conn {
        w: TcpStream,
        r: BufReader<TcpStream>,
    }
    #[derive(Debug)]
    #[allow(dead_code)]
    enum V {
        S(String),
        I(i64),
        B(Option<Vec<u8>>),
        A(Vec<V>),
    }
    impl Conn {
        fn cmd(&mut self, out: &mut Vec<u8>, parts: &[&[u8]]) {
            out.extend_from_slice(format!("*{}\r\n", parts.len()).as_bytes());
            for p in parts {
                out.extend_from_slice(format!("${}\r\n", p.len()).as_bytes());
                out.extend_from_slice(p);
                out.extend_from_slice(b"\r\n");
            }
        }
        fn read(&mut self) -> V {
            let mut line = String::new();
            self.r.read_line(&mut line).unwrap();
            let body = line[1..].trim_end().to_string();
            match line.as_bytes()[0] {
                b'+' => V::S(body),
                b'-' => panic!("redis error: {body}"),
                b':' => V::I(body.parse().unwrap()),
                b'$' => {
                    let n: i64 = body.parse().unwrap();
                    if n < 0 {
                        return V::B(None);
                    }
                    let mut b = vec![0; n as usize + 2];
                    self.r.read_exact(&mut b).unwrap();
                    b.truncate(n as usize);
                    V::B(Some(b))
                }
                b'*' => {
                    let n: i64 = body.parse().unwrap();
                    V::A((0..n.max(0)).map(|_| self.read()).collect())
                }
                c => panic!("unexpected reply byte {c}"),
            }
        }
        fn pipeline(&mut self, cmds: &[Vec<Vec<u8>>]) -> Vec<V> {
            let mut out = Vec::new();
            for c in cmds {
                let parts: Vec<&[u8]> = c.iter().map(|p| p.as_slice()).collect();
                self.cmd(&mut out, &parts);
            }
            self.w.write_all(&out).unwrap();
            cmds.iter().map(|_| self.read()).collect()
        }
        fn one(&mut self, parts: &[&str]) -> V {
            let c: Vec<Vec<u8>> = parts.iter().map(|p| p.as_bytes().to_vec()).collect();
            self.pipeline(&[c]).pop().unwrap()
        }
    }
    let s = TcpStream::connect(addr).expect("connect to redis");
    s.set_nodelay(true).unwrap();
    let mut c = Conn { w: s.try_clone().unwrap(), r: BufReader::new(s) };
    let key = "bench:zset";
    c.one(&["DEL", key]);
    for start in (0..n).step_by(1000) {
        let mut z: Vec<Vec<u8>> = vec![b"ZADD".to_vec(), key.as_bytes().to_vec()];
        for i in start..(start + 1000).min(n) {
            z.push(format!("{}", initial(i)).into_bytes());
            z.push(id(i).as_str().as_bytes().to_vec());
        }
        c.pipeline(&[z]);
    }
    let mem = match c.one(&["MEMORY", "USAGE", key, "SAMPLES", "0"]) {
        V::I(b) => b,
        v => panic!("{v:?}"),
    };
    c.one(&["CONFIG", "RESETSTAT"]);
    for chunk in upd.chunks(1000) {
        let cmds: Vec<Vec<Vec<u8>>> = chunk
            .iter()
            .map(|(m, v)| {
                vec![
                    b"ZINCRBY".to_vec(),
                    key.as_bytes().to_vec(),
                    format!("{v}").into_bytes(),
                    id(*m).as_str().as_bytes().to_vec(),
                ]
            })
            .collect();
        c.pipeline(&cmds);
    }
    for chunk in probes.chunks(1000) {
        let cmds: Vec<Vec<Vec<u8>>> = chunk
            .iter()
            .map(|m| vec![b"ZREVRANK".to_vec(), key.as_bytes().to_vec(), id(*m).as_str().as_bytes().to_vec()])
            .collect();
        c.pipeline(&cmds);
    }
    let info = match c.one(&["INFO", "commandstats"]) {
        V::B(Some(b)) => String::from_utf8(b).unwrap(),
        v => panic!("{v:?}"),
    };
    let usec = |cmd: &str| -> f64 {
        info.lines()
            .find(|l| l.starts_with(&format!("cmdstat_{cmd}:")))
            .and_then(|l| l.split(',').find_map(|kv| kv.strip_prefix("usec_per_call=")))
            .map_or(f64::NAN, |v| v.parse().unwrap())
    };
    result("redis_zincrby_ns", format!("{:.0}", usec("zincrby") * 1000.0));
    result("redis_zrevrank_ns", format!("{:.0}", usec("zrevrank") * 1000.0));
    result("redis_bytes_per_member", format!("{:.1}", mem as f64 / n as f64));
    c.one(&["DEL", key]);
    let _ = V::S(String::new());
}
