/**
 * examples/migration-saga (seed 002, exercise 6): 100 batches a minute apart, run to the end
 * (harness: the clock moved ten minutes at a time, as test/examples/sagas/ does; kit:
 * `runUntilIdle({ skipTime: true })`).
 */
import { expect } from 'vitest';
import {
  MigrationRouter,
  MigrationSaga,
  MigrationTarget,
  migrationSaga,
} from '../../../examples/migration-saga/index.js';
import type { Driver, Scenario } from '../driver.js';

const services = migrationSaga;
// Waiting a minute between batches, the migration stays in memory (as in test/examples/sagas/).
const options = { suspendAfter: '2m' as const };

const begin = (d: Driver, migrationId: string, serviceId: string, totalRecords = 1000) =>
  d.engine.send({
    service: 'MigrationSaga',
    handler: 'run',
    key: migrationId,
    input: { migrationId, serviceId, totalRecords },
  });
const router = (d: Driver, serviceId: string) =>
  d.engine.client(MigrationRouter, serviceId).state();
const copied = (d: Driver, serviceId: string) =>
  d.engine.client(MigrationTarget, serviceId).progress();

export const migrationScenarios: Scenario[] = [
  {
    name: 'a failed batch disables dual-write and drops the partial copy',
    services,
    options,
    async run(d) {
      const run = await begin(d, 'mig-b', 'svc-fail-batch');
      expect(await d.finish(run.invocationId, '10m')).toMatchObject({
        status: 'migration_failed',
        batchesMigrated: 42,
        reason: 'batch_failed',
        compensated: ['prepare target', 'enable dual-write'],
      });
      expect(await router(d, 'svc-fail-batch')).toMatchObject({
        dualWrite: false,
        traffic: 'old',
        oldSystem: 'running',
        events: ['dual-write on', 'dual-write off'],
      });
      expect(await copied(d, 'svc-fail-batch')).toMatchObject({ batches: 0 });
    },
  },
  {
    name: 'a failed verification is compensated the same way',
    services,
    options,
    async run(d) {
      const run = await begin(d, 'mig-v', 'svc-corrupt');
      expect(await d.finish(run.invocationId, '10m')).toMatchObject({
        status: 'verification_failed',
        batchesMigrated: 100,
        reason: 'verification_failed',
        message: expect.stringContaining('batches 7'),
        compensated: ['prepare target', 'enable dual-write'],
      });
      expect(await router(d, 'svc-corrupt')).toMatchObject({ dualWrite: false, traffic: 'old' });
    },
  },
  {
    name: 'a failed traffic switch is not rolled back: manual intervention, dual-write kept',
    services,
    options,
    async run(d) {
      const run = await begin(d, 'mig-s', 'svc-fail-switch');
      expect(await d.finish(run.invocationId, '10m')).toMatchObject({
        status: 'manual_intervention_required',
        reason: 'switch_failed',
        verification: { consistent: true },
      });
      expect(await router(d, 'svc-fail-switch')).toMatchObject({ dualWrite: true, traffic: 'old' });
      expect(await copied(d, 'svc-fail-switch')).toMatchObject({ batches: 100 });
      expect(d.logs().some((l) => l.includes('manual intervention needed'))).toBe(true);
      expect((await d.engine.getInvocation(run.invocationId))?.outcome).toBe('completed');
    },
  },
  {
    name: 'after the switch only recovers forward: the shutdown is retried until it succeeds',
    services,
    options,
    async run(d) {
      const run = await begin(d, 'mig-f', 'svc-stubborn-old');
      expect(await d.finish(run.invocationId, '10m')).toMatchObject({
        status: 'completed',
        shutdownRetries: 2,
      });
      expect(await router(d, 'svc-stubborn-old')).toMatchObject({
        traffic: 'new',
        oldSystem: 'disabled',
        shutdownAttempts: 2,
        events: ['dual-write on', 'traffic → new', 'old system off'],
      });
    },
  },
  {
    name: 'continues where it was after a restart, copying no batch twice',
    services,
    options,
    async run(d) {
      const run = await begin(d, 'mig-r', 'svc-users');
      const progress = () => d.engine.client(MigrationSaga, 'mig-r').progress();
      await d.waitFor(async () => (await progress()).batchesMigrated === 1, 'first batch');
      await d.driveUntil(async () => (await progress()).batchesMigrated >= 5, 'five batches', '1m');
      await d.restart();
      expect(await d.finish(run.invocationId, '10m')).toMatchObject({
        status: 'completed',
        verification: { consistent: true, recordsMigrated: 1000 },
      });
      expect(await copied(d, 'svc-users')).toMatchObject({ batches: 100, replays: 0 });
    },
  },
];
