/**
 * Event buses as triggers and sinks: RabbitMQ (AMQP 0-9-1) and NATS JetStream subscriptions
 * that invoke handlers durably, and a journaled `publish` for handlers. See docs/buses.md.
 *
 * @example
 * ```ts
 * import { createBuses, publish } from 'keel/buses';
 * const buses = createBuses({ subscriptions: [...] });
 * const engine = new Engine({ services, store, extensions: [buses] });
 * ```
 */
export { createBuses } from './setup.js';
export type { Buses } from './setup.js';
export { publish } from './publish.js';
export { parseSubscriptions, readSubscriptionsFile } from './dsl.js';
export {
  declaredSubscriptions,
  resolveSubscriptions,
  withSubscriptions,
  type DeclaredSubscription,
} from './declared.js';
export { busesAdminMount, type SubscriptionView } from './admin.js';
export type { DeliveryResult } from './deliver.js';
export type {
  BusKind,
  BusMessage,
  BusTarget,
  BusesOptions,
  ConnectionStatus,
  MqttSubscription,
  NatsSubscription,
  PublishOptions,
  RabbitSubscription,
  Subscription,
  SubscriptionBase,
  SubscriptionCounters,
} from './types.js';
