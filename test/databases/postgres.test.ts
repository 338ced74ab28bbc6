import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createDatabases,
  database,
  databasesOf,
  DatabaseQueryError,
  DatabaseUnavailableError,
  use,
} from '../../src/databases/index.js';
import { service, TerminalError, type Engine } from '../../src/index.js';
import { available, PG_URL, sqliteEngines, uniqueName } from './helpers.js';

const up = await available('PostgreSQL', PG_URL, 5432, 'test/databases/postgres.test.ts');

const schema = uniqueName('keel_db');
const appName = uniqueName('keel_pool');
const url = (() => {
  const u = new URL(PG_URL);
  u.searchParams.set('application_name', appName);
  return u.toString();
})();
const Orders = database({
  name: 'orders',
  type: 'postgres',
  url,
  pool: { max: 4 },
  stepsTable: `${schema}.keel_steps`,
});
const Slow = database({ name: 'slow', type: 'postgres', url, statementTimeout: '50ms' });
const Nowhere = database({
  name: 'nowhere',
  type: 'postgres',
  url: 'postgres://postgres:s3cret-pw@127.0.0.1:1/none',
});
const NoSuchDb = database({
  name: 'nosuchdb',
  type: 'postgres',
  url: (() => {
    const u = new URL(PG_URL);
    u.pathname = `/${uniqueName('keel_missing')}`;
    return u.toString();
  })(),
});

let txAttempts = 0;
const Shop = service({
  name: 'Shop',
  handlers: {
    insert: async (ctx, item: string) => {
      const { rows, rowCount } = await use(ctx, Orders).query<{ id: number; item: string }>(
        `INSERT INTO ${schema}.orders (item) VALUES ($1) RETURNING id, item`,
        [item],
      );
      return { row: rows[0], rowCount };
    },
    count: async (ctx) => {
      const { rows } = await use(ctx, 'orders').query<{ n: string }>(
        `SELECT count(*) AS n FROM ${schema}.orders`,
        [],
        { name: 'count orders' },
      );
      return Number(rows[0]!.n);
    },
    refused: async (ctx, sql: string) => {
      try {
        await use(ctx, Orders).query(sql);
        return 'ran';
      } catch (err) {
        const e = err as DatabaseQueryError;
        return {
          isQueryError: err instanceof DatabaseQueryError,
          code: e.code,
          driverCode: e.driverCode,
          database: e.database,
        };
      }
    },
    transfer: async (ctx, amount: number) =>
      use(ctx, Orders).transaction(async (tx) => {
        await tx.query(`UPDATE ${schema}.accounts SET balance = balance - $1 WHERE id = 'a'`, [
          amount,
        ]);
        const { rows } = await tx.query<{ balance: number }>(
          `UPDATE ${schema}.accounts SET balance = balance + $1 WHERE id = 'b' RETURNING balance`,
          [amount],
        );
        if (rows[0]!.balance > 150)
          throw new TerminalError('b may not hold more than 150', { code: 'too_rich' });
        return rows[0]!.balance;
      }),
    killedMidTransaction: async (ctx, item: string) =>
      use(ctx, Orders).transaction(async (tx) => {
        txAttempts++;
        await tx.query(`INSERT INTO ${schema}.orders (item) VALUES ($1)`, [item]);
        // The first attempt's connection is killed by the server in the middle of the transaction.
        if (txAttempts === 1) await tx.query('SELECT pg_terminate_backend(pg_backend_pid())');
        return txAttempts;
      }),
  },
});

describe.skipIf(!up)('PostgreSQL', () => {
  let admin: pg.Client;
  let engine: Engine;
  const engines = sqliteEngines([Shop], () => [createDatabases([Orders, Slow, Nowhere, NoSuchDb])]);

  beforeAll(async () => {
    admin = new pg.Client({ connectionString: PG_URL });
    await admin.connect();
    await admin.query(`CREATE SCHEMA ${schema}`);
    await admin.query(
      `CREATE TABLE ${schema}.orders (id serial PRIMARY KEY, item text NOT NULL UNIQUE)`,
    );
    await admin.query(
      `CREATE TABLE ${schema}.accounts (id text PRIMARY KEY, balance int NOT NULL)`,
    );
    await admin.query(`INSERT INTO ${schema}.accounts VALUES ('a', 100), ('b', 100)`);
    engine = await engines.make();
  });
  afterAll(async () => {
    await engine?.stop();
    await admin?.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await admin?.end();
    engines.cleanup();
  });

  it('runs a query as a journaled step named db:{name}:query and resolves rows and rowCount', async () => {
    const { invocationId } = await engine.send({
      service: 'Shop',
      handler: 'insert',
      input: 'apple',
    });
    expect(await engine.attach(invocationId)).toEqual({
      row: { id: 1, item: 'apple' },
      rowCount: 1,
    });
    const journal = await engine.getJournal(invocationId);
    expect(journal.map((e) => e.name)).toContain('db:orders:query');
    const { rows } = await admin.query(`SELECT item FROM ${schema}.orders`);
    expect(rows).toEqual([{ item: 'apple' }]);
  });

  it('finds a database by name and names the step as asked', async () => {
    const { invocationId } = await engine.send({ service: 'Shop', handler: 'count' });
    expect(await engine.attach(invocationId)).toBeGreaterThanOrEqual(1);
    expect((await engine.getJournal(invocationId)).map((e) => e.name)).toContain('count orders');
  });

  it('makes SQL errors terminal with a code: syntax and constraint', async () => {
    expect(await engine.invoke({ service: 'Shop', handler: 'refused', input: 'SELEC 1' })).toEqual({
      isQueryError: true,
      code: 'database_syntax_error',
      driverCode: '42601',
      database: 'orders',
    });
    await engine.invoke({ service: 'Shop', handler: 'insert', input: 'pear' });
    expect(
      await engine.invoke({
        service: 'Shop',
        handler: 'refused',
        input: `INSERT INTO ${schema}.orders (item) VALUES ('pear')`,
      }),
    ).toMatchObject({ code: 'database_constraint_violation', driverCode: '23505' });
  });

  it('commits a transaction, and rolls it back when the callback throws', async () => {
    expect(await engine.invoke({ service: 'Shop', handler: 'transfer', input: 30 })).toBe(130);
    await expect(
      engine.invoke({ service: 'Shop', handler: 'transfer', input: 30 }),
    ).rejects.toMatchObject({
      code: 'too_rich',
    });
    const { rows } = await admin.query(`SELECT id, balance FROM ${schema}.accounts ORDER BY id`);
    expect(rows).toEqual([
      { id: 'a', balance: 70 },
      { id: 'b', balance: 130 },
    ]);
  });

  it('retries a transaction whose connection the server killed, on a fresh connection, applying it once', async () => {
    txAttempts = 0;
    expect(
      await engine.invoke({ service: 'Shop', handler: 'killedMidTransaction', input: 'plum' }),
    ).toBe(2);
    const { rows } = await admin.query(
      `SELECT count(*)::int AS n FROM ${schema}.orders WHERE item = 'plum'`,
    );
    expect(rows[0].n).toBe(1);
  });

  it('survives pg_terminate_backend of every pooled connection: the next query succeeds', async () => {
    const conn = databasesOf(engine).find((d) => d.name === 'orders')!;
    await conn.ping();
    const killed = await admin.query(
      'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1',
      [appName],
    );
    expect(killed.rowCount).toBeGreaterThan(0);
    const out = (await engine.invoke({
      service: 'Shop',
      handler: 'insert',
      input: 'after-kill',
    })) as {
      rowCount: number;
    };
    expect(out.rowCount).toBe(1);
    await conn.ping();
    expect(conn.status().state).toBe('up');
  });

  it('lists the databases of an engine with ping() and a status without the password', async () => {
    const dbs = databasesOf(engine);
    expect(dbs.map((d) => d.name)).toEqual(['orders', 'slow', 'nowhere', 'nosuchdb']);
    const nowhere = dbs[2]!;
    expect(nowhere.healthCheckIntervalMs).toBe(30_000);
    await expect(nowhere.ping()).rejects.toBeInstanceOf(DatabaseUnavailableError);
    const status = nowhere.status();
    expect(status.state).toBe('down');
    expect(status.url).toBe('postgres://postgres:***@127.0.0.1:1/none');
    expect(JSON.stringify(status)).not.toContain('s3cret-pw');
    expect(dbs[0]!.status()).toMatchObject({ name: 'orders', type: 'postgres', state: 'up' });
  });

  it('calls a database the server refuses (unknown database) down, with a retryable error', async () => {
    const missing = databasesOf(engine).find((d) => d.name === 'nosuchdb')!;
    const err = await missing.ping().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DatabaseUnavailableError);
    expect(err).toMatchObject({ code: 'database_unavailable', driverCode: '3D000' });
    expect(missing.status().state).toBe('down');
  });

  it('classifies a statement timeout as retryable database_timeout', async () => {
    const slow = databasesOf(engine).find((d) => d.name === 'slow')!;
    const err = await slow.query('SELECT pg_sleep(2)').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DatabaseUnavailableError);
    expect(err).toMatchObject({ code: 'database_timeout', driverCode: '57014' });
  });

  it('applies a once transaction a single time per key and returns the recorded result after', async () => {
    const conn = databasesOf(engine).find((d) => d.name === 'orders')!;
    let runs = 0;
    const fn = async (tx: unknown) => {
      runs++;
      await (tx as pg.Client).query(`INSERT INTO ${schema}.orders (item) VALUES ('once-direct')`);
      return { runs, at: new Date(0) };
    };
    const first = await conn.transaction(fn, { key: 'inv_direct:0' });
    const second = await conn.transaction(fn, { key: 'inv_direct:0' });
    expect(runs).toBe(1);
    // Journal-shaped (JSON) either way: the date is its ISO string.
    expect(first).toEqual({ runs: 1, at: '1970-01-01T00:00:00.000Z' });
    expect(second).toEqual(first);
    const markers = await admin.query(`SELECT step_key FROM ${schema}.keel_steps`);
    expect(markers.rows).toEqual([{ step_key: 'inv_direct:0' }]);
  });

  it('lets one of two racing executions of a once step apply it; the other returns its result', async () => {
    await admin.query(`CREATE TABLE ${schema}.race (n int NOT NULL)`);
    const conn = databasesOf(engine).find((d) => d.name === 'orders')!;
    let started = 0;
    let bothIn: () => void = () => undefined;
    const barrier = new Promise<void>((r) => (bothIn = r));
    const fn = async (tx: unknown) => {
      const n = ++started;
      await (tx as pg.Client).query(`INSERT INTO ${schema}.race (n) VALUES ($1)`, [n]);
      if (n === 2) bothIn();
      await barrier;
      return { by: n };
    };
    const [a, b] = await Promise.all([
      conn.transaction(fn as never, { key: 'inv_race:0' }),
      conn.transaction(fn as never, { key: 'inv_race:0' }),
    ]);
    expect(started).toBe(2);
    expect(a).toEqual(b);
    const { rows } = await admin.query(`SELECT n FROM ${schema}.race`);
    expect(rows).toEqual([{ n: (a as { by: number }).by }]);
  });

  it('closes the pools when the engine stops', async () => {
    const conn = databasesOf(engine).find((d) => d.name === 'orders')!;
    await engine.stop();
    expect(databasesOf(engine)).toEqual([]);
    await expect(conn.query('SELECT 1')).rejects.toMatchObject({ code: 'database_unavailable' });
    expect(conn.status().state).toBe('closed');
    engine = await engines.make();
  });
});
