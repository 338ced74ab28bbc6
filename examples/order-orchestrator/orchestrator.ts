/**
 * Seed 001, exercise 1: e-commerce order fulfillment. `OrderOrchestrator` is the central
 * coordinator: check stock, reserve it, charge, create the pick ticket, buy the shipping label,
 * send the tracking email. A failure undoes what was done, newest first: a declined payment
 * releases the stock; a shipping failure cancels the pick ticket, refunds and releases.
 */
import { z } from 'zod';
import {
  handler,
  TerminalError,
  workflow,
  type Saga,
  type WorkflowContext,
} from '../../src/index.js';
import { orchestrate, readStatus } from '../orchestration-kit/status.js';
import { simulations } from '../orchestration-kit/simulate.js';
import { FulfillmentEmail } from './email.js';
import { FulfillmentInventory } from './inventory.js';
import { FulfillmentPayments } from './payments.js';
import { FulfillmentShipping } from './shipping.js';
import { FulfillmentWarehouse } from './warehouse.js';

/** How long a downstream service may take to answer before the order gives up on it. */
export const SERVICE_TIMEOUT = '5m';

/** An order, as `POST /OrderOrchestrator/{orderId}/run` takes it. */
export const OrderRequest = z.object({
  customerId: z.string().min(1),
  email: z.string().min(3),
  items: z
    .array(
      z.object({
        sku: z.string().min(1),
        quantity: z.number().int().positive(),
        unitPrice: z.number().nonnegative(),
      }),
    )
    .min(1)
    .refine((items) => new Set(items.map((i) => i.sku)).size === items.length, {
      message: 'each SKU may appear once; put the total in its quantity',
    }),
  /** Which warehouse picks the order. Default `main`. */
  warehouse: z.string().min(1).optional(),
  shippingAddress: z.object({
    name: z.string().min(1),
    street: z.string().min(1),
    city: z.string().min(1),
    postalCode: z.string().min(1),
    country: z.string().length(2),
  }),
  simulate: simulations(['payment', 'warehouse', 'shipping', 'email']),
});
export type OrderRequest = z.infer<typeof OrderRequest>;

/** What a completed order returns (besides `status: "completed"`). */
export interface OrderFulfilled {
  orderId: string;
  amount: number;
  paymentId: string;
  pickTicket: string;
  carrier: string;
  trackingNumber: string;
  /** False when the tracking email failed: the order still ships. */
  emailSent: boolean;
}

async function fulfil(ctx: WorkflowContext, s: Saga, order: OrderRequest) {
  const orderId = ctx.key;
  const amount =
    Math.round(order.items.reduce((sum, i) => sum + i.quantity * i.unitPrice, 0) * 100) / 100;
  const stock = (sku: string) => ctx.objectClient(FulfillmentInventory, sku);
  const payment = ctx.objectClient(FulfillmentPayments, orderId);
  const warehouse = ctx.objectClient(FulfillmentWarehouse, order.warehouse ?? 'main');
  const shipment = ctx.objectClient(FulfillmentShipping, orderId);

  // 1. Check availability of every SKU at once (shared handlers: they do not queue).
  await s.invoke('check inventory', async () => {
    const levels = await ctx.all(order.items.map((i) => stock(i.sku).check(i.quantity)));
    const short = levels.filter((l) => !l.enough);
    if (short.length > 0) {
      throw new TerminalError(
        `not enough stock: ${short.map((l) => `${l.sku} (${l.onHand} left)`).join(', ')}`,
        { code: 'out_of_stock', status: 409 },
      );
    }
  });

  // 2. Reserve, one step per SKU, so a failure on the second releases only the first.
  for (const item of order.items) {
    await s.invoke(
      `reserve ${item.sku}`,
      () => stock(item.sku).reserve({ orderId, quantity: item.quantity }),
      {
        undoWhen: 'maybe',
        undoName: `release ${item.sku}`,
        undo: () => stock(item.sku).release(orderId),
      },
    );
  }

  // 3. Charge. A charge that does not answer in time is in doubt (`undoWhen: 'maybe'`): its
  //    refund is owed too, and runs after the hung charge (same payment key), so no money is
  //    kept by mistake.
  const charged = await s.invoke(
    'charge customer',
    () =>
      payment.charge({ amount, customerId: order.customerId, simulate: order.simulate?.payment }),
    {
      timeout: SERVICE_TIMEOUT,
      undoWhen: 'maybe',
      undoName: 'refund payment',
      undo: () => payment.refund(),
    },
  );

  // 4. Pick and pack.
  const ticket = await s.invoke(
    'create pick ticket',
    () =>
      warehouse.createPickTicket({
        orderId,
        items: order.items.map(({ sku, quantity }) => ({ sku, quantity })),
        simulate: order.simulate?.warehouse,
      }),
    {
      timeout: SERVICE_TIMEOUT,
      undoWhen: 'maybe',
      undoName: 'cancel pick ticket',
      undo: () => warehouse.cancelPickTicket(orderId),
    },
  );

  // 5. Ship.
  const label = await s.invoke(
    'create shipping label',
    () =>
      shipment.createLabel({ address: order.shippingAddress, simulate: order.simulate?.shipping }),
    {
      timeout: SERVICE_TIMEOUT,
      undoWhen: 'maybe',
      undoName: 'void shipping label',
      undo: () => shipment.voidLabel(),
    },
  );

  // 6. Tell the customer. Not critical: a bounced email does not unship an order.
  const email = await s.invoke(
    'send tracking email',
    () =>
      ctx.objectClient(FulfillmentEmail, order.email).send({
        dedupeKey: `tracking-${orderId}`,
        subject: `Your order ${orderId} has shipped`,
        body: `${label.carrier} tracking number: ${label.trackingNumber}`,
        simulate: order.simulate?.email,
      }),
    { timeout: SERVICE_TIMEOUT, critical: false },
  );

  return {
    orderId,
    amount,
    paymentId: charged.paymentId,
    pickTicket: ticket.ticketId,
    carrier: label.carrier,
    trackingNumber: label.trackingNumber,
    emailSent: email !== undefined,
  } satisfies OrderFulfilled;
}

/**
 * The order fulfillment orchestrator: one workflow per order id. `run` fulfils the order (once
 * per id: calling it again returns the first result); `status` shows the current step and
 * the history while it runs and after.
 *
 * @example
 * ```sh
 * curl -X POST localhost:9080/OrderOrchestrator/order-1/run -H 'content-type: application/json' \
 *   -d '{"customerId":"c-1","email":"ann@example.com","items":[{"sku":"book","quantity":1,"unitPrice":20}],
 *        "shippingAddress":{"name":"Ann","street":"1 Main St","city":"Berlin","postalCode":"10115","country":"DE"}}'
 * curl -X POST localhost:9080/OrderOrchestrator/order-1/status
 * ```
 */
export const OrderOrchestrator = workflow({
  name: 'OrderOrchestrator',
  run: handler({ input: OrderRequest }, async (ctx: WorkflowContext, order) => {
    return orchestrate(ctx, (s) => fulfil(ctx, s, order));
  }),
  handlers: {
    /** The current step and the history of this order. */
    status: async (ctx) => readStatus(ctx),
  },
});
