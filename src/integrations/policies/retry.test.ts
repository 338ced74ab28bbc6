import { describe, expect, it } from 'vitest';
import { INTEGRATION_DEFAULTS } from '../declarations/config.js';
import { retryDelay, type ResolvedRetry } from './retry.js';

const EXP: ResolvedRetry = { ...INTEGRATION_DEFAULTS.retry, jitter: 0 };

describe('retryDelay', () => {
  it("exponential: 100ms × 2^(n-1), capped at maxDelay (the seed's Pattern 2)", () => {
    expect([1, 2, 3].map((n) => retryDelay(EXP, n, 0.5))).toEqual([100, 200, 400]);
    const capped = { ...EXP, retries: 20 };
    expect(retryDelay(capped, 20, 0.5)).toBe(30_000);
  });

  it('jitter spreads ±25% around the delay, by the random number given', () => {
    const p = { ...EXP, jitter: 0.25 };
    expect(retryDelay(p, 3, 0)).toBe(300);
    expect(retryDelay(p, 3, 0.5)).toBe(400);
    expect(retryDelay(p, 3, 0.999999)).toBe(500);
  });

  it('constant backoff', () => {
    const p: ResolvedRetry = { ...EXP, backoff: 'constant', initialDelayMs: 1000 };
    expect([1, 2, 3].map((n) => retryDelay(p, n, 0.5))).toEqual([1000, 1000, 1000]);
  });

  it('an explicit schedule, followed exactly', () => {
    const p: ResolvedRetry = {
      ...EXP,
      retries: 5,
      backoff: 'schedule',
      scheduleMs: [60_000, 300_000, 1_800_000, 7_200_000, 28_800_000],
    };
    expect([1, 2, 3, 4, 5].map((n) => retryDelay(p, n, 0.9))).toEqual([
      60_000, 300_000, 1_800_000, 7_200_000, 28_800_000,
    ]);
  });

  it('no retries left: undefined', () => {
    expect(retryDelay(EXP, 4, 0.5)).toBeUndefined();
    expect(retryDelay(EXP, 0, 0.5)).toBeUndefined();
    expect(retryDelay({ ...EXP, retries: 0 }, 1, 0.5)).toBeUndefined();
  });

  it("waits at least the server's Retry-After, unless told not to", () => {
    expect(retryDelay(EXP, 1, 0.5, 5000)).toBe(5000);
    expect(retryDelay(EXP, 1, 0.5, 50)).toBe(100);
    expect(retryDelay({ ...EXP, respectRetryAfter: false }, 1, 0.5, 5000)).toBe(100);
  });
});
