import mysql from 'mysql2/promise';
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
import { available, MYSQL_URL, sqliteEngines, uniqueName } from './helpers.js';

const up = await available('MariaDB/MySQL', MYSQL_URL, 3306, 'test/databases/mysql.test.ts');

// A database of its own, so the connections to kill are told apart by it.
const dbName = uniqueName('keel_db');
const url = (() => {
  const u = new URL(MYSQL_URL);
  u.pathname = `/${dbName}`;
  return u.toString();
})();
const Orders = database({
  name: 'orders',
  type: 'mysql',
  url,
  pool: { max: 4, idleTimeout: '1m' },
});
const Gone = database({
  name: 'gone',
  type: 'mysql',
  url: 'mariadb://root:pw-not-shown@127.0.0.1:1/test',
});

let admin: mysql.Connection;
let txAttempts = 0;
const Shop = service({
  name: 'Shop',
  handlers: {
    insert: async (ctx, item: string) => {
      const { rowCount, insertId } = await use(ctx, Orders).query(
        'INSERT INTO orders (item) VALUES (?)',
        [item],
      );
      const { rows } = await use(ctx, Orders).query<{ id: number; item: string; big: string }>(
        'SELECT id, item, CAST(9007199254740993 AS UNSIGNED) AS big FROM orders WHERE id = ?',
        [insertId],
      );
      return { rowCount, row: rows[0] };
    },
    refused: async (ctx, sql: string) => {
      try {
        await use(ctx, 'orders').query(sql);
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
    transfer: async (ctx, amount: number) =>
      use(ctx, Orders).transaction(async (tx) => {
        await tx.query("UPDATE accounts SET balance = balance - ? WHERE id = 'a'", [amount]);
        await tx.query("UPDATE accounts SET balance = balance + ? WHERE id = 'b'", [amount]);
        const { rows } = await tx.query<{ balance: number }>(
          "SELECT balance FROM accounts WHERE id = 'b'",
        );
        if (rows[0]!.balance > 150)
          throw new TerminalError('b may not hold more than 150', { code: 'too_rich' });
        return rows[0]!.balance;
      }),
    killedMidTransaction: async (ctx, item: string) =>
      use(ctx, Orders).transaction(async (tx) => {
        txAttempts++;
        await tx.query('INSERT INTO orders (item) VALUES (?)', [item]);
        if (txAttempts === 1) {
          const { rows } = await tx.query<{ id: number }>('SELECT CONNECTION_ID() AS id');
          await admin.query(`KILL ${Number(rows[0]!.id)}`);
          await tx.query('SELECT 1');
        }
        return txAttempts;
      }),
  },
});

describe.skipIf(!up)('MariaDB / MySQL', () => {
  let engine: Engine;
  const engines = sqliteEngines([Shop], () => [createDatabases([Orders, Gone])]);

  beforeAll(async () => {
    admin = await mysql.createConnection(MYSQL_URL);
    await admin.query(`CREATE DATABASE ${dbName}`);
    await admin.query(
      `CREATE TABLE ${dbName}.orders (id INT AUTO_INCREMENT PRIMARY KEY, item VARCHAR(64) NOT NULL UNIQUE) ENGINE=InnoDB`,
    );
    await admin.query(
      `CREATE TABLE ${dbName}.accounts (id VARCHAR(8) PRIMARY KEY, balance INT NOT NULL) ENGINE=InnoDB`,
    );
    await admin.query(`INSERT INTO ${dbName}.accounts VALUES ('a', 100), ('b', 100)`);
    engine = await engines.make();
  });
  afterAll(async () => {
    await engine?.stop();
    await admin?.query(`DROP DATABASE IF EXISTS ${dbName}`);
    await admin?.end();
    engines.cleanup();
  });

  it('runs queries as journaled steps: rowCount, insertId, 64-bit integers as strings', async () => {
    const { invocationId } = await engine.send({
      service: 'Shop',
      handler: 'insert',
      input: 'apple',
    });
    expect(await engine.attach(invocationId)).toEqual({
      rowCount: 1,
      row: { id: 1, item: 'apple', big: '9007199254740993' },
    });
    const names = (await engine.getJournal(invocationId)).map((e) => e.name);
    expect(names.filter((n) => n === 'db:orders:query')).toHaveLength(2);
  });

  it('makes SQL errors terminal with a code: syntax and constraint', async () => {
    expect(await engine.invoke({ service: 'Shop', handler: 'refused', input: 'SELEC 1' })).toEqual({
      isQueryError: true,
      code: 'database_syntax_error',
      driverCode: 'ER_PARSE_ERROR',
    });
    expect(
      await engine.invoke({
        service: 'Shop',
        handler: 'refused',
        input: "INSERT INTO orders (item) VALUES ('apple')",
      }),
    ).toMatchObject({ code: 'database_constraint_violation', driverCode: 'ER_DUP_ENTRY' });
  });

  it('commits a transaction, and rolls it back when the callback throws', async () => {
    expect(await engine.invoke({ service: 'Shop', handler: 'transfer', input: 30 })).toBe(130);
    await expect(
      engine.invoke({ service: 'Shop', handler: 'transfer', input: 30 }),
    ).rejects.toMatchObject({
      code: 'too_rich',
    });
    const [rows] = await admin.query(`SELECT id, balance FROM ${dbName}.accounts ORDER BY id`);
    expect(rows).toEqual([
      { id: 'a', balance: 70 },
      { id: 'b', balance: 130 },
    ]);
  });

  it('retries a transaction whose connection was KILLed, on a fresh connection, applying it once', async () => {
    txAttempts = 0;
    expect(
      await engine.invoke({ service: 'Shop', handler: 'killedMidTransaction', input: 'plum' }),
    ).toBe(2);
    const [rows] = await admin.query(
      `SELECT count(*) AS n FROM ${dbName}.orders WHERE item = 'plum'`,
    );
    expect(Number((rows as Array<{ n: number }>)[0]!.n)).toBe(1);
  });

  it('survives KILL of every pooled connection: the next query succeeds', async () => {
    const conn = databasesOf(engine)[0]!;
    await conn.ping();
    const [procs] = await admin.query(
      'SELECT id FROM information_schema.processlist WHERE db = ? AND id <> CONNECTION_ID()',
      [dbName],
    );
    const ids = (procs as Array<{ id: number }>).map((p) => p.id);
    expect(ids.length).toBeGreaterThan(0);
    for (const id of ids) await admin.query(`KILL ${Number(id)}`);
    const out = (await engine.invoke({
      service: 'Shop',
      handler: 'insert',
      input: 'after-kill',
    })) as {
      rowCount: number;
    };
    expect(out.rowCount).toBe(1);
    await conn.ping();
    expect(conn.status()).toMatchObject({ name: 'orders', type: 'mysql', state: 'up' });
  });

  it('applies a once transaction a single time per key', async () => {
    const conn = databasesOf(engine)[0]!;
    let runs = 0;
    const fn = async (tx: unknown) => {
      runs++;
      await (tx as { query: (s: string) => Promise<unknown> }).query(
        "INSERT INTO orders (item) VALUES ('once-direct')",
      );
      return runs;
    };
    expect(await conn.transaction(fn as never, { key: 'inv_direct:0' })).toBe(1);
    expect(await conn.transaction(fn as never, { key: 'inv_direct:0' })).toBe(1);
    expect(runs).toBe(1);
    const [markers] = await admin.query(`SELECT step_key FROM ${dbName}.keel_steps`);
    expect(markers).toEqual([{ step_key: 'inv_direct:0' }]);
  });

  it('reports an unreachable server: ping() throws a retryable error, status down without the password', async () => {
    const gone = databasesOf(engine).find((d) => d.name === 'gone')!;
    const err = await gone.ping().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DatabaseUnavailableError);
    expect(err).toMatchObject({ code: 'database_unavailable', driverCode: 'ECONNREFUSED' });
    expect(gone.status()).toMatchObject({
      state: 'down',
      url: 'mariadb://root:***@127.0.0.1:1/test',
    });
    expect(JSON.stringify(gone.status())).not.toContain('pw-not-shown');
  });
});
