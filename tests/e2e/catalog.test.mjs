// The catalog scales with the number of boards (issue 13, API 1.1): no cap,
// a listing paged by cursor over the catalog's name index, with prefix, and
// counts the boards report themselves. 2,000 boards: twice the old cap.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startWorker, post, get, admin, waitFor, uniqueName } from '../harness.mjs';

let w;
before(async () => { w = await startWorker(); });
after(async () => { await w?.stop(); });

const N = 2000;
const P = uniqueName('cat').slice(0, 40);
const names = Array.from({ length: N }, (_, i) => `${P}-${String(i).padStart(4, '0')}`);

/** Runs `fn` over `items`, `width` at a time. */
async function bounded(items, width, fn) {
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: width }, lane));
}

/** Every page of `GET /v1/boards` with `qs`: the names in the order listed, and the page count. */
async function pages(qs) {
  const seen = [];
  let cursor = null;
  let n = 0;
  for (;;) {
    const r = await get(`${w.url}/v1/boards?${qs}${cursor ? `&cursor=${cursor}` : ''}`);
    assert.equal(r.status, 200, r.text);
    n += 1;
    assert.ok(n <= N, 'the pages end');
    seen.push(...r.json.boards.map((b) => b.name));
    if (r.json.next === null) return { seen, pages: n };
    assert.equal(r.json.next, r.json.boards.at(-1).name, 'the cursor is the last name listed');
    cursor = r.json.next;
  }
}

test('2,000 boards (twice the old cap) are all creatable, and paging lists each exactly once, in name order', async () => {
  const t0 = Date.now();
  await bounded(names, 16, async (name) => {
    const r = await admin(`${w.url}/v1/boards/${name}`, 'PUT', { title: name });
    assert.equal(r.status, 201, `${name}: ${r.text}`);
  });
  console.log(`# created ${N} boards in ${Date.now() - t0} ms`);
  const sorted = [...names].sort();

  // The whole catalog, at the largest page and at a page size that does not divide it.
  const all = await pages('limit=1000');
  assert.equal(all.pages, 2, '2,000 boards at 1,000 a page: two pages, the second without a next');
  assert.deepEqual(all.seen, sorted);
  const odd = await pages('limit=333');
  assert.deepEqual(odd.seen, sorted);
  assert.equal(new Set(odd.seen).size, N, 'each exactly once');

  // A family by prefix: -1xxx is the second thousand, paged 150 at a time.
  const fam = await pages(`prefix=${P}-1&limit=150`);
  assert.deepEqual(fam.seen, sorted.filter((n) => n.startsWith(`${P}-1`)));
  assert.equal(fam.seen.length, 1000);
  const one = await pages(`prefix=${P}-0042`);
  assert.deepEqual(one.seen, [`${P}-0042`]);
  assert.deepEqual((await pages(`prefix=${P}-2`)).seen, [], 'a prefix no board has lists nothing');

  // Every board reads as itself.
  for (const name of [names[0], names[999], names[1000], names[N - 1]]) {
    const r = await get(`${w.url}/v1/boards/${name}`);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.title, name);
  }
});

test('a listed board shows the counts it reported, without the listing asking it; a deleted one is gone', async () => {
  const b = `${P}-0007`;
  const events = ['a', 'b', 'c'].map((m) => ({ type: 'x', board: b, member: m }));
  assert.equal((await post(`${w.url}/v1/events`, events)).status, 202);
  const listed = async () => (await get(`${w.url}/v1/boards?prefix=${b}`)).json.boards[0];
  const got = await waitFor(async () => { const x = await listed(); return x?.members === 3 && x; },
    { timeout: 5000, what: 'the reported counts' });
  assert.equal(got.events, 3);
  assert.equal((await get(`${w.url}/v1/boards/${b}`)).json.members, 3, 'one board is asked directly');
  // A new season starts empty: the listing shows the new season's counts.
  assert.equal((await admin(`${w.url}/v1/boards/${b}/seasons`, 'POST')).status, 200);
  await waitFor(async () => (await listed())?.members === 0, { timeout: 5000, what: 'the new season listed empty' });
  assert.equal((await admin(`${w.url}/v1/boards/${b}`, 'DELETE')).status, 204);
  assert.deepEqual((await get(`${w.url}/v1/boards?prefix=${b}`)).json.boards, []);
  // Re-created: a new generation, whose counts start from nothing.
  assert.equal((await admin(`${w.url}/v1/boards/${b}`, 'PUT', {})).status, 201);
  assert.equal((await listed()).members, 0);
});

test('a board no event has reached reads empty, and its first event shows in the very next read', async () => {
  // Reads of a never-scored board are answered from the catalog (no board
  // object woken); once an event is accepted, that shortcut must never
  // answer again.
  const b = `${P}-fresh`;
  assert.equal((await admin(`${w.url}/v1/boards/${b}`, 'PUT', {})).status, 201);
  const nc = { headers: { 'Cache-Control': 'no-cache' } };
  const empty = await get(`${w.url}/v1/boards/${b}/top?limit=5`, nc);
  assert.equal(empty.status, 200, empty.text);
  assert.deepEqual([empty.json.total, empty.json.entries], [0, []]);
  assert.equal((await get(`${w.url}/v1/boards/${b}/members/ann`, nc)).status, 404);
  assert.equal((await get(`${w.url}/v1/boards/${b}/members/ann/around`, nc)).status, 404);
  const sent = await post(`${w.url}/v1/events?wait=applied`, { type: 'x', board: b, member: 'ann', value: 5 });
  assert.equal(sent.status, 200, sent.text);
  const top = await get(`${w.url}/v1/boards/${b}/top?limit=5`, nc);
  assert.deepEqual(top.json.entries.map((e) => [e.member, e.score]), [['ann', 5]]);
  assert.equal((await get(`${w.url}/v1/boards/${b}/members/ann`, nc)).json.rank, 1);
});

test('a first event refused for its value marks nothing: the board keeps changeable order and op, and a new board named beside it is not created', async () => {
  // The lookup of a board's record and the mark "holds scores" are one call
  // to the catalog, which marks only when the request's values are in bounds.
  const b = `${P}-bounded`;
  const pair = (beside, value) => post(`${w.url}/v1/events`, [
    { type: 'x', board: beside, member: 'ann', value: 1 },
    { type: 'x', board: b, member: 'ann', value },
  ]);
  /** A request whose second event breaks `b`'s max: 400 naming it, and the board beside it not created. */
  const refusedBeside = async (beside, why) => {
    const r = await pair(beside, 11);
    assert.equal(r.status, 400, r.text);
    assert.deepEqual([r.json.error.code, r.json.error.index], ['value_out_of_range', 1]);
    assert.equal((await get(`${w.url}/v1/boards/${beside}`)).status, 404, why);
  };
  assert.equal((await admin(`${w.url}/v1/boards/${b}`, 'PUT', { min: 0, max: 10 })).status, 201);
  await refusedBeside(`${P}-never`, 'the board beside it was not created');
  assert.equal((await admin(`${w.url}/v1/boards/${b}`, 'PUT', { op: 'best' })).status, 200, 'op still changeable');
  const taken = await pair(`${P}-never`, 10);
  assert.equal(taken.status, 202, taken.text);
  assert.equal((await admin(`${w.url}/v1/boards/${b}`, 'PUT', { op: 'incr' })).status, 409, 'its first event fixed op');
  assert.equal((await get(`${w.url}/v1/boards/${P}-never`)).status, 200, 'created by its first event');
  // Now the bounded board is held (fresh, scored) by the isolate: its bound
  // still refuses the request before a new board beside it is created.
  await refusedBeside(`${P}-never2`, 'nothing created by a refused request');
});

test('?wait=applied with more events than it waits for is refused before any board is created', async () => {
  const b = `${P}-waited`;
  const r = await post(`${w.url}/v1/events?wait=applied`, Array.from({ length: 101 }, (_, i) => ({ type: 'x', board: b, member: `m${i}` })));
  assert.equal(r.status, 400, r.text);
  assert.equal(r.json.error.code, 'too_many_events');
  assert.equal((await get(`${w.url}/v1/boards/${b}`)).status, 404, 'the refused request created nothing');
});

test('counts changed (a removal, then an event) just before a restart still reach the listing', async () => {
  // A period that changed keeps "not reported" in its storage until the
  // catalog hears it, so the alarm that wakes it after a restart reports.
  // Each change comes within ~1.2 s of a report (an event with
  // ?wait=applied goes through the Queue), the next report waits 5 s here
  // (REPORT_EVERY_MS, a test var; 1 s in production), and the worker is
  // SIGKILLed right after the change: a graceful stop could let it run.
  const w2 = await startWorker({ vars: { PODIUM_TEST_FAULTS: '1', REPORT_EVERY_MS: '5000' } });
  try {
    const b = `${P}-restarted`;
    const sent = await post(`${w2.url}/v1/events?wait=applied`, ['a', 'b', 'c', 'd'].map((m) => ({ type: 'x', board: b, member: m })));
    assert.equal(sent.status, 200, sent.text);
    const listed = async () => (await get(`${w2.url}/v1/boards?prefix=${b}`)).json?.boards?.[0]?.members;
    await waitFor(async () => (await listed()) === 4, { timeout: 10_000, interval: 20, what: 'the first counts listed' });
    const gone = await admin(`${w2.url}/v1/boards/${b}/members/a`, 'DELETE');
    assert.equal(gone.status, 200, gone.text);
    await w2.crash();
    await w2.start();
    await waitFor(async () => (await listed()) === 3, { timeout: 20_000, interval: 20, what: 'the counts listed after the restart' });
    // The same for an applied event (its own transaction clears the flag).
    const more = await post(`${w2.url}/v1/events?wait=applied`, [{ type: 'x', board: b, member: 'e' }]);
    assert.equal(more.status, 200, more.text);
    await w2.crash();
    await w2.start();
    await waitFor(async () => (await listed()) === 4, { timeout: 20_000, interval: 250, what: 'the counts listed after the second restart' });
  } finally {
    await w2.stop();
  }
});

test('a route template feeds boards it creates by name, listed by their family prefix', async () => {
  const type = uniqueName('lvl');
  const fam = uniqueName('lv').slice(0, 30);
  const route = await admin(`${w.url}/v1/routes/${type}`, 'PUT', { targets: [{ board: `${fam}-{meta.level}` }] });
  assert.ok([200, 201].includes(route.status), route.text);
  const events = Array.from({ length: 60 }, (_, i) => ({ type, member: `p${i % 7}`, meta: { level: String(i % 30) } }));
  assert.equal((await post(`${w.url}/v1/events`, events)).status, 202);
  const want = Array.from({ length: 30 }, (_, i) => `${fam}-${i}`).sort();
  const { seen } = await pages(`prefix=${fam}-&limit=7`);
  assert.deepEqual(seen, want);
  await waitFor(async () => (await get(`${w.url}/v1/boards/${fam}-3/top`)).json?.total === 2,
    { timeout: 5000, what: 'level 3 applied' });
});

test('a sharded board is listed with the sum of what its shards reported', async () => {
  const b = uniqueName('shd');
  assert.equal((await admin(`${w.url}/v1/boards/${b}`, 'PUT', { shards: 4 })).status, 201);
  const events = Array.from({ length: 24 }, (_, i) => ({ type: 'x', board: b, member: `m${i % 12}` }));
  assert.equal((await post(`${w.url}/v1/events`, events)).status, 202);
  const got = await waitFor(async () => {
    const x = (await get(`${w.url}/v1/boards?prefix=${b}`)).json.boards[0];
    return x?.members === 12 && x?.events === 24 && x;
  }, { timeout: 5000, what: 'the shards\' counts summed' });
  const one = (await get(`${w.url}/v1/boards/${b}`)).json;
  assert.deepEqual([got.members, got.events], [one.members, one.events], 'listed as the board reads');
});
