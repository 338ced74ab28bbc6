import type { Definition } from '../core/definitions.js';
import { KeelError, UsageError } from '../core/errors.js';
import { parseDuration } from '../core/duration.js';
import type { EngineExtension } from '../engine/extension.js';
import type { Mount } from '../http/mount.js';
import { busesAdminMount } from './admin.js';
import { addBusProbes } from '../integrations/health/bus-probes.js';
import { DeliverService, OrderedObject } from './deliver.js';
import { BUSES_RUNTIME, BusesRuntime } from './runtime.js';
import type { BusesOptions, ConnectionStatus, Subscription } from './types.js';

/** Event buses for one engine: an {@link EngineExtension} named `buses`. */
export interface Buses extends EngineExtension {
  readonly name: 'buses';
  /** The internal delivery service and ordered-delivery object. */
  readonly services: Definition[];
  /** Each broker connection's health (empty before the engine started). */
  status(): ConnectionStatus[];
  /** The installed runtime; throws before the engine started. */
  readonly runtime: BusesRuntime;
  /** Closes the broker connections (the engine calls it when it stops). */
  close(): Promise<void>;
  /**
   * Sets the subscriptions declared in a file (see `withSubscriptions`), next to those given in
   * code; calling it again replaces them. Before the engine starts only.
   */
  declare(subscriptions: readonly Subscription[]): void;
  /** `GET /buses`, `GET /buses/subscriptions[/{name}]` on the admin API (see src/buses/admin.ts). */
  readonly mounts: { readonly admin: Mount };
}

/**
 * RabbitMQ and NATS JetStream as triggers and sinks. Each subscription's messages start one
 * durable invocation each (acknowledged once the invocation is accepted, deduplicated by message
 * id); handlers publish with {@link publish}. Connections reconnect on their own; `status()`
 * reports their health.
 *
 * @example
 * ```ts
 * const buses = createBuses({
 *   rabbitmq: { url: 'amqp://guest:guest@127.0.0.1:5672' },
 *   subscriptions: [
 *     {
 *       name: 'orders-created',
 *       bus: 'rabbitmq',
 *       exchange: 'orders',
 *       routingKeys: 'order.created',
 *       queue: 'keel.orders-created',
 *       target: { definition: Shipping, handler: 'onOrder' },
 *       key: (m) => (m.payload as { customerId: string }).customerId, // Shipping is a keyed object
 *       maxAttempts: 5,
 *       deadLetter: { queue: 'keel.orders-created.dlq' },
 *     },
 *   ],
 * });
 * const engine = new Engine({ services: [Shipping], store, extensions: [buses] });
 * await engine.start();
 * ```
 */
export function createBuses(options: BusesOptions = {}): Buses {
  checkSubscriptions(options.subscriptions ?? []);
  let runtime: BusesRuntime | undefined;
  let declared: readonly Subscription[] = [];
  const buses: Buses = {
    name: 'buses',
    services: [DeliverService, OrderedObject],
    mounts: { admin: busesAdminMount(() => buses.runtime) },
    install(host) {
      if (runtime) throw new UsageError('buses: one createBuses() per engine');
      // The subscriptions given in code and those declared in a file.
      const all = { ...options, subscriptions: [...(options.subscriptions ?? []), ...declared] };
      runtime = new BusesRuntime(host, all);
      // Broker health on /integrations/status (run by the integrations extension, if any).
      addBusProbes(host.engine, all, (kind) => runtime?.connection(kind).status());
      host.provide(BUSES_RUNTIME, runtime);
    },
    started() {
      runtime?.markStarted();
    },
    status: () => runtime?.status() ?? [],
    declare(subscriptions) {
      if (runtime)
        throw new UsageError('buses: subscriptions can only be declared before the engine starts');
      checkSubscriptions([...(options.subscriptions ?? []), ...subscriptions]);
      declared = [...subscriptions];
    },
    get runtime() {
      if (!runtime)
        throw new KeelError('buses: the engine has not started yet', {
          code: 'engine_not_started',
          status: 503,
        });
      return runtime;
    },
    async close() {
      await runtime?.close();
    },
  };
  return buses;
}

function checkSubscriptions(subs: readonly Subscription[]): void {
  const names = new Set<string>();
  for (const s of subs) {
    const where = `buses: subscription "${s.name}"`;
    if (!s.name) throw new UsageError('buses: a subscription has no name');
    if (names.has(s.name)) throw new UsageError(`${where} is declared twice`);
    names.add(s.name);
    if (s.bus !== 'rabbitmq' && s.bus !== 'nats' && s.bus !== 'mqtt')
      throw new UsageError(`${where}: bus must be 'rabbitmq', 'nats' or 'mqtt'`);
    const d = s.target.definition;
    if (!(s.target.handler in d.handlers))
      throw new UsageError(`${where}: ${d.name} has no handler "${s.target.handler}"`);
    if (d.kind !== 'service' && !s.key)
      throw new UsageError(
        `${where}: its target ${d.name} is a keyed ${d.kind}, so the subscription needs key: (msg) => string`,
      );
    if (s.maxAttempts !== undefined && !(s.maxAttempts >= 1))
      throw new UsageError(`${where}: maxAttempts must be at least 1`);
    if (s.bus === 'nats' && s.ackWait !== undefined) {
      let ms: number;
      try {
        ms = parseDuration(s.ackWait);
      } catch (err) {
        throw new UsageError(`${where}: ackWait: ${(err as Error).message}`);
      }
      if (ms < 1000) throw new UsageError(`${where}: ackWait must be at least 1s, got ${ms} ms`);
    }
  }
}
