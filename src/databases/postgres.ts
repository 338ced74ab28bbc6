/**
 * PostgreSQL through a `pg` pool. A connection the server kills while idle is dropped by the
 * pool (its `error` event, which must be listened to or Node exits); one killed mid-query fails
 * that query with a connection error, which the step retries on a fresh connection.
 */
import pg from 'pg';
import {
  describeError,
  driverErrorOf,
  SOCKET_CODES,
  toJson,
  type Classified,
  type DatabaseAdapter,
  type DatabaseClient,
} from './adapter.js';
import { runTransaction, type MarkerSql } from './sql-transaction.js';
import type { QueryResult } from './types.js';

/** Messages of `pg` errors that mean the connection, not the statement, failed. */
const CONNECTION_MESSAGES = [
  'Connection terminated',
  'connection error',
  'not queryable',
  'Connection ended',
  'the database system is',
  'timeout exceeded when trying to connect',
];

export const postgresAdapter: DatabaseAdapter = {
  type: 'postgres',
  open(db, hooks): DatabaseClient {
    const pool = new pg.Pool({
      connectionString: db.url,
      max: db.poolMax,
      idleTimeoutMillis: db.idleTimeoutMs,
      connectionTimeoutMillis: 5_000,
      ...(db.statementTimeoutMs === undefined ? {} : { statement_timeout: db.statementTimeoutMs }),
    });
    pool.on('error', (err) => hooks.connectionLost(err));
    const marker: MarkerSql = {
      create: `CREATE TABLE IF NOT EXISTS ${db.stepsTable} (step_key text PRIMARY KEY, result text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())`,
      select: `SELECT result FROM ${db.stepsTable} WHERE step_key = $1`,
      insert: `INSERT INTO ${db.stepsTable} (step_key, result) VALUES ($1, $2)`,
    };
    let ensured: Promise<void> | undefined;
    const ensureMarkerTable = (): Promise<void> =>
      (ensured ??= pool.query(marker.create).then(
        () => undefined,
        (err: unknown) => {
          ensured = undefined;
          // Two processes creating it at once: one wins, the other sees a duplicate type or table.
          const code = describeError(err).code;
          if (code === '23505' || code === '42P07') return;
          throw err;
        },
      ));
    return {
      async query(sql, params) {
        return result(await pool.query(sql, params as unknown[]));
      },
      async transaction(fn, once) {
        if (once !== undefined) await ensureMarkerTable();
        const client = await pool.connect();
        // A checked-out client has no pool listener: without this, a kill mid-transaction
        // would be an unhandled 'error' event.
        let broken: unknown;
        const onError = (err: unknown): void => void (broken = err);
        client.on('error', onError);
        try {
          return await runTransaction(
            { query: async (sql, params) => result(await client.query(sql, params as unknown[])) },
            fn,
            once,
            marker,
          );
        } catch (err) {
          broken ??=
            this.classify(driverErrorOf(err))?.code === 'database_unavailable' ? err : undefined;
          throw err;
        } finally {
          client.off('error', onError);
          // A broken connection is destroyed rather than returned to the pool.
          client.release(broken === undefined ? undefined : true);
        }
      },
      async ping() {
        await pool.query('SELECT 1');
      },
      pool: () => ({ total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount }),
      classify: classifyPostgres,
      async close() {
        await pool.end();
      },
    };
  },
};

function result(r: pg.QueryResult | pg.QueryResult[]): QueryResult {
  const last = Array.isArray(r) ? r[r.length - 1]! : r;
  const rows = toJson(last.rows ?? []) as Record<string, unknown>[];
  return { rows, rowCount: last.rowCount ?? rows.length };
}

/** SQLSTATE classes: https://www.postgresql.org/docs/current/errcodes-appendix.html */
export function classifyPostgres(err: unknown): Classified | undefined {
  const { message, code } = describeError(err);
  if (code !== undefined && /^[0-9A-Z]{5}$/.test(code)) {
    const retry = (
      c: 'database_unavailable' | 'database_conflict' | 'database_timeout',
    ): Classified => ({
      retryable: true,
      code: c,
      driverCode: code,
      message,
    });
    const refuse = (
      c: 'database_syntax_error' | 'database_constraint_violation' | 'database_query_failed',
    ): Classified => ({ retryable: false, code: c, driverCode: code, message });
    // Connection classes, server shutdown and overload; and a refused login or missing database
    // (classes 28, 3D): unusable until an operator fixes it, which retrying waits for.
    if (
      code.startsWith('08') ||
      code.startsWith('28') ||
      code === '3D000' ||
      ['57P01', '57P02', '57P03', '53300', '53400'].includes(code)
    )
      return retry('database_unavailable');
    if (code === '40001' || code === '40P01') return retry('database_conflict');
    if (code === '57014') return retry('database_timeout');
    if (code.startsWith('42')) return refuse('database_syntax_error');
    if (code.startsWith('23')) return refuse('database_constraint_violation');
    return refuse('database_query_failed');
  }
  if (
    (code !== undefined && SOCKET_CODES.has(code)) ||
    CONNECTION_MESSAGES.some((m) => message.includes(m))
  )
    return {
      retryable: true,
      code: message.includes('timeout exceeded') ? 'database_timeout' : 'database_unavailable',
      ...(code === undefined ? {} : { driverCode: code }),
      message,
    };
  return undefined;
}
