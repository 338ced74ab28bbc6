/**
 * The HTTP side of a delivery attempt: the SSRF check, a keep-alive connection pool per
 * endpoint origin, one POST, and a bounded read of the answer.
 *
 * Every attempt checks the URL again (DNS can change between retries) and connects only to the
 * addresses the check vetted (`pinnedLookup`), so a name that rebinds to 127.0.0.1 after the
 * check is never reached. Pools are keyed by origin *and* vetted addresses: when DNS moves, the
 * next attempt gets a new pool and the old one is closed once idle. Redirects are not followed
 * (undici's `request` does not), so a 3xx is a failed attempt.
 */
import { lookup as dnsLookup } from 'node:dns/promises';
import { performance } from 'node:perf_hooks';
import { Pool } from 'undici';
import { isIP } from 'node:net';
import { checkUrl, pinnedLookup, type CheckUrlResult, type Resolver } from '../ssrf.js';

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

export class Sender {
  private readonly pools = new Map<string, PoolEntry>();
  private readonly literals = new Map<string, CheckUrlResult>();
  private readonly resolve: Resolver;
  private readonly sweep: NodeJS.Timeout;

  constructor(private readonly options: SenderOptions) {
    this.resolve = options.resolve ?? cachedResolver(options.dnsCacheMs ?? 1000);
    this.sweep = setInterval(() => this.closeIdle(), POOL_IDLE_MS);
    this.sweep.unref();
  }

  /** POSTs `body` to `url` with `headers`; never throws. */
  async post(url: string, headers: Record<string, string>, body: string): Promise<HttpOutcome> {
    const started = performance.now();
    const elapsed = (): number => Math.round(performance.now() - started);
    const checked = await this.check(url);
    if (!checked.ok) return { error: checked.reason, errorCode: checked.code, durationMs: 0 };
    const pool = this.poolFor(checked.url.origin, checked.addresses);
    try {
      const res = await pool.request({
        method: 'POST',
        path: checked.url.pathname + checked.url.search,
        headers: {
          ...headers,
          'content-type': 'application/json',
          'user-agent': USER_AGENT,
        },
        body,
        // From the moment the request is written; connecting has its own timeout (the pool's).
        headersTimeout: this.options.timeoutMs,
        bodyTimeout: this.options.timeoutMs,
      });
      const text = await readLimited(res.body, this.options.bodyLimit);
      const retryAfter = res.headers['retry-after'];
      return {
        status: res.statusCode,
        ...(typeof retryAfter === 'string' ? { retryAfter } : {}),
        ...(text ? { body: text } : {}),
        durationMs: elapsed(),
      };
    } catch (err) {
      return { ...describe(err, this.options.timeoutMs), durationMs: elapsed() };
    }
  }

  /**
   * The SSRF check. A URL whose host is an IP literal needs no DNS and always gets the same
   * verdict, so that verdict is kept (the common case of a high-rate endpoint); a host name is
   * resolved and judged again on every attempt.
   */
  private check(url: string): Promise<CheckUrlResult> | CheckUrlResult {
    const known = this.literals.get(url);
    if (known) return known;
    return checkUrl(url, { allow: this.options.allow, resolve: this.resolve }).then((r) => {
      const host = r.ok ? r.hostname : undefined;
      if (host !== undefined && isIP(host) !== 0) {
        if (this.literals.size >= 10_000) this.literals.clear();
        this.literals.set(url, r);
      }
      return r;
    });
  }

  async close(): Promise<void> {
    clearInterval(this.sweep);
    const pools = [...this.pools.values()];
    this.pools.clear();
    await Promise.all(pools.map((p) => p.pool.destroy().catch(() => undefined)));
  }

  private poolFor(origin: string, addresses: readonly { address: string; family: 4 | 6 }[]) {
    const key = `${origin} ${addresses.map((a) => a.address).join(',')}`;
    let entry = this.pools.get(key);
    if (!entry) {
      entry = {
        pool: new Pool(origin, {
          connections: this.options.connections,
          connect: { lookup: pinnedLookup(addresses), timeout: this.options.timeoutMs },
          keepAliveTimeout: 4_000,
        }),
        lastUsed: 0,
      };
      this.pools.set(key, entry);
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

function readLimited(body: NodeJS.ReadableStream, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const kept: Buffer[] = [];
    let keptBytes = 0;
    let total = 0;
    body.on('data', (chunk: Buffer) => {
      if (keptBytes < limit) {
        const part = chunk.subarray(0, limit - keptBytes);
        kept.push(part);
        keptBytes += part.length;
      }
      total += chunk.length;
      // Dropping the connection is cheaper than reading a large answer to the end.
      if (total > DRAIN_LIMIT) {
        (body as NodeJS.ReadableStream & { destroy(): void }).destroy();
        resolve(text());
      }
    });
    const text = (): string =>
      kept.length === 0 ? '' : Buffer.concat(kept, keptBytes).toString('utf8');
    body.on('end', () => resolve(text()));
    body.on('error', reject);
  });
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
