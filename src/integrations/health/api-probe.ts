/**
 * The probe of an API integration with a `healthCheckPath`: a GET of that path on the base URL,
 * with the integration's headers and auth (an OAuth2 token from its token cache) and an
 * `X-Request-ID`, sent straight to the connection pool: never through the breaker (a probe
 * must see the API even while the circuit is open, and must not open it), the rate limiter
 * (health traffic does not spend the budget calls need) or retries (one failed probe is one
 * failed probe). Any 2xx is healthy. In mock mode nothing leaves the process, so the probe
 * only confirms the mock is in use. An integration whose calls act for a connected user's
 * account (OAuth2 authorization code) has no token of its own: its probe is sent without auth.
 */
import { randomUUID } from 'node:crypto';
import { errorMessage } from '../../core/errors.js';
import { authorizeOwned } from '../declarations/auth/authorize.js';
import type { AuthConfig } from '../declarations/auth/config.js';
import { resolveSecret } from '../declarations/secrets.js';
import type { IntegrationHandle } from '../runtime/handle.js';
import type { RequestLog } from '../runtime/request-log.js';
import { requestUrl } from '../runtime/request.js';
import type { HttpTransport } from '../runtime/transport.js';
import type { Probe } from './registry.js';

/** What the probe needs from the runtime. */
export interface ApiProbeServices {
  http: Pick<HttpTransport, 'send'>;
  now(): number;
  requestLog: RequestLog | undefined;
}

/**
 * The probe of `h`, which must declare a health check.
 *
 * @example
 * ```ts
 * registry.add(apiProbe(handle, { http, now: Date.now, requestLog: undefined }));
 * ```
 */
export function apiProbe(h: IntegrationHandle, s: ApiProbeServices): Probe {
  const hc = h.integration.healthCheck!;
  const name = h.integration.name;
  return {
    name,
    kind: 'api',
    type: h.integration.type,
    intervalMs: hc.intervalMs,
    details: () => ({ path: hc.path, mock: h.mockOn }),
    async check() {
      if (h.mockOn) return;
      const where = { integration: name, field: 'baseUrl' };
      const base = resolveSecret(h.integration.baseUrl!, where, h.env);
      const url = requestUrl(base, { path: hc.path, query: {} });
      const headers: Record<string, string> = { accept: 'application/json' };
      for (const [k, v] of Object.entries(h.integration.headers)) {
        headers[k.toLowerCase()] = resolveSecret(
          v,
          { integration: name, field: `headers.${k}` },
          h.env,
        );
      }
      headers['x-request-id'] ??= randomUUID();
      const token = h.tokens === undefined ? undefined : await h.tokens.get();
      const signed = authorizeOwned(
        probeAuth(h.integration.auth),
        { method: 'GET', url, headers, body: undefined, now: s.now() },
        { integration: name, env: h.env, accessToken: token },
      );
      const logged = {
        integration: name,
        operation: 'health_check',
        method: 'GET',
        path: hc.path,
        query: {},
        requestId: headers['x-request-id'],
        attempt: 1,
      };
      s.requestLog?.sent(logged);
      const t0 = performance.now();
      let status: number;
      try {
        const res = await s.http.send(
          { method: 'GET', url: signed.url, headers: signed.headers, body: undefined },
          hc.timeoutMs,
        );
        status = res.status;
      } catch (err) {
        const error = errorMessage(err);
        s.requestLog?.answered(logged, {
          status: undefined,
          durationMs: performance.now() - t0,
          failed: true,
          error,
        });
        throw new Error(`GET ${hc.path}: ${error}`);
      }
      const failed = status < 200 || status > 299;
      s.requestLog?.answered(logged, { status, durationMs: performance.now() - t0, failed });
      if (failed) {
        if (status === 401 && token !== undefined) h.tokens?.invalidate(token);
        throw new Error(`GET ${hc.path} answered ${status}`);
      }
    },
  };
}

/** The auth a probe signs with: the integration's, except per-user OAuth2 (none to use). */
function probeAuth(auth: AuthConfig): AuthConfig {
  return auth.type === 'oauth2_authorization_code' ? { type: 'none' } : auth;
}
