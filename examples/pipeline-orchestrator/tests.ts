/**
 * TestService of the CI/CD exercise: one object per pipeline run, holding the result of each
 * suite it ran (unit tests against the commit, integration tests against staging).
 */
import { object, shared, TerminalError, type ObjectContext } from '../../src/index.js';
import { STALL_FOR, type Simulation } from '../orchestration-kit/simulate.js';

/** How long a suite takes. */
export const SUITE_TIME = { unit: '1s', integration: '1s' } as const;
/** How many tests each suite has. */
const SIZE = { unit: 240, integration: 36 } as const;

/** The result of one suite run. */
export interface SuiteResult {
  suite: 'unit' | 'integration';
  passed: number;
  failed: number;
  startedAt: string;
  finishedAt: string;
}

/** Test runs per pipeline id: run a suite (once per suite), read. */
export const PipelineTests = object({
  name: 'PipelineTests',
  handlers: {
    /** Runs one suite; a suite that fails fails the call (`tests_failed`). */
    run: async (
      ctx: ObjectContext,
      req: { suite: 'unit' | 'integration'; commit: string; simulate?: Simulation },
    ): Promise<SuiteResult> => {
      const results = (await ctx.get<Record<string, SuiteResult>>('results')) ?? {};
      const done = results[req.suite];
      if (done && done.failed === 0) return done;
      if (done) throw failed(done);
      const startedAt = new Date(await ctx.now()).toISOString();
      await ctx.sleep(SUITE_TIME[req.suite]);
      // A failing suite is not an error of the service: it reports failures.
      if (req.simulate === 'stall') await ctx.sleep(STALL_FOR);
      const failures = req.simulate === 'fail' ? 3 : 0;
      const result: SuiteResult = {
        suite: req.suite,
        passed: SIZE[req.suite] - failures,
        failed: failures,
        startedAt,
        finishedAt: new Date(await ctx.now()).toISOString(),
      };
      // A failed run is recorded too: it is part of the pipeline's story.
      ctx.set('results', { ...results, [req.suite]: result });
      if (failures > 0) throw failed(result);
      return result;
    },

    /** Every suite run, by suite. */
    results: shared(async (ctx) => (await ctx.get<Record<string, SuiteResult>>('results')) ?? {}),
  },
});

function failed(r: SuiteResult): TerminalError {
  return new TerminalError(
    `${r.failed} of ${r.passed + r.failed} ${r.suite} tests failed (simulated)`,
    { code: 'tests_failed', status: 422 },
  );
}
