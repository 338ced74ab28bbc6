/**
 * Counters and histograms for hot paths, read by prom-client at scrape time.
 *
 * prom-client's own `Counter.inc(labels)` and `Histogram.observe(labels, v)` validate and hash
 * the label object on every call (about a microsecond); a 3-step invocation records six or
 * more values, which would cost a few percent of throughput. Here a caller looks a series up
 * once ({@link FastCounter.series}, two `Map` reads) and then adds to plain numbers; the work of
 * formatting is done when Prometheus scrapes, in `get()`, which has the shape prom-client's
 * `Registry` expects of a metric.
 */
import type { Registry } from 'prom-client';

/** One labelled series of a counter: add to `value`. */
export interface CounterCell {
  value: number;
}

/** One labelled series of a histogram (see {@link observe}). */
export interface HistogramCell {
  /** Per bucket (not cumulative); the last slot is +Inf. */
  readonly counts: Float64Array;
  sum: number;
  count: number;
}

type LabelValues = Record<string, string>;

interface MetricValue {
  labels: LabelValues;
  value: number;
  metricName?: string;
}

/** What prom-client's `Registry` reads of a metric. */
interface MetricData {
  name: string;
  help: string;
  type: 'counter' | 'histogram';
  values: MetricValue[];
  aggregator: 'sum';
}

/**
 * Series keyed by label values, found without building a key string: a tree of maps, one level
 * per label (low-cardinality labels only, so the tree stays small).
 */
class SeriesTree<T> {
  private readonly root = new Map<string, unknown>();
  readonly all: Array<{ labels: LabelValues; cell: T }> = [];

  constructor(
    private readonly labelNames: readonly string[],
    private readonly make: () => T,
  ) {}

  get(values: readonly string[]): T {
    let node = this.root;
    const last = this.labelNames.length - 1;
    for (let i = 0; i < last; i++) {
      let next = node.get(values[i]!) as Map<string, unknown> | undefined;
      if (next === undefined) node.set(values[i]!, (next = new Map()));
      node = next;
    }
    const leafKey = last < 0 ? '' : values[last]!;
    let cell = node.get(leafKey) as T | undefined;
    if (cell === undefined) {
      cell = this.make();
      node.set(leafKey, cell);
      const labels: LabelValues = {};
      this.labelNames.forEach((n, i) => (labels[n] = values[i]!));
      this.all.push({ labels, cell });
    }
    return cell;
  }
}

/**
 * A Prometheus counter whose series are {@link CounterCell}s.
 *
 * @example
 * ```ts
 * const started = new FastCounter(registry, 'keel_x_total', 'Things.', ['service']);
 * started.series(['Orders']).value++;
 * ```
 */
export class FastCounter {
  private readonly tree: SeriesTree<CounterCell>;
  readonly type = 'counter';

  constructor(
    registry: Registry,
    readonly name: string,
    readonly help: string,
    labelNames: readonly string[],
  ) {
    this.tree = new SeriesTree(labelNames, () => ({ value: 0 }));
    registry.registerMetric(this as never);
  }

  series(values: readonly string[]): CounterCell {
    return this.tree.get(values);
  }

  get(): Promise<MetricData> {
    return Promise.resolve({
      name: this.name,
      help: this.help,
      type: 'counter',
      aggregator: 'sum',
      values: this.tree.all.map(({ labels, cell }) => ({ labels, value: cell.value })),
    });
  }

  /** prom-client calls it on `registry.resetMetrics()`. */
  reset(): void {
    for (const { cell } of this.tree.all) cell.value = 0;
  }
}

/**
 * A Prometheus histogram whose series are {@link HistogramCell}s; record with {@link observe}.
 *
 * @example
 * ```ts
 * const h = new FastHistogram(registry, 'keel_x_seconds', 'How long.', ['service'], [0.1, 1]);
 * observe(h.series(['Orders']), h.bounds, 0.25);
 * ```
 */
export class FastHistogram {
  private readonly tree: SeriesTree<HistogramCell>;
  readonly type = 'histogram';

  constructor(
    registry: Registry,
    readonly name: string,
    readonly help: string,
    labelNames: readonly string[],
    /** Upper bounds, ascending. */
    readonly bounds: readonly number[],
  ) {
    this.tree = new SeriesTree(labelNames, () => ({
      counts: new Float64Array(bounds.length + 1),
      sum: 0,
      count: 0,
    }));
    registry.registerMetric(this as never);
  }

  series(values: readonly string[]): HistogramCell {
    return this.tree.get(values);
  }

  get(): Promise<MetricData> {
    const values: MetricValue[] = [];
    for (const { labels, cell } of this.tree.all)
      values.push(...histogramSamples(this.name, labels, this.bounds, cell.counts, cell.sum));
    return Promise.resolve({
      name: this.name,
      help: this.help,
      type: 'histogram',
      aggregator: 'sum',
      values,
    });
  }

  reset(): void {
    for (const { cell } of this.tree.all) {
      cell.counts.fill(0);
      cell.sum = 0;
      cell.count = 0;
    }
  }
}

/** Records `value` in `cell`: a linear scan of a dozen bounds, no allocation. */
export function observe(cell: HistogramCell, bounds: readonly number[], value: number): void {
  let i = 0;
  while (i < bounds.length && value > bounds[i]!) i++;
  cell.counts[i]!++;
  cell.sum += value;
  cell.count++;
}

/** Seconds, from 1 ms to 5 min: invocations. */
export const INVOCATION_BUCKETS = [
  0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300,
];
/** Seconds, from 100 µs to 1 min: steps, requests, commits. */
export const SHORT_BUCKETS = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 60,
];
/** Calls per commit batch. */
export const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];

/** A sample of a {@link CollectedMetric}: labels and value (`metricName` for histogram parts). */
export type Sample = MetricValue;

/**
 * A metric whose samples are read at scrape time from counters kept elsewhere (an integration's
 * stats, the store): nothing at all is recorded through it.
 *
 * @example
 * ```ts
 * new CollectedMetric(registry, 'keel_x', 'Things.', 'gauge', () => [{ labels: {}, value: things.size }]);
 * ```
 */
export class CollectedMetric {
  constructor(
    registry: Registry,
    readonly name: string,
    readonly help: string,
    readonly type: 'counter' | 'gauge' | 'histogram',
    private readonly read: () => Sample[] | Promise<Sample[]>,
  ) {
    registry.registerMetric(this as never);
  }

  async get(): Promise<{
    name: string;
    help: string;
    type: string;
    values: Sample[];
    aggregator: 'sum';
  }> {
    return {
      name: this.name,
      help: this.help,
      type: this.type,
      values: await this.read(),
      aggregator: 'sum',
    };
  }

  reset(): void {}
}

/** The samples of one histogram series kept as per-bucket counts (the last slot is +Inf). */
export function histogramSamples(
  name: string,
  labels: LabelValues,
  bounds: readonly number[],
  counts: ArrayLike<number>,
  sum: number,
): Sample[] {
  const out: Sample[] = [];
  let acc = 0;
  for (let i = 0; i < bounds.length; i++) {
    acc += counts[i]!;
    out.push({
      labels: { ...labels, le: String(bounds[i]) },
      value: acc,
      metricName: `${name}_bucket`,
    });
  }
  acc += counts[bounds.length] ?? 0;
  out.push({ labels: { ...labels, le: '+Inf' }, value: acc, metricName: `${name}_bucket` });
  out.push({ labels, value: sum, metricName: `${name}_sum` });
  out.push({ labels, value: acc, metricName: `${name}_count` });
  return out;
}
