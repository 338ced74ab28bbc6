/**
 * One JSON value shared by every process through the Store's key-value space, advanced by pure
 * transitions with compare-and-set: read, apply, write only if the version is unchanged, re-read
 * and re-apply on conflict.
 *
 * Two things keep it cheap:
 * - **A cached copy.** Reads younger than `maxAgeMs` are served from memory. A transition that
 *   returns the very same object (a closed breaker admitting a call) writes nothing, so the common
 *   case costs no round trip; one that changes the state is written with the cached version, and
 *   a stale cache simply loses the compare-and-set, re-reads and re-applies.
 * - **Group updates.** Transitions requested while a write is in flight are queued and applied
 *   together, in order, in the next write: ten concurrent failures cost one write, not ten
 *   conflicting ones.
 *
 * Without a store (a plain client) the value lives in memory only.
 */
import type { Store } from '../../store/types.js';

/** What a cell needs from the Store. */
export type KvStore = Pick<Store, 'getKv' | 'write'>;

/** A pure transition: the next value (the same object for "no change") and what to answer. */
export type Transition<T, R> = (value: T) => { value: T; result: R };

interface Pending<T> {
  fn: Transition<T, unknown>;
  resolve: (r: unknown) => void;
  reject: (e: unknown) => void;
}

/** Gives up after this many lost compare-and-sets in a row (a hot key under heavy contention). */
const MAX_CONFLICTS = 50;

/**
 * A store-backed value with a short-lived cache.
 *
 * @example
 * ```ts
 * const cell = new SharedCell(store, 'keel.breaker', 'GitHubAPI', parseBreakerState, initialBreakerState, 1000, Date.now);
 * const decision = await cell.update((s) => { const d = acquireBreaker(s, now, opts); return { value: d.state, result: d }; });
 * ```
 */
export class SharedCell<T> {
  private cached: { value: T; version: number; readAt: number } | undefined;
  private reading: Promise<{ value: T; version: number }> | undefined;
  private queue: Pending<T>[] = [];
  private writing = false;

  constructor(
    private readonly store: KvStore | undefined,
    readonly scope: string,
    readonly key: string,
    private readonly parse: (raw: unknown) => T,
    private readonly initial: () => T,
    private readonly maxAgeMs: number,
    private readonly now: () => number,
  ) {}

  /** The value, from the cache when it is young enough (or `fresh: false`), else from the store. */
  async read(fresh = false): Promise<T> {
    return (await this.load(fresh)).value;
  }

  /** The cached value without any I/O, if there is one. */
  peek(): T | undefined {
    return this.cached?.value;
  }

  /**
   * The cached value when a transition may be decided on it right now without any I/O (young
   * enough, no write in flight), else `undefined`. A caller whose transition changes nothing on
   * this value is done; otherwise it goes through {@link updateSoon}. `now` is the clock's.
   */
  current(now: number): T | undefined {
    const c = this.cached;
    if (c === undefined || this.writing) return undefined;
    const age = now - c.readAt;
    return age >= 0 && age < this.maxAgeMs ? c.value : undefined;
  }

  /**
   * Applies `fn` to the current value and stores the result if it changed; resolves with `fn`'s
   * result from the application that was stored (or that changed nothing).
   */
  update<R>(fn: Transition<T, R>): Promise<R> {
    const r = this.updateSoon(fn);
    return r instanceof Promise ? r : Promise.resolve(r);
  }

  /**
   * {@link update}, answering synchronously on the fast path (a young cache and a transition
   * that changes nothing need no I/O at all), so the hot path of a call skips a promise.
   */
  updateSoon<R>(fn: Transition<T, R>): R | Promise<R> {
    const c = this.cached;
    if (c !== undefined && !this.writing && this.young(c.readAt)) {
      const out = fn(c.value);
      if (out.value === c.value) return out.result;
    }
    return new Promise<R>((resolve, reject) => {
      const pending: Pending<T> = {
        fn,
        resolve: (r) => resolve(r as R),
        reject,
      };
      this.queue.push(pending);
      if (!this.writing) void this.drain();
    });
  }

  /** Forgets the cached copy, so the next read goes to the store. */
  invalidate(): void {
    this.cached = undefined;
  }

  private async drain(): Promise<void> {
    this.writing = true;
    try {
      while (this.queue.length > 0) {
        const batch = this.queue;
        this.queue = [];
        try {
          const results = await this.apply(batch);
          batch.forEach((p, i) => p.resolve(results[i]));
        } catch (err) {
          for (const p of batch) p.reject(err);
        }
      }
    } finally {
      this.writing = false;
    }
  }

  private async apply(batch: Pending<T>[]): Promise<unknown[]> {
    let fresh = false;
    for (let conflicts = 0; ; conflicts++) {
      const cur = await this.load(fresh);
      let value = cur.value;
      const results: unknown[] = [];
      for (const p of batch) {
        const out = p.fn(value);
        value = out.value;
        results.push(out.result);
      }
      if (value === cur.value) return results;
      if (this.store === undefined) {
        this.cached = { value, version: cur.version + 1, readAt: this.now() };
        return results;
      }
      const [res] = (await this.store.write([
        { op: 'kv.put', scope: this.scope, key: this.key, value, expectVersion: cur.version },
      ])) as [{ ok: boolean; version: number } | undefined];
      if (res?.ok === true) {
        this.cached = { value, version: res.version, readAt: this.now() };
        return results;
      }
      if (conflicts >= MAX_CONFLICTS) {
        throw new Error(
          `shared state ${this.scope}/${this.key}: lost ${MAX_CONFLICTS} compare-and-sets in a row`,
        );
      }
      fresh = true;
    }
  }

  private async load(fresh: boolean): Promise<{ value: T; version: number }> {
    const c = this.cached;
    if (c !== undefined && (this.store === undefined || (!fresh && this.young(c.readAt)))) {
      return c;
    }
    if (this.store === undefined) {
      const value = this.initial();
      this.cached = { value, version: 0, readAt: this.now() };
      return this.cached;
    }
    // Concurrent readers share one round trip.
    this.reading ??= this.fetch().finally(() => (this.reading = undefined));
    return this.reading;
  }

  private async fetch(): Promise<{ value: T; version: number }> {
    const store = this.store!;
    const row = await store.getKv(this.scope, this.key);
    let value: T;
    try {
      value = row === undefined ? this.initial() : this.parse(row.value);
    } catch {
      // A corrupt row is replaced by the initial state on the next write (its version is kept
      // so the compare-and-set still holds).
      value = this.initial();
    }
    const loaded = { value, version: row?.version ?? 0, readAt: this.now() };
    this.cached = loaded;
    return loaded;
  }

  private young(readAt: number): boolean {
    const age = this.now() - readAt;
    return age >= 0 && age < this.maxAgeMs;
  }
}
