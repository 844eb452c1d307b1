// What holds a read up on a busy board (issue 11: reads p99 ≤ 50 ms on a 1M
// board while 10,000 events/s are applied): runs reads and that write load
// against a board already filled by `scripts/million.mjs` (MILLION_STATE),
// samples workerd's JS thread with the V8 profiler, and prints the read
// latencies and the longest stretches the thread was busy without a break
// (a read that arrives during one waits for its end), each with what it ran
// (the nearest podium::glue module on the stack).
//
//   MILLION_STATE=dir node scripts/stalls.mjs [seconds=15] [events_per_s=10000] [written=1000000]
//
// `written`: the writes go to members drawn uniformly from the first
// `written` of the board's (all of them by default; fewer shows what the
// spread of the writes over SQLite's pages costs).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { startWorker, inspectorSessions, post, get } from '../tests/harness.mjs';

const dir = process.env.MILLION_STATE;
if (!dir || !existsSync(join(dir, '.filled'))) throw new Error('set MILLION_STATE to a directory filled by scripts/million.mjs');
const seconds = Number(process.argv[2] ?? 15);
const rate = Number(process.argv[3] ?? 10000);
const written = Number(process.argv[4] ?? 1_000_000);
const N = 1_000_000;
const b = 'million';
const id = (i) => `member-${String(i).padStart(9, '0')}`;
const w = await startWorker({ persistDir: dir, vars: { CHECKPOINT_EVERY_MS: '60000', ...JSON.parse(process.env.PODIUM_VARS ?? '{}') } });
await get(`${w.url}/v1/boards/${b}/top?limit=1`); // the cold load, outside the profile
const sessions = await inspectorSessions(w.inspectorPort);
for (const { send } of sessions) {
  await send('Profiler.enable');
  await send('Profiler.setSamplingInterval', { interval: 200 });
  await send('Profiler.start');
}
let stop = false;
const writer = (async () => {
  while (!stop && rate > 0) {
    const t = Date.now();
    const batch = Array.from({ length: 1000 }, () => ({ type: 'x', board: b, member: id(Math.floor(Math.random() * written)), value: 1 }));
    await post(`${w.url}/v1/events`, batch);
    await new Promise((r) => setTimeout(r, Math.max(0, (1000 * 1000) / rate - (Date.now() - t))));
  }
})();
const reads = [];
const until = Date.now() + seconds * 1000;
while (Date.now() < until) {
  const t = performance.now();
  const r = await get(`${w.url}/v1/boards/${b}/members/${id(Math.floor(Math.random() * N))}`, { headers: { 'Cache-Control': 'no-cache' } });
  reads.push(performance.now() - t);
  if (r.status !== 200) throw new Error(`${r.status} ${r.text}`);
}
stop = true;
await writer;
const pct = (xs, p) => [...xs].sort((a, c) => a - c)[Math.min(xs.length - 1, Math.floor(xs.length * p))];
console.log(`${reads.length} reads: p50 ${pct(reads, 0.5).toFixed(1)} ms, p99 ${pct(reads, 0.99).toFixed(1)} ms, max ${Math.max(...reads).toFixed(1)} ms`);
for (const s of sessions) {
  const { result } = await s.send('Profiler.stop');
  const p = result.profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const stageOf = (nid) => {
    for (let at = nid; at !== undefined; at = parent.get(at)) {
      const f = byId.get(at)?.callFrame.functionName ?? '';
      const m = f.match(/podium::glue::(\w+)::(\w+)/);
      if (m) return `${m[1]}::${m[2]}`;
    }
    const f = byId.get(nid)?.callFrame.functionName || '(anonymous)';
    return f === '(garbage collector)' ? 'GC' : 'runtime / JS';
  };
  // Busy stretches: consecutive samples that are not (idle).
  const runs = [];
  let cur = null;
  let t = p.startTime;
  p.samples.forEach((sid, i) => {
    t += p.timeDeltas[i] ?? 0;
    const name = byId.get(sid)?.callFrame.functionName;
    const idle = name === '(idle)' || name === '(program)';
    if (idle) {
      if (cur) runs.push(cur);
      cur = null;
      return;
    }
    cur ??= { start: t, end: t, parts: new Map() };
    const dt = p.timeDeltas[i + 1] ?? 200;
    cur.end = t + dt;
    const st = stageOf(sid);
    cur.parts.set(st, (cur.parts.get(st) ?? 0) + dt);
  });
  if (cur) runs.push(cur);
  const busy = runs.reduce((a, r) => a + (r.end - r.start), 0);
  const span = (t - p.startTime) / 1e6;
  console.log(`\nthread busy ${(busy / 1e6).toFixed(1)} s of ${span.toFixed(1)} s; ${runs.length} busy stretches, longest:`);
  for (const r of runs.sort((a, c) => (c.end - c.start) - (a.end - a.start)).slice(0, 12)) {
    const parts = [...r.parts].sort((a, c) => c[1] - a[1]).slice(0, 5).map(([k, v]) => `${k} ${(v / 1000).toFixed(0)}`).join(', ');
    console.log(`  ${((r.end - r.start) / 1000).toFixed(0).padStart(5)} ms  (${parts})`);
  }
  // Where the busy time went, by stage and by function (self time).
  const byStage = new Map();
  const byFn = new Map();
  const where = new Map();
  p.samples.forEach((sid, i) => {
    const n = byId.get(sid);
    const name = n?.callFrame.functionName;
    if (name === '(idle)' || name === '(program)') return;
    const dt = p.timeDeltas[i + 1] ?? 200;
    const st = stageOf(sid);
    byStage.set(st, (byStage.get(st) ?? 0) + dt);
    const f = name || `(${n?.callFrame.url.split('/').pop() || 'anonymous'}:${(n?.callFrame.lineNumber ?? 0) + 1})`;
    if (!name && n?.callFrame.scriptId) where.set(f, n.callFrame);
    byFn.set(f, (byFn.get(f) ?? 0) + dt);
  });
  console.log('\nbusy time by stage:');
  for (const [k, v] of [...byStage].sort((a, c) => c[1] - a[1]).slice(0, 12)) console.log(`  ${(v / 1e6).toFixed(2).padStart(6)} s  ${k}`);
  console.log('busy time by function (self):');
  for (const [k, v] of [...byFn].sort((a, c) => c[1] - a[1]).slice(0, 25)) console.log(`  ${(v / 1e6).toFixed(2).padStart(6)} s  ${k.slice(0, 120)}`);
  // The source of the hottest anonymous frames (the bundles are not minified).
  for (const [k] of [...byFn].filter(([k]) => where.has(k)).sort((a, c) => c[1] - a[1]).slice(0, 4)) {
    const cf = where.get(k);
    const src = (await s.send('Debugger.getScriptSource', { scriptId: cf.scriptId })).result?.scriptSource ?? '';
    console.log(`${k}: ${src.split('\n').slice(Math.max(0, cf.lineNumber - 3), cf.lineNumber + 2).join(' | ').replace(/\s+/g, ' ').slice(0, 400)}`);
  }
  s.ws.close();
}
await w.stop();
