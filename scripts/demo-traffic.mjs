#!/usr/bin/env node
// Steady random demo traffic for a running Podium (default: the local `make dev`).
//
//   node scripts/demo-traffic.mjs [--url http://127.0.0.1:8787] [--rate 5] [--duration 0]
//
// Sends a trickle of realistic events — likes, orders with values, comments and
// arcade game scores — for ~20 named members, and prints one line per second.
// like/order/comment go through the server's routes when it has them (make dev
// seeds them), otherwise straight to the likes/sales/comments boards; game
// scores go to the `arcade` board. Ctrl-C stops; --duration N stops after N s.
// It only ever talks to --url. Keys: PODIUM_INGEST_KEY (else the first of
// INGEST_KEYS in .dev.vars); PODIUM_ADMIN_KEY / ADMIN_KEY is used once, only
// to create the `arcade` board as a best-score board if it does not exist.
import { readFileSync, existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
// The TypeScript client (clients/ts) as the page loads it: the committed ESM
// bundle, so this script needs no build step either.
import { Podium, PodiumError } from '../web/podium-client.js';

const HELP = `usage: node scripts/demo-traffic.mjs [--url URL] [--rate N] [--duration S]
  --url       Podium origin (default http://127.0.0.1:8787)
  --rate      events per second, may be fractional (default 5)
  --duration  seconds to run; 0 = until Ctrl-C (default 0)`;

let opts;
try {
  ({ values: opts } = parseArgs({
    options: {
      url: { type: 'string', default: 'http://127.0.0.1:8787' },
      rate: { type: 'string', default: '5' },
      duration: { type: 'string', default: '0' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  }));
} catch (e) {
  console.error(`${e.message}\n${HELP}`);
  process.exit(2);
}
if (opts.help) { console.log(HELP); process.exit(0); }

const base = opts.url.replace(/\/+$/, '');
const rate = Number(opts.rate);
const duration = Number(opts.duration);
try {
  const u = new URL(base);
  if (!/^https?:$/.test(u.protocol)) throw new Error('not http(s)');
} catch {
  console.error(`--url must be an http(s) origin, got ${JSON.stringify(opts.url)}`);
  process.exit(2);
}
if (!(rate > 0 && rate <= 1000)) { console.error('--rate must be > 0 and ≤ 1000'); process.exit(2); }
if (!(duration >= 0)) { console.error('--duration must be ≥ 0'); process.exit(2); }

function devVars() {
  const file = new URL('../.dev.vars', import.meta.url);
  const fallback = new URL('../.dev.vars.example', import.meta.url);
  const path = existsSync(file) ? file : existsSync(fallback) ? fallback : null;
  if (!path) return {};
  return Object.fromEntries(readFileSync(path, 'utf8').split('\n')
    .map((l) => /^\s*([A-Z0-9_]+)\s*=\s*(.*?)\s*$/.exec(l)).filter(Boolean)
    .map(([, k, v]) => [k, v.replace(/^"(.*)"$/, '$1')]));
}
const vars = devVars();
const ingestKey = process.env.PODIUM_INGEST_KEY || (vars.INGEST_KEYS || '').split(',')[0].trim();
const adminKey = process.env.PODIUM_ADMIN_KEY || vars.ADMIN_KEY || '';
if (!ingestKey) {
  console.error('no ingest key: set PODIUM_INGEST_KEY or create .dev.vars (cp .dev.vars.example .dev.vars)');
  process.exit(2);
}

// ~20 members; weights make a few of them popular so the top has a shape.
const MEMBERS = [
  ['alice', 'Alice'], ['bob', 'Bob'], ['carol', 'Carol'], ['dave', 'Dave'], ['erin', 'Erin'],
  ['frank', 'Frank'], ['grace', 'Grace'], ['heidi', 'Heidi'], ['ivan', 'Ivan'], ['judy', 'Judy'],
  ['mallory', 'Mallory'], ['niaj', 'Niaj'], ['olivia', 'Olivia'], ['peggy', 'Peggy'], ['rupert', 'Rupert'],
  ['sybil', 'Sybil'], ['trent', 'Trent'], ['victor', 'Victor'], ['walter', 'Walter'], ['zoe', 'Zoë'],
].map(([id, name], i) => ({ id, name, weight: 1 / (1 + i * 0.35) }));
const totalWeight = MEMBERS.reduce((s, m) => s + m.weight, 0);

// Popularity drifts slowly so the ranking keeps moving.
function drift() {
  const m = MEMBERS[Math.floor(Math.random() * MEMBERS.length)];
  m.weight = Math.min(3, Math.max(0.1, m.weight * (0.7 + Math.random() * 0.6)));
}
function pickMember() {
  const sum = MEMBERS.reduce((s, m) => s + m.weight, 0) || totalWeight;
  let r = Math.random() * sum;
  for (const m of MEMBERS) { r -= m.weight; if (r <= 0) return m; }
  return MEMBERS[MEMBERS.length - 1];
}
const pickKind = (() => {
  const kinds = [['like', 55], ['comment', 20], ['order', 15], ['score', 10]];
  const sum = kinds.reduce((s, [, w]) => s + w, 0);
  return () => { let r = Math.random() * sum; for (const [k, w] of kinds) { r -= w; if (r <= 0) return k; } return 'like'; };
})();

const FALLBACK_BOARD = { like: 'likes', order: 'sales', comment: 'comments' };
let routed = new Set();

function makeEvent() {
  const kind = pickKind();
  const m = pickMember();
  const meta = { name: m.name };
  if (kind === 'score') {
    // Arcade: a game score, mostly mid-range with the occasional great run.
    const value = Math.round(1000 + Math.random() ** 3 * 99_000);
    return { kind, ev: { type: 'score', member: m.id, value, board: 'arcade', meta } };
  }
  const ev = { type: kind, member: m.id, meta };
  if (kind === 'order') ev.value = Math.round((5 + Math.random() ** 2 * 245) * 100) / 100; // 5.00–250.00
  if (!routed.has(kind)) ev.board = FALLBACK_BOARD[kind];
  return { kind, ev };
}

// Ingest retries a 429/503 itself (waiting Retry-After; every event has an id,
// so a retry counts nothing twice); what still fails is counted below. Each
// try is bounded at 10 s.
const podium = new Podium({
  baseUrl: base,
  ingestKey,
  adminKey: adminKey || undefined,
  retries: 2,
  fetch: (req) => fetch(req, { signal: AbortSignal.timeout(10_000) }),
});

async function setup() {
  await podium.health();
  const { routes } = await podium.listRoutes().catch(() => ({ routes: {} }));
  routed = new Set(Object.keys(routes).filter((t) => routes[t]?.length));
  const arcade = await podium.getBoard('arcade').catch((e) => (e instanceof PodiumError && e.status === 404 ? null : undefined));
  if (arcade === null && adminKey) {
    await podium.putBoard('arcade', { title: 'Arcade high scores', op: 'best', windows: ['all', 'day', 'week'] })
      .catch((e) => console.warn(`note: could not create the arcade board (${e.status ?? e.message}); it will get defaults`));
  }
  const via = ['like', 'order', 'comment'].map((k) => `${k}→${routed.has(k) ? 'routes' : FALLBACK_BOARD[k]}`).join(', ');
  console.log(`demo traffic → ${base} at ${rate}/s${duration ? ` for ${duration}s` : ' (Ctrl-C stops)'}; ${via}, score→arcade`);
}

const stats = { sent: 0, failed: 0, batches: 0 };
let second = { sent: 0, failed: 0, kinds: {} };
let pausedUntil = 0;
let lastError = '';
let stopping = false;

async function sendBatch(items) {
  if (!items.length) return;
  try {
    await podium.ingest(items.map((i) => i.ev));
    stats.sent += items.length;
    second.sent += items.length;
    for (const { kind } of items) second.kinds[kind] = (second.kinds[kind] || 0) + 1;
  } catch (e) {
    stats.failed += items.length;
    second.failed += items.length;
    if (e instanceof PodiumError) {
      lastError = `${e.status} ${e.code}`;
      if (e.status === 429) pausedUntil = Date.now() + Math.max(1, e.retryAfter || 0) * 1000;
      if (e.status === 401) { console.error('401: the ingest key was refused; check PODIUM_INGEST_KEY / .dev.vars'); stop(1); }
    } else {
      lastError = e.cause?.code || e.name || 'network error';
    }
  }
}

const TICK_MS = 250;
let owed = 0;
const started = Date.now();
let tickTimer;
let printTimer;
const inflight = new Set();

function tick() {
  if (stopping) return;
  if (Math.random() < 0.05) drift();
  owed += (rate * TICK_MS) / 1000;
  if (Date.now() < pausedUntil) return;
  const n = Math.floor(owed);
  owed -= n;
  if (n <= 0) return;
  const items = [];
  for (let i = 0; i < n; i++) items.push(makeEvent());
  // Batches of at most 1000 (the API limit).
  for (let i = 0; i < items.length; i += 1000) {
    const p = sendBatch(items.slice(i, i + 1000)).finally(() => inflight.delete(p));
    inflight.add(p);
  }
}

function printSecond() {
  const t = new Date().toISOString().slice(11, 19);
  const kinds = Object.entries(second.kinds).map(([k, v]) => `${k} ${v}`).join(', ') || '—';
  const fail = second.failed ? `  failed ${second.failed} (${lastError})` : '';
  const pause = Date.now() < pausedUntil ? '  [backing off: 429]' : '';
  console.log(`${t}  sent ${String(second.sent).padStart(3)}  (${kinds})  total ${stats.sent}${fail}${pause}`);
  second = { sent: 0, failed: 0, kinds: {} };
  if (duration && Date.now() - started >= duration * 1000) stop(0);
}

async function stop(code) {
  if (stopping) return;
  stopping = true;
  clearInterval(tickTimer);
  clearInterval(printTimer);
  await Promise.allSettled([...inflight]);
  console.log(`stopped: ${stats.sent} events accepted, ${stats.failed} failed, ${((Date.now() - started) / 1000).toFixed(1)} s`);
  process.exit(code);
}
process.on('SIGINT', () => stop(0));
process.on('SIGTERM', () => stop(0));

try {
  await setup();
} catch (e) {
  console.error(`cannot reach Podium at ${base}: ${e.cause?.code || e.message}`);
  process.exit(1);
}
tickTimer = setInterval(tick, TICK_MS);
printTimer = setInterval(printSecond, 1000);
