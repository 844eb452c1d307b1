#!/usr/bin/env python3
"""The seed's design done right, in the seed's own language (issue 11).

Producers XADD events to a Redis stream, pipelined; a consumer group reads
them with XREADGROUP COUNT 100, applies each batch with pipelined ZINCRBY
(one per event, +1) and XACKs it in the same round trip. Producers and
consumers are separate processes (the GIL would otherwise serialise them).

Measures events/s applied: from the first XADD until the consumers have
applied every event (then the sorted sets are summed and must equal the
event count per set exactly), plus a sample of XADD -> applied latency.
Members are drawn with the same bounded Zipf law as tools/load
(P(k) ~ k^-s over 1..members), boards uniformly.

Prints a human summary and one JSON line starting with {"tool":"perf-seed".
Needs redis-py (scripts/perf.sh installs it into .venv-perf).
"""
import argparse
import itertools
import json
import multiprocessing as mp
import random
import sys
import time

import redis


def now_ms():
    return int(time.time() * 1000)


def zipf_cum_weights(n, s):
    """Cumulative weights of k^-s for k = 1..n (s = 0: uniform)."""
    return list(itertools.accumulate((k ** -s) for k in range(1, n + 1)))


def producer(args, pid, claim, lock, expected_q):
    r = redis.Redis.from_url(args.redis_url)
    rng = random.Random(args.seed * 31 + pid + 1)
    cum = zipf_cum_weights(args.members, args.zipf)
    ranks = range(1, args.members + 1)
    per_board = [0] * args.boards
    key = f"{args.prefix}:events"
    while True:
        with lock:
            start = claim.value
            claim.value += args.pipeline
        if start >= args.events:
            break
        n = min(args.pipeline, args.events - start)
        members = rng.choices(ranks, cum_weights=cum, k=n)
        boards = [rng.randrange(args.boards) for _ in range(n)]
        t = now_ms()
        p = r.pipeline(transaction=False)
        for b, m in zip(boards, members):
            per_board[b] += 1
            p.xadd(key, {"b": b, "m": f"m{m}", "t": t})
        p.execute()
    expected_q.put(per_board)


def consumer(args, cid, applied, lock, done_at, stop, latency_q):
    r = redis.Redis.from_url(args.redis_url)
    key = f"{args.prefix}:events"
    name = f"c{cid}"
    lat = []
    deadline = time.monotonic() + args.timeout
    while not stop.value and applied.value < args.events and time.monotonic() < deadline:
        reply = r.xreadgroup("g", name, {key: ">"}, count=args.count, block=100)
        if not reply:
            continue
        p = r.pipeline(transaction=False)
        ids = []
        for _stream, entries in reply:
            for eid, fields in entries:
                if not ids:
                    # One latency sample per batch: XADD's time to applied.
                    lat.append(now_ms() - int(fields[b"t"]))
                p.zincrby(f"{args.prefix}:board:{int(fields[b'b'])}", 1, fields[b"m"])
                ids.append(eid)
        if not ids:
            continue
        p.xack(key, "g", *ids)
        p.execute()
        with lock:
            applied.value += len(ids)
            if applied.value >= args.events and done_at.value == 0.0:
                done_at.value = time.time()
    latency_q.put(lat)


def percentile(xs, p):
    if not xs:
        return None
    xs = sorted(xs)
    k = max(1, min(len(xs), -(-len(xs) * p // 100)))
    return float(xs[int(k) - 1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--redis-url", default="redis://127.0.0.1:6379")
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--boards", type=int, default=1)
    ap.add_argument("--members", type=int, default=10_000)
    ap.add_argument("--zipf", type=float, default=1.0)
    ap.add_argument("--producers", type=int, default=1)
    ap.add_argument("--consumers", type=int, default=1)
    ap.add_argument("--pipeline", type=int, default=1000, help="XADDs per pipeline")
    ap.add_argument("--count", type=int, default=100, help="XREADGROUP COUNT")
    ap.add_argument("--prefix", default="seed")
    ap.add_argument("--label", default="")
    ap.add_argument("--timeout", type=float, default=600.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--strict", action="store_true")
    args = ap.parse_args()

    r = redis.Redis.from_url(args.redis_url)
    key = f"{args.prefix}:events"
    r.delete(key, *[f"{args.prefix}:board:{b}" for b in range(args.boards)])
    r.xgroup_create(key, "g", id="$", mkstream=True)

    ctx = mp.get_context("fork")
    claim, applied = ctx.Value("q", 0, lock=False), ctx.Value("q", 0, lock=False)
    done_at, stop = ctx.Value("d", 0.0, lock=False), ctx.Value("b", False, lock=False)
    lock = ctx.Lock()
    expected_q, latency_q = ctx.Queue(), ctx.Queue()

    t0 = time.time()
    consumers = [ctx.Process(target=consumer, args=(args, i, applied, lock, done_at, stop, latency_q))
                 for i in range(args.consumers)]
    producers = [ctx.Process(target=producer, args=(args, i, claim, lock, expected_q))
                 for i in range(args.producers)]
    for p in consumers + producers:
        p.start()
    expected = [0] * args.boards
    for _ in producers:
        for b, n in enumerate(expected_q.get(timeout=args.timeout)):
            expected[b] += n
    produced_at = time.time()
    for p in producers:
        p.join(timeout=10)
    lat = []
    for _ in consumers:
        lat.extend(latency_q.get(timeout=args.timeout + 5))
    for p in consumers:
        p.join(timeout=10)
        if p.is_alive():
            p.kill()

    n_applied = applied.value
    applied_secs = (done_at.value or time.time()) - t0
    mismatched = 0
    for b, exp in enumerate(expected):
        total = sum(s for _, s in r.zrange(f"{args.prefix}:board:{b}", 0, -1, withscores=True))
        if total != exp:
            mismatched += 1
    check = "ok" if mismatched == 0 and n_applied == args.events else "mismatch"
    report = {
        "tool": "perf-seed",
        "label": args.label,
        "events": args.events,
        "boards": args.boards,
        "members": args.members,
        "zipf": args.zipf,
        "producers": args.producers,
        "consumers": args.consumers,
        "pipeline": args.pipeline,
        "count": args.count,
        "produce_seconds": round(produced_at - t0, 2),
        "produce_per_s": round(args.events / max(produced_at - t0, 1e-3), 1),
        "applied_events": n_applied,
        "applied_seconds": round(applied_secs, 2),
        "applied_per_s": round(n_applied / max(applied_secs, 1e-3), 1),
        "sum_check": check,
        "mismatched_boards": mismatched,
        "latency_ms": {"samples": len(lat), "p50": percentile(lat, 50), "p99": percentile(lat, 99)},
    }
    print(f"perf-seed {args.label}: {args.events} events over {args.boards} boards, "
          f"{args.producers} producer(s) x pipeline {args.pipeline}, {args.consumers} consumer(s) x COUNT {args.count}")
    print(f"  applied {n_applied} in {applied_secs:.2f} s = {report['applied_per_s']} events/s; sums {check}; "
          f"XADD->applied p50 {report['latency_ms']['p50']} ms p99 {report['latency_ms']['p99']} ms")
    print(json.dumps(report, separators=(",", ":")))
    return 1 if args.strict and check != "ok" else 0


if __name__ == "__main__":
    sys.exit(main())
