import { afterEach, describe, expect, it } from 'vitest';
import { object, service, type Context, type ObjectContext } from '../../src/index.js';
import { mockFail, testApp, type TestApp } from '../../src/testing/index.js';
import {
  publish,
  standardWebhooks,
  type InboundEvent,
  type ReceiverOptions,
  type WebhooksOptions,
} from '../../src/webhooks/index.js';
import {
  AggregatedOrder,
  aggregatorReceivers,
  DEMO_SENDGRID_PRIVATE_KEY,
} from '../../examples/webhook-aggregator/index.js';

/** Records the events routed to it, per receiver. */
const Inbox = object({
  name: 'Inbox',
  handlers: {
    receive: async (ctx: ObjectContext, e: InboundEvent) => {
      const seen = (await ctx.get<string[]>('seen')) ?? [];
      ctx.set('seen', [...seen, `${e.type}:${e.id}`]);
    },
  },
});

const toInbox =
  (key: string): ReceiverOptions['route'] =>
  () => ({ target: Inbox, key, handler: 'receive' });

const STANDARD_SECRET = standardWebhooks.generateSecret();

/** The aggregator's Stripe, Shippo and SendGrid receivers (demo secrets), and four more. */
const receivers: Record<string, ReceiverOptions> = {
  ...aggregatorReceivers({}),
  github: { provider: 'github', secret: 'gh-secret', route: toInbox('github') },
  slack: { provider: 'slack', secret: 'slack-secret', route: toInbox('slack') },
  twilio: { provider: 'twilio', secret: 'twilio-token', route: toInbox('twilio') },
  // Behind a proxy: Twilio signed the public URL, not the one the server sees.
  proxied: {
    provider: 'twilio',
    secret: 'twilio-token',
    publicUrl: 'https://hooks.example.com/keel',
    route: toInbox('proxied'),
  },
  partner: { provider: 'standard-webhooks', secret: STANDARD_SECRET, route: toInbox('partner') },
};

const Orders = service({
  name: 'Orders',
  handlers: {
    ship: async (ctx: Context, order: string) => {
      await publish(ctx, 'order.shipped', { order });
    },
  },
});

const charge = (id: string, order: string) => ({
  id,
  type: 'charge.succeeded',
  created: 1_767_225_600,
  data: { object: { id: `ch_${order}`, metadata: { order_id: order } } },
});

let t: TestApp;

afterEach(async () => {
  await t?.close();
});

async function app(webhooks: WebhooksOptions = {}): Promise<TestApp> {
  t = await testApp({
    services: [AggregatedOrder, Inbox, Orders],
    webhooks: { receivers, ...webhooks },
  });
  return t;
}

describe('t.webhooks.deliver: signed inbound webhooks', () => {
  it("reaches the receiver's handler once, however often it is delivered", async () => {
    await app();
    const res = await t.webhooks.deliver('stripe', charge('evt_1', 'o1'));
    expect(res.status).toBe(200);
    expect(res.body.events).toMatchObject([
      { id: 'evt_1', type: 'charge.succeeded', status: 'accepted' },
    ]);
    // deliver waits until the routed handler has run.
    const state = await t.state<{ history: unknown[]; payment: { status: string } }>(
      AggregatedOrder,
      'o1',
    );
    expect(state.payment.status).toBe('succeeded');
    expect(state.history).toHaveLength(1);

    // Stripe retries the same event: acknowledged, nothing runs again.
    const again = await t.webhooks.deliver('stripe', charge('evt_1', 'o1'));
    expect(again.status).toBe(200);
    expect(again.body.events[0].status).toBe('duplicate');
    expect(await t.invocations({ service: AggregatedOrder })).toHaveLength(1);
  });

  it('refuses a bad or missing signature with 401, and nothing runs', async () => {
    await app();
    const bad = await t.webhooks.deliver('stripe', charge('evt_2', 'o2'), { signature: 'bad' });
    expect(bad.status).toBe(401);
    expect(bad.body).toMatchObject({ code: 'invalid_signature' });
    const none = await t.webhooks.deliver('stripe', charge('evt_3', 'o2'), { signature: 'none' });
    expect(none.status).toBe(401);
    // Signed five minutes and one second ago: outside Stripe's tolerance.
    const stale = await t.webhooks.deliver('stripe', charge('evt_4', 'o2'), {
      signedAt: t.clock.now() - 301_000,
    });
    expect(stale.status).toBe(401);
    expect(await t.invocations()).toHaveLength(0);
    expect(await t.state(AggregatedOrder, 'o2')).toEqual({});
  });

  it("signs with each provider's scheme, as its verifier expects", async () => {
    await app();
    const cases: Array<[string, unknown, Parameters<TestApp['webhooks']['deliver']>[2]]> = [
      ['github', { action: 'created' }, { event: 'deployment_status', id: 'd-1' }],
      ['slack', { type: 'event_callback', event_id: 'Ev1', event: { type: 'app_mention' } }, {}],
      ['twilio', { MessageSid: 'SM1', MessageStatus: 'delivered' }, { id: 'tw-1' }],
      ['proxied', { MessageSid: 'SM2', MessageStatus: 'sent' }, { id: 'tw-2' }],
      ['partner', { type: 'invoice.paid', data: { id: 'in_1' } }, { id: 'msg_1' }],
      [
        'shippo',
        { event: 'track_updated', data: { tracking_number: 'T1', metadata: 'order_id=o9' } },
        {},
      ],
      [
        'sendgrid',
        [{ event: 'delivered', sg_event_id: 'sg1', timestamp: 1, order_id: 'o9' }],
        { privateKey: DEMO_SENDGRID_PRIVATE_KEY },
      ],
    ];
    for (const [name, payload, options] of cases) {
      const ok = await t.webhooks.deliver(name, payload, options);
      expect({ name, status: ok.status }).toEqual({ name, status: 200 });
      const bad = await t.webhooks.deliver(name, payload, { ...options, signature: 'bad' });
      expect({ name, status: bad.status }).toEqual({ name, status: 401 });
    }
    expect(await t.state(Inbox, 'github')).toEqual({ seen: ['deployment_status:d-1'] });
    expect(await t.state(Inbox, 'slack')).toEqual({ seen: ['app_mention:Ev1'] });
    expect(await t.state(Inbox, 'twilio')).toEqual({ seen: ['delivered:tw-1'] });
    expect(await t.state(Inbox, 'proxied')).toEqual({ seen: ['sent:tw-2'] });
    expect(await t.state(Inbox, 'partner')).toEqual({ seen: ['invoice.paid:msg_1'] });
  });

  it('says what is missing: an unknown receiver, or no webhooks at all', async () => {
    await app();
    await expect(t.webhooks.deliver('nope', {})).rejects.toMatchObject({
      code: 'not_configured',
      message: expect.stringContaining('configured: stripe, shippo, sendgrid, github'),
    });
    await expect(t.webhooks.deliver('sendgrid', [])).rejects.toMatchObject({
      code: 'not_configured',
      message: expect.stringContaining('privateKey'),
    });
    await t.close();
    t = await testApp({ services: [Orders] });
    await expect(t.webhooks.deliver('stripe', {})).rejects.toMatchObject({
      code: 'not_configured',
    });
  });
});

describe('t.webhooks.endpoint: captured outbound deliveries', () => {
  it('captures each signed attempt, and a 500 is retried on the fake clock', async () => {
    await app();
    const hook = await t.webhooks.endpoint({ events: ['order.*'], respond: [500, 200] });
    const other = await t.webhooks.endpoint({ events: ['invoice.*'] });
    await t.service(Orders).ship('o1');
    await t.idle();

    const [first, ...rest] = hook.sent();
    expect(rest).toHaveLength(0);
    expect(first).toMatchObject({
      type: 'order.shipped',
      payload: { order: 'o1' },
      status: 500,
      attempt: 1,
      signatureValid: true,
      at: t.clock.now(),
    });
    expect(first!.headers['webhook-id']).toBe(first!.id);

    await t.advance('30s');
    expect(hook.sent()).toHaveLength(1);
    await t.advance('40s'); // the schedule's first retry: 1 min ±10%
    const attempts = hook.sent();
    expect(attempts.map((s) => [s.status, s.attempt, s.id])).toEqual([
      [500, 1, first!.id],
      [200, 2, first!.id],
    ]);
    expect(other.sent()).toEqual([]);
    expect(t.webhooks.sent({ type: 'order.shipped' })).toHaveLength(2);
    const [delivery] = await t.webhooks.deliveries(hook);
    expect(delivery).toMatchObject({ status: 'delivered', event_type: 'order.shipped' });
    expect(delivery!.attempts.map((a) => a.response_status_code)).toEqual([500, 200]);
  });

  it('dead-letters a delivery whose endpoint keeps failing', async () => {
    await app({ retry: { maxAttempts: 2 } });
    const hook = await t.webhooks.endpoint({ respond: mockFail(503) });
    await t.service(Orders).ship('o2');
    await t.runUntilIdle({ skipTime: true });
    expect(hook.sent().map((s) => s.status)).toEqual([503, 503]);
    const [dead] = await t.webhooks.deliveries(hook, { status: 'failed' });
    expect(dead).toMatchObject({ status: 'failed', failure_reason: 'exhausted' });
  });
});
