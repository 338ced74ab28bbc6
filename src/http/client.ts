/**
 * Keel's one outbound HTTP client, shared by integration calls and webhook delivery: keep-alive
 * connection pools per origin, a connect timeout and a whole-request deadline, a limit on the
 * response body kept, an optional address guard (SSRF), and a close that waits for requests in
 * flight or aborts them.
 *
 * Without a guard, every origin gets its pool inside one undici `Agent`. With a guard, every
 * request checks its URL again (DNS can change between requests), and connects only to the
 * addresses the check vetted (`pinnedLookup`), so a name that rebinds to 127.0.0.1 after the
 * check is never reached; those pools are keyed by origin *and* vetted addresses (when DNS moves,
 * the next request gets a new pool and the old one is closed once idle). Redirects are never
 * followed (a plain undici dispatch does not), so a 3xx is an answer like any other.
 *
 * {@link HttpClient.exchange} is the whole exchange and never rejects: it answers an
 * {@link HttpResult}, the small shape each caller maps to its own (integrations: a thrown error
 * the policies classify; webhooks: a delivery attempt's outcome). {@link HttpClient.open} is the
 * integrations' hot path: undici's own promise, with undici's coarse timers (see there).
 */
import type { IncomingHttpHeaders } from 'node:http';
import { isIP } from 'node:net';
import { performance } from 'node:perf_hooks';
import { Agent, Pool, request as undiciRequest, type Dispatcher } from 'undici';
import { UsageError } from '../core/errors.js';
import {
  cachedResolver,
  checkUrl,
  pinnedLookup,
  type CheckUrlResult,
  type ResolvedAddress,
  type Resolver,
  type UrlRefusal,
} from './address-guard.js';

/** The address guard of a client: which non-public destinations are allowed, and how to resolve. */
export interface AddressGuardOptions {
  /** Hosts, addresses or CIDR blocks that may be reached though not public (see `checkUrl`). */
  allow?: readonly string[];
  /** Resolves a host; a `dns.lookup` cached for `dnsCacheMs` by default. */
  resolve?: Resolver;
  /** How long a resolved name is reused before asking DNS again; 1 s. */
  dnsCacheMs?: number;
  /** What refusals call the request (`'webhook'`); `'outbound request'` by default. */
  noun?: string;
}

/** Options of {@link HttpClient}; every one has a default. */
export interface HttpClientOptions {
  /** Connections per origin; unlimited by default (undici's). */
  connections?: number;
  /** How long an idle keep-alive connection is kept open; 10 s. */
  keepAliveMs?: number;
  /** How long connecting (TCP and TLS) may take; 10 s. */
  connectTimeoutMs?: number;
  /** The whole request's deadline when the request gives none; 30 s. */
  timeoutMs?: number;
  /**
   * Response body bytes kept; the rest is read and dropped, and past 64 KiB (or the limit, if
   * larger) the connection is closed instead of read to the end. Unlimited by default.
   */
  bodyLimit?: number;
  /** Check every request's destination (SSRF); none by default. */
  guard?: AddressGuardOptions;
}

/** One request. */
export interface HttpRequest {
  method: string;
  /** An absolute http(s) URL. */
  url: string;
  /** As a record, or as a flat array of names and values (`['a', '1', 'b', '2']`). */
  headers?: Record<string, string> | string[];
  body?: string | Uint8Array | undefined;
  /** The deadline of the whole request, from the call to the last byte of the answer. */
  timeoutMs?: number;
}

/** An answer: status, lower-case headers (repeated ones joined with `, `) and the body kept. */
export interface HttpResponse {
  ok: true;
  status: number;
  headers: Record<string, string>;
  /** The body, or its first `bodyLimit` bytes. */
  body: Buffer;
  /** The body was longer than `bodyLimit`. */
  truncated: boolean;
  durationMs: number;
}

/** Why no answer came. */
export type HttpFailureCode = 'timeout' | 'connection_failed' | 'closed' | UrlRefusal;

/** No answer: what happened, and the error underneath when there is one. */
export interface HttpFailure {
  ok: false;
  code: HttpFailureCode;
  message: string;
  cause?: unknown;
  /** 0 when nothing was sent (refused by the guard, or the client was closed). */
  durationMs: number;
}

/** The outcome of {@link HttpClient.exchange}. */
export type HttpResult = HttpResponse | HttpFailure;

/** A response head from undici: status, headers and the body still to read. */
export type ResponseHead = Dispatcher.ResponseData;

/** Beyond this (or the body limit, if larger), an answer's connection is dropped, not read. */
const DRAIN_LIMIT = 64 * 1024;
/** A guarded pool unused for this long is closed. */
const POOL_IDLE_MS = 60_000;

type Refused = Extract<CheckUrlResult, { ok: false }>;

/** A destination: where the request goes, and for a guarded one, the vetted addresses. */
interface Destination {
  ok: true;
  origin: string;
  /** Path and query. */
  path: string;
  addresses?: ResolvedAddress[];
  /** Guarded pools are per origin and vetted addresses (see the module comment). */
  poolKey?: string;
}

interface PoolEntry {
  pool: Pool;
  lastUsed: number;
}

/**
 * The outbound HTTP client (see the module comment).
 *
 * @example
 * ```ts
 * const http = new HttpClient({ timeoutMs: 5000, bodyLimit: 4096, guard: { allow: [] } });
 * const res = await http.exchange({ method: 'POST', url, headers: { 'content-type': 'application/json' }, body: '{}' });
 * if (res.ok) console.log(res.status, res.body.toString('utf8'));
 * else console.warn(`${res.code}: ${res.message}`); // e.g. blocked_address
 * await http.close(); // or close({ abort: true }) not to wait for requests in flight
 * ```
 */
export class HttpClient {
  private readonly agent: Agent;
  private readonly timeoutMs: number;
  private readonly bodyLimit: number;
  private readonly connectTimeoutMs: number;
  private readonly keepAliveMs: number;
  private readonly guard:
    { allow: readonly string[]; resolve: Resolver; noun: string | undefined } | undefined;
  private readonly pools = new Map<string, PoolEntry>();
  /** Verdicts on URLs whose host is an IP literal: they never change, so they are kept. */
  private readonly literals = new Map<string, Destination>();
  private sweep: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(private readonly options: HttpClientOptions = {}) {
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.bodyLimit = options.bodyLimit ?? Infinity;
    this.connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
    this.keepAliveMs = options.keepAliveMs ?? 10_000;
    const g = options.guard;
    this.guard =
      g === undefined
        ? undefined
        : {
            allow: g.allow ?? [],
            resolve: g.resolve ?? cachedResolver(g.dnsCacheMs ?? 1000),
            noun: g.noun,
          };
    this.agent = new Agent({
      keepAliveTimeout: this.keepAliveMs,
      connect: { timeout: this.connectTimeoutMs },
      ...(options.connections === undefined ? {} : { connections: options.connections }),
    });
  }

  /**
   * Sends a request and reads its answer (at most `bodyLimit` bytes kept); never rejects. The
   * deadline covers everything from this call on: the guard's DNS lookup, waiting for a
   * connection, connecting, sending, and reading the answer.
   */
  exchange(req: HttpRequest): Promise<HttpResult> {
    const started = performance.now();
    if (this.closed) return Promise.resolve(closedFailure());
    const dest = this.destination(req.url);
    // A known verdict (no guard, or an IP literal) is used at once, without a turn of the
    // microtask queue.
    return 'then' in dest
      ? dest.then((d) => this.dispatch(d, req, started))
      : this.dispatch(dest, req, started);
  }

  /**
   * The integrations' hot path (no guard; throws `UsageError` on a guarded client): sends the
   * request and resolves with undici's response head, whose body the caller reads; rejects with
   * undici's error. `timeoutMs` is left to undici's coarse timers (no answer head, or a pause in
   * the body, for that long; they fire up to about a second late), which cost almost nothing;
   * use {@link exchange} for an exact deadline. With a `target` (the origin and path exactly as
   * `new URL(url)` gives them) the URL is not parsed again.
   */
  open(
    req: Omit<HttpRequest, 'timeoutMs'>,
    timeoutMs: number,
    target?: { origin: string; path: string },
  ): Promise<ResponseHead> {
    if (this.guard !== undefined) {
      throw new UsageError('HttpClient.open() sends unchecked: use exchange() on a guarded client');
    }
    if (target !== undefined) {
      return this.agent.request({
        origin: target.origin,
        path: target.path,
        method: req.method,
        headers: req.headers,
        body: req.body,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      });
    }
    return undiciRequest(req.url, {
      method: req.method,
      headers: req.headers,
      body: req.body,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      dispatcher: this.agent,
    });
  }

  /**
   * Closes every pool. By default waits for the requests in flight to finish; with
   * `{ abort: true }` aborts them (they answer `connection_failed`), for a process going down.
   * Requests made afterwards answer `closed`.
   */
  async close(options: { abort?: boolean } = {}): Promise<void> {
    this.closed = true;
    if (this.sweep !== undefined) clearInterval(this.sweep);
    const all: Dispatcher[] = [this.agent, ...[...this.pools.values()].map((p) => p.pool)];
    this.pools.clear();
    await Promise.all(
      all.map((d) => (options.abort === true ? d.destroy() : d.close()).catch(() => undefined)),
    );
  }

  private dispatch(
    dest: Destination | Refused | HttpFailure,
    req: HttpRequest,
    started: number,
  ): Promise<HttpResult> {
    if (!dest.ok) {
      if ('reason' in dest) {
        return Promise.resolve({ ok: false, code: dest.code, message: dest.reason, durationMs: 0 });
      }
      return Promise.resolve(dest);
    }
    if (this.closed) return Promise.resolve(closedFailure());
    const timeoutMs = req.timeoutMs ?? this.timeoutMs;
    const dispatcher = dest.poolKey === undefined ? this.agent : this.poolFor(dest);
    return new Promise<HttpResult>((resolve) => {
      // A dispatch handler rather than `request()`: no response stream and no promise per body,
      // which was a fifth of the client's CPU per webhook delivery.
      dispatcher.dispatch(
        {
          origin: dest.origin,
          method: req.method,
          path: dest.path,
          headers: req.headers,
          body: req.body,
        },
        new ResponseReader(resolve, started, this.bodyLimit, timeoutMs),
      );
    });
  }

  /**
   * Where a URL goes. With a guard this is the SSRF check: a URL whose host is an IP literal
   * needs no DNS and always gets the same verdict, so that verdict is kept (the common case of a
   * high-rate endpoint); a host name is resolved and judged again on every request.
   */
  private destination(url: string): Destination | HttpFailure | Promise<Destination | Refused> {
    const guard = this.guard;
    if (guard === undefined) {
      let u: URL;
      try {
        u = new URL(url);
      } catch (err) {
        return {
          ok: false,
          code: 'invalid_url',
          message: `"${url}" is not a URL`,
          cause: err,
          durationMs: 0,
        };
      }
      return { ok: true, origin: u.origin, path: u.pathname + u.search };
    }
    const known = this.literals.get(url);
    if (known !== undefined) return known;
    return checkUrl(url, {
      allow: guard.allow,
      resolve: guard.resolve,
      ...(guard.noun === undefined ? {} : { noun: guard.noun }),
    }).then((r) => {
      if (!r.ok) return r;
      const origin = r.url.origin;
      const d: Destination = {
        ok: true,
        origin,
        path: r.url.pathname + r.url.search,
        addresses: r.addresses,
        poolKey: `${origin} ${r.addresses.map((a) => a.address).join(',')}`,
      };
      if (isIP(r.hostname) !== 0) {
        if (this.literals.size >= 10_000) this.literals.clear();
        this.literals.set(url, d);
      }
      return d;
    });
  }

  private poolFor(dest: Destination): Pool {
    let entry = this.pools.get(dest.poolKey!);
    if (entry === undefined) {
      entry = {
        pool: new Pool(dest.origin, {
          ...(this.options.connections === undefined
            ? {}
            : { connections: this.options.connections }),
          connect: { lookup: pinnedLookup(dest.addresses ?? []), timeout: this.connectTimeoutMs },
          keepAliveTimeout: this.keepAliveMs,
        }),
        lastUsed: 0,
      };
      this.pools.set(dest.poolKey!, entry);
      if (this.sweep === undefined) {
        this.sweep = setInterval(() => this.closeIdle(), POOL_IDLE_MS);
        this.sweep.unref();
      }
    }
    entry.lastUsed = Date.now();
    return entry.pool;
  }

  private closeIdle(): void {
    const cutoff = Date.now() - POOL_IDLE_MS;
    for (const [key, entry] of this.pools) {
      if (entry.lastUsed >= cutoff) continue;
      this.pools.delete(key);
      void entry.pool.close().catch(() => undefined);
    }
  }
}

function closedFailure(): HttpFailure {
  return {
    ok: false,
    code: 'closed',
    message: 'the HTTP client is closed (its owner is shutting down)',
    durationMs: 0,
  };
}

/** Raised into undici when a request's deadline passes (classified as `timeout`). */
class DeadlineError extends Error {
  override readonly name = 'TimeoutError';
}

/** Reads one answer: status, headers and the start of its body, under a deadline; resolves once. */
class ResponseReader implements Dispatcher.DispatchHandler {
  private status = 0;
  private headers: Record<string, string> = {};
  private readonly kept: Buffer[] = [];
  private keptBytes = 0;
  private total = 0;
  private settled = false;
  private controller: Dispatcher.DispatchController | undefined;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly resolve: (r: HttpResult) => void,
    private readonly started: number,
    private readonly limit: number,
    private readonly timeoutMs: number,
  ) {
    this.timer = setTimeout(() => this.expire(), timeoutMs);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    // The deadline passed while the request waited for a connection: it is not sent.
    if (this.settled) controller.abort(new DeadlineError('deadline passed'));
    else this.controller = controller;
  }

  onResponseStart(
    _controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: IncomingHttpHeaders,
  ): void {
    if (statusCode < 200) return; // 1xx informational: the answer follows
    this.status = statusCode;
    this.headers = flattenHeaders(headers);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.settled) return;
    if (this.keptBytes < this.limit) {
      const part =
        this.limit - this.keptBytes >= chunk.length
          ? chunk
          : chunk.subarray(0, this.limit - this.keptBytes);
      this.kept.push(part);
      this.keptBytes += part.length;
    }
    this.total += chunk.length;
    // Dropping the connection is cheaper than reading a large answer to the end.
    if (this.total > DRAIN_LIMIT && this.total > this.limit) {
      this.answer();
      controller.abort(new Error('response body beyond the drain limit'));
    }
  }

  onResponseEnd(): void {
    this.answer();
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    if (this.settled) return;
    this.settle(describe(err, this.timeoutMs, this.elapsed()));
  }

  private expire(): void {
    if (this.settled) return;
    const err = new DeadlineError(`no answer within ${this.timeoutMs} ms`);
    this.settle({
      ok: false,
      code: 'timeout',
      message: err.message,
      cause: err,
      durationMs: this.elapsed(),
    });
    this.controller?.abort(err);
  }

  private answer(): void {
    if (this.settled) return;
    this.settle({
      ok: true,
      status: this.status,
      headers: this.headers,
      body: this.kept.length === 1 ? this.kept[0]! : Buffer.concat(this.kept, this.keptBytes),
      truncated: this.total > this.keptBytes,
      durationMs: this.elapsed(),
    });
  }

  private settle(r: HttpResult): void {
    this.settled = true;
    clearTimeout(this.timer);
    this.resolve(r);
  }

  private elapsed(): number {
    return Math.round(performance.now() - this.started);
  }
}

function describe(err: unknown, timeoutMs: number, durationMs: number): HttpFailure {
  const e = err as { name?: string; code?: string; message?: string; cause?: { code?: string } };
  const code = e.code ?? e.cause?.code;
  if (
    e.name === 'TimeoutError' ||
    e.name === 'AbortError' ||
    code === 'UND_ERR_CONNECT_TIMEOUT' ||
    code === 'UND_ERR_HEADERS_TIMEOUT' ||
    code === 'UND_ERR_BODY_TIMEOUT'
  ) {
    return {
      ok: false,
      code: 'timeout',
      message: `no answer within ${timeoutMs} ms`,
      cause: err,
      durationMs,
    };
  }
  const detail = code ? `${code}: ` : '';
  return {
    ok: false,
    code: 'connection_failed',
    message: `${detail}${e.message ?? 'the connection failed'}`.slice(0, 500),
    cause: err,
    durationMs,
  };
}

/**
 * Response headers as one string each: undici's names are lower case already; repeated headers
 * are joined with `, `.
 *
 * @example
 * ```ts
 * flattenHeaders({ 'set-cookie': ['a=1', 'b=2'] }); // { 'set-cookie': 'a=1, b=2' }
 * ```
 */
export function flattenHeaders(
  headers: Record<string, string | string[] | undefined>,
): Record<string, string> {
  for (const k in headers) {
    if (typeof headers[k] !== 'string') return joined(headers);
  }
  return headers as Record<string, string>;
}

function joined(headers: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k in headers) {
    const v = headers[k];
    if (v !== undefined) out[k] = Array.isArray(v) ? v.join(', ') : v;
  }
  return out;
}
