// Webhooks (API 1.1 "Outbound notifications"): /v1/hooks CRUD with a
// write-only secret; signed deliveries to a receiver on 127.0.0.1 started
// here; top_changed and overtaken coalesced per second; period_ended from
// the board's alarm with no traffic (the period end is injected: with test
// faults on, TEST_PERIOD_END_MS after a period's first event) and from a
// season; at-least-once delivery with retries while the receiver fails or
// is down, and the delivery log.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { createHmac } from 'node:crypto';
import { startWorker, post, get, admin, waitFor, uniqueName, ADMIN_KEY, INGEST_KEY } from '../harness.mjs';

const SECRET = 'whsec-0123456789abcdef';
let w;
let EV;
before(async () => {
  w = await startWorker({
    vars: { PODIUM_TEST_FAULTS: '1', TEST_PERIOD_END_MS: '4000', HOOK_RETRY_BASE_S: '1', ALLOW_HTTP_HOOKS: 'on' },
  });
  EV = `${w.url}/v1/events`;
});
after(async () => { await w?.stop(); });

const hookUrl = (n) => `${w.url}/v1/hooks/${n}`;

/**
 * A receiver on 127.0.0.1. `failFirst`: answers 503 to the first attempts
 * of each event id; `redirectFirst`: a 307 to /moved instead (which takes
 * anything, and keeps it in `moved`). Keeps every accepted delivery
 * (headers, raw body).
 */
async function receiver({ failFirst = 0, redirectFirst = 0 } = {}) {
  const r = { got: [], moved: [], attempts: new Map(), port: 0, server: null };
  const handler = (req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      if (req.url === '/moved') { r.moved.push(body); res.writeHead(204); res.end(); return; }
      const id = req.headers['podium-event-id'];
      const n = (r.attempts.get(id) || 0) + 1;
      r.attempts.set(id, n);
      if (n <= failFirst) { res.writeHead(503); res.end('not yet'); return; }
      if (n <= redirectFirst) { res.writeHead(307, { Location: '/moved' }); res.end(); return; }
      r.got.push({ headers: req.headers, body, json: JSON.parse(body) });
      res.writeHead(204); res.end();
    });
  };
  r.listen = (port = 0) => new Promise((resolve) => {
    r.server = http.createServer(handler);
    r.server.listen(port, '127.0.0.1', () => { r.port = r.server.address().port; resolve(); });
  });
  r.close = () => new Promise((resolve) => { r.server.closeAllConnections?.(); r.server.close(() => resolve()); });
  r.url = () => `http://127.0.0.1:${r.port}/hook`;
  r.of = (type, board) => r.got.filter((g) => g.json.type === type && (!board || g.json.board === board));
  await r.listen();
  return r;
}

function verified(g) {
  const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(g.headers['podium-signature'] || '');
  if (!m) return false;
  const want = createHmac('sha256', SECRET).update(`${m[1]}.${g.body}`).digest('hex');
  return want === m[2] && Math.abs(Date.now() / 1000 - Number(m[1])) < 300;
}

async function board(settings = {}) {
  const b = uniqueName('hk');
  assert.equal((await admin(`${w.url}/v1/boards/${b}`, 'PUT', settings)).status, 201);
  return b;
}

async function hook(name, body) {
  const r = await admin(hookUrl(name), 'PUT', { secret: SECRET, ...body });
  assert.equal(r.status, 201, r.text);
  return r;
}

async function send(b, events) {
  const r = await post(EV, events.map((e) => ({ type: 'hk', board: b, ...e })));
  assert.equal(r.status, 202, r.text);
}

describe('hooks', () => {
  test('PUT creates a hook (201) whose secret is never shown; GET, list, update, DELETE; bad bodies are 400; the admin key is needed', async () => {
    const n = uniqueName('h');
    let r = await admin(hookUrl(n), 'PUT', { url: 'https://example.com/podium', events: ['top_changed'] });
    assert.equal(r.status, 400, r.text);
    assert.equal(r.json.error.field, 'secret', 'a new hook needs a secret');
    r = await admin(hookUrl(n), 'PUT', { url: 'https://example.com/podium', events: ['top_changed', 'overtaken'], boards: ['likes'], top: 5, secret: SECRET });
    assert.equal(r.status, 201, r.text);
    assert.deepEqual(r.json, { name: n, url: 'https://example.com/podium', events: ['top_changed', 'overtaken'], top: 5, boards: ['likes'] });
    r = await admin(hookUrl(n), 'PUT', { url: 'https://example.com/v2', events: ['period_ended'] });
    assert.equal(r.status, 200, 'an update may leave the secret out: it is kept');
    assert.deepEqual([r.json.url, r.json.top, 'boards' in r.json], ['https://example.com/v2', 10, false]);
    const one = await get(hookUrl(n), { key: ADMIN_KEY });
    const all = await get(`${w.url}/v1/hooks`, { key: ADMIN_KEY });
    assert.equal(one.status, 200);
    assert.ok(all.json.hooks.some((h) => h.name === n));
    for (const t of [r.text, one.text, all.text]) assert.ok(!t.includes(SECRET), 'no answer carries the secret');
    for (const [body, field] of [
      [{ url: 'ftp://x', events: ['top_changed'] }, 'url'],
      [{ url: 'http://example.com/x', events: ['top_changed'] }, 'url'],
      [{ url: 'https://a.b', events: ['won'] }, 'events'],
      [{ url: 'https://a.b', events: ['top_changed'], top: 101 }, 'top'],
      [{ url: 'https://a.b', events: ['top_changed'], secret: 'short' }, 'secret'],
    ]) {
      const bad = await admin(hookUrl(n), 'PUT', body);
      assert.equal(bad.status, 400, `${JSON.stringify(body)}: ${bad.text}`);
      assert.equal(bad.json.error.field, field);
    }
    assert.equal((await get(hookUrl(n), { key: ADMIN_KEY })).json.url, 'https://example.com/v2', 'bad PUTs changed nothing');
    assert.equal((await get(hookUrl(n))).status, 401);
    assert.equal((await get(hookUrl(n), { key: INGEST_KEY })).status, 401);
    assert.equal((await admin(hookUrl(n), 'DELETE')).status, 204);
    const gone = await get(hookUrl(n), { key: ADMIN_KEY });
    assert.equal(gone.status, 404);
    assert.equal(gone.json.error.code, 'hook_not_found');
    assert.equal((await admin(hookUrl(n), 'DELETE')).status, 404);
  });

  test('top_changed and overtaken are signed, carry ids, and are coalesced to one look per second', async () => {
    const rx = await receiver();
    try {
      const b = await board();
      const n = uniqueName('h');
      await hook(n, { url: rx.url(), events: ['top_changed', 'overtaken'], boards: [b], top: 3 });
      await send(b, [{ member: 'a', value: 3 }, { member: 'b', value: 2 }, { member: 'c', value: 1 }]);
      const first = await waitFor(() => rx.of('top_changed', b)[0], { timeout: 10_000, what: 'first top_changed' });
      assert.ok(verified(first), 'the signature verifies with the secret');
      assert.equal(first.headers['podium-event-id'], first.json.id);
      assert.deepEqual(first.json.entries.map((e) => [e.rank, e.member, e.score]), [[1, 'a', 3], [2, 'b', 2], [3, 'c', 1]]);
      assert.deepEqual([first.json.entered.sort(), first.json.left], [['a', 'b', 'c'], []]);
      assert.deepEqual([first.json.board, first.json.window, first.json.period], [b, 'all', 'all']);
      // d jumps to first: one top_changed (d in, c out), and a, b, c overtaken by d
      await send(b, [{ member: 'd', value: 5 }, { member: 'd', value: 5 }]);
      const second = await waitFor(() => rx.of('top_changed', b)[1], { timeout: 10_000, what: 'second top_changed' });
      assert.deepEqual([second.json.entered, second.json.left], [['d'], ['c']]);
      const passed = await waitFor(() => rx.of('overtaken', b).length >= 3 && rx.of('overtaken', b), { timeout: 10_000, what: 'overtaken' });
      assert.deepEqual(passed.map((g) => [g.json.member, g.json.by, g.json.rank]).sort(), [['a', 'd', 2], ['b', 'd', 3], ['c', 'd', 4]]);
      assert.ok(passed.every(verified));
      // a score change that keeps the order is not a top change
      await send(b, [{ member: 'd', value: 1 }]);
      await waitFor(async () => (await get(`${w.url}/v1/boards/${b}/top`)).json.entries[0].score === 11, { what: 'applied' });
      await new Promise((r) => setTimeout(r, 2500));
      assert.equal(rx.of('top_changed', b).length, 2, 'still two top_changed');
      assert.equal(new Set(rx.got.map((g) => g.json.id)).size, rx.got.length, 'ids are unique');
      const log = await get(`${hookUrl(n)}/deliveries?limit=10`, { key: ADMIN_KEY });
      assert.equal(log.status, 200, log.text);
      assert.ok(log.json.deliveries.length >= 5);
      assert.ok(log.json.deliveries.every((d) => d.status === 'delivered' && d.attempts === 1), log.text);
      assert.ok(!log.text.includes(SECRET));
    } finally {
      await rx.close();
    }
  });

  /**
   * One event to a fresh board whose top_changed hook posts to a receiver
   * made with `opts`: the delivery it accepted, and the log's entry for it
   * once delivered.
   */
  async function oneDelivery(opts, what) {
    const rx = await receiver(opts);
    try {
      const b = await board();
      const n = uniqueName('h');
      await hook(n, { url: rx.url(), events: ['top_changed'], boards: [b] });
      await send(b, [{ member: 'solo', value: 1 }]);
      const got = await waitFor(() => rx.of('top_changed', b)[0], { timeout: 20_000, what });
      const logged = await waitFor(async () => {
        const l = await get(`${hookUrl(n)}/deliveries`, { key: ADMIN_KEY });
        return l.json?.deliveries?.find((d) => d.id === got.json.id && d.status === 'delivered');
      }, { what: 'log' });
      return { rx, b, got, logged };
    } finally {
      await rx.close();
    }
  }

  test('a receiver that fails the first two attempts gets the event once, on the third; the log says so', async () => {
    const { rx, b, got, logged } = await oneDelivery({ failFirst: 2 }, 'delivery after retries');
    assert.equal(rx.attempts.get(got.json.id), 3);
    assert.equal(rx.of('top_changed', b).length, 1);
    assert.deepEqual([logged.type, logged.board, logged.attempts], ['top_changed', b, 3]);
    assert.match(logged.last_error, /503/);
  });

  test('a redirect is not a 2xx: it is retried, never followed', async () => {
    const { rx, got, logged } = await oneDelivery({ redirectFirst: 1 }, 'delivery after the redirect');
    assert.equal(rx.attempts.get(got.json.id), 2);
    assert.deepEqual(rx.moved, [], 'the redirect was not followed');
    assert.equal(logged.attempts, 2);
    assert.match(logged.last_error, /307/);
  });

  test('a receiver down for a while is retried, then delivered to once it is back', async () => {
    const rx = await receiver();
    const port = rx.port;
    const b = await board();
    const n = uniqueName('h');
    await hook(n, { url: rx.url(), events: ['top_changed'], boards: [b] });
    await rx.close();
    await send(b, [{ member: 'x', value: 1 }]);
    await waitFor(async () => {
      const l = await get(`${hookUrl(n)}/deliveries`, { key: ADMIN_KEY });
      return l.json?.deliveries?.some((d) => d.status === 'failed' && d.attempts >= 2);
    }, { timeout: 20_000, what: 'failed attempts while down' });
    await rx.listen(port);
    try {
      const got = await waitFor(() => rx.of('top_changed', b)[0], { timeout: 30_000, what: 'delivery once back' });
      assert.deepEqual(got.json.entered, ['x']);
      assert.ok(verified(got));
    } finally {
      await rx.close();
    }
  });

  test('period_ended fires from the alarm with no traffic after the period end, and when a season is archived', async () => {
    const rx = await receiver();
    try {
      const b = await board({ windows: ['all', 'day'] });
      const n = uniqueName('h');
      await hook(n, { url: rx.url(), events: ['period_ended'], boards: [b], top: 2 });
      await send(b, [{ member: 'p', value: 7 }, { member: 'q', value: 9 }, { member: 'r', value: 1 }]);
      // The day period's end is injected 4 s after its first event; nothing is sent after.
      const ended = await waitFor(() => rx.of('period_ended', b).find((g) => g.json.window === 'day'), { timeout: 20_000, what: 'period_ended (day)' });
      assert.ok(verified(ended));
      assert.equal(ended.json.total, 3);
      assert.deepEqual(ended.json.entries.map((e) => e.member), ['q', 'p'], 'the hook\'s top 2');
      assert.match(ended.json.period, /^\d{4}-\d{2}-\d{2}$/);
      assert.equal(rx.of('period_ended', b).filter((g) => g.json.window === 'day').length, 1, 'told once');
      const s = await admin(`${w.url}/v1/boards/${b}/seasons`, 'POST');
      assert.equal(s.status, 200, s.text);
      const season = await waitFor(() => rx.of('period_ended', b).find((g) => g.json.window === 'all'), { timeout: 10_000, what: 'period_ended (season)' });
      assert.equal(season.json.period, 's1');
      assert.deepEqual([season.json.total, season.json.entries.map((e) => e.member)], [3, ['q', 'p']]);
    } finally {
      await rx.close();
    }
  });
});
