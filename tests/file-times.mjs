// A node:test reporter that prints each test file's wall time (from the
// runner taking the file off its queue to the file's end) when the run ends,
// longest first: where an e2e or browser run's time goes. scripts/test.sh
// adds it beside the spec reporter:
//   --test-reporter=./tests/file-times.mjs --test-reporter-destination=stdout
import { basename, relative } from 'node:path';

export default async function* fileTimes(source) {
  const files = new Map();
  const start = Date.now();
  for await (const e of source) {
    const file = e.data?.file;
    // The file itself is a test named after it at nesting 0.
    if (!file || e.data.nesting !== 0 || basename(String(e.data.name)) !== basename(file)) {
      if (e.type === 'test:fail' && files.has(file)) files.get(file).failed += 1;
      continue;
    }
    if (e.type === 'test:dequeue') files.set(file, { first: Date.now(), failed: 0 });
    if (e.type === 'test:complete' && files.has(file)) files.get(file).last = Date.now();
  }
  const took = (f) => (f.last ?? Date.now()) - f.first;
  const rows = [...files].sort((a, b) => took(b[1]) - took(a[1]));
  yield `\nfile wall times (${((Date.now() - start) / 1000).toFixed(0)} s in all):\n`;
  for (const [file, f] of rows) {
    yield `${(took(f) / 1000).toFixed(1).padStart(7)} s  ${relative(process.cwd(), file)}${f.failed ? `  (${f.failed} failed)` : ''}\n`;
  }
}
