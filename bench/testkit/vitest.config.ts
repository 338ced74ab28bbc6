import { defineConfig } from 'vitest/config';

/**
 * The test-kit comparison (README.md here): `SUITE=harness` or `SUITE=kit` picks the suite.
 * The same pool and workers as `npm test`'s integration project; no PostgreSQL setup.
 */
const suite = process.env.SUITE ?? 'kit';

export default defineConfig({
  test: {
    include: [`bench/testkit/${suite}/*.test.ts`],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    maxWorkers: 2,
  },
});
