/**
 * The gateway: an engine extension serving declared routes on the ingress under `/{name}`
 * (default `/gateway`), each request authenticated by API key, rate limited per key across
 * every process sharing the store, mapped into a target's input, run (a Keel handler or a
 * declarative workflow) and its result mapped into the answer. Its admin routes (`/{name}/keys`,
 * `/{name}/routes`) manage the stored keys and list the routes.
 */
import { clientGone } from '../http/client-gone.js';
import type { IncomingMessage } from 'node:http';
import { KeelError, UsageError } from '../core/errors.js';
import { describeMount } from '../http/mount-doc.js';
import { parseDuration } from '../core/duration.js';
import type { Engine } from '../engine/engine.js';
import type { EngineExtension, ExtensionHost } from '../engine/extension.js';
import { isJsonType, parseJson, readBody, unsupportedMediaType } from '../http/body.js';
import { requireAdmin, type Mount, type MountRequest } from '../http/mount.js';
import { MethodNotAllowedError, sendError, sendJson } from '../http/respond.js';
import { withClose } from '../http/server.js';
import { runFlow as runFlowOfFlows } from '../flows/run.js';
import type { RateLimitOptions } from '../integrations/policies/rate-limit.js';
import {
  GatewayAuthError,
  GatewayFlowError,
  GatewayRateLimitError,
  GatewayRequestError,
  GatewayRouteNotFoundError,
} from './errors.js';
import {
  KeyRing,
  parseKeysEnv,
  type ApiKeyInfo,
  type GatewayKey,
  type KeyRateLimit,
} from './keys.js';
import { KeyLimiter } from './limiter.js';
import { applyMapping } from './mapping.js';
import {
  compileRoutes,
  matchRoute,
  type CompiledRoute,
  type FlowTarget,
  type GatewayRoute,
  type HandlerTarget,
} from './routes.js';

/**
 * Runs a declarative workflow by name: the signature of `runFlow` of `keel/flows`, the default.
 * Another runner (a test double, a flows engine of your own) can be given instead.
 */
export type FlowRunner = (
  engine: Engine,
  name: string,
  input: unknown,
  opts: { id?: string; idempotencyKey?: string },
) => Promise<unknown>;

/** Options of {@link createGateway}. Every field but `routes` has a default. */
export interface GatewayOptions {
  /** The path prefix on the ingress and the admin API, and the extension's name. Default `gateway`. */
  readonly name?: string;
  readonly routes: readonly GatewayRoute[];
  /** Keys declared in code, next to those of `KEEL_GATEWAY_KEYS` and those stored through the admin API. */
  readonly keys?: readonly GatewayKey[];
  /** Where `KEEL_GATEWAY_KEYS` is read from (default `process.env`); `false` reads no keys from the environment. */
  readonly env?: NodeJS.ProcessEnv | false;
  /** The limit of a key without its own, shared by every process. Default 600 per minute; `false` for none. */
  readonly rateLimit?: KeyRateLimit | false;
  /**
   * Runs `{ flow }` targets. Default: `runFlow` of `keel/flows` (the engine then needs
   * `createFlows()` among its extensions; a run without it answers 500 `flows_not_enabled`).
   */
  readonly runFlow?: FlowRunner;
  /** Largest request body in bytes (413 beyond). Default 1 MiB. */
  readonly bodyLimit?: number;
  /** How long a stored key's lookup is reused; a revocation in another process takes effect within it. Default 1 s. */
  readonly keyCache?: number | string;
}

/** The gateway extension, with its key ring for code that manages keys itself. */
export interface Gateway extends EngineExtension {
  /** Stored and declared keys (create, revoke, list); available once the engine started. */
  keys(): KeyRing;
}

const DEFAULT_LIMIT: KeyRateLimit = { requests: 600, window: '1m' };
const BODYLESS = new Set(['GET', 'DELETE']);
const MAX_IDEMPOTENCY_KEY = 256;

/**
 * Makes a gateway. Pass it in the engine's (or `startApp`'s) `extensions`.
 *
 * @example
 * ```ts
 * const gateway = createGateway({
 *   routes: [
 *     {
 *       method: 'POST',
 *       path: '/v1/orders/:id',
 *       target: { service: 'OrderWorkflow', handler: 'run', key: 'path.id' },
 *       requestMap: { items: { from: 'body.items', type: 'array', required: true } },
 *       responseMap: { orderId: 'path.id', status: 'result.status' },
 *     },
 *   ],
 *   rateLimit: { requests: 100, window: '1m' },
 * });
 * const app = await startApp({ services, extensions: [gateway] });
 * // curl -X POST localhost:9080/gateway/v1/orders/o-1 -H 'authorization: Bearer <key>' \
 * //   -H 'content-type: application/json' -d '{"items":[{"sku":"A","qty":1}]}'
 * ```
 */
export function createGateway(options: GatewayOptions): Gateway {
  const name = options.name ?? 'gateway';
  if (!/^[A-Za-z0-9_.-]+$/.test(name))
    throw new UsageError(
      `gateway name "${name}" must be letters, digits, _, - or . (it is a path segment)`,
    );
  const routes = compileRoutes(options.routes);
  const runFlow: FlowRunner = options.runFlow ?? runFlowOfFlows;
  const env = options.env === undefined ? process.env : options.env;
  const declared = [
    ...(options.keys ?? []),
    ...(env === false ? [] : parseKeysEnv(env.KEEL_GATEWAY_KEYS)),
  ];
  const bodyLimit = options.bodyLimit ?? 1024 * 1024;
  const keyCacheMs = parseDuration(options.keyCache ?? 1000);
  const defaultLimit =
    options.rateLimit === false ? undefined : (options.rateLimit ?? DEFAULT_LIMIT);
  const defaultLimitMs =
    defaultLimit === undefined
      ? undefined
      : { requests: defaultLimit.requests, windowMs: parseDuration(defaultLimit.window) };
  if (defaultLimitMs && (!Number.isInteger(defaultLimitMs.requests) || defaultLimitMs.requests < 1))
    throw new UsageError('gateway rateLimit.requests must be a whole number ≥ 1');
  // Checked now, so a bad KEEL_GATEWAY_KEYS fails the start rather than the first request.
  new KeyRing({} as never, declared, Date.now);

  let host: ExtensionHost | undefined;
  let ring: KeyRing | undefined;
  const limiters = new Map<string, KeyLimiter>();

  const limiterFor = (key: ApiKeyInfo): KeyLimiter | undefined => {
    const limit = key.rateLimit ?? defaultLimitMs;
    if (limit === undefined) return undefined;
    // Keyed by id and limit, so a changed limit starts a limiter of its own.
    const id = `${key.id}:${limit.requests}/${limit.windowMs}`;
    let l = limiters.get(id);
    if (l === undefined) {
      const opts: RateLimitOptions = { requests: limit.requests, windowMs: limit.windowMs };
      l = new KeyLimiter(host!.store, id, opts, () => host!.clock.now());
      limiters.set(id, l);
    }
    return l;
  };

  const ingress: Mount = async (r) => {
    if (!host || !ring)
      throw new KeelError('the gateway is not started yet', { code: 'unavailable', status: 503 });
    const close = withClose(undefined, r.closing);
    let key: ApiKeyInfo;
    try {
      key = await ring.authenticate(r.req.headers.authorization);
    } catch (err) {
      if (!(err instanceof GatewayAuthError)) throw err;
      const error = err.reason === 'missing' ? '' : ', error="invalid_token"';
      sendError(r.res, 401, err.code, err.message, [
        'www-authenticate',
        `Bearer realm="${name}"${error}`,
        ...(close ?? []),
      ]);
      return;
    }
    const limiter = limiterFor(key);
    if (limiter) {
      const taken = limiter.take();
      const a = taken instanceof Promise ? await taken : taken;
      if (!a.allowed) {
        const err = new GatewayRateLimitError(key.name, a.retryAfterMs);
        sendError(r.res, 429, err.code, err.message, [
          'retry-after',
          String(Math.max(1, Math.ceil(a.retryAfterMs / 1000))),
          ...(close ?? []),
        ]);
        return;
      }
    }
    const method = r.req.method ?? 'GET';
    const m = matchRoute(routes, method, r.segments);
    if (m.kind === 'none')
      throw new GatewayRouteNotFoundError(method, `/${r.segments.join('/')}`, name);
    if (m.kind === 'method') throw new MethodNotAllowedError(method, m.allow);
    const body = await readJson(r.req, bodyLimit);
    const result = await run(host, m.route, m.params, key, r, body);
    sendJson(r.res, m.route.status, result, close);
  };

  const run = async (
    h: ExtensionHost,
    route: CompiledRoute,
    params: Record<string, string>,
    key: ApiKeyInfo,
    r: MountRequest,
    body: unknown,
  ): Promise<unknown> => {
    const roots: Record<string, unknown> = {
      path: params,
      query: queryObject(r.query),
      body,
      header: r.req.headers,
      key: { id: key.id, name: key.name },
    };
    const input = route.request ? applyMapping(route.request, roots) : body;
    const targetKey = route.key
      ? keyText((applyMapping(route.key, roots) as { key?: unknown }).key)
      : undefined;
    // Scoped by API key: another caller's Idempotency-Key never reaches this caller's result.
    const idem = idempotencyKeyOf(r.req);
    const idempotencyKey = idem === undefined ? undefined : `${key.id}:${idem}`;
    let result: unknown;
    const target = route.route.target;
    if ('flow' in target) {
      result = await runFlowTarget(h.engine, target, input, targetKey, idempotencyKey);
    } else {
      const t: HandlerTarget = target;
      const req = {
        service: t.service,
        handler: t.handler,
        input,
        ...(targetKey === undefined ? {} : { key: targetKey }),
        ...(idempotencyKey === undefined ? {} : { idempotencyKey }),
      };
      result = t.send
        ? await h.engine.send(req)
        : await h.engine.invoke(req, { gone: clientGone(r.res) });
    }
    if (!route.response) return result;
    try {
      return applyMapping(route.response, { ...roots, result, input });
    } catch (err) {
      throw new KeelError(
        `${route.label}: the target's result does not fit the responseMap (${(err as Error).message})`,
        { code: 'bad_response', status: 502 },
      );
    }
  };

  const runFlowTarget = async (
    engine: Engine,
    target: FlowTarget,
    input: unknown,
    id: string | undefined,
    idempotencyKey: string | undefined,
  ): Promise<unknown> => {
    const result = await runFlow(engine, target.flow, input, {
      ...(id === undefined ? {} : { id }),
      ...(idempotencyKey === undefined ? {} : { idempotencyKey }),
    });
    const res = result as { success?: unknown; status?: unknown; errors?: unknown } | null;
    // A flow that completed with `onError: continue` errors is a success for the caller; one
    // that stopped (compensated, or not) is the gateway's upstream failing: a 502.
    if (
      res !== null &&
      typeof res === 'object' &&
      res.success === false &&
      res.status !== 'completed'
    ) {
      const errors = Array.isArray(res.errors)
        ? res.errors.map(
            (e: { step?: unknown; message?: unknown; error?: { message?: unknown } }) => ({
              step: text(e?.step, '?'),
              message: text(e?.message ?? e?.error?.message, 'failed'),
            }),
          )
        : [];
      throw new GatewayFlowError(target.flow, errors);
    }
    return result;
  };

  const admin: Mount = async (r) => {
    if (!ring)
      throw new KeelError('the gateway is not started yet', { code: 'unavailable', status: 503 });
    const [first, id, ...rest] = r.segments;
    const method = r.req.method ?? 'GET';
    const close = withClose(undefined, r.closing);
    if (first === 'routes' && id === undefined) {
      if (method !== 'GET') throw new MethodNotAllowedError(method, 'GET');
      sendJson(
        r.res,
        200,
        routes.map((c) => ({
          method: c.route.method,
          path: `/${name}${c.route.path}`,
          target: c.route.target,
          ...(c.route.description ? { description: c.route.description } : {}),
        })),
        close,
      );
      return;
    }
    if (first === 'keys' && id === undefined) {
      if (method === 'GET') return sendJson(r.res, 200, await ring.list(), close);
      if (method !== 'POST') throw new MethodNotAllowedError(method, 'GET, POST');
      requireAdmin(r, 'making an API key');
      const body = (await readJson(r.req, 64 * 1024)) as
        { name?: unknown; rateLimit?: unknown } | undefined;
      if (typeof body !== 'object' || body === null || Array.isArray(body))
        throw new GatewayRequestError(
          'send { "name": "...", "rateLimit"?: { "requests": 100, "window": "1m" } }',
        );
      const made = await ring.create(body.name, body.rateLimit);
      return sendJson(r.res, 201, { ...made.info, key: made.key }, close);
    }
    if (first === 'keys' && id !== undefined && rest.length === 0) {
      if (method !== 'DELETE') throw new MethodNotAllowedError(method, 'DELETE');
      requireAdmin(r, 'revoking an API key');
      const revoked = await ring.revoke(id);
      if (!revoked)
        throw new KeelError(
          `no stored API key has the id "${id}" (keys from the environment cannot be revoked here)`,
          {
            code: 'not_found',
            status: 404,
          },
        );
      return sendJson(r.res, 200, revoked, close);
    }
    throw new KeelError(
      `no gateway admin route /${name}/${r.segments.join('/')}; there are /${name}/routes and /${name}/keys`,
      {
        code: 'not_found',
        status: 404,
      },
    );
  };

  return {
    name,
    install(h) {
      host = h;
      ring = new KeyRing(h.store, declared, () => h.clock.now(), keyCacheMs);
    },
    mounts: {
      // For GET /openapi.json: the declared routes, `:name` parameters as `{name}`.
      ingress: describeMount(
        ingress,
        options.routes.map((r) => ({
          method: r.method,
          path: r.path.replace(/:([^/]+)/g, '{$1}'),
          summary: r.description ?? `${r.method} ${r.path}`,
          description: 'Needs a gateway API key: Authorization: Bearer <key>.',
          responses: {
            [String(r.status ?? 200)]: "The target's result, mapped",
            '401': 'No valid key',
            '429': 'Rate limited',
          },
        })),
      ),
      admin,
    },
    keys() {
      if (!ring) throw new UsageError('the gateway has no keys before its engine started');
      return ring;
    },
  };
}

/** The JSON body, if any: empty is `undefined`; a body needs a JSON content type. */
async function readJson(req: IncomingMessage, limit: number): Promise<unknown> {
  const declared = req.headers['content-length'];
  if (
    BODYLESS.has(req.method ?? '') &&
    (declared === undefined || declared === '0') &&
    !req.headers['transfer-encoding']
  )
    return undefined;
  const raw = await readBody(req, limit);
  if (raw.length === 0) return undefined;
  const type = req.headers['content-type'];
  if (type === undefined || !isJsonType(type)) throw unsupportedMediaType(type);
  return parseJson(raw);
}

/** A string field of a flow's error as text (anything else: `fallback`). */
function text(value: unknown, fallback: string): string {
  return typeof value === 'string' ? value : fallback;
}

function queryObject(query: string): Record<string, string> {
  const out = Object.create(null) as Record<string, string>;
  if (query === '') return out;
  for (const [k, v] of new URLSearchParams(query)) if (!(k in out)) out[k] = v;
  return out;
}

function keyText(value: unknown): string {
  if (typeof value === 'string' && value !== '') return value;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  throw new GatewayRequestError(
    `the target's key must be a non-empty string or a number, got ${JSON.stringify(value) ?? 'nothing'}`,
  );
}

function idempotencyKeyOf(req: IncomingMessage): string | undefined {
  const v = req.headers['idempotency-key'];
  if (v === undefined) return undefined;
  if (
    typeof v !== 'string' ||
    (v.includes(',') && (req.headersDistinct['idempotency-key']?.length ?? 0) > 1)
  )
    throw new GatewayRequestError(
      'the Idempotency-Key header is given more than once: send it once',
    );
  if (v.trim() === '' || v.length > MAX_IDEMPOTENCY_KEY)
    throw new GatewayRequestError(
      `the Idempotency-Key header must be 1 to ${MAX_IDEMPOTENCY_KEY} characters`,
    );
  return v;
}
