import { z } from 'zod';
/**
 * RestaurantService of the food delivery exercise: one object per restaurant, holding the
 * orders its kitchen has received. An order carries the awakeable id of the orchestrator
 * waiting for it; the kitchen completes it by marking the order ready (or rejecting it), as a
 * restaurant's tablet app would call a webhook.
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

/** An order as the kitchen sees it. */
export interface KitchenOrder {
  orderId: string;
  items: Array<{ name: string; quantity: number }>;
  status: 'received' | 'ready' | 'rejected' | 'cancelled' | 'completed';
  /** The awakeable to resolve when the food is ready. */
  readyCallback: string;
  receivedAt: string;
}

/** What the orchestrator's awakeable receives when the food is ready. */
export interface Ready {
  readyAt: string;
}

interface RestaurantState {
  closed: boolean;
  orders: Record<string, KitchenOrder>;
}

async function stateOf(ctx: ObjectSharedContext): Promise<RestaurantState> {
  return (await ctx.get<RestaurantState>('restaurant')) ?? { closed: false, orders: {} };
}

/** The order, checked to be in one of the `from` states. */
async function orderIn(
  ctx: ObjectSharedContext,
  orderId: string,
  from: Array<KitchenOrder['status']>,
  to: KitchenOrder['status'],
): Promise<KitchenOrder> {
  const order = (await stateOf(ctx)).orders[orderId];
  if (!order) {
    throw new TerminalError(`${ctx.key} has no order ${orderId}`, {
      code: 'order_not_found',
      status: 404,
    });
  }
  if (!from.includes(order.status)) {
    throw new TerminalError(`order ${orderId} is ${order.status}, it cannot become ${to}`, {
      code: 'invalid_order_state',
      status: 409,
    });
  }
  return order;
}

async function save(ctx: ObjectContext, order: KitchenOrder): Promise<KitchenOrder> {
  const state = await stateOf(ctx);
  ctx.set('restaurant', { ...state, orders: { ...state.orders, [order.orderId]: order } });
  return order;
}

/** Restaurants: take orders, mark them ready or reject them, cancel, complete. */
export const DeliveryRestaurant = object({
  name: 'DeliveryRestaurant',
  handlers: {
    /** Takes an order into the kitchen, once per order id. Refused while closed. */
    submitOrder: async (
      ctx: ObjectContext,
      req: {
        orderId: string;
        items: KitchenOrder['items'];
        readyCallback: string;
        simulate?: Simulation;
      },
    ) => {
      const state = await stateOf(ctx);
      const existing = state.orders[req.orderId];
      if (existing?.status === 'cancelled') {
        throw new TerminalError(`order ${req.orderId} was cancelled`, {
          code: 'order_cancelled',
          status: 409,
        });
      }
      if (!existing) {
        if (state.closed) {
          throw new TerminalError(`${ctx.key} is closed`, {
            code: 'restaurant_closed',
            status: 503,
          });
        }
        await simulated(ctx, req.simulate, {
          code: 'order_refused',
          message: `${ctx.key} refused the order`,
          status: 409,
        });
        const order: KitchenOrder = {
          orderId: req.orderId,
          items: req.items,
          status: 'received',
          readyCallback: req.readyCallback,
          receivedAt: new Date(await ctx.now()).toISOString(),
        };
        ctx.set('restaurant', { ...state, orders: { ...state.orders, [req.orderId]: order } });
      }
      const units = req.items.reduce((n, i) => n + i.quantity, 0);
      return { orderId: req.orderId, estimatedMinutes: 10 + 2 * units };
    },

    /** The kitchen says the food is ready: wakes the orchestrator waiting for it. */
    markReady: handler({ input: z.string().min(1) }, async (ctx: ObjectContext, orderId) => {
      const order = await orderIn(ctx, orderId, ['received'], 'ready');
      const ready: Ready = { readyAt: new Date(await ctx.now()).toISOString() };
      // Wake the orchestrator first: if that fails, the kitchen's record stays unchanged.
      await ctx.resolveAwakeable(order.readyCallback, ready);
      return save(ctx, { ...order, status: 'ready' });
    }),

    /** The kitchen cannot make it: the orchestrator's wait fails, and it compensates. */
    rejectOrder: handler(
      { input: z.object({ orderId: z.string().min(1), reason: z.string() }) },
      async (ctx: ObjectContext, req) => {
        const order = await orderIn(ctx, req.orderId, ['received'], 'rejected');
        await ctx.rejectAwakeable(order.readyCallback, req.reason);
        return save(ctx, { ...order, status: 'rejected' });
      },
    ),

    /**
     * Compensation: the order is off. Idempotent; an order never received is recorded as
     * cancelled, so a submission arriving late is refused.
     */
    cancelOrder: handler({ input: z.string().min(1) }, async (ctx: ObjectContext, orderId) => {
      const state = await stateOf(ctx);
      const order = state.orders[orderId];
      if (order && order.status !== 'received' && order.status !== 'ready') return order;
      const cancelled: KitchenOrder = order
        ? { ...order, status: 'cancelled' }
        : {
            orderId,
            items: [],
            status: 'cancelled',
            readyCallback: '',
            receivedAt: new Date(await ctx.now()).toISOString(),
          };
      ctx.set('restaurant', { ...state, orders: { ...state.orders, [orderId]: cancelled } });
      return cancelled;
    }),

    /**
     * The order was delivered: the kitchen closes its ticket. From `received` too: a kitchen
     * that confirmed straight over the awakeable API never marked it ready here.
     */
    complete: handler({ input: z.string().min(1) }, async (ctx: ObjectContext, orderId) => {
      const order = await orderIn(ctx, orderId, ['received', 'ready', 'completed'], 'completed');
      return save(ctx, { ...order, status: 'completed' });
    }),

    /** Closes the restaurant: new orders fail with `restaurant_closed`. */
    close: async (ctx: ObjectContext) => {
      ctx.set('restaurant', { ...(await stateOf(ctx)), closed: true });
      return { restaurant: ctx.key, closed: true };
    },

    /** Opens it again. */
    open: async (ctx: ObjectContext) => {
      ctx.set('restaurant', { ...(await stateOf(ctx)), closed: false });
      return { restaurant: ctx.key, closed: false };
    },

    /** Whether it is closed, and every order by id. */
    orders: shared(async (ctx) => stateOf(ctx)),
  },
});
