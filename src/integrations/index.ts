/**
 * Resilient integrations: declared REST/GraphQL clients, their auth, the pure policy state
 * machines (circuit breaker, rate limiter, retry delays, error classification), and the runtime
 * that runs calls through them: journaled steps from handlers (`use(ctx, integration)`), plain
 * clients elsewhere, with breaker and rate-limit state shared through the Store.
 *
 * @example
 * ```ts
 * import { integration, bearer, env, use } from 'keel/integrations';
 *
 * export const github = integration({
 *   name: 'GitHubAPI',
 *   baseUrl: 'https://api.github.com',
 *   auth: bearer(env('GITHUB_TOKEN')),
 *   circuitBreaker: { failures: 5, window: '1m', reset: '30s' },
 *   rateLimit: { requests: 5000, per: '1h' },
 *   operations: { get_user: { method: 'GET', path: '/users/{username}', cache: '5m' } },
 * });
 *
 * // in a handler (the app started with startApp({ integrations: [github], ... })):
 * const user = await use(ctx, github).get_user<{ login: string }>({ username: 'octocat' });
 * ```
 */

// Declarations
export { integration, INTEGRATION_DEFAULTS } from './config.js';
export type {
  IntegrationConfig,
  IntegrationType,
  HttpMethod,
  RetryConfig,
  CircuitBreakerConfig,
  RateLimitConfig,
  CacheConfig,
  FallbackConfig,
  IdempotencyConfig,
  BatchingConfig,
  WebhookSignatureConfig,
  DeadLetterConfig,
  OperationPolicyConfig,
  OperationConfig,
  RestOperationConfig,
  GraphQLOperationConfig,
  GraphQLVariableConfig,
  GraphQLVariableType,
  Integration,
  OperationNames,
  ResolvedOperation,
  ResolvedOperationBase,
  ResolvedRestOperation,
  ResolvedGraphQLOperation,
  ResolvedRateLimit,
  Fallback,
} from './config.js';
export { mockModeOn } from './mock.js';
export type { MockHandler, MockRequest, MockResponse } from './mock.js';
export { parseIntegrations, readIntegrationsFile } from './declarative.js';
export { env, isEnvRef, resolveSecret } from './secrets.js';
export type { EnvRef, Secret, Configurable, Env } from './secrets.js';
export {
  IntegrationConfigError,
  IntegrationDeclarationError,
  MissingSecretError,
} from './errors.js';
export type { SourcePosition } from './errors.js';
export { templateParams, expandTemplate, joinUrl } from './url.js';
export type { PathParams } from './url.js';

// Auth
export * from './auth/index.js';

// Policies (pure)
export {
  initialBreakerState,
  acquireBreaker,
  recordBreakerSuccess,
  recordBreakerFailure,
  resetBreaker,
  breakerStatus,
  breakerFailureCount,
  parseBreakerState,
} from './breaker.js';
export type {
  BreakerOptions,
  BreakerState,
  BreakerStatus,
  BreakerTicket,
  BreakerEvent,
  BreakerDecision,
  BreakerUpdate,
} from './breaker.js';
export {
  initialRateLimitState,
  tryAcquire,
  availablePermits,
  applyServerHints,
  rateLimitUsage,
  parseRateLimitState,
} from './rate-limit.js';
export type {
  RateLimitOptions,
  RateLimitState,
  RateLimitSlot,
  RateLimitDecision,
  ServerHints,
} from './rate-limit.js';
export { retryDelay } from './retry.js';
export type { ResolvedRetry } from './retry.js';
export { classify, outcomeFromError, parseRetryAfter, parseRateLimitHeaders } from './classify.js';
export type {
  CallOutcome,
  Classification,
  ErrorOverrides,
  RateLimitInfo,
  RateLimitHeaderNames,
} from './classify.js';
export { getHeader } from './headers.js';
export type { HeadersLike } from './headers.js';

// Runtime: calls with their policies, journaled from handlers or plain
export { use, INTEGRATIONS_RUNTIME, CALLS_SCOPE } from './durable.js';
export { IntegrationRuntime } from './runtime.js';
export type { IntegrationRuntimeOptions, CallProgress } from './runtime.js';
export { createIntegrations } from './install.js';
export type { Integrations, IntegrationsOptions } from './install.js';
export { integrationsMount, integrationHealth } from './admin.js';
export type { IntegrationHealth, IntegrationStatusRow } from './admin.js';
export type { IntegrationClient, IntegrationResponse, OperationMethod } from './client.js';
export type { CallResult, ResultSource } from './call.js';
export type { IntegrationCallOptions, CallParams } from './request.js';
export { buildRequest, formEncode } from './request.js';
export type { IntegrationEvent, EventSubscriber } from './events.js';
export { IntegrationCallError } from './errors.js';
export type { CallFailure, CallFailureReason } from './errors.js';
export { BREAKER_SCOPE } from './shared-breaker.js';
export { RATE_LIMIT_SCOPE } from './shared-limiter.js';
export { CACHE_SCOPE } from './cache.js';

// Typed connectors (Stripe, Twilio, Slack, SendGrid, GitHub, Shippo, OpenWeather, S3)
export * from './connectors/index.js';
