/**
 * The HTTP side of a delivery attempt: the SSRF check, a keep-alive connection pool per
 * endpoint origin, one POST, and a bounded read of the answer.
 *
 * Every attempt checks the URL again (DNS can change between retries) and connects only to the
 * addresses the check vetted (`pinnedLookup`), so a name that rebinds to 127.0.0.1 after the
 * check is never reached. Pools are keyed by origin *and* vetted addresses: when DNS moves, the
 * next attempt gets a new pool and the old one is closed once idle. Redirects are not followed
 * (a plain undici dispatch does not), so a 3xx is a failed attempt.
 */
import { lookup as dnsLookup } from 'node:dns/promises';
import { performance } from 'node:perf_hooks';
import type { IncomingHttpHeaders } from 'node:http';
import { Pool, type Dispatcher } from 'undici';
import { isIP } from 'node:net';
import {
  checkUrl,
  pinnedLookup,
  type CheckUrlResult,
  type ResolvedAddress,
  type Resolver,
} from '../ssrf.js';

type Refused = Extract<CheckUrlResult, { ok: false }>;

/** What came back from one POST. */
export interface HttpOutcome {
  status?: number;
  retryAfter?: string;
  /** The start of the response body, truncated to the limit. */
  body?: string;
  error?: string;
  errorCode?: string;
  durationMs: number;
}

export interface SenderOptions {
  allow: readonly string[];
  resolve?: Resolver;
  timeoutMs: number;
  bodyLimit: number;
  connections: number;
  /** How long a resolved name is reused before asking DNS again. */
  dnsCacheMs?: number;
}

/** Beyond this, the rest of a response body is not read: the connection is dropped instead. */
const DRAIN_LIMIT = 64 * 1024;
const POOL_IDLE_MS = 60_000;
const USER_AGENT = 'Keel-Webhooks/1';

interface PoolEntry {
  pool: Pool;
  lastUsed: number;
}

/** A URL the SSRF check accepted, with what a request to it needs. */
interface Vetted {
  ok: true;
  origin: string;
  /** Path and query of the request. */
  path: string;
  addresses: ResolvedAddress[];
  /** Pools are per origin and vetted addresses (see the module comment). */
  poolKey: string;
}

function vetted(r: Extract<CheckUrlResult, { ok: true }>): Vetted {
  const origin = r.url.origin;
  return {
    ok: true,
    origin,
    path: r.url.pathname + r.url.search,
    addresses: r.addresses,
    poolKey: `${origin} ${r.addresses.map((a) => a.address).join(',')}`,
  };
}

export class Sender {
  private readonly pools = new Map<string, PoolEntry>();
  private readonly literals = new Map<string, Vetted>();
  private readonly resolve: Resolver;
  private readonly sweep: NodeJS.Timeout;

  constructor(private readonly options: SenderOptions) {
    this.resolve = options.resolve ?? cachedResolver(options.dnsCacheMs ?? 1000);
    this.sweep = setInterval(() => this.closeIdle(), POOL_IDLE_MS);
    this.sweep.unref();
  }

  /**
   * POSTs `body` to `url` with `headers` (name, value, name, value, ...: the signature headers;
   * `content-type` and `user-agent` are appended to the array); never throws.
   */
  post(url: string, headers: string[], body: string): Promise<HttpOutcome> {
    const started = performance.now();
    const checked = this.check(url);
    // A known verdict (an IP literal) is used at once, without a turn of the microtask queue.
    return 'then' in checked
      ? checked.then((c) => this.send(c, headers, body, started))
      : this.send(checked, headers, body, started);
  }

  private send(
    checked: Vetted | Refused,
    headers: string[],
    body: string,
    started: number,
  ): Promise<HttpOutcome> {
    if (!checked.ok)
      return Promise.resolve({ error: checked.reason, errorCode: checked.code, durationMs: 0 });
    const pool = this.poolFor(checked);
    headers.push('content-type', 'application/json', 'user-agent', USER_AGENT);
    return new Promise<HttpOutcome>((resolve) => {
      // A dispatch handler rather than `request()`: no response stream, no promise per body,
      // which was a fifth of the HTTP client's CPU per delivery.
      pool.dispatch(
        {
          method: 'POST',
          path: checked.path,
          headers,
          body,
          // From the moment the request is written; connecting has its own timeout (the pool's).
          headersTimeout: this.options.timeoutMs,
          bodyTimeout: this.options.timeoutMs,
        },
        new ResponseReader(resolve, started, this.options.bodyLimit, this.options.timeoutMs),
      );
    });
  }

  /**
   * The SSRF check. A URL whose host is an IP literal needs no DNS and always gets the same
   * verdict, so that verdict is kept (the common case of a high-rate endpoint); a host name is
   * resolved and judged again on every attempt.
   */
  private check(url: string): Promise<Vetted | Refused> | Vetted {
    const known = this.literals.get(url);
    if (known) return known;
    return checkUrl(url, { allow: this.options.allow, resolve: this.resolve }).then((r) => {
      if (!r.ok) return r;
      const v = vetted(r);
      if (isIP(r.hostname) !== 0) {
        if (this.literals.size >= 10_000) this.literals.clear();
        this.literals.set(url, v);
      }
      return v;
    });
  }

  async close(): Promise<void> {
    clearInterval(this.sweep);
    const pools = [...this.pools.values()];
    this.pools.clear();
    await Promise.all(pools.map((p) => p.pool.destroy().catch(() => undefined)));
  }

  private poolFor(target: Vetted): Pool {
    let entry = this.pools.get(target.poolKey);
    if (!entry) {
      entry = {
        pool: new Pool(target.origin, {
          connections: this.options.connections,
          connect: { lookup: pinnedLookup(target.addresses), timeout: this.options.timeoutMs },
          keepAliveTimeout: 4_000,
        }),
        lastUsed: 0,
      };
      this.pools.set(target.poolKey, entry);
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

/** Reads one answer: its status, `Retry-After`, and the start of its body; resolves once. */
class ResponseReader implements Dispatcher.DispatchHandler {
  private status = 0;
  private retryAfter: string | undefined;
  private readonly kept: Buffer[] = [];
  private keptBytes = 0;
  private total = 0;
  private settled = false;

  constructor(
    private readonly resolve: (o: HttpOutcome) => void,
    private readonly started: number,
    private readonly limit: number,
    private readonly timeoutMs: number,
  ) {}

  // Present so that undici treats this as a handler of its current API (not the legacy one).
  onRequestStart(): void {}

  onResponseStart(
    _controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: IncomingHttpHeaders,
  ): void {
    if (statusCode < 200) return; // 1xx informational: the answer follows
    this.status = statusCode;
    const retryAfter = headers['retry-after'];
    this.retryAfter = typeof retryAfter === 'string' ? retryAfter : undefined;
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.settled) return;
    if (this.keptBytes < this.limit) {
      const part = chunk.subarray(0, this.limit - this.keptBytes);
      this.kept.push(part);
      this.keptBytes += part.length;
    }
    this.total += chunk.length;
    // Dropping the connection is cheaper than reading a large answer to the end.
    if (this.total > DRAIN_LIMIT) {
      this.answer();
      controller.abort(new Error('response body beyond the drain limit'));
    }
  }

  onResponseEnd(): void {
    this.answer();
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    if (this.settled) return;
    this.settled = true;
    this.resolve({ ...describe(err, this.timeoutMs), durationMs: this.elapsed() });
  }

  private answer(): void {
    if (this.settled) return;
    this.settled = true;
    const o: HttpOutcome = { status: this.status, durationMs: this.elapsed() };
    if (this.retryAfter !== undefined) o.retryAfter = this.retryAfter;
    if (this.keptBytes > 0) o.body = Buffer.concat(this.kept, this.keptBytes).toString('utf8');
    this.resolve(o);
  }

  private elapsed(): number {
    return Math.round(performance.now() - this.started);
  }
}

function describe(err: unknown, timeoutMs: number): { error: string; errorCode: string } {
  const e = err as { name?: string; code?: string; message?: string; cause?: { code?: string } };
  const code = e.code ?? e.cause?.code;
  if (
    e.name === 'TimeoutError' ||
    e.name === 'AbortError' ||
    code === 'UND_ERR_CONNECT_TIMEOUT' ||
    code === 'UND_ERR_HEADERS_TIMEOUT' ||
    code === 'UND_ERR_BODY_TIMEOUT'
  )
    return { error: `no answer within ${timeoutMs} ms`, errorCode: 'timeout' };
  const detail = code ? `${code}: ` : '';
  return {
    error: `${detail}${e.message ?? 'the connection failed'}`.slice(0, 500),
    errorCode: 'connection_failed',
  };
}

/**
 * `dns.lookup` with a short cache and coalescing: at thousands of deliveries a second to one
 * host, asking the system resolver every time would queue on libuv's four threads. The
 * addresses are still judged on every attempt; only the lookup is reused.
 */
export function cachedResolver(ttlMs: number): Resolver {
  const cache = new Map<string, { at: number; answer: ReturnType<Resolver> }>();
  return (hostname) => {
    const now = Date.now();
    const hit = cache.get(hostname);
    if (hit && now - hit.at < ttlMs) return hit.answer;
    const answer = dnsLookup(hostname, { all: true, verbatim: true });
    cache.set(hostname, { at: now, answer });
    // A failed lookup is not cached: the next attempt asks again.
    answer.catch(() => cache.delete(hostname));
    if (cache.size > 10_000) cache.clear();
    return answer;
  };
}
