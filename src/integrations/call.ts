/**
 * One call through the policy stack, in this order:
 *
 * 1. build the request (a bad parameter is a terminal `invalid-request`, never sent);
 * 2. cache: a fresh cached response answers at once;
 * 3. batching: a `batch: true` operation joins the next batch (see `batcher.ts`);
 * 4. then, per attempt: circuit breaker (open: the fallback, or fail fast with `circuit_open`),
 *    rate limit (wait for a permit), auth (signing, OAuth2 token), the request with its timeout
 *    (or the mock), classification, and the outcome fed back to the breaker, the limiter (server
 *    hints) and the statistics;
 * 5. a retryable failure waits (`retry.ts`: backoff, schedule, `Retry-After`) and tries again;
 *    a durable call hands a long wait to the engine instead (see `durable.ts`);
 * 6. the last good response is cached; when nothing worked the fallback answers, if declared.
 *
 * The result is plain JSON ({@link CallResult}): journaled as it is, it replays identically.
 */
import { errorMessage, KeelError } from '../core/errors.js';
import { authorize } from './auth/authorize.js';
import { ResponseCache, type CacheEntry } from './cache.js';
import {
  classify,
  outcomeFromError,
  parseRateLimitHeaders,
  type Classification,
} from './classify.js';
import type { Fallback, ResolvedOperation } from './config.js';
import type { CallFailure } from './errors.js';
import type { IntegrationHandle } from './handle.js';
import type { MockRequest } from './mock.js';
import {
  buildRequest,
  requestUrl,
  RequestBuildError,
  type BuiltRequest,
  type CallParams,
  type IntegrationCallOptions,
} from './request.js';
import { retryDelay } from './retry.js';
import { resolveSecret } from './secrets.js';
import type { RawResponse } from './transport.js';
import { parseDuration } from '../core/duration.js';

/** Where a successful result came from. */
export type ResultSource = 'network' | 'mock' | 'cache' | 'fallback-cache' | 'fallback-default';

/** A call's outcome, as journaled. */
export type CallResult =
  | {
      ok: true;
      status: number;
      headers: Record<string, string>;
      data: unknown;
      source: ResultSource;
      /** Requests sent for this call (0 when answered from the cache or a fallback). */
      attempts: number;
    }
  | { ok: false; failure: CallFailure };

/** How one call is run: its idempotency key and, for durable calls, where its retries stand. */
export interface CallControl {
  /** The key for the idempotency header (when the operation sends one). */
  idempotencyKey: string;
  /** Retries already made by earlier executions of this call (durable calls). */
  retriesDone: number;
  /**
   * Waits longer than this are not slept here but handed back by throwing {@link RetryLater}
   * (durable calls); `Infinity` for a plain client, which waits in memory.
   */
  maxInlineWaitMs: number;
}

/**
 * Thrown by a durable call whose next attempt is due later than `maxInlineWaitMs`: the engine
 * re-runs the step (durably, across restarts) and the call resumes at `retriesDone` retries.
 */
export class RetryLater extends KeelError {
  constructor(
    readonly retriesDone: number,
    readonly notBefore: number,
    readonly last: CallFailure | undefined,
    what: string,
  ) {
    super(what, { code: 'integration_retry_later', status: 503 });
  }
}

/** What the pipeline needs from the runtime. */
export interface CallServices {
  now(): number;
  wait(ms: number): Promise<void>;
  random(): number;
  cache: ResponseCache;
  sendHttp(
    req: {
      method: string;
      url: string;
      headers: Record<string, string>;
      body: string | Uint8Array | undefined;
    },
    timeoutMs: number,
  ): Promise<RawResponse>;
  sendMock(h: IntegrationHandle, req: MockRequest, timeoutMs: number): Promise<RawResponse>;
  /** Runs a batched operation's call through its batcher. */
  batch(
    h: IntegrationHandle,
    op: ResolvedOperation,
    req: BuiltRequest,
    ctl: CallControl,
  ): Promise<CallResult>;
}

/**
 * Runs one call (see the module comment).
 *
 * @example
 * ```ts
 * const result = await runCall(services, handle, op, { username: 'octocat' }, {}, { idempotencyKey: randomUUID(), retriesDone: 0, maxInlineWaitMs: Infinity });
 * ```
 */
export async function runCall(
  s: CallServices,
  h: IntegrationHandle,
  op: ResolvedOperation,
  params: CallParams,
  options: IntegrationCallOptions,
  ctl: CallControl,
): Promise<CallResult> {
  let req: BuiltRequest;
  try {
    req = buildRequest(h.integration, op, params, options, h.env);
    if (!h.mockOn && h.integration.baseUrl === undefined) {
      throw new RequestBuildError('the integration has no baseUrl');
    }
  } catch (err) {
    return failed(h, op, 'invalid-request', errorMessage(err), 0);
  }
  const cacheKey =
    op.cacheTtlMs !== undefined || op.fallback?.kind === 'cache'
      ? ResponseCache.key(
          h.integration.name,
          op.name,
          req.method,
          req.path,
          req.query,
          req.bodyValue,
        )
      : undefined;
  if (cacheKey !== undefined && op.cacheTtlMs !== undefined) {
    const hit = await s.cache.get(cacheKey).catch(() => undefined);
    if (hit !== undefined && s.now() < hit.freshUntil) {
      h.stats.cacheHits++;
      return fromCache(hit, 'cache');
    }
  }
  if (op.sendIdempotencyKey || options.idempotencyKey !== undefined) {
    req.headers[h.integration.idempotency.header.toLowerCase()] =
      options.idempotencyKey ?? ctl.idempotencyKey;
  }
  if (op.batch !== undefined) return s.batch(h, op, req, ctl);
  const result = await attempts(s, h, op, req, ctl, options);
  if (result.ok && cacheKey !== undefined && result.status < 300) {
    s.cache.put(
      cacheKey,
      { status: result.status, headers: result.headers, body: result.data },
      op.cacheTtlMs ?? 0,
    );
  }
  if (!result.ok && cacheKey !== undefined) {
    return (await fallback(s, h, op.fallback, cacheKey)) ?? result;
  }
  if (!result.ok && op.fallback?.kind === 'default') {
    return (await fallback(s, h, op.fallback, undefined)) ?? result;
  }
  return result;
}

/**
 * The attempt loop: breaker, rate limit, auth, send, classify, retry. Also used by the batcher
 * for a whole batch.
 */
export async function attempts(
  s: CallServices,
  h: IntegrationHandle,
  op: ResolvedOperation,
  req: BuiltRequest,
  ctl: CallControl,
  options: IntegrationCallOptions = {},
): Promise<CallResult> {
  const timeoutMs = options.timeout === undefined ? op.timeoutMs : parseDuration(options.timeout);
  let retries = ctl.retriesDone;
  let sent = 0;
  let authRetried = false;
  for (;;) {
    let ticket;
    if (h.breaker !== undefined) {
      const pending = h.breaker.acquire();
      const d = pending instanceof Promise ? await pending : pending;
      if (!d.allowed) {
        h.stats.circuitRejections++;
        return failed(
          h,
          op,
          'circuit-open',
          `the circuit is open; the next probe is allowed in ${d.retryInMs} ms`,
          sent,
          {
            retryAfterMs: d.retryInMs,
          },
        );
      }
      ticket = d.ticket;
    }
    if (h.limiter !== undefined) {
      const wait = h.limiter.estimateWaitMs();
      if (wait > ctl.maxInlineWaitMs) {
        throw new RetryLater(
          retries,
          s.now() + wait,
          undefined,
          `${h.integration.name}.${op.name}: rate limited; next permit in ${wait} ms`,
        );
      }
      const permit = h.limiter.acquire();
      if (permit !== undefined) await permit;
    }

    const started = s.now();
    const t0 = performance.now();
    let response: RawResponse | undefined;
    let verdict: Classification;
    let message: string;
    let token: string | undefined;
    try {
      if (h.mockOn) {
        response = await s.sendMock(h, mockRequest(h, op, req), timeoutMs);
      } else {
        token = h.tokens === undefined ? undefined : await h.tokens.get();
        const signed = authorize(
          h.integration.auth,
          {
            method: req.method,
            url: requestUrl(baseUrl(h), req),
            headers: req.headers,
            ...(req.body === undefined ? {} : { body: req.body }),
            now: s.now(),
          },
          {
            integration: h.integration.name,
            ...(h.env ? { env: h.env } : {}),
            ...(token === undefined ? {} : { accessToken: token }),
          },
        );
        response = await s.sendHttp(
          { method: req.method, url: signed.url, headers: signed.headers, body: req.body },
          timeoutMs,
        );
      }
      verdict = classify(
        { kind: 'response', status: response.status, headers: headerView(response.headers) },
        { now: s.now(), overrides: op.errors },
      );
      message = `${req.method} answered ${response.status}`;
    } catch (err) {
      if (isBuildOrSecretError(err))
        return failed(h, op, 'invalid-request', errorMessage(err), sent);
      verdict = classify(outcomeFromError(err), { now: s.now(), overrides: op.errors });
      message = `${verdict.reason}: ${errorMessage(err)}`;
    }
    sent++;
    const latencyMs = performance.now() - t0;
    const ok = response !== undefined && verdict.reason === 'success';
    h.stats.attempt({
      at: started,
      ok: ok || (!verdict.retryable && !verdict.breakerFailure),
      latencyMs,
    });
    if (!ok) h.stats.error(s.now(), message, response?.status);

    if (ticket !== undefined) {
      const recorded = h.breaker!.record(ticket, verdict.breakerFailure);
      if (recorded !== undefined) await recorded;
    }
    if (
      h.limiter !== undefined &&
      response !== undefined &&
      (verdict.reason === 'rate-limited' || hasRateLimitHeaders(h, response.headers))
    ) {
      const rl = parseRateLimitHeaders(headerView(response.headers), s.now(), {
        ...(h.integration.rateLimit?.remainingHeader
          ? { remaining: h.integration.rateLimit.remainingHeader }
          : {}),
        ...(h.integration.rateLimit?.resetHeader
          ? { reset: h.integration.rateLimit.resetHeader }
          : {}),
      });
      const observed = h.limiter.observe({
        ...(rl.remaining === undefined ? {} : { remaining: rl.remaining }),
        ...(rl.resetAt === undefined ? {} : { resetAt: rl.resetAt }),
        ...(verdict.reason === 'rate-limited' && verdict.retryAfterMs !== undefined
          ? { retryAfterMs: verdict.retryAfterMs }
          : {}),
      });
      if (observed !== undefined) await observed;
    }

    // A 401 with OAuth2: the token was revoked or expired early; fetch a new one and send again
    // once, without spending a retry.
    if (response?.status === 401 && h.tokens !== undefined && token !== undefined && !authRetried) {
      authRetried = true;
      h.tokens.invalidate(token);
      continue;
    }

    if (response !== undefined && verdict.reason === 'success') {
      if (op.kind === 'graphql') return graphqlResult(h, op, response, sent);
      return {
        ok: true,
        status: response.status,
        headers: response.headers,
        data: response.body,
        source: h.mockOn ? 'mock' : 'network',
        attempts: sent,
      };
    }
    if (!verdict.retryable) {
      return failed(h, op, 'rejected', message, sent, {
        ...(response === undefined ? {} : { status: response.status, body: clip(response.body) }),
        classification: verdict.reason,
      });
    }
    const delay = retryDelay(op.retry, retries + 1, s.random(), verdict.retryAfterMs);
    const last: CallFailure = {
      integration: h.integration.name,
      operation: op.name,
      reason: 'retries-exhausted',
      message: `${message}${sent + ctl.retriesDone > 1 ? ` (after ${retries + 1} attempts)` : ''}`,
      classification: verdict.reason,
      attempts: retries + 1,
      ...(response === undefined ? {} : { status: response.status, body: clip(response.body) }),
    };
    if (delay === undefined) return { ok: false, failure: last };
    retries++;
    if (delay > ctl.maxInlineWaitMs) {
      throw new RetryLater(
        retries,
        s.now() + delay,
        last,
        `${h.integration.name}.${op.name}: ${message}; retry ${retries} of ${op.retry.retries} in ${delay} ms`,
      );
    }
    await s.wait(delay);
  }
}

/** Serves the declared fallback, if it can; `undefined` when there is nothing to serve. */
async function fallback(
  s: CallServices,
  h: IntegrationHandle,
  fb: Fallback | undefined,
  cacheKey: string | undefined,
): Promise<CallResult | undefined> {
  if (fb === undefined) return undefined;
  if (fb.kind === 'default') {
    h.stats.fallbacks++;
    return {
      ok: true,
      status: 200,
      headers: {},
      data: fb.value,
      source: 'fallback-default',
      attempts: 0,
    };
  }
  if (cacheKey === undefined) return undefined;
  const entry = await s.cache.get(cacheKey).catch(() => undefined);
  if (entry === undefined) return undefined;
  h.stats.fallbacks++;
  return fromCache(entry, 'fallback-cache');
}

function fromCache(e: CacheEntry, source: 'cache' | 'fallback-cache'): CallResult {
  return {
    ok: true,
    status: e.status,
    headers: {
      ...e.headers,
      'x-keel-cache': source === 'cache' ? 'hit' : 'stale',
      'x-keel-cached-at': new Date(e.storedAt).toISOString(),
    },
    data: e.body,
    source,
    attempts: 0,
  };
}

function graphqlResult(
  h: IntegrationHandle,
  op: ResolvedOperation,
  res: RawResponse,
  sent: number,
): CallResult {
  const body = res.body as { data?: unknown; errors?: Array<{ message?: string }> } | null;
  if (
    body !== null &&
    typeof body === 'object' &&
    Array.isArray(body.errors) &&
    (body.data === undefined || body.data === null)
  ) {
    const msg = body.errors.map((e) => e?.message ?? 'error').join('; ');
    return failed(h, op, 'graphql-errors', `GraphQL errors: ${msg}`, sent, {
      status: res.status,
      body: clip(res.body),
    });
  }
  const data = body !== null && typeof body === 'object' && 'data' in body ? body.data : res.body;
  return {
    ok: true,
    status: res.status,
    headers: res.headers,
    data,
    source: h.mockOn ? 'mock' : 'network',
    attempts: sent,
  };
}

function failed(
  h: IntegrationHandle,
  op: ResolvedOperation,
  reason: CallFailure['reason'],
  message: string,
  attempts: number,
  extra: Partial<CallFailure> = {},
): CallResult {
  return {
    ok: false,
    failure: {
      integration: h.integration.name,
      operation: op.name,
      reason,
      message,
      attempts,
      ...extra,
    },
  };
}

function mockRequest(h: IntegrationHandle, op: ResolvedOperation, req: BuiltRequest): MockRequest {
  return {
    integration: h.integration.name,
    operation: op.name,
    method: req.method,
    path: req.path,
    query: { ...req.query },
    headers: { ...req.headers },
    body: req.bodyValue,
  };
}

function baseUrl(h: IntegrationHandle): string {
  return resolveSecret(
    h.integration.baseUrl!,
    { integration: h.integration.name, field: 'baseUrl' },
    h.env,
  );
}

function isBuildOrSecretError(err: unknown): boolean {
  return (
    err instanceof RequestBuildError ||
    (err instanceof KeelError && (err.code === 'missing_secret' || err.code === 'usage'))
  );
}

/** Whether a response says anything about the server's budget (most say nothing). */
function hasRateLimitHeaders(h: IntegrationHandle, headers: Record<string, string>): boolean {
  const custom = h.integration.rateLimit?.remainingHeader;
  return (
    headers['x-ratelimit-remaining'] !== undefined ||
    headers['ratelimit-remaining'] !== undefined ||
    (custom !== undefined && headers[custom.toLowerCase()] !== undefined)
  );
}

/** Case-insensitive lookups on lower-case headers without scanning them (see `getHeader`). */
function headerView(headers: Record<string, string>): { get(name: string): string | null } {
  return {
    get: (name) =>
      headers[name] ?? (/[A-Z]/.test(name) ? headers[name.toLowerCase()] : null) ?? null,
  };
}

/** Keeps a failure's body small: it is journaled. */
function clip(body: unknown): unknown {
  if (typeof body === 'string') return body.length > 2048 ? `${body.slice(0, 2048)}…` : body;
  if (body === null || typeof body !== 'object') return body;
  const text = JSON.stringify(body);
  return text.length > 2048 ? `${text.slice(0, 2048)}…` : body;
}
