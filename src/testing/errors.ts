import { KeelError } from '../core/errors.js';

/**
 * The codes of {@link TestAppError}:
 * - `idle_stalled`: `idle()` saw no progress for `idleTimeout` (real time) while something was
 *   still busy (a handler or step awaiting a promise that never settles, for one), or
 *   `runUntilIdle` found a durable timer overdue that nothing will fire.
 * - `time_limit`: `runUntilIdle({ skipTime: true })` would have skipped past its `limit` while
 *   invocations still wait (a workflow that sleeps forever, a retry loop that never ends).
 * - `closed`: the test app was closed.
 * - `not_configured`: a mock or webhook helper was used without what it needs (`integrations`,
 *   `webhooks` or a receiver in the test app's options, SendGrid's private key).
 * - `not_mockable`: `t.mock` cannot take over that integration (installed before the test app
 *   could wrap it, another of the same name, an unknown operation).
 * - `crash_check`: `checkCrashes` found a crash point after which the outcome differed from the
 *   uncrashed run, a completed step ran again, or a handler was invoked more often.
 * - `replay_diverged`: replay checking (`testApp({ replay: 'every-step' })`) replayed an
 *   invocation from its journal and the handler attempted something else than the journal
 *   recorded (the message names the invocation, the handler, the entry and both sides).
 */
export type TestAppErrorCode =
  | 'idle_stalled'
  | 'time_limit'
  | 'closed'
  | 'not_configured'
  | 'not_mockable'
  | 'crash_check'
  | 'replay_diverged';

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
