/**
 * The one way extensions reach the engine. Integrations, webhooks, event buses and declarative
 * workflows are all {@link EngineExtension}s: they bring services, get a small
 * {@link ExtensionHost} when the engine starts, make their runtime reachable from handlers with
 * a {@link ContextKey}, record side effects atomically with a step through `runWithWrites`, and
 * may serve HTTP routes under their name on the ingress and the admin API.
 */
import type { Context, Logger } from '../core/context.js';
import type { Definition } from '../core/definitions.js';
import { ContextImpl, contextResource } from '../core/replay.js';
import type { Mount } from '../http/mount.js';
import type { EngineMetrics } from '../observability/metrics/engine-metrics.js';
import type { Store } from '../store/types.js';
import type { Clock } from './clock.js';
import type { Engine } from './engine.js';
import type { InvokeRequest, SendResult } from './info.js';

export { runWithWrites } from '../core/replay.js';
export type { StepWithWrites, StepWrite } from '../core/replay.js';

/**
 * A part that extends the engine. Pass it in `EngineOptions.extensions` (or `startApp({
 * extensions })`): its `services` are added to the engine's, `install` runs once when the
 * engine starts (before recovery runs anything), its `mounts` are served under `/{name}` by
 * `serve` (ingress) and `serveAdmin` (admin API), and `close` runs after the engine stopped.
 *
 * @example
 * ```ts
 * const AUDIT = contextKey<AuditLog>('audit');
 * const audit: EngineExtension = {
 *   name: 'audit',
 *   install(host) {
 *     host.provide(AUDIT, new AuditLog(host.store, host.clock));
 *   },
 * };
 * const engine = new Engine({ services: [Orders], store, extensions: [audit] });
 * // in a handler: AUDIT.of(ctx)?.record('order placed')
 * ```
 */
export interface EngineExtension {
  /** Its name: the path prefix of its mounts, and how logs and errors name it. Unique per engine. */
  readonly name: string;
  /** Services, objects and workflows it adds (mark its own `internal: true` to keep them off the ingress). */
  readonly services?: readonly Definition[];
  /** Called once, when the engine starts and before anything runs; a rejection fails the start. */
  install(host: ExtensionHost): void | Promise<void>;
  /**
   * Called once the engine has started (recovery done, timers running): the moment to begin
   * work that starts invocations on its own, such as consuming a message queue.
   */
  started?(): void;
  /** HTTP routes under `/{name}`: `ingress` on the ingress, `admin` on the admin API. */
  readonly mounts?: { readonly ingress?: Mount; readonly admin?: Mount };
  /** Called after the engine stopped (connection pools, timers of its own). */
  close?(): Promise<void>;
}

/** What an extension gets from the engine it extends. */
export interface ExtensionHost {
  /** The engine's public API (awakeables, invocations, clients). */
  readonly engine: Engine;
  /** The engine's store: extensions keep their durable state in its key-value space. */
  readonly store: Store;
  /** The engine's clock (a fake one in tests). */
  readonly clock: Clock;
  /** This process's id in a cluster sharing the store; undefined on an embedded store. */
  readonly processId: string | undefined;
  /** Runs a handler and waits for its result (see `Engine.invoke`). */
  invoke(req: InvokeRequest): Promise<unknown>;
  /** Starts a handler durably without waiting (see `Engine.send`). */
  send(req: InvokeRequest): Promise<SendResult>;
  /** Makes `value` reachable from handlers' contexts: `key.of(ctx)`. */
  provide<T>(key: ContextKey<T>, value: T): void;
  /** Writes to the engine's log. */
  log(level: keyof Logger, message: string, fields?: Record<string, unknown>): void;
  /**
   * The engine's Prometheus metrics, to add the extension's own to (`metrics.registry`);
   * undefined when metrics are off.
   */
  readonly metrics?: EngineMetrics;
}

/**
 * A typed slot for an engine-scoped service (an extension's runtime) that handlers' contexts
 * reach. Made with {@link contextKey}; filled with `ExtensionHost.provide`.
 */
export interface ContextKey<T> {
  readonly name: string;
  /** @internal The resource key. */
  readonly symbol: symbol;
  /** The value provided to the engine running `ctx`; undefined outside a handler or when none was. */
  of(ctx: Context): T | undefined;
}

/**
 * A {@link ContextKey} named `name`. Keys of the same name are the same key (even across two
 * copies of this module), so name them after the extension (`keel.webhooks`).
 *
 * @example
 * ```ts
 * const RUNTIME = contextKey<MyRuntime>('my-extension');
 * // install(host) { host.provide(RUNTIME, runtime) }
 * // in a handler: const rt = RUNTIME.of(ctx);
 * ```
 */
export function contextKey<T>(name: string): ContextKey<T> {
  const symbol = Symbol.for(`keel.extension:${name}`);
  return {
    name,
    symbol,
    of: (ctx) => contextResource<T>(ctx, symbol),
  };
}

/**
 * How many earlier attempts of its invocation failed and were retried: 0 in the first attempt.
 * Undefined when `ctx` is not the context of a running handler.
 *
 * @example
 * ```ts
 * if ((attemptOf(ctx) ?? 0) > 0) ctx.log.info('running again after a failure');
 * ```
 */
export function attemptOf(ctx: Context): number | undefined {
  return ctx instanceof ContextImpl ? ctx.hostOf().attempt : undefined;
}
