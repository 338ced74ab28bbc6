import { describe, expect, it } from 'vitest';
import {
  classify,
  classifyResponse,
  outcomeFromError,
  parseRateLimitHeaders,
  parseRetryAfter,
} from './classify.js';

const NOW = Date.UTC(2015, 9, 21, 7, 27, 0);
const res = (status: number, headers?: Record<string, string>) => ({
  kind: 'response' as const,
  status,
  headers,
});

describe('classify', () => {
  it.each([
    [200, false, false, 'success'],
    [204, false, false, 'success'],
    [304, false, false, 'success'],
    [400, false, false, 'client-error'],
    [401, false, false, 'client-error'],
    [403, false, false, 'client-error'],
    [404, false, false, 'client-error'],
    [409, false, false, 'client-error'],
    [422, false, false, 'client-error'],
    [408, true, true, 'request-timeout'],
    [429, true, false, 'rate-limited'],
    [500, true, true, 'server-error'],
    [502, true, true, 'server-error'],
    [503, true, true, 'server-error'],
    [504, true, true, 'server-error'],
  ])('%i → retryable %s, breaker failure %s (%s)', (status, retryable, breakerFailure, reason) => {
    expect(classify(res(status), { now: NOW })).toEqual({ retryable, breakerFailure, reason });
  });

  it('network errors and timeouts are retryable breaker failures; TLS errors are not retried', () => {
    expect(classify({ kind: 'timeout' }, { now: NOW })).toEqual({
      retryable: true,
      breakerFailure: true,
      reason: 'timeout',
    });
    expect(classify({ kind: 'network', code: 'ECONNRESET' }, { now: NOW })).toEqual({
      retryable: true,
      breakerFailure: true,
      reason: 'network',
    });
    expect(classify({ kind: 'network', code: 'CERT_HAS_EXPIRED' }, { now: NOW })).toEqual({
      retryable: false,
      breakerFailure: true,
      reason: 'tls',
    });
  });

  it('carries the Retry-After wait on retryable outcomes only', () => {
    expect(classify(res(429, { 'Retry-After': '120' }), { now: NOW })).toEqual({
      retryable: true,
      breakerFailure: false,
      reason: 'rate-limited',
      retryAfterMs: 120_000,
    });
    expect(
      classify(res(503, { 'retry-after': 'Wed, 21 Oct 2015 07:28:00 GMT' }), { now: NOW })
        .retryAfterMs,
    ).toBe(60_000);
    expect(classify(res(400, { 'retry-after': '5' }), { now: NOW })).not.toHaveProperty(
      'retryAfterMs',
    );
  });

  it("reads GitHub's rate-limited 403 (remaining 0, or a Retry-After) and waits for the reset", () => {
    const resetAt = NOW / 1000 + 90;
    expect(
      classify(res(403, { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': String(resetAt) }), {
        now: NOW,
      }),
    ).toEqual({
      retryable: true,
      breakerFailure: false,
      reason: 'rate-limited',
      retryAfterMs: 90_000,
    });
    expect(classify(res(403, { 'retry-after': '60' }), { now: NOW })).toMatchObject({
      reason: 'rate-limited',
      retryAfterMs: 60_000,
    });
    expect(classify(res(403, { 'x-ratelimit-remaining': '12' }), { now: NOW }).reason).toBe(
      'client-error',
    );
  });

  it('overrides force the verdict for the listed codes', () => {
    const overrides = { retryable: [409, 429], terminal: [501, 503] };
    expect(classify(res(409), { now: NOW, overrides })).toEqual({
      retryable: true,
      breakerFailure: true,
      reason: 'overridden',
    });
    expect(classify(res(429), { now: NOW, overrides })).toMatchObject({
      retryable: true,
      breakerFailure: false,
    });
    expect(classify(res(503), { now: NOW, overrides })).toEqual({
      retryable: false,
      breakerFailure: false,
      reason: 'overridden',
    });
    expect(classify(res(500), { now: NOW, overrides }).reason).toBe('server-error');
  });

  it('works with a fetch Headers object', () => {
    const headers = new Headers({ 'Retry-After': '3' });
    expect(classify({ kind: 'response', status: 429, headers }, { now: NOW }).retryAfterMs).toBe(
      3000,
    );
  });
});

describe('outcomeFromError', () => {
  it('finds the code in the cause chain of a fetch error', () => {
    const err = new TypeError('fetch failed', {
      cause: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }),
    });
    expect(outcomeFromError(err)).toEqual({
      kind: 'network',
      code: 'ECONNREFUSED',
      message: 'connect ECONNREFUSED',
    });
  });

  it('a timeout abort, or an undici timeout, is a timeout', () => {
    expect(outcomeFromError(new DOMException('timed out', 'TimeoutError'))).toEqual({
      kind: 'timeout',
    });
    expect(
      outcomeFromError(Object.assign(new Error('x'), { code: 'UND_ERR_HEADERS_TIMEOUT' })),
    ).toEqual({ kind: 'timeout' });
  });

  it('anything else is a network error with its message', () => {
    expect(outcomeFromError(new Error('socket hang up'))).toEqual({
      kind: 'network',
      message: 'socket hang up',
    });
  });
});

describe('parseRetryAfter', () => {
  it.each([
    ['120', 120_000],
    [' 0 ', 0],
    ['1.5', 1500],
    ['Wed, 21 Oct 2015 07:28:00 GMT', 60_000],
    ['Wednesday, 21-Oct-15 07:28:00 GMT', 60_000],
    ['Wed Oct 21 07:28:00 2015', 60_000],
    ['Wed, 21 Oct 2015 07:00:00 GMT', 0],
  ])('%j → %i ms', (value, ms) => {
    expect(parseRetryAfter(value, NOW)).toBe(ms);
  });

  it.each([null, undefined, '', '-5', 'soon', '2015-10-21', 'Mon, 99 Foo 2015 xx GMT'])(
    '%j → undefined',
    (value) => {
      expect(parseRetryAfter(value, NOW)).toBeUndefined();
    },
  );
});

describe('parseRateLimitHeaders', () => {
  it("reads GitHub's headers: reset in epoch seconds", () => {
    expect(
      parseRateLimitHeaders(
        {
          'X-RateLimit-Limit': '5000',
          'X-RateLimit-Remaining': '4999',
          'X-RateLimit-Reset': '1445412480',
        },
        NOW,
      ),
    ).toEqual({ limit: 5000, remaining: 4999, resetAt: 1_445_412_480_000 });
  });

  it('reads the IETF headers: reset in seconds from now; and epoch milliseconds', () => {
    expect(
      parseRateLimitHeaders({ 'RateLimit-Remaining': '7', 'RateLimit-Reset': '30' }, NOW),
    ).toEqual({
      remaining: 7,
      resetAt: NOW + 30_000,
    });
    expect(parseRateLimitHeaders({ 'x-ratelimit-reset': '1445412480000' }, NOW)).toEqual({
      resetAt: 1_445_412_480_000,
    });
  });

  it('reads custom header names, and ignores garbage', () => {
    expect(
      parseRateLimitHeaders({ 'X-Quota-Left': '3' }, NOW, { remaining: 'X-Quota-Left' }),
    ).toEqual({ remaining: 3 });
    expect(
      parseRateLimitHeaders({ 'x-ratelimit-remaining': 'lots', 'x-ratelimit-limit': '' }, NOW),
    ).toEqual({});
    expect(parseRateLimitHeaders(undefined, NOW)).toEqual({});
  });
});

describe('classifyResponse', () => {
  it('gives the verdict classify gives, reading the clock only when the verdict needs it', () => {
    const headerSets: Array<Record<string, string>> = [
      {},
      { 'retry-after': '30' },
      { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': String(NOW / 1000 + 60) },
    ];
    const overrideSets = [undefined, {}, { retryable: [409, 200] }, { terminal: [503, 204] }];
    for (const status of [200, 204, 304, 400, 401, 403, 404, 408, 409, 429, 500, 503]) {
      for (const headers of headerSets) {
        for (const overrides of overrideSets) {
          let reads = 0;
          const got = classifyResponse(status, headers, () => (reads++, NOW), overrides);
          const want = classify(res(status, headers), { now: NOW, overrides });
          expect({ status, headers, overrides, got }).toEqual({
            status,
            headers,
            overrides,
            got: want,
          });
          if (got.reason === 'success') expect(reads).toBe(0);
        }
      }
    }
  });
});
