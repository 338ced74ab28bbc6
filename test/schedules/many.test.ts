import { afterEach, describe, expect, it } from 'vitest';
import { invocationsOf, iso, scheduleHarness, type ScheduleHarness } from './helpers.js';

/**
 * Many schedules due at the same tick, as the scheduler handles them in bulk: their rows read
 * page by page (not one by one), their sends started together, their `lastTick`s written in one
 * write per page. Each still fires each tick once, and a row changed behind the scheduler's
 * back (as another process sharing the store would change it) is obeyed at the tick.
 */

let h: ScheduleHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const START = Date.UTC(2026, 0, 5, 0, 0, 5);
const SCOPE = 'keel.schedules';
const name = (i: number) => `s${String(i).padStart(3, '0')}`;
/** Ticks of `*\/10 * * * * *` in (START, START + 60 s]. */
const TICKS = [10, 20, 30, 40, 50, 60].map((s) => START - 5_000 + s * 1000);

describe('300 schedules due at the same ticks', () => {
  it('fire every tick once each; paused, deleted or marked behind their back: not', async () => {
    h = await scheduleHarness([], START);
    const { ext, engine } = h;
    const body = (n: string, cron: string) => ({
      name: n,
      cron,
      target: { service: 'Tick', handler: 'hit' },
      missed: 'once',
    });
    await Promise.all(
      Array.from({ length: 300 }, (_, i) => ext.create(body(name(i), '*/10 * * * * *'))),
    );
    // A few on another pattern: due alone, so read one by one.
    for (const n of ['m1', 'm2', 'm3']) await ext.create(body(n, '0 * * * * *'));

    // Behind the scheduler's back: s007 paused, s123 deleted, and s050 marked as fired at the
    // first tick already (another process got there first).
    const store = engine.store;
    const row = async (n: string) => (await store.getKv(SCOPE, n))!;
    const s007 = await row('s007');
    const s050 = await row('s050');
    await store.write([
      {
        op: 'kv.put',
        scope: SCOPE,
        key: 's007',
        value: { ...(s007.value as object), paused: true },
      },
      { op: 'kv.delete', scope: SCOPE, key: 's123' },
      {
        op: 'kv.put',
        scope: SCOPE,
        key: 's050',
        value: { ...(s050.value as object), lastTick: TICKS[0] },
      },
    ]);

    await h.clock.advance('60s');

    const runs = await invocationsOf(engine);
    const keys = runs.map((r) => r.idempotencyKey!);
    expect(new Set(keys).size).toBe(keys.length);
    const expected: string[] = [];
    for (let i = 0; i < 300; i++) {
      const n = name(i);
      if (n === 's007' || n === 's123') continue;
      for (const t of TICKS)
        if (n !== 's050' || t !== TICKS[0]) expected.push(`schedule:${n}:${iso(t)}`);
    }
    for (const n of ['m1', 'm2', 'm3']) expected.push(`schedule:${n}:${iso(TICKS[5]!)}`);
    expect([...keys].sort()).toEqual(expected.sort());
    // Each fired at its tick.
    for (const r of runs)
      expect(r.createdAt, r.idempotencyKey).toBe(r.idempotencyKey!.split(':').slice(2).join(':'));

    const views = await ext.list();
    expect(views).toHaveLength(302);
    for (const v of views) {
      if (v.name === 's007') expect(v.paused).toBe(true);
      else expect(v.lastTick, v.name).toBe(iso(TICKS[5]!));
    }
    expect(views.find((v) => v.name === 's007')!.lastTick).toBeUndefined();
  });

  it('a restart fires none of them again, and the next tick once each', async () => {
    h = await scheduleHarness([], START);
    await Promise.all(
      Array.from({ length: 300 }, (_, i) =>
        h!.ext.create({
          name: name(i),
          cron: '*/10 * * * * *',
          target: { service: 'Tick', handler: 'hit' },
        }),
      ),
    );
    await h.clock.advance('10s'); // 00:00:15: the tick of :10
    expect(await invocationsOf(h.engine)).toHaveLength(300);
    await h.stop();
    await h.start();
    await h.clock.advance('4s'); // 00:00:19: nothing due
    expect(await invocationsOf(h.engine)).toHaveLength(300);
    await h.clock.advance('1s'); // the tick of :20
    const runs = await invocationsOf(h.engine);
    expect(runs).toHaveLength(600);
    expect(new Set(runs.map((r) => r.idempotencyKey)).size).toBe(600);
  });
});
