/**
 * CarrierService of the fulfillment exercise: one object per pickup. Scheduling asks the
 * warehouse's pick ticket (an object-to-object call) whether the parcel is packed and what it
 * weighs, books the pickup and issues the tracking number; the carrier later posts a signed
 * webhook (`pickup.completed` or `pickup.failed`, see receivers.ts) naming the pickup, which
 * lands in `onEvent` and completes the orchestrator's awakeable.
 */
import {
  object,
  shared,
  TerminalError,
  type ObjectContext,
  type ObjectSharedContext,
} from '../../src/index.js';
import type { InboundEvent } from '../../src/webhooks/index.js';
import { DOWNSTREAM_RETRY, simulated, type FailureMode } from './simulate.js';
import { FulfillmentPacking } from './warehouse.js';

/** What the orchestrator's pickup awakeable receives. */
export interface PickedUp {
  pickupId: string;
  trackingNumber: string;
  pickedUpAt: string;
}

/** A carrier pickup. */
export interface Pickup {
  pickupId: string;
  orderId: string;
  pickTicketId: string;
  carrier: string;
  trackingNumber: string;
  weightGrams: number;
  status: 'scheduled' | 'picked_up' | 'failed' | 'cancelled';
  /** Every status the pickup took: one `scheduled` line per booking made. */
  history: Array<{ status: Pickup['status']; at: string; detail?: string }>;
  /** The attempt of `schedule` that succeeded (1 = first try). */
  attempt: number;
}

interface Stored extends Pickup {
  awakeableId?: string;
}

/** The body of a carrier webhook (Standard Webhooks: `type`, `timestamp`, `data`). */
export interface CarrierEventBody {
  /** `pickup.completed` or `pickup.failed`; other types are ignored. */
  type: string;
  timestamp?: string;
  data: { pickup_id: string; reason?: string };
}

const view = ({ awakeableId: _hidden, ...pickup }: Stored): Pickup => pickup;

async function step(ctx: ObjectContext, p: Stored, status: Pickup['status'], detail?: string) {
  const at = new Date(await ctx.now()).toISOString();
  p.status = status;
  p.history.push(detail === undefined ? { status, at } : { status, at, detail });
  ctx.set('pickup', p);
}

/**
 * Carrier pickups: `schedule` and `cancel` for the orchestrator, `onEvent` for the carrier's
 * webhooks, `pickup` to look.
 *
 * @example
 * ```sh
 * curl -X POST localhost:9080/FulfillmentCarrier/PU-order-1/pickup
 * ```
 */
export const FulfillmentCarrier = object({
  name: 'FulfillmentCarrier',
  retry: DOWNSTREAM_RETRY,
  handlers: {
    /** Books the pickup of a packed ticket (idempotent); refused once cancelled. */
    schedule: async (
      ctx: ObjectContext,
      req: {
        orderId: string;
        pickTicketId: string;
        carrier: string;
        awakeableId: string;
        simulate?: FailureMode;
      },
    ): Promise<Pickup> => {
      const attempt = simulated(ctx, req.simulate, {
        code: 'no_carrier_capacity',
        message: `${req.carrier} has no pickup slot for ${ctx.key}`,
      });
      const known = await ctx.get<Stored>('pickup');
      if (known?.status === 'cancelled') {
        throw new TerminalError(`pickup ${ctx.key} was cancelled`, {
          code: 'pickup_cancelled',
          status: 409,
        });
      }
      if (known) return view(known);
      const ticket = await ctx.objectClient(FulfillmentPacking, req.pickTicketId).ticket();
      if (ticket.status !== 'packed') {
        throw new TerminalError(`pick ticket ${req.pickTicketId} is ${ticket.status}, not packed`, {
          code: 'not_packed',
          status: 409,
        });
      }
      const p: Stored = {
        pickupId: ctx.key,
        orderId: req.orderId,
        pickTicketId: req.pickTicketId,
        carrier: req.carrier,
        // Journaled (ctx.uuid), so a replay issues the same number.
        trackingNumber: `1Z${ctx.uuid().replace(/-/g, '').slice(0, 16).toUpperCase()}`,
        weightGrams: ticket.packages.reduce((sum, pkg) => sum + pkg.weightGrams, 0),
        status: 'scheduled',
        history: [],
        attempt,
        awakeableId: req.awakeableId,
      };
      await step(ctx, p, 'scheduled');
      return view(p);
    },

    /** Cancels the pickup. Idempotent; a cancel before the booking refuses a late one. */
    cancel: async (ctx: ObjectContext): Promise<Pickup> => {
      const p: Stored = (await ctx.get<Stored>('pickup')) ?? {
        pickupId: ctx.key,
        orderId: '',
        pickTicketId: '',
        carrier: '',
        trackingNumber: '',
        weightGrams: 0,
        status: 'scheduled',
        history: [],
        attempt: 0,
      };
      if (p.status !== 'cancelled') await step(ctx, p, 'cancelled');
      return view(p);
    },

    /**
     * A verified carrier webhook for this pickup: `pickup.completed` completes the
     * orchestrator's wait, `pickup.failed` fails it. Anything for a pickup no longer scheduled
     * changes nothing.
     */
    onEvent: async (ctx: ObjectContext, e: InboundEvent<CarrierEventBody>) => {
      const p = await ctx.get<Stored>('pickup');
      if (!p || p.status !== 'scheduled' || !p.awakeableId) {
        return { applied: false, reason: `pickup ${ctx.key} is ${p?.status ?? 'unknown'}` };
      }
      if (e.type === 'pickup.completed') {
        await step(ctx, p, 'picked_up');
        const done: PickedUp = {
          pickupId: ctx.key,
          trackingNumber: p.trackingNumber,
          pickedUpAt: p.history.at(-1)!.at,
        };
        await ctx.resolveAwakeable(p.awakeableId, done);
        return { applied: true, status: p.status };
      }
      if (e.type === 'pickup.failed') {
        const reason = e.data.data.reason ?? 'no reason given';
        await step(ctx, p, 'failed', reason);
        await ctx.rejectAwakeable(p.awakeableId, `carrier pickup failed: ${reason}`);
        return { applied: true, status: p.status };
      }
      return { applied: false, reason: `event type ${e.type} is not handled` };
    },

    /** The pickup, or 404. */
    pickup: shared(async (ctx: ObjectSharedContext): Promise<Pickup> => {
      const p = await ctx.get<Stored>('pickup');
      if (!p) throw new TerminalError(`no pickup ${ctx.key}`, { code: 'not_found', status: 404 });
      return view(p);
    }),
  },
});
