/**
 * The errors of declared databases. Each names the database; none repeats a password.
 * Connection trouble is retryable ({@link DatabaseUnavailableError}: the journaled step runs
 * again per its retry policy, on a fresh connection); what the database refused is terminal
 * ({@link DatabaseQueryError}: retrying the same SQL would fail the same way).
 */
import { KeelError, registerErrorClass, TerminalError } from '../core/errors.js';

/**
 * A database declaration Keel refuses: `field` is the field at fault (`url`, `pool.max`),
 * `detail` the complaint. Code `invalid_database`.
 *
 * @example
 * ```ts
 * try {
 *   database({ name: 'orders', type: 'postgres', url: 'http://x' });
 * } catch (err) {
 *   if (err instanceof DatabaseConfigError) console.error(err.database, err.field, err.detail);
 * }
 * ```
 */
export class DatabaseConfigError extends TerminalError {
  constructor(
    readonly database: string,
    readonly field: string,
    readonly detail: string,
  ) {
    super(`database ${database || '(unnamed)'}: ${field === '' ? '' : `${field} `}${detail}`, {
      code: 'invalid_database',
      status: 500,
    });
  }
}

/** Why a query failed for good. */
export type DatabaseQueryCode =
  /** The SQL does not parse, or names a table or column that does not exist. */
  | 'database_syntax_error'
  /** A unique, foreign-key, not-null or check constraint refused the write. */
  | 'database_constraint_violation'
  /** Any other refusal (bad parameter type, permission, ...): see `driverCode`. */
  | 'database_query_failed'
  /** A use Keel refuses (a Redis command on a SQL database, ...). */
  | 'database_misuse';

/**
 * The database refused a statement or command: terminal, not retried. `driverCode` is the
 * server's own code (PostgreSQL SQLSTATE like `23505`, MySQL `ER_DUP_ENTRY`, the Redis error
 * prefix like `WRONGTYPE`).
 *
 * @example
 * ```ts
 * try {
 *   await use(ctx, Orders).query('INSERT INTO orders (id) VALUES ($1)', [id]);
 * } catch (err) {
 *   if (err instanceof DatabaseQueryError && err.code === 'database_constraint_violation') return 'duplicate';
 *   throw err;
 * }
 * ```
 */
export class DatabaseQueryError extends TerminalError {
  constructor(
    readonly database: string,
    code: DatabaseQueryCode,
    message: string,
    readonly driverCode?: string,
    cause?: unknown,
  ) {
    super(`database ${database}: ${message}`, { code, status: 500, cause });
  }
}

/** Why a database could not be reached (all retryable). */
export type DatabaseUnavailableCode =
  /** Connecting failed or the connection broke (server restarted, connection killed, network). */
  | 'database_unavailable'
  /** A serialization failure or deadlock: the transaction may succeed when run again. */
  | 'database_conflict'
  /** The statement ran past `statementTimeout`, or no pooled connection came in time. */
  | 'database_timeout';

/**
 * The database could not be reached or asked for a retry: retryable, so the journaled step
 * runs again (on a fresh connection) per its retry policy.
 *
 * @example
 * ```ts
 * await use(ctx, Orders).query('SELECT 1', [], { retry: { maxAttempts: 20, maxInterval: '10s' } });
 * ```
 */
export class DatabaseUnavailableError extends KeelError {
  constructor(
    readonly database: string,
    code: DatabaseUnavailableCode,
    message: string,
    readonly driverCode?: string,
    cause?: unknown,
  ) {
    super(`database ${database}: ${message}`, { code, status: 503, cause });
  }
}

registerErrorClass(DatabaseConfigError, ['invalid_database']);
registerErrorClass(DatabaseQueryError, [
  'database_syntax_error',
  'database_constraint_violation',
  'database_query_failed',
  'database_misuse',
]);
registerErrorClass(DatabaseUnavailableError, [
  'database_unavailable',
  'database_conflict',
  'database_timeout',
]);
