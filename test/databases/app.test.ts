import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startApp } from '../../src/app.js';
import { createDatabases, database, databasesOf, use } from '../../src/databases/index.js';
import { service } from '../../src/index.js';
import { tempDir } from '../helpers.js';
import { available, PG_URL, REDIS_URL } from './helpers.js';

const pgUp = await available('PostgreSQL', PG_URL, 5432, 'test/databases/app.test.ts');
const redisUp = await available('Redis', REDIS_URL, 6379, 'test/databases/app.test.ts');

const Probe = service({
  name: 'Probe',
  handlers: {
    one: async (ctx) =>
      (await use(ctx, 'Orders').query<{ one: number }>('SELECT 1 AS one')).rows[0]!.one,
    pong: async (ctx) => use<'redis'>(ctx, 'cache').command<string>('PING'),
  },
});

describe.skipIf(!pgUp || !redisUp)('startApp({ integrationsFile }) with database blocks', () => {
  const tmp = tempDir('keel-db-app-');
  afterAll(() => tmp.cleanup());

  it('opens the file databases next to those in code, and closes them with the app', async () => {
    const file = join(tmp.dir, 'integrations.cai');
    writeFileSync(
      file,
      'database Orders {\n  type: postgres\n  url: env(KEEL_TEST_APP_ORDERS_URL)\n  pool: 2\n  health_check_interval: 10s\n}\n',
    );
    process.env.KEEL_TEST_APP_ORDERS_URL = PG_URL;
    const inCode = createDatabases([database({ name: 'cache', type: 'redis', url: REDIS_URL })]);
    const app = await startApp({
      services: [Probe],
      integrationsFile: file,
      extensions: [inCode],
      db: join(tmp.dir, 'keel.db'),
      port: 0,
      adminPort: 0,
      logger: () => undefined,
    });
    try {
      const dbs = databasesOf(app.engine);
      expect(dbs.map((d) => [d.name, d.type, d.healthCheckIntervalMs])).toEqual([
        ['cache', 'redis', 30_000],
        ['Orders', 'postgres', 10_000],
      ]);
      const res = await fetch(`${app.ingress.url}/Probe/one`, { method: 'POST' });
      expect(await res.json()).toBe(1);
      expect(await app.engine.invoke({ service: 'Probe', handler: 'pong' })).toBe('PONG');
      for (const d of dbs) await d.ping();
      // The admin API lists them, redacted, and pings one on request.
      const listed = (await (await fetch(`${app.admin.url}/databases`)).json()) as {
        databases: Array<{ name: string; state: string }>;
      };
      expect(listed.databases.map((d) => [d.name, d.state])).toEqual([
        ['cache', 'up'],
        ['Orders', 'up'],
      ]);
      const ping = await fetch(`${app.admin.url}/databases/Orders/ping`, { method: 'POST' });
      expect(ping.status).toBe(200);
      expect(await ping.json()).toMatchObject({
        ok: true,
        status: { name: 'Orders', type: 'postgres' },
      });
      expect((await fetch(`${app.admin.url}/databases/nope`)).status).toBe(404);
      expect((await fetch(`${app.admin.url}/databases/Orders/ping`)).status).toBe(405);
    } finally {
      await app.close();
    }
    expect(databasesOf(app.engine)).toEqual([]);
  });
});
