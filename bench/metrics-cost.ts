/**
 * `npm run bench -- --only=metrics-instructions`: the cost of metrics in CPU instructions, not
 * seconds. Wall-clock rows on a small shared machine swing by tens of percent from one round to
 * the next (README, "Benchmarks"), far more than the 3 % budget of metrics; instructions counted
 * by `valgrind --tool=callgrind` do not depend on what else the machine does.
 *
 * How: the bench server (bench/server.ts, SQLite with `fsync`) runs under callgrind, with
 * metrics on (and scraped, as the wall-clock row does, every 5 s) or off (`KEEL_METRICS=0`).
 * This process sends it `n` 3-step workflows one after the other (one client: the same batches
 * every time), then stops it; callgrind reports every instruction the server ran. Each mode runs
 * at two sizes: the difference between them, divided by the difference in workflows, is the
 * cost of one workflow with start-up, compilation and shutdown cancelled out. The server runs
 * with V8's `--single-threaded` (no compiler or GC threads whose share would vary).
 *
 * Needs valgrind (Debian's package); prints why and returns nothing without it.
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export interface InstructionRow {
  mode: 'on' | 'off';
  /** Instructions of the whole server run at each size. */
  totals: Array<{ workflows: number; instructions: number }>;
  /** Instructions per workflow (difference of the two sizes). */
  perWorkflow: number;
}

function hasValgrind(): boolean {
  try {
    execFileSync('valgrind', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Runs the server under callgrind for `n` sequential workflows; returns its instruction count. */
async function countOnce(mode: 'on' | 'off', n: number, dir: string): Promise<number> {
  const out = path.join(dir, `callgrind.${mode}.${n}.out`);
  const db = path.join(dir, `metrics-${mode}-${n}.db`);
  const server = path.join(ROOT, 'dist/bench/server.js');
  const child = spawn(
    'valgrind',
    [
      '--tool=callgrind',
      `--callgrind-out-file=${out}`,
      '--trace-children=no',
      process.execPath,
      '--single-threaded',
      server,
    ],
    {
      cwd: ROOT,
      env: {
        ...process.env,
        KEEL_DB: db,
        KEEL_DURABILITY: 'fsync',
        KEEL_LOG_LEVEL: 'warn',
        KEEL_METRICS: mode === 'on' ? '1' : '0',
        KEEL_BENCH_SCRAPE_MS: mode === 'on' ? '5000' : '0',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    let buf = '';
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      const m = /KEEL_BENCH_READY (\S+)/.exec(buf);
      if (m) resolve(m[1]!);
    });
    child.once('exit', (code) =>
      reject(new Error(`bench server exited (${code}) under valgrind:\n${stderr.slice(-2000)}`)),
    );
  });
  for (let i = 0; i < n; i++) {
    const res = await fetch(`${url}/Bench3/m${i}/run`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '1',
    });
    const body = await res.text();
    if (res.status !== 200 || body !== '4')
      throw new Error(`workflow ${i} answered ${res.status} ${body.slice(0, 200)}`);
  }
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  await exited;
  const text = fs.readFileSync(out, 'utf8');
  const m = /^summary:\s+(\d+)/m.exec(text) ?? /^totals:\s+(\d+)/m.exec(text);
  if (!m) throw new Error(`no instruction total in ${out}`);
  return Number(m[1]);
}

/** Both modes at two sizes (`small`, `large` workflows); undefined without valgrind. */
export async function metricsInstructions(
  small = 300,
  large = 1300,
  say: (line: string) => void = console.log,
): Promise<InstructionRow[] | undefined> {
  if (!hasValgrind()) {
    say('metrics-instructions: skipped: valgrind is not installed (apt-get install valgrind)');
    return undefined;
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-metrics-cost-'));
  try {
    const rows: InstructionRow[] = [];
    for (const mode of ['on', 'off'] as const) {
      const totals: InstructionRow['totals'] = [];
      for (const workflows of [small, large]) {
        say(`  callgrind: metrics ${mode}, ${workflows} workflows ...`);
        totals.push({ workflows, instructions: await countOnce(mode, workflows, dir) });
      }
      const perWorkflow = (totals[1]!.instructions - totals[0]!.instructions) / (large - small);
      rows.push({ mode, totals, perWorkflow });
    }
    return rows;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export function instructionTable(rows: InstructionRow[]): string {
  const on = rows.find((r) => r.mode === 'on')!;
  const off = rows.find((r) => r.mode === 'off')!;
  const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');
  const lines = [
    '| Metrics | Instructions per 3-step workflow (server, callgrind) | Runs (workflows: instructions) |',
    '|---|---:|---|',
    ...rows.map(
      (r) =>
        `| ${r.mode} | ${fmt(r.perWorkflow)} | ${r.totals.map((t) => `${t.workflows}: ${fmt(t.instructions)}`).join('; ')} |`,
    ),
  ];
  const cost = (on.perWorkflow / off.perWorkflow - 1) * 100;
  lines.push('', `Metrics cost: ${cost.toFixed(2)} % more instructions per workflow.`);
  return lines.join('\n');
}
