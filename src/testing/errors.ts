import { KeelError } from '../core/errors.js';

/**
 * The codes of {@link TestAppError}:
 * - `idle_stalled`: `idle()` saw no progress for `idleTimeout` (real time) while something was
 *   still busy (a handler or step awaiting a promise that never settles, for one), or
 *   `runUntilIdle` found a durable timer overdue that nothing will fire.
 * - `time_limit`: `runUntilIdle({ skipTime: true })` would have skipped past its `limit` while
 *   invocations still wait (a workflow that sleeps forever, a retry loop that never ends).
 * - `closed`: the test app was closed.
 */
export type TestAppErrorCode = 'idle_stalled' | 'time_limit' | 'closed';

/**
 * An error of the test kit itself (not of the code under test): its message says what still
 * waits and what to do.
 *
 * @example
 * ```ts
 * await expect(t.runUntilIdle({ skipTime: true, limit: '30d' })).rejects.toMatchObject({
 *   code: 'time_limit',
 * });
 * ```
 */
export class TestAppError extends KeelError {
  declare readonly code: TestAppErrorCode;

  constructor(message: string, code: TestAppErrorCode) {
    super(message, { code, status: 500 });
  }
}
