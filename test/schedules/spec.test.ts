import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startApp } from '../../src/app.js';
import { tempDir } from '../helpers.js';
import { schedule, ScheduleError } from '../../src/schedules/index.js';
import { jitterOf } from '../../src/schedules/ticks.js';
import { invocationsOf, scheduleHarness, Tick, type ScheduleHarness } from './helpers.js';

/** Declarations: checked when made; jitter: a fixed, spread delay per schedule. */

let h: ScheduleHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

describe('schedule()', () => {
  it('refuses a bad declaration at once, naming the field', () => {
    const base = {
      name: 'x',
      cron: '* * * * *',
      target: { service: Tick, handler: 'hit' },
    } as const;
    const cases: Array<[object, string, string]> = [
      [{ cron: '* * *' }, 'invalid_cron', 'cron'],
      [{ timezone: 'Europe/Nowhere' }, 'invalid_timezone', 'timezone'],
      [{ missed: 'twice' }, 'invalid_schedule', 'missed'],
      [{ jitter: '3h' }, 'invalid_schedule', 'jitter'],
      [{ name: 'a/b' }, 'invalid_schedule', 'name'],
      [{ input: { when: new Date() } }, 'invalid_schedule', 'input'],
    ];
    for (const [change, code, field] of cases) {
      let caught: unknown;
      try {
        schedule({ ...base, ...change } as never);
      } catch (err) {
        caught = err;
      }
      expect(caught, JSON.stringify(change)).toBeInstanceOf(ScheduleError);
      expect(caught).toMatchObject({ code, field, status: 400 });
    }
    // The handler of a typed target is checked by the compiler.
    // @ts-expect-error Tick has no handler "miss"
    schedule({ ...base, target: { service: Tick, handler: 'miss' } });
  });

  it('fails the start when a declared target is not registered', async () => {
    const bad = schedule({
      name: 'bad',
      cron: '* * * * *',
      target: { service: 'Nope', handler: 'x' },
    });
    await expect(scheduleHarness([bad], Date.UTC(2026, 0, 1))).rejects.toMatchObject({
      code: 'unknown_target',
      message: expect.stringMatching(
        /schedule "bad": target: no service, object or workflow named "Nope"/,
      ),
    });
  });
});

describe('startApp({ schedules })', () => {
  it('adds the extension: the declared schedule is stored and served at /schedules', async () => {
    const { dir, cleanup } = tempDir('keel-schedules-app-');
    const app = await startApp({
      services: [Tick],
      db: join(dir, 'keel.db'),
      port: 0,
      adminPort: 0,
      logLevel: 'silent',
      schedules: [
        schedule({
          name: 'app-made',
          cron: '0 0 1 1 *',
          target: { service: Tick, handler: 'hit' },
        }),
      ],
    });
    try {
      const res = await fetch(`${app.admin.url}/schedules`);
      const body = (await res.json()) as { schedules: Array<{ name: string; source: string }> };
      expect(body.schedules.map((s) => [s.name, s.source])).toEqual([['app-made', 'code']]);
    } finally {
      await app.close();
      cleanup();
    }
  });
});

describe('jitter', () => {
  it('is fixed per name and spreads names over the whole range', () => {
    const delays = Array.from({ length: 1000 }, (_, i) => jitterOf(`s${i}`, 60_000));
    expect(delays.every((d) => d >= 0 && d < 60_000)).toBe(true);
    expect(new Set(delays.map((d) => Math.floor(d / 6_000))).size).toBe(10); // every tenth used
    expect(jitterOf('s1', 60_000)).toBe(delays[1]);
    expect(jitterOf('s1', 0)).toBe(0);
  });

  it('fires each tick that much after its time, with the tick time in the key', async () => {
    const decl = schedule({
      name: 'spread',
      cron: '0 * * * *',
      target: { service: 'Tick', handler: 'hit' },
      jitter: '10m',
    });
    h = await scheduleHarness([decl], Date.UTC(2026, 0, 5, 0, 30));
    await h.clock.advance('3h');
    const delay = jitterOf('spread', 600_000);
    const runs = await invocationsOf(h.engine);
    expect(runs.map((r) => [r.idempotencyKey, Date.parse(r.createdAt)])).toEqual(
      [1, 2, 3].map((hour) => [
        `schedule:spread:2026-01-05T0${hour}:00:00.000Z`,
        Date.UTC(2026, 0, 5, hour) + delay,
      ]),
    );
  });
});
