/**
 * One request to the ingress, with the client's retries. Built on the global `fetch` alone (no
 * Node module), so the same code runs in Node, browsers, Deno and Bun.
 *
 * Why only idempotent requests are retried: a connection reset or a 502 can come after the app
 * has started the invocation, so repeating a plain POST could run it twice. With an
 * `Idempotency-Key` (or a workflow key, or a read) the repeat answers the same invocation.
 */
import { TerminalError } from '../core/errors.js';
import { resolveRetry, retryDelay, type ResolvedRetryPolicy } from '../core/retry.js';
import {
  errorOfAnswer,
  NetworkError,
  TRANSIENT_STATUSES,
  UnexpectedAnswerError,
} from './errors.js';
import type { RetryInfo } from './types.js';

/**
 * The client's default retry policy: 5 attempts, from 100 ms doubling to at most 5 s, ±20%
 * jitter, a `Retry-After` honoured up to 30 s. Shorter than the engine's (a caller is waiting).
 */
export const CLIENT_RETRY: ResolvedRetryPolicy = resolveRetry({
  maxAttempts: 5,
  initialInterval: 100,
  factor: 2,
  maxInterval: 5_000,
  jitter: 0.2,
  respectRetryAfter: true,
  maxRetryAfter: 30_000,
});

/** What every request of one client shares. */
export interface Transport {
  /** The base URL, without a trailing slash. */
  url: string;
  headers: Readonly<Record<string, string>>;
  /** `undefined`: nothing is retried. */
  retry: ResolvedRetryPolicy | undefined;
  onRetry: ((info: RetryInfo) => void) | undefined;
  fetch: typeof globalThis.fetch;
}

/** One request. */
export interface Exchange {
  method: 'GET' | 'POST';
  /** Path and query, starting with `/`, already encoded. */
  path: string;
  /** The JSON text of the body, if any. */
  body?: string;
  idempotencyKey?: string;
  /** True when repeating it cannot do anything twice: only then is it retried. */
  idempotent: boolean;
  signal?: AbortSignal;
}

/** A successful answer (2xx) with its JSON body parsed. */
export interface Answer {
  status: number;
  body: unknown;
}

type Attempt = { ok: true; answer: Answer } | { ok: false; error: Error; retryAfterMs?: number };

/**
 * Sends `x` and resolves with its 2xx answer; rejects with the answer's error, a
 * {@link NetworkError}, or the signal's reason when aborted.
 */
export async function exchange(t: Transport, x: Exchange): Promise<Answer> {
  // Built once, outside the attempts: a key fetch refuses (a line break, a character beyond
  // Latin-1) is the caller's mistake, never mistaken for a network error and retried.
  const headers = new Headers(t.headers);
  if (x.body !== undefined) headers.set('content-type', 'application/json');
  if (x.idempotencyKey !== undefined) {
    try {
      headers.set('idempotency-key', x.idempotencyKey);
    } catch (err) {
      // The code and status the ingress gives a key it refuses.
      throw new TerminalError(
        `the idempotency key cannot be sent as an HTTP header (${(err as Error).message}): use ASCII, e.g. a UUID`,
        { code: 'invalid_idempotency_key', status: 400 },
      );
    }
  }
  const policy = x.idempotent ? t.retry : undefined;
  for (let attempt = 1; ; attempt++) {
    x.signal?.throwIfAborted();
    const r = await attemptOnce(t, x, headers, attempt);
    if (r.ok) return r.answer;
    const delay =
      policy === undefined ? undefined : retryDelay(policy, attempt, Math.random(), r.retryAfterMs);
    if (delay === undefined) throw r.error;
    t.onRetry?.({ method: x.method, path: x.path, attempt, delayMs: delay, error: r.error });
    await sleep(delay, x.signal);
  }
}

async function attemptOnce(
  t: Transport,
  x: Exchange,
  headers: Headers,
  attempt: number,
): Promise<Attempt> {
  let status: number;
  let text: string;
  let retryAfter: string | null;
  try {
    const res = await t.fetch(t.url + x.path, {
      method: x.method,
      headers,
      ...(x.body === undefined ? {} : { body: x.body }),
      ...(x.signal ? { signal: x.signal } : {}),
    });
    status = res.status;
    retryAfter = res.headers.get('retry-after');
    // Read inside the try: a connection cut while the body arrives is a network error too.
    text = await res.text();
  } catch (err) {
    if (x.signal?.aborted) throw x.signal.reason;
    return {
      ok: false,
      error: new NetworkError(networkMessage(t, x, attempt, err), attempt, err),
    };
  }
  if (status >= 200 && status < 300) return { ok: true, answer: { status, body: parse(text) } };
  const error = errorOfAnswer(status, parse(text, true), `${x.method} ${x.path}`);
  if (!TRANSIENT_STATUSES.has(status)) throw error;
  const retryAfterMs = retryAfterOf(retryAfter);
  return { ok: false, error, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) };
}

/** The JSON of a body (`undefined` when empty); `lenient` gives `undefined` for non-JSON too. */
function parse(text: string, lenient = false): unknown {
  if (text === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    if (lenient) return undefined;
    throw new UnexpectedAnswerError(
      `the answer is not JSON (it starts with ${JSON.stringify(text.slice(0, 40))}): is the URL a Keel ingress?`,
      502,
    );
  }
}

function networkMessage(t: Transport, x: Exchange, attempts: number, cause: unknown): string {
  const c = cause as {
    message?: string;
    code?: string;
    cause?: { message?: string; code?: string };
  };
  const inner = c?.cause ?? c;
  const detail = [inner?.code, inner?.message ?? c?.message].filter(Boolean).join(': ');
  const tries = `${attempts} attempt${attempts === 1 ? '' : 's'}`;
  const why = x.idempotent
    ? ''
    : '; not retried, since it may have reached the app: give an idempotencyKey to make it safe to retry';
  return `${x.method} ${x.path}: no answer from ${t.url} after ${tries} (${detail || 'fetch failed'})${why}`;
}

/** `Retry-After` as milliseconds: seconds, or an HTTP date. */
function retryAfterOf(value: string | null): number | undefined {
  if (value === null) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

/** Waits `ms`, or rejects with the signal's reason as soon as it aborts. */
function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason as Error);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal!.reason as Error);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
