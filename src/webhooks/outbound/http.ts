/**
 * The HTTP side of a delivery attempt: one POST through the shared outbound client
 * (`src/http/client.ts`) with its address guard on, mapped to the attempt's outcome.
 *
 * The client checks the URL on every attempt (DNS can change between retries), connects only to
 * the addresses it vetted, keeps a keep-alive pool per endpoint origin, keeps the first
 * `bodyLimit` bytes of the answer and never follows redirects (a 3xx is a failed attempt).
 */
import { HttpClient } from '../../http/client.js';
import type { Resolver } from '../ssrf.js';
import { httpClientSpan } from '../../observability/tracing/tracer.js';

/** What came back from one POST. */
export interface HttpOutcome {
  status?: number;
  retryAfter?: string;
  /** The start of the response body, truncated to the limit. */
  body?: string;
  error?: string;
  errorCode?: string;
  durationMs: number;
}

export interface SenderOptions {
  allow: readonly string[];
  resolve?: Resolver;
  timeoutMs: number;
  bodyLimit: number;
  connections: number;
  /** How long a resolved name is reused before asking DNS again. */
  dnsCacheMs?: number;
}

const USER_AGENT = 'Keel-Webhooks/1';

/**
 * Posts deliveries.
 *
 * @example
 * ```ts
 * const sender = new Sender({ allow: [], timeoutMs: 30_000, bodyLimit: 4096, connections: 16 });
 * const outcome = await sender.post(url, ['webhook-id', id], body); // never throws
 * await sender.close();
 * ```
 */
export class Sender {
  private readonly client: HttpClient;

  constructor(options: SenderOptions) {
    this.client = new HttpClient({
      connections: options.connections,
      keepAliveMs: 4_000,
      connectTimeoutMs: options.timeoutMs,
      timeoutMs: options.timeoutMs,
      bodyLimit: options.bodyLimit,
      guard: {
        allow: options.allow,
        noun: 'webhook',
        ...(options.resolve ? { resolve: options.resolve } : {}),
        ...(options.dnsCacheMs === undefined ? {} : { dnsCacheMs: options.dnsCacheMs }),
      },
    });
  }

  /**
   * POSTs `body` to `url` with `headers` (name, value, name, value, ...: the signature headers;
   * `content-type` and `user-agent` are appended to the array); never throws.
   */
  post(url: string, headers: string[], body: string): Promise<HttpOutcome> {
    headers.push('content-type', 'application/json', 'user-agent', USER_AGENT);
    // A CLIENT span, whose `traceparent` the receiver gets (added after the signature headers,
    // which sign the body and the webhook id only).
    return httpClientSpan(
      'POST',
      url,
      (name, value) => headers.push(name, value),
      () => this.exchange(url, headers, body),
      (o) => o.status ?? `${o.errorCode ?? 'failed'}: ${o.error ?? 'no answer'}`,
      { 'keel.webhook': true },
    );
  }

  private exchange(url: string, headers: string[], body: string): Promise<HttpOutcome> {
    return this.client.exchange({ method: 'POST', url, headers, body }).then((r) => {
      if (!r.ok) return { error: r.message, errorCode: r.code, durationMs: r.durationMs };
      const o: HttpOutcome = { status: r.status, durationMs: r.durationMs };
      const retryAfter = r.headers['retry-after'];
      if (retryAfter !== undefined) o.retryAfter = retryAfter;
      if (r.body.length > 0) o.body = r.body.toString('utf8');
      return o;
    });
  }

  /** Aborts the deliveries in flight (they are retried by their schedule) and closes the pools. */
  close(): Promise<void> {
    return this.client.close({ abort: true });
  }
}
