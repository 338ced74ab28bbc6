/**
 * The errors of OAuth2 connected accounts. Each has a string code; none ever carries a token.
 */
import { KeelError, registerErrorClass } from '../../core/errors.js';
import type { CallFailureReason } from '../errors.js';

/**
 * A call for an account that cannot be made until the user acts: the account never connected
 * (`not-connected`), the provider refused its refresh token (`reconnect-required`), or it did
 * not grant a scope the operation needs (`scope-missing`). Inside a call it becomes the call's
 * terminal `IntegrationCallError` (codes `oauth_not_connected`, `oauth_reconnect_required`,
 * `oauth_scope_missing`): it is never retried.
 *
 * @example
 * ```ts
 * try {
 *   await accounts.accessToken(provider, 'user-42', ['events.read']);
 * } catch (err) {
 *   if (err instanceof AccountUnusableError && err.reason === 'reconnect-required') showConnectLink();
 * }
 * ```
 */
export class AccountUnusableError extends KeelError {
  constructor(
    readonly reason: Extract<
      CallFailureReason,
      'not-connected' | 'reconnect-required' | 'scope-missing' | 'invalid-request'
    >,
    message: string,
  ) {
    super(message, {
      code:
        reason === 'invalid-request'
          ? 'oauth_invalid_account'
          : `oauth_${reason.replace('-', '_')}`,
      status: reason === 'invalid-request' ? 400 : 403,
    });
  }
}

/**
 * The connect flow refused a request: an unknown, used, expired or forged `state`, a provider
 * that answered with an error, a bad account name. HTTP 400 (`oauth_state_invalid`,
 * `oauth_authorization_denied`, `oauth_invalid_account`, `oauth_unknown_provider` 404).
 *
 * @example
 * ```ts
 * throw new OAuthConnectError('oauth_state_invalid', 'unknown or already used state', 400);
 * ```
 */
export class OAuthConnectError extends KeelError {
  constructor(code: string, message: string, status = 400) {
    super(message, { code, status });
  }
}

/**
 * The token encryption key is missing or malformed, or a record was sealed with a key that is
 * no longer configured (`token_key_missing`, `token_key_invalid`, `token_key_unknown`).
 *
 * @example
 * ```ts
 * try { TokenCipher.fromEnv(process.env); } catch (err) { if (err instanceof TokenKeyError) console.error(err.message); }
 * ```
 */
export class TokenKeyError extends KeelError {
  constructor(
    code: 'token_key_missing' | 'token_key_invalid' | 'token_key_unknown',
    message: string,
  ) {
    super(message, { code, status: 500 });
  }
}

registerErrorClass(OAuthConnectError, [
  'oauth_state_invalid',
  'oauth_authorization_denied',
  'oauth_unknown_provider',
]);
registerErrorClass(TokenKeyError, ['token_key_missing', 'token_key_invalid', 'token_key_unknown']);
