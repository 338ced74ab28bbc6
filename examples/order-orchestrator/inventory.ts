/**
 * InventoryService of the order exercise: one object per SKU, holding the units on hand and
 * the reservations made against them, so two orders can never reserve the same unit.
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

/** A reservation of some units of one SKU, by order id. */
export interface Reservation {
  quantity: number;
  /** `released`: given back (or cancelled before it was made: quantity 0). */
  status: 'reserved' | 'released';
}

/** The stock of one SKU. */
export interface StockLevel {
  sku: string;
  /** Units that can still be reserved. */
  onHand: number;
  /** Units held by reservations not released. */
  reserved: number;
  reservations: Record<string, Reservation>;
}

async function levelOf(ctx: ObjectSharedContext): Promise<StockLevel> {
  return (
    (await ctx.get<StockLevel>('stock')) ?? {
      sku: ctx.key,
      onHand: 0,
      reserved: 0,
      reservations: {},
    }
  );
}

/** Stock per SKU: restock, check, reserve (idempotent per order), release. */
export const FulfillmentInventory = object({
  name: 'FulfillmentInventory',
  handlers: {
    /** Adds units (an admin action: how stock gets there, and how to make an order fail on it). */
    restock: handler(
      { input: z.number().int().nonnegative() },
      async (ctx: ObjectContext, units): Promise<StockLevel> => {
        const stock = await levelOf(ctx);
        const next = { ...stock, onHand: stock.onHand + units };
        ctx.set('stock', next);
        return next;
      },
    ),

    /** Whether `quantity` units could be reserved now (step 1: check availability). */
    check: shared(
      async (ctx, quantity: number) => {
        const stock = await levelOf(ctx);
        return { sku: ctx.key, onHand: stock.onHand, enough: stock.onHand >= quantity };
      },
      { input: z.number().int().positive() },
    ),

    /** Reserves units for an order; a repeated reservation for the same order returns the first. */
    reserve: async (
      ctx: ObjectContext,
      req: { orderId: string; quantity: number },
    ): Promise<Reservation> => {
      const stock = await levelOf(ctx);
      const existing = stock.reservations[req.orderId];
      if (existing?.status === 'reserved') return existing;
      if (existing) {
        throw new TerminalError(
          `the reservation of ${ctx.key} for ${req.orderId} was released before it was made`,
          { code: 'reservation_released', status: 409 },
        );
      }
      if (stock.onHand < req.quantity) {
        throw new TerminalError(`only ${stock.onHand} of ${ctx.key} left, ${req.quantity} wanted`, {
          code: 'out_of_stock',
          status: 409,
        });
      }
      const reservation: Reservation = { quantity: req.quantity, status: 'reserved' };
      ctx.set('stock', {
        ...stock,
        onHand: stock.onHand - req.quantity,
        reserved: stock.reserved + req.quantity,
        reservations: { ...stock.reservations, [req.orderId]: reservation },
      });
      return reservation;
    },

    /**
     * Gives an order's units back; idempotent. Releasing a reservation that was never made
     * records it as released, so a reservation arriving late is refused.
     */
    release: handler(
      { input: z.string().min(1) },
      async (ctx: ObjectContext, orderId): Promise<Reservation> => {
        const stock = await levelOf(ctx);
        const existing = stock.reservations[orderId];
        if (existing?.status === 'released') return existing;
        const quantity = existing?.quantity ?? 0;
        const released: Reservation = { quantity, status: 'released' };
        ctx.set('stock', {
          ...stock,
          onHand: stock.onHand + quantity,
          reserved: stock.reserved - quantity,
          reservations: { ...stock.reservations, [orderId]: released },
        });
        return released;
      },
    ),

    /** Units on hand and reserved, with every reservation. */
    level: shared(async (ctx) => levelOf(ctx)),
  },
});
