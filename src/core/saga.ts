import type { Context } from './context.js';
import { CancelledError, errorMessage, isTerminal, toErrorInfo, type ErrorInfo } from './errors.js';
import type { ContextImpl } from './replay.js';
import type { RetryPolicy } from './retry.js';

/** Options of one saga step. */
export interface SagaStepOptions<T> {
  /**
   * Undoes the step, given its result. Runs as a journaled step (`ctx.run`) retried until it
   * succeeds, so it must be idempotent (e.g. refund by payment id).
   */
  compensate?: (result: T) => unknown;
  /**
   * Undoes the step with durable code of its own (calls to other handlers, several steps):
   * runs as-is, not wrapped in `ctx.run`.
   */
  undo?: (result: T) => Promise<unknown>;
  /** `false`: a failure of this step is logged and the saga continues (the step yields `undefined`). Default `true`. */
  critical?: boolean;
  /** Retry policy of the step itself. */
  retry?: RetryPolicy;
}

/** How a saga ended. */
export type SagaResult<T> =
  | { status: 'completed'; value: T }
  | { status: 'compensated'; error: ErrorInfo; compensated: string[] }
  | {
      status: 'compensation_failed';
      error: ErrorInfo;
      compensated: string[];
      failed: Array<{ step: string; error: ErrorInfo }>;
    };

/** The step recorder handed to a saga's body. */
export interface Saga {
  /**
   * Runs `fn` as a journaled step and, once it succeeded, records its compensation.
   *
   * @example
   * ```ts
   * const paymentId = await s.step('charge', () => payments.charge(order), {
   *   compensate: (id) => payments.refund(id),
   * });
   * ```
   */
  step<T>(name: string, fn: () => T | Promise<T>, options?: SagaStepOptions<T>): Promise<T>;
  /**
   * Runs durable code that is not a single step (typically a call to another handler) and
   * records its compensation.
   *
   * @example
   * ```ts
   * const hold = await s.invoke('reserve seats', () => ctx.objectClient(Seats, eventId).hold(seats), {
   *   undo: (h) => ctx.objectClient(Seats, eventId).release(h.holdId),
   * });
   * ```
   */
  invoke<T>(name: string, fn: () => Promise<T>, options?: SagaStepOptions<T>): Promise<T>;
  /**
   * Records a compensation without a step (e.g. after a side effect done elsewhere).
   *
   * @example
   * ```ts
   * s.onRollback('notify support', () => support.notify(orderId));
   * ```
   */
  onRollback(name: string, compensate: () => unknown): void;
}

/** Compensations are retried until they succeed: a failed undo must not be given up on. */
const COMPENSATION_RETRY: RetryPolicy = {
  maxAttempts: Infinity,
  initialInterval: '200ms',
  maxInterval: '1m',
};

interface Compensation {
  name: string;
  run: () => Promise<unknown>;
}

/**
 * Runs `body` as a saga: each successful step records its compensation; when a critical step
 * fails terminally (or its retries run out) or the invocation is cancelled, the recorded
 * compensations run in reverse order, each a journaled step retried until it succeeds, so a
 * crash in the middle of compensating resumes compensating. The outcome is returned and also
 * shown as the invocation's `outcome` (`completed`, `compensated`, `compensation_failed`).
 * A cancelled saga compensates and then ends with the `CancelledError`.
 *
 * @example
 * ```ts
 * run: async (ctx, order: Order) => {
 *   const result = await saga(ctx, async (s) => {
 *     const paymentId = await s.step('charge', () => pay(order), { compensate: (id) => refund(id) });
 *     await s.step('reserve', () => reserve(order.items), { compensate: (r) => release(r) });
 *     await s.step('email', () => sendEmail(order), { critical: false });
 *     return { paymentId };
 *   });
 *   return result.status === 'completed' ? { status: 'completed', ...result.value } : { status: 'failed' };
 * }
 * ```
 */
export async function saga<T>(ctx: Context, body: (s: Saga) => Promise<T>): Promise<SagaResult<T>> {
  const compensations: Compensation[] = [];
  const impl = ctx as unknown as ContextImpl;

  const guard = async <R>(
    name: string,
    options: SagaStepOptions<R> | undefined,
    run: () => PromiseLike<R>,
  ): Promise<R> => {
    let result: R;
    try {
      result = await run();
    } catch (err) {
      if (options?.critical === false && !(err instanceof CancelledError)) {
        ctx.log.warn(
          `saga step "${name}" failed and is not critical; continuing: ${errorMessage(err)}`,
        );
        return undefined as R;
      }
      throw err;
    }
    if (options?.compensate) {
      const undo = options.compensate;
      compensations.push({
        name,
        run: () => ctx.run(`undo ${name}`, () => undo(result), { retry: COMPENSATION_RETRY }),
      });
    } else if (options?.undo) {
      const undo = options.undo;
      compensations.push({ name, run: () => undo(result) });
    }
    return result;
  };

  const s: Saga = {
    step: (name, fn, options) =>
      guard(name, options, () => ctx.run(name, fn, { retry: options?.retry })),
    invoke: (name, fn, options) => guard(name, options, fn),
    onRollback: (name, compensate) => {
      compensations.push({
        name,
        run: () => ctx.run(`undo ${name}`, compensate, { retry: COMPENSATION_RETRY }),
      });
    },
  };

  try {
    const value = await body(s);
    impl.setOutcome?.('completed');
    return { status: 'completed', value };
  } catch (err) {
    // Only terminal failures (incl. exhausted retries and cancellation) reach here: anything
    // retryable was retried by the engine before the step gave up.
    if (!isTerminal(err)) throw err;
    const error = toErrorInfo(err);
    ctx.log.warn(`saga failed at: ${error.message}; compensating ${compensations.length} step(s)`);
    const compensated: string[] = [];
    const failed: Array<{ step: string; error: ErrorInfo }> = [];
    for (const c of compensations.reverse()) {
      try {
        await c.run();
        compensated.push(c.name);
      } catch (undoErr) {
        // Only a terminal error ends a compensation; record it and undo the rest anyway.
        failed.push({ step: c.name, error: toErrorInfo(undoErr) });
      }
    }
    const outcome = failed.length > 0 ? 'compensation_failed' : 'compensated';
    impl.setOutcome?.(outcome);
    if (err instanceof CancelledError) throw err;
    return failed.length > 0
      ? { status: 'compensation_failed', error, compensated, failed }
      : { status: 'compensated', error, compensated };
  }
}
