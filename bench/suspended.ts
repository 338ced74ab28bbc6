/**
 * The suspended-workflows row: what N workflows waiting on a durable promise cost the server
 * in memory, and how long it takes to resolve them all and see every run finish.
 *
 * The Keel server (`server.ts`, durability `fsync`, started by run.ts in its own process pinned
 * to CPU 0, with `--expose-gc`) serves the `Parked` workflow of `services.ts`. From this
 * process (the load generator, CPU 1):
 *
 * 1. **Create**: N × `POST /Parked/{key}/run/send` (202, `existing: false`), `BENCH_CLIENTS`
 *    (32) requests in flight, each through the ingress into `engine.send`. Each run starts,
 *    awaits promise `go` and suspends once it has waited `KEEL_SUSPEND_AFTER` (1 s).
 * 2. **Wait until all are suspended**: the store (a read-only connection to the server's SQLite
 *    file, from this process) counts every `Parked` run as `suspended`, and the engine reports
 *    no invocation held in memory (`engine.inMemory` over IPC).
 * 3. **Measure**: after a 3 s settle, the server's RSS (`VmRSS` in /proc/<pid>/status, the
 *    highest of 3 samples 1 s apart), its V8 heap (`process.memoryUsage()` over IPC), then the
 *    same after a full garbage collection, and its peak RSS so far (`VmHWM`).
 * 4. **Resolve**: N × `POST /Parked/{key}/resolve` (each a shared-handler invocation resolving
 *    the run's promise), 32 in flight, while the store is polled every 100 ms; the time runs from
 *    the first resolve request to the poll that counts all N runs `completed`.
 */
import fs from 'node:fs';
import os from 'node:os';
import Database from 'better-sqlite3';
import { runLoad, type LoadResult } from './client.js';

/** The server process, as run.ts started it. */
export interface SuspendedServer {
  pid: number;
  host: string;
  port: number;
  /** Its SQLite file. */
  db: string;
  /** Sends an IPC message and waits for the answer that has `key`. */
  ask(msg: unknown, key: string): Promise<unknown>;
}

export interface SuspendedRow {
  n: number;
  clients: number;
  /** Load average (1, 5, 15 min) when the row started. */
  loadAvg: number[];
  create: Phase;
  /** From the last create answer to the store counting every run suspended with none in memory. */
  suspendMs?: number;
  /** The server before any workflow was created (after start-up). */
  idle: Memory;
  /** While all N wait, and after a full garbage collection; `peakRssMb` is VmHWM at that point. */
  waiting?: Memory;
  waitingAfterGc?: Memory;
  peakRssMb?: number;
  /**
   * The engine's Maps, Sets and arrays holding at least one entry per 100 waiting workflows
   * (`'collections'` over IPC), largest first: what keeps memory per suspended invocation.
   */
  collections?: Array<[string, number]>;
  resolve?: Phase;
  /** From the first resolve request to the store counting all N runs completed. */
  finishMs?: number;
  /** Run statuses at the end (all `completed` when everything went right). */
  finalStatuses?: Record<string, number>;
  /** Why the row stopped early, if it did. */
  problem?: string;
}

interface Phase {
  load: LoadResult;
  /** Server CPU time over the phase, ms (all threads). */
  serverCpuMs?: number;
  /** CPU time of everything but the server and this process, as % of one core. */
  otherPct?: number;
}

interface Memory {
  rssMb: number;
  /** VmRSS split: anonymous memory (heaps, SQLite's page cache), file-backed, shared (the WAL index). */
  rssAnonMb?: number;
  rssFileMb?: number;
  rssShmemMb?: number;
  /** The V8 heap's committed size (what it took from the OS), and its live part. */
  heapTotalMb?: number;
  heapUsedMb?: number;
  externalMb?: number;
  inMemory?: number;
}

const MB = 1024 * 1024;
const TICK_MS = 10; // USER_HZ is 100 on Linux

/** RSS or peak RSS (`VmRSS`, `VmHWM`) of a process in MB, from /proc/<pid>/status. */
function procStatusMb(
  pid: number,
  field: 'VmRSS' | 'VmHWM' | 'RssAnon' | 'RssFile' | 'RssShmem',
): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
  if (!m) throw new Error(`no ${field} in /proc/${pid}/status`);
  return Number(m[1]) / 1024;
}

function procCpuMs(pid: number): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) * TICK_MS;
  } catch {
    return undefined;
  }
}

/** Busy CPU time of the whole machine, all cores, in ms. */
function machineCpuMs(): number | undefined {
  try {
    const cpu = fs
      .readFileSync('/proc/stat', 'utf8')
      .split('\n')[0]!
      .trim()
      .split(/\s+/)
      .slice(1)
      .map(Number);
    return (cpu[0]! + cpu[1]! + cpu[2]! + cpu[5]! + cpu[6]! + cpu[7]!) * TICK_MS;
  } catch {
    return undefined;
  }
}

/** Measures a phase's CPU: the server's, and everyone else's (not the server, not this process). */
async function phase(pid: number, run: () => Promise<LoadResult>): Promise<Phase> {
  const s0 = procCpuMs(pid);
  const m0 = machineCpuMs();
  const u0 = process.cpuUsage();
  const t0 = Date.now();
  const load = await run();
  const wall = Date.now() - t0;
  const s1 = procCpuMs(pid);
  const m1 = machineCpuMs();
  const u = process.cpuUsage(u0);
  const p: Phase = { load };
  if (s0 !== undefined && s1 !== undefined) p.serverCpuMs = s1 - s0;
  if (p.serverCpuMs !== undefined && m0 !== undefined && m1 !== undefined && wall > 0) {
    const other = m1 - m0 - p.serverCpuMs - (u.user + u.system) / 1000;
    p.otherPct = Math.max(0, (other / wall) * 100);
  }
  return p;
}

async function memory(srv: SuspendedServer, gc: boolean): Promise<Memory> {
  const m = (await srv.ask(gc ? { gc: true } : 'memory', 'memory')) as NodeJS.MemoryUsage & {
    inMemory?: number;
  };
  return {
    rssMb: procStatusMb(srv.pid, 'VmRSS'),
    rssAnonMb: procStatusMb(srv.pid, 'RssAnon'),
    rssFileMb: procStatusMb(srv.pid, 'RssFile'),
    rssShmemMb: procStatusMb(srv.pid, 'RssShmem'),
    heapTotalMb: m.heapTotal / MB,
    heapUsedMb: m.heapUsed / MB,
    externalMb: (m.external + m.arrayBuffers) / MB,
    inMemory: m.inMemory,
  };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function runSuspendedBench(
  srv: SuspendedServer,
  o: { n: number; clients: number; log: (s: string) => void },
): Promise<SuspendedRow> {
  const { n, clients, log } = o;
  const prefix = `${process.pid.toString(36)}-${Date.now().toString(36)}`;
  const loadAvg = os.loadavg();
  await sleep(1_000);
  const idle = await memory(srv, false);
  // The load generator's view of the store: a read-only connection to the server's SQLite file
  // (WAL: it never blocks the server's writes), so polling costs the server nothing.
  const db = new Database(srv.db, { readonly: true, fileMustExist: true });
  const countRuns = db.prepare<[], { status: string; n: number }>(
    "SELECT status, count(*) AS n FROM invocations WHERE service = 'Parked' AND handler = 'run' GROUP BY status",
  );
  const statuses = (): Record<string, number> =>
    Object.fromEntries(countRuns.all().map((r) => [r.status, r.n]));
  // Generous: a loaded machine may manage a few hundred invocations per second.
  const timeoutMs = 120_000 + n * 5;
  const target = { host: srv.host, port: srv.port, clients, total: n, timeoutMs };
  try {
    log(`suspended: creating ${n} Parked workflows (${clients} in flight)`);
    const create = await phase(srv.pid, () =>
      runLoad({
        ...target,
        path: (i) => `/Parked/${prefix}-${i}/run/send`,
        body: '1',
        expectStatus: 202,
        expect: (body) => body.includes('"existing":false'),
      }),
    );
    const row: SuspendedRow = { n, clients, loadAvg, create, idle };
    if (create.load.ok !== n) {
      row.problem = `${n - create.load.ok} of ${n} sends failed: ${create.load.samples.join('; ')}`;
      return row;
    }

    log('suspended: waiting until every run is suspended and none is in memory');
    const t0 = Date.now();
    for (;;) {
      const st = statuses();
      if (st.suspended === n && (await memory(srv, false)).inMemory === 0) break;
      if (Date.now() - t0 > timeoutMs) {
        row.problem = `not all suspended after ${timeoutMs / 1000} s: ${JSON.stringify(st)}`;
        return row;
      }
      await sleep(250);
    }
    row.suspendMs = Date.now() - t0;

    await sleep(3_000);
    let waiting: Memory | undefined;
    for (let i = 0; i < 3; i++) {
      if (i > 0) await sleep(1_000);
      const m = await memory(srv, false);
      if (!waiting || m.rssMb > waiting.rssMb) waiting = m;
    }
    row.waiting = waiting;
    row.peakRssMb = procStatusMb(srv.pid, 'VmHWM');
    row.waitingAfterGc = await memory(srv, true);
    const sizes = (await srv.ask('collections', 'collections')) as Record<string, number>;
    row.collections = Object.entries(sizes)
      .filter(([, size]) => size >= n / 100)
      .sort((a, b) => b[1] - a[1]);
    log(
      `suspended: ${n} waiting, server RSS ${waiting!.rssMb.toFixed(0)} MB (after GC ${row.waitingAfterGc.rssMb.toFixed(0)} MB)`,
    );

    log(`suspended: resolving ${n} promises (${clients} in flight)`);
    const r0 = Date.now();
    let finishedAt: number | undefined;
    let polling = true;
    const poller = (async () => {
      while (polling) {
        if (statuses().completed === n) {
          finishedAt = Date.now();
          return;
        }
        await sleep(100);
      }
    })();
    row.resolve = await phase(srv.pid, () =>
      runLoad({
        ...target,
        path: (i) => `/Parked/${prefix}-${i}/resolve`,
        body: '1',
        expect: '"ok"',
      }),
    );
    if (row.resolve.load.ok !== n) {
      polling = false;
      await poller;
      row.problem = `${n - row.resolve.load.ok} of ${n} resolves failed: ${row.resolve.load.samples.join('; ')}`;
      row.finalStatuses = statuses();
      return row;
    }
    const deadline = Date.now() + timeoutMs;
    while (finishedAt === undefined && Date.now() < deadline) await sleep(100);
    polling = false;
    await poller;
    if (finishedAt === undefined) row.problem = `not all runs completed after resolving`;
    else row.finishMs = finishedAt - r0;
    row.finalStatuses = statuses();
    return row;
  } finally {
    db.close();
  }
}

/** What the issue aims at. */
export const SUSPENDED_TARGET = { rssMb: 250, finishS: 20 };

const int = (x: number): string => Math.round(x).toLocaleString('en-US');
const mb = (x: number | undefined): string => (x === undefined ? '—' : `${int(x)} MB`);
const secs = (ms: number | undefined): string =>
  ms === undefined ? '—' : `${(ms / 1000).toFixed(1)} s`;
const rate = (p: Phase | undefined): string =>
  p ? `${int(p.load.ok / (p.load.elapsedMs / 1000))}/s` : '—';
const failed = (p: Phase | undefined): number => (p ? p.load.total - p.load.ok : 0);
const cpu = (p: Phase | undefined): string =>
  p?.serverCpuMs === undefined ? '—' : `${(p.serverCpuMs / 1000).toFixed(1)} s`;
const other = (p: Phase | undefined): string =>
  p?.otherPct === undefined ? '—' : `${int(p.otherPct)}%`;

export function suspendedTable(rows: SuspendedRow[]): string {
  const head =
    '| Workflows | Server RSS while they wait (after GC) | V8 heap used (after GC) | idle RSS before (V8 heap) | peak RSS | Created | Suspended after | Resolve → every run finished | Resolves | Failed | srv CPU create / resolve | other CPU create / resolve | Target |\n' +
    '| --------: | ----: | ----: | ----: | ----: | ----: | ----: | ----: | ----: | ----: | ----: | ----: | :---- |';
  const lines = rows.map((r) => {
    const w = r.waiting;
    const g = r.waitingAfterGc;
    const rssOk = w !== undefined && w.rssMb <= SUSPENDED_TARGET.rssMb;
    const timeOk = r.finishMs !== undefined && r.finishMs <= SUSPENDED_TARGET.finishS * 1000;
    const target =
      `RSS ≤${SUSPENDED_TARGET.rssMb} MB ${w ? (rssOk ? '✅' : '❌') : '—'}, ` +
      `≤${SUSPENDED_TARGET.finishS} s ${r.finishMs !== undefined ? (timeOk ? '✅' : '❌') : '—'}`;
    return [
      int(r.n),
      `**${mb(w?.rssMb)}** (${mb(g?.rssMb)})`,
      `${mb(w?.heapUsedMb)} (${mb(g?.heapUsedMb)})`,
      `${mb(r.idle.rssMb)} (heap ${mb(r.idle.heapUsedMb)})`,
      mb(r.peakRssMb),
      `${secs(r.create.load.elapsedMs)}, ${rate(r.create)}`,
      secs(r.suspendMs),
      `**${secs(r.finishMs)}**`,
      r.resolve ? `${secs(r.resolve.load.elapsedMs)}, ${rate(r.resolve)}` : '—',
      String(failed(r.create) + failed(r.resolve)),
      `${cpu(r.create)} / ${cpu(r.resolve)}`,
      `${other(r.create)} / ${other(r.resolve)}`,
      target,
    ].join(' | ');
  });
  const split = (m: Memory | undefined): string =>
    m === undefined
      ? '—'
      : `${mb(m.rssMb)} = ${mb(m.rssAnonMb)} anonymous + ${mb(m.rssFileMb)} file + ${mb(m.rssShmemMb)} shared; V8 heap ${mb(m.heapUsedMb)} live of ${mb(m.heapTotalMb)} committed`;
  const breakdown = rows.map(
    (r) =>
      `\n\nServer memory at ${int(r.n)}: idle ${split(r.idle)}; waiting ${split(r.waiting)}; after GC ${split(r.waitingAfterGc)}.`,
  );
  const grown = rows
    .filter((r) => r.collections !== undefined)
    .map(
      (r) =>
        `\n\nEngine collections with ≥1 entry per 100 waiting workflows, at ${int(r.n)} waiting: ` +
        (r.collections!.length
          ? r.collections!.map(([at, size]) => `\`${at}\` ${int(size)}`).join(', ')
          : 'none'),
    );
  const notes = rows
    .filter((r) => r.problem || (r.finalStatuses && r.finalStatuses.completed !== r.n))
    .map(
      (r) =>
        `\n**${int(r.n)} workflows: ${r.problem ?? 'not every run completed'}** (run statuses at the end: ${JSON.stringify(r.finalStatuses ?? {})})`,
    );
  return (
    [head, ...lines.map((l) => `| ${l} |`)].join('\n') +
    breakdown.join('') +
    grown.join('') +
    notes.join('')
  );
}
