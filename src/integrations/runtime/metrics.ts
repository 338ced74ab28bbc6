/**
 * The integrations' Prometheus metrics, read at scrape time from each integration's
 * `IntegrationStats.totals` (the call path only adds to plain numbers) and its breaker.
 */
import type { EngineMetrics } from '../../observability/metrics/engine-metrics.js';
import {
  CollectedMetric,
  histogramSamples,
  type Sample,
} from '../../observability/metrics/instruments.js';
import type { IntegrationRuntime } from './runtime.js';
import { LATENCY_BOUNDS, type IntegrationStats } from './stats.js';

/** `keel_integration_circuit_state`: the breaker's state as a number. */
const STATE_VALUE = { closed: 0, 'half-open': 1, open: 2 } as const;

/**
 * Adds the integrations' metrics to the engine's registry.
 *
 * @example
 * ```ts
 * if (host.metrics) registerIntegrationMetrics(host.metrics, runtime);
 * ```
 */
export function registerIntegrationMetrics(
  metrics: EngineMetrics,
  runtime: IntegrationRuntime,
): void {
  const r = metrics.registry;
  const each = (f: (integration: string, t: Totals) => Sample[]) => (): Sample[] =>
    runtime.list().flatMap((h) => f(h.integration.name, h.stats.totals));
  new CollectedMetric(
    r,
    'keel_integration_request_duration_seconds',
    'Requests (attempts) to an integration, from sending to the answer, in this process.',
    'histogram',
    each((integration, t) =>
      histogramSamples(
        'keel_integration_request_duration_seconds',
        { integration },
        LATENCY_BOUNDS,
        t.latencyBuckets,
        t.latencySeconds,
      ),
    ),
  );
  new CollectedMetric(
    r,
    'keel_integration_request_errors_total',
    'Requests that failed: transport errors, timeouts, 5xx and 429 (what the breaker counts).',
    'counter',
    each((integration, t) => [{ labels: { integration }, value: t.errors }]),
  );
  new CollectedMetric(
    r,
    'keel_integration_rate_limit_waits_total',
    'Calls that waited for the rate limit (inline, or deferred durably when the wait was long).',
    'counter',
    each((integration, t) => [{ labels: { integration }, value: t.rateLimitWaits }]),
  );
  new CollectedMetric(
    r,
    'keel_integration_rate_limit_wait_seconds_total',
    'Time calls waited for the rate limit.',
    'counter',
    each((integration, t) => [{ labels: { integration }, value: t.rateLimitWaitSeconds }]),
  );
  new CollectedMetric(
    r,
    'keel_integration_circuit_transitions_total',
    'Circuit breaker transitions this process made, by the state entered (opened, half-opened, closed).',
    'counter',
    each((integration, t) =>
      (['opened', 'half-opened', 'closed'] as const).map((to) => ({
        labels: { integration, to },
        value: t.transitions[to],
      })),
    ),
  );
  new CollectedMetric(
    r,
    'keel_integration_circuit_state',
    'The circuit breaker state shared by all processes: 0 closed, 1 half-open, 2 open.',
    'gauge',
    async () => {
      const rows = await Promise.all(
        runtime.list().map(async (h): Promise<Sample[]> => {
          if (h.breaker === undefined) return [];
          const status = await h.breaker.status().catch(() => undefined);
          if (status === undefined) return [];
          return [
            { labels: { integration: h.integration.name }, value: STATE_VALUE[status.state] },
          ];
        }),
      );
      return rows.flat();
    },
  );
}

type Totals = IntegrationStats['totals'];
