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
 * 5. a retryable failure waits (`retryDelay` of the core `RetryPolicy`: backoff, schedule, `Retry-After`) and tries again;
 *    a durable call hands a long wait to the engine instead (see `durable.ts`);
 * 6. the last good response is cached; when nothing worked the fallback answers, if declared.
 *
 * The result is plain JSON ({@link CallResult}): journaled as it is, it replays identically.
 */
import { randomUUID } from 'node:crypto';
import { errorMessage, KeelError } from '../../core/errors.js';
import type { LoggedAttempt, RequestLog } from './request-log.js';
import { authorizeOwned } from '../declarations/auth/authorize.js';
import { AccountUnusableError } from '../oauth/errors.js';
import { ResponseCache, type CacheEntry } from '../shared/cache.js';
import {
  classify,
  classifyResponse,
  outcomeFromError,
  parseRateLimitHeaders,
  type Classification,
} from '../policies/classify.js';
import type { Fallback, ResolvedOperation } from '../declarations/config.js';
import type { CallFailure } from '../errors.js';
import type { IntegrationHandle } from './handle.js';
import type { MockRequest } from '../declarations/mock.js';
import {
  buildRequest,
  requestUrl,
  RequestBuildError,
  type BuiltRequest,
  type CallParams,
  type IntegrationCallOptions,
} from './request.js';
import { retryDelay } from '../../core/retry.js';
import { resolveSecret } from '../declarations/secrets.js';
import {
  COARSE_TIMEOUT_FROM_MS,
  readBody,
  responseHeaders,
  responseOf,
  type HttpTransport,
  type RawResponse,
} from './transport.js';
import type { BreakerTicket } from '../policies/breaker.js';
import { parseDuration } from '../../core/duration.js';
import { httpClientSpan } from '../../observability/tracing/tracer.js';

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
  /**
   * The key for the idempotency header (when the operation sends one) and for a batch's key; a
   * plain client leaves it empty for a call that uses neither.
   */
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
  /** The clock (a function, passed around as it is). */
  now: () => number;
  wait(ms: number): Promise<void>;
  random(): number;
  cache: ResponseCache;
  /** The HTTP connection pool (`open` for the call path, `send` for short timeouts). */
  http: Pick<HttpTransport, 'open' | 'send' | 'target'>;
  sendMock(h: IntegrationHandle, req: MockRequest, timeoutMs: number): Promise<RawResponse>;
  /** Request/response log lines (none when undefined). */
  requestLog?: RequestLog | undefined;
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
export function runCall(
  s: CallServices,
  h: IntegrationHandle,
  op: ResolvedOperation,
  params: CallParams,
  options: IntegrationCallOptions,
  ctl: CallControl,
): Promise<CallResult>;
/**
 * The same, resolving with `finish(result)` instead: a plain client passes its unpacking (the
 * data, or the call's error thrown), which then costs no promise of its own.
 */
export function runCall<T>(
  s: CallServices,
  h: IntegrationHandle,
  op: ResolvedOperation,
  params: CallParams,
  options: IntegrationCallOptions,
  ctl: CallControl,
  finish: (result: CallResult) => T,
): Promise<T>;
export function runCall(
  s: CallServices,
  h: IntegrationHandle,
  op: ResolvedOperation,
  params: CallParams,
  options: IntegrationCallOptions,
  ctl: CallControl,
  finish: (result: CallResult) => unknown = asIs,
): Promise<unknown> {
  let req: BuiltRequest;
  try {
    req = buildRequest(h.integration, op, params, options, h.env);
    if (!h.mockOn && h.integration.baseUrl === undefined) {
      throw new RequestBuildError('the integration has no baseUrl');
    }
  } catch (err) {
    const result = failed(h, op, 'invalid-request', errorMessage(err), 0);
    return new Promise((resolve) => resolve(finish(result)));
  }
  if (op.sendIdempotencyKey || options.idempotencyKey !== undefined) {
    req.headers[h.integration.idempotency.header.toLowerCase()] =
      options.idempotencyKey ?? ctl.idempotencyKey;
  }
  // Without a cache, a fallback or batching, the call is its attempts (no promise in between).
  if (op.cacheTtlMs === undefined && op.fallback === undefined && op.batch === undefined) {
    return attemptLoop(s, h, op, req, ctl, options, finish);
  }
  return aroundAttempts(s, h, op, req, options, ctl).then(finish);
}

function asIs(result: CallResult): CallResult {
  return result;
}

/** Steps 2, 3 and 6 of the module comment: the cache, batching, and the fallback. */
async function aroundAttempts(
  s: CallServices,
  h: IntegrationHandle,
  op: ResolvedOperation,
  req: BuiltRequest,
  options: IntegrationCallOptions,
  ctl: CallControl,
): Promise<CallResult> {
  const cacheKey =
    op.cacheTtlMs !== undefined || op.fallback?.kind === 'cache'
      ? ResponseCache.key(
          // Per-account auth: one user's cached answer is never another's.
          options.account === undefined
            ? h.integration.name
            : `${h.integration.name}@${options.account}`,
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
export function attempts(
  s: CallServices,
  h: IntegrationHandle,
  op: ResolvedOperation,
  req: BuiltRequest,
  ctl: CallControl,
  options: IntegrationCallOptions = {},
): Promise<CallResult> {
  return attemptLoop(s, h, op, req, ctl, options, asIs);
}

/** {@link attempts}, resolving with `finish(result)`. */
async function attemptLoop<T>(
  s: CallServices,
  h: IntegrationHandle,
  op: ResolvedOperation,
  req: BuiltRequest,
  ctl: CallControl,
  options: IntegrationCallOptions,
  finish: (result: CallResult) => T,
): Promise<T> {
  const timeoutMs = options.timeout === undefined ? op.timeoutMs : parseDuration(options.timeout);
  let retries = ctl.retriesDone;
  let sent = 0;
  let authRetried = false;
  // OAuth2 authorization code: the token a 401 refused, refreshed before the next attempt.
  let rejected: string | undefined;
  // Each attempt gets a fresh X-Request-ID (random, so unguessable), unless the caller (or the
  // declaration) set one, which is then sent as it is on every attempt.
  const ownRequestId = req.headers['x-request-id'] !== undefined;
  const log = s.requestLog;
  for (;;) {
    // One clock reading for the breaker, the limiter and the start of the attempt, unless one of
    // them had to wait; another after the answer only if something needs its time (see below).
    let now = s.now();
    let ticket: BreakerTicket | undefined;
    if (h.breaker !== undefined) {
      let d = h.breaker.acquire(now);
      if (d instanceof Promise) {
        d = await d;
        now = s.now();
      }
      if (!d.allowed) {
        h.stats.circuitRejections++;
        return finish(
          failed(
            h,
            op,
            'circuit-open',
            `the circuit is open; the next probe is allowed in ${d.retryInMs} ms`,
            sent,
            { retryAfterMs: d.retryInMs },
          ),
        );
      }
      ticket = d.ticket;
    }
    if (h.limiter !== undefined && !h.limiter.tryTake(now)) {
      const wait = h.limiter.estimateWaitMs();
      if (wait > ctl.maxInlineWaitMs) {
        h.stats.rateLimitWait(wait); // deferred durably, by about that long
        throw new RetryLater(
          retries,
          now + wait,
          undefined,
          `${h.integration.name}.${op.name}: rate limited; next permit in ${wait} ms`,
        );
      }
      const permit = h.limiter.acquire();
      if (permit !== undefined) {
        const waitFrom = now;
        await permit;
        now = s.now();
        h.stats.rateLimitWait(now - waitFrom);
      }
    }

    const requestId = ownRequestId ? req.headers['x-request-id']! : randomUUID();
    req.headers['x-request-id'] = requestId;
    let logged: LoggedAttempt | undefined;
    if (log !== undefined) {
      logged = {
        integration: h.integration.name,
        operation: op.name,
        method: req.method,
        path: req.path,
        query: req.query,
        requestId,
        attempt: ctl.retriesDone + sent + 1,
      };
      log.sent(logged, log.logBodies ? req.bodyValue : undefined);
    }
    const started = now;
    const t0 = performance.now();
    let response: RawResponse | undefined;
    let verdict: Classification;
    let message: string | undefined;
    let token: string | undefined;
    let hints = false;
    try {
      if (h.mockOn) {
        response = await s.sendMock(h, mockRequest(h, op, req), timeoutMs);
      } else {
        if (h.tokens !== undefined) token = await h.tokens.get();
        else if (h.accounts !== undefined)
          token = await h.accounts.token(options.account, op.name, rejected);
        const base = baseUrl(h);
        const url = requestUrl(base, req);
        // A CLIENT span around the exchange; its `traceparent` goes into the headers before
        // they are signed.
        response = await httpClientSpan(
          req.method,
          url,
          (name, value) => (req.headers[name] = value),
          async () => {
            // The built request's headers are this call's own, so bearer auth is set on them in
            // place, and the request to sign doubles as the one to send.
            const toSign = {
              method: req.method,
              url,
              headers: req.headers,
              body: req.body,
              now: token === undefined ? started : s.now(),
            };
            const signed = authorizeOwned(h.integration.auth, toSign, {
              integration: h.integration.name,
              env: h.env,
              accessToken: token,
            });
            const wire =
              signed === toSign
                ? toSign
                : { method: req.method, url: signed.url, headers: signed.headers, body: req.body };
            if (timeoutMs >= COARSE_TIMEOUT_FROM_MS) {
              // undici's promises awaited right here, as a direct caller of undici would.
              const head = await s.http.open(
                wire,
                timeoutMs,
                signed.url === url ? s.http.target(base, req) : undefined,
              );
              const headers = responseHeaders(head);
              return responseOf(head, headers, await readBody(head, headers));
            }
            return s.http.send(wire, timeoutMs);
          },
          (r) => r.status,
          { 'keel.integration': h.integration.name, 'keel.integration.operation': op.name },
        );
      }
      verdict = classifyResponse(response.status, response.headers, s.now, op.errors);
      // The time of the answer, for what uses it: a failure (the breaker's window, stats), the
      // probe's success, the server's rate-limit headers. A plain success needs no clock.
      hints =
        h.limiter !== undefined &&
        (verdict.reason === 'rate-limited' || hasRateLimitHeaders(h, response.headers));
      now = verdict.reason !== 'success' || ticket?.probe === true || hints ? s.now() : started;
    } catch (err) {
      if (isBuildOrSecretError(err))
        return finish(failed(h, op, 'invalid-request', errorMessage(err), sent));
      // Only the caller or the user can fix these (connect, reconnect, grant a scope): never retried.
      if (err instanceof AccountUnusableError)
        return finish(failed(h, op, err.reason, err.message, sent));
      now = s.now();
      verdict = classify(outcomeFromError(err), { now, overrides: op.errors });
      message = `${verdict.reason}: ${errorMessage(err)}`;
    }
    sent++;
    const latencyMs = performance.now() - t0;
    if (logged !== undefined) {
      log!.answered(
        logged,
        {
          status: response?.status,
          durationMs: latencyMs,
          failed: verdict.retryable || verdict.breakerFailure,
          ...(message === undefined ? {} : { error: message }),
        },
        log!.logBodies && response !== undefined ? response.body : undefined,
      );
    }
    const ok = response !== undefined && verdict.reason === 'success';
    h.stats.record(started, ok || (!verdict.retryable && !verdict.breakerFailure), latencyMs);
    if (!ok) {
      message ??= `${req.method} answered ${response!.status}`;
      h.stats.error(now, message, response?.status);
    }

    if (ticket !== undefined) {
      const recorded = h.breaker!.record(ticket, verdict.breakerFailure, now);
      if (recorded !== undefined) await recorded;
    }
    if (hints) {
      const rl = parseRateLimitHeaders(new HeaderView(response!.headers), now, {
        ...(h.integration.rateLimit?.remainingHeader
          ? { remaining: h.integration.rateLimit.remainingHeader }
          : {}),
        ...(h.integration.rateLimit?.resetHeader
          ? { reset: h.integration.rateLimit.resetHeader }
          : {}),
      });
      const observed = h.limiter!.observe({
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
    if (
      response?.status === 401 &&
      h.accounts !== undefined &&
      token !== undefined &&
      !authRetried
    ) {
      authRetried = true;
      rejected = token;
      continue;
    }

    if (response !== undefined && verdict.reason === 'success') {
      if (op.kind === 'graphql') return finish(graphqlResult(h, op, response, sent));
      return finish({
        ok: true,
        status: response.status,
        headers: response.headers,
        data: response.body,
        source: h.mockOn ? 'mock' : 'network',
        attempts: sent,
      });
    }
    message ??= `${req.method} answered ${response!.status}`;
    if (!verdict.retryable) {
      return finish(
        failed(h, op, 'rejected', message, sent, {
          ...(response === undefined ? {} : { status: response.status, body: clip(response.body) }),
          classification: verdict.reason,
        }),
      );
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
    if (delay === undefined) return finish({ ok: false, failure: last });
    retries++;
    if (delay > ctl.maxInlineWaitMs) {
      throw new RetryLater(
        retries,
        s.now() + delay,
        last,
        `${h.integration.name}.${op.name}: ${message}; retry ${retries} of ${op.retry.maxAttempts - 1} in ${delay} ms`,
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
  const base = h.integration.baseUrl!;
  if (typeof base === 'string') return base;
  return resolveSecret(base, { integration: h.integration.name, field: 'baseUrl' }, h.env);
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
class HeaderView {
  constructor(private readonly headers: Record<string, string>) {}

  get(name: string): string | null {
    return (
      this.headers[name] ?? (/[A-Z]/.test(name) ? this.headers[name.toLowerCase()] : null) ?? null
    );
  }
}

/** Keeps a failure's body small: it is journaled. */
function clip(body: unknown): unknown {
  if (typeof body === 'string') return body.length > 2048 ? `${body.slice(0, 2048)}…` : body;
  if (body === null || typeof body !== 'object') return body;
  const text = JSON.stringify(body);
  return text.length > 2048 ? `${text.slice(0, 2048)}…` : body;
}
