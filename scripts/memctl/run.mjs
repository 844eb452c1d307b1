// Memory control for the soak (issue 12 item 11): runs this directory's
// control worker (Podium's pipeline shape, none of its code: an intake
// object's SQLite row, the Queue, a board object's SQLite inserts) under the
// same `wrangler dev` at a given request pattern, and reports workerd's
// anonymous RSS. When it grows like Podium's under the same pattern, the
// growth is the local runtime's, not Podium's. scripts/soak.mjs runs it
// after each soak with the soak's own pattern.
//
//   [MEMCTL_MODE=all|do|plain] node scripts/memctl/run.mjs [seconds=60] [events per request=1000] [requests/s=2] [reads/s=0]
//
// MEMCTL_MODE narrows the pipeline: `plain` answers 202 at once, `do` stops
// at the intake object's SQLite (no Queue).
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../tests/harness.mjs';

const here = dirname(fileURLToPath(import.meta.url));

/**
 * Memory (MB) of the workerd processes in process group `pgid`: `mb` (RSS),
 * `anonMb` (not backed by files: heaps) and `fileMb` (mapped files: SQLite, code).
 */
export function workerdMemory(pgid) {
  const kb = { mb: 0, anonMb: 0, fileMb: 0 };
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]) !== pgid || !stat.includes('(workerd)')) continue;
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      const field = (name) => Number(new RegExp(`${name}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0);
      kb.mb += field('VmRSS');
      kb.anonMb += field('RssAnon');
      kb.fileMb += field('RssFile') + field('RssShmem');
    } catch { /* gone */ }
  }
  return Object.fromEntries(Object.entries(kb).map(([k, v]) => [k, Math.round(v / 1024)]));
}

/**
 * Runs the control worker for `seconds` at `rps` POSTs of `perRequest` events
 * and `reads` GETs per second; `onSample(atS, mb)` every 20 s.
 * Resolves to { startMb, endMb, events }.
 */
export async function runControl({ seconds, perRequest, rps, reads = 0, mode = 'all', onSample = () => {} }) {
  const port = await freePort();
  const state = mkdtempSync(join(tmpdir(), 'memctl-'));
  const wr = spawn(join(here, '../../node_modules/.bin/wrangler'), ['dev', '--ip', '127.0.0.1', '--port', String(port), '--persist-to', state,
    '--show-interactive-dev-session=false'], { cwd: here, detached: true, stdio: ['ignore', 'ignore', 'ignore'], env: { ...process.env, CI: 'true', WRANGLER_SEND_METRICS: 'false' } });
  const url = `http://127.0.0.1:${port}`;
  try {
    for (let i = 0; ; i++) {
      try { if ((await fetch(url)).ok) break; } catch { /* not yet */ }
      if (i > 600) throw new Error('control worker did not start');
      await new Promise((r) => setTimeout(r, 100));
    }
    const startMb = workerdMemory(wr.pid).anonMb;
    let seq = 0;
    const t0 = Date.now();
    const end = t0 + seconds * 1000;
    const reader = reads > 0 && (async () => {
      while (Date.now() < end) {
        await fetch(url).then((r) => r.text()).catch(() => {});
        await new Promise((r) => setTimeout(r, 1000 / reads));
      }
    })();
    let next = t0;
    let lastSample = t0;
    while (Date.now() < end) {
      const events = Array.from({ length: perRequest }, () => { seq += 1; return { id: `e-${seq}`, member: `m${(seq * 7919) % 10000}`, value: 1 }; });
      fetch(`${url}/?mode=${mode}`, { method: 'POST', body: JSON.stringify(events) }).then((r) => r.text()).catch(() => {});
      next += 1000 / rps;
      await new Promise((r) => setTimeout(r, Math.max(0, next - Date.now())));
      if (Date.now() - lastSample >= 20_000) { lastSample = Date.now(); onSample(Math.round((lastSample - t0) / 1000), workerdMemory(wr.pid).anonMb); }
    }
    await reader;
    await new Promise((r) => setTimeout(r, 3000));
    return { startMb, endMb: workerdMemory(wr.pid).anonMb, events: seq };
  } finally {
    try { process.kill(-wr.pid, 'SIGTERM'); } catch { /* gone */ }
    await new Promise((r) => setTimeout(r, 500));
    rmSync(state, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [seconds, perRequest, rps, reads] = [60, 1000, 2, 0].map((d, i) => Number(process.argv[2 + i] ?? d));
  const mode = process.env.MEMCTL_MODE ?? 'all';
  console.log(`control (${mode}): ${seconds} s, ${rps} requests/s of ${perRequest} events, ${reads} reads/s`);
  const r = await runControl({ seconds, perRequest, rps, reads, mode,
    onSample: (at, mb) => console.log(`  ${at} s: workerd anonymous RSS ${mb} MB`) });
  console.log(`control: ${r.events} events; workerd anonymous RSS ${r.startMb} MB at start, ${r.endMb} MB at end (+${r.endMb - r.startMb})`);
}
