/**
 * The dashboard's invocation list at 1,000,000 invocations: fills a store straight through SQL
 * (not through the engine: a million invocations through the engine would measure the engine,
 * for an hour), then times the queries `GET /invocations` makes, through the Store interface
 * (`listInvocations`, so decoding the rows is included), and prints each one's query plan so a
 * scan shows. SQLite always; PostgreSQL when reachable (`BENCH_DATABASE_URL`, a fresh schema
 * dropped afterwards).
 *
 *   npm run bench -- --only=list
 *   npx tsx bench/list.ts [invocations=1000000]          # this row alone
 *   BENCH_LIST_N=100000 BENCH_LIST_PG=0 npm run bench -- --only=list
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import {
  listInvocationsSql,
  POSTGRES_ERROR_CODE,
  SQLITE_ERROR_CODE,
} from '../src/store/list-sql.js';
import { openPostgresStore } from '../src/store/postgres/index.js';
import { openSqliteStore } from '../src/store/sqlite/index.js';
import type { InvocationFilter, Store } from '../src/store/types.js';

const SERVICES = 20;
const T0 = Date.UTC(2026, 10, 1);
/** Any number of invocations spans 30 days (one every 2.6 s at a million). */
let STEP_MS = 2_600;
const CODES = [
  'timeout',
  'card_declined',
  'http_503',
  'rate_limited',
  'not_found',
  'invalid_input',
];
const PAGE = 50;

/**
 * Row i of the data set, the same for both stores (the PostgreSQL fill computes the same in
 * SQL): 20 services × 3 handlers, half keyed (50,000 keys), 85% completed, 8% failed, 2%
 * backing-off, 2% suspended, 1% each running, pending, scheduled; failures carry one of six
 * codes (`rare_code` on 1 in 10,000 failures); times ±5 s off arrival order.
 */
function statusOf(i: number): string {
  const p = (i * 7919) % 100;
  if (p < 85) return 'completed';
  if (p < 93) return 'failed';
  if (p < 95) return 'backing-off';
  if (p < 97) return 'suspended';
  if (p < 98) return 'running';
  if (p < 99) return 'pending';
  return 'scheduled';
}

interface Timing {
  name: string;
  ms: number;
  rows: number;
  plan: string;
}

/** Median of `n` runs of `fn`, in ms. */
async function median(n: number, fn: () => Promise<unknown>): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = process.hrtime.bigint();
    await fn();
    times.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}

/** The dashboard's queries, each with its filter; page 500 and key lookups are added apart. */
function queries(n: number): Array<{ name: string; filter: InvocationFilter }> {
  const last = T0 + (n - 1) * STEP_MS;
  return [
    { name: 'first page, no filter', filter: {} },
    { name: 'status=failed', filter: { status: 'failed' } },
    { name: 'status=running', filter: { status: 'running' } },
    { name: 'status=failed,backing-off', filter: { status: ['failed', 'backing-off'] } },
    { name: 'service=Svc08', filter: { service: 'Svc08' } },
    { name: 'service=Svc08&handler=charge', filter: { service: 'Svc08', handler: 'charge' } },
    { name: 'handler=charge (no service)', filter: { handler: 'charge' } },
    { name: 'error=card_declined', filter: { errorCode: 'card_declined' } },
    { name: 'error=rare_code', filter: { errorCode: 'rare_code' } },
    { name: 'since=last hour', filter: { createdSince: last - 3_600_000 } },
    {
      name: 'one day, 10 days ago',
      filter: { createdSince: last - 10 * 86_400_000, createdUntil: last - 9 * 86_400_000 },
    },
    {
      name: 'status=failed&service=Svc08&one day',
      filter: {
        status: 'failed',
        service: 'Svc08',
        createdSince: last - 10 * 86_400_000,
        createdUntil: last - 9 * 86_400_000,
      },
    },
    { name: 'key=user-12345', filter: { key: 'user-12345' } },
    { name: 'status=failed&error=timeout', filter: { status: 'failed', errorCode: 'timeout' } },
  ];
}

async function timeStore(
  store: Store,
  n: number,
  plan: (f: InvocationFilter) => Promise<string>,
  log: (s: string) => void,
): Promise<Timing[]> {
  const out: Timing[] = [];
  for (const q of queries(n)) {
    const filter = { ...q.filter, limit: PAGE + 1 };
    const rows = (await store.listInvocations(filter)).length; // warm: plan and pages cached
    const ms = await median(15, () => store.listInvocations(filter));
    out.push({ name: q.name, ms, rows, plan: await plan(filter) });
    log(`list: ${q.name}: ${ms.toFixed(2)} ms`);
  }
  // Page 500: the dashboard's cursor is the last row's seq of the page before.
  let beforeSeq: number | undefined;
  const walk0 = process.hrtime.bigint();
  for (let p = 1; p < 500; p++) {
    const page = await store.listInvocations({ limit: PAGE + 1, beforeSeq });
    beforeSeq = page[PAGE - 1]!.seq;
  }
  const walkMs = Number(process.hrtime.bigint() - walk0) / 1e6;
  const f500 = { limit: PAGE + 1, beforeSeq };
  const ms500 = await median(15, () => store.listInvocations(f500));
  out.push({ name: 'page 500 via cursor', ms: ms500, rows: PAGE + 1, plan: await plan(f500) });
  out.push({ name: '(pages 1-499 walked, total)', ms: walkMs, rows: 499 * PAGE, plan: '' });
  const failed500 = { status: 'failed' as const, limit: PAGE + 1, beforeSeq };
  out.push({
    name: 'status=failed, cursor at page 500',
    ms: await median(15, () => store.listInvocations(failed500)),
    rows: (await store.listInvocations(failed500)).length,
    plan: await plan(failed500),
  });
  const id = idOf(Math.floor(n * 0.37));
  out.push({
    name: 'one invocation by id',
    ms: await median(15, () => store.getInvocation(id)),
    rows: (await store.getInvocation(id)) ? 1 : 0,
    plan: 'unique index on id',
  });
  return out;
}

function idOf(i: number): string {
  return `inv_${String(i).padStart(26, '0')}`;
}

async function sqliteRow(n: number, tmp: string, log: (s: string) => void): Promise<Timing[]> {
  fs.mkdirSync(tmp, { recursive: true });
  const file = path.join(tmp, `list-${process.pid}.db`);
  // Migrated by the store itself, so the schema is the real one.
  await openSqliteStore({ path: file }).close();
  const db = new Database(file);
  db.pragma('synchronous = OFF');
  const insert = db.prepare(
    `INSERT INTO invocations (id, service, handler, key, exclusive, status, input, output, error,
       attempt, retry_index, run_at, created_at, modified_at, completed_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, -1, ?, ?, ?, ?)`,
  );
  const t = Date.now();
  const fill = db.transaction((from: number, to: number) => {
    for (let i = from; i < to; i++) {
      const status = statusOf(i);
      const failing = status === 'failed' || status === 'backing-off';
      const code = i % 10_000 === 3 ? 'rare_code' : CODES[i % CODES.length]!;
      const created = T0 + i * STEP_MS + ((i * 31) % 11) * 1000 - 5000;
      const keyed = i % 2 === 1;
      insert.run(
        idOf(i),
        `Svc${String(i % SERVICES).padStart(2, '0')}`,
        ['run', 'charge', 'refund'][Math.floor(i / SERVICES) % 3]!,
        keyed ? `user-${i % 50_000}` : '',
        keyed ? 1 : 0,
        status,
        `{"order":${i},"amount":${i % 1000}}`,
        status === 'completed' ? `{"ok":true,"n":${i}}` : null,
        failing ? JSON.stringify({ code, message: `upstream said no (${i})` }) : null,
        failing ? 1 + (i % 5) : 0,
        status === 'backing-off' || status === 'scheduled' ? created + 60_000 : null,
        created,
        created + 500,
        status === 'completed' || status === 'failed' ? created + 500 : null,
      );
    }
  });
  for (let i = 0; i < n; i += 100_000) fill(i, Math.min(n, i + 100_000));
  db.close();
  const mb = (fs.statSync(file).size / 1e6).toFixed(0);
  log(
    `list: SQLite filled with ${n} invocations in ${((Date.now() - t) / 1000).toFixed(1)} s (${mb} MB)`,
  );
  const store = openSqliteStore({ path: file });
  const planDb = new Database(file, { readonly: true });
  try {
    return await timeStore(
      store,
      n,
      async (f) => {
        const params: Array<string | number> = [];
        const sql = listInvocationsSql(f, f.limit ?? 100, {
          table: 'invocations',
          param: (v) => (params.push(v), '?'),
          errorCode: SQLITE_ERROR_CODE,
        });
        const rows = planDb.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(params) as Array<{
          detail: string;
        }>;
        return rows
          .map((r) => r.detail)
          .filter((d) => !/^(COMPOUND QUERY|LEFT-MOST SUBQUERY|UNION ALL|MERGE)/.test(d))
          .join('; ')
          .replaceAll('invocations USING ', '')
          .replaceAll('INTEGER PRIMARY KEY', 'rowid');
      },
      log,
    );
  } finally {
    planDb.close();
    await store.close();
    for (const suffix of ['', '-wal', '-shm']) fs.rmSync(file + suffix, { force: true });
  }
}

async function postgresRow(n: number, url: string, log: (s: string) => void): Promise<Timing[]> {
  const schema = `keel_bench_list_${randomBytes(4).toString('hex')}`;
  const store = await openPostgresStore({ url, schema });
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const s = `"${schema}"`;
    const t = Date.now();
    // The same rows as SQLite's fill, generated by the server in batches.
    for (let from = 0; from < n; from += 100_000) {
      const to = Math.min(n, from + 100_000) - 1;
      await c.query(
        `INSERT INTO ${s}.invocations (id, service, handler, key, exclusive, status, input, output, error,
           attempt, retry_index, run_at, created_at, modified_at, completed_at)
         SELECT 'inv_' || lpad(i::text, 26, '0'),
                'Svc' || lpad((i % ${SERVICES})::text, 2, '0'),
                (ARRAY['run','charge','refund'])[(i / ${SERVICES}) % 3 + 1],
                CASE WHEN i % 2 = 1 THEN 'user-' || (i % 50000) ELSE '' END,
                i % 2 = 1, st,
                '{"order":' || i || ',"amount":' || (i % 1000) || '}',
                CASE WHEN st = 'completed' THEN '{"ok":true,"n":' || i || '}' END,
                CASE WHEN st IN ('failed','backing-off') THEN
                  '{"code":"' || CASE WHEN i % 10000 = 3 THEN 'rare_code'
                    ELSE (ARRAY[${CODES.map((x) => `'${x}'`).join(',')}])[i % ${CODES.length} + 1] END ||
                  '","message":"upstream said no (' || i || ')"}' END,
                CASE WHEN st IN ('failed','backing-off') THEN 1 + i % 5 ELSE 0 END, -1,
                CASE WHEN st IN ('backing-off','scheduled') THEN cr + 60000 END,
                cr, cr + 500,
                CASE WHEN st IN ('completed','failed') THEN cr + 500 END
         FROM (SELECT i,
                 ${T0}::bigint + i * ${STEP_MS} + ((i * 31) % 11) * 1000 - 5000 AS cr,
                 CASE WHEN (i * 7919) % 100 < 85 THEN 'completed'
                      WHEN (i * 7919) % 100 < 93 THEN 'failed'
                      WHEN (i * 7919) % 100 < 95 THEN 'backing-off'
                      WHEN (i * 7919) % 100 < 97 THEN 'suspended'
                      WHEN (i * 7919) % 100 < 98 THEN 'running'
                      WHEN (i * 7919) % 100 < 99 THEN 'pending'
                      ELSE 'scheduled' END AS st
               FROM generate_series(${from}::bigint, ${to}::bigint) AS i) AS g
         ORDER BY i`,
      );
    }
    // As autovacuum would soon after such a load: statistics for the planner, visibility map.
    await c.query(`VACUUM ANALYZE ${s}.invocations`);
    log(
      `list: PostgreSQL filled with ${n} invocations in ${((Date.now() - t) / 1000).toFixed(1)} s`,
    );
    return await timeStore(
      store,
      n,
      async (f) => {
        const values: Array<string | number> = [];
        const text = listInvocationsSql(f, f.limit ?? 100, {
          table: `${s}.invocations`,
          param: (v) => `$${values.push(v)}`,
          errorCode: POSTGRES_ERROR_CODE,
        });
        const r = await c.query<{ 'QUERY PLAN': Array<{ Plan: PgPlan }> }>(
          `EXPLAIN (FORMAT JSON) ${text}`,
          values,
        );
        return pgPlan(r.rows[0]!['QUERY PLAN'][0]!.Plan);
      },
      log,
    );
  } finally {
    await store.close();
    await c.query(`DROP SCHEMA "${schema}" CASCADE`).catch(() => undefined);
    await c.end();
  }
}

interface PgPlan {
  'Node Type': string;
  'Index Name'?: string;
  'Scan Direction'?: string;
  Plans?: PgPlan[];
}

/** The scans of a plan, leaves only, plus any Sort: what shows whether an index is walked. */
function pgPlan(p: PgPlan): string {
  const parts: string[] = [];
  const walk = (x: PgPlan): void => {
    if (x['Node Type'] === 'Sort' || x['Node Type'] === 'Merge Append') parts.push(x['Node Type']);
    if (x['Node Type'].includes('Scan'))
      parts.push(`${x['Node Type']}${x['Index Name'] ? ` ${x['Index Name']}` : ''}`);
    for (const c of x.Plans ?? []) walk(c);
  };
  walk(p);
  return parts.join('; ');
}

function table(title: string, rows: Timing[]): string {
  const lines = [
    `### ${title}\n`,
    '| query (page of 50) | ms (median of 15) | rows | plan |',
    '| --- | ---: | ---: | --- |',
  ];
  for (const r of rows)
    lines.push(`| ${r.name} | ${r.ms.toFixed(2)} | ${r.rows} | ${r.plan.replaceAll('|', '/')} |`);
  return lines.join('\n');
}

/** The bench row of `npm run bench -- --only=list`: a markdown section. */
export async function listBench(
  log: (s: string) => void,
  opts: { tmp: string; pgUrl?: string; n?: number },
): Promise<string> {
  const n = opts.n ?? Number(process.env.BENCH_LIST_N ?? 1_000_000);
  STEP_MS = Math.floor((30 * 86_400_000) / n);
  const parts = [
    `## Invocation list at ${n.toLocaleString('en-US')} invocations\n`,
    "The queries of the dashboard's list (`GET /invocations`), through `Store.listInvocations` " +
      '(51 rows asked, as the engine does for a page of 50), on a store filled by SQL with ' +
      `${n.toLocaleString('en-US')} invocations of 20 services × 3 handlers over 30 days ` +
      '(85% completed, 8% failed, 2% backing-off, ...; 6 error codes, one rare). The plan column ' +
      'is EXPLAIN (QUERY PLAN) of the same SQL.\n',
  ];
  parts.push(table('SQLite', await sqliteRow(n, opts.tmp, log)));
  if (opts.pgUrl !== undefined && process.env.BENCH_LIST_PG !== '0') {
    try {
      parts.push('\n' + table('PostgreSQL', await postgresRow(n, opts.pgUrl, log)));
    } catch (err) {
      parts.push(`\nPostgreSQL: not measured (${(err as Error).message})`);
    }
  }
  return parts.join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const n = Number(process.argv[2] ?? 1_000_000);
  const url = process.env.BENCH_DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test';
  console.log(
    await listBench((s) => console.error(s), {
      tmp: path.join(os.tmpdir(), 'keel-bench-list'),
      pgUrl: url,
      n,
    }),
  );
}
