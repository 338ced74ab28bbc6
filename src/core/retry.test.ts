import { describe, expect, it } from 'vitest';
import { backoffDelay, DEFAULT_RETRY, policyOf, resolveRetry, retryDelay } from './retry.js';

describe('retry policy', () => {
  it('documents its defaults', () => {
    expect(DEFAULT_RETRY).toEqual({
      maxAttempts: 10,
      initialIntervalMs: 100,
      factor: 2,
      maxIntervalMs: 30_000,
      jitter: 0.2,
      scheduleMs: [],
      respectRetryAfter: true,
      maxRetryAfterMs: 86_400_000,
    });
  });

  it('grows exponentially and caps at maxInterval', () => {
    const p = resolveRetry({ initialInterval: '1s', factor: 2, maxInterval: '5s', jitter: 0 });
    expect([1, 2, 3, 4, 5].map((a) => backoffDelay(p, a, 0.5))).toEqual([
      1000, 2000, 4000, 5000, 5000,
    ]);
  });

  it('factor 1 is a constant delay', () => {
    const p = resolveRetry({ initialInterval: '1s', factor: 1, jitter: 0 });
    expect([1, 2, 3].map((a) => backoffDelay(p, a, 0.5))).toEqual([1000, 1000, 1000]);
  });

  it('spreads delays by ±jitter around the base', () => {
    const p = resolveRetry({ initialInterval: '1s', jitter: 0.2 });
    expect(backoffDelay(p, 1, 0)).toBe(800);
    expect(backoffDelay(p, 1, 0.5)).toBe(1000);
    expect(backoffDelay(p, 1, 0.999999)).toBe(1200);
  });

  it('inherits unspecified fields from its base policy', () => {
    const handler = resolveRetry({ maxAttempts: 3 });
    const step = resolveRetry({ initialInterval: '5s' }, handler);
    expect(step.maxAttempts).toBe(3);
    expect(step.initialIntervalMs).toBe(5000);
    expect(step.factor).toBe(2);
  });

  it('refuses nonsense with a message naming the field', () => {
    expect(() => resolveRetry({ maxAttempts: 0 })).toThrow(/maxAttempts/);
    expect(() => resolveRetry({ maxAttempts: 2.5 })).toThrow(/maxAttempts/);
    expect(() => resolveRetry({ factor: 0.5 })).toThrow(/factor/);
    expect(() => resolveRetry({ jitter: 2 })).toThrow(/jitter/);
    expect(() => resolveRetry({ initialInterval: 'soon' })).toThrow(/not a duration/);
    expect(() => resolveRetry({ schedule: ['1m', 'soon'] })).toThrow(/not a duration/);
  });

  it('round-trips through policyOf', () => {
    const p = resolveRetry({ schedule: ['1m', '5m'], maxRetryAfter: '1h' });
    expect(resolveRetry(policyOf(p))).toEqual(p);
    expect(resolveRetry(policyOf(DEFAULT_RETRY))).toEqual(DEFAULT_RETRY);
  });
});

describe('a schedule', () => {
  const seed = resolveRetry({ schedule: ['1m', '5m', '30m', '2h', '8h'] });

  it('gives the delay before each retry, exactly, and one attempt more than delays', () => {
    expect(seed.maxAttempts).toBe(6);
    expect(seed.jitter).toBe(0);
    expect([1, 2, 3, 4, 5].map((n) => retryDelay(seed, n, 0.9))).toEqual([
      60_000, 300_000, 1_800_000, 7_200_000, 28_800_000,
    ]);
    expect(retryDelay(seed, 6, 0.5)).toBeUndefined();
  });

  it('takes precedence over backoff settings, and jitters only when asked', () => {
    const p = resolveRetry({ schedule: ['10s'], initialInterval: '1s', jitter: 0.1 });
    expect(backoffDelay(p, 1, 0)).toBe(9000);
    expect(backoffDelay(p, 1, 0.5)).toBe(10_000);
  });

  it('repeats its last delay when maxAttempts asks for more, uses its start when fewer', () => {
    const more = resolveRetry({ schedule: ['1s', '2s'], maxAttempts: 5 });
    expect([1, 2, 3, 4, 5].map((n) => retryDelay(more, n, 0.5))).toEqual([
      1000,
      2000,
      2000,
      2000,
      undefined,
    ]);
    const fewer = resolveRetry({ schedule: ['1s', '2s'], maxAttempts: 2 });
    expect([1, 2].map((n) => retryDelay(fewer, n, 0.5))).toEqual([1000, undefined]);
    expect(resolveRetry({ schedule: [] }).maxAttempts).toBe(1);
  });

  it('is inherited unless the refinement gives backoff settings', () => {
    expect(resolveRetry({ maxAttempts: 3 }, seed).scheduleMs).toEqual(seed.scheduleMs);
    const exp = resolveRetry({ initialInterval: '1s' }, seed);
    expect(exp.scheduleMs).toEqual([]);
    expect(backoffDelay(exp, 2, 0.5)).toBe(2000);
  });
});

describe('retryDelay', () => {
  const p = resolveRetry({ maxAttempts: 4, jitter: 0 });

  it('backs off until the attempts run out', () => {
    expect([1, 2, 3].map((n) => retryDelay(p, n, 0.5))).toEqual([100, 200, 400]);
    expect(retryDelay(p, 4, 0.5)).toBeUndefined();
    expect(retryDelay(p, 0, 0.5)).toBeUndefined();
    expect(retryDelay(resolveRetry({ maxAttempts: 1 }), 1, 0.5)).toBeUndefined();
    expect(retryDelay(resolveRetry({ maxAttempts: Infinity }), 1000, 0.5)).toBe(30_000);
  });

  it("waits at least the server's Retry-After, capped, unless told not to", () => {
    expect(retryDelay(p, 1, 0.5, 5000)).toBe(5000);
    expect(retryDelay(p, 1, 0.5, 50)).toBe(100);
    expect(retryDelay(resolveRetry({ respectRetryAfter: false }, p), 1, 0.5, 5000)).toBe(100);
    const capped = resolveRetry({ maxRetryAfter: '1h' }, p);
    expect(retryDelay(capped, 1, 0.5, 7_200_000)).toBe(3_600_000);
  });
});
