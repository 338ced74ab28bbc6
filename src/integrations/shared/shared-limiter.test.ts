import { describe, expect, it } from 'vitest';
import { SharedLimiter } from './shared-limiter.js';

describe('SharedLimiter leases', () => {
  it('sizes each lease to the demand: a block first, then twice what the last one served', async () => {
    let now = 1_000_000;
    // 1000 per second: leases of up to 100 permits, valid 100 ms.
    const limiter = new SharedLimiter(
      undefined,
      'Api',
      { requests: 1000, windowMs: 1000 },
      { maxAgeMs: 1000, now: () => now, wait: async (ms) => void (now += ms) },
    );
    expect([limiter.block, limiter.leaseMs]).toEqual([100, 100]);
    const take = async (n: number): Promise<void> => {
      for (let i = 0; i < n; i++) if (!limiter.tryTake(now)) await limiter.acquire();
    };
    await take(4);
    expect((await limiter.usage()).used).toBe(100); // the first lease: a whole block
    now += 150; // it expired having served 4
    await take(1);
    expect((await limiter.usage()).used).toBe(100 + 8);
    await take(7); // the 8 are gone before the lease expires: the next one doubles
    await take(1);
    expect((await limiter.usage()).used).toBe(100 + 8 + 16);
    now += 1500; // idle: the window is empty again, and one call was served by the last lease
    await take(1);
    expect((await limiter.usage()).used).toBe(2);
    // However small the last lease, every caller already waiting is served by the next one.
    now += 150;
    await Promise.all(Array.from({ length: 30 }, () => limiter.acquire() ?? Promise.resolve()));
    expect((await limiter.usage()).used).toBe(2 + 30);
  });
});
