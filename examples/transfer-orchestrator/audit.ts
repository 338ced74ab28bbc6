import { z } from 'zod';
/**
 * The audit trail of the bank transfer exercise: one append-only object per transfer. Unlike
 * the orchestrator's status, it outlives the workflow's retention and only ever grows.
 */
import { handler, object, shared, type ObjectContext } from '../../src/index.js';

/** One audited event. */
export interface AuditEvent {
  seq: number;
  event: string;
  detail?: string;
  at: string;
}

/** Audit trail per transfer id: record, read. */
export const BankAudit = object({
  name: 'BankAudit',
  handlers: {
    /** Appends an event. */
    record: handler(
      { input: z.object({ event: z.string().min(1), detail: z.string().optional() }) },
      async (ctx: ObjectContext, req) => {
        const trail = (await ctx.get<AuditEvent[]>('trail')) ?? [];
        const entry: AuditEvent = {
          seq: trail.length + 1,
          event: req.event,
          ...(req.detail === undefined ? {} : { detail: req.detail }),
          at: new Date(await ctx.now()).toISOString(),
        };
        ctx.set('trail', [...trail, entry]);
        return entry;
      },
    ),

    /** Every event of the transfer, in order. */
    trail: shared(async (ctx) => (await ctx.get<AuditEvent[]>('trail')) ?? []),
  },
});
