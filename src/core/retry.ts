import { parseDuration, type Duration } from './duration.js';
import { UsageError } from './errors.js';

/**
 * How a failing operation is retried: Keel's one retry vocabulary, shared by handlers and steps,
 * integration calls (`integration({ retry })`) and outbound webhook deliveries
 * (`createWebhooks({ retry })`). Any error other than a `TerminalError` is retried until
 * `maxAttempts` attempts have been made, waiting before each retry either the next delay of an
 * explicit `schedule` or an exponential backoff (`initialInterval`, times `factor` per retry, at
 * most `maxInterval`), spread by `jitter`. Where the other side can say when to come back (an
 * HTTP `Retry-After`), `respectRetryAfter` waits at least that long, at most `maxRetryAfter`.
 * When the engine runs out of attempts the step (or invocation) fails with a terminal
 * `RetriesExhaustedError` (code `retries_exhausted`) that the handler can catch, or that
 * propagates to the caller.
 *
 * Fields left out are inherited from a base: the engine's {@link DEFAULT_RETRY} for handlers
 * (about one minute of trying), the handler's policy for its steps, the integrations' and the
 * webhooks' own defaults for theirs (see their docs).
 *
 * @example
 * ```ts
 * await ctx.run('charge', () => stripe.charge(order), {
 *   retry: { maxAttempts: 5, initialInterval: '1s', maxInterval: '1m' },
 * });
 * // Explicit delays: 1 attempt + 5 retries, followed exactly (no jitter unless given).
 * const hooks = { retry: { schedule: ['1m', '5m', '30m', '2h', '8h'] } };
 * ```
 */
export interface RetryPolicy {
  /**
   * Attempts in all, the first included (3 retries = `maxAttempts: 4`). `Infinity` retries
   * forever. With a `schedule` it defaults to the schedule's length + 1; a larger value repeats
   * the schedule's last delay, a smaller one uses only its first delays.
   */
  maxAttempts?: number;
  /** Delay before the first retry (exponential backoff). */
  initialInterval?: Duration;
  /** Each delay is the previous one times this factor (1 = a constant delay). */
  factor?: number;
  /** Delays never exceed this (exponential backoff; a schedule is not capped). */
  maxInterval?: Duration;
  /**
   * Fraction of random spread around each delay (0.2 = ±20%). A policy that gives a `schedule`
   * without `jitter` gets none: explicit delays are followed exactly.
   */
  jitter?: number;
  /**
   * Explicit delays: the delay before retry `i` is `schedule[i - 1]`. Takes precedence over the
   * exponential backoff. A policy that gives backoff settings (`initialInterval`, `maxInterval`
   * or `factor`) and no schedule does not inherit its base's schedule.
   */
  schedule?: readonly Duration[];
  /** Wait at least as long as the server's `Retry-After` asks (capped at `maxRetryAfter`). */
  respectRetryAfter?: boolean;
  /** The longest `Retry-After` honoured, so a server cannot park a retry for months. */
  maxRetryAfter?: Duration;
}

/** A retry policy with every field resolved to numbers. */
export interface ResolvedRetryPolicy {
  maxAttempts: number;
  initialIntervalMs: number;
  factor: number;
  maxIntervalMs: number;
  jitter: number;
  /** Empty: exponential backoff. */
  scheduleMs: readonly number[];
  respectRetryAfter: boolean;
  maxRetryAfterMs: number;
}

/**
 * The engine's default policy for handlers and steps: first retry after 100 ms, doubling, at
 * most 30 s apart, ±20% jitter, 10 attempts in all (about one minute of trying); a
 * `Retry-After` (where there is one) is honoured up to one day.
 *
 * @example
 * ```ts
 * DEFAULT_RETRY.maxAttempts; // 10
 * new Engine({ services, store, retry: { maxAttempts: 20 } }); // the other fields from DEFAULT_RETRY
 * ```
 */
export const DEFAULT_RETRY: ResolvedRetryPolicy = Object.freeze({
  maxAttempts: 10,
  initialIntervalMs: 100,
  factor: 2,
  maxIntervalMs: 30_000,
  jitter: 0.2,
  scheduleMs: Object.freeze([]),
  respectRetryAfter: true,
  maxRetryAfterMs: 86_400_000,
});

/**
 * Fills a partial policy from a base (the engine default, the handler's policy for a step, or
 * an integration's or the webhooks' defaults), checking every field.
 *
 * @example
 * ```ts
 * const handler = resolveRetry({ maxAttempts: 3 });
 * resolveRetry({ initialInterval: '5s' }, handler); // 3 attempts, from 5 s
 * resolveRetry({ schedule: ['1m', '5m'] }).maxAttempts; // 3
 * ```
 */
export function resolveRetry(
  p: RetryPolicy | undefined,
  base: ResolvedRetryPolicy = DEFAULT_RETRY,
): ResolvedRetryPolicy {
  if (!p) return base;
  const backoffGiven =
    p.initialInterval !== undefined || p.maxInterval !== undefined || p.factor !== undefined;
  let scheduleMs: readonly number[];
  if (p.schedule !== undefined) {
    if (!Array.isArray(p.schedule))
      throw new UsageError(`retry.schedule must be a list of durations such as ['1m', '5m']`);
    scheduleMs = Object.freeze(p.schedule.map((d) => parseDuration(d)));
  } else scheduleMs = backoffGiven ? [] : base.scheduleMs;
  const r: ResolvedRetryPolicy = {
    maxAttempts:
      p.maxAttempts ?? (p.schedule !== undefined ? scheduleMs.length + 1 : base.maxAttempts),
    initialIntervalMs:
      p.initialInterval === undefined ? base.initialIntervalMs : parseDuration(p.initialInterval),
    factor: p.factor ?? base.factor,
    maxIntervalMs: p.maxInterval === undefined ? base.maxIntervalMs : parseDuration(p.maxInterval),
    jitter: p.jitter ?? (p.schedule !== undefined ? 0 : base.jitter),
    scheduleMs,
    respectRetryAfter: p.respectRetryAfter ?? base.respectRetryAfter,
    maxRetryAfterMs:
      p.maxRetryAfter === undefined ? base.maxRetryAfterMs : parseDuration(p.maxRetryAfter),
  };
  if (!(r.maxAttempts >= 1) || !(Number.isInteger(r.maxAttempts) || r.maxAttempts === Infinity))
    throw new UsageError(`retry.maxAttempts must be a whole number ≥ 1, got ${r.maxAttempts}`);
  if (!(r.factor >= 1)) throw new UsageError(`retry.factor must be at least 1, got ${r.factor}`);
  if (!(r.jitter >= 0 && r.jitter <= 1))
    throw new UsageError(`retry.jitter must be between 0 and 1, got ${r.jitter}`);
  if (typeof r.respectRetryAfter !== 'boolean')
    throw new UsageError(`retry.respectRetryAfter must be true or false`);
  return r;
}

/**
 * The partial policy that resolves to `r` (durations in milliseconds): for handing a resolved
 * policy to an API that takes a {@link RetryPolicy}.
 *
 * @example
 * ```ts
 * resolveRetry(policyOf(DEFAULT_RETRY)); // equal to DEFAULT_RETRY
 * ```
 */
export function policyOf(r: ResolvedRetryPolicy): RetryPolicy {
  return {
    maxAttempts: r.maxAttempts,
    initialInterval: r.initialIntervalMs,
    factor: r.factor,
    maxInterval: r.maxIntervalMs,
    jitter: r.jitter,
    ...(r.scheduleMs.length > 0 ? { schedule: r.scheduleMs } : {}),
    respectRetryAfter: r.respectRetryAfter,
    maxRetryAfter: r.maxRetryAfterMs,
  };
}

/**
 * The delay before retry number `attempt` (1 = the first retry): the schedule's delay, or the
 * exponential backoff, spread by the jitter. `random` is a number in [0, 1) supplied by the
 * caller (a journaled `ctx.random()`) so this stays pure and a replay computes the same delay.
 *
 * @example
 * ```ts
 * backoffDelay(resolveRetry({ initialInterval: '1s', jitter: 0 }), 3, 0.5); // 4000
 * backoffDelay(resolveRetry({ schedule: ['1m', '5m'] }), 2, 0.5); // 300_000
 * ```
 */
export function backoffDelay(policy: ResolvedRetryPolicy, attempt: number, random: number): number {
  const n = Math.max(1, attempt);
  const schedule = policy.scheduleMs;
  const base =
    schedule.length > 0
      ? schedule[Math.min(n, schedule.length) - 1]!
      : Math.min(policy.maxIntervalMs, policy.initialIntervalMs * policy.factor ** (n - 1));
  const spread = base * policy.jitter * (random * 2 - 1);
  return Math.max(0, Math.round(base + spread));
}

/**
 * The delay before retry number `retry` (1 = the first retry), or `undefined` when the policy
 * has no attempts left: {@link backoffDelay}, lengthened to the server's `Retry-After`
 * (`retryAfterMs`, capped at `maxRetryAfter`) when the policy respects it and it is longer.
 * Integration calls and webhook deliveries both decide with this.
 *
 * @example
 * ```ts
 * const delay = retryDelay(policy, attempt, await ctx.random(), retryAfterMs);
 * if (delay === undefined) throw new RetriesExhaustedError(...);
 * await ctx.sleep(delay);
 * ```
 */
export function retryDelay(
  policy: ResolvedRetryPolicy,
  retry: number,
  random: number,
  retryAfterMs?: number,
): number | undefined {
  if (!Number.isInteger(retry) || retry < 1 || retry >= policy.maxAttempts) return undefined;
  const delay = backoffDelay(policy, retry, random);
  if (policy.respectRetryAfter && retryAfterMs !== undefined) {
    const honoured = Math.round(Math.min(retryAfterMs, policy.maxRetryAfterMs));
    if (honoured > delay) return honoured;
  }
  return delay;
}
