import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { systemClock, type Clock } from '../src/engine/clock.js';
import { Engine, object, service, shared, workflow, type ObjectContext } from '../src/index.js';
import { openPostgresStore } from '../src/store/postgres/index.js';
import type { Store, WriteOp } from '../src/store/types.js';
import { crash } from '../src/testing/index.js';
import { gate, until } from './helpers.js';
import { tcpProxy, type TcpProxy } from './tcp-proxy.js';

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

let proxies: TcpProxy[] = [];

afterEach(async () => {
  // Connections back first, so a process cut off can give up its lease and close its pool.
  for (const p of proxies) await p.start().catch(() => undefined);
  for (const e of engines) await e.stop().catch(() => undefined);
  engines = [];
  for (const p of proxies) await p.close();
  proxies = [];
});

/** A store reaching PostgreSQL through a proxy the test can cut (see `tcpProxy`). */
async function proxiedStore(): Promise<{ store: Store; proxy: TcpProxy }> {
  const server = new URL(url);
  const proxy = await tcpProxy({ host: server.hostname, port: Number(server.port || 5432) });
  proxies.push(proxy);
  const through = new URL(url);
  through.hostname = '127.0.0.1';
  through.port = String(proxy.port);
  return { store: await openPostgresStore({ url: through.toString(), schema }), proxy };
}

/** Invocations whose handler waits between its steps in process a (step one is durable). */
const waiting = new Set<string>();

/** One execution of a step body: which process ran it, from when to when (one clock). */
interface Execution {
  process: 'a' | 'b';
  step: string;
  start: number;
  end: number;
}

/**
 * A service whose handler runs step `one`, then waits outside the journal for `between` (on
 * the first attempt only), then runs step `two`: each process gets its own copy (the same
 * name), so every execution of a step body is recorded with the process that ran it.
 */
function stepsService(
  name: string,
  process: 'a' | 'b',
  log: Execution[],
  between: Promise<void>,
): ReturnType<typeof service> {
  const body = (step: string) => async (): Promise<string> => {
    const start = performance.now();
    await new Promise((r) => setTimeout(r, 5));
    log.push({ process, step, start, end: performance.now() });
    return step;
  };
  return service({
    name,
    handlers: {
      go: async (ctx) => {
        await ctx.run('one', body('one'));
        if (process === 'a') {
          waiting.add(ctx.invocationId); // step one is durable
          await between;
        }
        await ctx.run('two', body('two'));
        return 'done';
      },
    },
  });
}

/** Asserts that no two step bodies of different processes ran at the same time. */
function expectNoOverlap(log: Execution[]): void {
  for (const x of log)
    for (const y of log)
      if (x.process !== y.process && x.start < y.start)
        expect(x.end, `${x.process}/${x.step} overlaps ${y.process}/${y.step}`).toBeLessThanOrEqual(
          y.start,
        );
}

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

  it('starts no step body in a process whose heartbeats fail; another adopts it after the lease', async () => {
    const name = `SelfFence_${unique()}`;
    const log: Execution[] = [];
    const between = gate();
    const { store, proxy } = await proxiedStore();
    const a = await makeEngine([stepsService(name, 'a', log, between.promise)], {
      store,
      lease: '1s',
    });
    const b = await makeEngine([stepsService(name, 'b', log, between.promise)], { lease: '1s' });
    const sent = await a.send({ service: name, handler: 'go' });
    await until(() => waiting.has(sent.invocationId), 'step one done in a');
    const before = a.processId!;
    // a's heartbeats fail from now on (connection refused): it never learns it was reaped.
    await proxy.stop();
    expect(await b.attach(sent.invocationId)).toBe('done');
    expect(await registered(before)).toBe(false);
    // a's handler goes on after its lease was lost: it must not run step two.
    between.open();
    await new Promise((r) => setTimeout(r, 50));
    expect(log.map((e) => `${e.process}/${e.step}`)).toEqual(['a/one', 'b/two']);
    expectNoOverlap(log);
    // The store answers again: a joins under a new id and works on.
    await proxy.start();
    await until(
      async () => a.processId !== before && (await registered(a.processId!)),
      'rejoined',
      3000,
    );
  }, 20_000);

  it('starts no step body in a stalled process once its lease is in doubt, even before it notices', async () => {
    const name = `StallStep_${unique()}`;
    const log: Execution[] = [];
    const between = gate();
    const clock = stallableClock();
    const a = await makeEngine([stepsService(name, 'a', log, between.promise)], {
      clock,
      lease: '1s',
    });
    const b = await makeEngine([stepsService(name, 'b', log, between.promise)], { lease: '1s' });
    const sent = await a.send({ service: name, handler: 'go' });
    await until(() => waiting.has(sent.invocationId), 'step one done in a');
    const before = a.processId!;
    // Stalled: none of a's periodic work runs (no heartbeat, no watchdog), but its handler does.
    clock.stall();
    expect(await b.attach(sent.invocationId)).toBe('done');
    between.open();
    await new Promise((r) => setTimeout(r, 50));
    expect(log.map((e) => `${e.process}/${e.step}`)).toEqual(['a/one', 'b/two']);
    expectNoOverlap(log);
    clock.resume();
    await until(
      async () => a.processId !== before && (await registered(a.processId!)),
      'rejoined',
      3000,
    );
  }, 20_000);

  it('never resumes an invocation that finished while the sweep read its row (stale running row)', async () => {
    const name = `Stale_${unique()}`;
    const track = { active: 0, max: 0, entered: [0, 0, 0] };
    const gates = [gate(), gate(), gate()];
    const Counter = object({
      name,
      handlers: {
        // Entering and leaving are not journaled: a replay of a finished invocation shows here.
        add: async (ctx: ObjectContext, n: number) => {
          track.entered[n]!++;
          track.active++;
          track.max = Math.max(track.max, track.active);
          await ctx.run('wait', () => gates[n]!.promise);
          track.active--;
          return n;
        },
      },
    });
    // The sweep's read of this process's runnable rows is answered late: it sees the first
    // invocation still running, and returns only after that one finished and handed its key on.
    const real = await openPostgresStore({ url, schema });
    let watch: string | undefined;
    const caught = gate();
    const answer = gate();
    const journalReads: string[] = [];
    const store = new Proxy(real, {
      get(target, prop, receiver) {
        if (prop === 'listRunnable')
          return async (owner?: string) => {
            const rows = await target.listRunnable(owner);
            if (watch && rows.some((r) => r.id === watch && r.status === 'running')) {
              watch = undefined;
              caught.open();
              await answer.promise;
            }
            return rows;
          };
        if (prop === 'getJournal')
          return async (id: string) => {
            const journal = await target.getJournal(id);
            journalReads.push(id);
            return journal;
          };
        const value: unknown = Reflect.get(target, prop, receiver);
        return typeof value === 'function' ? (value as () => unknown).bind(target) : value;
      },
    });
    const a = await makeEngine([Counter], { store });
    const first = await a.send({ service: name, handler: 'add', key: 'k', input: 1 });
    await until(() => track.entered[1] === 1, 'the first invocation running');
    const second = await a.send({ service: name, handler: 'add', key: 'k', input: 2 });
    watch = first.invocationId;
    await caught.promise;
    gates[1]!.open();
    expect(await a.attach(first.invocationId)).toBe(1);
    await until(() => track.entered[2] === 1, 'the key handed on to the second invocation');
    answer.open();
    // A resume of the stale row reads its journal; a replay it started would have entered the
    // handler by the time a few more turns of I/O have passed.
    await until(() => journalReads.includes(first.invocationId), 'the stale row acted on');
    await new Promise((r) => setTimeout(r, 100));
    expect(track.entered[1]).toBe(1);
    expect(track.max).toBe(1);
    gates[2]!.open();
    expect(await a.attach(second.invocationId)).toBe(2);
    expect(track.entered).toEqual([0, 1, 1]);
    expect(track.max).toBe(1);
  }, 20_000);
});
