// Hostile input, table-driven (issue 12 item 8): every case answers its
// documented 4xx with a JSON error.code, never a 5xx, and the boards are
// unchanged afterwards. Messages never echo more than a short, escaped
// excerpt of the input.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startWorker, post, get, admin, waitFor, uniqueName, drain, ADMIN_KEY, INGEST_KEY } from '../harness.mjs';

let w;
let B; // a board with scores that nothing below may change
let T; // an event type routed to it
before(async () => {
  w = await startWorker();
  B = uniqueName('host');
  T = uniqueName('host-type');
  assert.equal((await admin(`${w.url}/v1/boards/${B}`, 'PUT', { min: -100, max: 100 })).status, 201);
  assert.ok([200, 201].includes((await admin(`${w.url}/v1/routes/${T}`, 'PUT', { targets: [{ board: B }] })).status));
  assert.equal((await post(`${w.url}/v1/events`, [{ type: T, member: 'alice', value: 5 }, { type: T, member: 'bob', value: 3 }])).status, 202);
  await waitFor(async () => (await get(`${w.url}/v1/boards/${B}/top`)).json?.total === 2, { timeout: 5000 });
});
after(async () => { await w?.stop(); });

const json = (v) => JSON.stringify(v);
const ev = (extra = {}) => ({ type: 'like', member: 'm', board: 'host-never', ...extra });
const big = (n) => 'x'.repeat(n);
const ING = { key: INGEST_KEY };
const ADM = { key: ADMIN_KEY };

/** Raw HTTP, for what fetch will not send: any method, a lying Content-Length, raw bytes. */
function raw(method, path, { headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const u = new URL(path, w.url);
    const req = http.request({ host: u.hostname, port: u.port, path: u.pathname + u.search, method, headers }, (res) => {
      let data = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { data += d; });
      res.on('end', () => {
        let j;
        try { j = JSON.parse(data); } catch { j = undefined; }
        resolve({ status: res.statusCode, headers: res.headers, text: data, json: j });
      });
    });
    req.on('error', reject);
    req.setTimeout(8000, () => { req.destroy(new Error('no answer in 8 s')); });
    if (body !== undefined) req.write(body);
    req.end();
  });
}

// [name, request thunk, status, code]
const cases = [];
const add = (name, fn, status, code) => cases.push({ name, fn, status, code });
const E = (body, opts = {}) => () => post(`${w.url}/v1/events`, typeof body === 'function' ? body() : body, { ...ING, ...opts });

// Malformed, truncated and deeply nested JSON.
add('truncated array', E('[{"type":"like","member":"m"'), 400, 'invalid_json');
add('truncated object', E('{"type":"like",'), 400, 'invalid_json');
add('trailing garbage', E('{"type":"like","member":"m","board":"b"} x'), 400, 'invalid_json');
add('single quotes', E("{'type':'like'}"), 400, 'invalid_json');
add('deeply nested array', E('['.repeat(5000) + ']'.repeat(5000)), 400, 'invalid_event');
add('deeply nested meta', E(`{"type":"like","member":"m","board":"b","meta":${'{"a":'.repeat(200)}1${'}'.repeat(200)}}`), 400, 'invalid_event');
add('empty body', E(''), 400, 'invalid_json');
add('empty array', E('[]'), 400, 'empty_batch');
add('NDJSON with a broken line', E(`${json(ev())}\n{"type":`, { contentType: 'application/x-ndjson' }), 400, 'invalid_json');
// Duplicate keys.
add('duplicate key in an event', E('{"type":"like","member":"m","board":"b","value":1,"value":1e9}'), 400, 'invalid_event');
add('duplicate key in meta', E('{"type":"like","member":"m","board":"b","meta":{"n":1,"n":2}}'), 400, 'invalid_event');
add('duplicate key in a board body', () => post(`${w.url}/v1/boards/${B}`, '{"order":"asc","order":"desc"}', { ...ADM, method: 'PUT' }), 400, 'invalid_json');
add('a board body of only whitespace', () => post(`${w.url}/v1/boards/${B}`, ' \n', { ...ADM, method: 'PUT' }), 400, 'invalid_json');
add('duplicate key in a route body', () => post(`${w.url}/v1/routes/${T}`, '{"targets":[{"board":"x"}],"targets":[]}', { ...ADM, method: 'PUT' }), 400, 'invalid_json');
add('duplicate key in a lookup body', () => post(`${w.url}/v1/boards/${B}/lookup`, '{"members":["a"],"members":["b"]}', { key: null }), 400, 'invalid_json');
// NaN, Infinity, huge numbers.
add('NaN value', E('{"type":"like","member":"m","board":"b","value":NaN}'), 400, 'invalid_json');
add('Infinity value', E('{"type":"like","member":"m","board":"b","value":Infinity}'), 400, 'invalid_json');
add('1e999 value', E('{"type":"like","member":"m","board":"b","value":1e999}'), 400, 'invalid_event');
add('value over 1e15', E(json(ev({ value: 2e15 }))), 400, 'invalid_event');
add('value out of the board\'s bounds', E(() => json({ type: T, member: 'm', value: 1000 })), 400, 'value_out_of_range');
add('string value', E(json(ev({ value: '5' }))), 400, 'invalid_event');
add('ts an hour ahead', E(json(ev({ ts: Date.now() + 3_600_000 }))), 400, 'invalid_event');
add('ts as nonsense text', E(json(ev({ ts: 'yesterday' }))), 400, 'invalid_event');
// Invalid UTF-8, control and bidi characters.
add('invalid UTF-8 in JSON', E(Buffer.from([0x7b, 0x22, 0x74, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d])), 400, 'invalid_json');
add('invalid UTF-8 in NDJSON', E(Buffer.from([0xc3, 0x28, 0x0a]), { contentType: 'application/x-ndjson' }), 400, 'invalid_json');
add('control character in a member', E(json(ev({ member: 'a\u0001b' }))), 400, 'invalid_event');
add('NUL in a member', E(json(ev({ member: 'a\u0000' }))), 400, 'invalid_event');
add('member over 128 bytes', E(json(ev({ member: 'é'.repeat(65) }))), 400, 'invalid_event');
add('empty member', E(json(ev({ member: '' }))), 400, 'invalid_event');
add('upper-case board', E(json(ev({ board: 'Likes' }))), 400, 'invalid_event');
add('bidi override in a board', E(json(ev({ board: 'a\u202eb' }))), 400, 'invalid_event');
add('type with a slash', E(json(ev({ type: 'a/b' }))), 400, 'invalid_event');
add('id over 128 bytes', E(json(ev({ id: big(129) }))), 400, 'invalid_event');
add('meta not an object', E(json(ev({ meta: [1, 2] }))), 400, 'invalid_event');
add('meta over 1 KiB', E(json(ev({ meta: { n: big(1100) } }))), 400, 'invalid_event');
add('unknown field', E(json(ev({ colour: 'red' }))), 400, 'unknown_field');
add('unroutable type', E(json({ type: 'never-routed-type', member: 'm' })), 422, 'unroutable_event');
// Sizes: 1001 events; one byte over each body limit, with and without Content-Length.
// (Under wrangler dev the local proxy holds a request until its whole body
// has arrived, so a declared size whose body never comes gets no answer
// locally; the worker itself answers 413 from Content-Length before reading.)
add('1001 events', E(json(Array.from({ length: 1001 }, () => ev()))), 400, 'too_many_events');
add('ingest 1 byte over 1 MiB, declared', () => raw('POST', '/v1/events', { headers: { Authorization: `Bearer ${INGEST_KEY}`, 'Content-Type': 'application/json', 'Content-Length': String(1024 * 1024 + 1) }, body: big(1024 * 1024 + 1) }), 413, 'payload_too_large');
add('ingest 1 byte over 1 MiB, chunked', () => raw('POST', '/v1/events', { headers: { Authorization: `Bearer ${INGEST_KEY}`, 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' }, body: `"${big(1024 * 1024 - 1)}"` }), 413, 'payload_too_large');
add('board body 1 byte over 64 KiB, declared', () => raw('PUT', `/v1/boards/${B}`, { headers: { Authorization: `Bearer ${ADMIN_KEY}`, 'Content-Type': 'application/json', 'Content-Length': String(64 * 1024 + 1) }, body: big(64 * 1024 + 1) }), 413, 'payload_too_large');
add('board body 1 byte over 64 KiB, chunked', () => raw('PUT', `/v1/boards/${B}`, { headers: { Authorization: `Bearer ${ADMIN_KEY}`, 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' }, body: `{"title":"${big(64 * 1024 - 11)}"}` }), 413, 'payload_too_large');
add('route body 1 byte over 64 KiB, chunked', () => raw('PUT', `/v1/routes/${T}`, { headers: { Authorization: `Bearer ${ADMIN_KEY}`, 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' }, body: big(64 * 1024 + 1) }), 413, 'payload_too_large');
add('lookup body 1 byte over 64 KiB, declared', () => raw('POST', `/v1/boards/${B}/lookup`, { headers: { 'Content-Type': 'application/json', 'Content-Length': String(64 * 1024 + 1) }, body: big(64 * 1024 + 1) }), 413, 'payload_too_large');
add('lookup body 1 byte over 64 KiB, chunked', () => raw('POST', `/v1/boards/${B}/lookup`, { headers: { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' }, body: big(64 * 1024 + 1) }), 413, 'payload_too_large');
add('redrive body over 64 KiB, chunked', () => raw('POST', '/v1/dead-letters/redrive', { headers: { Authorization: `Bearer ${ADMIN_KEY}`, 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' }, body: big(64 * 1024 + 1) }), 413, 'payload_too_large');
add('lookup of 101 members', () => post(`${w.url}/v1/boards/${B}/lookup`, { members: Array.from({ length: 101 }, (_, i) => `m${i}`) }, { key: null }), 400, 'invalid_body');
// Content types.
add('text/plain ingest', E(json(ev()), { contentType: 'text/plain' }), 415, 'unsupported_media_type');
add('no content type', E(json(ev()), { contentType: null }), 415, 'unsupported_media_type');
add('form-encoded ingest', E('type=like&member=m', { contentType: 'application/x-www-form-urlencoded' }), 415, 'unsupported_media_type');
// Every other body is JSON: a body that says it is something else is a 415.
add('text/plain board body', () => post(`${w.url}/v1/boards/${B}`, json({ title: 'changed' }), { ...ADM, method: 'PUT', contentType: 'text/plain' }), 415, 'unsupported_media_type');
add('form-encoded route body', () => post(`${w.url}/v1/routes/${T}`, 'targets=x', { ...ADM, method: 'PUT', contentType: 'application/x-www-form-urlencoded' }), 415, 'unsupported_media_type');
add('XML hook body', () => post(`${w.url}/v1/hooks/host-hook`, '<hook/>', { ...ADM, method: 'PUT', contentType: 'application/xml' }), 415, 'unsupported_media_type');
add('text/plain lookup', () => post(`${w.url}/v1/boards/${B}/lookup`, json({ members: ['alice'] }), { key: null, contentType: 'text/plain' }), 415, 'unsupported_media_type');
add('text/plain redrive', () => post(`${w.url}/v1/dead-letters/redrive`, '{}', { ...ADM, contentType: 'text/plain' }), 415, 'unsupported_media_type');
// Endpoints that read no body still have its limit (and do nothing past it).
const over = (method, path) => () => raw(method, typeof path === 'function' ? path() : path, { headers: { Authorization: `Bearer ${ADMIN_KEY}`, 'Content-Type': 'application/json', 'Content-Length': String(64 * 1024 + 1) }, body: big(64 * 1024 + 1) });
add('DELETE board with a body over 64 KiB', over('DELETE', () => `/v1/boards/${B}`), 413, 'payload_too_large');
add('DELETE route with a body over 64 KiB', over('DELETE', () => `/v1/routes/${T}`), 413, 'payload_too_large');
add('new season with a body over 64 KiB', over('POST', () => `/v1/boards/${B}/seasons`), 413, 'payload_too_large');
add('hiding a member with a body over 64 KiB', over('PUT', () => `/v1/boards/${B}/members/alice/hidden`), 413, 'payload_too_large');
// Keys: missing, wrong and other-role keys on every write endpoint.
const writes = [
  ['POST', '/v1/events', json(ev())],
  ['PUT', () => `/v1/boards/${B}`, '{}'],
  ['DELETE', () => `/v1/boards/${B}`, undefined],
  ['PUT', () => `/v1/routes/${T}`, json({ targets: [{ board: B }] })],
  ['DELETE', () => `/v1/routes/${T}`, undefined],
  ['GET', '/v1/dead-letters', undefined],
  ['POST', '/v1/dead-letters/redrive', '{}'],
  ['DELETE', '/v1/dead-letters/00000000000000000000000000000000', undefined],
];
for (const [method, path, body] of writes) {
  const p = () => (typeof path === 'function' ? path() : path);
  add(`${method} ${typeof path === 'string' ? path : 'board/route'} without a key`, () => post(`${w.url}${p()}`, body, { key: null, method }), 401, 'unauthorized');
  add(`${method} ${typeof path === 'string' ? path : 'board/route'} with a wrong key`, () => post(`${w.url}${p()}`, body, { key: 'nope', method }), 401, 'unauthorized');
  if (method !== 'POST' || p() !== '/v1/events') {
    add(`${method} ${typeof path === 'string' ? path : 'board/route'} with an ingest key`, () => post(`${w.url}${p()}`, body, { key: INGEST_KEY, method }), 401, 'unauthorized');
  }
}
add('a Basic authorization header', E(json(ev()), { key: null, headers: { Authorization: 'Basic ZGV2LWluZ2VzdC1rZXk6' } }), 401, 'unauthorized');
// Hostile names in paths.
for (const [label, seg] of [['%2F', 'a%2Fb'], ['%00', 'a%00b'], ['200 bytes', big(200)], ['upper case', 'Likes'], ['unicode', 'caf%C3%A9'], ['bidi', '%E2%80%AEab'], ['a space', 'a%20b']]) {
  add(`board name with ${label} in a read path`, () => get(`${w.url}/v1/boards/${seg}/top`), 400, 'invalid_parameter');
}
add('member id with NUL in a path', () => get(`${w.url}/v1/boards/${B}/members/a%00b`), 400, 'invalid_parameter');
add('member id of 129 bytes in a path', () => get(`${w.url}/v1/boards/${B}/members/${big(129)}`), 400, 'invalid_parameter');
add('an unknown but valid member', () => get(`${w.url}/v1/boards/${B}/members/nobody`), 404, 'member_not_found');
add('an unknown but valid board', () => get(`${w.url}/v1/boards/no-such-board/top`), 404, 'board_not_found');
add('event type with %2F in a route path', () => get(`${w.url}/v1/routes/a%2Fb`), 400, 'invalid_parameter');
// Query parameters.
for (const [q, field] of [['limit=1001', 'limit'], ['limit=0', 'limit'], ['limit=-1', 'limit'], ['limit=2.5', 'limit'], ['limit=1e3', 'limit'], ['limit=99999999999999999999', 'limit'], ['limit=', 'limit'], ['offset=', 'offset'], ['offset=-1', 'offset'], ['offset=0.5', 'offset'], ['window=year', 'window'], ['window=day', 'window'], ['period=2026-13', 'period'], ['period=all', undefined]]) {
  if (field === undefined) continue; // period=all on the all window is valid
  add(`top?${q}`, () => get(`${w.url}/v1/boards/${B}/top?${q}`), 400, 'invalid_parameter');
}
add('board list with an empty limit', () => get(`${w.url}/v1/boards?limit=`), 400, 'invalid_parameter');
add('dead-letter list with an empty limit', () => get(`${w.url}/v1/dead-letters?limit=`, ADM), 400, 'invalid_parameter');
add('around radius=0', () => get(`${w.url}/v1/boards/${B}/members/alice/around?radius=0`), 400, 'invalid_parameter');
add('around radius=101', () => get(`${w.url}/v1/boards/${B}/members/alice/around?radius=101`), 400, 'invalid_parameter');
add('around radius=-5', () => get(`${w.url}/v1/boards/${B}/members/alice/around?radius=-5`), 400, 'invalid_parameter');
add('Idempotency-Key of 129 bytes', E(json(ev()), { headers: { 'Idempotency-Key': big(129) } }), 400, 'invalid_parameter');
// Wrong methods on every route; unknown methods are 405 with Allow.
const routes = [
  ['/v1/health', 'POST'], ['/v1/events', 'GET'], ['/v1/events', 'PUT'], ['/v1/routes', 'POST'], ['/v1/boards', 'DELETE'],
  [() => `/v1/boards/${B}`, 'POST'], [() => `/v1/boards/${B}/top`, 'POST'], [() => `/v1/boards/${B}/members/alice`, 'PUT'],
  [() => `/v1/boards/${B}/members/alice/around`, 'DELETE'], [() => `/v1/boards/${B}/lookup`, 'GET'], [() => `/v1/boards/${B}/live`, 'POST'],
  ['/v1/dead-letters', 'POST'], ['/v1/dead-letters/redrive', 'GET'], [() => `/v1/routes/${T}`, 'POST'],
  [() => `/v1/boards/${B}`, 'PROPFIND'], [() => `/v1/boards/${B}/top`, 'MKCOL'], ['/v1/events', 'LOCK'], [() => `/v1/boards/${B}`, 'PATCH'],
];
for (const [path, method] of routes) {
  add(`${method} ${typeof path === 'string' ? path : 'board path'}`, async () => {
    const r = await raw(method, typeof path === 'function' ? path() : path, { headers: { Authorization: `Bearer ${ADMIN_KEY}` } });
    assert.ok(r.headers.allow, `${method}: Allow header in ${JSON.stringify(r.headers)}`);
    return r;
  }, 405, 'method_not_allowed');
}
// Bad WebSocket upgrades.
add('live without an upgrade', () => get(`${w.url}/v1/boards/${B}/live`), 426, 'upgrade_required');
const WS = { Upgrade: 'websocket', Connection: 'Upgrade', 'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Version': '13' };
add('live with limit=101', () => raw('GET', `/v1/boards/${B}/live?limit=101`, { headers: WS }), 400, 'invalid_parameter');
add('live with a period', () => raw('GET', `/v1/boards/${B}/live?period=all`, { headers: WS }), 400, 'invalid_parameter');
add('live on an unknown board', () => raw('GET', '/v1/boards/no-such-board/live', { headers: WS }), 404, 'board_not_found');
add('live with a bad board name', () => raw('GET', '/v1/boards/Bad%20Name/live', { headers: WS }), 400, 'invalid_parameter');

test(`${cases.length} hostile requests each get their documented 4xx with a JSON error code, and change nothing`, async () => {
  assert.ok(cases.length >= 70, `${cases.length} cases`);
  const before = await get(`${w.url}/v1/boards/${B}/top`);
  const boardBefore = (await get(`${w.url}/v1/boards/${B}`)).json;
  const failures = [];
  for (const c of cases) {
    let r;
    try {
      r = await c.fn();
    } catch (e) {
      failures.push(`${c.name}: ${e.message}`);
      continue;
    }
    const problems = [];
    if (r.status !== c.status) problems.push(`status ${r.status}, want ${c.status}`);
    if (r.status >= 500) problems.push('a 5xx');
    if (r.json?.error?.code !== c.code) problems.push(`code ${r.json?.error?.code}, want ${c.code}`);
    const msg = r.json?.error?.message ?? '';
    if (typeof msg !== 'string' || msg.length > 300) problems.push(`message of ${msg.length} chars`);
    if (/[\u0000\u202e]/.test(msg)) problems.push('message echoes a control or bidi character');
    if (problems.length) failures.push(`${c.name}: ${problems.join('; ')} (${(r.text ?? '').slice(0, 200)})`);
  }
  assert.deepEqual(failures, [], `\n${failures.join('\n')}`);
  // Nothing changed: the board and its route are as they were.
  await drain(w.url, uniqueName('sentinel'));
  assert.deepEqual((await get(`${w.url}/v1/boards/${B}/top`)).json, before.json);
  assert.equal((await get(`${w.url}/v1/boards/${B}`)).json.events, 2);
  assert.deepEqual((await get(`${w.url}/v1/routes/${T}`)).json.targets, [{ board: B }]);
  const board = (await get(`${w.url}/v1/boards/${B}`)).json;
  assert.deepEqual([board.title, board.season], [boardBefore.title, boardBefore.season], 'no title set, no season started');
  assert.notEqual(board.title, 'changed');
  assert.equal((await get(`${w.url}/v1/hooks/host-hook`, { key: ADMIN_KEY })).status, 404, 'no hook was made');
  assert.equal((await get(`${w.url}/v1/boards/host-never/top`)).status, 404, 'no board was created by a refused event');
});
