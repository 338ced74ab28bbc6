/**
 * `npm run bench`: measures Keel over real HTTP and prints one markdown table. Never asserts.
 *
 * Each server (Keel with durability `fsync`, Keel with `os`, and a plain node:http ceiling)
 * runs in its own child process pinned to CPU 0; this process, the load generator, pins
 * itself to CPU 1. For each server: start, warm up, run every scenario, stop. Keel `fsync` and
 * the plain ceiling then run the 3-step workflow at 32 clients once more on a fresh server
 * given CPUs 0 and 1 (the 2-core layout; the load generator stays on CPU 1: this machine has no
 * third core). A server's CPU is that of its whole process tree (worker processes included).
 *
 * Every run starts by timing write + fdatasync of one WAL frame in the SQLite files' directory,
 * overwriting a pre-sized file and appending to a growing one (bench/fdatasync.ts): the
 * sequential `fsync` rows are judged against that run's overwrite p50.
 *
 * Keel on PostgreSQL (`BENCH_DATABASE_URL`, default postgres://postgres@127.0.0.1:5432/test)
 * runs as 1 process of the code issue 18 measured (commit b9dbb70, built once under .tmp/; the
 * "before" rows, see prepareBefore), as 1 process of this code, then as 2 processes on one schema (a cluster), each time
 * on a fresh random schema dropped afterwards; the clients are split evenly across the processes.
 *
 *   npm run bench                      # the full table
 *   npm run bench -- --only=keel-fsync,plain --scenarios=wf-conc,wf-seq
 *   npm run bench -- --only=keel-pg-before,keel-pg,keel-pg-2 --scenarios=wf-conc
 *   npm run bench -- --only=metrics-on,metrics-off --rounds=2   # metrics' cost: on, off, on, off
 *   npm run bench -- --only=metrics-cost   # metrics' cost: CPU per workflow, on/off interleaved in one process
 *   npm run bench -- --profile         # CPU profile of the Keel server under the 32-client workflow load
 *   npm run bench -- --profile=wf-conc,noop-conc,wf-seq
 *   npm run bench -- --profile --server=keel-pg   # the same for Keel on PostgreSQL
 *   npm run bench -- --only=suspended --suspended=10000   # the suspended-workflows row, smaller
 *   npm run bench -- --only=gateway    # the integration platform's gateway rows (bench/gateway.ts)
 *   npm run bench -- --only=buses      # messages/s from RabbitMQ and NATS into invocations (bench/buses.ts)
 *   npm run bench -- --only=list       # the dashboard's list queries at 1,000,000 invocations (bench/list.ts)
 *   npm run bench -- --only=schedules  # cron schedules due in the same second: how late ticks fire (bench/schedules.ts)
 *   npm run bench -- --only=fdatasync  # one write + fdatasync on this disk, appending vs overwriting (bench/fdatasync.ts)
 *   BENCH_SEQ=5000 BENCH_N=20000 BENCH_CLIENTS=64 npm run bench
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { percentiles, runLoad, type LoadResult } from './client.js';
import { busesBench } from './buses.js';
import { gatewayBench } from './gateway.js';
import { integrationsBench } from './integrations.js';
import { listBench } from './list.js';
import { runSchedulesBench, schedulesTable } from './schedules.js';
import { fdatasyncTable, measureFdatasync, type FdatasyncResult } from './fdatasync.js';
import { metricsCost, metricsCostSection } from './metrics-cost.js';
import { formatSummary, summarizeProfile } from './profile.js';
import { runSuspendedBench, suspendedTable, SUSPENDED_TARGET } from './suspended.js';
import { runWebhookBench, webhookTable, type WebhookRow } from './webhooks.js';

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
/** Runs per PostgreSQL row: fewer, to keep the first table short. */
const PG_REPEAT = envInt('BENCH_PG_REPEAT', Math.min(REPEAT, 2));
const PROFILE_N = envInt('BENCH_PROFILE_N', 20_000);
/** Writes + fdatasyncs of each kind (overwrite, append) timed at the start of every run. */
const FDATASYNC_N = envInt('BENCH_FDATASYNC_N', 1_000);
/** Workflows suspended on a durable promise in the suspended-workflows row (`--suspended=N` too). */
const SUSPENDED = ((): number => {
  const f = flag('suspended');
  if (typeof f !== 'string') return envInt('BENCH_SUSPENDED', 100_000);
  const n = Number(f);
  if (!Number.isInteger(n) || n <= 0)
    throw new RangeError(`--suspended=${f} must be a positive integer`);
  return n;
})();
/** Sequential invocations on PostgreSQL, where each step waits for a WAL flush. */
const PG_SEQ = envInt('BENCH_PG_SEQ', 300);
const PG_URL = process.env.BENCH_DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test';
/**
 * A PostgreSQL run stops sending after this long (the requests in flight complete) and is not
 * repeated: the row then covers fewer invocations and says so. Keeps a slow PostgreSQL path
 * from stretching the whole bench; at the target rate a run takes 2 s.
 */
const PG_CAP_MS = envInt('BENCH_PG_CAP_S', 15) * 1000;
/** Rows are re-run when noisy only while the whole bench is younger than this. */
const RETRY_BUDGET_MS = envInt('BENCH_RETRY_BUDGET_S', 120) * 1000;
const cpuList = (name: string, dflt: string): number[] => {
  const v = process.env[name] ?? dflt;
  if (v.trim() === '') return [];
  const cpus = v.split(',').map(Number);
  if (cpus.some((c) => !Number.isInteger(c) || c < 0))
    throw new RangeError(`${name}="${v}" must be a comma-separated list of CPU numbers`);
  return cpus;
};
/** Keel-on-PostgreSQL process i runs on CPU PG_SERVER_CPUS[i % n]. */
const PG_SERVER_CPUS = cpuList('BENCH_PG_SERVER_CPUS', '0');
/**
 * The PostgreSQL backends serving the bench's Keel processes are pinned to these CPUs (empty,
 * the default: not pinned, as a local PostgreSQL runs). `1` gives the 1- and 2-process rows
 * exactly the same CPU budget (PostgreSQL then shares CPU 1 with the load generator).
 */
const PG_BACKEND_CPUS = cpuList('BENCH_PG_BACKEND_CPUS', '');

// ---------------------------------------------------------------------------------------------
// Servers and scenarios

type ServerId =
  | 'keel-fsync'
  | 'keel-os'
  | 'plain'
  | 'keel-pg-before'
  | 'keel-pg'
  | 'keel-pg-2'
  | 'metrics-on'
  | 'metrics-off'
  | 'keel-queue';
interface ServerKind {
  id: ServerId;
  label: string;
  entry: string;
  /** Set for the server; `undefined` removes a variable inherited from the bench's environment. */
  env: Record<string, string | undefined>;
  /**
   * Also measured in the 2-core layout (the 3-step workflow at 32 clients only): Keel `fsync`
   * and its plain ceiling, each against the other in the same layout.
   */
  twoCore?: boolean;
  /**
   * Keel on PostgreSQL: this many processes on one fresh schema (a cluster), the clients split
   * evenly across their ingress ports.
   */
  pgProcesses?: number;
  /** Another build of Keel to run the entry from (keel-pg-before, see {@link prepareBefore}). */
  root?: string;
}

const SERVERS: ServerKind[] = [
  {
    id: 'keel-fsync',
    label: 'Keel, `fsync`',
    entry: 'bench/server.ts',
    env: { KEEL_DURABILITY: 'fsync' },
    twoCore: true,
  },
  { id: 'keel-os', label: 'Keel, `os`', entry: 'bench/server.ts', env: { KEEL_DURABILITY: 'os' } },
  {
    id: 'plain',
    label: 'plain node:http',
    // One process on one core; on more, KEEL_WORKERS or one per CPU (bench/plain-cluster.ts).
    entry: 'bench/plain-cluster.ts',
    env: {},
    twoCore: true,
  },
  // The cost of a flow-control queue: Bench3 filed in a queue of concurrency 64 (bench/services.ts).
  // Opt-in (`--only=keel-fsync,keel-queue --scenarios=wf-conc`): compare it with keel-fsync.
  {
    id: 'keel-queue',
    label: 'Keel, `fsync`, workflow in a queue (concurrency 64)',
    entry: 'bench/server.ts',
    env: { KEEL_DURABILITY: 'fsync', KEEL_BENCH_QUEUE: '1' },
  },
  // The cost of metrics (the 3-step workflow rows only): the same server with metrics on and
  // scraped every 5 s (GET /metrics' work, in process), then with KEEL_METRICS=0. Measured back
  // to back in one run; `--rounds=2` alternates on, off, on, off.
  {
    id: 'metrics-on',
    label: 'Keel, `fsync`, metrics on (scraped every 5 s)',
    entry: 'bench/server.ts',
    env: { KEEL_DURABILITY: 'fsync', KEEL_METRICS: '1', KEEL_BENCH_SCRAPE_MS: '5000' },
  },
  {
    id: 'metrics-off',
    label: 'Keel, `fsync`, metrics off',
    entry: 'bench/server.ts',
    env: { KEEL_DURABILITY: 'fsync', KEEL_METRICS: '0' },
  },
  // Issue 18's "before": the code the issue measured (BENCH_PG_BEFORE_REF, see prepareBefore),
  // built once under .tmp/ and measured in the same run as the current code (keel-pg), on the
  // same scenarios, just before it.
  {
    id: 'keel-pg-before',
    label: 'Keel, PostgreSQL, 1 process, before',
    entry: 'bench/server.ts',
    env: { KEEL_PG_PIPELINE: '1' },
    pgProcesses: 1,
  },
  // The current code with the store's default batches in flight, unless KEEL_PG_PIPELINE is set.
  {
    id: 'keel-pg',
    label: `Keel, PostgreSQL, 1 process${process.env.KEEL_PG_PIPELINE ? `, \`KEEL_PG_PIPELINE=${process.env.KEEL_PG_PIPELINE}\`` : ''}`,
    entry: 'bench/server.ts',
    env: {},
    pgProcesses: 1,
  },
  {
    id: 'keel-pg-2',
    label: 'Keel, PostgreSQL, 2 processes',
    entry: 'bench/server.ts',
    env: { KEEL_PG_PIPELINE: undefined },
    pgProcesses: 2,
  },
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
  /**
   * Sequential rows of Keel on SQLite with `fsync` are judged instead against the disk (issue
   * 18): p50 ≤ 1.25 × durable round trips × the overwrite fdatasync p50 of the same run.
   */
  fsyncBound?: boolean;
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
    fsyncBound: true,
  },
  {
    id: 'svc-seq',
    title: '3-step service handler, sequential',
    handler: 'Bench3Svc',
    clients: 1,
    total: SEQ,
    steps: 3,
    fsyncBound: true,
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

/** The issue's PostgreSQL target: 3-step workflow, 32 clients, one process, synchronous_commit=on. */
const PG_TARGET = 2_500;

/**
 * What each PostgreSQL deployment runs: the 3-step workflow at 32 clients (the issue's row) on
 * 1 and 2 processes; the zero-step handler and the sequential workflow on 1 process only, the
 * latter with fewer invocations (each step waits for a WAL flush). The SQLite targets do not
 * apply; the one PostgreSQL target is the issue's ≥2,500 inv/s on 1 process.
 */
function scenariosFor(kind: ServerKind): Scenario[] {
  if (kind.id === 'metrics-on' || kind.id === 'metrics-off')
    return SCENARIOS.filter((s) => s.handler === 'Bench3');
  // The issue's row: the queue's overhead on the 3-step workflow at 32 clients (≤ 10%).
  if (kind.id === 'keel-queue') return SCENARIOS.filter((s) => s.id === 'wf-conc');
  if (!kind.pgProcesses) return SCENARIOS;
  // In this order: the issue's row first, so that 1 and 2 processes measure it after the same
  // warm-up on equally fresh tables.
  const pick: Record<string, Partial<Scenario>> = kind.pgProcesses === 1
    ? {
        // The absolute target is the default store's; the "before" rows are its reference.
        'wf-conc': { target: kind.id === 'keel-pg' ? { minRate: PG_TARGET } : undefined },
        'wf-seq': { total: PG_SEQ, target: undefined },
        'noop-conc': { target: undefined },
      }
    : { 'wf-conc': { target: undefined } };
  return Object.entries(pick).map(([id, o]) => ({ ...SCENARIOS.find((s) => s.id === id)!, ...o }));
}

/**
 * Where a SQLite or plain server runs. The load generator is always on CPU 1: in the 2-core
 * layout it shares that core with the server, as this 2-core machine has no third one.
 */
interface Layout {
  cores: number;
  cpus: number[];
}
const ONE_CORE: Layout = { cores: 1, cpus: [0] };
const TWO_CORES: Layout = { cores: 2, cpus: [0, 1] };
/** The scenarios that `twoCore` servers also run in the 2-core layout (issue 18). */
const TWO_CORE_SCENARIOS = ['wf-conc'];

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

/**
 * The commit issue 18 measured PostgreSQL at ("today's figure"): the last one before its work
 * (b9dbb70). `BENCH_PG_BEFORE_REF` names another commit; set it empty to measure the current
 * code with one batch in flight as "before" instead.
 */
const PG_BEFORE_REF = process.env.BENCH_PG_BEFORE_REF ?? 'b9dbb70';
/** Whether {@link prepareBefore} has run. */
let beforeReady = false;

/**
 * Makes keel-pg-before run the code of {@link PG_BEFORE_REF}: `git archive` of that commit into
 * `.tmp/bench-before-<sha>/`, this checkout's node_modules linked in, `npm run build` there (once:
 * a later run reuses the build). When that cannot be done (no git history, an unknown commit, a
 * failing build) it says why on stderr and the row measures the current code with one batch in
 * flight, as its label then says.
 */
async function prepareBefore(kind: ServerKind): Promise<void> {
  const fallback = (why: string) => {
    if (why)
      process.stderr.write(
        `bench: keel-pg-before: ${why}; measuring the current code with one batch in flight\n`,
      );
    beforeReady = true;
    kind.label =
      'Keel, PostgreSQL, 1 process, current code, one batch in flight (`KEEL_PG_PIPELINE=1`)';
  };
  if (PG_BEFORE_REF === '') return fallback('');
  let sha: string;
  try {
    sha = execFileSync('git', ['rev-parse', '--verify', '--quiet', `${PG_BEFORE_REF}^{commit}`], {
      cwd: ROOT,
      encoding: 'utf8',
    }).trim();
  } catch {
    return fallback(`no commit ${PG_BEFORE_REF} in this checkout (BENCH_PG_BEFORE_REF)`);
  }
  const dir = path.join(ROOT, '.tmp', `bench-before-${sha.slice(0, 12)}`);
  const built = path.join(dir, 'dist', 'bench', 'server.js');
  if (!fs.existsSync(built)) {
    process.stderr.write(
      `bench: keel-pg-before: building ${sha.slice(0, 12)} in ${path.relative(ROOT, dir)} (once)\n`,
    );
    try {
      fs.rmSync(dir, { recursive: true, force: true });
      fs.mkdirSync(dir, { recursive: true });
      const archive = execFileSync('git', ['archive', '--format=tar', sha], {
        cwd: ROOT,
        maxBuffer: 1 << 30,
      });
      execFileSync('tar', ['-x', '-C', dir], { input: archive });
      fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
      execFileSync('npm', ['run', 'build', '--silent'], {
        cwd: dir,
        stdio: ['ignore', 'ignore', 'pipe'],
      });
    } catch (err) {
      fs.rmSync(dir, { recursive: true, force: true });
      return fallback(
        `building ${sha.slice(0, 12)} failed: ${(err as Error).message.split('\n')[0]}`,
      );
    }
  }
  beforeReady = true;
  kind.root = dir;
  kind.label = `Keel, PostgreSQL, 1 process, code of ${sha.slice(0, 7)} (before issue 18)`;
}

async function startServer(
  kind: ServerKind,
  opts: { name?: string; cpus?: number[]; env?: Record<string, string> } = {},
  /** Extra `node` flags. */
  nodeFlags: string[] = [],
): Promise<Running> {
  const name = opts.name ?? kind.id;
  const cpus = opts.cpus ?? ONE_CORE.cpus;
  const db = path.join(TMP, `${name}.db`);
  // Run compiled JavaScript when the bench itself was compiled (npm run bench): tsx wraps every
  // closure in a keepNames helper, a few percent of CPU that real deployments do not pay.
  const compiled = import.meta.url.includes('/dist/');
  if (kind.id === 'keel-pg-before' && !beforeReady) await prepareBefore(kind);
  const root = kind.root ?? ROOT;
  const nodeArgs =
    compiled || kind.root !== undefined
      ? [...nodeFlags, path.join(root, 'dist', kind.entry.replace(/\.ts$/, '.js'))]
      : [...nodeFlags, '--import', 'tsx', kind.entry];
  // Processes the server starts (workers) inherit its CPUs.
  const [cmd, argv] = pinned
    ? ['taskset', ['-c', cpus.join(','), process.execPath, ...nodeArgs]]
    : [process.execPath, nodeArgs];
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    ...kind.env,
    ...opts.env,
    KEEL_DB: db,
    KEEL_PORT: '0',
    KEEL_HOST: '127.0.0.1',
  };
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete env[k];
  const child = spawn(cmd, argv, {
    cwd: root,
    env,
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
  });
  const exited = new Promise<number | null>((res) => child.once('exit', (code) => res(code)));
  const url = await new Promise<string>((resolve, reject) => {
    let buf = '';
    let ready = false;
    const timer = setTimeout(() => reject(new Error(`${name}: not ready after 30 s`)), 30_000);
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
        } else if (line.trim() !== '') log(`[${name}] ${line}`);
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${name}: server exited with code ${code} before it was ready`));
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

/**
 * One or more server processes measured together: one for SQLite and the ceiling, one or two
 * Keel processes sharing a PostgreSQL schema.
 */
interface Deployment {
  kind: ServerKind;
  /** SQLite and plain servers: the CPUs given to the server. */
  layout?: Layout;
  servers: Running[];
  /** The fresh PostgreSQL schema, dropped by stop(). */
  schema?: string;
  stop(): Promise<void>;
}

/** Schemas created by this run and not dropped yet (dropped on the way out, even on Ctrl-C). */
const liveSchemas = new Set<string>();

/**
 * Rows read by sequential scans of the schema's tables so far (pg_stat_user_tables; backends
 * report their counters within about a second, so per-row deltas are approximate). Where the
 * plans use indexes this stays near zero whatever the table sizes.
 */
async function seqScannedRows(schema: string): Promise<number | undefined> {
  const c = new pg.Client({ connectionString: PG_URL });
  try {
    await c.connect();
    const r = await c.query<{ n: string }>(
      'SELECT coalesce(sum(seq_tup_read), 0) AS n FROM pg_stat_user_tables WHERE schemaname = $1',
      [schema],
    );
    return Number(r.rows[0]?.n ?? 0);
  } catch {
    return undefined;
  } finally {
    await c.end().catch(() => {});
  }
}

async function dropSchema(schema: string): Promise<void> {
  const c = new pg.Client({ connectionString: PG_URL });
  await c.connect();
  try {
    await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    liveSchemas.delete(schema);
  } finally {
    await c.end();
  }
}

async function startDeployment(
  kind: ServerKind,
  nodeFlags: string[] = [],
  layout: Layout = ONE_CORE,
): Promise<Deployment> {
  if (!kind.pgProcesses) {
    const name = layout.cores === 1 ? kind.id : `${kind.id}-${layout.cores}cores`;
    const srv = await startServer(kind, { name, cpus: layout.cpus }, nodeFlags);
    return { kind, layout, servers: [srv], stop: () => srv.stop() };
  }
  const schema = `keel_bench_${randomBytes(4).toString('hex')}`;
  liveSchemas.add(schema);
  // Started together: the processes of a cluster may start at once (migrations take a lock).
  const started = await Promise.allSettled(
    Array.from({ length: kind.pgProcesses }, (_, i) =>
      startServer(
        kind,
        {
          name: kind.pgProcesses === 1 ? kind.id : `${kind.id}#${i + 1}`,
          cpus: [PG_SERVER_CPUS.length ? PG_SERVER_CPUS[i % PG_SERVER_CPUS.length]! : 0],
          env: { KEEL_DATABASE_URL: PG_URL, KEEL_DATABASE_SCHEMA: schema },
        },
        nodeFlags,
      ),
    ),
  );
  const servers = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const stop = async (): Promise<void> => {
    await Promise.all(servers.map((s) => s.stop()));
    await dropSchema(schema);
  };
  const failed = started.find((r) => r.status === 'rejected');
  if (failed) {
    await stop();
    throw failed.reason;
  }
  return { kind, servers, schema, stop };
}

async function load(
  dep: Deployment,
  handler: Handler,
  clients: number,
  total: number,
): Promise<LoadResult> {
  return runLoad({
    host: dep.servers[0]!.host,
    port: dep.servers[0]!.port,
    targets: dep.servers.map((s) => ({ host: s.host, port: s.port })),
    clients,
    total,
    path: pathFor(handler),
    body: BODY,
    expect: EXPECT[handler],
    timeoutMs: 120_000,
    ...(dep.kind.pgProcesses ? { sendForMs: PG_CAP_MS } : {}),
  });
}

/**
 * Warms up the given handlers: WARMUP sequential requests (at most 200 per process on
 * PostgreSQL, where each step waits for a WAL flush), then WARMUP × 2 concurrent ones.
 */
async function warmUp(dep: Deployment, handlers: Handler[]): Promise<void> {
  const seq = dep.kind.pgProcesses ? Math.min(WARMUP, 200) : WARMUP;
  // A server given n cores may spread connections over n processes, each of which needs its
  // own warm-up (a sequential client reaches only one of them).
  const conc = WARMUP * 2 * (dep.layout?.cores ?? 1);
  for (const h of handlers) {
    for (const srv of dep.servers) await load({ ...dep, servers: [srv] }, h, 1, seq);
    await load(dep, h, CLIENTS, conc);
  }
}

/** Every handler, first, on SQLite and plain; on PostgreSQL each just before its first row. */
async function warmUpFor(dep: Deployment, sc: Scenario, warmed: Set<Handler>): Promise<void> {
  const hs = dep.kind.pgProcesses ? [sc.handler] : (['Bench3', 'Bench3Svc', 'Noop'] as const);
  const todo = hs.filter((h) => !warmed.has(h));
  await warmUp(dep, todo);
  for (const h of todo) warmed.add(h);
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL: which backends serve the bench's servers (to measure their CPU and pin them)

/** Port of the PostgreSQL server, when it runs on this machine (else its CPU is not measured). */
function localPgPort(): number | undefined {
  const u = new URL(PG_URL);
  if (!['127.0.0.1', 'localhost', '::1', '[::1]', ''].includes(u.hostname)) return undefined;
  return Number(u.port || 5432);
}

/**
 * The PIDs of the PostgreSQL backends connected to the given client processes: from `ss`, the
 * client side of each connection (local port, owning PID) and the server side (peer port,
 * backend PID). Empty when ss is missing or PostgreSQL is not local.
 */
function pgBackends(clientPids: number[]): number[] {
  const port = localPgPort();
  if (port === undefined) return [];
  let out: string;
  try {
    out = execFileSync(
      'ss',
      ['-tnpH', 'state', 'established', `( dport = :${port} or sport = :${port} )`],
      { encoding: 'utf8' },
    );
  } catch {
    return [];
  }
  const ours = new Set(clientPids);
  const clientPorts = new Set<string>();
  const backends: Array<{ peerPort: string; pid: number }> = [];
  for (const line of out.split('\n')) {
    const f = line.trim().split(/\s+/);
    // Recv-Q Send-Q Local:Port Peer:Port users:(("name",pid=N,fd=M))
    if (f.length < 5) continue;
    const local = f[2]!;
    const peer = f[3]!;
    const pid = Number(/pid=(\d+)/.exec(f.slice(4).join(' '))?.[1]);
    const lport = local.slice(local.lastIndexOf(':') + 1);
    const pport = peer.slice(peer.lastIndexOf(':') + 1);
    if (pport === String(port) && ours.has(pid)) clientPorts.add(lport);
    else if (lport === String(port) && pid) backends.push({ peerPort: pport, pid });
  }
  return backends.filter((b) => clientPorts.has(b.peerPort)).map((b) => b.pid);
}

/** Pins backends to PG_BACKEND_CPUS (new ones appear when the pool grows: called before each run). */
const pinnedBackends = new Set<number>();
function pinBackends(pids: number[]): void {
  if (!pinned || PG_BACKEND_CPUS.length === 0) return;
  for (const pid of pids) {
    if (pinnedBackends.has(pid)) continue;
    try {
      execFileSync('taskset', ['-cp', PG_BACKEND_CPUS.join(','), String(pid)], {
        stdio: 'ignore',
      });
      pinnedBackends.add(pid);
    } catch {
      /* the backend ended meanwhile, or no permission: it stays unpinned */
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Measuring

/** CPU time, in ms, of the given processes, of this process, and of the whole machine (busy, all cores). */
interface CpuSnap {
  procs: Map<number, number>;
  /** Each server's process tree at this moment (the server first, then its descendants). */
  trees: Map<number, number[]>;
  self: number;
  machine: number;
}

/** Whether the kernel lists a thread's children in /proc/<pid>/task/<tid>/children. */
const CHILDREN_FILES = fs.existsSync(`/proc/${process.pid}/task/${process.pid}/children`);

/**
 * A function listing each process's children: from /proc/<pid>/task/<tid>/children where the
 * kernel has them (CONFIG_PROC_CHILDREN), else from one scan of every /proc/<pid>/stat's parent
 * PID, taken now.
 */
function childLister(): (pid: number) => number[] {
  if (CHILDREN_FILES) {
    return (pid) => {
      const out: number[] = [];
      let tids: string[];
      try {
        tids = fs.readdirSync(`/proc/${pid}/task`);
      } catch {
        return out; // the process is gone
      }
      for (const tid of tids) {
        try {
          const txt = fs.readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim();
          if (txt) out.push(...txt.split(/\s+/).map(Number));
        } catch {
          /* the thread ended meanwhile */
        }
      }
      return out;
    };
  }
  const kids = new Map<number, number[]>();
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${e}/stat`, 'utf8');
    } catch {
      continue; // ended meanwhile
    }
    // The field after the ")" that ends the command name and the state is the parent PID.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    const list = kids.get(ppid);
    if (list) list.push(Number(e));
    else kids.set(ppid, [Number(e)]);
  }
  return (pid) => kids.get(pid) ?? [];
}

/** The PIDs of a process and all its descendants (worker processes a server started). */
function processTree(root: number, children: (pid: number) => number[]): number[] {
  const out = [root];
  for (let i = 0; i < out.length; i++) out.push(...children(out[i]!));
  return out;
}

const TICK_MS = 10; // USER_HZ is 100 on Linux

/** CPU time of a process (all its threads), in ms; undefined when it is gone or not Linux. */
function procCpu(pid: number): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the ")" that ends the command name: utime is the 14th field, stime the 15th.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) * TICK_MS;
  } catch {
    return undefined;
  }
}

/** `roots`: servers, measured with their whole process trees; `pids`: single processes. */
function cpuSnap(roots: number[], pids: number[]): CpuSnap | undefined {
  try {
    const procs = new Map<number, number>();
    const trees = new Map<number, number[]>();
    const children = childLister();
    for (const root of roots) trees.set(root, processTree(root, children));
    for (const pid of [...[...trees.values()].flat(), ...pids]) {
      const ms = procCpu(pid);
      if (ms !== undefined) procs.set(pid, ms);
    }
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
    return { procs, trees, self: (u.user + u.system) / 1000, machine };
  } catch {
    return undefined; // not Linux
  }
}

/**
 * Deltas of the store's counters over a row, summed over the processes: SQLite's writes, syncs,
 * syncNs, commitNs; PostgreSQL's batches, writes, ops, failed, isolated, roundTripNs.
 */
type StoreDelta = Record<string, number>;

interface Row {
  scenario: Scenario;
  server: ServerKind;
  /** SQLite and plain rows: the CPUs the server had. */
  layout?: Layout;
  result: LoadResult;
  rate: number;
  p50: number;
  p99: number;
  /** Deltas of the store's counters (`SqliteStore.stats`, `PostgresStore.stats`) over the row. */
  store?: StoreDelta;
  /**
   * Percent of one core: each server process, the PostgreSQL backends serving them (when on
   * PostgreSQL), the load generator, everything else on the machine.
   */
  cpu?: { servers: number[]; pg?: number; client: number; other: number };
  /** CPU time the server processes used during the row (all their threads and descendants), in ms. */
  serverCpuMs?: number;
  /** The most processes seen in one server's process tree (the server and its workers). */
  procs?: number;
  /** CPU time of the PostgreSQL backends serving them, in ms. */
  pgCpuMs?: number;
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
    planned: sum((r) => r.result.planned),
    ...(runs.some((r) => r.result.stoppedAfterMs !== undefined)
      ? {
          stoppedAfterMs: runs.find((r) => r.result.stoppedAfterMs !== undefined)!.result
            .stoppedAfterMs,
        }
      : {}),
    ok: okTotal,
    statuses,
    wrongBody: sum((r) => r.result.wrongBody),
    errors: sum((r) => r.result.errors),
    samples: runs.flatMap((r) => r.result.samples).slice(0, 5),
    elapsedMs: sum((r) => r.result.elapsedMs),
    latenciesMs: latencies,
    okByTarget: runs[0]!.result.okByTarget.map((_, i) => sum((r) => r.result.okByTarget[i] ?? 0)),
  };
  const [p50, p99] = percentiles(latencies, [50, 99]) as [number, number];
  const stores = runs.map((r) => r.store).filter((x) => x !== undefined);
  const cpus = runs.map((r) => r.cpu).filter((x) => x !== undefined);
  const avg = (f: (c: NonNullable<Row['cpu']>) => number): number =>
    cpus.reduce((n, c) => n + f(c), 0) / cpus.length;
  const storeKeys = [...new Set(stores.flatMap((x) => Object.keys(x)))];
  const procCounts = runs.map((r) => r.procs).filter((x) => x !== undefined);
  return {
    scenario: runs[0]!.scenario,
    server: runs[0]!.server,
    layout: runs[0]!.layout,
    procs: procCounts.length ? Math.max(...procCounts) : undefined,
    result,
    rate,
    p50,
    p99,
    store: stores.length
      ? Object.fromEntries(storeKeys.map((k) => [k, stores.reduce((n, x) => n + (x[k] ?? 0), 0)]))
      : undefined,
    cpu: cpus.length
      ? {
          servers: cpus[0]!.servers.map((_, i) => avg((c) => c.servers[i] ?? 0)),
          pg: cpus[0]!.pg === undefined ? undefined : avg((c) => c.pg ?? 0),
          client: avg((c) => c.client),
          other: avg((c) => c.other),
        }
      : undefined,
    serverCpuMs: runs.every((r) => r.serverCpuMs !== undefined)
      ? sum((r) => r.serverCpuMs!)
      : undefined,
    pgCpuMs: runs.every((r) => r.pgCpuMs !== undefined) ? sum((r) => r.pgCpuMs!) : undefined,
    rates,
  };
}

const isClean = (r: Row): boolean => r.cpu === undefined || r.cpu.other <= NOISY_PCT;

/**
 * Runs a scenario REPEAT times. A run during which other processes competed for the CPUs is
 * run again (up to REPEAT more times, while the whole bench is under RETRY_BUDGET_MS); the
 * row then combines the clean runs, or every run if none was clean (and shows ⚠️).
 */
async function repeated(dep: Deployment, sc: Scenario, t0: number): Promise<Row> {
  const repeat = dep.kind.pgProcesses ? PG_REPEAT : REPEAT;
  const runs: Row[] = [];
  const clean = (): Row[] => runs.filter(isClean);
  while (clean().length < repeat) {
    const retriesLeft = runs.length < repeat * 2 && Date.now() - t0 < RETRY_BUDGET_MS;
    if (runs.length >= repeat && !retriesLeft) break;
    runs.push(await measure(dep, sc));
    // A run stopped at PG_CAP_MS is not repeated: the row already took long enough.
    if (runs.at(-1)!.result.stoppedAfterMs !== undefined) break;
  }
  const good = clean();
  const row = combine(good.length ? good : runs);
  const left = good.length ? runs.filter((r) => !isClean(r)) : [];
  row.discarded = left.length;
  row.discardedFailures = left.reduce((n, r) => n + r.result.total - r.result.ok, 0);
  return row;
}

async function measure(dep: Deployment, sc: Scenario): Promise<Row> {
  const kind = dep.kind;
  const serverPids = dep.servers.map((s) => s.child.pid!);
  const before = await Promise.all(dep.servers.map((s) => s.stats()));
  const seq0 = dep.schema ? await seqScannedRows(dep.schema) : undefined;
  // The pool may have opened connections since the last run: find (and pin) every backend now.
  const pg0 = kind.pgProcesses ? pgBackends(serverPids) : [];
  pinBackends(pg0);
  const c0 = cpuSnap(serverPids, pg0);
  const result = await load(dep, sc.handler, sc.clients, sc.total);
  // Backends opened during the run count from 0 (their whole life is in the run).
  const pg1 = kind.pgProcesses ? [...new Set([...pg0, ...pgBackends(serverPids)])] : [];
  const c1 = cpuSnap(serverPids, pg1);
  const after = await Promise.all(dep.servers.map((s) => s.stats()));
  const seq1 = dep.schema ? await seqScannedRows(dep.schema) : undefined;
  let cpu: Row['cpu'];
  let serverCpuMs: number | undefined;
  let pgCpuMs: number | undefined;
  let procs: number | undefined;
  if (c0 && c1) {
    const pct = (ms: number): number => (100 * ms) / result.elapsedMs;
    const used = (pid: number): number => {
      const end = c1.procs.get(pid);
      // A backend that ended during the run: its CPU is lost (and shows under "other").
      if (end === undefined) return 0;
      return end - (c0.procs.get(pid) ?? 0);
    };
    // A server's whole tree as it is at the end (a worker started during the run counts from 0;
    // one that ended during it is lost, under "other").
    const servers = serverPids.map((pid) =>
      (c1.trees.get(pid) ?? [pid]).reduce((n, p) => n + used(p), 0),
    );
    procs = Math.max(
      ...serverPids.map((pid) =>
        Math.max(c0.trees.get(pid)?.length ?? 1, c1.trees.get(pid)?.length ?? 1),
      ),
    );
    serverCpuMs = servers.reduce((a, b) => a + b, 0);
    pgCpuMs = kind.pgProcesses ? pg1.reduce((n, pid) => n + used(pid), 0) : undefined;
    const client = c1.self - c0.self;
    cpu = {
      servers: servers.map(pct),
      pg: pgCpuMs === undefined ? undefined : pct(pgCpuMs),
      client: pct(client),
      other: Math.max(0, pct(c1.machine - c0.machine - serverCpuMs - (pgCpuMs ?? 0) - client)),
    };
  }
  const [p50, p99] = percentiles(result.latenciesMs, [50, 99]) as [number, number];
  const rate = result.ok / (result.elapsedMs / 1000);
  const keys = [...new Set(after.flatMap((a) => Object.keys(a)))];
  const store: StoreDelta | undefined =
    'writes' in (after[0] ?? {})
      ? Object.fromEntries(
          keys.map((k) => [
            k,
            after.reduce((n, a, i) => n + (a[k] ?? 0) - (before[i]![k] ?? 0), 0),
          ]),
        )
      : undefined;
  if (store && seq0 !== undefined && seq1 !== undefined) store.seqRows = seq1 - seq0;
  const bad = result.total - result.ok;
  log(
    `${kind.id} ${sc.id}: ${result.ok}/${result.total} ok${result.stoppedAfterMs !== undefined ? ` (stopped after ${result.stoppedAfterMs / 1000} s, ${result.planned} planned)` : ''}${result.okByTarget.length > 1 ? ` (${result.okByTarget.join(' + ')})` : ''}, ${fmtInt(rate)}/s, p50 ${p50.toFixed(2)} ms, p99 ${p99.toFixed(2)} ms` +
      (cpu ? `, CPU ${cpuCell(cpu)}` : '') +
      (bad ? `, ${bad} FAILED: ${result.samples.join(' | ')}` : ''),
  );
  return {
    scenario: sc,
    server: kind,
    layout: dep.layout,
    result,
    rate,
    p50,
    p99,
    store,
    cpu,
    serverCpuMs,
    pgCpuMs,
    procs,
  };
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

/** Keel on SQLite with `fsync`: the servers whose sequential rows are judged against the disk. */
const sqliteFsync = (k: ServerKind): boolean =>
  !k.pgProcesses && k.entry === 'bench/server.ts' && k.env.KEEL_DURABILITY === 'fsync';

/** A number as short as it stays exact to 2 decimals: 4, 3.5, 4.02. */
const fmtShort = (n: number): string => String(Number(n.toFixed(2)));

/**
 * Issue 18's targets on the 3-step workflow at 32 clients, Keel `fsync` on SQLite: at least half
 * the plain ceiling measured in the same layout, and in the 2-core layout at least 1.6× the
 * 1-core figure.
 */
function layoutChecks(row: Row, rows: Row[], bad: boolean): string[] {
  const sameScenario = (r: Row): boolean => r.scenario.id === row.scenario.id;
  const cores = row.layout?.cores ?? 1;
  const checks: string[] = [];
  const plain = rows.find(
    (r) => r.server.id === 'plain' && sameScenario(r) && (r.layout?.cores ?? 1) === cores,
  );
  if (plain) {
    const share = row.rate / plain.rate;
    checks.push(
      `${share >= 0.5 && !bad ? '✅' : '❌'} ≥50% of plain (${cores === 1 ? '1 core' : `${cores} cores`}): ${Math.round(100 * share)}%`,
    );
  } else checks.push('≥50% of plain: plain not measured');
  if (cores > 1) {
    const one = rows.find(
      (r) => r.server.id === row.server.id && sameScenario(r) && (r.layout?.cores ?? 1) === 1,
    );
    if (one) {
      const ratio = row.rate / one.rate;
      checks.push(
        `${ratio >= 1.6 && !bad ? '✅' : '❌'} ${cores}-core/1-core ≥1.6×: ×${ratio.toFixed(2)}`,
      );
    } else checks.push(`${cores}-core/1-core ≥1.6×: 1-core row not measured`);
  }
  return checks;
}

/**
 * Issue 18's sequential target: p50 ≤ 1.25 × durable round trips × the overwrite fdatasync p50
 * measured at the start of this run, where round trips = the fdatasyncs per invocation the
 * store counted on this row (one client: every fdatasync is a round trip it waits for).
 */
function fsyncBoundCheck(row: Row, bad: boolean): string {
  const n = row.result.total;
  const syncs = row.store?.syncs;
  if (!disk) return 'p50 vs fdatasync: not measured';
  if (syncs === undefined || n === 0) return 'p50 vs fdatasync: no store counters';
  const trips = syncs / n;
  const floor = disk.overwrite.p50;
  const bound = 1.25 * trips * floor;
  const ok = row.p50 <= bound && !bad;
  return `p50 ${fmtMs(row.p50)} ≤ 1.25 × ${fmtShort(trips)} × ${floor.toFixed(3)} = ${fmtMs(bound)} ${ok ? '✅' : '❌'}`;
}

function targetCell(row: Row, rows: Row[]): string {
  if (row.server.id === 'plain') return 'ceiling';
  const bad = row.result.ok !== row.result.total || (row.discardedFailures ?? 0) > 0;
  if (row.server.id === 'keel-pg-before') return 'before: the reference of the next row';
  if (sqliteFsync(row.server) && row.scenario.fsyncBound) return fsyncBoundCheck(row, bad);
  const t = row.layout && row.layout.cores > 1 ? undefined : row.scenario.target;
  const checks: string[] = [];
  if (!t && (row.server.pgProcesses ?? 1) > 1) {
    // No target of its own: compare with the 1-process row (see the pinning note).
    const one = rows.find((r) => r.server.id === 'keel-pg' && r.scenario.id === row.scenario.id);
    return one ? `×${(row.rate / one.rate).toFixed(2)} vs 1 process` : '—';
  }
  // Relative targets, after the absolute ones.
  const relative: string[] = [];
  if (row.server.id === 'keel-pg' && row.scenario.id === 'wf-conc') {
    const before = rows.find(
      (r) => r.server.id === 'keel-pg-before' && r.scenario.id === row.scenario.id,
    );
    if (before) {
      const ratio = row.rate / before.rate;
      relative.push(
        `${ratio >= 2 && !bad ? '✅' : '❌'} ≥2× before (same run): ×${ratio.toFixed(2)}`,
      );
    } else relative.push('≥2× before: before not measured');
  }
  if (row.server.twoCore && TWO_CORE_SCENARIOS.includes(row.scenario.id))
    relative.push(...layoutChecks(row, rows, bad));
  if (t?.minRate !== undefined) {
    const ok = row.rate >= t.minRate && !bad;
    checks.push(
      `${ok ? '✅' : '❌'} ≥${fmtInt(t.minRate)}/s (${Math.round((100 * row.rate) / t.minRate)}%)`,
    );
  }
  if (t?.maxP50 !== undefined)
    checks.push(`${row.p50 <= t.maxP50 && !bad ? '✅' : '❌'} p50 ≤${t.maxP50}`);
  if (t?.maxP99 !== undefined)
    checks.push(`${row.p99 <= t.maxP99 && !bad ? '✅' : '❌'} p99 ≤${t.maxP99}`);
  checks.push(...relative);
  return checks.length ? checks.join(', ') : '—';
}

function invocationsCell(row: Row): string {
  const runs = row.rates?.length ?? 1;
  const r = row.result;
  let n = runs > 1 ? `${runs} × ${fmtInt(row.scenario.total)}` : fmtInt(row.scenario.total);
  // A run stopped by the PostgreSQL time cap covers fewer invocations than planned.
  if (r.stoppedAfterMs !== undefined)
    n = `**${fmtInt(r.total)} of ${fmtInt(r.planned)}** (stopped after ${r.stoppedAfterMs / 1000} s)`;
  return row.discarded ? `${n} (+${row.discarded} noisy)` : n;
}

function cpuPerInvCell(row: Row): string {
  if (row.serverCpuMs === undefined || row.result.total === 0) return '—';
  const srv = fmtInt((1000 * row.serverCpuMs) / row.result.total);
  if (row.pgCpuMs === undefined) return srv;
  return `${srv} + PG ${fmtInt((1000 * row.pgCpuMs) / row.result.total)}`;
}

function rateCell(row: Row): string {
  if (!row.rates || row.rates.length < 2) return fmtInt(row.rate);
  return `${fmtInt(row.rate)} (${fmtInt(Math.min(...row.rates))}–${fmtInt(Math.max(...row.rates))})`;
}

function storeCell(row: Row): string {
  const st = row.store;
  if (!st) return '—';
  const n = row.result.total;
  if ('batches' in st) {
    // PostgreSQL: each batch is one statement, one transaction, one WAL flush.
    const batches = st.batches ?? 0;
    let out = `${((st.writes ?? 0) / n).toFixed(1)} writes in ${(batches / n).toFixed(2)} commits /inv`;
    if (batches > 0) {
      out += `; ${((st.writes ?? 0) / batches).toFixed(1)} writes/commit`;
      out += `; commit round trip ${fmtInt((st.roundTripNs ?? 0) / 1000 / batches)} µs avg`;
    }
    if (st.seqRows !== undefined && st.seqRows / n >= 1)
      out += `; ≈${fmtInt(st.seqRows / n)} rows seq-scanned /inv`;
    if (st.failed) out += `; **${st.failed} writes failed**`;
    return out;
  }
  const writes = st.writes ?? 0;
  const syncs = st.syncs ?? 0;
  const syncNs = st.syncNs ?? 0;
  const commitNs = st.commitNs ?? 0;
  const parts = [`${(writes / n).toFixed(1)} writes`];
  if (syncs > 0) parts.push(`${(syncs / n).toFixed(2)} fsyncs`);
  let out = `${parts.join(' + ')} /inv`;
  if (commitNs > 0) out += `; commit ${fmtInt(commitNs / 1000 / n)} µs/inv`;
  if (syncs > 0 && syncNs > 0) out += `; fsync ${fmtInt(syncNs / 1000 / syncs)} µs avg`;
  return out;
}

/** Other processes using more than this share of a core during a row make it suspect. */
const NOISY_PCT = 15;

function cpuCell(c: NonNullable<Row['cpu']>): string {
  const srv = c.servers.map((x) => x.toFixed(0)).join(' + ');
  const pgCpu = c.pg === undefined ? '—' : c.pg.toFixed(0);
  return `${srv} / ${pgCpu} / ${c.client.toFixed(0)} / ${c.other.toFixed(0)}${c.other > NOISY_PCT ? ' ⚠️' : ''}`;
}

/** Rows measured in both layouts say which one they are, in the Server and Clients cells. */
const showsLayout = (row: Row): boolean =>
  !!row.server.twoCore && TWO_CORE_SCENARIOS.includes(row.scenario.id) && pinned;

function serverCell(row: Row): string {
  if (!showsLayout(row)) return row.server.label;
  const l = row.layout ?? ONE_CORE;
  const procs = row.procs !== undefined ? `, ${row.procs} process${row.procs > 1 ? 'es' : ''}` : '';
  return `${row.server.label}, **${l.cores === 1 ? '1 core' : `${l.cores} cores`}** (CPU ${l.cpus.join(',')}${procs})`;
}

function clientsCell(row: Row): string {
  const n = row.scenario.clients;
  if (showsLayout(row))
    return (row.layout?.cores ?? 1) > 1 ? `${n}, gen on CPU 1 (shared)` : `${n}, gen on CPU 1`;
  const procs = row.server.pgProcesses ?? 1;
  if (procs < 2 || n < procs) return String(n);
  // Client c goes to process c % procs (client.ts).
  return Array.from({ length: procs }, (_, i) => Math.ceil((n - i) / procs)).join(' + ');
}

function table(rows: Row[]): string {
  const out = [
    '| Scenario | Server | Clients | Invocations | Failed | inv/s | steps/s | p50 ms | p99 ms | srv CPU µs/inv | CPU % srv / PG / gen / other | Store | Target |',
    '| --- | --- | -: | -: | -: | -: | -: | -: | -: | -: | -: | --- | --- |',
  ];
  for (const sc of SCENARIOS) {
    for (const row of rows.filter((r) => r.scenario.id === sc.id)) {
      out.push(
        `| ${row.scenario.title} | ${serverCell(row)} | ${clientsCell(row)} | ${invocationsCell(row)} | ${failures(row.result, row.discardedFailures)} | ${rateCell(row)} | ` +
          `${sc.steps ? fmtInt(row.rate * sc.steps) : '—'} | ${fmtMs(row.p50)} | ${fmtMs(row.p99)} | ${cpuPerInvCell(row)} | ${row.cpu ? cpuCell(row.cpu) : '—'} | ${storeCell(row)} | ${targetCell(row, rows)} |`,
      );
    }
  }
  return out.join('\n');
}

function machine(): string[] {
  const cpus = os.cpus();
  const fsOf = (dir: string): string => {
    try {
      return execFileSync('findmnt', ['-n', '-o', 'FSTYPE', '-T', dir], {
        encoding: 'utf8',
      }).trim();
    } catch {
      return '?'; // not Linux, or not visible from here
    }
  };
  const fsType = fsOf(TMP);
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
  const lines = [
    `- CPU: ${cpus[0]?.model.trim() ?? '?'}, ${cpus.length} cores; ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB RAM; ${os.type()} ${os.release()}`,
    `- Node ${process.version}, SQLite ${sqlite} (better-sqlite3), server run ${import.meta.url.includes('/dist/') ? 'as compiled JavaScript (tsc)' : 'with `node --import tsx`'}`,
    pinned
      ? '- Pinning, SQLite and plain rows: each server runs alone on CPU 0 (`taskset -c 0`, its libuv threadpool and any process it starts included); the load generator on CPU 1. ' +
        `**2-core layout** (the ${TWO_CORE_SCENARIOS.join(', ')} rows marked "2 cores", Keel \`fsync\` and plain): a fresh server given CPUs 0 and 1 (\`taskset -c 0,1\`), with the load generator still on CPU 1: ` +
        '**this machine has no third core**, so in that layout the server shares CPU 1 with the load generator (see the gen column) and the 2-core figures understate what two cores of its own would give. ' +
        "Whether a Keel server starts worker processes is up to the server (KEEL_WORKERS is passed through from this environment); the plain ceiling runs KEEL_WORKERS processes, else one per CPU it is given (bench/plain-cluster.ts). The Server cell shows how many processes each server's tree had; the CPU columns sum the whole tree."
      : '- Pinning: **not pinned** (taskset missing or fewer than 2 cores): servers, PostgreSQL and load generator share the CPUs; no 2-core layout rows.',
  ];
  if (pgRan && pinned) lines.push(pgPinningLine());
  lines.push(
    `- Machine load average at the start: ${loadAvg.map((l) => l.toFixed(2)).join(', ')} (1, 5, 15 min); anything else running skews the numbers: see the CPU column.`,
    `- Database: a fresh SQLite file per server under \`.tmp/\` (${fsType}). ` +
      (disk
        ? `**fdatasync there, measured at the start of this run** (${fmtInt(disk.samples)} writes of ${fmtInt(disk.bytes)} bytes, one WAL frame, each followed by fdatasync, per kind, alternating in blocks of 50): ` +
          `**overwrite** (a file that already has its size) p50 **${disk.overwrite.p50.toFixed(3)} ms**, p99 ${disk.overwrite.p99.toFixed(3)} ms; ` +
          `**append** (the file grows) p50 **${disk.append.p50.toFixed(3)} ms**, p99 ${disk.append.p99.toFixed(3)} ms. ` +
          'The sequential `fsync` rows are judged against the overwrite p50.' +
          (diskEnd
            ? ` The same probe at the end of the run, for drift: overwrite p50 ${diskEnd.overwrite.p50.toFixed(3)} ms, append p50 ${diskEnd.append.p50.toFixed(3)} ms.`
            : '')
        : 'fdatasync not measured.'),
  );
  if (pgInfo) {
    const st = pgInfo.settings;
    const dataFs = st.data_directory ? fsOf(st.data_directory) : '?';
    lines.push(
      `- PostgreSQL ${st.server_version ?? '?'} at ${redact(PG_URL)} (data directory on ${dataFs}): **\`SHOW synchronous_commit\` = ${pgInfo.synchronousCommit}**, ` +
        `fsync=${st.fsync ?? '?'}, wal_sync_method=${st.wal_sync_method ?? '?'}, commit_delay=${st.commit_delay ?? '?'}; ` +
        `a one-row INSERT in its own transaction (round trip + commit + WAL flush) takes p50 ${fmtMs(pgInfo.probe.p50)} ms, p99 ${fmtMs(pgInfo.probe.p99)} ms. ` +
        'Each PostgreSQL row runs on a fresh random schema (`keel_bench_…`), dropped afterwards; the processes of the 2-process row share one schema and start together.',
    );
  } else if (pgError) {
    lines.push(`- PostgreSQL: **not measured**: ${pgError}`);
  }
  return lines;
}

function pgPinningLine(): string {
  const srvCpus = PG_SERVER_CPUS.length ? PG_SERVER_CPUS : [0];
  const one = `CPU ${srvCpus[0]}`;
  const two =
    srvCpus.length > 1
      ? `the 2 processes on CPU ${srvCpus[0]} and CPU ${srvCpus[1 % srvCpus.length]}`
      : `both processes of the 2-process row share CPU ${srvCpus[0]}`;
  const backends = PG_BACKEND_CPUS.length
    ? `the PostgreSQL backends serving them are pinned to CPU ${PG_BACKEND_CPUS.join(',')} (\`taskset -p\` on their PIDs, found with \`ss\`)`
    : 'the PostgreSQL backends serving them are not pinned (they run wherever the scheduler puts them)';
  const sameBudget =
    srvCpus.length === 1 && PG_BACKEND_CPUS.length > 0 && !PG_BACKEND_CPUS.includes(srvCpus[0]!);
  return (
    `- Pinning, PostgreSQL rows: the Keel process on ${one}; ${two}; ${backends}, with the load generator on CPU 1; ` +
    'PostgreSQL\'s shared background processes (WAL writer, checkpointer, autovacuum) are left alone and count under "other". ' +
    (sameBudget
      ? `So the 2-process row gets exactly the CPU of the 1-process row: it shows what running as a cluster costs (claims, coordination, two connection pools), **not scale-out**. `
      : '') +
    '**This 2-core machine cannot show linear scale-out**: with PostgreSQL and the load generator on the same two cores, a second Keel process has no core of its own. ' +
    'Judge with the CPU columns: srv (each process), PG (its backends), gen, other.'
  );
}

/** The URL without its password. */
function redact(url: string): string {
  const u = new URL(url);
  if (u.password) u.password = '***';
  return u.toString();
}

/** The disk's fdatasync price, measured at the start of the run next to the SQLite files. */
let disk: FdatasyncResult | undefined;
/** The same, at the end of the run: how much the disk's price drifted while the rows ran. */
let diskEnd: FdatasyncResult | undefined;
let loadAvg = os.loadavg();

interface PgInfo {
  synchronousCommit: string;
  settings: Record<string, string>;
  probe: { p50: number; p99: number };
}
let pgInfo: PgInfo | undefined;
let pgError: string | undefined;
let pgRan = false;

/** Settings of the PostgreSQL server and the latency of one small durable commit there. */
async function pgProbe(n = 200): Promise<PgInfo> {
  const c = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 5_000 });
  await c.connect();
  const schema = `keel_bench_probe_${randomBytes(4).toString('hex')}`;
  try {
    const sync = await c.query<{ synchronous_commit: string }>('SHOW synchronous_commit');
    const r = await c.query<{ name: string; setting: string }>(
      `SELECT name, setting FROM pg_settings WHERE name IN
         ('server_version', 'fsync', 'wal_sync_method', 'commit_delay', 'data_directory')`,
    );
    liveSchemas.add(schema);
    await c.query(`CREATE SCHEMA "${schema}"`);
    await c.query(`CREATE TABLE "${schema}".t (id int PRIMARY KEY, v text)`);
    const lat = new Float64Array(n);
    for (let i = -20; i < n; i++) {
      const t = process.hrtime.bigint();
      await c.query(`INSERT INTO "${schema}".t VALUES ($1, 'x')`, [i]);
      if (i >= 0) lat[i] = Number(process.hrtime.bigint() - t) / 1e6;
    }
    const [p50, p99] = percentiles(lat, [50, 99]) as [number, number];
    return {
      synchronousCommit: sync.rows[0]!.synchronous_commit,
      settings: Object.fromEntries(r.rows.map((x) => [x.name, x.setting])),
      probe: { p50, p99 },
    };
  } finally {
    await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(() => {});
    liveSchemas.delete(schema);
    await c.end();
  }
}

/** Ctrl-C or a kill must not leave bench schemas behind (the servers exit with their parent). */
function dropSchemasOnSignal(): void {
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      log(`${sig}: dropping ${liveSchemas.size} bench schema(s)`);
      const wait = new Promise((r) => setTimeout(r, 1_000)); // servers close their pools
      void wait
        .then(() => Promise.allSettled([...liveSchemas].map(dropSchema)))
        .finally(() => {
          fs.rmSync(TMP, { recursive: true, force: true });
          process.exit(130);
        });
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Main

async function runProfile(which: string[], serverId: string): Promise<void> {
  const kind = SERVERS.find((s) => s.id === serverId);
  if (!kind || kind.id === 'plain' || (kind.pgProcesses ?? 1) > 1)
    throw new Error(
      `--server: "${serverId}" is not a single Keel server; one of keel-fsync, keel-os, keel-pg`,
    );
  if (kind.pgProcesses) {
    pgInfo = await pgProbe();
    pgRan = true;
  }
  const dir = path.join(ROOT, '.tmp', 'bench-profile');
  fs.mkdirSync(dir, { recursive: true });
  // Source maps let the profile name TypeScript positions when the server runs compiled.
  const dep = await startDeployment(kind, ['--enable-source-maps']);
  const srv = dep.servers[0]!;
  const out: string[] = [];
  const rows: Row[] = [];
  try {
    await warmUp(dep, [...new Set(scenariosFor(kind).map((s) => s.handler))]);
    for (const id of which) {
      const base = SCENARIOS.find((s) => s.id === id);
      if (!base)
        throw new Error(
          `--profile: no scenario "${id}"; one of ${SCENARIOS.map((s) => s.id).join(', ')}`,
        );
      const own = scenariosFor(kind).find((s) => s.id === id) ?? base;
      const seq = kind.pgProcesses ? PG_SEQ : SEQ;
      const sc: Scenario = {
        ...own,
        total: own.clients === 1 ? Math.min(PROFILE_N, seq * 2) : PROFILE_N,
      };
      log(`profiling ${kind.id} under "${sc.title}" x ${sc.total}`);
      const file = path.join(dir, `${kind.id}-${sc.id}.cpuprofile`);
      await srv.ask('profile-start', 'profiling');
      rows.push(await measure(dep, sc));
      await srv.ask({ profileStop: file }, 'profiled');
      out.push(`## Server profile: ${kind.label}, ${sc.title}, ${fmtInt(sc.total)} invocations\n`);
      out.push(formatSummary(summarizeProfile(file, ROOT), 15));
      out.push(
        `\nProfile file: ${path.relative(ROOT, file)} (open in Chrome DevTools > Performance, or VS Code).\n`,
      );
    }
  } finally {
    await dep.stop();
  }
  console.log('# Keel server CPU profile\n');
  console.log(machine().join('\n'));
  console.log(
    '- Profiled in-process through the inspector, during the measured load only (not startup or warm-up); positions mapped to the TypeScript sources. ' +
      'The profile is of the Keel process only: PostgreSQL backends show in the CPU column (PG), not in the profile.\n',
  );
  console.log(table(rows) + '\n');
  console.log(out.join('\n'));
}

/** The suspended-workflows row, on its own fresh Keel server (`fsync`, `--expose-gc` for its after-GC figures). */
async function suspendedRow(): ReturnType<typeof runSuspendedBench> {
  const kind = SERVERS.find((s) => s.id === 'keel-fsync')!;
  const name = 'keel-suspended';
  log(`starting ${name}`);
  const srv = await startServer(kind, { name }, ['--expose-gc']);
  try {
    return await runSuspendedBench(
      { ...srv, pid: srv.child.pid!, db: path.join(TMP, `${name}.db`) },
      { n: SUSPENDED, clients: CLIENTS, log },
    );
  } finally {
    await srv.stop();
  }
}

async function main(): Promise<void> {
  fs.mkdirSync(TMP, { recursive: true });
  loadAvg = os.loadavg();
  pinSelf();
  dropSchemasOnSignal();
  const t0 = Date.now();
  // The disk's price in the SQLite files' directory, before anything else loads it: the floor
  // the sequential `fsync` rows are judged against.
  log(`fdatasync: ${FDATASYNC_N} overwrites and ${FDATASYNC_N} appends in ${TMP}`);
  disk = measureFdatasync(TMP, FDATASYNC_N);
  log(
    `fdatasync: overwrite p50 ${disk.overwrite.p50.toFixed(3)} ms, append p50 ${disk.append.p50.toFixed(3)} ms`,
  );
  try {
    const prof = flag('profile');
    if (prof) {
      const server = flag('server');
      return await runProfile(
        prof === true ? ['wf-conc'] : prof.split(','),
        typeof server === 'string' ? server : 'keel-fsync',
      );
    }
    const only = flag('only');
    const picked = flag('scenarios');
    const pickedScenarios = typeof picked === 'string' ? picked.split(',') : undefined;
    const servers =
      typeof only === 'string' ? SERVERS.filter((s) => only.split(',').includes(s.id)) : SERVERS;
    if (servers.some((s) => s.pgProcesses)) {
      try {
        pgInfo = await pgProbe();
        log(`PostgreSQL: SHOW synchronous_commit = ${pgInfo.synchronousCommit}`);
      } catch (err) {
        pgError = `PostgreSQL at ${redact(PG_URL)} unreachable (${(err as Error).message}); set BENCH_DATABASE_URL`;
        log(pgError);
      }
    }
    const rows: Row[] = [];
    // `--rounds=N`: the chosen servers N times in turn (on, off, on, off for the metrics pair).
    const rounds = Math.max(1, Number(flag('rounds') ?? 1) || 1);
    const turns = Array.from({ length: rounds }, (_, r) =>
      servers.map((k) => (rounds === 1 ? k : { ...k, label: `${k.label}, round ${r + 1}` })),
    ).flat();
    for (const kind of turns) {
      if (kind.pgProcesses && !pgInfo) continue;
      log(`starting ${kind.id}`);
      const dep = await startDeployment(kind);
      if (kind.pgProcesses) pgRan = true;
      try {
        const warmed = new Set<Handler>();
        for (const sc of scenariosFor(kind)) {
          if (pickedScenarios && !pickedScenarios.includes(sc.id)) continue;
          await warmUpFor(dep, sc, warmed);
          rows.push(await repeated(dep, sc, t0));
        }
      } finally {
        await dep.stop();
      }
      // The 2-core layout: a fresh server on CPUs 0 and 1 for the scenarios that compare layouts.
      const twoCore = kind.twoCore && pinned ? TWO_CORE_SCENARIOS : [];
      const todo = scenariosFor(kind).filter(
        (sc) => twoCore.includes(sc.id) && (!pickedScenarios || pickedScenarios.includes(sc.id)),
      );
      if (todo.length > 0) {
        log(`starting ${kind.id} on 2 cores`);
        const dep2 = await startDeployment(kind, [], TWO_CORES);
        try {
          await warmUp(dep2, [...new Set(todo.map((sc) => sc.handler))]);
          for (const sc of todo) rows.push(await repeated(dep2, sc, t0));
        } finally {
          await dep2.stop();
        }
      }
    }
    // `--only=...,webhooks` (or no --only): the webhook delivery rows, `fsync` and `os`.
    const webhookRows: WebhookRow[] = [];
    if (typeof only !== 'string' || only.split(',').includes('webhooks')) {
      for (const durability of ['fsync', 'os'] as const)
        webhookRows.push(await runWebhookBench({ root: ROOT, tmp: TMP, durability, pinned, log }));
    }
    // `--only=...,suspended` (or no --only): SUSPENDED workflows waiting on a durable promise.
    const suspendedRows =
      typeof only !== 'string' || only.split(',').includes('suspended')
        ? [await suspendedRow()]
        : [];
    // `--only=...,integrations` (or no --only): integration client vs raw undici.
    const integrationsSection =
      typeof only !== 'string' || only.split(',').includes('integrations')
        ? await integrationsBench(log, { tmp: TMP, pinned })
        : undefined;
    // `--only=...,gateway` (or no --only): the integration platform's gateway into workflows.
    const gatewaySection =
      typeof only !== 'string' || only.split(',').includes('gateway')
        ? await gatewayBench({ root: ROOT, tmp: TMP, pinned, log, clients: CLIENTS })
        : undefined;
    // `--only=...,buses` (or no --only): RabbitMQ and NATS into durable invocations.
    const busesSection =
      typeof only !== 'string' || only.split(',').includes('buses')
        ? await busesBench(log, { tmp: TMP })
        : undefined;
    // `--only=...,list` (or no --only): the dashboard's list queries at 1,000,000 invocations.
    const listSection =
      typeof only !== 'string' || only.split(',').includes('list')
        ? await listBench(log, { tmp: TMP, pgUrl: PG_URL })
        : undefined;
    // `--only=...,schedules` (or no --only): cron schedules due in the same second (bench/schedules.ts).
    const schedulesSection =
      typeof only !== 'string' || only.split(',').includes('schedules')
        ? schedulesTable(await runSchedulesBench(log, { tmp: TMP }))
        : undefined;
    // `--only=...,fdatasync` (or no --only): the disk's floor, appending vs overwriting (bench/fdatasync.ts).
    const fdatasyncSection =
      typeof only !== 'string' || only.split(',').includes('fdatasync')
        ? fdatasyncTable(disk)
        : undefined;
    // `--only=...,metrics-cost` (never by default): metrics' cost in server CPU per workflow,
    // on and off interleaved in one process (bench/metrics-cost.ts).
    const metricsCostResult =
      typeof only === 'string' && only.split(',').includes('metrics-cost')
        ? await metricsCost({ root: ROOT, tmp: TMP, pinned, log })
        : undefined;
    diskEnd = measureFdatasync(TMP, FDATASYNC_N);
    const secs = ((Date.now() - t0) / 1000).toFixed(0);
    console.log('# Keel benchmark\n');
    console.log(machine().join('\n'));
    console.log(
      `- Load: closed loop over HTTP/1.1 keep-alive on 127.0.0.1, one connection per client, one request in flight each; ` +
        `after a warm-up of ${WARMUP} sequential (${Math.min(WARMUP, 200)} per process on PostgreSQL) + ${fmtInt(WARMUP * 2)} concurrent requests per handler (the 2-core servers: the workflow only, ${fmtInt(WARMUP * 4)} concurrent). Each workflow request uses a new key. ` +
        `With 2 processes the clients are split evenly between their two ingress ports and share one closed loop (one pool of requests). ` +
        `Latency is from the request's write to its answer's last byte. ` +
        (REPEAT > 1
          ? `Each row is ${REPEAT} back-to-back runs on the same server (${PG_REPEAT} on PostgreSQL): inv/s is the median run's (the lower of two; min–max in brackets), p50/p99 are over every request of every run, failures are summed, CPU is averaged. `
          : '') +
        `Whole run: ${secs} s.`,
    );
    console.log(
      "- Durability: `fsync` (default) = every step result is in the fdatasync'ed WAL before the handler sees it (group commit: one fdatasync covers every write of an event-loop turn); " +
        '`os` = committed to the OS page cache only (survives a crash of the process, not of the machine). ' +
        'PostgreSQL: a write is acknowledged once committed, with `synchronous_commit` as shown above (on = flushed to the WAL on disk); ' +
        'group commit: the writes queued while one batch is in flight form the next batch, one statement and one transaction.\n',
    );
    console.log(table(rows));
    console.log(
      '\nFailed = answers other than 200 with the expected body, and requests with no answer; they are excluded from the latencies and from inv/s. ' +
        'CPU = CPU time during the row as % of one core: the server process(es) (all threads; "a + b" = each of the 2 processes), the PostgreSQL backends serving them (PG), the load generator (gen), and everything else on the machine ' +
        `(⚠️ = other processes used more than ${NOISY_PCT}% of a core: that row is skewed, run again on a quiet machine; a server near 100% is CPU-bound, well below it waits on something else). ` +
        `A run with such competition is run again, up to as many more times per row while the bench is under ${RETRY_BUDGET_MS / 1000} s; "+N noisy" counts the runs left out (their failures still count). ` +
        `srv CPU µs/inv = the server's CPU time per invocation (all its threads; summed over processes; "+ PG" = its PostgreSQL backends'): the cost that bounds throughput on one core (10,000 inv/s needs ≤100). ` +
        "Store = from the store's counters. SQLite: store writes and fdatasyncs per invocation (fewer fsyncs than writes = group commit), " +
        'the time spent committing SQLite transactions per invocation, and the average time from starting an fdatasync to its callback. ' +
        'PostgreSQL: store writes and commits (batches: one statement, one transaction, one WAL flush each) per invocation, writes per commit, the average round trip of a commit, ' +
        "and, when there are any, the rows PostgreSQL read by sequential scans of the schema's tables per invocation (pg_stat_user_tables, approximate: a plan that scans a growing table instead of using an index). " +
        `A PostgreSQL run that has not sent all its requests after ${PG_CAP_MS / 1000} s stops sending (those in flight complete) and is not repeated: its Invocations cell says so in bold. ` +
        `Targets apply to Keel rows; the plain node:http rows are the ceiling (same JSON parsing and handlers, no engine, no durability). ` +
        `Issue 18's targets: 3-step workflow at ${CLIENTS} clients, Keel \`fsync\`: ≥50% of the plain row of the same layout (1 core or 2 cores), and the 2-core row ≥1.6× the 1-core row (the fixed ≥10,000/s stays on the 1-core row); ` +
        'sequential 3-step rows of Keel `fsync`: p50 ≤ 1.25 × durable round trips × the overwrite fdatasync p50 measured at the start of this run (shown as "p50 a ≤ 1.25 × trips × fdatasync = bound"), where round trips = the fdatasyncs per invocation the store counted on that row (one client waits for each); they replace the fixed p50/p99 targets there (`os` rows keep them); ' +
        `PostgreSQL: the 1-process 3-step workflow at ${CLIENTS} clients ≥2× the "before" row (the code of \`BENCH_PG_BEFORE_REF\`, b9dbb70 by default, the commit issue 18 measured) of the same run, and issue 4's ≥${fmtInt(PG_TARGET)} inv/s; the 2-process row shows its throughput relative to the 1-process row. ` +
        'Not printed: "no regression in any other row", which needs an earlier table to compare with.',
    );
    if (webhookRows.length > 0) {
      console.log(`\n## Webhook deliveries\n\n${webhookTable(webhookRows)}`);
      console.log(
        '\nOne Keel process (pinned to CPU 0) with one endpoint; the load generator (CPU 1) publishes the events and is the receiver, which verifies every signature independently (node:crypto). ' +
          'Each event is published by `publish(ctx, ...)` in a handler (a journaled step and a journaled send) and delivered by its own `keel.webhooks/deliver` invocation: SSRF check, Standard Webhooks signature, POST over a keep-alive pool, delivery-log record. ' +
          'delivered/s = events / (last distinct delivery − first publish); latency = arrival − the event timestamp (when its publish step ran). Repeats = requests beyond one per event (at least once); Missing must be 0. See bench/README.md.',
      );
    }
    if (suspendedRows.length > 0) {
      console.log(`\n## Suspended workflows\n\n${suspendedTable(suspendedRows)}`);
      console.log(
        '\nOne Keel process (`fsync`, pinned to CPU 0) serving the `Parked` workflow, which awaits a durable promise; the load generator (CPU 1) creates the workflows with ' +
          `\`POST /Parked/{key}/run/send\` (${CLIENTS} in flight), waits until the store counts every run \`suspended\` and the engine holds none in memory, ` +
          'then reads the server\'s RSS (VmRSS, highest of 3 samples 1 s apart, after a 3 s settle; "after GC": after a full garbage collection) and its V8 heap. ' +
          `Then it resolves every promise with \`POST /Parked/{key}/resolve\` (a shared handler, ${CLIENTS} in flight) and polls the store (a read-only connection to the SQLite file, every 100 ms) until every run is \`completed\`: ` +
          `"Resolve → every run finished" runs from the first resolve request to that poll. Targets (issue 12): RSS ≤${SUSPENDED_TARGET.rssMb} MB, ≤${SUSPENDED_TARGET.finishS} s on SQLite. ` +
          '"other CPU" is what the rest of the machine used during each phase, as % of one core: above a few % the times are skewed. See bench/README.md.',
      );
    }
    if (integrationsSection !== undefined) console.log(`\n${integrationsSection}`);
    if (gatewaySection !== undefined) console.log(`\n${gatewaySection}`);
    if (busesSection !== undefined) console.log(`\n${busesSection}`);
    if (listSection !== undefined) console.log(`\n${listSection}`);
    if (schedulesSection !== undefined) console.log(`\n${schedulesSection}`);
    if (fdatasyncSection !== undefined) console.log(`\n${fdatasyncSection}`);
    if (metricsCostResult !== undefined) {
      console.log(
        `\n## The cost of metrics, in server CPU per workflow\n\n${metricsCostSection(metricsCostResult)}`,
      );
    }
  } finally {
    fs.rmSync(TMP, { recursive: true, force: true });
  }
}

await main();
