import { collectDefaultMetrics, Registry } from 'prom-client';
import type { ErrorInfo } from '../../core/errors.js';
import type { ActiveCounts, CommitObserver, KeyQueueDepth } from '../../store/observe.js';
import type { InvocationStatus, Store } from '../../store/types.js';
import {
  BATCH_BUCKETS,
  CollectedMetric,
  FastCounter,
  FastHistogram,
  INVOCATION_BUCKETS,
  observe,
  SHORT_BUCKETS,
  type HistogramCell,
  type Sample,
} from './instruments.js';

/** The object keys with the deepest queues that `keel_key_queue_depth` reports. */
export const HOT_KEYS = 10;
/**
 * How long the store's counts (by status, timers, hot keys) are reused between scrapes, at
 * least; a read that took longer makes its answer last {@link STORE_COUNTS_COST_FACTOR} times
 * its duration (see `storeCounts`).
 */
export const STORE_COUNTS_TTL_MS = 5000;
/**
 * SQLite reads on the event loop, and counting is linear in the unfinished invocations (about
 * 0.1 s per 500,000 on an idle core): reusing an answer 200 times as long as it took to read
 * keeps the counting under 0.5% of the event loop whatever the table holds.
 */
export const STORE_COUNTS_COST_FACTOR = 200;

/** The statuses `keel_invocations` reports (the unfinished ones; finished ones are counters). */
const ACTIVE_STATUSES: readonly InvocationStatus[] = [
  'queued',
  'pending',
  'scheduled',
  'running',
  'suspended',
  'backing-off',
  'paused',
];

/** Steps are timed in whole milliseconds: the first bucket is "under a millisecond". */
const STEP_BUCKETS = SHORT_BUCKETS.filter((b) => b >= 0.001);

/** The content type of `GET /metrics`: Prometheus text format 0.0.4. */
export const METRICS_CONTENT_TYPE = Registry.PROMETHEUS_CONTENT_TYPE;

/**
 * Whether metrics are on: `metrics: false` turns them off, else `KEEL_METRICS=0` (or `false`,
 * `off`, `no`) does; on by default (and with `1`, `true`, `on`, `yes`). Any other value of
 * `KEEL_METRICS` throws a RangeError saying which values count.
 *
 * @example
 * ```ts
 * metricsEnabled(undefined, { KEEL_METRICS: 'off' }); // false
 * ```
 */
export function metricsEnabled(option: boolean | undefined, env = process.env): boolean {
  if (option !== undefined) return option;
  const v = env.KEEL_METRICS?.trim().toLowerCase();
  if (v === undefined || v === '' || v === '1' || v === 'true' || v === 'on' || v === 'yes')
    return true;
  if (v === '0' || v === 'false' || v === 'off' || v === 'no') return false;
  // A typo would otherwise leave metrics on without a word, e.g. KEEL_METRICS=disabled.
  throw new RangeError(
    `KEEL_METRICS="${env.KEEL_METRICS}" is neither on (1, true, on, yes) nor off (0, false, off, no)`,
  );
}

/**
 * One engine's Prometheus metrics, on a registry of its own (never prom-client's global one, so
 * two engines in one process do not clash). The engine records into it at points that exist
 * anyway (an invocation created or finished, a step's end, a committed batch); what the store
 * holds (counts by status, timers, the deepest key queues) is read when Prometheus scrapes,
 * and reused for {@link STORE_COUNTS_TTL_MS}. Extensions (integrations, webhooks, buses) add
 * their own metrics to {@link registry} when they install.
 *
 * @example
 * ```ts
 * const metrics = new EngineMetrics(store, () => 0);
 * metrics.started('Orders', 'place');
 * const text = await metrics.text(); // keel_invocations_started_total{service="Orders",handler="place"} 1
 * ```
 */
export class EngineMetrics {
  readonly registry = new Registry();
  private readonly startedTotal: FastCounter;
  private readonly finishedTotal: FastCounter;
  private readonly invocationSeconds: FastHistogram;
  private readonly stepSeconds: FastHistogram;
  private readonly batchCell: HistogramCell;
  private readonly commitCell: HistogramCell;
  private readonly fsyncCell: HistogramCell;
  private defaults = false;
  private counts: { until: number; value: Promise<StoreCounts> } | undefined;
  /**
   * The step series of the last target: consecutive steps are mostly of one handler, so most
   * steps find their series without a lookup. Kept here rather than on the caller's row, whose
   * shape (an object the whole engine reads) a metrics-only property would change.
   */
  private lastStep: { service: string; handler: string; cell: HistogramCell } | undefined;

  /** What the store's group commit tells (see `Store.observeCommits`). */
  readonly commits: CommitObserver;

  constructor(
    private readonly store: Store,
    /** Invocations executing in this process's memory right now. */
    inMemory: () => number,
  ) {
    const r = this.registry;
    this.startedTotal = new FastCounter(
      r,
      'keel_invocations_started_total',
      'Invocations created by this process.',
      ['service', 'handler'],
    );
    this.finishedTotal = new FastCounter(
      r,
      'keel_invocations_finished_total',
      'Invocations whose outcome this process recorded, by outcome (completed, failed, cancelled, killed).',
      ['service', 'handler', 'outcome'],
    );
    this.invocationSeconds = new FastHistogram(
      r,
      'keel_invocation_duration_seconds',
      'From the creation of an invocation to its recorded outcome (waits and retries included).',
      ['service', 'handler'],
      INVOCATION_BUCKETS,
    );
    this.stepSeconds = new FastHistogram(
      r,
      'keel_step_duration_seconds',
      'A step (ctx.run) from its start to its durable result, in the attempt that ran it (millisecond resolution).',
      ['service', 'handler'],
      STEP_BUCKETS,
    );
    const batch = new FastHistogram(
      r,
      'keel_store_commit_batch_size',
      'Write calls committed together in one transaction (group commit).',
      [],
      BATCH_BUCKETS,
    );
    const commit = new FastHistogram(
      r,
      'keel_store_commit_seconds',
      "One group commit: SQLite's transaction on the event loop, PostgreSQL's round trip.",
      [],
      SHORT_BUCKETS,
    );
    const fsync = new FastHistogram(
      r,
      'keel_store_fsync_seconds',
      'One fdatasync of the SQLite write-ahead log (a batch is answered after it).',
      [],
      SHORT_BUCKETS,
    );
    this.batchCell = batch.series([]);
    this.commitCell = commit.series([]);
    this.fsyncCell = fsync.series([]);
    this.commits = {
      committed: (calls, seconds) => {
        observe(this.batchCell, BATCH_BUCKETS, calls);
        observe(this.commitCell, SHORT_BUCKETS, seconds);
      },
      synced: (seconds) => observe(this.fsyncCell, SHORT_BUCKETS, seconds),
    };

    new CollectedMetric(
      r,
      'keel_invocations',
      'Unfinished invocations in the store, by status (all processes sharing it).',
      'gauge',
      async () => {
        const c = await this.storeCounts();
        if (c.active === undefined) return [];
        const by = c.active.byStatus;
        return ACTIVE_STATUSES.map((status) => ({ labels: { status }, value: by[status] ?? 0 }));
      },
    );
    new CollectedMetric(
      r,
      'keel_timers_pending',
      'Durable timers not fired yet.',
      'gauge',
      async () => {
        const c = await this.storeCounts();
        return c.active === undefined ? [] : [{ labels: {}, value: c.active.timers }];
      },
    );
    new CollectedMetric(
      r,
      'keel_key_queue_depth',
      `Invocations waiting for an object key, for the ${HOT_KEYS} keys with the most.`,
      'gauge',
      async () =>
        ((await this.storeCounts()).hot ?? []).map((h): Sample => ({
          labels: { service: h.service, key: h.key },
          value: h.depth,
        })),
    );
    new CollectedMetric(
      r,
      'keel_invocations_in_memory',
      'Invocations executing in this process right now (not suspended).',
      'gauge',
      () => [{ labels: {}, value: inMemory() }],
    );
  }

  /** A new invocation was durably created. */
  started(service: string, handler: string): void {
    this.startedTotal.series([service, handler]).value++;
  }

  /** An invocation's outcome was recorded, `seconds` after its creation. */
  finished(service: string, handler: string, error: ErrorInfo | undefined, seconds: number): void {
    this.finishedTotal.series([service, handler, outcomeOf(error)]).value++;
    observe(this.invocationSeconds.series([service, handler]), INVOCATION_BUCKETS, seconds);
  }

  /**
   * A step of an invocation of `target` took `ms` milliseconds (whole: measured with
   * `Date.now()`).
   */
  step(target: { readonly service: string; readonly handler: string }, ms: number): void {
    const { service, handler } = target;
    let last = this.lastStep;
    if (last === undefined || last.service !== service || last.handler !== handler)
      this.lastStep = last = {
        service,
        handler,
        cell: this.stepSeconds.series([service, handler]),
      };
    observe(last.cell, STEP_BUCKETS, ms / 1000);
  }

  /**
   * The metrics in Prometheus text format. The first call adds Node's process metrics (CPU,
   * memory, event-loop lag, GC): only an engine that is scraped pays for their observers.
   */
  async text(): Promise<string> {
    if (!this.defaults) {
      this.defaults = true;
      collectDefaultMetrics({ register: this.registry });
    }
    return this.registry.metrics();
  }

  /**
   * The store's counts, read at most once per {@link STORE_COUNTS_TTL_MS} (one read serves
   * every scrape meanwhile). A failed read (the store unreachable) is not kept: its metrics are
   * left out of that scrape.
   */
  private storeCounts(): Promise<StoreCounts> {
    const now = performance.now();
    if (this.counts !== undefined && now < this.counts.until) return this.counts.value;
    const { store } = this;
    const counts = { until: Infinity, value: Promise.resolve<StoreCounts>({}) };
    counts.value = Promise.all([store.countActive?.(), store.keyQueueDepths?.(HOT_KEYS)]).then(
      ([active, hot]) => {
        const took = performance.now() - now;
        counts.until = now + Math.max(STORE_COUNTS_TTL_MS, took * STORE_COUNTS_COST_FACTOR);
        return { active, hot };
      },
      (): StoreCounts => {
        if (this.counts === counts) this.counts = undefined;
        return {};
      },
    );
    this.counts = counts;
    return counts.value;
  }
}

interface StoreCounts {
  active?: ActiveCounts;
  hot?: KeyQueueDepth[];
}

/** The `outcome` label: completed, cancelled, killed or failed. */
function outcomeOf(error: ErrorInfo | undefined): string {
  if (error === undefined) return 'completed';
  if (error.code === 'cancelled' || error.code === 'killed') return error.code;
  return 'failed';
}
