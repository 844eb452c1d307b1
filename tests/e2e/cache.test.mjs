// Ranking reads and HTTP caching (API 1.1): ETag, Cache-Control, 304, and
// the edge cache that serves a hot read for up to a second.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startWorker, post, get, waitFor, uniqueName } from '../harness.mjs';

let w;
before(async () => { w = await startWorker({ vars: { READ_CACHE: 'on' } }); });
after(async () => { await w?.stop(); });

async function seed(b, member) {
  assert.equal((await post(`${w.url}/v1/events`, { type: 'hit', board: b, member })).status, 202);
}

test('every ranking read sends an ETag and Cache-Control, and a matching If-None-Match gets 304 with no body', async () => {
  const b = uniqueName('etag');
  await seed(b, 'alice');
  await waitFor(async () => (await get(`${w.url}/v1/boards/${b}/top`)).json?.total === 1, { what: 'seeded' });
  for (const path of [`/v1/boards/${b}/top`, `/v1/boards/${b}`, `/v1/boards/${b}/members/alice`, `/v1/boards/${b}/members/alice/around`]) {
    const r = await get(`${w.url}${path}`);
    assert.equal(r.status, 200, `${path}: ${r.text}`);
    const etag = r.headers.get('etag');
    assert.match(etag ?? '', /^"[0-9a-f]{16}"$/, path);
    assert.equal(r.headers.get('cache-control'), 'public, max-age=1');
    assert.match(r.headers.get('access-control-expose-headers'), /ETag/i);
    const again = await get(`${w.url}${path}`, { headers: { 'If-None-Match': etag } });
    assert.equal(again.status, 304, path);
    assert.equal(again.text, '');
    assert.equal(again.headers.get('etag'), etag);
    const other = await get(`${w.url}${path}`, { headers: { 'If-None-Match': '"0000000000000000"' } });
    assert.equal(other.status, 200, `${path}: another ETag gets the body`);
  }
});

test('a hot read is served from the edge cache for up to a second, then fresh', async () => {
  const b = uniqueName('hot');
  await seed(b, 'alice');
  const url = `${w.url}/v1/boards/${b}/top`;
  await waitFor(async () => (await get(url, { headers: { 'Cache-Control': 'no-cache' } })).json?.total === 1, { what: 'seeded' });
  // Wait out any answer already kept, then read twice in a row.
  await new Promise((r) => setTimeout(r, 1100));
  const first = await get(url);
  const second = await get(url);
  assert.equal(first.headers.get('x-podium-cache'), 'miss');
  assert.equal(second.headers.get('x-podium-cache'), 'hit');
  assert.equal(second.text, first.text);
  // A change shows once the kept answer expires.
  await seed(b, 'bob');
  await waitFor(async () => (await get(url)).json?.total === 2, { timeout: 5000, what: 'bob after the cached second' });
  // Errors are not kept.
  const missing = `${w.url}/v1/boards/${b}/members/carol`;
  assert.equal((await get(missing)).status, 404);
  await seed(b, 'carol');
  await waitFor(async () => (await get(missing)).status === 200, { timeout: 5000, what: 'carol' });
});
