// Scores, settings, routes and dedupe state survive a restart of the worker on the same persisted state.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startWorker, post, get, admin, waitFor, uniqueName, drain } from '../harness.mjs';

let w;
before(async () => { w = await startWorker(); });
after(async () => { await w?.stop(); });

test('scores, board settings, routes and applied ids are unchanged after a restart on the same persisted state', async () => {
  const b = uniqueName('dur');
  const routed = uniqueName('dur-routed');
  const type = uniqueName('dur-type');
  assert.equal((await admin(`${w.url}/v1/boards/${b}`, 'PUT', { title: 'Durable', order: 'asc', op: 'best', windows: ['all', 'day'] })).status, 201);
  assert.ok([200, 201].includes((await admin(`${w.url}/v1/routes/${type}`, 'PUT', { targets: [{ board: routed, value: 2 }] })).status));
  const events = [
    { type: 'lap', board: b, member: 'ann', value: 61.5, id: 'lap-1', meta: { name: 'Ann' } },
    { type: 'lap', board: b, member: 'ann', value: 59.25, id: 'lap-2' },
    { type: 'lap', board: b, member: 'ben', value: 60, id: 'lap-3' },
    { type, member: 'cat', id: 'r-1' },
  ];
  assert.equal((await post(`${w.url}/v1/events`, events)).status, 202);
  await waitFor(async () => (await get(`${w.url}/v1/boards/${b}/top`)).json?.total === 2
    && (await get(`${w.url}/v1/boards/${routed}/top`)).json?.total === 1, { timeout: 3000 });
  await drain(w.url, uniqueName('sentinel'));
  const snap = async () => ({
    top: (await get(`${w.url}/v1/boards/${b}/top`)).json,
    day: (await get(`${w.url}/v1/boards/${b}/top?window=day`)).json,
    routed: (await get(`${w.url}/v1/boards/${routed}/top`)).json,
    board: (await get(`${w.url}/v1/boards/${b}`)).json,
    route: (await get(`${w.url}/v1/routes/${type}`)).json,
  });
  const beforeRestart = await snap();
  assert.deepEqual(beforeRestart.top.entries.map((e) => [e.member, e.score]), [['ann', 59.25], ['ben', 60]]);

  const oldUrl = w.url;
  await w.restart();
  assert.ok(w.url, 'restarted');
  const afterRestart = await snap();
  assert.deepEqual(afterRestart, beforeRestart, `state after restart (was ${oldUrl}, now ${w.url})`);

  // Ids applied before the restart are still remembered; new events still work.
  const again = await post(`${w.url}/v1/events`, [
    { type: 'lap', board: b, member: 'ben', value: 1, id: 'lap-3' }, // duplicate: ignored
    { type, member: 'cat', id: 'r-1' },                               // duplicate: ignored
    { type: 'lap', board: b, member: 'dan', value: 70, id: 'lap-4' },
  ]);
  assert.equal(again.status, 202, again.text);
  await waitFor(async () => (await get(`${w.url}/v1/boards/${b}/members/dan`)).status === 200, { timeout: 3000 });
  await drain(w.url, uniqueName('sentinel'));
  assert.equal((await get(`${w.url}/v1/boards/${b}/members/ben`)).json.score, 60);
  assert.equal((await get(`${w.url}/v1/boards/${routed}/members/cat`)).json.score, 2);
});

test('events accepted just before a restart are not lost', async () => {
  // The local Queue keeps messages in memory, so a restart loses what it
  // held; the intake keeps each message until the consumer confirms it and
  // sends it again once it has gone unconfirmed for 60 s.
  const b = uniqueName('inflight');
  const r = await post(`${w.url}/v1/events`, { type: 's', board: b, member: 'inflight', value: 3, id: `${b}-1` });
  assert.equal(r.status, 202, r.text);
  await w.restart();
  await waitFor(async () => (await get(`${w.url}/v1/boards/${b}/members/inflight`)).json?.score === 3,
    { timeout: 90_000, interval: 500, what: 'in-flight event after restart' });
  await drain(w.url, uniqueName('sentinel'));
  assert.equal((await get(`${w.url}/v1/boards/${b}`)).json.events, 1, 'applied once');
});

test('every score, subscore and tie order reads the same after a restart, fractional and huge ones included', async () => {
  // A cold load reads integral rows as SQLite's own text, a range of rowids
  // at a time, and every other row packed as exact doubles (glue/rows.rs):
  // both kinds, and more rows than one range holds, must come back exactly.
  const b = uniqueName('exact');
  assert.equal((await admin(`${w.url}/v1/boards/${b}`, 'PUT', { tiebreak: 'asc', ties: 'first' })).status, 201);
  const ev = (member, value, extra = {}) => ({ type: 'x', board: b, member, value, ...extra });
  const events = [
    ev('tenth', 0.1), ev('tenth', 0.2), // 0.30000000000000004: needs all 17 digits
    ...Array.from({ length: 10 }, () => ev('huge', 1e15)), // 1e16, above 2^53
    ev('neg', -7), ev('frac-sub', 5, { subscore: 0.125 }), ev('int-sub', 5, { subscore: -3 }),
    // 5,000 more, with many equal scores: more rows than one range of rowids
    ...Array.from({ length: 5000 }, (_, i) => ev(`m${i}`, i % 37, { subscore: i % 3 })),
  ];
  for (let i = 0; i < events.length; i += 1000) {
    assert.equal((await post(`${w.url}/v1/events`, events.slice(i, i + 1000))).status, 202);
  }
  await waitFor(async () => (await get(`${w.url}/v1/boards/${b}`)).json?.events === events.length, { timeout: 20_000, what: 'every event applied' });
  const all = async () => {
    const out = [];
    for (let off = 0; off < 5005; off += 1000) {
      const r = await get(`${w.url}/v1/boards/${b}/top?limit=1000&offset=${off}`);
      assert.equal(r.status, 200, r.text);
      out.push(...r.json.entries.map((e) => [e.member, e.rank, e.score, e.subscore, e.reached]));
    }
    return out;
  };
  const beforeRestart = await all();
  assert.equal(beforeRestart.length, 5005);
  assert.deepEqual(beforeRestart.find((e) => e[0] === 'tenth').slice(2, 4), [0.1 + 0.2, 0]);
  assert.deepEqual(beforeRestart.find((e) => e[0] === 'huge').slice(2, 4), [1e16, 0]);
  assert.deepEqual(beforeRestart.find((e) => e[0] === 'frac-sub').slice(2, 4), [5, 0.125]);
  await w.restart();
  assert.deepEqual(await all(), beforeRestart);
});
