/**
 * The event-sourced example on PostgreSQL, two engines (a cluster) on one schema: commands to
 * the same accounts through both at once stay gap-free and exact (per-key exclusivity across
 * processes), projections follow exactly, and aggregate keys that share a prefix or need
 * escaping never see each other's events.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import { definitions, extensions } from '../../../examples/event-sourcing/index.js';
import { Engine } from '../../../src/index.js';
import type { EventPage, StateView } from '../../../src/eventsourcing/index.js';
import { openPostgresStore } from '../../../src/store/postgres/index.js';
import type { Account, BalanceLine } from '../../../examples/event-sourcing/index.js';
import { until } from '../../helpers.js';

const url = inject('postgresUrl');
const schema = `keel_es_${randomBytes(4).toString('hex')}`;
let engines: Engine[] = [];

beforeAll(async () => {
  const migrate = await openPostgresStore({ url, schema });
  await migrate.close();
  engines = await Promise.all(
    [0, 1].map(async () => {
      const engine = new Engine({
        services: definitions,
        extensions: extensions(),
        store: await openPostgresStore({ url, schema }),
        lease: '5s',
        logger: () => undefined,
      });
      await engine.start();
      return engine;
    }),
  );
});

afterAll(async () => {
  for (const e of engines) await e.stop().catch(() => undefined);
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await client.end();
});

const call = <T>(i: number, key: string, handler: string, input?: unknown) =>
  engines[i]!.invoke({ service: 'BankAccount', handler, key, input }) as Promise<T>;
const project = <T>(name: string, handler: string, input?: unknown) =>
  engines[0]!.invoke({
    service: 'BankAccountProjections',
    handler,
    key: name,
    input,
  }) as Promise<T>;

it('two processes appending to the same accounts at once: gap-free, exact, projected once', async () => {
  const keys = ['pg-1', 'pg-2'];
  for (const key of keys) await call(0, key, 'open', { owner: key });
  const deposits = Array.from({ length: 30 }, (_, i) => ({ key: keys[i % 2]!, amount: i + 1 }));
  await Promise.all(deposits.map((d, i) => call(i % 2, d.key, 'deposit', { amount: d.amount })));
  for (const key of keys) {
    const page = await call<EventPage>(1, key, 'events', { limit: 1000 });
    expect(page.events.map((e) => e.seq)).toEqual(Array.from({ length: 16 }, (_, i) => i + 1));
    const balance = deposits.filter((d) => d.key === key).reduce((s, d) => s + d.amount, 0);
    expect((await call<StateView<Account>>(0, key, 'state')).state.balance).toBe(balance);
    await until(
      async () =>
        (await project<{ view: BalanceLine }>('balances', 'view', key)).view.lastSeq === 16,
      `balances of ${key}`,
    );
    expect((await project<{ view: BalanceLine }>('balances', 'view', key)).view).toMatchObject({
      balance,
      transactions: 15,
    });
  }
  await until(
    async () => (await project<{ view: { events: number } }>('summary', 'view')).view.events === 32,
    'summary',
  );
  const summary = await project<{ view: unknown }>('summary', 'view');
  // Applied once each: the incrementally kept summary is what a rebuild from scratch computes.
  expect((await project<{ events: number }>('summary', 'rebuild')).events).toBe(32);
  expect(await project<{ view: unknown }>('summary', 'view')).toEqual(summary);
});

it('keys sharing a prefix or needing escapes have streams of their own', async () => {
  const keys = ['a', 'a/b', 'a b', 'a%20b', 'a_b', 'ä'];
  for (const [i, key] of keys.entries()) {
    await call(0, key, 'open', { owner: key });
    await call(1, key, 'deposit', { amount: 10 + i });
  }
  for (const [i, key] of keys.entries()) {
    const page = await call<EventPage>(0, key, 'events');
    expect(page.events.map((e) => [e.seq, e.type])).toEqual([
      [1, 'AccountOpened'],
      [2, 'MoneyDeposited'],
    ]);
    expect(page.events[0]!.data).toEqual({ owner: key });
    expect((await call<StateView<Account>>(1, key, 'stateAt', { seq: 2 })).state.balance).toBe(
      10 + i,
    );
  }
});
