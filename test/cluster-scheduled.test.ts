import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { Engine, object, type ObjectContext } from '../src/index.js';
import { openPostgresStore } from '../src/store/postgres/index.js';
import { gate, until } from './helpers.js';

/**
 * Delayed sends on a shared PostgreSQL store: a delayed invocation whose timer fires while its
 * object key is held (by a handler of the same or another engine) runs once the holder lets
 * go, handed the key like any queued invocation.
 */
const url = inject('postgresUrl');
const schema = `keel_sched_${randomBytes(4).toString('hex')}`;
const admin = new pg.Pool({ connectionString: url, max: 1 });
let engines: Engine[] = [];

beforeAll(async () => {
  const store = await openPostgresStore({ url, schema });
  await store.close();
});

afterEach(async () => {
  for (const e of engines) await e.stop().catch(() => undefined);
  engines = [];
});

afterAll(async () => {
  await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await admin.end();
});

async function makeEngine(services: ConstructorParameters<typeof Engine>[0]['services']) {
  const store = await openPostgresStore({ url, schema });
  const engine = new Engine({ services, store, lease: '2s', logger: () => undefined });
  engines.push(engine);
  await engine.start();
  return engine;
}

describe('a delayed send due while its object key is held', () => {
  it.each(['the same engine', 'another engine'])(
    'runs once the holder finishes, when it was sent from %s',
    async (from) => {
      const name = `Counter_${randomBytes(4).toString('hex')}`;
      const release = gate();
      const added: number[] = [];
      const Counter = object({
        name,
        handlers: {
          hold: async (ctx: ObjectContext) =>
            ctx.run('hold', () => release.promise.then(() => 'held')),
          add: async (ctx: ObjectContext, n: number) => {
            await ctx.run('add', () => added.push(n));
            return n;
          },
        },
      });
      const a = await makeEngine([Counter]);
      const b = from === 'another engine' ? await makeEngine([Counter]) : a;
      const holder = await a.send({ service: name, handler: 'hold', key: 'k' });
      await until(
        async () => (await a.getInvocation(holder.invocationId))?.status === 'running',
        'the holder to run',
      );
      const delayed = await b.send({
        service: name,
        handler: 'add',
        key: 'k',
        input: 3,
        delayMs: 50,
      });
      // Its timer fires (and is deleted) while 'hold' still has the key.
      await until(async () => {
        const { rows } = await admin.query(
          `SELECT count(*)::int AS n FROM ${schema}.timers WHERE invocation_id = $1`,
          [delayed.invocationId],
        );
        return rows[0].n === 0;
      }, 'the delayed send to fall due');
      expect(added).toEqual([]);

      release.open();
      expect(await a.attach(holder.invocationId)).toBe('held');
      await until(
        async () => (await a.getInvocation(delayed.invocationId))?.status === 'completed',
        'the delayed send to run after the holder',
      );
      expect(await a.attach(delayed.invocationId)).toBe(3);
      expect(added).toEqual([3]);
    },
  );
});
