import { defineConfig } from 'vitest/config';
import full from './vitest.config.js';

/**
 * `npm run test:unit`: the tests that run inside the test process on real SQLite files and
 * loopback HTTP, without the PostgreSQL global setup (`vitest.config.ts`, which `npm test` uses
 * for everything).
 *
 * Left out: tests that need PostgreSQL (`inject('postgresUrl')`), and tests that start child
 * processes (crash and kill tests, the fuzz and torture runs). A new test file belongs here when
 * it needs neither.
 */
// One project here: the list below, isolated as `npm test`'s integration project is.
const { projects: _projects, ...shared } = full.test ?? {};

export default defineConfig({
  test: {
    ...shared,
    globalSetup: [],
    include: [
      'src/**/*.test.ts',
      'test/acknowledged.test.ts',
      'test/combinator-losers.test.ts',
      'test/dropped-writes.test.ts',
      'test/engine.test.ts',
      'test/awakeable-first-entry.test.ts',
      'test/error-classes.test.ts',
      'test/extension.test.ts',
      'test/lost-answer.test.ts',
      'test/recovery-isolation.test.ts',
      'test/saga-in-doubt.test.ts',
      'test/sleep-bad-duration.test.ts',
      'test/waiting.test.ts',
      'test/examples/orchestrators/*.test.ts',
      'test/examples/sagas/*.test.ts',
      'test/examples/order-notifications/*.test.ts',
      'test/examples/fulfillment/*.test.ts',
      'test/examples/webhook-aggregator/aggregator.test.ts',
      'test/examples/github-deployment/deployment.test.ts',
      'test/examples/github-deployment/real-http.test.ts',
      'test/examples/integration-patterns/*.test.ts',
      'test/admin-roles/*.test.ts',
      'test/fuzz/*.test.ts',
      'test/torture/checker.test.ts',
      'test/ingress/*.test.ts',
      'test/integrations/*.test.ts',
      'test/integrations/connectors/*.test.ts',
      'test/webhooks/*.test.ts',
      'test/testing/*.test.ts',
      'examples/testing/*.test.ts',
    ],
    exclude: [
      '**/node_modules/**',
      'examples/**/*.jest.test.ts',
      // Child processes.
      'test/**/crash.test.ts',
      'test/testing/runners.test.ts',
      'test/ingress/edges.test.ts',
      'test/integrations/idempotency-crash.test.ts',
      // PostgreSQL.
      'test/ingress/dedupe.test.ts',
      'test/integrations/shared-breaker.test.ts',
      'test/webhooks/postgres.test.ts',
    ],
  },
});
