/**
 * Large payloads at the acceptance size: N workflow runs (default 100) each produce a step
 * result of MB MiB (default 50), then wait on a durable promise, suspended. A child process
 * (`test/fixtures/large-payloads-rss.ts`, with `--expose-gc`) measures its RSS after warm-up
 * runs and after all N wait, each after full garbage collections, then resumes one run and
 * checks that its replay read the large result back identical. Prints one markdown table row
 * per store; asserts nothing (the test suite runs the same fixture smaller and asserts).
 *
 * ```sh
 * npx tsx bench/large-payloads.ts                       # SQLite and PostgreSQL, 100 × 50 MiB
 * LP_N=20 LP_MB=10 npx tsx bench/large-payloads.ts      # smaller
 * BENCH_DATABASE_URL=postgres://u@host/db npx tsx bench/large-payloads.ts
 * LP_STORES=sqlite npx tsx bench/large-payloads.ts      # one store only
 * ```
 *
 * Needs N × MB of free disk (5 GB at the default size) under `.tmp/`, and as much in PostgreSQL.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';

const root = path.resolve(import.meta.dirname, '..');
const fixture = path.join(root, 'test', 'fixtures', 'large-payloads-rss.ts');
const n = process.env.LP_N ?? '100';
const mb = process.env.LP_MB ?? '50';
const pgUrl = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const stores = (process.env.LP_STORES ?? 'sqlite,postgres').split(',');
// One run at a time at this size: a 50 MiB write holds several copies of the value while in
// flight, and PostgreSQL takes seconds for each.
const par = process.env.LP_PAR ?? '1';

interface Result {
  n: number;
  mb: number;
  before: number;
  waiting: number;
  totalBytes: number;
  identical: boolean;
}

function run(
  env: Record<string, string>,
): Promise<{ result: Result; seconds: number; peak: number }> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    // The child's peak RSS: VmHWM, polled from /proc (Linux).
    const child = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', fixture], {
      cwd: root,
      env: { ...process.env, LP_N: n, LP_MB: mb, LP_PAR: par, ...env },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    let peak = 0;
    const timer = setInterval(() => {
      try {
        const status = fs.readFileSync(`/proc/${child.pid}/status`, 'utf8');
        const hwm = /VmHWM:\s+(\d+) kB/.exec(status);
        if (hwm) peak = Math.max(peak, Number(hwm[1]) * 1024);
      } catch {
        // not on Linux, or the child is gone
      }
    }, 200);
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('close', (code) => {
      clearInterval(timer);
      if (code !== 0) return reject(new Error(`the fixture exited with ${code}`));
      const line = out.trim().split('\n').pop()!;
      resolve({ result: JSON.parse(line) as Result, seconds: (Date.now() - started) / 1000, peak });
    });
  });
}

const MB = (b: number) => (b / 1024 / 1024).toFixed(0);

async function main(): Promise<void> {
  process.stdout.write(
    '| store | runs × MiB | results total (MiB) | RSS before (MiB) | RSS with all waiting (MiB) | growth (MiB) | peak RSS (MiB) | replay identical | time (s) |\n' +
      '|---|---|---|---|---|---|---|---|---|\n',
  );
  // Each row as soon as it is measured: the PostgreSQL row takes long.
  const print = (row: string) => process.stdout.write(row);
  if (stores.includes('sqlite')) {
    fs.mkdirSync(path.join(root, '.tmp'), { recursive: true });
    const dir = fs.mkdtempSync(path.join(root, '.tmp', 'lp-'));
    try {
      print(format('sqlite', await run({ LP_DB: path.join(dir, 'keel.db') })));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
  if (stores.includes('postgres')) {
    const schema = `keel_bench_lp_${randomBytes(4).toString('hex')}`;
    const admin = new pg.Pool({ connectionString: pgUrl, max: 1 });
    try {
      print(format('postgres', await run({ LP_PG_URL: pgUrl, LP_SCHEMA: schema })));
    } finally {
      await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(() => undefined);
      await admin.end();
    }
  }
}

function format(store: string, r: { result: Result; seconds: number; peak: number }): string {
  const x = r.result;
  return (
    `| ${store} | ${x.n} × ${x.mb} | ${MB(x.totalBytes)} | ${MB(x.before)} | ${MB(x.waiting)} | ` +
    `${MB(x.waiting - x.before)} | ${r.peak ? MB(r.peak) : '?'} | ${x.identical} | ${r.seconds.toFixed(0)} |\n`
  );
}

await main();
