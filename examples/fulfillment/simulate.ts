/**
 * The failure switch every fulfillment service honours, so each failure point of the pipeline
 * can be triggered by hand: an order may carry `"simulate": { "<service>": mode }`, and the
 * orchestrator hands that mode to the service it calls.
 *
 * - `flaky`: the service fails twice with a transient error, then succeeds: the engine retries
 *   the call with backoff (see {@link DOWNSTREAM_RETRY}) and the order goes through.
 * - `down`: the service fails transiently on every attempt: the retries run out and the order is
 *   compensated.
 * - `fail`: the service refuses at once with its business error (not retried).
 */
import { z } from 'zod';
import {
  attemptOf,
  TerminalError,
  type ObjectSharedContext,
  type RetryPolicy,
} from '../../src/index.js';

/** How a simulated service misbehaves. */
export type FailureMode = 'fail' | 'flaky' | 'down';

const mode = z.enum(['fail', 'flaky', 'down']).optional();

/** The schema of an order's `simulate` field: a failure mode per service. */
export const simulateSchema = z
  .object({ inventory: mode, warehouse: mode, carrier: mode, notification: mode })
  .strict()
  .optional()
  .describe(
    'per service: "fail" (refuses), "flaky" (fails twice, then works), "down" (always fails)',
  );
export type Simulate = z.infer<typeof simulateSchema>;

/** How many attempts a `flaky` service fails before it works. */
export const FLAKY_FAILURES = 2;

/**
 * The retry policy of every downstream service: a transient failure is retried after 1 s, 2 s,
 * 4 s, 8 s (with jitter), then the call fails and the orchestrator compensates.
 */
export const DOWNSTREAM_RETRY: RetryPolicy = {
  maxAttempts: 5,
  initialInterval: '1s',
  factor: 2,
  maxInterval: '30s',
};

/**
 * Fails the calling handler as `mode` asks; does nothing otherwise. Returns the attempt number
 * (1 for the first), which the services report so a caller can see that retries happened.
 *
 * @example
 * ```ts
 * const attempt = simulated(ctx, req.simulate, { code: 'out_of_stock', message: 'no stock' });
 * ```
 */
export function simulated(
  ctx: ObjectSharedContext,
  mode: FailureMode | undefined,
  failure: { code: string; message: string; status?: number },
): number {
  const attempt = (attemptOf(ctx) ?? 0) + 1;
  if (mode === 'fail') {
    throw new TerminalError(`${failure.message} (simulated)`, {
      code: failure.code,
      status: failure.status ?? 502,
    });
  }
  if (mode === 'down' || (mode === 'flaky' && attempt <= FLAKY_FAILURES)) {
    // A plain Error is retryable: the engine backs off and runs the handler again.
    throw new Error(`${ctx.key}: service temporarily unavailable, attempt ${attempt} (simulated)`);
  }
  return attempt;
}
