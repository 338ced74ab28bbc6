/**
 * Seed 000, exercise 3: the `InventoryClient` (`CheckAvailability`, `ReserveInventory`,
 * `ReleaseReservation`) as a Keel object keyed by warehouse. Its "simple map" of stock lives in
 * the object's durable state, so a reservation survives restarts, and one exclusive handler per
 * warehouse at a time means two orders never reserve the same last unit.
 */
import { z } from 'zod';
import {
  handler,
  object,
  shared,
  TerminalError,
  type ObjectContext,
  type ObjectSharedContext,
} from '../../src/index.js';

/** The warehouse the notified orders reserve from (the object key). */
export const ORDER_WAREHOUSE = 'main';

/**
 * Opening stock of the demo catalogue. `PROD-SOLD-OUT` has none: order it to see the
 * out-of-stock path (a terminal error before any charge).
 */
export const DEMO_STOCK: Readonly<Record<string, number>> = {
  'PROD-001': 100,
  'PROD-002': 25,
  'PROD-003': 3,
  'PROD-SOLD-OUT': 0,
};

/** One line of an order (the seed's `OrderItem`). */
export interface OrderItem {
  productId: string;
  quantity: number;
  /** Unit price. */
  price: number;
}

/** The seed's `InventoryCheck`. */
export interface InventoryCheck {
  productId: string;
  quantity: number;
  available: boolean;
}

/** The seed's `Reservation`. */
export interface Reservation {
  id: string;
  items: OrderItem[];
}

interface StoredReservation extends Reservation {
  orderId: string;
  status: 'reserved' | 'released';
}

interface InventoryState {
  stock: Record<string, number>;
  reservations: Record<string, StoredReservation>;
}

const load = async (ctx: ObjectSharedContext): Promise<InventoryState> =>
  (await ctx.get<InventoryState>('inventory')) ?? { stock: { ...DEMO_STOCK }, reservations: {} };

const Item = z.object({
  productId: z.string().min(1),
  quantity: z.number().int().positive(),
  price: z.number().nonnegative(),
});

/** The out-of-stock failure: terminal (no retry helps), 409, code `out_of_stock`. */
export function outOfStock(lines: string[]): TerminalError {
  return new TerminalError(`out of stock: ${lines.join(', ')}`, {
    code: 'out_of_stock',
    status: 409,
  });
}

/**
 * The inventory of one warehouse: `checkAvailability` (read-only), `reserveInventory` (all
 * lines or none; idempotent per order), `releaseReservation` (idempotent), plus `stock` to look
 * and `restock` to add units.
 *
 * @example
 * ```ts
 * const inventory = ctx.objectClient(OrderInventory, ORDER_WAREHOUSE);
 * const check = await inventory.checkAvailability({ productId: 'PROD-001', quantity: 2 });
 * if (!check.available) throw outOfStock(['PROD-001']);
 * const reservation = await inventory.reserveInventory({ orderId, items });
 * await inventory.releaseReservation({ reservationId: reservation.id });
 * ```
 */
export const OrderInventory = object({
  name: 'OrderInventory',
  handlers: {
    /** `CheckAvailability(productID, quantity)`: whether that many units are free now. */
    checkAvailability: shared(
      async (ctx, req: { productId: string; quantity: number }): Promise<InventoryCheck> => {
        const { stock } = await load(ctx);
        return { ...req, available: (stock[req.productId] ?? 0) >= req.quantity };
      },
      { input: z.object({ productId: z.string().min(1), quantity: z.number().int().positive() }) },
    ),

    /**
     * `ReserveInventory(items[])`: takes every line or none. The reservation id is derived from
     * the order, so reserving for the same order again returns the same reservation.
     */
    reserveInventory: handler(
      { input: z.object({ orderId: z.string().min(1), items: z.array(Item).min(1) }) },
      async (ctx: ObjectContext, req): Promise<Reservation> => {
        const state = await load(ctx);
        const id = `res_${req.orderId}`;
        const known = state.reservations[id];
        if (known?.status === 'reserved') return { id, items: known.items };
        // Stock may have moved since the check: look at every line before taking any.
        const short = req.items
          .filter((i) => (state.stock[i.productId] ?? 0) < i.quantity)
          .map(
            (i) => `${i.productId} (wanted ${i.quantity}, ${state.stock[i.productId] ?? 0} left)`,
          );
        if (short.length > 0) throw outOfStock(short);
        for (const i of req.items) state.stock[i.productId]! -= i.quantity;
        state.reservations[id] = { id, items: req.items, orderId: req.orderId, status: 'reserved' };
        ctx.set('inventory', state);
        return { id, items: req.items };
      },
    ),

    /** `ReleaseReservation(reservationID)`: puts the units back; releasing twice changes nothing. */
    releaseReservation: handler(
      { input: z.object({ reservationId: z.string().min(1) }) },
      async (ctx: ObjectContext, req) => {
        const state = await load(ctx);
        const r = state.reservations[req.reservationId];
        if (r === undefined) return { reservationId: req.reservationId, status: 'unknown' };
        if (r.status === 'reserved') {
          for (const i of r.items)
            state.stock[i.productId] = (state.stock[i.productId] ?? 0) + i.quantity;
          r.status = 'released';
          ctx.set('inventory', state);
        }
        return { reservationId: r.id, status: r.status };
      },
    ),

    /** Admin: adds units of a product (a new product joins the catalogue). */
    restock: handler(
      { input: z.object({ productId: z.string().min(1), quantity: z.number().int().positive() }) },
      async (ctx: ObjectContext, req) => {
        const state = await load(ctx);
        state.stock[req.productId] = (state.stock[req.productId] ?? 0) + req.quantity;
        ctx.set('inventory', state);
        return { productId: req.productId, stock: state.stock[req.productId] };
      },
    ),

    /** Units free per product, and every reservation with its status. */
    stock: shared(async (ctx) => {
      const state = await load(ctx);
      return {
        warehouse: ctx.key,
        stock: state.stock,
        reservations: Object.values(state.reservations),
      };
    }),
  },
});
