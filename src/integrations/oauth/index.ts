/**
 * OAuth2 authorization code with PKCE for integrations: users connect their accounts through the
 * `oauth` extension's routes; calls act for an account (`{ account: 'user-42' }`) with its
 * token, kept encrypted in the Store and refreshed once across processes.
 */
export { createOAuthConnect, STATE_SCOPE } from './connect.js';
export type { OAuthConnect, OAuthConnectOptions } from './connect.js';
export { ConnectedAccounts, ACCOUNTS_SCOPE, checkAccount, fetchForm } from './accounts.js';
export type {
  AccountRecord,
  AccountSummary,
  ConnectedAccountsOptions,
  TokenHttp,
} from './accounts.js';
export { AccountTokens } from './account-tokens.js';
export { TokenCipher, keyIdOf } from './token-cipher.js';
export type { Sealed } from './token-cipher.js';
export { AccountUnusableError, OAuthConnectError, TokenKeyError } from './errors.js';
export {
  providerConfig,
  randomToken,
  codeChallenge,
  stateKey,
  authorizationUrl,
  codeExchangeRequest,
  refreshRequest,
  revokeRequest,
  parseGrant,
} from './protocol.js';
export type { ProviderConfig, Grant, FormRequest } from './protocol.js';
