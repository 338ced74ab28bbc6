/**
 * The admin API's integration routes, mounted at `/integrations` (see `AdminOptions.mounts`):
 *
 * - `GET /integrations/status`: every API integration, `{ integrations: [{ name, kind: 'api',
 *   type, status, circuit_state, error_rate, health_check? }] }`, then a row per database and
 *   broker the engine health-checks (`{ name, kind: 'database' | 'bus', type, status,
 *   health_check }`);
 * - `GET /integrations/{name}/health`: `{ name, status, circuit_state, latency_p50, latency_p99,
 *   success_rate, last_error, ..., health_check? }` for an API integration; `{ name, kind, type,
 *   status, health_check, details }` for a database or broker;
 * - `GET /integrations/{name}/history`: `{ name, buckets: [{ t, calls, errors, p50, p99 }] }`, the
 *   last 60 minutes of this process's attempts, one bucket a minute, oldest first (`t` the
 *   minute's start, ISO 8601; `p50`/`p99` in milliseconds, null in a minute without calls);
 * - `POST /integrations/{name}/circuit/reset`: closes the circuit for every process. Admin
 *   only: the admin API's user token (read-only) is answered 403 `forbidden`; the two reads
 *   accept either token.
 *
 * `status` is `healthy`, `degraded` (half-open, or at least 10% of recent attempts failed) or
 * `unhealthy` (open, or its health check failing). The circuit state is the shared one, read
 * from the store; latencies and rates are this process's own measurements of its recent attempts
 * (last 5 minutes). Health checks (`health_check`) are this process's latest probe, read from
 * memory: these routes never probe anything themselves. A database or broker not probed yet is
 * `unknown`.
 */
import { NotFoundError } from '../../core/errors.js';
import { requireAdmin, type Mount, type MountRequest } from '../../http/mount.js';
import { MethodNotAllowedError, sendJson } from '../../http/respond.js';
import type { ProbeStatus } from '../health/monitor.js';
import type { ProbeKind } from '../health/registry.js';
import type { BreakerStatus } from '../policies/breaker.js';
import type { MinuteBucket } from '../../observability/metrics/history.js';
import type { IntegrationHandle } from './handle.js';
import type { IntegrationRuntime } from './runtime.js';

/** One API integration's row of `GET /integrations/status`. */
export interface IntegrationStatusRow {
  name: string;
  kind: 'api';
  type: string;
  status: 'healthy' | 'degraded' | 'unhealthy';
  circuit_state: BreakerStatus | 'none';
  error_rate: number;
  /** The latest health check's result, when it declares one (`healthCheckPath`). */
  health_check?: ProbeResult;
}

/** A database's or broker's row of `GET /integrations/status`. */
export interface ProbeStatusRow {
  name: string;
  kind: Exclude<ProbeKind, 'api'>;
  /** `postgres`, `redis`, `mysql`, `rabbitmq`, `nats`, ... */
  type: string;
  /** `unknown` until its first probe finished. */
  status: 'healthy' | 'unhealthy' | 'unknown';
  health_check: ProbeResult;
}

/** A probe's latest result, as a status row shows it. */
export type ProbeResult = 'healthy' | 'unhealthy' | 'pending';

/** A health check's details on `GET /integrations/{name}/health`. */
export interface HealthCheckView {
  result: ProbeResult;
  /** ISO 8601; null before the first probe. */
  last_probe_at: string | null;
  latency_ms: number | null;
  consecutive_failures: number;
  last_error: { at: string; message: string } | null;
  last_success_at: string | null;
  interval_ms: number;
  /** The verdict shared by the processes of a cluster, as this process last read it. */
  cluster_status: 'healthy' | 'unhealthy' | 'unknown';
  /** Probes run by this process. */
  runs: number;
}

/** `GET /integrations/{name}/health` for a database or broker. */
export interface ProbeHealth extends ProbeStatusRow {
  health_check: ProbeResult;
  probe: HealthCheckView;
  details: Record<string, unknown> | null;
}

/** `GET /integrations/{name}/history`: the last 60 minutes, one bucket a minute, oldest first. */
export interface IntegrationHistory {
  name: string;
  buckets: MinuteBucket[];
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
  /** The active health check, when declared (`healthCheckPath`). */
  probe?: HealthCheckView;
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
  const probe = runtime.health.status(h.integration.name);
  const out: IntegrationHealth = {
    name: h.integration.name,
    kind: 'api',
    type: h.integration.type,
    status: verdict(state, stats.errorRate, probe?.result),
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
  if (probe !== undefined) {
    out.health_check = probe.result;
    out.probe = healthCheckView(probe);
  }
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
      const rows: Array<IntegrationStatusRow | ProbeStatusRow> = await Promise.all(
        runtime.list().map(async (h): Promise<IntegrationStatusRow> => {
          const hl = await integrationHealth(runtime, h);
          const row: IntegrationStatusRow = {
            name: hl.name,
            kind: 'api',
            type: hl.type,
            status: hl.status,
            circuit_state: hl.circuit_state,
            error_rate: hl.error_rate,
          };
          if (hl.health_check !== undefined) row.health_check = hl.health_check;
          return row;
        }),
      );
      for (const p of runtime.health.list()) {
        if (p.kind !== 'api') rows.push(probeRow(p));
      }
      sendJson(res, 200, { integrations: rows }, close);
      return;
    }
    if (first !== undefined && segments.length === 2 && second === 'health') {
      allow(req.method, 'GET');
      const probe = runtime.health.status(first);
      if (probe !== undefined && probe.kind !== 'api') {
        const out: ProbeHealth = {
          ...probeRow(probe),
          probe: healthCheckView(probe),
          details: probe.details ?? null,
        };
        sendJson(res, 200, out, close);
        return;
      }
      sendJson(res, 200, await integrationHealth(runtime, runtime.get(first)), close);
      return;
    }
    if (first !== undefined && segments.length === 2 && second === 'history') {
      allow(req.method, 'GET');
      const h = runtime.get(first);
      const history: IntegrationHistory = {
        name: first,
        buckets: h.stats.history.buckets(runtime.clock.now()),
      };
      sendJson(res, 200, history, close);
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
      `no such path: /integrations/${segments.join('/')}; try /integrations/status, /integrations/{name}/health, /integrations/{name}/history or POST /integrations/{name}/circuit/reset`,
    );
  };
}

function allow(method: string | undefined, wanted: 'GET' | 'POST'): void {
  if (method !== wanted) throw new MethodNotAllowedError(method ?? '?', wanted);
}

function verdict(
  state: BreakerStatus | 'none',
  errorRate: number,
  probe: ProbeResult | undefined,
): IntegrationStatusRow['status'] {
  if (state === 'open' || probe === 'unhealthy') return 'unhealthy';
  if (state === 'half-open' || errorRate >= 0.1) return 'degraded';
  return 'healthy';
}

function probeRow(p: ProbeStatus): ProbeStatusRow {
  return {
    name: p.name,
    kind: p.kind as ProbeStatusRow['kind'],
    type: p.type,
    status: p.result === 'pending' ? 'unknown' : p.result,
    health_check: p.result,
  };
}

function healthCheckView(p: ProbeStatus): HealthCheckView {
  const iso = (t: number | undefined): string | null =>
    t === undefined ? null : new Date(t).toISOString();
  return {
    result: p.result,
    last_probe_at: iso(p.lastProbeAt),
    latency_ms: p.latencyMs ?? null,
    consecutive_failures: p.consecutiveFailures,
    last_error:
      p.lastError === undefined
        ? null
        : { at: new Date(p.lastError.at).toISOString(), message: p.lastError.message },
    last_success_at: iso(p.lastSuccessAt),
    interval_ms: p.intervalMs,
    cluster_status:
      p.clusterHealthy === undefined ? 'unknown' : p.clusterHealthy ? 'healthy' : 'unhealthy',
    runs: p.runs,
  };
}
