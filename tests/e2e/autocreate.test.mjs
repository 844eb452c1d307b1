// Boards created by events (API 1.1): AUTO_CREATE_MAX caps them and
// AUTO_CREATE_BOARDS=off stops them; an event over the cap is 422
// unroutable_event naming it, nothing of its request is enqueued, and the
// admin can still create boards with PUT.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startWorker, post, get, admin, uniqueName, drain } from '../harness.mjs';

let w;
after(async () => { await w?.stop(); });

test('events create at most AUTO_CREATE_MAX boards; one more is 422 and the admin still creates boards', async () => {
  w = await startWorker({ vars: { AUTO_CREATE_MAX: '2' } });
  const [a, b, c] = [uniqueName('auto'), uniqueName('auto'), uniqueName('auto')];
  assert.equal((await post(`${w.url}/v1/events`, [{ type: 'x', board: a, member: 'm' }, { type: 'x', board: b, member: 'm' }])).status, 202);
  const kept = uniqueName('kept');
  assert.equal((await admin(`${w.url}/v1/boards/${kept}`, 'PUT', {})).status, 201);
  const r = await post(`${w.url}/v1/events`, [
    { type: 'x', board: a, member: 'ok-before', id: `${c}-1` },
    { type: 'x', board: c, member: 'm', id: `${c}-2` },
  ]);
  assert.equal(r.status, 422, r.text);
  assert.equal(r.json.error.code, 'unroutable_event');
  assert.equal(r.json.error.index, 1);
  assert.equal(r.json.error.field, 'board');
  assert.equal((await get(`${w.url}/v1/boards/${c}`)).status, 404, 'the board was not created');
  // The admin is not limited by boards events created; existing boards take events.
  const d = uniqueName('admin');
  assert.equal((await admin(`${w.url}/v1/boards/${d}`, 'PUT', {})).status, 201);
  assert.equal((await post(`${w.url}/v1/events`, [{ type: 'x', board: d, member: 'm' }, { type: 'x', board: kept, member: 'm' }])).status, 202);
  await drain(w.url, a);
  // Nothing of the refused request was applied.
  assert.equal((await get(`${w.url}/v1/boards/${a}/members/ok-before`)).status, 404);
  await w.stop();
  w = undefined;
});

test('with AUTO_CREATE_BOARDS=off an event for a new board is 422, and boards created with PUT take events', async () => {
  w = await startWorker({ vars: { AUTO_CREATE_BOARDS: 'off' } });
  const r = await post(`${w.url}/v1/events`, { type: 'x', board: uniqueName('off'), member: 'm' });
  assert.equal(r.status, 422, r.text);
  assert.equal(r.json.error.code, 'unroutable_event');
  const b = uniqueName('put');
  assert.equal((await admin(`${w.url}/v1/boards/${b}`, 'PUT', {})).status, 201);
  assert.equal((await post(`${w.url}/v1/events`, { type: 'x', board: b, member: 'm' })).status, 202);
});
