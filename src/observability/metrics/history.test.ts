import { describe, expect, it } from 'vitest';
import { HISTORY_MINUTES, MinuteHistory } from './history.js';

const T0 = Date.UTC(2026, 11, 7, 5, 0, 0);
const MIN = 60_000;

describe('MinuteHistory', () => {
  it('answers 60 minutes, oldest first, with calls, errors and percentiles per minute', () => {
    const h = new MinuteHistory();
    for (let i = 1; i <= 100; i++) h.record(T0 + 10 * MIN + 5, i !== 7, i); // 1..100 ms
    h.record(T0 + 11 * MIN, false, 3);
    const b = h.buckets(T0 + 11 * MIN + 30_000);
    expect(b).toHaveLength(HISTORY_MINUTES);
    expect(b.at(-1)).toMatchObject({
      t: new Date(T0 + 11 * MIN).toISOString(),
      calls: 1,
      errors: 1,
    });
    const ten = b.at(-2)!;
    expect(ten).toMatchObject({ t: new Date(T0 + 10 * MIN).toISOString(), calls: 100, errors: 1 });
    // Within a bin (25%) of the true percentiles, never below them.
    expect(ten.p50!).toBeGreaterThanOrEqual(50);
    expect(ten.p50!).toBeLessThanOrEqual(50 * 1.25);
    expect(ten.p99!).toBeGreaterThanOrEqual(99);
    expect(ten.p99!).toBeLessThanOrEqual(99 * 1.25);
    expect(b[0]).toMatchObject({ calls: 0, errors: 0, p50: null, p99: null });
  });

  it('forgets a minute once it is an hour old, even when its slot is not reused', () => {
    const h = new MinuteHistory();
    h.record(T0, true, 5);
    expect(h.buckets(T0 + 59 * MIN)[0]!.calls).toBe(1);
    expect(h.buckets(T0 + 60 * MIN).reduce((n, x) => n + x.calls, 0)).toBe(0);
    h.record(T0 + 60 * MIN, true, 5); // same slot, an hour later
    const b = h.buckets(T0 + 60 * MIN);
    expect(b.at(-1)!.calls).toBe(1);
    expect(b.reduce((n, x) => n + x.calls, 0)).toBe(1);
  });
});
