/**
 * WarehouseService of the fulfillment exercise: one object per pick ticket. Creating a ticket
 * hands the warehouse the order's items and the awakeable of the orchestrator waiting for the
 * parcel; the warehouse's system later posts a signed webhook (`pick_ticket.packed` or
 * `pick_ticket.exception`, see receivers.ts) naming the ticket, which lands in `onEvent` and
 * completes that awakeable. The awakeable id never leaves Keel: the warehouse only knows its
 * ticket id.
 */
import {
  object,
  shared,
  TerminalError,
  type ObjectContext,
  type ObjectSharedContext,
} from '../../src/index.js';
import type { InboundEvent } from '../../src/webhooks/index.js';
import type { Item } from './inventory.js';
import { DOWNSTREAM_RETRY, simulated, type FailureMode } from './simulate.js';

/** One parcel the warehouse packed. */
export interface Package {
  weightGrams: number;
}

/** What the orchestrator's packing awakeable receives. */
export interface Packed {
  pickTicketId: string;
  packedAt: string;
  packages: Package[];
}

/** A pick ticket. */
export interface PickTicket {
  pickTicketId: string;
  orderId: string;
  items: Item[];
  status: 'open' | 'packed' | 'exception' | 'cancelled';
  packages: Package[];
  /** Every status the ticket took, with when (journaled time). */
  history: Array<{ status: PickTicket['status']; at: string; detail?: string }>;
  /** The attempt of `create` that succeeded (1 = first try). */
  attempt: number;
}

interface Stored extends PickTicket {
  /** Completed when the ticket is packed; kept out of every answer. */
  awakeableId?: string;
}

/** The body of a warehouse webhook (Standard Webhooks: `type`, `timestamp`, `data`). */
export interface WarehouseEventBody {
  /** `pick_ticket.packed` or `pick_ticket.exception`; other types are ignored. */
  type: string;
  timestamp?: string;
  data: { pick_ticket_id: string; packages?: Package[]; reason?: string };
}

const view = ({ awakeableId: _hidden, ...ticket }: Stored): PickTicket => ticket;

async function step(ctx: ObjectContext, t: Stored, status: PickTicket['status'], detail?: string) {
  const at = new Date(await ctx.now()).toISOString();
  t.status = status;
  t.history.push(detail === undefined ? { status, at } : { status, at, detail });
  ctx.set('ticket', t);
}

/**
 * Pick tickets: `create` and `cancel` for the orchestrator, `onEvent` for the warehouse's
 * webhooks, `ticket` to look.
 *
 * @example
 * ```sh
 * curl -X POST localhost:9080/FulfillmentPacking/PT-order-1/ticket
 * ```
 */
export const FulfillmentPacking = object({
  name: 'FulfillmentPacking',
  retry: DOWNSTREAM_RETRY,
  handlers: {
    /** Opens the ticket (idempotent); refused once the ticket was cancelled. */
    create: async (
      ctx: ObjectContext,
      req: { orderId: string; items: Item[]; awakeableId: string; simulate?: FailureMode },
    ): Promise<PickTicket> => {
      const attempt = simulated(ctx, req.simulate, {
        code: 'warehouse_refused',
        message: `the warehouse refused pick ticket ${ctx.key}`,
      });
      const known = await ctx.get<Stored>('ticket');
      if (known?.status === 'cancelled') {
        throw new TerminalError(`pick ticket ${ctx.key} was cancelled`, {
          code: 'ticket_cancelled',
          status: 409,
        });
      }
      if (known) return view(known);
      const t: Stored = {
        pickTicketId: ctx.key,
        orderId: req.orderId,
        items: req.items,
        status: 'open',
        packages: [],
        history: [],
        attempt,
        awakeableId: req.awakeableId,
      };
      await step(ctx, t, 'open');
      return view(t);
    },

    /**
     * Cancels the ticket (the picked items go back to the shelves). Idempotent; a cancel before
     * the ticket exists leaves a cancelled ticket, so a late `create` is refused.
     */
    cancel: async (ctx: ObjectContext): Promise<PickTicket> => {
      const t: Stored = (await ctx.get<Stored>('ticket')) ?? {
        pickTicketId: ctx.key,
        orderId: '',
        items: [],
        status: 'open',
        packages: [],
        history: [],
        attempt: 0,
      };
      if (t.status !== 'cancelled') await step(ctx, t, 'cancelled');
      return view(t);
    },

    /**
     * A verified warehouse webhook for this ticket. `pick_ticket.packed` completes the
     * orchestrator's wait; `pick_ticket.exception` fails it. Events for a ticket that is no
     * longer open (late, repeated) change nothing.
     */
    onEvent: async (ctx: ObjectContext, e: InboundEvent<WarehouseEventBody>) => {
      const t = await ctx.get<Stored>('ticket');
      if (!t || t.status !== 'open' || !t.awakeableId) {
        return { applied: false, reason: `pick ticket ${ctx.key} is ${t?.status ?? 'unknown'}` };
      }
      if (e.type === 'pick_ticket.packed') {
        t.packages = e.data.data.packages ?? [];
        await step(ctx, t, 'packed');
        const packed: Packed = {
          pickTicketId: ctx.key,
          packedAt: t.history.at(-1)!.at,
          packages: t.packages,
        };
        await ctx.resolveAwakeable(t.awakeableId, packed);
        return { applied: true, status: t.status };
      }
      if (e.type === 'pick_ticket.exception') {
        const reason = e.data.data.reason ?? 'no reason given';
        await step(ctx, t, 'exception', reason);
        await ctx.rejectAwakeable(t.awakeableId, `warehouse exception: ${reason}`);
        return { applied: true, status: t.status };
      }
      return { applied: false, reason: `event type ${e.type} is not handled` };
    },

    /** The ticket, or 404. */
    ticket: shared(async (ctx: ObjectSharedContext): Promise<PickTicket> => {
      const t = await ctx.get<Stored>('ticket');
      if (!t) {
        throw new TerminalError(`no pick ticket ${ctx.key}`, { code: 'not_found', status: 404 });
      }
      return view(t);
    }),
  },
});
