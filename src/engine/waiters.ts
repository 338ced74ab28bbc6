import { KeelError } from '../core/errors.js';

/**
 * The limits of waiting for a result from outside the engine (the ingress's attach and
 * blocking calls, `Engine.attach`). A waiter is a few hundred bytes in the engine, but each
 * holds an HTTP request and response too (~5 KiB): unbounded and never released, clients that
 * give up could pin memory for as long as a 30-day workflow runs.
 */

/**
 * The most callers that may wait on one invocation's result at a time. Enough for any real
 * fan-in (dashboards, retries of one call); the next one is refused with
 * {@link TooManyWaitersError}.
 */
export const MAX_WAITERS = 1000;

/** How long a refused waiter is told to wait before trying again (`Retry-After`), in seconds. */
export const WAITERS_RETRY_AFTER_S = 1;

/** Options of a wait for a result from outside the engine. */
export interface WaitOptions {
  /**
   * Stops the wait when it aborts, e.g. when the HTTP client went away: the waiter is released
   * at once and the wait rejects with code `abandoned`. The invocation itself goes on.
   */
  signal?: AbortSignal;
  /** The same as `signal`, as Keel's HTTP servers give it (see {@link Gone}). */
  gone?: Gone;
}

/**
 * An event that ends a wait, as `WaitOptions.signal` does, without an AbortController and an
 * EventTarget per request: on the 3-step workflow at 32 clients those cost a few percent of the
 * server's CPU. One watcher at a time.
 */
export interface Gone {
  readonly happened: boolean;
  /** Calls `fn` once, when it happens; the function returned forgets `fn`. */
  watch(fn: () => void): () => void;
}

/** An AbortSignal as a {@link Gone}. */
export function goneOnAbort(signal: AbortSignal): Gone {
  return {
    get happened() {
      return signal.aborted;
    },
    watch(fn) {
      signal.addEventListener('abort', fn, { once: true });
      return () => signal.removeEventListener('abort', fn);
    },
  };
}

/** An invocation already has {@link MAX_WAITERS} waiters. HTTP 429 with `Retry-After`. */
export class TooManyWaitersError extends KeelError {
  readonly retryAfterSeconds = WAITERS_RETRY_AFTER_S;

  constructor(id: string) {
    super(
      `invocation "${id}" already has ${MAX_WAITERS} callers waiting for its result: ` +
        `poll GET /invocations/${id}/output instead, or retry the wait in a while`,
      { code: 'too_many_waiters', status: 429 },
    );
  }
}

/** The rejection of a wait whose signal aborted (nobody is left to read it). */
export function abandoned(id: string): KeelError {
  return new KeelError(`the wait for invocation "${id}" was abandoned by its caller`, {
    code: 'abandoned',
    status: 499,
  });
}
