#!/usr/bin/env node
// Soak (issue 12 item 11): the built worker under `wrangler dev` on loopback,
// at a steady event rate with readers polling and live viewers watching, for
// a bounded time; then it waits until every acknowledged event is visible and
// reports what was sent, acknowledged and visible, errors by status, live
// messages, and workerd's memory (RSS of the workerd processes) from start to
// end. It stops by itself.
//
//   make soak                                   # 10 minutes, 2,000 events/s, 100 viewers
//   SOAK_SECONDS=120 SOAK_RATE=1000 node scripts/soak.mjs
//
// Exit status 1 when an acknowledged event is missing or counted twice.
import { readFileSync, readdirSync } from 'node:fs';
import WebSocket from 'ws';
import { startWorker, post, get, waitFor, uniqueName } from '../tests/harness.mjs';

const SECONDS = Number(process.env.SOAK_SECONDS ?? 600);
const RATE = Number(process.env.SOAK_RATE ?? 2000);
const VIEWERS = Number(process.env.SOAK_VIEWERS ?? 100);
const READERS = Number(process.env.SOAK_READERS ?? 4);
const MEMBERS = Number(process.env.SOAK_MEMBERS ?? 10_000);
const TICK_MS = 100;

/**
 * RSS (MB) of the workerd processes in process group `pgid`; `anonMb` is the
 * part not backed by files (heaps), `fileMb` the mapped files (SQLite, code).
 */
const split = { anonMb: 0, fileMb: 0 };
function workerdRssMb(pgid) {
  let kb = 0;
  let anon = 0;
  let file = 0;
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[2]) !== pgid || !stat.includes('(workerd)')) continue;
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      const field = (name) => Number(new RegExp(`${name}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0);
      kb += field('VmRSS');
      anon += field('RssAnon');
      file += field('RssFile') + field('RssShmem');
    } catch { /* gone */ }
  }
  split.anonMb = Math.round(anon / 1024);
  split.fileMb = Math.round(file / 1024);
  return Math.round(kb / 1024);
}

const w = await startWorker();
const board = uniqueName('soak');
const stats = { sent: 0, acked: 0, errors: {}, reads: 0, readErrors: 0, liveMessages: 0, viewersOpen: 0 };
const count = (status) => { stats.errors[status] = (stats.errors[status] ?? 0) + 1; };
const memory = [];
const sample = (label) => {
  const mb = workerdRssMb(w.pgid);
  memory.push({ at: label, mb, ...split });
  return mb;
};

try {
  // The board exists before the viewers connect.
  const first = await post(`${w.url}/v1/events`, { type: 'soak', board, member: 'm0', id: `${board}-warm` });
  if (first.status !== 202) throw new Error(`warm-up event refused: ${first.status} ${first.text}`);
  stats.sent += 1; stats.acked += 1;
  await waitFor(async () => (await get(`${w.url}/v1/boards/${board}`)).json?.events === 1, { timeout: 10_000, what: 'warm-up' });

  const sockets = [];
  for (let i = 0; i < VIEWERS; i++) {
    const ws = new WebSocket(`${w.url.replace('http', 'ws')}/v1/boards/${board}/live?limit=10`);
    ws.on('open', () => { stats.viewersOpen += 1; });
    ws.on('message', () => { stats.liveMessages += 1; });
    ws.on('error', () => {});
    sockets.push(ws);
  }
  await waitFor(() => stats.viewersOpen === VIEWERS, { timeout: 30_000, what: `${VIEWERS} viewers` });
  const startMb = sample('start');
  console.log(`soak: ${SECONDS} s at ${RATE} events/s, ${VIEWERS} viewers, ${READERS} readers; workerd ${startMb} MB at start`);

  const end = Date.now() + SECONDS * 1000;
  let seq = 0;
  const perTick = Math.max(1, Math.round((RATE * TICK_MS) / 1000));
  const inflight = new Set();
  const producer = (async () => {
    let next = Date.now();
    while (Date.now() < end) {
      const events = Array.from({ length: perTick }, () => {
        seq += 1;
        return { type: 'soak', board, member: `m${(seq * 7919) % MEMBERS}`, id: `${board}-${seq}` };
      });
      stats.sent += events.length;
      const p = post(`${w.url}/v1/events`, events).then((r) => {
        if (r.status === 202) stats.acked += events.length; else count(r.status);
      }, () => count('transport'));
      inflight.add(p);
      p.finally(() => inflight.delete(p));
      next += TICK_MS;
      await new Promise((r) => setTimeout(r, Math.max(0, next - Date.now())));
    }
    await Promise.all(inflight);
  })();
  const readers = Array.from({ length: READERS }, async () => {
    while (Date.now() < end) {
      const r = await get(`${w.url}/v1/boards/${board}/top?limit=10`).catch(() => null);
      if (r?.status === 200) stats.reads += 1; else stats.readErrors += 1;
      await new Promise((res) => setTimeout(res, 250));
    }
  });
  const sampler = setInterval(() => {
    const mb = sample(`${Math.round((Date.now() - (end - SECONDS * 1000)) / 1000)} s`);
    console.log(`  ${memory.at(-1).at}: sent ${stats.sent}, acked ${stats.acked}, live messages ${stats.liveMessages}, ` +
      `workerd ${mb} MB (anonymous ${split.anonMb}, files ${split.fileMb})`);
  }, 30_000);
  await Promise.all([producer, ...readers]);
  clearInterval(sampler);

  // Every acknowledged event must become visible, once.
  let visible = 0;
  await waitFor(async () => {
    visible = (await get(`${w.url}/v1/boards/${board}`)).json?.events ?? 0;
    return visible >= stats.acked;
  }, { timeout: 120_000, interval: 500, what: 'every acknowledged event visible' }).catch(() => {});
  visible = (await get(`${w.url}/v1/boards/${board}`)).json?.events ?? 0;
  const endMb = sample('end');
  for (const ws of sockets) ws.terminate();

  const ok = visible === stats.acked;
  console.log(`soak: sent ${stats.sent}, acknowledged ${stats.acked}, visible ${visible} (${ok ? 'exact' : 'MISMATCH'}); ` +
    `errors ${JSON.stringify(stats.errors)}; reads ${stats.reads} (${stats.readErrors} failed); ` +
    `live messages ${stats.liveMessages} to ${VIEWERS} viewers; workerd ${startMb} MB at start, ${endMb} MB at end`);
  console.log(JSON.stringify({ tool: 'soak', seconds: SECONDS, rate: RATE, viewers: VIEWERS, ...stats, visible, exact: ok, memory }));
  process.exitCode = ok ? 0 : 1;
} finally {
  await w.stop();
}
