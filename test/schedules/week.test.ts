import { afterEach, describe, expect, it } from 'vitest';
import { schedule, type MissedPolicy } from '../../src/schedules/index.js';
import { DAY, HOUR, invocationsOf, iso, scheduleHarness, type ScheduleHarness } from './helpers.js';

/**
 * A schedule over simulated time (fake clock) with the app down for a while in the middle (the
 * engine stopped, then started again on the same SQLite file): every tick while it runs fires
 * exactly once, at its time, and the ticks that fell while it was down follow the policy.
 */

let h: ScheduleHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const START = Date.UTC(2026, 0, 5, 0, 10); // a Monday, 10 minutes past a tick

/** Ticks in (from, to], every `step` ms from a multiple of `step`. */
function ticks(from: number, to: number, step: number): number[] {
  const out: number[] = [];
  for (let t = Math.floor(from / step) * step + step; t <= to; t += step) out.push(t);
  return out;
}

interface Case {
  name: string;
  cron: string;
  step: number;
  /** How long it runs before going down, how long it is down, how long it runs after. */
  before: number;
  down: number;
  after: number;
  /** Per policy: the ticks of the down time that fire at the restart. */
  expected: Record<string, (missed: number[], restart: number) => number[]>;
}

const cases: Case[] = [
  {
    // Down from Thursday 12:10 to Friday 09:20: the 21 hourly ticks 13:00..09:00 are missed,
    // the latest 20 minutes late (beyond the 1-minute grace of `skip`).
    name: 'hourly over a week',
    cron: '0 * * * *',
    step: HOUR,
    before: 3 * DAY + 12 * HOUR,
    down: 21 * HOUR + 10 * 60_000,
    after: 3 * DAY,
    expected: {
      skip: () => [],
      once: (missed) => missed.slice(-1),
      all: (missed) => missed.slice(-5),
    },
  },
  {
    // Seconds: down 5 min 10 s, so the latest of the 10 missed ticks is 10 s late: `skip` fires
    // it too (a restart across a tick does not lose it).
    name: 'every 30 seconds over 20 minutes',
    cron: '*/30 * * * * *',
    step: 30_000,
    before: 5 * 60_000,
    down: 5 * 60_000 + 10_000,
    after: 10 * 60_000,
    expected: {
      skip: (missed) => missed.slice(-1),
      once: (missed) => missed.slice(-1),
      all: (missed) => missed.slice(-5),
    },
  },
];

const policies: Array<[string, MissedPolicy]> = [
  ['skip', 'skip'],
  ['once', 'once'],
  ['all', { all: 5 }],
];

describe.each(cases)('a schedule $name, down in the middle', (c) => {
  it.each(policies)('fires every tick once; missed ones as %s says', async (label, missed) => {
    const decl = schedule({
      name: `s-${label}`,
      cron: c.cron,
      target: { service: 'Tick', handler: 'hit' },
      input: { policy: label },
      missed,
    });
    h = await scheduleHarness([decl], START);
    await h.clock.advance(c.before);
    const downAt = h.clock.now();
    await h.stop();
    await h.clock.advance(c.down);
    const restart = h.clock.now();
    await h.start();
    await h.clock.advance(c.after);
    const end = h.clock.now();

    const missedTicks = ticks(downAt, restart, c.step);
    const caughtUp = c.expected[label]!(missedTicks, restart);
    const expected = [
      ...ticks(START, downAt, c.step).map((t) => ({ t, at: t })),
      ...caughtUp.map((t) => ({ t, at: restart })),
      ...ticks(restart, end, c.step).map((t) => ({ t, at: t })),
    ];
    const runs = await invocationsOf(h.engine);
    const keys = runs.map((r) => r.idempotencyKey);
    expect(new Set(keys).size).toBe(keys.length); // no tick twice
    expect(keys).toEqual(expected.map((e) => `schedule:s-${label}:${iso(e.t)}`));
    // On time while running; the caught-up ones at the restart.
    expect(runs.map((r) => r.createdAt)).toEqual(expected.map((e) => iso(e.at)));
    expect(runs.every((r) => r.status === 'completed')).toBe(true);
    const view = await h.ext.get(`s-${label}`);
    expect(view.lastTick).toBe(iso(expected[expected.length - 1]!.t));
    expect(view.nextTick).toBe(iso(ticks(end, end + c.step, c.step)[0]!));
  });
});
