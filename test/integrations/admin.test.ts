import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApp, type App } from '../../src/app.js';
import { service } from '../../src/index.js';
import { integration, use } from '../../src/integrations/index.js';
import { ProviderServer } from '../fakes/provider-server.js';
import { tempDir } from '../helpers.js';

/**
 * The admin API's integration routes, through `startApp({ integrations })`: status of all,
 * health of one (seed 003's shapes), and a circuit reset that every process sees.
 */
let api: ProviderServer;
let app: App;
const tmp = tempDir('keel-int-admin-');

beforeAll(async () => {
  api = await ProviderServer.start();
  const gh = integration({
    name: 'GitHubAPI',
    baseUrl: api.url,
    retry: false,
    circuitBreaker: { failures: 2, window: '1m', reset: '30s' },
    rateLimit: { requests: 100, per: '1s' },
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
    db: join(tmp.dir, 'keel.db'),
    port: 0,
    adminPort: 0,
    logger: () => undefined,
  });
});
afterAll(async () => {
  await app?.close();
  await api.close();
  tmp.cleanup();
});

async function admin(path: string, method = 'GET'): Promise<{ status: number; body: any }> {
  const res = await fetch(`${app.admin.url}${path}`, { method });
  return { status: res.status, body: await res.json() };
}

describe('admin API: /integrations', () => {
  it('lists every declared integration with its circuit state and error rate', async () => {
    const { status, body } = await admin('/integrations/status');
    expect(status).toBe(200);
    expect(body).toEqual({
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
    });
  });

  it('reports health with latency percentiles, and an open circuit after failures; reset closes it', async () => {
    const ingress = app.ingress.url;
    const call = (h: string): Promise<unknown> =>
      fetch(`${ingress}/Proxy/${h}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify('octocat'),
      }).then((r) => r.json());
    expect(await call('user')).toMatchObject({ login: 'octocat' });
    let health = (await admin('/integrations/GitHubAPI/health')).body;
    expect(health).toMatchObject({
      name: 'GitHubAPI',
      status: 'healthy',
      circuit_state: 'closed',
      success_rate: 1,
      last_error: null,
      rate_limit: { limit: 100 },
    });
    expect(health.latency_p50).toEqual(expect.any(Number));
    expect(health.latency_p99).toBeGreaterThanOrEqual(health.latency_p50);

    api.script({ status: 500 }, { status: 500 });
    expect(await call('broken')).toBe('integration_unavailable');
    expect(await call('broken')).toBe('integration_unavailable');
    health = (await admin('/integrations/GitHubAPI/health')).body;
    expect(health).toMatchObject({
      status: 'unhealthy',
      circuit_state: 'open',
      last_error: { status: 500, message: expect.stringContaining('500') },
    });
    expect(health.error_rate).toBeCloseTo(2 / 3, 2);
    expect(await call('broken')).toBe('circuit_open');

    const reset = await admin('/integrations/GitHubAPI/circuit/reset', 'POST');
    expect(reset).toEqual({
      status: 200,
      body: { name: 'GitHubAPI', circuit_state: 'closed', previous_state: 'open' },
    });
    expect((await admin('/integrations/GitHubAPI/health')).body.circuit_state).toBe('closed');
    expect(await call('user')).toMatchObject({ login: 'octocat' });
  });

  it('answers 404 for an unknown integration and 405 for a wrong method', async () => {
    expect(await admin('/integrations/Nope/health')).toMatchObject({
      status: 404,
      body: { code: 'not_found' },
    });
    expect((await admin('/integrations/GitHubAPI/circuit/reset')).status).toBe(405);
    expect((await admin('/integrations/WeatherAPI/circuit/reset', 'POST')).status).toBe(404);
  });
});
