/**
 * How many cron schedules can be due in the same second before ticks fire late: N schedules
 * (1,000, 5,000, 10,000) all due at one second, in one engine on a fresh SQLite file (durability
 * `fsync`, the real clock). Prints, per N, the lag from the tick time to each invocation's
 * creation (p50, p99, max) and to the last one's completion. Nothing is asserted.
 *
 *   npm run bench -- --only=schedules
 *   npx tsx bench/schedules.ts [1000,5000,10000]     # these rows alone
 *   BENCH_SCHEDULES_DURABILITY=os npm run bench -- --only=schedules   # durability `os`
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { Engine, service } from '../src/index.js';
import { schedules } from '../src/schedules/index.js';
import { openSqliteStore } from '../src/store/sqlite/index.js';

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

async function one(n: number, dir: string): Promise<SchedulesRow> {
  const file = path.join(dir, `schedules-${n}.db`);
  const ext = schedules();
  const engine = new Engine({
    services: [Tick],
    store: openSqliteStore({
      path: file,
      durability: (process.env.BENCH_SCHEDULES_DURABILITY as 'os' | undefined) ?? 'fsync',
    }),
    extensions: [ext],
    logger: () => undefined,
  });
  await engine.start();
  // Far enough ahead for the creation of 10,000 schedules to finish before it.
  const tick = Math.ceil(Date.now() / 1000) * 1000 + 5_000 + Math.ceil(n / 1000) * 1000;
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
  const db = new Database(file, { readonly: true });
  try {
    const count = db.prepare(
      "SELECT count(*) AS n FROM invocations WHERE service = 'Tick' AND status = 'completed'",
    );
    await new Promise((r) => setTimeout(r, Math.max(0, tick - Date.now())));
    const cpu0 = process.cpuUsage();
    const deadline = tick + 120_000;
    while ((count.get() as { n: number }).n < n && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 100));
    const used = process.cpuUsage(cpu0);
    const rows = db
      .prepare(
        "SELECT created_at AS c, completed_at AS d FROM invocations WHERE service = 'Tick' ORDER BY created_at",
      )
      .all() as Array<{ c: number; d: number | null }>;
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
    db.close();
    await engine.stop();
  }
}

/** The rows for each N, on fresh files under `tmp`. */
export async function runSchedulesBench(
  log: (line: string) => void,
  options: { tmp: string; sizes?: readonly number[] },
): Promise<SchedulesRow[]> {
  const dir = path.join(options.tmp, 'schedules');
  fs.mkdirSync(dir, { recursive: true });
  const rows: SchedulesRow[] = [];
  try {
    for (const n of options.sizes ?? [1_000, 5_000, 10_000]) {
      log(`schedules: ${n} due in the same second`);
      rows.push(await one(n, dir));
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}

/** The markdown section of the rows. */
export function schedulesTable(rows: readonly SchedulesRow[]): string {
  const ms = (x: number) => (Number.isFinite(x) ? `${Math.round(x)} ms` : 'not all');
  return [
    '## Cron schedules due in the same second\n',
    'N schedules with the same 6-field pattern, all due at one second, in one engine (SQLite, `fsync`, the real clock, no jitter). Lag: from the tick time to the creation of each tick\'s invocation; "all done": to the completion of the last one; CPU: the process\'s CPU time (user + system) from the tick to then, which other load on the machine does not inflate.\n',
    '| Schedules | Fired | Lag p50 | Lag p99 | Lag max | All done | CPU |',
    '|---:|---:|---:|---:|---:|---:|---:|',
    ...rows.map(
      (r) =>
        `| ${r.schedules.toLocaleString('en-US')} | ${r.fired.toLocaleString('en-US')} | ${ms(r.p50)} | ${ms(r.p99)} | ${ms(r.max)} | ${ms(r.allDone)} | ${ms(r.cpu)} |`,
    ),
    '',
  ].join('\n');
}

// `npx tsx bench/schedules.ts [sizes]`: this section alone.
if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const sizes = process.argv[2]?.split(',').map(Number);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-bench-'));
  const rows = await runSchedulesBench((l) => console.error(l), {
    tmp,
    ...(sizes ? { sizes } : {}),
  });
  console.log(schedulesTable(rows));
  fs.rmSync(tmp, { recursive: true, force: true });
}
