/**
 * Found by the torture harness (seed 9af6d9eb, test/torture/dflow.ts): a step body in flight
 * when its attempt ended ran again in the same process, with no crash.
 *
 * A retryable failure of one step ends the attempt (src/engine/outcome.ts, `retry` →
 * `abandon`) while other step bodies may still be running; the next attempt replayed the
 * journal, found no result for them, and ran them again — alongside the first executions. In
 * flows this was certain, not a rare race: a step that outlasts its `timeout` keeps running
 * (docs/flows.md), and compensations are retried by default. DESIGN.md lets a step's body run
 * again only after a crash: now the next attempt takes over the execution the ended attempt
 * left (`Kernel.strayBodies`), whether it is still running or has finished meanwhile.
 */
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Engine, service, type Context } from '../../src/index.js';
import { createFlows, runFlow } from '../../src/flows/index.js';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import { tempDir } from '../helpers.js';

const pause = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function engineWith(options: Partial<ConstructorParameters<typeof Engine>[0]>) {
  const { dir, cleanup } = tempDir('keel-timeout-rerun-');
  const engine = new Engine({
    services: [],
    store: openSqliteStore({ path: join(dir, 'k.db') }),
    logger: () => undefined,
    ...options,
  });
  cleanups.push(cleanup, () => engine.stop());
  await engine.start();
  return engine;
}

describe('a step body in flight when its attempt is retried', () => {
  it('flows: a timed-out step runs once, though its compensation fails once and is retried', async () => {
    let charges = 0;
    let refundAttempts = 0;
    const engine = await engineWith({
      extensions: [
        createFlows({
          definitions: [
            {
              name: 'charge-with-timeout',
              steps: [
                {
                  id: 'charge',
                  type: 'transform',
                  function: 'charge',
                  timeout: '100ms',
                  compensate: { id: 'refund', type: 'transform', function: 'refund' },
                },
              ],
            },
          ],
          transforms: {
            // A payment provider that answers late: the flow stops waiting after 100 ms.
            charge: async () => {
              charges++;
              await pause(1500);
              return 'charged';
            },
            // Fails its first attempt (compensations are retried until they succeed).
            refund: () => {
              if (++refundAttempts === 1) throw new Error('refund service busy');
              return 'refunded';
            },
          },
        }),
      ],
    });
    const r = await runFlow(engine, 'charge-with-timeout', {});
    expect(r.status).toBe('compensated');
    expect(r.errors[0]).toMatchObject({ step: 'charge', code: 'timeout' });
    expect(refundAttempts).toBe(2);
    await pause(1600); // every execution of `charge` has ended
    // Observed: 2 (the retry of `refund` replayed the journal and ran `charge` again).
    expect(charges).toBe(1);
  });

  it('engine: a parallel step runs once, though its sibling fails once and is retried', async () => {
    let slow = 0;
    let flaky = 0;
    const Par = service({
      name: 'Par',
      handlers: {
        both: async (ctx: Context) => {
          await ctx.all([
            ctx.run('slow', async () => {
              slow++;
              await pause(500);
              return 1;
            }),
            ctx.run(
              'flaky',
              () => {
                if (++flaky === 1) throw new Error('once');
                return 2;
              },
              { retry: { initialInterval: '10ms' } },
            ),
          ]);
          return 'done';
        },
      },
    });
    const engine = await engineWith({ services: [Par] });
    expect(await engine.invoke({ service: 'Par', handler: 'both', input: null })).toBe('done');
    await pause(600);
    expect(flaky).toBe(2);
    // Observed: 2 (the attempt was retried while `slow` ran; the replay ran it again).
    expect(slow).toBe(1);
  });

  it("engine: a parallel step that finished during its sibling's backoff is not run again", async () => {
    let slow = 0;
    let flaky = 0;
    const Par = service({
      name: 'Par',
      handlers: {
        both: async (ctx: Context) => {
          const [a, b] = await ctx.all([
            ctx.run('slow', async () => {
              slow++;
              await pause(100);
              return slow;
            }),
            ctx.run(
              'flaky',
              () => {
                if (++flaky === 1) throw new Error('once');
                return 2;
              },
              // The retry starts well after `slow` has finished.
              { retry: { initialInterval: '600ms', maxInterval: '600ms' } },
            ),
          ]);
          return [a, b];
        },
      },
    });
    const engine = await engineWith({ services: [Par] });
    expect(await engine.invoke({ service: 'Par', handler: 'both', input: null })).toEqual([1, 2]);
    expect(flaky).toBe(2);
    expect(slow).toBe(1);
  });
});
