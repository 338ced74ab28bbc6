/**
 * Issue 11, found by the PostgreSQL torture run: a process whose lease fell in doubt refused
 * to start a step body (it fences itself first) and dropped the runner, marking the invocation
 * as having a status write in flight. No write followed, so the mark stayed: once the process
 * joined again under a new id and took the invocation over, every resume waited for that write,
 * and the invocation stayed `running` forever.
 *
 * The lease falls in doubt through the clock: its monotonic time jumps ahead, as it does for a
 * process that stalls (a long GC pause, a stopped VM).
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { kernelOf } from '../src/engine/kernel.js';
import { Engine, object, service, systemClock, type Clock, type Definition } from '../src/index.js';
import { openPostgresStore } from '../src/store/postgres/index.js';
import { StoreError } from '../src/store/errors.js';
import type { ClusterMessage, Store, WriteOp } from '../src/store/types.js';
import { gate, until } from './helpers.js';

const url = inject('postgresUrl');
let cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  cleanups = [];
});

describe('a step refused because the lease fell in doubt (PostgreSQL)', () => {
  it('runs once the process has joined again and taken its invocation over', async () => {
    let stalled = 0;
    const clock: Clock = {
      now: () => systemClock.now(),
      setTimer: (ms, fn) => systemClock.setTimer(ms, fn),
      monotonic: () => systemClock.monotonic!() + stalled,
    };
    const before = gate();
    let bodies = 0;
    const Job = service({
      name: 'Job',
      handlers: {
        run: async (ctx) => {
          await before.promise; // outside the journal: the test stalls the process meanwhile
          return ctx.run('work', () => ++bodies);
        },
      },
    });
    const schema = `keel_fencestep_${randomBytes(4).toString('hex')}`;
    const store = await openPostgresStore({ url, schema });
    const engine = new Engine({
      services: [Job],
      store,
      clock,
      lease: '1s',
      logger: () => undefined,
    });
    cleanups.push(async () => {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await client.end();
    });
    cleanups.push(() => engine.stop());
    await engine.start();
    const { invocationId } = await engine.send({ service: 'Job', handler: 'run' });
    await until(
      async () => (await engine.getInvocation(invocationId))?.status === 'running',
      'the start',
    );
    // The process stalls past its lease, then wakes right where the step body would start.
    stalled = 10_000;
    before.open(undefined);
    // It joins again under a new id, reaps its old one once that lease ends, and runs it.
    await expect(engine.attach(invocationId)).resolves.toBe(1);
    expect(bodies).toBe(1);
  }, 30_000);
});

describe('a result delivered after the lease fell in doubt (PostgreSQL)', () => {
  // Found by the 30-minute PostgreSQL torture run under heavy load: a step's commit answered
  // after its process had fenced itself, and the dropped attempt went on running handler code
  // (outside the journal) next to the process that adopted the invocation.
  it('is not observed by the handler: the code after the step runs only in the adopting attempt', async () => {
    let stalled = 0;
    const clock: Clock = {
      now: () => systemClock.now(),
      setTimer: (ms, fn) => systemClock.setTimer(ms, fn),
      monotonic: () => systemClock.monotonic!() + stalled,
    };
    let bodies = 0;
    let bodyProcess = '';
    const afterProcesses: string[] = [];
    const schema = `keel_fencestep_${randomBytes(4).toString('hex')}`;
    const store = await openPostgresStore({ url, schema });
    const Job = service({
      name: 'Job',
      handlers: {
        run: async (ctx) => {
          const v = await ctx.run('work', () => {
            bodyProcess = engine.processId ?? '';
            // The process stalls past its lease while the step's result is being committed.
            stalled = 10_000;
            return ++bodies;
          });
          afterProcesses.push(engine.processId ?? '');
          return v;
        },
      },
    });
    const engine: Engine = new Engine({
      services: [Job],
      store,
      clock,
      lease: '1s',
      logger: () => undefined,
    });
    cleanups.push(async () => {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await client.end();
    });
    cleanups.push(() => engine.stop());
    await engine.start();
    const { invocationId } = await engine.send({ service: 'Job', handler: 'run' });
    await expect(engine.attach(invocationId)).resolves.toBe(1);
    expect(bodies).toBe(1);
    // Never under the id whose lease was in doubt: only the attempt that adopted it went on.
    expect(afterProcesses.length).toBeGreaterThan(0);
    expect(afterProcesses).not.toContain(bodyProcess);
  }, 30_000);
});

describe('a state read answered after the lease fell in doubt (PostgreSQL)', () => {
  // The same as a late step result, for `ctx.get`: the read is not a journaled wait, and the
  // handler went on after it with only an "abandoned?" check, so a process waking from a stall
  // during the read ran handler code next to the process adopting the invocation.
  it('is not observed by the handler: the code after the read runs only in the adopting attempt', async () => {
    let readerProcess = '';
    const afterProcesses: string[] = [];
    let stallOnce: (() => void) | undefined;
    const Tally = object({
      name: 'Tally',
      handlers: {
        add: async (ctx) => {
          const n = (await ctx.get<number>('n')) ?? 0;
          afterProcesses.push(engine.processId ?? '');
          ctx.set('n', n + 1);
          return n + 1;
        },
      },
    });
    const { engine, stall } = await stallableEngine([Tally], undefined, (store) =>
      wrapMethod(store, 'getState', async (call) => {
        const v = await call();
        if (stallOnce) {
          readerProcess = engine.processId ?? '';
          stallOnce();
          stallOnce = undefined;
        }
        return v;
      }),
    );
    stallOnce = () => stall(10_000);
    const { invocationId } = await engine.send({ service: 'Tally', handler: 'add', key: 't' });
    await expect(engine.attach(invocationId)).resolves.toBe(1);
    expect(readerProcess).not.toBe('');
    expect(afterProcesses.length).toBeGreaterThan(0);
    expect(afterProcesses).not.toContain(readerProcess);
  }, 30_000);
});

/** `store` with `method` passed through `around` (which calls the real one with `call`). */
function wrapMethod(
  store: Store,
  method: keyof Store,
  around: (call: () => Promise<unknown>) => Promise<unknown>,
): Store {
  return new Proxy(store, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (typeof v !== 'function') return v;
      const f = (v as (...a: unknown[]) => unknown).bind(target);
      if (prop !== method) return f;
      return (...args: unknown[]) => around(() => f(...args) as Promise<unknown>);
    },
  });
}

/** A PostgreSQL engine whose monotonic clock the test can push ahead (a stall), and its schema. */
async function stallableEngine(
  services: Definition[],
  logger: (level: string, message: string) => void = () => undefined,
  wrap: (store: Store) => Store = (s) => s,
): Promise<{ engine: Engine; stall: (ms: number) => void }> {
  let stalled = 0;
  const clock: Clock = {
    now: () => systemClock.now(),
    setTimer: (ms, fn) => systemClock.setTimer(ms, fn),
    monotonic: () => systemClock.monotonic!() + stalled,
  };
  const schema = `keel_fencestep_${randomBytes(4).toString('hex')}`;
  const store = await openPostgresStore({ url, schema });
  const engine = new Engine({ services, store: wrap(store), clock, lease: '1s', logger });
  cleanups.push(async () => {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await client.end();
  });
  cleanups.push(() => engine.stop());
  await engine.start();
  return { engine, stall: (ms) => (stalled += ms) };
}

describe('joining again after the lease fell in doubt (PostgreSQL)', () => {
  // Found by the torture harness's stalls (seed long-pg-10): the id changed at once, but its
  // registration was queued only after an await, so an invocation admitted meanwhile was
  // inserted owned by an id not yet registered. Any reaper adopts such rows as orphans: the
  // process that admitted it ran it too (a flow's send made twice, a counter add run in two
  // processes at once).
  it('registers the new id before anything can be written under it', async () => {
    const writes: WriteOp[][] = [];
    const Job = service({ name: 'Job', handlers: { run: async () => 'ok' } });
    const { engine, stall } = await stallableEngine(
      [Job],
      undefined,
      (store) =>
        new Proxy(store, {
          get(target, prop, receiver) {
            if (prop === 'write')
              return (ops: WriteOp[]) => {
                writes.push(ops);
                return target.write(ops);
              };
            const v = Reflect.get(target, prop, receiver) as unknown;
            return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
          },
        }),
    );
    const old = engine.processId;
    stall(10_000);
    // The lease check fences the process (as a watchdog tick or a step's start would), and an
    // invocation arrives in the same turn of the event loop.
    const cluster = (kernelOf(engine).own as unknown as { cluster: { checkLease(): boolean } })
      .cluster;
    expect(cluster.checkLease()).toBe(false);
    const fresh = engine.processId;
    expect(fresh).not.toBe(old);
    const sent = engine.send({ service: 'Job', handler: 'run' });
    const { invocationId } = await sent;
    await expect(engine.attach(invocationId)).resolves.toBe('ok');
    const registered = writes.findIndex((ops) =>
      ops.some((op) => op.op === 'process.register' && op.id === fresh),
    );
    const inserted = writes.findIndex((ops) =>
      ops.some((op) => op.op === 'invocation.insert' && op.row.owner === fresh),
    );
    expect(registered).toBeGreaterThanOrEqual(0);
    expect(inserted).toBeGreaterThan(registered);
  }, 30_000);

  it('starts no handler while the lease is in doubt: its code before the first step runs only after the fence', async () => {
    const events: string[] = [];
    const Job = service({
      name: 'Job',
      handlers: {
        run: async (ctx) => {
          events.push(`prologue ${engine.processId}`);
          return ctx.run('work', () => 'done');
        },
      },
    });
    const { engine, stall } = await stallableEngine([Job], (_level, message) => {
      if (message.includes('may have lost its lease')) events.push('fenced');
    });
    const before = engine.processId;
    // The process stalls, then an invocation arrives before any lease check ran.
    stall(10_000);
    const { invocationId } = await engine.send({ service: 'Job', handler: 'run' });
    await expect(engine.attach(invocationId)).resolves.toBe('done');
    // Admitted under the id in doubt, it runs only once the process fenced itself (joined
    // again and adopted it), never as the process whose lease was in doubt.
    expect(events[0]).toBe('fenced');
    expect(events).not.toContain(`prologue ${before}`);
    expect(events.some((e) => e.startsWith('prologue '))).toBe(true);
  }, 30_000);
});

describe('joining again while the store refuses the registration (PostgreSQL)', () => {
  // The 30-minute PostgreSQL torture run after the fix above: the registration, now queued at
  // once, failed (a connection reset) while the old subscription was still being closed, and
  // its rejection, awaited only after that, ended the process.
  it('does not end the process: it joins again once the store answers', async () => {
    let refuse = false;
    let unlistenDelay = 0;
    const Job = service({ name: 'Job', handlers: { run: async () => 'ok' } });
    const { engine, stall } = await stallableEngine(
      [Job],
      undefined,
      (store) =>
        new Proxy(store, {
          get(target, prop, receiver) {
            if (prop === 'write')
              return (ops: WriteOp[]) =>
                refuse && ops.some((op) => op.op === 'process.register')
                  ? Promise.reject(
                      new StoreError('store_unavailable', 'the write failed (test: reset)'),
                    )
                  : target.write(ops);
            if (prop === 'listen')
              return async (id: string, on: (m: ClusterMessage) => void) => {
                const unlisten = await target.listen(id, on);
                return async () => {
                  await new Promise((r) => setTimeout(r, unlistenDelay));
                  await unlisten();
                };
              };
            const v = Reflect.get(target, prop, receiver) as unknown;
            return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
          },
        }),
    );
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    cleanups.push(async () => void process.off('unhandledRejection', onUnhandled));
    refuse = true;
    unlistenDelay = 200;
    stall(10_000);
    const cluster = (kernelOf(engine).own as unknown as { cluster: { checkLease(): boolean } })
      .cluster;
    expect(cluster.checkLease()).toBe(false);
    await new Promise((r) => setTimeout(r, 400));
    refuse = false;
    unlistenDelay = 0;
    // The next heartbeat finds the id unregistered and joins again; until then a request is
    // refused (retry later), as a client would retry; then work runs.
    let invocationId: string | undefined;
    for (let i = 0; i < 50 && invocationId === undefined; i++) {
      invocationId = await engine.send({ service: 'Job', handler: 'run' }).then(
        (r) => r.invocationId,
        () => new Promise<undefined>((r) => setTimeout(() => r(undefined), 100)),
      );
    }
    expect(invocationId).toBeDefined();
    await expect(engine.attach(invocationId!)).resolves.toBe('ok');
    expect(unhandled).toEqual([]);
  }, 30_000);
});
