/**
 * One torture run: start the app processes, issue generated operations while the nemesis kills
 * processes (and, on PostgreSQL, takes the database away), then heal everything, let the run go
 * quiet and check the invariants. Used by the CLI (run.ts) and by test/torture.test.ts.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { Cluster, CRASH_LOOP_LIMIT } from './cluster.js';
import { analyzeLog, checkCounters, checkInvocations } from './checker.js';
import { generateOp, Rng } from './generator.js';
import { sleep } from './http.js';
import { Nemesis } from './nemesis.js';
import { LogTail, parseLog } from './program.js';
import { TcpProxy } from './proxy.js';
import { recovery, type Summary } from './report.js';
import { Ledger, Workload } from './workload.js';

export interface TortureOptions {
  store: 'sqlite' | 'postgres';
  seed: string;
  /** Stop issuing after this many operations ... */
  ops?: number;
  /** ... or after this long (whichever comes first; at least one must be set). */
  minutes?: number;
  /** App processes. Default 1 on SQLite, 3 on PostgreSQL. */
  processes?: number;
  /** Operations started per second. Default 15. */
  rate?: number;
  /** Gap between faults, ms. Default 1.5-4 s (SQLite), 1.5-3.5 s (PostgreSQL). */
  faultEvery?: [number, number];
  /** PostgreSQL server the schema lives on. Default KEEL_TEST_DATABASE_URL or the local one. */
  pgUrl?: string;
  /** How the database is taken away: through the proxy (default), a real restart, or never. */
  pgRestart?: 'proxy' | 'real' | 'none';
  /** Cluster lease (PostgreSQL). Default 3s. */
  lease?: string;
  /** How long everything may take to finish once quiet. Default 60 s. */
  quietMs?: number;
  /** Keep the run directory (log, stderr of each process, SQLite file). */
  keep?: boolean;
  progress?: (line: string) => void;
}

export interface TortureResult extends Summary {
  runDir: string;
}

const FIXTURE = join(import.meta.dirname, '../fixtures/torture-app.ts');
const MAX_IN_FLIGHT = 48;

export async function runTorture(options: TortureOptions): Promise<TortureResult> {
  if (options.ops === undefined && options.minutes === undefined)
    throw new Error('give --ops or --minutes');
  const say = options.progress ?? (() => undefined);
  const runDir = mkdtempSync(join(tmpdir(), 'keel-torture-'));
  const logFile = join(runDir, 'executions.log');
  const postgres = options.store === 'postgres';
  const size = options.processes ?? (postgres ? 3 : 1);
  const pgUrl =
    options.pgUrl ??
    process.env.KEEL_TEST_DATABASE_URL ??
    'postgres://postgres@127.0.0.1:5432/test';
  const schema = `keel_torture_${randomBytes(4).toString('hex')}`;
  let proxy: TcpProxy | undefined;
  const env: Record<string, string> = { KEEL_SUSPEND_AFTER: '100ms' };
  if (postgres) {
    const target = new URL(pgUrl);
    proxy = await TcpProxy.start({ host: target.hostname, port: Number(target.port || 5432) });
    const viaProxy = new URL(pgUrl);
    viaProxy.hostname = '127.0.0.1';
    viaProxy.port = String(proxy.port);
    Object.assign(env, {
      KEEL_DATABASE_URL: viaProxy.toString(),
      KEEL_DATABASE_SCHEMA: schema,
      KEEL_LEASE: options.lease ?? '3s',
    });
  } else {
    env.KEEL_DB = join(runDir, 'keel.db');
  }
  const cluster = new Cluster({ fixture: FIXTURE, env, size, logFile, runDir });
  const ledger = new Ledger();
  const started = Date.now();
  let issuedUntil = Infinity;
  const quietMs = options.quietMs ?? 60_000;
  const pickRng = new Rng(`${options.seed}/pick`);
  const workload = new Workload({
    cluster,
    ledger,
    log: new LogTail(logFile),
    pick: () => Math.floor(pickRng.float() * 1000),
    deadline: () => issuedUntil + quietMs,
  });
  const nemesis = new Nemesis({
    cluster,
    rng: new Rng(`${options.seed}/faults`),
    logFile,
    every: options.faultEvery ?? (postgres ? [1500, 3500] : [1500, 4000]),
    downtime: [0, 800],
    gapAfterRestart: size === 1,
    ...(proxy
      ? {
          pg: {
            proxy,
            adminUrl: pgUrl,
            mode: options.pgRestart ?? 'proxy',
            share: 0.15,
            outageMs: [300, 3000] as [number, number],
          },
        }
      : {}),
  });
  let keep = options.keep ?? false;
  try {
    say(
      `torture: ${options.store}, ${size} process(es), seed ${options.seed}, run dir ${runDir}` +
        (postgres ? `, schema ${schema}` : ''),
    );
    await cluster.start();
    nemesis.start();
    const tasks = new Set<Promise<void>>();
    const rate = options.rate ?? 15;
    const gapRng = new Rng(`${options.seed}/gaps`);
    const endAt = options.minutes === undefined ? Infinity : started + options.minutes * 60_000;
    let n = 0;
    let lastSay = Date.now();
    while (n < (options.ops ?? Infinity) && Date.now() < endAt) {
      if (cluster.crashLooping.size === size) {
        say('  every process crash-loops: no more operations');
        break;
      }
      while (tasks.size >= MAX_IN_FLIGHT) await Promise.race(tasks);
      const task = workload.run(generateOp(options.seed, n++)).catch((err: unknown) => {
        ledger.problems.push({ invariant: 'harness', detail: `op ${n - 1}: ${String(err)}` });
      });
      tasks.add(task);
      void task.finally(() => tasks.delete(task));
      await sleep(-Math.log(1 - gapRng.float()) * (1000 / rate));
      if (Date.now() - lastSay > 10_000) {
        lastSay = Date.now();
        say(
          `  ${n} ops, ${ledger.acks} acks, ${nemesis.faults.length} faults, ${cluster.unplanned.length} unplanned exits`,
        );
      }
    }
    // Quiet period: no more faults, every process up, everything in flight may land.
    issuedUntil = Date.now();
    say(`  issued ${n} ops; healing and waiting for quiet`);
    await nemesis.stop();
    await cluster.restartAll();
    await Promise.all([...tasks]);
    const check = await checkInvocations(cluster, ledger, quietMs);
    const counterProblems = await checkCounters(cluster, ledger);
    const lines = parseLog(readFileSync(logFile, 'utf8'));
    const log = analyzeLog(lines);
    const problems = [
      ...ledger.problems,
      ...check.problems,
      ...counterProblems,
      ...log.problems,
      ...cluster.unplanned.map((u) => ({
        invariant: 'no process exits on its own',
        detail: `pid ${u.pid} exited with ${u.signal ?? `code ${u.code}`}${u.duringStartup ? ' while starting (recovery)' : ''}: ${lastLines(u.stderrTail)}`,
      })),
      ...[...cluster.crashLooping].map((slot) => ({
        invariant: 'no process exits on its own',
        detail: `slot ${slot} crash-loops: it died ${CRASH_LOOP_LIMIT} times in a row, each within seconds of starting`,
      })),
    ];
    // A failing run keeps its directory: the log and each process's stderr explain it.
    if (problems.length > 0) keep = true;
    return {
      runDir,
      store: options.store,
      seed: options.seed,
      processes: size,
      seconds: (Date.now() - started) / 1000,
      ops: n,
      requests: ledger.requests,
      acknowledged: ledger.acks,
      invocations: check.checked,
      unknownFate: ledger.unknownFate,
      kills: nemesis.faults.filter((f) => f.kind === 'kill').length,
      dbFaults: nemesis.faults.filter((f) => f.kind !== 'kill').length,
      starts: cluster.starts,
      lost: check.lost,
      stuck: check.stuck,
      log,
      unplannedExits: cluster.unplanned.length,
      recovery: recovery(lines, nemesis.faults, ledger.ackTimes),
      odd: ledger.odd,
      problems,
    };
  } finally {
    await nemesis.stop().catch(() => undefined);
    await cluster.stop().catch(() => undefined);
    await proxy?.close();
    // A kept run keeps its schema too: the stuck rows, key locks and timers explain it.
    if (postgres && !keep) await dropSchema(pgUrl, schema);
    else if (postgres) say(`schema ${schema} kept (drop it with: DROP SCHEMA ${schema} CASCADE)`);
    if (!keep) rmSync(runDir, { recursive: true, force: true });
  }
}

async function dropSchema(url: string, schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  } catch {
    // Best effort: a leftover schema is named keel_torture_* and harmless.
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** The thrown error's line of a Node crash report, else the last lines of stderr. */
function lastLines(text: string, n = 4): string {
  const lines = text.split('\n');
  const thrown = lines.find((l) => /^(\w*Error\b|Unhandled|node:internal)/.test(l.trim()));
  const at = thrown === undefined ? -1 : lines.indexOf(thrown);
  return (at === -1 ? lines.slice(-n) : lines.slice(at, at + 3)).map((l) => l.trim()).join(' | ');
}
