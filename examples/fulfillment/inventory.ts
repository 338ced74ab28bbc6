/**
 * InventoryService of the fulfillment exercise: one object per warehouse, holding its stock and
 * the reservations of the orders it serves. A reservation is all-or-nothing and keyed by order
 * id, so reserving twice is one reservation, and releasing is idempotent; a release that comes
 * before its reservation (the orchestrator gave up waiting) leaves a mark that refuses the late
 * reservation.
 */
import {
  object,
  shared,
  TerminalError,
  type ObjectContext,
  type ObjectSharedContext,
} from '../../src/index.js';
import { DOWNSTREAM_RETRY, simulated, type FailureMode } from './simulate.js';

/** One line of an order. */
export interface Item {
  sku: string;
  quantity: number;
}

/** The stock every warehouse starts with (any warehouse id works). */
export const DEMO_STOCK: Readonly<Record<string, number>> = {
  'SKU-1': 100,
  'SKU-2': 50,
  'SKU-3': 5,
  'SKU-SOLD-OUT': 0,
};

/** One SKU's stock: on hand, and how much of it is reserved for orders. */
export interface StockLevel {
  onHand: number;
  reserved: number;
}

/** An order's reservation. */
export interface Reservation {
  orderId: string;
  items: Item[];
  status: 'reserved' | 'released';
  /** The attempt of `reserve` that succeeded (1 = first try): shows retries at work. */
  attempt: number;
}

/** A warehouse's stock and reservations, as `stock` returns them. */
export interface Inventory {
  warehouse: string;
  stock: Record<string, StockLevel>;
  reservations: Record<string, Reservation>;
}

async function load(ctx: ObjectSharedContext): Promise<Inventory> {
  return (
    (await ctx.get<Inventory>('inventory')) ?? {
      warehouse: ctx.key,
      stock: Object.fromEntries(
        Object.entries(DEMO_STOCK).map(([sku, onHand]) => [sku, { onHand, reserved: 0 }]),
      ),
      reservations: {},
    }
  );
}

/**
 * Stock per warehouse: `reserve` and `release` for the orchestrator, `stock` to look, `restock`
 * to add. Transient failures are retried by the engine ({@link DOWNSTREAM_RETRY}).
 *
 * @example
 * ```sh
 * curl -X POST localhost:9080/FulfillmentStock/main/stock
 * ```
 */
export const FulfillmentStock = object({
  name: 'FulfillmentStock',
  retry: DOWNSTREAM_RETRY,
  handlers: {
    /** Reserves every item of an order, or none (409 `out_of_stock`). Idempotent per order. */
    reserve: async (
      ctx: ObjectContext,
      req: { orderId: string; items: Item[]; simulate?: FailureMode },
    ): Promise<Reservation> => {
      const attempt = simulated(ctx, req.simulate, {
        code: 'inventory_unavailable',
        message: `warehouse ${ctx.key} refused the reservation`,
      });
      const inv = await load(ctx);
      const known = inv.reservations[req.orderId];
      if (known?.status === 'reserved') return known;
      if (known?.status === 'released') {
        throw new TerminalError(`order ${req.orderId} was already released`, {
          code: 'reservation_released',
          status: 409,
        });
      }
      const short = req.items.filter((i) => {
        const level = inv.stock[i.sku];
        return !level || level.onHand - level.reserved < i.quantity;
      });
      if (short.length > 0) {
        throw new TerminalError(
          `out of stock in ${ctx.key}: ${short.map((i) => `${i.quantity} × ${i.sku}`).join(', ')}`,
          { code: 'out_of_stock', status: 409 },
        );
      }
      for (const i of req.items) inv.stock[i.sku]!.reserved += i.quantity;
      const reservation: Reservation = {
        orderId: req.orderId,
        items: req.items,
        status: 'reserved',
        attempt,
      };
      inv.reservations[req.orderId] = reservation;
      ctx.set('inventory', inv);
      return reservation;
    },

    /** Gives an order's reserved stock back. Idempotent; a release before the reservation sticks. */
    release: async (ctx: ObjectContext, orderId: string): Promise<{ released: boolean }> => {
      const inv = await load(ctx);
      const known = inv.reservations[orderId];
      if (known?.status === 'released') return { released: false };
      if (known) {
        for (const i of known.items) inv.stock[i.sku]!.reserved -= i.quantity;
        known.status = 'released';
      } else {
        inv.reservations[orderId] = { orderId, items: [], status: 'released', attempt: 0 };
      }
      ctx.set('inventory', inv);
      return { released: known !== undefined };
    },

    /** Adds stock of one SKU. */
    restock: async (ctx: ObjectContext, req: { sku: string; quantity: number }) => {
      if (!Number.isInteger(req?.quantity) || req.quantity <= 0 || !req.sku) {
        throw new TerminalError('restock takes {"sku", "quantity" > 0}', {
          code: 'invalid_request',
          status: 400,
        });
      }
      const inv = await load(ctx);
      const level = (inv.stock[req.sku] ??= { onHand: 0, reserved: 0 });
      level.onHand += req.quantity;
      ctx.set('inventory', inv);
      return level;
    },

    /** The warehouse's stock and reservations. */
    stock: shared(async (ctx: ObjectSharedContext) => load(ctx)),
  },
});
