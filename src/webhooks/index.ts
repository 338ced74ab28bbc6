/**
 * Webhooks: the engine-independent building blocks. Standard Webhooks signing for outbound
 * deliveries, one verifier per inbound provider, the outbound URL safety check, and the retry
 * schedule. See docs/webhooks.md for exactly what each verifier checks.
 *
 * @example
 * ```ts
 * import { standardWebhooks, verifyStripe, checkUrl, pinnedLookup, RetrySchedule } from 'keel/webhooks';
 *
 * const secret = standardWebhooks.generateSecret();
 * const headers = standardWebhooks.signedHeaders({ id: 'msg_1', timestamp: new Date(), body, secret });
 * ```
 */
export * as standardWebhooks from './standard.js';
export type { SignInput } from './standard.js';
export {
  verifyStripe,
  verifyGitHub,
  verifySlack,
  verifyTwilio,
  verifySendGrid,
  verifyShippo,
  verifyStandardWebhook,
} from './verify/index.js';
export type {
  HeaderValue,
  RawBody,
  RejectedWebhook,
  SendGridKey,
  ShippoSecret,
  ShippoVerifyInput,
  TwilioVerifyInput,
  VerifiedWebhook,
  VerifyInput,
  VerifyResult,
  WebhookHeaders,
  WebhookProvider,
} from './verify/index.js';
export { WebhookVerificationError, WebhookConfigError, assertVerified } from './errors.js';
export { checkUrl, classifyAddress, pinnedLookup } from './ssrf.js';
export type {
  AddressCategory,
  CheckUrlOptions,
  CheckUrlResult,
  ResolvedAddress,
  Resolver,
  UrlRefusal,
} from './ssrf.js';
export {
  RetrySchedule,
  DEFAULT_RETRY_SCHEDULE,
  DEFAULT_JITTER,
  DEFAULT_MAX_RETRY_AFTER,
  applyJitter,
  parseSchedule,
} from './schedule.js';
export { parseHttpDate, parseRetryAfter } from '../http/retry-after.js';
export type { AttemptResponse, RetryDecision, RetryScheduleOptions } from './schedule.js';
