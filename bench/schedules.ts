/**
 * How many cron schedules can be due in the same second before ticks fire late: N schedules
 * (1,000, 5,000, 10,000) all due at one second, in one engine on a fresh SQLite file (durability
 * `fsync`, the real clock). Prints, per N, the lag from the tick time to each invocation's
 * creation (p50, p99, max) and to the last one's completion. Nothing is asserted.
 *
 *   npm run bench -- --only=schedules
 *   npx tsx bench/schedules.ts [1000,5000,10000]     # these rows alone
 *   BENCH_SCHEDULES_DURABILITY=os npm run bench -- --only=schedules   # durability `os`
 *   npx tsx bench/schedules.ts 10000 postgres        # PostgreSQL (a fresh schema), one engine
 *   npx tsx bench/schedules.ts 10000 postgres 2      # two engines sharing it (in this process)
 *
 * PostgreSQL: KEEL_BENCH_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/test.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import pg from 'pg';
import { Engine, service } from '../src/index.js';
import { schedules } from '../src/schedules/index.js';
import { openPostgresStore } from '../src/store/postgres/index.js';
import { openSqliteStore } from '../src/store/sqlite/index.js';
import type { Store } from '../src/store/types.js';

const Tick = service({ name: 'Tick', handlers: { hit: async () => null } });

export interface SchedulesRow {
  schedules: number;
  p50: number;
  p99: number;
  max: number;
  /** From the tick to the last invocation's completion. */
  allDone: number;
  /** Invocations made (each schedule's one tick: equal to `schedules`). */
  fired: number;
  /** CPU time this process used from the tick until every invocation completed (user + system). */
  cpu: number;
}

/** Where the bench runs: a SQLite file, or a PostgreSQL schema shared by `engines` engines. */
export type SchedulesBackend = { kind: 'sqlite' } | { kind: 'postgres'; engines: number };

/** The invocations of `Tick`, read outside the engines. */
interface Reader {
  completed(): Promise<number>;
  rows(): Promise<Array<{ c: number; d: number | null }>>;
  close(): Promise<void>;
}

interface Setup {
  stores: () => Promise<Store>;
  reader: () => Promise<Reader>;
  cleanup: () => Promise<void>;
}

function sqliteSetup(n: number, dir: string): Setup {
  const file = path.join(dir, `schedules-${n}.db`);
  return {
    stores: async () =>
      openSqliteStore({
        path: file,
        durability: (process.env.BENCH_SCHEDULES_DURABILITY as 'os' | undefined) ?? 'fsync',
      }),
    reader: async () => {
      const db = new Database(file, { readonly: true });
      const count = db.prepare(
        "SELECT count(*) AS n FROM invocations WHERE service = 'Tick' AND status = 'completed'",
      );
      const all = db.prepare(
        "SELECT created_at AS c, completed_at AS d FROM invocations WHERE service = 'Tick' ORDER BY created_at",
      );
      return {
        completed: async () => (count.get() as { n: number }).n,
        rows: async () => all.all() as Array<{ c: number; d: number | null }>,
        close: async () => void db.close(),
      };
    },
    cleanup: async () => undefined,
  };
}

function postgresSetup(): Setup {
  const url = process.env.KEEL_BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
  const schema = `keel_bench_cron_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: url });
  const connected = admin.connect();
  return {
    stores: () => openPostgresStore({ url, schema }),
    reader: async () => {
      await connected;
      return {
        completed: async () =>
          Number(
            (
              await admin.query<{ n: string }>(
                `SELECT count(*) AS n FROM ${schema}.invocations WHERE service = 'Tick' AND status = 'completed'`,
              )
            ).rows[0]!.n,
          ),
        rows: async () =>
          (
            await admin.query<{ c: string; d: string | null }>(
              `SELECT created_at AS c, completed_at AS d FROM ${schema}.invocations WHERE service = 'Tick' ORDER BY created_at`,
            )
          ).rows.map((r) => ({ c: Number(r.c), d: r.d === null ? null : Number(r.d) })),
        close: async () => undefined,
      };
    },
    cleanup: async () => {
      await connected;
      await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await admin.end();
    },
  };
}

async function one(n: number, dir: string, backend: SchedulesBackend): Promise<SchedulesRow> {
  const setup = backend.kind === 'sqlite' ? sqliteSetup(n, dir) : postgresSetup();
  const engines: Engine[] = [];
  try {
    const exts = [];
    for (let i = 0; i < (backend.kind === 'postgres' ? backend.engines : 1); i++) {
      const ext = schedules();
      const engine = new Engine({
        services: [Tick],
        store: await setup.stores(),
        extensions: [ext],
        logger: () => undefined,
      });
      await engine.start();
      engines.push(engine);
      exts.push(ext);
    }
    const ext = exts[0]!;
    // Far enough ahead for the creation of 10,000 schedules to finish before it (the other
    // engines learn of them by their refresh, every 5 s).
    const tick =
      Math.ceil(Date.now() / 1000) * 1000 +
      5_000 +
      Math.ceil(n / 1000) * 1000 +
      (engines.length > 1 ? 6_000 : 0);
    const d = new Date(tick);
    const cron = `${d.getUTCSeconds()} ${d.getUTCMinutes()} ${d.getUTCHours()} * * *`;
    for (let i = 0; i < n; i += 500)
      await Promise.all(
        Array.from({ length: Math.min(500, n - i) }, (_, j) =>
          ext.create({
            name: `s${String(i + j).padStart(6, '0')}`,
            cron,
            target: { service: 'Tick', handler: 'hit' },
          }),
        ),
      );
    if (Date.now() >= tick) throw new Error(`creating ${n} schedules took past their tick`);
    const reader = await setup.reader();
    try {
      // The CPU count starts before the tick: the engine's timer for it may run before ours.
      await new Promise((r) => setTimeout(r, Math.max(0, tick - 200 - Date.now())));
      const cpu0 = process.cpuUsage();
      await new Promise((r) => setTimeout(r, Math.max(0, tick - Date.now())));
      const deadline = tick + 120_000;
      while ((await reader.completed()) < n && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 100));
      const used = process.cpuUsage(cpu0);
      const rows = await reader.rows();
      const lags = rows.map((r) => r.c - tick);
      const at = (q: number) => lags[Math.min(lags.length - 1, Math.floor(q * lags.length))] ?? NaN;
      return {
        schedules: n,
        p50: at(0.5),
        p99: at(0.99),
        max: lags[lags.length - 1] ?? NaN,
        allDone: Math.max(...rows.map((r) => (r.d ?? Infinity) - tick)),
        fired: rows.length,
        cpu: (used.user + used.system) / 1000,
      };
    } finally {
      await reader.close();
    }
  } finally {
    for (const e of engines) await e.stop();
    await setup.cleanup();
  }
}

/** The rows for each N, on fresh files under `tmp`. */
export async function runSchedulesBench(
  log: (line: string) => void,
  options: { tmp: string; sizes?: readonly number[]; backend?: SchedulesBackend },
): Promise<SchedulesRow[]> {
  const backend = options.backend ?? { kind: 'sqlite' };
  const dir = path.join(options.tmp, 'schedules');
  fs.mkdirSync(dir, { recursive: true });
  const rows: SchedulesRow[] = [];
  try {
    for (const n of options.sizes ?? [1_000, 5_000, 10_000]) {
      log(`schedules: ${n} due in the same second`);
      rows.push(await one(n, dir, backend));
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}

/** The markdown section of the rows. */
export function schedulesTable(
  rows: readonly SchedulesRow[],
  backend: SchedulesBackend = { kind: 'sqlite' },
): string {
  const ms = (x: number) => (Number.isFinite(x) ? `${Math.round(x)} ms` : 'not all');
  const where =
    backend.kind === 'sqlite'
      ? 'in one engine (SQLite, `fsync`'
      : backend.engines === 1
        ? 'in one engine (PostgreSQL'
        : `in ${backend.engines} engines sharing one PostgreSQL schema, in one process (`;
  return [
    '## Cron schedules due in the same second\n',
    `N schedules with the same 6-field pattern, all due at one second, ${where}, the real clock, no jitter). Lag: from the tick time to the creation of each tick's invocation; "all done": to the completion of the last one; CPU: the process's CPU time (user + system) from the tick to then, which other load on the machine does not inflate.\n`,
    '| Schedules | Fired | Lag p50 | Lag p99 | Lag max | All done | CPU |',
    '|---:|---:|---:|---:|---:|---:|---:|',
    ...rows.map(
      (r) =>
        `| ${r.schedules.toLocaleString('en-US')} | ${r.fired.toLocaleString('en-US')} | ${ms(r.p50)} | ${ms(r.p99)} | ${ms(r.max)} | ${ms(r.allDone)} | ${ms(r.cpu)} |`,
    ),
    '',
  ].join('\n');
}

// `npx tsx bench/schedules.ts [sizes] [sqlite|postgres] [engines]`: this section alone.
if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const sizes = process.argv[2]?.split(',').map(Number);
  const backend: SchedulesBackend =
    process.argv[3] === 'postgres'
      ? { kind: 'postgres', engines: Number(process.argv[4] ?? 1) }
      : { kind: 'sqlite' };
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-bench-'));
  const rows = await runSchedulesBench((l) => console.error(l), {
    tmp,
    backend,
    ...(sizes ? { sizes } : {}),
  });
  console.log(schedulesTable(rows, backend));
  fs.rmSync(tmp, { recursive: true, force: true });
}
