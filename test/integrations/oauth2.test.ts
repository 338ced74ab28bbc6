import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IntegrationRuntime, integration, oauth2 } from '../../src/integrations/index.js';
import { FakeClock } from '../../src/testing/index.js';
import { ProviderServer } from '../fakes/provider-server.js';

/**
 * OAuth2 client credentials end to end against the fake provider: the token is fetched once and
 * shared by concurrent calls, reused, refreshed before it expires, and fetched again after a 401.
 */
let api: ProviderServer;
beforeAll(async () => {
  api = await ProviderServer.start();
});
afterAll(async () => {
  await api.close();
});

describe('OAuth2 client credentials, end to end', () => {
  it('fetches once, reuses, refreshes near expiry and after a 401', async () => {
    const clock = new FakeClock();
    const runtime = new IntegrationRuntime({
      clock,
      env: { CLIENT_SECRET: 's3cr3t' },
      log: () => undefined,
    });
    const api2 = integration({
      name: 'Partner',
      baseUrl: api.url,
      auth: oauth2({
        tokenUrl: `${api.url}/oauth/token`,
        clientId: 'keel',
        clientSecret: { env: 'CLIENT_SECRET' },
        scope: 'read',
      }),
      retry: false,
      operations: { me: { path: '/me' } },
    });
    const client = runtime.client(api2);
    try {
      api.tokenTtlS = 3600;
      // Five concurrent first calls share one token request.
      const first = await Promise.all(Array.from({ length: 5 }, () => client.me()));
      expect(api.tokenRequests).toBe(1);
      expect(first.every((r) => (r as { token: string }).token === 'tok-1')).toBe(true);
      const tokenCall = api.requests.find((r) => r.path === '/oauth/token')!;
      expect(tokenCall.body).toBe('grant_type=client_credentials&scope=read');
      expect(tokenCall.headers.authorization).toBe(
        `Basic ${Buffer.from('keel:s3cr3t').toString('base64')}`,
      );

      // Reused while valid.
      await client.me();
      expect(api.tokenRequests).toBe(1);

      // The provider revokes it: the 401 makes the client fetch a new one and send again, once.
      api.revokeTokens();
      expect(await client.me()).toEqual({ token: 'tok-2' });
      expect(api.tokenRequests).toBe(2);

      // Refreshed a minute before it expires.
      await clock.advance('59m30s');
      expect(await client.me()).toEqual({ token: 'tok-3' });
      expect(api.tokenRequests).toBe(3);
    } finally {
      await runtime.close();
    }
  });
});
