/**
 * Resilient integrations (`keel/integrations`): what an app needs to declare REST/GraphQL
 * integrations and their auth and policies, call them (journaled from handlers with
 * `use(ctx, integration)`, plain clients elsewhere), use the typed connectors, and catch their
 * errors. Mocks (connector mocks, the mock kit, the `MockHandler` contract, the providers' magic
 * test values) are in `keel/integrations/mocks`; loading `integration Name { ... }` files is in
 * `keel/integrations/dsl`. The policy state machines, the shared state in the Store and the
 * runtime's parts are internal.
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

// Declaring an integration
export { integration } from './declarations/config.js';
export type {
  Integration,
  IntegrationConfig,
  IntegrationType,
  HttpMethod,
  OperationNames,
  OperationConfig,
  RestOperationConfig,
  GraphQLOperationConfig,
  GraphQLVariableConfig,
  GraphQLVariableType,
  OperationPolicyConfig,
  CircuitBreakerConfig,
  RateLimitConfig,
  CacheConfig,
  FallbackConfig,
  IdempotencyConfig,
  BatchingConfig,
  WebhookSignatureConfig,
  DeadLetterConfig,
} from './declarations/config.js';
/** The one retry vocabulary (the same as handlers' and webhooks'). */
export type { RetryPolicy } from '../core/retry.js';
export { env } from './declarations/secrets.js';
export type { EnvRef, Secret, Configurable, Env } from './declarations/secrets.js';

// Auth
export {
  bearer,
  basic,
  apiKey,
  oauth2,
  oauth2AuthorizationCode,
  awsSigV4,
} from './declarations/auth/config.js';
export type {
  AuthConfig,
  NoAuth,
  BearerAuth,
  BasicAuth,
  ApiKeyAuth,
  OAuth2ClientCredentialsAuth,
  OAuth2AuthorizationCodeAuth,
  AwsSigV4Auth,
} from './declarations/auth/config.js';

// OAuth2 authorization code: connected accounts
export * from './oauth/index.js';

// Calling: journaled from handlers, plain clients elsewhere
export { use } from './runtime/durable.js';
export { createIntegrations } from './runtime/install.js';
export type { Integrations, IntegrationsOptions } from './runtime/install.js';
export { IntegrationRuntime } from './runtime/runtime.js';
export type { IntegrationRuntimeOptions } from './runtime/runtime.js';
export type { IntegrationClient, IntegrationResponse, OperationMethod } from './runtime/client.js';
export type { ResultSource } from './runtime/call.js';
export type { IntegrationCallOptions, CallParams } from './runtime/request.js';
export type { IntegrationEvent, EventSubscriber } from './runtime/events.js';

// Health checks: the engine's probe registry (API integrations, databases, buses feed it)
export { probeRegistry, ProbeRegistry } from './health/registry.js';
export type { Probe, ProbeKind } from './health/registry.js';
export type { HealthMonitor, ProbeStatus } from './health/monitor.js';
export type {
  IntegrationStatusRow,
  ProbeStatusRow,
  IntegrationHealth,
  ProbeHealth,
  HealthCheckView,
} from './runtime/admin.js';
export type { LogSink } from './runtime/request-log.js';

// Errors users catch
export {
  IntegrationCallError,
  IntegrationConfigError,
  IntegrationDeclarationError,
  MissingSecretError,
} from './errors.js';
export type { CallFailure, CallFailureReason, SourcePosition } from './errors.js';
export { OAuth2Error } from './declarations/auth/oauth2.js';

// Typed connectors (Stripe, Twilio, Slack, SendGrid, GitHub, Shippo, OpenWeather, S3)
export * from './connectors/index.js';
