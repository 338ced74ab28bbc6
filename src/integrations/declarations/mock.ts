/**
 * Mock mode: an integration answered by an in-process function instead of the network, so
 * examples and tests run without API keys. The mock replaces the HTTP request only; timeouts,
 * retries, the circuit breaker, rate limits, caching, journaling and idempotency keys all still
 * apply, so a mocked run exercises the same code paths as a real one.
 *
 * Mock mode is decided per integration that has a `mock`:
 * - `mockMode: true` on the declaration: always the mock;
 * - `KEEL_MOCK=1` (or `true`): the mock; `KEEL_MOCK=0` (or `false`): the real API;
 * - `KEEL_MOCK` unset: the mock when a secret or setting the integration reads from the
 *   environment is absent (`GITHUB_TOKEN` not set), the real API when all of them are set. So an
 *   app runs with no API keys, and calls the real API of each provider whose keys are given.
 */
import type { HttpMethod, IntegrationConfig } from './config.js';
import { isEnvRef, type Env } from './secrets.js';

/**
 * The request a mock sees: what would have gone over the wire, already expanded.
 *
 * @example
 * ```ts
 * const mock: MockHandler = (req) =>
 *   req.operation === 'get_user'
 *     ? { body: { login: req.path.split('/').pop() } }
 *     : { status: 404, body: { message: 'Not Found' } };
 * ```
 */
export interface MockRequest {
  /** The integration's name. */
  integration: string;
  /** The operation's name (`get_user`). */
  operation: string;
  method: HttpMethod;
  /** The expanded path, without the base URL (`/users/octocat`). */
  path: string;
  /** Query parameters, expanded. */
  query: Record<string, string>;
  /** Request headers (lower-case names), including the idempotency key; auth headers are not computed in mock mode. */
  headers: Record<string, string>;
  /** The body: parsed JSON, or the raw string, or `undefined` when there is none. */
  body: unknown;
}

/** A mock's answer. `status` defaults to 200; `body` is returned as the call's result. */
export interface MockResponse {
  status?: number;
  headers?: Record<string, string>;
  body?: unknown;
}

/**
 * An in-process stand-in for an integration's API. It must be deterministic (same request, same
 * response) so that examples and replays behave the same way every time.
 *
 * @example
 * ```ts
 * const github = integration({
 *   name: 'GitHubAPI',
 *   baseUrl: 'https://api.github.com',
 *   mock: (req) => ({ body: { login: 'octocat', path: req.path } }),
 *   operations: { get_user: { path: '/users/{username}' } },
 * });
 * // KEEL_MOCK=1 node app.js  → calls never leave the process
 * ```
 */
export type MockHandler = (req: MockRequest) => MockResponse | Promise<MockResponse>;

/** Why an integration runs against its mock or the network (see {@link mockDecision}). */
export interface MockDecision {
  /** True: calls are answered by the mock. */
  on: boolean;
  /**
   * `mockMode`: the declaration asks for it; `KEEL_MOCK`: the environment variable decided;
   * `missing-env`: `KEEL_MOCK` is unset and `missing` variables are absent; `configured`: every
   * variable is set; `no-mock`: the integration has no mock.
   */
  reason: 'mockMode' | 'KEEL_MOCK' | 'missing-env' | 'configured' | 'no-mock';
  /** The environment variables the integration reads that are absent (with `missing-env`). */
  missing: string[];
}

/**
 * Decides whether calls to `integration` are answered by its mock: it has one, and the
 * declaration says `mockMode: true`, or `KEEL_MOCK` is `1`/`true`, or `KEEL_MOCK` is unset and
 * an environment variable the integration reads (a credential, its base URL) is absent.
 * `KEEL_MOCK=0`/`false` forces real calls.
 *
 * @example
 * ```ts
 * mockDecision(github, {}); // { on: true, reason: 'missing-env', missing: ['GITHUB_TOKEN'] }
 * mockDecision(github, { GITHUB_TOKEN: 'ghp_x' }); // { on: false, reason: 'configured', missing: [] }
 * mockDecision(github, { KEEL_MOCK: '0' }); // { on: false, reason: 'KEEL_MOCK', missing: [] }
 * ```
 */
export function mockDecision(
  integration: {
    mock?: MockHandler | undefined;
    mockMode?: boolean;
    config?: IntegrationConfig;
  },
  env: Env = process.env,
): MockDecision {
  if (integration.mock === undefined) return { on: false, reason: 'no-mock', missing: [] };
  if (integration.mockMode === true) return { on: true, reason: 'mockMode', missing: [] };
  const flag = env.KEEL_MOCK?.trim().toLowerCase();
  if (flag === '1' || flag === 'true') return { on: true, reason: 'KEEL_MOCK', missing: [] };
  if (flag === '0' || flag === 'false') return { on: false, reason: 'KEEL_MOCK', missing: [] };
  const missing = envNames(integration.config).filter((n) => env[n] === undefined || env[n] === '');
  return missing.length > 0
    ? { on: true, reason: 'missing-env', missing }
    : { on: false, reason: 'configured', missing };
}

/**
 * The environment variables a declaration reads (`env(NAME)` in its base URL, auth, headers and
 * signature), in declaration order, each once.
 */
export function envNames(config: IntegrationConfig | undefined): string[] {
  if (config === undefined) return [];
  const out = new Set<string>();
  const walk = (v: unknown): void => {
    if (isEnvRef(v)) out.add(v.env);
    else if (Array.isArray(v)) v.forEach(walk);
    else if (typeof v === 'object' && v !== null) Object.values(v).forEach(walk);
  };
  walk(config.baseUrl);
  walk(config.auth);
  walk(config.headers);
  walk(config.signature);
  return [...out];
}

/**
 * Whether calls to `integration` are answered by its mock (see {@link mockDecision}).
 *
 * @example
 * ```ts
 * mockModeOn({ mock: () => ({}), mockMode: false }, { KEEL_MOCK: '1' }); // true
 * ```
 */
export function mockModeOn(
  integration: {
    mock?: MockHandler | undefined;
    mockMode?: boolean;
    config?: IntegrationConfig;
  },
  env: Env = process.env,
): boolean {
  return mockDecision(integration, env).on;
}
