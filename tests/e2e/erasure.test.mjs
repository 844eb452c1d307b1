// Erasure of a member across every board (API 1.1): DELETE /v1/members/{member}
// → 202, GET /v1/erasures/{id}; 50 boards with windows, a SIGKILL of
// workerd in the middle, and the member's dead letters.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startWorker, post, get, admin, waitFor, uniqueName, ADMIN_KEY } from '../harness.mjs';

let w;
before(async () => { w = await startWorker({ vars: { PODIUM_TEST_FAULTS: '1' } }); });
after(async () => { await w?.stop(); });

const erase = (m, headers = {}) =>
  post(`${w.url}/v1/members/${encodeURIComponent(m)}`, undefined, { key: ADMIN_KEY, method: 'DELETE', contentType: undefined, headers });
const statusOf = (id) => get(`${w.url}/v1/erasures/${id}`, { key: ADMIN_KEY });
const standing = (b, m, qs = '') => get(`${w.url}/v1/boards/${b}/members/${encodeURIComponent(m)}${qs}`);

test('a dead letter of an event accepted before an erasure is not kept, even when it dies after the erasure is done', async () => {
  // Run first, while the catalog holds few boards: the erasure must be done
  // before the Queue gives up on the event (10 retries, about 10 s).
  const b = uniqueName('erlate');
  const until = Date.now() + 600_000;
  const gone = `__fault:fail:${until}`;
  // A witness in the same request (the same Queue message, so the same dead
  // letter batch): when its letter is there, the erased one's would be too.
  const witness = `__fault:fail:${until + 1}`;
  assert.equal((await post(`${w.url}/v1/events`, [
    { type: 'hit', board: b, member: gone, id: `${b}-gone` },
    { type: 'hit', board: b, member: witness, id: `${b}-witness` },
  ])).status, 202);
  const r = await erase(gone);
  assert.equal(r.status, 202, r.text);
  await waitFor(async () => (await statusOf(r.json.erasure)).json?.status === 'done', { timeout: 30_000, interval: 100, what: 'done' });
  const letters = async () => (await get(`${w.url}/v1/dead-letters?limit=1000`, { key: ADMIN_KEY })).json.dead_letters;
  assert.ok(!(await letters()).some((l) => l.event.id === `${b}-witness`), 'the erasure finished before the events died (else this proves nothing)');
  const now = await waitFor(async () => {
    const ls = await letters();
    return ls.some((l) => l.event.id === `${b}-witness`) && ls;
  }, { timeout: 60_000, interval: 500, what: "the witness's dead letter" });
  assert.ok(!now.some((l) => l.event.member === gone), 'the erased member came back as a dead letter');
  // An event accepted after the erasure counts again, dead letters too.
  const after = `${b}-again`;
  assert.equal((await post(`${w.url}/v1/events`, [{ type: 'hit', board: b, member: gone, id: after }])).status, 202);
  await waitFor(async () => (await letters()).some((l) => l.event.id === after), { timeout: 60_000, interval: 500, what: 'a dead letter of a later event' });
});

test('a member is erased from 50 boards, every window, even with a restart in the middle', async () => {
  const prefix = uniqueName('er').slice(0, 30);
  const boards = Array.from({ length: 50 }, (_, i) => `${prefix}-${String(i).padStart(2, '0')}`);
  for (const b of boards) assert.equal((await admin(`${w.url}/v1/boards/${b}`, 'PUT', { windows: ['all', 'day'] })).status, 201);
  const who = `gone-${prefix}`;
  const evs = boards.flatMap((b) => [
    { type: 'hit', board: b, member: who, value: 3 },
    { type: 'hit', board: b, member: 'stays', value: 1 },
  ]);
  assert.equal((await post(`${w.url}/v1/events`, evs)).status, 202);
  await waitFor(async () => {
    for (const b of [boards[0], boards[49]]) if ((await standing(b, 'stays', '?window=day')).status !== 200) return false;
    return true;
  }, { timeout: 20_000, what: 'seeded' });
  for (const b of boards) await waitFor(async () => (await standing(b, who)).status === 200, { timeout: 10_000, what: b });

  const r = await erase(who);
  assert.equal(r.status, 202, r.text);
  assert.equal(r.json.status, 'running');
  assert.match(r.json.erasure, /^[0-9a-f]{32}$/);
  const id = r.json.erasure;
  // Killed at once, with most boards still to do; the erasure resumes after.
  const midway = (await statusOf(id)).json;
  await w.crash();
  assert.equal(midway.status, 'running', `the crash came after the erasure finished: ${JSON.stringify(midway)}`);
  console.log(`# erasure at the crash: ${JSON.stringify(midway)}`);
  await w.start();
  const done = await waitFor(async () => {
    const s = await statusOf(id);
    return s.json?.status === 'done' && s.json;
  }, { timeout: 60_000, interval: 250, what: 'erasure done' });
  assert.deepEqual(done, { status: 'done', boards: 50, periods: 100 });
  for (const b of boards) {
    for (const qs of ['', '?window=day']) {
      assert.equal((await standing(b, who, qs)).status, 404, `${b} ${qs}`);
      assert.equal((await standing(b, 'stays', qs)).status, 200, `${b} ${qs} kept the others`);
    }
  }
  // Events accepted after the erasure count again.
  assert.equal((await post(`${w.url}/v1/events`, { type: 'hit', board: boards[7], member: who, value: 2 })).status, 202);
  await waitFor(async () => (await standing(boards[7], who)).json?.score === 2, { timeout: 10_000, what: 'back at 2' });
});

test("the member's dead letters go too, and the calls need the admin key", async () => {
  const b = uniqueName('erdl');
  const who = `dl-${b}`;
  // A board that fails for this member until the Queue gives up: a dead letter.
  const until = Date.now() + 600_000;
  assert.equal((await post(`${w.url}/v1/events`, [
    { type: 'hit', board: b, member: `__fault:fail:${until}`, id: `${b}-f` },
  ])).status, 202);
  const letters = async () => (await get(`${w.url}/v1/dead-letters?limit=1000`, { key: ADMIN_KEY })).json.dead_letters;
  await waitFor(async () => (await letters()).some((l) => l.event.id === `${b}-f`), { timeout: 60_000, interval: 500, what: 'dead letter' });
  const faulty = `__fault:fail:${until}`;
  const r = await erase(faulty);
  assert.equal(r.status, 202, r.text);
  await waitFor(async () => (await statusOf(r.json.erasure)).json?.status === 'done', { timeout: 30_000, what: 'done' });
  assert.ok(!(await letters()).some((l) => l.event.member === faulty), 'no dead letter holds the member');

  assert.equal((await post(`${w.url}/v1/members/${who}`, undefined, { method: 'DELETE', contentType: undefined })).status, 401);
  assert.equal((await get(`${w.url}/v1/erasures/${r.json.erasure}`)).status, 401);
  const unknown = await statusOf('0123456789abcdef0123456789abcdef');
  assert.equal(unknown.status, 404);
  assert.equal(unknown.json.error.code, 'erasure_not_found');
  const key = { 'Idempotency-Key': `er-${b}` };
  const one = await erase(who, key);
  const two = await erase(who, key);
  assert.equal(two.json.erasure, one.json.erasure, 'a repeated key starts one erasure');
});

test('an erasure takes the member off every hidden list: it comes back visible', async () => {
  const b = uniqueName('erhid');
  const who = `hid-${b}`;
  assert.equal((await post(`${w.url}/v1/events`, [
    { type: 'hit', board: b, member: who, value: 9 },
    { type: 'hit', board: b, member: 'other', value: 1 },
  ])).status, 202);
  await waitFor(async () => (await standing(b, who)).status === 200, { timeout: 10_000, what: 'seeded' });
  const hid = await post(`${w.url}/v1/boards/${b}/members/${who}/hidden`, undefined, { key: ADMIN_KEY, method: 'PUT', contentType: undefined });
  assert.equal(hid.status, 200, hid.text);
  const hiddenList = async () => (await get(`${w.url}/v1/boards/${b}/hidden`, { key: ADMIN_KEY })).json;
  assert.ok(JSON.stringify(await hiddenList()).includes(who), 'hidden before the erasure');
  const r = await erase(who);
  assert.equal(r.status, 202, r.text);
  await waitFor(async () => (await statusOf(r.json.erasure)).json?.status === 'done', { timeout: 30_000, what: 'done' });
  const after = await hiddenList();
  assert.ok(!JSON.stringify(after).includes(who), `the hidden list still holds the member: ${JSON.stringify(after)}`);
  // Back by a new event: on the board for everyone to see.
  assert.equal((await post(`${w.url}/v1/events`, { type: 'hit', board: b, member: who, value: 2 })).status, 202);
  await waitFor(async () => (await standing(b, who)).json?.score === 2, { timeout: 10_000, what: 'back at 2' });
  const top = (await get(`${w.url}/v1/boards/${b}/top`)).json;
  assert.deepEqual(top.entries.map((e) => e.member), [who, 'other']);
});
