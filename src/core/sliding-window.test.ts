import { describe, expect, it } from 'vitest';
import { Prng } from './prng.js';
import {
  liveSlots,
  recordEvent,
  windowOpensAt,
  windowRoom,
  type WindowRule,
  type WindowSlot,
} from './sliding-window.js';

/** How many of `sorted` are at most `x`. */
function atMost(sorted: number[], x: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid]! <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Admitted events (in time order) in (from, to]. */
const between = (events: number[], from: number, to: number): number =>
  atMost(events, to) - atMost(events, from);

describe('sliding window of slots', () => {
  for (const seed of ['a', 'b', 'c', 'd', 'e', 'f']) {
    it(`never lets a window hold more than the limit, and is late by less than a slot (seed ${seed})`, () => {
      const rng = new Prng(seed);
      const rule: WindowRule = {
        limit: 1 + (rng.nextU32() % 50),
        periodMs: 100 + (rng.nextU32() % 5000),
        slots: 1 + (rng.nextU32() % 12),
      };
      const width = rule.periodMs / rule.slots;
      let slots: WindowSlot[] = [];
      const admitted: number[] = [];
      let now = 1_000_000;
      for (let i = 0; i < 5000; i++) {
        // Bursts (several at one time) and gaps of up to two periods.
        const step = rng.nextU32() % 4 === 0 ? 0 : rng.nextU32() % Math.ceil(rule.periodMs / 8);
        now += rng.nextU32() % 200 === 0 ? 2 * rule.periodMs : step;
        slots = liveSlots(slots, now, rule);
        expect(slots.length).toBeLessThanOrEqual(rule.slots + 2);
        if (windowRoom(slots, rule) > 0) {
          // Sound: the window ending now holds fewer than the limit.
          expect(between(admitted, now - rule.periodMs, now)).toBeLessThan(rule.limit);
          slots = recordEvent(slots, now, rule);
          admitted.push(now);
        } else {
          // Cautious by less than a slot: a window at most `width` longer is full.
          expect(between(admitted, now - rule.periodMs - width, now)).toBeGreaterThanOrEqual(
            rule.limit,
          );
          // It opens when it says, not before.
          const at = windowOpensAt(slots, rule);
          expect(at).toBeGreaterThan(now);
          expect(windowRoom(liveSlots(slots, at - 1, rule), rule)).toBeLessThanOrEqual(0);
          expect(windowRoom(liveSlots(slots, at, rule), rule)).toBeGreaterThan(0);
        }
      }
      // Every window of length periodMs (the densest end at an event) holds at most the limit.
      for (const t of admitted)
        expect(between(admitted, t - rule.periodMs, t)).toBeLessThanOrEqual(rule.limit);
      expect(admitted.length).toBeGreaterThan(rule.limit);
    });
  }

  it('joins the newest slot within periodMs / slots of its first event, else opens one', () => {
    const rule = { limit: 100, periodMs: 1000, slots: 10 };
    let s: WindowSlot[] = [];
    for (const t of [0, 50, 99, 100, 150, 250]) s = recordEvent(s, t, rule);
    expect(s).toEqual([
      [0, 99, 3],
      [100, 150, 2],
      [250, 250, 1],
    ]);
    // Dropped once its last event left: (now - periodMs) is outside the window.
    expect(liveSlots(s, 1099, rule)).toEqual(s.slice(1));
    expect(liveSlots(s, 1098, rule)).toBe(s);
  });
});
