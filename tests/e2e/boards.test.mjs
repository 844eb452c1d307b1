// Admin: boards (settings, listing, conflicts, bounds, op x order x ties, windows, delete) and routes.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { startWorker, post, get, admin, waitFor, uniqueName, drain, ADMIN_KEY } from '../harness.mjs';

let w;
let EV;
before(async () => { w = await startWorker(); EV = `${w.url}/v1/events`; });
after(async () => { await w?.stop(); });

function assertError(r, status, code, extra = {}) {
  assert.equal(r.status, status, `expected ${status} ${code}, got ${r.status} ${r.text}`);
  assert.equal(r.json?.error?.code, code, r.text);
  for (const [k, v] of Object.entries(extra)) assert.deepEqual(r.json.error[k], v, `error.${k} in ${r.text}`);
}
const boardUrl = (b) => `${w.url}/v1/boards/${b}`;
const topOf = async (b, qs = '') => (await get(`${boardUrl(b)}/top${qs ? `?${qs}` : ''}`)).json;
const strip = (entries) => entries.map(({ rank, member, score }) => ({ rank, member, score }));

// ---- UTC period keys, as API.md defines them ----
const DAY = 86_400_000;
const dayKey = (ts) => new Date(ts).toISOString().slice(0, 10);
const monthKey = (ts) => new Date(ts).toISOString().slice(0, 7);
function weekKey(ts) {
  const d = new Date(Math.floor(ts / DAY) * DAY);
  const dow = (d.getUTCDay() + 6) % 7; // Monday = 0
  const thursday = new Date(d.getTime() + (3 - dow) * DAY);
  const year = thursday.getUTCFullYear();
  const jan1 = Date.UTC(year, 0, 1);
  const week = 1 + Math.floor((thursday.getTime() - jan1) / DAY / 7);
  return `${year}-W${String(week).padStart(2, '0')}`;
}

describe('board settings', () => {
  test('PUT creates a board (201) with its settings, a second PUT updates it (200), GET shows it with periods', async () => {
    const b = uniqueName();
    let r = await admin(boardUrl(b), 'PUT', { title: 'Top sellers', order: 'desc', op: 'incr', windows: ['all', 'day', 'week', 'month'], ties: 'shared', min: 0, max: 1000000 });
    assert.equal(r.status, 201, r.text);
    assert.equal(r.json.name, b);
    assert.equal(r.json.title, 'Top sellers');
    assert.equal(r.json.order, 'desc');
    assert.equal(r.json.op, 'incr');
    assert.deepEqual(r.json.windows, ['all', 'day', 'week', 'month']);
    assert.equal(r.json.ties, 'shared');
    r = await admin(boardUrl(b), 'PUT', { title: 'Best sellers' });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.title, 'Best sellers');
    assert.equal(r.json.order, 'desc', 'a partial PUT keeps other settings');
    r = await get(boardUrl(b));
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers.get('access-control-allow-origin'), '*');
    assert.equal(r.json.name, b);
    assert.equal(r.json.title, 'Best sellers');
    assert.equal(r.json.members, 0);
    const now = Date.now();
    assert.deepEqual(r.json.periods, { day: dayKey(now), week: weekKey(now), month: monthKey(now) });
  });

  test('a board created by PUT with no body gets the defaults', async () => {
    const b = uniqueName();
    const r = await admin(boardUrl(b), 'PUT', {});
    assert.equal(r.status, 201, r.text);
    assert.equal(r.json.order, 'desc');
    assert.equal(r.json.op, 'incr');
    assert.deepEqual(r.json.windows, ['all']);
    assert.equal(r.json.ties, 'shared');
  });

  test('a board created by its first event gets the defaults and is listed with its member count', async () => {
    const b = uniqueName();
    assert.equal((await post(EV, [{ type: 'like', board: b, member: 'a' }, { type: 'like', board: b, member: 'b' }])).status, 202);
    await waitFor(async () => (await topOf(b))?.total === 2, { timeout: 3000 });
    // The list shows what the board reported (at most about a second behind).
    const listed = async () => (await get(`${w.url}/v1/boards?prefix=${b}`)).json.boards.find((x) => x.name === b);
    const mine = await waitFor(async () => { const x = await listed(); return x?.members === 2 && x?.events === 2 && x; }, { timeout: 5000, what: 'the listed counts' });
    assert.ok(mine, `board ${b} listed`);
    assert.equal(mine.members, 2);
    assert.equal(mine.order, 'desc');
    assert.equal(mine.op, 'incr');
    assert.deepEqual(mine.windows, ['all']);
    assert.equal(mine.ties, 'shared');
    assert.ok('title' in mine);
  });

  test('the list is paged by name with limit, cursor and prefix (API 1.1)', async () => {
    const p = uniqueName('pg').slice(0, 40);
    const names = ['c', 'a', 'e', 'b', 'd'].map((x) => `${p}-${x}`);
    for (const n of names) assert.equal((await admin(`${w.url}/v1/boards/${n}`, 'PUT', {})).status, 201);
    const seen = [];
    let cursor = '';
    for (let pages = 0; ; pages += 1) {
      assert.ok(pages < 5, 'the pages end');
      const r = await get(`${w.url}/v1/boards?prefix=${p}-&limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      assert.equal(r.status, 200, r.text);
      assert.ok(r.json.boards.length <= 2);
      seen.push(...r.json.boards.map((x) => x.name));
      if (r.json.next === null) break;
      assert.equal(r.json.next, r.json.boards.at(-1).name);
      cursor = r.json.next;
    }
    assert.deepEqual(seen, [...names].sort());
    const one = await get(`${w.url}/v1/boards?prefix=${p}-c`);
    assert.deepEqual(one.json.boards.map((x) => x.name), [`${p}-c`]);
    assert.equal(one.json.next, null);
    assertError(await get(`${w.url}/v1/boards?limit=0`), 400, 'invalid_parameter', { field: 'limit' });
    assertError(await get(`${w.url}/v1/boards?limit=1001`), 400, 'invalid_parameter', { field: 'limit' });
    assertError(await get(`${w.url}/v1/boards?cursor=Not%20A%20Name`), 400, 'invalid_parameter', { field: 'cursor' });
  });

  const badBodies = [
    [{ order: 'sideways' }, 'order'], [{ op: 'sum' }, 'op'], [{ windows: ['hour'] }, 'windows'], [{ ties: 'random' }, 'ties'],
    [{ colour: 'red' }, 'colour'], [{ min: 'zero' }, 'min'],
  ];
  for (const [body, field] of badBodies) {
    test(`PUT board with ${JSON.stringify(body)} is 400 naming ${field}`, async () => {
      const r = await admin(boardUrl(uniqueName()), 'PUT', body);
      assert.equal(r.status, 400, r.text);
      assert.equal(r.json?.error?.field, field, r.text);
    });
  }

  test('PUT board with invalid JSON is 400 and with a bad name is 400', async () => {
    const r = await post(boardUrl(uniqueName()), '{"title": ', { key: 'dev-admin-key', method: 'PUT' });
    assert.equal(r.status, 400, r.text);
    const r2 = await admin(`${w.url}/v1/boards/Bad%20Name`, 'PUT', {});
    assert.equal(r2.status, 400, r2.text);
  });

  test('changing order or op of a board that holds scores is 409; other changes are fine', async () => {
    const b = uniqueName();
    assert.equal((await admin(boardUrl(b), 'PUT', { order: 'desc', op: 'incr' })).status, 201);
    // Before scores exist, order and op may change.
    assert.equal((await admin(boardUrl(b), 'PUT', { order: 'asc' })).status, 200);
    assert.equal((await admin(boardUrl(b), 'PUT', { order: 'desc' })).status, 200);
    assert.equal((await post(EV, { type: 'like', board: b, member: 'a' })).status, 202);
    await waitFor(async () => (await topOf(b))?.total === 1, { timeout: 3000 });
    assertError(await admin(boardUrl(b), 'PUT', { order: 'asc' }), 409, 'conflict');
    assertError(await admin(boardUrl(b), 'PUT', { op: 'best' }), 409, 'conflict');
    const same = await admin(boardUrl(b), 'PUT', { order: 'desc', op: 'incr', title: 'Renamed' });
    assert.equal(same.status, 200, same.text);
    assert.equal((await get(boardUrl(b))).json.order, 'desc');
  });

  test('a board in Asia/Shanghai keeps its days in local dates: local midnight splits two events that share a UTC date', async () => {
    const b = uniqueName();
    const r = await admin(boardUrl(b), 'PUT', { windows: ['all', 'day', 'week', 'month'], tz: 'asia/shanghai' });
    assert.equal(r.status, 201, r.text);
    assert.equal(r.json.tz, 'Asia/Shanghai', 'the database spelling is kept');
    const now = Date.now();
    const local = (ts) => new Intl.DateTimeFormat('en-CA', { timeZone: 'Asia/Shanghai', year: 'numeric', month: '2-digit', day: '2-digit' }).format(ts);
    assert.equal((await get(boardUrl(b))).json.periods.day, local(now));
    // Shanghai is UTC+8 all year: today's local midnight is 16:00 UTC the day before.
    const midnight = Date.parse(`${local(now)}T00:00:00+08:00`);
    const yesterday = local(midnight - 1);
    assert.equal(dayKey(midnight - 1), dayKey(midnight), 'both instants share one UTC date');
    assert.equal((await post(EV, [
      { type: 'tz', board: b, member: 'before', ts: midnight - 1, value: 1 },
      { type: 'tz', board: b, member: 'after', ts: midnight, value: 2 },
    ])).status, 202);
    await waitFor(async () => (await topOf(b))?.total === 2, { timeout: 5000 });
    const day = async (p) => (await topOf(b, `window=day&period=${p}`))?.entries.map((e) => e.member);
    assert.deepEqual(await day(local(now)), ['after']);
    assert.deepEqual(await day(yesterday), ['before']);
    // Once scored, the zone is fixed; restating it is fine.
    assertError(await admin(boardUrl(b), 'PUT', { tz: 'UTC' }), 409, 'conflict');
    assert.equal((await admin(boardUrl(b), 'PUT', { tz: 'Asia/Shanghai' })).status, 200);
  });

  test("a New York board's day of the spring daylight-saving change is 23 hours long and ends at 04:00 UTC", async () => {
    const b = uniqueName();
    assert.equal((await admin(boardUrl(b), 'PUT', { windows: ['day'], tz: 'America/New_York' })).status, 201);
    // 2026-03-08 begins at 05:00 UTC (EST) and ends at 04:00 UTC on the 9th (EDT).
    const events = [
      { member: 'first', ts: Date.parse('2026-03-08T05:00:00Z') },
      { member: 'last', ts: Date.parse('2026-03-09T03:59:59.999Z') },
      { member: 'next-day', ts: Date.parse('2026-03-09T04:00:00Z') },
      { member: 'day-before', ts: Date.parse('2026-03-08T04:59:59.999Z') },
    ].map((e) => ({ type: 'tz', board: b, value: 1, ...e }));
    const r = await post(EV, events);
    assert.equal(r.status, 202, r.text);
    const day = async (p) => (await topOf(b, `window=day&period=${p}`))?.entries.map((e) => e.member).sort();
    await waitFor(async () => (await day('2026-03-08'))?.length === 2, { timeout: 5000 });
    assert.deepEqual(await day('2026-03-08'), ['first', 'last']);
    assert.deepEqual(await day('2026-03-09'), ['next-day']);
    assert.deepEqual(await day('2026-03-07'), ['day-before']);
  });

  test('an unknown or malformed time zone is 400 naming tz, and changes nothing', async () => {
    const b = uniqueName();
    for (const tz of ['Mars/Olympus_Mons', '../etc/passwd', 'UTC ', '', 8]) {
      assertError(await admin(boardUrl(b), 'PUT', { tz }), 400, 'invalid_body', { field: 'tz' });
    }
    assert.equal((await get(boardUrl(b))).status, 404);
    assert.equal((await admin(boardUrl(b), 'PUT', {})).json.tz, 'UTC');
  });

  test('events outside min/max are 400 value_out_of_range naming field and index; bounds are inclusive', async () => {
    const b = uniqueName();
    assert.equal((await admin(boardUrl(b), 'PUT', { min: 0, max: 100 })).status, 201);
    assertError(await post(EV, [{ type: 'lap', board: b, member: 'a', value: 5 }, { type: 'lap', board: b, member: 'a', value: 101 }]),
      400, 'value_out_of_range', { field: 'value', index: 1 });
    assertError(await post(EV, { type: 'lap', board: b, member: 'a', value: -1 }), 400, 'value_out_of_range', { field: 'value' });
    const ok = await post(EV, [{ type: 'lap', board: b, member: 'lo', value: 0 }, { type: 'lap', board: b, member: 'hi', value: 100 }]);
    assert.equal(ok.status, 202, ok.text);
    await waitFor(async () => (await topOf(b))?.total === 2, { timeout: 3000 });
    await drain(w.url, uniqueName('sentinel'));
    assert.equal((await get(`${boardUrl(b)}/members/a`)).status, 404, 'rejected events were not applied');
  });

  test('an event outside min/max is the first bad event even when a later event is malformed', async () => {
    const b = uniqueName();
    assert.equal((await admin(boardUrl(b), 'PUT', { max: 10 })).status, 201);
    const r = await post(EV, [
      { type: 'lap', board: b, member: 'a', value: 50 },
      { type: 'lap', board: b, member: 'b', value: 'bad' },
    ]);
    assertError(r, 400, 'value_out_of_range', { field: 'value', index: 0 });
  });

  test('with ties first, equal scores order by who reached them first even for times long past (ts 1000 and 2000)', async () => {
    const b = uniqueName();
    assert.equal((await admin(boardUrl(b), 'PUT', { ties: 'first' })).status, 201);
    assert.equal((await post(EV, { type: 's', board: b, member: 'zz', value: 5, ts: 1000 })).status, 202);
    assert.equal((await post(EV, { type: 's', board: b, member: 'aa', value: 5, ts: 2000 })).status, 202);
    await waitFor(async () => (await topOf(b))?.total === 2, { timeout: 3000 });
    assert.deepEqual(strip((await topOf(b)).entries), [{ rank: 1, member: 'zz', score: 5 }, { rank: 2, member: 'aa', score: 5 }]);
  });

  test('a PUT answers the board object with its member count, as GET does', async () => {
    const b = uniqueName();
    const created = await admin(boardUrl(b), 'PUT', { title: 'Counted' });
    assert.equal(created.status, 201, created.text);
    assert.equal(created.json.members, 0);
    assert.equal((await post(EV, [{ type: 's', board: b, member: 'a' }, { type: 's', board: b, member: 'b' }])).status, 202);
    await waitFor(async () => (await topOf(b))?.total === 2, { timeout: 3000 });
    const changed = await admin(boardUrl(b), 'PUT', { title: 'Still counted' });
    assert.equal(changed.status, 200, changed.text);
    const { periods: _p, ...fromGet } = (await get(boardUrl(b))).json;
    const { periods: _q, ...fromPut } = changed.json;
    assert.deepEqual(fromPut, fromGet);
    assert.equal(fromPut.members, 2);
  });
});

describe('op x order x ties', () => {
  test('on a last board an older event loses with its metadata', async () => {
    const b = uniqueName('last-meta');
    assert.equal((await admin(boardUrl(b), 'PUT', { op: 'last' })).status, 201);
    const now = Date.now();
    assert.equal((await post(EV, { type: 's', board: b, member: 'm', value: 5, ts: now - 1000, meta: { name: 'New' } })).status, 202);
    await waitFor(async () => (await topOf(b))?.total === 1, { timeout: 3000 });
    assert.equal((await post(EV, { type: 's', board: b, member: 'm', value: 1, ts: now - 50_000, meta: { name: 'Stale' } })).status, 202);
    await drain(w.url, uniqueName('sentinel'));
    const m = await get(`${boardUrl(b)}/members/m`);
    assert.equal(m.json.score, 5);
    assert.deepEqual(m.json.meta, { name: 'New' });
  });

  const T = Date.now() - 120_000;
  const at = (s) => T + s * 1000;
  // Batch order follows ts, except `last`'s out-of-order pair for c.
  const scripts = {
    incr: [['b', 8, 1], ['a', 5, 2], ['c', 2, 3], ['a', 3, 4]],
    best: [['b', 8, 1], ['a', 5, 2], ['c', 2, 3], ['a', 8, 4], ['c', 1, 5], ['b', 3, 6]],
    last: [['b', 8, 1], ['a', 5, 2], ['c', 2, 3], ['a', 8, 4], ['c', 7, 6], ['c', 1, 5]],
  };
  // Expected order (best first) as [member, score].
  const expected = {
    'incr/desc': [['b', 8], ['a', 8], ['c', 2]],
    'incr/asc': [['c', 2], ['b', 8], ['a', 8]],
    'best/desc': [['b', 8], ['a', 8], ['c', 2]],
    'best/asc': [['c', 1], ['b', 3], ['a', 5]],
    'last/desc': [['b', 8], ['a', 8], ['c', 7]],
    'last/asc': [['c', 7], ['b', 8], ['a', 8]],
  };
  const ranksOf = (rows, ties) => rows.map(([, s], i) => (ties === 'first' ? i + 1 : rows.findIndex(([, s2]) => s2 === s) + 1));

  for (const op of ['incr', 'best', 'last']) {
    for (const order of ['desc', 'asc']) {
      for (const ties of ['shared', 'first']) {
        test(`op ${op}, order ${order}, ties ${ties} ranks as specified`, async () => {
          const b = uniqueName(`${op}-${order}-${ties}`);
          const put = await admin(boardUrl(b), 'PUT', { op, order, ties });
          assert.equal(put.status, 201, put.text);
          const events = scripts[op].map(([member, value, s]) => ({ type: 'score', board: b, member, value, ts: at(s) }));
          const r = await post(EV, events);
          assert.equal(r.status, 202, r.text);
          const rows = expected[`${op}/${order}`];
          const want = rows.map(([member, score], i) => ({ rank: ranksOf(rows, ties)[i], member, score }));
          let got;
          try {
            await waitFor(async () => {
              got = strip((await topOf(b))?.entries ?? []);
              return JSON.stringify(got) === JSON.stringify(want);
            }, { timeout: 3000 });
          } catch {
            assert.deepEqual(got, want);
          }
          // Member standing agrees with the listing.
          const m = await get(`${boardUrl(b)}/members/${want[1].member}`);
          assert.equal(m.json.rank, want[1].rank);
          assert.equal(m.json.score, want[1].score);
        });
      }
    }
  }
});

describe('routes', () => {
  test('a route target given without a value is listed without one and feeds the event value', async () => {
    const type = uniqueName('like');
    const likes = uniqueName('likes');
    const put = await admin(`${w.url}/v1/routes/${type}`, 'PUT', { targets: [{ board: likes }] });
    assert.ok([200, 201].includes(put.status), put.text);
    const list = await get(`${w.url}/v1/routes`);
    assert.deepEqual(list.json.routes[type], [{ board: likes }]);
    assert.equal((await post(EV, { type, member: 'amy', value: 4 })).status, 202);
    await waitFor(async () => (await topOf(likes))?.entries?.[0]?.score === 4, { timeout: 3000 });
  });

  test('a route fans one event out to several boards with the event value or a fixed one', async () => {
    const type = uniqueName('order');
    const sales = uniqueName('sales');
    const orders = uniqueName('orders');
    const put = await admin(`${w.url}/v1/routes/${type}`, 'PUT', { targets: [{ board: sales, value: 'value' }, { board: orders, value: 1 }] });
    assert.ok([200, 201].includes(put.status), put.text);
    const list = await get(`${w.url}/v1/routes`);
    assert.equal(list.status, 200);
    assert.equal(list.headers.get('access-control-allow-origin'), '*');
    assert.deepEqual(list.json.routes[type], [{ board: sales, value: 'value' }, { board: orders, value: 1 }]);
    const r = await post(EV, [
      { type, member: 'alice', value: 30 }, { type, member: 'alice', value: 12 }, { type, member: 'bob', value: 5 },
    ]);
    assert.equal(r.status, 202, r.text);
    await waitFor(async () => (await topOf(orders))?.total === 2 && (await topOf(sales))?.total === 2, { timeout: 3000 });
    await waitFor(async () => JSON.stringify(strip((await topOf(sales)).entries)) === JSON.stringify([
      { rank: 1, member: 'alice', score: 42 }, { rank: 2, member: 'bob', score: 5 }]), { timeout: 3000, what: 'sales' });
    await waitFor(async () => JSON.stringify(strip((await topOf(orders)).entries)) === JSON.stringify([
      { rank: 1, member: 'alice', score: 2 }, { rank: 2, member: 'bob', score: 1 }]), { timeout: 3000, what: 'orders' });
  });

  test('a board template feeds one board per level and region (API 1.1); fields that give no name are 422', async () => {
    const type = uniqueName('lap');
    const p = type.slice(0, 20);
    const put = await admin(`${w.url}/v1/routes/${type}`, 'PUT', {
      targets: [{ board: `${p}-lvl-{meta.level}` }, { board: `${p}-{meta.region}`, value: 1 }],
    });
    assert.ok([200, 201].includes(put.status), put.text);
    assert.deepEqual((await get(`${w.url}/v1/routes`)).json.routes[type],
      [{ board: `${p}-lvl-{meta.level}` }, { board: `${p}-{meta.region}`, value: 1 }]);
    const r = await post(EV, [
      { type, member: 'ann', value: 7, meta: { level: 1, region: 'eu' } },
      { type, member: 'ben', value: 9, meta: { level: 2, region: 'eu' } },
      { type, member: 'cat', value: 3, meta: { level: 1, region: 'us' } },
    ]);
    assert.equal(r.status, 202, r.text);
    await waitFor(async () => (await topOf(`${p}-lvl-1`))?.total === 2, { timeout: 5000, what: 'level 1' });
    assert.deepEqual(strip((await topOf(`${p}-lvl-1`)).entries), [{ rank: 1, member: 'ann', score: 7 }, { rank: 2, member: 'cat', score: 3 }]);
    await waitFor(async () => (await topOf(`${p}-lvl-2`))?.total === 1, { timeout: 5000, what: 'level 2' });
    await waitFor(async () => (await topOf(`${p}-eu`))?.total === 2, { timeout: 5000, what: 'region eu' });
    assert.deepEqual(strip((await topOf(`${p}-us`)).entries), [{ rank: 1, member: 'cat', score: 1 }]);
    // No level, or a region that is no board name: the whole request is refused.
    for (const [meta, index] of [[{ region: 'eu' }, 1], [{ level: 1, region: 'EU West' }, 1]]) {
      const bad = await post(EV, [{ type, member: 'dan', meta: { level: 3, region: 'eu' } }, { type, member: 'eve', meta }]);
      assertError(bad, 422, 'unroutable_event', { index });
    }
    assert.equal((await get(`${w.url}/v1/boards/${p}-lvl-3`)).status, 404, 'the refused request created nothing');
    for (const board of ['x-{nope}', 'x-{meta.}', 'X-{type}', 'x-{type']) {
      assertError(await admin(`${w.url}/v1/routes/${type}`, 'PUT', { targets: [{ board }] }), 400, 'invalid_body', { field: 'board' });
    }
  });

  test('an event naming a board goes there besides its type\'s route', async () => {
    const type = uniqueName('t');
    const routed = uniqueName();
    const direct = uniqueName();
    await admin(`${w.url}/v1/routes/${type}`, 'PUT', { targets: [{ board: routed }] });
    assert.equal((await post(EV, { type, member: 'm', board: direct, value: 4 })).status, 202);
    await waitFor(async () => (await topOf(routed))?.entries?.[0]?.score === 4, { timeout: 3000, what: 'routed' });
    await waitFor(async () => (await topOf(direct))?.entries?.[0]?.score === 4, { timeout: 3000, what: 'direct' });
  });

  test('a route change takes effect within 5 seconds, and deleting the route makes its events unroutable (422)', async () => {
    const type = uniqueName('t');
    const one = uniqueName('one');
    const two = uniqueName('two');
    assert.ok([200, 201].includes((await admin(`${w.url}/v1/routes/${type}`, 'PUT', { targets: [{ board: one }] })).status));
    assert.equal((await post(EV, { type, member: 'first' })).status, 202);
    await waitFor(async () => (await get(`${boardUrl(one)}/members/first`)).status === 200, { timeout: 3000 });

    const change = await admin(`${w.url}/v1/routes/${type}`, 'PUT', { targets: [{ board: two }] });
    assert.equal(change.status, 200, change.text);
    const changedAt = Date.now();
    const got = await get(`${w.url}/v1/routes/${type}`);
    assert.deepEqual(got.json.targets.map((t) => t.board), [two]);
    // Probe until an event lands on the new board; it must happen for events sent within 5 s.
    let k = 0;
    let sentAt = 0;
    await waitFor(async () => {
      k += 1;
      const member = `probe-${k}`;
      sentAt = Date.now();
      const r = await post(EV, { type, member });
      if (r.status !== 202) return false;
      return waitFor(async () => {
        if ((await get(`${boardUrl(two)}/members/${member}`)).status === 200) return 'two';
        if ((await get(`${boardUrl(one)}/members/${member}`)).status === 200) return 'one';
        return false;
      }, { timeout: 3000 }).then((where) => where === 'two');
    }, { timeout: 9000, interval: 200, what: 'route change to take effect' });
    assert.ok(sentAt - changedAt <= 5000, `first event routed to the new board was sent ${sentAt - changedAt} ms after the change`);

    const del = await admin(`${w.url}/v1/routes/${type}`, 'DELETE');
    assert.equal(del.status, 204, del.text);
    const deletedAt = Date.now();
    await waitFor(async () => (await post(EV, { type, member: 'late' })).status === 422, { timeout: 5500, interval: 200, what: '422 after route deletion' });
    assert.ok(Date.now() - deletedAt <= 5500);
    assertError(await post(EV, { type, member: 'late' }), 422, 'unroutable_event');
    assertError(await get(`${w.url}/v1/routes/${type}`), 404, 'route_not_found');
    assertError(await admin(`${w.url}/v1/routes/${type}`, 'DELETE'), 404, 'route_not_found');
  });

  test('a route body with a bad target is 400', async () => {
    const r = await admin(`${w.url}/v1/routes/${uniqueName('t')}`, 'PUT', { targets: [{ board: 'Bad Board' }] });
    assert.equal(r.status, 400, r.text);
    const r2 = await admin(`${w.url}/v1/routes/${uniqueName('t')}`, 'PUT', { targets: [{ board: 'ok', value: 'double' }] });
    assert.equal(r2.status, 400, r2.text);
  });
});

describe('windows', () => {
  test('day, week and month windows split events at UTC midnight and the ISO week boundary, and period= reads past ones', async () => {
    const b = uniqueName('win');
    const put = await admin(boardUrl(b), 'PUT', { windows: ['all', 'day', 'week', 'month'] });
    assert.equal(put.status, 201, put.text);
    const now = Date.now();
    const midnight = Math.floor(now / DAY) * DAY;
    const dow = (new Date(midnight).getUTCDay() + 6) % 7;
    let monday = midnight - dow * DAY;     // this ISO week's Monday 00:00 UTC
    if (monday === midnight) monday -= 7 * DAY; // keep the week test apart from the day test
    const events = [
      { member: 'alice', value: 1, ts: midnight - 60_000 },           // yesterday 23:59
      { member: 'alice', value: 2, ts: Math.min(midnight + 60_000, now) }, // today 00:01
      { member: 'bob', value: 4, ts: midnight - 30_000 },               // yesterday
      { member: 'carol', value: 5, ts: monday - 60_000 },               // Sunday 23:59, previous ISO week
      { member: 'carol', value: 7, ts: monday + 60_000 },               // Monday 00:01
    ];
    const r = await post(EV, events.map((e) => ({ type: 'score', board: b, ...e })));
    assert.equal(r.status, 202, r.text);

    // The model: per window and period key, member -> score.
    const keyOf = { all: () => 'all', day: dayKey, week: weekKey, month: monthKey };
    const model = {};
    for (const win of Object.keys(keyOf)) {
      for (const e of events) {
        const k = keyOf[win](e.ts);
        model[win] ??= {};
        model[win][k] ??= {};
        model[win][k][e.member] = (model[win][k][e.member] ?? 0) + e.value;
      }
    }
    await waitFor(async () => (await topOf(b, 'window=all'))?.entries?.find((e) => e.member === 'carol')?.score === 12
      && (await topOf(b, 'window=all')).total === 3, { timeout: 3000, what: 'all window' });
    await drain(w.url, uniqueName('sentinel'));

    for (const win of Object.keys(keyOf)) {
      for (const [period, scores] of Object.entries(model[win])) {
        const qs = win === 'all' ? 'window=all' : `window=${win}&period=${period}`;
        const t = await topOf(b, qs);
        assert.ok(t, `top?${qs} answered`);
        assert.equal(t.window, win, qs);
        assert.equal(t.period, period, qs);
        const got = Object.fromEntries(t.entries.map((e) => [e.member, e.score]));
        assert.deepEqual(got, scores, `scores for ${qs}`);
        assert.equal(t.total, Object.keys(scores).length, `total for ${qs}`);
      }
      // Without period=, the current period.
      const cur = await topOf(b, `window=${win}`);
      assert.equal(cur.period, keyOf[win](now), `current ${win} period`);
      assert.deepEqual(Object.fromEntries(cur.entries.map((e) => [e.member, e.score])), model[win][keyOf[win](now)] ?? {}, `current ${win}`);
    }
    // The member endpoint reads periods too.
    const m = await get(`${boardUrl(b)}/members/alice?window=day&period=${dayKey(midnight - 1)}`);
    assert.equal(m.status, 200, m.text);
    assert.equal(m.json.score, 1);
    // Default window is `all` when kept.
    assert.equal((await topOf(b)).window, 'all');
  });

  test('a board without `all` defaults to its first window', async () => {
    const b = uniqueName('win');
    assert.equal((await admin(boardUrl(b), 'PUT', { windows: ['week', 'day'] })).status, 201);
    const t = await topOf(b);
    assert.equal(t.window, 'week');
    assert.equal(t.period, weekKey(Date.now()));
  });

  test('past periods of the last year stay readable: an ISO year boundary eleven months ago splits weeks and days', async () => {
    const b = uniqueName('win');
    assert.equal((await admin(boardUrl(b), 'PUT', { windows: ['all', 'day', 'week', 'month'] })).status, 201);
    const r = await post(EV, [
      { type: 's', board: b, member: 'sun', value: 2, ts: '2025-12-28T23:59:59.999Z' },
      { type: 's', board: b, member: 'mon', value: 3, ts: '2025-12-29T00:00:00Z' },
    ]);
    assert.equal(r.status, 202, r.text);
    await waitFor(async () => (await topOf(b))?.total === 2, { timeout: 3000 });
    await drain(w.url, uniqueName('sentinel'));
    const members = async (qs) => {
      const t = await get(`${boardUrl(b)}/top?${qs}`);
      assert.equal(t.status, 200, `${qs}: ${t.text}`);
      return t.json.entries.map((e) => e.member);
    };
    assert.deepEqual(await members('window=week&period=2025-W52'), ['sun']);
    assert.deepEqual(await members('window=week&period=2026-W01'), ['mon']);
    assert.deepEqual(await members('window=day&period=2025-12-28'), ['sun']);
    assert.deepEqual(await members('window=day&period=2025-12-29'), ['mon']);
    assert.deepEqual(await members('window=month&period=2025-12'), ['mon', 'sun']);
  });

  test('a window taken off a board loses its scores: added back, it starts empty', async () => {
    const b = uniqueName('win');
    assert.equal((await admin(boardUrl(b), 'PUT', { windows: ['all', 'day'] })).status, 201);
    assert.equal((await post(EV, { type: 's', board: b, member: 'a', value: 5 })).status, 202);
    await waitFor(async () => (await topOf(b))?.total === 1, { timeout: 3000 });
    assert.equal((await admin(boardUrl(b), 'PUT', { windows: ['day'] })).status, 200);
    assertError(await get(`${boardUrl(b)}/top?window=all`), 400, 'invalid_parameter', { field: 'window' });
    assert.equal((await post(EV, { type: 's', board: b, member: 'b', value: 3 })).status, 202);
    await waitFor(async () => (await topOf(b, 'window=day'))?.total === 2, { timeout: 3000 });
    assert.equal((await admin(boardUrl(b), 'PUT', { windows: ['all', 'day'] })).status, 200);
    const all = await topOf(b, 'window=all');
    assert.equal(all.total, 0, JSON.stringify(all));
    // the window that stayed kept everything
    assert.deepEqual(strip((await topOf(b, 'window=day')).entries).map((e) => e.member), ['a', 'b']);
    assert.equal((await post(EV, { type: 's', board: b, member: 'c', value: 1 })).status, 202);
    await waitFor(async () => (await topOf(b, 'window=all'))?.total === 1, { timeout: 3000 });
  });

  for (const [qs, field] of [['window=hour', 'window'], ['window=day&period=2026-13-45', 'period'], ['window=week&period=2026-11-02', 'period'], ['window=month&period=2026-W01', 'period']]) {
    test(`windowed top?${qs} is 400 invalid_parameter naming ${field}`, async () => {
      const b = uniqueName('win');
      await admin(boardUrl(b), 'PUT', { windows: ['all', 'day', 'week', 'month'] });
      assertError(await get(`${boardUrl(b)}/top?${qs}`), 400, 'invalid_parameter', { field });
    });
  }
});

describe('delete', () => {
  test('DELETE removes a board and its scores; recreating it starts empty', async () => {
    const b = uniqueName('del');
    assert.equal((await admin(boardUrl(b), 'PUT', { windows: ['all', 'day'] })).status, 201);
    assert.equal((await post(EV, [{ type: 's', board: b, member: 'a', value: 5 }, { type: 's', board: b, member: 'b', value: 3 }])).status, 202);
    await waitFor(async () => (await topOf(b))?.total === 2, { timeout: 3000 });
    const del = await admin(boardUrl(b), 'DELETE');
    assert.equal(del.status, 204, del.text);
    assertError(await get(boardUrl(b)), 404, 'board_not_found');
    assertError(await get(`${boardUrl(b)}/top`), 404, 'board_not_found');
    assert.ok(!(await get(`${w.url}/v1/boards?prefix=${b}`)).json.boards.some((x) => x.name === b), 'not listed');
    assertError(await admin(boardUrl(b), 'DELETE'), 404, 'board_not_found');
    // Recreated: empty in every window.
    assert.equal((await admin(boardUrl(b), 'PUT', { windows: ['all', 'day'] })).status, 201);
    for (const qs of ['window=all', 'window=day']) {
      const t = await topOf(b, qs);
      assert.equal(t.total, 0, qs);
      assert.deepEqual(t.entries, [], qs);
    }
    assert.equal((await get(boardUrl(b))).json.members, 0);
    // New events count from zero.
    assert.equal((await post(EV, { type: 's', board: b, member: 'a', value: 1 })).status, 202);
    await waitFor(async () => (await topOf(b))?.total === 1, { timeout: 3000 });
    await drain(w.url, uniqueName('sentinel'));
    assert.equal((await get(`${boardUrl(b)}/members/a`)).json.score, 1);
    assert.equal((await get(`${boardUrl(b)}/members/b`)).status, 404);
  });

  test('a board re-created by an event after DELETE starts empty', async () => {
    const b = uniqueName('del');
    assert.equal((await post(EV, { type: 's', board: b, member: 'old', value: 9 })).status, 202);
    await waitFor(async () => (await topOf(b))?.total === 1, { timeout: 3000 });
    assert.equal((await admin(boardUrl(b), 'DELETE')).status, 204);
    assert.equal((await post(EV, { type: 's', board: b, member: 'new', value: 1 })).status, 202);
    await waitFor(async () => (await topOf(b))?.total >= 1, { timeout: 3000 });
    await drain(w.url, uniqueName('sentinel'));
    const t = await topOf(b);
    assert.deepEqual(strip(t.entries), [{ rank: 1, member: 'new', score: 1 }]);
  });
});

describe('Idempotency-Key on admin writes (API 1.1)', () => {
  test('a repeated DELETE with the same key gets the first 204 again; another key runs it anew', async () => {
    const b = uniqueName('idem');
    assert.equal((await admin(`${w.url}/v1/boards/${b}`, 'PUT', {})).status, 201);
    const del = (key) => post(`${w.url}/v1/boards/${b}`, undefined, { key: ADMIN_KEY, method: 'DELETE', contentType: null, headers: { 'Idempotency-Key': key } });
    assert.equal((await del('del-1')).status, 204);
    assert.equal((await del('del-1')).status, 204, 'the first answer again');
    assert.equal((await get(`${w.url}/v1/boards/${b}`)).status, 404);
    const other = await del('del-2');
    assert.equal(other.status, 404, other.text);
    assert.equal(other.json.error.code, 'board_not_found');
    const bad = await del('x'.repeat(129));
    assert.equal(bad.status, 400, bad.text);
    assert.equal(bad.json.error.code, 'invalid_parameter');
  });

  test('a repeated re-drive with the same key answers the first count and re-drives nothing more', async () => {
    const rd = () => post(`${w.url}/v1/dead-letters/redrive`, {}, { key: ADMIN_KEY, headers: { 'Idempotency-Key': `rd-${uniqueName('k')}` } });
    const key = `rd-${uniqueName('k')}`;
    const first = await post(`${w.url}/v1/dead-letters/redrive`, {}, { key: ADMIN_KEY, headers: { 'Idempotency-Key': key } });
    assert.equal(first.status, 200, first.text);
    const again = await post(`${w.url}/v1/dead-letters/redrive`, {}, { key: ADMIN_KEY, headers: { 'Idempotency-Key': key } });
    assert.equal(again.status, 200);
    assert.deepEqual(again.json, first.json);
    assert.equal((await rd()).status, 200);
  });
});
