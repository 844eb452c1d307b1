// Abuse limits (issue 12 item 7): the per-key request rate, enforced with
// the platform's rate-limiting binding, here lowered to 20 requests per 10 s.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { startWorker, post, get, admin, waitFor, uniqueName } from '../harness.mjs';

let w;
before(async () => {
  w = await startWorker({
    toml: (t) => t.replace('simple = { limit = 3000, period = 10 }', 'simple = { limit = 20, period = 10 }'),
    vars: { LIVE_MAX_VIEWERS: '3', BOARD_MAX_MEMBERS: '5' },
  });
});
after(async () => { await w?.stop(); });

// (First: the full-board test below polls with the admin key, and this
// worker allows a key 20 requests per 10 s.)
test('an import past a board period\u2019s member cap is 409 and changes nothing: the board still takes new settings', async () => {
  const b = uniqueName('fullimp');
  const key = { key: 'dev-admin-key' };
  assert.equal((await admin(`${w.url}/v1/boards/${b}`, 'PUT', { order: 'desc' })).status, 201);
  const lines = Array.from({ length: 6 }, (_, i) => JSON.stringify({ member: `m${i}`, score: i })).join('\n');
  const r = await post(`${w.url}/v1/boards/${b}/import`, lines, { ...key, contentType: 'application/x-ndjson' });
  assert.equal(r.status, 409, r.text);
  assert.equal((await get(`${w.url}/v1/boards/${b}/top`)).json.total, 0);
  const again = await admin(`${w.url}/v1/boards/${b}`, 'PUT', { order: 'asc' });
  assert.equal(again.status, 200, `the board holds no scores, so its order may change: ${again.text}`);
});

test('a key over the rate gets 429 rate_limited with Retry-After, and its refused requests enqueue nothing', async () => {
  const b = uniqueName('rate');
  // 60 at once, so they fall within one or two of the limiter's 10 s
  // windows whatever the machine's load: at most 40 get through.
  const answers = await Promise.all(Array.from({ length: 60 }, (_, i) =>
    post(`${w.url}/v1/events`, { type: 'hit', board: b, member: 'm', id: `${b}-${i}` })));
  const ok = answers.filter((r) => r.status === 202);
  const limited = answers.filter((r) => r.status === 429);
  assert.equal(ok.length + limited.length, 60, answers.map((r) => r.status).join(','));
  assert.ok(limited.length >= 20, `${limited.length} of 60 limited`);
  assert.equal(limited[0].json.error.code, 'rate_limited');
  assert.ok(Number(limited[0].headers.get('retry-after')) > 0);
  // Another key has its own allowance; reads are not limited.
  const other = await post(`${w.url}/v1/events`, { type: 'hit', board: b, member: 'other', id: `${b}-other` }, { key: 'dev-ingest-key-2' });
  assert.equal(other.status, 202, other.text);
  for (let i = 0; i < 30; i++) assert.equal((await get(`${w.url}/v1/boards/${b}/top`)).status === 429, false);
  await waitFor(async () => (await get(`${w.url}/v1/boards/${b}`)).json?.events >= ok.length + 1, { timeout: 10_000 });
  // A sentinel sent after everything (with the other key, which has room): once
  // it is visible, every earlier message has been delivered.
  const s = uniqueName('sentinel');
  assert.equal((await post(`${w.url}/v1/events`, { type: 'hit', board: s, member: 'x' }, { key: 'dev-ingest-key-2' })).status, 202);
  await waitFor(async () => (await get(`${w.url}/v1/boards/${s}/members/x`)).status === 200, { timeout: 10_000 });
  assert.equal((await get(`${w.url}/v1/boards/${b}`)).json.events, ok.length + 1, 'only accepted requests were applied');
});

test('a live hub takes at most LIVE_MAX_VIEWERS sockets; one more is refused with 429 overloaded', async () => {
  const b = uniqueName('cap');
  assert.equal((await admin(`${w.url}/v1/boards/${b}`, 'PUT', {})).status, 201);
  const url = `${w.url.replace('http', 'ws')}/v1/boards/${b}/live`;
  const open = () => new Promise((resolve) => {
    const ws = new WebSocket(url);
    ws.once('message', () => resolve({ ws, status: 101 }));
    ws.once('unexpected-response', (_req, res) => {
      let text = '';
      res.on('data', (d) => { text += d; });
      res.on('end', () => resolve({ status: res.statusCode, text, retryAfter: res.headers['retry-after'] }));
    });
    ws.once('error', () => {});
  });
  const viewers = [];
  for (let i = 0; i < 3; i++) viewers.push(await open());
  assert.deepEqual(viewers.map((v) => v.status), [101, 101, 101]);
  const refused = await open();
  assert.equal(refused.status, 429, refused.text);
  assert.equal(JSON.parse(refused.text).error.code, 'overloaded');
  assert.ok(Number(refused.retryAfter) > 0);
  for (const v of viewers) v.ws.close();
  // Once viewers leave, a new one gets in.
  await waitFor(async () => { const v = await open(); v.ws?.close(); return v.status === 101; }, { timeout: 15_000, interval: 500, what: 'a free place' });
});

test('an event for a new member of a full board is not applied but kept as a dead letter with its reason', async () => {
  const b = uniqueName('full');
  const key = { key: 'dev-admin-key' };
  const evs = Array.from({ length: 8 }, (_, i) => ({ type: 'hit', board: b, member: `m${i}`, id: `${b}-${i}` }));
  assert.equal((await post(`${w.url}/v1/events`, evs, key)).status, 202);
  const letters = async () => ((await get(`${w.url}/v1/dead-letters?limit=1000`, key)).json?.dead_letters ?? []).filter((d) => d.board === b);
  // Polled once a second: this worker allows a key 20 requests per 10 s.
  await waitFor(async () => (await letters()).length === 3, { timeout: 20_000, interval: 1000, what: 'three dead letters' });
  const top = (await get(`${w.url}/v1/boards/${b}/top?limit=100`)).json;
  assert.equal(top.total, 5);
  assert.deepEqual(top.entries.map((e) => e.member).sort(), ['m0', 'm1', 'm2', 'm3', 'm4']);
  const l = await letters();
  assert.deepEqual(l.map((d) => d.event.member).sort(), ['m5', 'm6', 'm7']);
  assert.match(l[0].reason, /full/);
  // Members already on the board still count.
  assert.equal((await post(`${w.url}/v1/events`, { type: 'hit', board: b, member: 'm0', id: `${b}-again` }, key)).status, 202);
  await waitFor(async () => (await get(`${w.url}/v1/boards/${b}/members/m0`)).json?.score === 2, { timeout: 10_000 });
  assert.equal((await get(`${w.url}/v1/boards/${b}`)).json.events, 6);
});
