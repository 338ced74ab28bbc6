/**
 * Health figures of one integration in this process: latency percentiles, success and error
 * rates over the recent attempts, the last error. Kept in a fixed-size ring, so recording costs
 * no allocation beyond the sample and memory stays bounded however many calls are made.
 *
 * These are per process (each process measures what it sees); the circuit state, by contrast, is
 * shared through the Store.
 */

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
  private readonly ring: AttemptSample[] = [];
  private next = 0;
  private lastError: StatsSnapshot['lastError'] = null;
  cacheHits = 0;
  fallbacks = 0;
  circuitRejections = 0;

  constructor(private readonly windowMs = 300_000) {}

  attempt(sample: AttemptSample): void {
    if (this.ring.length < RING) this.ring.push(sample);
    else this.ring[this.next] = sample;
    this.next = (this.next + 1) % RING;
  }

  error(at: number, message: string, status?: number): void {
    this.lastError = {
      at: new Date(at).toISOString(),
      message,
      ...(status === undefined ? {} : { status }),
    };
  }

  snapshot(now: number): StatsSnapshot {
    const recent = this.ring.filter((s) => now - s.at < this.windowMs);
    const failures = recent.filter((s) => !s.ok).length;
    const latencies = recent.map((s) => s.latencyMs).sort((a, b) => a - b);
    const pct = (p: number): number | null =>
      latencies.length === 0
        ? null
        : latencies[Math.min(latencies.length - 1, Math.ceil((p / 100) * latencies.length) - 1)]!;
    const n = recent.length;
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
