import { z } from 'zod';
import {
  handler,
  object,
  shared,
  TerminalError,
  type ObjectContext,
  type ObjectSharedContext,
} from '../../src/index.js';
import { CORRUPTED_BATCH, FAILING_BATCH, FAULTY_SERVICES } from './faults.js';
import { batchChecksum } from './records.js';

/** What the new system holds of one migrated batch. */
interface Batch {
  first: number;
  count: number;
  checksum: number;
}

interface TargetState {
  totalRecords: number;
  batchSize: number;
  batches: Record<number, Batch>;
  /** Copies answered from the record instead of writing again (a crash test would see > 0). */
  replays: number;
}

/** The outcome of comparing the new system with the old one. */
export interface VerificationReport {
  consistent: boolean;
  recordsMigrated: number;
  missingBatches: number[];
  mismatchedBatches: number[];
}

const load = async (ctx: ObjectSharedContext): Promise<TargetState | undefined> =>
  ctx.get<TargetState>('state');

const mustLoad = async (ctx: ObjectSharedContext): Promise<TargetState> => {
  const state = await load(ctx);
  if (!state) {
    throw new TerminalError(`no migration into the new system of ${ctx.key} was started`, {
      code: 'not_started',
      status: 409,
    });
  }
  return state;
};

/**
 * The new system's copy of one service's data (object keyed by service id). `copyBatch` is
 * idempotent per batch number, so a batch interrupted by a crash is copied again without
 * duplicating records; `purge` drops a partial migration.
 *
 * Fails for the {@link FAULTY_SERVICES} `svc-fail-batch` (batch 42, 422 `batch_failed`);
 * silently corrupts batch 7 of `svc-corrupt`, which `verify` then reports.
 */
export const MigrationTarget = object({
  name: 'MigrationTarget',
  handlers: {
    /** Prepares an empty copy (throwing away any earlier attempt's partial data). */
    begin: handler(
      { input: z.object({ totalRecords: z.number().int(), batchSize: z.number().int() }) },
      async (ctx: ObjectContext, req) => {
        ctx.set('state', { ...req, batches: {}, replays: 0 } satisfies TargetState);
        return { serviceId: ctx.key, ...req };
      },
    ),

    /** Copies one batch of records from the old system. */
    copyBatch: handler(
      {
        input: z.object({
          batch: z.number().int(),
          first: z.number().int(),
          count: z.number().int(),
        }),
      },
      async (ctx: ObjectContext, req) => {
        const state = await mustLoad(ctx);
        if (state.batches[req.batch]) {
          state.replays++;
          ctx.set('state', state);
          return { batch: req.batch, copied: state.batches[req.batch]!.count };
        }
        if (ctx.key === FAULTY_SERVICES.batch && req.batch === FAILING_BATCH) {
          throw new TerminalError(`record ${req.first} of ${ctx.key} violates the new schema`, {
            code: 'batch_failed',
            status: 422,
          });
        }
        let checksum = batchChecksum(ctx.key, req.first, req.count);
        if (ctx.key === FAULTY_SERVICES.corrupt && req.batch === CORRUPTED_BATCH) checksum ^= 1;
        state.batches[req.batch] = { first: req.first, count: req.count, checksum };
        ctx.set('state', state);
        return { batch: req.batch, copied: req.count };
      },
    ),

    /** Compares every batch with what the old system holds. */
    verify: handler(
      { input: z.object({ batches: z.number().int() }) },
      async (ctx: ObjectContext, req): Promise<VerificationReport> => {
        const state = await mustLoad(ctx);
        const missingBatches: number[] = [];
        const mismatchedBatches: number[] = [];
        let recordsMigrated = 0;
        for (let b = 0; b < req.batches; b++) {
          const first = b * state.batchSize;
          const count = Math.max(0, Math.min(state.batchSize, state.totalRecords - first));
          const copy = state.batches[b];
          if (!copy) {
            missingBatches.push(b);
            continue;
          }
          recordsMigrated += copy.count;
          if (copy.count !== count || copy.checksum !== batchChecksum(ctx.key, first, count)) {
            mismatchedBatches.push(b);
          }
        }
        const consistent =
          missingBatches.length === 0 &&
          mismatchedBatches.length === 0 &&
          recordsMigrated === state.totalRecords;
        return { consistent, recordsMigrated, missingBatches, mismatchedBatches };
      },
    ),

    /** Drops everything copied so far (the compensation of a failed migration). */
    purge: async (ctx) => {
      ctx.clear('state');
      return { serviceId: ctx.key, purged: true };
    },

    /** How far the copy is. */
    progress: shared(async (ctx) => {
      const state = await load(ctx);
      if (!state) return { serviceId: ctx.key, batches: 0, records: 0, replays: 0 };
      const batches = Object.values(state.batches);
      return {
        serviceId: ctx.key,
        batches: batches.length,
        records: batches.reduce((n, b) => n + b.count, 0),
        replays: state.replays,
      };
    }),
  },
});
