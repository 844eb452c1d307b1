// The apply path under faults: packed Queue messages, the durable intake
// (all-or-nothing requests, Idempotency-Key), and atomic board applies.
// Runs with test faults switched on (PODIUM_TEST_FAULTS=1 in this worker's
// private .dev.vars): a fault rides on an event's member id
// (`__fault:<fail|panic|txn>:<until ms>`) or on a request header.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { startWorker, post, get, waitFor, uniqueName, ADMIN_KEY } from '../harness.mjs';

let w;
let EV;
before(async () => {
  // CONSUMER_STALL_MS: a consumer invocation lost to a panic's wasm reset is
  // failed (and its messages retried) after 10 s instead of 60 (src/js/entry.mjs).
  // APPLY_SLICE 10: a board applies a batch 10 members per turn, so a fault
  // below strikes after earlier slices of the same batch were committed.
  w = await startWorker({ vars: { PODIUM_TEST_FAULTS: '1', CONSUMER_STALL_MS: '10000', APPLY_SLICE: '10', REDRIVE_PAGE: '4' } });
  EV = `${w.url}/v1/events`;
});
after(async () => { await w?.stop(); });

const board = async (name) => (await get(`${w.url}/v1/boards/${name}`)).json;

/** Every member's score on a board, read through `top` pages. */
async function scores(name) {
  const out = new Map();
  for (let offset = 0; ; offset += 1000) {
    const r = await get(`${w.url}/v1/boards/${name}/top?limit=1000&offset=${offset}`);
    assert.equal(r.status, 200, r.text);
    for (const e of r.json.entries) out.set(e.member, e.score);
    if (r.json.entries.length < 1000) return out;
  }
}

/** Waits until the board's `events` counter reaches `n`, then checks it stays exact. */
async function waitEvents(name, n, timeout = 30_000) {
  await waitFor(async () => (await board(name))?.events >= n, { timeout, what: `${name} events >= ${n}` });
  assert.equal((await board(name)).events, n, `${name} applied exactly ${n} events`);
}

function events(boardName, n, { prefix = 'm', members = 50, ids = true, meta } = {}) {
  return Array.from({ length: n }, (_, i) => ({
    type: 'hit', board: boardName, member: `${prefix}${i % members}`,
    ...(ids ? { id: `${boardName}-${prefix}-${i}` } : {}),
    ...(meta ? { meta } : {}),
  }));
}

function expected(evs) {
  const m = new Map();
  for (const e of evs) m.set(e.member, (m.get(e.member) ?? 0) + (e.value ?? 1));
  return m;
}

describe('packed messages', () => {
  test('a request feeding several boards is packed, and every board applies each event exactly once', async () => {
    const boards = [uniqueName('pk'), uniqueName('pk'), uniqueName('pk')];
    const evs = boards.flatMap((b) => events(b, 300));
    const r = await post(EV, evs);
    assert.equal(r.status, 202, r.text);
    for (const b of boards) {
      await waitEvents(b, 300);
      assert.deepEqual(await scores(b), expected(evs.filter((e) => e.board === b)));
    }
    // The same request again (same ids): nothing changes.
    const again = await post(EV, evs);
    assert.equal(again.status, 202, again.text);
    const sentinel = uniqueName('pk');
    assert.equal((await post(EV, events(sentinel, 1))).status, 202);
    await waitEvents(sentinel, 1);
    for (const b of boards) assert.equal((await board(b)).events, 300);
  });

  test('a 1 MiB request, several Queue messages and more than one sendBatch, is applied whole', async () => {
    const b = uniqueName('big');
    const meta = { note: 'x'.repeat(900) };
    const evs = events(b, 1000, { members: 1000, meta });
    const body = JSON.stringify(evs);
    assert.ok(body.length > 900_000 && body.length <= 1024 * 1024, `body is ${body.length} bytes`);
    const r = await post(EV, body);
    assert.equal(r.status, 202, r.text);
    await waitEvents(b, 1000);
    assert.equal((await board(b)).members, 1000);
  });
});

describe('all-or-nothing requests', () => {
  test('a Queue that refuses part-way through a request loses nothing and counts nothing twice', async () => {
    const b = uniqueName('refuse');
    const evs = events(b, 1000, { members: 100, meta: { note: 'y'.repeat(900) } });
    // Every message after the first is refused once before the Queue takes it.
    const r = await post(EV, JSON.stringify(evs), { headers: { 'X-Podium-Test-Refuse': '1' } });
    assert.equal(r.status, 202, r.text);
    await waitEvents(b, 1000);
    assert.deepEqual(await scores(b), expected(evs));
  });

  test('a request refused part-way through its write enqueued nothing, so a retry without ids counts once', async () => {
    const b = uniqueName('intake');
    const evs = events(b, 1000, { members: 100, ids: false, meta: { note: 'z'.repeat(900) } });
    const body = JSON.stringify(evs);
    // The intake's transaction fails after two of its writes (two packed messages).
    const refused = await post(EV, body, { headers: { 'X-Podium-Test-Intake-Fail': '2' } });
    assert.equal(refused.status, 429, refused.text);
    assert.equal(refused.json.error.code, 'overloaded');
    assert.ok(refused.headers.get('retry-after'));
    const r = await post(EV, body);
    assert.equal(r.status, 202, r.text);
    await waitEvents(b, 1000);
    assert.deepEqual(await scores(b), expected(evs));
  });

  test('a request refused after its boards were marked created none and marked none; its retry does both', async () => {
    const fresh = uniqueName('fresh');
    const unscored = uniqueName('unscored');
    const made = await post(`${w.url}/v1/boards/${unscored}`, { title: 'No scores yet' }, { key: ADMIN_KEY, method: 'PUT' });
    assert.equal(made.status, 201, made.text);
    const evs = [
      { type: 'hit', board: fresh, member: 'a', value: 1 },
      { type: 'hit', board: unscored, member: 'a', value: 1 },
    ];
    // The intake's transaction fails at its first write: after the catalog
    // created one board and marked the other as holding scores.
    const refused = await post(EV, evs, { headers: { 'X-Podium-Test-Intake-Fail': '0' } });
    assert.equal(refused.status, 429, refused.text);
    const gone = await get(`${w.url}/v1/boards/${fresh}`);
    assert.equal(gone.status, 404, `the refused request left its new board: ${gone.text}`);
    const order = await post(`${w.url}/v1/boards/${unscored}`, { order: 'asc' }, { key: ADMIN_KEY, method: 'PUT' });
    assert.equal(order.status, 200, `the refused request left the board marked as holding scores: ${order.text}`);
    const r = await post(EV, evs);
    assert.equal(r.status, 202, r.text);
    await waitFor(async () => (await get(`${w.url}/v1/boards/${fresh}/members/a`)).json?.score === 1, { timeout: 20_000, what: 'the retry applied' });
    const fixed = await post(`${w.url}/v1/boards/${fresh}`, { order: 'asc' }, { key: ADMIN_KEY, method: 'PUT' });
    assert.equal(fixed.status, 409, `an accepted request marks its boards: ${fixed.text}`);
  });

  test('a repeated Idempotency-Key gets the first answer, with the same server-assigned ids, and counts once', async () => {
    const b = uniqueName('idem');
    const evs = events(b, 20, { ids: false });
    const key = `k-${b}`;
    const first = await post(EV, evs, { headers: { 'Idempotency-Key': key } });
    assert.equal(first.status, 202, first.text);
    const second = await post(EV, evs, { headers: { 'Idempotency-Key': key } });
    assert.equal(second.status, 202, second.text);
    assert.deepEqual(second.json, first.json);
    // Another key holder's same key is its own key.
    const other = await post(EV, evs.slice(0, 1), { key: ADMIN_KEY, headers: { 'Idempotency-Key': key } });
    assert.equal(other.status, 202, other.text);
    assert.notDeepEqual(other.json.ids, first.json.ids.slice(0, 1));
    await waitEvents(b, 21);
    // A key is any bytes, not only ASCII: UTF-8 sent as is (fetch writes a
    // header's code units as bytes), 128 bytes at most.
    const utf8 = (text) => Buffer.from(text).toString('latin1');
    const k1 = utf8(`ключ-${b}`);
    const u1 = await post(EV, evs.slice(0, 2), { headers: { 'Idempotency-Key': k1 } });
    assert.equal(u1.status, 202, u1.text);
    const u2 = await post(EV, evs.slice(0, 2), { headers: { 'Idempotency-Key': k1 } });
    assert.deepEqual(u2.json, u1.json, 'a repeated UTF-8 key gets the first answer');
    const u3 = await post(EV, evs.slice(0, 1), { headers: { 'Idempotency-Key': utf8(`клюк-${b}`) } });
    assert.equal(u3.status, 202, u3.text);
    assert.notDeepEqual(u3.json.ids, u1.json.ids.slice(0, 1), 'another UTF-8 key is another key');
    await waitEvents(b, 24);
    const long = await post(EV, evs, { headers: { 'Idempotency-Key': utf8('é'.repeat(65)) } });
    assert.equal(long.status, 400, `65 two-byte characters are 130 bytes: ${long.text}`);
    const bad = await post(EV, evs, { headers: { 'Idempotency-Key': 'x'.repeat(129) } });
    assert.equal(bad.status, 400, bad.text);
    assert.equal(bad.json.error.code, 'invalid_parameter');
  });
});

describe('atomic board applies', () => {
  // A panic resets the one wasm instance, which under wrangler dev also runs
  // the consumer: its invocation never settles, and the entry's guard
  // (src/js/entry.mjs) fails it after CONSUMER_STALL_MS so the Queue retries.
  const what = { fail: 'fails', txn: 'fails inside its transaction', panic: 'panics' };
  for (const kind of ['fail', 'txn', 'panic']) {
    test(`a board that ${what[kind]} after k of n events applies every event exactly once on the Queue's retry`, async () => {
      const b = uniqueName(kind);
      const other = uniqueName(`${kind}-ok`);
      const until = Date.now() + 2500;
      const evs = events(b, 200);
      // Event 120 of 200 carries the fault; the same request also feeds a healthy board.
      evs.splice(120, 0, { type: 'hit', board: b, member: `__fault:${kind}:${until}`, id: `${b}-fault` });
      const healthy = events(other, 100);
      const r = await post(EV, [...evs, ...healthy]);
      assert.equal(r.status, 202, r.text);
      await waitEvents(b, 201, 40_000);
      assert.deepEqual(await scores(b), expected(evs));
      // The healthy board's message was retried with the faulty one; its dedupe kept it exact.
      await waitEvents(other, 100);
      assert.deepEqual(await scores(other), expected(healthy));
    });
  }
});

describe('dead letters', () => {
  test('an event that exhausts its retries is listed with its reason, and re-driving it after the fault clears applies it once', async () => {
    const b = uniqueName('dl');
    const ok = uniqueName('dl-ok');
    // Fails every delivery for 45 s: longer than the Queue's 10 retries 2 s apart.
    const until = Date.now() + 45_000;
    const evs = events(b, 20);
    // First: the board applies 10 members per turn here (APPLY_SLICE), and
    // a failing turn ends the batch, so none of the 21 is ever applied. (A
    // fault in a later slice would leave the earlier slices applied, and
    // only the rest would become dead letters.)
    evs.unshift({ type: 'hit', board: b, member: `__fault:fail:${until}`, id: `${b}-fault` });
    evs[1].subscore = 2.5;
    const healthy = events(ok, 10);
    const r = await post(EV, [...evs, ...healthy]);
    assert.equal(r.status, 202, r.text);
    await waitEvents(ok, 10);

    const list = async () => (await get(`${w.url}/v1/dead-letters?limit=1000`, { key: ADMIN_KEY })).json;
    const mine = async () => (await list())?.dead_letters?.filter((d) => d.board === b) ?? [];
    await waitFor(async () => (await mine()).length === 21, { timeout: 60_000, interval: 500, what: 'dead letters for the failing board' });
    const letters = await mine();
    const one = letters.find((d) => d.event.id === `${b}-m-0`);
    assert.ok(one, 'the event is listed');
    assert.equal(one.event.member, 'm0');
    assert.equal(one.event.subscore, 2.5, 'the subscore is kept');
    assert.equal(letters.find((d) => d.event.id === `${b}-m-1`).event.subscore, undefined, 'none when it was 0');
    assert.equal(one.window, 'all');
    assert.equal(one.period, 'all');
    assert.match(one.reason, new RegExp(b));
    assert.equal(typeof one.failed_at, 'number');
    assert.equal(new Set(letters.map((d) => d.id)).size, 21, 'one id per (event, board period)');
    // Nothing from the healthy board: it applied its events.
    assert.equal((await list()).dead_letters.filter((d) => d.board === ok).length, 0);
    assert.equal((await get(`${w.url}/v1/dead-letters`)).status, 401);
    assert.equal((await board(b))?.events ?? 0, 0);

    // Re-drive after the fault has cleared: every event once. One by its
    // id, then `{}` (all) the other 20, which this worker goes through 4
    // letters a page (REDRIVE_PAGE): all of them, not just a first page.
    await waitFor(() => Date.now() > until + 500, { timeout: 60_000, interval: 500, what: 'the fault to clear' });
    const ids = letters.map((d) => d.id);
    const rd1 = await post(`${w.url}/v1/dead-letters/redrive`, { ids: [ids[0]] }, { key: ADMIN_KEY });
    assert.equal(rd1.status, 200, rd1.text);
    assert.equal(rd1.json.redriven, 1);
    assert.equal((await mine()).length, 20);
    const rd = await post(`${w.url}/v1/dead-letters/redrive`, {}, { key: ADMIN_KEY });
    assert.equal(rd.status, 200, rd.text);
    assert.ok(rd.json.redriven >= 20, rd.text);
    assert.equal((await mine()).length, 0, 'every letter of the board was re-driven');
    await waitEvents(b, 21);
    assert.deepEqual(await scores(b), expected(evs));
    assert.equal((await mine()).length, 0, 're-driven letters are gone');
    // A second re-drive of the same ids finds nothing and changes nothing.
    const again = await post(`${w.url}/v1/dead-letters/redrive`, { ids }, { key: ADMIN_KEY });
    assert.equal(again.json.redriven, 0);
    assert.equal((await board(b)).events, 21);

    const gone = await post(`${w.url}/v1/dead-letters/${ids[0]}`, undefined, { key: ADMIN_KEY, method: 'DELETE', contentType: null });
    assert.equal(gone.status, 404, gone.text);
    assert.equal(gone.json.error.code, 'dead_letter_not_found');
    const bad = await post(`${w.url}/v1/dead-letters/redrive`, { ids: 'x' }, { key: ADMIN_KEY });
    assert.equal(bad.status, 400, bad.text);
  });
});

describe('dedupe records', () => {
  test('are pruned once past the horizon: an id sent again after it counts again', async () => {
    // This worker's own horizon: 3 s instead of 8 days (DEDUPE_MS is read only with test faults on).
    const short = await startWorker({ vars: { PODIUM_TEST_FAULTS: '1', DEDUPE_MS: '3000' } });
    try {
      const b = uniqueName('prune');
      const ev = { type: 'hit', board: b, member: 'm', id: `${b}-once` };
      const score = async () => (await get(`${short.url}/v1/boards/${b}/members/m`)).json?.score;
      assert.equal((await post(`${short.url}/v1/events`, ev)).status, 202);
      await waitFor(async () => (await score()) === 1, { what: 'applied' });
      // Within the horizon a repeat changes nothing.
      const sentinel = { type: 'hit', board: b, member: 'sentinel', id: `${b}-s` };
      assert.equal((await post(`${short.url}/v1/events`, [ev, sentinel])).status, 202);
      await waitFor(async () => (await get(`${short.url}/v1/boards/${b}/members/sentinel`)).status === 200, { what: 'sentinel' });
      assert.equal(await score(), 1);
      // Past it, the board's alarm prunes the record; the same id then counts again.
      await waitFor(async () => {
        assert.equal((await post(`${short.url}/v1/events`, ev)).status, 202);
        return (await score()) >= 2;
      }, { timeout: 30_000, interval: 1000, what: 'the record pruned' });
    } finally {
      await short.stop();
    }
  });
});
