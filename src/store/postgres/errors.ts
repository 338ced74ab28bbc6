import { StoreError } from '../errors.js';

/**
 * SQLSTATE classes after which the same statement can succeed later: connection exceptions
 * (08), transaction rollbacks such as deadlocks and serialization failures (40), insufficient
 * resources (53), operator intervention such as a terminated backend or a shutdown (57), and
 * system errors (58).
 */
const TRANSIENT_CLASSES = new Set(['08', '40', '53', '57', '58']);

/** Node socket errors: the server is down or unreachable. */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

export function isTransientSqlState(state: string | undefined): boolean {
  return state !== undefined && TRANSIENT_CLASSES.has(state.slice(0, 2));
}

/**
 * Whether an error from node-postgres means the database could not be reached or the connection
 * broke, rather than a statement that failed on its own.
 */
export function isUnavailable(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string') {
    if (NETWORK_CODES.has(code)) return true;
    if (/^[0-9A-Z]{5}$/.test(code)) return isTransientSqlState(code);
  }
  // node-postgres reports a lost connection and a connect timeout with plain Errors.
  const message = (err as { message?: unknown }).message;
  return (
    typeof message === 'string' &&
    /Connection terminated|connection timeout|Client has encountered a connection error|not queryable/i.test(
      message,
    )
  );
}

/**
 * Whether an error says that a connection broke (terminated backend, reset socket), as opposed
 * to a server that cannot be reached at all: a new connection may well work at once.
 */
export function isBrokenConnection(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const code = (err as { code?: unknown }).code;
  if (code === '57P01' || code === '57P02' || code === 'ECONNRESET' || code === 'EPIPE')
    return true;
  if (typeof code === 'string' && code.startsWith('08')) return true;
  const message = (err as { message?: unknown }).message;
  return (
    typeof message === 'string' &&
    /Connection terminated unexpectedly|Client has encountered a connection error/i.test(message)
  );
}

export function msg(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The StoreError for an error of node-postgres outside `apply`'s per-call handling. */
export function asStoreError(err: unknown, what: string): StoreError {
  if (err instanceof StoreError) return err;
  if (isUnavailable(err)) {
    return new StoreError(
      'store_unavailable',
      `${what} failed because PostgreSQL is unavailable (${msg(err)}). The store reconnects by itself; retry later.`,
      err,
    );
  }
  return new StoreError('store_failed', `${what} failed: ${msg(err)}`, err);
}
