import { z } from 'zod';
import { handler, saga, workflow, type WorkflowContext } from '../../src/index.js';
import { body, count, idMatchingKey, keyId, positive, text } from '../saga-kit/input.js';
import { OrderSagaEmail } from './email.js';
import { OrderSagaInventory, WAREHOUSE, type OrderItem } from './inventory.js';
import { OrderSagaPayments } from './payments.js';
import { OrderSagaShipping } from './shipping.js';

/** The body of `POST /OrderSaga/{orderId}/run`: the seed's `OrderRequest`, `orderId` optional. */
export const OrderInput = body(
  {
    /** May repeat the URL key; defaults to it. */
    orderId: keyId(),
    customerId: text(),
    items: z
      .array(body({ sku: text(), quantity: count() }, '{"sku":"ITEM-001","quantity":2}'), {
        error: 'must be a non-empty array of {"sku","quantity"}',
      })
      .min(1, 'must be a non-empty array of {"sku","quantity"}'),
    amount: positive(),
  },
  '{"customerId":"cust-123","items":[{"sku":"ITEM-001","quantity":2}],"amount":99.99}',
);
export type OrderInput = z.infer<typeof OrderInput>;

/** The seed's `OrderRequest`, as the saga runs it (the id resolved from the URL key). */
export interface OrderRequest {
  orderId: string;
  customerId: string;
  items: OrderItem[];
  amount: number;
}

/** The seed's `OrderResult`, plus what a failed order undid. */
export interface OrderResult {
  status:
    'completed' | 'payment_failed' | 'inventory_failed' | 'shipment_failed' | 'compensation_failed';
  paymentId?: string;
  reservationId?: string;
  shipmentId?: string;
  /** False when the (non-critical) confirmation email could not be sent. */
  emailSent?: boolean;
  /** The error code that stopped a failed order, e.g. `out_of_stock`. */
  reason?: string;
  message?: string;
  /** The steps undone, in the order they were undone. */
  compensated?: string[];
}

type Stage = 'payment' | 'inventory' | 'shipment' | 'email' | 'done';

/** How a compensated order is reported, by the step that failed (email never fails an order). */
const FAILED_AT: Record<Stage, OrderResult['status']> = {
  payment: 'payment_failed',
  inventory: 'inventory_failed',
  shipment: 'shipment_failed',
  email: 'compensation_failed',
  done: 'compensation_failed',
};

/**
 * Exercise 1: the e-commerce order saga. Charge payment → reserve inventory → create shipment
 * → send the confirmation email. A failed inventory step refunds the payment; a failed
 * shipment releases the inventory and refunds the payment (in that order); a failed email is
 * logged and the order still completes.
 *
 * Keyed by order id, so one order runs once: calling `run` again returns the same result.
 *
 * @example
 * ```sh
 * curl -X POST http://localhost:9080/OrderSaga/order-001/Run -H 'Content-Type: application/json' \
 *   -d '{"orderId":"order-001","customerId":"cust-123","items":[{"sku":"ITEM-001","quantity":2}],"amount":99.99}'
 * ```
 */
export const OrderSaga = workflow({
  name: 'OrderSaga',
  run: handler({ input: OrderInput }, async (ctx: WorkflowContext, input): Promise<OrderResult> => {
    // Before the first step: a contradicting id fails the run with nothing done (key released).
    const order: OrderRequest = {
      ...input,
      orderId: idMatchingKey(input.orderId, 'orderId', ctx.key),
    };
    const payments = ctx.objectClient(OrderSagaPayments, order.customerId);
    const inventory = ctx.objectClient(OrderSagaInventory, WAREHOUSE);
    const shipping = ctx.objectClient(OrderSagaShipping, order.orderId);
    const email = ctx.objectClient(OrderSagaEmail, order.customerId);

    // Which step the saga is in (an object, so the step set inside the saga is seen after it):
    // a failed saga is reported by the step that failed.
    const at: { stage: Stage } = { stage: 'payment' };
    const enter = (next: Stage): void => {
      at.stage = next;
      ctx.set('stage', next);
    };

    const outcome = await saga(ctx, async (s) => {
      enter('payment');
      const { paymentId } = await s.invoke(
        'charge payment',
        () => payments.charge({ orderId: order.orderId, amount: order.amount }),
        { undo: (p) => payments.refund({ paymentId: p.paymentId }) },
      );

      enter('inventory');
      const { reservationId } = await s.invoke(
        'reserve inventory',
        () => inventory.reserve({ orderId: order.orderId, items: order.items }),
        { undo: (r) => inventory.release({ reservationId: r.reservationId }) },
      );

      enter('shipment');
      // The undo only runs if the order is cancelled while the email is being sent: nothing
      // critical follows the shipment, so no failure can undo it.
      const { shipmentId } = await s.invoke(
        'create shipment',
        () => shipping.create({ customerId: order.customerId, reservationId, items: order.items }),
        { undo: () => shipping.cancel() },
      );

      enter('email');
      // Not critical: a bounced email must not refund a paid, packed order.
      const sent = await s.invoke(
        'send confirmation email',
        () => email.sendConfirmation({ orderId: order.orderId, shipmentId }),
        { critical: false },
      );

      enter('done');
      return { paymentId, reservationId, shipmentId, emailSent: sent !== undefined };
    });

    ctx.set('outcome', outcome.status);
    if (outcome.status === 'completed') return { status: 'completed', ...outcome.value };
    return {
      status: outcome.status === 'compensated' ? FAILED_AT[at.stage] : 'compensation_failed',
      reason: outcome.error.code,
      message: outcome.error.message,
      compensated: outcome.compensated,
    };
  }),

  handlers: {
    /** Where the order is: `payment`, `inventory`, `shipment`, `email` or `done`. */
    status: async (ctx) => ({
      orderId: ctx.key,
      stage: (await ctx.get<Stage>('stage')) ?? 'not started',
      outcome: (await ctx.get<string>('outcome')) ?? null,
    }),
  },
});
