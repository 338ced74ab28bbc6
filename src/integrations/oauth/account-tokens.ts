/**
 * The bridge between a call and the connected accounts: an integration with
 * `oauth2_authorization_code` auth gets one of these in its runtime handle, and each call asks it
 * for the token of the account named in the call options (`{ account: 'user-42' }`), with the
 * scopes its operation needs.
 */
import type { Integration } from '../declarations/config.js';
import type { Env } from '../declarations/secrets.js';
import type { ConnectedAccounts } from './accounts.js';
import { AccountUnusableError, TokenKeyError } from './errors.js';
import { providerConfig } from './protocol.js';

/**
 * Access tokens for one integration's calls.
 *
 * @example
 * ```ts
 * const tokens = new AccountTokens(calendar, accounts, process.env);
 * const token = await tokens.token('user-42', 'list_events');
 * ```
 */
export class AccountTokens {
  constructor(
    private readonly integration: Integration,
    private readonly accounts: ConnectedAccounts | undefined,
    private readonly env: Env | undefined,
  ) {}

  /**
   * The access token for `account`, refreshed if stale or `rejected` (refused with 401 just
   * now). Throws {@link AccountUnusableError} for what the caller or the user must fix.
   */
  async token(account: string | undefined, operation: string, rejected?: string): Promise<string> {
    const name = this.integration.name;
    if (account === undefined) {
      throw new AccountUnusableError(
        'invalid-request',
        `${name} acts for a user's connected account (oauth2_authorization_code auth): pass it in the call options, e.g. { account: 'user-42' }`,
      );
    }
    if (this.accounts === undefined) {
      throw new AccountUnusableError(
        'invalid-request',
        `${name}: connected accounts live in the Store, and this runtime has none; call it from a handler (use(ctx, ${name})) or give the runtime a store`,
      );
    }
    const p = providerConfig(this.integration, this.env);
    try {
      return await this.accounts.accessToken(
        p,
        account,
        p.operationScopes[operation] ?? [],
        rejected,
      );
    } catch (err) {
      if (err instanceof TokenKeyError)
        throw new AccountUnusableError('invalid-request', err.message);
      throw err;
    }
  }
}
