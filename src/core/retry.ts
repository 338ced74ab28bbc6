import { parseDuration, type Duration } from './duration.js';
import { UsageError } from './errors.js';

/**
 * How a failing handler or step is retried. Any error other than a `TerminalError` is retried
 * with exponential backoff and jitter until `maxAttempts` attempts have been made; then the
 * step (or invocation) fails with a terminal `RetriesExhaustedError` (code
 * `retries_exhausted`) that the handler can catch, or that propagates to the caller.
 *
 * Defaults ({@link DEFAULT_RETRY}): first retry after 100 ms, doubling, at most 30 s apart,
 * ±20% jitter, 10 attempts in all (about one minute of trying).
 *
 * @example
 * ```ts
 * await ctx.run('charge', () => stripe.charge(order), {
 *   retry: { maxAttempts: 5, initialInterval: '1s', maxInterval: '1m' },
 * });
 * ```
 */
export interface RetryPolicy {
  /** Attempts in all, the first included. `Infinity` retries forever. */
  maxAttempts?: number;
  /** Delay before the first retry. */
  initialInterval?: Duration;
  /** Each delay is the previous one times this factor. */
  factor?: number;
  /** Delays never exceed this. */
  maxInterval?: Duration;
  /** Fraction of random spread around each delay (0.2 = ±20%). */
  jitter?: number;
}

/** A retry policy with every field resolved to numbers. */
export interface ResolvedRetryPolicy {
  maxAttempts: number;
  initialIntervalMs: number;
  factor: number;
  maxIntervalMs: number;
  jitter: number;
}

export const DEFAULT_RETRY: ResolvedRetryPolicy = {
  maxAttempts: 10,
  initialIntervalMs: 100,
  factor: 2,
  maxIntervalMs: 30_000,
  jitter: 0.2,
};

/** Fills a partial policy from a base (the engine default, or the handler's policy for a step). */
export function resolveRetry(
  p: RetryPolicy | undefined,
  base: ResolvedRetryPolicy = DEFAULT_RETRY,
): ResolvedRetryPolicy {
  if (!p) return base;
  const r: ResolvedRetryPolicy = {
    maxAttempts: p.maxAttempts ?? base.maxAttempts,
    initialIntervalMs:
      p.initialInterval === undefined ? base.initialIntervalMs : parseDuration(p.initialInterval),
    factor: p.factor ?? base.factor,
    maxIntervalMs: p.maxInterval === undefined ? base.maxIntervalMs : parseDuration(p.maxInterval),
    jitter: p.jitter ?? base.jitter,
  };
  if (!(r.maxAttempts >= 1))
    throw new UsageError(`retry.maxAttempts must be at least 1, got ${r.maxAttempts}`);
  if (!(r.factor >= 1)) throw new UsageError(`retry.factor must be at least 1, got ${r.factor}`);
  if (!(r.jitter >= 0 && r.jitter <= 1))
    throw new UsageError(`retry.jitter must be between 0 and 1, got ${r.jitter}`);
  return r;
}

/**
 * The delay before retry number `attempt` (1 = the first retry). `random` is a number in
 * [0, 1) supplied by the caller so this stays pure and testable.
 */
export function backoffDelay(policy: ResolvedRetryPolicy, attempt: number, random: number): number {
  const base = Math.min(
    policy.maxIntervalMs,
    policy.initialIntervalMs * policy.factor ** Math.max(0, attempt - 1),
  );
  const spread = base * policy.jitter * (random * 2 - 1);
  return Math.max(0, Math.round(base + spread));
}
