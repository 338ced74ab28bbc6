/**
 * `keel/gateway`: an API gateway in front of Keel handlers and declarative workflows, as an
 * engine extension: routes as data, API keys (environment or Store, hashed), a per-key rate
 * limit shared by every process, request/response mapping. See docs/gateway.md.
 */
export { createGateway } from './gateway.js';
export type { FlowRunner, Gateway, GatewayOptions } from './gateway.js';
export type {
  FlowTarget,
  GatewayMethod,
  GatewayRoute,
  GatewayTarget,
  HandlerTarget,
} from './routes.js';
export { compileRoute, compileRoutes, matchRoute } from './routes.js';
export type { FieldType, Mapping, Source } from './mapping.js';
export { applyMapping, compileMapping, REQUEST_ROOTS, RESPONSE_ROOTS, WHOLE } from './mapping.js';
export { KeyRing, hashKey, parseKeysEnv, bearerOf, matchDeclared } from './keys.js';
export type { ApiKeyInfo, GatewayKey, KeyRateLimit } from './keys.js';
export { KeyLimiter, GATEWAY_RATE_SCOPE } from './limiter.js';
export type { Admission } from './limiter.js';
export {
  GatewayAuthError,
  GatewayConfigError,
  GatewayFlowError,
  GatewayRateLimitError,
  GatewayRequestError,
  GatewayRouteNotFoundError,
} from './errors.js';
