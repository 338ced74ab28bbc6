import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { systemClock, type Clock } from '../src/engine/clock.js';
import { Engine, object, service, shared, workflow, type ObjectContext } from '../src/index.js';
import { openPostgresStore } from '../src/store/postgres/index.js';
import type { Store, WriteOp } from '../src/store/types.js';
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
  for (let i = 0; i < n; i++) await makeEngine(services);
  return engines;
}

async function makeEngine(
  services: ConstructorParameters<typeof Engine>[0]['services'],
  options: { clock?: Clock; lease?: string; suspendAfter?: string; store?: Store } = {},
): Promise<Engine> {
  const store = options.store ?? (await openPostgresStore({ url, schema }));
  const engine = new Engine({
    services,
    store,
    lease: options.lease ?? '2s',
    logger: () => undefined,
    ...(options.clock ? { clock: options.clock } : {}),
    ...(options.suspendAfter ? { suspendAfter: options.suspendAfter } : {}),
  });
  engines.push(engine);
  await engine.start();
  return engine;
}

/**
 * The real clock, whose timers can be held back: a process stalled (a long GC pause, a frozen
 * VM) runs none of its periodic work, heartbeats included, while requests still reach it.
 */
function stallableClock(): Clock & { stall(): void; resume(): void } {
  let stalled = false;
  let held: Array<() => void> = [];
  return {
    now: () => systemClock.now(),
    setTimer: (ms, fn) =>
      systemClock.setTimer(ms, () => {
        if (stalled) held.push(fn);
        else fn();
      }),
    stall: () => (stalled = true),
    resume: () => {
      stalled = false;
      const due = held;
      held = [];
      for (const fn of due) fn();
    },
  };
}

/** Is process `id` registered in the schema? */
async function registered(id: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query(`SELECT 1 FROM ${schema}.processes WHERE id = $1`, [id]);
    return rows.length > 0;
  } finally {
    await client.end();
  }
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

  it('refuses the writes of a stalled process another one reaped; it joins again and works on', async () => {
    const name = `Fenced_${unique()}`;
    const ran: string[] = [];
    const S = service({
      name,
      handlers: {
        go: async (ctx, n: number) => ctx.run('s', () => (ran.push(ctx.invocationId), n)),
      },
    });
    const clock = stallableClock();
    const a = await makeEngine([S], { clock, lease: '1s' });
    await makeEngine([S], { lease: '1s' });
    const before = a.processId!;
    clock.stall();
    // b reaps a once its lease has ended.
    await until(async () => !(await registered(before)), 'the stalled process reaped', 2000);
    // Still stalled, a accepts a request: the insert under its old id must not commit.
    await expect(a.send({ service: name, handler: 'go', input: 1 })).rejects.toMatchObject({
      code: 'process_fenced',
    });
    clock.resume();
    // It noticed, stopped what it ran, and joined again under a new id (it did not exit).
    await until(
      async () => a.processId !== before && (await registered(a.processId!)),
      'rejoined',
      2000,
    );
    const sent = await a.send({ service: name, handler: 'go', input: 2 });
    expect(await a.attach(sent.invocationId)).toBe(2);
  }, 20_000);

  it('takes over invocations whose owner is not registered, and frees their object key', async () => {
    const name = `Orphan_${unique()}`;
    const Obj = object({
      name,
      handlers: { add: async (ctx: ObjectContext, n: number) => n + 1 },
    });
    // Written by a process after it was reaped (as before fencing): the holder of key k is
    // running under an owner nobody registered, and another invocation waits behind it.
    const store = await openPostgresStore({ url, schema });
    const row = (id: string, status: 'running' | 'pending', seq: number) => ({
      id,
      service: name,
      handler: 'add',
      key: 'k',
      exclusive: true,
      status,
      input: seq,
      owner: 'proc_gone',
      attempt: 0,
      retryIndex: -1,
      createdAt: Date.now(),
      modifiedAt: Date.now(),
    });
    const ops: WriteOp[] = [
      { op: 'invocation.insert', row: row(`inv_orphan_a_${unique()}`, 'running', 1) },
      { op: 'invocation.insert', row: row(`inv_orphan_b_${unique()}`, 'pending', 2) },
    ];
    const ids = ops.map((o) => (o as { row: { id: string } }).row.id);
    await store.write([
      ...ops,
      { op: 'key.acquire', service: name, key: 'k', invocationId: ids[0]! },
    ]);
    await store.close();
    const [a] = await cluster([Obj], 1);
    expect(await Promise.all(ids.map((id) => a!.attach(id)))).toEqual([2, 3]);
  }, 20_000);

  it('resumes a caller whose completion raced its suspension (the wake-up reached a dropped runner)', async () => {
    const name = `Race_${unique()}`;
    const ids: string[] = [];
    const W = service({
      name,
      handlers: {
        wait: async (ctx) => {
          const { id, promise } = ctx.awakeable<string>();
          await ctx.run('publish', () => void ids.push(id));
          return `got ${await promise}`;
        },
      },
    });
    // Process a reads the journal on a wake-up slowly: the read that would deliver the
    // completion to its runner returns only after that runner suspended.
    const real = await openPostgresStore({ url, schema });
    const suspended = gate();
    let holdReads = false;
    const store = new Proxy(real, {
      get(target, prop, receiver) {
        if (prop === 'getJournal')
          return async (id: string) => {
            const journal = await target.getJournal(id);
            if (holdReads) {
              holdReads = false;
              await suspended.promise;
            }
            return journal;
          };
        if (prop === 'write')
          return (ops: WriteOp[]) => {
            const p = target.write(ops);
            const suspends = ops.some(
              (op) =>
                op.op === 'invocation.suspend' ||
                (op.op === 'invocation.update' && op.set.status === 'suspended'),
            );
            if (suspends) void p.finally(() => setTimeout(() => suspended.open(), 50));
            return p;
          };
        const value: unknown = Reflect.get(target, prop, receiver);
        return typeof value === 'function' ? (value as () => unknown).bind(target) : value;
      },
    });
    const a = await makeEngine([W], { store, suspendAfter: '400ms' });
    const b = await makeEngine([W]);
    const sent = await a.send({ service: name, handler: 'wait' });
    await until(() => ids.length === 1, 'awakeable published');
    holdReads = true;
    await b.resolveAwakeable(ids[0]!, 'hello');
    expect(await b.attach(sent.invocationId)).toBe('got hello');
  }, 20_000);
});
