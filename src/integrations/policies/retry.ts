/**
 * The delay before each retry of an integration call: exponential or constant backoff with
 * jitter, or an explicit schedule (`[1m, 5m, 30m, 2h, 8h]`), stretched to honour the server's
 * `Retry-After`. Pure: the caller supplies the random number (from the journaled `ctx.random()`),
 * so a replay computes the same delays.
 */

/** A retry policy with every duration in milliseconds (what `integration()` produces). */
export interface ResolvedRetry {
  /** Retries after the first attempt (0 = never retry). */
  retries: number;
  backoff: 'exponential' | 'constant' | 'schedule';
  /** exponential/constant: the first delay. */
  initialDelayMs: number;
  /** exponential: delays never exceed this. */
  maxDelayMs: number;
  /** exponential: each delay is the previous times this. */
  factor: number;
  /** schedule: the delay before retry i is `scheduleMs[i - 1]`. */
  scheduleMs: readonly number[];
  /** Random spread around each delay (0.25 = ±25%). */
  jitter: number;
  /** Wait at least as long as the server's `Retry-After` says. */
  respectRetryAfter: boolean;
}

/**
 * The delay before retry number `retry` (1 = the first retry), or `undefined` when the policy
 * has no retries left. `random` is in [0, 1); `retryAfterMs` is the server's requested wait.
 *
 * @example
 * ```ts
 * const delay = retryDelay(op.retry, attempt, await ctx.random(), verdict.retryAfterMs);
 * if (delay === undefined) throw new RetriesExhaustedError(...);
 * await ctx.sleep(delay);
 * ```
 */
export function retryDelay(
  policy: ResolvedRetry,
  retry: number,
  random: number,
  retryAfterMs?: number,
): number | undefined {
  if (!Number.isInteger(retry) || retry < 1 || retry > policy.retries) return undefined;
  let base: number;
  if (policy.backoff === 'schedule') {
    base = policy.scheduleMs[retry - 1] ?? policy.scheduleMs[policy.scheduleMs.length - 1] ?? 0;
  } else if (policy.backoff === 'constant') {
    base = policy.initialDelayMs;
  } else {
    base = Math.min(policy.maxDelayMs, policy.initialDelayMs * policy.factor ** (retry - 1));
  }
  const jittered = Math.max(0, Math.round(base + base * policy.jitter * (random * 2 - 1)));
  if (policy.respectRetryAfter && retryAfterMs !== undefined && retryAfterMs > jittered) {
    return Math.round(retryAfterMs);
  }
  return jittered;
}
