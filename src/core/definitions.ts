import type {
  CallOptions,
  Context,
  InvocationHandle,
  ObjectContext,
  ObjectSharedContext,
  WorkflowContext,
  WorkflowSharedContext,
} from './context.js';
import type { Duration } from './duration.js';
import { UsageError } from './errors.js';
import type { DurablePromise } from './futures.js';
import type { RetryPolicy } from './retry.js';
import type { StandardSchemaV1 } from './schema.js';
import type { Queue } from './queue.js';

const HANDLER = Symbol.for('keel.handler');

/** Options of one handler. */
export interface HandlerOptions<I = any, O = any> {
  /** Object handlers only: run concurrently with other handlers of the key, read-only. */
  shared?: boolean;
  /** A Standard Schema (zod, valibot, ...) the input must satisfy; failures answer 400. */
  input?: StandardSchemaV1<unknown, I>;
  /** A Standard Schema the result must satisfy; failures are terminal errors. */
  output?: StandardSchemaV1<unknown, O>;
  /** Overrides the definition's retry policy for this handler. */
  retry?: RetryPolicy;
  /**
   * The flow-control queue its invocations wait in until its limits let them start (see
   * {@link queue}). Services, workflows' `run` and objects' shared handlers; an object's
   * exclusive handlers already run one at a time per object key.
   */
  queue?: Queue;
  /** The queue's fairness and per-key limit key of an invocation. Default: `''` (one key). */
  queueKey?: (input: I) => string;
  /** Higher starts first within a key. Default 0. Integers from -1,000,000 to 1,000,000. */
  priority?: (input: I) => number;
}

/** A handler function with options attached, made by {@link handler} or {@link shared}. */
export interface WrappedHandler<C, I, O> {
  readonly [HANDLER]: true;
  readonly fn: (ctx: C, input: I) => Promise<O>;
  readonly options: HandlerOptions<I, O>;
}

type Fn<C> = (ctx: C, input: any) => Promise<any>;
/** A service handler: a function or a {@link handler} wrapper. */
export type ServiceHandler = Fn<Context> | WrappedHandler<Context, any, any>;
/** An object handler: exclusive by default, or {@link shared}. */
export type ObjectHandler =
  | Fn<ObjectContext>
  | WrappedHandler<ObjectContext, any, any>
  | WrappedHandler<ObjectSharedContext, any, any>;
/** A workflow's `run` handler. */
export type WorkflowRunHandler = Fn<WorkflowContext> | WrappedHandler<WorkflowContext, any, any>;
/** A workflow's other handlers: always shared. */
export type WorkflowSharedHandler =
  Fn<WorkflowSharedContext> | WrappedHandler<WorkflowSharedContext, any, any>;

/** Options common to every definition. */
export interface DefinitionOptions {
  /** The retry policy of every handler of this definition (see `RetryPolicy` for defaults). */
  retry?: RetryPolicy;
  /** How long finished invocations (and their idempotency keys) are kept. Default: the engine's. */
  retention?: Duration;
  /**
   * Not routable from the HTTP ingress: every path naming it answers exactly as for a name the
   * engine does not serve (404, and the list of targets shown to loopback clients leaves it
   * out). It stays callable from handlers (`ctx.serviceClient(...)` and the other clients) and
   * from code holding the engine (`engine.invoke`, `engine.send`, `engine.client`), and its
   * invocations are listed and inspected in the admin API like any other. For machinery an
   * extension runs on the engine (webhook delivery, for one), whose inputs only Keel makes.
   * Default `false`.
   *
   * @example
   * ```ts
   * const Mailer = service({
   *   name: 'Mailer',
   *   internal: true, // POST /Mailer/send answers 404
   *   handlers: { send: async (ctx, to: string) => ctx.run('mail', () => smtp.send(to)) },
   * });
   * const Signup = service({
   *   name: 'Signup',
   *   handlers: {
   *     // Reachable from a handler all the same.
   *     start: async (ctx, email: string) => ctx.serviceClient(Mailer).send(email),
   *   },
   * });
   * ```
   */
  internal?: boolean;
  /**
   * Side-by-side versions: register the same name twice or more, each with its own `version`
   * (a whole number from 1). New invocations run the highest version; an invocation runs, on
   * every attempt, the version it first journaled under (recorded in its journal), and one
   * whose journal was written before versions were declared runs the lowest. Remove an old
   * version once nothing in flight runs it. Without `version`, one definition per name.
   *
   * @example
   * ```ts
   * const OrderV1 = workflow({ name: 'Order', version: 1, run: oldRun });
   * const OrderV2 = workflow({ name: 'Order', version: 2, run: newRun });
   * new Engine({ services: [OrderV1, OrderV2], store });
   * ```
   */
  version?: number;
}

export interface ServiceDefinition<
  N extends string = string,
  H extends Record<string, any> = Record<string, any>,
> {
  readonly kind: 'service';
  readonly name: N;
  readonly handlers: H;
  readonly options: DefinitionOptions;
}

export interface ObjectDefinition<
  N extends string = string,
  H extends Record<string, any> = Record<string, any>,
> {
  readonly kind: 'object';
  readonly name: N;
  readonly handlers: H;
  readonly options: DefinitionOptions;
}

export interface WorkflowDefinition<
  N extends string = string,
  H extends Record<string, any> = Record<string, any>,
> {
  readonly kind: 'workflow';
  readonly name: N;
  readonly handlers: H;
  readonly options: DefinitionOptions;
}

export type Definition = ServiceDefinition | ObjectDefinition | WorkflowDefinition;

/**
 * Attaches options (validation schemas, a retry policy, `shared`) to a handler.
 *
 * @example
 * ```ts
 * const Orders = service({
 *   name: 'Orders',
 *   handlers: {
 *     place: handler({ input: z.object({ sku: z.string() }) }, async (ctx, order) => order.sku),
 *   },
 * });
 * ```
 */
export function handler<I, O, C = any>(
  options: HandlerOptions<I, O>,
  fn: (ctx: C, input: I) => Promise<O>,
): WrappedHandler<C, I, O> {
  return { [HANDLER]: true, fn, options };
}

/**
 * Marks an object handler shared: it may run while other handlers of the same key run, and it
 * can read but not write state.
 *
 * @example
 * ```ts
 * get: shared(async (ctx) => (await ctx.get<number>('count')) ?? 0),
 * ```
 */
export function shared<I, O>(
  fn: (ctx: ObjectSharedContext, input: I) => Promise<O>,
  options: Omit<HandlerOptions<I, O>, 'shared'> = {},
): WrappedHandler<ObjectSharedContext, I, O> {
  return { [HANDLER]: true, fn, options: { ...options, shared: true } };
}

/**
 * Defines a stateless service. Each handler is reachable at `POST /{name}/{handler}` (unless
 * the service is {@link DefinitionOptions.internal | internal}).
 *
 * @example
 * ```ts
 * export const Greeter = service({
 *   name: 'Greeter',
 *   handlers: {
 *     greet: async (ctx, name: string) => `Hello, ${name}!`,
 *   },
 * });
 * ```
 */
export function service<N extends string, H extends Record<string, ServiceHandler>>(
  def: {
    name: N;
    handlers: H;
  } & DefinitionOptions,
): ServiceDefinition<N, H> {
  return {
    kind: 'service',
    name: checkName(def.name),
    handlers: def.handlers,
    options: pickOptions(def),
  };
}

/**
 * Defines a keyed virtual object with durable state. Handlers are exclusive per key (one at a
 * time, in arrival order) unless marked {@link shared}. Reachable at `POST /{name}/{key}/{handler}` (unless `internal`).
 *
 * @example
 * ```ts
 * export const Counter = object({
 *   name: 'Counter',
 *   handlers: {
 *     add: async (ctx, n: number) => {
 *       const total = ((await ctx.get<number>('total')) ?? 0) + n;
 *       ctx.set('total', total);
 *       return total;
 *     },
 *     get: shared(async (ctx) => (await ctx.get<number>('total')) ?? 0),
 *   },
 * });
 * ```
 */
export function object<N extends string, H extends Record<string, ObjectHandler>>(
  def: {
    name: N;
    handlers: H;
  } & DefinitionOptions,
): ObjectDefinition<N, H> {
  return {
    kind: 'object',
    name: checkName(def.name),
    handlers: def.handlers,
    options: pickOptions(def),
  };
}

/**
 * Defines a workflow: `run` executes exactly once per key; the other handlers run concurrently
 * with it and can read its state. Reachable at `POST /{name}/{key}/run` (unless `internal`).
 *
 * @example
 * ```ts
 * export const Signup = workflow({
 *   name: 'Signup',
 *   run: async (ctx, user: { email: string }) => {
 *     ctx.set('stage', 'sending');
 *     await ctx.run('welcome', () => mail.send(user.email));
 *     return 'done';
 *   },
 *   handlers: { stage: async (ctx) => ctx.get<string>('stage') },
 * });
 * ```
 */
export function workflow<
  N extends string,
  R extends WorkflowRunHandler,
  H extends Record<string, WorkflowSharedHandler>,
>(def: { name: N; run: R; handlers: H } & DefinitionOptions): WorkflowDefinition<N, H & { run: R }>;
export function workflow<N extends string, R extends WorkflowRunHandler>(
  def: { name: N; run: R } & DefinitionOptions,
): WorkflowDefinition<N, { run: R }>;
export function workflow(
  def: {
    name: string;
    run: WorkflowRunHandler;
    handlers?: Record<string, WorkflowSharedHandler>;
  } & DefinitionOptions,
): WorkflowDefinition {
  const handlers = { ...def.handlers, run: def.run };
  return { kind: 'workflow', name: checkName(def.name), handlers, options: pickOptions(def) };
}

/** The normalized view of a handler the engine works with. */
export interface HandlerSpec {
  name: string;
  fn: (ctx: any, input: any) => Promise<unknown>;
  shared: boolean;
  options: HandlerOptions;
}

/** Normalizes one handler of a definition. */
export function handlerSpec(def: Definition, name: string): HandlerSpec | undefined {
  if (!Object.prototype.hasOwnProperty.call(def.handlers, name)) return undefined;
  const h: unknown = def.handlers[name];
  if (typeof h === 'function') {
    return {
      name,
      fn: h as HandlerSpec['fn'],
      shared: def.kind === 'workflow' && name !== 'run',
      options: {},
    };
  }
  if (isWrapped(h)) {
    const sharedFlag =
      def.kind === 'workflow' ? name !== 'run' : def.kind === 'object' && h.options.shared === true;
    return { name, fn: h.fn as HandlerSpec['fn'], shared: sharedFlag, options: h.options };
  }
  return undefined;
}

function isWrapped(h: unknown): h is WrappedHandler<unknown, unknown, unknown> {
  return typeof h === 'object' && h !== null && (h as Record<symbol, unknown>)[HANDLER] === true;
}

// ---- typed clients ---------------------------------------------------------------------

/** The input type of a handler. */
export type InputOf<H> =
  H extends WrappedHandler<any, infer I, any>
    ? I
    : H extends (ctx: any, input: infer I) => any
      ? I
      : never;
/** The output type of a handler. */
export type OutputOf<H> =
  H extends WrappedHandler<any, any, infer O>
    ? O
    : H extends (...a: any[]) => Promise<infer O>
      ? O
      : never;

type Args<I, Opt> = [unknown] extends [I]
  ? [input?: I, options?: Opt]
  : undefined extends I
    ? [input?: I, options?: Opt]
    : [input: I, options?: Opt];

/** A request-response client: one method per handler, typed from the definition. */
export type Client<D extends Definition> = {
  [K in keyof D['handlers']]: (
    ...args: Args<InputOf<D['handlers'][K]>, CallOptions>
  ) => DurablePromise<Awaited<OutputOf<D['handlers'][K]>>>;
};

/** A request-response client used outside handlers (`engine.client`): plain promises. */
export type ExternalClient<D extends Definition> = {
  [K in keyof D['handlers']]: (
    ...args: Args<InputOf<D['handlers'][K]>, CallOptions>
  ) => Promise<Awaited<OutputOf<D['handlers'][K]>>>;
};

/** A one-way client: one method per handler, returning the started invocation's id. */
export type SendClient<D extends Definition> = {
  [K in keyof D['handlers']]: (
    ...args: Args<InputOf<D['handlers'][K]>, CallOptions>
  ) => InvocationHandle;
};

const NAME = /^[A-Za-z_][A-Za-z0-9_.-]*$/;

function checkName<N extends string>(name: N): N {
  if (!NAME.test(name)) {
    throw new UsageError(
      `"${name}" is not a valid name: use letters, digits, "_", "." and "-", starting with a letter or "_"`,
    );
  }
  return name;
}

function pickOptions(def: DefinitionOptions): DefinitionOptions {
  const o: DefinitionOptions = {};
  if (def.retry) o.retry = def.retry;
  if (def.retention !== undefined) o.retention = def.retention;
  if (def.internal === true) o.internal = true;
  else if (def.internal !== undefined && def.internal !== false)
    throw new UsageError(`"internal" must be true or false, got ${String(def.internal)}`);
  if (def.version !== undefined) {
    if (!Number.isInteger(def.version) || def.version < 1)
      throw new UsageError(`"version" must be a whole number from 1, got ${String(def.version)}`);
    o.version = def.version;
  }
  return o;
}
