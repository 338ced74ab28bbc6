/**
 * `keel/client`: call a Keel app over HTTP from another Node app, a browser, Deno or Bun, with
 * the typed API handlers use inside Keel. Import the definitions as types only: this entry
 * loads no engine, no store and no Node module, only the global `fetch`.
 *
 * @example
 * ```ts
 * import { connect, TerminalError } from 'keel/client';
 * import type { Greeter } from '../server/services.js';
 *
 * const keel = connect({ url: 'http://127.0.0.1:9080' });
 * try {
 *   console.log(await keel.serviceClient<typeof Greeter>('Greeter').greet('Ada'));
 * } catch (err) {
 *   if (err instanceof TerminalError) console.error(err.code, err.status, err.message);
 * }
 * ```
 */
export { connect } from './connect.js';
export { NetworkError, UnexpectedAnswerError } from './errors.js';
export { CLIENT_RETRY } from './http.js';
export type {
  ConnectOptions,
  InvocationInfo,
  InvocationOutput,
  InvocationRef,
  InvocationStatus,
  KeelClient,
  ReadOptions,
  RemoteCallOptions,
  RemoteClient,
  RemoteSendCallOptions,
  RemoteSendClient,
  RemoteSendOptions,
  RemoteTarget,
  RetryInfo,
  SentInvocation,
} from './types.js';
// The error classes answers are rebuilt as: the same classes `keel` exports (one module), so
// `instanceof` agrees in an app that imports both.
export {
  CancelledError,
  ConflictError,
  InvalidDelayError,
  KeelError,
  NonDeterminismError,
  NotFoundError,
  RetriesExhaustedError,
  TerminalError,
  TimeoutError,
  UsageError,
  ValidationError,
} from '../core/errors.js';
export type { ErrorInfo } from '../core/errors.js';
export { InvalidFlowControlError, ThrottledError } from '../core/flow.js';
export type { DebounceOptions, ThrottleOptions } from '../core/flow.js';
export type { Duration } from '../core/duration.js';
export type { RetryPolicy } from '../core/retry.js';
