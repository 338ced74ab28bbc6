import type { Duration } from './duration.js';
import type { DebounceOptions, ThrottleOptions } from './flow.js';
import type { DurablePromise, Settled, Values } from './futures.js';
import type { Awakeable, DurablePromiseHandle } from './replay.js';
import type { RetryPolicy } from './retry.js';
import type {
  ObjectDefinition,
  ServiceDefinition,
  WorkflowDefinition,
  Client,
  SendClient,
} from './definitions.js';

/** A logger that writes only when the invocation is not replaying, so replays are silent. */
export interface Logger {
  debug(message: string, ...args: unknown[]): void;
  info(message: string, ...args: unknown[]): void;
  warn(message: string, ...args: unknown[]): void;
  error(message: string, ...args: unknown[]): void;
}

/** Options of a `ctx.run` step. */
export interface RunOptions {
  /** Overrides the handler's retry policy for this step. When attempts run out the step fails with a terminal `RetriesExhaustedError` the handler can catch. */
  retry?: RetryPolicy;
}

/** Options of a request-response call or a one-way send. */
export interface CallOptions {
  /** The same key on the same target returns the same invocation and result, and attaches if it is still running. */
  idempotencyKey?: string;
}

/** Options of a one-way send. */
export interface SendOptions extends CallOptions {
  /** Start the invocation after this delay (`500ms`, `10s`, `PT1M`, ...). */
  delay?: Duration;
  /**
   * One invocation per burst of sends with this key, started with the last input once the key
   * has been quiet for `period` (see docs/flow-control.md). Not with `delay` or an idempotency key.
   */
  debounce?: DebounceOptions;
  /**
   * At most `limit` starts per `period` per key: the rest wait for a free slot (`mode: 'delay'`,
   * the default). `mode: 'drop'` is for the engine API and the ingress only: inside a handler
   * it fails the invocation with a `UsageError` (a dropped send has no invocation to journal).
   */
  throttle?: ThrottleOptions;
}

/** What a one-way send returns: the id of the invocation it started. */
export interface InvocationHandle {
  /** Resolves once the send is journaled (after any idempotency-key lookup). */
  readonly invocationId: Promise<string>;
}

/**
 * The context of a stateless service handler. Every method that does something durable is
 * journaled: on replay after a crash or suspension it returns the recorded result.
 */
export interface Context {
  /** The id of this invocation (`inv_...`), stable across retries and replays. */
  readonly invocationId: string;
  /**
   * A logger that stays quiet while the invocation replays its journal: a line is written once,
   * except that code after the last journaled entry (which really runs again) logs again.
   */
  readonly log: Logger;

  /**
   * Runs `fn` as a journaled step: once it succeeds its result is durable before this promise
   * resolves, and on replay the result is returned without running `fn` again. A step
   * interrupted by a crash runs again (at least once), so side effects inside it should be
   * idempotent. Errors other than `TerminalError` are retried with backoff.
   *
   * @example
   * ```ts
   * const paymentId = await ctx.run('charge', () => payments.charge(order.amount));
   * ```
   */
  run<T>(name: string, fn: () => T | Promise<T>, options?: RunOptions): DurablePromise<T>;

  /**
   * A durable timer: the invocation suspends (holding no memory) and resumes after the
   * duration, even across restarts.
   *
   * @example
   * ```ts
   * await ctx.sleep('15m');
   * ```
   */
  sleep(duration: Duration): DurablePromise<void>;

  /**
   * An awakeable: give its `id` to an outside system, which completes it with
   * `POST /awakeables/{id}/resolve` (JSON body) or `/reject` (`{ "message" }`), or from another
   * handler with `ctx.resolveAwakeable`. The invocation suspends while it waits. Give the id
   * away in a step (`ctx.run`): a step body starts only once the awakeable is durable, so the id
   * resolves at once through any process, even after a crash; plain handler code can see it
   * earlier.
   *
   * @example
   * ```ts
   * const { id, promise } = ctx.awakeable<{ ready: boolean }>();
   * await ctx.run('notify restaurant', () => restaurant.submit(order, { callbackId: id }));
   * const ready = await promise.orTimeout('45m');
   * ```
   */
  awakeable<T = unknown>(): Awakeable<T>;

  /**
   * Completes another invocation's awakeable. Rejects with a terminal 404 for an unknown id
   * and 409 for one already completed.
   *
   * @example
   * ```ts
   * await ctx.resolveAwakeable(approvalId, { approved: true });
   * ```
   */
  resolveAwakeable<T>(id: string, value: T): Promise<void>;

  /**
   * Fails another invocation's awakeable: its waiter sees a `TerminalError` with the reason.
   *
   * @example
   * ```ts
   * await ctx.rejectAwakeable(approvalId, 'rejected by reviewer');
   * ```
   */
  rejectAwakeable(id: string, reason: string): Promise<void>;

  /**
   * Waits for all futures (steps, sleeps, calls, awakeables, promises); rejects with the first
   * failure, deterministically on replay.
   *
   * @example
   * ```ts
   * const [build, tests] = await ctx.all([ctx.run('build', build), ctx.run('unit tests', unit)]);
   * ```
   */
  all<F extends readonly unknown[]>(futures: F): DurablePromise<Values<F>>;

  /**
   * Settles like the first future to settle; the winner is journaled so a replay picks it again.
   *
   * @example
   * ```ts
   * const first = await ctx.race([approval.get(), ctx.sleep('30d').then(() => 'timeout' as const)]);
   * ```
   */
  race<F extends readonly unknown[]>(futures: F): DurablePromise<Awaited<F[number]>>;

  /**
   * Resolves like the first future to succeed; rejects with an `AggregateError` if all fail.
   *
   * @example
   * ```ts
   * const quote = await ctx.any([ctx.run('carrier A', quoteA), ctx.run('carrier B', quoteB)]);
   * ```
   */
  any<F extends readonly unknown[]>(futures: F): DurablePromise<Awaited<F[number]>>;

  /**
   * Waits for all futures and reports each outcome.
   *
   * @example
   * ```ts
   * const [sms, email] = await ctx.allSettled([ctx.run('sms', sendSms), ctx.run('email', sendEmail)]);
   * ```
   */
  allSettled<F extends readonly unknown[]>(futures: F): DurablePromise<Settled<F>>;

  /**
   * The current time in epoch milliseconds, journaled so replay sees the same value.
   *
   * @example
   * ```ts
   * const startedAt = await ctx.now();
   * ```
   */
  now(): Promise<number>;

  /**
   * A deterministic random number in [0, 1): seeded by the invocation id, so replay draws the
   * same sequence.
   *
   * @example
   * ```ts
   * const pick = Math.floor(ctx.random() * drivers.length);
   * ```
   */
  random(): number;

  /**
   * A deterministic version-4 UUID (same seed as `random`).
   *
   * @example
   * ```ts
   * const reservationId = ctx.uuid();
   * ```
   */
  uuid(): string;

  /**
   * A versioning gate: lets a handler's code change while invocations are in flight. True
   * (take the new code) for an invocation that reaches this point under code that has the
   * gate: it records a marker in the journal, and its replays find the marker and answer true
   * again. False (keep the old code) for an invocation whose journal was written past this
   * point by code without the gate: its replay goes on with the old code's entries. The marker
   * takes a journal index only where it is recorded, so old journals replay unchanged. A change
   * without a gate still pauses old invocations with a `non_determinism` error.
   *
   * To retire the old branch once no invocation that took it is left, replace the gate with
   * {@link Context.deprecatePatch}; once no invocation with the marker is left either, remove
   * that call too (replay skips markers the code no longer asks about). Keep a gate where it
   * is: move it and it is a different point of the journal.
   *
   * @param changeId Names the change; unique within the handler.
   *
   * @example
   * ```ts
   * await ctx.run('reserve', () => stock.reserve(order));
   * if (ctx.patched('fraud-check')) {
   *   await ctx.run('fraud check', () => fraud.check(order)); // only invocations that reach here now
   * }
   * await ctx.sleep('1h');
   * ```
   */
  patched(changeId: string): boolean;

  /**
   * Retires a {@link Context.patched} gate: the code keeps only the new branch, and
   * invocations whose journal has the gate's marker still replay (the marker is consumed).
   * Use it only once no invocation that took the old branch is left: one that replays here
   * pauses with a `non_determinism` error naming the change. New invocations record the
   * marker too, so rolling the code back to the `patched` version keeps them on the new branch.
   *
   * @param changeId The change id the `patched` call named.
   *
   * @example
   * ```ts
   * await ctx.run('reserve', () => stock.reserve(order));
   * ctx.deprecatePatch('fraud-check'); // was: if (ctx.patched('fraud-check')) { ... }
   * await ctx.run('fraud check', () => fraud.check(order));
   * await ctx.sleep('1h');
   * ```
   */
  deprecatePatch(changeId: string): void;

  /**
   * A typed request-response client for a service: the call is journaled and its result
   * replayed.
   *
   * @example
   * ```ts
   * const greeting = await ctx.serviceClient(Greeter).greet('Ada');
   * ```
   */
  serviceClient<D extends ServiceDefinition>(service: D): Client<D>;

  /**
   * A typed request-response client for one key of a virtual object.
   *
   * @example
   * ```ts
   * const total = await ctx.objectClient(Counter, 'visits').add(1);
   * ```
   */
  objectClient<D extends ObjectDefinition>(object: D, key: string): Client<D>;

  /**
   * A typed request-response client for one workflow key. Calling `run` on a key whose run
   * already exists attaches to it and returns its result.
   *
   * @example
   * ```ts
   * const result = await ctx.workflowClient(Signup, userId).run({ email });
   * ```
   */
  workflowClient<D extends WorkflowDefinition>(workflow: D, key: string): Client<D>;

  /**
   * A one-way client for a service: the send is journaled and the target runs on its own.
   *
   * @example
   * ```ts
   * ctx.serviceSendClient(Mailer, { delay: '1h' }).remind({ userId });
   * ```
   */
  serviceSendClient<D extends ServiceDefinition>(service: D, options?: SendOptions): SendClient<D>;

  /**
   * A one-way client for one key of a virtual object.
   *
   * @example
   * ```ts
   * ctx.objectSendClient(Counter, 'visits').add(1);
   * ```
   */
  objectSendClient<D extends ObjectDefinition>(
    object: D,
    key: string,
    options?: SendOptions,
  ): SendClient<D>;

  /**
   * A one-way client for one workflow key.
   *
   * @example
   * ```ts
   * ctx.workflowSendClient(Signup, userId).run({ email });
   * ```
   */
  workflowSendClient<D extends WorkflowDefinition>(
    workflow: D,
    key: string,
    options?: SendOptions,
  ): SendClient<D>;
}

/** The context of a shared (read-only, concurrent) handler of a keyed object. */
export interface ObjectSharedContext extends Context {
  /** The object key this invocation runs for. */
  readonly key: string;

  /**
   * Reads a state value, or `undefined` when it is not set.
   *
   * @example
   * ```ts
   * const count = (await ctx.get<number>('count')) ?? 0;
   * ```
   */
  get<T = unknown>(name: string): Promise<T | undefined>;

  /**
   * The names of every state value of this key.
   *
   * @example
   * ```ts
   * const names = await ctx.stateKeys();
   * ```
   */
  stateKeys(): Promise<string[]>;
}

/** The context of an exclusive handler of a keyed object: reads and writes durable state. */
export interface ObjectContext extends ObjectSharedContext {
  /**
   * Writes a state value (any JSON value). It is committed with the invocation's next durable
   * write and visible to later invocations of this key.
   *
   * @example
   * ```ts
   * ctx.set('count', count + 1);
   * ```
   */
  set<T>(name: string, value: T): void;

  /**
   * Deletes one state value.
   *
   * @example
   * ```ts
   * ctx.clear('cart');
   * ```
   */
  clear(name: string): void;

  /**
   * Deletes every state value of this key.
   *
   * @example
   * ```ts
   * ctx.clearAll();
   * ```
   */
  clearAll(): void;
}

/** The context of a workflow's other handlers: concurrent with `run`, read state, complete promises. */
export interface WorkflowSharedContext extends ObjectSharedContext {
  /**
   * A durable promise of this workflow key: `run` can wait for it (`get()`), the workflow's
   * other handlers can complete it (`resolve()`, `reject()`). A value resolved before `run`
   * asks for it is kept.
   *
   * @example
   * ```ts
   * // in a handler next to run:
   * approve: async (ctx, approval: Approval) => ctx.promise<Approval>('approval').resolve(approval),
   * // in run:
   * const approval = await ctx.promise<Approval>('approval').get();
   * ```
   */
  promise<T = unknown>(name: string): DurablePromiseHandle<T>;
}

/** The context of a workflow's `run` handler: runs once per key, owns the workflow's state. */
export interface WorkflowContext extends ObjectContext, WorkflowSharedContext {}
