/**
 * `npm run bench`: measures Keel over real HTTP and prints one markdown table. Never asserts.
 *
 * Each server (Keel with durability `fsync`, Keel with `os`, and a plain node:http ceiling)
 * runs in its own child process pinned to CPU 0; this process, the load generator, pins
 * itself to CPU 1. For each server: start, warm up, run every scenario, stop.
 *
 *   npm run bench                      # the full table
 *   npm run bench -- --only=keel-fsync,plain
 *   npm run bench -- --profile         # CPU profile of the Keel server under the 32-client workflow load
 *   npm run bench -- --profile=wf-conc,noop-conc,wf-seq
 *   BENCH_SEQ=5000 BENCH_N=20000 BENCH_CLIENTS=64 npm run bench
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { percentiles, runLoad, type LoadResult } from './client.js';
import { formatSummary, summarizeProfile } from './profile.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
// bench/ when run with tsx, dist/bench/ when compiled.
const ROOT = path.resolve(HERE, path.basename(path.dirname(HERE)) === 'dist' ? '../..' : '..');
const TMP = path.join(ROOT, '.tmp', `bench-${process.pid}`);

const args = process.argv.slice(2);
const flag = (name: string): string | true | undefined => {
  for (const a of args) {
    if (a === `--${name}`) return true;
    if (a.startsWith(`--${name}=`)) return a.slice(name.length + 3);
  }
  return undefined;
};
const envInt = (name: string, dflt: number): number => {
  const v = process.env[name];
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0)
    throw new RangeError(`${name}="${v}" must be a positive integer`);
  return n;
};

const SEQ = envInt('BENCH_SEQ', 2_000);
const N = envInt('BENCH_N', 5_000);
const CLIENTS = envInt('BENCH_CLIENTS', 32);
const WARMUP = envInt('BENCH_WARMUP', 500);
const REPEAT = envInt('BENCH_REPEAT', 3);
const PROFILE_N = envInt('BENCH_PROFILE_N', 20_000);

// ---------------------------------------------------------------------------------------------
// Servers and scenarios

type ServerId = 'keel-fsync' | 'keel-os' | 'plain';
interface ServerKind {
  id: ServerId;
  label: string;
  entry: string;
  env: Record<string, string>;
}

const SERVERS: ServerKind[] = [
  {
    id: 'keel-fsync',
    label: 'Keel, `fsync`',
    entry: 'bench/server.ts',
    env: { KEEL_DURABILITY: 'fsync' },
  },
  { id: 'keel-os', label: 'Keel, `os`', entry: 'bench/server.ts', env: { KEEL_DURABILITY: 'os' } },
  { id: 'plain', label: 'plain node:http', entry: 'bench/plain-server.ts', env: {} },
];

type Handler = 'Bench3' | 'Bench3Svc' | 'Noop';
interface Scenario {
  id: string;
  title: string;
  handler: Handler;
  clients: number;
  total: number;
  steps: number;
  /** What the team aims at, for Keel rows. */
  target?: { minRate?: number; maxP50?: number; maxP99?: number };
}

const SCENARIOS: Scenario[] = [
  {
    id: 'wf-seq',
    title: '3-step workflow, sequential',
    handler: 'Bench3',
    clients: 1,
    total: SEQ,
    steps: 3,
    target: { maxP50: 0.5, maxP99: 2 },
  },
  {
    id: 'svc-seq',
    title: '3-step service handler, sequential',
    handler: 'Bench3Svc',
    clients: 1,
    total: SEQ,
    steps: 3,
  },
  {
    id: 'wf-conc',
    title: `3-step workflow, ${CLIENTS} clients`,
    handler: 'Bench3',
    clients: CLIENTS,
    total: N,
    steps: 3,
    target: { minRate: 10_000 },
  },
  {
    id: 'svc-conc',
    title: `3-step service handler, ${CLIENTS} clients`,
    handler: 'Bench3Svc',
    clients: CLIENTS,
    total: N,
    steps: 3,
  },
  {
    id: 'noop-conc',
    title: `zero-step handler, ${CLIENTS} clients`,
    handler: 'Noop',
    clients: CLIENTS,
    total: N,
    steps: 0,
    target: { minRate: 15_000 },
  },
  {
    id: 'noop-seq',
    title: 'zero-step handler, sequential',
    handler: 'Noop',
    clients: 1,
    total: SEQ,
    steps: 0,
  },
];

const BODY = '1';
const EXPECT: Record<Handler, string> = { Bench3: '4', Bench3Svc: '4', Noop: '1' };
/** Workflow keys never repeat across runs, warm-ups and servers: a workflow runs once per key. */
let keySeq = 0;
const keyPrefix = `${process.pid.toString(36)}-${Date.now().toString(36)}`;
function pathFor(handler: Handler): (i: number) => string {
  if (handler === 'Bench3') return () => `/Bench3/${keyPrefix}-${keySeq++}/run`;
  return handler === 'Bench3Svc' ? () => '/Bench3Svc/run' : () => '/Noop/run';
}

// ---------------------------------------------------------------------------------------------
// Process management

interface Running {
  child: ChildProcess;
  host: string;
  port: number;
  stats(): Promise<Record<string, number>>;
  /** Sends an IPC message and waits for the answer that has `key`. */
  ask(msg: unknown, key: string): Promise<unknown>;
  stop(): Promise<void>;
}

function ask(child: ChildProcess, msg: unknown, key: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const onMsg = (m: unknown): void => {
      if (typeof m !== 'object' || m === null) return;
      if (key in m || 'profileError' in m) {
        child.off('message', onMsg);
        if ('profileError' in m) reject(new Error(String(m.profileError)));
        else resolve((m as Record<string, unknown>)[key]);
      }
    };
    child.on('message', onMsg);
    child.send(msg as string);
  });
}

const log = (s: string): void => void process.stderr.write(`bench: ${s}\n`);

let pinned = false;
function pinSelf(): void {
  if (os.cpus().length < 2) return;
  try {
    execFileSync('taskset', ['-a', '-cp', '1', String(process.pid)], { stdio: 'ignore' });
    pinned = true;
  } catch {
    pinned = false;
  }
}

async function startServer(kind: ServerKind): Promise<Running> {
  const db = path.join(TMP, `${kind.id}.db`);
  // Run compiled JavaScript when the bench itself was compiled (npm run bench): tsx wraps every
  // closure in a keepNames helper, a few percent of CPU that real deployments do not pay.
  const compiled = import.meta.url.includes('/dist/');
  const nodeArgs = compiled
    ? [path.join(ROOT, 'dist', kind.entry.replace(/\.ts$/, '.js'))]
    : ['--import', 'tsx', kind.entry];
  const [cmd, argv] = pinned
    ? ['taskset', ['-c', '0', process.execPath, ...nodeArgs]]
    : [process.execPath, nodeArgs];
  const child = spawn(cmd, argv, {
    cwd: ROOT,
    env: { ...process.env, ...kind.env, KEEL_DB: db, KEEL_PORT: '0', KEEL_HOST: '127.0.0.1' },
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
  });
  const exited = new Promise<number | null>((res) => child.once('exit', (code) => res(code)));
  const url = await new Promise<string>((resolve, reject) => {
    let buf = '';
    let ready = false;
    const timer = setTimeout(() => reject(new Error(`${kind.id}: not ready after 30 s`)), 30_000);
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (d: string) => {
      buf += d;
      let nl;
      while ((nl = buf.indexOf('\n')) !== -1) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        const m = /^KEEL_BENCH_READY (\S+)/.exec(line);
        if (m && !ready) {
          ready = true;
          clearTimeout(timer);
          resolve(m[1]!);
        } else if (line.trim() !== '') log(`[${kind.id}] ${line}`);
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${kind.id}: server exited with code ${code} before it was ready`));
    });
  });
  const u = new URL(url);
  return {
    child,
    host: u.hostname,
    port: Number(u.port),
    stats: async () => (await ask(child, 'stats', 'stats')) as Record<string, number>,
    ask: (msg, key) => ask(child, msg, key),
    stop: async () => {
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(t);
    },
  };
}

async function load(
  srv: Running,
  handler: Handler,
  clients: number,
  total: number,
): Promise<LoadResult> {
  return runLoad({
    host: srv.host,
    port: srv.port,
    clients,
    total,
    path: pathFor(handler),
    body: BODY,
    expect: EXPECT[handler],
    timeoutMs: 120_000,
  });
}

async function warmUp(srv: Running): Promise<void> {
  for (const h of ['Bench3', 'Bench3Svc', 'Noop'] as const) {
    await load(srv, h, 1, WARMUP);
    await load(srv, h, CLIENTS, WARMUP * 2);
  }
}

// ---------------------------------------------------------------------------------------------
// Measuring

/** CPU time, in ms, of the server, of this process, and of the whole machine (busy, all cores). */
interface CpuSnap {
  server: number;
  self: number;
  machine: number;
}

const TICK_MS = 10; // USER_HZ is 100 on Linux

function cpuSnap(serverPid: number | undefined): CpuSnap | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${serverPid}/stat`, 'utf8');
    // Fields after the ")" that ends the command name: utime is the 14th field, stime the 15th.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const server = (Number(f[11]) + Number(f[12])) * TICK_MS;
    const cpu = fs
      .readFileSync('/proc/stat', 'utf8')
      .split('\n')[0]!
      .trim()
      .split(/\s+/)
      .slice(1)
      .map(Number);
    // user nice system idle iowait irq softirq steal: busy is all but idle and iowait.
    const machine = (cpu[0]! + cpu[1]! + cpu[2]! + cpu[5]! + cpu[6]! + cpu[7]!) * TICK_MS;
    const u = process.cpuUsage();
    return { server, self: (u.user + u.system) / 1000, machine };
  } catch {
    return undefined; // not Linux
  }
}

const STORE_COUNTERS = ['writes', 'syncs', 'syncNs', 'commitNs'] as const;
type StoreDelta = Record<(typeof STORE_COUNTERS)[number], number>;

interface Row {
  scenario: Scenario;
  server: ServerKind;
  result: LoadResult;
  rate: number;
  p50: number;
  p99: number;
  /** Deltas of the store's counters (`SqliteStore.stats`) over the row; missing ones are 0. */
  store?: StoreDelta;
  /** Percent of one core: server, load generator, everything else on the machine. */
  cpu?: { server: number; client: number; other: number };
  /** CPU time the server used during the row (all its threads), in ms. */
  serverCpuMs?: number;
  /** inv/s of each repetition, when the row combines several. */
  rates?: number[];
  /** Runs left out because other processes competed for the CPUs. */
  discarded?: number;
  /** Failed requests in the runs left out: failures are never hidden. */
  discardedFailures?: number;
}

/**
 * Combines repetitions of a scenario: inv/s is the median run's, latency percentiles are over
 * every request of every run, failures are summed (a failure in any run shows), CPU is averaged.
 */
function combine(runs: Row[]): Row {
  if (runs.length === 1) return runs[0]!;
  const rates = runs.map((r) => r.rate);
  const sortedRates = [...rates].sort((a, b) => a - b);
  const rate = sortedRates[Math.floor((sortedRates.length - 1) / 2)]!;
  const okTotal = runs.reduce((n, r) => n + r.result.ok, 0);
  const latencies = new Float64Array(okTotal);
  let at = 0;
  for (const r of runs) {
    latencies.set(r.result.latenciesMs, at);
    at += r.result.latenciesMs.length;
  }
  const statuses: Record<number, number> = {};
  for (const r of runs)
    for (const [k, v] of Object.entries(r.result.statuses))
      statuses[Number(k)] = (statuses[Number(k)] ?? 0) + v;
  const sum = (f: (r: Row) => number): number => runs.reduce((n, r) => n + f(r), 0);
  const result: LoadResult = {
    total: sum((r) => r.result.total),
    ok: okTotal,
    statuses,
    wrongBody: sum((r) => r.result.wrongBody),
    errors: sum((r) => r.result.errors),
    samples: runs.flatMap((r) => r.result.samples).slice(0, 5),
    elapsedMs: sum((r) => r.result.elapsedMs),
    latenciesMs: latencies,
  };
  const [p50, p99] = percentiles(latencies, [50, 99]) as [number, number];
  const stores = runs.map((r) => r.store).filter((x) => x !== undefined);
  const cpus = runs.map((r) => r.cpu).filter((x) => x !== undefined);
  const avg = (f: (c: NonNullable<Row['cpu']>) => number): number =>
    cpus.reduce((n, c) => n + f(c), 0) / cpus.length;
  return {
    scenario: runs[0]!.scenario,
    server: runs[0]!.server,
    result,
    rate,
    p50,
    p99,
    store: stores.length
      ? (Object.fromEntries(
          STORE_COUNTERS.map((k) => [k, stores.reduce((n, x) => n + x[k], 0)]),
        ) as StoreDelta)
      : undefined,
    cpu: cpus.length
      ? { server: avg((c) => c.server), client: avg((c) => c.client), other: avg((c) => c.other) }
      : undefined,
    serverCpuMs: runs.every((r) => r.serverCpuMs !== undefined)
      ? sum((r) => r.serverCpuMs!)
      : undefined,
    rates,
  };
}

const isClean = (r: Row): boolean => r.cpu === undefined || r.cpu.other <= NOISY_PCT;

/**
 * Runs a scenario REPEAT times. A run during which other processes competed for the CPUs is
 * run again (up to REPEAT more times, while the whole bench is under ~100 s); the row then
 * combines the clean runs, or every run if none was clean (and shows ⚠️).
 */
async function repeated(srv: Running, kind: ServerKind, sc: Scenario, t0: number): Promise<Row> {
  const runs: Row[] = [];
  const clean = (): Row[] => runs.filter(isClean);
  while (clean().length < REPEAT) {
    const retriesLeft = runs.length < REPEAT * 2 && Date.now() - t0 < 100_000;
    if (runs.length >= REPEAT && !retriesLeft) break;
    runs.push(await measure(srv, kind, sc));
  }
  const good = clean();
  const row = combine(good.length ? good : runs);
  const left = good.length ? runs.filter((r) => !isClean(r)) : [];
  row.discarded = left.length;
  row.discardedFailures = left.reduce((n, r) => n + r.result.total - r.result.ok, 0);
  return row;
}

async function measure(srv: Running, kind: ServerKind, sc: Scenario): Promise<Row> {
  const before = await srv.stats();
  const c0 = cpuSnap(srv.child.pid);
  const result = await load(srv, sc.handler, sc.clients, sc.total);
  const c1 = cpuSnap(srv.child.pid);
  const after = await srv.stats();
  let cpu: Row['cpu'];
  let serverCpuMs: number | undefined;
  if (c0 && c1) {
    const pct = (ms: number): number => (100 * ms) / result.elapsedMs;
    const server = c1.server - c0.server;
    const client = c1.self - c0.self;
    serverCpuMs = server;
    cpu = {
      server: pct(server),
      client: pct(client),
      other: Math.max(0, pct(c1.machine - c0.machine - server - client)),
    };
  }
  const [p50, p99] = percentiles(result.latenciesMs, [50, 99]) as [number, number];
  const rate = result.ok / (result.elapsedMs / 1000);
  const delta = (k: string): number => (after[k] ?? 0) - (before[k] ?? 0);
  const store =
    'writes' in after
      ? (Object.fromEntries(STORE_COUNTERS.map((k) => [k, delta(k)])) as StoreDelta)
      : undefined;
  const bad = result.total - result.ok;
  log(
    `${kind.id} ${sc.id}: ${result.ok}/${result.total} ok, ${fmtInt(rate)}/s, p50 ${p50.toFixed(2)} ms, p99 ${p99.toFixed(2)} ms` +
      (cpu ? `, CPU ${cpuCell(cpu)}` : '') +
      (bad ? `, ${bad} FAILED: ${result.samples.join(' | ')}` : ''),
  );
  return { scenario: sc, server: kind, result, rate, p50, p99, store, cpu, serverCpuMs };
}

function fdatasyncProbe(dir: string, n = 200): { p50: number; p99: number } {
  const file = path.join(dir, 'fdatasync-probe');
  const fd = fs.openSync(file, 'w');
  const page = Buffer.alloc(4096, 1);
  const lat = new Float64Array(n);
  try {
    for (let i = 0; i < n; i++) {
      fs.writeSync(fd, page);
      const t = process.hrtime.bigint();
      fs.fdatasyncSync(fd);
      lat[i] = Number(process.hrtime.bigint() - t) / 1e6;
    }
  } finally {
    fs.closeSync(fd);
    fs.rmSync(file, { force: true });
  }
  const [p50, p99] = percentiles(lat, [50, 99]) as [number, number];
  return { p50, p99 };
}

// ---------------------------------------------------------------------------------------------
// Report

const fmtInt = (n: number): string =>
  Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '—';
const fmtMs = (n: number): string => (Number.isFinite(n) ? n.toFixed(2) : '—');

function failures(r: LoadResult, discardedFailures = 0): string {
  const parts: string[] = [];
  if (discardedFailures) parts.push(`${discardedFailures}× in noisy runs`);
  for (const [status, count] of Object.entries(r.statuses)) parts.push(`${count}× ${status}`);
  if (r.wrongBody) parts.push(`${r.wrongBody}× wrong body`);
  if (r.errors) parts.push(`${r.errors}× no answer`);
  return parts.length ? `**${parts.join(', ')}**` : '0';
}

function targetCell(row: Row): string {
  if (row.server.id === 'plain') return 'ceiling';
  const t = row.scenario.target;
  if (!t) return '—';
  const bad = row.result.ok !== row.result.total || (row.discardedFailures ?? 0) > 0;
  const checks: string[] = [];
  if (t.minRate !== undefined) {
    const ok = row.rate >= t.minRate && !bad;
    checks.push(
      `${ok ? '✅' : '❌'} ≥${fmtInt(t.minRate)}/s (${Math.round((100 * row.rate) / t.minRate)}%)`,
    );
  }
  if (t.maxP50 !== undefined)
    checks.push(`${row.p50 <= t.maxP50 && !bad ? '✅' : '❌'} p50 ≤${t.maxP50}`);
  if (t.maxP99 !== undefined)
    checks.push(`${row.p99 <= t.maxP99 && !bad ? '✅' : '❌'} p99 ≤${t.maxP99}`);
  return checks.join(', ');
}

function invocationsCell(row: Row): string {
  const runs = row.rates?.length ?? 1;
  const n = runs > 1 ? `${runs} × ${fmtInt(row.scenario.total)}` : fmtInt(row.scenario.total);
  return row.discarded ? `${n} (+${row.discarded} noisy)` : n;
}

function cpuPerInvCell(row: Row): string {
  if (row.serverCpuMs === undefined || row.result.total === 0) return '—';
  return fmtInt((1000 * row.serverCpuMs) / row.result.total);
}

function rateCell(row: Row): string {
  if (!row.rates || row.rates.length < 2) return fmtInt(row.rate);
  return `${fmtInt(row.rate)} (${fmtInt(Math.min(...row.rates))}–${fmtInt(Math.max(...row.rates))})`;
}

function storeCell(row: Row): string {
  const st = row.store;
  if (!st) return '—';
  const n = row.result.total;
  const parts = [`${(st.writes / n).toFixed(1)} writes`];
  if (st.syncs > 0) parts.push(`${(st.syncs / n).toFixed(2)} fsyncs`);
  let out = `${parts.join(' + ')} /inv`;
  if (st.commitNs > 0) out += `; commit ${fmtInt(st.commitNs / 1000 / n)} µs/inv`;
  if (st.syncs > 0 && st.syncNs > 0) out += `; fsync ${fmtInt(st.syncNs / 1000 / st.syncs)} µs avg`;
  return out;
}

/** Other processes using more than this share of a core during a row make it suspect. */
const NOISY_PCT = 15;

function cpuCell(c: NonNullable<Row['cpu']>): string {
  return `${c.server.toFixed(0)} / ${c.client.toFixed(0)} / ${c.other.toFixed(0)}${c.other > NOISY_PCT ? ' ⚠️' : ''}`;
}

function table(rows: Row[]): string {
  const out = [
    '| Scenario | Server | Clients | Invocations | Failed | inv/s | steps/s | p50 ms | p99 ms | srv CPU µs/inv | CPU % srv / gen / other | Store | Target |',
    '| --- | --- | -: | -: | -: | -: | -: | -: | -: | -: | -: | --- | --- |',
  ];
  for (const sc of SCENARIOS) {
    for (const row of rows.filter((r) => r.scenario.id === sc.id)) {
      out.push(
        `| ${row.scenario.title} | ${row.server.label} | ${sc.clients} | ${invocationsCell(row)} | ${failures(row.result, row.discardedFailures)} | ${rateCell(row)} | ` +
          `${sc.steps ? fmtInt(row.rate * sc.steps) : '—'} | ${fmtMs(row.p50)} | ${fmtMs(row.p99)} | ${cpuPerInvCell(row)} | ${row.cpu ? cpuCell(row.cpu) : '—'} | ${storeCell(row)} | ${targetCell(row)} |`,
      );
    }
  }
  return out.join('\n');
}

function machine(): string[] {
  const cpus = os.cpus();
  let fsType = '?';
  try {
    fsType = execFileSync('findmnt', ['-n', '-o', 'FSTYPE', '-T', TMP], {
      encoding: 'utf8',
    }).trim();
  } catch {
    /* not Linux */
  }
  let sqlite = '?';
  try {
    sqlite = execFileSync(
      process.execPath,
      [
        '-e',
        "const D=require('better-sqlite3');console.log(new D(':memory:').prepare('select sqlite_version() v').get().v)",
      ],
      {
        cwd: ROOT,
        encoding: 'utf8',
      },
    ).trim();
  } catch {
    /* reported as ? */
  }
  return [
    `- CPU: ${cpus[0]?.model.trim() ?? '?'}, ${cpus.length} cores; ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB RAM; ${os.type()} ${os.release()}`,
    `- Node ${process.version}, SQLite ${sqlite} (better-sqlite3), server run ${import.meta.url.includes('/dist/') ? 'as compiled JavaScript (tsc)' : 'with `node --import tsx`'}`,
    pinned
      ? '- Pinning: each server runs alone on CPU 0 (`taskset -c 0`, its libuv threadpool included); the load generator on CPU 1.'
      : '- Pinning: **not pinned** (taskset missing or fewer than 2 cores): server and load generator share the CPUs.',
    `- Machine load average at the start: ${loadAvg.map((l) => l.toFixed(2)).join(', ')} (1, 5, 15 min); anything else running skews the numbers: see the CPU column.`,
    `- Database: a fresh SQLite file per server under \`.tmp/\` (${fsType}); a 4 KiB append + fdatasync there takes p50 ${fmtMs(probe.p50)} ms, p99 ${fmtMs(probe.p99)} ms.`,
  ];
}

let probe = { p50: NaN, p99: NaN };
let loadAvg = os.loadavg();

// ---------------------------------------------------------------------------------------------
// Main

async function runProfile(which: string[]): Promise<void> {
  const kind = SERVERS[0]!;
  const dir = path.join(ROOT, '.tmp', 'bench-profile');
  fs.mkdirSync(dir, { recursive: true });
  const srv = await startServer(kind);
  const out: string[] = [];
  const rows: Row[] = [];
  try {
    await warmUp(srv);
    for (const id of which) {
      const base = SCENARIOS.find((s) => s.id === id);
      if (!base)
        throw new Error(
          `--profile: no scenario "${id}"; one of ${SCENARIOS.map((s) => s.id).join(', ')}`,
        );
      const sc: Scenario = {
        ...base,
        total: base.clients === 1 ? Math.min(PROFILE_N, SEQ * 2) : PROFILE_N,
      };
      log(`profiling ${kind.id} under "${sc.title}" x ${sc.total}`);
      const file = path.join(dir, `${kind.id}-${sc.id}.cpuprofile`);
      await srv.ask('profile-start', 'profiling');
      rows.push(await measure(srv, kind, sc));
      await srv.ask({ profileStop: file }, 'profiled');
      out.push(`## Server profile: ${sc.title}, ${fmtInt(sc.total)} invocations\n`);
      out.push(formatSummary(summarizeProfile(file, ROOT), 15));
      out.push(
        `\nProfile file: ${path.relative(ROOT, file)} (open in Chrome DevTools > Performance, or VS Code).\n`,
      );
    }
  } finally {
    await srv.stop();
  }
  console.log('# Keel server CPU profile\n');
  console.log(machine().join('\n'));
  console.log(
    '- Profiled in-process through the inspector, during the measured load only (not startup or warm-up); positions mapped to the TypeScript sources.\n',
  );
  console.log(table(rows) + '\n');
  console.log(out.join('\n'));
}

async function main(): Promise<void> {
  fs.mkdirSync(TMP, { recursive: true });
  loadAvg = os.loadavg();
  pinSelf();
  probe = fdatasyncProbe(TMP);
  const t0 = Date.now();
  try {
    const prof = flag('profile');
    if (prof) return await runProfile(prof === true ? ['wf-conc'] : prof.split(','));
    const only = flag('only');
    const servers =
      typeof only === 'string' ? SERVERS.filter((s) => only.split(',').includes(s.id)) : SERVERS;
    const rows: Row[] = [];
    for (const kind of servers) {
      log(`starting ${kind.id}`);
      const srv = await startServer(kind);
      try {
        await warmUp(srv);
        for (const sc of SCENARIOS) rows.push(await repeated(srv, kind, sc, t0));
      } finally {
        await srv.stop();
      }
    }
    const secs = ((Date.now() - t0) / 1000).toFixed(0);
    console.log('# Keel benchmark\n');
    console.log(machine().join('\n'));
    console.log(
      `- Load: closed loop over HTTP/1.1 keep-alive on 127.0.0.1, one connection per client, one request in flight each; ` +
        `after a warm-up of ${WARMUP} sequential + ${fmtInt(WARMUP * 2)} concurrent requests per handler. Each workflow request uses a new key. ` +
        `Latency is from the request's write to its answer's last byte. ` +
        (REPEAT > 1
          ? `Each row is ${REPEAT} back-to-back runs on the same server: inv/s is the median run's (min–max in brackets), p50/p99 are over every request of every run, failures are summed, CPU is averaged. `
          : '') +
        `Whole run: ${secs} s.`,
    );
    console.log(
      "- Durability: `fsync` (default) = every step result is in the fdatasync'ed WAL before the handler sees it (group commit: one fdatasync covers every write of an event-loop turn); " +
        '`os` = committed to the OS page cache only (survives a crash of the process, not of the machine).\n',
    );
    console.log(table(rows));
    console.log(
      '\nFailed = answers other than 200 with the expected body, and requests with no answer; they are excluded from the latencies and from inv/s. ' +
        'CPU = CPU time during the row as % of one core: the server process (all its threads), the load generator, and everything else on the machine ' +
        `(⚠️ = other processes used more than ${NOISY_PCT}% of a core: that row is skewed, run again on a quiet machine; a server near 100% is CPU-bound, well below it waits on something else). ` +
        `A run with such competition is run again, up to ${REPEAT} more times per row; "+N noisy" counts the runs left out (their failures still count). ` +
        `srv CPU µs/inv = the server's CPU time per invocation (all its threads): the cost that bounds throughput on one core (10,000 inv/s needs ≤100). ` +
        "Store = from the SQLite store's counters: store writes and fdatasyncs per invocation (fewer fsyncs than writes = group commit), " +
        'the time spent committing SQLite transactions per invocation, and the average time from starting an fdatasync to its callback. ' +
        'Targets apply to Keel rows; the plain node:http rows are the ceiling (same JSON parsing and handlers, no engine, no durability).',
    );
  } finally {
    fs.rmSync(TMP, { recursive: true, force: true });
  }
}

await main();
