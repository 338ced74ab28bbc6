/**
 * A fake third-party API on 127.0.0.1 for integration tests: real HTTP, with failures, delays,
 * 429s with Retry-After and hung requests on demand, and a record of everything it saw (arrival
 * times, headers, idempotency keys).
 *
 * Built-in routes:
 * - `GET /users/{name}` → `{ login, id }`;
 * - `POST /charges` → a charge; idempotent by `Idempotency-Key`: a repeated key gets the same
 *   charge back (header `idempotent-replayed: true`), so `logicalCharges` counts real ones;
 * - `POST /oauth/token` → client-credentials tokens `tok-1`, `tok-2`, ... (`tokenTtlS`);
 * - `GET /me` → 200 with a currently valid `Bearer tok-N`, else 401 (`revokeTokens()`);
 * - `GET /ping` → `{ ok: true }`; `POST /batch` → echoes `{ n: i }` per element of an array body.
 *
 * `script(...)` queues replies that take precedence over the routes, one per request, in order;
 * `failAll(reply)` answers every request with `reply` until `failAll(undefined)`.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** status, headers, body */
type Answer = [number, Record<string, string>, unknown];

/** A request as the server saw it. */
export interface SeenRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  headers: Record<string, string>;
  body: unknown;
  /** Arrival time, epoch ms with sub-millisecond precision. */
  at: number;
}

/** A scripted answer. */
export interface FakeReply {
  status?: number;
  headers?: Record<string, string>;
  body?: unknown;
  /** Wait this long before answering. */
  delayMs?: number;
  /** Answer only once this settles (a test holds a request in flight). */
  until?: Promise<unknown>;
  /**
   * Never answer (until `releaseHung()` or `close()`): the request "left" but no result came
   * back. With `pass`, the built-in route still does its work first (a charge is made).
   */
  hang?: boolean;
  /** Answer with the built-in route after `delayMs` instead of `status`/`body`. */
  pass?: boolean;
}

/**
 * The fake provider.
 *
 * @example
 * ```ts
 * const api = await ProviderServer.start();
 * api.script({ status: 503 }, { status: 503 });
 * // ... calls to api.url ...
 * expect(api.count('/users')).toBe(3);
 * await api.close();
 * ```
 */
export class ProviderServer {
  readonly requests: SeenRequest[] = [];
  /** Charges by idempotency key (or a generated one when the request had none). */
  readonly charges = new Map<string, { id: string; amount: unknown }>();
  tokenTtlS = 3600;
  tokenRequests = 0;
  private readonly validTokens = new Set<string>();
  private queue: FakeReply[] = [];
  private always: FakeReply | undefined;
  private hung: ServerResponse[] = [];
  private waiters: Array<{ n: number; path?: string; resolve: () => void }> = [];
  private nextToken = 1;

  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async start(): Promise<ProviderServer> {
    const ref: { self?: ProviderServer } = {};
    const server = createServer((req, res) => void ref.self!.handle(req, res));
    server.keepAliveTimeout = 5000;
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as AddressInfo;
    ref.self = new ProviderServer(server, `http://127.0.0.1:${port}`);
    return ref.self;
  }

  /** Queues answers for the next requests, in order. */
  script(...replies: FakeReply[]): void {
    this.queue.push(...replies);
  }

  /** Answers every request with `reply` (until called with `undefined`). */
  failAll(reply: FakeReply | undefined): void {
    this.always = reply;
  }

  /** Requests seen whose path starts with `prefix` (all without one). */
  count(prefix = '/'): number {
    return this.requests.filter((r) => r.path.startsWith(prefix)).length;
  }

  /** The `Idempotency-Key` of each request, in arrival order (requests without one skipped). */
  idempotencyKeys(prefix = '/'): string[] {
    return this.requests
      .filter((r) => r.path.startsWith(prefix) && r.headers['idempotency-key'] !== undefined)
      .map((r) => r.headers['idempotency-key']!);
  }

  /** Distinct charges made (repeated idempotency keys count once). */
  get logicalCharges(): number {
    return this.charges.size;
  }

  /** Invalidates every token issued so far: `/me` answers 401 until a new one is fetched. */
  revokeTokens(): void {
    this.validTokens.clear();
  }

  /** Resolves once `n` requests (under `path`, if given) have arrived. */
  waitForRequests(n: number, path?: string): Promise<void> {
    if (this.count(path) >= n) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ n, ...(path ? { path } : {}), resolve }));
  }

  /** Answers the hung requests with 503 (their clients are usually gone by then). */
  releaseHung(): void {
    for (const res of this.hung.splice(0)) send(res, 503, {}, { error: 'released' });
  }

  async close(): Promise<void> {
    this.releaseHung();
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const at = performance.timeOrigin + performance.now();
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    let body: unknown = text === '' ? undefined : text;
    if (text !== '' && (req.headers['content-type'] ?? '').includes('json')) {
      try {
        body = JSON.parse(text);
      } catch {
        body = text;
      }
    }
    const u = new URL(req.url ?? '/', 'http://x');
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) {
      if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(', ') : v;
    }
    const seen: SeenRequest = {
      method: req.method ?? 'GET',
      path: u.pathname,
      query: Object.fromEntries(u.searchParams),
      headers,
      body,
      at,
    };
    this.requests.push(seen);
    this.waiters = this.waiters.filter((w) => {
      if (this.count(w.path) < w.n) return true;
      w.resolve();
      return false;
    });

    const reply = this.queue.shift() ?? this.always;
    if (reply?.delayMs !== undefined) await new Promise((r) => setTimeout(r, reply.delayMs));
    if (reply?.until !== undefined) await reply.until.catch(() => undefined);
    const answer: Answer =
      reply !== undefined && reply.pass !== true
        ? [reply.status ?? 200, reply.headers ?? {}, reply.body ?? null]
        : this.route(seen);
    if (reply?.hang === true) {
      this.hung.push(res);
      return;
    }
    send(res, ...answer);
  }

  private route(req: SeenRequest): Answer {
    const users = /^\/users\/([^/]+)$/.exec(req.path);
    if (req.method === 'GET' && users) {
      const login = decodeURIComponent(users[1]!);
      return [200, {}, { login, id: login.length * 1000 + this.count('/users') }];
    }
    if (req.method === 'POST' && req.path === '/charges') {
      const key = req.headers['idempotency-key'] ?? `anonymous-${this.requests.length}`;
      const existing = this.charges.get(key);
      if (existing) {
        return [200, { 'idempotent-replayed': 'true' }, existing];
      }
      const charge = {
        id: `ch_${this.charges.size + 1}`,
        amount: (req.body as { amount?: unknown } | undefined)?.amount,
      };
      this.charges.set(key, charge);
      return [200, {}, charge];
    }
    if (req.method === 'POST' && req.path === '/oauth/token') {
      this.tokenRequests++;
      const token = `tok-${this.nextToken++}`;
      this.validTokens.add(token);
      return [200, {}, { access_token: token, token_type: 'Bearer', expires_in: this.tokenTtlS }];
    }
    if (req.method === 'GET' && req.path === '/me') {
      const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
      if (token === undefined || !this.validTokens.has(token)) {
        return [
          401,
          { 'www-authenticate': 'Bearer error="invalid_token"' },
          { error: 'invalid_token' },
        ];
      }
      return [200, {}, { token }];
    }
    if (req.method === 'POST' && req.path === '/batch' && Array.isArray(req.body)) {
      return [
        200,
        {},
        (req.body as unknown[]).map((_, i) => ({ n: i, of: (req.body as unknown[]).length })),
      ];
    }
    if (req.path === '/ping') {
      return [200, {}, { ok: true }];
    }
    return [404, {}, { error: 'not_found' }];
  }
}

function send(
  res: ServerResponse,
  status: number,
  headers: Record<string, string>,
  body: unknown,
): void {
  if (res.destroyed || res.headersSent) return;
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}
