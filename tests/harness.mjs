// Test harness for Podium's end-to-end suites: starts the already-built worker
// under `wrangler dev` on a free port with its own persisted state, and offers
// small HTTP/polling helpers. No fixed sleeps: everything polls with a deadline.
import { spawn } from 'node:child_process';
import { existsSync, copyFileSync, mkdtempSync, rmSync, createWriteStream, cpSync, appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes, randomInt } from 'node:crypto';
import { before, after } from 'node:test';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
export const INGEST_KEY = 'dev-ingest-key';
export const ADMIN_KEY = 'dev-admin-key';

/**
 * Runs `startOnce` (which picks fresh ports each time) up to 3 times: a
 * server that fails to start, as when its port was taken, gets another try.
 */
export async function startRetried(what, startOnce, attempts = 3) {
  for (let i = 1; ; i++) {
    try {
      return await startOnce();
    } catch (e) {
      if (i >= attempts) throw e;
      console.error(`# ${what} start ${i}/${attempts} failed, retrying:\n${e.message}`);
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

/** Whether nothing listens on 127.0.0.1:`port` (a listen there succeeds). */
function canListen(port) {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/** The kernel's ephemeral range, [low, high]: the ports it hands to bind(0) and to outgoing connections. */
function ephemeralRange() {
  try {
    const [low, high] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (low > 0 && high >= low) return [low, high];
  } catch { /* not Linux */ }
  return [32768, 60999];
}

/**
 * A loopback port nothing listens on, for a server a test starts next.
 *
 * Chosen below the kernel's ephemeral range. A port from bind(0) is free only
 * until the kernel hands the same number to another bind(0) or an outgoing
 * connection, and the e2e files run 4 at a time, each starting workerd (which
 * binds its own port-0 sockets). A server that takes seconds to bind (RabbitMQ
 * boots for ~5 s) leaves that window open. In stop 24's CI every AMQP
 * connection of the bridge test got EOF right after connecting, for the whole
 * file, while the port-open check had passed: the likeliest reading is that
 * another server held the port and RabbitMQ could not bind it. Below the range
 * only another explicit chooser can collide, and the starters now check that
 * their own server answers (startRabbit: an AMQP handshake).
 */
export async function freePort() {
  const FROM = 10_000;
  const [low] = ephemeralRange();
  if (low - FROM >= 1000) {
    for (let i = 0; i < 50; i++) {
      const port = FROM + randomInt(low - FROM);
      if (await canListen(port)) return port;
    }
  }
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/**
 * One inspector session per target the running worker's inspector port
 * lists (`handle.inspectorPort`): `{ t, ws, send(method, params) }`, where
 * `send` resolves to the reply. Used by scripts/profile.mjs and soak.mjs.
 */
export async function inspectorSessions(port) {
  const { default: WebSocket } = await import('ws');
  const sessions = [];
  for (const t of await (await fetch(`http://127.0.0.1:${port}/json`)).json()) {
    const ws = new WebSocket(t.webSocketDebuggerUrl);
    await new Promise((r, j) => { ws.once('open', r); ws.once('error', j); });
    let id = 0;
    const pending = new Map();
    ws.on('message', (m) => { const d = JSON.parse(m); pending.get(d.id)?.(d); pending.delete(d.id); });
    const send = (method, params = {}) => new Promise((r) => { id += 1; pending.set(id, r); ws.send(JSON.stringify({ id, method, params })); });
    sessions.push({ t, ws, send });
  }
  return sessions;
}

export function ensureDevVars() {
  const vars = join(ROOT, '.dev.vars');
  if (!existsSync(vars)) copyFileSync(join(ROOT, '.dev.vars.example'), vars);
}

async function waitHealthy(url, child, deadlineMs, logTail) {
  const deadline = Date.now() + deadlineMs;
  let last = 'no attempt';
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`wrangler dev exited early (${child.exitCode ?? child.signalCode}):\n${logTail()}`);
    }
    try {
      const r = await fetch(`${url}/v1/health`, { signal: AbortSignal.timeout(2000) });
      if (r.status === 200) return;
      last = `status ${r.status}`;
    } catch (e) {
      last = String(e.cause?.code ?? e.message);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`worker not healthy after ${deadlineMs} ms (last: ${last}):\n${logTail()}`);
}

/**
 * A private copy of what `wrangler dev` serves (build/, web/, wrangler.toml,
 * .dev.vars), so that a concurrent rebuild of build/ or an edit of web/ cannot
 * make wrangler hot-reload mid-test (a reload drops in-flight queue messages).
 * Set PODIUM_E2E_IN_PLACE=1 to run straight from the repo instead.
 */
export function snapshotProject(vars = {}, toml = (t) => t) {
  const dir = mkdtempSync(join(tmpdir(), 'podium-app-'));
  for (const f of ['wrangler.toml', '.dev.vars']) copyFileSync(join(ROOT, f), join(dir, f));
  writeFileSync(join(dir, 'wrangler.toml'), toml(readFileSync(join(dir, 'wrangler.toml'), 'utf8')));
  for (const d of ['build', 'web']) cpSync(join(ROOT, d), join(dir, d), { recursive: true });
  const extra = Object.entries(vars).map(([k, v]) => `${k}="${v}"\n`).join('');
  if (extra) appendFileSync(join(dir, '.dev.vars'), `\n${extra}`);
  return dir;
}

/**
 * Starts `wrangler dev` with the built worker. Returns {url, port, stop, restart, persistDir}.
 * State persists in `persistDir` (a fresh temp dir by default, removed on stop()).
 * `vars` are added to the private copy's .dev.vars (e.g. PODIUM_TEST_FAULTS);
 * `toml` rewrites its wrangler.toml (e.g. a lower rate limit).
 */
export async function startWorker({ persistDir, startTimeoutMs = 60_000, samePort = false, vars = {}, toml } = {}) {
  ensureDevVars();
  const ownDir = !persistDir;
  const dir = persistDir ?? mkdtempSync(join(tmpdir(), 'podium-e2e-'));
  const inPlace = !!process.env.PODIUM_E2E_IN_PLACE;
  // The 1-second edge cache of ranking reads (API 1.1) is off unless a test
  // asks for it (tests/e2e/cache.test.mjs): most tests read right after a
  // change and would otherwise see the second-old answer.
  // Rank checkpoints (prev_rank) come once in ~30 years unless a test sets
  // CHECKPOINT_EVERY_MS (movement.test.mjs): an hourly one would add
  // prev_rank to entries that other tests compare whole, once an hour.
  const appDir = inPlace ? ROOT : snapshotProject({ READ_CACHE: 'off', CHECKPOINT_EVERY_MS: '1000000000000', ...vars }, toml);
  let child = null;
  let port = 0;
  let log = [];
  const logTail = () => log.join('').split('\n').slice(-40).join('\n');

  // A free port found by freePort() can be taken by someone else before wrangler
  // binds it (and wrangler's own start-up can fail the same way on a loaded
  // machine), so a failed start is retried on fresh ports before giving up.
  const launch = () => startRetried('wrangler dev', launchOnce);

  async function launchOnce() {
    // samePort: a page loaded from the worker reconnects to the origin it came from
    // (a retry then waits for that port rather than moving).
    if (!port || !samePort) port = await freePort();
    log = [];
    child = spawn(
      join(ROOT, 'node_modules/.bin/wrangler'),
      ['dev', '--ip', '127.0.0.1', '--port', String(port), '--persist-to', dir,
        '--show-interactive-dev-session=false', '--inspector-port', String(handle.inspectorPort = await freePort())],
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
    if (process.env.PODIUM_E2E_LOG) {
      const f = createWriteStream(process.env.PODIUM_E2E_LOG, { flags: 'a' });
      child.stdout.pipe(f); child.stderr.pipe(f);
    }
    const url = `http://127.0.0.1:${port}`;
    handle.url = url;
    handle.port = port;
    try {
      await waitHealthy(url, child, startTimeoutMs, logTail);
    } catch (e) {
      await kill();
      throw e;
    }
  }

  async function kill() {
    const c = child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise((r) => c.once('exit', r));
    try { process.kill(-c.pid, 'SIGTERM'); } catch { /* already gone */ }
    const t = setTimeout(() => { try { process.kill(-c.pid, 'SIGKILL'); } catch { /* gone */ } }, 5000);
    await exited;
    clearTimeout(t);
    // workerd children may linger in the group briefly; make sure they are gone.
    try { process.kill(-c.pid, 'SIGKILL'); } catch { /* gone */ }
  }

  const handle = {
    url: '', port: 0, inspectorPort: 0, persistDir: dir,
    /** The process group of the running `wrangler dev` (workerd runs in it). */
    get pgid() { return child?.pid; },
    log: logTail,
    /** Stops the worker, keeping its state; `start()` brings it back. */
    kill,
    /** SIGKILLs the whole process group at once (no clean shutdown); `start()` brings it back. */
    async crash() {
      const c = child;
      if (!c || c.exitCode !== null || c.signalCode !== null) return;
      const exited = new Promise((r) => c.once('exit', r));
      try { process.kill(-c.pid, 'SIGKILL'); } catch { /* gone */ }
      await exited;
    },
    async start() {
      await launch();
    },
    async stop() {
      await kill();
      if (ownDir) rmSync(dir, { recursive: true, force: true });
      if (!inPlace) rmSync(appDir, { recursive: true, force: true });
    },
    async restart() {
      await kill();
      await launch();
    },
  };
  await launch();
  return handle;
}

/** POSTs a body (objects/arrays are JSON-encoded; strings/Buffers sent as is). */
export async function post(url, body, { key = INGEST_KEY, contentType = 'application/json', method = 'POST', headers = {} } = {}) {
  const h = { ...headers };
  if (contentType) h['Content-Type'] = contentType;
  if (key) h.Authorization = `Bearer ${key}`;
  const data = typeof body === 'string' || body instanceof Uint8Array ? body : body === undefined ? undefined : JSON.stringify(body);
  const r = await fetch(url, { method, headers: h, body: data });
  return toResult(r);
}

async function toResult(r) {
  const text = await r.text();
  let json;
  try { json = text ? JSON.parse(text) : undefined; } catch { json = undefined; }
  return { status: r.status, headers: r.headers, text, json };
}

/** GET (or any method) returning {status, headers, text, json}. */
export async function get(url, { method = 'GET', key, headers = {} } = {}) {
  const h = { ...headers };
  if (key) h.Authorization = `Bearer ${key}`;
  return toResult(await fetch(url, { method, headers: h }));
}

/** Admin-authenticated JSON request (PUT/DELETE/GET). */
export async function admin(url, method, body) {
  return post(url, body, { key: ADMIN_KEY, method, contentType: body === undefined ? undefined : 'application/json' });
}

/**
 * Polls fn until it returns a truthy value (returned), or throws after `timeout`
 * ms with the last value seen. fn may be async; exceptions count as falsy.
 */
export async function waitFor(fn, { timeout = 5000, interval = 100, what = 'condition' } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  let lastErr;
  for (;;) {
    try {
      last = await fn();
      lastErr = undefined;
      if (last) return last;
    } catch (e) {
      lastErr = e;
    }
    if (Date.now() >= deadline) break;
    await new Promise((r) => setTimeout(r, interval));
  }
  const shown = lastErr ? `error: ${lastErr.message}` : `last value: ${JSON.stringify(last)}`;
  throw new Error(`timed out after ${timeout} ms waiting for ${what}; ${shown}`);
}

let counter = 0;
/** A unique, valid board (or event type) name. */
export function uniqueName(prefix = 'b') {
  counter += 1;
  return `${prefix}-${process.pid.toString(36)}-${counter}-${randomBytes(3).toString('hex')}`.toLowerCase().slice(0, 64);
}

/** Ranking fetch: returns the top JSON (or null on non-200). */
export async function top(url, board, qs = '') {
  const r = await get(`${url}/v1/boards/${board}/top${qs ? `?${qs}` : ''}`);
  return r.status === 200 ? r.json : null;
}

/** Sends a sentinel event to `board` and waits until it is visible: every event accepted before it is then applied. */
export async function drain(url, board = 'sentinel-drain', timeout = 5000) {
  const member = `s-${randomBytes(4).toString('hex')}`;
  const r = await post(`${url}/v1/events`, { type: 'sentinel', member, board });
  if (r.status !== 202) throw new Error(`sentinel rejected: ${r.status} ${r.text}`);
  await waitFor(async () => (await get(`${url}/v1/boards/${board}/members/${member}`)).status === 200, { timeout, what: 'sentinel' });
}

/**
 * One worker for a whole test file with test faults on, started before its
 * tests and stopped after them: `fx.w` is the handle, `fx.EV` the ingest
 * URL, and sockets added to `fx.sockets` are closed at the end.
 */
export function faultyWorker(vars = {}) {
  const fx = { w: null, EV: '', sockets: new Set() };
  before(async () => {
    fx.w = await startWorker({ vars: { PODIUM_TEST_FAULTS: '1', ...vars } });
    fx.EV = `${fx.w.url}/v1/events`;
  });
  after(async () => {
    for (const s of fx.sockets) s.terminate();
    await fx.w?.stop();
  });
  return fx;
}
