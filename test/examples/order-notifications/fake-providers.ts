/**
 * The four providers of the notified order as real HTTP servers on 127.0.0.1 (a free port
 * each): Stripe, SendGrid, Twilio and Slack's incoming webhooks. Each checks credentials the
 * way its provider does and answers with the connector's own mock logic (through
 * `test/fakes/providers`'s `FakeProvider`), and every request, on any of them, lands in one
 * list in arrival order, so a test can assert the order of calls across providers.
 */
import {
  sendgridMock,
  slackMock,
  stripeMock,
  twilioMock,
  type ConnectorMock,
  type MockHandler,
  type MockResponse,
} from '../../../src/integrations/mocks.js';
import { FakeProvider, type WireRecord } from '../../fakes/providers/index.js';
import { gate } from '../../helpers.js';

export type Provider = 'stripe' | 'sendgrid' | 'twilio' | 'slack';

/** Which of the order's Slack webhooks (one per channel). */
export type Hook = 'orders' | 'payments' | 'confirmations';

/** A request one of the fakes received, and what it answered (absent while held). */
export interface Seen extends WireRecord {
  provider: Provider;
  /** The Slack webhook it was posted to. */
  hook?: Hook;
  /** The request body as form fields (Stripe, Twilio) or JSON (SendGrid, Slack). */
  fields: Record<string, unknown>;
  answer?: MockResponse;
}

export const STRIPE_KEY = 'sk_test_order_notifications';
export const SENDGRID_KEY = 'SG.order-notifications-test';
export const TWILIO_SID = 'AC00000000000000000000000000000013';
export const TWILIO_TOKEN = 'twilio-test-token';
/** The secret part of each webhook URL: Slack routes by path, and 404s an unknown one. */
export const SLACK_PATHS: Record<Hook, string> = {
  orders: '/services/T0000/B0001/orders-secret',
  payments: '/services/T0000/B0002/payments-secret',
  confirmations: '/services/T0000/B0003/confirmations-secret',
};

/** The running fakes. */
export interface FakeProviders {
  /** Every request to any fake, in arrival order. */
  wire: Seen[];
  /** The requests one provider (or one Slack webhook) received, in order. */
  seen(provider: Provider, hook?: Hook): Seen[];
  /** The provider logic behind each fake, for `failNext`. */
  mocks: { stripe: ConnectorMock; sendgrid: ConnectorMock; twilio: ConnectorMock } & Record<
    Hook,
    ConnectorMock
  >;
  /**
   * Holds the next request that `match` accepts (it is recorded, then left unanswered) until
   * `release()`; `arrived` resolves when it comes in.
   */
  hold(match: (r: Seen) => boolean): { arrived: Promise<Seen>; release: () => void };
  /** The environment of the app in real mode: keys, Slack webhook URLs, `KEEL_MOCK=0`. */
  env: Record<string, string>;
  /** The base URLs for `createOrderNotifications({ baseUrls })`. */
  baseUrls: { stripe: string; sendgrid: string; twilio: string };
  close(): Promise<void>;
}

const json = (status: number, body: unknown): MockResponse => ({
  status,
  headers: { 'content-type': 'application/json' },
  body,
});

function fieldsOf(r: WireRecord): Record<string, unknown> {
  if (r.text === '') return {};
  if ((r.headers['content-type'] ?? '').includes('json')) {
    return JSON.parse(r.text) as Record<string, unknown>;
  }
  return Object.fromEntries(new URLSearchParams(r.text));
}

/**
 * Starts the four fakes.
 *
 * @example
 * ```ts
 * const fakes = await startFakeProviders();
 * const app = createOrderNotifications({ env: fakes.env, baseUrls: fakes.baseUrls });
 * // ... run an order ...
 * fakes.seen('twilio')[0]!.fields.To; // '+15558675310'
 * await fakes.close();
 * ```
 */
export async function startFakeProviders(): Promise<FakeProviders> {
  const wire: Seen[] = [];
  const holds: { match: (r: Seen) => boolean; arrived: (r: Seen) => void; until: Promise<void> }[] =
    [];
  const releases: (() => void)[] = [];
  const mocks = {
    stripe: stripeMock(),
    sendgrid: sendgridMock(),
    twilio: twilioMock(),
    orders: slackMock(),
    payments: slackMock(),
    confirmations: slackMock(),
  };
  const hookOf = (path: string) =>
    (Object.keys(SLACK_PATHS) as Hook[]).find((h) => SLACK_PATHS[h] === path);

  // `authenticate` sees every request first: the place to record it, in arrival order.
  const start = (
    provider: Provider,
    check: (r: WireRecord) => MockResponse | undefined,
    logic: (r: Seen) => MockHandler,
  ) => {
    // FakeProvider calls `handler` synchronously after `authenticate` for the same request.
    let current: Seen | undefined;
    return FakeProvider.start({
      authenticate: (r) => {
        const hook = provider === 'slack' ? hookOf(r.rawPath) : undefined;
        const seen: Seen = { ...r, provider, fields: fieldsOf(r), ...(hook ? { hook } : {}) };
        wire.push(seen);
        current = seen;
        const refused = check(r);
        if (refused) seen.answer = refused;
        return refused;
      },
      handler: async (req) => {
        const seen = current!;
        const held = holds.findIndex((h) => h.match(seen));
        if (held !== -1) {
          const [h] = holds.splice(held, 1);
          h!.arrived(seen);
          await h!.until;
        }
        const answer = await logic(seen)(req);
        seen.answer = answer;
        return answer;
      },
    });
  };

  const stripe = await start(
    'stripe',
    (r) =>
      r.headers.authorization === `Bearer ${STRIPE_KEY}`
        ? undefined
        : json(401, { error: { type: 'invalid_request_error', message: 'Invalid API Key' } }),
    () => mocks.stripe,
  );
  const sendgrid = await start(
    'sendgrid',
    (r) =>
      r.headers.authorization === `Bearer ${SENDGRID_KEY}`
        ? undefined
        : json(401, { errors: [{ message: 'The provided authorization grant is invalid' }] }),
    () => mocks.sendgrid,
  );
  const basic = `Basic ${Buffer.from(`${TWILIO_SID}:${TWILIO_TOKEN}`).toString('base64')}`;
  const twilio = await start(
    'twilio',
    (r) =>
      r.headers.authorization === basic
        ? undefined
        : json(401, { code: 20003, message: 'Authenticate', status: 401 }),
    () => mocks.twilio,
  );
  const slack = await start(
    'slack',
    (r) =>
      hookOf(r.rawPath) !== undefined
        ? undefined
        : { status: 404, headers: { 'content-type': 'text/html' }, body: 'no_service' },
    (r) => mocks[r.hook!],
  );

  return {
    wire,
    seen: (provider, hook) =>
      wire.filter((r) => r.provider === provider && (hook === undefined || r.hook === hook)),
    mocks,
    hold(match) {
      const arrived = gate<Seen>();
      const until = gate();
      holds.push({ match, arrived: arrived.open, until: until.promise });
      releases.push(() => until.open());
      return { arrived: arrived.promise, release: () => until.open() };
    },
    env: {
      KEEL_MOCK: '0',
      STRIPE_SECRET_KEY: STRIPE_KEY,
      SENDGRID_API_KEY: SENDGRID_KEY,
      TWILIO_ACCOUNT_SID: TWILIO_SID,
      TWILIO_AUTH_TOKEN: TWILIO_TOKEN,
      SLACK_ORDERS_WEBHOOK_URL: slack.url + SLACK_PATHS.orders,
      SLACK_PAYMENTS_WEBHOOK_URL: slack.url + SLACK_PATHS.payments,
      SLACK_CONFIRMATIONS_WEBHOOK_URL: slack.url + SLACK_PATHS.confirmations,
    },
    baseUrls: { stripe: stripe.url, sendgrid: sendgrid.url, twilio: twilio.url },
    async close() {
      for (const release of releases.splice(0)) release();
      await Promise.all([stripe, sendgrid, twilio, slack].map((f) => f.close()));
    },
  };
}
