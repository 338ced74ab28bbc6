/**
 * Issue 11, found by the torture harness (PostgreSQL, 3 processes): `POST /awakeables/{id}/resolve`
 * answered 404 for a valid id. The usual pattern hands the id out in a step,
 * `const a = ctx.awakeable(); await ctx.run('publish', () => publish(a.id))`, and the step body
 * ran before the awakeable's write (its entry and its lookup record) was durable: a party that
 * resolved at once through another process, or after a crash, found nothing. A step body now
 * starts only once the awakeables created before it can be found by every process.
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
import { gate, holdingStore, tempDir, until } from './helpers.js';

let engines: Engine[] = [];
let dirs: Array<() => void> = [];
afterEach(async () => {
  for (const e of engines) await e.stop().catch(() => undefined);
  engines = [];
  for (const cleanup of dirs) cleanup();
  dirs = [];
});

/** The id each workflow key published first (a retry publishes the same id again). */
const published = new Map<string, string>();
/** What the handler of a key waits for before it creates its awakeable (outside the journal). */
const beforeAwakeable = new Map<string, Promise<void>>();

/** The usual pattern: create an awakeable, hand its id out in a step, wait for it. */
const Publish = workflow({
  name: 'Publish',
  run: async (ctx) => {
    await beforeAwakeable.get(ctx.key);
    const callback = ctx.awakeable<string>();
    await ctx.run('publish', () => {
      if (!published.has(ctx.key)) published.set(ctx.key, callback.id);
    });
    return callback.promise;
  },
});

/** A write that records an awakeable entry (and the lookup record that rides with it). */
const createsAwakeable = (ops: WriteOp[]): boolean =>
  ops.some((o) => o.op === 'journal.put' && o.entry.kind === 'awakeable');

/** The commit of the step that published the id. */
const commitsPublish = (ops: WriteOp[]): boolean =>
  ops.some((o) => o.op === 'journal.put' && o.entry.kind === 'run' && o.entry.name === 'publish');

describe('an awakeable id handed out by a step body', () => {
  it('is resolvable after a crash before the step committed, before the retry re-creates it', async () => {
    const { dir, cleanup } = tempDir('keel-awk-publish-');
    dirs.push(cleanup);
    const clock = new FakeClock();
    const path = join(dir, 'keel.db');
    const start = async (): Promise<{ engine: Engine; store: ReturnType<typeof holdingStore> }> => {
      const store = holdingStore(openSqliteStore({ path }));
      const engine = new Engine({ services: [Publish], store, clock, logger: () => undefined });
      engines.push(engine);
      await engine.start();
      return { engine, store };
    };

    const first = await start();
    // The awakeable's write reaches the disk late (a slow fdatasync): held until the body ran or
    // until nothing but that write can let it run.
    first.store.hold(createsAwakeable);
    const { invocationId } = await first.engine.send({
      service: 'Publish',
      handler: 'run',
      key: 's1',
    });
    await until(() => first.store.held > 0, "the awakeable's write to be queued");
    if (!published.has('s1')) {
      // The body waits for the awakeable's write: let it through, hold the step's commit instead.
      first.store.release();
      first.store.hold(commitsPublish);
      await until(() => published.has('s1'), 'the id to be published');
    }
    // kill -9 right after the body ran: every write still queued is lost.
    await crash(first.engine);
    first.store.fail(new Error('lost with the process'));

    // The retry waits before ctx.awakeable(), so no process holds the id in memory: only the
    // store can lead it to its entry.
    const retry = gate();
    beforeAwakeable.set('s1', retry.promise);
    const second = await start();
    await second.engine.resolveAwakeable(published.get('s1')!, 'confirmed');
    retry.open();
    expect(await second.engine.attach(invocationId)).toBe('confirmed');
  });
});

describe('an awakeable id handed out by a step body, in a cluster on one PostgreSQL schema', () => {
  const url = inject('postgresUrl');

  it('is resolvable at once through another process', async () => {
    const schema = `keel_awkpub_${randomBytes(4).toString('hex')}`;
    const migrate = await openPostgresStore({ url, schema });
    await migrate.close();
    const open = async (): Promise<{ engine: Engine; store: ReturnType<typeof holdingStore> }> => {
      const store = holdingStore(await openPostgresStore({ url, schema }));
      const engine = new Engine({
        services: [Publish],
        store,
        lease: '2s',
        logger: () => undefined,
      });
      engines.push(engine);
      await engine.start();
      return { engine, store };
    };
    const [a, b] = [await open(), await open()];
    try {
      // As in the torture run: a's commit is slower than b's read.
      a.store.hold(createsAwakeable);
      const { invocationId } = await a.engine.send({
        service: 'Publish',
        handler: 'run',
        key: 'p1',
      });
      await until(() => a.store.held > 0, "the awakeable's write to be queued");
      // The party resolves the moment it has the id: if the body already gave it out, now.
      let resolved: Promise<void> | undefined;
      if (published.has('p1')) resolved = b.engine.resolveAwakeable(published.get('p1')!, 'ok');
      await resolved?.catch(() => undefined);
      a.store.release();
      await until(() => published.has('p1'), 'the id to be published');
      resolved ??= b.engine.resolveAwakeable(published.get('p1')!, 'ok');
      await expect(resolved).resolves.toBeUndefined();
      expect(await b.engine.attach(invocationId)).toBe('ok');
    } finally {
      a.store.release();
      for (const e of engines) await e.stop().catch(() => undefined);
      engines = [];
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await client.end();
    }
  }, 30_000);
});
