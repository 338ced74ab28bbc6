/**
 * What the runtime keeps per integration: the declaration, whether it runs against its mock,
 * its shared breaker and limiter, its OAuth2 token cache, its statistics and its batchers.
 */
import type { OAuth2TokenCache } from '../declarations/auth/oauth2.js';
import type { AccountTokens } from '../oauth/account-tokens.js';
import type { Batcher } from './batcher.js';
import type { Integration } from '../declarations/config.js';
import type { Env } from '../declarations/secrets.js';
import type { SharedBreaker } from '../shared/shared-breaker.js';
import type { SharedLimiter } from '../shared/shared-limiter.js';
import type { IntegrationStats } from './stats.js';

/** The runtime's state for one integration. */
export interface IntegrationHandle {
  readonly integration: Integration;
  /** Where secrets come from (undefined: `process.env`). */
  readonly env: Env | undefined;
  /** Calls go to the integration's mock instead of the network. */
  readonly mockOn: boolean;
  readonly breaker: SharedBreaker | undefined;
  readonly limiter: SharedLimiter | undefined;
  readonly tokens: OAuth2TokenCache | undefined;
  /** OAuth2 authorization code: the tokens of connected accounts (absent in mock mode). */
  readonly accounts?: AccountTokens | undefined;
  readonly stats: IntegrationStats;
  /** By operation and request shape (method, path, query). */
  readonly batchers: Map<string, Batcher>;
}
