import { z } from 'zod';
import { handler, object, shared, TerminalError, type ObjectContext } from '../../src/index.js';

/** The customer the hospital has no records for: the claim fails before any approval. */
export const NO_RECORDS_CUSTOMER = 'cust-no-records';

interface RecordsRequest {
  recordsId: string;
  customerId: string;
  status: 'received' | 'purged';
}

/**
 * The copy of a claimant's medical records an insurer requests (object keyed by claim id).
 * A claim that does not end paid must not keep them: `purge` is the compensation.
 *
 * Fails for `customerId` {@link NO_RECORDS_CUSTOMER} (404 `records_unavailable`).
 */
export const ClaimMedicalRecords = object({
  name: 'ClaimMedicalRecords',
  handlers: {
    /** Requests the records from the claimant's hospital. Requesting twice requests once. */
    request: handler(
      { input: z.object({ customerId: z.string().min(1) }) },
      async (ctx: ObjectContext, req) => {
        const existing = await ctx.get<RecordsRequest>('records');
        if (existing?.status === 'received') return { recordsId: existing.recordsId };
        if (req.customerId === NO_RECORDS_CUSTOMER) {
          throw new TerminalError(`the hospital has no records for ${req.customerId}`, {
            code: 'records_unavailable',
            status: 404,
          });
        }
        const records: RecordsRequest = {
          recordsId: `rec_${ctx.key}`,
          customerId: req.customerId,
          status: 'received',
        };
        ctx.set('records', records);
        return { recordsId: records.recordsId };
      },
    ),

    /** Deletes the copy (privacy: a rejected claim keeps no medical data). Idempotent. */
    purge: async (ctx) => {
      const records = await ctx.get<RecordsRequest>('records');
      if (records) ctx.set('records', { ...records, status: 'purged' });
      return { status: records ? 'purged' : 'none' };
    },

    /** The records copy of this claim, or null. */
    records: shared(async (ctx) => (await ctx.get<RecordsRequest>('records')) ?? null),
  },
});
