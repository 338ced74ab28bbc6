/**
 * One SQL transaction on one connection, with the optional exactly-once marker, shared by the
 * PostgreSQL and MySQL adapters (they differ only in placeholders and DDL, see {@link MarkerSql}).
 *
 * Why a marker: a journaled step that committed its transaction and then lost the process
 * before the journal write runs again after the restart, and would apply the transaction twice.
 * The marker row is written by the same transaction, so it exists if and only if the
 * transaction committed; the re-run finds it and returns the result recorded in it.
 */
import { toJson, type OnceMarker } from './adapter.js';
import type { QueryResult, SqlTransaction } from './types.js';

/** A connection held for the whole transaction. */
export interface SqlSession {
  query(sql: string, params: readonly unknown[]): Promise<QueryResult>;
}

/** The marker table's SQL in one dialect. */
export interface MarkerSql {
  create: string;
  /** Selects `result` by `step_key` (one parameter). */
  select: string;
  /** Inserts `(step_key, result)` (two parameters). */
  insert: string;
}

/** What a marker row holds: the result wrapped, so `undefined` survives. */
interface Recorded {
  v?: unknown;
}

/**
 * Runs `fn` in a transaction on `session`: BEGIN, (marker check), fn, (marker insert), COMMIT;
 * ROLLBACK when anything throws. The caller makes sure the marker table exists (DDL commits
 * implicitly on MySQL, so never inside the transaction) and releases the connection.
 */
export async function runTransaction(
  session: SqlSession,
  fn: (tx: SqlTransaction) => Promise<unknown>,
  once: OnceMarker | undefined,
  marker: MarkerSql,
): Promise<unknown> {
  await session.query('BEGIN', []);
  try {
    if (once !== undefined) {
      const found = await session.query(marker.select, [once.key]);
      if (found.rows.length > 0) {
        await session.query('ROLLBACK', []);
        return decode(found.rows[0]!.result);
      }
    }
    const tx: SqlTransaction = {
      query: (sql, params = []) => session.query(sql, params) as Promise<QueryResult<never>>,
    };
    const value = toJson(await fn(tx));
    if (once !== undefined) {
      await session.query(marker.insert, [
        once.key,
        JSON.stringify({ v: value } satisfies Recorded),
      ]);
    }
    await session.query('COMMIT', []);
    return value;
  } catch (err) {
    await session.query('ROLLBACK', []).catch(() => undefined);
    if (once !== undefined) {
      // A concurrent execution of the same step may have committed first (we then failed on its
      // marker, or on a row it wrote): its result is the step's.
      const found = await session.query(marker.select, [once.key]).catch(() => undefined);
      if (found !== undefined && found.rows.length > 0) return decode(found.rows[0]!.result);
    }
    throw err;
  }
}

function decode(text: unknown): unknown {
  return (JSON.parse(String(text)) as Recorded).v;
}
