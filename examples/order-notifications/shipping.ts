/**
 * The shipment step of the notified order: a local Keel object keyed by order id, so creating
 * the shipment for an order twice creates it once. Customer `cust-no-shipping` has no carrier
 * that can reach it: the shipment fails terminally, which releases the reservation and refunds.
 */
import { z } from 'zod';
import { handler, object, shared, TerminalError, type ObjectContext } from '../../src/index.js';

/** The customer no carrier ships to: try it to see the release-and-refund path. */
export const UNSHIPPABLE_CUSTOMER = 'cust-no-shipping';

/** A created shipment. */
export interface Shipment {
  shipmentId: string;
  orderId: string;
  reservationId: string;
  status: 'label_created';
}

/**
 * Shipments, one object per order.
 *
 * @example
 * ```ts
 * const shipment = await ctx
 *   .objectClient(OrderShipments, orderId)
 *   .create({ customerId, reservationId });
 * shipment.shipmentId; // 'shp_order-1'
 * ```
 */
export const OrderShipments = object({
  name: 'OrderShipments',
  handlers: {
    create: handler(
      { input: z.object({ customerId: z.string().min(1), reservationId: z.string().min(1) }) },
      async (ctx: ObjectContext, req): Promise<Shipment> => {
        const known = await ctx.get<Shipment>('shipment');
        if (known) return known;
        if (req.customerId === UNSHIPPABLE_CUSTOMER) {
          throw new TerminalError(`no carrier ships to customer ${req.customerId}`, {
            code: 'shipping_unavailable',
            status: 422,
          });
        }
        const shipment: Shipment = {
          shipmentId: `shp_${ctx.key}`,
          orderId: ctx.key,
          reservationId: req.reservationId,
          status: 'label_created',
        };
        ctx.set('shipment', shipment);
        return shipment;
      },
    ),
    /** The order's shipment, or null when none was created. */
    get: shared(async (ctx) => (await ctx.get<Shipment>('shipment')) ?? null),
  },
});
