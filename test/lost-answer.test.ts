/**
 * Issue 11, found by the PostgreSQL write-outage test: a timer's completion committed, then the
 * connection dropped before the answer came back. The engine fired the timer again, the store
 * found the entry complete already, and nobody handed the completion to the handler waiting for
 * it in memory: the invocation stayed `running` forever. The same runner, busy when its suspend
 * timer fired, never armed it again, so it never suspended (which would have replayed it).
 *
 * The outage is a store wrapper that lets one write commit and then reports it failed, as a
 * dropped connection does; the store beneath is a real SQLite file.
 */
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Engine, service } from '../src/index.js';
import { StoreError } from '../src/store/errors.js';
import { openSqliteStore } from '../src/store/sqlite/index.js';
import type { OpResult, Store, WriteOp } from '../src/store/types.js';
import { FakeClock } from '../src/testing/index.js';
import { tempDir } from './helpers.js';

let cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

/** Commits the first write `which` matches, then rejects it as an outage would. */
function losingAnswers(store: Store, which: (ops: WriteOp[]) => boolean): Store & { lost: number } {
  let lost = 0;
  const write = async (ops: WriteOp[]): Promise<OpResult[]> => {
    if (lost > 0 || !which(ops)) return store.write(ops);
    await store.write(ops);
    lost++;
    throw new StoreError('store_unavailable', 'connection terminated after the commit (test)');
  };
  return new Proxy(store, {
    get(target, prop) {
      if (prop === 'write') return write;
      if (prop === 'lost') return lost;
      const v = Reflect.get(target, prop) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  }) as Store & { lost: number };
}

const completesTimer = (ops: WriteOp[]): boolean =>
  ops.some((o) => o.op === 'journal.complete' && o.entry.kind === 'sleep');

describe('a completion whose answer an outage lost', () => {
  it('still reaches the handler waiting for it in memory', async () => {
    const { dir, cleanup } = tempDir('keel-lost-answer-');
    cleanups.push(cleanup);
    const clock = new FakeClock();
    const store = losingAnswers(openSqliteStore({ path: join(dir, 'keel.db') }), completesTimer);
    const Napper = service({
      name: 'Napper',
      handlers: {
        nap: async (ctx, n: number) => {
          await ctx.sleep('5s');
          return n + 1;
        },
      },
    });
    // Suspension (which would replay it from the journal) is an hour away: only the completion
    // itself can wake the handler in the time the test allows.
    const engine = new Engine({
      services: [Napper],
      store,
      clock,
      suspendAfter: '1h',
      logger: () => undefined,
    });
    cleanups.push(() => engine.stop());
    await engine.start();
    const result = engine.invoke({ service: 'Napper', handler: 'nap', input: 1 });
    let settled = false;
    void result.then(() => (settled = true));
    for (let i = 0; i < 10 && !settled; i++) await clock.advance('1s');
    expect(store.lost, 'the outage never happened').toBe(1);
    expect(settled, 'the handler never got its timer').toBe(true);
    expect(await result).toBe(2);
  });
});
