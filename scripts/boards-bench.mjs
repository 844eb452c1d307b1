// The catalog at scale (issue 13 item 1; not in CI): one workerd session
// measures a 10-board deployment, then creates boards through the API up to
// N (default 100,000) and measures the same again. Each figure is the median
// of 5 runs, each run's figure the median of `samples` sequential requests:
//
//   ingest   POST /v1/events, one event to a board picked at random among
//            all boards (so at N boards nearly every one is a catalog miss in
//            the isolate's cache: the cost of a lookup by name is in it)
//   read     GET /v1/boards/{random board}/top
//   lookup   GET /v1/boards/{a name no board has}: a 404 that only the
//            catalog object can give (a fresh name each time, never cached)
//   list     GET /v1/boards?limit=100&cursor={random name}: one page of the
//            name index, anywhere in it
//
// and prints the ratio N-board / 10-board (the issue asks ≤ 1.5×).
//
//   node scripts/boards-bench.mjs [boards=100000] [samples=200] [concurrency=32]
//   PODIUM_URL=http://127.0.0.1:8787 node scripts/boards-bench.mjs ...   (a running worker: it must be empty)
import { startWorker, post, get, admin } from '../tests/harness.mjs';

const N = Number(process.argv[2] ?? 100_000);
const SAMPLES = Number(process.argv[3] ?? 200);
const WIDTH = Number(process.argv[4] ?? 32);
const RUNS = 5;

const w = process.env.PODIUM_URL ? { url: process.env.PODIUM_URL, stop: async () => {} } : await startWorker();
const name = (i) => `bench-${String(i).padStart(7, '0')}`;
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor((s.length - 1) / 2)]; };
const pick = (n) => Math.floor(Math.random() * n);
let miss = 0;

async function timed(fn) {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

async function ok(r, want, what) {
  const res = await r;
  if (res.status !== want) throw new Error(`${what}: ${res.status} ${res.text}`);
}

const probes = {
  ingest: (n) => ok(post(`${w.url}/v1/events`, { type: 'bench', board: name(pick(n)), member: `m${pick(1000)}` }), 202, 'ingest'),
  read: (n) => ok(get(`${w.url}/v1/boards/${name(pick(n))}/top?limit=10`), 200, 'read'),
  lookup: () => ok(get(`${w.url}/v1/boards/none-${process.pid}-${(miss += 1)}`), 404, 'lookup'),
  list: (n) => ok(get(`${w.url}/v1/boards?limit=100&cursor=${name(pick(n))}`), 200, 'list'),
};

/** Median over RUNS of each run's median, per probe, at `n` boards. */
async function measure(n) {
  const out = {};
  for (const [k, probe] of Object.entries(probes)) {
    for (let i = 0; i < 20; i += 1) await probe(n); // warm-up
    const runs = [];
    for (let r = 0; r < RUNS; r += 1) {
      const xs = [];
      for (let i = 0; i < SAMPLES; i += 1) xs.push(await timed(() => probe(n)));
      runs.push(median(xs));
    }
    out[k] = { median: median(runs), runs };
  }
  return out;
}

async function create(from, to) {
  let next = from;
  const lane = async () => {
    while (next < to) {
      const i = next++;
      await ok(admin(`${w.url}/v1/boards/${name(i)}`, 'PUT', {}), 201, `PUT ${name(i)}`);
    }
  };
  await Promise.all(Array.from({ length: WIDTH }, lane));
}

const fmt = (m) => Object.entries(m).map(([k, v]) => `${k} ${v.median.toFixed(2)} ms (runs ${v.runs.map((x) => x.toFixed(2)).join(' ')})`).join('\n  ');
try {
  await create(0, 10);
  const small = await measure(10);
  console.log(`10 boards:\n  ${fmt(small)}`);
  const t0 = Date.now();
  let last = t0;
  for (let done = 10; done < N;) {
    const to = Math.min(N, done + 10_000);
    await create(done, to);
    const now = Date.now();
    console.log(`created ${to} boards: ${((now - t0) / 1000).toFixed(1)} s (${Math.round((to - done) / ((now - last) / 1000))} boards/s lately)`);
    done = to;
    last = now;
  }
  const secs = (Date.now() - t0) / 1000;
  console.log(`created ${N - 10} boards through PUT /v1/boards/{board} (${WIDTH} at a time) in ${secs.toFixed(1)} s (${Math.round((N - 10) / secs)}/s)`);
  const big = await measure(N);
  console.log(`${N} boards:\n  ${fmt(big)}`);
  console.log(`ratio ${N} / 10 boards (medians of ${RUNS} runs of ${SAMPLES}):`);
  for (const k of Object.keys(probes)) {
    const r = big[k].median / small[k].median;
    console.log(`  ${k.padEnd(6)} ${small[k].median.toFixed(2)} ms -> ${big[k].median.toFixed(2)} ms = ${r.toFixed(2)}x ${r <= 1.5 ? 'ok' : 'OVER 1.5x'}`);
  }
} finally {
  await w.stop();
}
