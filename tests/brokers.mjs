// Private brokers and the bridge for tests/e2e/bridge.test.mjs and
// scripts/bridge-perf.mjs: a redis-server and a rabbitmq-server on loopback
// (own ports, node name, Erlang cookie, epmd and data dir under a temp dir,
// so nothing collides with a broker already on the machine), the seeds'
// Python producers (tests/bridge/*.py, in .venv-bridge) and podium-bridge
// (tools/bridge). scripts/bridge.sh installs and builds all of it.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, existsSync, createWriteStream, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, freePort, waitFor, startRetried, INGEST_KEY } from './harness.mjs';

export const PYTHON = join(ROOT, '.venv-bridge/bin/python');
export const BRIDGE = join(ROOT, 'tools/bridge/target/release/podium-bridge');
const RABBIT = '/usr/lib/rabbitmq/bin/rabbitmq-server';

/** Throws with the command that installs what is missing. */
export function checkPrerequisites() {
  const missing = [
    ['redis-server', () => execFileSync('redis-server', ['--version'])],
    ['rabbitmq-server', () => { if (!existsSync(RABBIT)) throw new Error(); }],
    ['.venv-bridge (redis-py, pika)', () => { if (!existsSync(PYTHON)) throw new Error(); }],
    ['tools/bridge build', () => { if (!existsSync(BRIDGE)) throw new Error(); }],
  ].filter(([, check]) => { try { check(); return false; } catch { return true; } }).map(([name]) => name);
  if (missing.length) throw new Error(`missing ${missing.join(', ')}: run scripts/bridge.sh`);
}

async function stopGroup(child, timeoutMs = 10_000) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  try { process.kill(-child.pid, 'SIGTERM'); } catch { /* gone */ }
  const t = setTimeout(() => { try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ } }, timeoutMs);
  await exited;
  clearTimeout(t);
}

/** A redis-server on a free loopback port, no persistence. `{port, url, cli(...args), stop()}`. */
export const startRedis = () => startRetried('redis-server', startRedisOnce);

async function startRedisOnce() {
  const port = await freePort();
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    { stdio: 'ignore', detached: true });
  const cli = (...args) => execFileSync('redis-cli', ['-p', String(port), ...args]).toString().trim();
  try {
    // PING, not an open port: the port may be someone else's (see freePort()).
    await waitFor(() => {
      if (child.exitCode !== null) return Promise.reject(new Error(`redis-server exited with ${child.exitCode}`));
      try { return cli('PING') === 'PONG'; } catch { return false; }
    }, { timeout: 10_000, what: 'redis PING' });
  } catch (e) {
    await stopGroup(child);
    throw e;
  }
  return { port, url: `redis://127.0.0.1:${port}`, cli, stop: () => stopGroup(child) };
}

/**
 * Whether an AMQP 0-9-1 broker answers on `port`: the protocol header sent,
 * the first frame back is a method frame on channel 0 (connection.start,
 * class 10 method 10). An open port alone is not enough: see freePort().
 */
function amqpAnswers(port) {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    let got = Buffer.alloc(0);
    const done = (ok) => { s.destroy(); resolve(ok); };
    s.setTimeout(2000, () => done(false));
    s.once('connect', () => s.write(Buffer.from([0x41, 0x4d, 0x51, 0x50, 0, 0, 9, 1])));
    s.on('data', (d) => {
      got = Buffer.concat([got, d]);
      if (got.length >= 11) done(got[0] === 1 && got.readUInt16BE(1) === 0 && got.readUInt16BE(7) === 10 && got.readUInt16BE(9) === 10);
    });
    s.once('error', () => done(false));
    s.once('close', () => done(false));
  });
}

/**
 * A rabbitmq-server on loopback with its own node name, AMQP/dist/epmd
 * ports, cookie ($HOME) and data dir. Takes ~5 s to boot. Ready when it
 * answers an AMQP handshake; a node that fails to start (a port taken
 * meanwhile) is tried again on fresh ports. `{port, url, stop()}`.
 */
export const startRabbit = () => startRetried('rabbitmq-server', startRabbitOnce);

async function startRabbitOnce() {
  const dir = mkdtempSync(join(tmpdir(), 'podium-rabbit-'));
  const [port, dist, epmd] = [await freePort(), await freePort(), await freePort()];
  writeFileSync(join(dir, 'rabbitmq.conf'), `listeners.tcp.1 = 127.0.0.1:${port}\n`);
  writeFileSync(join(dir, 'enabled_plugins'), '[].\n');
  const env = {
    ...process.env,
    HOME: dir,
    RABBITMQ_NODENAME: `podium${port}@localhost`,
    RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
    RABBITMQ_NODE_PORT: String(port),
    RABBITMQ_DIST_PORT: String(dist),
    ERL_EPMD_PORT: String(epmd),
    ERL_EPMD_ADDRESS: '127.0.0.1',
    RABBITMQ_MNESIA_BASE: join(dir, 'mnesia'),
    RABBITMQ_LOG_BASE: join(dir, 'log'),
    RABBITMQ_CONFIG_FILE: join(dir, 'rabbitmq.conf'),
    RABBITMQ_ADVANCED_CONFIG_FILE: join(dir, 'advanced.config'),
    RABBITMQ_ENABLED_PLUGINS_FILE: join(dir, 'enabled_plugins'),
    // Not /etc/rabbitmq/rabbitmq-env.conf: nothing of a system install leaks in.
    RABBITMQ_CONF_ENV_FILE: join(dir, 'rabbitmq-env.conf'),
    RABBITMQ_PID_FILE: join(dir, 'pid'),
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: '-kernel inet_dist_use_interface {127,0,0,1}',
  };
  const log = createWriteStream(join(dir, 'server.log'));
  const child = spawn(RABBIT, [], { env, cwd: dir, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.pipe(log);
  child.stderr.pipe(log);
  const stop = async () => {
    await stopGroup(child, 20_000);
    // The node started its own epmd (a daemon outside the group) on the private port.
    try { execFileSync('epmd', ['-kill'], { env, stdio: 'ignore' }); } catch { /* not running */ }
    rmSync(dir, { recursive: true, force: true });
  };
  // Not waitFor: it would keep polling for a minute after the node exited.
  const failed = () => (child.exitCode !== null || child.signalCode !== null
    ? `rabbitmq-server exited:\n${readFileSync(join(dir, 'server.log'), 'utf8').slice(-2000)}` : null);
  const deadline = Date.now() + 60_000;
  for (;;) {
    const answers = await amqpAnswers(port);
    const why = failed() ?? (!answers && Date.now() > deadline ? `rabbitmq-server did not answer AMQP on ${port} within 60 s` : null);
    if (why) {
      await stop();
      throw new Error(why);
    }
    if (answers) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  return { port, url: `amqp://guest:guest@127.0.0.1:${port}/%2f`, stop };
}

/** Runs a script from tests/bridge with the venv's Python; returns its stdout parsed as JSON (last line). */
export function python(script, args = [], { input } = {}) {
  const out = execFileSync(PYTHON, [join(ROOT, 'tests/bridge', script), ...args.map(String)], { input, maxBuffer: 64 << 20 }).toString();
  const last = out.trim().split('\n').pop();
  return last ? JSON.parse(last) : undefined;
}

/**
 * Starts podium-bridge with a config text. `{child, logs(), stderr(), exited,
 * summary(), kill(signal)}`: logs() parses the JSON log lines so far;
 * summary() is the fields of the final "podium-bridge finished" line.
 */
export function startBridge(configText, { once = false, progress = 0.5, env = {} } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'podium-bridge-'));
  const cfg = join(dir, 'bridge.toml');
  writeFileSync(cfg, configText);
  const args = ['--config', cfg, '--progress', String(progress)];
  if (once) args.push('--once');
  const child = spawn(BRIDGE, args, {
    env: { ...process.env, PODIUM_INGEST_KEY: INGEST_KEY, RUST_LOG: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { err += d; });
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => { rmSync(dir, { recursive: true, force: true }); resolve({ code, signal }); }));
  const logs = () => out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
  return {
    child,
    exited,
    logs,
    stdout: () => out,
    stderr: () => err,
    summary: () => logs().find((l) => l.fields?.message === 'podium-bridge finished')?.fields,
    kill: (signal = 'SIGTERM') => { try { child.kill(signal); } catch { /* gone */ } return exited; },
  };
}
