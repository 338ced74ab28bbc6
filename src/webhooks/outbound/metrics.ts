/**
 * Outbound webhooks' Prometheus metrics. Attempts add to plain numbers ({@link WebhookTotals});
 * the dead-letter queue is counted from the delivery log when Prometheus scrapes.
 */
import type { EngineMetrics } from '../../observability/metrics/engine-metrics.js';
import {
  CollectedMetric,
  histogramSamples,
  SHORT_BUCKETS,
  type Sample,
} from '../../observability/metrics/instruments.js';

/** Delivery records the DLQ gauge reads at most per scrape: beyond, it is a lower bound. */
export const DLQ_SCAN_LIMIT = 10_000;
/** How long a DLQ count is reused between scrapes. */
const DLQ_TTL_MS = 30_000;

/** This process's attempt counts (read by `GET /metrics`). */
export class WebhookTotals {
  /** Attempts by outcome: `success`, or the attempt's `error_code` (`http_status`, `timeout`, ...). */
  readonly attempts = new Map<string, number>();
  /** Latencies of attempts that were sent, per `SHORT_BUCKETS` bucket (last slot +Inf). */
  readonly latencyBuckets = new Float64Array(SHORT_BUCKETS.length + 1);
  latencySeconds = 0;
  /** Deliveries this process dead-lettered. */
  deadLettered = 0;

  /** One attempt ended with `outcome`; `durationMs` when a request was sent. */
  attempt(outcome: string, durationMs: number | undefined, dead: boolean): void {
    this.attempts.set(outcome, (this.attempts.get(outcome) ?? 0) + 1);
    if (dead) this.deadLettered++;
    if (durationMs === undefined) return;
    const seconds = durationMs / 1000;
    this.latencySeconds += seconds;
    let b = 0;
    while (b < SHORT_BUCKETS.length && seconds > SHORT_BUCKETS[b]!) b++;
    this.latencyBuckets[b]!++;
  }
}

/**
 * Adds the webhooks' metrics to the engine's registry.
 *
 * @example
 * ```ts
 * if (host.metrics) registerWebhookMetrics(host.metrics, totals, log);
 * ```
 */
export function registerWebhookMetrics(
  metrics: EngineMetrics,
  totals: WebhookTotals,
  /** The delivery log, which counts the dead-letter queue (see `DeliveryLog.countFailed`). */
  log: { countFailed(scanLimit: number): Promise<number> },
): void {
  const r = metrics.registry;
  new CollectedMetric(
    r,
    'keel_webhook_attempts_total',
    'Outbound delivery attempts made by this process, by outcome (success or the error code).',
    'counter',
    () => [...totals.attempts].map(([outcome, value]) => ({ labels: { outcome }, value })),
  );
  new CollectedMetric(
    r,
    'keel_webhook_attempt_duration_seconds',
    'Outbound delivery attempts that were sent, from the request to the answer (or its failure).',
    'histogram',
    () =>
      histogramSamples(
        'keel_webhook_attempt_duration_seconds',
        {},
        SHORT_BUCKETS,
        totals.latencyBuckets,
        totals.latencySeconds,
      ),
  );
  new CollectedMetric(
    r,
    'keel_webhook_dead_lettered_total',
    'Deliveries this process dead-lettered (retries exhausted, endpoint gone, disabled or deleted).',
    'counter',
    () => [{ labels: {}, value: totals.deadLettered }],
  );
  let cached: { at: number; value: Promise<Sample[]> } | undefined;
  new CollectedMetric(
    r,
    'keel_webhook_dlq_size',
    `Dead-lettered deliveries in the delivery log (all processes; a lower bound past ${DLQ_SCAN_LIMIT} log records).`,
    'gauge',
    () => {
      const now = performance.now();
      if (cached !== undefined && now - cached.at < DLQ_TTL_MS) return cached.value;
      const value = log.countFailed(DLQ_SCAN_LIMIT).then(
        (n): Sample[] => [{ labels: {}, value: n }],
        (): Sample[] => {
          cached = undefined;
          return [];
        },
      );
      cached = { at: now, value };
      return value;
    },
  );
}
