import { z } from 'zod';
import { handler, object, shared, TerminalError, type ObjectContext } from '../../src/index.js';
import type { OrderItem } from './inventory.js';

/** The customer no carrier will ship to: try the "shipment fails" path with it. */
export const UNSHIPPABLE_CUSTOMER = 'cust-fail-shipment';
/** The customer whose carrier is slow: the saga waits (suspended) this long for the label. */
export const SLOW_SHIPPING_CUSTOMER = 'cust-slow-shipment';
/** How long the slow carrier takes to print a label. */
export const SLOW_CARRIER_DELAY = '3s';

interface Shipment {
  shipmentId: string;
  customerId: string;
  reservationId: string;
  items: OrderItem[];
  status: 'label_created' | 'cancelled';
}

/**
 * The carrier integration, one keyed object per order: its state is the order's shipment.
 * `create` is idempotent per order; `cancel` voids the label.
 *
 * Fails for `customerId` {@link UNSHIPPABLE_CUSTOMER} (502 `no_carrier`); stalls for
 * {@link SLOW_CARRIER_DELAY} for {@link SLOW_SHIPPING_CUSTOMER} (a durable sleep: the order
 * survives a restart while it waits).
 */
export const OrderSagaShipping = object({
  name: 'OrderSagaShipping',
  handlers: {
    /** Books a carrier and prints the label for an order's reserved items. */
    create: handler(
      {
        input: z.object({
          customerId: z.string().min(1),
          reservationId: z.string().min(1),
          items: z.array(z.object({ sku: z.string().min(1), quantity: z.number().int() })),
        }),
      },
      async (ctx: ObjectContext, req) => {
        const existing = await ctx.get<Shipment>('shipment');
        if (existing) return { shipmentId: existing.shipmentId };
        if (req.customerId === UNSHIPPABLE_CUSTOMER) {
          throw new TerminalError(`no carrier ships to the address of ${req.customerId}`, {
            code: 'no_carrier',
            status: 502,
          });
        }
        if (req.customerId === SLOW_SHIPPING_CUSTOMER) await ctx.sleep(SLOW_CARRIER_DELAY);
        const shipment: Shipment = {
          shipmentId: `shp_${ctx.key}`,
          customerId: req.customerId,
          reservationId: req.reservationId,
          items: req.items,
          status: 'label_created',
        };
        ctx.set('shipment', shipment);
        return { shipmentId: shipment.shipmentId };
      },
    ),

    /** Voids the label (only a cancelled order needs it: nothing critical follows shipping). */
    cancel: async (ctx) => {
      const shipment = await ctx.get<Shipment>('shipment');
      if (!shipment) return { status: 'none' };
      shipment.status = 'cancelled';
      ctx.set('shipment', shipment);
      return { shipmentId: shipment.shipmentId, status: shipment.status };
    },

    /** The order's shipment, or null. */
    shipment: shared(async (ctx) => (await ctx.get<Shipment>('shipment')) ?? null),
  },
});
