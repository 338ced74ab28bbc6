import { service } from '../../src/index.js';
import { wants } from './faults.js';

/** The suite the runner executes against staging. */
export const SUITE = ['health check', 'login', 'search', 'checkout', 'refund'] as const;

/** A test run's report: kept in the deployment's logs whatever the outcome. */
export interface TestReport {
  environment: string;
  version: string;
  passed: string[];
  failed: string[];
}

/**
 * The integration test runner (a stateless service): runs {@link SUITE} against an
 * environment and reports. A failing suite is a normal answer, not an error: the saga decides.
 *
 * The suite fails (`checkout` and `refund`) when the image tag contains `failing-tests`.
 */
export const DeployTestRunner = service({
  name: 'DeployTestRunner',
  handlers: {
    /** Runs the suite against an environment. */
    run: async (_ctx, req: { environment: string; version: string; imageTag: string }) => {
      const failing = wants(req.imageTag, 'integrationTests') ? ['checkout', 'refund'] : [];
      const report: TestReport = {
        environment: req.environment,
        version: req.version,
        passed: SUITE.filter((t) => !failing.includes(t)),
        failed: failing,
      };
      return report;
    },
  },
});
