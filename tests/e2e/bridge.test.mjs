// podium-bridge (issue 17) end to end, with real brokers: a private
// redis-server and rabbitmq-server on loopback, the seeds' own Python
// producers (tests/bridge/*.py: redis-py XADD, pika basic_publish), the
// bridge binary (tools/bridge) and the built worker under workerd. Checks the
// rankings the seeds meant, exactly; a SIGKILLed bridge restarted mid-stream
// (every message with an identity counted once); Podium stopped for a while
// (backoff, resume, nothing lost); unparseable messages in the dead letters.
// Needs scripts/bridge.sh (make test runs it).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { startWorker, get, waitFor, uniqueName, ROOT } from '../harness.mjs';
import { checkPrerequisites, startRedis, startRabbit, startBridge, python, PYTHON } from '../brokers.mjs';

let w;
let redis;
let rabbit;
before(async () => {
  checkPrerequisites();
  // samePort: the bridge keeps Podium's URL while the worker is stopped and started again.
  [w, redis, rabbit] = await Promise.all([startWorker({ samePort: true }), startRedis(), startRabbit()]);
});
after(async () => { await Promise.all([w?.stop(), redis?.stop(), rabbit?.stop()]); });

const podium = (extra = '') => `
[podium]
url = "${w.url}"
max_backoff_ms = 1000
${extra}
`;

const redisSource = ({ stream, board, consumer = 'bridge-1', extra = '' }) => `
[[redis]]
url = "${redis.url}"
stream = "${stream}"
group = "podium"
consumer = "${consumer}"
start = "0"
block_ms = 200
${extra}
[redis.event]
type = "action"
member = { from = "field.type" }
board = "${board}"
ts = { from = "field.timestamp", unit = "s" }
`;

const amqpSource = ({ queue, board, extra = '' }) => `
[[amqp]]
url = "${rabbit.url}"
queue = "${queue}"
${extra}
[amqp.event]
type = "score"
member = { from = "body.member" }
value = { from = "body.score" }
board = "${board}"
`;

/** member -> score of a whole board (empty when the board does not exist yet). */
async function scores(board) {
  const r = await get(`${w.url}/v1/boards/${board}/top?limit=1000`);
  return r.status === 200 ? Object.fromEntries(r.json.entries.map((e) => [e.member, e.score])) : {};
}

const same = (a, b) => JSON.stringify(Object.entries(a).sort()) === JSON.stringify(Object.entries(b).sort());

/** Waits until the board holds exactly `expected`, then asserts it (the failure shows both). */
async function expectScores(board, expected, timeout = 30_000) {
  let last = {};
  try {
    await waitFor(async () => same((last = await scores(board)), expected), { timeout, what: `${board} scores` });
  } finally {
    assert.deepEqual(last, expected, `${board}: Podium's ranking vs what the producers sent`);
  }
}

/** Applied events on the board's current period, duplicates not counted (API 1.1 `events`). */
async function appliedEvents(board) {
  return (await get(`${w.url}/v1/boards/${board}`)).json?.events ?? 0;
}

/** XINFO GROUPS of a stream as {group: {pending, lag, 'entries-read', ...}} (redis-cli's raw output: key, value, ...). */
function groups(stream) {
  const lines = redis.cli('XINFO', 'GROUPS', stream).split('\n');
  const out = {};
  let cur;
  for (let i = 0; i + 1 < lines.length; i += 2) {
    if (lines[i] === 'name') out[lines[i + 1]] = cur = {};
    else if (cur) cur[lines[i]] = Number.isNaN(Number(lines[i + 1])) ? lines[i + 1] : Number(lines[i + 1]);
  }
  return out;
}

/** Entries of a stream as [{id, fields}] (XRANGE in raw output: id, then a field/value list). */
function xrange(stream) {
  const raw = redis.cli('--json', 'XRANGE', stream, '-', '+');
  return JSON.parse(raw || '[]').map(([id, kv]) => {
    const fields = {};
    for (let i = 0; i + 1 < kv.length; i += 2) fields[kv[i]] = kv[i + 1];
    return { id, fields };
  });
}

/** Runs a seed producer in the background; resolves to its JSON report. */
function produceInBackground(script, args) {
  const child = spawn(PYTHON, [join(ROOT, 'tests/bridge', script), ...args.map(String)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d) => { out += d; });
  return new Promise((resolve, reject) => child.once('exit', (code) => (code === 0 ? resolve(JSON.parse(out.trim().split('\n').pop())) : reject(new Error(`${script} exited ${code}`)))));
}

const lastRetries = (bridge) => Number([...bridge.stderr().matchAll(/retries (\d+)/g)].pop()?.[1] ?? 0);
const logged = (bridge, message) => bridge.logs().filter((l) => l.fields?.message?.startsWith(message));

test("the first seed's XADD producer feeds Podium unchanged: likes, orders and comments ranked as its ZINCRBY did", async () => {
  const board = uniqueName('rankings');
  const bridge = startBridge(podium() + redisSource({ stream: 'user_actions', board }));
  try {
    // The seed's producer, verbatim, into the seed's stream, while the bridge runs.
    const sent = python('seed1_producer.py', [redis.port, '--like', 120, '--order', 70, '--comment', 45]);
    assert.equal(sent.sent, 235);
    await expectScores(board, { like: 120, order: 70, comment: 45 });
    await waitFor(() => groups('user_actions').podium?.pending === 0, { what: 'every entry acknowledged' });
    assert.equal(await appliedEvents(board), 235);
    await waitFor(() => /lag user_actions=0 \| podium ok/.test(bridge.stderr()), { what: 'a progress line with lag 0' });
    assert.match(bridge.stderr(), /in \d+\/s out \d+\/s \| received \d+ forwarded \d+ dead-lettered 0 retries 0 no-identity 0/);
  } finally {
    assert.equal((await bridge.kill('SIGTERM')).code, 0, bridge.stdout());
  }
  const s = bridge.summary();
  assert.equal(s.forwarded, 235);
  assert.equal(s.received, 235);
  assert.equal(s.no_identity, 0, 'every Redis entry has its stream id as its identity');
});

test("the second seed's pika basic_publish feeds Podium unchanged: scores summed per member; messages without a message-id are counted as at-least-once", async () => {
  const board = uniqueName('scores');
  const sent = python('seed2_producer.py', [rabbit.port, '--updates', 300, '--members', 12]);
  const bridge = startBridge(podium() + amqpSource({ queue: 'rank_update', board }), { once: true });
  const { code } = await bridge.exited;
  assert.equal(code, 0, bridge.stdout() + bridge.stderr());
  await expectScores(board, sent.sums);
  assert.equal(await appliedEvents(board), 300);
  const s = bridge.summary();
  assert.deepEqual([s.received, s.forwarded, s.no_identity, s.dead_lettered], [300, 300, 300, 0]);
  assert.ok(logged(bridge, 'amqp: messages without a message-id').length === 1, 'the bridge says at-least-once in its log');
  assert.deepEqual(python('amqp_tool.py', [rabbit.port, 'count', 'rank_update']), { ready: 0 });
});

test('unparseable messages (and an entry deleted while pending) go to the dead-letter stream and queue with their reason and never block the rest', async () => {
  const board = uniqueName('dl');
  const stream = uniqueName('dl-stream');
  const queue = uniqueName('dl-queue');
  const now = String(Date.now() / 1000);
  const xadd = (...kv) => redis.cli('XADD', stream, '*', ...kv);
  // An entry read by the consumer and then deleted from the stream (XDEL) while pending.
  redis.cli('XGROUP', 'CREATE', stream, 'podium', '0', 'MKSTREAM');
  const gone = xadd('type', 'like', 'timestamp', now);
  redis.cli('XREADGROUP', 'GROUP', 'podium', 'bridge-1', 'COUNT', '1', 'STREAMS', stream, '>');
  redis.cli('XDEL', stream, gone);
  xadd('type', 'like', 'timestamp', now);
  xadd('timestamp', now); // no type: no member
  xadd('type', 'like', 'timestamp', now);
  xadd('type', 'bad\u0001member', 'timestamp', now); // Podium refuses a control character in a member
  xadd('type', 'like', 'timestamp', 'yesterday'); // Podium refuses the ts
  xadd('type', 'like', 'timestamp', now);
  const pub = (body, id) => python('amqp_tool.py', [rabbit.port, 'publish', queue, body, ...(id ? [id] : [])]);
  pub('{"member": "ann", "score": 5}', 'm1');
  pub('not json at all');
  pub('{"member": "ann"}');
  pub('{"member": "ann", "score": "lots"}');
  pub('{"member": "ann", "score": 7}', 'm2');

  const bridge = startBridge(podium() + redisSource({ stream, board }) + amqpSource({ queue, board: `${board}-q` }), { once: true });
  assert.equal((await bridge.exited).code, 0, bridge.stdout() + bridge.stderr());
  await expectScores(board, { like: 3 });
  await expectScores(`${board}-q`, { ann: 12 });
  assert.equal(bridge.summary().dead_lettered, 7);

  const dead = xrange(`${stream}.dead`).map((e) => e.fields);
  assert.equal(dead.length, 4, JSON.stringify(dead));
  const deleted = dead.shift();
  assert.match(deleted.podium_reason, /the entry was deleted from the stream while pending/);
  assert.equal(deleted.podium_source, `${stream}:${gone}`);
  assert.match(dead[0].podium_reason, /^unparseable: member: the message has no field\.type$/);
  assert.equal(dead[0].timestamp, now, 'the original fields are kept');
  assert.match(dead[1].podium_reason, /^podium rejected the event: 400 /);
  assert.equal(dead[1].type, 'bad\u0001member');
  assert.match(dead[2].podium_reason, /^podium rejected the event: 400 .*ts/i);
  assert.ok(dead.every((d) => d.podium_source.startsWith(`${stream}:`)));
  assert.equal(groups(stream).podium.pending, 0, 'dead letters are acknowledged too');

  const deadQ = python('amqp_tool.py', [rabbit.port, 'drain', `${queue}.dead`]);
  assert.deepEqual(deadQ.map((m) => m.body), ['not json at all', '{"member": "ann"}', '{"member": "ann", "score": "lots"}']);
  assert.match(deadQ[0].headers['x-podium-reason'], /body is not JSON/);
  assert.match(deadQ[1].headers['x-podium-reason'], /value: the message has no body\.score/);
  assert.match(deadQ[2].headers['x-podium-reason'], /value is not a number/);
  assert.ok(deadQ.every((m) => m.headers['x-podium-source-queue'] === queue));
  assert.deepEqual(python('amqp_tool.py', [rabbit.port, 'count', queue]), { ready: 0 });
});

test('SIGKILL mid-stream and restart (Redis): every entry counted once, pending entries taken over with XAUTOCLAIM, a full replay changes nothing', async () => {
  const board = uniqueName('crash');
  const stream = uniqueName('crash-stream');
  const counts = { like: 3000, order: 2000, comment: 1000 };
  const total = 6000;
  const sent = python('seed1_producer.py', [redis.port, '--stream', stream, '--like', counts.like, '--order', counts.order, '--comment', counts.comment]);
  assert.equal(sent.sent, total);
  // Small batches: the bridge is many requests into the backlog when it is killed.
  const cfg = (consumer, extra = '') => podium('batch = 50') + redisSource({ stream, board, consumer, extra: `batch = 50\n${extra}` });
  const read = () => groups(stream).podium?.['entries-read'] ?? 0;
  const crashes = [];
  for (const [consumer, at] of [['bridge-1', 1500], ['bridge-1', 3500]]) {
    const b = startBridge(cfg(consumer));
    await waitFor(() => read() >= at || b.child.exitCode !== null, { timeout: 30_000, interval: 10, what: `${at} entries read` });
    await b.kill('SIGKILL');
    crashes.push({ consumer, read: read(), pending: groups(stream).podium.pending });
  }
  assert.ok(crashes.every((c) => c.read < total), `killed mid-stream: ${JSON.stringify(crashes)}`);
  // A different consumer takes over bridge-1's pending entries (XAUTOCLAIM after 300 ms idle).
  const last = startBridge(cfg('bridge-2', 'claim_idle_ms = 300'));
  try {
    await waitFor(() => { const g = groups(stream).podium; return g.pending === 0 && g.lag === 0; }, { timeout: 60_000, what: 'stream drained' });
    await expectScores(board, counts);
    assert.equal(await appliedEvents(board), total, 'no event applied twice');
    const claimed = logged(last, 'claimed entries another consumer left pending').reduce((n, l) => n + l.fields.count, 0);
    assert.equal(claimed, crashes.at(-1).pending, 'XAUTOCLAIM took over what the killed consumer left pending');
  } finally {
    await last.kill('SIGTERM');
  }
  console.log(`# redis crash test: ${JSON.stringify(crashes)}; after restarts: ${JSON.stringify(last.summary())}`);

  // The strongest redelivery: the group rewound to the start, every entry sent again. Podium dedupes by id.
  redis.cli('XGROUP', 'SETID', stream, 'podium', '0');
  const replay = startBridge(cfg('bridge-3'), { once: true });
  assert.equal((await replay.exited).code, 0, replay.stdout());
  assert.equal(replay.summary().forwarded, total, 'every entry was sent again');
  // A sentinel through the same path: once it is applied, so is the replay before it.
  redis.cli('XADD', stream, '*', 'type', 'sentinel', 'timestamp', String(Date.now() / 1000));
  const tail = startBridge(cfg('bridge-3'), { once: true });
  assert.equal((await tail.exited).code, 0);
  await expectScores(board, { ...counts, sentinel: 1 });
  assert.equal(await appliedEvents(board), total + 1);
});

test('SIGKILL mid-stream and restart (RabbitMQ, messages with a message-id): every message counted once', async () => {
  const board = uniqueName('crashq');
  const queue = uniqueName('crash-q');
  const sent = python('seed2_producer.py', [rabbit.port, '--queue', queue, '--updates', 3000, '--members', 20, '--message-ids', queue]);
  const cfg = podium() + amqpSource({ queue, board, extra: 'batch = 25' });
  const crashes = [];
  for (const at of [500, 1500]) {
    const b = startBridge(cfg, { progress: 0.1 });
    await waitFor(() => b.stderr().match(/forwarded (\d+)/g)?.map((m) => Number(m.split(' ')[1])).some((n) => n >= at) || b.child.exitCode !== null,
      { timeout: 30_000, interval: 10, what: `${at} forwarded` });
    await b.kill('SIGKILL');
    crashes.push({ at, ready: python('amqp_tool.py', [rabbit.port, 'count', queue]).ready });
  }
  assert.ok(crashes.every((c) => c.ready > 0), `killed mid-stream: ${JSON.stringify(crashes)}`);
  const last = startBridge(cfg, { once: true });
  assert.equal((await last.exited).code, 0, last.stdout());
  await expectScores(board, sent.sums);
  assert.equal(await appliedEvents(board), 3000, 'no event applied twice');
  assert.equal(last.summary().no_identity, 0);
  console.log(`# rabbitmq crash test: ${JSON.stringify(crashes)}; after restart: ${JSON.stringify(last.summary())}`);

  // Redelivery made certain: the first 500 messages published again with the same ids change nothing.
  python('seed2_producer.py', [rabbit.port, '--queue', queue, '--updates', 500, '--members', 20, '--message-ids', queue]);
  python('amqp_tool.py', [rabbit.port, 'publish', queue, '{"member": "sentinel", "score": 1}', `${queue}-sentinel`]);
  const again = startBridge(cfg, { once: true });
  assert.equal((await again.exited).code, 0);
  assert.equal(again.summary().forwarded, 501);
  await expectScores(board, { ...sent.sums, sentinel: 1 });
  assert.equal(await appliedEvents(board), 3001);
});

test('Podium stopped for a while: the bridge backs off with a visible state, resumes, and loses nothing', async () => {
  const board = uniqueName('down');
  const stream = uniqueName('down-stream');
  const queue = uniqueName('down-q');
  const bridge = startBridge(podium() + redisSource({ stream, board }) + amqpSource({ queue, board: `${board}-q` }));
  try {
    python('seed1_producer.py', [redis.port, '--stream', stream, '--like', 40, '--order', 10]);
    const a = python('seed2_producer.py', [rabbit.port, '--queue', queue, '--updates', 50, '--members', 5, '--seed', 1]);
    await expectScores(board, { like: 40, order: 10 });
    await expectScores(`${board}-q`, a.sums);

    await w.kill(); // keeps its state; start() brings it back on the same port
    python('seed1_producer.py', [redis.port, '--stream', stream, '--like', 60, '--comment', 25, '--seed', 2]);
    const b = python('seed2_producer.py', [rabbit.port, '--queue', queue, '--updates', 50, '--members', 5, '--seed', 2]);
    await waitFor(() => logged(bridge, 'podium unavailable').length >= 2 && lastRetries(bridge) >= 6,
      { timeout: 30_000, what: 'both sources backing off' });
    assert.match(bridge.stderr(), /PODIUM DOWN \d+s, backing off \(connection refused\)/);
    const waits = logged(bridge, 'podium request failed').map((l) => l.fields.retry_in_ms);
    assert.ok(Math.max(...waits) <= 1000, `backoff bounded by max_backoff_ms: ${waits}`);
    assert.ok(waits.some((x) => x > 250), `backoff grows: ${waits}`);
    assert.ok(groups(stream).podium.pending > 0, 'nothing acknowledged while Podium is down');

    await w.start();
    const sum = (x, y) => Object.fromEntries([...new Set([...Object.keys(x), ...Object.keys(y)])].map((k) => [k, (x[k] ?? 0) + (y[k] ?? 0)]));
    await expectScores(board, { like: 100, order: 10, comment: 25 }, 60_000);
    await expectScores(`${board}-q`, sum(a.sums, b.sums), 60_000);
    const sources = (message) => [...new Set(logged(bridge, message).map((l) => l.fields.source))].sort();
    assert.deepEqual(sources('podium unavailable'), [stream, queue].sort(), 'each source logs the outage');
    assert.deepEqual(sources('podium answers again'), [stream, queue].sort(), 'and its end');
    await waitFor(() => /podium ok\n$/.test(bridge.stderr()), { what: 'progress line back to podium ok' });
  } finally {
    assert.equal((await bridge.kill('SIGTERM')).code, 0, bridge.stdout());
  }
  assert.equal(bridge.summary().dead_lettered, 0);
});
