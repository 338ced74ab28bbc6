/**
 * `npm run bench -- --only=metrics-cost`: what metrics cost, as server CPU time per 3-step
 * workflow with metrics on against off, measured in ONE server process in interleaved phases.
 *
 * Why not two servers one after the other (the `metrics-on` / `metrics-off` rows): on a small
 * shared machine their throughput swings by tens of percent from round to round, far more
 * than the 3 % budget of metrics. Why not instructions under callgrind: the server's periodic
 * work (sweeps, timers, the checkpointer) scales with wall time, which valgrind stretches.
 *
 * How: bench/metrics-pair-server.ts runs two Keel apps in one process (pinned to CPU 0 when
 * this process is pinned to CPU 1), each on its own SQLite file with `fsync`: one with metrics
 * on (scraped in process every 5 s of its phases), one with `metrics: false`. Both are warmed
 * up, then each round runs a phase of each mode, in alternating order (on, off; then off, on),
 * each phase `K` workflows (`POST /Bench3/{key}/run`, body `1`, answer `4`) from 32 clients.
 * The server process's CPU time (`process.cpuUsage()`, every thread, over IPC) around a phase,
 * divided by its workflows, is that phase's µs/workflow. Whatever else the process does during
 * a phase (the idle app's periodic work, garbage left by the phase before) falls on both modes
 * alike, and the ratio on/off is taken within a round, so slow spells of the machine cancel.
 * Never asserts.
 *
 *   BENCH_METRICS_ROUNDS=60 BENCH_METRICS_K=1000 npm run bench -- --only=metrics-cost
 *   BENCH_METRICS_CONTROL=1 npm run bench -- --only=metrics-cost   # metrics off in both apps
 *   BENCH_METRICS_NODE_FLAGS='--cpu-prof --cpu-prof-dir=/tmp/p' npm run bench -- --only=metrics-cost
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runLoad, type LoadResult } from './client.js';

type Mode = 'on' | 'off';

export interface MetricsCostOptions {
  /** The repository's root (the child's cwd). */
  root: string;
  /** A directory for the two SQLite files (removed by the caller). */
  tmp: string;
  /** Whether this process is pinned to CPU 1 (then the server goes on CPU 0). */
  pinned: boolean;
  log: (line: string) => void;
  /** Rounds (each: one phase per mode). Default 20 (`BENCH_METRICS_ROUNDS`). */
  rounds?: number;
  /** Workflows per phase. Default 1,000 (`BENCH_METRICS_K`). */
  perPhase?: number;
  /** Warm-up workflows per app. Default 2,000. */
  warmup?: number;
  clients?: number;
  /** A control run: metrics off in both apps (`BENCH_METRICS_CONTROL=1`). */
  control?: boolean;
}

export interface Phase {
  round: number;
  mode: Mode;
  workflows: number;
  cpuUs: number;
  elapsedMs: number;
  failed: number;
}

export interface MetricsCostResult {
  phases: Phase[];
  rounds: number;
  perPhase: number;
  warmup: number;
  clients: number;
  /** CPU µs of one scrape of the metrics app (store counts read anew), median of 21. */
  scrapeUs: number;
  /** `uptime`'s load averages at the start and the end. */
  loadBefore: number[];
  loadAfter: number[];
  pinned: boolean;
  compiled: boolean;
  control: boolean;
}

function envInt(name: string, dflt: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0)
    throw new RangeError(`${name}="${v}" must be a positive integer`);
  return n;
}

function request<T>(child: ChildProcess, msg: unknown, key: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const onMsg = (m: unknown): void => {
      if (typeof m === 'object' && m !== null && key in m) {
        cleanup();
        resolve((m as Record<string, T>)[key]!);
      }
    };
    const onExit = (): void => {
      cleanup();
      reject(new Error('metrics pair server exited'));
    };
    const cleanup = (): void => {
      child.off('message', onMsg);
      child.off('exit', onExit);
    };
    child.on('message', onMsg);
    child.once('exit', onExit);
    child.send(msg as string);
  });
}

export async function metricsCost(opts: MetricsCostOptions): Promise<MetricsCostResult> {
  const rounds = opts.rounds ?? envInt('BENCH_METRICS_ROUNDS', 20);
  const perPhase = opts.perPhase ?? envInt('BENCH_METRICS_K', 1_000);
  const warmup = opts.warmup ?? 2_000;
  const clients = opts.clients ?? 32;
  const control = opts.control ?? process.env.BENCH_METRICS_CONTROL === '1';
  const dir = path.join(opts.tmp, 'metrics-cost');
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  // Compiled (npm run bench): the server's .js sits next to this file.
  const compiled = import.meta.url.endsWith('.js');
  // E.g. `--cpu-prof --cpu-prof-dir=DIR` to see where the server's time goes.
  const nodeFlags = (process.env.BENCH_METRICS_NODE_FLAGS ?? '').split(' ').filter(Boolean);
  const entry = [
    ...nodeFlags,
    ...(compiled
      ? [fileURLToPath(new URL('./metrics-pair-server.js', import.meta.url))]
      : ['--import', 'tsx', 'bench/metrics-pair-server.ts']),
  ];
  const [cmd, argv] = opts.pinned
    ? ['taskset', ['-c', '0', process.execPath, ...entry]]
    : [process.execPath, entry];
  const loadBefore = os.loadavg();
  const child = spawn(cmd, argv, {
    cwd: opts.root,
    env: { ...process.env, KEEL_BENCH_DIR: dir, KEEL_BENCH_CONTROL: control ? '1' : '0' },
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
  });
  const exited = new Promise<void>((res) => child.once('exit', () => res()));
  try {
    const urls = await new Promise<Record<Mode, URL>>((resolve, reject) => {
      let buf = '';
      child.stdout!.setEncoding('utf8');
      child.stdout!.on('data', (d: string) => {
        buf += d;
        const m = /METRICS_PAIR_READY (\S+) (\S+)/.exec(buf);
        if (m) resolve({ on: new URL(m[1]!), off: new URL(m[2]!) });
      });
      void exited.then(() => reject(new Error('metrics pair server exited before it was ready')));
    });
    let seq = 0;
    const load = (mode: Mode, total: number): Promise<LoadResult> => {
      const batch = seq++;
      return runLoad({
        host: urls[mode].hostname,
        port: Number(urls[mode].port),
        clients,
        total,
        path: (i) => `/Bench3/m${batch}-${i}/run`,
        body: '1',
        expect: '4',
      });
    };
    const failedOf = (r: LoadResult): number => r.total - r.ok;
    opts.log(`metrics-cost: warm-up, ${warmup} workflows per app`);
    for (const mode of ['on', 'off'] as const) {
      const r = await load(mode, warmup);
      if (failedOf(r) > 0) opts.log(`metrics-cost: warm-up ${mode}: ${failedOf(r)} failed`);
    }
    const phases: Phase[] = [];
    for (let round = 1; round <= rounds; round++) {
      const order: Mode[] = round % 2 === 1 ? ['on', 'off'] : ['off', 'on'];
      for (const mode of order) {
        const before = await request<number>(child, { begin: mode }, 'cpu');
        const r = await load(mode, perPhase);
        const after = await request<number>(child, 'end', 'cpu');
        phases.push({
          round,
          mode,
          workflows: r.ok,
          cpuUs: after - before,
          elapsedMs: r.elapsedMs,
          failed: failedOf(r),
        });
      }
      const [a, b] = phases.slice(-2);
      opts.log(
        `metrics-cost: round ${round}/${rounds}: ${a!.mode} ${(a!.cpuUs / a!.workflows).toFixed(1)} µs/wf, ` +
          `${b!.mode} ${(b!.cpuUs / b!.workflows).toFixed(1)} µs/wf`,
      );
    }
    const scrapeUs = await request<number>(child, 'scrape-cost', 'scrape');
    return {
      phases,
      rounds,
      perPhase,
      warmup,
      clients,
      scrapeUs,
      loadBefore,
      loadAfter: os.loadavg(),
      pinned: opts.pinned,
      compiled,
      control,
    };
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

export interface MetricsCostSummary {
  /** Median µs/workflow per mode. */
  usOn: number;
  usOff: number;
  /** Median throughput per mode, workflows/s. */
  rateOn: number;
  rateOff: number;
  /** Median, min and max over rounds of (µs/wf on) / (µs/wf off). */
  ratio: number;
  ratioMin: number;
  ratioMax: number;
  /** (ratio - 1) * 100. */
  costPct: number;
  /** A 95 % bootstrap interval of the median ratio (resampled rounds, fixed seed). */
  ratioLow: number;
  ratioHigh: number;
  failed: number;
}

export function summarizeMetricsCost(r: MetricsCostResult): MetricsCostSummary {
  const us = (p: Phase): number => p.cpuUs / Math.max(1, p.workflows);
  const rate = (p: Phase): number => (p.workflows * 1000) / p.elapsedMs;
  const of = (mode: Mode): Phase[] => r.phases.filter((p) => p.mode === mode);
  const ratios: number[] = [];
  for (let round = 1; round <= r.rounds; round++) {
    const on = r.phases.find((p) => p.round === round && p.mode === 'on');
    const off = r.phases.find((p) => p.round === round && p.mode === 'off');
    if (on && off) ratios.push(us(on) / us(off));
  }
  const ratio = median(ratios);
  const [ratioLow, ratioHigh] = bootstrapMedian(ratios);
  return {
    usOn: median(of('on').map(us)),
    usOff: median(of('off').map(us)),
    rateOn: median(of('on').map(rate)),
    rateOff: median(of('off').map(rate)),
    ratio,
    ratioMin: Math.min(...ratios),
    ratioMax: Math.max(...ratios),
    costPct: (ratio - 1) * 100,
    ratioLow,
    ratioHigh,
    failed: r.phases.reduce((n, p) => n + p.failed, 0),
  };
}

/**
 * The 2.5th and 97.5th percentiles of the median of `xs` resampled with replacement, 4,000
 * times, with a fixed seed (the same data print the same interval): how far the median of the
 * rounds could be from the one more rounds would give.
 */
function bootstrapMedian(xs: number[]): [number, number] {
  if (xs.length === 0) return [NaN, NaN];
  let seed = 0x9e3779b9;
  const random = (): number => {
    // mulberry32
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const medians: number[] = [];
  for (let b = 0; b < 4_000; b++)
    medians.push(median(xs.map(() => xs[Math.floor(random() * xs.length)]!)));
  medians.sort((a, b) => a - b);
  return [
    medians[Math.floor(0.025 * medians.length)]!,
    medians[Math.ceil(0.975 * medians.length) - 1]!,
  ];
}

export function metricsCostSection(r: MetricsCostResult): string {
  const s = summarizeMetricsCost(r);
  const f1 = (n: number): string => n.toFixed(1);
  const fInt = (n: number): string => Math.round(n).toLocaleString('en-US');
  const pct = (ratio: number): string =>
    `${ratio >= 1 ? '+' : ''}${((ratio - 1) * 100).toFixed(1)} %`;
  const load = (l: number[]): string => l.map((x) => x.toFixed(2)).join(', ');
  const perWfScrape = r.scrapeUs / (5 * s.rateOn);
  const failed = (mode: Mode): number =>
    r.phases.filter((p) => p.mode === mode).reduce((n, p) => n + p.failed, 0);
  // In a control run app "on" has metrics off too: the figure is the method's error.
  const onLabel = r.control ? 'off (app "on", control run)' : 'on';
  return [
    ...(r.control
      ? [
          '**Control run (`BENCH_METRICS_CONTROL=1`): metrics off in both apps, no scrape; the "cost" below is what the method reads when there is none.**',
          '',
        ]
      : []),
    '| Metrics | Server CPU µs per 3-step workflow (median phase) | Workflows/s (median phase) | Phases | Failed |',
    '|---|---:|---:|---:|---:|',
    `| ${onLabel} | ${f1(s.usOn)} | ${fInt(s.rateOn)} | ${r.rounds} | ${failed('on')} |`,
    `| off | ${f1(s.usOff)} | ${fInt(s.rateOff)} | ${r.rounds} | ${failed('off')} |`,
    '',
    `**${r.control ? 'Control' : 'Metrics'} cost: ${s.costPct >= 0 ? '+' : ''}${s.costPct.toFixed(2)} % server CPU per workflow** ` +
      `(median over ${r.rounds} rounds of the paired ratio on/off: ${s.ratio.toFixed(4)}; min–max ${s.ratioMin.toFixed(4)}–${s.ratioMax.toFixed(4)}; ` +
      `95 % bootstrap interval of the median ${pct(s.ratioLow)} to ${pct(s.ratioHigh)}). ` +
      (r.control
        ? ''
        : `One scrape (store counts read anew) took ${fInt(r.scrapeUs)} µs of CPU: every 5 s at the median "on" rate, ${perWfScrape.toFixed(2)} µs per workflow. `) +
      `Load average (1, 5, 15 min): ${load(r.loadBefore)} at the start, ${load(r.loadAfter)} at the end.`,
    '',
    `One server process (bench/metrics-pair-server.ts${r.compiled ? ', compiled JavaScript' : ', under tsx'}; ` +
      `${r.pinned ? 'pinned to CPU 0, the load generator on CPU 1' : 'not pinned: taskset missing or fewer than 2 cores'}) ` +
      "runs two Keel apps, each on its own SQLite file with durability `fsync`: one with metrics on, scraped in process (`metrics.text()`, the work of `GET /metrics`) every 5 s of its own phases' time, one with `metrics: false`. " +
      `After a warm-up of ${fInt(r.warmup)} workflows per app, each round runs one phase per app, in alternating order (on, off; then off, on); ` +
      `a phase is ${fInt(r.perPhase)} workflows \`POST /Bench3/{new key}/run\` from ${r.clients} keep-alive clients. ` +
      "The server's CPU time (`process.cpuUsage()`: user + system, every thread, read over IPC before and after the phase) divided by the phase's workflows is its µs/workflow; " +
      "the cost is the median over rounds of on/off within a round. Process-wide work falls on both modes alike: the idle app's periodic work, garbage collected after the phase that made it, " +
      "and Node's process metrics that the first scrape installs (event-loop delay monitor, GC observer), so the last are not in the difference. Workflows/s is for information only: the machine is shared. See bench/metrics-cost.ts.",
  ].join('\n');
}
