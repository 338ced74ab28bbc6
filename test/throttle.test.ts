import { afterEach, describe, expect, it } from 'vitest';
import { service, ThrottledError, type Context } from '../src/index.js';
import type { FakeClock } from '../src/testing/index.js';
import { settle } from '../src/testing/index.js';
import { harness, until, type Harness } from './helpers.js';

/**
 * Throttle (engine API, SQLite, fake clock): at most `limit` starts per `period` per key, over
 * any window of `period`; `delay` schedules the rest at the next free slot (nothing lost),
 * `drop` refuses them with `ThrottledError` and its `retryAfterMs`.
 */
let starts: Array<{ v: number; at: number }> = [];
let clock: FakeClock;

const Fanout = service({
  name: 'Fanout',
  handlers: {
    // Five throttled sends from inside a handler: journaled, delayed to free slots.
    spread: async (ctx: Context) => {
      const ids: string[] = [];
      for (let v = 0; v < 5; v++)
        ids.push(
          await ctx
            .serviceSendClient(Sync, { throttle: { key: 'fan', limit: 2, period: '1s' } })
            .run(100 + v).invocationId,
        );
      return ids;
    },
  },
});

const Sync = service({
  name: 'Sync',
  handlers: {
    run: async (_ctx: Context, v: number) => {
      starts.push({ v, at: clock.now() });
      return v;
    },
    other: async (_ctx: Context, v: number) => v,
  },
});

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

async function setup(): Promise<Harness> {
  starts = [];
  h = await harness({ services: [Sync, Fanout] });
  clock = h.clock;
  return h;
}

/** The most starts within any window of `periodMs` (a window is [t, t + periodMs)). */
function mostInWindow(times: number[], periodMs: number): number {
  const sorted = [...times].sort((a, b) => a - b);
  let most = 0;
  for (let i = 0; i < sorted.length; i++) {
    let n = 0;
    for (let j = i; j < sorted.length && sorted[j]! < sorted[i]! + periodMs; j++) n++;
    most = Math.max(most, n);
  }
  return most;
}

describe('throttle', () => {
  it('delay: 10 sends with limit 3 per second start 3, 3, 3 and 1, a second apart', async () => {
    const h = await setup();
    const t0 = clock.now();
    const sent = [];
    for (let v = 0; v < 10; v++) {
      sent.push(
        await h.engine.send({
          service: 'Sync',
          handler: 'run',
          input: v,
          throttle: { key: 'tenant-a', limit: 3, period: '1s' },
        }),
      );
    }
    expect(sent.map((s) => s.status)).toEqual([
      ...Array(3).fill('running'),
      ...Array(7).fill('scheduled'),
    ]);
    const planned = await Promise.all(
      sent.map(async (s) => (await h.engine.getInvocation(s.invocationId))?.nextAttemptAt),
    );
    expect(planned.slice(3).map((t) => Date.parse(t!) - t0)).toEqual([
      1000, 1000, 1000, 2000, 2000, 2000, 3000,
    ]);
    await until(() => starts.length === 3, 'the immediate starts');
    // Second by second: the clock stands still while the starts due at that second run.
    for (const [second, total] of [
      [1, 6],
      [2, 9],
      [3, 10],
    ] as const) {
      await h.clock.advance('1s');
      await until(() => starts.length === total, `the starts due at second ${second}`);
    }
    // Starts due at the same time run in any order among themselves.
    const byTime = [...starts].sort((a, b) => a.at - b.at || a.v - b.v);
    expect(byTime.map((s) => s.at - t0)).toEqual([
      0, 0, 0, 1000, 1000, 1000, 2000, 2000, 2000, 3000,
    ]);
    expect(byTime.map((s) => s.v)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(
      mostInWindow(
        starts.map((s) => s.at),
        1000,
      ),
    ).toBe(3);
  });

  it('delay counts over a sliding window, not calendar windows', async () => {
    const h = await setup();
    const t0 = clock.now();
    const send = (v: number) =>
      h.engine.send({
        service: 'Sync',
        handler: 'run',
        input: v,
        throttle: { key: 'k', limit: 2, period: '1s' },
      });
    // Each immediate start runs before the clock moves on (so it runs at its send's time).
    const started = (n: number) => until(() => starts.length === n, `start ${n}`);
    await send(0);
    await started(1);
    await h.clock.advance('900ms');
    await send(1); // t = 900: a second start within [0, 1000): allowed
    await started(2);
    await h.clock.advance('200ms');
    await send(2); // t = 1100: the window (100, 1100] holds one start (900): allowed
    await send(3); // t = 1100: two in (100, 1100] now: next free at 900 + 1000 = 1900
    await started(3);
    await h.clock.advance('799ms');
    for (let i = 0; i < 20; i++) await settle();
    expect(starts).toHaveLength(3);
    await h.clock.advance('1ms');
    await until(() => starts.length === 4, 'the fourth to start at 1900');
    expect(starts.map((s) => s.at - t0)).toEqual([0, 900, 1100, 1900]);
    expect(
      mostInWindow(
        starts.map((s) => s.at),
        1000,
      ),
    ).toBe(2);
  });

  it('drop: beyond the limit a send is refused with retryAfterMs; the next window accepts again', async () => {
    const h = await setup();
    const outcomes: Array<string | number> = [];
    const send = (v: number) =>
      h.engine
        .send({
          service: 'Sync',
          handler: 'run',
          input: v,
          throttle: { key: 'k', limit: 2, period: '1s', mode: 'drop' },
        })
        .then(
          (r) => r.status,
          (err: unknown) => {
            expect(err).toBeInstanceOf(ThrottledError);
            expect((err as ThrottledError).code).toBe('throttled');
            return (err as ThrottledError).retryAfterMs;
          },
        );
    for (let v = 0; v < 5; v++) outcomes.push(await send(v));
    expect(outcomes).toEqual(['running', 'running', 1000, 1000, 1000]);
    await h.clock.advance('400ms');
    expect(await send(5)).toBe(600);
    await h.clock.advance('600ms');
    expect(await send(6)).toBe('running');
    expect(await send(7)).toBe('running');
    expect(await send(8)).toBe(1000);
    await until(() => starts.length === 4, 'the accepted sends to run');
    await h.clock.advance('5s');
    for (let i = 0; i < 20; i++) await settle();
    expect(starts.map((s) => s.v)).toEqual([0, 1, 6, 7]);
    // Nothing was stored for the dropped sends.
    expect((await h.engine.listInvocations({ service: 'Sync' })).invocations).toHaveLength(4);
  });

  it('counts per key and per handler; a repeated idempotency key uses no slot', async () => {
    const h = await setup();
    const send = (handler: string, key: string, idempotencyKey?: string) =>
      h.engine.send({
        service: 'Sync',
        handler,
        input: 1,
        idempotencyKey,
        throttle: { key, limit: 1, period: '1h', mode: 'drop' },
      });
    const first = await send('run', 'a', 'once');
    expect((await send('run', 'a', 'once')).invocationId).toBe(first.invocationId);
    await expect(send('run', 'a')).rejects.toBeInstanceOf(ThrottledError);
    await expect(send('run', 'b')).resolves.toMatchObject({ existing: false });
    await expect(send('other', 'a')).resolves.toMatchObject({ existing: false });
  });

  it('delay works for sends inside a handler, each journaled with its invocation', async () => {
    const h = await setup();
    const t0 = clock.now();
    const ids = (await h.engine.invoke({ service: 'Fanout', handler: 'spread' })) as string[];
    expect(new Set(ids).size).toBe(5);
    const planned = await Promise.all(
      ids.map(async (id) => {
        const info = await h.engine.getInvocation(id);
        return info?.nextAttemptAt === undefined ? 0 : Date.parse(info.nextAttemptAt) - t0;
      }),
    );
    expect(planned).toEqual([0, 0, 1000, 1000, 2000]);
    const fanouts = await h.engine.listInvocations({ service: 'Fanout' });
    const journal = await h.engine.getJournal(fanouts.invocations[0]!.id);
    expect(journal.filter((e) => e.kind === 'send').map((e) => e.calleeId)).toEqual(ids);
  });
});
