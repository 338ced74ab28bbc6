import { z } from 'zod';
import {
  handler,
  object,
  shared,
  TerminalError,
  type ObjectContext,
  type ObjectSharedContext,
} from '../../src/index.js';
import { fromCents, toCents } from '../saga-kit/money.js';

/** The customer whose card is always declined: try the "payment fails" path with it. */
export const DECLINED_CUSTOMER = 'cust-fail-payment';

interface Payment {
  paymentId: string;
  orderId: string;
  amountCents: number;
  status: 'captured' | 'refunded';
}

interface PaymentsState {
  payments: Record<string, Payment>;
  /**
   * Requests answered from the record instead of charging or refunding again. The card
   * processor is idempotent by order id so a retried request is harmless; the crash tests
   * assert this stays 0, which shows Keel did not send a completed call twice.
   */
  replays: number;
}

const load = async (ctx: ObjectSharedContext): Promise<PaymentsState> =>
  (await ctx.get<PaymentsState>('state')) ?? { payments: {}, replays: 0 };

/**
 * The card processor, one keyed object per customer: its state is the customer's payment
 * ledger. `charge` is idempotent by order id (the payment id is derived from it), `refund` by
 * payment id, so both are safe to retry.
 *
 * Fails for `customerId` {@link DECLINED_CUSTOMER} (402 `payment_declined`).
 */
export const OrderSagaPayments = object({
  name: 'OrderSagaPayments',
  handlers: {
    /** Charges `amount` for an order; answers the existing payment if it was charged before. */
    charge: handler(
      { input: z.object({ orderId: z.string().min(1), amount: z.number() }) },
      async (ctx: ObjectContext, req) => {
        const state = await load(ctx);
        const paymentId = `pay_${req.orderId}`;
        if (state.payments[paymentId]) {
          state.replays++;
          ctx.set('state', state);
          return { paymentId };
        }
        if (ctx.key === DECLINED_CUSTOMER) {
          throw new TerminalError(`card of ${ctx.key} was declined by the issuer`, {
            code: 'payment_declined',
            status: 402,
          });
        }
        state.payments[paymentId] = {
          paymentId,
          orderId: req.orderId,
          amountCents: toCents(req.amount),
          status: 'captured',
        };
        ctx.set('state', state);
        return { paymentId };
      },
    ),

    /** Refunds a payment in full. Refunding twice changes nothing (the compensation may be retried). */
    refund: handler(
      { input: z.object({ paymentId: z.string().min(1) }) },
      async (ctx: ObjectContext, req) => {
        const state = await load(ctx);
        const payment = state.payments[req.paymentId];
        if (!payment) {
          throw new TerminalError(`no payment ${req.paymentId} for ${ctx.key}`, {
            code: 'payment_not_found',
            status: 404,
          });
        }
        if (payment.status === 'refunded') state.replays++;
        payment.status = 'refunded';
        ctx.set('state', state);
        return { paymentId: payment.paymentId, status: payment.status };
      },
    ),

    /** The customer's ledger: totals charged and refunded, and every payment. */
    ledger: shared(async (ctx) => {
      const state = await load(ctx);
      const payments = Object.values(state.payments);
      const sum = (status: Payment['status']): number =>
        fromCents(
          payments.filter((p) => p.status === status).reduce((n, p) => n + p.amountCents, 0),
        );
      return {
        customerId: ctx.key,
        captured: sum('captured'),
        refunded: sum('refunded'),
        replays: state.replays,
        payments: payments.map((p) => ({ ...p, amount: fromCents(p.amountCents) })),
      };
    }),
  },
});
