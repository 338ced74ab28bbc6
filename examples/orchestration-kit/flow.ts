/**
 * The coordinator's bookkeeping every orchestrator of seed 001 shares: a status with the
 * current step and its history (tip 4 of the seed, "track workflow state"), and a stack of
 * compensations run in reverse order when a step fails (tip 3, "implement compensation").
 *
 * It is built from plain Keel pieces (`ctx.set`, `ctx.now`, `ctx.race`, calls) rather than on
 * `saga()`, for one reason: a step that timed out is *in doubt* (the downstream service may
 * still do it), so its undo must be recorded even though the step never answered. `saga()`
 * records an undo only after its step succeeded.
 */
import {
  CancelledError,
  parseDuration,
  TerminalError,
  TimeoutError,
  type Duration,
  type ErrorInfo,
  type WorkflowContext,
  type WorkflowSharedContext,
} from '../../src/index.js';

/** Where a run is. The last four are final. */
export type FlowState =
  | 'not_started'
  | 'running'
  | 'waiting'
  | 'compensating'
  | 'completed'
  | 'compensated'
  | 'compensation_failed'
  | 'cancelled';

/** What happened to a step, in the order it happened. */
export type StepEvent =
  | 'started'
  | 'completed'
  | 'failed'
  | 'timed_out'
  | 'waiting'
  | 'note'
  | 'compensating'
  | 'compensated'
  | 'compensation_failed';

/** One line of a run's history. */
export interface HistoryEntry {
  step: string;
  event: StepEvent;
  /** ISO time, journaled (`ctx.now()`), so a replay rebuilds the same history. */
  at: string;
  detail?: string;
}

/** What a waiting run needs from the outside world to continue. */
export interface WaitingFor {
  /** Who or what it waits for, e.g. `manual approval`. */
  what: string;
  /** Resolve it with `POST /awakeables/{awakeableId}/resolve`. */
  awakeableId?: string;
  /** When the wait gives up (ISO time). */
  deadline?: string;
}

/** The status an orchestrator's `status` handler returns. */
export interface FlowStatus {
  state: FlowState;
  /** The step running (or waiting, or being compensated) now; null before and after the run. */
  currentStep: string | null;
  waitingFor?: WaitingFor;
  /** Every step event, oldest first. */
  history: HistoryEntry[];
  /** Set once a step failed: which one, and why. */
  failure?: { step: string; error: ErrorInfo };
}

/** How an orchestrator run ended: its own result fields on success, the failure otherwise. */
export type FlowResult<T extends object> =
  | ({ status: 'completed' } & T)
  | {
      status: 'compensated' | 'compensation_failed';
      /** The step that failed. */
      failedStep: string;
      error: ErrorInfo;
      /** The undos that ran, in the order they ran (the reverse of their steps). */
      compensated: string[];
      /** Undos that failed terminally (only when `status` is `compensation_failed`). */
      failedCompensations?: Array<{ step: string; error: ErrorInfo }>;
    };

/** Options of {@link Flow.step}. */
export interface StepOptions<T> {
  /**
   * How to undo the step if a later step fails. `run` gets the step's result, or `undefined`
   * when the step got no answer (it timed out, or the run was cancelled while it waited): the
   * effect is then in doubt, so undos should address it by an id known before the step (an
   * order id, a tenant id) and treat "nothing to undo" as done.
   */
  undo?: { name: string; run: (result: T | undefined) => PromiseLike<unknown> };
  /** Give up waiting after this long (a durable timer). The step then fails with `timeout`. */
  timeout?: Duration;
  /** `false`: a failure is recorded and the run continues; the step yields `undefined`. */
  critical?: boolean;
}

const STATUS = 'status';

/** Where the run is, for an orchestrator's shared `status` handler. */
export async function readStatus(ctx: WorkflowSharedContext): Promise<FlowStatus> {
  return (
    (await ctx.get<FlowStatus>(STATUS)) ?? { state: 'not_started', currentStep: null, history: [] }
  );
}

/**
 * Runs the steps of one orchestration, keeps its status in workflow state, and compensates.
 *
 * @example
 * ```ts
 * run: async (ctx, order: Order) => {
 *   const flow = new Flow(ctx);
 *   return flow.run(async () => {
 *     await flow.step('reserve', () => ctx.objectClient(Stock, order.sku).reserve(order), {
 *       undo: { name: 'release', run: () => ctx.objectClient(Stock, order.sku).release(order.id) },
 *     });
 *     const payment = await flow.step('charge', () => ctx.objectClient(Payments, order.id).charge(order));
 *     return { paymentId: payment.paymentId };
 *   });
 * },
 * handlers: { status: async (ctx) => readStatus(ctx) },
 * ```
 */
export class Flow {
  private status: FlowStatus = { state: 'running', currentStep: null, history: [] };
  private readonly undos: Array<{ name: string; run: () => PromiseLike<unknown> }> = [];
  /** The step executing now, which a terminal error is blamed on. */
  private active: string | null = null;

  constructor(private readonly ctx: WorkflowContext) {}

  /**
   * Runs `body`. When a step fails terminally (a business error, a timeout, retries exhausted)
   * the recorded undos run in reverse order and the failure is returned, not thrown: the
   * orchestration itself did its job. A cancellation (admin API) compensates too, then ends
   * the invocation as cancelled.
   */
  async run<T extends object>(body: () => Promise<T>): Promise<FlowResult<T>> {
    await this.record('run', 'started', undefined, { state: 'running' });
    try {
      const value = await body();
      await this.record('run', 'completed', undefined, { state: 'completed', currentStep: null });
      return { status: 'completed', ...value };
    } catch (err) {
      // Anything else is a bug or an outage: throwing it makes the engine retry the handler,
      // and the replay skips every step that already completed.
      if (!(err instanceof TerminalError)) throw err;
      const failedStep = this.active ?? 'run';
      const error = { code: err.code, message: err.message };
      this.status.failure = { step: failedStep, error };
      const { compensated, failed } = await this.compensate();
      const state: FlowState =
        err instanceof CancelledError
          ? 'cancelled'
          : failed.length > 0
            ? 'compensation_failed'
            : 'compensated';
      await this.record('run', state === 'compensated' ? 'compensated' : 'failed', err.message, {
        state,
        currentStep: null,
      });
      if (err instanceof CancelledError) throw err;
      return failed.length > 0
        ? {
            status: 'compensation_failed',
            failedStep,
            error,
            compensated,
            failedCompensations: failed,
          }
        : { status: 'compensated', failedStep, error, compensated };
    }
  }

  /**
   * Runs one step: durable code that calls a downstream service (or several, or `ctx.run`).
   * Its start and end go to the history; its undo, if any, is recorded once it succeeded, or
   * when it got no answer (in doubt).
   */
  async step<T>(name: string, fn: () => PromiseLike<T>, options: StepOptions<T> = {}): Promise<T> {
    await this.record(name, 'started', undefined, { state: 'running', currentStep: name });
    this.active = name;
    let result: T;
    try {
      result =
        options.timeout === undefined ? await fn() : await this.within(name, fn, options.timeout);
    } catch (err) {
      if (!(err instanceof TerminalError)) throw err;
      const timedOut = err instanceof TimeoutError;
      // No answer (a timeout, or a cancellation while waiting): the step may still take effect.
      if ((timedOut || err instanceof CancelledError) && options.undo) {
        const undo = options.undo;
        this.undos.push({ name: undo.name, run: () => undo.run(undefined) });
      }
      await this.record(name, timedOut ? 'timed_out' : 'failed', err.message, {
        state: 'running',
      });
      if (options.critical === false && !(err instanceof CancelledError)) {
        this.active = null;
        return undefined as T;
      }
      throw err;
    }
    if (options.undo) {
      const undo = options.undo;
      this.undos.push({ name: undo.name, run: () => undo.run(result) });
    }
    this.active = null;
    await this.record(name, 'completed', undefined, { state: 'running' });
    return result;
  }

  /**
   * Records that the current step waits for the outside world (a human, a webhook), with the
   * awakeable id to resolve and the deadline, so `status` can tell a user what to send.
   */
  async waiting(what: string, options: { awakeableId?: string; timeout?: Duration } = {}) {
    const now = await this.ctx.now();
    const waitingFor: WaitingFor = { what };
    if (options.awakeableId) waitingFor.awakeableId = options.awakeableId;
    if (options.timeout !== undefined)
      waitingFor.deadline = new Date(now + parseDuration(options.timeout)).toISOString();
    this.push(this.status.currentStep ?? 'run', 'waiting', what, now, {
      state: 'waiting',
      waitingFor,
    });
  }

  /** Adds a line to the history of the current step (e.g. "driver d-1 is offline"). */
  async note(detail: string): Promise<void> {
    await this.record(this.status.currentStep ?? 'run', 'note', detail);
  }

  /** Runs the recorded undos in reverse order; a terminal failure of one does not stop the rest. */
  private async compensate(): Promise<{
    compensated: string[];
    failed: Array<{ step: string; error: ErrorInfo }>;
  }> {
    const compensated: string[] = [];
    const failed: Array<{ step: string; error: ErrorInfo }> = [];
    for (const undo of [...this.undos].reverse()) {
      await this.record(undo.name, 'compensating', undefined, {
        state: 'compensating',
        currentStep: undo.name,
      });
      try {
        await undo.run();
      } catch (err) {
        if (!(err instanceof TerminalError)) throw err;
        failed.push({ step: undo.name, error: { code: err.code, message: err.message } });
        await this.record(undo.name, 'compensation_failed', err.message);
        continue;
      }
      compensated.push(undo.name);
      await this.record(undo.name, 'compensated');
    }
    return { compensated, failed };
  }

  /** Races `fn` against a durable timer; the loser keeps running, unobserved. */
  private async within<T>(name: string, fn: () => PromiseLike<T>, timeout: Duration): Promise<T> {
    const TIMEOUT = Symbol('timeout');
    const winner = await this.ctx.race([
      fn(),
      this.ctx.sleep(timeout).then(() => TIMEOUT),
    ] as const);
    if (winner === TIMEOUT) {
      throw new TimeoutError(`"${name}" did not answer within ${timeout}`);
    }
    return winner as T;
  }

  private async record(
    step: string,
    event: StepEvent,
    detail?: string,
    patch: Partial<FlowStatus> = {},
  ): Promise<void> {
    this.push(step, event, detail, await this.ctx.now(), patch);
  }

  private push(
    step: string,
    event: StepEvent,
    detail: string | undefined,
    now: number,
    patch: Partial<FlowStatus>,
  ): void {
    const entry: HistoryEntry = { step, event, at: new Date(now).toISOString() };
    if (detail !== undefined) entry.detail = detail;
    const { waitingFor, ...rest } = this.status;
    const next: FlowStatus = { ...rest, ...patch, history: [...this.status.history, entry] };
    // Only a run still waiting keeps what it waits for (a note does not end a wait).
    if (next.state === 'waiting' && next.waitingFor === undefined && waitingFor) {
      next.waitingFor = waitingFor;
    }
    this.status = next;
    this.ctx.set(STATUS, this.status);
  }
}
