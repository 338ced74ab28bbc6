/**
 * Exercise 1.2's two providers: a calendar (events, read and write scopes) and a contacts API
 * (one profile scope), each an integration with `oauth2_authorization_code` auth. Where they are
 * comes from the environment, defaulting to the two local authorization servers of
 * `providers.ts`; without their client secrets the integrations run on their mocks, like every
 * example integration.
 */
import type { Env } from '../../src/integrations/declarations/secrets.js';
import { env, integration, oauth2AuthorizationCode } from '../../src/integrations/index.js';
import type { MockRequest, MockResponse } from '../../src/integrations/mocks.js';

/** The demo providers' default addresses (see providers.ts). */
export const DEMO_PORTS = { calendar: 9181, contacts: 9182 } as const;

/**
 * The two integrations. `vars` is where the provider URLs and the app's public URL are read
 * (default `process.env`): `OAUTH_CALENDAR_URL`, `OAUTH_CONTACTS_URL`, `KEEL_PUBLIC_URL`.
 *
 * @example
 * ```ts
 * const { calendar, contacts } = oauthIntegrations();
 * ```
 */
export function oauthIntegrations(vars: Env = process.env) {
  const app = vars.KEEL_PUBLIC_URL ?? `http://localhost:${vars.KEEL_PORT ?? 9080}`;
  const calendarUrl = vars.OAUTH_CALENDAR_URL ?? `http://127.0.0.1:${DEMO_PORTS.calendar}`;
  const contactsUrl = vars.OAUTH_CONTACTS_URL ?? `http://127.0.0.1:${DEMO_PORTS.contacts}`;
  const calendar = integration({
    name: 'Calendar',
    baseUrl: calendarUrl,
    retry: { maxAttempts: 2 },
    auth: oauth2AuthorizationCode({
      authorizeUrl: `${calendarUrl}/authorize`,
      tokenUrl: `${calendarUrl}/token`,
      revokeUrl: `${calendarUrl}/revoke`,
      clientId: 'keel-demo-calendar',
      clientSecret: env('OAUTH_CALENDAR_CLIENT_SECRET'),
      scopes: ['events.read', 'events.write'],
      redirectUri: `${app}/oauth/Calendar/callback`,
      operationScopes: { list_events: ['events.read'], create_event: ['events.write'] },
    }),
    operations: {
      list_events: { path: '/api/events' },
      create_event: { method: 'POST', path: '/api/events', body: { title: '{title}' } },
    },
    mock: calendarMock,
  });
  const contacts = integration({
    name: 'Contacts',
    baseUrl: contactsUrl,
    retry: { maxAttempts: 2 },
    auth: oauth2AuthorizationCode({
      authorizeUrl: `${contactsUrl}/authorize`,
      tokenUrl: `${contactsUrl}/token`,
      clientId: 'keel-demo-contacts',
      clientSecret: env('OAUTH_CONTACTS_CLIENT_SECRET'),
      clientAuth: 'body',
      scopes: ['profile'],
      redirectUri: `${app}/oauth/Contacts/callback`,
    }),
    operations: { me: { path: '/api/me' } },
    mock: contactsMock,
  });
  return { calendar, contacts };
}

/** The two integrations' types, as the service uses them. */
export type OAuthIntegrations = ReturnType<typeof oauthIntegrations>;

/** The calendar's mock: the fake provider's answers, for a user named `mock-user`. */
function calendarMock(req: MockRequest): MockResponse {
  if (req.method === 'POST') return { status: 201, body: { created: true, user: 'mock-user' } };
  return { body: { user: 'mock-user', events: [{ id: 'ev_1', title: "mock-user's standup" }] } };
}

/** The contacts API's mock. */
function contactsMock(): MockResponse {
  return { body: { user: 'mock-user', scopes: ['profile'] } };
}
