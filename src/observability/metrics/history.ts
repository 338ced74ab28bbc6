/**
 * Calls, errors and latency percentiles per minute, for the last hour, in fixed memory: the
 * dashboard's charts of an integration (`GET /integrations/{name}/history`). Latencies go into
 * log-spaced bins (each 25% wider than the last, 0.1 ms to about two minutes), so a percentile
 * is exact to within a bin and recording allocates nothing.
 */

/** Minutes kept. */
export const HISTORY_MINUTES = 60;
const MINUTE_MS = 60_000;
const BINS = 64;
const FIRST_MS = 0.1;
const GROWTH = 1.25;
const LOG_GROWTH = Math.log(GROWTH);

/** One minute of {@link MinuteHistory.buckets}. */
export interface MinuteBucket {
  /** The minute's start, ISO 8601. */
  t: string;
  calls: number;
  errors: number;
  /** Milliseconds (the upper edge of the percentile's bin); null without calls. */
  p50: number | null;
  p99: number | null;
}

/**
 * The last {@link HISTORY_MINUTES} minutes of calls.
 *
 * @example
 * ```ts
 * const h = new MinuteHistory();
 * h.record(Date.now(), true, 42);
 * h.buckets(Date.now()).at(-1); // { t: '2026-12-07T05:33:00.000Z', calls: 1, errors: 0, p50: 42.4, p99: 42.4 }
 * ```
 */
export class MinuteHistory {
  /** The minute (epoch minutes) each slot holds; -1 when empty. */
  private readonly minute = new Float64Array(HISTORY_MINUTES).fill(-1);
  private readonly calls = new Uint32Array(HISTORY_MINUTES);
  private readonly errors = new Uint32Array(HISTORY_MINUTES);
  private readonly bins = new Uint32Array(HISTORY_MINUTES * BINS);

  record(at: number, ok: boolean, latencyMs: number): void {
    const m = Math.floor(at / MINUTE_MS);
    const slot = m % HISTORY_MINUTES;
    if (this.minute[slot] !== m) {
      // A slot is reused an hour later: what it held is out of the window.
      this.minute[slot] = m;
      this.calls[slot] = 0;
      this.errors[slot] = 0;
      this.bins.fill(0, slot * BINS, (slot + 1) * BINS);
    }
    this.calls[slot]!++;
    if (!ok) this.errors[slot]!++;
    this.bins[slot * BINS + binOf(latencyMs)]!++;
  }

  /** The last {@link HISTORY_MINUTES} minutes up to `now`'s, oldest first; empty minutes included. */
  buckets(now: number): MinuteBucket[] {
    const current = Math.floor(now / MINUTE_MS);
    const out: MinuteBucket[] = [];
    for (let m = current - HISTORY_MINUTES + 1; m <= current; m++) {
      const slot = m % HISTORY_MINUTES;
      const held = this.minute[slot] === m;
      const calls = held ? this.calls[slot]! : 0;
      out.push({
        t: new Date(m * MINUTE_MS).toISOString(),
        calls,
        errors: held ? this.errors[slot]! : 0,
        p50: calls === 0 ? null : this.percentile(slot, calls, 0.5),
        p99: calls === 0 ? null : this.percentile(slot, calls, 0.99),
      });
    }
    return out;
  }

  private percentile(slot: number, calls: number, p: number): number {
    const rank = Math.ceil(p * calls);
    let seen = 0;
    for (let b = 0; b < BINS; b++) {
      seen += this.bins[slot * BINS + b]!;
      if (seen >= rank) return upperEdge(b);
    }
    return upperEdge(BINS - 1);
  }
}

function binOf(ms: number): number {
  if (!(ms > FIRST_MS)) return 0;
  return Math.min(BINS - 1, Math.ceil(Math.log(ms / FIRST_MS) / LOG_GROWTH));
}

/** Bin b holds latencies in (FIRST_MS * GROWTH^(b-1), FIRST_MS * GROWTH^b]. */
function upperEdge(b: number): number {
  return Math.round(FIRST_MS * GROWTH ** b * 10) / 10;
}
