// The live WebSocket: snapshot on connect, coalesced updates, many viewers, errors before upgrade.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { startWorker, post, get, admin, waitFor, uniqueName } from '../harness.mjs';

let w;
let EV;
const sockets = new Set();
before(async () => { w = await startWorker(); EV = `${w.url}/v1/events`; });
after(async () => {
  for (const s of sockets) s.terminate();
  await w?.stop();
});

const strip = (entries) => entries.map(({ rank, member, score }) => ({ rank, member, score }));

/** Opens a live socket; resolves once open with {ws, messages, waitMessage}. */
function openLive(board, qs = 'limit=5') {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${w.url.replace('http', 'ws')}/v1/boards/${board}/live?${qs}`);
    sockets.add(ws);
    const messages = [];
    const live = {
      ws,
      messages,
      /** Waits for a message (from index `from` on) matching pred. */
      waitMessage: (pred, { timeout = 3000, from = 0 } = {}) =>
        waitFor(() => messages.slice(from).find((m) => pred(m.data)), { timeout, interval: 10, what: `live message on ${board}` }),
      close: () => { ws.terminate(); sockets.delete(ws); },
    };
    ws.on('message', (raw) => {
      let data;
      try { data = JSON.parse(raw.toString()); } catch { data = { unparsable: raw.toString() }; }
      messages.push({ at: Date.now(), data });
    });
    ws.once('open', () => resolve(live));
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => {
        const err = new Error(`HTTP ${res.statusCode}`);
        err.status = res.statusCode;
        err.body = body;
        reject(err);
      });
    });
    ws.once('error', reject);
  });
}

async function seed(board, events) {
  const r = await post(EV, events.map((e) => ({ type: 'score', board, ...e })));
  assert.equal(r.status, 202, r.text);
  await waitFor(async () => (await get(`${w.url}/v1/boards/${board}/top`)).json?.total === new Set(events.map((e) => e.member)).size,
    { timeout: 3000, what: `seed ${board}` });
}

test('connecting gets a snapshot of the top `limit` in the documented shape', async () => {
  const b = uniqueName('live');
  await seed(b, Array.from({ length: 7 }, (_, i) => ({ member: `p${i}`, value: (i + 1) * 10, ...(i === 6 ? { meta: { name: 'Top' } } : {}) })));
  const live = await openLive(b, 'limit=5');
  const { data } = await live.waitMessage(() => true, { timeout: 2000 });
  assert.equal(data.type, 'snapshot');
  assert.equal(data.board, b);
  assert.equal(data.window, 'all');
  assert.equal(data.period, 'all');
  assert.equal(data.total, 7);
  const top = (await get(`${w.url}/v1/boards/${b}/top?limit=5`)).json;
  assert.deepEqual(data.entries, top.entries);
  assert.deepEqual(strip(data.entries).map((e) => e.member), ['p6', 'p5', 'p4', 'p3', 'p2']);
  assert.deepEqual(data.entries[0].meta, { name: 'Top' });
  live.close();
});

test('a posted event produces an update with the new entries within 2 seconds', async () => {
  const b = uniqueName('live');
  await seed(b, [{ member: 'a', value: 5 }, { member: 'b', value: 3 }]);
  const live = await openLive(b, 'limit=5');
  await live.waitMessage((m) => m.type === 'snapshot');
  const from = live.messages.length;
  const t0 = Date.now();
  assert.equal((await post(EV, { type: 'score', board: b, member: 'c', value: 9 })).status, 202);
  const msg = await live.waitMessage((m) => m.type === 'update', { timeout: 2000, from });
  const latency = msg.at - t0;
  assert.ok(latency < 2000, `update after ${latency} ms`);
  assert.equal(msg.data.board, b);
  assert.equal(msg.data.window, 'all');
  assert.equal(msg.data.period, 'all');
  assert.equal(msg.data.total, 3);
  assert.deepEqual(strip(msg.data.entries), [
    { rank: 1, member: 'c', score: 9 }, { rank: 2, member: 'a', score: 5 }, { rank: 3, member: 'b', score: 3 },
  ]);
  live.close();
});

test('1000 events posted within about a second give at most a few updates, 500 ms apart, the last one right', async (t) => {
  const b = uniqueName('burst');
  await seed(b, [{ member: 'seed', value: 0.5 }]);
  const live = await openLive(b, 'limit=5');
  await live.waitMessage((m) => m.type === 'snapshot');
  const from = live.messages.length;
  // 50 members; member i gets 20 events of value i + 1 → final score 20 (i + 1).
  const events = [];
  for (let round = 0; round < 20; round++) {
    for (let i = 0; i < 50; i++) events.push({ type: 'score', board: b, member: `m${String(i).padStart(2, '0')}`, value: i + 1 });
  }
  const t0 = Date.now();
  for (let k = 0; k < 10; k++) {
    const r = await post(EV, events.slice(k * 100, (k + 1) * 100));
    assert.equal(r.status, 202, r.text);
    const next = t0 + (k + 1) * 100;
    if (Date.now() < next) await new Promise((res) => setTimeout(res, next - Date.now()));
  }
  const postedIn = Date.now() - t0;
  assert.ok(postedIn < 2500, `posting took ${postedIn} ms`);
  const want = [49, 48, 47, 46, 45].map((i, r) => ({ rank: r + 1, member: `m${i}`, score: 20 * (i + 1) }));
  const isFinal = (m) => m.type === 'update' && m.total === 51 && JSON.stringify(strip(m.entries)) === JSON.stringify(want);
  const final = await live.waitMessage(isFinal, { timeout: 5000, from });
  // Quiet period: nothing may follow the final state (it does not change any more).
  await waitFor(() => Date.now() - final.at >= 1200, { timeout: 2000, interval: 50 });
  const updates = live.messages.slice(from).filter((m) => m.data.type === 'update');
  const last = updates[updates.length - 1];
  assert.ok(isFinal(last.data), `the last update is the final state: ${JSON.stringify(last.data)}`);
  const gaps = updates.slice(1).map((u, i) => u.at - updates[i].at);
  t.diagnostic(`${updates.length} updates; posted in ${postedIn} ms; gaps ${gaps.join(', ')} ms; final after ${final.at - t0} ms`);
  assert.ok(updates.length <= 5, `${updates.length} updates for 1000 events posted in ${postedIn} ms (gaps ${gaps.join(', ')} ms)`);
  for (const g of gaps) assert.ok(g >= 500, `updates ${g} ms apart (all gaps: ${gaps.join(', ')} ms); at most one per 500 ms`);
  const top = (await get(`${w.url}/v1/boards/${b}/top?limit=5`)).json;
  assert.deepEqual(last.data.entries, top.entries);
  live.close();
});

test('a change outside a viewer\'s top `limit` that leaves the total unchanged sends it no update', async () => {
  const b = uniqueName('live');
  await seed(b, Array.from({ length: 8 }, (_, i) => ({ member: `q${i}`, value: (i + 1) * 10 })));
  const small = await openLive(b, 'limit=3');
  const big = await openLive(b, 'limit=8');
  await small.waitMessage((m) => m.type === 'snapshot');
  await big.waitMessage((m) => m.type === 'snapshot');
  const fromSmall = small.messages.length;
  const fromBig = big.messages.length;
  // q0 (last, 10) → 11: still last; the top 3 and the total are unchanged.
  assert.equal((await post(EV, { type: 'score', board: b, member: 'q0', value: 1 })).status, 202);
  const seen = await big.waitMessage((m) => m.type === 'update', { timeout: 3000, from: fromBig });
  assert.equal(seen.data.entries[7].score, 11);
  await waitFor(() => Date.now() - seen.at >= 700, { timeout: 1500, interval: 50 });
  assert.deepEqual(small.messages.slice(fromSmall).map((m) => m.data.type), [], 'limit=3 viewer got no update');
  small.close();
  big.close();
});

test('a viewer joining while a change is held back does not keep it from the viewers already there', async () => {
  const b = uniqueName('live');
  await seed(b, [{ member: 'seed', value: 1 }]);
  const a = await openLive(b, 'limit=10');
  await a.waitMessage((m) => m.type === 'snapshot');
  // 200 events arrive as two Queue batches a few ms apart: the second push
  // waits out the 500 ms spacing while the new viewer connects.
  const events = Array.from({ length: 200 }, (_, i) => ({ type: 'score', board: b, member: i < 199 ? 'x' : 'y', value: 1 }));
  assert.equal((await post(EV, events)).status, 202);
  await waitFor(async () => (await get(`${w.url}/v1/boards/${b}/top`)).json?.total === 3, { timeout: 3000, interval: 20 });
  const c = await openLive(b, 'limit=10');
  const snap = await c.waitMessage((m) => m.type === 'snapshot');
  assert.equal(snap.data.total, 3);
  await a.waitMessage((m) => m.total === 3, { timeout: 2500 });
  a.close();
  c.close();
});

test('a change of the board\'s ties reaches connected viewers as an update', async () => {
  const b = uniqueName('live');
  await seed(b, [{ member: 'p', value: 5, ts: Date.now() - 2000 }, { member: 'q', value: 5, ts: Date.now() - 1000 }]);
  const v = await openLive(b, 'limit=10');
  const snap = await v.waitMessage((m) => m.type === 'snapshot');
  assert.deepEqual(strip(snap.data.entries).map((e) => e.rank), [1, 1]);
  const put = await admin(`${w.url}/v1/boards/${b}`, 'PUT', { ties: 'first' });
  assert.equal(put.status, 200, put.text);
  const up = await v.waitMessage((m) => m.type === 'update', { timeout: 2500 });
  assert.deepEqual(strip(up.data.entries), [{ rank: 1, member: 'p', score: 5 }, { rank: 2, member: 'q', score: 5 }]);
  v.close();
});

test('200 sockets on one board all receive the update', async () => {
  const b = uniqueName('many');
  await seed(b, [{ member: 'first', value: 1 }]);
  const all = [];
  for (let k = 0; k < 4; k++) {
    all.push(...await Promise.all(Array.from({ length: 50 }, () => openLive(b, 'limit=3'))));
  }
  assert.equal(all.length, 200);
  await waitFor(() => all.every((l) => l.messages.some((m) => m.data.type === 'snapshot')), { timeout: 5000, what: '200 snapshots' });
  const marks = all.map((l) => l.messages.length);
  assert.equal((await post(EV, { type: 'score', board: b, member: 'second', value: 2 })).status, 202);
  const got = (l, i) => l.messages.slice(marks[i]).some((m) => m.data.type === 'update' && m.data.total === 2 && m.data.entries[0]?.member === 'second');
  try {
    await waitFor(() => all.every(got), { timeout: 4000, interval: 50, what: 'all 200 updates' });
  } catch (e) {
    assert.fail(`${all.filter((l, i) => got(l, i)).length} of 200 sockets got the update: ${e.message}`);
  }
  for (const l of all) l.close();
});

test('a socket to an unknown board is refused with 404 board_not_found before the upgrade', async () => {
  await assert.rejects(openLive(uniqueName('nope')), (err) => {
    assert.equal(err.status, 404, err.message);
    assert.equal(JSON.parse(err.body).error.code, 'board_not_found');
    return true;
  });
});

test('a socket with a bad limit is refused with 400 invalid_parameter', async () => {
  const b = uniqueName('live');
  await seed(b, [{ member: 'a', value: 1 }]);
  for (const qs of ['limit=0', 'limit=abc', 'limit=100000']) {
    await assert.rejects(openLive(b, qs), (err) => {
      assert.equal(err.status, 400, `${qs}: ${err.message} ${err.body}`);
      assert.equal(JSON.parse(err.body).error.code, 'invalid_parameter');
      return true;
    });
  }
});

test('a plain GET of the live endpoint is a client error, not a 5xx', async () => {
  const b = uniqueName('live');
  await seed(b, [{ member: 'a', value: 1 }]);
  const r = await get(`${w.url}/v1/boards/${b}/live`);
  assert.ok(r.status >= 400 && r.status < 500, `${r.status} ${r.text}`);
  assert.equal(typeof r.json?.error?.code, 'string');
});
