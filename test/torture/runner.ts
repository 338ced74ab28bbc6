/**
 * One torture run: start the app processes, issue generated operations while the nemesis kills
 * processes (and, on PostgreSQL, takes the database away), then heal everything, let the run go
 * quiet and check the invariants. Used by the CLI (run.ts) and by test/torture.test.ts.
 *
 * However the run ends (its result, a thrown error, or `signal` aborted: Ctrl-C, a test timeout),
 * it leaves nothing running: every app process is killed and the private PostgreSQL server of
 * `--pg-restart real` is stopped (and deleted unless kept) before `runTorture` settles.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { Cluster, CRASH_LOOP_LIMIT } from './cluster.js';
import {
  analyzeLog,
  checkCounters,
  checkFlowRuns,
  checkInvocations,
  checkQueues,
  checkTallies,
} from './checker.js';
import mysql from 'mysql2/promise';
import { Redis } from 'ioredis';
import {
  checkFlowEffects,
  checkFlowRows,
  FLOW_DB,
  FLOW_MYSQL,
  FLOW_REDIS,
  flowStepFigures,
  type DDb,
} from './dflow.js';
import { Downstream } from './downstream.js';
import { generateOp, Rng } from './generator.js';
import { sleep } from './http.js';
import { Nemesis } from './nemesis.js';
import { findPgBinaries, PrivatePostgres } from './postgres.js';
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
  /**
   * How the database is taken away: through the proxy (default), or never; `real` runs a private
   * PostgreSQL server for the run (pgUrl is not used) and really restarts it.
   */
  pgRestart?: 'proxy' | 'real' | 'none';
  /** Cluster lease (PostgreSQL). Default 3s. */
  lease?: string;
  /**
   * Stall processes (SIGSTOP for a while, then SIGCONT) besides killing them. Default true; a
   * stall lasts 0.3 to 3 leases on PostgreSQL, so some end before the lease is in doubt, some
   * after the process fenced itself, most after others adopted its work.
   */
  stalls?: boolean;
  /** How long everything may take to finish once quiet. Default 60 s. */
  quietMs?: number;
  /** Keep the run directory (log, stderr of each process, SQLite file). */
  keep?: boolean;
  progress?: (line: string) => void;
  /**
   * Ends the run early: `runTorture` rejects with the signal's reason once every process it
   * started is gone (the run directory and schema are kept, as for a failing run).
   */
  signal?: AbortSignal;
}

export interface TortureResult extends Summary {
  runDir: string;
}

const FIXTURE = join(import.meta.dirname, '../fixtures/torture-app.ts');
const MAX_IN_FLIGHT = 48;

export async function runTorture(options: TortureOptions): Promise<TortureResult> {
  if (options.ops === undefined && options.minutes === undefined)
    throw new Error('give --ops or --minutes');
  options.signal?.throwIfAborted();
  const say = options.progress ?? (() => undefined);
  const postgres = options.store === 'postgres';
  const real = postgres && options.pgRestart === 'real';
  const size = options.processes ?? (postgres ? 3 : 1);
  const schema = `keel_torture_${randomBytes(4).toString('hex')}`;
  const quietMs = options.quietMs ?? 60_000;
  // What is kept at the end: everything with --keep; a run that found violations keeps its run
  // directory, schema and private server's data (the evidence); one that threw or was aborted
  // keeps its run directory (the processes' stderr) only.
  let keep = options.keep ?? false;
  let keepRunDir = keep;
  let aborted = false;
  let issuedUntil = Infinity;
  // A missing binary fails the run before anything is created.
  if (real) findPgBinaries();
  const runDir = mkdtempSync(join(tmpdir(), 'keel-torture-'));
  const logFile = join(runDir, 'executions.log');
  let pgUrl =
    options.pgUrl ??
    process.env.KEEL_TEST_DATABASE_URL ??
    'postgres://postgres@127.0.0.1:5432/test';
  let server: PrivatePostgres | undefined;
  let proxy: TcpProxy | undefined;
  let cluster: Cluster | undefined;
  let nemesis: Nemesis | undefined;
  let downstream: Downstream | undefined;
  /** The table of flows' `database` steps, on the shared server (`pgUrl` before `real` changes it). */
  let flowDb: FlowDbs | undefined;

  const body = async (): Promise<TortureResult> => {
    // What the flows' `api` steps call: in this process, out of the nemesis's reach.
    downstream = await Downstream.start(logFile);
    const env: Record<string, string> = {
      KEEL_SUSPEND_AFTER: '100ms',
      TORTURE_DOWNSTREAM: downstream.url,
    };
    flowDb = await flowDatabases(
      {
        pg: pgUrl,
        mysql: process.env.KEEL_TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test',
        redis: process.env.KEEL_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379',
      },
      options.seed,
      real,
      say,
    );
    if (flowDb?.pg) env.TORTURE_FLOWDB_URL = flowDb.pg;
    if (flowDb?.mysql) env.TORTURE_FLOWDB_MYSQL_URL = flowDb.mysql;
    if (flowDb?.redis) env.TORTURE_FLOWDB_REDIS_URL = flowDb.redis;
    if (real) {
      server = await PrivatePostgres.start({ keep });
      pgUrl = server.url;
      say(`private PostgreSQL at ${server.url} (data ${server.dataDir}, log ${server.logFile})`);
    }
    if (postgres) {
      // With a real server restart, the apps connect to the private server itself; otherwise
      // through the proxy, which can take the (shared) database away from them alone.
      let appUrl = new URL(pgUrl);
      if (!real) {
        const target = new URL(pgUrl);
        proxy = await TcpProxy.start({ host: target.hostname, port: Number(target.port || 5432) });
        appUrl = new URL(pgUrl);
        appUrl.hostname = '127.0.0.1';
        appUrl.port = String(proxy.port);
      }
      Object.assign(env, {
        KEEL_DATABASE_URL: appUrl.toString(),
        KEEL_DATABASE_SCHEMA: schema,
        KEEL_LEASE: options.lease ?? '3s',
      });
    } else {
      env.KEEL_DB = join(runDir, 'keel.db');
    }
    const c = (cluster = new Cluster({ fixture: FIXTURE, env, size, logFile, runDir }));
    const ledger = new Ledger();
    const started = Date.now();
    const pickRng = new Rng(`${options.seed}/pick`);
    const workload = new Workload({
      cluster: c,
      ledger,
      log: new LogTail(logFile),
      pick: () => Math.floor(pickRng.float() * 1000),
      deadline: () => (aborted ? -Infinity : issuedUntil + quietMs),
      ...(flowDb ? { flowDbTable: flowDb.table } : {}),
    });
    const n$ = (nemesis = new Nemesis({
      cluster: c,
      rng: new Rng(`${options.seed}/faults`),
      logFile,
      every: options.faultEvery ?? (postgres ? [1500, 3500] : [1500, 4000]),
      downtime: [0, 800],
      gapAfterRestart: size === 1,
      ...(options.stalls !== false
        ? {
            stall: {
              rng: new Rng(`${options.seed}/stalls`),
              share: postgres ? 0.25 : 0.15,
              ms: postgres ? [1000, 9000] : [500, 5000],
            },
          }
        : {}),
      // Clean stops (deploys): drained, then handed over at once (PostgreSQL) or replayed at the
      // restart (SQLite).
      term: { rng: new Rng(`${options.seed}/terms`), share: 0.3 },
      ...(postgres
        ? {
            pg: {
              ...(proxy ? { proxy } : {}),
              ...(server ? { server } : {}),
              adminUrl: pgUrl,
              mode: options.pgRestart ?? 'proxy',
              share: 0.15,
              outageMs: [300, 3000] as [number, number],
            },
          }
        : {}),
    }));
    say(
      `torture: ${options.store}, ${size} process(es), seed ${options.seed}, run dir ${runDir}` +
        (postgres ? `, schema ${schema}` : '') +
        (real ? ', real PostgreSQL restarts' : ''),
    );
    await c.start();
    n$.start();
    const tasks = new Set<Promise<void>>();
    const rate = options.rate ?? 15;
    const gapRng = new Rng(`${options.seed}/gaps`);
    const endAt = options.minutes === undefined ? Infinity : started + options.minutes * 60_000;
    let n = 0;
    let lastSay = Date.now();
    while (n < (options.ops ?? Infinity) && Date.now() < endAt && !aborted) {
      if (c.crashLooping.size === size) {
        say('  every process crash-loops: no more operations');
        break;
      }
      // A free slot, but not forever: in-flight operations wait for their acknowledgements until
      // the run's deadline, which counts from the end of issuing, so 48 of them waiting (a slot
      // that crash-loops, say) would otherwise hold the run here for good (long-pg-11 did).
      const slotBy = Math.min(endAt, Date.now() + quietMs);
      while (tasks.size >= MAX_IN_FLIGHT && Date.now() < slotBy && !aborted)
        await Promise.race([...tasks, sleep(Math.min(1000, Math.max(0, slotBy - Date.now())))]);
      if (tasks.size >= MAX_IN_FLIGHT) {
        if (Date.now() < endAt && !aborted)
          say(
            `  ${MAX_IN_FLIGHT} operations in flight for ${quietMs / 1000} s: no more operations`,
          );
        break;
      }
      const op = generateOp(options.seed, n++, { databases: flowDb?.kinds ?? [] });
      const task = workload.run(op).catch((err: unknown) => {
        ledger.problems.push({ invariant: 'harness', detail: `op ${n - 1}: ${String(err)}` });
      });
      tasks.add(task);
      void task.finally(() => tasks.delete(task));
      await sleep(-Math.log(1 - gapRng.float()) * (1000 / rate));
      if (Date.now() - lastSay > 10_000) {
        lastSay = Date.now();
        say(
          `  ${n} ops, ${ledger.acks} acks, ${n$.faults.length} faults, ${c.unplanned.length} unplanned exits`,
        );
      }
    }
    // Quiet period: no more faults, every process up, everything in flight may land.
    issuedUntil = Date.now();
    say(`  issued ${n} ops; healing and waiting for quiet`);
    await n$.stop();
    await c.restartAll();
    await Promise.all([...tasks]);
    const check = await checkInvocations(c, ledger, quietMs, () => aborted);
    const counterProblems = await checkCounters(c, ledger);
    const tallyProblems = await checkTallies(c, ledger);
    const queueProblems = await checkQueues(c);
    const flowRunProblems = await checkFlowRuns(c, ledger);
    const lines = parseLog(readFileSync(logFile, 'utf8'));
    const log = analyzeLog(lines);
    const flowEffectProblems = checkFlowEffects(lines, ledger.dflows);
    const rowsByKind: Partial<Record<DDb, number>> = {};
    const flowRows = flowDb ? await readFlowRows(flowDb, rowsByKind) : new Map<string, number>();
    const flowRowProblems = flowDb ? checkFlowRows(flowRows, lines, ledger.dflows) : [];
    /** Runs answered with their result (not cancelled). */
    const answeredRuns = ledger.dflows.filter((r) => r.acked && !r.cancelled);
    const problems = [
      ...ledger.problems,
      ...n$.errors.map((detail) => ({ invariant: 'harness', detail })),
      ...check.problems,
      ...counterProblems,
      ...tallyProblems,
      ...queueProblems,
      ...flowRunProblems,
      ...log.problems,
      ...flowEffectProblems,
      ...flowRowProblems,
      ...c.unplanned.map((u) => ({
        invariant: 'no process exits on its own',
        detail: `pid ${u.pid} exited with ${u.signal ?? `code ${u.code}`}${u.duringStartup ? ' while starting (recovery)' : ''}: ${lastLines(u.stderrTail)}`,
      })),
      ...[...c.crashLooping].map((slot) => ({
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
      flowRuns: {
        ...flowStepFigures(lines),
        started: ledger.dflows.length,
        acked: ledger.dflows.filter((r) => r.acked).length,
        compensated: answeredRuns.filter((r) => r.expect.result.status !== 'completed').length,
        compensationFailed: answeredRuns.filter(
          (r) => r.expect.result.status === 'compensation_failed',
        ).length,
        timedOut: answeredRuns.filter((r) =>
          r.expect.result.errors.some((e) => e.code === 'timeout'),
        ).length,
        continued: answeredRuns.filter((r) =>
          r.expect.result.errors.some(
            (e) =>
              !e.compensation && e.code === 'step_failed' && e.step !== r.expect.result.failedStep,
          ),
        ).length,
        cancelSent: ledger.dflows.filter((r) => r.cancelSent).length,
        cancelAccepted: ledger.flowCancels,
        cancelled: ledger.dflows.filter((r) => r.cancelled).length,
        cutTimed: ledger.dflows.filter(
          (r) =>
            r.cancelled &&
            r.expect.undos.some((u) => u.timed && (r.state?.failed ?? []).includes(u.step)),
        ).length,
        listUndos: new Set(
          lines
            .filter(
              (l) => (l.kind === 'start' || l.kind === 'flake') && /^D\/.*u\d+$/.test(l.args[0]!),
            )
            .map((l) => l.args[0]),
        ).size,
        dbRows: flowDb ? [...flowRows.values()].reduce((a, b) => a + b, 0) : undefined,
        ...(flowDb
          ? {
              dbRowsByKind: flowDb.kinds.map((k) => `${k} ${rowsByKind[k] ?? 0}`).join(', '),
            }
          : {}),
      },
      kills: n$.faults.filter((f) => f.kind === 'kill').length,
      terms: n$.faults.filter((f) => f.kind === 'term').length,
      stalls: n$.faults.filter((f) => f.kind === 'stall').length,
      dbFaults: n$.faults.filter((f) => !['kill', 'term', 'stall'].includes(f.kind)).length,
      ...(real
        ? {
            pgRestarts: {
              fast: n$.faults.filter((f) => f.how === 'fast').length,
              immediate: n$.faults.filter((f) => f.how === 'immediate').length,
            },
          }
        : {}),
      starts: c.starts,
      lost: check.lost,
      stuck: check.stuck,
      log,
      unplannedExits: c.unplanned.length,
      recovery: recovery(lines, n$.faults, ledger.ackTimes),
      odd: ledger.odd,
      problems,
    };
  };

  // An abort settles the run at once; the body, left behind, finds every process gone and its
  // deadlines past, and ends by itself.
  const signal = options.signal;
  let onAbort: (() => void) | undefined;
  const abortedRun = new Promise<never>((_, reject) => {
    onAbort = () => {
      aborted = true;
      reject(signal!.reason instanceof Error ? signal!.reason : new Error('torture run aborted'));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
  const running = body();
  running.catch(() => undefined);
  abortedRun.catch(() => undefined);
  try {
    return await Promise.race([running, abortedRun]);
  } catch (err) {
    // A run that did not finish keeps what explains it.
    keepRunDir = true;
    throw err;
  } finally {
    if (onAbort) signal?.removeEventListener('abort', onAbort);
    aborted = true;
    // The cluster first: from now on no process is spawned (not even a pending restart), and
    // every one starting or serving is killed.
    const stopping = cluster?.stop().catch(() => undefined);
    await nemesis?.stop().catch(() => undefined);
    await stopping;
    await proxy?.close();
    await downstream?.close();
    if (flowDb && !keep) await dropFlowTable(flowDb);
    else if (flowDb)
      say(
        `table ${flowDb.table} kept on ${flowDb.kinds.join(', ')} (drop it with: DROP TABLE ${flowDb.table}; on Redis, delete the keys ${flowDb.table}:*)`,
      );
    if (keep) server?.keep();
    // A kept run keeps its schema too: the stuck rows, key locks and timers explain it.
    if (server) {
      await server.stop().catch(() => undefined);
      if (keep) say(server.describeKept(schema));
    } else if (postgres && !keep) await dropSchema(pgUrl, schema);
    else if (postgres) say(`schema ${schema} kept (drop it with: DROP SCHEMA ${schema} CASCADE)`);
    if (!keep && !keepRunDir) rmSync(runDir, { recursive: true, force: true });
    else say(`run directory kept: ${runDir}`);
  }
}

/** The databases of flows' `database` steps this run has, and its table (Redis: key prefix). */
export interface FlowDbs {
  table: string;
  kinds: DDb[];
  pg?: string;
  mysql?: string;
  redis?: string;
}

/**
 * The databases of flows' `database` steps: a fresh table on the shared PostgreSQL server, which
 * the apps reach directly (not through the proxy: a step's statement cut by a planned outage
 * would fail its flow, which the definition does not foresee), one on MariaDB
 * (`KEEL_TEST_MYSQL_URL`, else root at 127.0.0.1:3306, database `test`), and a key prefix on
 * Redis (`KEEL_TEST_REDIS_URL`, else 127.0.0.1:6379). No PostgreSQL with `--pg-restart real`
 * (it keeps off the shared server); each one unreachable is skipped, and either is said.
 */
export async function flowDatabases(
  urls: { pg: string; mysql: string; redis: string },
  seed: string,
  real: boolean,
  say: (line: string) => void,
): Promise<FlowDbs | undefined> {
  const table =
    `keel_torture_dsteps_${seed.replace(/\W/g, '_')}_${Date.now().toString(36)}`.toLowerCase();
  const dbs: FlowDbs = { table, kinds: [] };
  const skip = (what: string, url: string, err: unknown): void =>
    say(
      `  SKIPPED ${what} database steps in flows: ${url} is unreachable (${(err as Error).message})`,
    );
  if (real) {
    say('  no PostgreSQL database steps in flows: --pg-restart real keeps off the shared server');
  } else {
    const client = new pg.Client({ connectionString: urls.pg, connectionTimeoutMillis: 3000 });
    client.on('error', () => undefined);
    try {
      await client.connect();
      await client.query(FLOW_DB.create(table));
      dbs.pg = urls.pg;
      dbs.kinds.push('pg');
    } catch (err) {
      skip('PostgreSQL', urls.pg, err);
    } finally {
      await client.end().catch(() => undefined);
    }
  }
  const myUrl = urls.mysql;
  try {
    const conn = await mysql.createConnection({ uri: myUrl, connectTimeout: 3000 });
    try {
      await conn.query(FLOW_MYSQL.create(table));
      dbs.mysql = myUrl;
      dbs.kinds.push('mysql');
    } finally {
      await conn.end().catch(() => undefined);
    }
  } catch (err) {
    skip('MariaDB', myUrl, err);
  }
  const redisUrl = urls.redis;
  const redis = new Redis(redisUrl, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout: 3000,
  });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    await redis.ping();
    dbs.redis = redisUrl;
    dbs.kinds.push('redis');
  } catch (err) {
    skip('Redis', redisUrl, err);
  } finally {
    redis.disconnect();
  }
  return dbs.kinds.length > 0 ? dbs : undefined;
}

/** The `database` steps' rows (Redis: list entries): log id → how many. */
export async function readFlowRows(
  db: FlowDbs,
  byKind: Partial<Record<DDb, number>>,
): Promise<Map<string, number>> {
  const rows = new Map<string, number>();
  let kind: DDb = 'pg';
  const add = (log: string, n: number): void => {
    rows.set(log, (rows.get(log) ?? 0) + n);
    byKind[kind] = (byKind[kind] ?? 0) + n;
  };
  const count = `SELECT log, count(*) AS n FROM ${db.table} GROUP BY log`;
  if (db.pg) {
    const client = new pg.Client({ connectionString: db.pg });
    client.on('error', () => undefined);
    try {
      await client.connect();
      const r = await client.query<{ log: string; n: string }>(count);
      for (const row of r.rows) add(row.log, Number(row.n));
    } finally {
      await client.end().catch(() => undefined);
    }
  }
  if (db.mysql) {
    kind = 'mysql';
    const conn = await mysql.createConnection({ uri: db.mysql });
    try {
      const [r] = await conn.query(count);
      for (const row of r as Array<{ log: string; n: number | string }>)
        add(row.log, Number(row.n));
    } finally {
      await conn.end().catch(() => undefined);
    }
  }
  if (db.redis) {
    kind = 'redis';
    const redis = new Redis(db.redis, { maxRetriesPerRequest: 1 });
    redis.on('error', () => undefined);
    try {
      for (const key of await redisKeys(redis, db.table))
        add(FLOW_REDIS.logOf(key), await redis.llen(key));
    } finally {
      redis.disconnect();
    }
  }
  return rows;
}

/** The keys of a run's Redis lists (`<table>:<log id>`). */
async function redisKeys(redis: Redis, table: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', `${table}:*`, 'COUNT', 500);
    keys.push(...batch);
    cursor = next;
  } while (cursor !== '0');
  return keys;
}

export async function dropFlowTable(db: FlowDbs): Promise<void> {
  // Best effort: leftovers are named keel_torture_dsteps_* and harmless.
  if (db.pg) {
    const client = new pg.Client({ connectionString: db.pg });
    client.on('error', () => undefined);
    try {
      await client.connect();
      await client.query(`DROP TABLE IF EXISTS ${db.table}`);
    } catch {
      // see above
    } finally {
      await client.end().catch(() => undefined);
    }
  }
  if (db.mysql) {
    try {
      const conn = await mysql.createConnection({ uri: db.mysql });
      await conn.query(`DROP TABLE IF EXISTS ${db.table}`).catch(() => undefined);
      await conn.end().catch(() => undefined);
    } catch {
      // see above
    }
  }
  if (db.redis) {
    const redis = new Redis(db.redis, { maxRetriesPerRequest: 1 });
    redis.on('error', () => undefined);
    try {
      const keys = await redisKeys(redis, db.table);
      if (keys.length > 0) await redis.del(...keys);
    } catch {
      // see above
    } finally {
      redis.disconnect();
    }
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
