/**
 * ComplianceService of the bank transfer exercise: one object per account, holding whether it
 * is on a sanctions list. A sanctioned payer or payee blocks the transfer.
 */
import { z } from 'zod';
import { handler, object, shared, type ObjectContext } from '../../src/index.js';
import { simulated, type Simulation } from '../orchestration-kit/simulate.js';

/** The screening result of one party to a transfer. */
export type Screening = { cleared: true } | { cleared: false; reason: string };

/** Sanctions screening per account: sanction, lift, screen. */
export const BankCompliance = object({
  name: 'BankCompliance',
  handlers: {
    /** Puts the account on a sanctions list. */
    sanction: handler(
      { input: z.object({ list: z.string().min(1) }) },
      async (ctx: ObjectContext, req) => {
        ctx.set('sanctioned', req.list);
        return { accountId: ctx.key, sanctioned: req.list };
      },
    ),

    /** Takes it off. */
    lift: async (ctx: ObjectContext) => {
      ctx.clear('sanctioned');
      return { accountId: ctx.key, sanctioned: null };
    },

    /** Screens this account as a party to a transfer. */
    screen: shared(
      async (ctx, req: { transferId: string; simulate?: Simulation }): Promise<Screening> => {
        await simulated(ctx, req.simulate, {
          code: 'screening_unavailable',
          message: 'the sanctions screening service did not answer',
          status: 503,
        });
        const list = await ctx.get<string>('sanctioned');
        return list
          ? { cleared: false, reason: `${ctx.key} is on the ${list} list` }
          : { cleared: true };
      },
    ),
  },
});
