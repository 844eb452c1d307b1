// Control worker for the soak's memory reading (scripts/soak-control.mjs):
// the same shape as Podium's pipeline with nothing of Podium in it. A POST's
// body goes to a Durable Object (SQLite outbox row), then to the Queue; the
// consumer hands each batch to a board Durable Object that inserts one
// dedupe row per event and upserts a member row, and acks.
import { DurableObject } from 'cloudflare:workers';

export class Intake extends DurableObject {
  constructor(ctx, env) { super(ctx, env); ctx.storage.sql.exec('CREATE TABLE IF NOT EXISTS o (seq INTEGER PRIMARY KEY, body TEXT)'); this.seq = 0; }
  async fetch(req) {
    const body = await req.text();
    this.seq += 1;
    this.ctx.storage.sql.exec('INSERT INTO o (seq, body) VALUES (?, ?)', this.seq, body);
    if (new URL(req.url).searchParams.get('mode') !== 'do') await this.env.Q.send({ seq: this.seq, body });
    this.ctx.storage.sql.exec('DELETE FROM o WHERE seq = ?', this.seq);
    return new Response('', { status: 202 });
  }
}
export class Board extends DurableObject {
  constructor(ctx, env) { super(ctx, env); ctx.storage.sql.exec('CREATE TABLE IF NOT EXISTS d (id TEXT PRIMARY KEY, at INTEGER); CREATE TABLE IF NOT EXISTS m (id TEXT PRIMARY KEY, s INTEGER)'); }
  async fetch(req) {
    const events = await req.json();
    this.ctx.storage.sql.exec('INSERT INTO d (id, at) SELECT value, ? FROM json_each(?)', Date.now(), JSON.stringify(events.map((e) => e.id)));
    this.ctx.storage.sql.exec('INSERT INTO m (id, s) SELECT value, 1 FROM json_each(?) WHERE true ON CONFLICT(id) DO UPDATE SET s = s + 1', JSON.stringify(events.map((e) => e.member)));
    return Response.json({ n: events.length });
  }
}
export default {
  async fetch(req, env) {
    if (req.method !== 'POST') return new Response('ok');
    // MEMCTL_MODE narrows the pipeline: `plain` answers at once, `do` stops at the intake's SQLite.
    const mode = new URL(req.url).searchParams.get('mode');
    if (mode === 'plain') { await req.text(); return new Response('', { status: 202 }); }
    return env.INTAKE.get(env.INTAKE.idFromName(String(Math.floor(Math.random() * 8)))).fetch(req);
  },
  async queue(batch, env) {
    const events = batch.messages.flatMap((m) => JSON.parse(m.body.body));
    await env.BOARD.get(env.BOARD.idFromName('b')).fetch('https://b/', { method: 'POST', body: JSON.stringify(events) });
    batch.ackAll();
  },
};
