// Tie-break scores (API 1.1 `tiebreak`, `subscore`): the order among equal
// scores, shared ranks only on equal score and subscore, the per-op rules
// (incr adds, best keeps the kept value's, last the winner's), and the
// subscore carried by every read, the live socket, export and import.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { startWorker, post, get, admin, waitFor, uniqueName, drain, ADMIN_KEY } from '../harness.mjs';

let w;
let EV;
before(async () => { w = await startWorker(); EV = `${w.url}/v1/events`; });
after(async () => { await w?.stop(); });

const boardUrl = (b) => `${w.url}/v1/boards/${b}`;
const topOf = async (b, qs = 'limit=100') => (await get(`${boardUrl(b)}/top?${qs}`)).json;
const rows = (entries) => entries.map(({ rank, member, score, subscore }) => [rank, member, score, subscore]);

async function board(settings) {
  const b = uniqueName('tb');
  const r = await admin(boardUrl(b), 'PUT', settings);
  assert.equal(r.status, 201, r.text);
  return b;
}

/** Events from rows of [member, value, subscore, ms after t]. */
const runs = (t, list) => list.map(([member, value, subscore, dt]) => ({ member, value, subscore, ts: t + dt }));

async function send(b, events, total) {
  const r = await post(EV, events.map((e) => ({ type: 'run', board: b, ...e })));
  assert.equal(r.status, 202, r.text);
  if (total !== undefined) {
    await waitFor(async () => (await topOf(b))?.total === total, { timeout: 5000, what: `${b} has ${total}` });
  }
}

describe('tiebreak', () => {
  test('highest score in the least time: equal scores rank by the lower subscore, and only equal pairs share a rank', async () => {
    const b = await board({ op: 'best', order: 'desc', tiebreak: 'asc', ties: 'shared' });
    assert.equal((await get(boardUrl(b))).json.tiebreak, 'asc');
    const t = Date.now() - 60_000;
    await send(b, runs(t, [['slow', 100, 50, 1], ['fast', 100, 40, 2], ['low', 90, 10, 3], ['twin', 100, 40, 4]]), 4);
    // fast and twin tie on both: one rank, fast first (it reached it first)
    assert.deepEqual(rows((await topOf(b)).entries), [
      [1, 'fast', 100, 40], [1, 'twin', 100, 40], [3, 'slow', 100, 50], [4, 'low', 90, 10],
    ]);
    const m = (await get(`${boardUrl(b)}/members/slow`)).json;
    assert.deepEqual([m.rank, m.score, m.subscore, m.total, m.percentile], [3, 100, 50, 4, 25]);
    const around = (await get(`${boardUrl(b)}/members/twin/around?radius=1`)).json;
    assert.deepEqual(rows(around.entries), [[1, 'fast', 100, 40], [1, 'twin', 100, 40], [3, 'slow', 100, 50]]);
    const lookup = await post(`${boardUrl(b)}/lookup`, { members: ['low', 'slow'] });
    assert.deepEqual(rows(lookup.json.entries), [[3, 'slow', 100, 50], [4, 'low', 90, 10]]);

    // best: an equal value with a better subscore wins; a worse one changes nothing
    await send(b, runs(t, [['slow', 100, 30, 10], ['fast', 100, 45, 11]]));
    await waitFor(async () => (await topOf(b)).entries[0]?.member === 'slow', { timeout: 5000, what: 'slow improves its time' });
    assert.deepEqual(rows((await topOf(b)).entries), [
      [1, 'slow', 100, 30], [2, 'fast', 100, 40], [2, 'twin', 100, 40], [4, 'low', 90, 10],
    ]);
    // a better value wins whatever its subscore
    await send(b, [{ member: 'low', value: 101, subscore: 999, ts: t + 12 }]);
    await waitFor(async () => (await topOf(b)).entries[0]?.member === 'low', { timeout: 5000, what: 'low leads' });
    assert.deepEqual((await topOf(b)).entries[0], { rank: 1, member: 'low', score: 101, subscore: 999 });
  });

  test('incr adds subscores (points, then total time), and ties: first keeps distinct ranks', async () => {
    const b = await board({ op: 'incr', tiebreak: 'asc', ties: 'first' });
    await send(b, [
      { member: 'ann', value: 1, subscore: 30 },
      { member: 'ann', value: 1, subscore: 25 },
      { member: 'bo', value: 1, subscore: 20 },
      { member: 'bo', value: 1, subscore: 20 },
      { member: 'cy', value: 1, subscore: 5 },
    ], 3);
    await waitFor(async () => (await topOf(b)).entries.find((e) => e.member === 'bo')?.score === 2, { timeout: 5000, what: 'sums' });
    await drain(w.url, uniqueName('sentinel'));
    assert.deepEqual(rows((await topOf(b)).entries), [[1, 'bo', 2, 40], [2, 'ann', 2, 55], [3, 'cy', 1, 5]]);
  });

  test('last keeps the winning event\'s subscore, whatever the arrival order; desc prefers the higher subscore', async () => {
    const b = await board({ op: 'last', tiebreak: 'desc' });
    const t = Date.now() - 60_000;
    await send(b, [
      { member: 'p', value: 7, subscore: 1, ts: t + 20 },
      { member: 'p', value: 7, subscore: 9, ts: t + 10 }, // older: loses
      { member: 'q', value: 7, subscore: 3, ts: t + 5 },
    ], 2);
    await drain(w.url, uniqueName('sentinel'));
    assert.deepEqual(rows((await topOf(b)).entries), [[1, 'q', 7, 3], [2, 'p', 7, 1]]);
    // an equal value with a new subscore is a change on `last`
    await send(b, [{ member: 'p', value: 7, subscore: 4, ts: t + 30 }]);
    await waitFor(async () => (await topOf(b)).entries[0]?.member === 'p', { timeout: 5000, what: 'p wins with 4' });
  });

  test('a board without a tiebreak ignores subscores and shows none', async () => {
    const b = await board({ ties: 'shared' });
    assert.equal((await get(boardUrl(b))).json.tiebreak, 'none');
    await send(b, [{ member: 'x', value: 3, subscore: 1 }, { member: 'y', value: 3, subscore: 2 }], 2);
    const top = await topOf(b);
    assert.deepEqual(top.entries.map((e) => [e.rank, e.member, 'subscore' in e]), [[1, 'x', false], [1, 'y', false]]);
    assert.equal('subscore' in (await get(`${boardUrl(b)}/members/y`)).json, false);
  });

  test('tiebreak is 400 when not none, asc or desc, and 409 to change once the board holds scores', async () => {
    const bad = await admin(boardUrl(uniqueName('tb')), 'PUT', { tiebreak: 'up' });
    assert.equal(bad.status, 400, bad.text);
    assert.equal(bad.json.error.field, 'tiebreak');
    const b = await board({ tiebreak: 'asc' });
    assert.equal((await admin(boardUrl(b), 'PUT', { tiebreak: 'desc' })).status, 200, 'free to change while empty');
    await send(b, [{ member: 'x', value: 1, subscore: 1 }], 1);
    const r = await admin(boardUrl(b), 'PUT', { tiebreak: 'none' });
    assert.equal(r.status, 409, r.text);
    assert.equal((await admin(boardUrl(b), 'PUT', { tiebreak: 'desc', title: 'same' })).status, 200);
    assert.equal((await get(boardUrl(b))).json.tiebreak, 'desc');
    const ev = await post(EV, { type: 'run', board: b, member: 'x', subscore: 'fast' });
    assert.equal(ev.status, 400, ev.text);
    assert.equal(ev.json.error.field, 'subscore');
  });

  test('export carries subscores (NDJSON and a CSV column), and re-imported gives the same board', async () => {
    const b = await board({ op: 'best', tiebreak: 'asc' });
    const t = Date.now() - 60_000;
    await send(b, runs(t, [['a', 5, 2, 1], ['b', 5, 1, 2], ['c', 5, 1, 3], ['d', 6, 9, 4]]), 4);
    const nd = await get(`${boardUrl(b)}/export`, { key: ADMIN_KEY });
    assert.equal(nd.status, 200, nd.text);
    const lines = nd.text.split('\n').filter(Boolean).map((l) => JSON.parse(l));
    assert.deepEqual(lines.map((l) => [l.rank, l.member, l.score, l.subscore]), [
      [1, 'd', 6, 9], [2, 'b', 5, 1], [2, 'c', 5, 1], [4, 'a', 5, 2],
    ]);
    const csv = await get(`${boardUrl(b)}/export?format=csv`, { key: ADMIN_KEY });
    const csvRows = csv.text.split('\r\n');
    assert.equal(csvRows[0], 'rank,member,score,subscore,reached,meta,hidden');
    assert.match(csvRows[1], /^1,d,6,9,\d+,,$/);

    const copy = await board({ op: 'best', tiebreak: 'asc' });
    const imp = await post(`${boardUrl(copy)}/import`, nd.text, { key: ADMIN_KEY, contentType: 'application/x-ndjson' });
    assert.equal(imp.status, 200, imp.text);
    assert.deepEqual(rows((await topOf(copy)).entries), rows((await topOf(b)).entries));
  });

  test('live snapshots and updates carry subscores', async () => {
    const b = await board({ op: 'best', tiebreak: 'asc' });
    await send(b, [{ member: 'a', value: 10, subscore: 70 }], 1);
    const ws = new WebSocket(`${w.url.replace('http', 'ws')}/v1/boards/${b}/live?limit=5`);
    const messages = [];
    ws.on('message', (raw) => messages.push(JSON.parse(raw.toString())));
    try {
      await waitFor(() => messages.find((m) => m.type === 'snapshot'), { timeout: 5000, what: 'snapshot' });
      assert.deepEqual(messages[0].entries.map((e) => [e.member, e.subscore]), [['a', 70]]);
      await send(b, [{ member: 'z', value: 10, subscore: 60 }]);
      const up = await waitFor(() => messages.find((m) => m.type === 'update' && m.entries.length === 2), { timeout: 5000, what: 'update' });
      assert.deepEqual(up.entries.map((e) => [e.rank, e.member, e.subscore]), [[1, 'z', 60], [2, 'a', 70]]);
    } finally {
      ws.terminate();
    }
  });
});
