/**
 * Event buses' Prometheus metrics, read at scrape time from the runtime's counters (the message
 * path only adds to plain numbers).
 */
import type { EngineMetrics } from '../observability/metrics/engine-metrics.js';
import { CollectedMetric, type Sample } from '../observability/metrics/instruments.js';
import type { BusesRuntime } from './runtime.js';
import type { SubscriptionCounters } from './types.js';

/**
 * Adds the buses' metrics to the engine's registry.
 *
 * @example
 * ```ts
 * if (host.metrics) registerBusMetrics(host.metrics, runtime);
 * ```
 */
export function registerBusMetrics(metrics: EngineMetrics, runtime: BusesRuntime): void {
  const r = metrics.registry;
  const perSubscription = (field: keyof SubscriptionCounters) => (): Sample[] =>
    runtime.subscriptions().map((s) => ({
      labels: { bus: s.bus, subscription: s.name },
      value: runtime.counters(s.name)[field],
    }));
  new CollectedMetric(
    r,
    'keel_bus_messages_received_total',
    'Messages delivered by the broker to a subscription in this process (redeliveries included).',
    'counter',
    perSubscription('received'),
  );
  new CollectedMetric(
    r,
    'keel_bus_messages_acked_total',
    'Messages acknowledged to the broker once their invocation was durable.',
    'counter',
    perSubscription('acked'),
  );
  new CollectedMetric(
    r,
    'keel_bus_messages_dead_lettered_total',
    'Messages this process published to a subscription’s dead-letter destination.',
    'counter',
    perSubscription('deadLettered'),
  );
  new CollectedMetric(
    r,
    'keel_bus_messages_published_total',
    'Messages handlers of this process published (publish(ctx, ...)), by bus.',
    'counter',
    () => [...runtime.published].map(([bus, value]) => ({ labels: { bus }, value })),
  );
}
