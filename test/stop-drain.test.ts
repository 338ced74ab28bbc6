import { afterEach, describe, expect, it } from 'vitest';
import { appOptionsFromEnv } from '../src/app.js';
import { Engine, service } from '../src/index.js';
import { openSqliteStore } from '../src/store/sqlite/index.js';
import { gate, harness, tempDir, until, type Harness } from './helpers.js';

/**
 * A clean stop of an embedded engine (SQLite) lets the step bodies in flight finish and journal
 * their results, and starts no other: the next start replays those results instead of running
 * the bodies again. Before, the stop dropped every runner at once, so a body in flight at a
 * deploy ran again after it.
 */
let h: Harness | undefined;

afterEach(async () => {
  await h?.close();
  h = undefined;
});

describe('a clean stop of an embedded engine', () => {
  it('journals the step bodies in flight, starts none after them, and the next start replays them', async () => {
    const runs: string[] = [];
    const inside = gate();
    const release = gate();
    const S = service({
      name: 'Drained',
      handlers: {
        go: async (ctx) => {
          const one = await ctx.run('one', async () => {
            runs.push('one');
            if (runs.length === 1) {
              inside.open();
              await release.promise;
            }
            return 1;
          });
          const two = await ctx.run('two', () => (runs.push('two'), 2));
          return one + two;
        },
      },
    });
    h = await harness({ services: [S], stopGrace: '5s' });
    const sent = await h.engine.send({ service: 'Drained', handler: 'go' });
    await inside.promise;
    const stopping = h.engine.stop();
    release.open();
    await stopping;
    // Step one finished during the stop and was journaled; step two did not start.
    expect(runs).toEqual(['one']);
    const engine = await h.restart();
    expect(await engine.attach(sent.invocationId)).toBe(3);
    expect(runs).toEqual(['one', 'two']);
  });

  it('stops after at most stopGrace (5 s) when a body does not finish; that step runs again at the next start', async () => {
    const runs: string[] = [];
    const inside = gate();
    const never = gate();
    const S = service({
      name: 'Hung',
      handlers: {
        go: async (ctx) =>
          ctx.run('one', async () => {
            runs.push('one');
            if (runs.length === 1) {
              inside.open();
              await never.promise;
            }
            return 'done';
          }),
      },
    });
    h = await harness({ services: [S], stopGrace: '5s' });
    const sent = await h.engine.send({ service: 'Hung', handler: 'go' });
    await inside.promise;
    const engine = await h.restart();
    expect(h.logs.some((l) => l.includes('still running after 5000 ms at stop (stopGrace)'))).toBe(
      true,
    );
    expect(await engine.attach(sent.invocationId)).toBe('done');
    expect(runs).toEqual(['one', 'one']);
  }, 20_000);
});

describe('a clean stop with a body an ended attempt left running', () => {
  it('waits for it, says that its step runs again, and it does', async () => {
    let slow = 0;
    let flaky = 0;
    const inside = gate();
    const release = gate();
    const Par = service({
      name: 'Par',
      handlers: {
        both: async (ctx) => {
          await ctx.all([
            ctx.run('slow', async () => {
              if (++slow === 1) {
                inside.open();
                await release.promise;
              }
              return 1;
            }),
            // Fails once: the attempt ends (a retry after 1 h of the fake clock) while `slow`
            // still runs, so `slow` is left to the next attempt here, which the stop forestalls.
            ctx.run(
              'flaky',
              () => {
                if (++flaky === 1) throw new Error('once');
                return 2;
              },
              { retry: { initialInterval: '1h' } },
            ),
          ]);
          return 'done';
        },
      },
    });
    h = await harness({ services: [Par], stopGrace: '5s' });
    const sent = await h.engine.send({ service: 'Par', handler: 'both' });
    await inside.promise;
    await until(() => flaky === 1, 'flaky failed once');
    const stopping = h.engine.stop();
    release.open();
    await stopping;
    expect(h.logs.some((l) => l.includes('step bodies of 1 ended attempt(s) were in flight'))).toBe(
      true,
    );
    const engine = await h.restart();
    await h.clock.advance(3_600_000);
    expect(await engine.attach(sent.invocationId)).toBe('done');
    expect(slow).toBe(2);
  });
});

describe('the stop grace', () => {
  it('reads KEEL_STOP_GRACE, and names it when it is not a duration', () => {
    expect(appOptionsFromEnv({ KEEL_STOP_GRACE: '2s' }).stopGrace).toBe('2s');
    expect(appOptionsFromEnv({ KEEL_STOP_GRACE: '0' }).stopGrace).toBe('0');
    expect(() => appOptionsFromEnv({ KEEL_STOP_GRACE: 'soon' })).toThrow(/KEEL_STOP_GRACE/);
  });

  it('refuses an engine whose stopGrace is not a duration', () => {
    const { dir, cleanup } = tempDir();
    try {
      expect(
        () =>
          new Engine({
            services: [],
            store: openSqliteStore({ path: `${dir}/k.db` }),
            stopGrace: 'soon',
          }),
      ).toThrow(/soon/);
    } finally {
      cleanup();
    }
  });
});
