/**
 * What every connector shares: the options a caller can override, how they are laid over the
 * connector's defaults, and the type that carries each operation's parameter and result types.
 */
import type { Duration } from '../../core/duration.js';
import type { RetryPolicy } from '../../core/retry.js';
import type { ErrorOverrides } from '../policies/classify.js';
import type { IntegrationResponse } from '../runtime/client.js';
import type {
  CacheConfig,
  CircuitBreakerConfig,
  FallbackConfig,
  Integration,
  IntegrationConfig,
  RateLimitConfig,
} from '../declarations/config.js';
import type { MockHandler } from '../declarations/mock.js';
import type { IntegrationCallOptions } from '../runtime/request.js';
import type { Configurable } from '../declarations/secrets.js';

/**
 * Overrides every connector accepts. A policy given here replaces the connector's default
 * (it is not merged field by field); `false` turns it off.
 */
export interface ConnectorOptions {
  /** The integration's name (it keys breaker and rate-limit state, and the admin API). */
  name?: string;
  /** Another endpoint: a regional API, a proxy, or a test server. */
  baseUrl?: Configurable;
  /** Added to the connector's headers (a value given here wins). */
  headers?: Readonly<Record<string, Configurable>>;
  timeout?: Duration;
  retry?: RetryPolicy | false;
  circuitBreaker?: CircuitBreakerConfig | false;
  rateLimit?: RateLimitConfig | false;
  cache?: CacheConfig | false;
  fallback?: FallbackConfig | false;
  /** Replaces the connector's status-code overrides. */
  errors?: ErrorOverrides;
  /**
   * The in-process stand-in. Default: a fresh mock of the provider (see its `…Mock()`). It
   * answers while the connector's keys are not set, or with `KEEL_MOCK=1`; `KEEL_MOCK=0` forces
   * real calls (see `mockDecision`).
   */
  mock?: MockHandler;
  /** Always use the mock, whatever `KEEL_MOCK` says. Default false. */
  mockMode?: boolean;
}

/** One operation's parameters and result, for typed calls. */
export interface OperationTypes<Params, Result> {
  params: Params;
  result: Result;
}

/**
 * An integration whose operations' parameter and result types are known. The `~operations`
 * property exists only in the type (like Standard Schema's `~standard`), for a typed client to
 * read: `Connector['~operations']['create_charge']['result']` is `StripeCharge`.
 */
export type Connector<Ops extends { [K in keyof Ops]: OperationTypes<any, any> }> = Integration<
  Extract<keyof Ops, string>
> & {
  readonly '~operations'?: Ops;
};

/** The parameters of operation `O` of connector `C`. */
export type ConnectorParams<C, O extends string> =
  C extends Connector<infer Ops> ? (O extends keyof Ops ? Ops[O]['params'] : never) : never;

/** The result of operation `O` of connector `C`. */
export type ConnectorResult<C, O extends string> =
  C extends Connector<infer Ops> ? (O extends keyof Ops ? Ops[O]['result'] : never) : never;

/** One typed operation as a method (the typed form of the runtime's `OperationMethod`). */
export interface TypedOperationMethod<Params, Result> {
  (params: Params, options?: IntegrationCallOptions): Promise<Result>;
  withResponse(
    params: Params,
    options?: IntegrationCallOptions,
  ): Promise<IntegrationResponse<Result>>;
}

/**
 * A connector's client with its operations typed. Until the runtime's `IntegrationClient` reads
 * `~operations` itself, a client can be viewed through this type.
 *
 * @example
 * ```ts
 * const pay = runtime.client(payments) as unknown as ConnectorClient<typeof payments>;
 * const charge = await pay.create_charge({ amount: 2000, currency: 'usd', source: 'tok_visa' });
 * charge.status; // 'succeeded' | 'pending' | 'failed'
 * ```
 */
export type ConnectorClient<C> =
  C extends Connector<infer Ops>
    ? { readonly [K in keyof Ops]: TypedOperationMethod<Ops[K]['params'], Ops[K]['result']> }
    : never;

const POLICIES = ['timeout', 'retry', 'circuitBreaker', 'rateLimit', 'cache', 'fallback'] as const;

/**
 * The connector's declaration with the caller's overrides laid on top. `defaults.mock` is the
 * provider's mock, used unless the caller gives another.
 */
export function withOverrides(
  defaults: IntegrationConfig & { name: string },
  options: ConnectorOptions,
): IntegrationConfig {
  const out: Record<string, unknown> = { ...defaults };
  for (const key of POLICIES) {
    const value = options[key];
    if (value === undefined) continue;
    if (value === false && key !== 'retry') delete out[key];
    else out[key] = value;
  }
  if (options.name !== undefined) out.name = options.name;
  if (options.baseUrl !== undefined) out.baseUrl = options.baseUrl;
  if (options.headers !== undefined) out.headers = { ...defaults.headers, ...options.headers };
  if (options.errors !== undefined) out.errors = options.errors;
  if (options.mock !== undefined) out.mock = options.mock;
  if (options.mockMode !== undefined) out.mockMode = options.mockMode;
  return out as unknown as IntegrationConfig;
}

/** The content type that makes the runtime form-encode an operation's body. */
export const FORM_HEADERS = { 'Content-Type': 'application/x-www-form-urlencoded' } as const;

/**
 * For providers without idempotency keys (Twilio, SendGrid, Shippo labels): a 500, 502 or 504
 * may come after the provider acted, so retrying could send twice; 429 and 503 mean it did not
 * act, and stay retryable.
 */
export const AMBIGUOUS_SERVER_ERRORS: ErrorOverrides = { terminal: [500, 502, 504] };
