import { KeelError, registerErrorClass } from '../core/errors.js';

/**
 * Codes a store raises. Shared by every adapter so the engine and users can match on them
 * regardless of the backend.
 */
export type StoreErrorCode =
  /** The store was closed; the write or read was not performed. */
  | 'store_closed'
  /** The database was migrated by a newer Keel; this code cannot safely use it. */
  | 'schema_too_new'
  /** One `write()` call failed (a constraint, an unserializable value); none of its ops applied. */
  | 'write_failed'
  /** The database or the disk failed (I/O error, failed fsync); the store refuses further writes. */
  | 'store_failed'
  /**
   * The database could not be reached, or the connection was lost while the write was in flight
   * (a server restart, a terminated connection, a deadlock). Retryable: the store reconnects by
   * itself. A write rejected this way may or may not have been applied, when the connection
   * broke after the database received its commit.
   */
  | 'store_unavailable'
  /**
   * Shared stores: the process that sent the write lost its registration (its lease ended and
   * another process took over its invocations); nothing of the write was applied. The process
   * joins the cluster again under a new id; a request that failed this way can be retried.
   */
  | 'process_fenced'
  /**
   * An `invocation.expect` op found the invocation missing or in another status (another
   * process or request changed it first); none of the write's operations were applied. Read
   * the invocation again and decide anew.
   */
  | 'precondition_failed'
  /**
   * A value (an input, an output, a step's result, a state value) whose JSON is longer than the
   * store's `maxPayloadBytes`; none of the write's operations were applied. See docs/payloads.md.
   */
  | 'payload_too_large';

/**
 * An error raised by a Store adapter.
 *
 * @example
 * ```ts
 * try {
 *   await store.write(ops);
 * } catch (err) {
 *   if (err instanceof StoreError && err.code === 'store_closed') return; // shutting down
 *   throw err;
 * }
 * ```
 */
export class StoreError extends KeelError {
  declare readonly code: StoreErrorCode;

  constructor(code: StoreErrorCode, message: string, cause?: unknown) {
    super(message, {
      code,
      status:
        code === 'store_closed' || code === 'store_unavailable' || code === 'process_fenced'
          ? 503
          : code === 'precondition_failed'
            ? 409
            : code === 'payload_too_large'
              ? 413
              : 500,
      cause,
    });
  }
}

/** Every code, so that the registration below cannot miss one the type gains. */
const STORE_ERROR_CODES: Record<StoreErrorCode, true> = {
  store_closed: true,
  schema_too_new: true,
  write_failed: true,
  store_failed: true,
  store_unavailable: true,
  process_fenced: true,
  precondition_failed: true,
  payload_too_large: true,
};

// Rebuilt from a stored outcome as a `StoreError` (see `fromErrorInfo`).
registerErrorClass(StoreError, Object.keys(STORE_ERROR_CODES));
