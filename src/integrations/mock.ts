/**
 * Mock mode: an integration answered by an in-process function instead of the network, so
 * examples and tests run without API keys. The mock replaces the HTTP request only; timeouts,
 * retries, the circuit breaker, rate limits, caching, journaling and idempotency keys all still
 * apply, so a mocked run exercises the same code paths as a real one.
 *
 * Mock mode is on for an integration that has a `mock` when `KEEL_MOCK=1` is set in the
 * environment, or when its declaration says `mockMode: true`.
 */
import type { HttpMethod } from './config.js';

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

/**
 * Whether calls to `integration` are answered by its mock: it has one, and either the
 * integration asks for mock mode or `KEEL_MOCK` is `1`/`true` in `env`.
 *
 * @example
 * ```ts
 * mockModeOn({ mock: () => ({}), mockMode: false }, { KEEL_MOCK: '1' }); // true
 * ```
 */
export function mockModeOn(
  integration: { mock?: MockHandler | undefined; mockMode?: boolean },
  env: Readonly<Record<string, string | undefined>> = process.env,
): boolean {
  if (integration.mock === undefined) return false;
  if (integration.mockMode === true) return true;
  const flag = env.KEEL_MOCK;
  return flag === '1' || flag === 'true';
}
