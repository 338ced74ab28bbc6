import { configDefaults, defineConfig } from 'vitest/config';

/**
 * Unit tests of the sources (src/) that touch no process-wide state: they share one module graph
 * per worker (`isolate: false`), which spares each file a fresh import of Keel and its
 * dependencies (the 50 files of src/ run in half the time). Files that set globals (a tracer
 * provider, a fetch, process.env, fake timers) stay isolated; a new file that does belongs here.
 */
const STATEFUL_UNITS = [
  'src/ingress/ingress.test.ts',
  'src/integrations/declarations/secrets.test.ts',
  'src/observability/log.test.ts',
];

export default defineConfig({
  test: {
    // Finds (or starts) the PostgreSQL server the storage tests run against.
    globalSetup: ['test/setup/postgres.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    // Vitest's default on 2 cores is 1 worker; most files wait on child processes, brokers and
    // databases rather than compute, so 2 workers halve the wall time (784 s → 460 s here).
    maxWorkers: 2,
    projects: [
      {
        extends: true,
        test: {
          name: 'units',
          include: ['src/**/*.test.ts'],
          exclude: [...configDefaults.exclude, ...STATEFUL_UNITS],
          isolate: false,
        },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: [...STATEFUL_UNITS, 'test/**/*.test.ts', 'examples/**/*.test.ts'],
          // The Jest example is Jest's to run (test/testing/runners.test.ts starts it).
          exclude: [...configDefaults.exclude, 'examples/**/*.jest.test.ts'],
        },
      },
    ],
  },
});
