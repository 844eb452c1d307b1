// What a dedupe record costs on disk: sends N events with server-assigned
// ids (UUIDs, 36 bytes) to one board of 10 members under `wrangler dev`,
// then reads the size of that board period's SQLite file. The member rows
// are a few hundred bytes, so the growth is the dedupe records.
//
//   node scripts/dedupe-size.mjs [events=200000]
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { startWorker, post, get, waitFor, uniqueName } from '../tests/harness.mjs';

const n = Number(process.argv[2] ?? 200000);
const dir = mkdtempSync(join(tmpdir(), 'podium-dedupe-'));
const w = await startWorker({ persistDir: dir });
const b = uniqueName('dedupe');
const sizes = () => {
  const d = join(dir, 'v3/do/podium-BoardObject');
  return readdirSync(d).filter((f) => !f.startsWith('metadata')).reduce((s, f) => s + statSync(join(d, f)).size, 0);
};
assert200(await post(`${w.url}/v1/events`, { type: 'x', board: b, member: 'm0' }));
await waitFor(async () => (await get(`${w.url}/v1/boards/${b}`)).json?.events === 1, { timeout: 10_000 });
const before = sizes();
const per = 1000;
const inflight = [];
for (let i = 1; i < n; i += per) {
  const batch = Array.from({ length: Math.min(per, n - i) }, (_, j) => ({ type: 'x', board: b, member: `m${(i + j) % 10}` }));
  inflight.push(post(`${w.url}/v1/events`, batch).then(assert200));
  if (inflight.length >= 4) await inflight.shift();
}
await Promise.all(inflight);
await waitFor(async () => (await get(`${w.url}/v1/boards/${b}`)).json?.events === n, { timeout: 300_000, interval: 500 });
await w.kill(); // a clean stop checkpoints the WAL into the database file
const after = sizes();
console.log(`${n} events: board files ${before} -> ${after} bytes; ${((after - before) / (n - 1)).toFixed(1)} bytes per dedupe record (36-byte ids)`);
await w.stop();
function assert200(r) { if (r.status !== 202) throw new Error(`${r.status} ${r.text}`); }
