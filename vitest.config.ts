import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts', 'examples/**/*.test.ts'],
    // The Jest example is Jest's to run (test/testing/runners.test.ts starts it).
    exclude: [...configDefaults.exclude, 'examples/**/*.jest.test.ts'],
    // Finds (or starts) the PostgreSQL server the storage tests run against.
    globalSetup: ['test/setup/postgres.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    // Vitest's default on 2 cores is 1 worker; most files wait on child processes, brokers and
    // databases rather than compute, so 2 workers halve the wall time (784 s → 460 s here).
    maxWorkers: 2,
  },
});
