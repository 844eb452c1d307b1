// Public reads: top, member standing, around, lookup, errors, ties, CORS, methods, health.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { startWorker, post, get, waitFor, uniqueName } from '../harness.mjs';

let w;
let EV;
const B = uniqueName('reads');      // x:30, c:20 (reached first), b:20, a:10
const AR = uniqueName('around');    // m01..m20 with scores 1..20
const T0 = Date.now() - 120_000;

function assertError(r, status, code, extra = {}) {
  assert.equal(r.status, status, `expected ${status} ${code}, got ${r.status} ${r.text}`);
  assert.equal(r.json?.error?.code, code, r.text);
  for (const [k, v] of Object.entries(extra)) assert.deepEqual(r.json.error[k], v, `error.${k} in ${r.text}`);
}
const strip = (entries) => entries.map(({ rank, member, score }) => ({ rank, member, score }));

before(async () => {
  w = await startWorker();
  EV = `${w.url}/v1/events`;
  // c reaches 20 before b does (earlier request and earlier ts); b < c in byte order,
  // so only the "reached first" rule puts c first.
  let r = await post(EV, [
    { type: 'score', board: B, member: 'x', value: 30, ts: T0, meta: { name: 'Xavier' } },
    { type: 'score', board: B, member: 'c', value: 20, ts: T0 + 1000 },
    { type: 'score', board: B, member: 'a', value: 10, ts: T0 + 1500 },
  ]);
  assert.equal(r.status, 202, r.text);
  await waitFor(async () => (await get(`${w.url}/v1/boards/${B}/top`)).json?.total === 3, { timeout: 5000 });
  r = await post(EV, [
    { type: 'score', board: B, member: 'b', value: 15, ts: T0 + 2000 },
    { type: 'score', board: B, member: 'b', value: 5, ts: T0 + 3000 },
  ]);
  assert.equal(r.status, 202, r.text);
  const events = Array.from({ length: 20 }, (_, i) => ({ type: 'score', board: AR, member: `m${String(i + 1).padStart(2, '0')}`, value: i + 1 }));
  assert.equal((await post(EV, events)).status, 202);
  await waitFor(async () => (await get(`${w.url}/v1/boards/${B}/members/b`)).json?.score === 20, { timeout: 5000 });
  await waitFor(async () => (await get(`${w.url}/v1/boards/${AR}/top`)).json?.total === 20, { timeout: 5000 });
});
after(async () => { await w?.stop(); });

describe('top', () => {
  test('top lists every member best first with shared ranks 1, 2, 2, 4 and tie order by who reached the score first', async () => {
    const r = await get(`${w.url}/v1/boards/${B}/top`);
    assert.equal(r.status, 200, r.text);
    assert.match(r.headers.get('content-type'), /application\/json/);
    assert.equal(r.json.board, B);
    assert.equal(r.json.window, 'all');
    assert.equal(r.json.period, 'all');
    assert.equal(r.json.total, 4);
    assert.deepEqual(strip(r.json.entries), [
      { rank: 1, member: 'x', score: 30 },
      { rank: 2, member: 'c', score: 20 },
      { rank: 2, member: 'b', score: 20 },
      { rank: 4, member: 'a', score: 10 },
    ]);
  });

  test('entries carry meta only when the member has some', async () => {
    const r = await get(`${w.url}/v1/boards/${B}/top`);
    assert.deepEqual(r.json.entries[0].meta, { name: 'Xavier' });
    assert.ok(!('meta' in r.json.entries[1]), JSON.stringify(r.json.entries[1]));
  });

  test('limit and offset page through the ranking keeping true ranks', async () => {
    let r = await get(`${w.url}/v1/boards/${B}/top?limit=2&offset=1`);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.total, 4);
    assert.deepEqual(strip(r.json.entries), [{ rank: 2, member: 'c', score: 20 }, { rank: 2, member: 'b', score: 20 }]);
    r = await get(`${w.url}/v1/boards/${B}/top?limit=1&offset=3`);
    assert.deepEqual(strip(r.json.entries), [{ rank: 4, member: 'a', score: 10 }]);
    r = await get(`${w.url}/v1/boards/${B}/top?offset=10`);
    assert.equal(r.status, 200);
    assert.deepEqual(r.json.entries, []);
    assert.equal(r.json.total, 4);
    r = await get(`${w.url}/v1/boards/${AR}/top?limit=1000`);
    assert.equal(r.json.entries.length, 20);
    r = await get(`${w.url}/v1/boards/${AR}/top`);
    assert.equal(r.json.entries.length, 10, 'default limit is 10');
    assert.equal(r.json.entries[0].member, 'm20');
  });

  test('the contract\u2019s own template, top?limit=10&offset=0&window=&period=, reads the defaults; any offset past the end is an empty page', async () => {
    const plain = await get(`${w.url}/v1/boards/${B}/top`);
    const r = await get(`${w.url}/v1/boards/${B}/top?limit=10&offset=0&window=&period=`);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json, plain.json);
    const m = await get(`${w.url}/v1/boards/${B}/members/a?window=&period=`);
    assert.equal(m.status, 200, m.text);
    assert.equal(m.json.rank, 4);
    for (const off of ['100000001', '99999999999999999999999']) {
      const deep = await get(`${w.url}/v1/boards/${B}/top?offset=${off}`);
      assert.equal(deep.status, 200, deep.text);
      assert.deepEqual([deep.json.entries, deep.json.total], [[], 4]);
    }
  });

  const badParams = [
    ['limit=0', 'limit'], ['limit=1001', 'limit'], ['limit=abc', 'limit'], ['limit=-1', 'limit'], ['limit=2.5', 'limit'],
    ['offset=-1', 'offset'], ['offset=x', 'offset'],
    ['window=week', 'window'], ['window=hour', 'window'], ['window=all&period=2026-W01', 'period'], ['period=yesterday', 'period'],
  ];
  for (const [qs, field] of badParams) {
    test(`top?${qs} is 400 invalid_parameter naming ${field}`, async () => {
      assertError(await get(`${w.url}/v1/boards/${B}/top?${qs}`), 400, 'invalid_parameter', { field });
    });
  }
});

describe('member standing', () => {
  test('a member shows rank, score, total and percentile = 100 x strictly worse / total', async () => {
    const cases = [['x', 1, 30, 75], ['c', 2, 20, 25], ['b', 2, 20, 25], ['a', 4, 10, 0]];
    for (const [m, rank, score, pct] of cases) {
      const r = await get(`${w.url}/v1/boards/${B}/members/${m}`);
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.member, m);
      assert.equal(r.json.rank, rank, `${m} rank`);
      assert.equal(r.json.score, score, `${m} score`);
      assert.equal(r.json.total, 4);
      assert.ok(Math.abs(r.json.percentile - pct) < 1e-9, `${m} percentile ${r.json.percentile} != ${pct}`);
    }
    const x = await get(`${w.url}/v1/boards/${B}/members/x`);
    assert.deepEqual(x.json.meta, { name: 'Xavier' });
  });

  test('a member id with markup and slashes round-trips through percent-encoding', async () => {
    const board = uniqueName();
    const member = '<img src=x onerror=alert(1)>/ü';
    assert.equal((await post(EV, { type: 'score', board, member, value: 3 })).status, 202);
    const url = `${w.url}/v1/boards/${board}/members/${encodeURIComponent(member)}`;
    const r = await waitFor(async () => { const r = await get(url); return r.status === 200 && r; }, { timeout: 3000 });
    assert.equal(r.json.member, member);
    const t = await get(`${w.url}/v1/boards/${board}/top`);
    assert.equal(t.json.entries[0].member, member);
  });

  test('an unknown member is 404 member_not_found', async () => {
    assertError(await get(`${w.url}/v1/boards/${B}/members/nobody`), 404, 'member_not_found');
    assertError(await get(`${w.url}/v1/boards/${B}/members/nobody/around`), 404, 'member_not_found');
  });

  test('an unknown board is 404 board_not_found on every read', async () => {
    const nb = uniqueName('nothere');
    assertError(await get(`${w.url}/v1/boards/${nb}/top`), 404, 'board_not_found');
    assertError(await get(`${w.url}/v1/boards/${nb}`), 404, 'board_not_found');
    assertError(await get(`${w.url}/v1/boards/${nb}/members/a`), 404, 'board_not_found');
    assertError(await get(`${w.url}/v1/boards/${nb}/members/a/around`), 404, 'board_not_found');
    assertError(await post(`${w.url}/v1/boards/${nb}/lookup`, { members: ['a'] }, { key: null }), 404, 'board_not_found');
  });
});

describe('around', () => {
  test('around shows radius entries on each side of the member, the member included', async () => {
    const r = await get(`${w.url}/v1/boards/${AR}/members/m10/around?radius=2`);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.board, AR);
    assert.equal(r.json.window, 'all');
    assert.equal(r.json.period, 'all');
    assert.equal(r.json.total, 20);
    assert.deepEqual(strip(r.json.entries), [
      { rank: 9, member: 'm12', score: 12 }, { rank: 10, member: 'm11', score: 11 }, { rank: 11, member: 'm10', score: 10 },
      { rank: 12, member: 'm09', score: 9 }, { rank: 13, member: 'm08', score: 8 },
    ]);
  });

  test('around is cut at the top and bottom, and radius defaults to 5', async () => {
    let r = await get(`${w.url}/v1/boards/${AR}/members/m20/around?radius=3`);
    assert.deepEqual(r.json.entries.map((e) => e.member), ['m20', 'm19', 'm18', 'm17']);
    r = await get(`${w.url}/v1/boards/${AR}/members/m01/around?radius=2`);
    assert.deepEqual(r.json.entries.map((e) => e.member), ['m03', 'm02', 'm01']);
    r = await get(`${w.url}/v1/boards/${AR}/members/m10/around`);
    assert.equal(r.json.entries.length, 11);
    assert.equal(r.json.entries[5].member, 'm10');
  });

  for (const qs of ['radius=0', 'radius=101', 'radius=abc']) {
    test(`around?${qs} is 400 invalid_parameter naming radius`, async () => {
      assertError(await get(`${w.url}/v1/boards/${AR}/members/m10/around?${qs}`), 400, 'invalid_parameter', { field: 'radius' });
    });
  }
});

describe('lookup', () => {
  test('lookup returns the named members on the board, best first, skipping unknown ones', async () => {
    const r = await post(`${w.url}/v1/boards/${B}/lookup`, { members: ['a', 'nobody', 'x', 'b'] }, { key: null });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(strip(r.json.entries), [
      { rank: 1, member: 'x', score: 30 }, { rank: 2, member: 'b', score: 20 }, { rank: 4, member: 'a', score: 10 },
    ]);
  });

  test('lookup of more than 100 members is 400', async () => {
    const r = await post(`${w.url}/v1/boards/${B}/lookup`, { members: Array.from({ length: 101 }, (_, i) => `m${i}`) }, { key: null });
    assert.equal(r.status, 400, r.text);
    assert.equal(typeof r.json?.error?.code, 'string');
  });

  test('lookup with a body that is not JSON is 400 invalid_json', async () => {
    assertError(await post(`${w.url}/v1/boards/${B}/lookup`, '{"members": [', { key: null }), 400, 'invalid_json');
  });
});

describe('protocol', () => {
  test('reads send Access-Control-Allow-Origin: *', async () => {
    for (const path of ['/v1/health', `/v1/boards/${B}/top`, `/v1/boards/${B}/members/x`, `/v1/boards/${B}/members/x/around`,
      '/v1/boards', `/v1/boards/${B}`, '/v1/routes', `/v1/boards/${uniqueName()}/top`]) {
      const r = await get(`${w.url}${path}`);
      assert.equal(r.headers.get('access-control-allow-origin'), '*', `${path} (${r.status})`);
    }
  });

  test('a wrong method is 405 with an Allow header', async () => {
    let r = await get(`${w.url}/v1/boards/${B}/top`, { method: 'POST' });
    assertError(r, 405, 'method_not_allowed');
    assert.equal(r.headers.get('allow'), 'GET');
    r = await get(`${w.url}/v1/events`, { method: 'GET' });
    assertError(r, 405, 'method_not_allowed');
    assert.equal(r.headers.get('allow'), 'POST');
    r = await get(`${w.url}/v1/boards/${B}`, { method: 'PATCH' });
    assertError(r, 405, 'method_not_allowed');
    assert.deepEqual(r.headers.get('allow').split(/,\s*/).sort(), ['DELETE', 'GET', 'PUT']);
    r = await get(`${w.url}/v1/health`, { method: 'DELETE' });
    assert.equal(r.status, 405);
  });

  test('an unknown API path is 404 with a JSON error', async () => {
    const r = await get(`${w.url}/v1/nope`);
    assert.equal(r.status, 404);
    assert.equal(typeof r.json?.error?.code, 'string');
  });

  test('health answers ok with a version', async () => {
    const r = await get(`${w.url}/v1/health`);
    assert.equal(r.status, 200);
    assert.equal(r.json.ok, true);
    assert.equal(typeof r.json.version, 'string');
    assert.ok(r.json.version.length > 0);
  });
});
