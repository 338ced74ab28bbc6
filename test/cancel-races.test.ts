/**
 * Issue 11: an operator's cancel or kill decided on a status it had read, then wrote its
 * outcome unconditionally. On PostgreSQL the key hand-off is the store's: an invocation queued
 * behind its object key was cancelled while the holder finished and handed it the key, so it
 * was marked cancelled (and its key released to the next one) while it ran: two invocations
 * inside one key at once, and the run's own finish later overwrote the cancellation. A cancel
 * that wakes a suspended invocation set a finished one `running` again; a kill overwrote an
 * outcome recorded meanwhile. Each now checks the status in the same write
 * (`invocation.expect`), and reads the invocation again when it changed.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import pg from 'pg';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { Engine, object } from '../src/index.js';
import { openPostgresStore } from '../src/store/postgres/index.js';
import { openSqliteStore } from '../src/store/sqlite/index.js';
import type { OpResult, Store, WriteOp } from '../src/store/types.js';
import { gate, tempDir, until } from './helpers.js';

const url = inject('postgresUrl');
let cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  cleanups = [];
});

/** Holds the writes `hold` matches until `release`; every other write goes through. */
function slowWrites(store: Store): Store & {
  hold(which: (ops: WriteOp[]) => boolean): void;
  release(): void;
  held: number;
} {
  let which: ((ops: WriteOp[]) => boolean) | undefined;
  let held: Array<() => void> = [];
  const extra = {
    write(ops: WriteOp[]): Promise<OpResult[]> {
      if (!which?.(ops)) return store.write(ops);
      return new Promise<void>((r) => held.push(r)).then(() => store.write(ops));
    },
    hold(w: (ops: WriteOp[]) => boolean) {
      which = w;
    },
    release() {
      which = undefined;
      for (const r of held) r();
      held = [];
    },
    get held() {
      return held.length;
    },
  };
  return new Proxy(store, {
    get(target, prop) {
      if (prop in extra) return Reflect.get(extra, prop) as unknown;
      const v = Reflect.get(target, prop) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  }) as ReturnType<typeof slowWrites>;
}

async function pgEngine(
  services: ConstructorParameters<typeof Engine>[0]['services'],
): Promise<{ engine: Engine; store: ReturnType<typeof slowWrites> }> {
  const schema = `keel_cancelrace_${randomBytes(4).toString('hex')}`;
  const store = slowWrites(await openPostgresStore({ url, schema }));
  const engine = new Engine({
    services,
    store,
    lease: '3s',
    suspendAfter: '10ms',
    logger: () => undefined,
  });
  cleanups.push(async () => {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await client.end();
  });
  cleanups.push(() => {
    store.release();
    return engine.stop();
  });
  await engine.start();
  return { engine, store };
}

/** The write that records an invocation's end with the error code `code`. */
const ends =
  (id: string, code: string) =>
  (ops: WriteOp[]): boolean =>
    ops.some(
      (o) =>
        o.op === 'invocation.update' &&
        o.id === id &&
        o.set.status === 'failed' &&
        o.set.error?.code === code,
    );

describe('an operator cancel or kill racing a change of the invocation (PostgreSQL)', () => {
  it('never ends a queued invocation the key was just handed to while it runs', async () => {
    const gates = new Map<string, ReturnType<typeof gate>>();
    let inside = 0;
    let mostInside = 0;
    const Box = object({
      name: 'Box',
      handlers: {
        put: async (ctx, tag: string) => {
          inside++;
          mostInside = Math.max(mostInside, inside);
          try {
            await ctx.run('hold', () => gates.get(tag)?.promise);
            return await ctx.run('after', () => tag);
          } finally {
            inside--;
          }
        },
      },
    });
    for (const tag of ['a', 'b', 'c']) gates.set(tag, gate());
    const { engine, store } = await pgEngine([Box]);
    const send = (tag: string) =>
      engine.send({ service: 'Box', handler: 'put', key: 'k', input: tag });
    const a = await send('a');
    const b = await send('b');
    const c = await send('c');
    await until(() => inside === 1, 'a to hold the key');
    // The cancel of b read it pending; its write is slow.
    store.hold(ends(b.invocationId, 'cancelled'));
    const cancelled = engine.cancel(b.invocationId);
    await until(() => store.held > 0, "the cancel's write to be queued");
    // Meanwhile a finishes and the store hands the key to b, which starts.
    gates.get('a')!.open(undefined);
    await expect(engine.attach(a.invocationId)).resolves.toBe('a');
    await until(() => inside === 1, 'b to enter the key');
    store.release();
    // The cancel now reaches b as a running invocation: it ends at its next await, cancelled.
    await expect(cancelled).resolves.toMatchObject({ id: b.invocationId });
    gates.get('b')!.open(undefined);
    await expect(engine.attach(b.invocationId)).rejects.toMatchObject({ code: 'cancelled' });
    gates.get('c')!.open(undefined);
    await expect(engine.attach(c.invocationId)).resolves.toBe('c');
    expect(mostInside, 'two invocations were inside one key at once').toBe(1);
  }, 30_000);

  it('never ends a queued invocation whose key the write just before the cancel handed to it', async () => {
    // Found by the PostgreSQL torture run (cancelled flows whose calls queued on one key): the
    // holder's finishing write handed the key to b and left b's row pending; the cancel of b,
    // decided on that pending row, landed right after it, before b's start was recorded,
    // ended b (which the expect allowed) and handed the key on to c while b ran.
    const gates = new Map<string, ReturnType<typeof gate>>();
    let inside = 0;
    let mostInside = 0;
    const Box = object({
      name: 'Box',
      handlers: {
        put: async (ctx, tag: string) => {
          inside++;
          mostInside = Math.max(mostInside, inside);
          try {
            await ctx.run('hold', () => gates.get(tag)?.promise);
            return await ctx.run('after', () => tag);
          } finally {
            inside--;
          }
        },
      },
    });
    for (const tag of ['a', 'b', 'c']) gates.set(tag, gate());
    const { engine, store } = await pgEngine([Box]);
    const send = (tag: string) =>
      engine.send({ service: 'Box', handler: 'put', key: 'k', input: tag });
    const a = await send('a');
    const b = await send('b');
    const c = await send('c');
    await until(() => inside === 1, 'a to hold the key');
    // a's finishing write (which hands the key to b) and the cancel of b, decided while b was
    // still queued, go to the store one right after the other.
    store.hold(
      (ops) =>
        ops.some(
          (o) =>
            o.op === 'invocation.update' && o.id === a.invocationId && o.set.status === 'completed',
        ) || ends(b.invocationId, 'cancelled')(ops),
    );
    gates.get('a')!.open(undefined);
    await until(() => store.held === 1, "a's finishing write");
    const cancelled = engine.cancel(b.invocationId);
    await until(() => store.held === 2, "the cancel's write");
    store.release();
    await expect(engine.attach(a.invocationId)).resolves.toBe('a');
    // b got the key and runs: the cancel reaches it as a running invocation, at its next await.
    await expect(cancelled).resolves.toMatchObject({ id: b.invocationId });
    gates.get('b')!.open(undefined);
    await expect(engine.attach(b.invocationId)).rejects.toMatchObject({ code: 'cancelled' });
    gates.get('c')!.open(undefined);
    await expect(engine.attach(c.invocationId)).resolves.toBe('c');
    expect(mostInside, 'two invocations were inside one key at once').toBe(1);
  }, 30_000);

  it('never overwrites an outcome recorded after a kill read the invocation', async () => {
    const Nap = object({
      name: 'Nap',
      handlers: {
        take: async (ctx) => {
          await ctx.sleep('300ms');
          return 'rested';
        },
      },
    });
    const { engine, store } = await pgEngine([Nap]);
    const { invocationId } = await engine.send({ service: 'Nap', handler: 'take', key: 'n' });
    await until(
      async () => (await engine.getInvocation(invocationId))?.status === 'suspended',
      'the invocation to suspend',
    );
    // The kill read it suspended; its write is slow, and the timer wakes it meanwhile.
    store.hold(ends(invocationId, 'killed'));
    const killed = engine.kill(invocationId);
    await until(() => store.held > 0, "the kill's write to be queued");
    await expect(engine.attach(invocationId)).resolves.toBe('rested');
    store.release();
    await expect(killed).rejects.toMatchObject({ code: 'already_finished' });
    expect(await engine.getInvocation(invocationId)).toMatchObject({ status: 'completed' });
    await expect(engine.attach(invocationId)).resolves.toBe('rested');
  }, 30_000);
});

describe('an operator kill decided while the key is handed to the invocation (SQLite)', () => {
  it('stops the attempt that started while the kill read the invocation', async () => {
    // The kill read b (queued, not running here) from the store; before the read answered,
    // the holder finished and handed b the key, and b started. The kill decided on the row it
    // had read: it recorded b killed but left b's attempt running, which then ran its next
    // step and overwrote the kill with its own result.
    const gates = new Map<string, ReturnType<typeof gate>>();
    const after: string[] = [];
    const Box = object({
      name: 'Box',
      handlers: {
        put: async (ctx, tag: string) => {
          await ctx.run('hold', () => gates.get(tag)?.promise);
          return ctx.run('after', () => {
            after.push(tag);
            return tag;
          });
        },
      },
    });
    for (const tag of ['a', 'b']) gates.set(tag, gate());
    const { dir, cleanup } = tempDir();
    const base = openSqliteStore({ path: join(dir, 'keel.db') });
    let holdRead: string | undefined;
    const read = gate();
    let readHeld = false;
    const store = new Proxy(base, {
      get(target, prop) {
        if (prop === 'getInvocation')
          return async (id: string) => {
            if (id === holdRead) {
              holdRead = undefined;
              readHeld = true;
              await read.promise;
            }
            return target.getInvocation(id);
          };
        const v = Reflect.get(target, prop) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
    const engine = new Engine({ services: [Box], store, logger: () => undefined });
    cleanups.push(async () => {
      await engine.stop();
      cleanup();
    });
    await engine.start();
    const send = (tag: string) =>
      engine.send({ service: 'Box', handler: 'put', key: 'k', input: tag });
    const a = await send('a');
    const b = await send('b');
    await until(
      async () => (await engine.getInvocation(a.invocationId))?.status === 'running',
      'a to run',
    );
    holdRead = b.invocationId;
    const killed = engine.kill(b.invocationId);
    await until(() => readHeld, "the kill's read of b");
    gates.get('a')!.open(undefined);
    await expect(engine.attach(a.invocationId)).resolves.toBe('a');
    await until(
      async () => (await engine.getInvocation(b.invocationId))?.status === 'running',
      'b to start',
    );
    read.open(undefined);
    await expect(killed).resolves.toMatchObject({ id: b.invocationId, status: 'failed' });
    gates.get('b')!.open(undefined);
    await expect(engine.attach(b.invocationId)).rejects.toMatchObject({ code: 'killed' });
    // Its attempt was stopped: the step after the one it was in never ran, the kill stands.
    const c = await send('c');
    await expect(engine.attach(c.invocationId)).resolves.toBe('c');
    expect(after).toEqual(['a', 'c']);
    expect(await engine.getInvocation(b.invocationId)).toMatchObject({ status: 'failed' });
  }, 30_000);
});
