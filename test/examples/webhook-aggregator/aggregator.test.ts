import { describe, expect, it } from 'vitest';
import {
  aggregatorReceivers,
  DEMO_SENDGRID_PRIVATE_KEY,
  DEMO_SHIPPO_SECRET,
  DEMO_SHIPPO_TOKEN,
  DEMO_STRIPE_SECRET,
  definitions,
  type AggregatedOrderState,
} from '../../../examples/webhook-aggregator/index.js';
import { sign$, useApp, type App, type Signed } from './support.js';

/**
 * Seed 000, exercise 4, the multi-webhook aggregator, end to end over HTTP: signed Stripe,
 * Shippo and SendGrid webhooks posted to the receivers update one `AggregatedOrder` per order,
 * read back over HTTP. Success criteria: all three services supported; signatures verified
 * (tampered → 401, no state change); idempotent processing; order state updated correctly;
 * out-of-order handled.
 */
const start = useApp({ definitions, receivers: aggregatorReceivers({}) });

const seconds = (app: App): number => Math.floor(app.clock.now() / 1000);

function stripeBody(id: string, type: string, orderId: string, created: number): string {
  return JSON.stringify({
    id,
    object: 'event',
    type,
    created,
    livemode: false,
    data: {
      object: {
        id: `ch_${orderId}`,
        object: 'charge',
        amount: 4999,
        currency: 'usd',
        metadata: { order_id: orderId },
      },
    },
  });
}

function shippoBody(orderId: string, status: string, date: string, objectId: string): string {
  return JSON.stringify({
    event: 'track_updated',
    test: true,
    data: {
      carrier: 'usps',
      tracking_number: `9205590164917312751089-${orderId}`,
      metadata: orderId,
      tracking_status: {
        object_id: objectId,
        status,
        status_details: `${status} scan`,
        status_date: date,
      },
    },
  });
}

function sendgridBody(
  events: Array<{ id: string; event: string; orderId: string; timestamp: number }>,
): string {
  return JSON.stringify(
    events.map((e) => ({
      email: 'customer@example.com',
      timestamp: e.timestamp,
      event: e.event,
      sg_event_id: e.id,
      sg_message_id: 'msg-1.filter0001',
      order_id: e.orderId,
    })),
  );
}

/** Posts a signed request and waits until every event it started has finished. */
async function deliver(
  app: App,
  signed: { path: string; headers: Record<string, string> },
  body: string,
): Promise<any> {
  const res = await app.post(signed.path, body, signed.headers);
  expect(res.status).toBe(200);
  for (const e of res.json.events as Array<{ invocationId?: string }>)
    if (e.invocationId) await app.engine.attach(e.invocationId);
  return res.json;
}

const stripe = (app: App, id: string, type: string, orderId: string, created = seconds(app)) => {
  const body = stripeBody(id, type, orderId, created);
  return deliver(app, sign$.stripe(body, DEMO_STRIPE_SECRET, seconds(app)), body);
};
const shippo = (app: App, orderId: string, status: string, date: string, objectId: string) => {
  const body = shippoBody(orderId, status, date, objectId);
  return deliver(
    app,
    sign$.shippo(body, DEMO_SHIPPO_TOKEN, DEMO_SHIPPO_SECRET, seconds(app)),
    body,
  );
};
const sendgrid = (app: App, events: Parameters<typeof sendgridBody>[0]) => {
  const body = sendgridBody(events);
  return deliver(app, sign$.sendgrid(body, DEMO_SENDGRID_PRIVATE_KEY, seconds(app)), body);
};

async function order(app: App, orderId: string): Promise<AggregatedOrderState> {
  const res = await app.post(`/AggregatedOrder/${orderId}/status`, {});
  expect(res.status).toBe(200);
  return res.json as AggregatedOrderState;
}

describe('multi-webhook aggregator (seed 000, exercise 4)', () => {
  it('all three services: each event type updates its part of the order', async () => {
    const app = await start();
    const t = seconds(app);

    expect((await order(app, 'order-1')).payment).toBeNull();
    await stripe(app, 'evt_1', 'charge.failed', 'order-1', t - 60);
    expect((await order(app, 'order-1')).payment).toMatchObject({
      status: 'failed',
      event: 'charge.failed',
      detail: 'ch_order-1',
    });
    await stripe(app, 'evt_2', 'charge.succeeded', 'order-1', t - 30);
    expect((await order(app, 'order-1')).payment?.status).toBe('succeeded');
    await stripe(app, 'evt_3', 'charge.refunded', 'order-1', t);
    expect((await order(app, 'order-1')).payment?.status).toBe('refunded');

    // Shippo's track_updated, by tracking status: PRE_TRANSIT (tracking.created), TRANSIT
    // (tracking.in_transit), DELIVERED (tracking.delivered).
    await shippo(app, 'order-1', 'PRE_TRANSIT', '2026-03-01T08:00:00Z', 'st_1');
    expect((await order(app, 'order-1')).shipping).toMatchObject({
      status: 'created',
      event: 'track_updated',
    });
    await shippo(app, 'order-1', 'TRANSIT', '2026-03-01T09:00:00Z', 'st_2');
    expect((await order(app, 'order-1')).shipping?.status).toBe('in_transit');
    await shippo(app, 'order-1', 'DELIVERED', '2026-03-01T11:00:00Z', 'st_3');
    expect((await order(app, 'order-1')).shipping?.status).toBe('delivered');

    // SendGrid: delivered, open (opened); a bounce on another order (bounced). One batch may
    // carry events of several orders.
    const batch = await sendgrid(app, [
      { id: 'sg_1', event: 'delivered', orderId: 'order-1', timestamp: t - 20 },
      { id: 'sg_2', event: 'bounce', orderId: 'order-2', timestamp: t - 10 },
    ]);
    expect(batch.events.map((e: { status: string }) => e.status)).toEqual(['accepted', 'accepted']);
    expect((await order(app, 'order-1')).email).toMatchObject({
      status: 'delivered',
      detail: 'customer@example.com',
    });
    expect((await order(app, 'order-2')).email?.status).toBe('bounced');
    await sendgrid(app, [{ id: 'sg_3', event: 'open', orderId: 'order-1', timestamp: t }]);

    const final = await order(app, 'order-1');
    expect({
      payment: final.payment?.status,
      shipping: final.shipping?.status,
      email: final.email?.status,
    }).toEqual({ payment: 'refunded', shipping: 'delivered', email: 'opened' });
    expect(final.history.map((h) => `${h.provider}:${h.status}`)).toEqual([
      'stripe:failed',
      'stripe:succeeded',
      'stripe:refunded',
      'shippo:created',
      'shippo:in_transit',
      'shippo:delivered',
      'sendgrid:delivered',
      'sendgrid:opened',
    ]);
    // order-2 got only its email event; nothing leaked between orders.
    const other = await order(app, 'order-2');
    expect([other.payment, other.shipping, other.history.length]).toEqual([null, null, 1]);
  });

  it('events of other types, or without an order id, are acknowledged and ignored', async () => {
    const app = await start();
    const body = JSON.stringify({
      id: 'evt_x',
      type: 'customer.created',
      created: seconds(app),
      data: { object: { id: 'cus_1', metadata: { order_id: 'order-9' } } },
    });
    const res = await app.post(
      '/webhooks/stripe',
      body,
      sign$.stripe(body, DEMO_STRIPE_SECRET, seconds(app)).headers,
    );
    expect(res.status).toBe(200);
    expect(res.json.events[0].status).toBe('ignored');
    const click = await sendgrid(app, [
      { id: 'sg_c', event: 'click', orderId: 'order-9', timestamp: seconds(app) },
    ]);
    expect(click.events[0].status).toBe('ignored');
    expect((await order(app, 'order-9')).history).toEqual([]);
  });
});

describe('signatures verified', () => {
  /** For each provider: a valid request, and ways to spoil it. */
  const cases = {
    stripe: (app: App, orderId: string) => {
      const body = stripeBody(`evt_${orderId}`, 'charge.succeeded', orderId, seconds(app));
      const good = sign$.stripe(body, DEMO_STRIPE_SECRET, seconds(app));
      return {
        body,
        good,
        wrongSecret: sign$.stripe(body, 'whsec_not_the_secret', seconds(app)),
        stale: sign$.stripe(body, DEMO_STRIPE_SECRET, seconds(app) - 3600),
      };
    },
    shippo: (app: App, orderId: string) => {
      const body = shippoBody(orderId, 'DELIVERED', '2026-03-01T11:00:00Z', `st_${orderId}`);
      const good = sign$.shippo(body, DEMO_SHIPPO_TOKEN, DEMO_SHIPPO_SECRET, seconds(app));
      return {
        body,
        good,
        wrongSecret: sign$.shippo(body, DEMO_SHIPPO_TOKEN, 'not-the-secret', seconds(app)),
        stale: sign$.shippo(body, DEMO_SHIPPO_TOKEN, DEMO_SHIPPO_SECRET, seconds(app) - 3600),
        wrongToken: sign$.shippo(body, 'guessed-token', DEMO_SHIPPO_SECRET, seconds(app)),
      };
    },
    sendgrid: (app: App, orderId: string) => {
      const body = sendgridBody([
        { id: `sg_${orderId}`, event: 'delivered', orderId, timestamp: seconds(app) },
      ]);
      return {
        body,
        good: sign$.sendgrid(body, DEMO_SENDGRID_PRIVATE_KEY, seconds(app)),
        wrongSecret: undefined,
        stale: sign$.sendgrid(body, DEMO_SENDGRID_PRIVATE_KEY, seconds(app) - 3600),
      };
    },
  };

  it.each(Object.keys(cases) as Array<keyof typeof cases>)(
    '%s: a tampered, unsigned, wrongly signed or stale request is 401 and changes nothing; the genuine one is applied',
    async (provider) => {
      const app = await start();
      const c = cases[provider](app, `order-${provider}`);
      const tampered = c.body.replace('order-', 'order-X');
      expect(tampered).not.toBe(c.body);
      const attempts: Array<[string, string, Record<string, string>]> = [
        ['tampered body', tampered, c.good.headers],
        ['no signature', c.body, {}],
        ['stale timestamp', c.body, c.stale.headers],
        ...(c.wrongSecret
          ? [
              ['wrong secret', c.body, c.wrongSecret.headers] as [
                string,
                string,
                Record<string, string>,
              ],
            ]
          : []),
      ];
      for (const [what, body, headers] of attempts) {
        const path =
          what === 'no signature' && provider === 'shippo' ? '/webhooks/shippo' : c.good.path;
        const res = await app.post(path, body, headers);
        expect({ what, status: res.status, code: res.json?.code }).toEqual({
          what,
          status: 401,
          code: 'invalid_signature',
        });
      }
      const { wrongToken } = c as { wrongToken?: Signed };
      if (wrongToken) {
        // Shippo: the URL token is checked as well as the HMAC.
        const res = await app.post(wrongToken.path, c.body, wrongToken.headers);
        expect(res.status).toBe(401);
      }
      for (const key of [`order-${provider}`, `order-X${provider}`]) {
        const s = await order(app, key);
        expect([s.payment, s.shipping, s.email, s.history]).toEqual([null, null, null, []]);
      }
      // Nothing was started for the refused requests: the only invocations are the reads.
      const { invocations } = await app.engine.listInvocations({ limit: 1000 });
      expect(invocations.filter((i) => i.handler !== 'status')).toEqual([]);

      await deliver(app, c.good, c.body);
      const s = await order(app, `order-${provider}`);
      expect(s.history).toHaveLength(1);
    },
  );

  it('a SendGrid batch signed with another key is 401', async () => {
    const app = await start();
    const { generateKeyPairSync } = await import('node:crypto');
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' })
      .privateKey.export({ format: 'der', type: 'pkcs8' })
      .toString('base64');
    const body = sendgridBody([
      { id: 'sg_k', event: 'delivered', orderId: 'order-k', timestamp: seconds(app) },
    ]);
    const res = await app.post(
      '/webhooks/sendgrid',
      body,
      sign$.sendgrid(body, other, seconds(app)).headers,
    );
    expect(res.status).toBe(401);
    expect((await order(app, 'order-k')).email).toBeNull();
  });
});

describe('idempotent processing', () => {
  it('a redelivered request is acknowledged as a duplicate and applied once, per provider', async () => {
    const app = await start();
    const t = seconds(app);
    const sBody = stripeBody('evt_dup', 'charge.succeeded', 'order-d', t);
    const sSigned = sign$.stripe(sBody, DEMO_STRIPE_SECRET, t);
    const hBody = shippoBody('order-d', 'TRANSIT', '2026-03-01T09:00:00Z', 'st_dup');
    const hSigned = sign$.shippo(hBody, DEMO_SHIPPO_TOKEN, DEMO_SHIPPO_SECRET, t);
    const gBody = sendgridBody([
      { id: 'sg_dup', event: 'delivered', orderId: 'order-d', timestamp: t },
    ]);
    const gSigned = sign$.sendgrid(gBody, DEMO_SENDGRID_PRIVATE_KEY, t);
    for (const [signed, body] of [
      [sSigned, sBody],
      [hSigned, hBody],
      [gSigned, gBody],
    ] as const) {
      expect((await deliver(app, signed, body)).events[0].status).toBe('accepted');
      // The provider retries (a timeout on its side), later and freshly signed where it signs time.
      await app.clock.advance('1m');
      expect((await deliver(app, signed, body)).events[0].status).toBe('duplicate');
    }
    // Stripe re-signs a retry with a new timestamp: still the same event id, still a duplicate.
    const resigned = sign$.stripe(sBody, DEMO_STRIPE_SECRET, seconds(app));
    expect((await deliver(app, resigned, sBody)).events[0].status).toBe('duplicate');
    const s = await order(app, 'order-d');
    expect(s.history.map((h) => `${h.provider}:${h.status}`)).toEqual([
      'stripe:succeeded',
      'shippo:in_transit',
      'sendgrid:delivered',
    ]);
  });

  it('the order itself applies an event id once, even if it reaches the handler twice', async () => {
    const app = await start();
    const event = {
      provider: 'stripe',
      receiver: 'stripe',
      id: 'evt_direct',
      type: 'charge.succeeded',
      receivedAt: app.clock.now(),
      data: JSON.parse(stripeBody('evt_direct', 'charge.succeeded', 'order-h', seconds(app))),
    };
    const first = await app.post('/AggregatedOrder/order-h/onStripe', event);
    const second = await app.post('/AggregatedOrder/order-h/onStripe', event);
    expect(first.json).toMatchObject({ applied: true, duplicate: false });
    expect(second.json).toMatchObject({ applied: false, duplicate: true });
    expect((await order(app, 'order-h')).history).toHaveLength(1);
  });
});

describe('out-of-order webhooks', () => {
  it('a late in_transit never overwrites delivered (Shippo)', async () => {
    const app = await start();
    await shippo(app, 'order-o', 'DELIVERED', '2026-03-01T11:00:00Z', 'st_d');
    await shippo(app, 'order-o', 'TRANSIT', '2026-03-01T09:00:00Z', 'st_t');
    await shippo(app, 'order-o', 'PRE_TRANSIT', '2026-03-01T08:00:00Z', 'st_p');
    const s = await order(app, 'order-o');
    expect(s.shipping).toMatchObject({ status: 'delivered', at: '2026-03-01T11:00:00Z' });
    expect(s.history.map((h) => [h.status, h.applied])).toEqual([
      ['delivered', true],
      ['in_transit', false],
      ['created', false],
    ]);
  });

  it('a TRANSIT even with a newer timestamp does not un-deliver a parcel', async () => {
    const app = await start();
    await shippo(app, 'order-n', 'DELIVERED', '2026-03-01T11:00:00Z', 'st_d');
    await shippo(app, 'order-n', 'TRANSIT', '2026-03-01T12:00:00Z', 'st_t');
    expect((await order(app, 'order-n')).shipping?.status).toBe('delivered');
  });

  it('a late charge.succeeded does not undo a refund; a late delivered does not undo an open', async () => {
    const app = await start();
    const t = seconds(app);
    await stripe(app, 'evt_r', 'charge.refunded', 'order-p', t);
    await stripe(app, 'evt_s', 'charge.succeeded', 'order-p', t - 120);
    await sendgrid(app, [{ id: 'sg_o', event: 'open', orderId: 'order-p', timestamp: t }]);
    await sendgrid(app, [{ id: 'sg_d', event: 'delivered', orderId: 'order-p', timestamp: t - 5 }]);
    const s = await order(app, 'order-p');
    expect([s.payment?.status, s.email?.status]).toEqual(['refunded', 'opened']);
    expect(s.history.filter((h) => !h.applied).map((h) => h.eventId)).toEqual(['evt_s', 'sg_d']);
  });
});
