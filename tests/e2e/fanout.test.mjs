// Live fan-out past one object (issue 13): a board window's viewers are
// spread over hubs of at most LIVE_HUB_CAP sockets (50 here; a few thousand
// in production), the root relays every push to the hubs that have viewers,
// and a hub whose viewers left is relayed nothing more.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { startWorker, post, admin, waitFor, uniqueName } from '../harness.mjs';

const CAP = 50;
let w;
const sockets = new Set();
before(async () => { w = await startWorker({ vars: { LIVE_HUB_CAP: String(CAP) } }); });
after(async () => {
  for (const s of sockets) s.terminate();
  await w?.stop();
});

/** A viewer: resolves once open, with the hub that holds it and its messages. */
function viewer(board) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${w.url.replace('http', 'ws')}/v1/boards/${board}/live?limit=5`);
    sockets.add(ws);
    const v = { ws, hub: null, messages: [] };
    ws.on('upgrade', (res) => { v.hub = Number(res.headers['x-podium-hub']); });
    ws.on('message', (raw) => {
      const text = raw.toString();
      if (text !== 'pong') v.messages.push({ at: Date.now(), data: JSON.parse(text) });
    });
    ws.once('open', () => resolve(v));
    ws.once('unexpected-response', (_req, res) => reject(new Error(`refused: ${res.statusCode}`)));
    ws.once('error', reject);
  });
}

test('300 viewers over 6 hubs all get the snapshot and every update within 2 s; a ping wakes nothing and gets pong', async () => {
  const b = uniqueName('fan');
  assert.equal((await admin(`${w.url}/v1/boards/${b}`, 'PUT', {})).status, 201);
  assert.equal((await post(`${w.url}/v1/events`, [{ type: 'x', board: b, member: 'first', value: 1 }])).status, 202);
  await waitFor(async () => (await (await fetch(`${w.url}/v1/boards/${b}/top`)).json()).total === 1, { what: 'first applied' });
  const viewers = [];
  for (let i = 0; i < 300; i += 25) {
    viewers.push(...await Promise.all(Array.from({ length: 25 }, () => viewer(b))));
  }
  const perHub = {};
  for (const v of viewers) perHub[v.hub] = (perHub[v.hub] ?? 0) + 1;
  assert.ok(Object.keys(perHub).length >= 6, `hubs: ${JSON.stringify(perHub)}`);
  assert.ok(Object.values(perHub).every((n) => n <= CAP), `at most ${CAP} a hub: ${JSON.stringify(perHub)}`);
  await waitFor(() => viewers.every((v) => v.messages.some((m) => m.data.type === 'snapshot')), { timeout: 5000, what: 'every snapshot' });

  for (const [round, member] of [[1, 'alice'], [2, 'bob']]) {
    const sent = Date.now();
    const r = await post(`${w.url}/v1/events`, [{ type: 'x', board: b, member, value: 100 * round }]);
    assert.equal(r.status, 202, r.text);
    await waitFor(() => viewers.every((v) => v.messages.some((m) => m.data.type === 'update' && m.data.entries[0]?.member === member)),
      { timeout: 5000, interval: 20, what: `${member} on every viewer` });
    const late = viewers.map((v) => v.messages.find((m) => m.data.type === 'update' && m.data.entries[0]?.member === member).at - sent);
    const worst = Math.max(...late);
    console.log(`update ${round}: 300 viewers over ${Object.keys(perHub).length} hubs, slowest got it ${worst} ms after the POST`);
    assert.ok(worst < 2000, `slowest viewer: ${worst} ms`);
  }
  // every viewer saw the same sequence of tops
  const seq = (v) => v.messages.map((m) => m.data.entries.map((e) => `${e.member}:${e.score}`).join());
  for (const v of viewers) assert.deepEqual(seq(v), seq(viewers[0]));

  const pong = new Promise((resolve) => viewers[299].ws.once('message', (raw) => resolve(raw.toString())));
  viewers[299].ws.send('ping');
  assert.equal(await pong, 'pong');
});

test('viewers leaving let their hubs go idle: the root counts them gone and fills the first hub again', async () => {
  const b = uniqueName('fan2');
  assert.equal((await admin(`${w.url}/v1/boards/${b}`, 'PUT', {})).status, 201);
  const viewers = [];
  for (let i = 0; i < 150; i += 25) viewers.push(...await Promise.all(Array.from({ length: 25 }, () => viewer(b))));
  assert.deepEqual([...new Set(viewers.map((v) => v.hub))].sort(), [0, 1, 2]);
  // everyone outside the root leaves
  const gone = viewers.filter((v) => v.hub !== 0);
  for (const v of gone) { v.ws.close(); sockets.delete(v.ws); }
  await waitFor(() => gone.every((v) => v.ws.readyState === WebSocket.CLOSED), { what: 'closed' });
  // the root heard it: the next viewer past its own cap goes to hub 1 again, not to a new hub 3
  await waitFor(async () => {
    const v = await viewer(b);
    const hub = v.hub;
    v.ws.close();
    sockets.delete(v.ws);
    return hub === 1;
  }, { timeout: 5000, what: 'a viewer placed in the emptied hub 1' });
  // and a change reaches the root's viewers with no hub left to relay to
  assert.equal((await post(`${w.url}/v1/events`, [{ type: 'x', board: b, member: 'solo', value: 1 }])).status, 202);
  const stay = viewers.filter((v) => v.hub === 0);
  await waitFor(() => stay.every((v) => v.messages.some((m) => m.data.entries.some((e) => e.member === 'solo'))), { what: 'root viewers updated' });
});
