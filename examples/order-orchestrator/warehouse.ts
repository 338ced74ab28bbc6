import { z } from 'zod';
/**
 * WarehouseService of the order exercise: one object per warehouse, holding its pick tickets
 * (pick and pack orders for the floor) and whether it is open.
 */
import {
  handler,
  object,
  shared,
  TerminalError,
  type ObjectContext,
  type ObjectSharedContext,
} from '../../src/index.js';
import { simulated, type Simulation } from '../orchestration-kit/simulate.js';

/** A pick-and-pack order for the warehouse floor. */
export interface PickTicket {
  ticketId: string;
  orderId: string;
  items: Array<{ sku: string; quantity: number }>;
  /** `cancelled`: the order was undone before it shipped (or before the ticket existed). */
  status: 'open' | 'cancelled';
  createdAt: string;
}

interface WarehouseState {
  closed: boolean;
  tickets: Record<string, PickTicket>;
}

async function stateOf(ctx: ObjectSharedContext): Promise<WarehouseState> {
  return (await ctx.get<WarehouseState>('warehouse')) ?? { closed: false, tickets: {} };
}

/** Pick tickets per warehouse: create (idempotent per order), cancel; close/open for failures. */
export const FulfillmentWarehouse = object({
  name: 'FulfillmentWarehouse',
  handlers: {
    /** Creates the pick ticket of an order, once. Fails while the warehouse is closed. */
    createPickTicket: async (
      ctx: ObjectContext,
      req: { orderId: string; items: PickTicket['items']; simulate?: Simulation },
    ): Promise<PickTicket> => {
      const state = await stateOf(ctx);
      const existing = state.tickets[req.orderId];
      if (existing?.status === 'open') return existing;
      if (existing) {
        throw new TerminalError(`the pick ticket of ${req.orderId} was cancelled`, {
          code: 'ticket_cancelled',
          status: 409,
        });
      }
      if (state.closed) {
        throw new TerminalError(`warehouse ${ctx.key} is closed and takes no pick tickets`, {
          code: 'warehouse_closed',
          status: 503,
        });
      }
      await simulated(ctx, req.simulate, {
        code: 'pick_failed',
        message: `warehouse ${ctx.key} could not create a pick ticket`,
      });
      const ticket: PickTicket = {
        ticketId: `pick-${ctx.key}-${req.orderId}`,
        orderId: req.orderId,
        items: req.items,
        status: 'open',
        createdAt: new Date(await ctx.now()).toISOString(),
      };
      ctx.set('warehouse', { ...state, tickets: { ...state.tickets, [req.orderId]: ticket } });
      return ticket;
    },

    /** Cancels an order's pick ticket; idempotent, and a ticket created later is refused. */
    cancelPickTicket: handler(
      { input: z.string().min(1) },
      async (ctx: ObjectContext, orderId): Promise<PickTicket> => {
        const state = await stateOf(ctx);
        const existing = state.tickets[orderId];
        if (existing?.status === 'cancelled') return existing;
        const cancelled: PickTicket = existing
          ? { ...existing, status: 'cancelled' }
          : {
              ticketId: `pick-${ctx.key}-${orderId}`,
              orderId,
              items: [],
              status: 'cancelled',
              createdAt: new Date(await ctx.now()).toISOString(),
            };
        ctx.set('warehouse', { ...state, tickets: { ...state.tickets, [orderId]: cancelled } });
        return cancelled;
      },
    ),

    /** Closes the warehouse: every new pick ticket fails with `warehouse_closed`. */
    close: async (ctx: ObjectContext) => {
      ctx.set('warehouse', { ...(await stateOf(ctx)), closed: true });
      return { warehouse: ctx.key, closed: true };
    },

    /** Opens it again. */
    open: async (ctx: ObjectContext) => {
      ctx.set('warehouse', { ...(await stateOf(ctx)), closed: false });
      return { warehouse: ctx.key, closed: false };
    },

    /** Whether it is closed, and its pick tickets by order id. */
    tickets: shared(async (ctx) => stateOf(ctx)),
  },
});
