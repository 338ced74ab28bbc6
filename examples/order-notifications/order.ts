/**
 * Seed 000, exercises 1–3 as one system: the order service the seed extends. `NotifiedOrder`
 * (one workflow per order id) posts the new order to Slack, checks the stock of every item, then
 * charges the customer (Stripe), reserves the stock, creates the shipment; a failed shipment
 * releases the reservation and refunds. A confirmed order gets its email (SendGrid), then its
 * SMS (Twilio), then a Slack confirmation. Notifications never fail an order.
 */
import { z } from 'zod';
import {
  handler,
  saga,
  TerminalError,
  workflow,
  type ErrorInfo,
  type WorkflowContext,
} from '../../src/index.js';
import { use, type StripeCharge } from '../../src/integrations/index.js';
import { body, count, idMatchingKey, keyId, positive, text } from '../saga-kit/input.js';
import type { OrderChannels, OrderConnectors } from './connectors.js';
import {
  ORDER_WAREHOUSE,
  OrderInventory,
  outOfStock,
  type InventoryCheck,
  type OrderItem,
  type Reservation,
} from './inventory.js';
import {
  failureOf,
  SlackClient,
  TwilioClient,
  type NotificationFailure,
  type SlackDelivery,
  type SMSResponse,
} from './notify.js';
import { OrderShipments } from './shipping.js';

/** The body of `POST /NotifiedOrder/{orderId}/run`. */
export const NotifiedOrderInput = body(
  {
    /** May repeat the URL key; defaults to it. */
    orderId: keyId(),
    customerId: text(),
    /** E.164; no SMS without it. `+15005550001` is Twilio's invalid number: the SMS fails. */
    customerPhone: text().optional(),
    /** No confirmation email without it. */
    customerEmail: text().optional(),
    items: z
      .array(
        body(
          { productId: text(), quantity: count(), price: z.number().nonnegative() },
          '{"productId":"PROD-001","quantity":2,"price":29.99}',
        ),
        { error: 'must be a non-empty array of {"productId","quantity","price"}' },
      )
      .min(1, 'must be a non-empty array of {"productId","quantity","price"}'),
    /** In dollars. */
    total: positive(),
    /** A Stripe test token; default `tok_visa`. `tok_chargeDeclined` is declined. */
    paymentSource: text().optional(),
  },
  '{"customerId":"cust-123","customerPhone":"+15558675310","customerEmail":"ann@example.com","items":[{"productId":"PROD-001","quantity":2,"price":29.99}],"total":59.98}',
);
export type NotifiedOrderInput = z.infer<typeof NotifiedOrderInput>;

/** Where an order is. `confirmed` and `failed` are final. */
export type OrderStatus =
  | 'received'
  | 'checking_inventory'
  | 'charging'
  | 'reserving'
  | 'shipping'
  | 'notifying'
  | 'confirmed'
  | 'failed';

/** The order's record: what `run` returns and `status` reads at any time. */
export interface OrderRecord {
  orderId: string;
  customerId: string;
  total: number;
  items: OrderItem[];
  status: OrderStatus;
  checks?: InventoryCheck[];
  chargeId?: string;
  reservation?: Reservation;
  shipmentId?: string;
  notifications: {
    /** Whether the confirmation email went out (absent: no email address, or not yet). */
    email?: { sent: true } | ({ sent: false } & NotificationFailure);
    sms?: SMSResponse | NotificationFailure;
    slack: SlackDelivery[];
  };
  /** Set when the order failed: why, and what was undone (in the order it was undone). */
  failure?: { code: string; message: string; step?: string; compensated: string[] };
}

const money = (dollars: number) => `$${dollars.toFixed(2)}`;

/** Stripe's own words for a failed charge ("Your card was declined."), else the error's. */
function declineReason(error: ErrorInfo): string {
  const failure = error.fields?.failure as { body?: { error?: { message?: string } } } | undefined;
  const said = failure?.body?.error?.message;
  return said ? `${said} (${error.message})` : error.message;
}

/**
 * The `NotifiedOrder` workflow over the given connectors (see `createOrderNotifications`).
 *
 * @example
 * ```sh
 * curl -X POST http://localhost:9080/NotifiedOrder/order-1/run -H 'Content-Type: application/json' \
 *   -d '{"customerId":"cust-123","customerPhone":"+15558675310","customerEmail":"ann@example.com","items":[{"productId":"PROD-001","quantity":2,"price":29.99}],"total":59.98}'
 * curl -X POST http://localhost:9080/NotifiedOrder/order-1/status
 * ```
 */
export function notifiedOrder(c: OrderConnectors, channels: OrderChannels) {
  const sms = new TwilioClient(c.sms, c.smsFrom);
  const slackOrders = new SlackClient(c.slack.orders);
  const slackPayments = new SlackClient(c.slack.payments);
  const slackConfirmations = new SlackClient(c.slack.confirmations);

  return workflow({
    name: 'NotifiedOrder',
    run: handler(
      { input: NotifiedOrderInput },
      async (ctx: WorkflowContext, input): Promise<OrderRecord> => {
        const orderId = idMatchingKey(input.orderId, 'orderId', ctx.key);
        const record: OrderRecord = {
          orderId,
          customerId: input.customerId,
          total: input.total,
          items: input.items,
          status: 'received',
          notifications: { slack: [] },
        };
        const save = (patch: Partial<OrderRecord> = {}): void => {
          Object.assign(record, patch);
          ctx.set('order', record);
        };
        const fail = (error: ErrorInfo, step?: string, compensated: string[] = []): never => {
          save({
            status: 'failed',
            failure: {
              code: error.code ?? 'failed',
              message: error.message,
              ...(step ? { step } : {}),
              compensated,
            },
          });
          throw new TerminalError(`order ${orderId} failed: ${error.message}`, {
            code: error.code ?? 'order_failed',
            status: error.status ?? 409,
          });
        };
        const orderFields = [
          { Title: 'Order ID', Value: orderId },
          { Title: 'Customer', Value: input.customerId },
          { Title: 'Total', Value: money(input.total) },
        ];
        save();

        // Exercise 2: the new order, with its total, to #orders.
        record.notifications.slack.push(
          await slackOrders.PostMessage(ctx, {
            Channel: channels.orders,
            Text: `New order ${orderId}: ${money(input.total)} from ${input.customerId}`,
            Fields: [...orderFields, { Title: 'Items', Value: String(input.items.length) }],
          }),
        );

        // Exercise 3: every item is checked before the customer is charged.
        save({ status: 'checking_inventory' });
        const inventory = ctx.objectClient(OrderInventory, ORDER_WAREHOUSE);
        const wanted = new Map<string, number>();
        for (const i of input.items)
          wanted.set(i.productId, (wanted.get(i.productId) ?? 0) + i.quantity);
        const checks: InventoryCheck[] = [];
        for (const [productId, quantity] of wanted) {
          checks.push(await inventory.checkAvailability({ productId, quantity }));
        }
        save({ checks });
        const short = checks.filter((k) => !k.available);
        if (short.length > 0) {
          const err = outOfStock(short.map((k) => `${k.productId} (wanted ${k.quantity})`));
          fail({ code: err.code, message: err.message, status: 409 }, 'check availability');
        }

        // Charge → reserve → ship; a failure undoes what was done, newest first.
        save({ status: 'charging' });
        const outcome = await saga(ctx, async (s) => {
          const charge: StripeCharge = await s.invoke(
            'charge payment',
            () =>
              use(ctx, c.payments).create_charge({
                amount: Math.round(input.total * 100),
                currency: 'usd',
                source: input.paymentSource ?? 'tok_visa',
                description: `Order ${orderId}`,
                metadata: { order_id: orderId, customer_id: input.customerId },
              }),
            {
              undoName: 'refund payment',
              undo: (ch) => use(ctx, c.payments).create_refund({ charge: ch.id }),
            },
          );
          save({ status: 'reserving', chargeId: charge.id });
          // Reserved only once the charge succeeded.
          const reservation = await s.invoke(
            'reserve inventory',
            () => inventory.reserveInventory({ orderId, items: input.items }),
            {
              undoName: 'release reservation',
              undo: (r) => inventory.releaseReservation({ reservationId: r.id }),
            },
          );
          save({ status: 'shipping', reservation });
          const shipment = await s.invoke('create shipment', () =>
            ctx
              .objectClient(OrderShipments, orderId)
              .create({ customerId: input.customerId, reservationId: reservation.id }),
          );
          return shipment.shipmentId;
        });

        if (outcome.status !== 'completed') {
          if (outcome.failedStep === 'charge payment') {
            // Exercise 2: the payment failure to #payments (the order fails; nothing to undo).
            record.notifications.slack.push(
              await slackPayments.PostMessage(ctx, {
                Channel: channels.payments,
                Text: `Payment failed for order ${orderId} (${money(input.total)})`,
                Fields: [...orderFields, { Title: 'Reason', Value: declineReason(outcome.error) }],
              }),
            );
            fail(
              { ...outcome.error, code: 'payment_failed', status: 402 },
              outcome.failedStep,
              outcome.compensated,
            );
          }
          fail(outcome.error, outcome.failedStep, outcome.compensated);
        }
        save({
          status: 'notifying',
          shipmentId: outcome.status === 'completed' ? outcome.value : '',
        });

        // The confirmation email first, then (exercise 1) the SMS, then Slack: none can fail the order.
        if (input.customerEmail !== undefined) {
          try {
            await use(ctx, c.email).send_mail({
              personalizations: [{ to: [{ email: input.customerEmail }] }],
              from: { email: c.emailFrom },
              subject: `Order ${orderId} confirmed`,
              content: [
                {
                  type: 'text/plain',
                  value: `Thanks! Your order ${orderId} (${money(input.total)}) is confirmed.`,
                },
              ],
            });
            record.notifications.email = { sent: true };
          } catch (err) {
            const failure = failureOf(err);
            ctx.log.warn(`confirmation email for ${orderId} not sent: ${failure.error}`);
            record.notifications.email = { sent: false, ...failure };
          }
          save();
        }
        if (input.customerPhone !== undefined) {
          record.notifications.sms = await sms.SendSMS(ctx, {
            To: input.customerPhone,
            Message: `Your order ${orderId} is confirmed: ${money(input.total)}.`,
          });
          save();
        }
        record.notifications.slack.push(
          await slackConfirmations.PostMessage(ctx, {
            Channel: channels.confirmations,
            Text: `Order ${orderId} confirmed: ${money(input.total)} for ${input.customerId}`,
            Fields: [...orderFields, { Title: 'Shipment', Value: record.shipmentId ?? '' }],
          }),
        );
        save({ status: 'confirmed' });
        return record;
      },
    ),
    handlers: {
      /** The order's record at any time: status, steps done, notifications, failure. */
      status: async (ctx): Promise<OrderRecord | { orderId: string; status: 'not_started' }> =>
        (await ctx.get<OrderRecord>('order')) ?? { orderId: ctx.key, status: 'not_started' },
    },
  });
}
