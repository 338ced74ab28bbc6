import type { Duration } from '../core/duration.js';
import type { RetryPolicy } from '../core/retry.js';
import type { EnvRef } from '../integrations/declarations/secrets.js';

/** The databases Keel connects to (one adapter file each in `src/databases/`). */
export type DatabaseType = 'postgres' | 'mysql' | 'redis';

/** A database as declared, in code (`database({...})`) or in an integrations file. */
export interface DatabaseConfig<T extends DatabaseType = DatabaseType> {
  /** Unique per engine; names its journal steps (`db:{name}:query`), logs and status rows. */
  name: string;
  type: T;
  /**
   * The connection URL (`postgres://`, `mysql://` or `mariadb://`, `redis://` or `rediss://`),
   * or `env('NAME')` to read it from the environment when the engine starts. A file may not
   * hold a literal URL with a password. The URL is never logged nor shown with its password.
   */
  url: string | EnvRef;
  /** Connection pool: at most `max` connections (default 10); idle ones closed after `idleTimeout` (default 30s). Redis uses one connection. */
  pool?: { max?: number; idleTimeout?: Duration };
  /** How often active health checks should `ping()` it. Default 30s. */
  healthCheckInterval?: Duration;
  /** Longest a statement may run (PostgreSQL `statement_timeout`, a MySQL query timeout, Redis `commandTimeout`). Default: none. */
  statementTimeout?: Duration;
  /**
   * The table of exactly-once markers (`transaction(fn, { once: true })`), created on first use
   * in the user's database; may be schema-qualified (`app.keel_steps`). Default `keel_steps`.
   */
  stepsTable?: string;
}

/** A validated declaration: pass it to `createDatabases([...])` and to `use(ctx, db)`. */
export interface Database<T extends DatabaseType = DatabaseType> {
  readonly name: string;
  readonly type: T;
  /** The declaration as given (its `url` still an `env()` reference when it was one). */
  readonly config: Readonly<DatabaseConfig<T>>;
}

/** What a SQL query resolves to: plain JSON rows (dates as ISO strings, 64-bit integers as strings). */
export interface QueryResult<R = Record<string, unknown>> {
  rows: R[];
  /** Rows returned (SELECT) or affected (INSERT, UPDATE, DELETE). */
  rowCount: number;
  /** MySQL/MariaDB: the AUTO_INCREMENT id of an INSERT, when there is one. */
  insertId?: number | string;
}

/** Options of a journaled query or command. */
export interface QueryOptions {
  /** The journal step's name. Default `db:{database}:query` (`db:{database}:{command}` for Redis). */
  name?: string;
  /** The step's retry policy (connection errors are retried; SQL errors are terminal). */
  retry?: RetryPolicy;
}

/** Options of a journaled transaction. */
export interface TransactionOptions extends QueryOptions {
  /**
   * Exactly once (PostgreSQL, MySQL): the transaction also writes a marker row (invocation id and
   * step position) in the steps table, so a retry after a crash between the commit and the
   * journal write finds the marker and returns the recorded result instead of applying the
   * transaction again. The callback's result must be JSON. Default false.
   */
  once?: boolean;
}

/** Runs SQL inside a transaction. */
export interface SqlTransaction {
  query<R = Record<string, unknown>>(
    sql: string,
    params?: readonly unknown[],
  ): Promise<QueryResult<R>>;
}

/** Queues Redis commands for one MULTI/EXEC. */
export interface RedisTransaction {
  command(name: string, ...args: Array<string | number | Buffer>): void;
}

/** A point-in-time view of one database, for status pages and health checks. */
export interface DatabaseStatus {
  name: string;
  type: DatabaseType;
  /** The URL with its password replaced by `***` (`env(NAME)` before the engine started). */
  url: string;
  /** `unknown` until the first query or ping; `up` after a success; `down` after a connection failure; `closed` stopped. */
  state: 'unknown' | 'up' | 'down' | 'closed';
  /** When `state` last changed (ISO-8601). */
  since: string;
  /** The last connection failure (without secrets), while down. */
  lastError?: string;
  /** When `ping()` last ran (ISO-8601). */
  lastCheckAt?: string;
  healthCheckIntervalMs: number;
  /** Connections open, idle and requests waiting for one. */
  pool: { total: number; idle: number; waiting: number };
}
