// POST /v1/events: formats, ids, latency, validation, auth, limits, all-or-nothing, dedupe.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { startWorker, post, get, waitFor, uniqueName, drain, ADMIN_KEY, INGEST_KEY } from '../harness.mjs';

let w;
let EV;
before(async () => { w = await startWorker(); EV = `${w.url}/v1/events`; });
after(async () => { await w?.stop(); });

const scoreOf = async (board, member) => {
  const r = await get(`${w.url}/v1/boards/${board}/members/${encodeURIComponent(member)}`);
  return r.status === 200 ? r.json.score : undefined;
};
const waitScore = (board, member, score, timeout = 3000) =>
  waitFor(async () => (await scoreOf(board, member)) === score, { timeout, what: `${board}/${member} = ${score}` });

function assertError(r, status, code, extra = {}) {
  assert.equal(r.status, status, `expected ${status} ${code}, got ${r.status} ${r.text}`);
  assert.match(r.headers.get('content-type') ?? '', /application\/json/);
  assert.ok(r.json?.error, `error body: ${r.text}`);
  assert.equal(r.json.error.code, code, r.text);
  assert.equal(typeof r.json.error.message, 'string');
  for (const [k, v] of Object.entries(extra)) assert.deepEqual(r.json.error[k], v, `error.${k} in ${r.text}`);
}

describe('accepted bodies', () => {
  test('a single event object is accepted with a server-assigned id and is ranked', async () => {
    const board = uniqueName();
    const r = await post(EV, { type: 'like', member: 'alice', board, value: 3 });
    assert.equal(r.status, 202, r.text);
    assert.equal(r.json.accepted, 1);
    assert.equal(r.json.ids.length, 1);
    assert.equal(typeof r.json.ids[0], 'string');
    assert.ok(r.json.ids[0].length >= 1 && Buffer.byteLength(r.json.ids[0]) <= 128);
    await waitScore(board, 'alice', 3);
  });

  test('a JSON array is accepted, given ids are echoed in order and missing ones are assigned distinctly', async () => {
    const board = uniqueName();
    const r = await post(EV, [
      { type: 'like', member: 'a', board, id: 'given-1' },
      { type: 'like', member: 'b', board },
      { type: 'like', member: 'c', board, id: 'given-3' },
      { type: 'like', member: 'd', board },
    ]);
    assert.equal(r.status, 202, r.text);
    assert.equal(r.json.accepted, 4);
    assert.equal(r.json.ids[0], 'given-1');
    assert.equal(r.json.ids[2], 'given-3');
    assert.equal(typeof r.json.ids[1], 'string');
    assert.equal(typeof r.json.ids[3], 'string');
    assert.equal(new Set(r.json.ids).size, 4, 'ids are distinct');
    await waitFor(async () => (await get(`${w.url}/v1/boards/${board}/top`)).json?.total === 4, { timeout: 3000 });
  });

  test('an NDJSON body is accepted, one event per line, blank lines ignored', async () => {
    const board = uniqueName();
    const body = [
      JSON.stringify({ type: 'like', member: 'x', board, value: 2 }),
      '',
      JSON.stringify({ type: 'like', member: 'y', board, value: 5, id: 'nd-2' }),
      JSON.stringify({ type: 'like', member: 'x', board, value: 4 }),
    ].join('\n') + '\n';
    const r = await post(EV, body, { contentType: 'application/x-ndjson' });
    assert.equal(r.status, 202, r.text);
    assert.equal(r.json.accepted, 3);
    assert.equal(r.json.ids[1], 'nd-2');
    await waitScore(board, 'x', 6);
    await waitScore(board, 'y', 5);
  });

  test('the admin key may also ingest', async () => {
    const board = uniqueName();
    const r = await post(EV, { type: 'like', member: 'adm', board }, { key: ADMIN_KEY });
    assert.equal(r.status, 202, r.text);
    await waitScore(board, 'adm', 1);
  });

  test('the second ingest key works too', async () => {
    const r = await post(EV, { type: 'like', member: 'k2', board: uniqueName() }, { key: 'dev-ingest-key-2' });
    assert.equal(r.status, 202, r.text);
  });

  test('accepted events are ranked within 2 seconds', async () => {
    const times = [];
    for (let i = 0; i < 3; i++) {
      const board = uniqueName();
      const t0 = Date.now();
      const r = await post(EV, { type: 'like', member: `fast-${i}`, board, value: 7 });
      assert.equal(r.status, 202, r.text);
      await waitFor(async () => (await scoreOf(board, `fast-${i}`)) === 7, { timeout: 2000, interval: 25, what: 'event visible within 2 s' });
      times.push(Date.now() - t0);
    }
    for (const t of times) assert.ok(t < 2000, `latency ${t} ms`);
  });

  test('value defaults to 1, meta is kept as the member\'s latest metadata and ts accepts RFC 3339', async () => {
    const board = uniqueName();
    const r = await post(EV, [
      { type: 'like', member: 'm', board, meta: { name: 'Old' }, ts: new Date(Date.now() - 10_000).toISOString() },
      { type: 'like', member: 'm', board, meta: { name: 'Alice <b>' }, ts: Date.now() - 5000 },
    ]);
    assert.equal(r.status, 202, r.text);
    await waitScore(board, 'm', 2);
    const m = await get(`${w.url}/v1/boards/${board}/members/m`);
    assert.deepEqual(m.json.meta, { name: 'Alice <b>' });
  });

  test('an empty meta object clears the member\'s metadata', async () => {
    const board = uniqueName();
    assert.equal((await post(EV, { type: 'like', member: 'm', board, meta: { name: 'Alice' } })).status, 202);
    await waitScore(board, 'm', 1);
    assert.equal((await post(EV, { type: 'like', member: 'm', board, meta: {} })).status, 202);
    await waitScore(board, 'm', 2);
    const m = await get(`${w.url}/v1/boards/${board}/members/m`);
    assert.equal('meta' in m.json, false, m.text);
    const top = await get(`${w.url}/v1/boards/${board}/top`);
    assert.equal('meta' in top.json.entries[0], false, top.text);
  });
});

describe('validation', () => {
  const board = 'valid-board';
  const ok = (extra = {}) => ({ type: 'like', member: 'ok', board, ...extra });

  const cases = [
    ['an unknown field', { ...ok(), colour: 'red' }, 'unknown_field', 'colour'],
    ['a missing type', { member: 'a', board }, 'invalid_event', 'type'],
    ['a type with capitals', ok({ type: 'Like' }), 'invalid_event', 'type'],
    ['a type starting with a dot', ok({ type: '.like' }), 'invalid_event', 'type'],
    ['a type of 65 characters', ok({ type: 'a'.repeat(65) }), 'invalid_event', 'type'],
    ['a non-string type', ok({ type: 5 }), 'invalid_event', 'type'],
    ['a missing member', { type: 'like', board }, 'invalid_event', 'member'],
    ['an empty member', ok({ member: '' }), 'invalid_event', 'member'],
    ['a member of 129 bytes (65 two-byte characters)', ok({ member: 'é'.repeat(65) }), 'invalid_event', 'member'],
    ['a member with a control character', ok({ member: 'a\u0001b' }), 'invalid_event', 'member'],
    ['a member with a newline', ok({ member: 'a\nb' }), 'invalid_event', 'member'],
    ['a non-string member', ok({ member: 42 }), 'invalid_event', 'member'],
    ['a string value', ok({ value: '5' }), 'invalid_event', 'value'],
    ['a null value', ok({ value: null }), 'invalid_event', 'value'],
    ['a value above 1e15', ok({ value: 1.5e15 }), 'invalid_event', 'value'],
    ['a value below -1e15', ok({ value: -2e15 }), 'invalid_event', 'value'],
    ['a board with capitals', ok({ board: 'Bad' }), 'invalid_event', 'board'],
    ['a board with a space', ok({ board: 'a b' }), 'invalid_event', 'board'],
    ['a board of 65 characters', ok({ board: 'b'.repeat(65) }), 'invalid_event', 'board'],
    ['an empty id', ok({ id: '' }), 'invalid_event', 'id'],
    ['an id of 129 bytes', ok({ id: 'i'.repeat(129) }), 'invalid_event', 'id'],
    ['a numeric id', ok({ id: 7 }), 'invalid_event', 'id'],
    ['a ts that is garbage text', ok({ ts: 'yesterday at noon' }), 'invalid_event', 'ts'],
    ['a ts before 1970 (RFC 3339)', ok({ ts: '1969-12-31T23:59:59Z' }), 'invalid_event', 'ts'],
    ['a ts more than 5 minutes ahead (ms)', ok({ ts: Date.now() + 10 * 60_000 }), 'invalid_event', 'ts'],
    ['a ts more than 5 minutes ahead (RFC 3339)', ok({ ts: new Date(Date.now() + 10 * 60_000).toISOString() }), 'invalid_event', 'ts'],
    ['a fractional ts', ok({ ts: 1700000000000.5 }), 'invalid_event', 'ts'],
    ['a boolean ts', ok({ ts: true }), 'invalid_event', 'ts'],
    ['a string meta', ok({ meta: 'Alice' }), 'invalid_event', 'meta'],
    ['an array meta', ok({ meta: ['Alice'] }), 'invalid_event', 'meta'],
    ['a meta over 1 KiB', ok({ meta: { name: 'x'.repeat(1100) } }), 'invalid_event', 'meta'],
  ];
  for (const [what, bad, code, field] of cases) {
    test(`an event with ${what} is rejected with 400 ${code} naming field ${field} and its index`, async () => {
      const r = await post(EV, [ok({ member: 'first' }), ok({ member: 'second' }), bad]);
      assertError(r, 400, code, { field, index: 2 });
    });
  }

  // Texts JSON can write but no double or string holds: still that event's field error.
  for (const [what, raw, field] of [
    ['a value too large for a double (1e400)', '"value":1e400', 'value'],
    ['a value too small for a double (-1e999)', '"value":-1e999', 'value'],
    ['a ts of 1e400', '"ts":1e400', 'ts'],
    ['a member with a lone surrogate escape', '"member":"\\ud800"', 'member'],
  ]) {
    test(`an event with ${what} is rejected with 400 invalid_event naming field ${field} and its index`, async () => {
      const good = JSON.stringify(ok({ member: 'first' }));
      const bad = `{"type":"like","board":"${board}",${raw.startsWith('"member"') ? '' : '"member":"x",'}${raw}}`;
      const r = await post(EV, `[${good},${bad}]`);
      assertError(r, 400, 'invalid_event', { field, index: 1 });
    });
  }

  test('a single bad object is rejected with 400 naming its field', async () => {
    const r = await post(EV, ok({ value: 'lots' }));
    assertError(r, 400, 'invalid_event', { field: 'value' });
  });

  test('a value of exactly 1e15 and a ts of exactly now + 4 minutes are accepted', async () => {
    const r = await post(EV, [ok({ value: 1e15 }), ok({ value: -1e15 }), ok({ ts: Date.now() + 4 * 60_000 })]);
    assert.equal(r.status, 202, r.text);
  });

  test('a member of 128 bytes with markup is accepted', async () => {
    const r = await post(EV, ok({ member: '<script>alert(1)</script>' + 'é'.repeat(51) + 'x' }));
    assert.equal(Buffer.byteLength('<script>alert(1)</script>' + 'é'.repeat(51) + 'x'), 128);
    assert.equal(r.status, 202, r.text);
  });

  test('a body that is not JSON is rejected with 400 invalid_json', async () => {
    assertError(await post(EV, '{"type": "like", '), 400, 'invalid_json');
  });

  test('a bad NDJSON line is rejected with 400 invalid_json and its index', async () => {
    const body = `${JSON.stringify(ok())}\n{nope\n${JSON.stringify(ok())}\n`;
    assertError(await post(EV, body, { contentType: 'application/x-ndjson' }), 400, 'invalid_json', { index: 1 });
  });

  test('an NDJSON event with a bad field names its line index', async () => {
    const body = `${JSON.stringify(ok())}\n${JSON.stringify(ok())}\n${JSON.stringify(ok({ member: '' }))}\n`;
    assertError(await post(EV, body, { contentType: 'application/x-ndjson' }), 400, 'invalid_event', { index: 2, field: 'member' });
  });

  test('an empty array is rejected with 400 empty_batch', async () => {
    assertError(await post(EV, []), 400, 'empty_batch');
  });

  test('an empty NDJSON body is rejected with 400 empty_batch', async () => {
    assertError(await post(EV, '\n\n', { contentType: 'application/x-ndjson' }), 400, 'empty_batch');
  });

  test('1001 events are rejected with 400 too_many_events and 1000 are accepted', async () => {
    const many = (n) => Array.from({ length: n }, (_, i) => ok({ member: `m${i}`, board: 'many-board' }));
    assertError(await post(EV, many(1001)), 400, 'too_many_events');
    const nd = many(1001).map((e) => JSON.stringify(e)).join('\n');
    assertError(await post(EV, nd, { contentType: 'application/x-ndjson' }), 400, 'too_many_events');
    const r = await post(EV, many(1000));
    assert.equal(r.status, 202, r.text);
    assert.equal(r.json.accepted, 1000);
    assert.equal(r.json.ids.length, 1000);
  });
});

describe('auth, size, content type, routing', () => {
  test('no key is 401', async () => {
    const r = await post(EV, { type: 'like', member: 'a', board: 'x' }, { key: null });
    assertError(r, 401, 'unauthorized');
  });
  test('a wrong key is 401', async () => {
    assertError(await post(EV, { type: 'like', member: 'a', board: 'x' }, { key: 'nope' }), 401, 'unauthorized');
  });
  test('a non-Bearer Authorization header is 401', async () => {
    const r = await post(EV, { type: 'like', member: 'a', board: 'x' }, { key: null, headers: { Authorization: `Basic ${INGEST_KEY}` } });
    assertError(r, 401, 'unauthorized');
  });
  test('an ingest key cannot change boards or routes (401)', async () => {
    assertError(await post(`${w.url}/v1/boards/${uniqueName()}`, { title: 't' }, { method: 'PUT' }), 401, 'unauthorized');
    assertError(await post(`${w.url}/v1/routes/like`, { targets: [{ board: 'x' }] }, { method: 'PUT' }), 401, 'unauthorized');
    assertError(await post(`${w.url}/v1/routes/like`, undefined, { method: 'DELETE', contentType: null }), 401, 'unauthorized');
    assertError(await post(`${w.url}/v1/boards/x`, undefined, { method: 'DELETE', contentType: null }), 401, 'unauthorized');
  });
  test('every board and route write without a key or with a wrong key is 401 and changes nothing', async () => {
    const b = uniqueName('guarded');
    const t = uniqueName('guarded');
    for (const key of [null, 'wrong-key']) {
      assertError(await post(`${w.url}/v1/boards/${b}`, { title: 't' }, { method: 'PUT', key }), 401, 'unauthorized');
      assertError(await post(`${w.url}/v1/boards/${b}`, undefined, { method: 'DELETE', contentType: null, key }), 401, 'unauthorized');
      assertError(await post(`${w.url}/v1/routes/${t}`, { targets: [{ board: b }] }, { method: 'PUT', key }), 401, 'unauthorized');
      assertError(await post(`${w.url}/v1/routes/${t}`, undefined, { method: 'DELETE', contentType: null, key }), 401, 'unauthorized');
    }
    assert.equal((await get(`${w.url}/v1/boards/${b}`)).status, 404);
    assert.equal((await get(`${w.url}/v1/routes`)).json.routes[t], undefined);
  });
  test('a body over 1 MiB is 413', async () => {
    const r = await post(EV, JSON.stringify({ type: 'like', member: 'a', board: 'x', meta: { pad: 'x'.repeat(1024 * 1024 + 10) } }));
    assertError(r, 413, 'payload_too_large');
  });
  test('text/plain is 415', async () => {
    const r = await post(EV, JSON.stringify({ type: 'like', member: 'a', board: 'x' }), { contentType: 'text/plain' });
    assertError(r, 415, 'unsupported_media_type');
  });
  test('no content type is 415', async () => {
    const r = await post(EV, JSON.stringify({ type: 'like', member: 'a', board: 'x' }), { contentType: null });
    assertError(r, 415, 'unsupported_media_type');
  });
  test('application/json with a charset is accepted', async () => {
    const r = await post(EV, { type: 'like', member: 'a', board: uniqueName() }, { contentType: 'application/json; charset=utf-8' });
    assert.equal(r.status, 202, r.text);
  });
  test('an event with no board and no route for its type is 422 unroutable_event with its index', async () => {
    const r = await post(EV, [{ type: 'like', member: 'a', board: 'somewhere' }, { type: uniqueName('noroute'), member: 'a' }]);
    assertError(r, 422, 'unroutable_event', { index: 1 });
  });
});

describe('all or nothing', () => {
  test('rejected requests enqueue nothing, not even their valid events', async () => {
    const fresh = () => uniqueName('reject');
    const boards = [];
    const valid = (b) => ({ type: 'like', member: 'victim', board: b, value: 5 });
    const tries = [];
    const send = async (label, make, opts, expected) => {
      const b = fresh();
      boards.push([label, b]);
      const r = await post(EV, make(b), opts);
      tries.push([label, r.status, expected]);
      assert.equal(r.status, expected, `${label}: ${r.text}`);
    };
    await send('invalid event at index 1', (b) => [valid(b), { ...valid(b), value: 'x' }], {}, 400);
    await send('unknown field at index 2', (b) => [valid(b), valid(b), { ...valid(b), extra: 1 }], {}, 400);
    await send('unroutable at index 1', (b) => [valid(b), { type: uniqueName('noroute'), member: 'q' }], {}, 422);
    await send('bad NDJSON line', (b) => `${JSON.stringify(valid(b))}\nnot json\n`, { contentType: 'application/x-ndjson' }, 400);
    await send('1001 events', (b) => Array.from({ length: 1001 }, () => valid(b)), {}, 400);
    await send('over 1 MiB of valid events', (b) => Array.from({ length: 900 }, (_, i) => ({
      ...valid(b), member: `m${i}-${'é'.repeat(60)}`, id: `${i}-${'i'.repeat(120)}`, meta: { pad: 'p'.repeat(990) },
    })), {}, 413);
    await send('no key', (b) => [valid(b)], { key: null }, 401);
    await send('wrong key', (b) => [valid(b)], { key: 'wrong' }, 401);
    await send('text/plain', (b) => JSON.stringify([valid(b)]), { contentType: 'text/plain' }, 415);
    // A later accepted event: once it is visible, the queue has delivered what came before it.
    await drain(w.url, uniqueName('sentinel'));
    await drain(w.url, uniqueName('sentinel'));
    for (const [label, b] of boards) {
      const r = await get(`${w.url}/v1/boards/${b}/top`);
      const empty = r.status === 404 || (r.status === 200 && r.json.total === 0);
      assert.ok(empty, `${label}: board ${b} should be absent or empty, got ${r.status} ${r.text}`);
    }
  });
});

describe('dedupe', () => {
  test('the same id sent twice in separate requests counts once', async () => {
    const board = uniqueName();
    const e = { type: 'like', member: 'dup', board, value: 5, id: 'dup-1' };
    assert.equal((await post(EV, e)).status, 202);
    await waitScore(board, 'dup', 5);
    const again = await post(EV, e);
    assert.equal(again.status, 202, again.text);
    assert.deepEqual(again.json.ids, ['dup-1']);
    await post(EV, { type: 'like', member: 'after', board, value: 1 });
    await waitScore(board, 'after', 1);
    await drain(w.url, uniqueName('sentinel'));
    assert.equal(await scoreOf(board, 'dup'), 5);
  });

  test('the same id twice within one batch counts once', async () => {
    const board = uniqueName();
    const r = await post(EV, [
      { type: 'like', member: 'twin', board, value: 5, id: 'twin-1' },
      { type: 'like', member: 'twin', board, value: 5, id: 'twin-1' },
      { type: 'like', member: 'other', board, value: 1, id: 'twin-2' },
    ]);
    assert.equal(r.status, 202, r.text);
    await waitScore(board, 'other', 1);
    await drain(w.url, uniqueName('sentinel'));
    assert.equal(await scoreOf(board, 'twin'), 5);
  });

  test('the same id on two different boards is applied on each', async () => {
    const b1 = uniqueName();
    const b2 = uniqueName();
    await post(EV, { type: 'like', member: 'z', board: b1, value: 2, id: 'shared-id' });
    await post(EV, { type: 'like', member: 'z', board: b2, value: 3, id: 'shared-id' });
    await waitScore(b1, 'z', 2);
    await waitScore(b2, 'z', 3);
  });
});
