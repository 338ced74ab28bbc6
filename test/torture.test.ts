import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { findPgBinaries } from './torture/postgres.js';
import { formatProblems, formatSummary } from './torture/report.js';
import { runTorture, type TortureOptions } from './torture/runner.js';

/**
 * A short run of the torture harness (test/torture/) on each store: random programs over the
 * public API, `kill -9` at random moments (and, on PostgreSQL, the database taken away), then
 * every invariant checked. A new seed every run; pin one with KEEL_TORTURE_SEED=<seed>. Longer
 * runs: `npm run torture -- --store sqlite|postgres --minutes 30`.
 */
const seed = process.env.KEEL_TORTURE_SEED ?? randomBytes(4).toString('hex');

/**
 * The run of the current test. A test cut by its timeout leaves its run going: afterEach aborts
 * it and waits until every app process (and server) it started is gone, so nothing outlives the
 * test (a worker killed outright is covered by the harness's own lifelines, test/torture/).
 */
let current: { controller: AbortController; run: Promise<unknown> } | undefined;
afterEach(async () => {
  if (!current) return;
  const { controller, run } = current;
  current = undefined;
  controller.abort(new Error('the test ended before its torture run (timeout?)'));
  await run.catch(() => undefined);
});

async function tortured(options: Omit<TortureOptions, 'seed'>): Promise<void> {
  console.log(`torture ${options.store}: seed ${seed} (pin it with KEEL_TORTURE_SEED=${seed})`);
  if (options.stalls === false)
    console.log(
      `torture ${options.store}: no stalls in this short run, which gates CI (the long runs have them: npm run torture; see test/torture/README.md)`,
    );
  const controller = new AbortController();
  const run = runTorture({ ...options, seed, signal: controller.signal });
  current = { controller, run };
  const result = await run;
  console.log(formatSummary(result));
  // The run must have been tortured, or it proves nothing.
  expect(result.kills, `seed ${seed}: no process was killed`).toBeGreaterThan(0);
  expect(result.invocations, `seed ${seed}: nothing was acknowledged`).toBeGreaterThan(50);
  expect(
    result.problems,
    `seed ${seed} violated invariants (run directory ${result.runDir}); reproduce with ` +
      `KEEL_TORTURE_SEED=${seed} npx vitest run test/torture.test.ts, or ` +
      `npm run torture -- --store ${options.store} --ops ${options.ops} --seed ${seed}\n` +
      formatProblems(result.problems),
  ).toEqual([]);
}

describe('torture (short run)', () => {
  it('SQLite, one process killed at random moments: nothing lost, nothing twice, never down', async () => {
    await tortured({
      store: 'sqlite',
      ops: 150,
      rate: 12,
      faultEvery: [800, 2000],
      quietMs: 40_000,
    });
  }, 240_000);

  it('PostgreSQL, three processes killed and the database dropped: the same, and keys exclusive', async () => {
    await tortured({
      store: 'postgres',
      pgUrl: inject('postgresUrl'),
      ops: 150,
      rate: 12,
      faultEvery: [1500, 3000],
      quietMs: 40_000,
      // Stalls (SIGSTOP past the lease) still find overlaps of one object key on PostgreSQL in
      // long runs (issue 11, open): they run in `npm run torture`, not in this CI-gating run.
      stalls: false,
    });
  }, 240_000);
});

/** Live processes whose command line or environment mentions `text` (Linux: /proc). */
function processesWith(text: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const cmd = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      const env = readFileSync(`/proc/${entry}/environ`, 'utf8');
      if (cmd.includes(text) || env.includes(text)) found.push(Number(entry));
    } catch {
      // Gone meanwhile, or not ours to read.
    }
  }
  return found;
}

/**
 * The processes `processesWith(text)` still finds after they had up to 10 s to exit: a process
 * sent SIGKILL (the server's watchdog shell) stays listed until the kernel schedules its exit,
 * which on a loaded machine can be after the abort returned.
 */
async function gone(text: string): Promise<number[]> {
  const deadline = Date.now() + 10_000;
  let left = processesWith(text);
  while (left.length > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    left = processesWith(text);
  }
  return left;
}

/**
 * Starts a run, aborts it once its processes serve (as a Ctrl-C or a test timeout does), and
 * checks that nothing it started is left: no app process, no PostgreSQL server, no server data.
 */
async function abortedLeavesNothing(options: Omit<TortureOptions, 'seed' | 'ops'>): Promise<void> {
  let runDir: string | undefined;
  let pgDir: string | undefined;
  const controller = new AbortController();
  const run = runTorture({
    ...options,
    seed,
    ops: 1_000_000,
    signal: controller.signal,
    progress: (line) => {
      runDir ??= /run dir (\S+?),?\s/.exec(`${line} `)?.[1];
      pgDir ??= /\(data (\S+)\/data,/.exec(line)?.[1];
    },
  });
  current = { controller, run };
  const until = Date.now() + 90_000;
  const size = options.processes ?? (options.store === 'postgres' ? 3 : 1);
  while (!runDir || processesWith(`TORTURE_LOG=${runDir}/`).length < size) {
    if (Date.now() > until) throw new Error(`the run's processes never all served (${runDir})`);
    await new Promise((r) => setTimeout(r, 200));
  }
  // Let the nemesis work a little: a kill with its restart pending is what leaked before.
  await new Promise((r) => setTimeout(r, 3000));
  controller.abort(new Error('aborted by the test'));
  await expect(run).rejects.toThrow('aborted by the test');
  current = undefined;
  expect(await gone(`TORTURE_LOG=${runDir}/`), `app processes of ${runDir} left`).toEqual([]);
  if (pgDir) {
    expect(await gone(pgDir), `PostgreSQL processes of ${pgDir} left`).toEqual([]);
    expect(existsSync(pgDir), `${pgDir} left`).toBe(false);
  }
  rmSync(runDir, { recursive: true, force: true });
}

function pgBinariesMissing(): string | undefined {
  try {
    findPgBinaries();
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

describe('torture harness: nothing outlives a run', () => {
  const noProc = existsSync('/proc/self/environ') ? undefined : 'no /proc to find processes in';
  it('an aborted SQLite run (Ctrl-C, a test timeout) leaves no app process', async (t) => {
    if (noProc) {
      console.log(`skipped: ${noProc}`);
      t.skip(noProc);
    }
    await abortedLeavesNothing({ store: 'sqlite', faultEvery: [500, 1000] });
  }, 120_000);

  it('an aborted run with real PostgreSQL restarts leaves no app process and no server', async (t) => {
    const missing = noProc ?? pgBinariesMissing();
    if (missing) {
      console.log(`skipped: ${missing}`);
      t.skip(missing);
    }
    await abortedLeavesNothing({ store: 'postgres', pgRestart: 'real', faultEvery: [800, 1500] });
  }, 120_000);
});
