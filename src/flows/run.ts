/**
 * Starting flow runs from code: {@link runFlow}. The ingress route and the gateway use it too.
 */
import { randomUUID } from 'node:crypto';
import { KeelError } from '../core/errors.js';
import type { Engine } from '../engine/engine.js';
import { kernelOf } from '../engine/kernel.js';
import type { WaitOptions } from '../engine/waiters.js';
import { FlowNotFoundError } from './errors.js';
import { FLOWS_WORKFLOW, type FlowRunInput } from './execute.js';
import type { Flows } from './setup.js';
import type { WorkflowResult } from './types.js';

/** Options of {@link runFlow}. */
export interface RunFlowOptions {
  /** The run's id: a second run with the same id (of the same flow) attaches to the first. */
  id?: string;
  /** Same as `id` when `id` is absent: the same key runs the flow once and answers the same result. */
  idempotencyKey?: string;
}

/** Longest run id / idempotency key accepted. */
const MAX_ID = 256;

/**
 * Runs the latest version of flow `name` with `input` as a durable workflow and resolves with
 * its {@link WorkflowResult} (also when a step failed: see `success`). The run is an invocation
 * of `keel.flows` keyed `{name}:{id}` (listed and inspected in the admin API); the version is
 * fixed when it starts. Rejects with `flow_not_found` (404) for an unknown flow.
 *
 * @example
 * ```ts
 * const result = await runFlow(app.engine, 'order-saga', { orderId: 'o-1', amount: 42 }, {
 *   idempotencyKey: 'order-o-1',
 * });
 * if (!result.success) console.log(result.failedStep, result.compensated);
 * ```
 */
export async function runFlow(
  engine: Engine,
  name: string,
  input: unknown,
  opts: RunFlowOptions = {},
): Promise<WorkflowResult> {
  return runFlowWaiting(engine, name, input, opts, {});
}

/** {@link runFlow} with the engine's wait options (the ingress stops waiting when its client left). */
export async function runFlowWaiting(
  engine: Engine,
  name: string,
  input: unknown,
  opts: RunFlowOptions,
  wait: WaitOptions,
): Promise<WorkflowResult> {
  const flows = flowsOf(engine);
  const version = await flows.runtime.registry.latest(name);
  if (version === undefined) throw new FlowNotFoundError(`no flow named "${name}" is registered`);
  const key = runKey(name, opts);
  const req: FlowRunInput = { flow: name, version, input: input ?? null };
  return (await engine.invoke(
    { service: FLOWS_WORKFLOW, handler: 'run', key, input: req },
    wait,
  )) as WorkflowResult;
}

/** The workflow key of a run: `{name}:{id}`, `{name}:idem:{key}`, or a fresh UUID. */
export function runKey(name: string, opts: RunFlowOptions): string {
  for (const [what, v] of [
    ['id', opts.id],
    ['idempotencyKey', opts.idempotencyKey],
  ] as const) {
    if (v !== undefined && (typeof v !== 'string' || v.length === 0 || v.length > MAX_ID))
      throw new KeelError(`runFlow: ${what} must be a string of 1-${MAX_ID} characters`, {
        code: 'invalid_run_id',
        status: 400,
      });
  }
  if (opts.id !== undefined) return `${name}:${opts.id}`;
  if (opts.idempotencyKey !== undefined) return `${name}:idem:${opts.idempotencyKey}`;
  return `${name}:${randomUUID()}`;
}

/** The flows extension of an engine; a 500 `usage` error when it has none. */
export function flowsOf(engine: Engine): Flows {
  const k = kernelOf(engine);
  const ext = k.extensions.find((e) => e.name === 'flows') as Flows | undefined;
  if (ext === undefined)
    throw new KeelError(
      'this engine has no flows: add createFlows() to its extensions, or start the app with flowsDir',
      {
        code: 'flows_not_enabled',
        status: 500,
      },
    );
  return ext;
}
