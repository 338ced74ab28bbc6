import { z } from 'zod';
import {
  handler,
  object,
  shared,
  TerminalError,
  type ObjectContext,
  type ObjectSharedContext,
} from '../../src/index.js';
import { toCents } from '../saga-kit/money.js';

/** The ledger the saga records into (the object key). */
export const LEDGER = 'main';

/** What the bank's transfer register keeps about one completed transfer. */
export interface TransferRecord {
  transferId: string;
  fromAccount: string;
  toAccount: string;
  amountCents: number;
  debitTxId: string;
  creditTxId: string;
}

interface LedgerState {
  records: Record<string, TransferRecord>;
  /** Transfer ids compliance put on hold, with the reason. */
  holds: Record<string, string>;
}

const load = async (ctx: ObjectSharedContext): Promise<LedgerState> =>
  (await ctx.get<LedgerState>('state')) ?? { records: {}, holds: {} };

/**
 * The bank's transfer register (reporting, audit). Recording is the saga's last step: when
 * the register refuses a transfer, the money already moved is moved back.
 *
 * Fails for a transfer id put on hold with `hold` (403 `compliance_hold`).
 */
export const TransferLedger = object({
  name: 'TransferLedger',
  handlers: {
    /** Records a completed transfer; recording the same transfer twice keeps one record. */
    record: handler(
      {
        input: z.object({
          transferId: z.string().min(1),
          fromAccount: z.string().min(1),
          toAccount: z.string().min(1),
          amount: z.number(),
          debitTxId: z.string().min(1),
          creditTxId: z.string().min(1),
        }),
      },
      async (ctx: ObjectContext, req) => {
        const state = await load(ctx);
        const reason = state.holds[req.transferId];
        if (reason !== undefined) {
          throw new TerminalError(`compliance holds transfer ${req.transferId}: ${reason}`, {
            code: 'compliance_hold',
            status: 403,
          });
        }
        const { amount, ...rest } = req;
        state.records[req.transferId] ??= { ...rest, amountCents: toCents(amount) };
        ctx.set('state', state);
        return { transferId: req.transferId, recorded: true };
      },
    ),

    /** Admin: compliance puts a transfer id on hold, so recording it fails. */
    hold: handler(
      { input: z.object({ transferId: z.string().min(1), reason: z.string().optional() }) },
      async (ctx: ObjectContext, req) => {
        const state = await load(ctx);
        state.holds[req.transferId] = req.reason ?? 'flagged for review';
        ctx.set('state', state);
        return { transferId: req.transferId, held: true };
      },
    ),

    /** Every recorded transfer. */
    records: shared(async (ctx) => Object.values((await load(ctx)).records)),
  },
});
