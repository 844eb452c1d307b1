// A node:test reporter that prints each test file's wall time (first to last
// event of the file, as seen by the runner) when the run ends, longest first:
// where an e2e or browser run's time goes. scripts/test.sh adds it beside the
// spec reporter: --test-reporter=./tests/file-times.mjs --test-reporter-destination=stdout
import { relative } from 'node:path';

export default async function* fileTimes(source) {
  const files = new Map();
  const start = Date.now();
  for await (const e of source) {
    const file = e.data?.file;
    if (!file) continue;
    const now = Date.now();
    const f = files.get(file) ?? { first: now, last: now, failed: 0 };
    f.last = now;
    if (e.type === 'test:fail') f.failed += 1;
    files.set(file, f);
  }
  const rows = [...files].sort((a, b) => (b[1].last - b[1].first) - (a[1].last - a[1].first));
  yield `\nfile wall times (${((Date.now() - start) / 1000).toFixed(0)} s in all):\n`;
  for (const [file, f] of rows) {
    yield `${((f.last - f.first) / 1000).toFixed(1).padStart(7)} s  ${relative(process.cwd(), file)}${f.failed ? `  (${f.failed} failed)` : ''}\n`;
  }
}
