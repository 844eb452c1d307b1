// Webhook deliveries (docs/api.md, "Webhooks (1.1)"): their bodies, and the
// check of `Podium-Signature: t=<unix s>,v1=<hex HMAC-SHA256 of "<t>.<body>">`.
// Web Crypto only (globalThis.crypto.subtle), so the same code runs in
// browsers, Node >= 20, Deno and Workers without node:crypto.
import type { components } from './schema';

type Entry = components['schemas']['Entry'];
type Window = components['schemas']['Window'];

/** Fields every delivery carries. `id` is also sent as `Podium-Event-Id`: dedupe by it. */
export interface WebhookBase {
  id: string;
  board: string;
  window: Window;
  /** The board period (`all`, `2026-11-22`, `2026-W47`, `2026-11`, or `s2` for a season). */
  period: string;
  /** When the event was made, ms since the epoch. */
  at: number;
}
export interface TopChanged extends WebhookBase {
  type: 'top_changed';
  entries: Entry[];
  entered: string[];
  left: string[];
}
export interface Overtaken extends WebhookBase {
  type: 'overtaken';
  member: string;
  by: string;
  rank: number;
}
export interface PeriodEnded extends WebhookBase {
  type: 'period_ended';
  total: number;
  entries: Entry[];
}
/** A verified delivery; switch on `type` to narrow it. */
export type WebhookEvent = TopChanged | Overtaken | PeriodEnded;

export class WebhookVerificationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WebhookVerificationError';
  }
}

export interface VerifyOptions {
  /** How far `t` may be from now, in seconds (default 300): a replayed old delivery is refused. */
  toleranceSec?: number;
  /** The clock, in ms (tests). */
  now?: number;
}

const encoder = new TextEncoder();

function hexToBytes(hex: string): Uint8Array<ArrayBuffer> | null {
  if (hex.length % 2 !== 0 || !/^[0-9a-f]*$/i.test(hex)) return null;
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}

/**
 * Checks a delivery and returns its typed body; throws WebhookVerificationError
 * when the header is missing or malformed, too old or too new, or no `v1`
 * matches. Pass the body exactly as received (the bytes were signed, not a
 * re-serialised object). The comparison is `crypto.subtle.verify`, which does
 * not leak how many bytes matched.
 */
export async function verifyWebhook(
  secret: string,
  header: string | null | undefined,
  rawBody: string | Uint8Array,
  { toleranceSec = 300, now = Date.now() }: VerifyOptions = {},
): Promise<WebhookEvent> {
  if (!header) throw new WebhookVerificationError('no Podium-Signature header');
  let t: number | null = null;
  const sigs: Uint8Array<ArrayBuffer>[] = [];
  for (const part of header.split(',')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const k = part.slice(0, eq).trim();
    const v = part.slice(eq + 1).trim();
    if (k === 't' && /^\d{1,12}$/.test(v)) t = Number(v);
    else if (k === 'v1') {
      const bytes = hexToBytes(v);
      if (bytes && bytes.length === 32) sigs.push(bytes);
    }
  }
  if (t === null) throw new WebhookVerificationError('Podium-Signature has no t=<unix seconds>');
  if (sigs.length === 0) throw new WebhookVerificationError('Podium-Signature has no v1=<64 hex>');
  if (Math.abs(now / 1000 - t) > toleranceSec) {
    throw new WebhookVerificationError(`signature time ${t} is more than ${toleranceSec} s from now`);
  }
  const body = typeof rawBody === 'string' ? encoder.encode(rawBody) : rawBody;
  const prefix = encoder.encode(`${t}.`);
  const signed = new Uint8Array(prefix.length + body.length);
  signed.set(prefix);
  signed.set(body, prefix.length);
  const key = await crypto.subtle.importKey('raw', encoder.encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['verify']);
  let ok = false;
  // Several v1 values may be sent (e.g. while a secret is rotated): any one will do.
  for (const sig of sigs) ok = (await crypto.subtle.verify('HMAC', key, sig, signed)) || ok;
  if (!ok) throw new WebhookVerificationError('no v1 signature matches the secret');
  let parsed: unknown;
  try {
    parsed = JSON.parse(typeof rawBody === 'string' ? rawBody : new TextDecoder().decode(rawBody));
  } catch {
    throw new WebhookVerificationError('signed body is not JSON');
  }
  const type = (parsed as { type?: unknown } | null)?.type;
  if (type !== 'top_changed' && type !== 'overtaken' && type !== 'period_ended') {
    throw new WebhookVerificationError(`unknown event type ${JSON.stringify(type)}`);
  }
  return parsed as WebhookEvent;
}

/** Signs a body as Podium does: for tests of a receiver. */
export async function signWebhook(secret: string, rawBody: string, t = Math.floor(Date.now() / 1000)): Promise<string> {
  const key = await crypto.subtle.importKey('raw', encoder.encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  const mac = new Uint8Array(await crypto.subtle.sign('HMAC', key, encoder.encode(`${t}.${rawBody}`)));
  return `t=${t},v1=${[...mac].map((b) => b.toString(16).padStart(2, '0')).join('')}`;
}
