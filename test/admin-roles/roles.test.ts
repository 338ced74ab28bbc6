import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkAdminOptions, serveAdmin, type AdminServer } from '../../src/admin/index.js';
import { appOptionsFromEnv, startApp, type App } from '../../src/app.js';
import { service } from '../../src/index.js';
import { integration, use } from '../../src/integrations/index.js';
import { FakeClock } from '../../src/testing/index.js';
import { ProviderServer } from '../fakes/provider-server.js';
import { tempDir } from '../helpers.js';
import { receiver, type Receiver } from '../webhooks/helpers.js';

/**
 * Seed 003's management and status APIs over real HTTP, with its two roles: the admin token may
 * do everything; the user token reads status, health, endpoints, deliveries and invocations and
 * is answered 403 `forbidden` on every change. The app is `startApp` on a temporary SQLite file
 * with webhooks and integrations; the admin API with both tokens is served for its engine.
 */
const ADMIN = 'admin-token-0123456789abcdef0123456789';
const USER = 'user-token-0123456789abcdef01234567890';

let api: ProviderServer;
let hooks: Receiver;
let app: App;
let admin: AdminServer;
const clock = new FakeClock();
const tmp = tempDir('keel-admin-roles-');

beforeAll(async () => {
  api = await ProviderServer.start();
  // The customer's endpoint: 500 for the first request (a failed test delivery), 200 after.
  hooks = await receiver((n) => ({ status: n === 0 ? 500 : 200 }));
  const gh = integration({
    name: 'GitHubAPI',
    baseUrl: api.url,
    retry: false,
    circuitBreaker: { failures: 2, window: '1m', reset: '30s' },
    operations: { get_user: { path: '/users/{username}' }, broken: { path: '/broken' } },
  });
  const weather = integration({
    name: 'WeatherAPI',
    baseUrl: api.url,
    operations: { ping: { path: '/ping' } },
  });
  const Proxy = service({
    name: 'Proxy',
    handlers: {
      user: async (ctx, username: string) => use(ctx, gh).get_user({ username }),
      broken: async (ctx) =>
        use(ctx, gh)
          .broken()
          .catch((e: { code: string }) => e.code),
    },
  });
  app = await startApp({
    services: [Proxy],
    integrations: [gh, weather],
    webhooks: { allow: ['127.0.0.1'] },
    db: join(tmp.dir, 'keel.db'),
    clock,
    port: 0,
    adminPort: 0,
    adminToken: ADMIN,
    userToken: USER,
    logger: () => undefined,
  });
  admin = app.admin;
});
afterAll(async () => {
  await app?.close();
  await api?.close();
  await hooks?.close();
  tmp.cleanup();
});

interface Answer {
  status: number;
  body: any;
}

async function call(
  token: string | undefined,
  method: string,
  path: string,
  body?: unknown,
): Promise<Answer> {
  const headers: Record<string, string> = {};
  if (token !== undefined) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${admin.url}${path}`, {
    method,
    headers,
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, body: text === '' ? undefined : JSON.parse(text) };
}

const asAdmin = (method: string, path: string, body?: unknown) => call(ADMIN, method, path, body);
const asUser = (method: string, path: string, body?: unknown) => call(USER, method, path, body);

async function invoke(handler: string, input: unknown): Promise<unknown> {
  const res = await fetch(`${app.ingress.url}/Proxy/${handler}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(input),
  });
  return res.json();
}

const ORDER_EVENTS = ['order.created', 'order.shipped', 'order.delivered'];

describe("seed 003's shapes", () => {
  let endpointId = '';
  let failedDeliveryId = '';

  it('POST /webhooks answers { id, name, url, secret, events, is_active, is_healthy }', async () => {
    const created = await asAdmin('POST', '/webhooks', {
      name: 'Order Notifications',
      url: hooks.url,
      events: ORDER_EVENTS,
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      id: expect.stringMatching(/^ep_/),
      name: 'Order Notifications',
      url: hooks.url,
      secret: expect.stringMatching(/^whsec_/),
      events: ORDER_EVENTS,
      is_active: true,
      is_healthy: true,
    });
    endpointId = created.body.id;
  });

  it('POST /webhooks/{id}/test answers { id, event_type, status, response_status_code, duration_ms }', async () => {
    const failed = await asAdmin('POST', `/webhooks/${endpointId}/test`);
    expect(failed.status).toBe(200);
    expect(failed.body).toMatchObject({
      id: expect.any(String),
      event_type: 'webhook.test',
      status: 'failed',
      response_status_code: 500,
      duration_ms: expect.any(Number),
    });
    failedDeliveryId = failed.body.id;

    const delivered = await asAdmin('POST', `/webhooks/${endpointId}/test`);
    expect(delivered.body).toMatchObject({
      event_type: 'webhook.test',
      status: 'delivered',
      response_status_code: 200,
    });
    expect(delivered.body.duration_ms).toBeGreaterThanOrEqual(0);
    expect(hooks.requests).toHaveLength(2);
    expect(JSON.parse(hooks.requests[1]!.body)).toMatchObject({ type: 'webhook.test' });
  });

  it('GET /webhooks/{id}/deliveries lists them; POST /webhooks/deliveries/{id}/retry delivers the failed one', async () => {
    const list = await asUser('GET', `/webhooks/${endpointId}/deliveries`);
    expect(list.status).toBe(200);
    expect(list.body.deliveries).toHaveLength(2);
    expect(list.body.deliveries.map((d: { status: string }) => d.status).sort()).toEqual([
      'delivered',
      'failed',
    ]);

    const retried = await asAdmin('POST', `/webhooks/deliveries/${failedDeliveryId}/retry`);
    expect(retried.status).toBe(200);
    expect(retried.body).toMatchObject({ id: failedDeliveryId, status: 'delivered' });
    expect(retried.body.attempts).toHaveLength(2);
    expect(hooks.requests).toHaveLength(3);
  });

  it('GET /integrations/status answers { integrations: [{ name, type, status, circuit_state, error_rate }] }', async () => {
    const status = await asUser('GET', '/integrations/status');
    expect(status).toEqual({
      status: 200,
      body: {
        integrations: [
          {
            name: 'GitHubAPI',
            kind: 'api',
            type: 'rest',
            status: 'healthy',
            circuit_state: 'closed',
            error_rate: 0,
          },
          {
            name: 'WeatherAPI',
            kind: 'api',
            type: 'rest',
            status: 'healthy',
            circuit_state: 'none',
            error_rate: 0,
          },
        ],
      },
    });
  });

  it('GET /integrations/{name}/health answers { name, status, circuit_state, latency_p50, latency_p99, success_rate, last_error }', async () => {
    expect(await invoke('user', 'octocat')).toMatchObject({ login: 'octocat' });
    const health = await asUser('GET', '/integrations/GitHubAPI/health');
    expect(health.status).toBe(200);
    expect(health.body).toMatchObject({
      name: 'GitHubAPI',
      status: 'healthy',
      circuit_state: 'closed',
      latency_p50: expect.any(Number),
      latency_p99: expect.any(Number),
      success_rate: 1,
      last_error: null,
    });
  });

  it('a half-open circuit is "degraded"; the admin resets it to closed', async () => {
    api.script({ status: 500 }, { status: 500 });
    expect(await invoke('broken', null)).toBe('integration_unavailable');
    expect(await invoke('broken', null)).toBe('integration_unavailable');
    let row = (await asUser('GET', '/integrations/status')).body.integrations[0];
    expect(row).toMatchObject({ name: 'GitHubAPI', status: 'unhealthy', circuit_state: 'open' });

    // Past the 30 s reset the next call would be the probe: half-open. Past the 5-minute stats
    // window too, so that no error rate can be what makes it degraded.
    await clock.advance('6m');
    row = (await asUser('GET', '/integrations/status')).body.integrations[0];
    expect(row).toEqual({
      name: 'GitHubAPI',
      kind: 'api',
      type: 'rest',
      status: 'degraded',
      circuit_state: 'half-open',
      error_rate: 0,
    });
    expect((await asUser('GET', '/integrations/GitHubAPI/health')).body).toMatchObject({
      status: 'degraded',
      circuit_state: 'half-open',
    });

    const reset = await asAdmin('POST', '/integrations/GitHubAPI/circuit/reset');
    expect(reset).toEqual({
      status: 200,
      body: { name: 'GitHubAPI', circuit_state: 'closed', previous_state: 'half-open' },
    });
    row = (await asUser('GET', '/integrations/status')).body.integrations[0];
    expect(row).toMatchObject({ status: 'healthy', circuit_state: 'closed' });
  });
});

describe('two roles', () => {
  let endpointId = '';
  let deliveryId = '';
  let invocationId = '';

  beforeAll(async () => {
    const created = await asAdmin('POST', '/webhooks', { url: hooks.url, events: ['role.*'] });
    endpointId = created.body.id;
    deliveryId = (await asAdmin('POST', `/webhooks/${endpointId}/test`)).body.id;
    await invoke('user', 'hubot');
    const list = await asAdmin('GET', '/invocations?service=Proxy&limit=1');
    invocationId = list.body.invocations[0].id;
  });

  const reads = (): string[] => [
    '/health',
    '/invocations',
    `/invocations/${invocationId}`,
    `/invocations/${invocationId}/journal`,
    '/integrations/status',
    '/integrations/GitHubAPI/health',
    '/webhooks',
    `/webhooks/${endpointId}`,
    `/webhooks/${endpointId}/deliveries`,
    `/webhooks/deliveries/${deliveryId}`,
  ];

  it('the user token and the admin token both read status, health, endpoints, deliveries and invocations', async () => {
    for (const path of reads()) {
      const user = await asUser('GET', path);
      expect({ path, status: user.status }).toEqual({ path, status: 200 });
      const adm = await asAdmin('GET', path);
      expect({ path, status: adm.status }).toEqual({ path, status: 200 });
    }
  });

  const writes = (): Array<[method: string, path: string, body?: unknown]> => [
    ['POST', '/integrations/WeatherAPI/circuit/reset'],
    ['POST', '/integrations/GitHubAPI/circuit/reset'],
    ['POST', '/webhooks', { url: hooks.url, events: ['x.y'] }],
    ['PUT', `/webhooks/${endpointId}`, { is_active: false }],
    ['DELETE', `/webhooks/${endpointId}`],
    ['GET', `/webhooks/${endpointId}/secret`],
    ['POST', `/webhooks/${endpointId}/test`],
    ['POST', `/webhooks/${endpointId}/replay`, { since: '24h' }],
    ['POST', `/webhooks/deliveries/${deliveryId}/retry`],
    ['POST', `/invocations/${invocationId}/cancel`],
    ['POST', `/invocations/${invocationId}/kill`],
    ['POST', `/invocations/${invocationId}/purge`],
    ['POST', `/invocations/${invocationId}/resume`],
  ];

  it('the user token is refused with 403 forbidden on every change, and nothing changes', async () => {
    const before = {
      endpoints: (await asAdmin('GET', '/webhooks')).body,
      sent: hooks.requests.length,
      invocation: (await asAdmin('GET', `/invocations/${invocationId}`)).body,
    };
    for (const [method, path, body] of writes()) {
      const answer = await asUser(method, path, body);
      expect({ method, path, answer }).toEqual({
        method,
        path,
        answer: {
          status: 403,
          body: {
            code: 'forbidden',
            message: expect.stringContaining('needs the admin token'),
          },
        },
      });
      expect(JSON.stringify(answer.body)).not.toContain(USER);
    }
    // The refusal names the route as it was asked (no trailing slash on the collection).
    expect(
      (await asUser('POST', '/webhooks', { url: 'https://example.com/x' })).body.message,
    ).toMatch(/^POST \/webhooks needs the admin token/);
    expect((await asAdmin('GET', '/webhooks')).body).toEqual(before.endpoints);
    expect(hooks.requests.length).toBe(before.sent);
    expect((await asAdmin('GET', `/invocations/${invocationId}`)).body).toEqual(before.invocation);
  });

  it('the admin token may make every one of those changes', async () => {
    const answers: Array<[string, number]> = [];
    for (const [method, path, body] of writes()) {
      answers.push([`${method} ${path}`, (await asAdmin(method, path, body)).status]);
    }
    expect(answers.map(([, s]) => s)).toEqual([
      404, // WeatherAPI has no circuit breaker
      200,
      201,
      200,
      200, // deleted
      404, // so its secret, its test and its replay are not found
      404,
      404,
      409, // the delivery's endpoint was deleted: nothing to retry to
      409, // the invocation had already finished
      409,
      200, // purged
      404, // and so gone
    ]);
  });

  it('a wrong or missing token is 401 on reads and changes alike', async () => {
    for (const token of [undefined, 'x'.repeat(40), `${ADMIN}x`, USER.slice(0, -1)]) {
      for (const [method, path] of [
        ['GET', '/integrations/status'],
        ['GET', '/webhooks'],
        ['POST', '/integrations/GitHubAPI/circuit/reset'],
        ['POST', '/webhooks'],
      ] as const) {
        const answer = await call(token, method, path);
        expect({ token, path, status: answer.status, code: answer.body.code }).toEqual({
          token,
          path,
          status: 401,
          code: 'unauthorized',
        });
      }
    }
  });
});

describe('user token options', () => {
  it('reads KEEL_USER_TOKEN from the environment', () => {
    expect(appOptionsFromEnv({ KEEL_ADMIN_TOKEN: ADMIN, KEEL_USER_TOKEN: USER })).toMatchObject({
      adminToken: ADMIN,
      userToken: USER,
    });
  });

  it('refuses a user token without an admin token, the same as it, or too short', () => {
    expect(() => checkAdminOptions({ userToken: USER })).toThrow(/without an admin token/);
    expect(() => checkAdminOptions({ token: ADMIN, userToken: ADMIN })).toThrow(/the same as/);
    // KEEL_USER_TOKEN is the former name of the viewer token.
    expect(() => checkAdminOptions({ token: ADMIN, userToken: 'short' })).toThrow(
      /viewer token \(KEEL_VIEWER_TOKEN \/ KEEL_VIEWER_TOKENS\) is 5 characters long/,
    );
    expect(() => checkAdminOptions({ token: ADMIN, userToken: USER })).not.toThrow();
  });

  it('on loopback without any token, every caller is admin (a reset works)', async () => {
    const open = await serveAdmin(app.engine, { port: 0 });
    try {
      const res = await fetch(`${open.url}/integrations/GitHubAPI/circuit/reset`, {
        method: 'POST',
      });
      expect(res.status).toBe(200);
    } finally {
      await open.close();
    }
  });
});
