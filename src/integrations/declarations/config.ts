/**
 * A declared integration: a REST or GraphQL API (or an outbound webhook sender) with its base URL,
 * auth, headers and resilience policies, and the operations it offers. `integration(config)`
 * validates a declaration and resolves it (every duration in ms, every default filled in, every
 * operation's effective policy computed), so the runtime never has to second-guess it.
 *
 * The same data can be written in a file (see `parseIntegrations`); both routes end here.
 */
import { parseDuration, type Duration } from '../../core/duration.js';
import { resolveRetry, type ResolvedRetryPolicy, type RetryPolicy } from '../../core/retry.js';
import type { AuthConfig } from './auth/config.js';
import type { BreakerOptions } from '../policies/breaker.js';
import type { ErrorOverrides } from '../policies/classify.js';
import { IntegrationConfigError } from '../errors.js';
import type { MockHandler } from './mock.js';
import type { RateLimitOptions } from '../policies/rate-limit.js';
import { checkConfigurable, isEnvRef, type Configurable, type Secret } from './secrets.js';
import { templateParams } from './url.js';

/** What kind of API an integration talks to. `webhook`: outbound deliveries (see `signature`). */
export type IntegrationType = 'rest' | 'graphql' | 'webhook';

/** HTTP methods an operation may use. */
export type HttpMethod = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE' | 'OPTIONS';

/** "N failures in W, reset after R". */
export interface CircuitBreakerConfig {
  failures: number;
  window: Duration;
  reset: Duration;
  /** How long a half-open probe may run before another is allowed. Default: the call timeout. */
  probeTimeout?: Duration;
}

/** "N requests per window", shared by every process. */
export interface RateLimitConfig {
  requests: number;
  per: Duration;
  /** The response header with the server's remaining budget (default `X-RateLimit-Remaining`). */
  remainingHeader?: string;
  /** The response header with the server's reset time (default `X-RateLimit-Reset`). */
  resetHeader?: string;
}

/** Caching of read operations. */
export interface CacheConfig {
  /** TTL for every read operation (GET/HEAD, GraphQL queries) that does not set its own. */
  defaultTtl: Duration;
}

/**
 * What to answer when a call cannot be made (circuit open, retries exhausted): the last good
 * cached response, or a fixed value.
 */
export type FallbackConfig = 'cache' | { default: unknown };

/** An `Idempotency-Key` header on every non-idempotent call, stable across retries and crashes. */
export interface IdempotencyConfig {
  enabled?: boolean;
  /** Default `Idempotency-Key`. */
  header?: string;
}

/** Calls to operations with `batch: true` are grouped: up to `maxBatchSize`, waiting at most `maxDelay`. */
export interface BatchingConfig {
  maxBatchSize: number;
  maxDelay: Duration;
  enabled?: boolean;
}

/** Webhook integrations: how deliveries are signed (HMAC of the body). */
export interface WebhookSignatureConfig {
  algorithm: 'sha1' | 'sha256' | 'sha512';
  header: string;
  /** Where the per-endpoint secret comes from, e.g. `endpoint.secret`. */
  secretFrom?: string;
  /** A single secret for every endpoint instead. */
  secret?: Secret;
}

/** Webhook integrations: deliveries that exhaust their retries are kept here. */
export interface DeadLetterConfig {
  enabled?: boolean;
  retention?: Duration;
}

/** Policy settings an operation can override. */
export interface OperationPolicyConfig {
  /** Extra headers for this operation, on top of the integration's. */
  headers?: Readonly<Record<string, Configurable>>;
  /** Cache TTL for this operation; `false` never caches it. */
  cache?: Duration | false;
  /** Safe to send twice. Default: true for GET/HEAD/PUT/DELETE/OPTIONS and GraphQL queries. */
  idempotent?: boolean;
  /** This operation accepts batches (see the integration's `batching`). */
  batch?: boolean;
  fallback?: FallbackConfig | false;
  timeout?: Duration;
  retry?: RetryPolicy | false;
  errors?: ErrorOverrides;
}

/** A REST operation: method and path (with `{param}` placeholders), optional query and body templates. */
export interface RestOperationConfig extends OperationPolicyConfig {
  /** Default GET. */
  method?: HttpMethod | Lowercase<HttpMethod>;
  path: string;
  /** Query parameters; values may hold `{param}` placeholders. */
  query?: Readonly<Record<string, string>>;
  /** A JSON body template; string values may hold `{param}` placeholders. */
  body?: unknown;
}

/** The type of a GraphQL variable as declared (`login: string, required`). */
export type GraphQLVariableType =
  'string' | 'integer' | 'float' | 'boolean' | 'id' | 'object' | 'list';

/** A GraphQL variable: its type, whether it is required, its default. */
export interface GraphQLVariableConfig {
  type: GraphQLVariableType;
  required?: boolean;
  default?: unknown;
}

/** A GraphQL operation: the document, POSTed to the integration's `baseUrl`. */
export interface GraphQLOperationConfig extends OperationPolicyConfig {
  /** The GraphQL document (`query GetUser($login: String!) { ... }`). */
  query: string;
  operationName?: string;
  variables?: Readonly<Record<string, GraphQLVariableConfig>>;
}

/** One operation of an integration. */
export type OperationConfig = RestOperationConfig | GraphQLOperationConfig;

/** A declared integration, as written in TypeScript (or produced by `parseIntegrations`). */
export interface IntegrationConfig {
  /** Letters, digits, `_`, `-`, `.`; used in the admin API's URLs. */
  name: string;
  /** Default `rest`. */
  type?: IntegrationType;
  /** Absolute http(s) URL; operation paths are appended to it. May be `env('NAME')`. */
  baseUrl?: Configurable;
  auth?: AuthConfig;
  /** Sent with every call. Values may be `env('NAME')`. */
  headers?: Readonly<Record<string, Configurable>>;
  /** Per attempt. Default 30s. */
  timeout?: Duration;
  /**
   * A path on `baseUrl` probed with a GET every `healthCheckInterval`, through the integration's
   * auth and headers but not its breaker, rate limit or retries (timeout: the smaller of 5s and
   * `timeout`); any 2xx is healthy. Results are on `/integrations/status` and
   * `/integrations/{name}/health`; a change is an `IntegrationUnhealthy`/`IntegrationRecovered`
   * event. Example: `'/health'`.
   */
  healthCheckPath?: string;
  /** How often `healthCheckPath` is probed (at least 1s). Default 30s. */
  healthCheckInterval?: Duration;
  /**
   * Keel's {@link RetryPolicy}. Default {@link INTEGRATION_DEFAULTS}.retry: 4 attempts (3 retries)
   * with exponential backoff, honouring `Retry-After`; `false` for none.
   */
  retry?: RetryPolicy | false;
  circuitBreaker?: CircuitBreakerConfig;
  rateLimit?: RateLimitConfig;
  cache?: CacheConfig;
  fallback?: FallbackConfig;
  /** `true` is `{ enabled: true, header: 'Idempotency-Key' }`. */
  idempotency?: IdempotencyConfig | boolean;
  batching?: BatchingConfig;
  /** Status codes whose retry verdict is forced, for every operation. */
  errors?: ErrorOverrides;
  /** Webhook integrations only. */
  signature?: WebhookSignatureConfig;
  /** Webhook integrations only. */
  deadLetter?: DeadLetterConfig;
  operations?: Readonly<Record<string, OperationConfig>>;
  /**
   * An in-process stand-in for the API (see `MockHandler`), used instead of the network when
   * mock mode is on: `mockMode: true` here; `KEEL_MOCK=1` in the environment (`KEEL_MOCK=0`
   * forces real calls); with `KEEL_MOCK` unset, whenever an environment variable the
   * declaration reads (its API key, its base URL) is absent (see `mockDecision`).
   */
  mock?: MockHandler;
  /** Always answer from `mock`, whatever `KEEL_MOCK` says (default false). */
  mockMode?: boolean;
}

/** A fallback, resolved. */
export type Fallback = { kind: 'cache' } | { kind: 'default'; value: unknown };

/** What every resolved operation carries: its effective policies. */
export interface ResolvedOperationBase {
  name: string;
  /** The integration's headers with the operation's on top. */
  headers: Readonly<Record<string, Configurable>>;
  /** How long a response is cached, or `undefined` when it is not. */
  cacheTtlMs: number | undefined;
  idempotent: boolean;
  /** Send the integration's idempotency header: idempotency is enabled and the operation is not idempotent. */
  sendIdempotencyKey: boolean;
  batch: { maxBatchSize: number; maxDelayMs: number } | undefined;
  fallback: Fallback | undefined;
  timeoutMs: number;
  retry: ResolvedRetryPolicy;
  /** The integration's overrides merged with the operation's (the operation wins). */
  errors: ErrorOverrides;
}

/** A REST operation with every default filled in. */
export interface ResolvedRestOperation extends ResolvedOperationBase {
  kind: 'rest';
  method: HttpMethod;
  path: string;
  pathParams: readonly string[];
  query: Readonly<Record<string, string>>;
  body?: unknown;
}

/** A GraphQL operation with every default filled in. */
export interface ResolvedGraphQLOperation extends ResolvedOperationBase {
  kind: 'graphql';
  method: 'POST';
  query: string;
  operationName?: string;
  variables: Readonly<Record<string, GraphQLVariableConfig>>;
}

/** One resolved operation. */
export type ResolvedOperation = ResolvedRestOperation | ResolvedGraphQLOperation;

/** The rate limit, resolved. */
export interface ResolvedRateLimit extends RateLimitOptions {
  remainingHeader?: string;
  resetHeader?: string;
}

/** A validated integration, every duration in ms and every default applied. */
export interface Integration<Ops extends string = string> {
  readonly name: string;
  readonly type: IntegrationType;
  readonly baseUrl: Configurable | undefined;
  readonly auth: AuthConfig;
  readonly headers: Readonly<Record<string, Configurable>>;
  readonly timeoutMs: number;
  /** The active health check (`healthCheckPath`), if declared. */
  readonly healthCheck: ResolvedHealthCheck | undefined;
  readonly retry: ResolvedRetryPolicy;
  readonly circuitBreaker: BreakerOptions | undefined;
  readonly rateLimit: ResolvedRateLimit | undefined;
  readonly cache: { defaultTtlMs: number | undefined };
  readonly fallback: Fallback | undefined;
  readonly idempotency: { enabled: boolean; header: string };
  readonly batching: { maxBatchSize: number; maxDelayMs: number } | undefined;
  readonly errors: ErrorOverrides;
  readonly signature: WebhookSignatureConfig | undefined;
  readonly deadLetter: { enabled: boolean; retentionMs: number | undefined } | undefined;
  readonly operations: Readonly<Record<Ops, ResolvedOperation>>;
  /** The in-process stand-in for the API, if declared. */
  readonly mock: MockHandler | undefined;
  /** Answer from `mock` regardless of `KEEL_MOCK`. */
  readonly mockMode: boolean;
  /** The declaration this was made from. */
  readonly config: IntegrationConfig;
}

/** A declared health check, resolved. */
export interface ResolvedHealthCheck {
  /** Appended to the base URL, as an operation's path is. */
  readonly path: string;
  readonly intervalMs: number;
  /** Per probe: the smaller of 5s and the integration's timeout. */
  readonly timeoutMs: number;
}

/** The operation names of a config, as a union of string literals (`string` for a config not known statically). */
export type OperationNames<C> = string extends keyof OperationsOf<C>
  ? string
  : Extract<keyof OperationsOf<C>, string>;

type OperationsOf<C> = C extends { operations?: infer O } ? NonNullable<O> : never;

/** How often a declared health check runs when `healthCheckInterval` is not given. */
export const HEALTH_CHECK_DEFAULT_INTERVAL_MS = 30_000;

/** The defaults `integration()` applies. */
export const INTEGRATION_DEFAULTS = {
  type: 'rest',
  timeoutMs: 30_000,
  /**
   * 1 attempt + 3 retries, exponential from 100ms doubling up to 30s, ±25% jitter, honouring
   * `Retry-After` up to a day. A `schedule` given without `jitter` is followed exactly.
   */
  retry: {
    maxAttempts: 4,
    initialIntervalMs: 100,
    factor: 2,
    maxIntervalMs: 30_000,
    jitter: 0.25,
    scheduleMs: [],
    respectRetryAfter: true,
    maxRetryAfterMs: 86_400_000,
  } satisfies ResolvedRetryPolicy,
  idempotencyHeader: 'Idempotency-Key',
} as const;

const NO_RETRY: ResolvedRetryPolicy = { ...INTEGRATION_DEFAULTS.retry, maxAttempts: 1 };

const RETRY_FIELDS = [
  'maxAttempts',
  'initialInterval',
  'factor',
  'maxInterval',
  'jitter',
  'schedule',
  'respectRetryAfter',
  'maxRetryAfter',
] as const;

/** The integrations' retry settings before they took the core `RetryPolicy`'s names. */
const RENAMED_RETRY_FIELDS: Readonly<Record<string, string>> = {
  retries: 'give maxAttempts, the attempts in all (3 retries = maxAttempts: 4)',
  backoff: 'exponential is the default; for a constant delay give factor: 1',
  initialDelay: 'it is initialInterval now',
  maxDelay: 'it is maxInterval now',
};

const NAME = /^[A-Za-z][A-Za-z0-9_.-]*$/;
const OPERATION_NAME = /^[A-Za-z_$][A-Za-z0-9_$]*$/;
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const METHODS: readonly HttpMethod[] = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];
const IDEMPOTENT_METHODS: readonly HttpMethod[] = ['GET', 'HEAD', 'PUT', 'DELETE', 'OPTIONS'];
const VARIABLE_TYPES: readonly GraphQLVariableType[] = [
  'string',
  'integer',
  'float',
  'boolean',
  'id',
  'object',
  'list',
];

/**
 * Declares an integration: validates `config` and returns it resolved. Every error names the
 * integration, the field and what is accepted.
 *
 * @example
 * ```ts
 * export const github = integration({
 *   name: 'GitHubAPI',
 *   baseUrl: 'https://api.github.com',
 *   auth: bearer(env('GITHUB_TOKEN')),
 *   headers: { 'X-GitHub-Api-Version': '2022-11-28' },
 *   timeout: '30s',
 *   retry: { maxAttempts: 4, initialInterval: '500ms' },
 *   circuitBreaker: { failures: 5, window: '1m', reset: '30s' },
 *   rateLimit: { requests: 5000, per: '1h' },
 *   operations: {
 *     get_user: { method: 'GET', path: '/users/{username}', cache: '5m' },
 *     create_issue: { method: 'POST', path: '/repos/{owner}/{repo}/issues', body: { title: '{title}' } },
 *   },
 * });
 * github.operations.get_user.pathParams; // ['username']
 * ```
 */
export function integration<const C extends IntegrationConfig>(
  config: C,
): Integration<OperationNames<C>> {
  if (typeof config !== 'object' || config === null) {
    throw new TypeError('integration(config): config must be an object');
  }
  if (typeof config.name !== 'string' || !NAME.test(config.name)) {
    throw new IntegrationConfigError(
      typeof config.name === 'string' && config.name !== '' ? config.name : '(unnamed)',
      'name',
      `must start with a letter and hold only letters, digits, _, - and . (it appears in URLs such as /integrations/{name}/health), got ${show(config.name)}`,
    );
  }
  const c = new Checker(config.name);
  const type = c.oneOf(config.type ?? INTEGRATION_DEFAULTS.type, 'type', [
    'rest',
    'graphql',
    'webhook',
  ]);

  if (config.baseUrl !== undefined) c.baseUrl(config.baseUrl, 'baseUrl');
  const auth = c.auth(config.auth);
  const headers = c.headers(config.headers, 'headers');
  const timeoutMs =
    config.timeout === undefined
      ? INTEGRATION_DEFAULTS.timeoutMs
      : c.duration(config.timeout, 'timeout', { positive: true });
  const healthCheck = c.healthCheck(config, type, timeoutMs);
  const retry = c.retry(config.retry, 'retry', INTEGRATION_DEFAULTS.retry);
  const circuitBreaker =
    config.circuitBreaker === undefined ? undefined : c.breaker(config.circuitBreaker, timeoutMs);
  const rateLimit = config.rateLimit === undefined ? undefined : c.rateLimit(config.rateLimit);
  const defaultTtlMs =
    config.cache === undefined
      ? undefined
      : c.duration(c.object(config.cache, 'cache').defaultTtl, 'cache.defaultTtl', {
          positive: true,
        });
  const fallback =
    config.fallback === undefined ? undefined : c.fallback(config.fallback, 'fallback');
  const idempotency = c.idempotency(config.idempotency);
  const batching = config.batching === undefined ? undefined : c.batching(config.batching);
  const errors = c.errors(config.errors, 'errors');
  if (config.mock !== undefined && typeof config.mock !== 'function') {
    c.fail(
      'mock',
      `must be a function (req) => ({ status, headers, body }), got ${show(config.mock)}`,
    );
  }
  const mockMode = config.mockMode === undefined ? false : c.bool(config.mockMode, 'mockMode');
  if (mockMode && config.mock === undefined) {
    c.fail('mockMode', 'is true but there is no mock: give mock: (req) => ({ body })');
  }

  let signature: WebhookSignatureConfig | undefined;
  let deadLetter: Integration['deadLetter'];
  if (config.signature !== undefined || config.deadLetter !== undefined) {
    if (type !== 'webhook') {
      const field = config.signature !== undefined ? 'signature' : 'deadLetter';
      c.fail(field, `is for webhook integrations only; set type: 'webhook' or remove it`);
    }
    if (config.signature !== undefined) signature = c.signature(config.signature);
    if (config.deadLetter !== undefined) {
      const d = c.object(config.deadLetter, 'deadLetter');
      deadLetter = {
        enabled: d.enabled === undefined ? true : c.bool(d.enabled, 'deadLetter.enabled'),
        retentionMs:
          d.retention === undefined
            ? undefined
            : c.duration(d.retention, 'deadLetter.retention', { positive: true }),
      };
    }
  }

  const operations: Record<string, ResolvedOperation> = {};
  if (config.operations !== undefined) {
    const ops = c.object(config.operations, 'operations');
    if (type === 'webhook' && Object.keys(ops).length > 0) {
      c.fail(
        'operations',
        `are not used by a webhook integration: its deliveries go to each endpoint's URL`,
      );
    }
    for (const [name, op] of Object.entries(ops)) {
      const path = `operations.${name}`;
      if (!OPERATION_NAME.test(name)) {
        c.fail(
          path,
          `is not a valid operation name: use a JavaScript identifier (letters, digits, _), since it is called as a method`,
        );
      }
      operations[name] = Object.freeze(
        c.operation(name, c.object(op, path) as OperationConfig, type, {
          headers,
          timeoutMs,
          retry,
          defaultTtlMs,
          fallback,
          idempotency,
          batching,
          errors,
        }),
      );
    }
  }
  if (auth.type === 'oauth2_authorization_code') {
    // A batch is one request with one token: it would send one user's calls with another's.
    for (const [name, op] of Object.entries(operations)) {
      if (op.batch !== undefined)
        c.fail(
          `operations.${name}.batch`,
          'cannot be used with oauth2_authorization_code auth: each call acts for its own account',
        );
    }
    for (const name of Object.keys(auth.operationScopes ?? {})) {
      if (operations[name] === undefined)
        c.fail(`auth.operationScopes.${name}`, `names no operation of ${config.name}`);
    }
  }

  return Object.freeze({
    name: config.name,
    type,
    baseUrl: config.baseUrl,
    auth,
    headers,
    timeoutMs,
    healthCheck,
    retry,
    circuitBreaker,
    rateLimit,
    cache: { defaultTtlMs },
    fallback,
    idempotency,
    batching,
    errors,
    signature,
    deadLetter,
    operations: Object.freeze(operations) as Record<OperationNames<C>, ResolvedOperation>,
    mock: config.mock,
    mockMode,
    config,
  });
}

interface Inherited {
  headers: Readonly<Record<string, Configurable>>;
  timeoutMs: number;
  retry: ResolvedRetryPolicy;
  defaultTtlMs: number | undefined;
  fallback: Fallback | undefined;
  idempotency: { enabled: boolean; header: string };
  batching: { maxBatchSize: number; maxDelayMs: number } | undefined;
  errors: ErrorOverrides;
}

/** Validation helpers bound to one integration, so every error names it. */
class Checker {
  constructor(readonly name: string) {}

  fail(path: string, detail: string): never {
    throw new IntegrationConfigError(this.name, path, detail);
  }

  object(value: unknown, path: string): Record<string, any> {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      this.fail(path, `must be an object, got ${show(value)}`);
    }
    return value as Record<string, any>;
  }

  oneOf<T extends string>(value: unknown, path: string, allowed: readonly T[]): T {
    if (typeof value !== 'string' || !allowed.includes(value as T)) {
      this.fail(
        path,
        `must be one of ${allowed.map((a) => `'${a}'`).join(', ')}, got ${show(value)}`,
      );
    }
    return value as T;
  }

  bool(value: unknown, path: string): boolean {
    if (typeof value !== 'boolean') this.fail(path, `must be true or false, got ${show(value)}`);
    return value;
  }

  int(value: unknown, path: string, min: number, what: string): number {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
      this.fail(path, `must be a whole number of at least ${min} (${what}), got ${show(value)}`);
    }
    return value;
  }

  duration(value: unknown, path: string, opts: { positive?: boolean } = {}): number {
    let ms: number;
    try {
      ms = parseDuration(value as Duration);
    } catch {
      this.fail(
        path,
        `must be a duration such as 500ms, 30s, 5m, 1h or a number of milliseconds, got ${show(value)}`,
      );
    }
    if (opts.positive === true && ms <= 0)
      this.fail(path, `must be longer than 0, got ${show(value)}`);
    return ms;
  }

  string(value: unknown, path: string, what: string): string {
    if (typeof value !== 'string' || value === '')
      this.fail(path, `must be a non-empty string (${what}), got ${show(value)}`);
    return value;
  }

  headerName(value: unknown, path: string): string {
    if (typeof value !== 'string' || !HEADER_NAME.test(value)) {
      this.fail(path, `must be an HTTP header name (letters, digits and -), got ${show(value)}`);
    }
    return value;
  }

  /** `healthCheckPath` and `healthCheckInterval`. */
  healthCheck(
    config: IntegrationConfig,
    type: IntegrationType,
    timeoutMs: number,
  ): ResolvedHealthCheck | undefined {
    const { healthCheckPath: path, healthCheckInterval: interval } = config;
    if (path === undefined) {
      if (interval !== undefined)
        this.fail(
          'healthCheckInterval',
          `is set but healthCheckPath is not: add healthCheckPath: '/health'`,
        );
      return undefined;
    }
    if (typeof path !== 'string' || !path.startsWith('/') || /[\s#]/.test(path)) {
      this.fail(
        'healthCheckPath',
        `must be a path starting with / (appended to baseUrl), such as '/health', got ${show(path)}`,
      );
    }
    if (type === 'webhook') {
      this.fail('healthCheckPath', `is for API integrations: a webhook integration has no baseUrl`);
    }
    if (config.baseUrl === undefined) {
      this.fail('healthCheckPath', `needs a baseUrl to probe: add baseUrl: 'https://...'`);
    }
    const intervalMs =
      interval === undefined
        ? HEALTH_CHECK_DEFAULT_INTERVAL_MS
        : this.duration(interval, 'healthCheckInterval', { positive: true });
    if (intervalMs < 1000) {
      this.fail('healthCheckInterval', `must be at least 1s, got ${show(interval)}`);
    }
    return Object.freeze({ path, intervalMs, timeoutMs: Math.min(5000, timeoutMs) });
  }

  baseUrl(value: unknown, path: string): void {
    if (isEnvRef(value)) return checkConfigurable(value, this.name, path, 'the base URL');
    if (typeof value !== 'string')
      this.fail(path, `must be an absolute http(s) URL or env('NAME'), got ${show(value)}`);
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      this.fail(
        path,
        `must be an absolute http(s) URL such as https://api.github.com, got ${show(value)}`,
      );
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      this.fail(path, `must use http or https, got ${show(value)}`);
    }
  }

  headers(value: unknown, path: string): Readonly<Record<string, Configurable>> {
    if (value === undefined) return {};
    const h = this.object(value, path);
    for (const [k, v] of Object.entries(h)) {
      this.headerName(k, `${path}`);
      if (typeof v === 'string' && /[\r\n]/.test(v))
        this.fail(`${path}.${k}`, 'must not contain line breaks');
      checkConfigurable(v, this.name, `${path}.${k}`, 'a header value');
    }
    return Object.freeze({ ...h });
  }

  auth(value: unknown): AuthConfig {
    if (value === undefined) return { type: 'none' };
    const a = this.object(value, 'auth');
    const kind = this.oneOf(a.type, 'auth.type', [
      'none',
      'bearer',
      'basic',
      'apiKey',
      'oauth2',
      'oauth2_authorization_code',
      'awsSigV4',
    ]);
    const secret = (field: string, what: string): void => {
      if (a[field] === undefined)
        this.fail(`auth.${field}`, `is required for ${kind} auth (${what}); use env('NAME')`);
      checkConfigurable(a[field], this.name, `auth.${field}`, `${what}; use env('NAME')`);
    };
    switch (kind) {
      case 'none':
        break;
      case 'bearer':
        secret('token', 'the token');
        break;
      case 'basic':
        secret('username', 'the user name');
        secret('password', 'the password');
        break;
      case 'apiKey':
        secret('key', 'the API key');
        this.oneOf(a.in, 'auth.in', ['header', 'query']);
        if (a.in === 'header') this.headerName(a.name, 'auth.name');
        if (a.prefix !== undefined) {
          if (a.in !== 'header') this.fail('auth.prefix', 'is for an API key in a header');
          if (typeof a.prefix !== 'string' || /[\r\n\0]/.test(a.prefix))
            this.fail('auth.prefix', `must be a string without line breaks, got ${show(a.prefix)}`);
        } else this.string(a.name, 'auth.name', 'the query parameter name');
        break;
      case 'oauth2':
        if (isEnvRef(a.tokenUrl))
          checkConfigurable(a.tokenUrl, this.name, 'auth.tokenUrl', 'the token endpoint');
        else this.baseUrl(a.tokenUrl, 'auth.tokenUrl');
        secret('clientId', 'the client id');
        secret('clientSecret', 'the client secret');
        if (a.scope !== undefined) this.string(a.scope, 'auth.scope', 'space-separated scopes');
        if (a.audience !== undefined)
          this.string(a.audience, 'auth.audience', 'the token audience');
        if (a.clientAuth !== undefined)
          this.oneOf(a.clientAuth, 'auth.clientAuth', ['basic', 'body']);
        if (a.refreshMargin !== undefined) this.duration(a.refreshMargin, 'auth.refreshMargin');
        break;
      case 'oauth2_authorization_code': {
        for (const field of ['authorizeUrl', 'tokenUrl', 'redirectUri', 'revokeUrl'] as const) {
          if (a[field] === undefined && field === 'revokeUrl') continue;
          if (isEnvRef(a[field])) checkConfigurable(a[field], this.name, `auth.${field}`, 'a URL');
          else this.baseUrl(a[field], `auth.${field}`);
        }
        secret('clientId', 'the client id');
        if (a.clientSecret !== undefined) secret('clientSecret', 'the client secret');
        const scopeList = (v: unknown, path: string): void => {
          if (
            !Array.isArray(v) ||
            v.some((x) => typeof x !== 'string' || x === '' || /[\s"\\]/.test(x))
          )
            this.fail(path, `must be a list of scope names without spaces, got ${show(v)}`);
        };
        scopeList(a.scopes, 'auth.scopes');
        if (a.operationScopes !== undefined) {
          const ops = this.object(a.operationScopes, 'auth.operationScopes');
          for (const [op, v] of Object.entries(ops)) scopeList(v, `auth.operationScopes.${op}`);
        }
        if (a.authorizeParams !== undefined) {
          const params = this.object(a.authorizeParams, 'auth.authorizeParams');
          for (const [k, v] of Object.entries(params))
            if (typeof v !== 'string')
              this.fail(`auth.authorizeParams.${k}`, `must be a string, got ${show(v)}`);
        }
        if (a.clientAuth !== undefined)
          this.oneOf(a.clientAuth, 'auth.clientAuth', ['basic', 'body']);
        if (a.refreshMargin !== undefined) this.duration(a.refreshMargin, 'auth.refreshMargin');
        break;
      }
      case 'awsSigV4':
        secret('accessKeyId', 'the access key id');
        secret('secretAccessKey', 'the secret access key');
        if (a.sessionToken !== undefined) secret('sessionToken', 'the session token');
        secret('region', 'the region, e.g. us-east-1');
        this.string(a.service, 'auth.service', "the signing name, e.g. 's3'");
        if (a.unsignedPayload !== undefined) {
          this.bool(a.unsignedPayload, 'auth.unsignedPayload');
          if (a.unsignedPayload && a.service !== 's3') {
            this.fail(
              'auth.unsignedPayload',
              `is only accepted by S3; the service is ${show(a.service)}`,
            );
          }
        }
        break;
    }
    return Object.freeze({ ...a }) as AuthConfig;
  }

  retry(value: unknown, path: string, base: ResolvedRetryPolicy): ResolvedRetryPolicy {
    if (value === undefined) return base;
    if (value === false) return NO_RETRY;
    const r = this.object(value, path);
    for (const [old, now] of Object.entries(RENAMED_RETRY_FIELDS)) {
      if (r[old] !== undefined) this.fail(`${path}.${old}`, `is not a retry setting: ${now}`);
    }
    const known = new Set(RETRY_FIELDS);
    for (const k of Object.keys(r)) {
      if (!known.has(k as (typeof RETRY_FIELDS)[number]) && r[k] !== undefined)
        this.fail(`${path}.${k}`, `is not a retry setting (use ${RETRY_FIELDS.join(', ')})`);
    }
    const p: RetryPolicy = {};
    if (r.maxAttempts !== undefined && r.maxAttempts !== Infinity)
      this.int(r.maxAttempts, `${path}.maxAttempts`, 1, 'attempts in all, the first included');
    if (r.maxAttempts !== undefined) p.maxAttempts = r.maxAttempts as number;
    for (const k of ['initialInterval', 'maxInterval', 'maxRetryAfter'] as const) {
      if (r[k] !== undefined) p[k] = this.duration(r[k], `${path}.${k}`);
    }
    if (r.factor !== undefined) {
      if (typeof r.factor !== 'number' || !(r.factor >= 1))
        this.fail(`${path}.factor`, `must be a number of at least 1, got ${show(r.factor)}`);
      p.factor = r.factor;
    }
    if (r.jitter !== undefined) {
      if (typeof r.jitter !== 'number' || !(r.jitter >= 0 && r.jitter <= 1))
        this.fail(
          `${path}.jitter`,
          `must be a number from 0 to 1 (0.25 = ±25%), got ${show(r.jitter)}`,
        );
      p.jitter = r.jitter;
    }
    if (r.respectRetryAfter !== undefined)
      p.respectRetryAfter = this.bool(r.respectRetryAfter, `${path}.respectRetryAfter`);
    if (r.schedule !== undefined) {
      if (!Array.isArray(r.schedule) || r.schedule.length === 0) {
        this.fail(
          `${path}.schedule`,
          `must be a non-empty list of durations such as ['1m', '5m', '30m'], got ${show(r.schedule)}`,
        );
      }
      p.schedule = (r.schedule as unknown[]).map((d, i) =>
        this.duration(d, `${path}.schedule[${i}]`),
      );
      // The core policy would repeat the last delay or drop the last ones; in a declaration a
      // count that disagrees with the listed delays is more likely a slip.
      const n = p.schedule.length;
      if (p.maxAttempts !== undefined && p.maxAttempts !== n + 1) {
        this.fail(
          `${path}.maxAttempts`,
          `is ${p.maxAttempts} (${p.maxAttempts - 1} retries) but the schedule lists ${n} delay${n === 1 ? '' : 's'}; they must agree (maxAttempts = delays + 1, or leave it out)`,
        );
      }
    }
    // An operation that refines an integration declared with `retry: false` starts from the
    // defaults, not from "no retries".
    const resolved = resolveRetry(p, base === NO_RETRY ? INTEGRATION_DEFAULTS.retry : base);
    if (resolved.scheduleMs.length === 0 && resolved.maxIntervalMs < resolved.initialIntervalMs) {
      this.fail(
        `${path}.maxInterval`,
        `(${resolved.maxIntervalMs}ms) must not be shorter than initialInterval (${resolved.initialIntervalMs}ms)`,
      );
    }
    return resolved;
  }

  breaker(value: unknown, timeoutMs: number): BreakerOptions {
    const b = this.object(value, 'circuitBreaker');
    const failures = this.int(
      b.failures,
      'circuitBreaker.failures',
      1,
      'failures within the window that open the circuit',
    );
    const windowMs = this.duration(b.window, 'circuitBreaker.window', { positive: true });
    const resetMs = this.duration(b.reset, 'circuitBreaker.reset', { positive: true });
    const probeTimeoutMs =
      b.probeTimeout === undefined
        ? timeoutMs
        : this.duration(b.probeTimeout, 'circuitBreaker.probeTimeout', { positive: true });
    return { failures, windowMs, resetMs, probeTimeoutMs };
  }

  rateLimit(value: unknown): ResolvedRateLimit {
    const r = this.object(value, 'rateLimit');
    const out: ResolvedRateLimit = {
      requests: this.int(r.requests, 'rateLimit.requests', 1, 'requests allowed per window'),
      windowMs: this.duration(r.per, 'rateLimit.per', { positive: true }),
    };
    if (r.remainingHeader !== undefined)
      out.remainingHeader = this.headerName(r.remainingHeader, 'rateLimit.remainingHeader');
    if (r.resetHeader !== undefined)
      out.resetHeader = this.headerName(r.resetHeader, 'rateLimit.resetHeader');
    return out;
  }

  fallback(value: unknown, path: string): Fallback {
    if (value === 'cache') return { kind: 'cache' };
    if (
      typeof value === 'object' &&
      value !== null &&
      !Array.isArray(value) &&
      'default' in value &&
      Object.keys(value).length === 1
    ) {
      const v = value.default;
      try {
        JSON.stringify(v);
      } catch {
        this.fail(`${path}.default`, 'must be a JSON value');
      }
      return { kind: 'default', value: v };
    }
    return this.fail(path, `must be 'cache' or { default: value }, got ${show(value)}`);
  }

  idempotency(value: unknown): { enabled: boolean; header: string } {
    const header = INTEGRATION_DEFAULTS.idempotencyHeader;
    if (value === undefined) return { enabled: false, header };
    if (typeof value === 'boolean') return { enabled: value, header };
    const i = this.object(value, 'idempotency');
    return {
      enabled: i.enabled === undefined ? true : this.bool(i.enabled, 'idempotency.enabled'),
      header: i.header === undefined ? header : this.headerName(i.header, 'idempotency.header'),
    };
  }

  batching(value: unknown): { maxBatchSize: number; maxDelayMs: number } | undefined {
    const b = this.object(value, 'batching');
    const maxBatchSize = this.int(b.maxBatchSize, 'batching.maxBatchSize', 1, 'calls per batch');
    const maxDelayMs = this.duration(b.maxDelay, 'batching.maxDelay');
    if (b.enabled !== undefined && !this.bool(b.enabled, 'batching.enabled')) return undefined;
    return { maxBatchSize, maxDelayMs };
  }

  errors(value: unknown, path: string, base: ErrorOverrides = {}): ErrorOverrides {
    if (value === undefined) return base;
    const e = this.object(value, path);
    const list = (k: 'retryable' | 'terminal'): number[] | undefined => {
      if (e[k] === undefined) return undefined;
      if (
        !Array.isArray(e[k]) ||
        !e[k].every(
          (s: unknown) => Number.isInteger(s) && (s as number) >= 100 && (s as number) <= 599,
        )
      ) {
        this.fail(
          `${path}.${k}`,
          `must be a list of HTTP status codes (100-599), got ${show(e[k])}`,
        );
      }
      return e[k] as number[];
    };
    const retryable = list('retryable');
    const terminal = list('terminal');
    const both = (retryable ?? []).filter((s) => (terminal ?? []).includes(s));
    if (both.length > 0) this.fail(path, `lists ${both.join(', ')} as both retryable and terminal`);
    // The more specific declaration wins, code by code.
    const merged = {
      retryable: [
        ...(base.retryable ?? []).filter((s) => !(terminal ?? []).includes(s)),
        ...(retryable ?? []),
      ],
      terminal: [
        ...(base.terminal ?? []).filter((s) => !(retryable ?? []).includes(s)),
        ...(terminal ?? []),
      ],
    };
    return { retryable: [...new Set(merged.retryable)], terminal: [...new Set(merged.terminal)] };
  }

  signature(value: unknown): WebhookSignatureConfig {
    const s = this.object(value, 'signature');
    this.oneOf(s.algorithm, 'signature.algorithm', ['sha1', 'sha256', 'sha512']);
    this.headerName(s.header, 'signature.header');
    if (s.secretFrom !== undefined)
      this.string(
        s.secretFrom,
        'signature.secretFrom',
        'where the per-endpoint secret is, e.g. endpoint.secret',
      );
    if (s.secret !== undefined)
      checkConfigurable(
        s.secret,
        this.name,
        'signature.secret',
        "the signing secret; use env('NAME')",
      );
    return Object.freeze({ ...s }) as WebhookSignatureConfig;
  }

  operation(
    name: string,
    op: OperationConfig,
    type: IntegrationType,
    inherited: Inherited,
  ): ResolvedOperation {
    const path = `operations.${name}`;
    const o = op as Record<string, any>;
    const headers = { ...inherited.headers, ...this.headers(o.headers, `${path}.headers`) };
    const timeoutMs =
      o.timeout === undefined
        ? inherited.timeoutMs
        : this.duration(o.timeout, `${path}.timeout`, { positive: true });
    const retry = this.retry(o.retry, `${path}.retry`, inherited.retry);
    const errors = this.errors(o.errors, `${path}.errors`, inherited.errors);
    const fallback =
      o.fallback === undefined
        ? inherited.fallback
        : o.fallback === false
          ? undefined
          : this.fallback(o.fallback, `${path}.fallback`);

    let batch: ResolvedOperationBase['batch'];
    if (o.batch !== undefined && this.bool(o.batch, `${path}.batch`)) {
      if (inherited.batching === undefined) {
        this.fail(
          `${path}.batch`,
          'needs batching at the integration level: batching: { maxBatchSize, maxDelay }',
        );
      }
      batch = inherited.batching;
    }

    if (type === 'graphql') {
      if (typeof o.query !== 'string' || o.query.trim() === '') {
        this.fail(
          `${path}.query`,
          `must be the GraphQL document (query ... { ... }), got ${show(o.query)}`,
        );
      }
      for (const k of ['method', 'path', 'body'] as const) {
        if (o[k] !== undefined)
          this.fail(
            `${path}.${k}`,
            `is not used by a GraphQL operation: it is POSTed to the integration's baseUrl`,
          );
      }
      const kind = graphqlKind(o.query);
      const variables: Record<string, GraphQLVariableConfig> = {};
      if (o.variables !== undefined) {
        for (const [v, spec] of Object.entries(this.object(o.variables, `${path}.variables`))) {
          const s = this.object(spec, `${path}.variables.${v}`);
          this.oneOf(s.type, `${path}.variables.${v}.type`, VARIABLE_TYPES);
          if (s.required !== undefined) this.bool(s.required, `${path}.variables.${v}.required`);
          variables[v] = Object.freeze({ ...s }) as GraphQLVariableConfig;
        }
      }
      const idempotent =
        o.idempotent === undefined
          ? kind === 'query'
          : this.bool(o.idempotent, `${path}.idempotent`);
      const out: ResolvedGraphQLOperation = {
        kind: 'graphql',
        name,
        method: 'POST',
        query: o.query,
        variables: Object.freeze(variables),
        headers: Object.freeze(headers),
        cacheTtlMs: this.cacheTtl(
          o.cache,
          `${path}.cache`,
          kind === 'query' ? inherited.defaultTtlMs : undefined,
        ),
        idempotent,
        sendIdempotencyKey: inherited.idempotency.enabled && !idempotent,
        batch,
        fallback,
        timeoutMs,
        retry,
        errors,
      };
      if (o.operationName !== undefined)
        out.operationName = this.string(
          o.operationName,
          `${path}.operationName`,
          'the operation to run in the document',
        );
      return out;
    }

    if (typeof o.query === 'string') {
      this.fail(
        `${path}.query`,
        `is a GraphQL document, but ${this.name} is a ${type} integration; set type: 'graphql', or give REST query parameters as an object`,
      );
    }
    // '' is the base URL itself: a Slack incoming webhook's URL is the whole endpoint.
    if (typeof o.path !== 'string' || (o.path !== '' && !o.path.startsWith('/'))) {
      this.fail(
        `${path}.path`,
        `must be a path starting with / (placeholders look like {name}), got ${show(o.path)}`,
      );
    }
    let pathParams: string[];
    try {
      pathParams = templateParams(o.path);
    } catch (err) {
      this.fail(`${path}.path`, (err as Error).message);
    }
    const method = this.oneOf(
      typeof o.method === 'string' ? o.method.toUpperCase() : (o.method ?? 'GET'),
      `${path}.method`,
      METHODS,
    );
    const query: Record<string, string> = {};
    if (o.query !== undefined) {
      for (const [k, v] of Object.entries(this.object(o.query, `${path}.query`))) {
        if (typeof v !== 'string')
          this.fail(
            `${path}.query.${k}`,
            `must be a string (placeholders look like {name}), got ${show(v)}`,
          );
        try {
          templateParams(v);
        } catch (err) {
          this.fail(`${path}.query.${k}`, (err as Error).message);
        }
        query[k] = v;
      }
    }
    if (o.body !== undefined && (method === 'GET' || method === 'HEAD')) {
      this.fail(
        `${path}.body`,
        `is not sent with ${method}; use query parameters, or another method`,
      );
    }
    const idempotent =
      o.idempotent === undefined
        ? IDEMPOTENT_METHODS.includes(method)
        : this.bool(o.idempotent, `${path}.idempotent`);
    const isRead = method === 'GET' || method === 'HEAD';
    const out: ResolvedRestOperation = {
      kind: 'rest',
      name,
      method,
      path: o.path,
      pathParams: Object.freeze(pathParams),
      query: Object.freeze(query),
      headers: Object.freeze(headers),
      cacheTtlMs: this.cacheTtl(
        o.cache,
        `${path}.cache`,
        isRead ? inherited.defaultTtlMs : undefined,
      ),
      idempotent,
      sendIdempotencyKey: inherited.idempotency.enabled && !idempotent,
      batch,
      fallback,
      timeoutMs,
      retry,
      errors,
    };
    if (o.body !== undefined) out.body = o.body;
    return out;
  }

  cacheTtl(value: unknown, path: string, inherited: number | undefined): number | undefined {
    if (value === undefined) return inherited;
    if (value === false) return undefined;
    return this.duration(value, path, { positive: true });
  }
}

/** Whether a GraphQL document is a query (cacheable, idempotent) or a mutation/subscription. */
function graphqlKind(document: string): 'query' | 'mutation' | 'subscription' {
  const text = document.replace(/#[^\n]*/g, '').trimStart();
  if (text.startsWith('mutation')) return 'mutation';
  if (text.startsWith('subscription')) return 'subscription';
  return 'query';
}

function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  let s: string | undefined;
  try {
    s = JSON.stringify(value);
  } catch {
    s = undefined;
  }
  if (s === undefined) return typeof value === 'function' ? 'a function' : typeof value;
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}
