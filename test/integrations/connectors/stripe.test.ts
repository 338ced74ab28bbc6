import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { env, stripe } from '../../../src/integrations/index.js';
import { STRIPE_DECLINES, stripeMock } from '../../../src/integrations/mocks.js';
import { fakeStripe, type Fake } from '../../fakes/providers/index.js';
import { callError, clientOf, FAST_RETRY, mockReq, runtime } from './helpers.js';

const KEY = 'sk_test_keel_123';
const ENV = { STRIPE_SECRET_KEY: KEY };

let fake: Fake;
beforeAll(async () => {
  fake = await fakeStripe(KEY);
});
afterAll(() => fake.api.close());

function client(name: string) {
  const pay = stripe({ name, baseUrl: fake.api.url, retry: FAST_RETRY });
  return clientOf(runtime({ env: ENV }), pay);
}

describe('stripe connector on the wire', () => {
  it('POSTs a form-encoded charge with the secret key, API version and an idempotency key', async () => {
    const charge = await client('StripeWire1').create_charge({
      amount: 2000,
      currency: 'usd',
      source: 'tok_visa',
      metadata: { order_id: '42' },
    });
    const r = fake.api.last();
    expect(r.method).toBe('POST');
    expect(r.target).toBe('/v1/charges');
    expect(r.headers.authorization).toBe(`Bearer ${KEY}`);
    expect(r.headers['content-type']).toMatch(/^application\/x-www-form-urlencoded/);
    expect(r.headers['stripe-version']).toBe('2024-06-20');
    expect(r.headers['idempotency-key']).toMatch(/\S{8,}/);
    expect(new URLSearchParams(r.text)).toEqual(
      new URLSearchParams('amount=2000&currency=usd&source=tok_visa&metadata[order_id]=42'),
    );
    expect(charge).toMatchObject({
      object: 'charge',
      amount: 2000,
      currency: 'usd',
      status: 'succeeded',
      paid: true,
      metadata: { order_id: '42' },
    });
    expect(charge.id).toMatch(/^ch_[0-9A-Za-z]{20,}$/);
  });

  it('retries a 503 with the same idempotency key, and charges once', async () => {
    const before = fake.api.requests.length;
    fake.mock.failNext(1, 503);
    const charge = await client('StripeWire2').create_charge({
      amount: 1500,
      currency: 'eur',
      source: 'tok_mastercard',
    });
    const sent = fake.api.requests.slice(before);
    expect(sent).toHaveLength(2);
    expect(sent[0]!.headers['idempotency-key']).toBe(sent[1]!.headers['idempotency-key']);
    expect(charge.payment_method_details?.card.brand).toBe('mastercard');
  });

  it('retries 409 (a request with the same key still running) but not a decline', async () => {
    fake.mock.failNext(1, {
      status: 409,
      body: { error: { type: 'idempotency_error', message: 'in progress' } },
    });
    const ok = await client('StripeWire3').create_charge.withResponse({
      amount: 700,
      currency: 'usd',
      source: 'tok_visa',
    });
    expect(ok.attempts).toBe(2);

    const before = fake.api.requests.length;
    const err = await callError(
      client('StripeWire4').create_charge({
        amount: 700,
        currency: 'usd',
        source: 'tok_chargeDeclined',
      }),
    );
    expect(fake.api.requests.length - before).toBe(1);
    expect(err.code).toBe('integration_rejected');
    expect(err.failure.status).toBe(402);
    expect(err.failure.body).toMatchObject({
      error: { type: 'card_error', code: 'card_declined', decline_code: 'generic_decline' },
    });
  });

  it('refunds a charge (GET by id in the path), and a refund of an unknown charge is 404', async () => {
    const pay = client('StripeWire5');
    const charge = await pay.create_charge({ amount: 5000, currency: 'usd', source: 'tok_visa' });
    const refund = await pay.create_refund({ charge: charge.id, amount: 2000 });
    expect(new URLSearchParams(fake.api.last().text).get('charge')).toBe(charge.id);
    expect(refund).toMatchObject({
      object: 'refund',
      amount: 2000,
      charge: charge.id,
      status: 'succeeded',
    });
    const again = await pay.retrieve_charge({ id: charge.id });
    expect(fake.api.last().target).toBe(`/v1/charges/${charge.id}`);
    expect(fake.api.last().headers['idempotency-key']).toBeUndefined();
    expect(again).toMatchObject({ amount_refunded: 2000, refunded: false });

    const err = await callError(pay.create_refund({ charge: 'ch_doesnotexist' }));
    expect(err.failure.status).toBe(404);
    expect(err.failure.body).toMatchObject({ error: { code: 'resource_missing' } });
  });

  it('refuses a wrong key with 401, and reads the key from the environment at call time', async () => {
    const pay = stripe({ name: 'StripeWire6', baseUrl: fake.api.url, apiKey: env('OTHER_KEY') });
    const err = await callError(
      clientOf(runtime({ env: { OTHER_KEY: 'sk_test_wrong' } }), pay).create_charge({
        amount: 100,
        currency: 'usd',
        source: 'tok_visa',
      }),
    );
    expect(err.failure.status).toBe(401);
    const missing = await callError(
      clientOf(runtime({ env: {} }), pay).retrieve_charge({ id: 'ch_1' }),
    );
    expect(missing.code).toBe('integration_invalid_request');
    expect(missing.message).toContain('OTHER_KEY');
  });
});

describe('stripe mock', () => {
  it('answers in mock mode with no key and no server', async () => {
    const pay = clientOf(runtime({ mock: true, env: {} }), stripe({ name: 'StripeMock1' }));
    const charge = await pay.create_charge.withResponse({
      amount: 2000,
      currency: 'usd',
      source: 'tok_visa',
    });
    expect(charge.source).toBe('mock');
    expect(charge.data.status).toBe('succeeded');
  });

  it('derives ids from the idempotency key, replays the first answer, refuses other parameters', () => {
    const mock = stripeMock();
    const body = 'amount=2000&currency=usd&source=tok_visa';
    const req = mockReq('POST', '/v1/charges', { headers: { 'idempotency-key': 'k1' }, body });
    const a = mock(req) as { body: { id: string } };
    const b = mock(req) as { body: { id: string }; headers: Record<string, string> };
    expect(b.body.id).toBe(a.body.id);
    expect(b.headers['idempotent-replayed']).toBe('true');
    expect((stripeMock()(req) as { body: { id: string } }).body.id).toBe(a.body.id);
    const other = mock({ ...req, body: 'amount=3000&currency=usd&source=tok_visa' });
    expect(other.status).toBe(400);
    expect(other.body).toMatchObject({ error: { type: 'idempotency_error' } });
  });

  it('declines every documented test token with 402 and its code', () => {
    const mock = stripeMock();
    for (const [token, decline] of Object.entries(STRIPE_DECLINES)) {
      const res = mock(
        mockReq('POST', '/v1/charges', { body: { amount: 1000, currency: 'usd', source: token } }),
      );
      expect(res.status, token).toBe(402);
      expect(res.body, token).toMatchObject({ error: { type: 'card_error', code: decline.code } });
    }
  });

  it('validates like Stripe: missing amount, amount too small, no source', () => {
    const mock = stripeMock();
    const post = (body: Record<string, unknown>) => mock(mockReq('POST', '/v1/charges', { body }));
    expect(post({ currency: 'usd', source: 'tok_visa' })).toMatchObject({
      status: 400,
      body: { error: { code: 'parameter_missing', param: 'amount' } },
    });
    expect(post({ amount: 10, currency: 'usd', source: 'tok_visa' })).toMatchObject({
      status: 400,
      body: { error: { code: 'amount_too_small' } },
    });
    expect(post({ amount: 100, currency: 'usd' })).toMatchObject({ status: 400 });
  });

  it('keeps refund state: partial, rest, then already refunded; too much is refused', () => {
    const mock = stripeMock();
    const charge = mock(
      mockReq('POST', '/v1/charges', {
        body: { amount: 1000, currency: 'usd', source: 'tok_visa' },
      }),
    ).body as { id: string };
    const refund = (body: Record<string, unknown>) =>
      mock(mockReq('POST', '/v1/refunds', { body }));
    expect(refund({ charge: charge.id, amount: 2000 })).toMatchObject({ status: 400 });
    expect(refund({ charge: charge.id, amount: 400 })).toMatchObject({
      status: 200,
      body: { amount: 400 },
    });
    expect(refund({ charge: charge.id })).toMatchObject({ status: 200, body: { amount: 600 } });
    expect(refund({ charge: charge.id })).toMatchObject({
      status: 400,
      body: { error: { code: 'charge_already_refunded' } },
    });
    expect(mock(mockReq('GET', `/v1/charges/${charge.id}`)).body).toMatchObject({
      refunded: true,
      amount_refunded: 1000,
    });
  });

  it('still knows a charge minted before a restart (a fresh mock), but not a made-up one', () => {
    const before = stripeMock();
    const charge = before(
      mockReq('POST', '/v1/charges', {
        body: { amount: 4200, currency: 'gbp', source: 'tok_visa' },
      }),
    ).body as { id: string };
    const after = stripeMock();
    expect(after(mockReq('POST', '/v1/refunds', { body: { charge: charge.id } }))).toMatchObject({
      status: 200,
      body: { amount: 4200, currency: 'gbp', charge: charge.id },
    });
    const forged = `${charge.id.slice(0, -1)}${charge.id.endsWith('A') ? 'B' : 'A'}`;
    expect(after(mockReq('POST', '/v1/refunds', { body: { charge: forged } })).status).toBe(404);
  });

  it('failNext queues provider-shaped failures, then answers normally', () => {
    const mock = stripeMock();
    mock.failNext(2, 500);
    const req = mockReq('GET', '/v1/charges/ch_x');
    expect(mock(req)).toMatchObject({ status: 500, body: { error: { type: 'api_error' } } });
    expect(mock(req).status).toBe(500);
    expect(mock(req).status).toBe(404);
    expect(mock.requests).toHaveLength(3);
  });
});
