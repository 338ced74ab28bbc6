/**
 * Seed 000, exercise 4: the order whose state provider webhooks update. `AggregatedOrder` is a
 * keyed object (one per order id), so the events of one order are applied one at a time; it
 * keeps three independent statuses, payment (Stripe), shipping (Shippo) and email (SendGrid),
 * each moved only forward by the events' own order (`applyStatus`), never by their arrival
 * order: a late `in_transit` never overwrites `delivered`.
 *
 * Idempotent twice over: the receivers deduplicate on the provider's event id, and the object
 * remembers the event ids it has applied, so a redelivery that reaches it anyway (after the
 * receivers' window, or a direct call) changes nothing.
 */
import {
  object,
  shared,
  TerminalError,
  type ObjectContext,
  type ObjectSharedContext,
} from '../../src/index.js';
import {
  applyStatus,
  StatusOrder,
  type InboundEvent,
  type StatusUpdate,
} from '../../src/webhooks/index.js';

/** Payment status from Stripe's charge events. A refund is final. */
export const PAYMENT = new StatusOrder(['failed', 'succeeded', 'refunded'] as const, {
  terminal: ['refunded'],
});
/**
 * Shipping status from Shippo's tracking statuses: `UNKNOWN`/`PRE_TRANSIT` → `created`,
 * `TRANSIT` → `in_transit`, `FAILURE` → `failure`, `DELIVERED` → `delivered`, `RETURNED` →
 * `returned`. Delivered and returned are final; a newer `in_transit` after a `failure` (the
 * parcel back on the road) applies.
 */
export const SHIPPING = new StatusOrder(
  ['created', 'in_transit', 'failure', 'delivered', 'returned'] as const,
  { terminal: ['delivered', 'returned'] },
);
/**
 * Email status from SendGrid's events: `processed`, `deferred`, `delivered`, `open` → `opened`,
 * `bounce` → `bounced`, `dropped`. A bounce or a drop is final.
 */
export const EMAIL = new StatusOrder(
  ['processed', 'deferred', 'delivered', 'opened', 'dropped', 'bounced'] as const,
  { terminal: ['dropped', 'bounced'] },
);

export type PaymentStatus = 'failed' | 'succeeded' | 'refunded';
export type ShippingStatus = 'created' | 'in_transit' | 'failure' | 'delivered' | 'returned';
export type EmailStatus = 'processed' | 'deferred' | 'delivered' | 'opened' | 'dropped' | 'bounced';

/** One of the order's statuses, with the event that set it. */
export interface Tracked<S extends string> extends StatusUpdate<S> {
  /** The provider's time of the change (ISO 8601). */
  at: string;
  /** The provider's event id. */
  eventId: string;
  /** The provider's event type, as sent (`charge.succeeded`, `track_updated`, `bounce`). */
  event: string;
  /** Provider details worth showing: the charge id, the tracking number, the email address. */
  detail?: string;
}

/** An event the order received, applied or not (newest last, the last 50 kept). */
export interface HistoryEntry {
  provider: 'stripe' | 'shippo' | 'sendgrid';
  eventId: string;
  event: string;
  status: string;
  at: string;
  /** False when the event was older than the status the order already had. */
  applied: boolean;
}

/** What `POST /AggregatedOrder/{orderId}/status` answers. */
export interface AggregatedOrderState {
  orderId: string;
  payment: Tracked<PaymentStatus> | null;
  shipping: Tracked<ShippingStatus> | null;
  email: Tracked<EmailStatus> | null;
  history: HistoryEntry[];
}

/** What each `on*` handler answers. */
export interface ApplyResult {
  eventId: string;
  status: string;
  /** The event changed the order's status. */
  applied: boolean;
  /** The event had been applied before: nothing was done. */
  duplicate: boolean;
}

/** How many event ids an order remembers (far more than one order ever receives). */
const REMEMBERED = 1000;
const HISTORY = 50;

// --- What each provider sends, mapped to the order's statuses --------------------------------

/** The fields of a Stripe `charge.*` event this example reads. */
export interface StripeChargeEvent {
  id: string;
  type: string;
  created: number;
  data: { object: { id: string; metadata?: Record<string, string> } };
}

const STRIPE_STATUS: Record<string, PaymentStatus> = {
  'charge.succeeded': 'succeeded',
  'charge.failed': 'failed',
  'charge.refunded': 'refunded',
};

/**
 * The order id of a Stripe charge event (`metadata.order_id` on the charge), if it is one.
 *
 * @example
 * ```ts
 * stripeOrderId(event); // 'order-1' for a charge.succeeded whose charge has metadata.order_id
 * ```
 */
export function stripeOrderId(e: InboundEvent<StripeChargeEvent>): string | undefined {
  if (STRIPE_STATUS[e.type] === undefined) return undefined;
  return nonEmpty(e.data?.data?.object?.metadata?.order_id);
}

/** The fields of a Shippo `track_updated` event this example reads. */
export interface ShippoTrackEvent {
  event: string;
  data: {
    tracking_number: string;
    carrier?: string;
    /** Shippo's free-text metadata of the tracked shipment: here, the order id. */
    metadata?: string;
    tracking_status: { status: string; status_date?: string; object_id?: string };
  };
}

const SHIPPO_STATUS: Record<string, ShippingStatus> = {
  UNKNOWN: 'created',
  PRE_TRANSIT: 'created',
  TRANSIT: 'in_transit',
  FAILURE: 'failure',
  DELIVERED: 'delivered',
  RETURNED: 'returned',
};

/** The order id of a Shippo tracking update (its `metadata`, `order_id=` optional), if any. */
export function shippoOrderId(e: InboundEvent<ShippoTrackEvent>): string | undefined {
  if (e.type !== 'track_updated') return undefined;
  const meta = nonEmpty(e.data?.data?.metadata);
  if (meta === undefined) return undefined;
  return nonEmpty(/^\s*order[_-]?id\s*[=:]\s*(\S+)/i.exec(meta)?.[1] ?? meta.trim());
}

/** One item of a SendGrid event webhook batch; `order_id` is a custom arg set when sending. */
export interface SendGridEvent {
  event: string;
  email?: string;
  timestamp: number;
  sg_event_id: string;
  order_id?: string;
}

const SENDGRID_STATUS: Record<string, EmailStatus> = {
  processed: 'processed',
  deferred: 'deferred',
  delivered: 'delivered',
  open: 'opened',
  bounce: 'bounced',
  dropped: 'dropped',
};

/** The order id of a SendGrid event (the `order_id` custom arg), if it is one the order tracks. */
export function sendgridOrderId(e: InboundEvent<SendGridEvent>): string | undefined {
  if (SENDGRID_STATUS[e.type] === undefined) return undefined;
  return nonEmpty(e.data?.order_id);
}

function nonEmpty(v: unknown): string | undefined {
  return typeof v === 'string' && v.trim().length > 0 ? v.trim() : undefined;
}

function iso(seconds: unknown): string | undefined {
  return typeof seconds === 'number' && Number.isFinite(seconds)
    ? new Date(seconds * 1000).toISOString()
    : undefined;
}

function unknownEvent(provider: string, type: string): TerminalError {
  return new TerminalError(`AggregatedOrder: ${provider} event "${type}" is not one it tracks`, {
    code: 'unknown_event',
    status: 400,
  });
}

// --- The object ------------------------------------------------------------------------------

async function apply<S extends string>(
  ctx: ObjectContext,
  field: 'payment' | 'shipping' | 'email',
  provider: HistoryEntry['provider'],
  e: InboundEvent,
  update: Tracked<S>,
  order: StatusOrder<S>,
): Promise<ApplyResult> {
  const seen = (await ctx.get<string[]>('eventIds')) ?? [];
  const eventId = `${provider}:${e.id}`;
  if (seen.includes(eventId))
    return { eventId: e.id, status: update.status, applied: false, duplicate: true };
  const { applied } = await applyStatus(ctx, field, update, order);
  ctx.set('eventIds', [...seen, eventId].slice(-REMEMBERED));
  const history = (await ctx.get<HistoryEntry[]>('history')) ?? [];
  const entry: HistoryEntry = {
    provider,
    eventId: e.id,
    event: update.event,
    status: update.status,
    at: update.at,
    applied,
  };
  ctx.set('history', [...history, entry].slice(-HISTORY));
  if (applied) ctx.log.info(`order ${ctx.key}: ${field} → ${update.status} (${e.id})`);
  return { eventId: e.id, status: update.status, applied, duplicate: false };
}

/**
 * One order's payment, shipping and email status, updated by provider webhooks (the receivers
 * of `receivers.ts` route each verified event here, keyed by the order id it carries) and
 * readable with `status`.
 *
 * @example
 * ```sh
 * curl -X POST http://localhost:9080/AggregatedOrder/order-1/status
 * # {"orderId":"order-1","payment":{"status":"succeeded",...},"shipping":null,"email":null,...}
 * ```
 */
export const AggregatedOrder = object({
  name: 'AggregatedOrder',
  handlers: {
    /** A Stripe `charge.succeeded|failed|refunded` event. */
    onStripe: async (ctx: ObjectContext, e: InboundEvent<StripeChargeEvent>) => {
      const status = STRIPE_STATUS[e.type];
      if (status === undefined) throw unknownEvent('Stripe', e.type);
      const at = iso(e.data.created) ?? new Date(e.receivedAt).toISOString();
      return apply(
        ctx,
        'payment',
        'stripe',
        e,
        { status, at, eventId: e.id, event: e.type, detail: e.data.data.object.id },
        PAYMENT,
      );
    },
    /** A Shippo `track_updated` event. */
    onShippo: async (ctx: ObjectContext, e: InboundEvent<ShippoTrackEvent>) => {
      const s = e.data.data.tracking_status;
      const status = SHIPPO_STATUS[s.status];
      if (status === undefined) throw unknownEvent('Shippo', `${e.type} ${s.status}`);
      const at = s.status_date ?? new Date(e.receivedAt).toISOString();
      return apply(
        ctx,
        'shipping',
        'shippo',
        e,
        { status, at, eventId: e.id, event: e.type, detail: e.data.data.tracking_number },
        SHIPPING,
      );
    },
    /** One SendGrid event (`delivered`, `bounce`, `open`, ...) of a batch. */
    onSendGrid: async (ctx: ObjectContext, e: InboundEvent<SendGridEvent>) => {
      const status = SENDGRID_STATUS[e.type];
      if (status === undefined) throw unknownEvent('SendGrid', e.type);
      const at = iso(e.data.timestamp) ?? new Date(e.receivedAt).toISOString();
      const detail = e.data.email;
      return apply(
        ctx,
        'email',
        'sendgrid',
        e,
        {
          status,
          at,
          eventId: e.id,
          event: e.type,
          ...(detail !== undefined ? { detail } : {}),
        },
        EMAIL,
      );
    },
    /** The order's three statuses and its recent events. */
    status: shared(async (ctx: ObjectSharedContext): Promise<AggregatedOrderState> => {
      const [payment, shipping, email, history] = await Promise.all([
        ctx.get<Tracked<PaymentStatus>>('payment'),
        ctx.get<Tracked<ShippingStatus>>('shipping'),
        ctx.get<Tracked<EmailStatus>>('email'),
        ctx.get<HistoryEntry[]>('history'),
      ]);
      return {
        orderId: ctx.key,
        payment: payment ?? null,
        shipping: shipping ?? null,
        email: email ?? null,
        history: history ?? [],
      };
    }),
  },
});
