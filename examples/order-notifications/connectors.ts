/**
 * The providers the notified order talks to, as Keel connectors, and how each picks mock mode:
 * a connector whose credential is absent from the environment, or every connector when the
 * seed's `MOCK_MODE=true` (or Keel's `KEEL_MOCK=1`) is set, answers from its in-process mock, so
 * the example runs with no API keys. The names are the example's own (`OrderPayments`, not
 * `Stripe`), so they never clash with another example's connectors in the same app.
 */
import {
  env,
  sendgrid,
  slack,
  stripe,
  twilio,
  type Connector,
  type Env,
  type SendGridOperations,
  type SlackOperations,
  type StripeOperations,
  type TwilioMessage,
  type TwilioOperations,
} from '../../src/integrations/index.js';
import {
  sendgridMock,
  slackMock,
  stripeMock,
  twilioMock,
  type ConnectorMock,
  type MockResponse,
} from '../../src/integrations/mocks.js';

/** The Slack channel of each order event (one incoming webhook per channel). */
export interface OrderChannels {
  /** New orders. Default `#orders`. */
  orders: string;
  /** Payment failures. Default `#payments`. */
  payments: string;
  /** Confirmed orders. Default `#order-confirmations`. */
  confirmations: string;
}

export const DEFAULT_CHANNELS: OrderChannels = {
  orders: '#orders',
  payments: '#payments',
  confirmations: '#order-confirmations',
};

/** The in-process stand-ins, one per connector; a test passes its own to inspect or fail them. */
export interface OrderMocks {
  payments: ConnectorMock;
  email: ConnectorMock;
  sms: ConnectorMock;
  slackOrders: ConnectorMock;
  slackPayments: ConnectorMock;
  slackConfirmations: ConnectorMock;
}

/** Options of {@link orderConnectors}. */
export interface OrderConnectorOptions {
  /** Where credentials and the mock switches are read. Default `process.env`. */
  env?: Env;
  /** Replaces some of the default mocks. */
  mocks?: Partial<OrderMocks>;
  /** Time for the seed-shaped SMS ids (`sms_mock_<unix seconds>`). Default `Date.now`. */
  now?: () => number;
  /**
   * Other endpoints for the keyed APIs (a proxy, a regional API, a local fake provider in a
   * test); each defaults to the provider's own. Slack needs none: its webhook URLs come from the
   * environment.
   */
  baseUrls?: OrderBaseUrls;
}

/** Where the real (not mocked) calls go, per provider: `http://host:port`, no trailing path. */
export interface OrderBaseUrls {
  /** Default `https://api.stripe.com`. */
  stripe?: string;
  /** Default `https://api.sendgrid.com`. */
  sendgrid?: string;
  /** Default `https://api.twilio.com`. */
  twilio?: string;
}

/** The connectors of the notified order, with the mocks they answer from in mock mode. */
export interface OrderConnectors {
  payments: Connector<StripeOperations>;
  email: Connector<SendGridOperations>;
  sms: Connector<TwilioOperations>;
  slack: {
    orders: Connector<SlackOperations>;
    payments: Connector<SlackOperations>;
    confirmations: Connector<SlackOperations>;
  };
  mocks: OrderMocks;
  /** The Twilio number SMS are sent from (`TWILIO_FROM_NUMBER`, default Twilio's test number). */
  smsFrom: string;
  /** The sender of confirmation emails (`ORDER_EMAIL_FROM`, default `orders@example.com`). */
  emailFrom: string;
}

/**
 * Whether every connector is mocked: the seed's `MOCK_MODE=true` or Keel's `KEEL_MOCK=1`.
 *
 * @example
 * ```ts
 * allMocked({ MOCK_MODE: 'true' }); // true
 * ```
 */
export function allMocked(e: Env): boolean {
  const on = (v: string | undefined) => v === '1' || v === 'true';
  return on(e.MOCK_MODE) || on(e.KEEL_MOCK);
}

/**
 * A Twilio mock whose Message sids have the seed's mock shape, `sms_mock_<unix seconds>`
 * (`fmt.Sprintf("sms_mock_%d", time.Now().Unix())`); everything else is Keel's Twilio mock,
 * magic numbers included (`To: +15005550001` → 400, code 21211). The sid is read from the clock,
 * not derived from the request: it is journaled with the call, so a replay returns the same one.
 *
 * @example
 * ```ts
 * const sms = twilio({ mock: seedSmsMock(), mockMode: true });
 * // use(ctx, sms).send_sms({ To: '+15558675310', From: '+15005550006', Body: 'hi' })
 * //   → { sid: 'sms_mock_1717000000', status: 'queued', ... }
 * ```
 */
export function seedSmsMock(now: () => number = Date.now): ConnectorMock {
  const base = twilioMock();
  const handler = (req: Parameters<ConnectorMock>[0]): MockResponse => {
    const res = base(req);
    if (req.operation !== 'send_sms' || res.status !== 201) return res;
    const message = res.body as TwilioMessage;
    return { ...res, body: { ...message, sid: `sms_mock_${Math.floor(now() / 1000)}` } };
  };
  return Object.assign(handler, {
    failNext: base.failNext.bind(base),
    get requests() {
      return base.requests;
    },
    reset: base.reset.bind(base),
  });
}

/**
 * The connectors of the notified order, reading the environment once.
 *
 * Credentials (absent → that connector is mocked): `STRIPE_SECRET_KEY`; `SENDGRID_API_KEY`;
 * `TWILIO_ACCOUNT_SID` with `TWILIO_AUTH_TOKEN`, or the seed's `TWILIO_API_KEY` (with
 * `TWILIO_API_SECRET` it is a Twilio API key `SK…`, alone it stands for the auth token); Slack
 * webhook URLs `SLACK_ORDERS_WEBHOOK_URL`, `SLACK_PAYMENTS_WEBHOOK_URL`,
 * `SLACK_CONFIRMATIONS_WEBHOOK_URL`, each falling back to `SLACK_WEBHOOK_URL`.
 *
 * @example
 * ```ts
 * const c = orderConnectors({ env: {} }); // no keys: all mocked
 * c.mocks.sms.requests.length; // 0
 * ```
 */
export function orderConnectors(options: OrderConnectorOptions = {}): OrderConnectors {
  const e = options.env ?? process.env;
  const mockAll = allMocked(e);
  const mocked = (...keys: string[]) => mockAll || keys.some((k) => !e[k]);
  const mocks: OrderMocks = {
    payments: options.mocks?.payments ?? stripeMock(),
    email: options.mocks?.email ?? sendgridMock(),
    sms: options.mocks?.sms ?? seedSmsMock(options.now),
    slackOrders: options.mocks?.slackOrders ?? slackMock(),
    slackPayments: options.mocks?.slackPayments ?? slackMock(),
    slackConfirmations: options.mocks?.slackConfirmations ?? slackMock(),
  };

  const twilioCredential = e.TWILIO_AUTH_TOKEN ? 'TWILIO_AUTH_TOKEN' : 'TWILIO_API_KEY';
  const twilioAuth =
    !e.TWILIO_AUTH_TOKEN && e.TWILIO_API_KEY && e.TWILIO_API_SECRET
      ? { apiKey: { sid: env('TWILIO_API_KEY'), secret: env('TWILIO_API_SECRET') } }
      : { authToken: env(twilioCredential) };

  // Only a given URL overrides the connector's default endpoint.
  const at = (url: string | undefined) => (url === undefined ? {} : { baseUrl: url });

  const slackChannel = (name: string, specific: string, mock: ConnectorMock) => {
    const url = e[specific] ? specific : 'SLACK_WEBHOOK_URL';
    return slack({
      name,
      webhookUrl: env(url),
      mock,
      mockMode: mocked(url),
    });
  };

  return {
    payments: stripe({
      name: 'OrderPayments',
      ...at(options.baseUrls?.stripe),
      mock: mocks.payments,
      mockMode: mocked('STRIPE_SECRET_KEY'),
    }),
    email: sendgrid({
      name: 'OrderEmail',
      ...at(options.baseUrls?.sendgrid),
      mock: mocks.email,
      mockMode: mocked('SENDGRID_API_KEY'),
    }),
    sms: twilio({
      name: 'OrderSMS',
      ...at(options.baseUrls?.twilio),
      env: e,
      ...twilioAuth,
      mock: mocks.sms,
      mockMode: mocked('TWILIO_ACCOUNT_SID', twilioCredential),
    }),
    slack: {
      orders: slackChannel('OrderSlackOrders', 'SLACK_ORDERS_WEBHOOK_URL', mocks.slackOrders),
      payments: slackChannel(
        'OrderSlackPayments',
        'SLACK_PAYMENTS_WEBHOOK_URL',
        mocks.slackPayments,
      ),
      confirmations: slackChannel(
        'OrderSlackConfirmations',
        'SLACK_CONFIRMATIONS_WEBHOOK_URL',
        mocks.slackConfirmations,
      ),
    },
    mocks,
    smsFrom: e.TWILIO_FROM_NUMBER || '+15005550006',
    emailFrom: e.ORDER_EMAIL_FROM || 'orders@example.com',
  };
}
