// Seasons (API 1.1): POST /v1/boards/{board}/seasons archives the all
// window's ranking and starts the next one empty; an event belongs to the
// season in which it was accepted, even when the Queue delivers it later.
// Test faults (PODIUM_TEST_FAULTS=1) hold a request's later messages back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { faultyWorker, post, get, admin, waitFor, uniqueName, ADMIN_KEY } from '../harness.mjs';

const fx = faultyWorker();
const sockets = fx.sockets;

const newSeason = (b, headers = {}) =>
  post(`${fx.w.url}/v1/boards/${b}/seasons`, undefined, { key: ADMIN_KEY, contentType: undefined, headers });
const topOf = async (b, qs = '') => (await get(`${fx.w.url}/v1/boards/${b}/top${qs}`)).json;
const scores = (t) => Object.fromEntries(t.entries.map((e) => [e.member, e.score]));
async function send(events, headers = {}) {
  const r = await post(fx.EV, events, { headers });
  assert.equal(r.status, 202, r.text);
}

test('a new season archives the all window and starts empty; day windows go on', async () => {
  const b = uniqueName('season');
  assert.equal((await admin(`${fx.w.url}/v1/boards/${b}`, 'PUT', { windows: ['all', 'day'] })).status, 201);
  await send([{ type: 'hit', board: b, member: 'alice', value: 5 }, { type: 'hit', board: b, member: 'bob', value: 3 }]);
  await waitFor(async () => (await topOf(b))?.total === 2, { what: 'seeded' });

  const live = [];
  const ws = new WebSocket(`${fx.w.url.replace('http', 'ws')}/v1/boards/${b}/live?window=all`);
  sockets.add(ws);
  ws.on('message', (raw) => live.push(JSON.parse(raw.toString())));
  await waitFor(() => live.length > 0, { what: 'snapshot' });
  assert.equal(live[0].period, 'all');

  const t0 = Date.now();
  const r = await newSeason(b);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.season, 2);
  assert.ok(r.json.started >= t0 - 5 && r.json.started <= Date.now() + 5, JSON.stringify(r.json));
  assert.equal((await get(`${fx.w.url}/v1/boards/${b}`)).json.season, 2);

  const now = await topOf(b);
  assert.deepEqual([now.period, now.total], ['s2', 0]);
  assert.deepEqual((await topOf(b, '?period=all')).period, 's2', 'period=all is the current season');
  const s1 = await topOf(b, '?period=s1');
  assert.deepEqual([s1.period, scores(s1)], ['s1', { alice: 5, bob: 3 }], 'the archived first season reads as s1');
  assert.deepEqual(scores(await topOf(b, '?window=day')), { alice: 5, bob: 3 }, 'the day goes on');
  const snap = await waitFor(() => live.find((m) => m.type === 'snapshot' && m.period === 's2'), { what: 'live snapshot of s2' });
  assert.deepEqual([snap.total, snap.entries], [0, []]);

  await send([{ type: 'hit', board: b, member: 'carol', value: 1 }]);
  await waitFor(async () => (await topOf(b))?.total === 1, { what: 'carol in s2' });
  assert.deepEqual(scores(await topOf(b)), { carol: 1 });
  assert.deepEqual(scores(await topOf(b, '?window=day')), { alice: 5, bob: 3, carol: 1 });
  assert.equal((await get(`${fx.w.url}/v1/boards/${b}/members/alice?period=s1`)).json.score, 5);
});

test('events accepted before the call count in the archived season, even delivered after it', async () => {
  const b = uniqueName('seasonq');
  await send([{ type: 'hit', board: b, member: 'early', value: 1 }]);
  await waitFor(async () => (await topOf(b))?.total === 1, { what: 'seeded' });
  // One request of several Queue messages: the later ones are held back.
  const pad = { note: 'p'.repeat(900) };
  const evs = Array.from({ length: 200 }, (_, i) => ({ type: 'hit', board: b, member: `pad${i}`, meta: pad }));
  evs.push({ type: 'hit', board: b, member: 'late', value: 7 });
  await send(evs, { 'X-Podium-Test-Refuse': '3' });
  const r = await newSeason(b);
  assert.equal(r.status, 200, r.text);
  assert.equal((await get(`${fx.w.url}/v1/boards/${b}/members/late?period=s1`)).status, 404, 'still on its way at the call');
  await send([{ type: 'hit', board: b, member: 'after', value: 2 }]);
  await waitFor(async () => (await get(`${fx.w.url}/v1/boards/${b}/members/late?period=s1`)).status === 200,
    { timeout: 30_000, what: 'the held messages' });
  await waitFor(async () => (await topOf(b))?.total === 1, { what: 'after in s2' });
  const s1 = await topOf(b, '?period=s1&limit=1000');
  assert.equal(s1.total, 202);
  assert.equal(scores(s1).late, 7);
  assert.deepEqual(scores(await topOf(b)), { after: 2 }, 'nothing accepted before the call reached season 2');
});

test('four requests sent at once with one Idempotency-Key archive once: the others wait for the first answer', async () => {
  const b = uniqueName('seasonc');
  await send([{ type: 'hit', board: b, member: 'a', value: 1 }]);
  await waitFor(async () => (await topOf(b))?.total === 1, { what: 'seeded' });
  const key = { 'Idempotency-Key': `c-${b}` };
  const answers = await Promise.all([1, 2, 3, 4].map(() => newSeason(b, key)));
  for (const r of answers) assert.ok(r.status >= 200 && r.status < 300, `${r.status} ${r.text}`);
  assert.deepEqual(new Set(answers.map((r) => `${r.status} ${r.text}`)).size, 1, 'one answer, four times');
  assert.equal((await get(`${fx.w.url}/v1/boards/${b}`)).json.season, 2, 'archived once');
  assert.equal((await get(`${fx.w.url}/v1/boards/${b}/seasons`)).json.seasons.length, 2);
});

test('seasons are listed, repeats with one Idempotency-Key archive once, and bad periods are refused', async () => {
  const b = uniqueName('seasonl');
  const created = Date.now();
  await send([{ type: 'hit', board: b, member: 'a', value: 1 }, { type: 'hit', board: b, member: 'b', value: 1 }]);
  await waitFor(async () => (await topOf(b))?.total === 2, { what: 'seeded' });
  const key = { 'Idempotency-Key': `s-${b}` };
  const first = await newSeason(b, key);
  const again = await newSeason(b, key);
  assert.deepEqual(again.json, first.json);
  assert.equal((await get(`${fx.w.url}/v1/boards/${b}`)).json.season, 2, 'archived once');
  await send([{ type: 'hit', board: b, member: 'c', value: 1 }]);
  await waitFor(async () => (await topOf(b))?.total === 1, { what: 'c' });
  assert.equal((await newSeason(b)).json.season, 3);

  const list = await get(`${fx.w.url}/v1/boards/${b}/seasons`);
  assert.equal(list.status, 200, list.text);
  assert.equal(list.json.current, 3);
  assert.deepEqual(list.json.seasons.map((s) => [s.season, s.members]), [[1, 2], [2, 1], [3, 0]]);
  const [s1, s2, s3] = list.json.seasons;
  // The first season began when the event created the board.
  assert.ok(Number.isInteger(s1.started) && s1.started >= created - 5 && s1.started <= s1.ended, JSON.stringify(s1));
  assert.equal(s1.ended, s2.started);
  assert.equal(s2.ended, s3.started);
  assert.equal(s3.ended, null);

  assert.equal((await get(`${fx.w.url}/v1/boards/${b}/top?period=s4`)).status, 404);
  assert.equal((await get(`${fx.w.url}/v1/boards/${b}/top?period=s0`)).status, 400);
  assert.equal((await post(`${fx.w.url}/v1/boards/${b}/seasons`, undefined, { contentType: undefined })).status, 401);
  assert.equal((await newSeason(uniqueName('nob'))).status, 404);
  const dayOnly = uniqueName('dayonly');
  assert.equal((await admin(`${fx.w.url}/v1/boards/${dayOnly}`, 'PUT', { windows: ['day'] })).status, 201);
  assert.equal((await newSeason(dayOnly)).status, 409);
});
