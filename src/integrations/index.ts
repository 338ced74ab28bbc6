/**
 * Resilient integrations: declared REST/GraphQL clients, their auth, and the pure policy state
 * machines (circuit breaker, rate limiter, retry delays, error classification) that the engine
 * runs inside journaled steps with their state in the Store.
 *
 * @example
 * ```ts
 * import { integration, bearer, env } from 'keel/integrations';
 *
 * export const github = integration({
 *   name: 'GitHubAPI',
 *   baseUrl: 'https://api.github.com',
 *   auth: bearer(env('GITHUB_TOKEN')),
 *   circuitBreaker: { failures: 5, window: '1m', reset: '30s' },
 *   rateLimit: { requests: 5000, per: '1h' },
 *   operations: { get_user: { method: 'GET', path: '/users/{username}', cache: '5m' } },
 * });
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
