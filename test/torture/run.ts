/**
 * `npm run torture -- [--store sqlite|postgres] [--minutes N] [--ops N] [--seed S]
 *                     [--processes N] [--rate N] [--pg-restart proxy|real|none] [--no-stalls]
 *                     [--keep]`
 *
 * Runs the randomized torture harness (see runner.ts) and prints the summary table; exits 1 on
 * any violated invariant, printing the seed and the command that replays it.
 *
 * SIGINT (Ctrl-C), SIGTERM or SIGHUP ends the run: every app process is killed and the private
 * PostgreSQL server (`--pg-restart real`) stopped before the exit (130 / 143 / 129). So does the
 * end of the process that launched it: `npm run` answers a SIGTERM by passing it to its `sh -c`,
 * which dies without passing it on, so the harness watches its launchers instead. Further
 * signals while it stops are ignored (npm passes the terminal's Ctrl-C on a second time); if
 * stopping takes over 30 s it exits anyway, and the exit hooks still kill the apps and the server
 * (a SIGKILL of the harness is covered by the apps' lifelines and the server's watchdog).
 */
import { readFileSync } from 'node:fs';
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
    'no-stalls': { type: 'boolean', default: false },
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
  stalls: !values['no-stalls'],
  progress: (line) => console.log(line),
};

const controller = new AbortController();
const EXIT = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129, launcher: 143 } as const;
let signalled: keyof typeof EXIT | undefined;
function stopRun(why: keyof typeof EXIT): void {
  if (signalled) return;
  signalled = why;
  console.error(
    `\ntorture: ${why === 'launcher' ? 'the process that launched the run ended' : why}: stopping every process`,
  );
  controller.abort(new Error(`interrupted (${why})`));
  setTimeout(() => {
    console.error('torture: stopping took over 30 s: exiting (the exit hooks kill what is left)');
    process.exit(EXIT[why]);
  }, 30_000).unref();
}
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, () => stopRun(sig));

/** The parent of a process, from /proc (Linux); undefined where that cannot be read. */
function parentOf(pid: number): number | undefined {
  try {
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so from the last ')'.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return undefined;
  }
}
// Our parent (tsx) and its parent (npm's sh, or a shell): if either ends, so does the run.
const launchers = [process.ppid, parentOf(process.ppid)];
setInterval(() => {
  const now = [process.ppid, parentOf(process.ppid)];
  if (launchers[1] !== undefined && (now[0] !== launchers[0] || now[1] !== launchers[1]))
    stopRun('launcher');
}, 1000).unref();

let result;
try {
  result = await runTorture({ ...options, signal: controller.signal });
} catch (err) {
  if (signalled) {
    console.error(`torture: stopped (seed ${seed}); nothing left running`);
    process.exit(EXIT[signalled]);
  }
  console.error(`torture: the run failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(2);
}
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
