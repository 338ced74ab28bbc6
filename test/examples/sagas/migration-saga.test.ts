import { afterEach, describe, expect, it } from 'vitest';
import {
  MigrationRouter,
  MigrationSaga,
  MigrationTarget,
  migrationSaga,
  type MigrationResult,
} from '../../../examples/migration-saga/index.js';
import { harness, until, type Harness } from '../../helpers.js';

/**
 * Exercise 6 (Microservices Migration Saga): dual-write, 100 batches with a 1-minute sleep
 * between them (on the fake clock), verification, and the traffic switch as the point of no
 * return: compensation before it, manual intervention when it fails, forward recovery after.
 */
let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

// Waiting a minute between batches, the migration stays in memory (suspending after every
// batch would replay a growing journal a hundred times: correct, but slow for a test).
const start = async (): Promise<Harness> =>
  (h = await harness({ services: migrationSaga, suspendAfter: '2m' }));

const begin = (migrationId: string, serviceId: string, totalRecords = 1000) =>
  h!.engine.send({
    service: 'MigrationSaga',
    handler: 'run',
    key: migrationId,
    input: { migrationId, serviceId, totalRecords },
  });
const progress = (id: string) => h!.engine.client(MigrationSaga, id).progress();
const router = (serviceId: string) => h!.engine.client(MigrationRouter, serviceId).state();
const copied = (serviceId: string) => h!.engine.client(MigrationTarget, serviceId).progress();

/** Moves the fake clock on, ten minutes at a time, until the invocation has finished. */
async function finish(invocationId: string): Promise<MigrationResult> {
  for (let step = 0; step < 100; step++) {
    const info = await h!.engine.getInvocation(invocationId);
    if (info?.status === 'completed' || info?.status === 'failed') break;
    await h!.clock.advance('10m');
  }
  return (await h!.engine.attach(invocationId)) as MigrationResult;
}

describe('MigrationSaga (seed 002, exercise 6)', () => {
  it('copies 100 batches a minute apart under dual-write, verifies, switches, shuts the old system down', async () => {
    const { clock } = await start();
    const startedAt = clock.now();
    const run = await begin('mig-1', 'svc-orders', 10_000);
    await until(async () => (await progress('mig-1')).batchesMigrated === 1, 'first batch');
    // One batch per minute: after each minute exactly one more, never all at once.
    for (let minute = 1; minute <= 5; minute++) {
      await clock.advance('1m');
      await until(
        async () => (await progress('mig-1')).batchesMigrated === minute + 1,
        `batch ${minute + 1}`,
      );
    }
    expect(await router('svc-orders')).toMatchObject({ dualWrite: true, traffic: 'old' });
    expect(await copied('svc-orders')).toMatchObject({ batches: 6, records: 600 });

    const result = await finish(run.invocationId);
    expect(result).toMatchObject({
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
    const run = await begin('mig-b', 'svc-fail-batch');
    expect(await finish(run.invocationId)).toMatchObject({
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
    const run = await begin('mig-v', 'svc-corrupt');
    expect(await finish(run.invocationId)).toMatchObject({
      status: 'verification_failed',
      batchesMigrated: 100,
      reason: 'verification_failed',
      message: expect.stringContaining('batches 7'),
      compensated: ['prepare target', 'enable dual-write'],
    });
    expect(await router('svc-corrupt')).toMatchObject({ dualWrite: false, traffic: 'old' });
  });

  it('a failed traffic switch is not rolled back: manual intervention, dual-write kept', async () => {
    const { engine } = await start();
    const run = await begin('mig-s', 'svc-fail-switch');
    expect(await finish(run.invocationId)).toMatchObject({
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
    expect(h!.logs.some((l) => l.includes('manual intervention needed'))).toBe(true);
    expect((await engine.getInvocation(run.invocationId))?.outcome).toBe('completed');
  });

  it('after the switch only recovers forward: the shutdown is retried until it succeeds', async () => {
    await start();
    const run = await begin('mig-f', 'svc-stubborn-old');
    expect(await finish(run.invocationId)).toMatchObject({
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
    const { clock } = await start();
    const run = await begin('mig-r', 'svc-users');
    // Minute by minute, each batch seen before the clock moves on (one long advance would
    // outrun a loaded machine: a batch's next sleep starts after the advance has passed it).
    await until(async () => (await progress('mig-r')).batchesMigrated === 1, 'first batch');
    for (let minute = 1; minute <= 10; minute++) {
      await clock.advance('1m');
      await until(
        async () => (await progress('mig-r')).batchesMigrated === minute + 1,
        `batch ${minute + 1}`,
      );
    }
    await h!.restart();
    expect(await finish(run.invocationId)).toMatchObject({
      status: 'completed',
      verification: { consistent: true, recordsMigrated: 1000 },
    });
    expect(await copied('svc-users')).toMatchObject({ batches: 100, replays: 0 });
  });
});
