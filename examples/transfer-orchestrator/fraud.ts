/**
 * FraudService of the bank transfer exercise: one object per paying account, holding whether
 * it is flagged. A flagged payer, or an amount over the limit, blocks the transfer.
 */
import { z } from 'zod';
import { handler, object, shared, type ObjectContext } from '../../src/index.js';
import { simulated, type Simulation } from '../orchestration-kit/simulate.js';

/** Transfers above this many cents (10,000.00) are blocked as likely fraud. */
export const FRAUD_LIMIT = 1_000_000;

/** The fraud decision on one transfer. */
export type FraudDecision = { decision: 'allow' } | { decision: 'block'; reason: string };

/** Fraud rules per paying account: flag, clear, assess. */
export const BankFraudCheck = object({
  name: 'BankFraudCheck',
  handlers: {
    /** Flags the account: every transfer it pays is blocked. */
    flag: handler(
      { input: z.object({ reason: z.string().min(1) }) },
      async (ctx: ObjectContext, req) => {
        ctx.set('flag', req.reason);
        return { accountId: ctx.key, flagged: req.reason };
      },
    ),

    /** Clears the flag. */
    clear: async (ctx: ObjectContext) => {
      ctx.clear('flag');
      return { accountId: ctx.key, flagged: null };
    },

    /** Decides on a transfer paid by this account. */
    assess: shared(
      async (
        ctx,
        req: { transferId: string; amount: number; simulate?: Simulation },
      ): Promise<FraudDecision> => {
        await simulated(ctx, req.simulate, {
          code: 'fraud_service_unavailable',
          message: 'the fraud scoring service did not answer',
          status: 503,
        });
        const flag = await ctx.get<string>('flag');
        if (flag) return { decision: 'block', reason: `payer is flagged: ${flag}` };
        if (req.amount > FRAUD_LIMIT) {
          return {
            decision: 'block',
            reason: `amount ${req.amount} is over the ${FRAUD_LIMIT} limit`,
          };
        }
        return { decision: 'allow' };
      },
    ),
  },
});
