/**
 * Webhooks, out and in. Outbound: endpoints with a management API, `publish(ctx, type, payload)`
 * from handlers, durable signed deliveries (Standard Webhooks) retried on a schedule, a circuit
 * breaker per endpoint, a dead-letter queue. Inbound: one receiver per provider on the ingress,
 * verifying signatures, deduplicating and routing events to handlers or awakeables. And the
 * building blocks underneath: signing, the verifiers, the URL safety check, the retry schedule.
 * See docs/webhooks.md.
 *
 * @example
 * ```ts
 * import { publish } from 'keel/webhooks';
 *
 * const app = await startApp({ services: [Orders], webhooks: { receivers: { stripe: { provider: 'stripe', secret, route } } } });
 * // in a handler:
 * await publish(ctx, 'order.shipped', { orderId: ctx.key });
 * ```
 */
export { createWebhooks } from './setup.js';
export type { Webhooks, WebhooksOptions } from './setup.js';
export { publish } from './outbound/publish.js';
export { outboundFromDeclaration } from './outbound/options.js';
export { bodySignature } from './outbound/attempt.js';
export type { PublishOptions, Published } from './outbound/publish.js';
export type {
  AttemptRecord,
  DeliveryRecord,
  DeliveryStatus,
  EndpointBreakerOptions,
  EndpointRecord,
  EndpointView,
  EventSubscriber,
  FailureReason,
  OutboundOptions,
  OutboundSignature,
  WebhookDeliveryFailed,
} from './outbound/types.js';
export type { EndpointInput } from './outbound/endpoint-input.js';
export { StatusOrder, applyStatus } from './inbound/order.js';
export type { StatusUpdate } from './inbound/order.js';
export type {
  InboundEvent,
  InboundOptions,
  InboundRoute,
  ReceiverOptions,
} from './inbound/types.js';
export type { ReceivedEvent } from './inbound/receivers.js';
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
export { checkAllowList, checkUrl, classifyAddress, pinnedLookup } from './ssrf.js';
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
  WEBHOOK_RETRY,
  parseSchedule,
} from './schedule.js';
/** The one retry vocabulary (the same as handlers' and integrations'): the `retry` option. */
export type { RetryPolicy } from '../core/retry.js';
export { parseHttpDate, parseRetryAfter } from '../http/retry-after.js';
export type { AttemptResponse, RetryDecision, RetryScheduleOptions } from './schedule.js';
