/**
 * The gateway's errors. Each has a stable `code` and the HTTP status the gateway answers with;
 * the messages say what was wrong and what to do, and never echo a presented key. They are
 * answered at the edge, never journaled, so their codes are not in the error registry.
 */
import { KeelError } from '../core/errors.js';

/**
 * The request carried no API key, a key the gateway does not know, or a revoked one. Code
 * `unauthorized`, HTTP 401 (answered with `WWW-Authenticate: Bearer`).
 *
 * @example
 * ```ts
 * throw new GatewayAuthError('missing', 'send Authorization: Bearer <your API key>');
 * ```
 */
export class GatewayAuthError extends KeelError {
  constructor(
    /** Why: no key, an unknown key, a revoked key, or a malformed Authorization header. */
    readonly reason: 'missing' | 'invalid' | 'revoked' | 'malformed',
    message: string,
  ) {
    super(message, { code: 'unauthorized', status: 401 });
  }
}

/**
 * The API key used up its rate limit. Code `rate_limited`, HTTP 429, with `Retry-After`.
 *
 * @example
 * ```ts
 * throw new GatewayRateLimitError('partner', 1200);
 * ```
 */
export class GatewayRateLimitError extends KeelError {
  constructor(
    readonly keyName: string,
    /** How long until a request would be admitted again. */
    readonly retryAfterMs: number,
  ) {
    super(
      `API key "${keyName}" has used up its rate limit; retry after ${Math.ceil(retryAfterMs / 1000)} s (see Retry-After)`,
      { code: 'rate_limited', status: 429 },
    );
  }
}

/**
 * The request does not fit the route: a missing or mistyped field, malformed JSON. Code
 * `invalid_request`, HTTP 400; the message names the field and where it was expected.
 *
 * @example
 * ```ts
 * throw new GatewayRequestError('query.limit must be a number, got "ten"');
 * ```
 */
export class GatewayRequestError extends KeelError {
  constructor(message: string) {
    super(message, { code: 'invalid_request', status: 400 });
  }
}

/**
 * No route matches the method and path. Code `route_not_found`, HTTP 404.
 *
 * @example
 * ```ts
 * throw new GatewayRouteNotFoundError('GET', '/v1/nothing');
 * ```
 */
export class GatewayRouteNotFoundError extends KeelError {
  constructor(method: string, path: string, prefix = 'gateway') {
    super(
      `no gateway route for ${method} ${path}; GET /${prefix}/routes on the admin API lists them`,
      { code: 'route_not_found', status: 404 },
    );
  }
}

/**
 * A gateway declaration is wrong (a route, a mapping, a key): a bug in the setup, thrown when
 * the gateway is created, naming the route or key. Code `gateway_config`.
 *
 * @example
 * ```ts
 * createGateway({ routes: [{ method: 'GET', path: 'no-slash', target: { flow: 'x' } }] }); // throws
 * ```
 */
export class GatewayConfigError extends KeelError {
  constructor(message: string) {
    super(message, { code: 'gateway_config', status: 500 });
  }
}

/**
 * A flow target answered `success: false`: the response names the failed steps. Code
 * `flow_failed`, HTTP 502 (the gateway's upstream, the workflow, failed).
 *
 * @example
 * ```ts
 * throw new GatewayFlowError('order-intake', [{ step: 'charge', message: 'card declined' }]);
 * ```
 */
export class GatewayFlowError extends KeelError {
  constructor(
    readonly flow: string,
    readonly errors: ReadonlyArray<{ step: string; message: string }>,
  ) {
    super(
      `flow "${flow}" failed: ${errors.map((e) => `step "${e.step}": ${e.message}`).join('; ') || 'no step error recorded'}`,
      { code: 'flow_failed', status: 502 },
    );
  }
}
