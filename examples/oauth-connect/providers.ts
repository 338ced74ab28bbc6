/**
 * Two local OAuth2 authorization servers with their APIs, for trying the connect flow by hand
 * against `npm start` (see README.md): the calendar on 127.0.0.1:9181, the contacts API on
 * 127.0.0.1:9182 (`OAUTH_CALENDAR_URL` / `OAUTH_CONTACTS_URL` elsewhere). They approve every
 * authorization as `alice` (calendar) and `carol` (contacts); the clients are registered for the
 * app's callbacks on `KEEL_PUBLIC_URL` (default http://localhost:9080).
 *
 * Run: `npx tsx examples/oauth-connect/providers.ts`
 */
import { FakeOAuthServer } from '../../test/fakes/oauth-server.js';
import { DEMO_PORTS } from './declarations.js';

/** The demo client secrets (the app needs the same in OAUTH_*_CLIENT_SECRET). */
export const DEMO_SECRETS = { calendar: 'calendar-demo-secret', contacts: 'contacts-demo-secret' };

/**
 * Starts both servers (ports 0: free ones, for tests).
 *
 * @example
 * ```ts
 * const { calendar, contacts, close } = await startDemoProviders('http://localhost:9080');
 * ```
 */
export async function startDemoProviders(
  appUrl: string,
  ports: { calendar: number; contacts: number } = DEMO_PORTS,
): Promise<{ calendar: FakeOAuthServer; contacts: FakeOAuthServer; close: () => Promise<void> }> {
  const calendar = await FakeOAuthServer.start(
    {
      clients: [
        {
          id: 'keel-demo-calendar',
          secret: DEMO_SECRETS.calendar,
          redirectUris: [`${appUrl}/oauth/Calendar/callback`],
        },
      ],
      scopes: ['events.read', 'events.write'],
      prefix: 'cal',
    },
    ports.calendar,
  );
  const contacts = await FakeOAuthServer.start(
    {
      clients: [
        {
          id: 'keel-demo-contacts',
          secret: DEMO_SECRETS.contacts,
          redirectUris: [`${appUrl}/oauth/Contacts/callback`],
        },
      ],
      scopes: ['profile'],
      prefix: 'contacts',
    },
    ports.contacts,
  );
  contacts.user = 'carol';
  return {
    calendar,
    contacts,
    close: async () => {
      await calendar.close();
      await contacts.close();
    },
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const appUrl = process.env.KEEL_PUBLIC_URL ?? 'http://localhost:9080';
  const p = await startDemoProviders(appUrl);
  console.log(`calendar provider on ${p.calendar.url}, contacts provider on ${p.contacts.url}`);
  console.log(
    `start the app with OAUTH_CALENDAR_CLIENT_SECRET=${DEMO_SECRETS.calendar} OAUTH_CONTACTS_CLIENT_SECRET=${DEMO_SECRETS.contacts} KEEL_TOKEN_KEY=$(openssl rand -base64 32)`,
  );
  const stop = (): void => void p.close().then(() => process.exit(0));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}
