/**
 * The `ConnectedApps` service: each handler acts for the account named in its input, through
 * that account's connected calendar or contacts (journaled calls, `{ account }` in the call
 * options). A user who has not connected, must reconnect, or did not grant a scope gets a 403
 * whose code says so (`oauth_not_connected`, `oauth_reconnect_required`, `oauth_scope_missing`).
 */
import { service } from '../../src/index.js';
import { use } from '../../src/integrations/index.js';
import type { OAuthIntegrations } from './declarations.js';

/**
 * The service over the two integrations.
 *
 * @example
 * ```ts
 * const { calendar, contacts } = oauthIntegrations();
 * const ConnectedApps = connectedAppsService(calendar, contacts);
 * ```
 */
export function connectedAppsService(
  calendar: OAuthIntegrations['calendar'],
  contacts: OAuthIntegrations['contacts'],
) {
  return service({
    name: 'ConnectedApps',
    handlers: {
      /** The account's calendar events. */
      events: async (ctx, account: string) => use(ctx, calendar).list_events({}, { account }),
      /** Creates an event (needs the `events.write` scope). */
      createEvent: async (ctx, input: { account: string; title: string }) =>
        use(ctx, calendar).create_event({ title: input.title }, { account: input.account }),
      /** The account's contacts profile (the second provider). */
      profile: async (ctx, account: string) => use(ctx, contacts).me({}, { account }),
      /** Both providers at once: what each knows about the account. */
      overview: async (ctx, account: string) => {
        const [events, profile] = await Promise.allSettled([
          use(ctx, calendar).list_events({}, { account }),
          use(ctx, contacts).me({}, { account }),
        ]);
        const show = (r: PromiseSettledResult<unknown>): unknown =>
          r.status === 'fulfilled' ? r.value : { error: (r.reason as { code?: string }).code };
        return { calendar: show(events), contacts: show(profile) };
      },
    },
  });
}
