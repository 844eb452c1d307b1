// Support for the browser suite: a worker launcher that can restart on the SAME
// port and persist dir (the page reconnects to the origin it was loaded from),
// small HTTP helpers, deadline polling, and a Chromium launcher.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

import { ROOT, INGEST_KEY, ADMIN_KEY, startWorker as startHarnessWorker, waitFor } from '../harness.mjs';

export { ROOT, INGEST_KEY, ADMIN_KEY, waitFor };
export const ARTIFACTS = join(ROOT, 'test-artifacts');
export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

/**
 * The harness's worker, restarting on the SAME port and persist dir: the page
 * reconnects to the origin it was loaded from.
 */
export function startWorker(opts = {}) {
  return startHarnessWorker({ samePort: true, startTimeoutMs: 90_000, ...opts });
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
  /** An admin call without a body (DELETE a member, PUT …/hidden). */
  admin: (base, method, path) => call(base + path, { method, key: ADMIN_KEY }),
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
