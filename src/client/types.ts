/**
 * The types of the remote client. Every import here is `import type`: this file emits nothing,
 * so the definitions' types reach a client bundle without the engine, the stores or Node.
 */
import type { CallOptions, SendOptions } from '../core/context.js';
import type {
  Definition,
  InputOf,
  ObjectDefinition,
  OutputOf,
  ServiceDefinition,
  WorkflowDefinition,
} from '../core/definitions.js';
import type { Duration } from '../core/duration.js';
import type { DebounceOptions, ThrottleOptions } from '../core/flow.js';
import type { RetryPolicy } from '../core/retry.js';
import type { InvocationInfo } from '../engine/info.js';
import type { InvocationStatus } from '../store/types.js';

export type { InvocationInfo, InvocationStatus };

/** Options of {@link connect}. Only `url` is required. */
export interface ConnectOptions {
  /** The ingress's base URL, e.g. `http://127.0.0.1:9080` (a path prefix is kept). */
  url: string;
  /**
   * An ingress API key (`KEEL_INGRESS_KEYS` on the server), sent as
   * `Authorization: Bearer <key>`. To send it as `X-API-Key` instead (when `Authorization` is
   * used by a proxy), give `headers: { 'x-api-key': key }`. Default: none.
   */
  apiKey?: string;
  /** Headers sent with every request (e.g. `traceparent`). Default: none. */
  headers?: Readonly<Record<string, string>>;
  /**
   * How requests that may be repeated safely are retried after a network error (refused,
   * reset, timed out) or a 429, 502, 503 or 504 answer: Keel's one retry vocabulary. Only
   * idempotent requests are retried: calls and sends with an `idempotencyKey`, a workflow's
   * `run` (deduplicated by its key), and reading an invocation (`attach`, `output`,
   * `getInvocation`). `false` retries nothing. Default: 5 attempts, from 100 ms doubling to at
   * most 5 s, ±20% jitter, a `Retry-After` honoured up to 30 s.
   */
  retry?: RetryPolicy | false;
  /**
   * Called before each retry, e.g. to log it. `error` is what the attempt met (a
   * {@link NetworkError} or the answer's error). Default: none.
   */
  onRetry?: (info: RetryInfo) => void;
  /**
   * The `fetch` to use. Default: the global one (Node 18+, browsers, Deno, Bun). Give one to
   * route through a proxy agent or to add instrumentation.
   */
  fetch?: typeof globalThis.fetch;
}

/** What {@link ConnectOptions.onRetry} is told before a retry. */
export interface RetryInfo {
  method: string;
  /** The request's path, without the base URL. */
  path: string;
  /** The attempt that failed (1 = the first). */
  attempt: number;
  /** How long the client waits before the next attempt. */
  delayMs: number;
  error: Error;
}

/** Options of one remote call: the handlers' `CallOptions` and an abort signal. */
export interface RemoteCallOptions extends CallOptions {
  /** Aborts the request (and any wait between retries) with the signal's reason. */
  signal?: AbortSignal;
}

/** Options of a remote send client: those of `ctx.serviceSendClient` and an abort signal. */
export interface RemoteSendOptions extends SendOptions {
  signal?: AbortSignal;
}

/** Options of a request that only reads (`attach`, `output`, `getInvocation`). */
export interface ReadOptions {
  signal?: AbortSignal;
}

/**
 * A handler's parameters, exactly as the handlers' own typed clients take them: the input is
 * optional only when the handler takes none (or accepts `undefined`).
 */
type Args<I, Opt> = [unknown] extends [I]
  ? [input?: I, options?: Opt]
  : undefined extends I
    ? [input?: I, options?: Opt]
    : [input: I, options?: Opt];

/** The result of handler `K` of `D`. */
type Result<D extends Definition, K extends keyof D['handlers']> = Awaited<
  OutputOf<D['handlers'][K]>
>;

/**
 * A request-response client of a remote Keel app: one method per handler, typed from the
 * definition as `ctx.serviceClient(Def)` is, returning a plain promise of the result.
 */
export type RemoteClient<D extends Definition> = {
  [K in keyof D['handlers']]: (
    ...args: Args<InputOf<D['handlers'][K]>, RemoteCallOptions>
  ) => Promise<Result<D, K>>;
};

/**
 * A one-way client of a remote Keel app: one method per handler, resolving once the
 * invocation is accepted (`202`), with a handle to wait for its result.
 */
export type RemoteSendClient<D extends Definition> = {
  [K in keyof D['handlers']]: (
    ...args: Args<InputOf<D['handlers'][K]>, RemoteCallOptions>
  ) => Promise<SentInvocation<Result<D, K>>>;
};

/** The output of an invocation, read without waiting (`GET /invocations/{id}/output`). */
export type InvocationOutput<O> =
  { ready: true; output: O } | { ready: false; status: InvocationStatus };

/** An invocation of a remote app, by id: wait for it, read its output or its status. */
export interface InvocationRef<O = unknown> {
  readonly invocationId: string;
  /**
   * Waits until the invocation finishes and resolves with its result, or rejects with its
   * error (a `TerminalError` with the handler's code and status, `CancelledError`, ...).
   * Retried after a network error: attaching again changes nothing.
   */
  attach(options?: ReadOptions): Promise<O>;
  /**
   * The result if the invocation has finished (`{ ready: true, output }`), else its status.
   * Rejects with the invocation's error if it failed.
   */
  output(options?: ReadOptions): Promise<InvocationOutput<O>>;
  /** Its status and metadata, as `GET /invocations/{id}` shows them. */
  info(options?: ReadOptions): Promise<InvocationInfo>;
}

/** What a send resolves with: the accepted invocation, and a handle to it. */
export interface SentInvocation<O = unknown> extends InvocationRef<O> {
  /** The status when accepted: `pending`, `scheduled` (a delayed send), or later ones. */
  readonly status: InvocationStatus;
  /** True when the idempotency key (or a workflow's key) matched an existing invocation. */
  readonly existing: boolean;
}

/** A handler named by strings, for {@link KeelClient.call} and {@link KeelClient.send}. */
export interface RemoteTarget {
  service: string;
  handler: string;
  /** The object's or workflow's key; omit for a service. */
  key?: string;
}

/**
 * Per-send options of {@link KeelClient.send}: a call's, a delay, and debounce or throttle (see
 * docs/flow-control.md). A send a throttle in `drop` mode refused rejects with `ThrottledError`
 * (code `throttled`, `retryAfterMs`); it is not retried.
 */
export interface RemoteSendCallOptions extends RemoteCallOptions {
  /** Start the invocation after this delay (`500ms`, `10s`, `PT1M`, or milliseconds). */
  delay?: Duration;
  /** One invocation per burst of sends with this key, with the last input. */
  debounce?: DebounceOptions;
  /** At most `limit` starts per `period` per key: delayed (default) or dropped beyond it. */
  throttle?: ThrottleOptions;
}

/** A connection to a Keel app's ingress, made by {@link connect}. */
export interface KeelClient {
  /** The ingress's base URL, without a trailing slash. */
  readonly url: string;

  /**
   * A typed client of a service. Give the definition's type as the type argument and its name,
   * or the definition itself where it can be imported.
   *
   * @example
   * ```ts
   * import type { Greeter } from '../server/services.js';
   * const greeting = await keel.serviceClient<typeof Greeter>('Greeter').greet('Ada');
   * ```
   */
  serviceClient<D extends ServiceDefinition>(service: D | D['name']): RemoteClient<D>;

  /**
   * A typed client of one key of a virtual object.
   *
   * @example
   * ```ts
   * const total = await keel.objectClient<typeof Counter>('Counter', 'visits').add(1);
   * ```
   */
  objectClient<D extends ObjectDefinition>(object: D | D['name'], key: string): RemoteClient<D>;

  /**
   * A typed client of one key of a workflow. Its `run` is retried after a network error even
   * without an idempotency key: a workflow runs once per key, a repeated `run` attaches.
   *
   * @example
   * ```ts
   * const id = await keel.workflowClient<typeof Signup>('Signup', userId).run({ email });
   * ```
   */
  workflowClient<D extends WorkflowDefinition>(
    workflow: D | D['name'],
    key: string,
  ): RemoteClient<D>;

  /**
   * A typed one-way client of a service: each method resolves once the invocation is accepted.
   *
   * @example
   * ```ts
   * const sent = await keel.serviceSendClient<typeof Mailer>('Mailer', { delay: '1h' }).remind(user);
   * await sent.attach(); // waits for the reminder's result
   * ```
   */
  serviceSendClient<D extends ServiceDefinition>(
    service: D | D['name'],
    options?: RemoteSendOptions,
  ): RemoteSendClient<D>;

  /**
   * A typed one-way client of one key of a virtual object.
   *
   * @example
   * ```ts
   * await keel.objectSendClient<typeof Counter>('Counter', 'visits').add(1, { idempotencyKey: requestId });
   * ```
   */
  objectSendClient<D extends ObjectDefinition>(
    object: D | D['name'],
    key: string,
    options?: RemoteSendOptions,
  ): RemoteSendClient<D>;

  /**
   * A typed one-way client of one key of a workflow.
   *
   * @example
   * ```ts
   * const { invocationId } = await keel.workflowSendClient<typeof Signup>('Signup', userId).run({ email });
   * ```
   */
  workflowSendClient<D extends WorkflowDefinition>(
    workflow: D | D['name'],
    key: string,
    options?: RemoteSendOptions,
  ): RemoteSendClient<D>;

  /**
   * An untyped call, for handlers known only at run time.
   *
   * @example
   * ```ts
   * const total = await keel.call<number>({ service: 'Counter', key: 'visits', handler: 'add' }, 1);
   * ```
   */
  call<O = unknown>(target: RemoteTarget, input?: unknown, options?: RemoteCallOptions): Promise<O>;

  /**
   * An untyped send.
   *
   * @example
   * ```ts
   * const sent = await keel.send({ service: 'Mailer', handler: 'remind' }, user, { delay: '1h' });
   * ```
   */
  send<O = unknown>(
    target: RemoteTarget,
    input?: unknown,
    options?: RemoteSendCallOptions,
  ): Promise<SentInvocation<O>>;

  /**
   * A handle to an invocation by id (from a send, a log, another process).
   *
   * @example
   * ```ts
   * const result = await keel.invocation<string>(invocationId).attach();
   * ```
   */
  invocation<O = unknown>(invocationId: string): InvocationRef<O>;

  /**
   * Completes an awakeable with a value (`null` when none is given). Rejects with
   * `NotFoundError` for an unknown id and `ConflictError` (409) for one completed before
   * (`already_completed`, or `already_finished` once its invocation has ended). Not retried: a
   * repeat of a request whose answer was lost would answer 409.
   *
   * @example
   * ```ts
   * await keel.resolveAwakeable(awakeableId, { approved: true });
   * ```
   */
  resolveAwakeable(awakeableId: string, value?: unknown, options?: ReadOptions): Promise<void>;

  /**
   * Fails an awakeable: its waiter sees a `TerminalError` with `message`. Not retried.
   *
   * @example
   * ```ts
   * await keel.rejectAwakeable(awakeableId, 'declined by the approver');
   * ```
   */
  rejectAwakeable(awakeableId: string, message: string, options?: ReadOptions): Promise<void>;
}
