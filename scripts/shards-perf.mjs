// One hot board, unsharded and sharded, under `wrangler dev` (issue 13):
// tools/load sends the same events to a board with 1 shard and to a board
// with N, alternately, R runs each, and prints what each applied per second
// and per shard object. Locally every object shares one workerd thread, so
// this shows the cost per event of spreading a board (and that the sums are
// exact), not the scaling a deployment gets (docs/scaling.md).
//
//   node scripts/shards-perf.mjs [events=100000] [shards=8] [runs=3]
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { startWorker, ROOT } from '../tests/harness.mjs';

const [events = 100_000, shards = 8, runs = 3] = process.argv.slice(2).map(Number);
const load = join(ROOT, 'tools/load/target/release/podium-load');
const w = await startWorker();
const rows = [];
try {
  for (let r = 1; r <= runs; r += 1) {
    for (const n of [1, shards]) {
      const out = spawnSync(load, ['--url', w.url, '--events', String(events), '--shards', String(n), '--threads', '4',
        '--batch', '1000', '--members', '100000', '--no-progress', '--cleanup', '--strict', '--label', `shards=${n}`], { encoding: 'utf8' });
      const line = out.stdout.split('\n').filter((l) => l.startsWith('{')).pop();
      if (out.status !== 0 || !line) throw new Error(`podium-load failed (${out.status}):\n${out.stdout}\n${out.stderr}`);
      const j = JSON.parse(line);
      rows.push({ run: r, shards: n, applied: j.applied_per_s, perObject: j.applied_per_s_per_shard_object, sums: j.sum_check });
      console.log(`run ${r} shards=${String(n).padStart(2)}: applied ${j.applied_per_s} events/s, ${j.applied_per_s_per_shard_object} per shard object, sums ${j.sum_check}`);
    }
  }
} finally {
  await w.stop();
}
const med = (xs) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
for (const n of [1, shards]) {
  const mine = rows.filter((x) => x.shards === n);
  console.log(`shards=${n}: median ${med(mine.map((x) => x.applied))} events/s applied (range ${Math.min(...mine.map((x) => x.applied))}–${Math.max(...mine.map((x) => x.applied))}), ${med(mine.map((x) => x.perObject))} per shard object`);
}
