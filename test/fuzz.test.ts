import { describe, expect, it } from 'vitest';
import { describeViolation } from './fuzz/checker.js';
import { freshSeed } from './fuzz/random.js';
import { formatReport } from './fuzz/report.js';
import { runFuzz } from './fuzz/runner.js';

/**
 * A short run of the HTTP fuzzer (`npm run fuzz` runs long): 2,000 random requests to the
 * ingress, the admin API and the webhook receivers of a real app in a child process. A fresh
 * seed each run, printed; KEEL_FUZZ_SEED=<seed> repeats one. A failing seed becomes a
 * regression test at the root of what it found.
 */
describe('HTTP fuzzer (short run)', () => {
  it('keeps the app up, answers no undocumented 5xx, and lets no invalid request change state', async () => {
    const seed = process.env.KEEL_FUZZ_SEED ?? freshSeed();
    console.log(`fuzz seed: ${seed} (repeat with KEEL_FUZZ_SEED=${seed})`);
    const result = await runFuzz({ requests: 2_000, seed });
    console.log(formatReport(result));
    expect(result.checker.requests).toBeGreaterThanOrEqual(2_000);
    // Invalid requests were actually checked against the store, not skipped for want of calm.
    expect(result.invalidChecked).toBeGreaterThan(100);
    // User-token reads were compared with the admin's on a settled store.
    expect(result.twinsCompared).toBeGreaterThan(0);
    expect(result.exit).toBeUndefined();
    expect(result.checker.violations.map(describeViolation), `seed ${seed}`).toEqual([]);
  }, 180_000);
});
