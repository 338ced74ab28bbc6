/**
 * `npm run torture -- [--store sqlite|postgres] [--minutes N] [--ops N] [--seed S]
 *                     [--processes N] [--rate N] [--pg-restart proxy|real|none] [--keep]`
 *
 * Runs the randomized torture harness (see runner.ts) and prints the summary table; exits 1 on
 * any violated invariant, printing the seed and the command that replays it.
 */
import { parseArgs } from 'node:util';
import { randomBytes } from 'node:crypto';
import { formatProblems, formatSummary } from './report.js';
import { runTorture, type TortureOptions } from './runner.js';

const { values } = parseArgs({
  options: {
    store: { type: 'string', default: 'sqlite' },
    minutes: { type: 'string' },
    ops: { type: 'string' },
    seed: { type: 'string' },
    processes: { type: 'string' },
    rate: { type: 'string' },
    'pg-restart': { type: 'string', default: 'proxy' },
    'pg-url': { type: 'string' },
    lease: { type: 'string' },
    keep: { type: 'boolean', default: false },
  },
});

function fail(message: string): never {
  console.error(`torture: ${message}`);
  process.exit(2);
}

function num(name: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0) fail(`--${name} must be a positive number, got "${text}"`);
  return n;
}

const store = values.store;
if (store !== 'sqlite' && store !== 'postgres')
  fail(`--store must be sqlite or postgres, got "${store}"`);
const pgRestart = values['pg-restart'];
if (pgRestart !== 'proxy' && pgRestart !== 'real' && pgRestart !== 'none')
  fail(`--pg-restart must be proxy, real or none, got "${pgRestart}"`);
const minutes = num('minutes', values.minutes);
const ops = num('ops', values.ops) ?? (minutes === undefined ? 500 : undefined);
const seed = values.seed ?? process.env.KEEL_TORTURE_SEED ?? randomBytes(4).toString('hex');

const options: TortureOptions = {
  store,
  seed,
  ...(ops !== undefined ? { ops } : {}),
  ...(minutes !== undefined ? { minutes } : {}),
  ...(values.processes ? { processes: num('processes', values.processes)! } : {}),
  ...(values.rate ? { rate: num('rate', values.rate)! } : {}),
  ...(values['pg-url'] ? { pgUrl: values['pg-url'] } : {}),
  ...(values.lease ? { lease: values.lease } : {}),
  pgRestart,
  keep: values.keep,
  progress: (line) => console.log(line),
};

const result = await runTorture(options);
console.log(`\n${formatSummary(result)}\n`);
if (result.log.zombies.length > 0)
  console.log(`zombie overlaps:\n${result.log.zombies.map((z) => `  - ${z}`).join('\n')}\n`);
if (result.problems.length > 0) {
  console.log(`VIOLATIONS:\n${formatProblems(result.problems)}\n`);
  const size = minutes !== undefined ? `--minutes ${minutes}` : `--ops ${ops}`;
  console.log(
    `seed ${seed}: reproduce with  npm run torture -- --store ${store} ${size} --seed ${seed}` +
      `\nrun directory (execution log, stderr of every process): ${result.runDir}`,
  );
  process.exit(1);
}
console.log(`no violations (seed ${seed})`);
process.exit(0);
