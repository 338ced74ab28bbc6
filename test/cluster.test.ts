import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { Engine, object, service, shared, workflow, type ObjectContext } from '../src/index.js';
import { openPostgresStore } from '../src/store/postgres/index.js';
import { crash } from '../src/testing/index.js';
import { gate, until } from './helpers.js';

/**
 * Two engines (as two processes would) share one PostgreSQL schema: any of them accepts a
 * request and answers with a result the other computed; object keys, workflow keys and
 * idempotency keys hold across both; completions reach the owner through the store.
 */
const url = inject('postgresUrl');
const schema = `keel_cluster_${randomBytes(4).toString('hex')}`;
let engines: Engine[] = [];

beforeAll(async () => {
  // Migrate once up front so the engines' stores open an existing schema.
  const store = await openPostgresStore({ url, schema });
  await store.close();
});

afterEach(async () => {
  for (const e of engines) await e.stop().catch(() => undefined);
  engines = [];
});

afterAll(async () => {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await client.end();
});

async function cluster(services: Parameters<typeof makeEngine>[0], n = 2): Promise<Engine[]> {
  for (let i = 0; i < n; i++) engines.push(await makeEngine(services));
  return engines;
}

async function makeEngine(
  services: ConstructorParameters<typeof Engine>[0]['services'],
): Promise<Engine> {
  const store = await openPostgresStore({ url, schema });
  const engine = new Engine({ services, store, lease: '2s', logger: () => undefined });
  await engine.start();
  return engine;
}

const unique = (): string => randomBytes(4).toString('hex');

describe('a cluster of engines on one PostgreSQL schema', () => {
  it('answers on one engine with the result of an invocation another one ran', async () => {
    const release = gate();
    const S = service({
      name: 'Slow',
      handlers: {
        go: async (ctx, n: number) => ctx.run('wait', async () => (await release.promise, n * 2)),
      },
    });
    const [a, b] = await cluster([S]);
    const sent = await a!.send({ service: 'Slow', handler: 'go', input: 21 });
    const attached = b!.attach(sent.invocationId);
    release.open();
    expect(await attached).toBe(42);
  });

  it('runs one exclusive handler per object key at a time across engines, with exact totals', async () => {
    const track = { active: 0, max: 0 };
    const name = `Counter_${unique()}`;
    const Counter = object({
      name,
      handlers: {
        add: async (ctx: ObjectContext, n: number) => {
          track.active++;
          track.max = Math.max(track.max, track.active);
          const total = ((await ctx.get<number>('total')) ?? 0) + n;
          await ctx.run('slow', () => new Promise((r) => setTimeout(r, 2)));
          ctx.set('total', total);
          track.active--;
          return total;
        },
        get: shared(async (ctx) => (await ctx.get<number>('total')) ?? 0),
      },
    });
    const [a, b] = await cluster([Counter]);
    await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        (i % 2 ? a! : b!).invoke({ service: name, handler: 'add', key: 'k', input: 1 }),
      ),
    );
    expect(track.max).toBe(1);
    expect(await a!.invoke({ service: name, handler: 'get', key: 'k' })).toBe(30);
  });

  it('runs a workflow once per key and deduplicates idempotency keys across engines', async () => {
    let runs = 0;
    let charges = 0;
    const name = `Wf_${unique()}`;
    const Wf = workflow({
      name,
      run: async (ctx, n: number) => {
        runs++;
        await ctx.run('step', () => new Promise((r) => setTimeout(r, 5)));
        return n + 1;
      },
    });
    const Pay = service({
      name: `Pay_${unique()}`,
      handlers: { charge: async (ctx) => ctx.run('c', () => ++charges) },
    });
    const [a, b] = await cluster([Wf, Pay]);
    const results = await Promise.all([
      a!.invoke({ service: name, handler: 'run', key: 'w', input: 1 }),
      b!.invoke({ service: name, handler: 'run', key: 'w', input: 1 }),
      a!.invoke({ service: name, handler: 'run', key: 'w', input: 1 }),
    ]);
    expect(results).toEqual([2, 2, 2]);
    expect(runs).toBe(1);
    const paid = await Promise.all([
      a!.invoke({ service: Pay.name, handler: 'charge', idempotencyKey: 'order-9' }),
      b!.invoke({ service: Pay.name, handler: 'charge', idempotencyKey: 'order-9' }),
    ]);
    expect(paid[0]).toBe(paid[1]);
    expect(charges).toBe(1);
  });

  it('wakes the owner when another engine completes what it waits for', async () => {
    const ids: string[] = [];
    const name = `Waiter_${unique()}`;
    const W = service({
      name,
      handlers: {
        wait: async (ctx) => {
          const { id, promise } = ctx.awakeable<string>();
          await ctx.run('publish', () => {
            ids.push(id);
          });
          return `got ${await promise}`;
        },
      },
    });
    const [a, b] = await cluster([W]);
    const sent = await a!.send({ service: name, handler: 'wait' });
    await until(() => ids.length === 1, 'awakeable published');
    await b!.resolveAwakeable(ids[0]!, 'hello');
    expect(await b!.attach(sent.invocationId)).toBe('got hello');
  });

  it('takes over the invocations of an engine that stopped answering', async () => {
    let after = 0;
    const name = `Sleeper_${unique()}`;
    const S = service({
      name,
      handlers: {
        nap: async (ctx) => {
          await ctx.run('before', () => 1);
          await ctx.sleep('500ms');
          await ctx.run('after', () => ++after);
          return 'woke';
        },
      },
    });
    const [a, b] = await cluster([S]);
    const sent = await a!.send({ service: name, handler: 'nap' });
    // Stop a without giving up its lease, as a crash would: b takes over once the lease ends.
    await crash(a!);
    expect(await b!.attach(sent.invocationId)).toBe('woke');
    expect(after).toBe(1);
  }, 20_000);
});
