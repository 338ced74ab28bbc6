import type { CONFLICT_CODES, CoreErrorCode } from '../core/errors.js';
import type { StoreErrorCode } from '../store/errors.js';

/** The codes the engine raises beyond the core's and the store's. */
export type EngineErrorCode =
  /** The engine is stopping or stopped; the request was not accepted (HTTP 503). */
  | 'engine_stopped'
  /** The engine was used before `start()` (HTTP 503). */
  | 'engine_not_started'
  /** An operator killed the invocation (HTTP 409). */
  | 'killed'
  /** A caller stopped waiting for a result (its signal aborted); the invocation goes on. */
  | 'abandoned'
  /** Too many callers wait on one invocation's result (HTTP 429). */
  | 'too_many_waiters'
  /** A stored journal could not be read or replayed; the invocation is paused. */
  | 'journal_unreadable'
  /** The secret that derives awakeable ids could not be read or created (HTTP 503). */
  | 'secret_unavailable'
  /** The stored secret is damaged (HTTP 500). */
  | 'secret_damaged'
  /** Debounce options that cannot be used (HTTP 400; nothing stored). */
  | 'invalid_debounce'
  /** Throttle options that cannot be used (HTTP 400; nothing stored). */
  | 'invalid_throttle'
  /** A throttled send in `drop` mode found no free slot (`ThrottledError`; the ingress answers 200 `{ dropped: true }`). */
  | 'throttled'
  /** A debounce or throttle key was contended past the engine's retries (HTTP 503: send again). */
  | 'debounce_contended'
  | 'throttle_contended';

/**
 * Every code the engine (with its core and its store) raises, for matching on `err.code`. A
 * stored error comes back as the class its code belongs to (`retries_exhausted` as
 * `RetriesExhaustedError`, `not_found` as `NotFoundError`, ...); codes users give their own
 * `TerminalError`s are plain strings beside these.
 *
 * @example
 * ```ts
 * function retryable(code: KeelErrorCode): boolean {
 *   return code === 'engine_stopped' || code === 'store_unavailable' || code === 'too_many_waiters';
 * }
 * ```
 */
export type KeelErrorCode =
  CoreErrorCode | (typeof CONFLICT_CODES)[number] | EngineErrorCode | StoreErrorCode;
