/**
 * Where the database tests find PostgreSQL, MariaDB and Redis (overridable by env), and a
 * random name per test run so tests never share tables or keys.
 */
import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import { reachable } from '../buses/helpers.js';

export { reachable, sqliteEngines, until } from '../buses/helpers.js';

/** PostgreSQL: `KEEL_TEST_PG_URL`, else the server the global setup found (test/setup/postgres.ts). */
export const PG_URL = process.env.KEEL_TEST_PG_URL ?? inject('postgresUrl');
export const MYSQL_URL = process.env.KEEL_TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test';
export const REDIS_URL = process.env.KEEL_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** Whether the server answers; prints why the file's tests are skipped when it does not. */
export async function available(
  what: string,
  url: string,
  port: number,
  file: string,
): Promise<boolean> {
  const up = await reachable(url, port);
  if (!up)
    console.log(`SKIPPED ${file}: ${what} unreachable at ${url.replace(/:[^:@/]*@/, ':***@')}`);
  return up;
}

/** A fresh lower-case identifier: schema, table or key prefix of one test. */
export const uniqueName = (prefix: string): string => `${prefix}_${randomBytes(5).toString('hex')}`;
