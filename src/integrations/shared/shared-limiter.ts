/**
 * The rate limit of one integration, shared by every process through the Store: the pure limiter
 * of `policies/rate-limit.ts` (a strict sliding window, paced by a token bucket that starts full) advanced
 * in a {@link SharedCell}.
 *
 * Permits are leased in blocks: a process takes up to `block` permits in one compare-and-set and
 * hands them to its own callers from memory, so the store is hit once per block, not per call.
 * A lease is valid for `leaseMs`; permits not used by then are dropped (never carried over, so a
 * process cannot hoard a burst), and the window counts every leased permit until `leaseMs` after
 * the lease, so a permit used late is still inside the window that counted it. The block is what
 * the limit allows in one lease period, so leasing never lets more through than the limit.
 *
 * A lease is sized to the demand: the first is a whole block, each next one twice what the last
 * one served (twice its size when it ran out early), never more than a block and never less than
 * the callers waiting. Leased-but-unused permits count in the window all the same, so whole
 * blocks for a process that uses a few permits each period would fill the window with permits
 * nobody uses and make its callers wait for nothing, far below the limit.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import {
  applyServerHints,
  availablePermits,
  initialRateLimitState,
  parseRateLimitState,
  rateLimitUsage,
  tryAcquire,
  type RateLimitOptions,
  type RateLimitState,
  type ServerHints,
} from '../policies/rate-limit.js';
import { SharedCell, type KvStore } from './shared-cell.js';

/** The Store scope limiter states live in (key: the integration's name). */
export const RATE_LIMIT_SCOPE = 'keel.integrations.ratelimit';

/** Waits `ms` on the runtime's clock (a fake clock in tests). */
export type Wait = (ms: number) => Promise<void>;

/** The defaults that turn a declared "N per W" into the limiter's options. */
export function limiterOptions(requests: number, windowMs: number): RateLimitOptions {
  const slots = 10;
  return { requests, windowMs, slots, burst: Math.max(1, Math.ceil(requests / slots)) };
}

/**
 * A store-backed limiter with per-process leases.
 *
 * @example
 * ```ts
 * const limiter = new SharedLimiter(store, 'GitHubAPI', limiterOptions(5000, 3_600_000), env);
 * await limiter.acquire(); // resolves when this call may go out
 * ```
 */
export class SharedLimiter {
  private readonly cell: SharedCell<RateLimitState>;
  /** The current lease: permits left of `granted`, usable until `expiresAt`. */
  private lease = { permits: 0, granted: 0, expiresAt: 0 };
  private readonly waiters: Array<{ resolve: () => void; reject: (e: unknown) => void }> = [];
  private pumping = false;
  readonly leaseMs: number;
  readonly block: number;

  constructor(
    store: KvStore | undefined,
    readonly integration: string,
    readonly options: RateLimitOptions,
    private readonly env: { maxAgeMs: number; now: () => number; wait?: Wait },
  ) {
    this.cell = new SharedCell(
      store,
      RATE_LIMIT_SCOPE,
      integration,
      parseRateLimitState,
      initialRateLimitState,
      env.maxAgeMs,
      env.now,
    );
    this.leaseMs = Math.max(1, Math.min(1000, options.windowMs / (options.slots ?? 10)));
    this.block = Math.max(
      1,
      Math.min(
        options.burst ?? options.requests,
        Math.floor((options.requests * this.leaseMs) / options.windowMs),
      ),
    );
  }

  /**
   * Resolves when one request may go out; waits (in memory) as long as the limit requires.
   * Answers synchronously (undefined) when this process holds a leased permit.
   */
  acquire(): Promise<void> | undefined {
    if (this.waiters.length === 0 && this.takeLocal()) return undefined;
    return new Promise<void>((resolve, reject) => {
      this.waiters.push({ resolve, reject });
      if (!this.pumping) void this.pump();
    });
  }

  /**
   * The hot path of {@link acquire}: takes a leased permit synchronously when this process holds
   * one and no caller is queued before this one; false otherwise (then `acquire()`).
   */
  tryTake(now: number): boolean {
    const lease = this.lease;
    if (this.waiters.length === 0 && lease.permits > 0 && now < lease.expiresAt) {
      lease.permits--;
      return true;
    }
    return false;
  }

  /** How long a request would wait right now, judged from the cached state (0 if a lease is held). */
  estimateWaitMs(): number {
    const now = this.env.now();
    if (this.lease.permits > 0 && now < this.lease.expiresAt) return 0;
    const s = this.cell.peek();
    if (s === undefined) return 0;
    const d = tryAcquire(s, now, this.options, 1);
    return d.allowed ? 0 : d.waitMs;
  }

  /**
   * Folds what a response said into the shared state. Only hints that can matter are written:
   * a `Retry-After`, or a remaining budget low enough to constrain us; writing every response's
   * `X-RateLimit-Remaining` would cost a store round trip per call.
   */
  observe(hints: ServerHints): Promise<void> | undefined {
    const lowWater = Math.max(2 * this.block, Math.ceil(this.options.requests / 10));
    const matters =
      (hints.retryAfterMs !== undefined && hints.retryAfterMs > 0) ||
      (hints.remaining !== undefined && hints.remaining <= lowWater);
    if (!matters) return undefined;
    if (hints.retryAfterMs !== undefined && hints.retryAfterMs > 0) {
      // Our own lease must not outlive the server's "wait".
      this.lease = { permits: 0, granted: 0, expiresAt: 0 };
    }
    const now = this.env.now();
    return this.cell.update((s) => ({
      value: applyServerHints(s, hints, now, this.options),
      result: undefined,
    }));
  }

  /** Usage for the health API (from the store). */
  async usage(): Promise<{ used: number; limit: number; serverRemaining?: number }> {
    const s = await this.cell.read(true);
    return rateLimitUsage(s, this.env.now(), this.options);
  }

  private takeLocal(): boolean {
    if (this.lease.permits > 0 && this.env.now() < this.lease.expiresAt) {
      this.lease.permits--;
      return true;
    }
    return false;
  }

  /** How many permits the next lease takes (see the module comment), at most a block. */
  private leaseSize(now: number): number {
    const { permits, granted, expiresAt } = this.lease;
    if (granted === 0) return this.block;
    // Ran out before it expired: the demand outgrew it.
    if (permits === 0 && now < expiresAt) return Math.min(this.block, 2 * granted);
    return Math.min(this.block, Math.max(1, 2 * (granted - permits)));
  }

  private async pump(): Promise<void> {
    this.pumping = true;
    try {
      while (this.waiters.length > 0) {
        while (this.waiters.length > 0 && this.takeLocal()) this.waiters.shift()!.resolve();
        if (this.waiters.length === 0) break;
        const now = this.env.now();
        // With many callers queued, wait for a whole block rather than lease permits one at a
        // time (a write each).
        const want = Math.min(this.block, this.waiters.length);
        const size = Math.max(want, this.leaseSize(now));
        const got = await this.cell.update((s) => {
          // Take what is there, up to the lease's size (the rest of it serves the next callers
          // without a round trip); wait only when there is not enough for those waiting.
          const n = Math.min(size, availablePermits(s, now, this.options));
          if (n >= want) {
            const d = tryAcquire(s, now, this.options, n, this.leaseMs);
            return { value: d.state, result: { granted: n, waitMs: 0 } };
          }
          const d = tryAcquire(s, now, this.options, want);
          // A refusal writes nothing, except to start a new bucket (so it refills from now).
          return {
            value: s.bucket === undefined && this.options.burst !== undefined ? d.state : s,
            result: { granted: 0, waitMs: d.allowed ? 1 : d.waitMs },
          };
        });
        if (got.granted > 0) {
          this.lease = {
            permits: got.granted,
            granted: got.granted,
            expiresAt: now + this.leaseMs,
          };
        } else {
          await (this.env.wait ?? sleep)(Math.max(1, got.waitMs));
        }
      }
    } catch (err) {
      // The store failed: the limit cannot be enforced, so the waiting calls fail (retryably)
      // rather than go out unchecked or wait forever.
      while (this.waiters.length > 0) this.waiters.shift()!.reject(err);
    } finally {
      this.pumping = false;
    }
  }
}
