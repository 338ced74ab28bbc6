/**
 * Health figures of one integration in this process: latency percentiles, success and error
 * rates over the recent attempts, the last error. Kept in a fixed-size ring of typed arrays, so
 * recording costs no allocation at all (no sample object that would outlive a few garbage
 * collections on the hot path) and memory stays bounded however many calls are made.
 *
 * These are per process (each process measures what it sees); the circuit state, by contrast, is
 * shared through the Store.
 */

import { MinuteHistory } from '../../observability/metrics/history.js';
import { SHORT_BUCKETS } from '../../observability/metrics/instruments.js';

/** One attempt's outcome. */
export interface AttemptSample {
  at: number;
  ok: boolean;
  latencyMs: number;
}

/** What the health API reports. */
export interface StatsSnapshot {
  /** Attempts in the window. */
  attempts: number;
  /** Of those, failures (what the breaker would count, plus terminal errors). */
  failures: number;
  errorRate: number;
  successRate: number;
  latencyP50: number | null;
  latencyP99: number | null;
  lastError: { at: string; message: string; status?: number } | null;
  /** Counters since start: calls answered from the cache, by a fallback, refused by the circuit. */
  cacheHits: number;
  fallbacks: number;
  circuitRejections: number;
}

const RING = 1024;

/** Bounds (seconds) of the request latency histogram of `GET /metrics`. */
export const LATENCY_BOUNDS = SHORT_BUCKETS;

/**
 * Rolling statistics.
 *
 * @example
 * ```ts
 * const stats = new IntegrationStats(300_000);
 * stats.attempt({ at: Date.now(), ok: true, latencyMs: 42 });
 * stats.snapshot(Date.now()).latencyP50; // 42
 * ```
 */
export class IntegrationStats {
  private readonly at = new Float64Array(RING);
  private readonly latency = new Float64Array(RING);
  private readonly ok = new Uint8Array(RING);
  private size = 0;
  private next = 0;
  private lastError: StatsSnapshot['lastError'] = null;
  cacheHits = 0;
  fallbacks = 0;
  circuitRejections = 0;
  /** The last hour, minute by minute (`GET /integrations/{name}/history`). */
  readonly history = new MinuteHistory();
  /**
   * Totals since start, read by `GET /metrics` at scrape time: requests, failed ones, their
   * latencies per {@link LATENCY_BOUNDS} bucket (the last slot is +Inf), rate-limit waits and
   * circuit transitions. Plain numbers, so recording them costs a few additions.
   */
  readonly totals = {
    requests: 0,
    errors: 0,
    latencyBuckets: new Float64Array(LATENCY_BOUNDS.length + 1),
    latencySeconds: 0,
    rateLimitWaits: 0,
    rateLimitWaitSeconds: 0,
    transitions: { opened: 0, 'half-opened': 0, closed: 0 },
  };

  constructor(private readonly windowMs = 300_000) {}

  attempt(sample: AttemptSample): void {
    this.record(sample.at, sample.ok, sample.latencyMs);
  }

  /** {@link attempt} without a sample object (the call path's). */
  record(at: number, ok: boolean, latencyMs: number): void {
    const i = this.next;
    this.at[i] = at;
    this.ok[i] = ok ? 1 : 0;
    this.latency[i] = latencyMs;
    this.next = (i + 1) % RING;
    if (this.size < RING) this.size++;
    this.history.record(at, ok, latencyMs);
    const t = this.totals;
    t.requests++;
    if (!ok) t.errors++;
    const seconds = latencyMs / 1000;
    t.latencySeconds += seconds;
    let b = 0;
    while (b < LATENCY_BOUNDS.length && seconds > LATENCY_BOUNDS[b]!) b++;
    t.latencyBuckets[b]!++;
  }

  /** A call waited `ms` for the rate limit (or was deferred that long). */
  rateLimitWait(ms: number): void {
    this.totals.rateLimitWaits++;
    this.totals.rateLimitWaitSeconds += Math.max(0, ms) / 1000;
  }

  error(at: number, message: string, status?: number): void {
    this.lastError = {
      at: new Date(at).toISOString(),
      message,
      ...(status === undefined ? {} : { status }),
    };
  }

  snapshot(now: number): StatsSnapshot {
    const latencies: number[] = [];
    let failures = 0;
    for (let i = 0; i < this.size; i++) {
      if (now - this.at[i]! >= this.windowMs) continue;
      latencies.push(this.latency[i]!);
      if (this.ok[i] === 0) failures++;
    }
    latencies.sort((a, b) => a - b);
    const pct = (p: number): number | null =>
      latencies.length === 0
        ? null
        : latencies[Math.min(latencies.length - 1, Math.ceil((p / 100) * latencies.length) - 1)]!;
    const n = latencies.length;
    return {
      attempts: n,
      failures,
      errorRate: n === 0 ? 0 : round(failures / n),
      successRate: n === 0 ? 1 : round((n - failures) / n),
      latencyP50: pct(50),
      latencyP99: pct(99),
      lastError: this.lastError,
      cacheHits: this.cacheHits,
      fallbacks: this.fallbacks,
      circuitRejections: this.circuitRejections,
    };
  }
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}
