// What a board object's cold start costs a read (issue 13's `read°`): fills
// `boards` boards with one event each, waits until each has reported its
// counts, restarts workerd on the same state (every object cold), then reads
// each board twice in a row: the first read wakes its object, the second
// finds it warm. Then, 4.2 s later, the last 100 again: warm objects whose
// catalog records the isolate must look up again. Prints the medians.
//
// PROFILE=1 also samples workerd's JS thread (V8 profiler) and prints who
// calls SQL, the time under a few functions (PROFILE_INCL, comma-separated
// substrings of function names or URLs), and what runs under one of them
// (PROFILE_UNDER, e.g. do_wrapper: Miniflare's wrapper of every Durable
// Object class under `wrangler dev`).
//
//   node scripts/cold-bench.mjs [boards=300]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startWorker, post, get, waitFor, inspectorSessions } from '../tests/harness.mjs';

const B = Number(process.argv[2] ?? 300);
const name = (i) => `cold-${String(i).padStart(6, '0')}`;
const dir = mkdtempSync(join(tmpdir(), 'podium-cold-'));
const pct = (xs, p) => [...xs].sort((a, c) => a - c)[Math.min(xs.length - 1, Math.floor(xs.length * p))];
const timed = async (url) => {
  const t = performance.now();
  const r = await get(url, { headers: { 'Cache-Control': 'no-cache' } });
  if (r.status !== 200 || r.json?.total !== 1) throw new Error(`${url}: ${r.status} ${r.text.slice(0, 200)}`);
  return performance.now() - t;
};
let w = await startWorker({ persistDir: dir });
try {
  for (let i = 0; i < B; i += 100) {
    const batch = Array.from({ length: Math.min(100, B - i) }, (_, k) => ({ type: 'bench', board: name(i + k), member: 'seed' }));
    const r = await post(`${w.url}/v1/events`, batch);
    if (r.status !== 202) throw new Error(`seed: ${r.status} ${r.text}`);
  }
  await waitFor(async () => (await get(`${w.url}/v1/boards/${name(B - 1)}/top`)).json?.total >= 1,
    { timeout: 120_000, interval: 500, what: 'the seed events applied' });
  // Every board reports its counts to the catalog after its apply (what a
  // deployment's boards have done long before they go cold).
  await waitFor(async () => {
    let n = 0;
    for (let cursor = ''; ;) {
      const page = (await get(`${w.url}/v1/boards?prefix=cold-&limit=1000${cursor ? `&cursor=${cursor}` : ''}`)).json;
      n += page.boards.filter((b) => b.members === 1).length;
      if (!page.next) return n === B;
      cursor = page.next;
    }
  }, { timeout: 120_000, interval: 500, what: 'every board\'s counts reported' });
  await w.stop();
  w = await startWorker({ persistDir: dir });
  // The catalog object and the isolate warm on another board first.
  await get(`${w.url}/v1/boards/${name(0)}/top`);
  const sessions = process.env.PROFILE ? await inspectorSessions(w.inspectorPort) : [];
  for (const { send } of sessions) {
    await send('Profiler.enable');
    await send('Profiler.setSamplingInterval', { interval: 100 });
    await send('Profiler.start');
  }
  const cold = [];
  const warm = [];
  for (let i = 1; i < B; i += 1) {
    cold.push(await timed(`${w.url}/v1/boards/${name(i)}/top?limit=10`));
    warm.push(await timed(`${w.url}/v1/boards/${name(i)}/top?limit=10`));
  }
  // The last 100 boards again once the isolate's copies of their catalog
  // records are older than its 4 s cache (their objects still warm): what
  // a catalog lookup alone adds to a read.
  await new Promise((r) => setTimeout(r, 4200));
  const missed = [];
  for (let i = Math.max(1, B - 100); i < B; i += 1) missed.push(await timed(`${w.url}/v1/boards/${name(i)}/top?limit=10`));
  const f = (xs) => `p50 ${pct(xs, 0.5).toFixed(2)} ms, p90 ${pct(xs, 0.9).toFixed(2)} ms`;
  console.log(`${cold.length} boards: first read (cold object) ${f(cold)}; second read (warm) ${f(warm)}; cold - warm p50 ${(pct(cold, 0.5) - pct(warm, 0.5)).toFixed(2)} ms`);
  console.log(`warm object, catalog record not cached: ${f(missed)}`);
  for (const s of sessions) {
    const { result } = await s.send('Profiler.stop');
    const p = result.profile;
    const self = new Map();
    const dt = p.timeDeltas;
    for (let k = 0; k < p.samples.length; k += 1) self.set(p.samples[k], (self.get(p.samples[k]) ?? 0) + (dt[k] ?? 0));
    const total = [...self.values()].reduce((a, b) => a + b, 0);
    const byName = new Map();
    for (const n of p.nodes) {
      const key = `${n.callFrame.functionName || '(anon)'} ${n.callFrame.url.split('/').pop()}:${n.callFrame.lineNumber}`;
      byName.set(key, (byName.get(key) ?? 0) + (self.get(n.id) ?? 0));
    }
    // Who calls SQL: the nearest frame of ours above each `exec` sample.
    const parent = new Map();
    for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
    const byId = new Map(p.nodes.map((n) => [n.id, n]));
    const callers = new Map();
    for (const n of p.nodes) {
      if (n.callFrame.functionName !== 'exec' || !self.get(n.id)) continue;
      let up = parent.get(n.id);
      const chain = [];
      while (up !== undefined && chain.length < 4) {
        const f = byId.get(up).callFrame.functionName;
        chain.push((f || '(anon)').replace(/^.*glue::/, '').slice(0, 50));
        up = parent.get(up);
      }
      const key = chain.join(' < ') || '(no podium frame)';
      callers.set(key, (callers.get(key) ?? 0) + self.get(n.id));
    }
    for (const [k, v] of [...callers.entries()].sort((a, b) => b[1] - a[1]).slice(0, 8)) console.log(`  exec ${(v / 1000).toFixed(1).padStart(8)} ms  ${k}`);
    // Inclusive time under a few functions of ours (each counted once per stack).
    const incl = new Map();
    const pats = (process.env.PROFILE_INCL ?? 'ensure_loaded,CatalogObject,BoardObject,do_wrapper,MemberRows,load_checkpoint,kv::all,post_events,boards::top').split(',');
    for (const n of p.nodes) {
      const t = self.get(n.id) ?? 0;
      if (!t) continue;
      const hit = new Set();
      for (let up = n.id; up !== undefined; up = parent.get(up)) {
        const fr = byId.get(up).callFrame;
        const label = `${fr.functionName} ${fr.url}`;
        for (const pat of pats) if (label.includes(pat)) hit.add(pat);
      }
      for (const h of hit) incl.set(h, (incl.get(h) ?? 0) + t);
    }
    for (const [k, v] of [...incl.entries()].sort((a, b) => b[1] - a[1])) console.log(`  under ${k.padEnd(16)} ${(v / 1000).toFixed(1).padStart(8)} ms`);
    if (process.env.PROFILE_UNDER) {
      // What runs under one of them, by the frame just below it.
      const below = new Map();
      for (const n of p.nodes) {
        const t = self.get(n.id) ?? 0;
        if (!t) continue;
        let child = n.id;
        for (let up = n.id; up !== undefined; child = up, up = parent.get(up)) {
          const fr = byId.get(up).callFrame;
          if (`${fr.functionName} ${fr.url}`.includes(process.env.PROFILE_UNDER)) {
            const c = byId.get(child).callFrame;
            const key = child === up ? '(self)' : `${c.functionName || '(anon)'} ${c.url.split('/').pop()}:${c.lineNumber} > ${n.callFrame.functionName || '(anon)'}`;
            below.set(key, (below.get(key) ?? 0) + t);
            break;
          }
        }
      }
      for (const [k, v] of [...below.entries()].sort((a, b) => b[1] - a[1]).slice(0, 15)) console.log(`    ${(v / 1000).toFixed(1).padStart(8)} ms  ${k.slice(0, 140)}`);
    }
    const top = [...byName.entries()].sort((a, b) => b[1] - a[1]).slice(0, 25);
    console.log(`profile: ${(total / 1000).toFixed(0)} ms sampled`);
    for (const [k, v] of top) console.log(`  ${(v / 1000).toFixed(1).padStart(8)} ms  ${(100 * v / total).toFixed(1).padStart(5)}%  ${k}`);
  }
} finally {
  await w.stop();
  rmSync(dir, { recursive: true, force: true });
}
