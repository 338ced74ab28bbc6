/**
 * Seed 000, exercise 6 over real HTTP: `FulfillmentOrchestrator` with its Twilio connector
 * (`FulfillmentSms`) in real mode (account SID and auth token, `KEEL_MOCK=0`) against a fake
 * Twilio Messages API on 127.0.0.1 (test/fakes/providers' `fakeTwilio`: HTTP Basic, Twilio's
 * shapes), the example pointed at it with `FULFILLMENT_TWILIO_API_URL`. The warehouse and
 * carrier webhooks are signed and posted to the ingress. The in-process mock tests are
 * fulfillment.test.ts and crash.test.ts.
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { Engine } from '../../../src/index.js';
import { serve, type IngressServer } from '../../../src/ingress/index.js';
import { createIntegrations } from '../../../src/integrations/index.js';
import { openSqliteStore } from '../../../src/store/sqlite/index.js';
import { FakeClock } from '../../../src/testing/index.js';
import { createWebhooks, standardWebhooks } from '../../../src/webhooks/index.js';
import { fakeTwilio, type WireRecord } from '../../fakes/providers/index.js';
import { tempDir } from '../../helpers.js';

const SID = 'AC00000000000000000000000000000006';
const TOKEN = 'fulfillment-twilio-token';
const twilio = await fakeTwilio(SID, TOKEN);
// The example creates its connector (and its account path) when it loads: point it at the fake
// and give it the account first.
const previous = {
  FULFILLMENT_TWILIO_API_URL: process.env.FULFILLMENT_TWILIO_API_URL,
  TWILIO_ACCOUNT_SID: process.env.TWILIO_ACCOUNT_SID,
};
process.env.FULFILLMENT_TWILIO_API_URL = twilio.api.url;
process.env.TWILIO_ACCOUNT_SID = SID;
const example = await import('../../../examples/fulfillment/index.js');
const { smsMock, SMS_FROM } = await import('../../../examples/fulfillment/notifications.js');

afterAll(async () => {
  for (const [name, value] of Object.entries(previous)) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
  await twilio.api.close();
});

const ENV = { KEEL_MOCK: '0', TWILIO_ACCOUNT_SID: SID, TWILIO_AUTH_TOKEN: TOKEN };
const MESSAGES = `/2010-04-01/Accounts/${SID}/Messages.json`;
const ORDER = {
  customer: { name: 'Ada', phone: '+15558675310' },
  items: [{ sku: 'SKU-1', quantity: 1 }],
};

interface Rig {
  engine: Engine;
  clock: FakeClock;
  post(path: string, body?: unknown): Promise<{ status: number; json: any }>;
  webhook(from: 'warehouse' | 'carrier', type: string, data: unknown): Promise<number>;
}

const open: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of open.splice(0)) await close();
});

async function start(): Promise<Rig> {
  const { dir, cleanup } = tempDir('keel-fulfillment-http-');
  const clock = new FakeClock();
  const engine = new Engine({
    services: example.definitions,
    store: openSqliteStore({ path: join(dir, 'keel.db') }),
    clock,
    suspendAfter: '1s',
    logger: () => undefined,
    extensions: [
      createWebhooks({ receivers: example.fulfillmentReceivers(example.webhookSecrets({})) }),
      createIntegrations({ integrations: example.integrations, env: ENV, log: () => undefined }),
    ],
  });
  await engine.start();
  const ingress: IngressServer = await serve(engine, { port: 0 });
  open.push(async () => {
    await ingress.close();
    await engine.stop().catch(() => undefined);
    cleanup();
  });
  const secrets = example.webhookSecrets({});
  const post: Rig['post'] = async (path, body) => {
    const res = await fetch(`${ingress.url}${path}`, {
      method: 'POST',
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, json: text ? JSON.parse(text) : undefined };
  };
  return {
    engine,
    clock,
    post,
    async webhook(from, type, data) {
      const body = JSON.stringify({ type, timestamp: new Date(clock.now()).toISOString(), data });
      const headers = standardWebhooks.signedHeaders({
        id: `msg_${randomUUID().replace(/-/g, '')}`,
        timestamp: Math.floor(clock.now() / 1000),
        body,
        secret: secrets[from],
      });
      const res = await fetch(`${ingress.url}/webhooks/fulfillment-${from}`, {
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/json' },
        body,
      });
      return res.status;
    },
  };
}

/** Moves the fake clock 1 s at a time (retries back off on it) until `cond` holds. */
async function drive(r: Rig, cond: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if (await cond()) return;
    await r.clock.advance('1s');
  }
  throw new Error(`the clock moved 300 s and still not: ${what}`);
}

const stageOf = async (r: Rig, orderId: string) =>
  (await r.post(`/FulfillmentOrchestrator/${orderId}/status`)).json as {
    stage: string;
    state: string;
  };

/** Runs an order through packing and pickup (signed webhooks) to its end; returns its result. */
async function fulfil(r: Rig, orderId: string): Promise<Record<string, unknown>> {
  const sent = await r.post(`/FulfillmentOrchestrator/${orderId}/run/send`, ORDER);
  expect(sent.status).toBe(202);
  const id = sent.json.invocationId as string;
  await drive(
    r,
    async () => (await stageOf(r, orderId)).stage === 'pick_ticket_created',
    'waiting for packing',
  );
  expect(
    await r.webhook('warehouse', 'pick_ticket.packed', {
      pick_ticket_id: `PT-${orderId}`,
      packages: [{ weightGrams: 500 }],
    }),
  ).toBe(200);
  await drive(
    r,
    async () => (await stageOf(r, orderId)).stage === 'pickup_scheduled',
    'waiting for pickup',
  );
  expect(await r.webhook('carrier', 'pickup.completed', { pickup_id: `PU-${orderId}` })).toBe(200);
  let outcome: Record<string, unknown> | undefined;
  void r.engine.attach(id).then((o) => (outcome = o as Record<string, unknown>));
  await drive(r, async () => outcome !== undefined, `${orderId} to end`);
  return outcome!;
}

const messagesFrom = (before: number): WireRecord[] =>
  twilio.api.requests.slice(before).filter((q) => q.method === 'POST');

describe('FulfillmentOrchestrator over real HTTP (seed 000, exercise 6)', () => {
  it('the complete flow texts the tracking number to the order phone: exactly one SMS, Basic auth', async () => {
    const r = await start();
    const before = twilio.api.requests.length;
    const done = await fulfil(r, 'http-o-1');
    expect(done).toMatchObject({ status: 'completed', notified: true });
    const trackingNumber = done.trackingNumber as string;
    expect(trackingNumber).toMatch(/^1Z[0-9A-F]{16}$/);

    const [sms, ...more] = messagesFrom(before);
    expect(more).toEqual([]);
    expect(sms!.rawPath).toBe(MESSAGES);
    expect(sms!.headers.authorization).toBe(
      `Basic ${Buffer.from(`${SID}:${TOKEN}`).toString('base64')}`,
    );
    expect(sms!.headers['content-type']).toMatch(/^application\/x-www-form-urlencoded/);
    const fields = Object.fromEntries(new URLSearchParams(sms!.text));
    expect(fields).toEqual({
      To: '+15558675310',
      From: SMS_FROM,
      Body: `Order http-o-1 is on its way with UPS: tracking number ${trackingNumber}`,
    });
    // The outbox keeps the sid the fake answered; nothing was answered in-process.
    const outbox = (await r.post('/FulfillmentNotifications/http-o-1/outbox')).json as {
      sid: string;
    }[];
    expect(outbox).toHaveLength(1);
    expect(outbox[0]!.sid).toMatch(/^SM[0-9a-f]{32}$/);
    expect(done.messageSid).toBe(outbox[0]!.sid);
    expect(smsMock.requests).toHaveLength(0);
  });

  it('Twilio answering 500 once: sent once, not retried (it may have queued it), the order ships with notified false', async () => {
    const r = await start();
    twilio.mock.failNext(1, 500);
    const before = twilio.api.requests.length;
    const done = await fulfil(r, 'http-o-2');
    expect(done).toMatchObject({ status: 'completed', notified: false });
    expect(done.messageSid).toBeUndefined();
    const sent = messagesFrom(before);
    expect(sent).toHaveLength(1);
    expect(Object.fromEntries(new URLSearchParams(sent[0]!.text)).Body).toContain(
      done.trackingNumber as string,
    );
    // The failed SMS undid nothing: the order is completed, the outbox empty.
    expect((await stageOf(r, 'http-o-2')).stage).toBe('completed');
    expect((await r.post('/FulfillmentNotifications/http-o-2/outbox')).json).toEqual([]);
  });
});
