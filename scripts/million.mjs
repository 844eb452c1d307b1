// A million-member board through HTTP (issue 11 item 6): fills one board to
// 1,000,000 members (16-byte ids, `meta` on 10%) through POST /v1/events,
// restarts workerd on the same state, and reports the cold start (the first
// read after the restart, which loads the board from SQLite), the board's
// own load time and wasm memory (from its log line), then `top`,
// `members/{m}` and `around` latency p50/p99 through HTTP while 10,000
// events/s are applied to the same board.
//
//   node scripts/million.mjs [members=1000000]
//
// MILLION_STATE=dir keeps the state in `dir` and fills it only when it is
// new, so repeated runs measure the cold start without the fill;
// MILLION_LOAD_ONLY=1 stops after the cold start.
import { existsSync, mkdtempSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { startWorker, post, get, waitFor } from '../tests/harness.mjs';

const N = Number(process.argv[2] ?? 1_000_000);
const kept = process.env.MILLION_STATE;
const dir = kept ?? mkdtempSync(join(tmpdir(), 'podium-million-'));
const filled = kept !== undefined && existsSync(join(kept, '.filled'));
// Checkpoints (API 1.1 prev_rank) every minute instead of every hour, so one
// is taken on the full board while the reads below run.
let w = await startWorker({ persistDir: dir, vars: { CHECKPOINT_EVERY_MS: '60000', ...JSON.parse(process.env.PODIUM_VARS ?? '{}') } });
const b = 'million';
const id = (i) => `member-${String(i).padStart(9, '0')}`; // 16 bytes
const ev = (i, extra = {}) => ({ type: 'x', board: b, member: id(i), value: (i * 7919) % 100_000, id: `fill-${i}`, ...(i % 10 === 0 ? { meta: { name: `Player ${i}`, level: i % 50 } } : {}), ...extra });
if (!filled) {
  const t0 = Date.now();
  const inflight = [];
  for (let i = 0; i < N; i += 1000) {
    const batch = Array.from({ length: Math.min(1000, N - i) }, (_, j) => ev(i + j));
    inflight.push(post(`${w.url}/v1/events`, batch).then((r) => { if (r.status !== 202) throw new Error(`${r.status} ${r.text}`); }));
    if (inflight.length >= 4) await inflight.shift();
  }
  await Promise.all(inflight);
  await waitFor(async () => (await get(`${w.url}/v1/boards/${b}`)).json?.members === N, { timeout: 600_000, interval: 1000, what: `${N} members` });
  console.log(`filled ${N} members in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  // Storage: the largest SQLite file under the state dir is the board's
  // object (its members table and one dedupe record per fill event).
  const files = (d) => readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(join(d, e.name)) : [join(d, e.name)]));
  const biggest = files(dir).filter((f) => f.endsWith('.sqlite')).map((f) => statSync(f).size).sort((a, c) => c - a)[0] ?? 0;
  console.log(`board object's SQLite file: ${(biggest / 1e6).toFixed(1)} MB for ${N} members and ${N} dedupe records (${(biggest / N).toFixed(1)} B per member with its fill event's record)`);
  writeFileSync(join(dir, '.filled'), String(N));
}
await w.kill();
await w.start();
const c0 = Date.now();
const first = await get(`${w.url}/v1/boards/${b}/top?limit=10`);
const cold = Date.now() - c0;
// The board's alarm (due at restart) may load it before the first read
// arrives, so the read alone can look fast: the load's own log line is the
// cold start (storage to a ranking that can answer).
const loaded = await waitFor(() => w.log().match(/board million[^\n]* loaded (\d+) members in (\d+) ms; wasm memory (\d+) MB(?:; rows read and packed in (\d+) ms)?/), { timeout: 60_000, interval: 200, what: 'the load line' }).catch(() => null);
console.log(`first read after restart: ${cold} ms (status ${first.status}, total ${first.json?.total})`);
console.log(loaded
  ? `cold start (the board's load): ${loaded[1]} members in ${loaded[2]} ms${loaded[4] ? ` (rows read from SQLite and packed: ${loaded[4]} ms)` : ''}; wasm memory ${loaded[3]} MB`
  : 'board load line not found in the log');
if (process.env.MILLION_LOAD_ONLY === '1') {
  await w.stop();
  process.exit(0);
}

// Reads while 10,000 events/s are applied: 10 requests of 1000 per second,
// sent on that schedule whatever their latency (open loop: a slow answer
// does not slow the load down), to members drawn uniformly from the 1M.
let stop = false;
let k = 0;
let refused = 0;
const eventsNow = async () => (await get(`${w.url}/v1/boards/${b}`)).json?.events ?? 0;
const events0 = await eventsNow();
const writer = (async () => {
  const inflight = new Set();
  let next = Date.now();
  while (!stop) {
    const batch = Array.from({ length: 1000 }, () => ({ type: 'x', board: b, member: id(Math.floor(Math.random() * N)), value: 1 }));
    const p = post(`${w.url}/v1/events`, batch)
      .then((r) => { if (r.status !== 202) refused += 1; }, () => { refused += 1; })
      .finally(() => inflight.delete(p));
    inflight.add(p);
    k += 1000;
    next += 100;
    await new Promise((r) => setTimeout(r, Math.max(0, next - Date.now())));
  }
  await Promise.all(inflight);
})();
const pct = (xs, p) => xs.sort((a, c) => a - c)[Math.min(xs.length - 1, Math.floor(xs.length * p))];
const started = Date.now();
for (const [name, path] of [
  ['top?limit=10', () => `/v1/boards/${b}/top?limit=10`],
  ['top?limit=100&offset=500000', () => `/v1/boards/${b}/top?limit=100&offset=500000`],
  ['members/{m}', () => `/v1/boards/${b}/members/${id(Math.floor(Math.random() * N))}`],
  ['around ±5', () => `/v1/boards/${b}/members/${id(Math.floor(Math.random() * N))}/around`],
]) {
  const ms = [];
  for (let i = 0; i < 300; i++) {
    const t = performance.now();
    const r = await get(`${w.url}${path()}`, { headers: { 'Cache-Control': 'no-cache' } });
    ms.push(performance.now() - t);
    if (r.status !== 200) throw new Error(`${name}: ${r.status} ${r.text}`);
  }
  console.log(`${name.padEnd(28)} p50 ${pct(ms, 0.5).toFixed(1)} ms  p99 ${pct(ms, 0.99).toFixed(1)} ms`);
}
stop = true;
await writer;
const secs = (Date.now() - started) / 1000;
const applied = (await eventsNow()) - events0;
console.log(`writes during the reads: ${k} events sent in ${secs.toFixed(1)} s (${Math.round(k / secs)}/s, ${refused} requests refused); ${applied} applied by the reads' end (${Math.round(applied / secs)}/s)`);
if (refused > 0) throw new Error(`${refused} write requests were refused`);
// A checkpoint of the full board: what it held the board's other work up.
// It takes turns of its own: the snapshot (a walk of the ranking) in the
// turn that first crosses the boundary, the grouping in a later one, then
// one slice stored per alarm turn. Applies wait at most the longest of them.
// (A read after the next minute's boundary takes it.)
const cp = await waitFor(async () => {
  await get(`${w.url}/v1/boards/${b}/top?limit=1`, { headers: { 'Cache-Control': 'no-cache' } });
  const log = w.log();
  const snap = [...log.matchAll(/checkpoint of (\d+) members: snapshot taken in (\d+) ms/g)].pop();
  const grouped = [...log.matchAll(/checkpoint of \d+ members: grouped in (\d+) ms/g)].pop();
  return snap && grouped ? { n: snap[1], snap: Number(snap[2]), group: Number(grouped[1]) } : null;
}, { timeout: 70_000, interval: 500, what: 'the checkpoint log lines' }).catch(() => null);
// The other slices are stored by the board's alarm, one turn each.
await new Promise((r) => setTimeout(r, 3000));
const slices = [...w.log().matchAll(/checkpoint of \d+ members: a slice stored in (\d+) ms/g)].map((m) => Number(m[1]));
console.log(cp
  ? `checkpoint of ${cp.n} members: snapshot ${cp.snap} ms, grouping ${cp.group} ms (separate turns), ${slices.length} slices stored in ${slices.length ? Math.min(...slices) : '-'}–${slices.length ? Math.max(...slices) : '-'} ms each; longest turn ${Math.max(cp.snap, cp.group, ...slices)} ms (the most an apply waits for it)`
  : 'no checkpoint lines in the log');
await w.stop();
