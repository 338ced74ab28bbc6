import { z } from 'zod';
import {
  CancelledError,
  handler,
  saga,
  TerminalError,
  workflow,
  type Duration,
  type WorkflowContext,
  type WorkflowSharedContext,
} from '../../src/index.js';
import { body, count, duration, idMatchingKey, keyId, text } from '../saga-kit/input.js';
import { MigrationRouter } from './router.js';
import { MigrationTarget, type VerificationReport } from './target.js';

/** The historical data is copied in this many batches. */
export const BATCHES = 100;
/** The pause between two batches, unless the request gives `batchPause`. */
export const DEFAULT_BATCH_PAUSE = '1m';
/** After the point of no return, a failed step is retried this often (unless the request gives `retryInterval`), forever. */
export const FORWARD_RETRY_INTERVAL = '5m';

/** The body of `POST /MigrationSaga/{migrationId}/run`. */
export const MigrationInput = body(
  {
    /** May repeat the URL key; defaults to it. */
    migrationId: keyId(),
    serviceId: text(),
    totalRecords: count(),
    batchPause: duration().optional(),
    retryInterval: duration().optional(),
  },
  '{"serviceId":"svc-orders","totalRecords":10000}',
);
export type MigrationInput = z.infer<typeof MigrationInput>;

/** A migration request, as the saga runs it (the id resolved from the URL key). */
export interface Migration {
  migrationId: string;
  serviceId: string;
  totalRecords: number;
  /** The pause between batches (default `1m`), e.g. `"100ms"` to try it by hand. */
  batchPause?: Duration;
  /** The pause between two attempts to shut the old system down (default `5m`). */
  retryInterval?: Duration;
}

/** How a migration ended. */
export interface MigrationResult {
  status:
    | 'completed'
    | 'failed'
    | 'migration_failed'
    | 'verification_failed'
    | 'manual_intervention_required'
    | 'compensation_failed';
  batchesMigrated: number;
  verification?: VerificationReport;
  reason?: string;
  message?: string;
  /** The steps undone, in the order they were undone. */
  compensated?: string[];
  /** Failed attempts to shut the old system down, each retried (forward recovery). */
  shutdownRetries?: number;
}

type Phase = 'dual_write' | 'migrating' | 'verifying' | 'switching' | 'decommissioning' | 'done';

/** How a compensated migration is reported, by the phase that failed. */
const FAILED_IN: Record<Phase, MigrationResult['status']> = {
  dual_write: 'failed',
  migrating: 'migration_failed',
  verifying: 'verification_failed',
  switching: 'failed',
  decommissioning: 'failed',
  done: 'failed',
};

/**
 * Exercise 6: a zero-downtime data migration, long-running (100 batches with a pause between
 * each: 99 minutes by default). Enable dual-write → copy the historical data in batches →
 * verify → switch the traffic → shut the old system down.
 *
 * Up to the verification it is a saga: a failed batch or a failed verification disables
 * dual-write and drops the partial copy, and the old system never noticed. Switching the
 * traffic is the point of no return. If the switch itself fails, nothing is undone (both
 * systems are still consistent thanks to dual-write) and a person decides:
 * `manual_intervention_required`. After it, there is no going back, only forward: shutting the
 * old system down is retried every 5 minutes until it succeeds.
 *
 * Each batch copy is idempotent by batch number, and the loop's position is in the journal:
 * after a crash the migration continues with the batch it was at, without copying any twice.
 *
 * @example
 * ```sh
 * curl -X POST http://localhost:9080/MigrationSaga/mig-001/run -H 'Content-Type: application/json' \
 *   -d '{"migrationId":"mig-001","serviceId":"svc-orders","totalRecords":10000,"batchPause":"100ms"}'
 * ```
 */
export const MigrationSaga = workflow({
  name: 'MigrationSaga',
  run: handler(
    { input: MigrationInput },
    async (ctx: WorkflowContext, input): Promise<MigrationResult> => {
      // Before the first step: a contradicting id fails the run with nothing done (key released).
      const { batchPause, retryInterval, ...fields } = input;
      const m: Migration = {
        ...fields,
        migrationId: idMatchingKey(input.migrationId, 'migrationId', ctx.key),
      };
      if (batchPause !== undefined) m.batchPause = batchPause;
      if (retryInterval !== undefined) m.retryInterval = retryInterval;
      const router = ctx.objectClient(MigrationRouter, m.serviceId);
      const target = ctx.objectClient(MigrationTarget, m.serviceId);
      const batchSize = Math.ceil(m.totalRecords / BATCHES);

      const at: { phase: Phase; batches: number } = { phase: 'dual_write', batches: 0 };
      const enter = (next: Phase): void => {
        at.phase = next;
        ctx.set('phase', next);
      };

      const outcome = await saga(ctx, async (s) => {
        enter('dual_write');
        await s.invoke('enable dual-write', () => router.enableDualWrite(), {
          undo: () => router.disableDualWrite(),
        });

        enter('migrating');
        // A failed migration must not leave half a copy behind: the next attempt starts clean.
        await s.invoke(
          'prepare target',
          () => target.begin({ totalRecords: m.totalRecords, batchSize }),
          {
            undo: () => target.purge(),
          },
        );
        for (let batch = 0; batch < BATCHES; batch++) {
          const first = batch * batchSize;
          const count = Math.max(0, Math.min(batchSize, m.totalRecords - first));
          await target.copyBatch({ batch, first, count });
          at.batches = batch + 1;
          ctx.set('batchesMigrated', at.batches);
          // Let the old system breathe between batches (a durable timer: nothing held meanwhile).
          if (batch < BATCHES - 1) await ctx.sleep(m.batchPause ?? DEFAULT_BATCH_PAUSE);
        }

        enter('verifying');
        const report = await target.verify({ batches: BATCHES });
        if (!report.consistent) {
          throw new TerminalError(
            `the new system differs from the old one: batches ${[...report.missingBatches, ...report.mismatchedBatches].join(', ')}`,
            { code: 'verification_failed', status: 409 },
          );
        }
        return report;
      });

      if (outcome.status !== 'completed') {
        ctx.set('outcome', outcome.status);
        return {
          status: outcome.status === 'compensated' ? FAILED_IN[at.phase] : 'compensation_failed',
          batchesMigrated: at.batches,
          reason: outcome.error.code,
          message: outcome.error.message,
          compensated: outcome.compensated,
        };
      }
      const verification = outcome.value;

      // ---- the point of no return -----------------------------------------------------------
      enter('switching');
      try {
        await router.switchTraffic();
      } catch (err) {
        if (!(err instanceof TerminalError) || err instanceof CancelledError) throw err;
        // The switch may have half happened: rolling back blind could lose writes. Dual-write
        // stays on, so both systems stay consistent while a person looks.
        ctx.log.error(`Traffic switch failed - manual intervention needed: ${err.message}`);
        ctx.set('outcome', 'manual_intervention_required');
        return {
          status: 'manual_intervention_required',
          batchesMigrated: at.batches,
          verification,
          reason: err.code,
          message: err.message,
        };
      }

      // Forward recovery: the new system serves the traffic, so the only way is on.
      enter('decommissioning');
      let shutdownRetries = 0;
      for (;;) {
        try {
          await router.disableOldSystem();
          break;
        } catch (err) {
          if (!(err instanceof TerminalError) || err instanceof CancelledError) throw err;
          shutdownRetries++;
          const pause = m.retryInterval ?? FORWARD_RETRY_INTERVAL;
          ctx.log.warn(`old system not shut down yet (${err.message}); retrying in ${pause}`);
          await ctx.sleep(pause);
        }
      }

      enter('done');
      ctx.set('outcome', 'completed');
      return { status: 'completed', batchesMigrated: at.batches, verification, shutdownRetries };
    },
  ),

  handlers: {
    /** The phase and how many batches are copied. */
    progress: async (ctx: WorkflowSharedContext) => ({
      migrationId: ctx.key,
      phase: (await ctx.get<Phase>('phase')) ?? 'not started',
      batchesMigrated: (await ctx.get<number>('batchesMigrated')) ?? 0,
      outcome: (await ctx.get<string>('outcome')) ?? null,
    }),
  },
});
