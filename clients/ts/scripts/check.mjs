// Fails when a committed artefact is not what a fresh run makes from its
// source: src/schema.d.ts from ../../docs/openapi.yaml (openapi-typescript),
// and ../../web/podium-client.js from src/ (scripts/build.mjs); then
// type-checks src/ and test/ (tsc). Run by scripts/test.sh; fix with
// `npm run generate && npm run build`.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const pkg = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const bin = (name) => join(pkg, 'node_modules/.bin', name);
const tmp = mkdtempSync(join(tmpdir(), 'podium-client-check-'));
let stale = 0;
function same(committed, fresh, fix) {
  if (readFileSync(committed, 'utf8') !== readFileSync(fresh, 'utf8')) {
    console.error(`STALE: ${committed} differs from a fresh build (${fix})`);
    stale++;
  } else console.log(`current: ${committed}`);
}
try {
  execFileSync(bin('openapi-typescript'), ['../../docs/openapi.yaml', '-o', join(tmp, 'schema.d.ts')], { cwd: pkg, stdio: 'pipe' });
  same(join(pkg, 'src/schema.d.ts'), join(tmp, 'schema.d.ts'), 'npm run generate');
  execFileSync(process.execPath, [join(pkg, 'scripts/build.mjs'), '--out', join(tmp, 'bundle.js')], { cwd: pkg, stdio: 'inherit' });
  same(resolve(pkg, '../../web/podium-client.js'), join(tmp, 'bundle.js'), 'npm run build');
  execFileSync(bin('tsc'), ['--noEmit', '-p', '.'], { cwd: pkg, stdio: 'inherit' });
  console.log('types check');
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
if (stale) process.exit(1);
