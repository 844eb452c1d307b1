// Where an event's CPU time goes inside workerd: starts the built worker
// under `wrangler dev`, samples it with the V8 CPU profiler (through the
// inspector wrangler exposes), drives it with tools/load's podium-load, and
// prints self time by function and by part of the pipeline.
//
//   node scripts/profile.mjs [events=200000] [boards=1]
//
// Needs build/ (make build) and tools/load built (scripts/perf.sh builds it).
import { spawnSync } from 'node:child_process';
import { startWorker, inspectorSessions, ROOT } from '../tests/harness.mjs';

const events = Number(process.argv[2] ?? 200000);
const boards = Number(process.argv[3] ?? 1);
const w = await startWorker();
const sessions = await inspectorSessions(w.inspectorPort);
for (const { send } of sessions) {
  await send('Profiler.enable');
  await send('Debugger.enable');
  await send('Profiler.setSamplingInterval', { interval: 200 });
  await send('Profiler.start');
}
const t0 = Date.now();
const run = spawnSync(`${ROOT}/tools/load/target/release/podium-load`,
  ['--url', w.url, '--events', String(events), '--boards', String(boards), '--probe-ms', '0', '--settle-timeout', '300'],
  { encoding: 'utf8' });
const wall = (Date.now() - t0) / 1000;
console.log((run.stdout || '').split('\n').filter((l) => /applied|accepted|sum/i.test(l)).slice(0, 8).join('\n'));
const self = new Map();
const stages = new Map();
const where = new Map(); // anonymous frame name -> [session, scriptId, line, column]
let total = 0;
for (const s of sessions) {
  const { result } = await s.send('Profiler.stop');
  const p = result.profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const counts = new Map();
  p.samples.forEach((id, i) => counts.set(id, (counts.get(id) ?? 0) + (p.timeDeltas[i] ?? 0)));
  // Which stage each sample belongs to: the nearest podium glue frame above it.
  const parent = new Map();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const stageOf = (id) => {
    for (let at = id; at !== undefined; at = parent.get(at)) {
      const f = byId.get(at)?.callFrame.functionName ?? '';
      const m = f.match(/podium::glue::(\w+)/);
      if (m) return m[1];
    }
    return '(outside podium functions: runtime, glue, GC)';
  };
  for (const [id, us] of counts) {
    const n = byId.get(id);
    if (['(idle)', '(program)'].includes(n.callFrame.functionName)) continue;
    const st = stageOf(id);
    stages.set(st, (stages.get(st) ?? 0) + us);
  }
  for (const [id, us] of counts) {
    const n = byId.get(id);
    const f = n.callFrame;
    const name = f.functionName || `(${f.url.split('/').pop() || 'anonymous'}:${f.lineNumber + 1}:${f.columnNumber + 1})`;
    if (!f.functionName && f.scriptId) where.set(name, [s, f.scriptId, f.lineNumber, f.columnNumber]);
    if (name === '(idle)' || name === '(program)') continue;
    self.set(name, (self.get(name) ?? 0) + us);
    total += us;
  }
}
// The source of the hottest anonymous JS frames (the bundle is not minified).
const sources = new Map();
for (const [name] of [...self].filter(([n]) => where.has(n)).sort((a, b) => b[1] - a[1]).slice(0, 6)) {
  const [s, scriptId, line, col] = where.get(name);
  if (!sources.has(scriptId)) sources.set(scriptId, (await s.send('Debugger.getScriptSource', { scriptId })).result?.scriptSource ?? '');
  const lines = sources.get(scriptId).split('\n');
  console.log(`${name}: ${lines.slice(Math.max(0, line - 2), line + 1).join(' | ').replace(/\s+/g, ' ').slice(0, 300)}`);
}
for (const s of sessions) s.ws.close();
await w.stop();
const parts = [
  ['JSON (serde_json)', /serde_json|serde::|json/i],
  ['SQLite calls', /sql|exec|cursor|Sql/],
  ['ranking core', /podium::core|ranking|tree|ids::/],
  ['wasm-bindgen / JS glue', /wasm_bindgen|js_sys|__wbg|externref|getStringFromWasm|passStringToWasm|TextDecoder|TextEncoder/],
  ['allocation', /alloc|dlmalloc|memcpy|memmove|realloc/],
];
const byPart = new Map();
for (const [name, us] of self) {
  const part = parts.find(([, re]) => re.test(name))?.[0] ?? 'other';
  byPart.set(part, (byPart.get(part) ?? 0) + us);
}
console.log(`\n${events} events, ${boards} board(s), ${wall.toFixed(1)} s wall; sampled CPU ${(total / 1e6).toFixed(2)} s = ${(total / events).toFixed(1)} µs/event (JS thread of workerd only)`);
console.log('\nby stage (nearest podium::glue module on the stack):');
for (const [k, v] of [...stages].sort((a, b) => b[1] - a[1])) console.log(`  ${k.padEnd(46)} ${(v / events).toFixed(2).padStart(7)} µs/event  ${(100 * v / total).toFixed(1)}%`);
console.log('\nby part:');
for (const [k, v] of [...byPart].sort((a, b) => b[1] - a[1])) console.log(`  ${k.padEnd(28)} ${(v / events).toFixed(2).padStart(7)} µs/event  ${(100 * v / total).toFixed(1)}%`);
console.log('\ntop functions (self time):');
for (const [k, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 35)) console.log(`  ${(v / events).toFixed(2).padStart(7)} µs/event  ${(100 * v / total).toFixed(1).padStart(5)}%  ${k.slice(0, 110)}`);
