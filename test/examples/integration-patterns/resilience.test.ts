import { createHmac } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { CIRCUIT_OPENED_EVENT, SERVICE } from '../../../examples/integration-patterns/index.js';
import { until } from '../../helpers.js';
import { receiver, verifiesIndependently, type Receiver } from '../../webhooks/helpers.js';
import { patternsOnFakes, pumped, type Patterns } from './harness.js';

/**
 * Seed 003's acceptance criteria against local fake providers (real HTTP on 127.0.0.1), with the
 * declarations of examples/integration-patterns/integrations.cai as written (base URLs aside).
 */
let p: Patterns;
const extra: Receiver[] = [];
afterEach(async () => {
  await p?.close();
  for (const r of extra.splice(0)) await r.close();
});

const invoke = (handler: string, input?: unknown) =>
  p.engine.invoke({ service: SERVICE, handler, input });

describe('GitHubAPI: circuit breaker 5 failures in 1m, reset after 30s', () => {
  it('opens after 5 failures, fails fast, half-opens after 30 s; the events table acts', async () => {
    p = await patternsOnFakes();
    const hookRx = await receiver();
    extra.push(hookRx);
    const endpoint = await p.hooks.createEndpoint({
      url: hookRx.url,
      events: [CIRCUIT_OPENED_EVENT],
    });
    const gh = p.integrations.runtime.client(p.patterns.byName.GitHubAPI);
    p.api.failAll({ status: 500 });

    // First call: 1 attempt + 3 retries, all failing (4 failures, still closed).
    const first = await pumped(p.clock, gh.get_user({ username: 'ada' }));
    expect(first.error).toMatchObject({ code: 'integration_unavailable' });
    expect(p.api.count('/users/ada')).toBe(4);
    // Second call: its first attempt is the fifth failure; the circuit opens and the call's
    // remaining retries are refused without a request.
    await pumped(p.clock, gh.get_user({ username: 'ada' }));
    expect(p.api.count('/users/ada')).toBe(5);
    // Open: a call fails fast with circuit_open, nothing sent.
    const fast = await pumped(p.clock, gh.get_user({ username: 'ada' }));
    expect(fast.error).toMatchObject({ code: 'circuit_open' });
    expect(p.api.count('/users/ada')).toBe(5);

    // IntegrationCircuitOpened → a Slack message and an outbound webhook (the handler's steps
    // wait on the fake clock: move it a little at a time).
    for (let i = 0; i < 100 && (p.slackRx.requests.length < 1 || hookRx.requests.length < 1); i++)
      await p.clock.advance('100ms');
    await until(() => p.slackRx.requests.length >= 1, 'the Slack message');
    expect(JSON.parse(p.slackRx.requests[0]!.body)).toMatchObject({
      text: expect.stringContaining('Circuit opened for GitHubAPI'),
    });
    await until(() => hookRx.requests.length >= 1, 'the circuit-opened webhook');
    const hook = hookRx.requests[0]!;
    expect(JSON.parse(hook.body)).toMatchObject({
      type: CIRCUIT_OPENED_EVENT,
      data: { type: 'IntegrationCircuitOpened', integration: 'GitHubAPI' },
    });
    expect(verifiesIndependently(endpoint.secret, hook)).toBe(true);

    // Still open just before the reset time (the clock moved ~a few s while pumping).
    p.api.failAll(undefined);
    const openedAt = Date.parse((JSON.parse(hook.body) as { data: { at: string } }).data.at);
    await p.clock.advance(openedAt + 29_000 - p.clock.now());
    const stillOpen = await pumped(p.clock, gh.get_user({ username: 'ada' }), '1ms');
    expect(stillOpen.error).toMatchObject({ code: 'circuit_open' });
    expect(p.api.count('/users/ada')).toBe(5);
    // 30 s after it opened: one probe goes out, succeeds, and the circuit closes.
    await p.clock.advance('1s');
    const probe = await pumped(p.clock, gh.get_user({ username: 'ada' }));
    expect(probe.value).toMatchObject({ login: 'ada' });
    expect(p.api.count('/users/ada')).toBe(6);
    expect(p.runtimeLogs).toEqual(
      expect.arrayContaining([
        expect.stringContaining('IntegrationCircuitOpened: GitHubAPI'),
        expect.stringContaining('IntegrationCircuitHalfOpened: GitHubAPI'),
        expect.stringContaining('IntegrationCircuitClosed: GitHubAPI'),
      ]),
    );
    // IntegrationCircuitClosed → a log line.
    for (let i = 0; i < 100 && !p.lines.some((l) => l.includes('recovered')); i++)
      await p.clock.advance('100ms');
    await until(
      () => p.lines.some((l) => l.startsWith('IntegrationCircuitClosed: GitHubAPI recovered')),
      'the circuit-closed log line',
    );
  });
});

describe('WeatherAPI: default_cache_ttl 15m, fallback: cache', () => {
  it('serves the last good answer from the cache while the circuit is open', async () => {
    p = await patternsOnFakes();
    const weather = p.integrations.runtime.client(p.patterns.byName.WeatherAPI);
    p.api.script({ status: 200, body: { name: 'Paris', main: { temp: 21 } } });
    const fresh = await pumped(p.clock, weather.get_current.withResponse({ city: 'Paris' }));
    expect(fresh.value).toMatchObject({ data: { name: 'Paris' }, source: 'network' });
    const sent = p.api.requests[0]!;
    expect(sent.query).toMatchObject({ q: 'Paris', units: 'metric', appid: 'ow_test' });
    // Within 15 minutes the cache answers, without a request.
    await p.clock.advance('14m');
    const cached = await pumped(p.clock, weather.get_current.withResponse({ city: 'Paris' }));
    expect(cached.value).toMatchObject({ source: 'cache' });
    expect(p.api.count('/data/2.5/weather')).toBe(1);

    // The API goes down; calls for other cities open the circuit.
    await p.clock.advance('2m');
    p.api.failAll({ status: 503 });
    await pumped(p.clock, weather.get_current({ city: 'Berlin' }));
    await pumped(p.clock, weather.get_current({ city: 'Rome' }));
    const failures = p.api.count('/data/2.5/weather') - 1;
    expect(failures).toBe(5);
    expect(p.runtimeLogs.some((l) => l.includes('IntegrationCircuitOpened: WeatherAPI'))).toBe(
      true,
    );
    // Open: Paris (stale now) is served from the cache, no request sent.
    const stale = await pumped(p.clock, weather.get_current.withResponse({ city: 'Paris' }));
    expect(stale.value).toMatchObject({ data: { name: 'Paris' }, source: 'fallback-cache' });
    expect(p.api.count('/data/2.5/weather')).toBe(1 + failures);
    // A city never fetched has nothing to fall back on.
    const none = await pumped(p.clock, weather.get_current({ city: 'Oslo' }));
    expect(none.error).toMatchObject({ code: 'circuit_open' });
  });
});

describe('StripeAPI: idempotency Idempotency-Key, generate: true', () => {
  it('a retried charge carries the same idempotency key; one charge is made', async () => {
    p = await patternsOnFakes();
    p.api.script({ status: 503 }, { status: 200, body: { id: 'ch_1', amount: 1200 } });
    const r = await pumped(p.clock, invoke('charge', { amount: 1200 }));
    expect(r.value).toMatchObject({ id: 'ch_1' });
    const keys = p.api.idempotencyKeys('/v1/charges');
    expect(keys).toHaveLength(2);
    expect(keys[0]).toBe(keys[1]);
    expect(keys[0]).toMatch(/\S/);
    const req = p.api.requests.find((x) => x.path === '/v1/charges')!;
    expect(req.headers.authorization).toBe('Bearer sk_test_1');
    // A second charge is another key.
    p.api.script({ status: 200, body: { id: 'ch_2' } });
    await pumped(p.clock, invoke('charge', { amount: 500 }));
    expect(new Set(p.api.idempotencyKeys('/v1/charges')).size).toBe(2);
  });
});

describe('NotificationService: batching 100 / 5s', () => {
  it('sends 250 notifications as 3 batches: 100, 100, then 50 after 5 s', async () => {
    p = await patternsOnFakes();
    const answer = (n: number) => ({
      status: 200,
      body: Array.from({ length: n }, (_, i) => ({ id: `n${i}`, status: 'sent' })),
    });
    p.api.script(answer(100), answer(100), answer(50));
    const done = invoke('notifyMany', { count: 250 });
    await until(() => p.api.count('/notifications/batch') >= 2, 'the two full batches');
    // The last 50 wait for max_delay.
    await p.clock.advance('4s');
    expect(p.api.count('/notifications/batch')).toBe(2);
    await p.clock.advance('1s');
    const r = await pumped(p.clock, done);
    expect(r.value).toEqual({ sent: 250, results: 250 });
    const batches = p.api.requests.filter((x) => x.path === '/notifications/batch');
    expect(batches.map((b) => (b.body as unknown[]).length)).toEqual([100, 100, 50]);
    expect(batches[0]!.headers.authorization).toBe('Bearer ntf_test');
  });
});

describe('WebhookDeliveryService: type webhook drives delivery', () => {
  it('signs with X-Webhook-Signature, retries on [1m, 5m, 30m, 2h, 8h], dead-letters for 7d, then Slack', async () => {
    p = await patternsOnFakes();
    const arrivals: number[] = [];
    const down = await receiver((n) => {
      arrivals[n] = p.clock.now();
      return { status: 500 };
    });
    extra.push(down);
    const endpoint = await p.hooks.createEndpoint({ url: down.url, events: ['order.created'] });
    await invoke('publishEvent', { type: 'order.created', data: { id: 'ord_1' } });
    await until(() => down.requests.length === 1, 'the first attempt');
    for (const [i, delay] of ['1m', '5m', '30m', '2h', '8h'].entries()) {
      await p.clock.advance(delay);
      await until(() => down.requests.length === i + 2, `attempt ${i + 2}`);
    }
    const gaps = arrivals.slice(1).map((t, i) => t - arrivals[i]!);
    expect(gaps).toEqual([60_000, 300_000, 1_800_000, 7_200_000, 28_800_000]);
    // Every attempt carries the declared header: sha256= HMAC of the body, keyed by the secret.
    for (const r of down.requests) {
      const expected = `sha256=${createHmac('sha256', endpoint.secret).update(r.body).digest('hex')}`;
      expect(r.headers['x-webhook-signature']).toBe(expected);
      expect(verifiesIndependently(endpoint.secret, r)).toBe(true);
    }
    // No seventh attempt: the delivery is dead-lettered, kept 7 days, and Slack is told.
    await p.clock.advance('1d');
    expect(down.requests).toHaveLength(6);
    const [delivery] = (await p.hooks.runtime.log.list(endpoint.id, {})).deliveries;
    expect(delivery).toMatchObject({ status: 'failed', failure_reason: 'exhausted' });
    expect(Date.parse(delivery!.expires_at) - Date.parse(delivery!.updated_at)).toBe(
      7 * 86_400_000,
    );
    await until(() => p.slackRx.requests.length >= 1, 'the Slack message');
    expect(JSON.parse(p.slackRx.requests[0]!.body)).toMatchObject({
      text: expect.stringContaining('Webhook delivery failed: order.created'),
    });
    expect(p.slackRx.requests[0]!.body).toContain('after 6 attempts');
  });
});
