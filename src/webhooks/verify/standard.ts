import { verify } from '../standard.js';
import type { VerifyInput, VerifyResult } from './types.js';

/**
 * Verifies a Standard Webhooks request (another Keel instance, or any Svix sender): headers
 * `webhook-id`, `webhook-timestamp`, `webhook-signature` (or their `svix-` forms), HMAC-SHA256 of
 * `id.timestamp.body` keyed by the base64-decoded `whsec_` secret, 5-minute tolerance either way.
 *
 * @example
 * ```ts
 * const result = verifyStandardWebhook({ rawBody, headers: req.headers, secret: 'whsec_...' });
 * if (result.ok) await dedupe(result.id!, () => handle(JSON.parse(result.body)));
 * ```
 */
export function verifyStandardWebhook(input: VerifyInput): VerifyResult {
  const options: Parameters<typeof verify>[0] = {
    headers: input.headers,
    body: input.rawBody,
    secret: input.secret,
  };
  if (input.now !== undefined) options.now = input.now;
  if (input.toleranceSeconds !== undefined) options.toleranceSeconds = input.toleranceSeconds;
  return verify(options);
}
