import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Engine, service, workflow, type Context } from '../src/index.js';
import { StoreError } from '../src/store/errors.js';
import { openSqliteStore } from '../src/store/sqlite/index.js';
import type { WriteOp } from '../src/store/types.js';
import { holdingStore, tempDir, until } from './helpers.js';

/**
 * An embedded store starts a new invocation before its insert is durable (the insert rides a
 * group commit). A step body acts on the world: had it run before the insert committed, a crash
 * would lose the id it acted under, the caller (never answered) would retry, and the body would
 * act again under a new id, e.g. with a new Idempotency-Key for the provider. Step bodies of an
 * invocation whose creation a retry would repeat (a dedupe key: Idempotency-Key, workflow key,
 * bus message; or a caller's call) wait for the insert.
 */
const effects: string[] = [];
const Charger = service({
  name: 'Charger',
  handlers: {
    charge: async (ctx: Context, order: string) => {
      await ctx.run('charge', () => {
        effects.push(`${order}:${ctx.invocationId}`);
        return 'ok';
      });
      return 'charged';
    },
  },
});

const Shipment = workflow({
  name: 'Shipment',
  run: async (ctx) => {
    await ctx.run('ship', () => {
      effects.push(`ship:${ctx.invocationId}`);
      return 'ok';
    });
    return 'shipped';
  },
});

const inserts = (ops: WriteOp[]): boolean => ops.some((o) => o.op === 'invocation.insert');

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('a step body and the insert of its invocation', () => {
  it('with an Idempotency-Key the body waits until the insert is durable, and never runs when it fails', async () => {
    const { dir, cleanup } = tempDir('keel-step-insert-');
    cleanups.push(cleanup);
    effects.length = 0;
    const store = holdingStore(openSqliteStore({ path: join(dir, 'keel.db') }));
    const engine = new Engine({ services: [Charger, Shipment], store, logger: () => undefined });
    cleanups.push(() => engine.stop().catch(() => undefined));
    await engine.start();

    // Held insert: the handler may start, but the charge must not happen yet.
    store.hold(inserts);
    const first = engine.invoke({
      service: 'Charger',
      handler: 'charge',
      input: 'o1',
      idempotencyKey: 'order-1',
    });
    first.catch(() => undefined);
    await until(() => store.held >= 1, 'the insert to be written');
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    expect(effects).toEqual([]);
    // The insert fails (the crash's stand-in: the invocation never existed): no charge at all.
    store.fail(new StoreError('store_failed', 'a write on keel.db failed: disk I/O error'));
    await expect(first).rejects.toThrow(/disk I\/O error/);
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    expect(effects).toEqual([]);

    // Held, then released: the charge happens once, after the insert.
    store.hold(inserts);
    const second = engine.invoke({
      service: 'Charger',
      handler: 'charge',
      input: 'o2',
      idempotencyKey: 'order-2',
    });
    await until(() => store.held >= 1, 'the insert to be written');
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    expect(effects).toEqual([]);
    store.release();
    expect(await second).toBe('charged');
    expect(effects).toHaveLength(1);
    expect(effects[0]).toMatch(/^o2:/);

    // A workflow's run (deduplicated by its workflow key) waits the same way.
    store.hold(inserts);
    const run = engine.invoke({ service: 'Shipment', handler: 'run', key: 'w1' });
    await until(() => store.held >= 1, 'the insert to be written');
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    expect(effects).toHaveLength(1);
    store.release();
    expect(await run).toBe('shipped');
    expect(effects[1]).toMatch(/^ship:/);
  });
});
