/**
 * What a database adapter is: one file per database (`postgres.ts`, `mysql.ts`, `redis.ts`)
 * that opens a pool and speaks to it. Everything durable (journaled steps, exactly-once markers'
 * keys, status, naming) is outside, so another database (MongoDB, say) is one more file that
 * implements {@link DatabaseAdapter} and is listed in `ADAPTERS`.
 */
import { DatabaseQueryError, DatabaseUnavailableError } from './errors.js';
import type { DatabaseType, QueryResult } from './types.js';

/** A declaration with its URL read and its durations in ms: what an adapter opens. */
export interface ResolvedDatabase {
  name: string;
  type: DatabaseType;
  url: string;
  poolMax: number;
  idleTimeoutMs: number;
  statementTimeoutMs: number | undefined;
  stepsTable: string;
}

/** Opens connections to one kind of database. */
export interface DatabaseAdapter {
  readonly type: DatabaseType;
  /** Makes the pool; connecting may be lazy (the first query or ping connects). */
  open(db: ResolvedDatabase, hooks: AdapterHooks): DatabaseClient;
}

/** How an adapter reports what happens off any request (an idle connection killed by the server). */
export interface AdapterHooks {
  /** A pooled connection broke outside any request: the pool drops it and carries on. */
  connectionLost(err: unknown): void;
}

/** Marks a transaction exactly-once: `key` identifies the step across retries and crashes. */
export interface OnceMarker {
  key: string;
}

/** One open database. Errors are the driver's own; `classify` sorts them. */
export interface DatabaseClient {
  /** SQL databases: runs one statement on a pooled connection. */
  query?(sql: string, params: readonly unknown[]): Promise<QueryResult>;
  /**
   * Runs `fn` in one transaction: commit when it resolves, rollback when it throws. With
   * `once`, a marker row written in the same transaction records the result; when the marker is
   * already there the transaction is not run again and the recorded result is returned.
   */
  transaction?(
    fn: (tx: unknown) => Promise<unknown>,
    once: OnceMarker | undefined,
  ): Promise<unknown>;
  /** Key-value stores: one command. */
  command?(name: string, args: readonly unknown[]): Promise<unknown>;
  /** Throws unless the database answers. */
  ping(): Promise<void>;
  /** Connections open and idle, requests waiting. */
  pool(): { total: number; idle: number; waiting: number };
  /** Sorts a driver error: connection trouble (retryable) or a refusal (terminal). */
  classify(err: unknown): Classified | undefined;
  close(): Promise<void>;
}

/** An error sorted by the adapter (see `errors.ts` for the codes). */
export type Classified =
  | {
      retryable: true;
      code: 'database_unavailable' | 'database_conflict' | 'database_timeout';
      driverCode?: string;
      message: string;
    }
  | {
      retryable: false;
      code: 'database_syntax_error' | 'database_constraint_violation' | 'database_query_failed';
      driverCode?: string;
      message: string;
    };

/** Node's socket error codes: the connection (not the statement) failed. */
export const SOCKET_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'ECONNABORTED',
]);

/** The error's message and `code` property, whatever it is. */
export function describeError(err: unknown): { message: string; code: string | undefined } {
  const e = err as { message?: unknown; code?: unknown } | undefined;
  return {
    message: typeof e?.message === 'string' ? e.message : String(err),
    code:
      typeof e?.code === 'string'
        ? e.code
        : typeof e?.code === 'number'
          ? String(e.code)
          : undefined,
  };
}

/** JSON-safe copy of driver values: dates to ISO strings, bigints to strings. */
export function toJson<T>(value: T): T {
  const text = JSON.stringify(value, (_k, v: unknown) =>
    typeof v === 'bigint' ? v.toString() : v,
  );
  return (text === undefined ? undefined : JSON.parse(text)) as T;
}

/**
 * The driver's error behind `err`: errors handed to a transaction callback are wrapped in Keel's
 * database errors (with the driver's error as `cause`), and adapters sort by the driver's.
 */
export function driverErrorOf(err: unknown): unknown {
  return err instanceof DatabaseQueryError || err instanceof DatabaseUnavailableError
    ? (err.cause ?? err)
    : err;
}
