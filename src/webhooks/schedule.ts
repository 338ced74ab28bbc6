/**
 * When a failed webhook delivery is tried again. Pure: the clock and the random source are
 * injected, so a durable delivery passes `ctx.now()` and `ctx.random()` and replays identically.
 * The policy is Keel's one retry vocabulary, the core `RetryPolicy`, with webhook defaults.
 */
import { parseDuration, type Duration } from '../core/duration.js';
import {
  backoffDelay,
  resolveRetry,
  retryDelay,
  type ResolvedRetryPolicy,
  type RetryPolicy,
} from '../core/retry.js';
import { parseRetryAfter } from '../http/retry-after.js';
import { readHeader } from './internal.js';
import type { WebhookHeaders } from './verify/types.js';

/**
 * The default delays between attempts: a delivery is tried once, then again after about 1 minute,
 * 5 minutes, 30 minutes, 2 hours and 8 hours (six attempts over about 10.6 hours), then
 * dead-lettered.
 *
 * @example
 * ```ts
 * new RetrySchedule({ retry: { schedule: DEFAULT_RETRY_SCHEDULE }, now, random }).policy.maxAttempts; // 6
 * ```
 */
export const DEFAULT_RETRY_SCHEDULE: readonly string[] = ['1m', '5m', '30m', '2h', '8h'];

/**
 * The default jitter of the default schedule: each delay is moved by up to ±10%. (A `retry`
 * option that gives its own `schedule` without `jitter` is followed exactly.)
 *
 * @example
 * ```ts
 * createWebhooks({ retry: { jitter: DEFAULT_JITTER * 2 } }); // the default schedule, ±20%
 * ```
 */
export const DEFAULT_JITTER = 0.1;

/**
 * The default cap on a receiver's `Retry-After`: one day.
 *
 * @example
 * ```ts
 * parseDuration(DEFAULT_MAX_RETRY_AFTER); // 86_400_000
 * ```
 */
export const DEFAULT_MAX_RETRY_AFTER = '1d';

/**
 * The webhooks' default retry policy: the fields a `retry` option leaves out come from here.
 * Six attempts on {@link DEFAULT_RETRY_SCHEDULE} with ±10% jitter, honouring a receiver's
 * `Retry-After` up to one day; backoff settings given without a schedule start from 1 minute,
 * doubling, at most 8 hours apart.
 *
 * @example
 * ```ts
 * WEBHOOK_RETRY.maxAttempts; // 6
 * resolveRetry({ maxAttempts: 3 }, WEBHOOK_RETRY).scheduleMs; // the default schedule (its first 2 delays are used)
 * ```
 */
export const WEBHOOK_RETRY: ResolvedRetryPolicy = Object.freeze({
  maxAttempts: DEFAULT_RETRY_SCHEDULE.length + 1,
  initialIntervalMs: 60_000,
  factor: 2,
  maxIntervalMs: 8 * 3_600_000,
  jitter: DEFAULT_JITTER,
  scheduleMs: Object.freeze(DEFAULT_RETRY_SCHEDULE.map((d) => parseDuration(d))),
  respectRetryAfter: true,
  maxRetryAfterMs: parseDuration(DEFAULT_MAX_RETRY_AFTER),
});

/**
 * Parses a retry schedule into milliseconds: an array of durations, or a string such as
 * `"[1m, 5m, 30m, 2h, 8h]"` or `"1m,5m,30m"` (for environment variables), ready for a
 * `RetryPolicy`'s `schedule`. An empty schedule means no retries.
 *
 * @example
 * ```ts
 * parseSchedule(['1m', '5m', '30m', '2h', '8h']); // [60_000, 300_000, 1_800_000, 7_200_000, 28_800_000]
 * createWebhooks({ retry: { schedule: parseSchedule(process.env.HOOK_DELAYS ?? '[10s, 1m]') } });
 * ```
 */
export function parseSchedule(schedule: readonly Duration[] | string): number[] {
  if (typeof schedule !== 'string') return schedule.map((d) => parseDuration(d));
  const text = schedule.trim().replace(/^\[/, '').replace(/\]$/, '').trim();
  if (text === '') return [];
  return text.split(',').map((item) => {
    const d = item.trim().replace(/^["']|["']$/g, '');
    if (d === '') throw new RangeError(`retry schedule "${schedule}" has an empty entry`);
    return parseDuration(d);
  });
}

/** What came back from the attempt that just finished. */
export interface AttemptResponse {
  /** The HTTP status; undefined when no response came (a timeout, a refused connection). */
  status?: number;
  /** The response headers, for `Retry-After`. */
  headers?: WebhookHeaders;
  /** The `Retry-After` value, if the headers are not at hand. */
  retryAfter?: string | null;
}

/**
 * What to do after an attempt.
 *
 * @example
 * ```ts
 * switch (decision.action) {
 *   case 'retry': return scheduleAt(decision.at);
 *   case 'disable': return disableEndpoint(decision.reason);
 *   case 'dead_letter': return deadLetter(decision.attempts);
 *   case 'delivered': return;
 * }
 * ```
 */
export type RetryDecision =
  | { action: 'delivered' }
  /** `410 Gone`: the receiver says the endpoint no longer exists; disable it, do not retry. */
  | { action: 'disable'; reason: string }
  | {
      action: 'retry';
      /** When to try next. */
      at: Date;
      delayMs: number;
      /** Set when the receiver's `Retry-After` lengthened the delay. */
      retryAfterMs?: number;
    }
  /** Every attempt the schedule allows has failed. */
  | { action: 'dead_letter'; attempts: number };

/** Options of {@link RetrySchedule}. */
export interface RetryScheduleOptions {
  /** How deliveries are retried. Fields left out come from {@link WEBHOOK_RETRY}. */
  retry?: RetryPolicy;
  /** The current time in epoch milliseconds (`ctx.now` in a durable handler). */
  now: () => number;
  /** A number in [0, 1) (`ctx.random` in a durable handler); called once per retry decision. */
  random: () => number;
}

/**
 * A retry schedule for webhook deliveries: how many attempts, and when the next one is due given
 * how the last one ended. A 2xx response is delivered; `410 Gone` disables the endpoint; anything
 * else (another status, or no response) is retried after the policy's delay (the core
 * `retryDelay`: the schedule or the backoff, with jitter, lengthened to the receiver's
 * `Retry-After` up to `maxRetryAfter`), until `maxAttempts` attempts have been made.
 *
 * @example
 * ```ts
 * const retries = new RetrySchedule({ now: () => ctx.now(), random: () => ctx.random() });
 * const decision = retries.decide(attempt, { status: res.status, headers: res.headers });
 * if (decision.action === 'retry') await ctx.sleep(decision.delayMs);
 * ```
 */
export class RetrySchedule {
  /** The policy, resolved over {@link WEBHOOK_RETRY}. */
  readonly policy: ResolvedRetryPolicy;
  readonly #now: () => number;
  readonly #random: () => number;

  constructor(options: RetryScheduleOptions) {
    this.policy = resolveRetry(options.retry, WEBHOOK_RETRY);
    this.#now = options.now;
    this.#random = options.random;
  }

  /**
   * Decides what follows attempt number `attempt` (1 for the first) that ended with `last`.
   *
   * @example
   * ```ts
   * schedule.decide(1, { status: 503, retryAfter: '120' }); // { action: 'retry', delayMs: 120_000, ... }
   * schedule.decide(6, { status: 500 }); // { action: 'dead_letter', attempts: 6 } with the default schedule
   * ```
   */
  decide(attempt: number, last: AttemptResponse = {}): RetryDecision {
    if (!Number.isInteger(attempt) || attempt < 1) {
      throw new RangeError(
        `attempt is the 1-based number of the attempt that ended, not ${attempt}`,
      );
    }
    const status = last.status;
    if (status !== undefined && status >= 200 && status < 300) return { action: 'delivered' };
    if (status === 410) {
      return { action: 'disable', reason: 'the endpoint answered 410 Gone' };
    }
    if (attempt >= this.policy.maxAttempts) return { action: 'dead_letter', attempts: attempt };

    const now = this.#now();
    const random = this.#random();
    const header =
      last.retryAfter ?? (last.headers ? readHeader(last.headers, 'retry-after').value : undefined);
    const delayMs = retryDelay(this.policy, attempt, random, parseRetryAfter(header, now))!;
    if (delayMs > backoffDelay(this.policy, attempt, random)) {
      return { action: 'retry', at: new Date(now + delayMs), delayMs, retryAfterMs: delayMs };
    }
    return { action: 'retry', at: new Date(now + delayMs), delayMs };
  }

  /**
   * When attempt `attempt + 1` is due, or null when there is none (delivered, disabled, or
   * dead-lettered: use {@link decide} to tell which).
   *
   * @example
   * ```ts
   * const at = schedule.nextAttemptAt(1, { status: 500 }); // about now + 1 minute
   * ```
   */
  nextAttemptAt(attempt: number, lastResponse?: AttemptResponse): Date | null {
    const decision = this.decide(attempt, lastResponse);
    return decision.action === 'retry' ? decision.at : null;
  }
}
