/**
 * Seed 004, exercise 1.2: OAuth2 authorization code with PKCE, two providers. What the app must
 * serve: the `definitions`, the `integrations` (mock mode without their client secrets), and the
 * `extensions` (the `oauth` connect routes: `GET /oauth/{Calendar,Contacts}/connect?account=...`
 * on the ingress, `GET /oauth/accounts` on the admin API).
 */
import type { Definition, EngineExtension } from '../../src/index.js';
import { createOAuthConnect, type Integration } from '../../src/integrations/index.js';
import { oauthIntegrations } from './declarations.js';
import { connectedAppsService } from './service.js';

export { oauthIntegrations, DEMO_PORTS } from './declarations.js';
export { connectedAppsService } from './service.js';

const { calendar, contacts } = oauthIntegrations();

/** The two providers. */
export const integrations: Integration[] = [calendar, contacts];

/** The `ConnectedApps` service. */
export const definitions: Definition[] = [connectedAppsService(calendar, contacts)];

/** The connect routes of both providers (a fresh extension per app). */
export function extensions(): EngineExtension[] {
  return [createOAuthConnect({ integrations })];
}
