import { ConflictError, KeelError, registerErrorClass, TerminalError } from '../core/errors.js';
import type { RejectedWebhook, VerifiedWebhook, VerifyResult } from './verify/types.js';

/**
 * An inbound webhook failed verification: a missing or malformed header, a signature that does
 * not match, or a timestamp outside the tolerance. Code `invalid_signature`, HTTP 401. The
 * message names what was wrong; it never contains the secret or the expected signature.
 *
 * @example
 * ```ts
 * try {
 *   assertVerified(verifyGitHub({ rawBody, headers, secret }));
 * } catch (err) {
 *   if (err instanceof WebhookVerificationError) return new Response(null, { status: 401 });
 *   throw err;
 * }
 * ```
 */
export class WebhookVerificationError extends TerminalError {
  constructor(
    readonly provider: string,
    readonly reason: string,
  ) {
    super(`${provider} webhook rejected: ${reason}`, { code: 'invalid_signature', status: 401 });
  }
}

/**
 * A verifier or the URL checker was configured wrongly (an empty secret, a key that is not a
 * P-256 public key, an allow-list entry that is neither a host nor a CIDR). It is a bug in the
 * setup, not in the request, so it is thrown rather than returned. Code `webhook_config`.
 *
 * @example
 * ```ts
 * verifyStripe({ rawBody, headers, secret: '' }); // throws WebhookConfigError
 * ```
 */
export class WebhookConfigError extends KeelError {
  constructor(message: string) {
    super(message, { code: 'webhook_config', status: 500 });
  }
}

// Rebuilt from the journal with their class and fields (see `fromErrorInfo`). The conflicts the
// webhook admin API raises are `ConflictError`s with codes of their own.
registerErrorClass(WebhookVerificationError, ['invalid_signature']);
registerErrorClass(WebhookConfigError, ['webhook_config']);
registerErrorClass(ConflictError, [
  'delivery_pending',
  'endpoint_deleted',
  'endpoint_disabled',
  'concurrent_update',
]);

/**
 * Returns a verified result, or throws {@link WebhookVerificationError} for a rejected one: for
 * code that prefers exceptions to checking `ok`.
 *
 * @example
 * ```ts
 * const event = assertVerified(verifySlack({ rawBody, headers, secret }));
 * console.log(event.timestamp);
 * ```
 */
export function assertVerified(result: VerifyResult): VerifiedWebhook {
  if (result.ok) return result;
  const rejected: RejectedWebhook = result;
  throw new WebhookVerificationError(rejected.provider, rejected.reason);
}
