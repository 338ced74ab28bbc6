/**
 * MySQL and MariaDB through a `mysql2/promise` pool. A connection the server kills (`KILL <id>`)
 * is removed from the pool by mysql2 when it notices; a query that was on it fails with a
 * connection error, which the step retries on a fresh connection.
 */
import mysql from 'mysql2/promise';
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

/** Driver codes of a lost or refused connection. */
const CONNECTION_CODES = new Set([
  'PROTOCOL_CONNECTION_LOST',
  'PROTOCOL_ENQUEUE_AFTER_FATAL_ERROR',
  'PROTOCOL_ENQUEUE_AFTER_QUIT',
  'ER_CON_COUNT_ERROR',
  'ER_SERVER_SHUTDOWN',
  'ER_CONNECTION_KILLED',
  'ER_QUERY_INTERRUPTED',
  'ER_NET_READ_ERROR',
  'ER_NET_ERROR_ON_WRITE',
  'ER_TOO_MANY_USER_CONNECTIONS',
  // A refused login or missing database: unusable until an operator fixes it.
  'ER_ACCESS_DENIED_ERROR',
  'ER_DBACCESS_DENIED_ERROR',
  'ER_BAD_DB_ERROR',
]);
const TIMEOUT_CODES = new Set([
  'PROTOCOL_SEQUENCE_TIMEOUT',
  'ER_STATEMENT_TIMEOUT',
  'ER_QUERY_TIMEOUT',
]);
const CONFLICT_CODES = new Set(['ER_LOCK_DEADLOCK', 'ER_LOCK_WAIT_TIMEOUT']);

type Conn = mysql.Pool | mysql.PoolConnection;

export const mysqlAdapter: DatabaseAdapter = {
  type: 'mysql',
  open(db): DatabaseClient {
    const pool = mysql.createPool({
      uri: db.url.replace(/^mariadb:/, 'mysql:'),
      connectionLimit: db.poolMax,
      maxIdle: db.poolMax,
      idleTimeout: db.idleTimeoutMs,
      connectTimeout: 5_000,
      enableKeepAlive: true,
      // 64-bit integers and DECIMALs as strings (as `pg` returns them): no silent rounding.
      supportBigNumbers: true,
      bigNumberStrings: true,
    });
    const run = async (c: Conn, sql: string, params: readonly unknown[]): Promise<QueryResult> => {
      const [out] = await c.query({
        sql,
        values: params as unknown[],
        ...(db.statementTimeoutMs === undefined ? {} : { timeout: db.statementTimeoutMs }),
      });
      return result(out);
    };
    const marker: MarkerSql = {
      create: `CREATE TABLE IF NOT EXISTS ${db.stepsTable} (step_key VARCHAR(191) NOT NULL PRIMARY KEY, result LONGTEXT NOT NULL, created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP) ENGINE=InnoDB`,
      select: `SELECT result FROM ${db.stepsTable} WHERE step_key = ?`,
      insert: `INSERT INTO ${db.stepsTable} (step_key, result) VALUES (?, ?)`,
    };
    let ensured: Promise<void> | undefined;
    const ensureMarkerTable = (): Promise<void> =>
      (ensured ??= run(pool, marker.create, []).then(
        () => undefined,
        (err: unknown) => {
          ensured = undefined;
          throw err;
        },
      ));
    return {
      query: (sql, params) => run(pool, sql, params),
      async transaction(fn, once) {
        // DDL commits implicitly in MySQL: the table is made before the transaction begins.
        if (once !== undefined) await ensureMarkerTable();
        const conn = await pool.getConnection();
        let broken = false;
        try {
          return await runTransaction(
            { query: (sql, params) => run(conn, sql, params) },
            fn,
            once,
            marker,
          );
        } catch (err) {
          const c = this.classify(driverErrorOf(err));
          broken = c?.code === 'database_unavailable' || c?.code === 'database_timeout';
          throw err;
        } finally {
          if (broken) conn.destroy();
          else conn.release();
        }
      },
      async ping() {
        await pool.query('SELECT 1');
      },
      pool() {
        // mysql2 keeps its counts on the callback pool underneath; read them defensively.
        const inner = (
          pool as unknown as { pool?: Record<string, { length?: number } | undefined> }
        ).pool;
        return {
          total: inner?._allConnections?.length ?? 0,
          idle: inner?._freeConnections?.length ?? 0,
          waiting: inner?._connectionQueue?.length ?? 0,
        };
      },
      classify: classifyMysql,
      async close() {
        await pool.end();
      },
    };
  },
};

function result(out: unknown): QueryResult {
  if (Array.isArray(out)) {
    // SELECT rows; a multi-statement result (an array of results) is not unpacked.
    const rows = toJson(out) as Record<string, unknown>[];
    return { rows, rowCount: rows.length };
  }
  const header = out as { affectedRows?: number; insertId?: number | string };
  return {
    rows: [],
    rowCount: header.affectedRows ?? 0,
    ...(header.insertId ? { insertId: header.insertId } : {}),
  };
}

export function classifyMysql(err: unknown): Classified | undefined {
  const { message, code } = describeError(err);
  const sqlState = (err as { sqlState?: unknown } | undefined)?.sqlState;
  const state = typeof sqlState === 'string' ? sqlState : undefined;
  const driverCode = code ?? state;
  const base = { message, ...(driverCode === undefined ? {} : { driverCode }) };
  if (code !== undefined && TIMEOUT_CODES.has(code))
    return { retryable: true, code: 'database_timeout', ...base };
  if (code !== undefined && CONFLICT_CODES.has(code))
    return { retryable: true, code: 'database_conflict', ...base };
  if (
    (code !== undefined && (CONNECTION_CODES.has(code) || SOCKET_CODES.has(code))) ||
    state?.startsWith('08') === true ||
    message.includes('connection is in closed state') ||
    message.includes('Connection lost')
  )
    return { retryable: true, code: 'database_unavailable', ...base };
  if (state === undefined) return undefined;
  if (
    state.startsWith('42') ||
    code === 'ER_PARSE_ERROR' ||
    code === 'ER_NO_SUCH_TABLE' ||
    code === 'ER_BAD_FIELD_ERROR'
  )
    return { retryable: false, code: 'database_syntax_error', ...base };
  if (
    state.startsWith('23') ||
    code === 'ER_CHECK_CONSTRAINT_VIOLATED' ||
    code === 'ER_CONSTRAINT_FAILED'
  )
    return { retryable: false, code: 'database_constraint_violation', ...base };
  return { retryable: false, code: 'database_query_failed', ...base };
}
