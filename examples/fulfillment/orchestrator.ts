/**
 * Seed 000, exercise 6: distributed order fulfillment. `FulfillmentOrchestrator` (a workflow
 * per order id) reserves the stock (`FulfillmentStock`), opens a pick ticket
 * (`FulfillmentPacking`), waits for the warehouse's signed "packed" webhook, books the carrier
 * pickup (`FulfillmentCarrier`), waits for the carrier's signed "picked up" webhook, and texts
 * the tracking number (`FulfillmentNotifications`, Twilio). Each step that did something is
 * undone, in reverse order, when a later one fails: cancel the pickup, cancel the pick ticket,
 * release the stock. Transient failures of the services are retried with backoff; the waits
 * give up after 24 h (packing) and 48 h (pickup).
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
import {
  orchestrate,
  readStatus,
  type RunStatus,
  type RunTracker,
} from '../orchestration-kit/status.js';
import { FulfillmentCarrier, type PickedUp } from './carrier.js';
import { FulfillmentStock } from './inventory.js';
import { FulfillmentNotifications } from './notifications.js';
import { simulateSchema } from './simulate.js';
import { FulfillmentPacking, type Packed } from './warehouse.js';

/** How long the warehouse has to pack the order. */
export const PACKING_TIMEOUT = '24h';
/** How long the carrier has to collect the parcel once the pickup is booked. */
export const PICKUP_TIMEOUT = '48h';

/** An order, as `POST /FulfillmentOrchestrator/{orderId}/run` takes it. */
export const FulfillmentRequest = z.object({
  customer: z.object({ name: z.string().min(1), phone: z.string().min(1) }),
  items: z
    .array(z.object({ sku: z.string().min(1), quantity: z.number().int().positive() }))
    .min(1),
  /** The warehouse (a `FulfillmentStock` key). Default `main`. */
  warehouse: z.string().min(1).default('main'),
  carrier: z.string().min(1).default('UPS'),
  simulate: simulateSchema,
});
export type FulfillmentRequest = z.input<typeof FulfillmentRequest>;

/**
 * The order's state machine. Each stage is entered once, in this order; a failure from any
 * stage before `completed` ends in `compensated` (or `compensation_failed`).
 */
export const STAGES = [
  'received',
  'inventory_reserved',
  'pick_ticket_created',
  'packed',
  'pickup_scheduled',
  'picked_up',
  'completed',
] as const;
export type Stage = (typeof STAGES)[number] | 'compensated' | 'compensation_failed';

/** What `status` returns: the run's status (steps, waits, history) plus the order's stage. */
export interface FulfillmentStatus extends RunStatus {
  stage: Stage | 'not_started';
  /** Every stage entered, oldest first. */
  stages: Array<{ stage: Stage; at: string }>;
}

/** What a fulfilled order returns (besides `status: "completed"`). */
export interface Fulfilled {
  orderId: string;
  pickTicketId: string;
  pickupId: string;
  carrier: string;
  trackingNumber: string;
  packedAt: string;
  pickedUpAt: string;
  /** False when the tracking SMS failed: the parcel ships anyway (the step is non-critical). */
  notified: boolean;
  messageSid?: string;
}

/** The ids the services know an order by: derived from the order id, so retries reuse them. */
export const pickTicketIdOf = (orderId: string) => `PT-${orderId}`;
export const pickupIdOf = (orderId: string) => `PU-${orderId}`;

async function enter(ctx: WorkflowContext, stage: Stage): Promise<void> {
  const stages = (await ctx.get<FulfillmentStatus['stages']>('stages')) ?? [];
  const last = stages.at(-1)?.stage;
  const ended = last === 'completed' || last === 'compensated' || last === 'compensation_failed';
  const allowed =
    stage === 'compensated' || stage === 'compensation_failed'
      ? last !== undefined && !ended
      : !ended && STAGES[last === undefined ? 0 : STAGES.indexOf(last) + 1] === stage;
  // A transition the table does not allow is a bug in this file, not a business failure.
  if (!allowed) {
    throw new TerminalError(`order ${ctx.key} cannot go from ${last ?? 'nothing'} to ${stage}`, {
      code: 'invalid_transition',
    });
  }
  stages.push({ stage, at: new Date(await ctx.now()).toISOString() });
  ctx.set('stages', stages);
}

/** Waits on a webhook's awakeable; a timeout or a rejection becomes a terminal error. */
async function awaitWebhook<T>(
  promise: PromiseLike<T> & { orTimeout(d: string): PromiseLike<T> },
  timeout: string,
  codes: { timeout: string; rejected: string },
  what: string,
): Promise<T> {
  try {
    return await promise.orTimeout(timeout);
  } catch (err) {
    if (err instanceof TimeoutError) {
      throw new TerminalError(`${what} did not happen within ${timeout}`, {
        code: codes.timeout,
        status: 504,
      });
    }
    if (err instanceof TerminalError) {
      throw new TerminalError(err.message, { code: codes.rejected, status: 409 });
    }
    throw err;
  }
}

async function fulfill(
  ctx: WorkflowContext,
  s: Saga,
  tracker: RunTracker,
  order: z.output<typeof FulfillmentRequest>,
): Promise<Fulfilled> {
  const orderId = ctx.key;
  const pickTicketId = pickTicketIdOf(orderId);
  const pickupId = pickupIdOf(orderId);
  const inventory = ctx.objectClient(FulfillmentStock, order.warehouse);
  const warehouse = ctx.objectClient(FulfillmentPacking, pickTicketId);
  const carrier = ctx.objectClient(FulfillmentCarrier, pickupId);
  const retried = async (what: string, attempt: number) => {
    if (attempt > 1) await tracker.note(`${what} succeeded on attempt ${attempt}`);
  };
  await enter(ctx, 'received');

  // 1. Reserve the stock. In doubt (a timeout, a cancellation in flight) it is released anyway.
  const reservation = await s.invoke(
    'reserve inventory',
    () => inventory.reserve({ orderId, items: order.items, simulate: order.simulate?.inventory }),
    {
      undoWhen: 'maybe',
      undoName: 'release inventory',
      undo: () => inventory.release(orderId),
    },
  );
  await retried('reserve inventory', reservation.attempt);
  await enter(ctx, 'inventory_reserved');

  // 2. Open the pick ticket, handing the warehouse the awakeable its "packed" webhook completes.
  const packed = ctx.awakeable<Packed>();
  const ticket = await s.invoke(
    'create pick ticket',
    () =>
      warehouse.create({
        orderId,
        items: order.items,
        awakeableId: packed.id,
        simulate: order.simulate?.warehouse,
      }),
    { undoWhen: 'maybe', undoName: 'cancel pick ticket', undo: () => warehouse.cancel() },
  );
  await retried('create pick ticket', ticket.attempt);
  await enter(ctx, 'pick_ticket_created');

  // 3. Wait for the warehouse. The awakeable id is not shown in the status: only a signed
  //    webhook naming the ticket can complete it.
  const parcel = await s.invoke('wait for packing', async () => {
    await tracker.waiting(`the warehouse to pack pick ticket ${pickTicketId}`, {
      timeout: PACKING_TIMEOUT,
    });
    return awaitWebhook(
      packed.promise,
      PACKING_TIMEOUT,
      { timeout: 'packing_timeout', rejected: 'packing_failed' },
      `packing of ${pickTicketId}`,
    );
  });
  await enter(ctx, 'packed');

  // 4. Book the carrier.
  const pickedUp = ctx.awakeable<PickedUp>();
  const pickup = await s.invoke(
    'schedule carrier pickup',
    () =>
      carrier.schedule({
        orderId,
        pickTicketId,
        carrier: order.carrier,
        awakeableId: pickedUp.id,
        simulate: order.simulate?.carrier,
      }),
    { undoWhen: 'maybe', undoName: 'cancel carrier pickup', undo: () => carrier.cancel() },
  );
  await retried('schedule carrier pickup', pickup.attempt);
  await enter(ctx, 'pickup_scheduled');

  // 5. Wait for the carrier to collect the parcel.
  const handover = await s.invoke('wait for carrier pickup', async () => {
    await tracker.waiting(`${order.carrier} to collect pickup ${pickupId}`, {
      timeout: PICKUP_TIMEOUT,
    });
    return awaitWebhook(
      pickedUp.promise,
      PICKUP_TIMEOUT,
      { timeout: 'pickup_timeout', rejected: 'pickup_failed' },
      `the pickup ${pickupId}`,
    );
  });
  await enter(ctx, 'picked_up');

  // 6. Text the tracking number. The parcel has left: a failed SMS is noted, not compensated.
  const message = await s.invoke(
    'send tracking notification',
    () =>
      ctx.objectClient(FulfillmentNotifications, orderId).sendTracking({
        phone: order.customer.phone,
        carrier: order.carrier,
        trackingNumber: handover.trackingNumber,
        simulate: order.simulate?.notification,
      }),
    { critical: false },
  );
  if (message) await retried('send tracking notification', message.attempt);
  return {
    orderId,
    pickTicketId,
    pickupId,
    carrier: order.carrier,
    trackingNumber: handover.trackingNumber,
    packedAt: parcel.packedAt,
    pickedUpAt: handover.pickedUpAt,
    notified: message !== undefined,
    ...(message ? { messageSid: message.sid } : {}),
  };
}

/**
 * The fulfillment orchestrator: one workflow per order id. `status` can be called at any time.
 *
 * @example
 * ```sh
 * curl -X POST localhost:9080/FulfillmentOrchestrator/order-1/run/send -H 'content-type: application/json' \
 *   -d '{"customer":{"name":"Ada","phone":"+15558675310"},"items":[{"sku":"SKU-1","quantity":2}]}'
 * curl -X POST localhost:9080/FulfillmentOrchestrator/order-1/status
 * ```
 */
export const FulfillmentOrchestrator = workflow({
  name: 'FulfillmentOrchestrator',
  run: handler({ input: FulfillmentRequest }, async (ctx: WorkflowContext, order) => {
    const result = await orchestrate(ctx, (s, tracker) => fulfill(ctx, s, tracker, order));
    await enter(ctx, result.status);
    return result;
  }),
  handlers: {
    /** The order's stage and stage history, the current step, what it waits for, every step. */
    status: async (ctx: WorkflowSharedContext): Promise<FulfillmentStatus> => {
      const stages = (await ctx.get<FulfillmentStatus['stages']>('stages')) ?? [];
      return { ...(await readStatus(ctx)), stage: stages.at(-1)?.stage ?? 'not_started', stages };
    },
  },
});
