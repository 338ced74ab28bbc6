/**
 * Inbound webhook verifiers, one per provider. Each takes the raw body, the headers and the
 * secret, and returns a {@link VerifyResult}: `{ ok: true, ... }`, or `{ ok: false, code:
 * 'invalid_signature', reason }` to answer with 401. A misconfiguration (an empty secret, a bad
 * key) throws `WebhookConfigError` instead.
 */
export { verifyStripe } from './stripe.js';
export { verifyGitHub } from './github.js';
export { verifySlack } from './slack.js';
export { verifyTwilio } from './twilio.js';
export type { TwilioVerifyInput } from './twilio.js';
export { verifySendGrid } from './sendgrid.js';
export type { SendGridKey } from './sendgrid.js';
export { verifyShippo } from './shippo.js';
export type { ShippoSecret, ShippoVerifyInput } from './shippo.js';
export { verifyStandardWebhook } from './standard.js';
export type {
  HeaderValue,
  RawBody,
  RejectedWebhook,
  VerifiedWebhook,
  VerifyInput,
  VerifyResult,
  WebhookHeaders,
  WebhookProvider,
} from './types.js';
