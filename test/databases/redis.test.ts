import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createDatabases,
  database,
  databasesOf,
  DatabaseQueryError,
  DatabaseUnavailableError,
  use,
} from '../../src/databases/index.js';
import { service, type Engine } from '../../src/index.js';
import { available, REDIS_URL, sqliteEngines, uniqueName } from './helpers.js';

const up = await available('Redis', REDIS_URL, 6379, 'test/databases/redis.test.ts');

const prefix = uniqueName('keel_db');
const clientName = uniqueName('keelpool');
const Cache = database({ name: 'cache', type: 'redis', url: REDIS_URL });
const Gone = database({ name: 'gone', type: 'redis', url: 'redis://:pw-not-shown@127.0.0.1:1' });

const Counter = service({
  name: 'Counter',
  handlers: {
    bump: async (ctx, key: string) => {
      const cache = use(ctx, Cache);
      await cache.command('CLIENT', 'SETNAME', clientName);
      const n = await cache.command<number>('INCR', `${prefix}:${key}`);
      const value = await cache.command<string>('GET', `${prefix}:${key}`);
      return { n, value };
    },
    multi: async (ctx, key: string) =>
      use<'redis'>(ctx, 'cache').transaction((tx) => {
        tx.command('INCRBY', `${prefix}:${key}`, 5);
        tx.command('EXPIRE', `${prefix}:${key}`, 600);
      }),
    wrongType: async (ctx, key: string) => {
      await use(ctx, Cache).command('SET', `${prefix}:${key}`, 'text');
      try {
        await use(ctx, Cache).command('LPUSH', `${prefix}:${key}`, 'x');
        return 'ran';
      } catch (err) {
        const e = err as DatabaseQueryError;
        return {
          isQueryError: err instanceof DatabaseQueryError,
          code: e.code,
          driverCode: e.driverCode,
        };
      }
    },
    sqlOnRedis: async (ctx) => {
      try {
        await use(ctx, 'cache').query('SELECT 1');
        return 'ran';
      } catch (err) {
        return (err as DatabaseQueryError).code;
      }
    },
  },
});

describe.skipIf(!up)('Redis', () => {
  let admin: Redis;
  let engine: Engine;
  const engines = sqliteEngines([Counter], () => [createDatabases([Cache, Gone])]);

  beforeAll(async () => {
    admin = new Redis(REDIS_URL);
    engine = await engines.make();
  });
  afterAll(async () => {
    await engine?.stop();
    const keys = await admin.keys(`${prefix}:*`);
    if (keys.length > 0) await admin.del(...keys);
    admin?.disconnect();
    engines.cleanup();
  });

  it('runs commands as journaled steps named db:{name}:{command}', async () => {
    const { invocationId } = await engine.send({ service: 'Counter', handler: 'bump', input: 'a' });
    expect(await engine.attach(invocationId)).toEqual({ n: 1, value: '1' });
    const names = (await engine.getJournal(invocationId)).map((e) => e.name);
    expect(names).toEqual(expect.arrayContaining(['db:cache:incr', 'db:cache:get']));
    expect(await admin.get(`${prefix}:a`)).toBe('1');
  });

  it('runs a MULTI/EXEC transaction as one step and resolves its replies', async () => {
    const { invocationId } = await engine.send({
      service: 'Counter',
      handler: 'multi',
      input: 'm',
    });
    expect(await engine.attach(invocationId)).toEqual([5, 1]);
    expect((await engine.getJournal(invocationId)).map((e) => e.name)).toContain(
      'db:cache:transaction',
    );
    expect(await admin.ttl(`${prefix}:m`)).toBeGreaterThan(0);
  });

  it('makes a refused command terminal with its reply code, and refuses SQL on Redis', async () => {
    expect(await engine.invoke({ service: 'Counter', handler: 'wrongType', input: 'w' })).toEqual({
      isQueryError: true,
      code: 'database_query_failed',
      driverCode: 'WRONGTYPE',
    });
    expect(await engine.invoke({ service: 'Counter', handler: 'sqlOnRedis' })).toBe(
      'database_misuse',
    );
  });

  it('survives CLIENT KILL of its connection: the next command succeeds', async () => {
    const conn = databasesOf(engine)[0]!;
    await conn.ping();
    // Only this engine's connection (named by the first test): Redis is shared with other tests.
    const list = String(await admin.call('CLIENT', 'LIST'));
    const line = list.split('\n').find((l) => l.includes(`name=${clientName} `));
    const id = /\bid=(\d+)/.exec(line ?? '')?.[1];
    expect(id).toBeDefined();
    expect(await admin.call('CLIENT', 'KILL', 'ID', id!)).toBe(1);
    expect(await engine.invoke({ service: 'Counter', handler: 'bump', input: 'a' })).toEqual({
      n: 2,
      value: '2',
    });
    await conn.ping();
    expect(conn.status()).toMatchObject({ name: 'cache', type: 'redis', state: 'up' });
    // The command after the kill ran on a new connection (the old one, named, is gone).
    expect(String(await admin.call('CLIENT', 'LIST'))).not.toContain(`id=${id} `);
  });

  it('reports an unreachable server: ping() throws a retryable error, status down without the password', async () => {
    const gone = databasesOf(engine).find((d) => d.name === 'gone')!;
    const err = await gone.ping().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DatabaseUnavailableError);
    expect(err).toMatchObject({ code: 'database_unavailable' });
    expect(gone.status()).toMatchObject({ state: 'down', url: 'redis://:***@127.0.0.1:1' });
    expect(JSON.stringify(gone.status())).not.toContain('pw-not-shown');
  });
});
