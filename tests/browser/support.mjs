// Support for the browser suite: a worker launcher that can restart on the SAME
// port and persist dir (the page reconnects to the origin it was loaded from),
// small HTTP helpers, deadline polling, and a Chromium launcher.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

import { ROOT, INGEST_KEY, ADMIN_KEY, freePort, ensureDevVars, snapshotProject, waitFor } from '../harness.mjs';

export { ROOT, INGEST_KEY, ADMIN_KEY, waitFor };
export const ARTIFACTS = join(ROOT, 'test-artifacts');
export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

/**
 * Starts the already-built worker under `wrangler dev` on a free port with a
 * temp persist dir. restart() stops it and starts it again on the same port
 * and the same persist dir.
 */
export async function startWorker({ startTimeoutMs = 90_000 } = {}) {
  ensureDevVars();
  const dir = mkdtempSync(join(tmpdir(), 'podium-browser-'));
  const inPlace = !!process.env.PODIUM_E2E_IN_PLACE;
  const appDir = inPlace ? ROOT : snapshotProject();
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  let child = null;
  let log = [];
  const logTail = () => log.join('').split('\n').slice(-40).join('\n');

  async function launch() {
    log = [];
    child = spawn(
      join(ROOT, 'node_modules/.bin/wrangler'),
      ['dev', '--ip', '127.0.0.1', '--port', String(port), '--persist-to', dir,
        '--show-interactive-dev-session=false', '--inspector-port', String(await freePort())],
      {
        cwd: appDir,
        detached: true,
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, CI: 'true', WRANGLER_SEND_METRICS: 'false', NO_COLOR: '1', FORCE_COLOR: '0' },
      },
    );
    const keep = (d) => { log.push(d.toString()); if (log.length > 400) log.splice(0, 200); };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    const c = child;
    await waitFor(async () => {
      if (c.exitCode !== null || c.signalCode !== null) throw new Error(`wrangler exited early:\n${logTail()}`);
      const r = await fetch(`${url}/v1/health`, { signal: AbortSignal.timeout(2000) });
      return r.status === 200;
    }, { timeout: startTimeoutMs, interval: 200, what: `worker health on ${url}` }).catch(async (e) => {
      await kill();
      throw new Error(`${e.message}\n${logTail()}`);
    });
  }

  async function kill() {
    const c = child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise((r) => c.once('exit', r));
    try { process.kill(-c.pid, 'SIGTERM'); } catch { /* gone */ }
    const t = setTimeout(() => { try { process.kill(-c.pid, 'SIGKILL'); } catch { /* gone */ } }, 5000);
    await exited;
    clearTimeout(t);
    try { process.kill(-c.pid, 'SIGKILL'); } catch { /* gone */ }
  }

  await launch();
  return {
    url, port, persistDir: dir, log: logTail,
    /** Stops the worker, keeping its state. */
    kill,
    async start() { await launch(); },
    async restart() { await kill(); await launch(); },
    async stop() {
      await kill();
      rmSync(dir, { recursive: true, force: true });
      if (!inPlace) rmSync(appDir, { recursive: true, force: true });
    },
  };
}

async function call(url, { method = 'GET', key, body } = {}) {
  const headers = {};
  if (key) headers.Authorization = `Bearer ${key}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const r = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  let json;
  try { json = text ? JSON.parse(text) : undefined; } catch { json = undefined; }
  return { status: r.status, json, text };
}

export const api = {
  get: (base, path) => call(base + path),
  putBoard: (base, name, settings) => call(`${base}/v1/boards/${name}`, { method: 'PUT', key: ADMIN_KEY, body: settings }),
  events: (base, events) => call(`${base}/v1/events`, { method: 'POST', key: INGEST_KEY, body: events }),
};

export async function expectStatus(res, status, what) {
  const ok = Array.isArray(status) ? status.includes(res.status) : res.status === status;
  if (!ok) throw new Error(`${what}: expected HTTP ${status}, got ${res.status} ${res.text}`);
  return res;
}

/** Launches Chromium (playwright gives each launch a fresh temporary profile). */
export async function launchBrowser() {
  mkdirSync(ARTIFACTS, { recursive: true });
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}
