/**
 * Seed 001, exercise 3: food delivery coordination. `DeliveryOrchestrator` submits the order to
 * the restaurant, charges the customer, assigns a driver (trying the next one when a driver is
 * unavailable, and reassigning if the driver drops out before pickup), waits for the kitchen
 * (an awakeable the restaurant resolves), sends the driver, tracks the delivery and completes
 * the order. A cancellation by the customer, a rejecting or silent restaurant, or no driver
 * undoes it all: refund, release the driver, cancel the kitchen order.
 */
import { z } from 'zod';
import {
  handler,
  TerminalError,
  TimeoutError,
  workflow,
  type Saga,
  type WorkflowContext,
  type WorkflowSharedContext,
} from '../../src/index.js';
import { orchestrate, readStatus, type RunTracker } from '../orchestration-kit/status.js';
import { simulations } from '../orchestration-kit/simulate.js';
import { DeliveryDispatch, DeliveryDriver, type Delivered } from './drivers.js';
import { DeliveryPayments } from './payments.js';
import { DeliveryRestaurant, type Ready } from './restaurant.js';

/** How long the kitchen has to mark the order ready. */
export const RESTAURANT_TIMEOUT = '45m';
/** While no driver is free, look again this often... */
export const DRIVER_RETRY = '1m';
/** ...this many times (10 minutes) before giving up. */
export const DRIVER_ROUNDS = 10;
/** How long after pickup the delivery must be confirmed before the order counts as lost. */
export const DELIVERY_TIMEOUT = '2h';
/** How many times a dropped-out driver is replaced before the order is given up. */
export const REASSIGNMENTS = 3;

/** An order, as `POST /DeliveryOrchestrator/{orderId}/run` takes it. */
export const DeliveryRequest = z.object({
  customerId: z.string().min(1),
  restaurantId: z.string().min(1),
  /** The dispatch zone whose drivers may take the order. */
  zone: z.string().min(1),
  items: z
    .array(
      z.object({
        name: z.string().min(1),
        quantity: z.number().int().positive(),
        price: z.number().nonnegative(),
      }),
    )
    .min(1),
  simulate: simulations(['restaurant', 'payment']),
});
export type DeliveryRequest = z.infer<typeof DeliveryRequest>;

/** What the `cancel` handler resolves the run's `cancel` promise with. */
export interface CancelRequest {
  reason: string;
}

/** What a delivered order returns (besides `status: "completed"`). */
export interface DeliveryDone {
  orderId: string;
  amount: number;
  driverId: string;
  readyAt: string;
  deliveredAt: string;
}

const cancelledByCustomer = (c: CancelRequest) =>
  new TerminalError(`cancelled by the customer: ${c.reason}`, {
    code: 'cancelled_by_customer',
    status: 409,
  });

const isCode = (err: unknown, code: string): err is TerminalError =>
  err instanceof TerminalError && err.code === code;

/** What a rejected kitchen awakeable (code `rejected`) becomes; other errors stay as they are. */
function kitchenError(err: unknown): Error {
  if (isCode(err, 'rejected')) {
    return new TerminalError(`the restaurant rejected the order: ${err.message}`, {
      code: 'restaurant_rejected',
      status: 409,
    });
  }
  return err instanceof Error ? err : new Error(String(err));
}

async function deliver(ctx: WorkflowContext, s: Saga, tracker: RunTracker, order: DeliveryRequest) {
  const orderId = ctx.key;
  const amount =
    Math.round(order.items.reduce((sum, i) => sum + i.quantity * i.price, 0) * 100) / 100;
  const restaurant = ctx.objectClient(DeliveryRestaurant, order.restaurantId);
  const payment = ctx.objectClient(DeliveryPayments, orderId);
  const driver = (id: string) => ctx.objectClient(DeliveryDriver, id);
  const cancellation = () => ctx.promise<CancelRequest>('cancel').get();
  /** The driver on the order now (a reassignment changes it; the undo releases whoever it is). */
  let driverId: string | undefined;

  // The awakeable the kitchen resolves when the food is ready (or rejects if it cannot cook).
  const ready = ctx.awakeable<Ready>();
  /** Settles only if the kitchen rejects the order: lets a driver search stop early. */
  const kitchenRejects = ready.promise.then(
    () => new Promise<never>(() => undefined),
    (err: unknown) => Promise.reject(kitchenError(err)),
  );
  kitchenRejects.catch(() => undefined); // observed by the races below, if they run

  /**
   * Tries every driver on shift in the zone; while none is free, looks again every minute,
   * unless the customer cancels or the kitchen rejects the order meanwhile.
   */
  const findDriver = async (exclude: string[]): Promise<string> => {
    for (let round = 1; ; round++) {
      const roster = await ctx.objectClient(DeliveryDispatch, order.zone).drivers();
      for (const candidate of roster.filter((d) => !exclude.includes(d))) {
        try {
          await driver(candidate).assign(orderId);
          ctx.set('driver', candidate);
          return candidate;
        } catch (err) {
          if (!isCode(err, 'driver_unavailable')) throw err;
          await tracker.note(err.message);
        }
      }
      if (round >= DRIVER_ROUNDS) {
        const why = `no driver was free in ${order.zone} for ${DRIVER_ROUNDS} minutes`;
        throw new TerminalError(why, { code: 'no_driver', status: 503 });
      }
      await tracker.note(`no driver free in ${order.zone}; looking again in ${DRIVER_RETRY}`);
      const woke = await ctx.race([
        ctx.sleep(DRIVER_RETRY).then(() => 'retry' as const),
        cancellation(),
        kitchenRejects,
      ]);
      if (woke !== 'retry') throw cancelledByCustomer(woke);
    }
  };

  // 1. Submit the order, with the awakeable's id for the kitchen to call back.
  await s.invoke(
    'submit order to restaurant',
    () =>
      restaurant.submitOrder({
        orderId,
        items: order.items.map(({ name, quantity }) => ({ name, quantity })),
        readyCallback: ready.id,
        simulate: order.simulate?.restaurant,
      }),
    {
      undoWhen: 'maybe',
      undoName: 'cancel restaurant order',
      undo: () => restaurant.cancelOrder(orderId),
    },
  );

  // 2. Charge (in doubt after 5 minutes: refunded anyway, see the order example).
  await s.invoke(
    'charge customer',
    () =>
      payment.charge({ amount, customerId: order.customerId, simulate: order.simulate?.payment }),
    {
      timeout: '5m',
      undoWhen: 'maybe',
      undoName: 'refund customer',
      undo: () => payment.refund(),
    },
  );

  // 3. Assign a driver.
  await s.invoke('assign driver', async () => (driverId = await findDriver([])), {
    undoWhen: 'maybe',
    undoName: 'release driver',
    undo: async () => {
      if (driverId) await driver(driverId).release(orderId);
    },
  });

  // 4. Wait for the kitchen, the customer's cancellation, or the deadline: whichever is first.
  const food = await s.invoke('wait for restaurant', async () => {
    await tracker.waiting('the restaurant to mark the order ready', {
      awakeableId: ready.id,
      timeout: RESTAURANT_TIMEOUT,
    });
    let first: Ready | CancelRequest | 'timeout';
    try {
      first = await ctx.race([
        ready.promise,
        cancellation(),
        ctx.sleep(RESTAURANT_TIMEOUT).then(() => 'timeout' as const),
      ]);
    } catch (err) {
      throw kitchenError(err);
    }
    if (first === 'timeout') {
      throw new TerminalError(`the restaurant did not confirm within ${RESTAURANT_TIMEOUT}`, {
        code: 'restaurant_timeout',
        status: 504,
      });
    }
    if ('reason' in first) throw cancelledByCustomer(first);
    return first;
  });

  // 5. Send the driver. A driver who went off shift meanwhile is replaced. From here on the
  //    food is on its way: a last look at the cancel promise, then cancelling is refused.
  const delivered = ctx.awakeable<Delivered>();
  await s.invoke('notify driver to pick up', async () => {
    const late = await ctx.promise<CancelRequest>('cancel').peek();
    if (late) throw cancelledByCustomer(late);
    ctx.set('pickedUp', true);
    for (let replaced = 0; ; replaced++) {
      try {
        return await driver(driverId!).notifyPickup({
          orderId,
          restaurantId: order.restaurantId,
          deliveredCallback: delivered.id,
        });
      } catch (err) {
        if (!isCode(err, 'driver_unavailable') || replaced >= REASSIGNMENTS) throw err;
        await tracker.note(`${err.message}; reassigning`);
        const dropped = driverId!;
        await driver(dropped).release(orderId);
        driverId = undefined;
        driverId = await findDriver([dropped]);
        await tracker.note(`reassigned from ${dropped} to ${driverId}`);
      }
    }
  });

  // 6. Track: the driver app reports positions (see `track`) and finally confirms delivery.
  const proof = await s.invoke('track delivery', async () => {
    await tracker.waiting(`driver ${driverId} to confirm delivery`, {
      awakeableId: delivered.id,
      timeout: DELIVERY_TIMEOUT,
    });
    try {
      return await delivered.promise.orTimeout(DELIVERY_TIMEOUT);
    } catch (err) {
      if (!(err instanceof TimeoutError)) throw err;
      throw new TerminalError(`no delivery confirmation within ${DELIVERY_TIMEOUT}: order lost`, {
        code: 'delivery_lost',
        status: 504,
      });
    }
  });

  // 7. Complete: the kitchen closes its ticket.
  await s.invoke('complete order', () => restaurant.complete(orderId));
  return {
    orderId,
    amount,
    driverId: proof.driverId,
    readyAt: food.readyAt,
    deliveredAt: proof.deliveredAt,
  } satisfies DeliveryDone;
}

const FINAL = new Set(['completed', 'compensated', 'compensation_failed', 'cancelled']);

/**
 * The food delivery orchestrator: one workflow per order id. `status` and `track` (status plus
 * the driver's whereabouts) can be called at any time; `cancel` works until the driver is sent.
 *
 * @example
 * ```sh
 * curl -X POST localhost:9080/DeliveryOrchestrator/food-1/run/send -H 'content-type: application/json' \
 *   -d '{"customerId":"c-1","restaurantId":"pizzeria","zone":"downtown","items":[{"name":"margherita","quantity":1,"price":11}]}'
 * curl -X POST localhost:9080/DeliveryRestaurant/pizzeria/markReady -H 'content-type: application/json' -d '"food-1"'
 * ```
 */
export const DeliveryOrchestrator = workflow({
  name: 'DeliveryOrchestrator',
  run: handler({ input: DeliveryRequest }, async (ctx: WorkflowContext, order) => {
    return orchestrate(ctx, (s, tracker) => deliver(ctx, s, tracker, order));
  }),
  handlers: {
    /** The current step and the history of this order. */
    status: async (ctx: WorkflowSharedContext) => readStatus(ctx),

    /** The status plus the assigned driver's shift, job and last position. */
    track: async (ctx: WorkflowSharedContext) => {
      const driverId = await ctx.get<string>('driver');
      const driver = driverId
        ? await ctx.objectClient(DeliveryDriver, driverId).whereabouts()
        : null;
      return { ...(await readStatus(ctx)), driver };
    },

    /** The customer cancels: honoured until the driver is sent to the restaurant. */
    cancel: handler(
      { input: z.object({ reason: z.string().optional() }).optional() },
      async (ctx: WorkflowSharedContext, req) => {
        if (FINAL.has((await readStatus(ctx)).state)) {
          throw new TerminalError(`order ${ctx.key} has already finished`, {
            code: 'already_finished',
            status: 409,
          });
        }
        if (await ctx.get<boolean>('pickedUp')) {
          throw new TerminalError(`order ${ctx.key} is on its way and can no longer be cancelled`, {
            code: 'too_late',
            status: 409,
          });
        }
        const reason = req?.reason ?? 'no reason given';
        await ctx.promise<CancelRequest>('cancel').resolve({ reason });
        return { orderId: ctx.key, cancellation: 'requested', reason };
      },
    ),
  },
});
