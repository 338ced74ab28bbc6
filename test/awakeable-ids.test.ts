/**
 * Issue 11, "awakeable ids are guessable capabilities": ids were `awk_<invocation id>_<index>`,
 * so the holder of one could complete the invocation's other awakeables by trying indexes.
 * Ids are now 130 bits of HMAC under a per-store secret, recorded in the journal, and reveal no
 * invocation id. Being derived from the entry (not drawn afresh), an id handed out by an attempt
 * that crashed before its awakeable was durable is handed out again by the retry.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import pg from 'pg';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { Engine, workflow } from '../src/index.js';
import { openPostgresStore } from '../src/store/postgres/index.js';
import { openSqliteStore } from '../src/store/sqlite/index.js';
import type { WriteOp } from '../src/store/types.js';
import { crash, FakeClock } from '../src/testing/index.js';
import { harness, holdingStore, tempDir, until, type Harness } from './helpers.js';

let h: Harness | undefined;
let engines: Engine[] = [];
let dirs: Array<() => void> = [];
afterEach(async () => {
  await h?.close();
  h = undefined;
  for (const e of engines) await e.stop().catch(() => undefined);
  engines = [];
  for (const cleanup of dirs) cleanup();
  dirs = [];
});

/** Every id each attempt of a key saw, in order (a replay appends the ids it hands out again). */
const seen = new Map<string, string[][]>();

/** Two awakeables: a restaurant's callback and a driver's confirmation, as in DeliveryOrchestrator. */
const TwoCallbacks = workflow({
  name: 'TwoCallbacks',
  run: async (ctx) => {
    const kitchen = ctx.awakeable<string>();
    const driver = ctx.awakeable<string>();
    const attempts = seen.get(ctx.key) ?? [];
    attempts.push([kitchen.id, driver.id]);
    seen.set(ctx.key, attempts);
    return { kitchen: await kitchen.promise, driver: await driver.promise };
  },
});

async function started(key: string): Promise<{ invocationId: string; ids: string[] }> {
  const { invocationId } = await h!.engine.send({ service: 'TwoCallbacks', handler: 'run', key });
  await until(() => seen.has(key), 'the awakeables to be created');
  return { invocationId, ids: seen.get(key)![0]! };
}

describe('awakeable ids', () => {
  it('are random and reveal no invocation id', async () => {
    h = await harness({ services: [TwoCallbacks] });
    const { invocationId, ids } = await started('k1');
    for (const id of ids) {
      expect(id).toMatch(/^awk_[0-9a-z]{26}$/);
      expect(id).not.toContain(invocationId.slice(4));
      expect(id).not.toContain(invocationId.slice(4, 14)); // not even its time part
    }
    expect(ids[0]).not.toBe(ids[1]);
  });

  it('cannot be derived from one another: neighbours and the invocation id answer 404', async () => {
    h = await harness({ services: [TwoCallbacks] });
    const { invocationId, ids } = await started('k2');
    const [kitchen, driver] = ids as [string, string];
    const inv = invocationId.slice(4);
    const guesses = [
      `awk_${inv}_0`,
      `awk_${inv}_1`,
      `awk_${inv}_2`,
      `awk_${inv}`,
      kitchen.slice(0, -1) + (kitchen.endsWith('0') ? '1' : '0'),
    ];
    for (const guess of guesses) {
      await expect(h.engine.resolveAwakeable(guess, 'forged'), guess).rejects.toMatchObject({
        status: 404,
      });
    }
    // The holder of the kitchen's id completes the kitchen's awakeable, and only that one.
    await h.engine.resolveAwakeable(kitchen, 'ready');
    await expect(h.engine.getJournal(invocationId)).resolves.toContainEqual(
      expect.objectContaining({ kind: 'awakeable', name: driver, done: false }),
    );
    await h.engine.resolveAwakeable(driver, 'delivered');
    expect(await h.engine.attach(invocationId)).toEqual({ kitchen: 'ready', driver: 'delivered' });
    await expect(h.engine.resolveAwakeable(driver, 'again')).rejects.toMatchObject({
      status: 409,
    });
  });

  it('are the same on replay, and resolvable after a restart', async () => {
    h = await harness({ services: [TwoCallbacks] });
    const { invocationId, ids } = await started('k3');
    await h.clock.advance('2s'); // suspended
    await until(
      async () => (await h!.engine.getInvocation(invocationId))?.status === 'suspended',
      'suspension',
    );
    await h.restart();
    await h.engine.resolveAwakeable(ids[0]!, 'ready');
    await until(() => seen.get('k3')!.length >= 2, 'a replay');
    await h.engine.resolveAwakeable(ids[1]!, 'delivered');
    expect(await h.engine.attach(invocationId)).toEqual({ kitchen: 'ready', driver: 'delivered' });
    for (const attempt of seen.get('k3')!) expect(attempt).toEqual(ids);
  });

  it('still accepts the id of an awakeable recorded by an older version', async () => {
    h = await harness({ services: [TwoCallbacks] });
    const id = 'inv_0000000000aaaaaaaaaaaaaaaa';
    const now = h.clock.now();
    // A suspended invocation whose journal an older version wrote: awakeables without names.
    await h.engine.store.write([
      {
        op: 'invocation.insert',
        row: {
          id,
          service: 'TwoCallbacks',
          handler: 'run',
          key: 'legacy',
          exclusive: true,
          status: 'suspended',
          input: null,
          dedupe: 'wf:TwoCallbacks/legacy',
          attempt: 0,
          retryIndex: -1,
          createdAt: now,
          modifiedAt: now,
        },
      },
      {
        op: 'journal.put',
        invocationId: id,
        index: 0,
        entry: { kind: 'awakeable', name: '', done: false },
      },
      {
        op: 'journal.put',
        invocationId: id,
        index: 1,
        entry: { kind: 'awakeable', name: '', done: false },
      },
    ]);
    await h.engine.resolveAwakeable(`awk_${id.slice(4)}_0`, 'ready');
    await h.engine.resolveAwakeable(`awk_${id.slice(4)}_1`, 'delivered');
    expect(await h.engine.attach(id)).toEqual({ kitchen: 'ready', driver: 'delivered' });
    expect(seen.get('legacy')![0]).toEqual([`awk_${id.slice(4)}_0`, `awk_${id.slice(4)}_1`]);
  });
});

/**
 * The external party of {@link Notify}: it deduplicates our retried notification by its
 * idempotency key (the workflow key here) and keeps the callback id it was first given.
 */
const party = new Map<string, { id: string; calls: number }>();

/**
 * Creates an awakeable and hands its id to someone from plain handler code, outside any step:
 * nothing waits there for the awakeable to be durable (a step body would, see
 * test/awakeable-publish.test.ts), so the id can escape before a crash loses the awakeable.
 */
const Notify = workflow({
  name: 'Notify',
  run: async (ctx) => {
    const callback = ctx.awakeable<string>();
    const seen = party.get(ctx.key);
    if (seen) seen.calls++;
    else party.set(ctx.key, { id: callback.id, calls: 1 });
    return callback.promise;
  },
});

/** A write that records an awakeable entry (and the lookup record that rides with it). */
const createsAwakeable = (ops: WriteOp[]): boolean =>
  ops.some((o) => o.op === 'journal.put' && o.entry.kind === 'awakeable');

describe('awakeable ids across a crash before the awakeable is durable', () => {
  it('hand out the same id again, so the callback the party got first completes the workflow', async () => {
    const { dir, cleanup } = tempDir('keel-awk-');
    dirs.push(cleanup);
    const clock = new FakeClock();
    const path = join(dir, 'keel.db');
    const start = async (): Promise<{ engine: Engine; store: ReturnType<typeof holdingStore> }> => {
      const store = holdingStore(openSqliteStore({ path }));
      const engine = new Engine({ services: [Notify], store, clock, logger: () => undefined });
      engines.push(engine);
      await engine.start();
      return { engine, store };
    };

    const first = await start();
    // The awakeable's entry (and everything after it) waits for a commit a kill -9 loses.
    first.store.hold(createsAwakeable);
    const { invocationId } = await first.engine.send({
      service: 'Notify',
      handler: 'run',
      key: 'n1',
    });
    await until(() => party.has('n1'), 'the party to be notified');
    expect(first.store.held).toBeGreaterThan(0);
    await crash(first.engine);
    first.store.fail(new Error('lost with the process')); // what a kill -9 does to a queued commit

    const second = await start();
    // The retry notifies again; the party answers from its first call and keeps the first id.
    await until(() => party.get('n1')!.calls >= 2, 'the retried notification');
    await second.engine.resolveAwakeable(party.get('n1')!.id, 'confirmed');
    expect(await second.engine.attach(invocationId)).toBe('confirmed');
  });
});

describe('awakeable ids in a cluster on one PostgreSQL schema', () => {
  const url = inject('postgresUrl');

  it('are derived alike by every process: one that takes over hands out the id the dead one gave', async () => {
    // A fresh schema: no process has made the store's secret yet, and both start at once.
    const schema = `keel_awk_${randomBytes(4).toString('hex')}`;
    const migrate = await openPostgresStore({ url, schema });
    await migrate.close();
    try {
      const open = async (): Promise<{
        engine: Engine;
        store: ReturnType<typeof holdingStore>;
      }> => {
        const store = holdingStore(await openPostgresStore({ url, schema }));
        const engine = new Engine({
          services: [Notify],
          store,
          lease: '2s',
          logger: () => undefined,
        });
        engines.push(engine);
        return { engine, store };
      };
      const [a, b] = await Promise.all([open(), open()]);
      await Promise.all([a.engine.start(), b.engine.start()]);
      const secret = await b.store.getKv('keel.secret', 'awakeable');
      expect(secret?.version).toBe(1); // made once, by one of them

      a.store.hold(createsAwakeable);
      const { invocationId } = await a.engine.send({
        service: 'Notify',
        handler: 'run',
        key: 'c1',
      });
      await until(() => party.has('c1'), 'the party to be notified');
      await crash(a.engine);
      a.store.fail(new Error('lost with the process')); // what a kill -9 does to a queued commit
      // b takes the invocation over once a's lease ends, and runs it again from the start.
      await until(() => party.get('c1')!.calls >= 2, 'the takeover to notify again', 20_000);
      await b.engine.resolveAwakeable(party.get('c1')!.id, 'confirmed');
      expect(await b.engine.attach(invocationId)).toBe('confirmed');
    } finally {
      for (const e of engines) await e.stop().catch(() => undefined);
      engines = [];
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await client.end();
    }
  }, 30_000);
});
