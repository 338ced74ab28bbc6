/**
 * `npm run bench:testkit`: the same 100 scenarios over the seed examples, written the way
 * test/examples/** are today (suite `harness`) and on `keel/testing` (suite `kit`), each run
 * with Vitest `BENCH_TESTKIT_RUNS` times (default 3), alternating, and printed as one markdown
 * table: wall time of the whole `vitest run` (process start to exit) and Vitest's own "tests"
 * time (the sum of the test bodies and hooks over all files), median with min–max. Never asserts.
 *
 *   npm run bench:testkit
 *   BENCH_TESTKIT_RUNS=5 npm run bench:testkit
 *
 * The machine's load average is printed with each run: on a shared machine the spread matters
 * as much as the medians.
 */
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const RUNS = Number(process.env.BENCH_TESTKIT_RUNS ?? 3);
const SUITES = ['harness', 'kit'] as const;
type Suite = (typeof SUITES)[number];

interface Run {
  wallMs: number;
  testsMs: number;
  passed: number;
  failed: number;
  load: number;
}

/** `1.25s` or `830ms` in Vitest's summary, as milliseconds. */
function ms(value: string, unit: string): number {
  return unit === 's' ? Number(value) * 1000 : Number(value);
}

function runOnce(suite: Suite): Run {
  const load = os.loadavg()[0]!;
  const started = performance.now();
  const out = spawnSync(
    'npx',
    ['vitest', 'run', '--config', 'bench/testkit/vitest.config.ts', '--reporter=default'],
    { cwd: ROOT, env: { ...process.env, SUITE: suite, NO_COLOR: '1', CI: '1' }, encoding: 'utf8' },
  );
  const wallMs = performance.now() - started;
  const text = `${out.stdout}\n${out.stderr}`;
  const tests = /Duration\s.*?\btests ([\d.]+)(ms|s)/.exec(text);
  const counts = /Tests\s+(?:(\d+) failed \| )?(\d+) passed/.exec(text);
  if (!tests || !counts) throw new Error(`could not read Vitest's summary:\n${text.slice(-3000)}`);
  return {
    wallMs,
    testsMs: ms(tests[1]!, tests[2]!),
    passed: Number(counts[2]),
    failed: Number(counts[1] ?? 0),
    load,
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

const sec = (x: number): string => (x / 1000).toFixed(1);
const spread = (xs: number[]): string =>
  `${sec(median(xs))} s (${sec(Math.min(...xs))}–${sec(Math.max(...xs))})`;

const runs: Record<Suite, Run[]> = { harness: [], kit: [] };
for (let i = 0; i < RUNS; i++)
  for (const suite of SUITES) {
    const r = runOnce(suite);
    runs[suite].push(r);
    process.stderr.write(
      `run ${i + 1}/${RUNS} ${suite}: wall ${sec(r.wallMs)} s, tests ${sec(r.testsMs)} s, ` +
        `${r.passed} passed, ${r.failed} failed, load ${r.load.toFixed(2)}\n`,
    );
  }

console.log(`100 scenarios over 10 seed examples, ${RUNS} runs each, alternating`);
console.log(`(${os.cpus().length} CPUs; load average at the start of each run shown)\n`);
console.log(
  '| Suite | Wall time, median (min–max) | Vitest "tests", median (min–max) | Passed | Load |',
);
console.log('| --- | --- | --- | --- | --- |');
for (const suite of SUITES) {
  const rs = runs[suite];
  const label = suite === 'harness' ? 'today (test/helpers.ts harness)' : 'keel/testing (testApp)';
  console.log(
    `| ${label} | ${spread(rs.map((r) => r.wallMs))} | ${spread(rs.map((r) => r.testsMs))} | ` +
      `${rs.map((r) => r.passed).join(', ')} | ${rs.map((r) => r.load.toFixed(1)).join(', ')} |`,
  );
}
