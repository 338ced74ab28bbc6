/**
 * NotificationService of the fulfillment exercise: one object per order, sending the customer's
 * tracking SMS through the Twilio connector (mock mode without credentials) and keeping every
 * message it sent. The send is a journaled step with an idempotency key, and the object sends
 * the tracking message of an order once, however often it is asked.
 */
import { object, shared, type ObjectContext, type ObjectSharedContext } from '../../src/index.js';
import { twilio, use } from '../../src/integrations/index.js';
import { twilioMock } from '../../src/integrations/mocks.js';
import { DOWNSTREAM_RETRY, simulated, type FailureMode } from './simulate.js';

/**
 * The in-process Twilio the connector answers from in mock mode. Its `requests` are what the
 * mock received in this process (a restarted process starts empty; the durable record is the
 * object's `outbox`).
 */
export const smsMock = twilioMock();

/**
 * Where this example's Twilio API is: `FULFILLMENT_TWILIO_API_URL` when set (the real-HTTP
 * tests point it at a local fake Twilio), else undefined and the connector's default,
 * `https://api.twilio.com`. Read once, when this module loads, since the connector is created
 * then.
 *
 * @example
 * ```sh
 * FULFILLMENT_TWILIO_API_URL=http://127.0.0.1:4010 TWILIO_ACCOUNT_SID=AC... TWILIO_AUTH_TOKEN=... npm start
 * ```
 */
export const FULFILLMENT_TWILIO_API_URL: string | undefined =
  process.env.FULFILLMENT_TWILIO_API_URL || undefined;

/**
 * The Twilio connector of this example (at {@link FULFILLMENT_TWILIO_API_URL} when set). Named
 * apart from other examples' Twilio connectors, so its breaker and rate limit are its own.
 */
export const fulfillmentSms = twilio({
  name: 'FulfillmentSms',
  mock: smsMock,
  ...(FULFILLMENT_TWILIO_API_URL !== undefined ? { baseUrl: FULFILLMENT_TWILIO_API_URL } : {}),
});

/** The sender number: `FULFILLMENT_SMS_FROM`, else Twilio's test number that always works. */
export const SMS_FROM = process.env.FULFILLMENT_SMS_FROM ?? '+15005550006';

/** One message sent. */
export interface SentMessage {
  kind: 'tracking';
  sid: string;
  to: string;
  body: string;
  at: string;
}

/**
 * Customer notifications per order.
 *
 * @example
 * ```sh
 * curl -X POST localhost:9080/FulfillmentNotifications/order-1/outbox
 * ```
 */
export const FulfillmentNotifications = object({
  name: 'FulfillmentNotifications',
  retry: DOWNSTREAM_RETRY,
  handlers: {
    /** Texts the tracking number to the customer, once per order. */
    sendTracking: async (
      ctx: ObjectContext,
      req: { phone: string; carrier: string; trackingNumber: string; simulate?: FailureMode },
    ): Promise<SentMessage & { attempt: number }> => {
      const attempt = simulated(ctx, req.simulate, {
        code: 'notification_failed',
        message: `the tracking message for ${ctx.key} could not be sent`,
      });
      const outbox = (await ctx.get<SentMessage[]>('outbox')) ?? [];
      const known = outbox.find((m) => m.kind === 'tracking');
      if (known) return { ...known, attempt };
      const body = `Order ${ctx.key} is on its way with ${req.carrier}: tracking number ${req.trackingNumber}`;
      const message = await use(ctx, fulfillmentSms).send_sms({
        To: req.phone,
        From: SMS_FROM,
        Body: body,
      });
      const sent: SentMessage = {
        kind: 'tracking',
        sid: message.sid,
        to: req.phone,
        body,
        at: new Date(await ctx.now()).toISOString(),
      };
      ctx.set('outbox', [...outbox, sent]);
      return { ...sent, attempt };
    },

    /** Every message sent for this order. */
    outbox: shared(
      async (ctx: ObjectSharedContext) => (await ctx.get<SentMessage[]>('outbox')) ?? [],
    ),
  },
});
