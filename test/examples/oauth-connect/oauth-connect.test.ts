import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startApp, type App } from '../../../src/app.js';
import { createOAuthConnect } from '../../../src/integrations/index.js';
import { connectedAppsService, oauthIntegrations } from '../../../examples/oauth-connect/index.js';
import { DEMO_SECRETS, startDemoProviders } from '../../../examples/oauth-connect/providers.js';
import { tempDir } from '../../helpers.js';

/**
 * The oauth-connect example (seed 004, exercise 1.2) as `npm start` serves it: on its mocks
 * without client secrets, like every example integration; with them, against the two demo
 * authorization servers, connected through the browser redirects.
 */
const tmp = tempDir('keel-oauth-example-');
const open: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of open.splice(0).reverse()) await close();
});

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

async function start(vars: Record<string, string>, port: number): Promise<App> {
  const { calendar, contacts } = oauthIntegrations(vars);
  const app = await startApp({
    services: [connectedAppsService(calendar, contacts)],
    integrations: { integrations: [calendar, contacts], env: vars, log: () => undefined },
    extensions: [createOAuthConnect({ integrations: [calendar, contacts], env: vars })],
    db: join(tmp.dir, `keel-${port}.db`),
    port,
    adminPort: 0,
    logger: () => undefined,
  });
  open.push(() => app.close());
  return app;
}

async function post(app: App, path: string, body: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(`${app.ingress.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

describe('examples/oauth-connect', () => {
  it('runs on the mocks without client secrets', async () => {
    const app = await start({}, 0);
    expect(await post(app, '/ConnectedApps/overview', 'user-42')).toEqual({
      status: 200,
      body: {
        calendar: { user: 'mock-user', events: [{ id: 'ev_1', title: "mock-user's standup" }] },
        contacts: { user: 'mock-user', scopes: ['profile'] },
      },
    });
  });

  it('connects both providers through the redirects and calls them as the account', async () => {
    const port = await freePort();
    const appUrl = `http://127.0.0.1:${port}`;
    const providers = await startDemoProviders(appUrl, { calendar: 0, contacts: 0 });
    open.push(providers.close);
    const app = await start(
      {
        KEEL_PUBLIC_URL: appUrl,
        KEEL_TOKEN_KEY: randomBytes(32).toString('base64'),
        OAUTH_CALENDAR_URL: providers.calendar.url,
        OAUTH_CONTACTS_URL: providers.contacts.url,
        OAUTH_CALENDAR_CLIENT_SECRET: DEMO_SECRETS.calendar,
        OAUTH_CONTACTS_CLIENT_SECRET: DEMO_SECRETS.contacts,
      },
      port,
    );
    // Not connected yet: the overview says so per provider.
    expect((await post(app, '/ConnectedApps/overview', 'user-42')).body).toEqual({
      calendar: { error: 'oauth_not_connected' },
      contacts: { error: 'oauth_not_connected' },
    });
    for (const provider of ['Calendar', 'Contacts']) {
      // The browser: connect → provider → callback, following each 302 by hand.
      let url = `${appUrl}/oauth/${provider}/connect?account=user-42`;
      let res: Response;
      for (;;) {
        res = await fetch(url, { redirect: 'manual' });
        if (res.status !== 302) break;
        url = new URL(res.headers.get('location')!, url).toString();
      }
      expect(res.status).toBe(200);
      expect(await res.text()).toContain(`Connected ${provider} for user-42`);
    }
    expect((await post(app, '/ConnectedApps/overview', 'user-42')).body).toEqual({
      calendar: { user: 'alice', events: [{ id: 'ev_1', title: "alice's standup" }] },
      contacts: { user: 'carol', scopes: ['profile'] },
    });
    expect(
      await post(app, '/ConnectedApps/createEvent', { account: 'user-42', title: 'Retro' }),
    ).toEqual({ status: 200, body: { created: true, user: 'alice' } });
    const list = (await (await fetch(`${app.admin.url}/oauth/accounts`)).json()) as {
      accounts: Array<{ provider: string; status: string }>;
    };
    expect(list.accounts.map((a) => `${a.provider}:${a.status}`).sort()).toEqual([
      'Calendar:connected',
      'Contacts:connected',
    ]);
  });
});
