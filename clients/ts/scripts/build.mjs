// Builds the client into one ESM file (openapi-fetch bundled in) with the
// pinned esbuild: dist/index.js for npm users and ../../web/podium-client.js
// for the page, which loads it as is (no build step at page load; its CSP is
// script-src 'self'). `--out FILE` writes only FILE (the freshness check).
import { build } from 'esbuild';
import { copyFileSync, mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const pkg = resolve(here, '..');
const outArg = process.argv.indexOf('--out');

export async function bundle(outfile) {
  mkdirSync(dirname(outfile), { recursive: true });
  await build({
    entryPoints: [resolve(pkg, 'src/index.ts')],
    outfile,
    bundle: true,
    format: 'esm',
    platform: 'neutral',
    target: 'es2022',
    minify: true,
    legalComments: 'inline',
    logLevel: 'warning',
  });
}

if (outArg > 0) {
  await bundle(resolve(process.argv[outArg + 1]));
} else {
  const dist = resolve(pkg, 'dist/index.js');
  await bundle(dist);
  copyFileSync(dist, resolve(pkg, '../../web/podium-client.js'));
  console.log('built dist/index.js and web/podium-client.js');
}
