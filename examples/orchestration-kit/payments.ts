import { z } from 'zod';
/**
 * A card processor as a keyed object, one key per payment (the order id), shared by the order
 * and the food-delivery examples under their own names. Keying by payment makes every
 * operation on one payment run one at a time, in arrival order: a refund sent while a charge
 * hangs waits for that charge and then undoes it.
 */
import { handler, object, shared, TerminalError, type ObjectContext } from '../../src/index.js';
import { simulated, simulation, type Simulation } from './simulate.js';

/** A payment's durable record. */
export interface Payment {
  /** The object key: one payment per order. */
  paymentId: string;
  /** `voided`: refunded before any charge arrived; a later charge is refused. */
  status: 'charged' | 'refunded' | 'voided';
  amount: number;
  customerId?: string;
  chargedAt?: string;
  refundedAt?: string;
}

/** What `charge` takes. */
export interface ChargeRequest {
  amount: number;
  customerId: string;
  /** `fail`: the card is declined (402). `stall`: the processor hangs for an hour. */
  simulate?: Simulation;
}

/**
 * Defines a payments object under `name`.
 *
 * @example
 * ```ts
 * export const DeliveryPayments = paymentsObject('DeliveryPayments');
 * await ctx.objectClient(DeliveryPayments, orderId).charge({ amount: 25, customerId: 'c-1' });
 * ```
 */
export function paymentsObject<N extends string>(name: N) {
  return object({
    name,
    handlers: {
      /** Charges once per payment id: a repeated charge returns the first one. */
      charge: handler(
        {
          input: z.object({
            amount: z.number(),
            customerId: z.string().min(1),
            simulate: simulation.optional(),
          }),
        },
        async (ctx: ObjectContext, req): Promise<Payment> => {
          if (!(typeof req?.amount === 'number' && req.amount > 0)) {
            throw new TerminalError('charge needs a positive amount', {
              code: 'invalid_amount',
              status: 400,
            });
          }
          const existing = await ctx.get<Payment>('payment');
          if (existing?.status === 'voided') {
            throw new TerminalError(
              `payment ${ctx.key} was voided before this charge arrived; nothing was charged`,
              { code: 'payment_voided', status: 409 },
            );
          }
          if (existing) return existing;
          await simulated(ctx, req.simulate, {
            code: 'card_declined',
            message: 'the card was declined',
            status: 402,
          });
          const payment: Payment = {
            paymentId: ctx.key,
            status: 'charged',
            amount: req.amount,
            customerId: req.customerId,
            chargedAt: new Date(await ctx.now()).toISOString(),
          };
          ctx.set('payment', payment);
          return payment;
        },
      ),

      /**
       * Refunds a charge; idempotent. A refund of a payment never charged voids it, so a
       * charge that arrives late (it timed out on the caller's side) cannot take money.
       */
      refund: async (ctx: ObjectContext): Promise<Payment> => {
        const existing = await ctx.get<Payment>('payment');
        const now = new Date(await ctx.now()).toISOString();
        if (existing && existing.status !== 'charged') return existing;
        const next: Payment = existing
          ? { ...existing, status: 'refunded', refundedAt: now }
          : { paymentId: ctx.key, status: 'voided', amount: 0, refundedAt: now };
        ctx.set('payment', next);
        return next;
      },

      /** The payment, or null if nothing happened to it yet. */
      get: shared(async (ctx) => (await ctx.get<Payment>('payment')) ?? null),
    },
  });
}
