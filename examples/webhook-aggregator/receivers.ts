/**
 * The aggregator's inbound receivers: `POST /webhooks/stripe`, `/webhooks/shippo` and
 * `/webhooks/sendgrid` on the ingress. Each request is verified with the provider's own scheme
 * before anything else (401 and no state change otherwise), deduplicated per provider event id,
 * and each event is routed to the `AggregatedOrder` of the order id it carries. Events of other
 * types, or without an order id, are acknowledged and ignored.
 *
 * The secrets come from the environment. Without them the app uses the DEMO values below,
 * published in examples/webhook-aggregator/README.md so requests can be signed by hand: never
 * use them for a real endpoint.
 */
import type { ReceiverOptions } from '../../src/webhooks/index.js';
import {
  AggregatedOrder,
  sendgridOrderId,
  shippoOrderId,
  stripeOrderId,
  type SendGridEvent,
  type ShippoTrackEvent,
  type StripeChargeEvent,
} from './order.js';

/** Demo Stripe endpoint secret (`STRIPE_WEBHOOK_SECRET`). */
export const DEMO_STRIPE_SECRET = 'whsec_keel_demo_stripe';
/** Demo Shippo URL token (`SHIPPO_WEBHOOK_TOKEN`): `POST /webhooks/shippo?token=...`. */
export const DEMO_SHIPPO_TOKEN = 'keel-demo-shippo-token';
/** Demo Shippo HMAC secret (`SHIPPO_WEBHOOK_SECRET`; set it empty for token-only Shippo). */
export const DEMO_SHIPPO_SECRET = 'keel_demo_shippo';
/** Demo SendGrid verification key (`SENDGRID_WEBHOOK_PUBLIC_KEY`): base64 DER, P-256. */
export const DEMO_SENDGRID_PUBLIC_KEY =
  'MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEqj/1AxAIKeSDoY6i6nAcI1ayHHqJmKU9PX2BklSF8CtBpOB8QXGE6tyE7c10hIy/YfPZt0WQgqP1TMGqbwVAqQ==';
/**
 * The private half of {@link DEMO_SENDGRID_PUBLIC_KEY} (base64 PKCS#8 DER), published so a
 * SendGrid batch can be signed by hand. SendGrid keeps the real private key; you only ever get
 * the public one.
 */
export const DEMO_SENDGRID_PRIVATE_KEY =
  'MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgB1wsv+ixZGSEicPTe/Blnk2xY2eUwd7KQJ2ldYqtsJuhRANCAASqP/UDEAgp5IOhjqLqcBwjVrIceomYpT09fYGSVIXwK0Gk4HxBcYTq3ITtzXSEjL9h89m3RZCCo/VMwapvBUCp';

/** The environment variables the receivers read, and the demo defaults for each. */
export const AGGREGATOR_ENV_DEFAULTS = {
  STRIPE_WEBHOOK_SECRET: DEMO_STRIPE_SECRET,
  SHIPPO_WEBHOOK_TOKEN: DEMO_SHIPPO_TOKEN,
  SHIPPO_WEBHOOK_SECRET: DEMO_SHIPPO_SECRET,
  SENDGRID_WEBHOOK_PUBLIC_KEY: DEMO_SENDGRID_PUBLIC_KEY,
} as const;

type Env = Record<string, string | undefined>;

/**
 * The three receivers, with secrets from `env` (demo defaults for unset ones).
 *
 * @example
 * ```ts
 * await startApp({
 *   services: [AggregatedOrder],
 *   webhooks: { receivers: aggregatorReceivers(process.env) },
 * });
 * ```
 */
export function aggregatorReceivers(env: Env = process.env): Record<string, ReceiverOptions> {
  const get = (name: keyof typeof AGGREGATOR_ENV_DEFAULTS): string =>
    env[name] ?? AGGREGATOR_ENV_DEFAULTS[name];
  const hmacSecret = get('SHIPPO_WEBHOOK_SECRET');
  const token = get('SHIPPO_WEBHOOK_TOKEN');
  return {
    stripe: {
      provider: 'stripe',
      secret: get('STRIPE_WEBHOOK_SECRET'),
      route: (e) => {
        const key = stripeOrderId(e as Parameters<typeof stripeOrderId>[0]);
        return key === undefined ? null : { target: AggregatedOrder, key, handler: 'onStripe' };
      },
    },
    shippo: {
      provider: 'shippo',
      // Shippo signs nothing by default: the URL token proves the sender knows the URL, and
      // the HMAC (enabled by Shippo on request) protects the body. Every one configured is required.
      secret: {
        ...(token !== '' ? { token } : {}),
        ...(hmacSecret !== '' ? { hmacSecret } : {}),
      },
      route: (e) => {
        const key = shippoOrderId(e as Parameters<typeof shippoOrderId>[0]);
        return key === undefined ? null : { target: AggregatedOrder, key, handler: 'onShippo' };
      },
    },
    sendgrid: {
      provider: 'sendgrid',
      secret: get('SENDGRID_WEBHOOK_PUBLIC_KEY'),
      route: (e) => {
        const key = sendgridOrderId(e as Parameters<typeof sendgridOrderId>[0]);
        return key === undefined ? null : { target: AggregatedOrder, key, handler: 'onSendGrid' };
      },
    },
  };
}

export type { SendGridEvent, ShippoTrackEvent, StripeChargeEvent };
