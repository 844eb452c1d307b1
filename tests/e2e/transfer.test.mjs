// Export and import (API 1.1): a board period out as NDJSON or CSV, streamed
// best first; NDJSON in, all or nothing; and a Redis sorted set moved in by
// tools/load's redis-import against a private redis-server.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { existsSync } from 'node:fs';
import { startWorker, post, get, admin, waitFor, uniqueName, freePort, ROOT, ADMIN_KEY } from '../harness.mjs';

let w;
let EV;
before(async () => {
  w = await startWorker();
  EV = `${w.url}/v1/events`;
});
after(async () => { await w?.stop(); });

const exportOf = (b, qs = '') =>
  get(`${w.url}/v1/boards/${b}/export${qs ? `?${qs}` : ''}`, { key: ADMIN_KEY });
const importInto = (b, body, { qs = '', contentType = 'application/x-ndjson', key = ADMIN_KEY, headers = {} } = {}) =>
  post(`${w.url}/v1/boards/${b}/import${qs ? `?${qs}` : ''}`, body, { key, contentType, headers });
const ndjson = (text) => text.split('\n').filter(Boolean).map((l) => JSON.parse(l));
const topOf = async (b) => (await get(`${w.url}/v1/boards/${b}/top?limit=1000`)).json;

async function seeded(settings) {
  const b = uniqueName('ex');
  assert.equal((await admin(`${w.url}/v1/boards/${b}`, 'PUT', settings)).status, 201);
  const t0 = Date.now() - 60_000;
  // Ties on purpose: equal scores reached at different times, and at the same time.
  const evs = [
    { member: 'alice', value: 5, ts: t0 + 3, meta: { name: 'Alice' } },
    { member: 'bob', value: 5, ts: t0 + 1 },
    { member: '=HYPERLINK("http://x")', value: 2, ts: t0 + 5 },
    { member: 'carol', value: 9, ts: t0 + 2 },
    { member: 'dave', value: 2, ts: t0 + 5 },
    { member: 'erin, "the" second', value: -1, ts: t0 + 4, meta: { note: 'a,b' } },
  ].map((e, i) => ({ type: 'hit', board: b, id: `${b}-${i}`, ...e }));
  const r = await post(EV, evs);
  assert.equal(r.status, 202, r.text);
  await waitFor(async () => (await topOf(b))?.total === evs.length, { timeout: 10_000, what: `${b} seeded` });
  return b;
}

describe('export', () => {
  test('NDJSON lists the whole period best first with rank, score, reached and meta', async () => {
    const b = await seeded({ ties: 'first' });
    const r = await exportOf(b);
    assert.equal(r.status, 200, r.text);
    assert.match(r.headers.get('content-type'), /application\/x-ndjson/);
    assert.match(r.headers.get('content-disposition'), /attachment; filename=".+\.ndjson"/);
    const lines = ndjson(r.text);
    assert.deepEqual(lines.map((l) => [l.rank, l.member, l.score]), [
      [1, 'carol', 9], [2, 'bob', 5], [3, 'alice', 5], [4, '=HYPERLINK("http://x")', 2], [5, 'dave', 2], [6, 'erin, "the" second', -1],
    ]);
    assert.deepEqual(lines[2].meta, { name: 'Alice' });
    assert.ok(lines.every((l) => Number.isInteger(l.reached) && l.reached > 0));
    assert.ok(lines[1].reached < lines[2].reached, 'bob reached 5 first');
    // The same as the public top, line for line.
    const top = await topOf(b);
    assert.deepEqual(lines.map((l) => [l.rank, l.member, l.score]), top.entries.map((e) => [e.rank, e.member, e.score]));
  });

  test('CSV has a header, quotes what needs it and escapes cells a spreadsheet would run', async () => {
    const b = await seeded({});
    const r = await exportOf(b, 'format=csv');
    assert.equal(r.status, 200, r.text);
    assert.match(r.headers.get('content-type'), /text\/csv/);
    const rows = r.text.split('\r\n');
    assert.equal(rows[0], 'rank,member,score,reached,meta,hidden');
    assert.ok(rows.some((l) => /^4,"'=HYPERLINK\(""http:\/\/x""\)",2,\d+,,$/.test(l)), r.text);
    assert.ok(rows.some((l) => /^6,"erin, ""the"" second",-1,\d+,"{""note"":""a,b""}",$/.test(l)), r.text);
    assert.ok(!rows.some((l) => /(^|,)=/.test(l)), 'no cell starts with =');
  });

  test('a large board streams whole, and the export needs the admin key', async () => {
    const b = uniqueName('exbig');
    const evs = Array.from({ length: 2500 }, (_, i) => ({ type: 'hit', board: b, member: `m${i}`, value: i % 700, id: `${b}-${i}` }));
    for (let i = 0; i < evs.length; i += 1000) assert.equal((await post(EV, evs.slice(i, i + 1000))).status, 202);
    await waitFor(async () => (await topOf(b))?.total === 2500, { timeout: 15_000, what: 'big board' });
    const lines = ndjson((await exportOf(b)).text);
    assert.equal(lines.length, 2500, 'pages of 1000 joined without a gap or a repeat');
    assert.equal(new Set(lines.map((l) => l.member)).size, 2500);
    assert.ok(lines.every((l, i) => i === 0 || lines[i - 1].score >= l.score));
    assert.equal((await get(`${w.url}/v1/boards/${b}/export`)).status, 401);
    assert.equal((await exportOf(b, 'format=xml')).status, 400);
    assert.equal((await exportOf(uniqueName('nob'))).status, 404);
  });
});

describe('import', () => {
  test("an export imported into another board gives the same board, ties included", async () => {
    const a = await seeded({ ties: 'shared' });
    const text = (await exportOf(a)).text;
    const b = uniqueName('im');
    assert.equal((await admin(`${w.url}/v1/boards/${b}`, 'PUT', { ties: 'shared' })).status, 201);
    const r = await importInto(b, text);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json, { imported: 6 });
    assert.equal((await exportOf(b)).text, text);
    const strip = (t) => t.entries;
    assert.deepEqual(strip(await topOf(b)), strip(await topOf(a)));
  });

  test('sets scores as given, over what the board held', async () => {
    const b = await seeded({});
    const r = await importInto(b, '{"member":"alice","score":100,"reached":5}\n{"member":"zed","score":1.5}\n');
    assert.equal(r.status, 200, r.text);
    const top = await topOf(b);
    assert.deepEqual(top.entries[0], { rank: 1, member: 'alice', score: 100 });
    assert.equal(top.total, 7);
    assert.equal(top.entries.find((e) => e.member === 'zed').score, 1.5);
    // Events apply on top of the imported score.
    assert.equal((await post(EV, { type: 'hit', board: b, member: 'zed', value: 2 })).status, 202);
    await waitFor(async () => (await topOf(b)).entries.find((e) => e.member === 'zed')?.score === 3.5, { what: 'zed at 3.5' });
  });

  test('a bad line, a value out of range or a wrong request changes nothing', async () => {
    const b = uniqueName('imbad');
    assert.equal((await admin(`${w.url}/v1/boards/${b}`, 'PUT', { min: 0, max: 10 })).status, 201);
    const good = '{"member":"a","score":1}\n';
    const cases = [
      [good + '{"member":"b"}\n', 400, 'invalid_entry', 1],
      [good + '{"member":"b","score":11}\n', 400, 'invalid_entry', 1],
      [good + 'not json\n', 400, 'invalid_json', 1],
      [good + '{"member":"b","score":1,"color":"red"}\n', 400, 'unknown_field', 1],
      [good + good, 400, 'invalid_entry', 1],
      ['', 400, 'invalid_body', undefined],
    ];
    for (const [body, status, code, index] of cases) {
      const r = await importInto(b, body);
      assert.equal(r.status, status, `${JSON.stringify(body)} → ${r.text}`);
      assert.equal(r.json.error.code, code, r.text);
      assert.equal(r.json.error.index, index, r.text);
    }
    assert.equal((await importInto(b, good, { contentType: 'text/plain' })).status, 415);
    assert.equal((await importInto(b, good, { key: 'dev-ingest-key' })).status, 401);
    assert.equal((await importInto(uniqueName('nob'), good)).status, 404);
    const huge = '{"member":"x","score":1}\n'.repeat(45_000);
    assert.ok(huge.length > 1024 * 1024);
    assert.equal((await importInto(b, huge)).status, 413);
    assert.equal((await topOf(b)).total, 0, 'nothing was imported');
    // A repeat with the same Idempotency-Key answers the first import; the
    // key with another body is refused; neither sets anything.
    const key = { 'Idempotency-Key': `im-${b}` };
    assert.equal((await importInto(b, good, { headers: key })).status, 200);
    assert.equal((await post(EV, { type: 'hit', board: b, member: 'a', value: 2, id: `${b}-a` })).status, 202);
    await waitFor(async () => (await topOf(b)).entries[0]?.score === 3, { what: 'a at 3' });
    const repeat = await importInto(b, good, { headers: key });
    assert.deepEqual([repeat.status, repeat.json], [200, { imported: 1 }]);
    const other = await importInto(b, '{"member":"a","score":7}\n', { headers: key });
    assert.equal(other.status, 422, other.text);
    assert.equal(other.json.error.code, 'idempotency_key_reused');
    assert.equal((await topOf(b)).entries[0].score, 3, 'neither the repeat nor the reused key set anything');
  });
});

describe('moving a Redis sorted set in', () => {
  let redis;
  let port;
  before(async () => {
    port = await freePort();
    redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    await waitFor(() => {
      try { return execFileSync('redis-cli', ['-p', String(port), 'ping']).toString().trim() === 'PONG'; } catch { return false; }
    }, { timeout: 10_000, what: 'redis-server' });
  });
  after(() => { redis?.kill('SIGKILL'); });

  test('redis-import moves a 100,000-member set into a board with the same order and scores', async () => {
    const bin = join(ROOT, 'tools/load/target/release/redis-import');
    assert.ok(existsSync(bin), `${bin} is missing: cargo build --release --manifest-path tools/load/Cargo.toml`);
    const key = 'game:scores';
    const n = 100_000;
    // ZADD in RESP through redis-cli --pipe: distinct scores (so the order is
    // the same whatever the tie rule), some decimals.
    const resp = (args) => `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;
    let cmds = '';
    for (let i = 0; i < n; i += 1) cmds += resp(['ZADD', key, String((i * 7919) % n + 0.5), `player:${i}`]);
    execFileSync('redis-cli', ['-p', String(port), '--pipe'], { input: cmds });
    assert.equal(execFileSync('redis-cli', ['-p', String(port), 'ZCARD', key]).toString().trim(), String(n));

    const b = uniqueName('redis');
    assert.equal((await admin(`${w.url}/v1/boards/${b}`, 'PUT', {})).status, 201);
    const out = execFileSync(bin, ['--redis-url', `redis://127.0.0.1:${port}`, '--key', key, '--url', w.url, '--board', b],
      { env: { ...process.env, PODIUM_ADMIN_KEY: ADMIN_KEY }, maxBuffer: 1 << 24 }).toString();
    const report = JSON.parse(out.split('\n').find((l) => l.startsWith('{"tool":"redis-import"')));
    assert.equal(report.imported, n);

    const top = (await get(`${w.url}/v1/boards/${b}/top?limit=20`)).json;
    assert.equal(top.total, n);
    const zrev = execFileSync('redis-cli', ['-p', String(port), 'ZRANGE', key, '0', '19', 'REV', 'WITHSCORES']).toString().trim().split('\n');
    const expected = [];
    for (let i = 0; i < zrev.length; i += 2) expected.push([zrev[i], Number(zrev[i + 1])]);
    assert.deepEqual(top.entries.map((e) => [e.member, e.score]), expected);
    const someone = (await get(`${w.url}/v1/boards/${b}/members/player:4242`)).json;
    assert.equal(someone.score, Number(execFileSync('redis-cli', ['-p', String(port), 'ZSCORE', key, 'player:4242']).toString().trim()));
    assert.equal(someone.rank, Number(execFileSync('redis-cli', ['-p', String(port), 'ZREVRANK', key, 'player:4242']).toString().trim()) + 1);
  });
});
