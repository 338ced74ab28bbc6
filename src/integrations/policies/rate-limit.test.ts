import { describe, expect, it } from 'vitest';
import { Prng } from '../../core/prng.js';
import {
  applyServerHints,
  availablePermits,
  initialRateLimitState,
  parseRateLimitState,
  rateLimitUsage,
  tryAcquire,
  type RateLimitOptions,
  type RateLimitState,
} from './rate-limit.js';

const OPTS: RateLimitOptions = { requests: 3, windowMs: 1000 };

/** Acquires at each time in turn; returns the decisions and the final state. */
function run(times: number[], opts = OPTS, from = initialRateLimitState()) {
  let state = from;
  const decisions = times.map((t) => {
    const d = tryAcquire(state, t, opts);
    state = d.state;
    return d;
  });
  return { decisions, state };
}

/** Inserts `x` into the ascending array `queue`, after any equal values. */
function enqueue(queue: number[], x: number): void {
  let lo = 0;
  let hi = queue.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (queue[mid]! <= x) lo = mid + 1;
    else hi = mid;
  }
  queue.splice(lo, 0, x);
}

/** The most admissions found in any window (t - W, t]. */
function maxInWindow(admitted: number[], windowMs: number): number {
  const sorted = [...admitted].sort((a, b) => a - b);
  let max = 0;
  let lo = 0;
  for (let hi = 0; hi < sorted.length; hi++) {
    while (sorted[hi]! - sorted[lo]! >= windowMs) lo++;
    max = Math.max(max, hi - lo + 1);
  }
  return max;
}

describe('rate limiter: the window', () => {
  it('admits N at once, then refuses with the wait until the oldest leaves', () => {
    const { decisions, state } = run([0, 0, 0, 500]);
    expect(decisions.map((d) => d.allowed)).toEqual([true, true, true, false]);
    expect(decisions[3]).toMatchObject({ waitMs: 500, reason: 'window' });
    expect(state.slots).toEqual([[0, 0, 3]]);
  });

  it('window edges: refused at W - 1 after, admitted exactly W after', () => {
    const { state } = run([0, 0, 0]);
    expect(tryAcquire(state, 999, OPTS)).toMatchObject({ allowed: false, waitMs: 1 });
    const at = tryAcquire(state, 1000, OPTS);
    expect(at.allowed).toBe(true);
    expect(at.state.slots).toEqual([[1000, 1000, 1]]);
  });

  it('the wait it gives is exact: asking again after it succeeds', () => {
    const { state } = run([0, 300, 600]);
    const refused = tryAcquire(state, 700, OPTS);
    expect(refused).toMatchObject({ allowed: false, waitMs: 300 });
    expect(tryAcquire(refused.state, 700 + refused.waitMs - 1, OPTS).allowed).toBe(false);
    expect(tryAcquire(refused.state, 700 + refused.waitMs, OPTS).allowed).toBe(true);
  });

  it('sustains exactly N per W for evenly spaced calls', () => {
    const opts = { requests: 10, windowMs: 1000 };
    const times = Array.from({ length: 50 }, (_, i) => i * 100);
    expect(run(times, opts).decisions.every((d) => d.allowed)).toBe(true);
    // One more in the same tick would be the 11th in a window.
    const { state } = run(times, opts);
    expect(tryAcquire(state, 4900, opts).allowed).toBe(false);
  });

  it('is cautious by at most one slot width for calls inside one slot', () => {
    // Two calls 50ms apart share a slot (width 100ms); the slot leaves with its last call.
    const opts = { requests: 2, windowMs: 1000 };
    const { state } = run([0, 50], opts);
    expect(state.slots).toEqual([[0, 50, 2]]);
    expect(tryAcquire(state, 1000, opts)).toMatchObject({ allowed: false, waitMs: 50 });
    expect(tryAcquire(state, 1050, opts).allowed).toBe(true);
  });

  it('takes several permits at once, and refuses a request larger than the limit', () => {
    const d = tryAcquire(initialRateLimitState(), 0, OPTS, 3);
    expect(d.allowed).toBe(true);
    expect(tryAcquire(d.state, 1, OPTS, 1)).toMatchObject({ allowed: false });
    const two = tryAcquire(initialRateLimitState(), 0, OPTS, 2);
    expect(tryAcquire(two.state, 1, OPTS, 2)).toMatchObject({ allowed: false, waitMs: 999 });
    expect(() => tryAcquire(initialRateLimitState(), 0, OPTS, 4)).toThrow(
      /permits must be a whole number from 1 to the limit \(3\)/,
    );
    expect(() => tryAcquire(initialRateLimitState(), 0, OPTS, 0)).toThrow(RangeError);
  });

  it('keeps the state small whatever N is', () => {
    const opts = { requests: 5000, windowMs: 3_600_000 };
    let state = initialRateLimitState();
    const prng = new Prng('size');
    let t = 0;
    for (let i = 0; i < 20_000; i++) {
      t += Math.floor(prng.next() * 1500);
      state = tryAcquire(state, t, opts).state;
      expect(state.slots.length).toBeLessThanOrEqual(12);
    }
    expect(JSON.stringify(state).length).toBeLessThan(600);
  });

  it.each(['steady', 'bursty', 'sparse'])(
    'never admits more than N in any window (%s random traffic, callers retrying after waitMs)',
    (shape) => {
      const prng = new Prng(shape);
      const opts = { requests: 20, windowMs: 1000, slots: 7 };
      let state: RateLimitState = initialRateLimitState();
      const admitted: number[] = [];
      // A queue of callers: each asks at its time, and on refusal asks again after waitMs.
      const pending: number[] = [];
      let t = 0;
      for (let i = 0; i < 600; i++) {
        const gap =
          shape === 'bursty' ? (prng.next() < 0.1 ? 800 : 0) : shape === 'sparse' ? 200 : 15;
        t += Math.floor(prng.next() * gap);
        pending.push(t);
      }
      pending.sort((a, b) => a - b);
      while (pending.length > 0) {
        const at = pending.shift()!;
        const d = tryAcquire(state, at, opts);
        state = d.state;
        if (d.allowed) admitted.push(at);
        else {
          // A refusal must send the caller into the future, or the simulation would spin.
          if (!(d.waitMs > 0)) throw new Error(`waitMs ${d.waitMs} at ${at}`);
          enqueue(pending, at + d.waitMs);
        }
      }
      expect(admitted).toHaveLength(600);
      expect(maxInWindow(admitted, opts.windowMs)).toBeLessThanOrEqual(opts.requests);
    },
  );

  it('two instances sharing one state: 300 calls at 100/s never exceed 100 in any second', () => {
    const opts = { requests: 100, windowMs: 1000 };
    let shared = JSON.stringify(initialRateLimitState());
    const arrivals: number[] = [];
    // Each instance wants to send 150 calls as fast as it can, starting at t=0 and t=3.
    const queue = [
      ...Array.from({ length: 150 }, () => 0),
      ...Array.from({ length: 150 }, () => 3),
    ];
    queue.sort((a, b) => a - b);
    while (queue.length > 0) {
      const at = queue.shift()!;
      const d = tryAcquire(parseRateLimitState(JSON.parse(shared)), at, opts);
      shared = JSON.stringify(d.state);
      if (d.allowed) arrivals.push(at);
      else enqueue(queue, at + d.waitMs);
    }
    expect(arrivals).toHaveLength(300);
    expect(maxInWindow(arrivals, 1000)).toBe(100);
    expect(Math.max(...arrivals) - Math.min(...arrivals)).toBeGreaterThanOrEqual(2000);
  });
});

describe('rate limiter: server hints', () => {
  it('Retry-After blocks everything until it passes', () => {
    const s = applyServerHints(initialRateLimitState(), { retryAfterMs: 2000 }, 100, OPTS);
    expect(s.blockedUntil).toBe(2100);
    expect(tryAcquire(s, 2099, OPTS)).toMatchObject({
      allowed: false,
      waitMs: 1,
      reason: 'retry-after',
    });
    const after = tryAcquire(s, 2100, OPTS);
    expect(after.allowed).toBe(true);
    expect(after.state.blockedUntil).toBeUndefined();
  });

  it('a shorter Retry-After does not shorten a longer block', () => {
    const s = applyServerHints(initialRateLimitState(), { retryAfterMs: 5000 }, 0, OPTS);
    expect(applyServerHints(s, { retryAfterMs: 1000 }, 10, OPTS).blockedUntil).toBe(5000);
  });

  it("the server's remaining budget caps admissions until its reset", () => {
    const opts = { requests: 100, windowMs: 1000 };
    let s = applyServerHints(initialRateLimitState(), { remaining: 2, resetAt: 60_000 }, 0, opts);
    s = tryAcquire(s, 1, opts).state;
    s = tryAcquire(s, 2, opts).state;
    expect(s.server).toEqual({ remaining: 0, resetAt: 60_000 });
    expect(tryAcquire(s, 3, opts)).toMatchObject({
      allowed: false,
      waitMs: 59_997,
      reason: 'server-budget',
    });
    const after = tryAcquire(s, 60_000, opts);
    expect(after.allowed).toBe(true);
    expect(after.state.server).toBeUndefined();
  });

  it('remaining: 0 blocks until the reset', () => {
    const s = applyServerHints(initialRateLimitState(), { remaining: 0, resetAt: 5000 }, 0, OPTS);
    expect(tryAcquire(s, 10, OPTS)).toMatchObject({ allowed: false, waitMs: 4990 });
  });

  it('hints arriving out of order: older windows ignored, the lower remaining of one window wins', () => {
    let s = applyServerHints(initialRateLimitState(), { remaining: 50, resetAt: 10_000 }, 0, OPTS);
    s = applyServerHints(s, { remaining: 70, resetAt: 10_000 }, 1, OPTS);
    expect(s.server).toEqual({ remaining: 50, resetAt: 10_000 });
    s = applyServerHints(s, { remaining: 40, resetAt: 10_000 }, 2, OPTS);
    expect(s.server).toEqual({ remaining: 40, resetAt: 10_000 });
    s = applyServerHints(s, { remaining: 1, resetAt: 5000 }, 3, OPTS);
    expect(s.server).toEqual({ remaining: 40, resetAt: 10_000 });
    s = applyServerHints(s, { remaining: 4999, resetAt: 20_000 }, 4, OPTS);
    expect(s.server).toEqual({ remaining: 4999, resetAt: 20_000 });
  });

  it('remaining without a reset time is assumed to last one window; a reset in the past is ignored', () => {
    const s = applyServerHints(initialRateLimitState(), { remaining: 7 }, 100, OPTS);
    expect(s.server).toEqual({ remaining: 7, resetAt: 1100 });
    expect(
      applyServerHints(initialRateLimitState(), { remaining: 0, resetAt: 50 }, 100, OPTS),
    ).toEqual({ slots: [] });
    expect(
      applyServerHints(initialRateLimitState(), { remaining: -1, resetAt: 500 }, 100, OPTS),
    ).toEqual({ slots: [] });
  });
});

describe('rate limiter: reporting and storage', () => {
  it('usage counts what is in the window', () => {
    const { state } = run([0, 10, 600]);
    expect(rateLimitUsage(state, 700, OPTS)).toEqual({ used: 3, limit: 3 });
    // 0 and 10 share a slot, which leaves the window with its last call (at 1010).
    expect(rateLimitUsage(state, 1009, OPTS)).toEqual({ used: 3, limit: 3 });
    expect(rateLimitUsage(state, 1010, OPTS)).toEqual({ used: 1, limit: 3 });
    const hinted = applyServerHints(state, { remaining: 9, resetAt: 5000 }, 700, OPTS);
    expect(rateLimitUsage(hinted, 700, OPTS)).toEqual({ used: 3, limit: 3, serverRemaining: 9 });
  });

  it('round-trips through JSON and refuses malformed state', () => {
    const s: RateLimitState = {
      slots: [[1, 2, 3]],
      blockedUntil: 9,
      server: { remaining: 1, resetAt: 10 },
    };
    expect(parseRateLimitState(JSON.parse(JSON.stringify(s)))).toEqual(s);
    expect(() => parseRateLimitState({})).toThrow(/slots must be an array/);
    expect(() => parseRateLimitState({ slots: [[1, 2]] })).toThrow(/\[first, last, count\]/);
    expect(() => parseRateLimitState({ slots: [], server: { remaining: 1 } })).toThrow(
      /server must be/,
    );
    expect(() => parseRateLimitState({ slots: [], blockedUntil: 'soon' })).toThrow(/blockedUntil/);
  });
});

describe('rate limiter: pacing (burst)', () => {
  const PACED: RateLimitOptions = { requests: 100, windowMs: 1000, burst: 10 };

  it('starts full: the first `burst` permits go at once, the next one interval later', () => {
    let s = initialRateLimitState();
    for (let i = 0; i < 10; i++) {
      const d = tryAcquire(s, 0, PACED);
      expect(d.allowed).toBe(true);
      s = d.state;
    }
    expect(tryAcquire(s, 0, PACED)).toMatchObject({ allowed: false, reason: 'pace', waitMs: 10 });
    expect(tryAcquire(s, 10, PACED).allowed).toBe(true);
  });

  it('a slow limit (100 per hour) lets its first call through at once', () => {
    const hourly: RateLimitOptions = { requests: 100, windowMs: 3_600_000, burst: 10 };
    expect(tryAcquire(initialRateLimitState(), 0, hourly)).toMatchObject({ allowed: true });
  });

  it('300 calls at 100/s from two instances take at least 2.9 s and never exceed 100 per second', () => {
    let shared = JSON.stringify(initialRateLimitState());
    const arrivals: number[] = [];
    const queue = Array.from({ length: 300 }, (_, i) => (i % 2) * 3);
    queue.sort((a, b) => a - b);
    while (queue.length > 0) {
      const at = queue.shift()!;
      const d = tryAcquire(parseRateLimitState(JSON.parse(shared)), at, PACED);
      shared = JSON.stringify(d.state);
      if (d.allowed) arrivals.push(at);
      else enqueue(queue, at + d.waitMs);
    }
    expect(arrivals).toHaveLength(300);
    expect(maxInWindow(arrivals, 1000)).toBeLessThanOrEqual(100);
    // The first `burst` (10) go at once, the other 290 at 100 per second.
    expect(Math.max(...arrivals)).toBeGreaterThanOrEqual(2900);
  });

  it('refills up to the burst only: after a long idle, at most `burst` go at once', () => {
    let s = tryAcquire(initialRateLimitState(), 0, PACED).state;
    expect(availablePermits(s, 60_000, PACED)).toBe(10);
    s = tryAcquire(s, 60_000, PACED, 10).state;
    expect(tryAcquire(s, 60_000, PACED)).toMatchObject({ allowed: false, reason: 'pace' });
  });

  it('a block of permits held for later counts in the window until the hold ends', () => {
    const opts: RateLimitOptions = { requests: 10, windowMs: 1000 };
    const s = tryAcquire(initialRateLimitState(), 0, opts, 10, 500).state;
    // Without the hold the block would leave the window at 1000; held, it stays until 1500.
    expect(tryAcquire(s, 1200, opts)).toMatchObject({ allowed: false, waitMs: 300 });
    expect(tryAcquire(s, 1500, opts).allowed).toBe(true);
  });

  it('available permits never exceed the window, the server budget or the bucket', () => {
    let s = applyServerHints(initialRateLimitState(), { remaining: 3, resetAt: 5000 }, 0, PACED);
    s = tryAcquire(s, 0, PACED).state; // starts the bucket (full) and spends one of the server's 3
    expect(availablePermits(s, 1000, PACED)).toBe(2);
    expect(() => tryAcquire(s, 1000, PACED, 11)).toThrow(RangeError);
  });
});
