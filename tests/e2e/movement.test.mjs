// Rank movement (API 1.1): `prev_rank` on entries, standings, live entries
// and wait=applied standings, against the board's last checkpoint. The
// checkpoint period is shortened for the test (CHECKPOINT_EVERY_MS, an hour
// by default), so boundaries come every 8 s.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { startWorker, post, get, waitFor, uniqueName, ADMIN_KEY } from '../harness.mjs';

const EVERY = 8000;
let w;
const sockets = new Set();
before(async () => { w = await startWorker({ vars: { CHECKPOINT_EVERY_MS: String(EVERY) } }); });
after(async () => {
  for (const s of sockets) s.terminate();
  await w?.stop();
});

const topOf = async (b) => (await get(`${w.url}/v1/boards/${b}/top`)).json;
const moves = (t) => t.entries.map((e) => [e.member, e.rank, e.prev_rank ?? null]);
/**
 * Waits until the first checkpoint boundary after `since` has just passed
 * (the worker shares this clock): a checkpoint taken then sees everything
 * done before `since`.
 */
const justAfterBoundaryAfter = (since) => {
  const next = since - (since % EVERY) + EVERY;
  return waitFor(() => Date.now() >= next && Date.now() % EVERY < 1000,
    { timeout: 2 * EVERY + 1000, interval: 20, what: 'a boundary' });
};

test('entries, standings and live entries carry the rank at the last checkpoint', async () => {
  const b = uniqueName('move');
  const r = await post(`${w.url}/v1/events`, [
    { type: 'hit', board: b, member: 'a', value: 5 },
    { type: 'hit', board: b, member: 'b', value: 3 },
    { type: 'hit', board: b, member: 'c', value: 1 },
  ]);
  assert.equal(r.status, 202, r.text);
  await waitFor(async () => (await topOf(b))?.total === 3, { what: 'seeded' });

  // Right after the next boundary, the first read takes the checkpoint: the ranks as they stood.
  await justAfterBoundaryAfter(Date.now());
  const boundary = Date.now() - (Date.now() % EVERY);
  assert.deepEqual(moves(await topOf(b)), [['a', 1, 1], ['b', 2, 2], ['c', 3, 3]]);
  const live = [];
  const ws = new WebSocket(`${w.url.replace('http', 'ws')}/v1/boards/${b}/live`);
  sockets.add(ws);
  ws.on('message', (raw) => live.push(JSON.parse(raw.toString())));

  // c passes both; d is new. The game's own answer already shows the move.
  const sub = await post(`${w.url}/v1/events?wait=applied`, [
    { type: 'hit', board: b, member: 'c', value: 10 },
    { type: 'hit', board: b, member: 'd', value: 4 },
  ]);
  assert.equal(sub.status, 200, sub.text);
  const mine = Object.fromEntries(sub.json.standings.map((s) => [s.member, [s.rank, s.prev_rank ?? null]]));
  assert.deepEqual(mine, { c: [1, 3], d: [3, null] });
  const t = await topOf(b);
  assert.deepEqual(moves(t), [['c', 1, 3], ['a', 2, 1], ['d', 3, null], ['b', 4, 2]]);
  const st = (await get(`${w.url}/v1/boards/${b}/members/a`)).json;
  assert.deepEqual([st.rank, st.prev_rank], [2, 1]);
  const update = await waitFor(() => live.find((m) => m.type === 'update'), { what: 'live update' });
  assert.deepEqual(moves(update), [['c', 1, 3], ['a', 2, 1], ['d', 3, null], ['b', 4, 2]]);
  assert.ok(Date.now() < boundary + EVERY, 'the reads above fell after the next boundary: the checkpoint moved under them');

  // At the next boundary the checkpoint moves on: everyone is where they were.
  await waitFor(async () => moves(await topOf(b)).every(([, rank, prev]) => rank === prev),
    { timeout: 3 * EVERY, what: 'the next checkpoint' });
});

for (const ties of ['shared', 'first']) {
  test(`prev_rank on a sharded board equals the one-object board's, in every read (ties: ${ties})`, async () => {
    const [one, many, type] = [uniqueName('pone'), uniqueName('pmany'), uniqueName('pt')];
    const topOf = async (b) => (await get(`${w.url}/v1/boards/${b}/top?limit=100`)).json;
    for (const [b, shards] of [[one, 1], [many, 5]]) {
      assert.equal((await post(`${w.url}/v1/boards/${b}`, { ties, shards }, { key: ADMIN_KEY, method: 'PUT' })).status, 201);
    }
    assert.equal((await post(`${w.url}/v1/routes/${type}`, { targets: [{ board: one }, { board: many }] }, { key: ADMIN_KEY, method: 'PUT' })).status, 201);
    // heavy ties: few values, one timestamp per request
    const batch = (n, seed) => Array.from({ length: n }, (_, i) => ({ type, member: `m${(i * 7 + seed) % 40}`, value: 1 + ((i + seed) % 3) }));
    assert.equal((await post(`${w.url}/v1/events`, batch(120, 1))).status, 202);
    await waitFor(async () => (await topOf(one))?.total === 40 && (await topOf(many))?.total === 40, { what: 'seeded' });
    await justAfterBoundaryAfter(Date.now());
    const boundary = Date.now() - (Date.now() % EVERY);
    assert.equal((await post(`${w.url}/v1/events`, batch(60, 5))).status, 202);
    const read = async (b) => {
      const top = (await get(`${w.url}/v1/boards/${b}/top?limit=100`)).json.entries;
      const st = [];
      for (const m of ['m0', 'm3', 'm17', 'm39']) st.push((await get(`${w.url}/v1/boards/${b}/members/${m}`)).json);
      const around = (await get(`${w.url}/v1/boards/${b}/members/m17/around?radius=3`)).json.entries;
      const lookup = (await post(`${w.url}/v1/boards/${b}/lookup`, { members: ['m1', 'm2', 'm30'] })).json.entries;
      return { top, st, around, lookup };
    };
    // the new events applied on both (sums equal), then every read compared
    const sum = (t) => t.entries.reduce((a, e) => a + e.score, 0);
    const want = [...batch(120, 1), ...batch(60, 5)].reduce((a, e) => a + e.value, 0);
    await waitFor(async () => sum(await topOf(one)) === want && sum(await topOf(many)) === want, { what: 'applied on both' });
    const [a, b] = [await read(one), await read(many)];
    assert.ok(Date.now() < boundary + EVERY, 'the reads fell after the next boundary: the checkpoint moved under them');
    assert.ok(a.top.some((e) => e.prev_rank !== e.rank), 'some members moved since the checkpoint');
    assert.ok(a.top.every((e) => e.prev_rank >= 1), 'every member was there at the checkpoint');
    assert.deepEqual(b, a);
  });
}

test('a checkpoint stored a slice per turn is read back after a restart', async () => {
  // Two entries a slice (test faults on): five members take three turns of the board's alarm.
  const SLOW = 20_000;
  const own = await startWorker({
    persistDir: mkdtempSync(join(tmpdir(), 'podium-cp-')),
    vars: { CHECKPOINT_EVERY_MS: String(SLOW), PODIUM_TEST_FAULTS: '1', CHECKPOINT_SLICE: '2' },
  });
  try {
    const b = uniqueName('cp');
    const ranks = () => get(`${own.url}/v1/boards/${b}/top`).then((r) => r.json.entries.map((e) => [e.member, e.prev_rank ?? null]));
    const r = await post(`${own.url}/v1/events`, ['a', 'b', 'c', 'd', 'e'].map((m, i) => ({ type: 'hit', board: b, member: m, value: 10 - i })));
    assert.equal(r.status, 202, r.text);
    await waitFor(async () => (await get(`${own.url}/v1/boards/${b}/top`)).json?.total === 5, { what: 'seeded' });
    const next = Date.now() - (Date.now() % SLOW) + SLOW;
    await waitFor(() => Date.now() >= next, { timeout: SLOW + 1000, interval: 20, what: 'a boundary' });
    assert.deepEqual(await ranks(), [['a', 1], ['b', 2], ['c', 3], ['d', 4], ['e', 5]], 'the first read after the boundary takes the checkpoint');
    // e jumps to first (its apply takes a second; the alarm stored the slices right after the read)
    assert.equal((await post(`${own.url}/v1/events`, { type: 'hit', board: b, member: 'e', value: 100 })).status, 202);
    const moved = [['e', 5], ['a', 1], ['b', 2], ['c', 3], ['d', 4]];
    await waitFor(async () => JSON.stringify(await ranks()) === JSON.stringify(moved), { what: 'e moved up' });
    // SIGKILL and back on the same state: the checkpoint is read back, not taken anew (then e's would be 1)
    await own.kill();
    await own.start();
    assert.deepEqual(await ranks(), moved, 'the stored checkpoint, read back');
    assert.ok(Date.now() < next + SLOW, 'the restart took past the next boundary: the test proves nothing');
  } finally {
    await own.stop();
  }
});
