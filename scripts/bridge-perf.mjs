#!/usr/bin/env node
// Throughput of podium-bridge from each broker into Podium (issue 17), on
// loopback: a private Redis and RabbitMQ (tests/brokers.mjs), the built
// worker under workerd (tests/harness.mjs). For each broker: N messages are
// produced first (tests/bridge/fill.py), then `podium-bridge --once` drains
// them, timed; then the board is read until every event is applied and the
// per-member sums are compared exactly. Prints one line per broker.
//
//   scripts/bridge.sh && node scripts/bridge-perf.mjs [N=100000]
//   BRIDGE_PERF_BATCH (events per POST, XREADGROUP COUNT and AMQP batch, default 1000),
//   BRIDGE_PERF_INFLIGHT (requests in flight per source, default 4)
import { startWorker, get, waitFor, uniqueName } from '../tests/harness.mjs';
import { checkPrerequisites, startRedis, startRabbit, startBridge, python } from '../tests/brokers.mjs';

const N = Number(process.argv[2] ?? 100_000);
const BATCH = Number(process.env.BRIDGE_PERF_BATCH ?? 1000);
const INFLIGHT = Number(process.env.BRIDGE_PERF_INFLIGHT ?? 4);
checkPrerequisites();
const [w, redis, rabbit] = await Promise.all([startWorker(), startRedis(), startRabbit()]);
const results = [];
try {
  for (const broker of ['redis', 'amqp']) {
    const board = uniqueName(`perf-${broker}`);
    const name = uniqueName(broker);
    const filled = python('fill.py', [broker, broker === 'redis' ? redis.port : rabbit.port, name, N]);
    const source = broker === 'redis'
      ? `[[redis]]\nurl = "${redis.url}"\nstream = "${name}"\nstart = "0"\nbatch = ${BATCH}\n[redis.event]\ntype = "perf"\nmember = { from = "field.type" }\nboard = "${board}"\n`
      : `[[amqp]]\nurl = "${rabbit.url}"\nqueue = "${name}"\nbatch = ${BATCH}\n[amqp.event]\ntype = "perf"\nmember = { from = "body.member" }\nvalue = { from = "body.score" }\nboard = "${board}"\n`;
    const t0 = Date.now();
    const bridge = startBridge(`[podium]\nurl = "${w.url}"\nbatch = ${BATCH}\ninflight = ${INFLIGHT}\n${source}`, { once: true, progress: 5 });
    const { code } = await bridge.exited;
    const drained = (Date.now() - t0) / 1000;
    if (code !== 0) throw new Error(`bridge exited ${code}:\n${bridge.stdout()}\n${bridge.stderr()}`);
    const s = bridge.summary();
    await waitFor(async () => (await get(`${w.url}/v1/boards/${board}`)).json?.events === N, { timeout: 600_000, interval: 250, what: `${N} events applied` });
    const applied = (Date.now() - t0) / 1000;
    const top = (await get(`${w.url}/v1/boards/${board}/top?limit=1000`)).json;
    const exact = top.entries.every((e) => filled.counts[e.member] === e.score) && top.total === Object.keys(filled.counts).length;
    results.push({ broker, messages: N, batch: BATCH, inflight: INFLIGHT, produce_s: filled.produce_s, bridge_s: Number(drained.toFixed(2)),
      forwarded_per_s: Math.round(s.forwarded / drained), applied_s: Number(applied.toFixed(2)), applied_per_s: Math.round(N / applied),
      retries: s.retries, sums: exact ? 'exact' : 'MISMATCH' });
    console.log(JSON.stringify(results.at(-1)));
  }
} finally {
  await Promise.all([w.stop(), redis.stop(), rabbit.stop()]);
}
if (results.some((r) => r.sums !== 'exact')) process.exit(1);
