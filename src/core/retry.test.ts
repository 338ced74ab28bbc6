import { describe, expect, it } from 'vitest';
import { backoffDelay, DEFAULT_RETRY, resolveRetry } from './retry.js';

describe('retry policy', () => {
  it('documents its defaults', () => {
    expect(DEFAULT_RETRY).toEqual({
      maxAttempts: 10,
      initialIntervalMs: 100,
      factor: 2,
      maxIntervalMs: 30_000,
      jitter: 0.2,
    });
  });

  it('grows exponentially and caps at maxInterval', () => {
    const p = resolveRetry({ initialInterval: '1s', factor: 2, maxInterval: '5s', jitter: 0 });
    expect([1, 2, 3, 4, 5].map((a) => backoffDelay(p, a, 0.5))).toEqual([
      1000, 2000, 4000, 5000, 5000,
    ]);
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
    expect(() => resolveRetry({ factor: 0.5 })).toThrow(/factor/);
    expect(() => resolveRetry({ jitter: 2 })).toThrow(/jitter/);
    expect(() => resolveRetry({ initialInterval: 'soon' })).toThrow(/not a duration/);
  });
});
