#!/usr/bin/env node
// Soak (issue 12 item 11): the built worker under `wrangler dev` on loopback,
// at a steady event rate with readers polling and live viewers watching, for
// a bounded time; then it waits until every acknowledged event is visible and
// reports what was sent, acknowledged and visible, errors by status, live
// messages, and workerd's memory (RSS of the workerd processes, anonymous
// and file-backed, and Podium's JS heap through the inspector) from start to
// end. Then, as the baseline in the same run, it drives a control worker
// with none of Podium's code (scripts/memctl) at the same request pattern for
// the same time and prints both growths: under `wrangler dev` workerd's
// anonymous memory grows with every request even for a worker that answers
// 202 at once. It stops by itself.
//
//   make soak                                   # 10 minutes, 2,000 events/s, 100 viewers (+10 min control)
//   SOAK_SECONDS=120 SOAK_RATE=1000 node scripts/soak.mjs
//   SOAK_TICK_MS (100: one POST per tick), SOAK_SAMPLE_S (30), SOAK_CONTROL=0 skips the control
//
// Exit status 1 when an acknowledged event is missing or counted twice.
import WebSocket from 'ws';
import { startWorker, inspectorSessions, post, get, waitFor, uniqueName } from '../tests/harness.mjs';
import { runControl, workerdMemory } from './memctl/run.mjs';

const SECONDS = Number(process.env.SOAK_SECONDS ?? 600);
const RATE = Number(process.env.SOAK_RATE ?? 2000);
const VIEWERS = Number(process.env.SOAK_VIEWERS ?? 100);
const READERS = Number(process.env.SOAK_READERS ?? 4);
const MEMBERS = Number(process.env.SOAK_MEMBERS ?? 10_000);
const TICK_MS = Number(process.env.SOAK_TICK_MS ?? 100);

const w = await startWorker();

// The JS heap and the array-buffer backing stores (wasm memory among them)
// of each isolate, through the inspector wrangler exposes: which part of
// workerd's memory a growth is in.
const inspectors = await inspectorSessions(w.inspectorPort).catch((e) => {
  console.log(`soak: no inspector (${e.message}); JS heap not reported`);
  return [];
});
async function heaps() {
  const out = { jsMb: 0, buffersMb: 0 };
  for (const i of inspectors) {
    const r = (await Promise.race([i.send('Runtime.getHeapUsage'), new Promise((res) => setTimeout(() => res({}), 2000))])).result;
    if (!r) continue;
    out.jsMb += r.usedSize / 2 ** 20;
    out.buffersMb += (r.backingStorageSize ?? 0) / 2 ** 20;
  }
  return { jsMb: Math.round(out.jsMb), buffersMb: Math.round(out.buffersMb) };
}
const board = uniqueName('soak');
const stats = { sent: 0, acked: 0, errors: {}, reads: 0, readErrors: 0, liveMessages: 0, viewersOpen: 0 };
const count = (status) => { stats.errors[status] = (stats.errors[status] ?? 0) + 1; };
const memory = [];
const sample = async (label) => {
  const m = workerdMemory(w.pgid);
  memory.push({ at: label, ...m, ...(await heaps()) });
  return m.mb;
};
const SAMPLE_S = Number(process.env.SOAK_SAMPLE_S ?? 30);

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
  const startMb = await sample('start');
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
  const sampler = setInterval(async () => {
    const mb = await sample(`${Math.round((Date.now() - (end - SECONDS * 1000)) / 1000)} s`);
    const m = memory.at(-1);
    console.log(`  ${m.at}: sent ${stats.sent}, acked ${stats.acked}, live messages ${stats.liveMessages}, ` +
      `workerd ${mb} MB (anonymous ${m.anonMb}, files ${m.fileMb}; JS heap ${m.jsMb}, array buffers ${m.buffersMb})`);
  }, SAMPLE_S * 1000);
  await Promise.all([producer, ...readers]);
  clearInterval(sampler);

  // Every acknowledged event must become visible, once.
  let visible = 0;
  await waitFor(async () => {
    visible = (await get(`${w.url}/v1/boards/${board}`)).json?.events ?? 0;
    return visible >= stats.acked;
  }, { timeout: 120_000, interval: 500, what: 'every acknowledged event visible' }).catch(() => {});
  visible = (await get(`${w.url}/v1/boards/${board}`)).json?.events ?? 0;
  const endMb = await sample('end');
  for (const i of inspectors) i.ws.close();
  for (const ws of sockets) ws.terminate();

  const ok = visible === stats.acked;
  console.log(`soak: sent ${stats.sent}, acknowledged ${stats.acked}, visible ${visible} (${ok ? 'exact' : 'MISMATCH'}); ` +
    `errors ${JSON.stringify(stats.errors)}; reads ${stats.reads} (${stats.readErrors} failed); ` +
    `live messages ${stats.liveMessages} to ${VIEWERS} viewers; workerd ${startMb} MB at start, ${endMb} MB at end`);
  process.exitCode = ok ? 0 : 1;
  await w.stop();

  // The baseline in the same run: the local runtime's own growth under the
  // same request pattern, with a control worker that has none of Podium's
  // code (scripts/memctl). Podium's share is the difference.
  let control = null;
  if (process.env.SOAK_CONTROL !== '0') {
    const perRequest = Math.max(1, Math.round((RATE * TICK_MS) / 1000));
    console.log(`control: the same ${SECONDS} s of ${1000 / TICK_MS} requests/s of ${perRequest} events and ${READERS * 4} reads/s, through scripts/memctl's plain worker`);
    control = await runControl({ seconds: SECONDS, perRequest, rps: 1000 / TICK_MS, reads: READERS * 4,
      onSample: (at, mb) => console.log(`  ${at} s: control workerd anonymous ${mb} MB`) });
    const podium = memory.at(-1).anonMb - memory[0].anonMb;
    const runtime = control.endMb - control.startMb;
    console.log(`memory: workerd anonymous RSS grew ${podium} MB under Podium and ${runtime} MB under the control worker ` +
      `(ratio ${(podium / Math.max(1, runtime)).toFixed(2)}); Podium's JS heap ${memory[0].jsMb} -> ${memory.at(-1).jsMb} MB`);
  }
  console.log(JSON.stringify({ tool: 'soak', seconds: SECONDS, rate: RATE, viewers: VIEWERS, ...stats, visible, exact: ok, memory, control }));
} finally {
  await w.stop();
}
