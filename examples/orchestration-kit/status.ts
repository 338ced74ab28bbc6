/**
 * What every orchestrator of seed 001 shares on top of `saga()`: the status a coordinator
 * keeps of its run (tip 4 of the seed, "track workflow state": the current step, what it waits
 * for, and the history of every step and undo), and the result shape its `run` returns.
 * Compensation itself (tip 3) is `saga()`'s, including the undo of a step whose outcome is in
 * doubt (`undoWhen: 'maybe'`).
 */
import {
  CancelledError,
  parseDuration,
  saga,
  type Duration,
  type ErrorInfo,
  type Saga,
  type SagaEvent,
  type WorkflowContext,
  type WorkflowSharedContext,
} from '../../src/index.js';

/** Where a run is. The last four are final. */
export type RunState =
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
export interface RunStatus {
  state: RunState;
  /** The step running (or waiting, or being compensated) now; null before and after the run. */
  currentStep: string | null;
  waitingFor?: WaitingFor;
  /** Every step event, oldest first. */
  history: HistoryEntry[];
  /** Set once a step failed: which one, and why. */
  failure?: { step: string; error: ErrorInfo };
}

/** How an orchestrator run ended: its own result fields on success, the failure otherwise. */
export type RunResult<T extends object> =
  | ({ status: 'completed' } & T)
  | {
      status: 'compensated' | 'compensation_failed';
      /** The step that failed (`run` when the failure came from outside any step). */
      failedStep: string;
      error: ErrorInfo;
      /** The undos that ran, in the order they ran (the reverse of their steps). */
      compensated: string[];
      /** Undos that failed terminally (only when `status` is `compensation_failed`). */
      failedCompensations?: Array<{ step: string; error: ErrorInfo }>;
    };

const STATUS = 'status';

/** Where the run is, for an orchestrator's shared `status` handler. */
export async function readStatus(ctx: WorkflowSharedContext): Promise<RunStatus> {
  return (
    (await ctx.get<RunStatus>(STATUS)) ?? { state: 'not_started', currentStep: null, history: [] }
  );
}

/** The run's status board, kept in workflow state and read by {@link readStatus}. */
export class RunTracker {
  private status: RunStatus = { state: 'running', currentStep: null, history: [] };

  constructor(private readonly ctx: WorkflowContext) {}

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

  /** @internal What the saga reports, as history lines. */
  async onEvent(e: SagaEvent): Promise<void> {
    switch (e.type) {
      case 'step_started':
        return this.record(e.step, 'started', undefined, { state: 'running', currentStep: e.step });
      case 'step_completed':
        return this.record(e.step, 'completed', undefined, { state: 'running' });
      case 'step_failed': {
        const event = e.error.code === 'timeout' ? 'timed_out' : 'failed';
        return this.record(e.step, event, e.error.message, { state: 'running' });
      }
      case 'compensating':
        this.status.failure = { step: e.failedStep ?? 'run', error: e.error };
        return;
      case 'undo_started':
        return this.record(e.undo, 'compensating', undefined, {
          state: 'compensating',
          currentStep: e.undo,
        });
      case 'undo_completed':
        return this.record(e.undo, 'compensated');
      case 'undo_failed':
        return this.record(e.undo, 'compensation_failed', e.error.message);
    }
  }

  /** @internal */
  async record(
    step: string,
    event: StepEvent,
    detail?: string,
    patch: Partial<RunStatus> = {},
  ): Promise<void> {
    this.push(step, event, detail, await this.ctx.now(), patch);
  }

  private push(
    step: string,
    event: StepEvent,
    detail: string | undefined,
    now: number,
    patch: Partial<RunStatus>,
  ): void {
    const entry: HistoryEntry = { step, event, at: new Date(now).toISOString() };
    if (detail !== undefined) entry.detail = detail;
    const { waitingFor, ...rest } = this.status;
    const next: RunStatus = { ...rest, ...patch, history: [...this.status.history, entry] };
    // Only a run still waiting keeps what it waits for (a note does not end a wait).
    if (next.state === 'waiting' && next.waitingFor === undefined && waitingFor) {
      next.waitingFor = waitingFor;
    }
    this.status = next;
    this.ctx.set(STATUS, this.status);
  }
}

/**
 * Runs one orchestration as a `saga()` whose every step and undo goes to the run's status.
 * A failure (a business error, a timeout, retries exhausted) is compensated by the saga and
 * returned, not thrown: the orchestration itself did its job. A cancellation (admin API)
 * compensates too, then ends the invocation as cancelled.
 *
 * @example
 * ```ts
 * run: async (ctx, order: Order) =>
 *   orchestrate(ctx, async (s) => {
 *     await s.invoke('reserve', () => ctx.objectClient(Stock, order.sku).reserve(order), {
 *       undoWhen: 'maybe',
 *       undoName: 'release',
 *       undo: () => ctx.objectClient(Stock, order.sku).release(order.id),
 *     });
 *     const payment = await s.invoke('charge', () => ctx.objectClient(Payments, order.id).charge(order));
 *     return { paymentId: payment.paymentId };
 *   }),
 * handlers: { status: async (ctx) => readStatus(ctx) },
 * ```
 */
export async function orchestrate<T extends object>(
  ctx: WorkflowContext,
  body: (s: Saga, tracker: RunTracker) => Promise<T>,
): Promise<RunResult<T>> {
  const tracker = new RunTracker(ctx);
  await tracker.record('run', 'started', undefined, { state: 'running' });
  let result;
  try {
    result = await saga(ctx, (s) => body(s, tracker), { onEvent: (e) => tracker.onEvent(e) });
  } catch (err) {
    if (err instanceof CancelledError) {
      await tracker.record('run', 'failed', err.message, { state: 'cancelled', currentStep: null });
    }
    throw err;
  }
  const end = { currentStep: null };
  switch (result.status) {
    case 'completed':
      await tracker.record('run', 'completed', undefined, { ...end, state: 'completed' });
      return { status: 'completed', ...result.value };
    case 'compensated':
      await tracker.record('run', 'compensated', result.error.message, {
        ...end,
        state: 'compensated',
      });
      return {
        status: 'compensated',
        failedStep: result.failedStep ?? 'run',
        error: result.error,
        compensated: result.compensated,
      };
    case 'compensation_failed':
      await tracker.record('run', 'failed', result.error.message, {
        ...end,
        state: 'compensation_failed',
      });
      return {
        status: 'compensation_failed',
        failedStep: result.failedStep ?? 'run',
        error: result.error,
        compensated: result.compensated,
        failedCompensations: result.failed,
      };
  }
}
