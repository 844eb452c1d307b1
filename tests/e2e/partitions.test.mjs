// Ingest partitions (issue 13): the deployment's events go over
// EVENT_QUEUES queues (2 in wrangler.toml), each board's to one of them by a
// hash of its name, so intake grows with the number of queues. Every event
// is applied once, also one routed to boards on two different queues.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startWorker, post, get, admin, waitFor, uniqueName, drain } from '../harness.mjs';

let w;
before(async () => { w = await startWorker(); });
after(async () => { await w?.stop(); });

test('events for 40 boards travel over both event queues and each is applied exactly once', async () => {
  const prefix = uniqueName('part');
  const boards = Array.from({ length: 40 }, (_, i) => `${prefix}-${i}`);
  // one type routed to two boards (with 40 boards, some pair lands on different queues)
  const type = uniqueName('both');
  assert.equal((await admin(`${w.url}/v1/routes/${type}`, 'PUT', { targets: [{ board: boards[0] }, { board: boards[1] }, { board: boards[2] }] })).status, 201);
  const events = [];
  for (const [i, b] of boards.entries()) {
    for (let k = 0; k < 5; k += 1) events.push({ type: 'hit', board: b, member: `m${k}`, value: i + 1 });
  }
  for (let k = 0; k < 10; k += 1) events.push({ type, member: 'shared', value: 1 });
  const r = await post(`${w.url}/v1/events`, events);
  assert.equal(r.status, 202, r.text);
  // both queues carried some of them (wrangler dev logs each consumer batch
  // by queue; looked at before the reads below push it out of the log's tail)
  await waitFor(() => /QUEUE podium-events-1 /.test(w.log()) && /QUEUE podium-events /.test(w.log()),
    { timeout: 5000, interval: 20, what: 'batches from podium-events and podium-events-1 in the log' });
  for (const [i, b] of boards.entries()) {
    const want = 5 * (i + 1) + (i < 3 ? 10 : 0);
    await waitFor(async () => {
      const t = (await get(`${w.url}/v1/boards/${b}/top?limit=10`)).json;
      return t && t.entries.reduce((a, e) => a + e.score, 0) === want;
    }, { timeout: 10000, what: `${b} sums to ${want}` });
  }
  // exactly once: a sentinel behind them on each of those boards' queues comes through first
  for (const b of boards.slice(0, 3)) await drain(w.url, b);
  for (const b of boards.slice(0, 3)) {
    const st = (await get(`${w.url}/v1/boards/${b}/members/shared`)).json;
    assert.equal(st.score, 10, `${b}: the shared event counted once`);
  }
});
