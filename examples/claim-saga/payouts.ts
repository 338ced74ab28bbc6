import { z } from 'zod';
import { handler, object, shared, TerminalError, type ObjectContext } from '../../src/index.js';
import { fromCents, toCents } from '../saga-kit/money.js';

/** The customer whose bank account is closed: the approved claim goes to manual review. */
export const CLOSED_ACCOUNT_CUSTOMER = 'cust-payout-fails';

interface Payout {
  paymentId: string;
  customerId: string;
  amountCents: number;
}

/**
 * The payout of one claim (object keyed by claim id): pays the claimant once.
 *
 * Fails for `customerId` {@link CLOSED_ACCOUNT_CUSTOMER} (502 `payout_failed`).
 */
export const ClaimPayouts = object({
  name: 'ClaimPayouts',
  handlers: {
    /** Pays the claim. Paying twice pays once. */
    pay: handler(
      { input: z.object({ customerId: z.string().min(1), amount: z.number() }) },
      async (ctx: ObjectContext, req) => {
        const existing = await ctx.get<Payout>('payout');
        if (existing) return { paymentId: existing.paymentId };
        if (req.customerId === CLOSED_ACCOUNT_CUSTOMER) {
          throw new TerminalError(`the bank account of ${req.customerId} is closed`, {
            code: 'payout_failed',
            status: 502,
          });
        }
        const payout: Payout = {
          paymentId: `clm_pay_${ctx.key}`,
          customerId: req.customerId,
          amountCents: toCents(req.amount),
        };
        ctx.set('payout', payout);
        return { paymentId: payout.paymentId };
      },
    ),

    /** The payout of this claim, or null. */
    payout: shared(async (ctx) => {
      const payout = await ctx.get<Payout>('payout');
      return payout ? { ...payout, amount: fromCents(payout.amountCents) } : null;
    }),
  },
});
