import { randomBytes } from 'node:crypto';
import { describe, expect, inject, it } from 'vitest';
import { formatProblems, formatSummary } from './torture/report.js';
import { runTorture, type TortureOptions } from './torture/runner.js';

/**
 * A short run of the torture harness (test/torture/) on each store: random programs over the
 * public API, `kill -9` at random moments (and, on PostgreSQL, the database taken away), then
 * every invariant checked. A new seed every run; pin one with KEEL_TORTURE_SEED=<seed>. Longer
 * runs: `npm run torture -- --store sqlite|postgres --minutes 30`.
 */
const seed = process.env.KEEL_TORTURE_SEED ?? randomBytes(4).toString('hex');

async function tortured(options: Omit<TortureOptions, 'seed'>): Promise<void> {
  console.log(`torture ${options.store}: seed ${seed} (pin it with KEEL_TORTURE_SEED=${seed})`);
  const result = await runTorture({ ...options, seed });
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
    });
  }, 240_000);
});
