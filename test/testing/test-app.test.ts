import { existsSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { object, service, workflow, type ObjectContext } from '../../src/index.js';
import { testApp, TestAppError, type TestApp } from '../../src/testing/index.js';

const DAY = 86_400_000;
const HOUR = 3_600_000;

/** What the handlers below did, with the fake clock's time (a test-only side channel). */
let events: Array<[string, number]> = [];

const Tally = object({
  name: 'Tally',
  handlers: {
    add: async (ctx: ObjectContext, n: number) => {
      const total = ((await ctx.get<number>('total')) ?? 0) + n;
      ctx.set('total', total);
      return total;
    },
  },
});

/**
 * A long cascade: many steps (each a store round trip), a call, and a one-way send from the
 * handler whose invocation runs on its own after this one has finished.
 */
const Chain = service({
  name: 'Chain',
  handlers: {
    go: async (ctx, key: string) => {
      let sum = 0;
      for (let i = 1; i <= 50; i++) sum += await ctx.run(`step ${i}`, () => i);
      await ctx.objectClient(Tally, key).add(sum);
      ctx.objectSendClient(Tally, key).add(10);
      return 'sent';
    },
  },
});

const Sleeper = workflow({
  name: 'Sleeper',
  run: async (ctx, days: number[]) => {
    for (const d of days) {
      await ctx.sleep(d * DAY);
      await ctx.run(`woke after ${d}d`, () => events.push(['woke', d]));
    }
    return days.reduce((a, b) => a + b, 0);
  },
});

let t: TestApp | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
  events = [];
});

describe('testApp: idle', () => {
  it('waits until a send and everything it started has run', async () => {
    t = await testApp({ services: [Chain, Tally] });
    const id = await t.serviceSend(Chain).go('k');
    await t.idle();
    // Both the call and the handler's own one-way send have run, without awaiting anything.
    expect(await t.state(Tally, 'k')).toEqual({ total: 1275 + 10 });
    expect(await t.output(id)).toEqual({ ready: true, outcome: { output: 'sent' } });
    const tallies = await t.invocations({ service: Tally });
    expect(tallies.map((i) => i.status)).toEqual(['completed', 'completed']);
    const journal = (await t.journal(id)).map((e) => `${e.kind} ${e.name}`);
    expect(journal).toHaveLength(52);
    expect(journal.slice(-3)).toEqual(['run step 50', 'call Tally/k/add', 'send Tally/k/add']);
  });

  it('leaves a delayed send for later: advance runs it when its time comes', async () => {
    t = await testApp({ services: [Tally] });
    const id = await t.objectSend(Tally, 'later', { delay: '1h' }).add(5);
    await t.idle();
    expect(await t.output(id)).toEqual({ ready: false, status: 'scheduled' });
    await t.advance('59m');
    expect(await t.output(id)).toEqual({ ready: false, status: 'scheduled' });
    await t.advance('1m');
    expect(await t.output(id)).toEqual({ ready: true, outcome: { output: 5 } });
  });

  it('names the invocation when a step awaits something that never settles', async () => {
    const Stuck = service({
      name: 'Stuck',
      handlers: { wait: async (ctx) => ctx.run('forever', () => new Promise<void>(() => {})) },
    });
    t = await testApp({ services: [Stuck], idleTimeout: '200ms' });
    const id = await t.serviceSend(Stuck).wait();
    const err = await t.idle().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(TestAppError);
    expect(err).toMatchObject({ code: 'idle_stalled' });
    expect((err as Error).message).toContain(`${id} (Stuck/wait) still running`);
  });
});

describe('testApp: time', () => {
  it('advance fires a retry backoff and a 30-day sleep in time order, each at its time', async () => {
    let attempts = 0;
    const Flaky = service({
      name: 'Flaky',
      handlers: {
        call: async (ctx) =>
          ctx.run(
            'flaky call',
            () => {
              events.push(['attempt', t!.clock.now() - start]);
              if (++attempts < 3) throw new Error('503 from upstream');
              return 'ok';
            },
            {
              retry: {
                initialInterval: '1h',
                factor: 2,
                maxInterval: '1d',
                jitter: 0,
                maxAttempts: 5,
              },
            },
          ),
      },
    });
    const Month = workflow({
      name: 'Month',
      run: async (ctx) => {
        await ctx.sleep('30d');
        await ctx.run('renew', () => events.push(['renewed', t!.clock.now() - start]));
        return 'renewed';
      },
    });
    t = await testApp({ services: [Flaky, Month] });
    const start = t.clock.now();
    const month = await t.workflowSend(Month, 'sub-1').run();
    const flaky = await t.serviceSend(Flaky).call();
    await t.advance('30d');
    expect(events).toEqual([
      ['attempt', 0],
      ['attempt', 1 * HOUR], // first backoff: 1h
      ['attempt', 3 * HOUR], // second: 2h later
      ['renewed', 30 * DAY],
    ]);
    expect(await t.attach(flaky)).toBe('ok');
    expect(await t.attach(month)).toBe('renewed');
    expect(t.clock.now() - start).toBe(30 * DAY);
  });

  it('runUntilIdle with skipTime completes a workflow that sleeps three times', async () => {
    t = await testApp({ services: [Sleeper] });
    const start = t.clock.now();
    const id = await t.workflowSend(Sleeper, 'abc').run([1, 7, 30]);

    // Without skipTime, only what can run now runs.
    await t.runUntilIdle();
    expect(await t.output(id)).toMatchObject({ ready: false });
    expect(events).toEqual([]);
    expect(t.clock.now()).toBe(start);

    await t.runUntilIdle({ skipTime: true });
    expect(await t.output(id)).toEqual({ ready: true, outcome: { output: 38 } });
    // Time jumped from timer to timer and stopped at the last one.
    expect(t.clock.now() - start).toBe(38 * DAY);
    expect(events).toHaveLength(3);
  });

  it('runUntilIdle stops at its limit and says what still waits', async () => {
    t = await testApp({ services: [Sleeper] });
    const id = await t.workflowSend(Sleeper, 'forever').run([1, 1000]);
    const err = await t.runUntilIdle({ skipTime: true, limit: '30d' }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code: 'time_limit' });
    expect((err as Error).message).toContain(`Still waiting: ${id} Sleeper/forever/run (running)`);
    expect(events).toHaveLength(1); // the first day did pass
  });
});

describe('testApp: admin operations and lifecycle', () => {
  it('cancels, kills, restarts, pauses and resumes', async () => {
    t = await testApp({ services: [Sleeper] });
    const cancelled = await t.workflowSend(Sleeper, 'c').run([5]);
    const killed = await t.workflowSend(Sleeper, 'k').run([5]);
    const paused = await t.workflowSend(Sleeper, 'p').run([5]);
    await t.idle();

    await t.cancel(cancelled);
    await t.kill(killed);
    await t.idle();
    expect(await t.output(cancelled)).toMatchObject({
      ready: true,
      outcome: { error: { code: 'cancelled' } },
    });
    expect(await t.output(killed)).toMatchObject({
      ready: true,
      outcome: { error: { code: 'killed' } },
    });
    const again = await t.restart(killed);

    await t.pause(paused);
    await t.advance('5d');
    expect(await t.output(again.id)).toEqual({ ready: true, outcome: { output: 5 } });
    expect(await t.output(paused)).toEqual({ ready: false, status: 'paused' });
    await t.resume(paused);
    await t.idle();
    expect(await t.output(paused)).toEqual({ ready: true, outcome: { output: 5 } });
  });

  it('keeps its SQLite file in the temporary directory until close, which removes it', async () => {
    t = await testApp({ services: [Tally] });
    await t.object(Tally, 'x').add(1);
    const { path } = t;
    expect(existsSync(path)).toBe(true);
    await t.close();
    expect(existsSync(path)).toBe(false);
    await expect(t.idle()).rejects.toMatchObject({ code: 'closed' });
    await t.close(); // twice is fine
  });

  it('closes at the end of an `await using` block', async () => {
    let path = '';
    {
      await using app = await testApp({ services: [Tally] });
      path = app.path;
      expect(await app.object(Tally, 'y').add(2)).toBe(2);
      expect(existsSync(path)).toBe(true);
    }
    expect(existsSync(path)).toBe(false);
  });
});
