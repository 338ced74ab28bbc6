/**
 * Databases from handlers: `use(ctx, db)` gives a handle whose every query, command and
 * transaction is one journaled step (`ctx.run`). Once its result is journaled it is never run
 * again: a replay returns it, a terminal failure included. A step interrupted by a crash runs
 * again (at-least-once), except a transaction with `once: true`, whose marker row makes it
 * exactly-once.
 */
import type { Context } from '../core/context.js';
import { UsageError } from '../core/errors.js';
import type { DurablePromise } from '../core/futures.js';
import type { DatabaseConnection } from './connection.js';
import { DATABASES } from './setup.js';
import type {
  Database,
  DatabaseType,
  QueryOptions,
  QueryResult,
  RedisTransaction,
  SqlTransaction,
  TransactionOptions,
} from './types.js';

/** A SQL database (PostgreSQL, MySQL/MariaDB) in a handler. */
export interface SqlDatabaseHandle {
  /**
   * Runs one statement as a journaled step named `db:{name}:query` (or `options.name`).
   * PostgreSQL takes `$1` placeholders, MySQL `?`.
   *
   * @example
   * ```ts
   * const { rows } = await use(ctx, Orders).query<{ total: string }>('SELECT sum(amount) AS total FROM orders WHERE customer = $1', [id]);
   * ```
   */
  query<R = Record<string, unknown>>(
    sql: string,
    params?: readonly unknown[],
    options?: QueryOptions,
  ): DurablePromise<QueryResult<R>>;
  /**
   * Runs `fn` in one database transaction inside one journaled step (`db:{name}:transaction`):
   * commit when it resolves (its result is journaled), rollback when it throws. A connection
   * failure rolls back and the step is retried per its retry policy; an SQL error is terminal.
   * With `once: true` a crash between the commit and the journal write does not apply it twice.
   *
   * @example
   * ```ts
   * const id = await use(ctx, Orders).transaction(async (tx) => {
   *   const { rows } = await tx.query<{ id: number }>('INSERT INTO orders (item) VALUES ($1) RETURNING id', [item]);
   *   await tx.query('UPDATE stock SET count = count - 1 WHERE item = $1', [item]);
   *   return rows[0]!.id;
   * }, { once: true });
   * ```
   */
  transaction<T>(
    fn: (tx: SqlTransaction) => Promise<T>,
    options?: TransactionOptions,
  ): DurablePromise<T>;
}

/** Redis in a handler. */
export interface RedisDatabaseHandle {
  /**
   * Runs one command as a journaled step named `db:{name}:{command}` (lower case).
   *
   * @example
   * ```ts
   * const visits = await use(ctx, Cache).command<number>('INCR', `visits:${page}`);
   * ```
   */
  command<T = unknown>(name: string, ...args: Array<string | number | Buffer>): DurablePromise<T>;
  /**
   * Queues commands in one MULTI/EXEC inside one journaled step (`db:{name}:transaction`);
   * resolves to their replies. Redis does not roll back: a command that fails at run time (a
   * WRONGTYPE) fails the step but the others stay applied.
   *
   * @example
   * ```ts
   * const [count] = await use(ctx, Cache).transaction((tx) => {
   *   tx.command('INCR', 'orders:count');
   *   tx.command('EXPIRE', 'orders:count', 3600);
   * });
   * ```
   */
  transaction(
    fn: (tx: RedisTransaction) => void | Promise<void>,
    options?: QueryOptions,
  ): DurablePromise<unknown[]>;
}

/** The handle `use` returns for a database of type `T`. */
export type DatabaseHandle<T extends DatabaseType> = T extends 'redis'
  ? RedisDatabaseHandle
  : SqlDatabaseHandle;

/** Database steps made so far by each handler attempt's context: the exactly-once key's position. */
const ordinals = new WeakMap<object, number>();

/**
 * A database in a handler: every call is a journaled step. Pass the declaration, or its name
 * (give the type for a Redis database by name: `use<'redis'>(ctx, 'cache')`).
 *
 * @example
 * ```ts
 * const Shop = service({
 *   name: 'Shop',
 *   handlers: {
 *     order: async (ctx, item: string) => {
 *       const { rows } = await use(ctx, Orders).query('INSERT INTO orders (item) VALUES ($1) RETURNING id', [item]);
 *       await use(ctx, Cache).command('DEL', `orders:${item}`);
 *       return rows[0];
 *     },
 *   },
 * });
 * ```
 */
export function use<T extends DatabaseType>(ctx: Context, db: Database<T>): DatabaseHandle<T>;
export function use<T extends DatabaseType = 'postgres' | 'mysql'>(
  ctx: Context,
  name: string,
): DatabaseHandle<T>;
export function use(ctx: Context, db: Database | string): SqlDatabaseHandle & RedisDatabaseHandle {
  const runtime = DATABASES.of(ctx);
  const name = typeof db === 'string' ? db : db?.name;
  if (runtime === undefined)
    throw new UsageError(
      `use(ctx, ${String(name)}): no databases on this engine. Add createDatabases([...]) to the engine's extensions (or declare it in the integrations file)`,
    );
  const conn = runtime.get(db);
  return makeHandle(ctx, conn);
}

function makeHandle(
  ctx: Context,
  conn: DatabaseConnection,
): SqlDatabaseHandle & RedisDatabaseHandle {
  /** Synchronous up to ctx.run, so concurrent steps take their positions in code order. */
  const position = (): number => {
    const n = ordinals.get(ctx) ?? 0;
    ordinals.set(ctx, n + 1);
    return n;
  };
  const step = <T>(
    defaultName: string,
    options: QueryOptions | undefined,
    fn: () => Promise<T>,
  ): DurablePromise<T> =>
    ctx.run(
      options?.name ?? `db:${conn.name}:${defaultName}`,
      fn,
      options?.retry ? { retry: options.retry } : undefined,
    );
  return {
    query(sql, params = [], options) {
      position();
      return step('query', options, () => conn.query(sql, params)) as DurablePromise<never>;
    },
    command(name, ...args) {
      position();
      return step(name.toLowerCase(), undefined, () =>
        conn.command(name, args),
      ) as DurablePromise<never>;
    },
    transaction(fn: (tx: never) => unknown, options?: TransactionOptions) {
      const n = position();
      const once = options?.once === true ? { key: `${ctx.invocationId}:${n}` } : undefined;
      return step('transaction', options, () =>
        conn.transaction(async (tx) => (fn as (tx: unknown) => unknown)(tx), once),
      ) as DurablePromise<never>;
    },
  };
}
