/**
 * Runs a flow as a Keel workflow (`keel.flows`, keyed by run id): the definition version is the
 * first journal entry, every step is a journal entry named after its id (`ctx.run(step.id)`; an
 * `event` step is the bus's journaled publish, under the same name), and a failing step
 * compensates the completed ones in reverse through the core saga (src/core/saga.ts), so a
 * crash anywhere resumes where the journal ends, compensations included.
 */
import type { WorkflowContext } from '../core/context.js';
import { workflow } from '../core/definitions.js';
import {
  CancelledError,
  errorMessage,
  isTerminal,
  KeelError,
  RetriesExhaustedError,
  TerminalError,
  UsageError,
} from '../core/errors.js';
import type { RetryPolicy } from '../core/retry.js';
import { saga, type Saga, type SagaEvent, type SagaStepOptions } from '../core/saga.js';
import { INTEGRATIONS_RUNTIME } from '../integrations/runtime/durable.js';
import type { OperationMethod } from '../integrations/runtime/client.js';
import { FlowNotFoundError, FlowStepError } from './errors.js';
import { evaluate, truthy } from './expr.js';
import { FLOWS_RUNTIME } from './runtime.js';
import { renderTemplate } from './template.js';
import type { FlowStepFailure, FlowVersion, WorkflowResult } from './types.js';
import type { CompiledStep } from './validate.js';

/** The workflow's name: its runs are listed in the admin API under it. */
export const FLOWS_WORKFLOW = 'keel.flows';

/** The input of one run. */
export interface FlowRunInput {
  flow: string;
  /** The version to run; the latest (read once, journaled) when absent. */
  version?: number;
  input?: unknown;
}

/** What a run keeps in its workflow state (`GET /flows/runs/{id}`), updated as it goes. */
export interface FlowRunState {
  flow: string;
  version: number;
  /** `cancelled`: the run was cancelled, and compensated what it owed (docs/flows.md, "Running"). */
  status:
    'running' | 'compensating' | 'completed' | 'compensated' | 'compensation_failed' | 'cancelled';
  /** The step running now. */
  current?: string;
  completed: string[];
  failed: string[];
  compensated: string[];
}

let busesModule: Promise<typeof import('../buses/publish.js')> | undefined;

/** Compensations are retried until they succeed unless they say otherwise (as saga undos are). */
const UNDO_RETRY: RetryPolicy = {
  maxAttempts: Infinity,
  initialInterval: '200ms',
  maxInterval: '1m',
};

/** A retryable failure of one attempt of an `onError: retry` step (its cause's code kept). */
class StepAttemptError extends KeelError {
  constructor(step: string, cause: unknown) {
    super(`step "${step}": ${errorMessage(cause)}`, {
      code: cause instanceof KeelError ? cause.code : 'step_failed',
      status: 500,
    });
  }
}

/**
 * The engine workflow every flow runs as (added by `createFlows`; internal, so not routable on
 * the ingress). `run` takes a {@link FlowRunInput}; `status` (shared) answers the run's
 * {@link FlowRunState}. Use `runFlow` rather than invoking it directly.
 *
 * @example
 * ```ts
 * const state = await engine.invoke({ service: FLOWS_WORKFLOW, handler: 'status', key: result.runId });
 * ```
 */
export const FlowsWorkflow = workflow({
  name: FLOWS_WORKFLOW,
  internal: true,
  run: (ctx: WorkflowContext, req: FlowRunInput) => runFlowSteps(ctx, req),
  handlers: {
    status: async (ctx) => (await ctx.get<FlowRunState>('state')) ?? null,
  },
});

async function runFlowSteps(ctx: WorkflowContext, req: FlowRunInput): Promise<WorkflowResult> {
  const rt = FLOWS_RUNTIME.of(ctx);
  if (rt === undefined)
    throw new UsageError(
      'keel.flows runs only on an engine with the flows extension (createFlows())',
    );
  // The version is fixed by the journal: a registration while this run is in flight, or a
  // replay after a crash, does not change the definition it runs.
  const record = await ctx.run<FlowVersion>('flow definition', async () => {
    try {
      return await rt.registry.get(req.flow, req.version);
    } catch (err) {
      // Not there now is not there later: terminal, not retried (store errors are retried).
      if (err instanceof FlowNotFoundError)
        throw new TerminalError(err.message, { code: err.code, status: err.status });
      throw err;
    }
  });
  const flow = rt.registry.compile(record);
  const startedAt = await ctx.now();
  const input = req.input ?? null;
  const variables: Record<string, unknown> = {};
  const outputs: Record<string, unknown> = {};
  const results: unknown[] = [];
  const errors: FlowStepFailure[] = [];
  const recorded = new WeakSet<object>();
  /** Forward steps whose compensation failed for good, that failure recorded in `errors`. */
  const undoFailed = new Set<string>();
  const state: FlowRunState = {
    flow: record.name,
    version: record.version,
    status: 'running',
    completed: [],
    failed: [],
    compensated: [],
  };
  const run = {
    id: ctx.key,
    invocationId: ctx.invocationId,
    flow: record.name,
    version: record.version,
  };
  const scope = (): Record<string, unknown> => ({ ...variables, input, steps: outputs, run });
  const save = (): void => ctx.set('state', state);
  save();

  const record_ = (step: string, err: unknown, compensation = false): void => {
    const failure: FlowStepFailure = {
      step,
      code:
        err instanceof FlowStepError
          ? err.errorCode
          : err instanceof KeelError
            ? err.code
            : 'internal',
      message: errorMessage(err),
    };
    if (compensation) failure.compensation = true;
    errors.push(failure);
    if (typeof err === 'object' && err !== null) recorded.add(err);
  };

  const done = (step: CompiledStep, out: unknown): void => {
    outputs[step.id] = out ?? null;
    results.push(out ?? null);
    if (step.storeAs) variables[step.storeAs] = out ?? null;
  };

  /** Runs `step` forward, in the saga: its undo recorded, its failure handled per `onError`. */
  const forward = async (s: Saga, step: CompiledStep): Promise<void> => {
    const options: SagaStepOptions<unknown> = {};
    if (step.compensate.length > 0) {
      options.undo = async () => {
        try {
          await undoList(step.compensate);
        } catch (err) {
          // Already in `errors` under the compensation step's own id: the saga reports the same
          // failure again under this step's id (its undo name), which must not add a second entry.
          if (typeof err === 'object' && err !== null && recorded.has(err)) undoFailed.add(step.id);
          throw err;
        }
      };
      options.undoName = step.id;
      // A step that timed out may still take effect: undo it anyway.
      if (step.timeoutMs !== undefined) (options as { undoWhen?: string }).undoWhen = 'maybe';
    }
    if (step.timeoutMs !== undefined) options.timeout = step.timeoutMs;
    try {
      const out = await s.invoke(
        step.id,
        () => action(step, (list) => forwardList(s, list)),
        options,
      );
      done(step, out);
    } catch (err) {
      // Retryable errors go to the engine (which retries the invocation); branch steps' own
      // failures were recorded where they happened.
      if (!isTerminal(err)) throw err;
      if (typeof err === 'object' && err !== null && recorded.has(err)) throw err;
      record_(step.id, err);
      if (step.onError === 'continue' && !(err instanceof CancelledError)) {
        state.failed.push(step.id);
        return;
      }
      throw err;
    }
  };
  const forwardList = async (s: Saga, list: CompiledStep[]): Promise<unknown> => {
    let last: unknown = null;
    for (const step of list) {
      await forward(s, step);
      last = outputs[step.id] ?? null;
    }
    return last;
  };

  /** Runs compensation steps in order (outside the saga: an undo records no undo of its own). */
  const undoList = async (list: CompiledStep[]): Promise<void> => {
    for (const step of list) {
      try {
        done(step, await action(step, undoList, true));
      } catch (err) {
        if (!isTerminal(err)) throw err;
        if (typeof err === 'object' && err !== null && recorded.has(err)) throw err;
        record_(step.id, err, true);
        if (step.onError === 'continue') continue;
        throw err;
      }
    }
  };

  /** The step's own work, journaled under its id. `branch` runs a conditional's steps. */
  const action = async (
    step: CompiledStep,
    branch: (list: CompiledStep[]) => Promise<unknown>,
    undo = false,
  ): Promise<unknown> => {
    const retry = retryOf(step, undo);
    /** The step's body as a journaled step whose errors follow `onError`. */
    const journaled = <T>(body: () => Promise<T> | T): Promise<T> =>
      Promise.resolve(
        ctx.run(
          step.id,
          async () => {
            try {
              return await body();
            } catch (err) {
              // retry: every failure is retried (the seed retries any error); otherwise the
              // first failure is the step's, with its original code.
              if (retry.maxAttempts !== 1) throw new StepAttemptError(step.id, err);
              throw new FlowStepError(
                step.id,
                err instanceof KeelError ? err.code : 'step_failed',
                `step "${step.id}" failed: ${errorMessage(err)}`,
              );
            }
          },
          { retry },
        ),
      ).catch((err: unknown) => {
        if (err instanceof RetriesExhaustedError)
          throw new FlowStepError(
            step.id,
            'retries_exhausted',
            `step "${step.id}": ${err.message}`,
          );
        throw err;
      });
    switch (step.type) {
      case 'api': {
        const sc = scope();
        const params = renderTemplate(step.params, sc) as Record<string, unknown>;
        const body = step.body === undefined ? undefined : renderTemplate(step.body, sc);
        const headers =
          step.headers === undefined
            ? undefined
            : (stringRecord(renderTemplate(step.headers, sc)) ?? undefined);
        const idempotencyKey = `${ctx.invocationId}:${encodeURIComponent(step.id)}`;
        return journaled(() =>
          callOperation(ctx, step.integration, step.operation, params, {
            idempotencyKey,
            ...(body === undefined ? {} : { body }),
            ...(headers === undefined ? {} : { headers }),
          }),
        );
      }
      case 'database': {
        const args = renderTemplate(step.args, scope()) as unknown[];
        return journaled(async () => {
          const db = rt.database(step.database);
          if (step.query !== undefined) {
            const r = await db.query(step.query, args);
            return { rows: r.rows, rowCount: r.rowCount };
          }
          if (!db.command)
            throw new UsageError(`database "${step.database}" takes SQL queries, not commands`);
          return db.command(step.command!, ...args);
        });
      }
      case 'event': {
        const sc = scope();
        const payload = renderTemplate(step.payload, sc);
        const headers =
          step.headers === undefined ? {} : (stringRecord(renderTemplate(step.headers, sc)) ?? {});
        // Loaded when a flow publishes: the buses' drivers (amqplib, nats, mqtt) stay unloaded
        // in apps without events.
        const { publish } = await (busesModule ??= import('../buses/publish.js'));
        return publish(ctx, step.bus, step.destination, payload, {
          name: step.id,
          routingKey: step.routingKey,
          headers,
        });
      }
      case 'transform': {
        if (step.expression !== undefined) {
          const expression = step.expression;
          return journaled(() => evaluate(expression, scope()));
        }
        const fnName = step.fn!;
        const stepInput = renderTemplate(step.input, scope());
        return journaled(() => {
          const fn = Object.hasOwn(rt.transforms, fnName) ? rt.transforms[fnName] : undefined;
          if (fn === undefined)
            throw new UsageError(`no transform function named "${fnName}" is registered`);
          return fn(stepInput, { input, variables: { ...variables } });
        });
      }
      case 'conditional': {
        const condition = step.condition;
        const taken = await journaled(() => truthy(evaluate(condition, scope())));
        return branch(taken ? step.then : step.else);
      }
    }
  };

  const onEvent = (event: SagaEvent): void => {
    switch (event.type) {
      case 'step_started':
        state.current = event.step;
        break;
      case 'step_completed':
        state.completed.push(event.step);
        delete state.current;
        break;
      case 'compensating':
        state.status = 'compensating';
        if (event.failedStep !== undefined && !state.failed.includes(event.failedStep))
          state.failed.push(event.failedStep);
        delete state.current;
        break;
      case 'undo_completed':
        state.compensated.push(event.undo);
        break;
      default:
        return;
    }
    save();
  };

  let outcome: Awaited<ReturnType<typeof saga<unknown>>>;
  try {
    outcome = await saga(ctx, (s) => forwardList(s, flow.steps), { onEvent });
  } catch (err) {
    // A cancelled saga compensates, then throws: without this the state would say
    // `compensating` for good, of a run that has ended.
    if (err instanceof CancelledError) {
      state.status = 'cancelled';
      delete state.current;
      save();
    }
    throw err;
  }
  let data: unknown = { ...variables };
  if (flow.output !== undefined) {
    try {
      data = renderTemplate(flow.output, scope());
    } catch (err) {
      if (!isTerminal(err)) throw err;
      record_('output', err);
      data = null;
    }
  }
  state.status = outcome.status;
  delete state.current;
  save();
  const endedAt = await ctx.now();
  const result: WorkflowResult = {
    workflow: record.name,
    version: record.version,
    runId: ctx.key,
    invocationId: ctx.invocationId,
    success: outcome.status === 'completed' && errors.length === 0,
    status: outcome.status,
    data,
    outputs,
    results,
    errors,
    compensated: outcome.status === 'completed' ? [] : outcome.compensated,
    duration: endedAt - startedAt,
    startedAt: new Date(startedAt).toISOString(),
    endedAt: new Date(endedAt).toISOString(),
  };
  if (outcome.status !== 'completed') {
    if (outcome.failedStep !== undefined) result.failedStep = outcome.failedStep;
    if (outcome.status === 'compensation_failed') {
      for (const f of outcome.failed) {
        if (!undoFailed.has(f.step) && !errors.some((e) => e.step === f.step && e.compensation))
          errors.push({
            step: f.step,
            code: f.error.code,
            message: f.error.message,
            compensation: true,
          });
      }
    }
  }
  return result;
}

/** The retry policy of a step's journaled body. */
function retryOf(step: CompiledStep, undo: boolean): RetryPolicy {
  if (step.onError === 'retry')
    return {
      maxAttempts: step.retries + 1,
      initialInterval: step.backoff.initialMs,
      maxInterval: step.backoff.maxMs,
      factor: step.backoff.factor,
    };
  if (undo && step.onError === 'fail') return UNDO_RETRY;
  return { maxAttempts: 1 };
}

/** Calls an integration operation by name, through the engine's integrations runtime. */
async function callOperation(
  ctx: WorkflowContext,
  integration: string,
  operation: string,
  params: Record<string, unknown>,
  options: { idempotencyKey: string; body?: unknown; headers?: Record<string, string> },
): Promise<unknown> {
  const rt = INTEGRATIONS_RUNTIME.of(ctx);
  if (rt === undefined)
    throw new UsageError(
      `api steps need the integrations extension: start the app with startApp({ integrations: [...] })`,
    );
  const h = rt.list().find((x) => x.integration.name === integration);
  if (h === undefined) throw new UsageError(`no integration named "${integration}" is declared`);
  const client = rt.client(h.integration) as unknown as Record<string, OperationMethod | undefined>;
  const method = Object.hasOwn(client, operation) ? client[operation] : undefined;
  if (method === undefined)
    throw new UsageError(`integration "${integration}" has no operation "${operation}"`);
  return method(params, options);
}

function stringRecord(v: unknown): Record<string, string> | undefined {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return undefined;
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(v)) out[k] = typeof x === 'string' ? x : JSON.stringify(x);
  return out;
}
