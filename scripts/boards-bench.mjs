// The catalog at scale (issue 13 item 1; not in CI). One session runs two
// deployments side by side, each its own workerd with its own state: one
// with 10 boards, one with N (default 100,000) created through the API
// (`PUT /v1/boards/{board}`, `concurrency` at a time). It then measures
// both, alternating run by run (so a busy machine weighs on both alike):
// 5 runs, each run's figure the median of `samples` sequential requests,
// and the result the median of the 5 runs:
//
//   ingest   POST /v1/events, one event to one of the same 10 boards in
//            both deployments (the same working set: what more boards cost)
//   read     GET /v1/boards/{one of the same 10}/top
//   ingest*  POST /v1/events to a board picked at random among all the
//            deployment's boards: at N boards nearly every one is a miss of
//            the isolate's catalog cache, the board's first event (its
//            record marked as holding scores) and a board object woken cold
//   read*    GET /v1/boards/{random board}/top (a cache miss; at N boards
//            nearly always a board no event reached, answered by the catalog)
//   ingest°, read°  the same, to a random board among those that hold
//            scores (every 100th got one event before the probes)
//   lookup   GET /v1/boards/{a name no board has}: a 404 only the catalog
//            object can give (a fresh name each time, never cached)
//   list     GET /v1/boards?limit=10&cursor=...: a full page of 10 from
//            anywhere in the name index (from the start at 10 boards)
//
// and prints the ratio N-board / 10-board for each (the issue asks ≤ 1.5×).
//
//   node scripts/boards-bench.mjs [boards=100000] [samples=200] [concurrency=32]
import { startWorker, post, get, admin, waitFor } from '../tests/harness.mjs';

const N = Number(process.argv[2] ?? 100_000);
const SAMPLES = Number(process.argv[3] ?? 200);
const WIDTH = Number(process.argv[4] ?? 32);
const RUNS = 5;

const name = (i) => `bench-${String(i).padStart(7, '0')}`;
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor((s.length - 1) / 2)]; };
const pick = (n) => Math.floor(Math.random() * n);
let miss = 0;

async function ok(r, want, what) {
  const res = await r;
  if (res.status !== want) throw new Error(`${what}: ${res.status} ${res.text}`);
}

const ingest = (url, i) => ok(post(`${url}/v1/events`, { type: 'bench', board: name(i), member: `m${pick(1000)}` }), 202, 'ingest');
const read = (url, i) => ok(get(`${url}/v1/boards/${name(i)}/top?limit=10`), 200, 'read');
// Every SCORED-th board got one event before the probes (at 10 boards: all):
// `ingest°`/`read°` pick among those, so they meet boards that hold scores.
// (A board's first event wakes its objects: ~30 ms of workerd's one thread
// locally, so 1,000 of them, not 10,000.)
const SCORED = 100;
const scored = (n) => (n > 10 ? pick(Math.floor(n / SCORED)) * SCORED : pick(n));
const probes = {
  ingest: (url) => ingest(url, pick(10)),
  read: (url) => read(url, pick(10)),
  'ingest*': (url, n) => ingest(url, pick(n)),
  'read*': (url, n) => read(url, pick(n)),
  'ingest°': (url, n) => ingest(url, scored(n)),
  'read°': (url, n) => read(url, scored(n)),
  lookup: (url) => ok(get(`${url}/v1/boards/none-${process.pid}-${(miss += 1)}`), 404, 'lookup'),
  list: async (url, n) => {
    const r = await get(`${url}/v1/boards?limit=10${n > 10 ? `&cursor=${name(pick(n - 10))}` : ''}`);
    if (r.status !== 200 || r.json.boards.length !== 10) throw new Error(`list: ${r.status} ${r.text.slice(0, 200)}`);
  },
};

/** One run of `probe` against deployment `d`: the median of SAMPLES. */
async function run(probe, d) {
  const xs = [];
  for (let i = 0; i < SAMPLES; i += 1) {
    const t = performance.now();
    await probe(d.url, d.n);
    xs.push(performance.now() - t);
  }
  return median(xs);
}

async function create(url, from, to) {
  let next = from;
  const lane = async () => {
    while (next < to) {
      const i = next++;
      // A client that outruns the deployment's rate limit waits as told.
      for (;;) {
        const r = await admin(`${url}/v1/boards/${name(i)}`, 'PUT', {});
        if (r.status === 429) { await new Promise((res) => setTimeout(res, 1000 * Number(r.headers?.get?.('retry-after') ?? 1))); continue; }
        if (r.status !== 201) throw new Error(`PUT ${name(i)}: ${r.status} ${r.text}`);
        break;
      }
    }
  };
  await Promise.all(Array.from({ length: WIDTH }, lane));
}

const small = { n: 10, w: await startWorker() };
const big = { n: N, w: await startWorker() };
small.url = small.w.url;
big.url = big.w.url;
try {
  await create(small.url, 0, small.n);
  const t0 = Date.now();
  let last = t0;
  for (let done = 0; done < N;) {
    const to = Math.min(N, done + 10_000);
    await create(big.url, done, to);
    const now = Date.now();
    console.log(`created ${to} boards: ${((now - t0) / 1000).toFixed(1)} s (${Math.round((to - done) / ((now - last) / 1000))} boards/s lately)`);
    done = to;
    last = now;
  }
  const secs = (Date.now() - t0) / 1000;
  console.log(`created ${N} boards through PUT /v1/boards/{board} (${WIDTH} at a time) in ${secs.toFixed(1)} s (${Math.round(N / secs)}/s)`);
  const listed = (await get(`${big.url}/v1/boards?limit=1&cursor=${name(N - 2)}`)).json;
  if (listed?.boards?.[0]?.name !== name(N - 1)) throw new Error(`the last board is not listed: ${JSON.stringify(listed)}`);

  // One event on every SCORED-th board (100 boards a request: one catalog
  // write marks them all as holding scores), and on each of the 10; then
  // wait until the last is applied.
  for (const d of [small, big]) {
    const picked = d.n > 10 ? Array.from({ length: Math.floor(d.n / SCORED) }, (_, i) => i * SCORED) : [...Array(d.n).keys()];
    for (let i = 0; i < picked.length; i += 100) {
      const batch = picked.slice(i, i + 100).map((b) => ({ type: 'bench', board: name(b), member: 'seed' }));
      await ok(post(`${d.url}/v1/events`, batch), 202, 'seed events');
    }
    await waitFor(async () => (await get(`${d.url}/v1/boards/${name(picked.at(-1))}/top`)).json?.total >= 1,
      { timeout: 300_000, interval: 1000, what: 'the seed events applied' });
  }
  console.log(`one event on each of ${Math.floor(N / SCORED)} boards (every ${SCORED}th) for ingest°/read°`);
  console.log(`\nmedian of ${RUNS} runs, each the median of ${SAMPLES} requests; the two deployments alternate run by run`);
  for (const [k, probe] of Object.entries(probes)) {
    for (const d of [small, big]) for (let i = 0; i < 20; i += 1) await probe(d.url, d.n); // warm-up
    const runs = { small: [], big: [] };
    for (let r = 0; r < RUNS; r += 1) {
      runs.small.push(await run(probe, small));
      runs.big.push(await run(probe, big));
    }
    const a = median(runs.small);
    const b = median(runs.big);
    const f = (xs) => xs.map((x) => x.toFixed(1)).join(' ');
    console.log(`${k.padEnd(7)} 10 boards ${a.toFixed(2)} ms [${f(runs.small)}]  ${N} boards ${b.toFixed(2)} ms [${f(runs.big)}]  = ${(b / a).toFixed(2)}x ${b / a <= 1.5 ? 'ok' : 'OVER 1.5x'}`);
  }
} finally {
  await small.w.stop();
  await big.w.stop();
}
