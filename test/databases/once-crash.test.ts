import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDatabases } from '../../src/databases/index.js';
import { Engine } from '../../src/index.js';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import { killHard, spawnApp, tempDir } from '../helpers.js';
import { makePay, ordersDb, type SqlType } from './fixtures/once-service.js';
import { available, MYSQL_URL, PG_URL, uniqueName, until } from './helpers.js';

/**
 * kill -9 after a transaction committed and before its step's result was journaled: on restart
 * the step runs again. With `once: true` the marker row written by the committed transaction
 * makes the re-run return the recorded result (one payment); without it, the payment is made
 * twice, which shows the crash really fell in that window.
 */
const FILE = 'test/databases/once-crash.test.ts';
const pgUp = await available('PostgreSQL', PG_URL, 5432, FILE);
const mysqlUp = await available('MariaDB/MySQL', MYSQL_URL, 3306, FILE);

/** Runs SQL as an administrator, outside Keel. */
interface Admin {
  exec(sql: string, params?: unknown[]): Promise<Array<Record<string, unknown>>>;
  end(): Promise<void>;
}

const servers: Array<{
  type: SqlType;
  url: string;
  up: boolean;
  admin: () => Promise<Admin>;
  setup: (schema: string) => string[];
  payments: string;
  markers: string;
}> = [
  {
    type: 'postgres',
    url: PG_URL,
    up: pgUp,
    admin: async () => {
      const c = new pg.Client({ connectionString: PG_URL });
      await c.connect();
      return { exec: async (sql, params) => (await c.query(sql, params)).rows, end: () => c.end() };
    },
    setup: (s) => [
      `CREATE SCHEMA ${s}`,
      `CREATE TABLE ${s}.payments (id serial PRIMARY KEY, item text NOT NULL)`,
    ],
    payments: `SELECT id FROM {s}.payments WHERE item = $1`,
    markers: `SELECT step_key, result FROM {s}.keel_steps`,
  },
  {
    type: 'mysql',
    url: MYSQL_URL,
    up: mysqlUp,
    admin: async () => {
      const c = await mysql.createConnection(MYSQL_URL);
      return {
        exec: async (sql, params) =>
          (await c.query(sql, params))[0] as Array<Record<string, unknown>>,
        end: () => c.end(),
      };
    },
    setup: (s) => [
      `CREATE DATABASE ${s}`,
      `CREATE TABLE ${s}.payments (id INT AUTO_INCREMENT PRIMARY KEY, item VARCHAR(64) NOT NULL) ENGINE=InnoDB`,
    ],
    payments: `SELECT id FROM {s}.payments WHERE item = ?`,
    markers: `SELECT step_key, result FROM {s}.keel_steps`,
  },
];

const tmp = tempDir('keel-db-once-');
const children: ChildProcess[] = [];
afterAll(() => {
  for (const c of children) c.kill('SIGKILL');
  tmp.cleanup();
});

describe.each(servers)('exactly-once transactions across kill -9 on $type', (server) => {
  const schema = uniqueName('keel_once');
  let admin: Admin;
  beforeAll(async () => {
    if (!server.up) return;
    admin = await server.admin();
    for (const sql of server.setup(schema)) await admin.exec(sql);
  });
  afterAll(async () => {
    if (!server.up) return;
    await admin.exec(
      server.type === 'postgres'
        ? `DROP SCHEMA IF EXISTS ${schema} CASCADE`
        : `DROP DATABASE IF EXISTS ${schema}`,
    );
    await admin.end();
  });

  const payments = async (item: string): Promise<number[]> =>
    (await admin.exec(server.payments.replace('{s}', schema), [item])).map((r) => Number(r.id));

  /** Runs the child until its transaction committed, kills it, and recovers in this process. */
  async function crashAndRecover(item: string, once: boolean) {
    const db = join(tmp.dir, `${server.type}-${item}.db`);
    const { child, url: invocationId } = await spawnApp(
      join(import.meta.dirname, 'fixtures/once-app.ts'),
      {
        KEEL_DB: db,
        DB_TYPE: server.type,
        DB_URL: server.url,
        SCHEMA: schema,
        ONCE: once ? '1' : '0',
        ITEM: item,
      },
      children,
    );
    await until('the transaction to commit', async () => (await payments(item)).length === 1);
    await killHard(child);
    expect(await payments(item)).toHaveLength(1);

    const orders = ordersDb(server.type, server.url, schema);
    const engine = new Engine({
      services: [makePay(orders, schema, once)],
      store: openSqliteStore({ path: db }),
      extensions: [createDatabases([orders])],
      logger: () => undefined,
    });
    await engine.start();
    try {
      const result = (await engine.attach(invocationId)) as { paymentId: number };
      const journal = await engine.getJournal(invocationId);
      return { result, journal };
    } finally {
      await engine.stop();
    }
  }

  it.skipIf(!server.up)(
    'with once: true the re-run returns the recorded result and pays once',
    async () => {
      const { result, journal } = await crashAndRecover('once', true);
      const ids = await payments('once');
      expect(ids).toHaveLength(1);
      expect(result).toEqual({ paymentId: ids[0] });
      expect(journal.map((e) => e.name)).toContain('db:orders:transaction');
      const markers = await admin.exec(server.markers.replace('{s}', schema));
      expect(markers).toHaveLength(1);
      expect(JSON.parse(String(markers[0]!.result))).toEqual({ v: result });
    },
    60_000,
  );

  it.skipIf(!server.up)(
    'without once the same crash pays twice (the window is real)',
    async () => {
      await crashAndRecover('twice', false);
      expect(await payments('twice')).toHaveLength(2);
    },
    60_000,
  );
});
