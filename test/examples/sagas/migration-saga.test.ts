import { afterEach, describe, expect, it } from 'vitest';
import {
  MigrationRouter,
  MigrationSaga,
  MigrationTarget,
  migrationSaga,
  type MigrationResult,
} from '../../../examples/migration-saga/index.js';
import { testApp, type TestApp } from '../../../src/testing/index.js';

/**
 * Exercise 6 (Microservices Migration Saga): dual-write, 100 batches with a 1-minute sleep
 * between them (on the fake clock), verification, and the traffic switch as the point of no
 * return: compensation before it, manual intervention when it fails, forward recovery after.
 */
let t: TestApp | undefined;
afterEach(() => t?.close());

// Waiting a minute between batches, the migration stays in memory (suspending after every
// batch would replay a growing journal a hundred times: correct, but slow for a test).
const start = async (): Promise<TestApp> =>
  (t = await testApp({ services: migrationSaga, suspendAfter: '2m' }));

const begin = (migrationId: string, serviceId: string, totalRecords = 1000) =>
  t!.workflowSend(MigrationSaga, migrationId).run({ migrationId, serviceId, totalRecords });
const progress = (id: string) => t!.workflow(MigrationSaga, id).progress();
const router = (serviceId: string) => t!.object(MigrationRouter, serviceId).state();
const copied = (serviceId: string) => t!.object(MigrationTarget, serviceId).progress();

/** Runs the migration to its end, skipping the fake clock from timer to timer. */
async function finish(id: string): Promise<MigrationResult> {
  await t!.runUntilIdle({ skipTime: true });
  return t!.attach<MigrationResult>(id);
}

describe('MigrationSaga (seed 002, exercise 6)', () => {
  it('copies 100 batches a minute apart under dual-write, verifies, switches, shuts the old system down', async () => {
    const { clock } = await start();
    const startedAt = clock.now();
    const id = await begin('mig-1', 'svc-orders', 10_000);
    await t!.idle();
    expect((await progress('mig-1')).batchesMigrated).toBe(1);
    // One batch per minute: after each minute exactly one more, never all at once.
    for (let minute = 1; minute <= 5; minute++) {
      await t!.advance('1m');
      expect((await progress('mig-1')).batchesMigrated).toBe(minute + 1);
    }
    expect(await router('svc-orders')).toMatchObject({ dualWrite: true, traffic: 'old' });
    expect(await copied('svc-orders')).toMatchObject({ batches: 6, records: 600 });

    expect(await finish(id)).toMatchObject({
      status: 'completed',
      batchesMigrated: 100,
      shutdownRetries: 0,
      verification: { consistent: true, recordsMigrated: 10_000, mismatchedBatches: [] },
    });
    expect(clock.now() - startedAt).toBeGreaterThanOrEqual(99 * 60_000); // 99 pauses
    expect(await router('svc-orders')).toMatchObject({
      dualWrite: false,
      traffic: 'new',
      oldSystem: 'disabled',
      events: ['dual-write on', 'traffic → new', 'old system off'],
    });
    expect(await copied('svc-orders')).toMatchObject({ batches: 100, records: 10_000, replays: 0 });
  });

  it('a failed batch disables dual-write and drops the partial copy', async () => {
    await start();
    expect(await finish(await begin('mig-b', 'svc-fail-batch'))).toMatchObject({
      status: 'migration_failed',
      batchesMigrated: 42, // batches 0-41 were copied, 42 failed
      reason: 'batch_failed',
      compensated: ['prepare target', 'enable dual-write'],
    });
    expect(await router('svc-fail-batch')).toMatchObject({
      dualWrite: false,
      traffic: 'old',
      oldSystem: 'running',
      events: ['dual-write on', 'dual-write off'],
    });
    expect(await copied('svc-fail-batch')).toMatchObject({ batches: 0 });
  });

  it('a failed verification is compensated the same way', async () => {
    await start();
    expect(await finish(await begin('mig-v', 'svc-corrupt'))).toMatchObject({
      status: 'verification_failed',
      batchesMigrated: 100,
      reason: 'verification_failed',
      message: expect.stringContaining('batches 7'),
      compensated: ['prepare target', 'enable dual-write'],
    });
    expect(await router('svc-corrupt')).toMatchObject({ dualWrite: false, traffic: 'old' });
  });

  it('a failed traffic switch is not rolled back: manual intervention, dual-write kept', async () => {
    await start();
    const id = await begin('mig-s', 'svc-fail-switch');
    expect(await finish(id)).toMatchObject({
      status: 'manual_intervention_required',
      reason: 'switch_failed',
      verification: { consistent: true },
    });
    expect(await router('svc-fail-switch')).toMatchObject({
      dualWrite: true,
      traffic: 'old',
      oldSystem: 'running',
    });
    expect(await copied('svc-fail-switch')).toMatchObject({ batches: 100 });
    expect(t!.logs.some((l) => l.message.includes('manual intervention needed'))).toBe(true);
    expect((await t!.engine.getInvocation(id))?.outcome).toBe('completed');
  });

  it('after the switch only recovers forward: the shutdown is retried until it succeeds', async () => {
    await start();
    expect(await finish(await begin('mig-f', 'svc-stubborn-old'))).toMatchObject({
      status: 'completed',
      shutdownRetries: 2,
    });
    expect(await router('svc-stubborn-old')).toMatchObject({
      traffic: 'new',
      oldSystem: 'disabled',
      shutdownAttempts: 2,
      events: ['dual-write on', 'traffic → new', 'old system off'], // never back to old
    });
  });

  it('continues where it was after a restart, copying no batch twice', async () => {
    await start();
    const id = await begin('mig-r', 'svc-users');
    await t!.idle();
    expect((await progress('mig-r')).batchesMigrated).toBe(1);
    // Minute by minute, ten more batches; then the app restarts (as a deploy) mid-migration.
    for (let minute = 1; minute <= 10; minute++) {
      await t!.advance('1m');
      expect((await progress('mig-r')).batchesMigrated).toBe(minute + 1);
    }
    t = await t!.restartApp();
    expect(await finish(id)).toMatchObject({
      status: 'completed',
      verification: { consistent: true, recordsMigrated: 1000 },
    });
    expect(await copied('svc-users')).toMatchObject({ batches: 100, replays: 0 });
  });
});
