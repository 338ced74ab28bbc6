import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IntegrationRuntime, integration } from '../../src/integrations/index.js';
import { FakeClock } from '../../src/testing/index.js';
import { ProviderServer } from '../fakes/provider-server.js';

/**
 * `fallback: cache`: while the circuit is open (or the retries are exhausted) a cached operation
 * answers with the last good response, even past its TTL, and says so; `fallback: default(...)`
 * answers with the declared value.
 */
let api: ProviderServer;
beforeAll(async () => {
  api = await ProviderServer.start();
});
afterAll(async () => {
  await api.close();
});

describe('fallbacks', () => {
  it('serves the last good response while the circuit is open, marked as from the cache', async () => {
    const clock = new FakeClock();
    const runtime = new IntegrationRuntime({ clock, log: () => undefined });
    const weather = integration({
      name: 'WeatherAPI',
      baseUrl: api.url,
      retry: false,
      circuitBreaker: { failures: 2, window: '1m', reset: '30s' },
      cache: { defaultTtl: '15m' },
      fallback: 'cache',
      operations: {
        get_current: { path: '/users/{city}', cache: '10m' },
        get_alerts: {
          path: '/ping',
          cache: false,
          fallback: { default: { status: 'unavailable' } },
        },
      },
    });
    const client = runtime.client(weather);
    try {
      const good = await client.get_current.withResponse({ city: 'paris' });
      expect(good).toMatchObject({ fromCache: false, fallback: false, source: 'network' });

      // Past the TTL the API is asked again; it fails, and the circuit opens.
      await clock.advance('11m');
      api.failAll({ status: 503 });
      const before = api.count('/users/paris');
      for (let i = 0; i < 2; i++) {
        const r = await client.get_current.withResponse({ city: 'paris' });
        expect(r).toMatchObject({ fallback: true, fromCache: true, data: good.data });
      }
      expect(api.count('/users/paris') - before).toBe(2);

      // Open: no request at all, the stale value answers, and says where it came from.
      const served = await client.get_current.withResponse({ city: 'paris' });
      expect(api.count('/users/paris') - before).toBe(2);
      expect(served).toMatchObject({
        data: good.data,
        fromCache: true,
        fallback: true,
        source: 'fallback-cache',
        attempts: 0,
      });
      expect(served.headers['x-keel-cache']).toBe('stale');

      // A default fallback answers with its value.
      expect(await client.get_alerts()).toEqual({ status: 'unavailable' });
      // A read never cached has nothing to fall back on: the error says the circuit is open.
      await expect(client.get_current({ city: 'rome' })).rejects.toMatchObject({
        code: 'circuit_open',
      });
    } finally {
      api.failAll(undefined);
      await runtime.close();
    }
  });
});
