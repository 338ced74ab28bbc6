/**
 * The OAuth2 provider the fuzz app connects accounts to: its connect route builds an
 * authorization URL (nothing is sent to the provider, which does not exist); its callback is only
 * ever reached with states the fuzzer made up, so every callback must be refused with a 4xx and
 * change nothing.
 */
import {
  createOAuthConnect,
  integration,
  oauth2AuthorizationCode,
} from '../../src/integrations/index.js';

/** The provider's name: `/oauth/FuzzCalendar/connect`. */
export const OAUTH_PROVIDER = 'FuzzCalendar';

/** A fixed demo key: the fuzz app's tokens are never real. */
const env = { KEEL_TOKEN_KEY: Buffer.alloc(32, 7).toString('base64') };

export const fuzzOAuthIntegration = integration({
  name: OAUTH_PROVIDER,
  baseUrl: 'http://127.0.0.1:9/api',
  auth: oauth2AuthorizationCode({
    authorizeUrl: 'http://127.0.0.1:9/authorize',
    tokenUrl: 'http://127.0.0.1:9/token',
    clientId: 'fuzz',
    clientSecret: 'fuzz-secret',
    scopes: ['read'],
    redirectUri: 'http://127.0.0.1:9/oauth/FuzzCalendar/callback',
  }),
  operations: { me: { path: '/me' } },
});

/** The `oauth` extension of the fuzz app. */
export function fuzzOAuth(): ReturnType<typeof createOAuthConnect> {
  return createOAuthConnect({ integrations: [fuzzOAuthIntegration], env });
}
