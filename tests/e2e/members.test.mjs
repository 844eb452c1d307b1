// Members under control (API 1.1): removing a member from a board, in every
// window and period, with events for it still on the Queue.
// Runs with test faults on (PODIUM_TEST_FAULTS=1) to hold events in flight:
// `X-Podium-Test-Refuse: n` makes the Queue refuse every message of a
// request but its first n times, so those wait in the intake with backoff.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { faultyWorker, post, get, admin, waitFor, uniqueName, ADMIN_KEY } from '../harness.mjs';

const fx = faultyWorker();
const sockets = fx.sockets;

const DAY = 86_400_000;
const boardView = async (b) => (await get(`${fx.w.url}/v1/boards/${b}`)).json;
const standing = (b, m, qs = '') => get(`${fx.w.url}/v1/boards/${b}/members/${encodeURIComponent(m)}${qs}`);
const removeMember = (b, m, headers = {}) =>
  post(`${fx.w.url}/v1/boards/${b}/members/${encodeURIComponent(m)}`, undefined, {
    key: ADMIN_KEY, method: 'DELETE', contentType: undefined, headers,
  });

async function send(events, headers = {}) {
  const r = await post(fx.EV, events, { headers });
  assert.equal(r.status, 202, r.text);
  return r.json;
}

/** Alice (9) and Bob (1) on board `b`, and a live socket's messages, from its snapshot on. */
async function aliceAndBobWatched(b) {
  await send([{ type: 'hit', board: b, member: 'alice', value: 9 }, { type: 'hit', board: b, member: 'bob', value: 1 }]);
  await visible(b, 'bob');
  await visible(b, 'alice');
  const messages = [];
  const ws = new WebSocket(`${fx.w.url.replace('http', 'ws')}/v1/boards/${b}/live?limit=5`);
  sockets.add(ws);
  ws.on('message', (raw) => messages.push(JSON.parse(raw.toString())));
  await waitFor(() => messages.find((m) => m.type === 'snapshot'), { what: 'snapshot' });
  return messages;
}

const visible = (b, m, qs = '') =>
  waitFor(async () => (await standing(b, m, qs)).status === 200, { timeout: 10_000, what: `${m} on ${b}` });

describe('removing a member from a board', () => {
  test('removes it from every window and period, and only it', async () => {
    const b = uniqueName('rm');
    assert.equal((await admin(`${fx.w.url}/v1/boards/${b}`, 'PUT', { windows: ['all', 'day'] })).status, 201);
    const now = Date.now();
    const yesterday = new Date(now - DAY).toISOString().slice(0, 10);
    await send([
      { type: 'hit', board: b, member: 'alice', value: 5 },
      { type: 'hit', board: b, member: 'alice', value: 2, ts: now - DAY },
      { type: 'hit', board: b, member: 'bob', value: 3 },
    ]);
    await visible(b, 'bob');
    await visible(b, 'alice', `?window=day&period=${yesterday}`);
    await visible(b, 'alice', '?window=day');

    const r = await removeMember(b, 'alice');
    assert.equal(r.status, 200, r.text);
    // all, today, yesterday
    assert.deepEqual(r.json, { removed: 3 });
    for (const qs of ['', '?window=day', `?window=day&period=${yesterday}`]) {
      const s = await standing(b, 'alice', qs);
      assert.equal(s.status, 404, `alice still on ${qs}: ${s.text}`);
      assert.equal(s.json.error.code, 'member_not_found');
    }
    const top = (await get(`${fx.w.url}/v1/boards/${b}/top`)).json;
    assert.deepEqual(top.entries.map((e) => [e.member, e.score]), [['bob', 3]]);
    assert.equal(top.total, 1);
    assert.equal((await boardView(b)).members, 1);
    // A second removal finds nothing left.
    const again = await removeMember(b, 'alice');
    assert.equal(again.status, 404, again.text);
    assert.equal(again.json.error.code, 'member_not_found');
  });

  /**
   * A request of several Queue messages: the first (200 padded members)
   * goes at once, the rest (`n` events of `value` for `member`, then a
   * member 'marker') are held back by the Queue for seconds.
   */
  async function sendHeldBack(b, member, n, value) {
    const pad = { note: 'p'.repeat(900) };
    const evs = Array.from({ length: 200 }, (_, i) => ({ type: 'hit', board: b, member: `pad${i}`, meta: pad, id: `${b}-pad-${i}` }));
    for (let i = 0; i < n; i += 1) evs.push({ type: 'hit', board: b, member, value, id: `${b}-late-${i}` });
    evs.push({ type: 'hit', board: b, member: 'marker', id: `${b}-marker` });
    await send(evs, { 'X-Podium-Test-Refuse': '3' });
  }

  test('events accepted before the call never bring the score back; events after it count from zero', async () => {
    const b = uniqueName('rmq');
    await send([{ type: 'hit', board: b, member: 'alice', value: 100, id: `${b}-first` }]);
    await visible(b, 'alice');
    await sendHeldBack(b, 'alice', 7, 10);

    const r = await removeMember(b, 'alice');
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json, { removed: 1 });
    // The held messages were still on their way when the removal returned.
    assert.equal((await standing(b, 'marker')).status, 404, 'the marker arrived before the removal; the test proves nothing');

    await waitFor(async () => (await standing(b, 'marker')).status === 200, { timeout: 30_000, what: 'the held messages' });
    const s = await standing(b, 'alice');
    assert.equal(s.status, 404, `alice came back: ${s.text}`);

    // Accepted after the removal: counts from zero.
    await send([{ type: 'hit', board: b, member: 'alice', value: 4, id: `${b}-after` }]);
    await waitFor(async () => (await standing(b, 'alice')).json?.score === 4, { timeout: 10_000, what: 'alice back at 4' });
    // Resending an id the board applied before the removal changes nothing.
    await send([{ type: 'hit', board: b, member: 'alice', value: 100, id: `${b}-first` },
      { type: 'hit', board: b, member: 'marker2', id: `${b}-marker2` }]);
    await visible(b, 'marker2');
    assert.equal((await standing(b, 'alice')).json.score, 4);
  });

  test('removing a member not on the board is 404 and changes nothing: its events on their way still count', async () => {
    const b = uniqueName('rmn');
    await send([{ type: 'hit', board: b, member: 'first', id: `${b}-first` }]);
    await visible(b, 'first');
    await sendHeldBack(b, 'newbie', 3, 5);

    const r = await removeMember(b, 'newbie');
    assert.equal(r.status, 404, r.text);
    assert.equal(r.json.error.code, 'member_not_found');
    assert.equal((await standing(b, 'marker')).status, 404, 'the marker arrived before the removal; the test proves nothing');
    await waitFor(async () => (await standing(b, 'marker')).status === 200, { timeout: 30_000, what: 'the held messages' });
    const s = await standing(b, 'newbie');
    assert.equal(s.status, 200, `the refused removal kept the newcomer out: ${s.text}`);
    assert.equal(s.json.score, 15);
  });

  test('the live page drops the member without a reload', async () => {
    const b = uniqueName('rml');
    const messages = await aliceAndBobWatched(b);
    assert.deepEqual(messages[0].entries.map((e) => e.member), ['alice', 'bob']);
    assert.equal((await removeMember(b, 'alice')).status, 200);
    const update = await waitFor(() => messages.find((m) => m.type === 'update'), { what: 'update after removal' });
    assert.deepEqual(update.entries.map((e) => [e.rank, e.member]), [[1, 'bob']]);
    assert.equal(update.total, 1);
  });

  test('needs the admin key, names a board that exists, and honours Idempotency-Key', async () => {
    const b = uniqueName('rmk');
    await send([{ type: 'hit', board: b, member: 'alice' }]);
    await visible(b, 'alice');
    const path = `${fx.w.url}/v1/boards/${b}/members/alice`;
    const ingestKey = await post(path, undefined, { method: 'DELETE', contentType: undefined });
    assert.equal(ingestKey.status, 401, ingestKey.text);
    const noBoard = await removeMember(uniqueName('nob'), 'alice');
    assert.equal(noBoard.status, 404, noBoard.text);
    assert.equal(noBoard.json.error.code, 'board_not_found');
    assert.equal((await standing(b, 'alice')).status, 200, 'refused calls removed nothing');

    const key = `rm-${b}`;
    const first = await removeMember(b, 'alice', { 'Idempotency-Key': key });
    assert.equal(first.status, 200, first.text);
    const repeat = await removeMember(b, 'alice', { 'Idempotency-Key': key });
    assert.equal(repeat.status, 200, repeat.text);
    assert.deepEqual(repeat.json, first.json);
    const fresh = await removeMember(b, 'alice');
    assert.equal(fresh.status, 404, 'without the key the call runs again and finds nothing');
  });
});

describe('read your write: POST /v1/events?wait=applied', () => {
  const waitPost = (body, headers = {}) => post(`${fx.EV}?wait=applied`, body, { headers });

  test('answers once applied, with each member standing on each board and window', async () => {
    const b = uniqueName('wait');
    assert.equal((await admin(`${fx.w.url}/v1/boards/${b}`, 'PUT', { windows: ['all', 'day'] })).status, 201);
    const first = await waitPost([{ type: 'hit', board: b, member: 'alice', value: 5 }]);
    assert.equal(first.status, 200, first.text);
    assert.equal(first.json.accepted, 1);
    assert.equal(first.json.ids.length, 1);
    assert.equal(first.json.applied, true);
    const today = new Date().toISOString().slice(0, 10);
    const norm = (s) => s.map(({ board, window, period, member, rank, score }) => ({ board, window, period, member, rank, score }))
      .sort((x, y) => `${x.window}${x.member}`.localeCompare(`${y.window}${y.member}`));
    assert.deepEqual(norm(first.json.standings), [
      { board: b, window: 'all', period: 'all', member: 'alice', rank: 1, score: 5 },
      { board: b, window: 'day', period: today, member: 'alice', rank: 1, score: 5 },
    ]);
    // Bob passes her: his answer already shows it, and so does the next read.
    const second = await waitPost([{ type: 'hit', board: b, member: 'bob', value: 7 }, { type: 'hit', board: b, member: 'alice', value: 1 }]);
    assert.equal(second.status, 200, second.text);
    assert.deepEqual(norm(second.json.standings).filter((s) => s.window === 'all'), [
      { board: b, window: 'all', period: 'all', member: 'alice', rank: 2, score: 6 },
      { board: b, window: 'all', period: 'all', member: 'bob', rank: 1, score: 7 },
    ]);
    assert.equal((await standing(b, 'alice')).json.rank, 2);
  });

  test('a repeat with the same Idempotency-Key gets the same ids and is applied once', async () => {
    const b = uniqueName('waitk');
    const body = [{ type: 'hit', board: b, member: 'alice', value: 3 }];
    const key = { 'Idempotency-Key': `w-${b}` };
    const one = await waitPost(body, key);
    const two = await waitPost(body, key);
    assert.equal(one.status, 200, one.text);
    assert.equal(two.status, 200, two.text);
    assert.deepEqual(two.json.ids, one.json.ids);
    assert.equal(two.json.applied, true);
    assert.equal(two.json.standings[0].score, 3, 'counted once');
  });

  test('one standing per event, in order: a member sent twice stands twice, a hidden member gets its own read, a tiebreak board adds subscore', async () => {
    const b = uniqueName('waite');
    assert.equal((await admin(`${fx.w.url}/v1/boards/${b}`, 'PUT', { tiebreak: 'asc' })).status, 201);
    await send([{ type: 'hit', board: b, member: 'bob', value: 4, subscore: 2 }]);
    await visible(b, 'bob');
    const hid = await post(`${fx.w.url}/v1/boards/${b}/members/carol/hidden`, undefined, { key: ADMIN_KEY, method: 'PUT', contentType: undefined });
    assert.equal(hid.status, 200, hid.text);
    const r = await waitPost([
      { type: 'hit', board: b, member: 'alice', value: 2, subscore: 1 },
      { type: 'hit', board: b, member: 'carol', value: 9, subscore: 5 },
      { type: 'hit', board: b, member: 'alice', value: 3, subscore: 1 },
    ]);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.applied, true);
    const got = r.json.standings.map(({ member, rank, score, subscore }) => [member, rank, score, subscore]);
    assert.deepEqual(got, [
      ['alice', 1, 5, 2],
      ['carol', 1, 9, 5],
      ['alice', 1, 5, 2],
    ]);
    assert.deepEqual(r.json.standings.map((s) => s.board), [b, b, b]);
    const own = (await standing(b, 'carol')).json;
    assert.deepEqual([own.rank, own.score], [1, 9], 'the same as carol\u2019s own read');
    assert.equal((await standing(b, 'bob')).json.rank, 2, 'bob is behind alice; hidden carol ranks nobody');
  });

  test('refuses more than 100 events and an unknown wait', async () => {
    const b = uniqueName('waitx');
    const many = Array.from({ length: 101 }, (_, i) => ({ type: 'hit', board: b, member: `m${i}` }));
    const r = await waitPost(many);
    assert.equal(r.status, 400, r.text);
    assert.equal(r.json.error.code, 'too_many_events');
    const bad = await post(`${fx.EV}?wait=forever`, [{ type: 'hit', board: b, member: 'a' }]);
    assert.equal(bad.status, 400, bad.text);
    assert.equal(bad.json.error.field, 'wait');
    assert.equal((await standing(b, 'a')).status, 404, 'nothing was enqueued');
  });

  test('latency of a game submitting one score and reading its rank (printed, p50/p99 over 30)', async () => {
    const b = uniqueName('waitl');
    const took = [];
    for (let i = 0; i < 30; i += 1) {
      const t = performance.now();
      const r = await waitPost([{ type: 'score', board: b, member: `p${i % 7}`, value: i }]);
      took.push(performance.now() - t);
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.applied, true);
      assert.equal(r.json.standings.length, 1);
    }
    took.sort((x, y) => x - y);
    const q = (p) => took[Math.min(took.length - 1, Math.floor(p * took.length))].toFixed(0);
    console.log(`wait=applied latency under wrangler dev: p50 ${q(0.5)} ms, p99 ${q(0.99)} ms (n=30)`);
  });
});

describe('shadow-hiding a member', () => {
  const hide = (b, m, on = true, headers = {}) =>
    post(`${fx.w.url}/v1/boards/${b}/members/${encodeURIComponent(m)}/hidden`, undefined, {
      key: ADMIN_KEY, method: on ? 'PUT' : 'DELETE', contentType: undefined, headers,
    });
  const topOf = async (b, qs = '') => (await get(`${fx.w.url}/v1/boards/${b}/top${qs}`)).json;
  const pairs = (t) => t.entries.map((e) => [e.rank, e.member, e.score]);

  test('a hidden member leaves listings, totals and others\u2019 ranks; its own standing looks normal', async () => {
    const b = uniqueName('hide');
    await send([
      { type: 'hit', board: b, member: 'alice', value: 10 },
      { type: 'hit', board: b, member: 'bob', value: 5 },
      { type: 'hit', board: b, member: 'carol', value: 1 },
    ]);
    await visible(b, 'carol');
    const r = await hide(b, 'alice');
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json, { member: 'alice', hidden: true });

    const top = await topOf(b);
    assert.deepEqual(pairs(top), [[1, 'bob', 5], [2, 'carol', 1]]);
    assert.equal(top.total, 2);
    const bob = (await standing(b, 'bob')).json;
    assert.deepEqual([bob.rank, bob.total, bob.percentile], [1, 2, 50]);
    const own = (await standing(b, 'alice')).json;
    assert.deepEqual([own.rank, own.score, own.total], [1, 10, 3], 'alice sees nothing unusual');
    const around = (await get(`${fx.w.url}/v1/boards/${b}/members/bob/around?radius=5`)).json;
    assert.deepEqual(around.entries.map((e) => e.member), ['bob', 'carol']);
    const ownAround = (await get(`${fx.w.url}/v1/boards/${b}/members/alice/around?radius=5`)).json;
    assert.deepEqual(ownAround.entries.map((e) => [e.rank, e.member]), [[1, 'alice'], [2, 'bob'], [3, 'carol']]);
    const friends = await post(`${fx.w.url}/v1/boards/${b}/lookup`, { members: ['alice', 'carol'] });
    assert.deepEqual(friends.json.entries.map((e) => e.member), ['carol']);
    assert.equal((await boardView(b)).members, 2);
    const list = await get(`${fx.w.url}/v1/boards/${b}/hidden`, { key: ADMIN_KEY });
    assert.deepEqual(list.json.hidden, ['alice']);
    const exported = (await get(`${fx.w.url}/v1/boards/${b}/export`, { key: ADMIN_KEY })).text.trim().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(exported.map((l) => [l.member, l.hidden ?? false]), [['alice', true], ['bob', false], ['carol', false]]);

    // Its events still apply.
    await send([{ type: 'hit', board: b, member: 'alice', value: 5 }, { type: 'hit', board: b, member: 'mark', value: 0 }]);
    await visible(b, 'mark');
    assert.equal((await standing(b, 'alice')).json.score, 15);
    assert.equal((await topOf(b)).total, 3);

    // Shown again: back everywhere.
    assert.equal((await hide(b, 'alice', false)).status, 200);
    assert.deepEqual(pairs(await topOf(b)).slice(0, 2), [[1, 'alice', 15], [2, 'bob', 5]]);
    assert.deepEqual((await get(`${fx.w.url}/v1/boards/${b}/hidden`, { key: ADMIN_KEY })).json.hidden, []);
  });

  test('a member hidden before it arrives, and a period begun after, keep it hidden', async () => {
    const b = uniqueName('hide2');
    assert.equal((await admin(`${fx.w.url}/v1/boards/${b}`, 'PUT', { windows: ['all', 'day'] })).status, 201);
    assert.equal((await hide(b, 'cheater')).status, 200, 'hiding someone not on the board is allowed');
    const yesterday = Date.now() - DAY;
    await send([
      { type: 'hit', board: b, member: 'cheater', value: 99 },
      { type: 'hit', board: b, member: 'cheater', value: 99, ts: yesterday },
      { type: 'hit', board: b, member: 'fair', value: 1, ts: yesterday },
      { type: 'hit', board: b, member: 'fair', value: 1 },
    ]);
    const day = new Date(yesterday).toISOString().slice(0, 10);
    await visible(b, 'fair', `?window=day&period=${day}`);
    await visible(b, 'fair');
    for (const [qs, score] of [['', 2], ['?window=day', 1], [`?window=day&period=${day}`, 1]]) {
      assert.deepEqual(pairs(await topOf(b, qs)), [[1, 'fair', score]], qs);
      assert.equal((await standing(b, 'cheater', qs)).json.rank, 1, `its own view ${qs}`);
    }
  });

  test('the live page drops a hidden member, needs the admin key and honours Idempotency-Key', async () => {
    const b = uniqueName('hidel');
    const messages = await aliceAndBobWatched(b);
    assert.equal((await post(`${fx.w.url}/v1/boards/${b}/members/alice/hidden`, undefined, { method: 'PUT', contentType: undefined })).status, 401);
    assert.equal((await hide(uniqueName('nob'), 'alice')).status, 404);
    const key = { 'Idempotency-Key': `h-${b}` };
    const first = await hide(b, 'alice', true, key);
    assert.equal(first.status, 200, first.text);
    const update = await waitFor(() => messages.find((m) => m.type === 'update'), { what: 'update after hiding' });
    assert.deepEqual(update.entries.map((e) => [e.rank, e.member]), [[1, 'bob']]);
    assert.equal(update.total, 1);
    const repeat = await hide(b, 'alice', true, key);
    assert.deepEqual([repeat.status, repeat.json], [200, first.json]);
    assert.equal((await get(`${fx.w.url}/v1/boards/${b}/hidden`)).status, 401, 'the hidden list is admin only');
  });
});
