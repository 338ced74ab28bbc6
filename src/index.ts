/**
 * Keel: durable execution and resilient integrations for TypeScript.
 *
 * @example
 * ```ts
 * import { service, Engine } from 'keel';
 * import { openSqliteStore } from 'keel/sqlite';
 *
 * const Greeter = service({ name: 'Greeter', handlers: { greet: async (ctx, name: string) => `Hello, ${name}!` } });
 * const engine = new Engine({ services: [Greeter], store: openSqliteStore({ path: '.keel/keel.db' }) });
 * await engine.start();
 * ```
 *
 * This entry loads no database driver and no HTTP client: the stores are at `keel/sqlite` and
 * `keel/postgres`, the integrations at `keel/integrations`, webhooks at `keel/webhooks`, and
 * `startApp` (which wires all of them from options) at `keel/app`.
 */
export { service, object, workflow, handler, shared } from './core/definitions.js';
export { queue } from './core/queue.js';
export type { Queue, QueueOptions, RateLimitOptions } from './core/queue.js';
export type {
  Definition,
  ServiceDefinition,
  ObjectDefinition,
  WorkflowDefinition,
  HandlerOptions,
  Client,
  ExternalClient,
  SendClient,
  InputOf,
  OutputOf,
} from './core/definitions.js';
export type {
  Context,
  ObjectContext,
  ObjectSharedContext,
  WorkflowContext,
  WorkflowSharedContext,
  Logger,
  RunOptions,
  CallOptions,
  SendOptions,
  InvocationHandle,
} from './core/context.js';
export {
  KeelError,
  TerminalError,
  RetriesExhaustedError,
  NonDeterminismError,
  ValidationError,
  NotFoundError,
  UsageError,
  ConflictError,
  CancelledError,
  TimeoutError,
  InvalidDelayError,
} from './core/errors.js';
export type { ErrorInfo, KeelErrorOptions } from './core/errors.js';
export {
  InvalidFlowControlError,
  ThrottledError,
  MAX_THROTTLE_LIMIT,
  MAX_FLOW_KEY_LENGTH,
} from './core/flow.js';
export type { DebounceOptions, ThrottleOptions } from './core/flow.js';
export type { KeelErrorCode } from './engine/errors.js';
export { parseDuration, MAX_DELAY_MS } from './core/duration.js';
export type { Duration } from './core/duration.js';
export { DEFAULT_RETRY } from './core/retry.js';
export { DurablePromise } from './core/futures.js';
export { saga } from './core/saga.js';
export type {
  Saga,
  SagaEvent,
  SagaOptions,
  SagaResult,
  SagaStepBaseOptions,
  SagaStepInDoubtOptions,
  SagaStepOnSuccessOptions,
  SagaStepOptions,
  UndoWhen,
} from './core/saga.js';
export type { Values, Settled } from './core/futures.js';
export type { Awakeable, DurablePromiseHandle } from './core/replay.js';
export type { RetryPolicy } from './core/retry.js';
export type { StandardSchemaV1 } from './core/schema.js';
export { Engine, RestartPrefixError } from './engine/engine.js';
export type {
  EngineOptions,
  EngineLogger,
  InvokeRequest,
  SendResult,
  InvocationInfo,
  RestartOptions,
  RestartPrefixCode,
} from './engine/engine.js';
export {
  createLogger,
  keelLogger,
  LOG_LEVELS,
  LogLevelError,
  parseLogLevel,
  toEngineLogger,
} from './observability/log.js';
export type { LogDestination, LogLevel, LogOptions } from './observability/log.js';
export { attemptOf, contextKey, runWithWrites } from './engine/extension.js';
export type {
  ContextKey,
  EngineExtension,
  ExtensionHost,
  StepWithWrites,
  StepWrite,
} from './engine/extension.js';
export { systemClock } from './engine/clock.js';
export type { Clock } from './engine/clock.js';
export type { Store, InvocationRow, InvocationStatus, WriteOp } from './store/types.js';
export { serve } from './ingress/index.js';
export type { IngressOptions, IngressServer } from './ingress/index.js';
export { serveAdmin } from './admin/index.js';
export type { AdminOptions, AdminServer } from './admin/index.js';
export type { HttpServer, HttpServerOptions } from './http/server.js';
