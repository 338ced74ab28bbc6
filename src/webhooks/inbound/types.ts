import type { Definition } from '../../core/definitions.js';
import type { Duration } from '../../core/duration.js';
import type { SendGridKey } from '../verify/sendgrid.js';
import type { ShippoSecret } from '../verify/shippo.js';
import type { WebhookProvider } from '../verify/types.js';

/**
 * A verified inbound event, as a route function and the handler it routes to receive it.
 *
 * @example
 * ```ts
 * route: (e: InboundEvent<{ data: { object: { metadata: { order_id: string } } } }>) => ({
 *   target: Payments,
 *   key: e.data.data.object.metadata.order_id,
 *   handler: 'onStripeEvent',
 * }),
 * ```
 */
export interface InboundEvent<T = any> {
  provider: WebhookProvider;
  /** The receiver's name: the path segment after `/webhooks/`. */
  receiver: string;
  /** The id it is deduplicated on (see docs/webhooks.md, per provider). */
  id: string;
  /** The event type (`charge.succeeded`, `deployment_status`, `delivered`, ...). */
  type: string;
  /** The parsed body (JSON, or form fields for Slack commands and Twilio). */
  data: T;
  /** When Keel received it (epoch ms). */
  receivedAt: number;
}

/**
 * Where a verified event goes:
 *
 * - `{ target, handler, key?, input? }` starts that handler with the event (or `input`), once
 *   per event id. Route to a keyed object (`key`: the order id, the tracking number) and events
 *   for one key are processed one at a time, in arrival order.
 * - `{ awakeable, value }` resolves an awakeable (or `{ awakeable, reject }` rejects it): the
 *   workflow that gave its id to the provider goes on.
 * - `null` or `undefined`: acknowledged and ignored.
 */
export type InboundRoute =
  | { target: Definition; handler: string; key?: string; input?: unknown }
  | { awakeable: string; value?: unknown }
  | { awakeable: string; reject: string }
  | null
  | undefined;

interface ReceiverCommon {
  /** Picks the handler (or awakeable) of each verified event. */
  route: (event: InboundEvent) => InboundRoute | Promise<InboundRoute>;
  /** Signed timestamps further than this from now are refused. Default 300 seconds. */
  toleranceSeconds?: number;
  /**
   * The public base URL the provider calls (`https://hooks.example.com`), to which the request's
   * path and query are appended. Twilio signs the full URL and Shippo's token is in it; behind a
   * proxy the server does not see that URL. Default: `http://` + the `Host` header.
   */
  publicUrl?: string;
}

/** One receiver, mounted at `POST /webhooks/{name}`. */
export type ReceiverOptions = ReceiverCommon &
  (
    | {
        provider: 'stripe' | 'github' | 'slack' | 'twilio' | 'standard-webhooks';
        /** The signing secret; several during a rotation. */
        secret: string | readonly string[];
      }
    | { provider: 'sendgrid'; secret: SendGridKey | readonly SendGridKey[] }
    | {
        provider: 'shippo';
        secret: ShippoSecret;
        /** The query parameter carrying the token. Default `token`. */
        tokenParam?: string;
        /** A header carrying the token instead. */
        tokenHeader?: string;
      }
  );

/** Options of the inbound side. */
export interface InboundOptions {
  /** Receivers by name (the path segment): `{ stripe: { provider: 'stripe', ... } }`. */
  receivers?: Record<string, ReceiverOptions>;
  /** Largest accepted body. Default 1 MiB. */
  bodyLimit?: number;
  /**
   * How long an event id is remembered, so a redelivery is acknowledged and ignored. Default
   * `7d` (Stripe retries for 3 days; manual redeliveries come later). For GitHub and Twilio, which
   * sign neither their delivery id nor a timestamp, the hash of the signed content is remembered
   * as long: a captured request replayed under a fresh id within it starts nothing.
   */
  dedupeWindow?: Duration;
}
