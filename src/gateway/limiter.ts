/**
 * The per-key rate limit, shared by every process through the Store: the integrations' pure
 * limiter (`policies/rate-limit.ts`, a strict sliding window) advanced in a `SharedCell`, leased
 * in blocks like `SharedLimiter`, but never waiting: a request the limit refuses is answered 429
 * with how long to wait, at once.
 *
 * A process takes permits in one compare-and-set and hands them out from memory until its lease
 * (at most 1 s, a tenth of the window) expires. A lease follows the demand (twice what the last
 * one served) and never exceeds a block, what the limit allows in one lease period; leased
 * permits count in the window, so no window ever admits more than the limit, whichever process
 * admitted the requests. Small limits (under ten per lease period) lease one permit at a time:
 * exact, at one store write per request.
 */
import {
  availablePermits,
  initialRateLimitState,
  parseRateLimitState,
  tryAcquire,
  type RateLimitOptions,
  type RateLimitState,
} from '../integrations/policies/rate-limit.js';
import { SharedCell, type KvStore } from '../integrations/shared/shared-cell.js';

/** The Store scope of the per-key limiter states (key: the API key's id). */
export const GATEWAY_RATE_SCOPE = 'keel.gateway.ratelimit';

/** The answer: admitted, or refused with how long until a request would be admitted. */
export type Admission = { allowed: true } | { allowed: false; retryAfterMs: number };

const ALLOWED: Admission = { allowed: true };

/**
 * One API key's limit.
 *
 * @example
 * ```ts
 * const limit = new KeyLimiter(store, 'key_1', { requests: 100, windowMs: 60_000 }, Date.now);
 * const a = limit.take(); // Admission, or a Promise of one when the store must be asked
 * ```
 */
export class KeyLimiter {
  private readonly cell: SharedCell<RateLimitState>;
  private lease = { permits: 0, granted: 0, expiresAt: 0 };
  private readonly waiters: Array<{
    resolve: (a: Admission) => void;
    reject: (e: unknown) => void;
  }> = [];
  private pumping = false;
  readonly leaseMs: number;
  readonly block: number;

  constructor(
    store: KvStore,
    readonly keyId: string,
    readonly options: RateLimitOptions,
    private readonly now: () => number,
  ) {
    // A cached state is trusted for 0 ms: every lease is a fresh compare-and-set.
    this.cell = new SharedCell(
      store,
      GATEWAY_RATE_SCOPE,
      keyId,
      parseRateLimitState,
      initialRateLimitState,
      0,
      now,
    );
    const slots = options.slots ?? 10;
    this.leaseMs = Math.max(1, Math.min(1000, options.windowMs / slots));
    this.block = Math.max(1, Math.floor((options.requests * this.leaseMs) / options.windowMs));
  }

  /**
   * Admits from the lease synchronously; otherwise queues behind one store round trip that
   * leases permits for every request waiting (concurrent requests share one compare-and-set).
   */
  take(): Admission | Promise<Admission> {
    if (this.waiters.length === 0 && this.takeLocal(this.now())) return ALLOWED;
    return new Promise<Admission>((resolve, reject) => {
      this.waiters.push({ resolve, reject });
      if (!this.pumping) void this.pump();
    });
  }

  private takeLocal(now: number): boolean {
    if (this.lease.permits > 0 && now < this.lease.expiresAt) {
      this.lease.permits--;
      return true;
    }
    return false;
  }

  /**
   * The next lease's size, following the demand: twice what the last lease served (twice its
   * size when it ran out early), between 1 and a block. Leased permits count in the window
   * whether used or not, so leasing whole blocks to a process that uses a few would fill the
   * window with permits nobody uses and refuse requests far below the limit.
   */
  private leaseSize(now: number): number {
    const { permits, granted, expiresAt } = this.lease;
    if (granted === 0) return Math.min(this.block, 8);
    if (permits === 0 && now < expiresAt) return Math.min(this.block, 2 * granted);
    return Math.min(this.block, Math.max(1, 2 * (granted - permits)));
  }

  private async pump(): Promise<void> {
    this.pumping = true;
    try {
      while (this.waiters.length > 0) {
        const now = this.now();
        while (this.waiters.length > 0 && this.takeLocal(now))
          this.waiters.shift()!.resolve(ALLOWED);
        if (this.waiters.length === 0) break;
        const size = Math.min(
          this.options.requests,
          Math.max(this.waiters.length, this.leaseSize(now)),
        );
        const got = await this.cell.update((s) => {
          const n = Math.min(size, availablePermits(s, now, this.options));
          if (n >= 1) {
            const d = tryAcquire(s, now, this.options, n, this.leaseMs);
            return { value: d.state, result: { granted: n, waitMs: 0 } };
          }
          const d = tryAcquire(s, now, this.options, 1);
          return { value: s, result: { granted: 0, waitMs: Math.max(1, d.waitMs) } };
        });
        if (got.granted > 0) {
          this.lease = {
            permits: got.granted,
            granted: got.granted,
            expiresAt: now + this.leaseMs,
          };
        } else {
          // Nothing left in the window: everyone waiting now is refused, with the same wait.
          const refused: Admission = { allowed: false, retryAfterMs: got.waitMs };
          for (const w of this.waiters.splice(0)) w.resolve(refused);
        }
      }
    } catch (err) {
      // The store failed: the limit cannot be checked, so the requests fail (503) rather than
      // pass unchecked.
      for (const w of this.waiters.splice(0)) w.reject(err);
    } finally {
      this.pumping = false;
    }
  }
}
