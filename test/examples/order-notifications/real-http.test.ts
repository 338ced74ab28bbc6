/**
 * Seed 000, exercises 1–3 over real HTTP: `NotifiedOrder` with its connectors in real mode
 * (test keys, `KEEL_MOCK=0`) against fake Stripe, SendGrid, Twilio and Slack servers on
 * 127.0.0.1 (./fake-providers.ts). Every assertion is about what the fakes received: the order
 * of the calls across providers, what each carried (form bodies, auth, Idempotency-Key, the SMS
 * and the Slack payloads), and which calls a failure, a retry or a restart did or did not cause.
 * One test (or more) per Success Criteria box; the in-process mock tests are sms.test.ts,
 * slack.test.ts and inventory.test.ts.
 */
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  createOrderNotifications,
  OrderInventory,
  OrderShipments,
  UNSHIPPABLE_CUSTOMER,
  type OrderNotificationsOptions,
  type OrderRecord,
} from '../../../examples/order-notifications/index.js';
import { Engine } from '../../../src/index.js';
import { createIntegrations } from '../../../src/integrations/index.js';
import { openSqliteStore } from '../../../src/store/sqlite/index.js';
import { crash, FakeClock, settle } from '../../../src/testing/index.js';
import { tempDir } from '../../helpers.js';
import {
  SLACK_PATHS,
  startFakeProviders,
  TWILIO_SID,
  type FakeProviders,
  type Seen,
} from './fake-providers.js';
import { ended, indexOf, order, placeOrder, type System } from './support.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/**
 * Fresh fakes and an engine on a temporary SQLite file whose connectors call them for real.
 * `env` is laid over the fakes' environment (keys, webhook URLs, `KEEL_MOCK=0`).
 */
async function start(env: Record<string, string> = {}): Promise<System & { fakes: FakeProviders }> {
  const fakes = await startFakeProviders();
  const tmp = tempDir('keel-order-notifications-http-');
  const path = join(tmp.dir, 'keel.db');
  const clock = new FakeClock();
  const logs: string[] = [];
  const e = { ...fakes.env, ...env };
  const boot = async (opts: OrderNotificationsOptions = {}) => {
    const app = createOrderNotifications({
      env: e,
      baseUrls: fakes.baseUrls,
      now: () => clock.now(),
      ...opts,
    });
    const engine = new Engine({
      services: app.definitions,
      store: openSqliteStore({ path }),
      clock,
      suspendAfter: '1s',
      logger: (level, message) => logs.push(`${level} ${message}`),
      extensions: [createIntegrations({ integrations: app.integrations, env: e, log: () => {} })],
    });
    await engine.start();
    return { app, engine };
  };
  const sys = { clock, logs, fakes, ...(await boot()) } as System & { fakes: FakeProviders };
  sys.crashAndRestart = async (opts) => {
    await crash(sys.engine);
    Object.assign(sys, await boot(opts));
  };
  cleanups.push(async () => {
    await sys.engine.stop().catch(() => undefined);
    await fakes.close();
    tmp.cleanup();
  });
  return sys;
}

/** Runs the engine (settling, then a second of fake time) until `done()` holds. */
async function until(s: System, done: () => boolean | Promise<boolean>, what: string) {
  for (let i = 0; !(await done()); i++) {
    if (i > 100) throw new Error(`never happened: ${what}`);
    await settle(5);
    if (!(await done())) await s.clock.advance('1s');
  }
}

const isCharge = (r: Seen) => r.provider === 'stripe' && r.rawPath === '/v1/charges';
const isRefund = (r: Seen) => r.provider === 'stripe' && r.rawPath === '/v1/refunds';
const smsPath = `/2010-04-01/Accounts/${TWILIO_SID}/Messages.json`;

type SlackPayload = {
  channel: string;
  text: string;
  attachments: { fields: { title: string; value: string }[] }[];
};
const slackPayload = (r: Seen) => r.fields as SlackPayload;
const slackField = (r: Seen, title: string) =>
  slackPayload(r).attachments[0]!.fields.find((f) => f.title === title)?.value;

/** Nothing was answered by the in-process mocks: every call went over HTTP. */
function noInProcessCalls(s: System) {
  for (const [name, mock] of Object.entries(s.app.connectors.mocks)) {
    expect(mock.requests, name).toHaveLength(0);
  }
}

describe('NotifiedOrder over real HTTP (seed 000, exercises 1–3)', () => {
  it('a confirmed order: new-order Slack, charge, then (reserved) email, SMS, Slack confirmation', async () => {
    const s = await start();
    const { fakes } = s;
    // The charge is held on the wire: nothing is reserved or shipped while it is in flight.
    const charge = fakes.hold(isCharge);
    const { invocationId } = await s.engine.send({
      service: 'NotifiedOrder',
      handler: 'run',
      key: 'http-1',
      input: order('http-1'),
    });
    let held: Seen | undefined;
    void charge.arrived.then((r) => (held = r));
    await until(s, () => held !== undefined, 'the charge reached Stripe');
    const during = (await s.engine.client(s.app.NotifiedOrder, 'http-1').status()) as OrderRecord;
    expect(during.status).toBe('charging');
    expect((await s.engine.client(OrderInventory, 'main').stock()).reservations).toEqual([]);
    charge.release();
    const run = await ended(s, invocationId);
    expect(run.value?.status).toBe('confirmed');

    // Across the four servers, in arrival order.
    const order_ = fakes.wire.map((r) => `${r.provider}${r.hook ? `:${r.hook}` : ''} ${r.rawPath}`);
    expect(order_).toEqual([
      `slack:orders ${SLACK_PATHS.orders}`,
      'stripe /v1/charges',
      'sendgrid /v3/mail/send',
      `twilio ${smsPath}`,
      `slack:confirmations ${SLACK_PATHS.confirmations}`,
    ]);
    // Reserved after the charge (which was answered), before the shipment and the email.
    const stock = await s.engine.client(OrderInventory, 'main').stock();
    expect(stock.reservations).toEqual([
      expect.objectContaining({ id: 'res_http-1', status: 'reserved' }),
    ]);
    expect(run.value?.chargeId).toBe((held!.answer!.body as { id: string }).id);

    // Stripe: a form-encoded charge with the secret key and an Idempotency-Key.
    expect(held!.headers['content-type']).toMatch(/^application\/x-www-form-urlencoded/);
    expect(held!.headers.authorization).toBe(`Bearer ${fakes.env.STRIPE_SECRET_KEY}`);
    expect(held!.headers['idempotency-key']).toMatch(new RegExp(`^${invocationId}\\.\\d+$`));
    expect(held!.fields).toMatchObject({
      amount: '6998',
      currency: 'usd',
      source: 'tok_visa',
      'metadata[order_id]': 'http-1',
      'metadata[customer_id]': 'cust-123',
    });
    expect(held!.answer?.status).toBe(200);

    // SendGrid: the confirmation email, JSON, to the customer.
    const [mail] = fakes.seen('sendgrid');
    expect(mail!.headers.authorization).toBe(`Bearer ${fakes.env.SENDGRID_API_KEY}`);
    expect(mail!.fields).toMatchObject({
      personalizations: [{ to: [{ email: 'ann@example.com' }] }],
      subject: 'Order http-1 confirmed',
    });
    expect(mail!.answer?.status).toBe(202);

    // Twilio: a form with To, From and the body, Basic auth, a Message SID back.
    const [sms] = fakes.seen('twilio');
    expect(sms!.headers.authorization).toBe(
      `Basic ${Buffer.from(`${TWILIO_SID}:${fakes.env.TWILIO_AUTH_TOKEN}`).toString('base64')}`,
    );
    expect(sms!.headers['content-type']).toMatch(/^application\/x-www-form-urlencoded/);
    expect(sms!.fields).toEqual({
      To: '+15558675310',
      From: '+15005550006',
      Body: 'Your order http-1 is confirmed: $69.98.',
    });
    const sid = (sms!.answer!.body as { sid: string }).sid;
    expect(sid).toMatch(/^SM[0-9a-f]{32}$/);
    expect(run.value?.notifications.sms).toEqual({ MessageSID: sid, Status: 'queued' });

    // Slack: each event to its own webhook, with its channel, the order id, customer and total.
    const [created] = fakes.seen('slack', 'orders');
    expect(slackPayload(created!).channel).toBe('#orders');
    expect(slackPayload(created!).text).toBe('New order http-1: $69.98 from cust-123');
    const [confirmed] = fakes.seen('slack', 'confirmations');
    expect(slackPayload(confirmed!).channel).toBe('#order-confirmations');
    for (const r of [created!, confirmed!]) {
      expect(r.headers['content-type']).toMatch(/^application\/json/);
      expect(slackField(r, 'Order ID')).toBe('http-1');
      expect(slackField(r, 'Customer')).toBe('cust-123');
      expect(slackField(r, 'Total')).toBe('$69.98');
      expect(r.answer).toMatchObject({ status: 200, body: 'ok' });
    }
    expect(slackField(confirmed!, 'Shipment')).toBe('shp_http-1');
    expect(run.value?.notifications.slack.every((d) => d.sent && d.mock === undefined)).toBe(true);
    noInProcessCalls(s);
  });

  it('journaled: a crash after the SMS and a restart send no second SMS (nor charge, email, Slack)', async () => {
    const s = await start();
    const { fakes } = s;
    const confirmation = fakes.hold((r) => r.hook === 'confirmations');
    const { invocationId } = await s.engine.send({
      service: 'NotifiedOrder',
      handler: 'run',
      key: 'http-2',
      input: order('http-2'),
    });
    let held = false;
    void confirmation.arrived.then(() => (held = true));
    await until(s, () => held, 'the Slack confirmation reached Slack');
    expect(fakes.seen('twilio')).toHaveLength(1);
    const journal = await s.engine.getJournal(invocationId);
    expect(journal[indexOf(journal, 'OrderSMS.send_sms')]).toMatchObject({ done: true });

    // A new process: new connectors, same database, same providers. The crash kills the run at
    // once (nothing it does later is recorded); the held request is answered only then, so the
    // old process's HTTP client can close instead of waiting out the connector's timeout.
    const restarted = s.crashAndRestart();
    confirmation.release();
    await restarted;
    const after = await ended(s, invocationId);
    expect(after.value?.status).toBe('confirmed');
    expect(fakes.seen('twilio')).toHaveLength(1);
    const sid = (fakes.seen('twilio')[0]!.answer!.body as { sid: string }).sid;
    expect(after.value?.notifications.sms).toEqual({ MessageSID: sid, Status: 'queued' });
    expect(fakes.wire.filter(isCharge)).toHaveLength(1);
    expect(fakes.seen('sendgrid')).toHaveLength(1);
    expect(fakes.seen('slack', 'orders')).toHaveLength(1);
    // The step that was in flight at the crash is the only one sent again.
    expect(fakes.seen('slack', 'confirmations')).toHaveLength(2);
  });

  it('mock mode: with keys and URLs set, KEEL_MOCK=1 keeps every call off the wire', async () => {
    const s = await start({ KEEL_MOCK: '1' });
    const run = await placeOrder(s, order('http-3'));
    expect(run.value?.status).toBe('confirmed');
    expect(run.value?.notifications.sms).toMatchObject({
      MessageSID: expect.stringMatching(/^sms_mock_\d+$/),
    });
    expect(s.fakes.wire).toEqual([]);
    expect(s.app.connectors.mocks.sms.requests).toHaveLength(1);
    expect(s.app.connectors.mocks.payments.requests).toHaveLength(1);
  });

  it('the order succeeds when Twilio answers 500: sent once (not retried), logged', async () => {
    const s = await start();
    s.fakes.mocks.twilio.failNext(1, 500);
    const run = await placeOrder(s, order('http-4'));
    expect(run.value?.status).toBe('confirmed');
    const sms = s.fakes.seen('twilio');
    // A 500 may come after Twilio queued the message: a retry could text the customer twice.
    expect(sms).toHaveLength(1);
    expect(sms[0]!.answer?.status).toBe(500);
    expect(run.value?.notifications.sms).toMatchObject({ error: expect.any(String) });
    expect(s.logs.some((l) => l.startsWith('warn SMS to +15558675310 not sent'))).toBe(true);
    // What comes after the SMS still went out.
    expect(s.fakes.seen('slack', 'confirmations')).toHaveLength(1);
    expect(s.fakes.wire.at(-1)?.hook).toBe('confirmations');
  });

  it('a payment failure goes to #payments with the details; nothing is reserved or sent after', async () => {
    const s = await start();
    const run = await placeOrder(s, order('http-5', { paymentSource: 'tok_chargeDeclined' }));
    expect(run.error?.code).toBe('payment_failed');
    const charges = s.fakes.wire.filter(isCharge);
    expect(charges).toHaveLength(1);
    expect(charges[0]!.answer?.status).toBe(402);
    const [failed] = s.fakes.seen('slack', 'payments');
    expect(s.fakes.seen('slack', 'payments')).toHaveLength(1);
    expect(slackPayload(failed!).channel).toBe('#payments');
    expect(slackPayload(failed!).text).toBe('Payment failed for order http-5 ($69.98)');
    expect(slackField(failed!, 'Order ID')).toBe('http-5');
    expect(slackField(failed!, 'Customer')).toBe('cust-123');
    expect(slackField(failed!, 'Total')).toBe('$69.98');
    expect(slackField(failed!, 'Reason')).toContain('declined');
    expect(s.fakes.wire.map((r) => r.hook ?? r.provider)).toEqual(['orders', 'stripe', 'payments']);
    expect((await s.engine.client(OrderInventory, 'main').stock()).reservations).toEqual([]);
  });

  it('Slack answering 500 is retried, logged, and does not block the order', async () => {
    const s = await start();
    // Every attempt at the new-order and the confirmation messages fails.
    s.fakes.mocks.orders.failNext(20, 500);
    s.fakes.mocks.confirmations.failNext(20, 500);
    const run = await placeOrder(s, order('http-6'));
    expect(run.value?.status).toBe('confirmed');
    for (const hook of ['orders', 'confirmations'] as const) {
      const posts = s.fakes.seen('slack', hook);
      expect(posts.length, hook).toBeGreaterThan(1);
      expect(posts.every((r) => r.answer?.status === 500)).toBe(true);
    }
    expect(run.value?.notifications.slack).toEqual([
      expect.objectContaining({ Channel: '#orders', sent: false }),
      expect.objectContaining({ Channel: '#order-confirmations', sent: false }),
    ]);
    expect(s.logs.filter((l) => /^warn Slack message to .* not sent/.test(l))).toHaveLength(2);
    // The rest of the order went through.
    expect(s.fakes.wire.filter(isCharge)).toHaveLength(1);
    expect(s.fakes.seen('twilio')).toHaveLength(1);
  });

  it('a Stripe 500 is retried with the same Idempotency-Key and body: one charge', async () => {
    const s = await start();
    s.fakes.mocks.stripe.failNext(1, 500);
    const run = await placeOrder(s, order('http-7'));
    expect(run.value?.status).toBe('confirmed');
    const charges = s.fakes.wire.filter(isCharge);
    expect(charges.map((r) => r.answer?.status)).toEqual([500, 200]);
    const key = charges[0]!.headers['idempotency-key'];
    expect(key).toMatch(new RegExp(`^${run.id}\\.\\d+$`));
    expect(charges[1]!.headers['idempotency-key']).toBe(key);
    expect(charges[1]!.text).toBe(charges[0]!.text);
    expect(run.value?.chargeId).toBe((charges[1]!.answer!.body as { id: string }).id);
  });

  it('out of stock: a terminal error, and no request reaches Stripe', async () => {
    const s = await start();
    const items = [
      { productId: 'PROD-001', quantity: 1, price: 29.99 },
      { productId: 'PROD-SOLD-OUT', quantity: 1, price: 5 },
    ];
    const run = await placeOrder(s, order('http-8', { items, total: 34.99 }));
    expect(run.error?.code).toBe('out_of_stock');
    expect((await s.engine.getInvocation(run.id))?.attempt).toBe(0);
    expect(s.fakes.seen('stripe')).toEqual([]);
    // Only the new-order message, sent before the check, went out.
    expect(s.fakes.wire.map((r) => r.hook ?? r.provider)).toEqual(['orders']);
  });

  it('shipping failure: the reservation is released and a refund of the charge is requested', async () => {
    const s = await start();
    const run = await placeOrder(s, order('http-9', { customerId: UNSHIPPABLE_CUSTOMER }));
    expect(run.error?.code).toBe('shipping_unavailable');
    const stripe = s.fakes.seen('stripe');
    expect(stripe.map((r) => `${r.method} ${r.rawPath}`)).toEqual([
      'POST /v1/charges',
      'POST /v1/refunds',
    ]);
    const [charge, refund] = stripe;
    const chargeId = (charge!.answer!.body as { id: string }).id;
    expect(isRefund(refund!)).toBe(true);
    expect(refund!.headers['content-type']).toMatch(/^application\/x-www-form-urlencoded/);
    expect(refund!.fields).toEqual({ charge: chargeId });
    expect(refund!.answer?.status).toBe(200);
    // Its own key: a refund is not a replay of the charge.
    expect(refund!.headers['idempotency-key']).toMatch(new RegExp(`^${run.id}\\.\\d+$`));
    expect(refund!.headers['idempotency-key']).not.toBe(charge!.headers['idempotency-key']);
    const stock = await s.engine.client(OrderInventory, 'main').stock();
    expect(stock.reservations).toEqual([
      expect.objectContaining({ id: 'res_http-9', status: 'released' }),
    ]);
    expect(await s.engine.client(OrderShipments, 'http-9').get()).toBeNull();
    expect(s.fakes.seen('sendgrid')).toEqual([]);
    expect(s.fakes.seen('twilio')).toEqual([]);
  });
});
