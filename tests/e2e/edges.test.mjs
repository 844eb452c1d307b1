// Edges of the contract: boundaries, byte order, time zones, month boundary, preflight, windowed live, no 5xx for client mistakes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import http from 'node:http';
import { startWorker, post, get, admin, waitFor, uniqueName, drain } from '../harness.mjs';

let w;
let EV;
before(async () => { w = await startWorker(); EV = `${w.url}/v1/events`; });
after(async () => { await w?.stop(); });

const DAY = 86_400_000;
const topOf = async (b, qs = '') => (await get(`${w.url}/v1/boards/${b}/top${qs ? `?${qs}` : ''}`)).json;
function assertError(r, status, code, extra = {}) {
  assert.equal(r.status, status, `expected ${status} ${code}, got ${r.status} ${r.text}`);
  assert.equal(r.json?.error?.code, code, r.text);
  for (const [k, v] of Object.entries(extra)) assert.deepEqual(r.json.error[k], v, `error.${k} in ${r.text}`);
}

test('meta of exactly 1024 bytes as JSON is accepted and 1025 bytes is rejected', async () => {
  const meta = (n) => ({ n: 'x'.repeat(n - JSON.stringify({ n: '' }).length) });
  assert.equal(JSON.stringify(meta(1024)).length, 1024);
  const ok = await post(EV, { type: 'like', member: 'a', board: uniqueName(), meta: meta(1024) });
  assert.equal(ok.status, 202, ok.text);
  assertError(await post(EV, { type: 'like', member: 'a', board: uniqueName(), meta: meta(1025) }), 400, 'invalid_event', { field: 'meta' });
});

test('an id of exactly 128 bytes is accepted and echoed', async () => {
  const id = 'é'.repeat(64);
  const r = await post(EV, { type: 'like', member: 'a', board: uniqueName(), id });
  assert.equal(r.status, 202, r.text);
  assert.deepEqual(r.json.ids, [id]);
});

test('NDJSON with CRLF line endings is accepted', async () => {
  const b = uniqueName();
  const body = `${JSON.stringify({ type: 'like', member: 'a', board: b })}\r\n${JSON.stringify({ type: 'like', member: 'b', board: b })}\r\n`;
  const r = await post(EV, body, { contentType: 'application/x-ndjson' });
  assert.equal(r.status, 202, r.text);
  assert.equal(r.json.accepted, 2);
});

test('a JSON body that is neither an object nor an array is a 400, not a 5xx', async () => {
  for (const body of ['5', '"like"', 'null', '[5]', '[[]]']) {
    const r = await post(EV, body);
    assert.equal(r.status, 400, `${body}: ${r.status} ${r.text}`);
    assert.equal(typeof r.json?.error?.code, 'string');
  }
});

test('members with equal scores reached at the same time are ordered by member id in byte order', async () => {
  const b = uniqueName();
  const ts = Date.now() - 60_000;
  // Byte order: "B" < "a" < "z" < "é" (C3 A9) < "～" (EF BD 9E) < "😀" (F0 9F 98 80).
  // (UTF-16 order would put "😀" (D83D) before "～" (FF5E).)
  const members = ['😀', 'z', '～', 'a', 'é', 'B'];
  const r = await post(EV, members.map((member) => ({ type: 's', board: b, member, value: 5, ts })));
  assert.equal(r.status, 202, r.text);
  await waitFor(async () => (await topOf(b))?.total === 6, { timeout: 3000 });
  const t = await topOf(b);
  assert.deepEqual(t.entries.map((e) => e.member), ['B', 'a', 'z', 'é', '～', '😀']);
  assert.ok(t.entries.every((e) => e.rank === 1), 'shared rank 1');
});

test('an RFC 3339 ts with an offset is placed in the right UTC day', async () => {
  const b = uniqueName();
  assert.equal((await admin(`${w.url}/v1/boards/${b}`, 'PUT', { windows: ['day', 'all'] })).status, 201);
  const midnight = Math.floor(Date.now() / DAY) * DAY;
  const y = new Date(midnight - DAY).toISOString().slice(0, 10);
  // 01:30 at +02:00 on "today" is 23:30 UTC yesterday.
  const today = new Date(midnight).toISOString().slice(0, 10);
  const r = await post(EV, { type: 's', board: b, member: 'tz', value: 3, ts: `${today}T01:30:00+02:00` });
  assert.equal(r.status, 202, r.text);
  await waitFor(async () => (await topOf(b, 'window=all'))?.total === 1, { timeout: 3000 });
  await drain(w.url, uniqueName('sentinel'));
  const yd = await topOf(b, `window=day&period=${y}`);
  assert.deepEqual(yd.entries.map((e) => [e.member, e.score]), [['tz', 3]], `in ${y}`);
  assert.equal((await topOf(b, 'window=day')).total, 0, 'not in today');
});

test('the month window splits at the first of the month (UTC) and past months are readable', async () => {
  const b = uniqueName();
  assert.equal((await admin(`${w.url}/v1/boards/${b}`, 'PUT', { windows: ['month', 'day'] })).status, 201);
  const now = new Date();
  const monthStart = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1);
  const prevKey = new Date(monthStart - 1).toISOString().slice(0, 7);
  const curKey = new Date(monthStart).toISOString().slice(0, 7);
  const r = await post(EV, [
    { type: 's', board: b, member: 'dave', value: 3, ts: monthStart - 60_000 },
    { type: 's', board: b, member: 'dave', value: 4, ts: Math.min(monthStart + 60_000, Date.now()) },
    { type: 's', board: b, member: 'eve', value: 1, ts: monthStart - 1 },
  ]);
  assert.equal(r.status, 202, r.text);
  await waitFor(async () => (await topOf(b, `window=month&period=${prevKey}`))?.total === 2, { timeout: 3000 });
  await drain(w.url, uniqueName('sentinel'));
  const prev = await topOf(b, `window=month&period=${prevKey}`);
  assert.deepEqual(prev.entries.map((e) => [e.member, e.score]), [['dave', 3], ['eve', 1]]);
  const cur = await topOf(b);
  assert.equal(cur.window, 'month');
  assert.equal(cur.period, curKey);
  assert.deepEqual(cur.entries.map((e) => [e.member, e.score]), [['dave', 4]]);
  // Listed counts are what the board reported, at most about a second behind.
  const listed = await waitFor(async () => (await get(`${w.url}/v1/boards?prefix=${b}`)).json.boards.find((x) => x.name === b && x.members === 1), { timeout: 5000, what: 'the listed member count' });
  assert.equal(listed.members, 1, 'members counts the first window kept (month), current period');
});

test('a route\'s fixed value is checked against the target board\'s min/max (400 value_out_of_range)', async () => {
  const b = uniqueName();
  const type = uniqueName('t');
  assert.equal((await admin(`${w.url}/v1/boards/${b}`, 'PUT', { max: 5 })).status, 201);
  assert.ok([200, 201].includes((await admin(`${w.url}/v1/routes/${type}`, 'PUT', { targets: [{ board: b, value: 10 }] })).status));
  assertError(await post(EV, { type, member: 'a', value: 1 }), 400, 'value_out_of_range', { field: 'value', index: 0 });
});

test('PUT board with min above max is 400', async () => {
  const r = await admin(`${w.url}/v1/boards/${uniqueName()}`, 'PUT', { min: 10, max: 5 });
  assert.equal(r.status, 400, r.text);
});

test('changing ties after scores exist is allowed and takes effect on reads', async () => {
  const b = uniqueName();
  assert.equal((await admin(`${w.url}/v1/boards/${b}`, 'PUT', { ties: 'shared' })).status, 201);
  await post(EV, [{ type: 's', board: b, member: 'p', value: 2, ts: Date.now() - 5000 }, { type: 's', board: b, member: 'q', value: 2 }]);
  await waitFor(async () => (await topOf(b))?.total === 2, { timeout: 3000 });
  assert.deepEqual((await topOf(b)).entries.map((e) => e.rank), [1, 1]);
  const r = await admin(`${w.url}/v1/boards/${b}`, 'PUT', { ties: 'first' });
  assert.equal(r.status, 200, r.text);
  await waitFor(async () => JSON.stringify((await topOf(b)).entries.map((e) => e.rank)) === '[1,2]', { timeout: 5000, what: 'ties: first' });
  assert.equal((await get(`${w.url}/v1/boards/${b}/members/q`)).json.rank, 2);
});

test('a CORS preflight answers 204 with the allowed methods and headers', async () => {
  const r = await get(`${w.url}/v1/events`, { method: 'OPTIONS', headers: { Origin: 'https://example.com', 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'authorization,content-type' } });
  assert.equal(r.status, 204);
  assert.equal(r.headers.get('access-control-allow-origin'), '*');
  assert.match(r.headers.get('access-control-allow-methods') ?? '', /POST/);
  assert.match((r.headers.get('access-control-allow-headers') ?? '').toLowerCase(), /authorization/);
  assert.match((r.headers.get('access-control-allow-headers') ?? '').toLowerCase(), /content-type/);
  // a header of the client's own, such as a request id, is allowed too
  const extra = await get(`${w.url}/v1/events`, { method: 'OPTIONS', headers: { Origin: 'https://example.com', 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'authorization,content-type,x-request-id' } });
  assert.equal(extra.status, 204);
  assert.match((extra.headers.get('access-control-allow-headers') ?? '').toLowerCase(), /x-request-id/);
  const none = await get(`${w.url}/v1/boards`, { method: 'OPTIONS', headers: { Origin: 'https://example.com', 'Access-Control-Request-Method': 'GET' } });
  assert.equal(none.status, 204);
  assert.match((none.headers.get('access-control-allow-headers') ?? '').toLowerCase(), /authorization/);
});

test('HEAD on a read answers like GET without a body', async () => {
  const r = await get(`${w.url}/v1/health`, { method: 'HEAD' });
  assert.equal(r.status, 200);
  assert.equal(r.text, '');
});

test('malformed paths are 404s or 400s, never 5xx', async () => {
  // A broken percent-escape, or bytes that are not UTF-8: malformed, 400.
  for (const p of ['/v1/boards/%zz/top', '/v1/boards/%FF/top', '/v1/routes/%FF', '/v1/boards/b/members/a%ZZ']) {
    const r = await get(`${w.url}${p}`);
    assert.equal(r.status, 400, `${p}: ${r.text}`);
    assert.equal(r.json?.error?.code, 'invalid_parameter');
  }
  assert.equal((await get(`${w.url}/v1/nothing-here`)).status, 404);
  // Names that break the naming rules can never exist: 400 naming the field.
  for (const [p, field] of [['/v1/boards/b/members/%01', 'member'], [`/v1/boards/${'x'.repeat(65)}/top`, 'board'], ['/v1/boards/UPPER/top', 'board']]) {
    const bad = await get(`${w.url}${p}`);
    assert.equal(bad.status, 400, `${p}: ${bad.status} ${bad.text}`);
    assert.equal(bad.json?.error?.code, 'invalid_parameter', p);
    assert.equal(bad.json?.error?.field, field, p);
  }
});

test('a body over 1 MiB sent without Content-Length (chunked) is 413', async () => {
  // The worker answers as soon as the body passes the limit; the client may
  // still be writing then (an EPIPE after the answer is expected).
  const u = new URL(EV);
  const r = await new Promise((resolve, reject) => {
    let answered = false;
    const req = http.request({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: 'Bearer dev-ingest-key', 'Transfer-Encoding': 'chunked' } }, (res) => {
      answered = true;
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { text += d; });
      res.on('end', () => resolve({ status: res.statusCode, text }));
    });
    req.on('error', (e) => { if (!answered) reject(e); });
    req.write('{"type":"like","member":"a","board":"x","meta":{"p":"');
    const chunk = 'x'.repeat(64 * 1024);
    for (let i = 0; i < 17; i++) req.write(chunk);
    req.end('"}}');
  });
  assert.equal(r.status, 413, r.text);
  assert.equal(JSON.parse(r.text).error.code, 'payload_too_large');
});

test('a live socket on a windowed board follows the requested window\'s current period', async () => {
  const b = uniqueName();
  assert.equal((await admin(`${w.url}/v1/boards/${b}`, 'PUT', { windows: ['all', 'day'] })).status, 201);
  await post(EV, [
    { type: 's', board: b, member: 'old', value: 9, ts: Math.floor(Date.now() / DAY) * DAY - 60_000 },
    { type: 's', board: b, member: 'new', value: 1 },
  ]);
  await waitFor(async () => (await topOf(b, 'window=all'))?.total === 2, { timeout: 3000 });
  const ws = new WebSocket(`${w.url.replace('http', 'ws')}/v1/boards/${b}/live?window=day`);
  try {
    const msg = await new Promise((resolve, reject) => {
      ws.once('message', (d) => resolve(JSON.parse(d.toString())));
      ws.once('error', reject);
      setTimeout(() => reject(new Error('no snapshot in 3 s')), 3000);
    });
    assert.equal(msg.type, 'snapshot');
    assert.equal(msg.window, 'day');
    assert.equal(msg.period, new Date().toISOString().slice(0, 10));
    assert.equal(msg.total, 1);
    assert.deepEqual(msg.entries.map((e) => e.member), ['new']);
  } finally {
    ws.terminate();
  }
});

test('a live socket to a board with no scores yet gets an empty snapshot with the default limit', async () => {
  const b = uniqueName();
  assert.equal((await admin(`${w.url}/v1/boards/${b}`, 'PUT', {})).status, 201);
  const ws = new WebSocket(`${w.url.replace('http', 'ws')}/v1/boards/${b}/live`);
  const msgs = [];
  ws.on('message', (d) => msgs.push(JSON.parse(d.toString())));
  try {
    await waitFor(() => msgs.length >= 1, { timeout: 3000 });
    assert.deepEqual(msgs[0], { type: 'snapshot', board: b, window: 'all', period: 'all', total: 0, entries: [] });
    await post(EV, Array.from({ length: 12 }, (_, i) => ({ type: 's', board: b, member: `u${i}`, value: i })));
    const upd = await waitFor(() => msgs.find((m) => m.type === 'update' && m.total === 12), { timeout: 3000 });
    assert.equal(upd.entries.length, 10, 'default limit 10');
  } finally {
    ws.terminate();
  }
});

test('an event naming a board that its type\'s route also feeds is applied there once', async () => {
  const b = uniqueName();
  const type = uniqueName('t');
  assert.ok([200, 201].includes((await admin(`${w.url}/v1/routes/${type}`, 'PUT', { targets: [{ board: b }] })).status));
  assert.equal((await post(EV, { type, board: b, member: 'once', value: 3 })).status, 202);
  await waitFor(async () => (await topOf(b))?.total === 1, { timeout: 3000 });
  await drain(w.url, uniqueName('sentinel'));
  assert.equal((await get(`${w.url}/v1/boards/${b}/members/once`)).json.score, 3);
});

test('an old event (years ago) still counts in the `all` window', async () => {
  const b = uniqueName();
  const r = await post(EV, { type: 's', board: b, member: 'vintage', value: 4, ts: Date.now() - 3 * 365 * DAY });
  assert.equal(r.status, 202, r.text);
  await waitFor(async () => (await topOf(b))?.entries?.[0]?.score === 4, { timeout: 3000 });
});
