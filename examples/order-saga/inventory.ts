import { z } from 'zod';
import {
  handler,
  object,
  shared,
  TerminalError,
  type ObjectContext,
  type ObjectSharedContext,
} from '../../src/index.js';

/** The warehouse the order saga reserves from (the object key). */
export const WAREHOUSE = 'main';

/**
 * Opening stock of the demo catalogue. `ITEM-SOLD-OUT` has none: order it to try the
 * "inventory fails" path; so does ordering more than is left of any item.
 */
export const OPENING_STOCK: Readonly<Record<string, number>> = {
  'ITEM-001': 100,
  'ITEM-002': 50,
  'ITEM-003': 5,
  'ITEM-SOLD-OUT': 0,
};

/** One line of an order. */
export interface OrderItem {
  sku: string;
  quantity: number;
}

interface Reservation {
  reservationId: string;
  orderId: string;
  items: OrderItem[];
  status: 'reserved' | 'released';
}

interface InventoryState {
  /** Units available to reserve, per SKU. */
  available: Record<string, number>;
  reservations: Record<string, Reservation>;
  /** Requests answered from the record (see the payments ledger for why this is counted). */
  replays: number;
}

const load = async (ctx: ObjectSharedContext): Promise<InventoryState> =>
  (await ctx.get<InventoryState>('state')) ?? {
    available: { ...OPENING_STOCK },
    reservations: {},
    replays: 0,
  };

/**
 * The stock of one warehouse. `reserve` takes every line of an order or none of them (one
 * exclusive handler per warehouse, so two orders never oversell the last unit); `release`
 * puts a reservation back and is idempotent.
 *
 * Fails with 409 `out_of_stock` when a line asks for more than is available (try
 * `ITEM-SOLD-OUT`), and 404 `unknown_sku` for a SKU the catalogue does not have.
 */
export const OrderSagaInventory = object({
  name: 'OrderSagaInventory',
  handlers: {
    /** Reserves every item of an order, all or nothing. */
    reserve: handler(
      {
        input: z.object({
          orderId: z.string().min(1),
          items: z.array(z.object({ sku: z.string().min(1), quantity: z.number().int() })),
        }),
      },
      async (ctx: ObjectContext, req) => {
        const state = await load(ctx);
        const reservationId = `res_${req.orderId}`;
        if (state.reservations[reservationId]) {
          state.replays++;
          ctx.set('state', state);
          return { reservationId };
        }
        // Check every line before taking anything, so a failure leaves the stock untouched.
        const short: string[] = [];
        for (const { sku, quantity } of req.items) {
          const left = state.available[sku];
          if (left === undefined) {
            throw new TerminalError(`the catalogue has no SKU "${sku}"`, {
              code: 'unknown_sku',
              status: 404,
            });
          }
          if (left < quantity) short.push(`${sku} (wanted ${quantity}, ${left} left)`);
        }
        if (short.length > 0) {
          throw new TerminalError(`out of stock: ${short.join(', ')}`, {
            code: 'out_of_stock',
            status: 409,
          });
        }
        for (const { sku, quantity } of req.items) state.available[sku]! -= quantity;
        state.reservations[reservationId] = {
          reservationId,
          orderId: req.orderId,
          items: req.items,
          status: 'reserved',
        };
        ctx.set('state', state);
        return { reservationId };
      },
    ),

    /** Puts a reservation's items back on the shelf; releasing twice changes nothing. */
    release: handler(
      { input: z.object({ reservationId: z.string().min(1) }) },
      async (ctx: ObjectContext, req) => {
        const state = await load(ctx);
        const reservation = state.reservations[req.reservationId];
        if (!reservation) return { reservationId: req.reservationId, status: 'unknown' };
        if (reservation.status === 'released') {
          state.replays++;
        } else {
          for (const { sku, quantity } of reservation.items) state.available[sku]! += quantity;
          reservation.status = 'released';
        }
        ctx.set('state', state);
        return { reservationId: req.reservationId, status: reservation.status };
      },
    ),

    /** Admin: adds units of a SKU (a new SKU joins the catalogue). */
    restock: handler(
      { input: z.object({ sku: z.string().min(1), quantity: z.number().int() }) },
      async (ctx: ObjectContext, req) => {
        const state = await load(ctx);
        state.available[req.sku] = (state.available[req.sku] ?? 0) + req.quantity;
        ctx.set('state', state);
        return { sku: req.sku, available: state.available[req.sku] };
      },
    ),

    /** Units available per SKU, and the reservations. */
    stock: shared(async (ctx) => {
      const state = await load(ctx);
      return {
        warehouse: ctx.key,
        available: state.available,
        reservations: Object.values(state.reservations),
        replays: state.replays,
      };
    }),
  },
});
