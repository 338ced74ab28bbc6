import { afterEach, describe, expect, it } from 'vitest';
import { service, type Context } from '../../src/index.js';
import { integration, stripe, use } from '../../src/integrations/index.js';
import {
  mockFail,
  mockNetworkError,
  mockTimeout,
  testApp,
  TestAppError,
  type TestApp,
} from '../../src/testing/index.js';

/**
 * A payments API with a deterministic retry policy (no jitter: 1 s, then 2 s) and a breaker
 * that opens after 3 failures in a minute, for 30 s.
 */
const Payments = integration({
  name: 'Payments',
  baseUrl: 'https://payments.invalid',
  retry: { maxAttempts: 3, initialInterval: '1s', factor: 2, maxInterval: '10s', jitter: 0 },
  circuitBreaker: { failures: 3, window: '1m', reset: '30s' },
  idempotency: { enabled: true, header: 'Idempotency-Key' },
  operations: {
    charge: { method: 'POST', path: '/charges' },
    get_charge: { method: 'GET', path: '/charges/{id}' },
  },
});

/** One request a minute: the second call of a minute waits for the next window. */
const Quota = integration({
  name: 'Quota',
  baseUrl: 'https://quota.invalid',
  rateLimit: { requests: 1, per: '1m' },
  operations: { ping: { method: 'GET', path: '/ping' } },
});

/** The seeds' Stripe connector, with its own in-process mock. */
const Stripe = stripe();

const Checkout = service({
  name: 'Checkout',
  handlers: {
    pay: async (ctx: Context, input: { order: string; amount: number }) => {
      const charge = await use(ctx, Payments).charge<{ id: string }>({
        amount: input.amount,
        order: input.order,
      });
      return charge.id;
    },
    lookup: async (ctx: Context, id: string) => use(ctx, Payments).get_charge<unknown>({ id }),
    ping: async (ctx: Context) => use(ctx, Quota).ping<string>(),
    stripeCharge: async (ctx: Context, amount: number) => {
      const charge = await use(ctx, Stripe).create_charge({
        amount,
        currency: 'usd',
        source: 'tok_visa',
        metadata: { order: 'o1' },
      });
      const again = await use(ctx, Stripe).retrieve_charge({ id: charge.id });
      return { id: charge.id, retrieved: again.id };
    },
  },
});

let t: TestApp;

afterEach(async () => {
  await t?.close();
});

async function app(): Promise<TestApp> {
  t = await testApp({ services: [Checkout], integrations: [Payments, Stripe] });
  return t;
}

describe('t.mock: integration mocks', () => {
  it('records each request with its arguments, idempotency key and fake-clock time', async () => {
    await app();
    const payments = t.mock(Payments, {
      charge: (call) => ({ id: `ch_${call.body.order}` }),
    });
    await t.advance('1h');
    expect(await t.service(Checkout).pay({ order: 'o7', amount: 2000 })).toBe('ch_o7');

    const [call, ...more] = payments.calls('charge');
    expect(more).toHaveLength(0);
    expect(call).toMatchObject({
      integration: 'Payments',
      operation: 'charge',
      method: 'POST',
      path: '/charges',
      body: { amount: 2000, order: 'o7' },
      at: t.clock.now(),
      n: 1,
      status: 200,
    });
    const [inv] = await t.invocations({ service: Checkout });
    // The key the runtime derives from the invocation and the call's position in it.
    expect(call!.headers['idempotency-key']).toBe(`${inv!.id}.0`);
    expect(payments.calls('get_charge')).toEqual([]);
  });

  it("falls back to the integration's own mock once the test's answers run out", async () => {
    await app();
    // One outage, then Stripe's connector mock (mock mode) answers, keeping its own state.
    const s = t.mock(Stripe, { create_charge: mockFail(503, { times: 1 }) });
    const id = await t.serviceSend(Checkout).stripeCharge(1500);
    await t.runUntilIdle({ skipTime: true });
    const result = await t.attach<{ id: string; retrieved: string }>(id);
    expect(result.id).toMatch(/^ch_/);
    expect(result.retrieved).toBe(result.id);

    const charges = s.calls('create_charge');
    expect(charges.map((c) => c.status)).toEqual([503, 200]);
    // The form-encoded body is decoded for assertions (values are strings, as on the wire).
    expect(charges[0]!.body).toEqual({
      amount: '1500',
      currency: 'usd',
      source: 'tok_visa',
      metadata: { order: 'o1' },
    });
    expect(s.calls('retrieve_charge')).toMatchObject([
      { method: 'GET', path: `/v1/charges/${result.id}`, status: 200 },
    ]);
  });

  it('retries 503s with the real retry policy, on the fake clock', async () => {
    await app();
    const payments = t.mock(Payments, {
      charge: [t.mock.fail(503, { times: 2 }), { id: 'ch_1' }],
    });
    const start = t.clock.now();
    const id = await t.serviceSend(Checkout).pay({ order: 'o1', amount: 100 });
    await t.idle();
    expect(payments.calls('charge')).toHaveLength(1);
    expect((await t.output(id)).ready).toBe(false);

    await t.advance('999ms');
    expect(payments.calls('charge')).toHaveLength(1);
    await t.advance('1ms'); // 1 s backoff
    expect(payments.calls('charge')).toHaveLength(2);
    await t.advance('2s'); // then 2 s
    expect(await t.attach(id)).toBe('ch_1');

    const calls = payments.calls('charge');
    expect(calls.map((c) => c.at - start)).toEqual([0, 1000, 3000]);
    expect(calls.map((c) => c.status)).toEqual([503, 503, 200]);
    // Every attempt carries the same idempotency key.
    expect(new Set(calls.map((c) => c.headers['idempotency-key'])).size).toBe(1);
  });

  it('honours a 429 Retry-After when the test advances the clock through it', async () => {
    await app();
    const payments = t.mock(Payments, {
      charge: [mockFail(429, { retryAfter: '30s' }), { id: 'ch_2' }],
    });
    const id = await t.serviceSend(Checkout).pay({ order: 'o2', amount: 100 });
    await t.idle();
    expect(payments.calls('charge')[0]!.status).toBe(429);

    await t.advance('29s'); // the policy's own 1 s backoff would have retried by now
    expect(payments.calls('charge')).toHaveLength(1);
    await t.advance('1s');
    expect(await t.attach(id)).toBe('ch_2');
    expect(payments.calls('charge')).toHaveLength(2);
  });

  it('opens the circuit breaker after failures, and half-opens it after the reset', async () => {
    await app();
    const payments = t.mock(Payments, { charge: mockFail(500) });
    const first = await t.serviceSend(Checkout).pay({ order: 'o3', amount: 100 });
    await t.runUntilIdle({ skipTime: true });
    await expect(t.attach(first)).rejects.toMatchObject({ code: 'integration_unavailable' });
    expect(payments.calls('charge')).toHaveLength(3); // 3 failures in a minute: open

    // Open: the call fails at once, the API is not asked.
    await expect(t.service(Checkout).pay({ order: 'o4', amount: 100 })).rejects.toMatchObject({
      code: 'circuit_open',
    });
    expect(payments.calls('charge')).toHaveLength(3);

    await t.advance('30s'); // half-open: one probe may go
    payments.answer({ charge: { id: 'ch_5' } });
    expect(await t.service(Checkout).pay({ order: 'o5', amount: 100 })).toBe('ch_5');
    expect(payments.calls('charge')).toHaveLength(4);
  });

  it('simulates timeouts and dropped connections as the transport would fail', async () => {
    await app();
    const payments = t.mock(Payments, {
      charge: [mockTimeout(), mockNetworkError('ECONNRESET'), { id: 'ch_6' }],
    });
    const id = await t.serviceSend(Checkout).pay({ order: 'o6', amount: 100 });
    await t.runUntilIdle({ skipTime: true });
    expect(await t.attach(id)).toBe('ch_6');
    const calls = payments.calls('charge');
    expect(calls[0]).toMatchObject({ timeout: true });
    expect(calls[1]).toMatchObject({ networkError: 'ECONNRESET' });
    expect(calls[2]).toMatchObject({ status: 200 });
  });

  it('holds a call over the rate limit until the window has room, on the fake clock', async () => {
    // Quota is not listed: it is mocked before any handler uses it.
    t = await testApp({ services: [Checkout], integrations: [] });
    const quota = t.mock(Quota, { ping: 'pong' });
    expect(await t.service(Checkout).ping()).toBe('pong');
    const start = t.clock.now();
    const second = await t.serviceSend(Checkout).ping();
    await t.advance('50s');
    expect(quota.calls('ping')).toHaveLength(1);
    expect((await t.output(second)).ready).toBe(false);
    await t.runUntilIdle({ skipTime: true });
    expect(await t.attach(second)).toBe('pong');
    const [, late] = quota.calls('ping');
    // The next window: a minute after the first request (and not much later).
    expect(late!.at - start).toBeGreaterThanOrEqual(60_000);
    expect(late!.at - start).toBeLessThan(65_000);
  });

  it('fails an unscripted call of an integration without a mock at once, naming what to do', async () => {
    await app();
    const payments = t.mock(Payments);
    await expect(t.service(Checkout).lookup('ch_9')).rejects.toThrow(
      /Payments\.get_charge is not mocked in this test/,
    );
    expect(payments.calls('get_charge')).toHaveLength(1); // not retried
  });

  it('refuses to mock without integrations, or an operation the integration lacks', async () => {
    t = await testApp({ services: [] });
    expect(() => t.mock(Payments)).toThrow(TestAppError);
    await t.close();
    await app();
    expect(() =>
      t.mock(Payments, { refund: { ok: true } } as unknown as Parameters<typeof t.mock>[1]),
    ).toThrow(/Payments has no operation refund/);
  });
});
