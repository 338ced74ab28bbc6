/**
 * The shape of a declarative flow, as an author writes it (JSON or YAML), and of its result.
 * Modelled on seed 004's `IntegrationWorkflow` / `WorkflowStep` / `WorkflowResult`, made
 * durable: see docs/flows.md.
 */
import type { Duration } from '../core/duration.js';

/** The kinds of step. */
export type FlowStepType = 'api' | 'database' | 'event' | 'transform' | 'conditional';

/** What a failing step does to its flow. */
export type FlowOnError = 'fail' | 'continue' | 'retry';

/** Fields every step has. */
export interface FlowStepBase {
  /** Unique in the flow (branches and compensations included); its journal entry's name. */
  id?: string;
  /** The seed's field: used as the id when `id` is absent. */
  name?: string;
  type: FlowStepType;
  /** Keep the step's output as a variable, read as `{{name}}` by later steps. */
  storeAs?: string;
  /**
   * `fail` (default): the flow stops, completed steps are compensated in reverse;
   * `continue`: the error is recorded and the flow goes on; `retry`: the step is retried
   * (`retries` times, with `backoff`), then fails the flow.
   */
  onError?: FlowOnError;
  /** With `onError: retry`: retries after the first attempt (default 3, at most 100). */
  retries?: number;
  /** With `onError: retry`: the wait before retry n is `initial * factor^(n-1)`, capped at `max`. */
  backoff?: { initial?: Duration; max?: Duration; factor?: number };
  /**
   * Stop waiting for the step after this long (a durable timer); the flow then fails and
   * compensates, this step included (its effect may still happen).
   */
  timeout?: Duration;
  /** Undoes this step when a later step fails the flow: one step, or a list run in order. */
  compensate?: FlowStep | FlowStep[];
}

/** Calls an operation of a declared integration (one journaled step). */
export interface ApiStep extends FlowStepBase {
  type: 'api';
  /** The integration's name. */
  integration?: string;
  /** The seed's name for `integration`: give one of the two. */
  api?: string;
  operation: string;
  /** The operation's parameters (path, query and body placeholders); templates allowed. */
  params?: Record<string, unknown>;
  /** A body replacing the one built from `params`. */
  body?: unknown;
  headers?: Record<string, string>;
}

/** A SQL query (PostgreSQL, MariaDB) or a Redis command on a declared database. */
export interface DatabaseStep extends FlowStepBase {
  type: 'database';
  database: string;
  /** SQL with the driver's placeholders (`$1` on PostgreSQL, `?` on MariaDB). */
  query?: string;
  /** The query's parameters (a list). */
  params?: unknown[];
  /** A Redis command (`GET`, `SET`, `INCRBY`, ...) instead of `query`. */
  command?: string;
  args?: unknown[];
}

/** Publishes a message on RabbitMQ or NATS (journaled, published once). */
export interface EventStep extends FlowStepBase {
  type: 'event';
  bus: 'rabbitmq' | 'nats';
  /** RabbitMQ exchange or NATS subject. */
  destination?: string;
  /** The seed's name for `destination`: give one of the two. */
  topic?: string;
  routingKey?: string;
  /** The message. */
  payload?: unknown;
  /** The seed's name for `payload`. */
  params?: unknown;
  headers?: Record<string, string>;
}

/** Computes a value: a registered TypeScript function, or an expression. */
export interface TransformStep extends FlowStepBase {
  type: 'transform';
  /** A function registered with `createFlows({ transforms })`, given `input`. */
  function?: string;
  /** An expression over the flow's variables (see docs/flows.md), instead of `function`. */
  expression?: string;
  input?: unknown;
}

/** Runs `then` or `else` depending on `condition`. */
export interface ConditionalStep extends FlowStepBase {
  type: 'conditional';
  /** An expression (`"charge.status == 'paid'"`, or wrapped in `{{ }}`), or a boolean. */
  condition: string | boolean;
  then?: FlowStep | FlowStep[];
  else?: FlowStep | FlowStep[];
}

export type FlowStep = ApiStep | DatabaseStep | EventStep | TransformStep | ConditionalStep;

/** A flow definition. */
export interface FlowDefinition {
  /** Letters, digits, `_`, `.`, `-`, starting with a letter; at most 100 characters. */
  name: string;
  description?: string;
  steps: FlowStep[];
  /** The result's `data`: a template over the variables; default: every stored variable. */
  output?: unknown;
}

/** One step's failure in a {@link WorkflowResult}. */
export interface FlowStepFailure {
  /** The step's id (`undo <id>` style names are not used: compensations have ids of their own). */
  step: string;
  /** The original error's code (`integration_rejected`, `timeout`, `retries_exhausted`, ...). */
  code: string;
  message: string;
  /** True for a compensation step. */
  compensation?: boolean;
}

/** What a flow run returns (the seed's `WorkflowResult`, made real). */
export interface WorkflowResult {
  /** The flow's name. */
  workflow: string;
  /** The definition version this run used (the one registered when it started). */
  version: number;
  /** The run's id (the workflow key), and its invocation in the admin API. */
  runId: string;
  invocationId: string;
  /** True when no step failed (steps with `onError: continue` included). */
  success: boolean;
  /**
   * `completed` (possibly with continued errors), `compensated` (a step failed, the completed
   * steps were undone), `compensation_failed` (an undo failed too).
   */
  status: 'completed' | 'compensated' | 'compensation_failed';
  /** The `output` template's value, or the stored variables. */
  data: unknown;
  /** Each completed step's output, by id. */
  outputs: Record<string, unknown>;
  /** The outputs in the order the steps completed (the seed's `results`). */
  results: unknown[];
  errors: FlowStepFailure[];
  /** The step whose failure stopped the flow. */
  failedStep?: string;
  /** Steps undone, in the order their compensations ran. */
  compensated: string[];
  /** Milliseconds from start to end, from journaled times (so the same on every replay). */
  duration: number;
  startedAt: string;
  endedAt: string;
}

/** A registered version of a flow. */
export interface FlowVersion {
  name: string;
  version: number;
  definition: FlowDefinition;
  /** ISO time of the registration. */
  registeredAt: string;
}
