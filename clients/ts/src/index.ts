// @podium/client: a typed client for Podium's HTTP API.
//
// The request and response types are generated from docs/openapi.yaml by
// openapi-typescript (src/schema.d.ts; `npm run check` fails when it is
// stale), and calls go through openapi-fetch, a ~6 kB typed wrapper over
// `fetch` from the same project, so a path, parameter or body that the API
// does not define is a type error. `client.api` is that raw typed client (every
// path, every status); the methods below are the common calls with the
// answers unwrapped and errors thrown as PodiumError.
import createClient, { type Client } from 'openapi-fetch';
import type { components, paths } from './schema';
import { connectLive, type LiveConnection, type LiveOptions } from './live';

export type { components, paths } from './schema';
export * from './live';
export * from './webhooks';

type S = components['schemas'];
export type Event = S['Event'];
export type Accepted = S['Accepted'];
export type Board = S['Board'];
export type BoardSummary = S['BoardSummary'];
export type BoardSettings = S['BoardSettings'];
export type Entry = S['Entry'];
export type Listing = S['Listing'];
export type Standing = S['Standing'];
export type RouteTarget = S['RouteTarget'];
export type Hook = S['Hook'];
export type HookBody = S['HookBody'];
export type Delivery = S['Delivery'];
export type DeadLetter = S['DeadLetter'];
export type Window = S['Window'];
export type ErrorCode = S['Error']['error']['code'];
/** `POST /v1/events?wait=applied`: accepted, then applied, with standings. */
export type Applied = paths['/v1/events']['post']['responses'][200]['content']['application/json'];

/** An answer outside 2xx (after retries), with the API's stable error `code`. */
export class PodiumError extends Error {
  readonly status: number;
  readonly code: ErrorCode | 'http_error';
  readonly field?: string;
  readonly index?: number;
  /** Seconds, from `Retry-After` (429). */
  readonly retryAfter?: number;
  constructor(status: number, body: unknown, retryAfter?: number) {
    const e = (body as { error?: S['Error']['error'] } | null)?.error;
    super(e?.message ?? `HTTP ${status}`);
    this.name = 'PodiumError';
    this.status = status;
    this.code = e?.code ?? 'http_error';
    this.field = e?.field;
    this.index = e?.index;
    this.retryAfter = retryAfter;
  }
}

export interface PodiumOptions {
  /** The worker's origin, e.g. `http://127.0.0.1:8787`; `''` or `location.origin` in a page. */
  baseUrl: string;
  /** For `ingest` (the admin key is used when this is absent). */
  ingestKey?: string;
  /** For every admin call (boards, routes, hooks, dead letters, export...). */
  adminKey?: string;
  /** How many times a 429/503 is retried (default 4), waiting `Retry-After` (else a backoff). */
  retries?: number;
  /** The longest wait between two tries, ms (default 30000). */
  maxRetryDelayMs?: number;
  /** A fetch to use instead of the global one. */
  fetch?: typeof fetch;
}

/** Query parameters of the ranking reads. */
export interface ReadQuery {
  window?: Window;
  period?: string;
}

const RETRY_STATUS = new Set([429, 503]);

/**
 * A fetch that retries 429 and 503 when a retry cannot count anything twice:
 * reads, PUTs (they set a state), and POSTs/DELETEs that carry an
 * `Idempotency-Key` (the server answers a repeat with the first answer).
 * Ingest is safe twice over: every event gets an `id` before it is sent.
 */
function retryingFetch(inner: typeof fetch, retries: number, maxDelayMs: number) {
  return async (req: Request): Promise<Response> => {
    const safe = ['GET', 'HEAD', 'PUT'].includes(req.method) || req.headers.has('idempotency-key') || req.url.includes('/lookup');
    for (let attempt = 0; ; attempt++) {
      const res = await inner(safe && attempt < retries ? req.clone() : req);
      if (!safe || attempt >= retries || !RETRY_STATUS.has(res.status)) return res;
      const ra = Number(res.headers.get('retry-after'));
      const wait = Number.isFinite(ra) && ra >= 0 ? ra * 1000 : 250 * 2 ** attempt;
      await res.body?.cancel();
      await new Promise((r) => setTimeout(r, Math.min(maxDelayMs, wait)));
    }
  };
}

function newId(): string {
  return globalThis.crypto.randomUUID();
}

type Result<T> = { data?: T; error?: unknown; response: Response };

/** The answer's data, or a PodiumError. */
async function unwrap<T>(p: Promise<Result<T>>): Promise<T> {
  const { data, error, response } = await p;
  if (!response.ok) {
    const ra = Number(response.headers.get('retry-after'));
    throw new PodiumError(response.status, error, Number.isFinite(ra) && response.headers.has('retry-after') ? ra : undefined);
  }
  return data as T;
}

export class Podium {
  /** The raw typed client: every path and status of docs/openapi.yaml. */
  readonly api: Client<paths>;
  readonly baseUrl: string;
  private readonly ingestAuth: Record<string, string>;
  private readonly adminAuth: Record<string, string>;

  constructor(opts: PodiumOptions) {
    this.baseUrl = opts.baseUrl.replace(/\/+$/, '');
    const inner = opts.fetch ?? globalThis.fetch.bind(globalThis);
    this.api = createClient<paths>({
      baseUrl: this.baseUrl,
      fetch: retryingFetch(inner, opts.retries ?? 4, opts.maxRetryDelayMs ?? 30000),
    });
    const ingest = opts.ingestKey ?? opts.adminKey;
    this.ingestAuth = ingest ? { authorization: `Bearer ${ingest}` } : {};
    this.adminAuth = opts.adminKey ? { authorization: `Bearer ${opts.adminKey}` } : {};
  }

  private admin(extra?: Record<string, string>) {
    return { ...this.adminAuth, ...extra };
  }
  /** An Idempotency-Key for a POST/DELETE, so the fetch may retry it. */
  private idem(key?: string) {
    return this.admin({ 'idempotency-key': key ?? newId() });
  }

  health() {
    return unwrap(this.api.GET('/v1/health'));
  }

  // ---------- ingest ----------

  /**
   * Sends events (one or up to 1000). Events without an `id` get a random
   * one first, so a retry of a 429/503 (or of a lost answer, by the caller)
   * counts each event once; the request also carries an `Idempotency-Key`.
   */
  async ingest(events: Event | Event[], opts: { idempotencyKey?: string } = {}): Promise<Accepted> {
    const body = (Array.isArray(events) ? events : [events]).map((e) => (e.id ? e : { ...e, id: newId() }));
    return unwrap(
      this.api.POST('/v1/events', {
        body,
        headers: { ...this.ingestAuth, 'idempotency-key': opts.idempotencyKey ?? newId() },
      }),
    ) as Promise<Accepted>;
  }

  /** `?wait=applied` (≤ 100 events): answers once applied, with each member's new standing. */
  async ingestAndWait(events: Event | Event[], opts: { idempotencyKey?: string } = {}): Promise<Applied> {
    const body = (Array.isArray(events) ? events : [events]).map((e) => (e.id ? e : { ...e, id: newId() }));
    return unwrap(
      this.api.POST('/v1/events', {
        params: { query: { wait: 'applied' } },
        body,
        headers: { ...this.ingestAuth, 'idempotency-key': opts.idempotencyKey ?? newId() },
      }),
    ) as Promise<Applied>;
  }

  // ---------- boards ----------

  listBoards(query: { limit?: number; cursor?: string; prefix?: string } = {}) {
    return unwrap(this.api.GET('/v1/boards', { params: { query } }));
  }
  /** Every board, following `next` page by page. */
  async *boards(query: { prefix?: string; pageSize?: number } = {}): AsyncGenerator<BoardSummary> {
    let cursor: string | undefined;
    do {
      const page = await this.listBoards({ limit: query.pageSize ?? 1000, prefix: query.prefix, cursor });
      yield* page.boards;
      cursor = page.next ?? undefined;
    } while (cursor);
  }
  getBoard(board: string) {
    return unwrap(this.api.GET('/v1/boards/{board}', { params: { path: { board } } }));
  }
  putBoard(board: string, settings: BoardSettings) {
    return unwrap(this.api.PUT('/v1/boards/{board}', { params: { path: { board } }, body: settings, headers: this.admin() }));
  }
  async deleteBoard(board: string): Promise<void> {
    await unwrap(this.api.DELETE('/v1/boards/{board}', { params: { path: { board } }, headers: this.idem() }));
  }

  // ---------- routes ----------

  listRoutes() {
    return unwrap(this.api.GET('/v1/routes'));
  }
  getRoute(type: string) {
    return unwrap(this.api.GET('/v1/routes/{type}', { params: { path: { type } } }));
  }
  putRoute(type: string, targets: RouteTarget[]) {
    return unwrap(this.api.PUT('/v1/routes/{type}', { params: { path: { type } }, body: { targets }, headers: this.admin() }));
  }
  async deleteRoute(type: string): Promise<void> {
    await unwrap(this.api.DELETE('/v1/routes/{type}', { params: { path: { type } }, headers: this.idem() }));
  }

  // ---------- rankings (public) ----------

  top(board: string, query: ReadQuery & { limit?: number; offset?: number } = {}) {
    return unwrap(this.api.GET('/v1/boards/{board}/top', { params: { path: { board }, query } }));
  }
  /** A member's standing; a member not on the board → PodiumError 404 `member_not_found`. */
  member(board: string, member: string, query: ReadQuery = {}) {
    return unwrap(this.api.GET('/v1/boards/{board}/members/{member}', { params: { path: { board, member }, query } }));
  }
  around(board: string, member: string, query: ReadQuery & { radius?: number } = {}) {
    return unwrap(this.api.GET('/v1/boards/{board}/members/{member}/around', { params: { path: { board, member }, query } }));
  }
  lookup(board: string, members: string[], query: ReadQuery = {}) {
    return unwrap(this.api.POST('/v1/boards/{board}/lookup', { params: { path: { board }, query }, body: { members } }));
  }
  /** Live top of a board: typed messages, reconnects with backoff until close(). */
  live(board: string, opts: LiveOptions): LiveConnection {
    return connectLive(this.baseUrl || globalThis.location?.origin || '', board, opts);
  }

  // ---------- seasons ----------

  listSeasons(board: string) {
    return unwrap(this.api.GET('/v1/boards/{board}/seasons', { params: { path: { board } } }));
  }
  /** Archives the all window's ranking and starts a new season (once per `idempotencyKey`). */
  newSeason(board: string, opts: { idempotencyKey?: string } = {}) {
    return unwrap(this.api.POST('/v1/boards/{board}/seasons', { params: { path: { board } }, headers: this.idem(opts.idempotencyKey) }));
  }

  // ---------- members (admin) ----------

  removeMember(board: string, member: string) {
    return unwrap(this.api.DELETE('/v1/boards/{board}/members/{member}', { params: { path: { board, member } }, headers: this.idem() }));
  }
  hideMember(board: string, member: string) {
    return unwrap(this.api.PUT('/v1/boards/{board}/members/{member}/hidden', { params: { path: { board, member } }, headers: this.admin() }));
  }
  showMember(board: string, member: string) {
    return unwrap(this.api.DELETE('/v1/boards/{board}/members/{member}/hidden', { params: { path: { board, member } }, headers: this.idem() }));
  }
  listHidden(board: string) {
    return unwrap(this.api.GET('/v1/boards/{board}/hidden', { params: { path: { board } }, headers: this.admin() }));
  }
  /** Erases a member from every board; poll `getErasure(erasure)` until `done`. */
  eraseMember(member: string) {
    return unwrap(this.api.DELETE('/v1/members/{member}', { params: { path: { member } }, headers: this.idem() }));
  }
  getErasure(id: string) {
    return unwrap(this.api.GET('/v1/erasures/{id}', { params: { path: { id } }, headers: this.admin() }));
  }

  // ---------- export / import (admin) ----------

  /** The whole ranking as NDJSON or CSV text (best first). */
  exportBoard(board: string, query: ReadQuery & { format?: 'ndjson' | 'csv' } = {}): Promise<string> {
    return unwrap(
      this.api.GET('/v1/boards/{board}/export', { params: { path: { board }, query }, headers: this.admin(), parseAs: 'text' }),
    ) as Promise<string>;
  }
  /** Sets members' scores (≤ 1 MiB of NDJSON per call); lines are objects or NDJSON text. */
  importBoard(
    board: string,
    lines: string | Array<{ member: string; score: number; subscore?: number; reached?: number; meta?: Record<string, unknown>; hidden?: boolean }>,
    query: ReadQuery & { idempotencyKey?: string } = {},
  ) {
    const text = typeof lines === 'string' ? lines : lines.map((l) => JSON.stringify(l)).join('\n') + '\n';
    const { idempotencyKey, ...q } = query;
    return unwrap(
      this.api.POST('/v1/boards/{board}/import', {
        params: { path: { board }, query: q },
        // The schema's body is NDJSON text; send it as is, not JSON-encoded.
        body: text as never,
        bodySerializer: (b: unknown) => b as string,
        headers: { ...this.idem(idempotencyKey), 'content-type': 'application/x-ndjson' },
      }),
    );
  }

  // ---------- dead letters (admin) ----------

  listDeadLetters(query: { limit?: number; cursor?: string } = {}) {
    return unwrap(this.api.GET('/v1/dead-letters', { params: { query }, headers: this.admin() }));
  }
  /** Sends dead letters back to their board periods: the given ids, or (none given) the first 1000. */
  redrive(ids?: string[]) {
    return unwrap(this.api.POST('/v1/dead-letters/redrive', { body: ids ? { ids } : {}, headers: this.idem() }));
  }
  async deleteDeadLetter(id: string): Promise<void> {
    await unwrap(this.api.DELETE('/v1/dead-letters/{id}', { params: { path: { id } }, headers: this.idem() }));
  }

  // ---------- hooks (admin) ----------

  listHooks() {
    return unwrap(this.api.GET('/v1/hooks', { headers: this.admin() }));
  }
  getHook(name: string) {
    return unwrap(this.api.GET('/v1/hooks/{name}', { params: { path: { name } }, headers: this.admin() }));
  }
  /** Creates (needs `secret`) or replaces a hook; the secret is never returned. */
  putHook(name: string, hook: HookBody) {
    return unwrap(this.api.PUT('/v1/hooks/{name}', { params: { path: { name } }, body: hook, headers: this.admin() }));
  }
  async deleteHook(name: string): Promise<void> {
    await unwrap(this.api.DELETE('/v1/hooks/{name}', { params: { path: { name } }, headers: this.idem() }));
  }
  deliveries(name: string, query: { limit?: number } = {}) {
    return unwrap(this.api.GET('/v1/hooks/{name}/deliveries', { params: { path: { name }, query }, headers: this.admin() }));
  }
}

/** `new Podium(opts)`. */
export function createPodium(opts: PodiumOptions): Podium {
  return new Podium(opts);
}
