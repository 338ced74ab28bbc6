import { MAX_DELAY_MS, parseDuration, type Duration } from './duration.js';
import { KeelError, registerErrorClass, TerminalError } from './errors.js';

/**
 * Debounce and throttle of sends: the options users give, checked into milliseconds. Pure:
 * the engine's `flow-control.ts` does the storing.
 */

/**
 * Debounce a send: the sends to one target with the same `key` that follow each other closer
 * than `period` make ONE invocation, started with the LAST send's input once the key has been
 * quiet for `period` (or `maxWait` after the burst's first send, whichever comes first).
 *
 * @example
 * ```ts
 * // Re-index a document once its edits have stopped for 5 s (at most 1 min after the first).
 * await engine.send({
 *   service: 'Search', handler: 'reindex', input: doc,
 *   debounce: { key: doc.id, period: '5s', maxWait: '1m' },
 * });
 * ```
 */
export interface DebounceOptions {
  /** Which sends belong together (per target `service/handler` and object key): 1-256 characters. */
  key: string;
  /** How long the key must be quiet before the invocation starts: more than 0, at most 365 days. */
  period: Duration;
  /**
   * The longest a burst can postpone the start, counted from its first send: at least
   * `period`. Default: no bound (continuous sends postpone it for as long as they go on).
   */
  maxWait?: Duration;
}

/**
 * Throttle a send: at most `limit` invocations per `period` start per `key` (and target
 * `service/handler`), counted over any window of `period` (a sliding window, not calendar
 * windows). Beyond it, `delay` (the default) schedules the start at the next free slot, so
 * nothing is lost; `drop` does not start it and says so.
 *
 * @example
 * ```ts
 * // At most 10 syncs per minute per tenant; the rest wait for a free slot.
 * await engine.send({
 *   service: 'Crm', handler: 'sync', input,
 *   throttle: { key: tenantId, limit: 10, period: '1m' },
 * });
 * ```
 */
export interface ThrottleOptions {
  /** What is counted together (per target `service/handler`): 1-256 characters. */
  key: string;
  /** Starts allowed per `period`: an integer from 1 to {@link MAX_THROTTLE_LIMIT}. */
  limit: number;
  /** The window the limit counts over: more than 0, at most 365 days. */
  period: Duration;
  /** Beyond the limit: `delay` (default) to the next free slot, or `drop`. */
  mode?: 'delay' | 'drop';
}

/** The longest debounce or throttle key, in characters. */
export const MAX_FLOW_KEY_LENGTH = 256;
/**
 * The largest throttle limit. The store keeps the start times of the last `limit` starts per
 * key (that is what makes the window sliding and exact), so the limit bounds that row's size.
 */
export const MAX_THROTTLE_LIMIT = 1000;

/** {@link DebounceOptions} checked, in milliseconds. */
export interface Debounce {
  key: string;
  periodMs: number;
  maxWaitMs?: number;
}

/** {@link ThrottleOptions} checked, in milliseconds. */
export interface Throttle {
  key: string;
  limit: number;
  periodMs: number;
  mode: 'delay' | 'drop';
}

/**
 * Debounce or throttle options that cannot be used (an empty key, a period that is not a
 * duration or not positive, a limit below 1, ...). Terminal; HTTP 400. Nothing is stored.
 *
 * @example
 * ```ts
 * checkThrottle({ key: 'tenant-1', limit: 0, period: '1m' }); // throws: code 'invalid_throttle'
 * ```
 */
export class InvalidFlowControlError extends TerminalError {
  constructor(message: string, code: 'invalid_debounce' | 'invalid_throttle') {
    super(message, { code, status: 400 });
  }
}

/**
 * A throttled send in `drop` mode found no free slot: no invocation was created. Not a failure
 * of the request: the HTTP ingress answers it `200 { dropped: true, ... }` (see
 * docs/flow-control.md); the engine API throws it, since a send's result always names an
 * invocation and a dropped one has none. `retryAfterMs`: when the next slot frees.
 *
 * @example
 * ```ts
 * try {
 *   await engine.send({ service: 'Notify', handler: 'remind', input,
 *     throttle: { key: userId, limit: 1, period: '1h', mode: 'drop' } });
 * } catch (err) {
 *   if (!(err instanceof ThrottledError)) throw err;
 *   log.info(`reminder dropped; the next one may go in ${err.retryAfterMs} ms`);
 * }
 * ```
 */
export class ThrottledError extends KeelError {
  readonly retryAfterMs: number;
  constructor(message: string, retryAfterMs: number) {
    super(message, { code: 'throttled', status: 429 });
    this.retryAfterMs = retryAfterMs;
  }
}

registerErrorClass(InvalidFlowControlError, ['invalid_debounce', 'invalid_throttle']);
registerErrorClass(ThrottledError, ['throttled']);

function checkKey(key: unknown, what: 'debounce' | 'throttle'): string {
  const code = what === 'debounce' ? 'invalid_debounce' : 'invalid_throttle';
  if (typeof key !== 'string' || key.trim() === '')
    throw new InvalidFlowControlError(
      `the ${what} key is ${typeof key === 'string' ? 'empty' : 'missing'}: give a non-empty key, e.g. a user or document id`,
      code,
    );
  if (key.length > MAX_FLOW_KEY_LENGTH)
    throw new InvalidFlowControlError(
      `the ${what} key is ${key.length} characters long; the limit is ${MAX_FLOW_KEY_LENGTH}: use a shorter key or a hash of it`,
      code,
    );
  return key;
}

function checkPeriod(
  value: unknown,
  name: string,
  code: 'invalid_debounce' | 'invalid_throttle',
): number {
  const bad = (what: string): InvalidFlowControlError =>
    new InvalidFlowControlError(`${name} ${what}: use e.g. 500ms, 10s, 5m, 1h or PT1M`, code);
  if (value === undefined) throw bad('is missing');
  if (typeof value !== 'string' && typeof value !== 'number')
    throw bad(`is a ${value === null ? 'null' : typeof value}, not a duration`);
  let ms: number;
  try {
    ms = parseDuration(value);
  } catch {
    throw bad(`"${value}" is not a duration`);
  }
  if (ms <= 0 || ms > MAX_DELAY_MS)
    throw new InvalidFlowControlError(
      `${name} of ${ms} ms is out of range: give more than 0 and at most 365 days`,
      code,
    );
  return ms;
}

/** Checks debounce options (400 `invalid_debounce` when they cannot be used). */
export function checkDebounce(options: DebounceOptions): Debounce {
  if (typeof options !== 'object' || options === null)
    throw new InvalidFlowControlError(
      'debounce must be an object { key, period, maxWait? }',
      'invalid_debounce',
    );
  const key = checkKey(options.key, 'debounce');
  const periodMs = checkPeriod(options.period, 'the debounce period', 'invalid_debounce');
  const out: Debounce = { key, periodMs };
  if (options.maxWait !== undefined) {
    const maxWaitMs = checkPeriod(options.maxWait, 'the debounce maxWait', 'invalid_debounce');
    if (maxWaitMs < periodMs)
      throw new InvalidFlowControlError(
        `the debounce maxWait (${maxWaitMs} ms) is shorter than its period (${periodMs} ms): it would start before the key was ever quiet for the period; give a maxWait of at least the period`,
        'invalid_debounce',
      );
    out.maxWaitMs = maxWaitMs;
  }
  return out;
}

/** Checks throttle options (400 `invalid_throttle` when they cannot be used). */
export function checkThrottle(options: ThrottleOptions): Throttle {
  if (typeof options !== 'object' || options === null)
    throw new InvalidFlowControlError(
      "throttle must be an object { key, limit, period, mode?: 'delay' | 'drop' }",
      'invalid_throttle',
    );
  const key = checkKey(options.key, 'throttle');
  const { limit } = options;
  if (
    typeof limit !== 'number' ||
    !Number.isInteger(limit) ||
    limit < 1 ||
    limit > MAX_THROTTLE_LIMIT
  )
    throw new InvalidFlowControlError(
      `the throttle limit ${String(limit)} is not valid: give a whole number of starts from 1 to ${MAX_THROTTLE_LIMIT} per period`,
      'invalid_throttle',
    );
  const periodMs = checkPeriod(options.period, 'the throttle period', 'invalid_throttle');
  const mode = options.mode ?? 'delay';
  if (mode !== 'delay' && mode !== 'drop')
    throw new InvalidFlowControlError(
      `the throttle mode "${String(mode)}" is not valid: give "delay" (start at the next free slot) or "drop"`,
      'invalid_throttle',
    );
  return { key, limit, periodMs, mode };
}
