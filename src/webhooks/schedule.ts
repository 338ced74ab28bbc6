/**
 * When a failed webhook delivery is tried again. Pure: the clock and the random source are
 * injected, so a durable delivery passes `ctx.now()` and `ctx.random()` and replays identically.
 */
import { parseDuration, type Duration } from '../core/duration.js';
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
 * new RetrySchedule({ schedule: DEFAULT_RETRY_SCHEDULE, now, random }).maxAttempts; // 6
 * ```
 */
export const DEFAULT_RETRY_SCHEDULE: readonly string[] = ['1m', '5m', '30m', '2h', '8h'];

/**
 * The default jitter: each scheduled delay is moved by up to ±10%.
 *
 * @example
 * ```ts
 * applyJitter(60_000, DEFAULT_JITTER, ctx.random()); // 54_000 .. 66_000
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
 * Parses a retry schedule into milliseconds: an array of durations, or a string such as
 * `"[1m, 5m, 30m, 2h, 8h]"` or `"1m,5m,30m"` (for environment variables). An empty schedule means
 * no retries.
 *
 * @example
 * ```ts
 * parseSchedule(['1m', '5m', '30m', '2h', '8h']); // [60_000, 300_000, 1_800_000, 7_200_000, 28_800_000]
 * parseSchedule('[10s, 1m]'); // [10_000, 60_000]
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

/**
 * Moves a delay by up to ±`jitter` (a fraction), so that deliveries that failed together do not
 * all retry in the same instant. `random` is a number in [0, 1): 0 gives the shortest delay, 0.5
 * the delay itself.
 *
 * @example
 * ```ts
 * applyJitter(60_000, 0.1, 0); // 54_000
 * applyJitter(60_000, 0.1, 0.5); // 60_000
 * ```
 */
export function applyJitter(delayMs: number, jitter: number, random: number): number {
  if (!(jitter >= 0 && jitter < 1)) throw new RangeError(`jitter must be in [0, 1), not ${jitter}`);
  if (!(random >= 0 && random < 1)) throw new RangeError(`random must be in [0, 1), not ${random}`);
  return Math.max(0, Math.round(delayMs * (1 + jitter * (2 * random - 1))));
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
  /** Delays between attempts. Default {@link DEFAULT_RETRY_SCHEDULE}. */
  schedule?: readonly Duration[] | string;
  /** ± fraction applied to each scheduled delay. Default {@link DEFAULT_JITTER} (0.1). */
  jitter?: number;
  /**
   * The longest `Retry-After` honoured; a longer one is cut to this, so a receiver cannot park a
   * delivery for months. Default {@link DEFAULT_MAX_RETRY_AFTER} (1 day).
   */
  maxRetryAfter?: Duration;
  /** The current time in epoch milliseconds (`ctx.now` in a durable handler). */
  now: () => number;
  /** A number in [0, 1) (`ctx.random` in a durable handler); called once per retry decision. */
  random: () => number;
}

/**
 * A retry schedule for webhook deliveries: how many attempts, and when the next one is due given
 * how the last one ended. A 2xx response is delivered; `410 Gone` disables the endpoint; anything
 * else (another status, or no response) is retried after the scheduled delay with jitter, or
 * after the receiver's `Retry-After` when that is longer, until the schedule runs out.
 *
 * @example
 * ```ts
 * const retries = new RetrySchedule({ now: () => ctx.now(), random: () => ctx.random() });
 * const decision = retries.decide(attempt, { status: res.status, headers: res.headers });
 * if (decision.action === 'retry') await ctx.sleep(decision.delayMs);
 * ```
 */
export class RetrySchedule {
  /** The delays between attempts, in milliseconds. */
  readonly delays: readonly number[];
  /** Attempts in all: the first plus one per delay. */
  readonly maxAttempts: number;
  readonly jitter: number;
  readonly maxRetryAfterMs: number;
  readonly #now: () => number;
  readonly #random: () => number;

  constructor(options: RetryScheduleOptions) {
    this.delays = Object.freeze(parseSchedule(options.schedule ?? DEFAULT_RETRY_SCHEDULE));
    this.maxAttempts = this.delays.length + 1;
    this.jitter = options.jitter ?? DEFAULT_JITTER;
    if (!(this.jitter >= 0 && this.jitter < 1)) {
      throw new RangeError(`jitter must be in [0, 1), not ${this.jitter}`);
    }
    this.maxRetryAfterMs = parseDuration(options.maxRetryAfter ?? DEFAULT_MAX_RETRY_AFTER);
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
    if (attempt >= this.maxAttempts) return { action: 'dead_letter', attempts: attempt };

    const now = this.#now();
    const scheduled = applyJitter(this.delays[attempt - 1]!, this.jitter, this.#random());
    const header =
      last.retryAfter ?? (last.headers ? readHeader(last.headers, 'retry-after').value : undefined);
    const retryAfter = parseRetryAfter(header, now);
    const honoured =
      retryAfter === undefined ? undefined : Math.min(retryAfter, this.maxRetryAfterMs);
    if (honoured !== undefined && honoured > scheduled) {
      return {
        action: 'retry',
        at: new Date(now + honoured),
        delayMs: honoured,
        retryAfterMs: honoured,
      };
    }
    return { action: 'retry', at: new Date(now + scheduled), delayMs: scheduled };
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
