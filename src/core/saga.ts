import type { Context } from './context.js';
import type { Duration } from './duration.js';
import {
  CancelledError,
  errorMessage,
  isTerminal,
  KeelError,
  TimeoutError,
  toErrorInfo,
  type ErrorInfo,
} from './errors.js';
import type { ContextImpl } from './replay.js';
import type { RetryPolicy } from './retry.js';

/**
 * When a step's undo is owed, and so runs if the saga later fails (or is cancelled):
 * - `'succeeded'` (the default): once the step returned a result. The undo is recorded after
 *   the step, in memory, and gets the result.
 * - `'maybe'`: also when the step's outcome is *in doubt*: it timed out (its `timeout` or a
 *   `TimeoutError` from inside it), or the invocation was cancelled while the step was in
 *   flight. The downstream service may still do the work after the saga stopped waiting, so
 *   the undo must run anyway. A step that failed for sure (any other terminal error) owes
 *   nothing.
 * - `'started'`: as soon as the step started, whatever its outcome, failures included (for a
 *   step that may leave part of its work behind when it fails).
 *
 * With `'maybe'` and `'started'` the undo is registered *before* the step runs, as a journal
 * entry of its own (`register undo: <step>`), so a replay after a crash knows it was owed, and
 * the undo gets `undefined` instead of a result when the step did not return one. An undo is
 * never owed for a step that did not start: a cancellation that arrives before the step takes
 * the registration's place, and then neither the step nor its undo runs.
 */
export type UndoWhen = 'succeeded' | 'maybe' | 'started';

/** What every saga step accepts, whatever its undo. */
export interface SagaStepBaseOptions {
  /**
   * `false`: a failure of this step is logged and the saga continues (the step yields
   * `undefined`). A cancellation still stops the saga. Default `true`.
   */
  critical?: boolean;
  /** Retry policy of the step itself (`step` only: an `invoke`'s calls have their own). */
  retry?: RetryPolicy;
  /**
   * Stop waiting for the step after this long (a durable timer): the step then fails with a
   * `TimeoutError` (code `timeout`). The step itself is not stopped: a call goes on in its
   * callee. Its undo is owed only with `undoWhen: 'maybe'` or `'started'`.
   */
  timeout?: Duration;
  /**
   * The undo's name: in the saga's `compensated` list, its events and, for `compensate`, its
   * journal entry. Default: the step's name in the list, `undo <step>` in the journal.
   */
  undoName?: string;
}

/** A step whose undo is owed only once it succeeded (the default). */
export interface SagaStepOnSuccessOptions<T> extends SagaStepBaseOptions {
  undoWhen?: 'succeeded';
  /**
   * Undoes the step, given its result. Runs as a journaled step (`ctx.run`) retried until it
   * succeeds, so it must be idempotent (e.g. refund by payment id).
   */
  compensate?: (result: T) => unknown;
  /**
   * Undoes the step with durable code of its own (calls to other handlers, several steps):
   * runs as-is, not wrapped in `ctx.run`. It may run again after a crash: make it idempotent.
   */
  undo?: (result: T) => PromiseLike<unknown>;
}

/**
 * A step whose undo is registered before it runs (see {@link UndoWhen}). The undo gets the
 * step's result, or `undefined` when there is none (timed out, cancelled, failed): it must then
 * address the effect by something known before the step (an order id, a tenant id), treat
 * "nothing to undo" as done, and, since the downstream may act *after* the undo, leave a mark
 * that makes a late arrival a no-op (e.g. a refund that voids a charge still to come). Like
 * every undo it may run more than once after a crash: idempotency is the undo's job.
 */
export interface SagaStepInDoubtOptions<T> extends SagaStepBaseOptions {
  undoWhen: 'maybe' | 'started';
  /** As for a step undone on success; gets `undefined` when the step returned nothing. */
  compensate?: (result: T | undefined) => unknown;
  /** As for a step undone on success; gets `undefined` when the step returned nothing. */
  undo?: (result: T | undefined) => PromiseLike<unknown>;
}

/** Options of one saga step. */
export type SagaStepOptions<T> = SagaStepOnSuccessOptions<T> | SagaStepInDoubtOptions<T>;

/** How a saga ended. */
export type SagaResult<T> =
  | { status: 'completed'; value: T }
  | {
      status: 'compensated';
      error: ErrorInfo;
      /** The step whose failure stopped the saga, when the failure came from a step. */
      failedStep?: string;
      compensated: string[];
    }
  | {
      status: 'compensation_failed';
      error: ErrorInfo;
      failedStep?: string;
      compensated: string[];
      failed: Array<{ step: string; error: ErrorInfo }>;
    };

/**
 * What happened in a saga, in order, for {@link SagaOptions.onEvent}: steps starting and ending,
 * the saga turning to compensation, and each undo (named by its `undoName`).
 */
export type SagaEvent =
  | { type: 'step_started'; step: string }
  | { type: 'step_completed'; step: string }
  | {
      type: 'step_failed';
      step: string;
      error: ErrorInfo;
      /** The step timed out or was cancelled in flight: it may still take effect. */
      inDoubt: boolean;
    }
  | { type: 'compensating'; failedStep: string | undefined; error: ErrorInfo; undos: string[] }
  | { type: 'undo_started'; undo: string }
  | { type: 'undo_completed'; undo: string }
  | { type: 'undo_failed'; undo: string; error: ErrorInfo };

/** Options of {@link saga}. */
export interface SagaOptions {
  /**
   * Called, and awaited, at each {@link SagaEvent}: e.g. to keep a status in workflow state
   * (`ctx.set`) for a shared `status` handler. It runs in the handler, so it must be
   * deterministic (use `ctx.now()`, not `Date.now()`); an error it throws is the saga's.
   */
  onEvent?: (event: SagaEvent) => unknown;
}

/** The step recorder handed to a saga's body. */
export interface Saga {
  /**
   * Runs `fn` as a journaled step (`ctx.run`) and records its undo (see {@link UndoWhen}).
   *
   * @example
   * ```ts
   * const paymentId = await s.step('charge', () => payments.charge(order), {
   *   compensate: (id) => payments.refund(id),
   * });
   * // A payment API that may time out and charge anyway: refund by order id in any case.
   * await s.step('charge', () => psp.charge(order.id, order.amount), {
   *   timeout: '30s',
   *   undoWhen: 'maybe',
   *   compensate: () => psp.refundOrder(order.id),
   * });
   * ```
   */
  step<T>(name: string, fn: () => T | Promise<T>, options: SagaStepInDoubtOptions<T>): Promise<T>;
  step<T>(
    name: string,
    fn: () => T | Promise<T>,
    options?: SagaStepOnSuccessOptions<T>,
  ): Promise<T>;
  step<T>(name: string, fn: () => T | Promise<T>, options?: SagaStepOptions<T>): Promise<T>;
  /**
   * Runs durable code that is not a single step (typically a call to another handler) and
   * records its undo (see {@link UndoWhen}).
   *
   * @example
   * ```ts
   * const hold = await s.invoke('reserve seats', () => ctx.objectClient(Seats, eventId).hold(seats), {
   *   undo: (h) => ctx.objectClient(Seats, eventId).release(h.holdId),
   * });
   * // A call that may hang: after 5 minutes give up, and undo it even if it answers later.
   * await s.invoke('charge', () => ctx.objectClient(Payments, orderId).charge(amount), {
   *   timeout: '5m',
   *   undoWhen: 'maybe',
   *   undoName: 'refund',
   *   undo: () => ctx.objectClient(Payments, orderId).refund(),
   * });
   * ```
   */
  invoke<T>(name: string, fn: () => PromiseLike<T>, options: SagaStepInDoubtOptions<T>): Promise<T>;
  invoke<T>(
    name: string,
    fn: () => PromiseLike<T>,
    options?: SagaStepOnSuccessOptions<T>,
  ): Promise<T>;
  invoke<T>(name: string, fn: () => PromiseLike<T>, options?: SagaStepOptions<T>): Promise<T>;
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
  /** False until the undo is owed (an in-doubt registration is journaled first). */
  owed: boolean;
  run: () => PromiseLike<unknown>;
}

const TIMED_OUT = Symbol('timed out');

/** Timed out or cancelled: the step's outcome is unknown. */
function inDoubt(err: unknown): boolean {
  return (
    err instanceof TimeoutError ||
    err instanceof CancelledError ||
    (err instanceof KeelError && (err.code === 'timeout' || err.code === 'cancelled'))
  );
}

/**
 * Runs `body` as a saga: each step records its undo; when a critical step fails terminally
 * (or its retries run out, or it times out) or the invocation is cancelled, the undos owed run
 * in reverse order of their steps, each a journaled step retried until it succeeds (or durable
 * code of its own), so a crash in the middle of compensating resumes compensating. A step whose
 * outcome is in doubt (timed out, cancelled in flight) can owe its undo too: see
 * {@link UndoWhen}. The outcome is returned and also shown as the invocation's `outcome`
 * (`completed`, `compensated`, `compensation_failed`). A cancelled saga (cancelled before or
 * while compensating) compensates fully and then ends with the `CancelledError`.
 *
 * Undos must be idempotent: a crash during an undo runs it again, and an in-doubt undo may
 * find nothing to undo, or run before the late work it undoes arrives.
 *
 * @example
 * ```ts
 * run: async (ctx, order: Order) => {
 *   const result = await saga(ctx, async (s) => {
 *     const paymentId = await s.step('charge', () => pay(order), { compensate: (id) => refund(id) });
 *     await s.invoke('reserve', () => ctx.objectClient(Stock, order.sku).reserve(order.id), {
 *       timeout: '5m',
 *       undoWhen: 'maybe', // a reservation that answers late is released too
 *       undo: () => ctx.objectClient(Stock, order.sku).release(order.id),
 *     });
 *     await s.step('email', () => sendEmail(order), { critical: false });
 *     return { paymentId };
 *   });
 *   return result.status === 'completed' ? { status: 'completed', ...result.value } : { status: 'failed' };
 * }
 * ```
 */
export async function saga<T>(
  ctx: Context,
  body: (s: Saga) => Promise<T>,
  options: SagaOptions = {},
): Promise<SagaResult<T>> {
  const compensations: Compensation[] = [];
  const impl = ctx as unknown as ContextImpl;
  /** Which step an error came out of (the innermost, for nested steps). */
  const failedIn = new WeakMap<object, string>();
  // Without a listener nothing is awaited: a saga's steps take their journal positions exactly
  // as before events existed, so journals written then still replay.
  const listener = options.onEvent;
  const emit = listener
    ? async (event: SagaEvent): Promise<void> => {
        await listener(event);
      }
    : undefined;

  const undoOf = <R>(name: string, o: SagaStepOptions<R> | undefined) => {
    const compensate = o?.compensate as ((r: R | undefined) => unknown) | undefined;
    const undo = o?.undo as ((r: R | undefined) => PromiseLike<unknown>) | undefined;
    if (compensate) {
      const entryName = o?.undoName ?? `undo ${name}`;
      return (r: R | undefined) =>
        ctx.run(entryName, () => compensate(r), { retry: COMPENSATION_RETRY });
    }
    return undo;
  };

  const waitFor = async <R>(name: string, work: PromiseLike<R>, timeout?: Duration) => {
    if (timeout === undefined) return work;
    // The loser goes on unobserved: a call keeps running in its callee, which is the doubt.
    const winner = await ctx.race([work, ctx.sleep(timeout).then(() => TIMED_OUT)] as const);
    if (winner === TIMED_OUT) {
      throw new TimeoutError(`saga step "${name}" did not answer within ${String(timeout)}`);
    }
    return winner as R;
  };

  /**
   * Runs one step. `start(gate)` starts its work; with an in-doubt undo, `gate` settles once the
   * registration is journaled (rejected if a cancellation took its place), and the work must
   * not act before it.
   */
  const guard = async <R>(
    name: string,
    o: SagaStepOptions<R> | undefined,
    start: (gate: Promise<unknown> | undefined) => PromiseLike<R>,
  ): Promise<R> => {
    const when: UndoWhen = o?.undoWhen ?? 'succeeded';
    const undo = undoOf(name, o);
    const undoName = o?.undoName ?? name;
    if (emit) await emit({ type: 'step_started', step: name });
    let result: R | undefined;
    let entry: Compensation | undefined;
    try {
      if (undo && when !== 'succeeded') {
        // Take the undo's place in the order now, so parallel steps undo in the order they
        // started, and owe it once the registration is journaled.
        const c: Compensation = { name: undoName, owed: false, run: () => undo(result) };
        entry = c;
        compensations.push(c);
        const registered = ctx.run(`register undo: ${name}`, () => true);
        const work = start(Promise.resolve(registered));
        // If the registration fails, so does the work, and nobody awaits it.
        Promise.resolve(work).catch(() => undefined);
        await registered;
        c.owed = true;
        result = await waitFor(name, work, o?.timeout);
      } else {
        result = await waitFor(name, start(undefined), o?.timeout);
      }
    } catch (err) {
      if (!isTerminal(err)) throw err;
      if (entry && when === 'maybe' && !inDoubt(err)) entry.owed = false;
      if (typeof err === 'object' && err !== null && !failedIn.has(err)) failedIn.set(err, name);
      if (emit) {
        await emit({
          type: 'step_failed',
          step: name,
          error: toErrorInfo(err),
          inDoubt: inDoubt(err),
        });
      }
      if (o?.critical === false && !(err instanceof CancelledError)) {
        ctx.log.warn(
          `saga step "${name}" failed and is not critical; continuing: ${errorMessage(err)}`,
        );
        return undefined as R;
      }
      throw err;
    }
    if (undo && when === 'succeeded') {
      const r = result;
      compensations.push({ name: undoName, owed: true, run: () => undo(r) });
    }
    if (emit) await emit({ type: 'step_completed', step: name });
    return result;
  };

  const s: Saga = {
    step: <R>(name: string, fn: () => R | Promise<R>, o?: SagaStepOptions<R>) =>
      guard(name, o, (gate) =>
        ctx.run(
          name,
          // The registration and the step are started in one synchronous stretch, so a pending
          // cancellation is taken by the registration; the body then waits for it to be durable
          // and never acts when it was not.
          gate
            ? async () => {
                await gate;
                return fn();
              }
            : fn,
          { retry: o?.retry },
        ),
      ),
    invoke: <R>(name: string, fn: () => PromiseLike<R>, o?: SagaStepOptions<R>) =>
      guard(name, o, async (gate) => {
        // Durable code starts its calls at once: let it begin only after the registration.
        // A cancellation that arrives while the registration is written reaches the code's
        // first call instead; the undo, registered by then, runs (and finds nothing to undo).
        if (gate) await gate;
        return fn();
      }),
    onRollback: (name, compensate) => {
      compensations.push({
        name,
        owed: true,
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
    const failedStep = typeof err === 'object' && err !== null ? failedIn.get(err) : undefined;
    let cancelled = err instanceof CancelledError ? err : undefined;
    /** Runs `fn`; a cancellation arriving meanwhile is noted and `fn` run again (it comes once). */
    const shielded = async <R>(fn: () => PromiseLike<R>): Promise<R> => {
      try {
        return await fn();
      } catch (e) {
        if (!(e instanceof CancelledError) || cancelled) throw e;
        cancelled = e;
        return fn();
      }
    };
    const owed = compensations.filter((c) => c.owed).reverse();
    ctx.log.warn(`saga failed at: ${error.message}; compensating ${owed.length} step(s)`);
    const report = (event: SagaEvent) => (emit ? shielded(() => emit(event)) : undefined);
    await report({ type: 'compensating', failedStep, error, undos: owed.map((c) => c.name) });
    const compensated: string[] = [];
    const failed: Array<{ step: string; error: ErrorInfo }> = [];
    for (const c of owed) {
      await report({ type: 'undo_started', undo: c.name });
      try {
        await shielded(c.run);
      } catch (undoErr) {
        // Only a terminal error ends a compensation; record it and undo the rest anyway.
        // Anything else is retried by the engine, which replays the undos already done.
        if (!isTerminal(undoErr)) throw undoErr;
        const info = toErrorInfo(undoErr);
        failed.push({ step: c.name, error: info });
        await report({ type: 'undo_failed', undo: c.name, error: info });
        continue;
      }
      compensated.push(c.name);
      await report({ type: 'undo_completed', undo: c.name });
    }
    const outcome = failed.length > 0 ? 'compensation_failed' : 'compensated';
    impl.setOutcome?.(outcome);
    if (cancelled) throw cancelled;
    const at = failedStep === undefined ? {} : { failedStep };
    return failed.length > 0
      ? { status: 'compensation_failed', error, ...at, compensated, failed }
      : { status: 'compensated', error, ...at, compensated };
  }
}
