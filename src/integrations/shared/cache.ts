/**
 * The response cache of read operations: fresh entries answer calls without a request; stale
 * ones are kept (up to `keepStaleMs`) for `fallback: 'cache'`, which serves the last good
 * response while the circuit is open or the retries are exhausted.
 *
 * Entries live in memory (a bounded LRU) and, when the runtime has a store, in the Store's
 * key-value space too, so every process (and the next start) can answer from them. A fill is
 * written to the store without waiting for it: the call that fetched the value does not pay for
 * the cache.
 */
import { createHash } from 'node:crypto';
import type { KvStore } from './shared-cell.js';

/** The Store scope cached responses live in. */
export const CACHE_SCOPE = 'keel.integrations.cache';

/** A cached response. */
export interface CacheEntry {
  status: number;
  headers: Record<string, string>;
  body: unknown;
  /** When it was fetched (epoch ms). */
  storedAt: number;
  /** Fresh until then; served as a fallback only after. */
  freshUntil: number;
}

/**
 * A two-level response cache.
 *
 * @example
 * ```ts
 * const cache = new ResponseCache(store, Date.now);
 * const key = ResponseCache.key('WeatherAPI', 'get_current', 'GET', '/weather', { q: 'Paris' }, undefined);
 * await cache.put(key, { status: 200, headers: {}, body }, 600_000);
 * (await cache.get(key))?.body;
 * ```
 */
export class ResponseCache {
  private readonly memory = new Map<string, CacheEntry>();

  constructor(
    private readonly store: KvStore | undefined,
    private readonly now: () => number,
    private readonly options: { maxEntries?: number; keepStaleMs?: number } = {},
    private readonly onError: (err: unknown) => void = () => undefined,
  ) {}

  /** The cache key of a request: the integration, operation, method, path, query and body. */
  static key(
    integration: string,
    operation: string,
    method: string,
    path: string,
    query: Record<string, string>,
    body: unknown,
  ): string {
    const q = Object.entries(query).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    const h = createHash('sha256')
      .update(JSON.stringify([method, path, q, body ?? null]))
      .digest('base64url')
      .slice(0, 32);
    return `${integration}/${operation}/${h}`;
  }

  /** The entry, fresh or stale, from memory or else from the store. */
  async get(key: string): Promise<CacheEntry | undefined> {
    const hit = this.memory.get(key);
    if (hit !== undefined) {
      this.memory.delete(key);
      this.memory.set(key, hit);
      return hit;
    }
    if (this.store === undefined) return undefined;
    const row = await this.store.getKv(CACHE_SCOPE, key);
    if (row === undefined || (row.expiresAt !== undefined && row.expiresAt <= this.now())) {
      return undefined;
    }
    const entry = row.value as CacheEntry;
    this.remember(key, entry);
    return entry;
  }

  /** Stores a good response for `ttlMs`; it is then kept as a fallback for `keepStaleMs` more. */
  put(key: string, response: Omit<CacheEntry, 'storedAt' | 'freshUntil'>, ttlMs: number): void {
    const now = this.now();
    const entry: CacheEntry = { ...response, storedAt: now, freshUntil: now + ttlMs };
    this.remember(key, entry);
    if (this.store === undefined) return;
    const keep = Math.max(ttlMs, this.options.keepStaleMs ?? 86_400_000);
    this.store
      .write([{ op: 'kv.put', scope: CACHE_SCOPE, key, value: entry, expiresAt: now + keep }])
      .catch(this.onError);
  }

  private remember(key: string, entry: CacheEntry): void {
    this.memory.delete(key);
    this.memory.set(key, entry);
    const max = this.options.maxEntries ?? 1000;
    while (this.memory.size > max) this.memory.delete(this.memory.keys().next().value!);
  }
}
