/**
 * What a call's outcome means for the policies: retry or not, count against the circuit breaker
 * or not, and how long the server asked us to wait. Pure: the outcome and `now` in, a verdict out.
 *
 * Defaults:
 * - 2xx/3xx: success.
 * - 4xx other than 408 and 429: terminal (the request itself is wrong; sending it again will not
 *   help), not a breaker failure (the dependency is healthy).
 * - 429, and 403 that carries `Retry-After` or `X-RateLimit-Remaining: 0` (GitHub's way of
 *   saying "rate limited"): retryable after the server's wait; not a breaker failure, since the
 *   rate limiter deals with it.
 * - 408, 5xx, network errors and timeouts: retryable, and breaker failures.
 * - TLS certificate errors: terminal (retrying cannot fix a certificate).
 *
 * Per-integration and per-operation `errors: { retryable: [...], terminal: [...] }` override the
 * verdict for the listed status codes.
 */
import { getHeader, type HeadersLike } from './headers.js';
import { parseRetryAfter as parseHttpRetryAfter } from '../../http/retry-after.js';

/** What happened to one attempt. */
export type CallOutcome =
  | { kind: 'response'; status: number; headers?: HeadersLike }
  /** The request never got a response: connection refused or reset, DNS failure, TLS failure. */
  | { kind: 'network'; code?: string; message?: string }
  /** The attempt ran out of its time budget. */
  | { kind: 'timeout' };

/** Status codes whose verdict is forced, per integration or per operation. */
export interface ErrorOverrides {
  /** Status codes to retry even though the default says terminal (e.g. 409 for a lock). */
  retryable?: readonly number[];
  /** Status codes never to retry even though the default says retryable (e.g. 501). */
  terminal?: readonly number[];
}

/** The verdict on one outcome. */
export interface Classification {
  /** Send it again (subject to the retry policy). */
  retryable: boolean;
  /** Counts as a failure of the dependency for the circuit breaker. */
  breakerFailure: boolean;
  reason:
    | 'success'
    | 'client-error'
    | 'rate-limited'
    | 'request-timeout'
    | 'server-error'
    | 'network'
    | 'tls'
    | 'timeout'
    | 'overridden';
  /** The server's requested wait (Retry-After, or the rate-limit reset when nothing is left). */
  retryAfterMs?: number;
}

/**
 * Classifies an outcome.
 *
 * @example
 * ```ts
 * classify({ kind: 'response', status: 503, headers: { 'retry-after': '30' } }, { now: clock.now() });
 * // { retryable: true, breakerFailure: true, reason: 'server-error', retryAfterMs: 30000 }
 * classify({ kind: 'response', status: 409 }, { now, overrides: { retryable: [409] } });
 * // { retryable: true, breakerFailure: true, reason: 'overridden' }
 * ```
 */
export function classify(
  outcome: CallOutcome,
  options: { now: number; overrides?: ErrorOverrides },
): Classification {
  if (outcome.kind === 'timeout')
    return { retryable: true, breakerFailure: true, reason: 'timeout' };
  if (outcome.kind === 'network') {
    return TLS_CODES.has(outcome.code ?? '')
      ? { retryable: false, breakerFailure: true, reason: 'tls' }
      : { retryable: true, breakerFailure: true, reason: 'network' };
  }
  const { status, headers } = outcome;
  const overrides = options.overrides;
  if (overrides !== undefined) {
    if (overrides.terminal?.includes(status)) {
      return { retryable: false, breakerFailure: false, reason: 'overridden' };
    }
    if (overrides.retryable?.includes(status)) {
      return withWait(
        { retryable: true, breakerFailure: status !== 429, reason: 'overridden' },
        headers,
        options.now,
      );
    }
  }
  if (status < 400) return { retryable: false, breakerFailure: false, reason: 'success' };
  if (status === 429 || (status === 403 && isRateLimited403(headers))) {
    return withWait(
      { retryable: true, breakerFailure: false, reason: 'rate-limited' },
      headers,
      options.now,
    );
  }
  if (status === 408) {
    return withWait(
      { retryable: true, breakerFailure: true, reason: 'request-timeout' },
      headers,
      options.now,
    );
  }
  if (status < 500) return { retryable: false, breakerFailure: false, reason: 'client-error' };
  return withWait(
    { retryable: true, breakerFailure: true, reason: 'server-error' },
    headers,
    options.now,
  );
}

/** The verdict on every 2xx/3xx answer without overrides (frozen: shared by all of them). */
const SUCCESS: Classification = Object.freeze({
  retryable: false,
  breakerFailure: false,
  reason: 'success',
});

/**
 * {@link classify} for a response whose header names are all lower case (as undici gives them):
 * the same verdict, without building an outcome, and looking headers up directly (only when the
 * verdict needs them). A success (not overridden) is one shared, frozen verdict, and `now` (a
 * clock) is read only when a verdict needs the time.
 *
 * @example
 * ```ts
 * classifyResponse(res.status, res.headers, () => clock.now(), op.errors); // { retryable: false, breakerFailure: false, reason: 'success' }
 * ```
 */
export function classifyResponse(
  status: number,
  headers: Readonly<Record<string, string>>,
  now: () => number,
  overrides?: ErrorOverrides,
): Classification {
  if (
    status < 400 &&
    overrides?.terminal?.includes(status) !== true &&
    overrides?.retryable?.includes(status) !== true
  ) {
    return SUCCESS;
  }
  return classify(
    { kind: 'response', status, headers: new LowerCaseHeaders(headers) },
    { now: now(), overrides },
  );
}

/** Lookups on lower-case header names without scanning them (see `getHeader`). */
class LowerCaseHeaders {
  constructor(private readonly headers: Readonly<Record<string, string>>) {}

  get(name: string): string | null {
    return (
      this.headers[name] ?? (/[A-Z]/.test(name) ? this.headers[name.toLowerCase()] : null) ?? null
    );
  }
}

/** The server's wait, looked for only when the verdict is "retry" (never on the hot path). */
function withWait(
  c: Classification,
  headers: HeadersLike | undefined,
  now: number,
): Classification {
  if (!c.retryable) return c;
  const retryAfterMs = serverWait(headers, now);
  return retryAfterMs === undefined ? c : { ...c, retryAfterMs };
}

/**
 * Turns an error thrown by `fetch` or undici into a {@link CallOutcome}: aborts by timeout become
 * `timeout`, everything else `network` with the underlying code (`ECONNREFUSED`,
 * `UND_ERR_SOCKET`, `CERT_HAS_EXPIRED`, ...).
 *
 * @example
 * ```ts
 * try { res = await fetch(url, { signal: AbortSignal.timeout(ms) }); }
 * catch (err) { verdict = classify(outcomeFromError(err), { now: clock.now() }); }
 * ```
 */
export function outcomeFromError(err: unknown): CallOutcome {
  let e: unknown = err;
  for (let depth = 0; depth < 5 && e !== undefined && e !== null; depth++) {
    const name = (e as { name?: unknown }).name;
    const code = (e as { code?: unknown }).code;
    if (
      name === 'TimeoutError' ||
      code === 'UND_ERR_HEADERS_TIMEOUT' ||
      code === 'UND_ERR_BODY_TIMEOUT' ||
      code === 'UND_ERR_CONNECT_TIMEOUT' ||
      code === 'ETIMEDOUT'
    ) {
      return { kind: 'timeout' };
    }
    if (typeof code === 'string') {
      const message = (e as { message?: unknown }).message;
      return { kind: 'network', code, message: typeof message === 'string' ? message : code };
    }
    e = (e as { cause?: unknown }).cause;
  }
  return { kind: 'network', message: err instanceof Error ? err.message : String(err) };
}

/**
 * Parses a `Retry-After` value into milliseconds from `now`: either delay-seconds (`120`) or an
 * HTTP-date (`Wed, 21 Oct 2015 07:28:00 GMT`, also the obsolete RFC 850 and asctime forms). A
 * date in the past gives 0. Anything else gives `undefined`.
 *
 * @example
 * ```ts
 * parseRetryAfter('120', now); // 120000
 * parseRetryAfter('Wed, 21 Oct 2015 07:28:00 GMT', Date.UTC(2015, 9, 21, 7, 27, 0)); // 60000
 * ```
 */
export function parseRetryAfter(value: string | null | undefined, now: number): number | undefined {
  // Some APIs send fractional seconds (`1.5`), which RFC 9110 does not allow but which mean
  // exactly what they say; everything else goes through the shared strict parser.
  const text = value?.trim();
  if (text !== undefined && /^\d+\.\d+$/.test(text)) return Math.round(Number(text) * 1000);
  return parseHttpRetryAfter(value, now);
}

/** What rate-limit headers said; fields are absent when the header was. */
export interface RateLimitInfo {
  limit?: number;
  remaining?: number;
  /** When the server's window resets (epoch ms). */
  resetAt?: number;
}

/** Which headers carry the rate limit; the defaults are GitHub's (and most APIs'). */
export interface RateLimitHeaderNames {
  remaining?: string;
  reset?: string;
  limit?: string;
}

/**
 * Reads `X-RateLimit-Remaining`, `X-RateLimit-Reset` and `X-RateLimit-Limit`, falling back to the
 * IETF `RateLimit-Remaining` / `RateLimit-Reset` / `RateLimit-Limit`. A reset value is taken as
 * epoch seconds when it looks like one (≥ 10^9), epoch milliseconds when ≥ 10^12, and otherwise as
 * seconds from `now` (the IETF draft's form).
 *
 * @example
 * ```ts
 * parseRateLimitHeaders({ 'x-ratelimit-remaining': '4999', 'x-ratelimit-reset': '1700000000' }, now);
 * // { remaining: 4999, resetAt: 1700000000000 }
 * ```
 */
export function parseRateLimitHeaders(
  headers: HeadersLike | undefined,
  now: number,
  names: RateLimitHeaderNames = {},
): RateLimitInfo {
  const read = (custom: string | undefined, std: string): number | undefined => {
    const raw =
      custom === undefined
        ? (getHeader(headers, `x-ratelimit-${std}`) ?? getHeader(headers, `ratelimit-${std}`))
        : getHeader(headers, custom);
    if (raw === undefined) return undefined;
    const n = Number(raw.split(',')[0]!.trim());
    return raw.trim() !== '' && Number.isFinite(n) && n >= 0 ? n : undefined;
  };
  const out: RateLimitInfo = {};
  const limit = read(names.limit, 'limit');
  const remaining = read(names.remaining, 'remaining');
  const reset = read(names.reset, 'reset');
  if (limit !== undefined) out.limit = limit;
  if (remaining !== undefined) out.remaining = remaining;
  if (reset !== undefined) {
    out.resetAt = reset >= 1e12 ? reset : reset >= 1e9 ? reset * 1000 : now + reset * 1000;
  }
  return out;
}

const TLS_CODES = new Set([
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'CERT_REVOKED',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

function isRateLimited403(headers: HeadersLike | undefined): boolean {
  if (getHeader(headers, 'retry-after') !== undefined) return true;
  const remaining = getHeader(headers, 'x-ratelimit-remaining');
  return remaining !== undefined && remaining.trim() === '0';
}

/** Retry-After, or (when the server's budget is spent) the time until its reset. */
function serverWait(headers: HeadersLike | undefined, now: number): number | undefined {
  const after = parseRetryAfter(getHeader(headers, 'retry-after'), now);
  if (after !== undefined) return after;
  const rl = parseRateLimitHeaders(headers, now);
  if (rl.remaining === 0 && rl.resetAt !== undefined) return Math.max(0, rl.resetAt - now);
  return undefined;
}
