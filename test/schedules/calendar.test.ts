import { afterEach, describe, expect, it } from 'vitest';
import { schedule } from '../../src/schedules/index.js';
import { DAY, invocationsOf, scheduleHarness, Tick, type ScheduleHarness } from './helpers.js';

/**
 * Timezones and daylight saving (croner's calendar), and schedules that must not fire: paused
 * (in code or through the API), resumed (from the next tick on), deleted.
 */

let h: ScheduleHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const berlin = schedule({
  name: 'berlin-0230',
  cron: '30 2 * * *',
  timezone: 'Europe/Berlin',
  target: { service: Tick, handler: 'hit' },
});

async function firedBetween(from: number, days: number): Promise<string[]> {
  h = await scheduleHarness([berlin], from);
  await h.clock.advance(days * DAY);
  const runs = await invocationsOf(h.engine);
  // Each fired at its tick, and the key names that tick.
  for (const r of runs) expect(r.idempotencyKey).toBe(`schedule:berlin-0230:${r.createdAt}`);
  return runs.map((r) => r.createdAt);
}

describe('a daily 02:30 Europe/Berlin schedule', () => {
  it('fires once a day across the spring change; the 02:30 that does not exist fires at 03:30 CEST', async () => {
    // 29 March 2026: clocks go from 02:00 CET to 03:00 CEST, so there is no 02:30.
    expect(await firedBetween(Date.UTC(2026, 2, 27, 0, 0), 4)).toEqual([
      '2026-03-27T01:30:00.000Z', // 02:30 CET
      '2026-03-28T01:30:00.000Z', // 02:30 CET
      '2026-03-29T01:30:00.000Z', // 03:30 CEST: croner moves the missing time an hour on
      '2026-03-30T00:30:00.000Z', // 02:30 CEST
    ]);
  });

  it('fires once a day across the autumn change; the 02:30 that happens twice fires once, the second time', async () => {
    // 25 October 2026: clocks go from 03:00 CEST back to 02:00 CET, so 02:30 happens twice.
    expect(await firedBetween(Date.UTC(2026, 9, 23, 0, 0), 4)).toEqual([
      '2026-10-23T00:30:00.000Z', // 02:30 CEST
      '2026-10-24T00:30:00.000Z', // 02:30 CEST
      '2026-10-25T01:30:00.000Z', // 02:30 CET (not 00:30Z, the first 02:30)
      '2026-10-26T01:30:00.000Z', // 02:30 CET
    ]);
  });
});

describe('schedules that must not fire', () => {
  const START = Date.UTC(2026, 0, 5, 0, 0, 10);

  it('paused in code: never; resumed: from the next tick, without the ticks it slept through', async () => {
    const decl = schedule({
      name: 'minutely',
      cron: '* * * * *',
      target: { service: 'Tick', handler: 'hit' },
      missed: { all: 100 },
      paused: true,
    });
    h = await scheduleHarness([decl], START);
    await h.clock.advance('10m');
    expect(await invocationsOf(h.engine)).toHaveLength(0);
    expect((await h.ext.get('minutely')).nextTick).toBeUndefined();
    await h.clock.advance('20s'); // 00:10:30
    const resumed = await h.ext.resume('minutely');
    expect(resumed.nextTick).toBe('2026-01-05T00:11:00.000Z');
    await h.clock.advance('2m');
    expect((await invocationsOf(h.engine)).map((r) => r.createdAt)).toEqual([
      '2026-01-05T00:11:00.000Z',
      '2026-01-05T00:12:00.000Z',
    ]);
    // A pause made through the API outlives a restart (the declaration did not change).
    await h.ext.pause('minutely');
    await h.stop();
    await h.start();
    await h.clock.advance('5m');
    expect(await invocationsOf(h.engine)).toHaveLength(2);
    expect((await h.ext.get('minutely')).paused).toBe(true);
  });

  it('paused, deleted, or paused by another writer just before its tick: nothing fires', async () => {
    h = await scheduleHarness([], START);
    const body = (name: string) => ({
      name,
      cron: '*/10 * * * * *',
      target: { service: 'Tick', handler: 'hit' },
      missed: 'once',
    });
    await h.ext.create(body('a'));
    await h.ext.create(body('b'));
    await h.clock.advance('30s'); // 00:00:20, :30, :40 for both
    expect(await invocationsOf(h.engine)).toHaveLength(6);
    await h.ext.pause('a');
    await h.ext.delete('b');
    await h.clock.advance('1m');
    expect(await invocationsOf(h.engine)).toHaveLength(6);
    expect((await h.ext.list()).map((s) => [s.name, s.paused])).toEqual([['a', true]]);
    // Stored paused behind this process's back (as another process would): its row is
    // read again at the tick, and the tick does not fire.
    await h.ext.resume('a');
    const row = await h.engine.store.getKv('keel.schedules', 'a');
    await h.engine.store.write([
      {
        op: 'kv.put',
        scope: 'keel.schedules',
        key: 'a',
        value: { ...(row!.value as object), paused: true },
      },
    ]);
    await h.clock.advance('1m');
    expect(await invocationsOf(h.engine)).toHaveLength(6);
  });

  it('a schedule declared in code cannot be deleted through the API, and is deleted once the code drops it', async () => {
    const decl = schedule({
      name: 'coded',
      cron: '0 * * * *',
      target: { service: Tick, handler: 'hit' },
    });
    h = await scheduleHarness([decl], START);
    await expect(h.ext.delete('coded')).rejects.toMatchObject({
      code: 'schedule_in_code',
      status: 409,
    });
    expect((await h.ext.list()).map((s) => s.name)).toEqual(['coded']);
    await h.stop();
    await h.start([]);
    expect(await h.ext.list()).toEqual([]);
  });
});
