import { InvalidDelayError } from './errors.js';

/**
 * Durations: a number of milliseconds, or a string such as `500ms`, `10s`, `5m`, `1h`, `2d`,
 * `1h30m`, or ISO-8601 (`PT1M`, `P30D`, `P1DT2H`).
 */
export type Duration = number | string;

const UNIT_MS: Record<string, number> = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

const COMPACT = /^(\d+(?:\.\d+)?)(ms|s|m|h|d|w)/;
const ISO =
  /^P(?:(\d+(?:\.\d+)?)W)?(?:(\d+(?:\.\d+)?)D)?(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?$/i;

/**
 * The longest delay a send may ask for: 365 days. A longer one is almost always a unit mistake,
 * and an unbounded one overflows what a timestamp can hold (a 400-digit delay is `Infinity`),
 * so it is refused rather than stored. The one bound for the ingress and the TS API.
 */
export const MAX_DELAY_MS = 365 * 86_400_000;
const MAX_DELAY_DAYS = MAX_DELAY_MS / 86_400_000;

/**
 * Returns `ms` if it is a valid send delay (finite, 0 to {@link MAX_DELAY_MS}); otherwise throws
 * an `InvalidDelayError` (code `invalid_delay`, HTTP 400) saying what is allowed.
 */
export function checkDelay(ms: number): number {
  if (!Number.isFinite(ms) || ms < 0)
    throw new InvalidDelayError(
      `a delay of ${ms} ms is not valid: give 0 to ${MAX_DELAY_DAYS} days`,
    );
  if (ms > MAX_DELAY_MS) {
    throw new InvalidDelayError(
      `a delay of ${Math.round(ms / 86_400_000)} days is longer than the maximum of ${MAX_DELAY_DAYS} days: ` +
        'send with a shorter delay, and have that handler send (or sleep) again for longer waits',
    );
  }
  return ms;
}

/**
 * Parses a duration into milliseconds. Throws an `InvalidDelayError` that names the accepted forms
 * when the text is not a duration.
 *
 * @example
 * ```ts
 * parseDuration('1h30m'); // 5_400_000
 * parseDuration('PT1M'); // 60_000
 * ```
 */
export function parseDuration(d: Duration): number {
  if (typeof d === 'number') {
    if (!Number.isFinite(d) || d < 0) throw bad(String(d));
    return d;
  }
  const text = d.trim();
  if (text.length === 0) throw bad(d);
  if (/^\d+$/.test(text)) return finite(Number(text), d);
  if (/^P/i.test(text)) {
    const m = ISO.exec(text);
    if (!m || text.toUpperCase() === 'P' || text.toUpperCase().endsWith('T')) throw bad(d);
    const [, w, days, h, min, s] = m;
    return finite(
      Math.round(
        num(w) * UNIT_MS.w! +
          num(days) * UNIT_MS.d! +
          num(h) * UNIT_MS.h! +
          num(min) * UNIT_MS.m! +
          num(s) * 1000,
      ),
      d,
    );
  }
  let rest = text;
  let total = 0;
  while (rest.length > 0) {
    const m = COMPACT.exec(rest);
    if (!m) throw bad(d);
    total += Number(m[1]) * UNIT_MS[m[2]!]!;
    rest = rest.slice(m[0].length).trimStart();
  }
  // Hundreds of digits parse as Infinity, which no timer or timestamp can hold.
  if (!Number.isFinite(total)) throw bad(d);
  return Math.round(total);
}

function finite(ms: number, text: string): number {
  if (!Number.isFinite(ms)) throw bad(text);
  return ms;
}

function num(s: string | undefined): number {
  return s === undefined ? 0 : Number(s);
}

/**
 * Terminal: a duration that cannot be read will not read better on a retry (a
 * `ctx.sleep('soon')` fails its invocation at once instead of spending its retries).
 */
function bad(text: string): InvalidDelayError {
  return new InvalidDelayError(
    `"${text}" is not a duration: use milliseconds (1500), a unit form (500ms, 10s, 5m, 1h, 2d, 1h30m) or ISO-8601 (PT1M, P30D)`,
  );
}
