import { z } from 'zod';
import { handler, object, shared, TerminalError, type ObjectContext } from '../../src/index.js';

/** The customer whose mailbox bounces: the order still completes, without an email. */
export const BOUNCING_CUSTOMER = 'cust-fail-email';

interface Message {
  orderId: string;
  subject: string;
}

/**
 * The mail provider, one keyed object per customer: its state is the customer's outbox.
 * Sending twice for the same order sends once.
 *
 * Fails for `customerId` {@link BOUNCING_CUSTOMER} (502 `mailbox_unavailable`).
 */
export const OrderSagaEmail = object({
  name: 'OrderSagaEmail',
  handlers: {
    /** Sends the order confirmation. */
    sendConfirmation: handler(
      { input: z.object({ orderId: z.string().min(1), shipmentId: z.string().min(1) }) },
      async (ctx: ObjectContext, req) => {
        if (ctx.key === BOUNCING_CUSTOMER) {
          throw new TerminalError(`the mailbox of ${ctx.key} does not accept mail`, {
            code: 'mailbox_unavailable',
            status: 502,
          });
        }
        const outbox = (await ctx.get<Message[]>('outbox')) ?? [];
        if (!outbox.some((m) => m.orderId === req.orderId)) {
          outbox.push({
            orderId: req.orderId,
            subject: `Order ${req.orderId} is on its way (shipment ${req.shipmentId})`,
          });
          ctx.set('outbox', outbox);
        }
        return { sent: true };
      },
    ),

    /** Every message sent to this customer. */
    outbox: shared(async (ctx) => (await ctx.get<Message[]>('outbox')) ?? []),
  },
});
