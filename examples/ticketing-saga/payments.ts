import { z } from 'zod';
import {
  handler,
  object,
  service,
  shared,
  TerminalError,
  type Context,
  type ObjectContext,
} from '../../src/index.js';
import { fromCents, toCents } from '../saga-kit/money.js';

/** The customer whose card is declined: the seats are released. */
export const DECLINED_CUSTOMER = 'cust-card-declined';
/** The customer whose bank takes {@link SLOW_PAYMENT_DELAY}: within the hold, so the booking goes on. */
export const SLOW_PAYMENT_CUSTOMER = 'cust-slow-payment';
/** The customer whose bank takes {@link STUCK_PAYMENT_DELAY}: past the hold, so the booking gives up. */
export const STUCK_PAYMENT_CUSTOMER = 'cust-stuck-payment';
export const SLOW_PAYMENT_DELAY = '5m';
export const STUCK_PAYMENT_DELAY = '20m';

interface Payment {
  customerId: string;
  amountCents: number;
  /** `voided`: cancelled before any capture, so a late capture is refused. */
  status: 'captured' | 'refunded' | 'voided';
}

/**
 * The payment record of one booking (object keyed by booking id), kept apart from the
 * gateway so that cancelling it never waits behind a capture that is still in flight.
 */
export const TicketPayments = object({
  name: 'TicketPayments',
  handlers: {
    /** Captures the amount; refused once the booking's payment was cancelled. */
    capture: handler(
      { input: z.object({ customerId: z.string().min(1), amount: z.number() }) },
      async (ctx: ObjectContext, req) => {
        const payment = await ctx.get<Payment>('payment');
        if (payment?.status === 'captured') return { paymentId: `pay_${ctx.key}` };
        if (payment) {
          throw new TerminalError(`the payment of booking ${ctx.key} was cancelled`, {
            code: 'payment_voided',
            status: 409,
          });
        }
        ctx.set('payment', {
          customerId: req.customerId,
          amountCents: toCents(req.amount),
          status: 'captured',
        });
        return { paymentId: `pay_${ctx.key}` };
      },
    ),

    /** Refunds a capture, or voids the payment so a capture still in flight is refused. Idempotent. */
    cancel: async (ctx) => {
      const payment = await ctx.get<Payment>('payment');
      if (!payment) {
        ctx.set('payment', { customerId: '', amountCents: 0, status: 'voided' });
        return { status: 'voided' };
      }
      if (payment.status === 'captured') ctx.set('payment', { ...payment, status: 'refunded' });
      return { status: payment.status === 'captured' ? 'refunded' : payment.status };
    },

    /** The booking's payment, or null. */
    payment: shared(async (ctx) => {
      const payment = await ctx.get<Payment>('payment');
      return payment ? { ...payment, amount: fromCents(payment.amountCents) } : null;
    }),
  },
});

/**
 * The card gateway (a stateless service): authorises with the customer's bank, then captures
 * on the booking's payment record.
 *
 * Fails for `customerId` {@link DECLINED_CUSTOMER} (402 `payment_declined`); stalls (a durable
 * sleep) for {@link SLOW_PAYMENT_CUSTOMER} and {@link STUCK_PAYMENT_CUSTOMER}.
 */
export const TicketPaymentGateway = service({
  name: 'TicketPaymentGateway',
  handlers: {
    /** Charges a booking. */
    charge: handler(
      {
        input: z.object({
          bookingId: z.string().min(1),
          customerId: z.string().min(1),
          amount: z.number(),
        }),
      },
      async (ctx: Context, req) => {
        if (req.customerId === DECLINED_CUSTOMER) {
          throw new TerminalError(`card of ${req.customerId} was declined`, {
            code: 'payment_declined',
            status: 402,
          });
        }
        // A 3-D Secure challenge the customer takes their time with.
        if (req.customerId === SLOW_PAYMENT_CUSTOMER) await ctx.sleep(SLOW_PAYMENT_DELAY);
        if (req.customerId === STUCK_PAYMENT_CUSTOMER) await ctx.sleep(STUCK_PAYMENT_DELAY);
        return ctx
          .objectClient(TicketPayments, req.bookingId)
          .capture({ customerId: req.customerId, amount: req.amount });
      },
    ),
  },
});
