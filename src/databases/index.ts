/**
 * Databases as declared integrations (`keel/databases`): PostgreSQL (`pg`), MySQL/MariaDB
 * (`mysql2`) and Redis (`ioredis`) pools owned by the engine, used from handlers inside
 * journaled steps, with exactly-once SQL transactions. See docs/databases.md.
 *
 * @example
 * ```ts
 * import { createDatabases, database, env, use } from 'keel/databases';
 *
 * const Orders = database({ name: 'orders', type: 'postgres', url: env('ORDERS_DB_URL') });
 * const Shop = service({
 *   name: 'Shop',
 *   handlers: {
 *     order: (ctx, item: string) =>
 *       use(ctx, Orders).transaction(async (tx) => {
 *         const { rows } = await tx.query('INSERT INTO orders (item) VALUES ($1) RETURNING id', [item]);
 *         return rows[0];
 *       }, { once: true }),
 *   },
 * });
 * const engine = new Engine({ services: [Shop], store, extensions: [createDatabases([Orders])] });
 * ```
 */
export { database } from './declare.js';
export { createDatabases, databasesOf, DATABASES, DatabasesRuntime } from './setup.js';
export type { Databases, DatabasesOptions } from './setup.js';
export { use } from './use.js';
export type { DatabaseHandle, SqlDatabaseHandle, RedisDatabaseHandle } from './use.js';
export { DatabaseConnection } from './connection.js';
export { DatabaseConfigError, DatabaseQueryError, DatabaseUnavailableError } from './errors.js';
export type { DatabaseQueryCode, DatabaseUnavailableCode } from './errors.js';
export { parseDatabases, readDatabasesFile } from './dsl.js';
export { env } from '../integrations/declarations/secrets.js';
export type { EnvRef } from '../integrations/declarations/secrets.js';
export type { DatabaseAdapter, DatabaseClient, ResolvedDatabase } from './adapter.js';
export type {
  Database,
  DatabaseConfig,
  DatabaseStatus,
  DatabaseType,
  QueryOptions,
  QueryResult,
  RedisTransaction,
  SqlTransaction,
  TransactionOptions,
} from './types.js';
