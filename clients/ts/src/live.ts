// The live socket, `GET /v1/boards/{board}/live?limit=&window=`: typed
// snapshot/update messages and a reconnect loop with backoff, so every viewer
// (the page, a bot, a game) does not write its own.
import type { components } from './schema';

export type LiveMessage = components['schemas']['LiveMessage'];
export type Window = components['schemas']['Window'];

/** What the connection is doing; `delayMs` is set while waiting to reconnect. */
export type LiveStatus =
  | { state: 'connecting'; attempt: number }
  | { state: 'live' }
  | { state: 'reconnecting'; attempt: number; delayMs: number }
  /** The board was deleted (close code 4404) or close() was called: no more reconnects. */
  | { state: 'closed'; reason: 'board_removed' | 'closed' };

export interface LiveOptions {
  /** Entries per message, 1–100 (default: the server's, 10). */
  limit?: number;
  window?: Window;
  onMessage: (msg: LiveMessage) => void;
  onStatus?: (status: LiveStatus) => void;
  /** Backoff: the n-th retry waits about min(capMs, baseMs·2^n), half of it jittered. */
  backoff?: { baseMs?: number; capMs?: number };
  /** Asked before each reconnect (e.g. `() => navigator.onLine`); false waits one more backoff step. */
  canConnect?: () => boolean;
  /** A WebSocket constructor where there is no global one (Node < 22: the `ws` package). */
  WebSocket?: typeof WebSocket;
}

export interface LiveConnection {
  /** Stops for good (no reconnect). */
  close(): void;
  /** Connects now if not connected (e.g. on the browser's `online` event), with the backoff reset. */
  reconnectNow(): void;
  readonly connected: boolean;
}

/** The n-th backoff delay with "equal jitter": half fixed, half random, so clients do not reconnect in lockstep. */
export function backoffDelay(attempt: number, baseMs = 500, capMs = 15000): number {
  const exp = Math.min(capMs, baseMs * 2 ** attempt);
  return Math.round(exp / 2 + Math.random() * (exp / 2));
}

/** Parses one socket text into a message; anything else (e.g. `pong`) is null. */
export function parseLiveMessage(data: unknown): LiveMessage | null {
  if (typeof data !== 'string') return null;
  let msg: unknown;
  try {
    msg = JSON.parse(data);
  } catch {
    return null;
  }
  if (!msg || typeof msg !== 'object') return null;
  const m = msg as Partial<LiveMessage>;
  if ((m.type !== 'snapshot' && m.type !== 'update') || !Array.isArray(m.entries)) return null;
  return m as LiveMessage;
}

export function liveUrl(baseUrl: string, board: string, { limit, window }: { limit?: number; window?: Window } = {}): string {
  const u = new URL(`v1/boards/${encodeURIComponent(board)}/live`, baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`);
  u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
  if (limit !== undefined) u.searchParams.set('limit', String(limit));
  if (window) u.searchParams.set('window', window);
  return u.toString();
}

export function connectLive(baseUrl: string, board: string, opts: LiveOptions): LiveConnection {
  const WS = opts.WebSocket ?? globalThis.WebSocket;
  if (!WS) throw new Error('no WebSocket: pass options.WebSocket (e.g. from the `ws` package)');
  const url = liveUrl(baseUrl, board, opts);
  const base = opts.backoff?.baseMs ?? 500;
  const cap = opts.backoff?.capMs ?? 15000;
  let ws: WebSocket | null = null;
  let attempt = 0;
  let timer: ReturnType<typeof setTimeout> | null = null;
  let stopped = false;
  const status = (s: LiveStatus) => opts.onStatus?.(s);

  function open() {
    if (stopped) return;
    status({ state: 'connecting', attempt });
    let sock: WebSocket;
    try {
      sock = new WS(url);
    } catch {
      schedule();
      return;
    }
    ws = sock;
    sock.addEventListener('message', (ev: MessageEvent) => {
      if (ws !== sock) return;
      const msg = parseLiveMessage(ev.data);
      if (!msg) return;
      if (msg.type === 'snapshot') {
        attempt = 0; // healthy again
        status({ state: 'live' });
      }
      opts.onMessage(msg);
    });
    sock.addEventListener('close', (ev: CloseEvent) => {
      if (ws !== sock) return;
      ws = null;
      if (ev.code === 4404) {
        stopped = true;
        status({ state: 'closed', reason: 'board_removed' });
        return;
      }
      schedule();
    });
  }

  function schedule() {
    if (stopped) return;
    const delayMs = backoffDelay(attempt, base, cap);
    attempt++;
    status({ state: 'reconnecting', attempt, delayMs });
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = null;
      if (opts.canConnect && !opts.canConnect()) schedule();
      else open();
    }, delayMs);
  }

  open();
  return {
    close() {
      if (stopped) return;
      stopped = true;
      if (timer) clearTimeout(timer);
      const sock = ws;
      ws = null;
      try {
        sock?.close(1000, 'closed');
      } catch {
        /* already closed */
      }
      status({ state: 'closed', reason: 'closed' });
    },
    reconnectNow() {
      if (stopped || ws) return;
      if (timer) clearTimeout(timer);
      timer = null;
      attempt = 0;
      open();
    },
    get connected() {
      return ws !== null && ws.readyState === 1;
    },
  };
}
