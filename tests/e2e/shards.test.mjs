// Sharded boards (API 1.1 `shards`): one route feeds the same events to a
// board on one object and to the same board spread over several; every
// read must then be the same: top at any offset, each member's standing
// (rank, total, percentile), around, lookup, export, the live snapshot, the
// board's counts, and read-your-write. Hidden and removed members, too.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { post, get, admin, waitFor, uniqueName, drain, faultyWorker, ADMIN_KEY } from '../harness.mjs';

// Pages whose offset + limit from every shard would pass 40 entries are
// deep pages here (100,000 deployed): probed for where they start, so the
// reads below compare both ways of reading a sharded page.
const fx = faultyWorker({ SHARD_GATHER_MAX: '40' });
const boardUrl = (b) => `${fx.w.url}/v1/boards/${b}`;
const json = async (url) => {
  const r = await get(url);
  assert.equal(r.status, 200, `${url}: ${r.text}`);
  return r.json;
};
const noBoard = ({ board: _b, ...rest }) => rest;

/** A plain board and a `shards`-object twin with the same settings, both fed by one event type. */
async function twins(settings, shards) {
  const one = uniqueName('one');
  const many = uniqueName('many');
  for (const [b, n] of [[one, 1], [many, shards]]) {
    const r = await admin(boardUrl(b), 'PUT', { ...settings, shards: n });
    assert.equal(r.status, 201, r.text);
    assert.equal(r.json.shards, n);
  }
  const type = uniqueName('t');
  const r = await admin(`${fx.w.url}/v1/routes/${type}`, 'PUT', { targets: [{ board: one }, { board: many }] });
  assert.equal(r.status, 201, r.text);
  return { one, many, type };
}

/** Deterministic pseudo-random events with heavy ties (few values, shared timestamps). */
function events(type, n, members, seed) {
  let x = seed;
  const rnd = () => { x = (x * 1103515245 + 12345) % 2147483648; return x / 2147483648; };
  const t = Date.now() - 60_000;
  return Array.from({ length: n }, () => ({
    type,
    member: `m${Math.floor(rnd() * members)}`,
    value: [1, 2, 3, 5][Math.floor(rnd() * 4)],
    ts: t + Math.floor(rnd() * 3),
  }));
}

async function feed(tw, evs) {
  for (let i = 0; i < evs.length; i += 500) {
    const r = await post(fx.EV, evs.slice(i, i + 500));
    assert.equal(r.status, 202, r.text);
  }
  const want = new Set(evs.map((e) => e.member)).size;
  for (const b of [tw.one, tw.many]) {
    await waitFor(async () => (await json(`${boardUrl(b)}/top?limit=1`)).total >= want, { timeout: 15000, what: `${b} has ${want} members` });
  }
  await drain(fx.w.url);
}

/** Every read of the two boards, compared. */
async function sameReads(tw, members) {
  for (const qs of ['limit=1000', 'limit=7&offset=0', 'limit=5&offset=3', 'limit=10&offset=37', 'limit=3&offset=1000']) {
    const [a, b] = [await json(`${boardUrl(tw.one)}/top?${qs}`), await json(`${boardUrl(tw.many)}/top?${qs}`)];
    assert.deepEqual(noBoard(b), noBoard(a), `top?${qs}`);
  }
  for (const [i, m] of members.entries()) {
    const [a, b] = [await get(`${boardUrl(tw.one)}/members/${m}`), await get(`${boardUrl(tw.many)}/members/${m}`)];
    assert.equal(b.status, a.status, `standing of ${m}`);
    assert.deepEqual(b.json, a.json, `standing of ${m}`);
    if (i % 3 !== 0) continue; // around for a third of them: enough ties and edges, a third of the time
    for (const radius of [1, 4]) {
      const [x, y] = [await get(`${boardUrl(tw.one)}/members/${m}/around?radius=${radius}`), await get(`${boardUrl(tw.many)}/members/${m}/around?radius=${radius}`)];
      assert.equal(y.status, x.status, `around ${m}`);
      if (x.status === 200) assert.deepEqual(noBoard(y.json), noBoard(x.json), `around ${m} r=${radius}`);
    }
  }
  const ask = { members: [...members.slice(0, 40), 'nobody', members[0]] };
  const [la, lb] = [await post(`${boardUrl(tw.one)}/lookup`, ask), await post(`${boardUrl(tw.many)}/lookup`, ask)];
  assert.equal(lb.status, 200, lb.text);
  assert.deepEqual(noBoard(lb.json), noBoard(la.json), 'lookup');
}

describe('sharded boards', () => {
  for (const [ties, shards] of [['shared', 4], ['first', 3]]) {
    test(`every read of a ${shards}-shard board equals the one-object board fed the same events (ties: ${ties})`, async () => {
      const tw = await twins({ ties, windows: ['all', 'day'] }, shards);
      const evs = events(tw.type, 800, 60, ties === 'shared' ? 7 : 11);
      await feed(tw, evs);
      const members = [...new Set(evs.map((e) => e.member))].sort();
      await sameReads(tw, members);
      // the day window too, and the counts the boards show
      const [a, b] = [await json(`${boardUrl(tw.one)}/top?window=day&limit=50`), await json(`${boardUrl(tw.many)}/top?window=day&limit=50`)];
      assert.deepEqual(noBoard(b), noBoard(a), 'day window');
      const [va, vb] = [await json(boardUrl(tw.one)), await json(boardUrl(tw.many))];
      assert.deepEqual([vb.members, vb.events], [va.members, va.events], 'board counts');
      assert.equal(va.events, evs.length);

      // hiding and removing reach the right shard; reads stay equal
      const [hidden, removed] = [members[3], members[5]];
      for (const b of [tw.one, tw.many]) {
        assert.equal((await admin(`${boardUrl(b)}/members/${hidden}/hidden`, 'PUT')).status, 200);
        const r = await admin(`${boardUrl(b)}/members/${removed}`, 'DELETE');
        assert.equal(r.status, 200, r.text);
        assert.equal(r.json.removed, 2, 'removed from the all and day periods');
      }
      await sameReads(tw, members);
      const own = await json(`${boardUrl(tw.many)}/members/${hidden}`);
      assert.ok(own.rank >= 1, 'a hidden member still reads its own standing');
      assert.equal((await get(`${boardUrl(tw.many)}/members/${removed}`)).status, 404);

      // export: the same lines, in the same order, with the same ranks
      const [ea, eb] = [await get(`${boardUrl(tw.one)}/export?format=ndjson`, { key: ADMIN_KEY }), await get(`${boardUrl(tw.many)}/export?format=ndjson`, { key: ADMIN_KEY })];
      assert.equal(eb.status, 200, eb.text);
      assert.equal(eb.text, ea.text);
      assert.equal(eb.text.trim().split('\n').length, members.length - 1);
    });
  }

  test('the live snapshot and updates are the merged top of every shard', async () => {
    const tw = await twins({}, 5);
    await feed(tw, events(tw.type, 300, 40, 3));
    const open = (b) => new Promise((resolve, reject) => {
      const ws = new WebSocket(`${fx.w.url.replace('http', 'ws')}/v1/boards/${b}/live?limit=20`);
      fx.sockets.add(ws);
      const messages = [];
      ws.on('message', (raw) => messages.push(JSON.parse(raw.toString())));
      ws.once('open', () => resolve(messages));
      ws.once('error', reject);
    });
    const [ma, mb] = [await open(tw.one), await open(tw.many)];
    await waitFor(() => ma.length && mb.length, { what: 'both snapshots' });
    assert.equal(mb[0].type, 'snapshot');
    assert.deepEqual(mb[0].entries, ma[0].entries);
    assert.equal(mb[0].total, ma[0].total);
    // a newcomer takes the lead on one shard: every viewer sees the new merged top
    const r = await post(fx.EV, [{ type: tw.type, member: 'leader', value: 10_000 }]);
    assert.equal(r.status, 202);
    const last = (ms) => ms[ms.length - 1];
    await waitFor(() => last(mb).entries[0]?.member === 'leader' && last(ma).entries[0]?.member === 'leader', { timeout: 5000, what: 'leader on both' });
    await waitFor(() => JSON.stringify(last(mb).entries) === JSON.stringify(last(ma).entries), { timeout: 3000, what: 'same merged top' });
    assert.equal(last(mb).total, last(ma).total);
  });

  test('read your write on a sharded board: ?wait=applied answers the merged rank', async () => {
    const tw = await twins({ windows: ['all', 'day'] }, 8);
    await feed(tw, events(tw.type, 200, 30, 5));
    const r = await post(`${fx.EV}?wait=applied`, [{ type: tw.type, member: 'm7', value: 4 }]);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.applied, true);
    const mine = r.json.standings.filter((s) => s.board === tw.many && s.window === 'all');
    const theirs = r.json.standings.filter((s) => s.board === tw.one && s.window === 'all');
    assert.equal(mine.length, 1);
    assert.deepEqual([mine[0].rank, mine[0].score], [theirs[0].rank, theirs[0].score]);
    assert.equal(mine[0].rank, (await json(`${boardUrl(tw.many)}/members/m7`)).rank);
  });

  test('an import spreads over the shards and reads back as the one-object board', async () => {
    const one = uniqueName('imp1');
    const many = uniqueName('impn');
    const lines = Array.from({ length: 300 }, (_, i) => JSON.stringify({ member: `p${i}`, score: i % 17, reached: 1_700_000_000_000 + (i % 5) })).join('\n');
    for (const [b, n] of [[one, 1], [many, 6]]) {
      assert.equal((await admin(boardUrl(b), 'PUT', { shards: n, ties: 'first' })).status, 201);
      const r = await post(`${boardUrl(b)}/import`, lines, { key: ADMIN_KEY, contentType: 'application/x-ndjson' });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.imported, 300);
    }
    const [a, b] = [await json(`${boardUrl(one)}/top?limit=1000`), await json(`${boardUrl(many)}/top?limit=1000`)];
    assert.equal(b.total, 300);
    assert.deepEqual(noBoard(b), noBoard(a));
  });

  test('deep pages of a 64-shard board, probed for where they start, equal the one-object board\'s at every offset', async () => {
    for (const ties of ['shared', 'first']) {
      const tw = await twins({ ties }, 64);
      const evs = events(tw.type, 900, 300, ties === 'shared' ? 5 : 13);
      await feed(tw, evs);
      const total = new Set(evs.map((e) => e.member)).size;
      for (const offset of [0, 1, 63, Math.floor(total / 2), total - 7, total - 1, total, 100_000_000]) {
        for (const limit of [1, 10, 100]) {
          const qs = `offset=${offset}&limit=${limit}`;
          const [a, b] = [await json(`${boardUrl(tw.one)}/top?${qs}`), await json(`${boardUrl(tw.many)}/top?${qs}`)];
          assert.deepEqual(noBoard(b), noBoard(a), `top?${qs} (ties: ${ties})`);
        }
      }
    }
  });

  test('shards is 1 to 64 and fixed once the board holds scores', async () => {
    const b = uniqueName('sh');
    for (const bad of [0, 65, 2.5, '4']) {
      const r = await admin(boardUrl(b), 'PUT', { shards: bad });
      assert.equal(r.status, 400, `${bad}: ${r.text}`);
      assert.equal(r.json.error.field, 'shards');
    }
    assert.equal((await get(boardUrl(b))).status, 404, 'a refused PUT created nothing');
    assert.equal((await admin(boardUrl(b), 'PUT', { shards: 64 })).status, 201);
    assert.equal((await admin(boardUrl(b), 'PUT', { shards: 2 })).status, 200, 'no scores yet: free to change');
    assert.equal((await post(fx.EV, [{ type: 'x', board: b, member: 'a' }])).status, 202);
    await waitFor(async () => (await json(boardUrl(b))).members === 1, { what: 'scored' });
    const r = await admin(boardUrl(b), 'PUT', { shards: 4 });
    assert.equal(r.status, 409, r.text);
    assert.equal((await json(boardUrl(b))).shards, 2);
  });
});
