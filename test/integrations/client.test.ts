import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  IntegrationCallError,
  IntegrationRuntime,
  integration,
} from '../../src/integrations/index.js';
import type { MockRequest } from '../../src/integrations/mocks.js';
import { FakeClock } from '../../src/testing/index.js';
import { ProviderServer } from '../fakes/provider-server.js';
import { until } from '../helpers.js';

/**
 * Plain clients (outside handlers) over real HTTP against the fake provider: classification,
 * retries with Retry-After, timeouts, caching, idempotency keys, batching and mock mode.
 */
let api: ProviderServer;
const runtimes: IntegrationRuntime[] = [];
beforeAll(async () => {
  api = await ProviderServer.start();
});
afterEach(async () => {
  for (const r of runtimes.splice(0)) await r.close();
  api.failAll(undefined);
});
afterAll(async () => {
  await api.close();
});

function runtimeFor(options: { clock?: FakeClock } = {}): IntegrationRuntime {
  const r = new IntegrationRuntime({ log: () => undefined, ...options });
  runtimes.push(r);
  return r;
}

const fast = { maxAttempts: 4, initialInterval: 1, maxInterval: 5 } as const;

describe('plain integration client', () => {
  it('retries 5xx and 429 (waiting at least Retry-After) and returns the data', async () => {
    const gh = integration({
      name: `GH_${Math.random().toString(36).slice(2)}`,
      baseUrl: api.url,
      // Without jitter, the retry after the 503 waits exactly `initialInterval` (1 ms).
      retry: { ...fast, jitter: 0 },
      operations: { get_user: { path: '/users/{username}' } },
    });
    const before = api.count('/users');
    api.script({ status: 503 }, { status: 429, headers: { 'retry-after': '0.05' } });
    // Retry waits run on the fake clock: each one is a pending timer until the test moves time.
    const clock = new FakeClock();
    const call = runtimeFor({ clock }).client(gh).get_user.withResponse({ username: 'octocat' });
    const sent = (): number => api.count('/users') - before;
    await until(() => clock.timerCount === 1, 'the retry after the 503 to be scheduled', 5000);
    expect(sent()).toBe(1);
    await clock.advance(1);
    // The 429 asked for 50 ms: 49 ms later the retry is still waiting, at 50 ms it goes.
    await until(() => sent() === 2 && clock.timerCount === 1, 'the retry after the 429', 5000);
    await clock.advance(49);
    expect(clock.timerCount).toBe(1);
    expect(sent()).toBe(2);
    await clock.advance(1);
    const res = await call;
    expect(res.data).toMatchObject({ login: 'octocat' });
    expect(res).toMatchObject({ status: 200, source: 'network', fromCache: false, attempts: 3 });
    expect(sent()).toBe(3);
  });

  it('does not retry a 4xx: it fails at once with integration_rejected and the status', async () => {
    const gh = integration({
      name: 'GH404',
      baseUrl: api.url,
      retry: fast,
      operations: { missing: { path: '/nothing/{id}' } },
    });
    const before = api.count('/nothing');
    const err = await runtimeFor()
      .client(gh)
      .missing({ id: 1 })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IntegrationCallError);
    expect(err).toMatchObject({ code: 'integration_rejected', httpStatus: 404 });
    expect(api.count('/nothing') - before).toBe(1);
  });

  it('gives up after the retries with integration_unavailable, and times out slow attempts', async () => {
    const gh = integration({
      name: 'GHSlow',
      baseUrl: api.url,
      timeout: 30,
      retry: { maxAttempts: 2, initialInterval: 1 },
      operations: { ping: { path: '/ping' } },
    });
    api.failAll({ delayMs: 200, pass: true });
    const err = await runtimeFor()
      .client(gh)
      .ping()
      .catch((e: unknown) => e as IntegrationCallError);
    expect(err).toMatchObject({ code: 'integration_unavailable' });
    expect((err as IntegrationCallError).failure).toMatchObject({
      classification: 'timeout',
      attempts: 2,
    });
  });

  it('answers a cached read from the cache until its TTL, and says so', async () => {
    const gh = integration({
      name: 'GHCache',
      baseUrl: api.url,
      operations: { get_user: { path: '/users/{username}', cache: '1m' } },
    });
    const client = runtimeFor().client(gh);
    const before = api.count('/users/cached');
    const first = await client.get_user.withResponse({ username: 'cached' });
    const second = await client.get_user.withResponse({ username: 'cached' });
    expect(api.count('/users/cached') - before).toBe(1);
    expect(first.fromCache).toBe(false);
    expect(second).toMatchObject({ fromCache: true, source: 'cache', data: first.data });
    expect(second.headers['x-keel-cache']).toBe('hit');
  });

  it('sends one idempotency key per call, the same on each retry', async () => {
    const pay = integration({
      name: 'Pay',
      baseUrl: api.url,
      idempotency: true,
      retry: fast,
      operations: { charge: { method: 'POST', path: '/charges' } },
    });
    const client = runtimeFor().client(pay);
    const before = api.idempotencyKeys('/charges').length;
    api.script({ status: 500 }, { status: 502 });
    const charge = await client.charge({ amount: 500 });
    await client.charge({ amount: 700 });
    const keys = api.idempotencyKeys('/charges').slice(before);
    expect(keys).toHaveLength(4);
    expect(new Set(keys.slice(0, 3)).size).toBe(1);
    expect(keys[3]).not.toBe(keys[0]);
    expect(charge).toMatchObject({ amount: 500 });
    expect(api.requests.at(-1)!.body).toEqual({ amount: 700 });
  });

  it('batches calls of a batch operation into one request and splits the answer', async () => {
    const notify = integration({
      name: 'Notify',
      baseUrl: api.url,
      batching: { maxBatchSize: 3, maxDelay: '50ms' },
      operations: { send: { method: 'POST', path: '/batch', batch: true } },
    });
    const client = runtimeFor().client(notify);
    const before = api.count('/batch');
    const results = await Promise.all([1, 2, 3, 4].map((i) => client.send({ to: `u${i}` })));
    // Three fill a batch at once; the fourth goes alone after max_delay.
    expect(api.count('/batch') - before).toBe(2);
    expect(results).toEqual([
      { n: 0, of: 3 },
      { n: 1, of: 3 },
      { n: 2, of: 3 },
      { n: 0, of: 1 },
    ]);
    expect(api.requests.at(-2)!.body).toEqual([{ to: 'u1' }, { to: 'u2' }, { to: 'u3' }]);
  });

  it('mock mode answers from the mock with the same policies, without the network or secrets', async () => {
    const seen: MockRequest[] = [];
    const gh = integration({
      name: 'GHMock',
      baseUrl: { env: 'NOT_SET_ANYWHERE_BASE' },
      auth: { type: 'bearer', token: { env: 'NOT_SET_ANYWHERE_TOKEN' } },
      idempotency: true,
      retry: fast,
      mock: (req) => {
        seen.push(req);
        return seen.length === 1 ? { status: 503 } : { body: { login: req.path.split('/')[2] } };
      },
      operations: { create: { method: 'POST', path: '/users/{login}', body: { note: '{note}' } } },
    });
    const r = new IntegrationRuntime({ env: { KEEL_MOCK: '1' }, log: () => undefined });
    runtimes.push(r);
    const res = await r.client(gh).create.withResponse({ login: 'ada', note: 'hi' });
    expect(res).toMatchObject({ data: { login: 'ada' }, source: 'mock', attempts: 2 });
    expect(seen[1]).toMatchObject({
      integration: 'GHMock',
      operation: 'create',
      method: 'POST',
      path: '/users/ada',
      body: { note: 'hi' },
    });
    expect(seen[0]!.headers['idempotency-key']).toBe(seen[1]!.headers['idempotency-key']);
    expect(seen[0]!.headers.authorization).toBeUndefined();
  });

  it('refuses bad parameters as invalid-request without sending anything', async () => {
    const gh = integration({
      name: 'GHBad',
      baseUrl: api.url,
      operations: { get_user: { path: '/users/{username}' } },
    });
    const before = api.requests.length;
    await expect(runtimeFor().client(gh).get_user({})).rejects.toMatchObject({
      code: 'integration_invalid_request',
      message: expect.stringContaining('missing parameter "username"'),
    });
    expect(api.requests.length).toBe(before);
  });
});
