import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, afterEach, describe, expect, inject, it } from 'vitest';
import { Engine, TerminalError, workflow } from '../src/index.js';
import { openPostgresStore } from '../src/store/postgres/index.js';
import { harness, type Harness } from './helpers.js';

/**
 * A workflow's `run` executes once per key, but a run that failed before its first journal
 * entry did nothing durable: it releases the key, so the next valid `run` executes (and
 * nobody can poison a predictable key such as an order id with a bad request). A run that
 * failed after a journal entry keeps the key. Checked on SQLite (the embedded engine looks the
 * key up) and on PostgreSQL (the shared store's insert answers a taken key).
 */
let runs = 0;
let charges = 0;

const Order = workflow({
  name: 'KeyedOrder',
  run: async (ctx, input: { amount?: number; failAfterCharge?: boolean; wait?: boolean }) => {
    runs++;
    if (input.wait) return ctx.promise<string>('go').get();
    // Validation inside the handler, before any context call: nothing is journaled.
    if (typeof input.amount !== 'number')
      throw new TerminalError('amount must be a number', { code: 'invalid_request', status: 400 });
    const amount = input.amount;
    await ctx.run('charge', () => ++charges && amount);
    if (input.failAfterCharge)
      throw new TerminalError('shipping failed', { code: 'shipping_failed', status: 409 });
    return { charged: amount };
  },
  handlers: {
    go: async (ctx, value: string) => {
      await ctx.promise<string>('go').resolve(value);
    },
  },
});

const url = inject('postgresUrl');
const schemas: string[] = [];
let h: Harness | undefined;
let pgEngine: Engine | undefined;

afterEach(async () => {
  await h?.close();
  h = undefined;
  await pgEngine?.stop().catch(() => undefined);
  pgEngine = undefined;
  runs = 0;
  charges = 0;
});

afterAll(async () => {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  for (const s of schemas) await client.query(`DROP SCHEMA IF EXISTS ${s} CASCADE`);
  await client.end();
});

const stores: Array<[string, () => Promise<Engine>]> = [
  [
    'SQLite',
    async () => {
      h = await harness({ services: [Order] });
      return h.engine;
    },
  ],
  [
    'PostgreSQL',
    async () => {
      const schema = `keel_wfkey_${randomBytes(4).toString('hex')}`;
      schemas.push(schema);
      const store = await openPostgresStore({ url, schema });
      pgEngine = new Engine({ services: [Order], store, logger: () => undefined });
      await pgEngine.start();
      return pgEngine;
    },
  ],
];

describe.each(stores)('the workflow key on %s', (_name, open) => {
  it('is released by a run that failed before its first journal entry', async () => {
    const engine = await open();
    const bad = await engine.send({ service: 'KeyedOrder', handler: 'run', key: 'o-1', input: {} });
    await expect(engine.attach(bad.invocationId)).rejects.toMatchObject({
      status: 400,
      code: 'invalid_request',
    });

    const good = await engine.send({
      service: 'KeyedOrder',
      handler: 'run',
      key: 'o-1',
      input: { amount: 5 },
    });
    expect(good.existing).toBe(false);
    expect(good.invocationId).not.toBe(bad.invocationId);
    expect(await engine.attach(good.invocationId)).toEqual({ charged: 5 });
    expect(charges).toBe(1);

    // The failed invocation stays visible under its own id.
    expect(await engine.getInvocation(bad.invocationId)).toMatchObject({
      status: 'failed',
      error: { code: 'invalid_request' },
    });
    // The run that executed holds the key from now on: run once.
    const again = await engine.send({
      service: 'KeyedOrder',
      handler: 'run',
      key: 'o-1',
      input: { amount: 7 },
    });
    expect(again).toMatchObject({ invocationId: good.invocationId, existing: true });
    expect(await engine.attach(again.invocationId)).toEqual({ charged: 5 });
    expect(runs).toBe(2);
  });

  it('is kept by a run that failed after a journal entry', async () => {
    const engine = await open();
    const first = await engine.send({
      service: 'KeyedOrder',
      handler: 'run',
      key: 'o-2',
      input: { amount: 3, failAfterCharge: true },
    });
    await expect(engine.attach(first.invocationId)).rejects.toMatchObject({
      code: 'shipping_failed',
    });
    const second = await engine.send({
      service: 'KeyedOrder',
      handler: 'run',
      key: 'o-2',
      input: { amount: 3 },
    });
    expect(second).toMatchObject({ invocationId: first.invocationId, existing: true });
    await expect(engine.attach(second.invocationId)).rejects.toMatchObject({
      code: 'shipping_failed',
    });
    expect(runs).toBe(1);
    expect(charges).toBe(1);
  });

  it('is the only lock a run holds: a waiting run takes no object key', async () => {
    const engine = await open();
    const sent = await engine.send({
      service: 'KeyedOrder',
      handler: 'run',
      key: 'o-3',
      input: { wait: true },
    });
    // Its run-once key alone keeps it unique; an object lock would only cost memory (embedded)
    // or store round trips (shared) for every waiting workflow.
    const holders = await engine.store.listKeyHolders();
    expect(holders.filter((h) => h.service === 'KeyedOrder')).toEqual([]);
    const again = await engine.send({
      service: 'KeyedOrder',
      handler: 'run',
      key: 'o-3',
      input: { wait: true },
    });
    expect(again).toMatchObject({ invocationId: sent.invocationId, existing: true });
    await engine.invoke({ service: 'KeyedOrder', handler: 'go', key: 'o-3', input: 'ready' });
    expect(await engine.attach(sent.invocationId)).toBe('ready');
    expect(runs).toBe(1);
  });
});
