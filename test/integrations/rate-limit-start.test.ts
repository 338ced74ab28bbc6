import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IntegrationRuntime, integration } from '../../src/integrations/index.js';
import { FakeClock } from '../../src/testing/index.js';
import { ProviderServer } from '../fakes/provider-server.js';

/**
 * A fresh limit's pacing bucket starts full: the first calls of a slow limit ("100 per hour")
 * go out at once. It used to start empty, which made the first call wait W/N = 36 s.
 */
let api: ProviderServer;
beforeAll(async () => {
  api = await ProviderServer.start();
});
afterAll(async () => {
  await api.close();
});

describe('rate limit at start', () => {
  it('the first calls of a 100-per-hour integration need no clock advance', async () => {
    const clock = new FakeClock();
    const runtime = new IntegrationRuntime({ clock, log: () => undefined });
    const slow = integration({
      name: 'SlowAPI',
      baseUrl: api.url,
      retry: false,
      rateLimit: { requests: 100, per: '1h' },
      operations: { ping: { path: '/ping', cache: false } },
    });
    const client = runtime.client(slow);
    try {
      // The fake clock never moves: a call waiting for the bucket would never resolve.
      for (let i = 0; i < 5; i++) await client.ping({});
      expect(api.count('/ping')).toBe(5);
    } finally {
      await runtime.close();
    }
  });
});
