/**
 * Routes as data: `{ method, path: '/v1/orders/:id', target, requestMap?, responseMap? }`,
 * checked once when the gateway is created and matched per request by path segments (no
 * regular expressions built from user text).
 */
import type { Duration } from '../core/duration.js';
import { GatewayConfigError } from './errors.js';
import {
  compileMapping,
  REQUEST_ROOTS,
  RESPONSE_ROOTS,
  type CompiledMapping,
  type Mapping,
  type Source,
} from './mapping.js';

/** The methods a route may answer. */
export type GatewayMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
const METHODS = new Set<string>(['GET', 'POST', 'PUT', 'PATCH', 'DELETE']);

/**
 * A Keel handler: `engine.invoke({ service, handler, key })`. `key` (objects and workflows) is
 * a source such as `'path.id'`. `send: true` answers 202 `{ invocationId, status }` at once
 * instead of waiting for the result (attach later with `GET /invocations/{id}/attach`).
 */
export interface HandlerTarget {
  readonly service: string;
  readonly handler: string;
  readonly key?: Source;
  readonly send?: boolean;
}

/**
 * A declarative workflow by name, run through the gateway's `runFlow` (see
 * `GatewayOptions.runFlow`). `id` (a source) names the run; the same id answers the same run.
 */
export interface FlowTarget {
  readonly flow: string;
  readonly id?: Source;
}

/** Where a route sends its requests. */
export type GatewayTarget = HandlerTarget | FlowTarget;

/**
 * One route.
 *
 * @example
 * ```ts
 * const route: GatewayRoute = {
 *   method: 'POST',
 *   path: '/v1/orders/:id',
 *   target: { service: 'OrderWorkflow', handler: 'run', key: 'path.id' },
 *   requestMap: { orderId: 'path.id', items: { from: 'body.items', type: 'array', required: true } },
 *   responseMap: { id: 'path.id', status: 'result.status' },
 * };
 * ```
 */
export interface GatewayRoute {
  readonly method: GatewayMethod;
  /** Starts with `/`; `:name` segments are parameters (`path.name` in mappings). */
  readonly path: string;
  readonly target: GatewayTarget;
  /** The target's input. Without one, the input is the JSON body as sent (none: `undefined`). */
  readonly requestMap?: Mapping;
  /** The answer's body. Without one, the target's result as it is. */
  readonly responseMap?: Mapping;
  /** The success status (default 200; 202 for `send` targets). */
  readonly status?: number;
  /** What the route does, shown by the routes listing on the admin API. */
  readonly description?: string;
}

/** A route's rate limit: `requests` per `window`. */
export interface GatewayRateLimit {
  readonly requests: number;
  readonly window: Duration;
}

type Segment = { literal: string } | { param: string };

/** A route checked and ready to match. */
export interface CompiledRoute {
  readonly route: GatewayRoute;
  readonly label: string;
  readonly segments: readonly Segment[];
  readonly params: readonly string[];
  readonly request: CompiledMapping | undefined;
  readonly response: CompiledMapping | undefined;
  /** The target's key (or flow id), as a one-field mapping `{ key }`. */
  readonly key: CompiledMapping | undefined;
  readonly status: number;
}

const PARAM = /^:[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Checks a route; throws {@link GatewayConfigError} naming it.
 *
 * @example
 * ```ts
 * compileRoute({ method: 'GET', path: '/v1/orders/:id', target: { flow: 'lookup' } });
 * ```
 */
export function compileRoute(route: GatewayRoute): CompiledRoute {
  const label = `route ${String(route?.method)} ${String(route?.path)}`;
  if (typeof route !== 'object' || route === null)
    throw new GatewayConfigError('a route is an object { method, path, target }');
  if (!METHODS.has(route.method))
    throw new GatewayConfigError(`${label}: method must be one of ${[...METHODS].join(', ')}`);
  if (typeof route.path !== 'string' || !route.path.startsWith('/') || route.path.includes('?'))
    throw new GatewayConfigError(`${label}: path must start with "/" and have no query string`);
  const raw = route.path.length > 1 ? route.path.replace(/\/$/, '').slice(1).split('/') : [];
  const segments: Segment[] = [];
  const params: string[] = [];
  for (const s of raw) {
    if (s === '') throw new GatewayConfigError(`${label}: the path has an empty segment`);
    if (s.startsWith(':')) {
      if (!PARAM.test(s))
        throw new GatewayConfigError(
          `${label}: "${s}" is not a parameter name (letters, digits, _)`,
        );
      const name = s.slice(1);
      if (params.includes(name))
        throw new GatewayConfigError(`${label}: the parameter :${name} appears twice`);
      params.push(name);
      segments.push({ param: name });
    } else segments.push({ literal: s });
  }
  const t = route.target as Partial<HandlerTarget & FlowTarget> | undefined;
  let key: CompiledMapping | undefined;
  const isFlow = typeof t?.flow === 'string';
  const isHandler = typeof t?.service === 'string' && typeof t?.handler === 'string';
  if (!t || isFlow === isHandler || (isFlow && t.flow === ''))
    throw new GatewayConfigError(
      `${label}: target must be { service, handler, key? } or { flow } (exactly one of them)`,
    );
  const keySource = isFlow ? t.id : t.key;
  if (keySource !== undefined) {
    const spec =
      typeof keySource === 'string'
        ? { from: keySource, required: true }
        : { ...(keySource as object), required: true };
    key = compileMapping({ key: spec as Source }, REQUEST_ROOTS, params, `${label}, target key`);
  }
  if (isFlow && t.send)
    throw new GatewayConfigError(`${label}: flow targets cannot be sent (send)`);
  const status = route.status ?? (!isFlow && t.send === true ? 202 : 200);
  if (!Number.isInteger(status) || status < 200 || status > 299)
    throw new GatewayConfigError(`${label}: status must be a 2xx code`);
  return {
    route,
    label,
    segments,
    params,
    request:
      route.requestMap === undefined
        ? undefined
        : compileMapping(route.requestMap, REQUEST_ROOTS, params, `${label}, requestMap`),
    response:
      route.responseMap === undefined
        ? undefined
        : compileMapping(route.responseMap, RESPONSE_ROOTS, params, `${label}, responseMap`),
    key,
    status,
  };
}

/** What {@link matchRoute} found. */
export type RouteMatch =
  | { kind: 'route'; route: CompiledRoute; params: Record<string, string> }
  | { kind: 'method'; allow: string }
  | { kind: 'none' };

function matchPath(r: CompiledRoute, segs: readonly string[]): Record<string, string> | undefined {
  if (r.segments.length !== segs.length) return undefined;
  const params: Record<string, string> = Object.create(null) as Record<string, string>;
  for (let i = 0; i < segs.length; i++) {
    const s = r.segments[i]!;
    if ('literal' in s) {
      if (s.literal !== segs[i]) return undefined;
    } else params[s.param] = segs[i]!;
  }
  return params;
}

/**
 * The route for a method and path segments (decoded): the first declared that matches; else
 * whether the path exists for other methods (a 405), else none (a 404).
 *
 * @example
 * ```ts
 * matchRoute(routes, 'GET', ['v1', 'orders', '42']); // { kind: 'route', params: { id: '42' }, ... }
 * ```
 */
export function matchRoute(
  routes: readonly CompiledRoute[],
  method: string,
  segs: readonly string[],
): RouteMatch {
  let allow: string[] | undefined;
  for (const r of routes) {
    const params = matchPath(r, segs);
    if (params === undefined) continue;
    if (r.route.method === method) return { kind: 'route', route: r, params };
    (allow ??= []).push(r.route.method);
  }
  return allow ? { kind: 'method', allow: [...new Set(allow)].join(', ') } : { kind: 'none' };
}

/**
 * Checks every route and that no two declare the same method and path shape.
 *
 * @example
 * ```ts
 * const compiled = compileRoutes([{ method: 'GET', path: '/v1/ping', target: { service: 'Ping', handler: 'ping' } }]);
 * ```
 */
export function compileRoutes(routes: readonly GatewayRoute[]): CompiledRoute[] {
  if (!Array.isArray(routes)) throw new GatewayConfigError('routes must be an array');
  const out = routes.map(compileRoute);
  const seen = new Set<string>();
  for (const r of out) {
    const shape = `${r.route.method} /${r.segments.map((s) => ('literal' in s ? s.literal : ':')).join('/')}`;
    if (seen.has(shape))
      throw new GatewayConfigError(`${r.label}: another route has the same method and path`);
    seen.add(shape);
  }
  return out;
}
