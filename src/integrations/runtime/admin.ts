/**
 * The admin API's integration routes, mounted at `/integrations` (see `AdminOptions.mounts`):
 *
 * - `GET /integrations/status`: every integration, `{ integrations: [{ name, type, status,
 *   circuit_state, error_rate }] }`;
 * - `GET /integrations/{name}/health`: `{ name, status, circuit_state, latency_p50, latency_p99,
 *   success_rate, last_error, ... }`;
 * - `POST /integrations/{name}/circuit/reset`: closes the circuit for every process. Admin
 *   only: the admin API's user token (read-only) is answered 403 `forbidden`; the two reads
 *   accept either token.
 *
 * `status` is `healthy`, `degraded` (half-open, or at least 10% of recent attempts failed) or
 * `unhealthy` (open). The circuit state is the shared one, read from the store; latencies and
 * rates are this process's own measurements of its recent attempts (last 5 minutes).
 */
import { NotFoundError } from '../../core/errors.js';
import { requireAdmin, type Mount, type MountRequest } from '../../http/mount.js';
import { MethodNotAllowedError, sendJson } from '../../http/respond.js';
import type { BreakerStatus } from '../policies/breaker.js';
import type { IntegrationHandle } from './handle.js';
import type { IntegrationRuntime } from './runtime.js';

/** One row of `GET /integrations/status`. */
export interface IntegrationStatusRow {
  name: string;
  type: string;
  status: 'healthy' | 'degraded' | 'unhealthy';
  circuit_state: BreakerStatus | 'none';
  error_rate: number;
}

/** `GET /integrations/{name}/health`. */
export interface IntegrationHealth extends IntegrationStatusRow {
  latency_p50: number | null;
  latency_p99: number | null;
  success_rate: number;
  last_error: { at: string; message: string; status?: number } | null;
  /** Attempts measured (last 5 minutes, this process). */
  attempts: number;
  /** Open circuit: milliseconds until a probe is let through. */
  retry_in_ms?: number;
  rate_limit?: { used: number; limit: number; server_remaining?: number };
  cache_hits: number;
  fallbacks: number;
  circuit_rejections: number;
  mock: boolean;
}

/**
 * Health of one integration.
 *
 * @example
 * ```ts
 * const health = await integrationHealth(runtime, runtime.get('GitHubAPI'));
 * health.circuit_state; // 'closed'
 * ```
 */
export async function integrationHealth(
  runtime: IntegrationRuntime,
  h: IntegrationHandle,
): Promise<IntegrationHealth> {
  const now = runtime.clock.now();
  const stats = h.stats.snapshot(now);
  const circuit = h.breaker === undefined ? undefined : await h.breaker.status();
  const state = circuit?.state ?? 'none';
  const out: IntegrationHealth = {
    name: h.integration.name,
    type: h.integration.type,
    status: verdict(state, stats.errorRate),
    circuit_state: state,
    error_rate: stats.errorRate,
    latency_p50: stats.latencyP50 === null ? null : Math.round(stats.latencyP50),
    latency_p99: stats.latencyP99 === null ? null : Math.round(stats.latencyP99),
    success_rate: stats.successRate,
    last_error: stats.lastError,
    attempts: stats.attempts,
    cache_hits: stats.cacheHits,
    fallbacks: stats.fallbacks,
    circuit_rejections: stats.circuitRejections,
    mock: h.mockOn,
  };
  if (circuit?.retryInMs !== undefined) out.retry_in_ms = circuit.retryInMs;
  if (h.limiter !== undefined) {
    const u = await h.limiter.usage();
    out.rate_limit = {
      used: u.used,
      limit: u.limit,
      ...(u.serverRemaining === undefined ? {} : { server_remaining: u.serverRemaining }),
    };
  }
  return out;
}

/**
 * The `/integrations` mount for the admin API.
 *
 * @example
 * ```ts
 * const admin = await serveAdmin(engine, { mounts: { integrations: integrationsMount(runtime) } });
 * ```
 */
export function integrationsMount(runtime: IntegrationRuntime): Mount {
  return async ({ req, res, segments, closing, role }: MountRequest) => {
    const close = closing ? ['connection', 'close'] : undefined;
    const [first, second, third] = segments;
    if (segments.length === 1 && first === 'status') {
      allow(req.method, 'GET');
      const rows = await Promise.all(
        runtime.list().map(async (h): Promise<IntegrationStatusRow> => {
          const hl = await integrationHealth(runtime, h);
          return {
            name: hl.name,
            type: hl.type,
            status: hl.status,
            circuit_state: hl.circuit_state,
            error_rate: hl.error_rate,
          };
        }),
      );
      sendJson(res, 200, { integrations: rows }, close);
      return;
    }
    if (first !== undefined && segments.length === 2 && second === 'health') {
      allow(req.method, 'GET');
      sendJson(res, 200, await integrationHealth(runtime, runtime.get(first)), close);
      return;
    }
    if (first !== undefined && segments.length === 3 && second === 'circuit' && third === 'reset') {
      allow(req.method, 'POST');
      req.resume();
      requireAdmin({ role }, `resetting the circuit of ${first}`);
      const h = runtime.get(first);
      if (h.breaker === undefined) {
        throw new NotFoundError(`integration ${first} has no circuit breaker`);
      }
      const { previous } = await h.breaker.reset();
      sendJson(res, 200, { name: first, circuit_state: 'closed', previous_state: previous }, close);
      return;
    }
    throw new NotFoundError(
      `no such path: /integrations/${segments.join('/')}; try /integrations/status, /integrations/{name}/health or POST /integrations/{name}/circuit/reset`,
    );
  };
}

function allow(method: string | undefined, wanted: 'GET' | 'POST'): void {
  if (method !== wanted) throw new MethodNotAllowedError(method ?? '?', wanted);
}

function verdict(state: BreakerStatus | 'none', errorRate: number): IntegrationStatusRow['status'] {
  if (state === 'open') return 'unhealthy';
  if (state === 'half-open' || errorRate >= 0.1) return 'degraded';
  return 'healthy';
}
