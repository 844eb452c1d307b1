// Crash safety (issue 12 item 5): events are streamed with a client-side
// ledger of unique ids while workerd is SIGKILLed (no clean stop) at several
// points, during sending and during applying, and restarted on the same
// state each time. Then the whole ledger is sent again with the same ids
// (the local Queue keeps messages in memory, so what it held is gone; the
// intake also re-sends what was never confirmed). Every member's score must
// equal the ledger exactly: nothing lost, nothing counted twice.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startWorker, post, get, waitFor, uniqueName, drain } from '../harness.mjs';

let w;
before(async () => { w = await startWorker(); });
after(async () => { await w?.stop(); });

test('SIGKILLs of workerd while sending and applying lose nothing and count nothing twice once the ledger is resent', async () => {
  const b = uniqueName('crash');
  const BATCHES = 30;
  const PER = 200;
  const ledger = [];
  for (let i = 0; i < BATCHES; i++) {
    ledger.push(Array.from({ length: PER }, (_, j) => ({ type: 'hit', board: b, member: `m${(i * PER + j) % 97}`, id: `${b}-${i}-${j}`, value: 1 + (j % 3) })));
  }
  const send = async (batch) => {
    try { return (await post(`${w.url}/v1/events`, batch)).status; } catch { return 'transport error'; }
  };
  const crashAt = new Set([4, 13, 22]);
  const statuses = [];
  let crashes = 0;
  for (let i = 0; i < BATCHES; i++) {
    if (crashAt.has(i)) {
      // Sending has just happened; the Queue and the boards are mid-flight.
      const inFlight = send(ledger[i]);
      await new Promise((r) => setTimeout(r, 30 * (crashes + 1)));
      await w.crash();
      statuses.push(await inFlight);
      crashes += 1;
      await w.start();
      continue;
    }
    statuses.push(await send(ledger[i]));
  }
  assert.equal(crashes, 3);
  // The whole ledger again, same ids: each batch must now be accepted.
  for (const batch of ledger) {
    const s = await send(batch);
    assert.equal(s, 202, `resend answered ${s}`);
  }
  const total = BATCHES * PER;
  await waitFor(async () => (await get(`${w.url}/v1/boards/${b}`)).json?.events >= total,
    { timeout: 60_000, interval: 250, what: `${total} events applied` });
  await drain(w.url, uniqueName('sentinel'), 20_000);
  const want = new Map();
  for (const e of ledger.flat()) want.set(e.member, (want.get(e.member) ?? 0) + e.value);
  const top = (await get(`${w.url}/v1/boards/${b}/top?limit=1000`)).json;
  const got = new Map(top.entries.map((e) => [e.member, e.score]));
  assert.deepEqual(got, want, 'every member equals the ledger');
  assert.equal((await get(`${w.url}/v1/boards/${b}`)).json.events, total, 'each event applied once');
  console.log(`# statuses while crashing: ${JSON.stringify(statuses.filter((s) => s !== 202))}`);
});
