import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Engine, object, shared, workflow, type ObjectContext } from '../src/index.js';
import { StoreError } from '../src/store/errors.js';
import { openSqliteStore } from '../src/store/sqlite/index.js';
import type { WriteOp } from '../src/store/types.js';
import { FakeClock } from '../src/testing/index.js';
import { holdingStore, tempDir, until } from './helpers.js';

/**
 * A handler fires and forgets a send and a promise completion, as the documented examples do
 * (`ctx.objectSendClient(Counter, 'visits').add(1)`), and the store fails those writes (SQLite:
 * disk full, a busy database). The rejection must not end the process as an unhandled
 * rejection (vitest fails the run on one), and the attempt must not go on as if the writes had
 * been recorded: it is retried, and then the send happens exactly once.
 */
const Counter = object({
  name: 'Counter',
  handlers: {
    add: async (ctx: ObjectContext, n: number) => {
      const total = ((await ctx.get<number>('total')) ?? 0) + n;
      ctx.set('total', total);
      return total;
    },
    get: shared(async (ctx) => (await ctx.get<number>('total')) ?? 0),
  },
});

const Flow = workflow({
  name: 'Flow',
  run: async (ctx) => {
    ctx.objectSendClient(Counter, 'k').add(1);
    void ctx.promise<string>('p').resolve('kept');
    return ctx.promise<string>('p').get();
  },
});

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const sends = (ops: WriteOp[]): boolean =>
  ops.some((o) => o.op === 'journal.put' && o.entry.kind === 'send');

describe('writes a handler does not await', () => {
  it('fail their attempt when the store fails them, and end no process', async () => {
    const { dir, cleanup } = tempDir('keel-dropped-');
    cleanups.push(cleanup);
    const clock = new FakeClock();
    const logs: string[] = [];
    const store = holdingStore(openSqliteStore({ path: join(dir, 'keel.db') }));
    const engine = new Engine({
      services: [Flow, Counter],
      store,
      clock,
      logger: (level, message) => logs.push(`${level} ${message}`),
    });
    cleanups.push(() => engine.stop().catch(() => undefined));
    await engine.start();

    // The send's write and every write after it (the promise's completion) are held, then fail.
    store.hold(sends);
    const { invocationId } = await engine.send({ service: 'Flow', handler: 'run', key: 'f1' });
    await until(() => store.held >= 2, 'the send and the completion to be written');
    store.fail(
      new StoreError('store_failed', 'a write on keel.db failed: database or disk is full'),
    );
    await until(
      () => logs.some((l) => l.includes('the attempt is retried')),
      'the attempt to be failed',
    );

    // The retry (after its pause) sends and completes the promise for real.
    await clock.advance('2s');
    expect(await engine.attach(invocationId)).toBe('kept');
    const total = () => engine.invoke({ service: 'Counter', handler: 'get', key: 'k' });
    await until(async () => (await total()) === 1, 'the send to run');
    // Exactly once: the failed attempt's send was never recorded, so it never ran.
    await clock.advance('2s');
    expect(await total()).toBe(1);
  });
});
