/**
 * Declaring a database: `database({...})` checks every field at the edge, so a bad declaration
 * fails when the app is built, with a {@link DatabaseConfigError} naming the database and the
 * field, never later inside a handler.
 */
import { parseDuration } from '../core/duration.js';
import { isEnvRef } from '../integrations/declarations/secrets.js';
import { DatabaseConfigError } from './errors.js';
import type { Database, DatabaseConfig, DatabaseType } from './types.js';

const TYPES: readonly DatabaseType[] = ['postgres', 'mysql', 'redis'];
const NAME = /^[A-Za-z][A-Za-z0-9_.-]*$/;
const TABLE = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** The URL schemes each type accepts. */
export const SCHEMES: Record<DatabaseType, readonly string[]> = {
  postgres: ['postgres:', 'postgresql:'],
  mysql: ['mysql:', 'mariadb:'],
  redis: ['redis:', 'rediss:'],
};

/** Defaults of the optional fields. */
export const DEFAULTS = {
  poolMax: 10,
  idleTimeoutMs: 30_000,
  healthCheckIntervalMs: 30_000,
  stepsTable: 'keel_steps',
} as const;

/**
 * Declares a database for handlers to use with `use(ctx, db)`; list it in
 * `createDatabases([...])`. Throws a {@link DatabaseConfigError} for a bad field.
 *
 * @example
 * ```ts
 * import { database, env } from 'keel/databases';
 * export const Orders = database({
 *   name: 'orders',
 *   type: 'postgres',
 *   url: env('ORDERS_DB_URL'),
 *   pool: { max: 10, idleTimeout: '30s' },
 *   healthCheckInterval: '30s',
 *   statementTimeout: '5s',
 * });
 * ```
 */
export function database<T extends DatabaseType>(config: DatabaseConfig<T>): Database<T> {
  checkDatabase(config);
  return Object.freeze({
    name: config.name,
    type: config.type,
    config: Object.freeze({ ...config }),
  });
}

function checkDatabase(c: DatabaseConfig): void {
  if (typeof c !== 'object' || c === null)
    throw new DatabaseConfigError(
      '',
      '',
      'the declaration must be an object: database({ name, type, url })',
    );
  const name = typeof c.name === 'string' ? c.name : '';
  const fail = (field: string, detail: string): never => {
    throw new DatabaseConfigError(name, field, detail);
  };
  if (!NAME.test(name))
    fail(
      'name',
      'must start with a letter and hold only letters, digits, _, . and - (it names journal steps)',
    );
  if (!TYPES.includes(c.type))
    fail('type', `is ${JSON.stringify(c.type)}; write one of ${TYPES.join(', ')}`);
  if (isEnvRef(c.url)) {
    if (!ENV_NAME.test(c.url.env))
      fail(
        'url',
        `names the environment variable ${JSON.stringify(c.url.env)}, which is not a valid name (letters, digits and _)`,
      );
  } else if (typeof c.url === 'string') {
    checkUrl(name, c.type, c.url);
  } else {
    fail(
      'url',
      `must be a URL string or env('NAME'), e.g. ${SCHEMES[c.type]?.[0] ?? 'postgres:'}//host:port/db`,
    );
  }
  const known = new Set([
    'name',
    'type',
    'url',
    'pool',
    'healthCheckInterval',
    'statementTimeout',
    'stepsTable',
  ]);
  for (const key of Object.keys(c))
    if (!known.has(key)) fail(key, `is not a database field (accepted: ${[...known].join(', ')})`);
  if (c.pool !== undefined) {
    if (typeof c.pool !== 'object' || c.pool === null)
      fail('pool', 'must be { max?, idleTimeout? }');
    for (const key of Object.keys(c.pool))
      if (key !== 'max' && key !== 'idleTimeout')
        fail(`pool.${key}`, 'is not a pool field (accepted: max, idleTimeout)');
    const max = c.pool.max;
    if (max !== undefined && !(Number.isInteger(max) && max >= 1 && max <= 1000))
      fail('pool.max', `is ${String(max)}; write a whole number from 1 to 1000`);
    if (c.pool.idleTimeout !== undefined) duration(name, 'pool.idleTimeout', c.pool.idleTimeout);
  }
  if (c.healthCheckInterval !== undefined) {
    const ms = duration(name, 'healthCheckInterval', c.healthCheckInterval);
    if (ms < 1000) fail('healthCheckInterval', 'must be at least 1s');
  }
  if (c.statementTimeout !== undefined) {
    const ms = duration(name, 'statementTimeout', c.statementTimeout);
    if (ms < 1) fail('statementTimeout', 'must be at least 1ms');
  }
  if (c.stepsTable !== undefined && (typeof c.stepsTable !== 'string' || !TABLE.test(c.stepsTable)))
    fail(
      'stepsTable',
      'must be a table name (letters, digits, _), optionally schema-qualified (app.keel_steps)',
    );
  if (c.stepsTable !== undefined && c.type === 'redis')
    fail('stepsTable', 'applies to PostgreSQL and MySQL only');
}

/** A duration field in ms, or a {@link DatabaseConfigError}. */
export function duration(name: string, field: string, value: unknown): number {
  try {
    return parseDuration(value as string | number);
  } catch {
    throw new DatabaseConfigError(
      name,
      field,
      `is ${JSON.stringify(value)}; write a duration like 500ms, 30s or 5m`,
    );
  }
}

/** Checks a URL for a type; the error never repeats the URL's password. */
export function checkUrl(name: string, type: DatabaseType, url: string): URL {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new DatabaseConfigError(
      name,
      'url',
      `is not a URL; write ${SCHEMES[type][0]}//host:port/...`,
    );
  }
  if (!SCHEMES[type].includes(u.protocol))
    throw new DatabaseConfigError(
      name,
      'url',
      `has the scheme ${u.protocol} but the type is ${type}; write ${SCHEMES[type].map((s) => `${s}//`).join(' or ')}`,
    );
  if (u.hostname === '') throw new DatabaseConfigError(name, 'url', 'has no host');
  return u;
}

/** The URL with its password replaced by `***`, for logs and status. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(an unreadable URL)';
  }
}
