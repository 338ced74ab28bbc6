import {
  context as otelContext,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Span,
  type Tracer,
} from '@opentelemetry/api';
import { injectContext } from './propagation.js';

/** The instrumentation scope's version: Keel's. */
export const KEEL_TRACER_VERSION = '0.1.0';

let tracer: Tracer | undefined;

/**
 * Keel's tracer, the API's proxy: until an SDK registers a provider, each span is the no-op
 * tracer's; once one does, the proxy binds to it, so an SDK registered after Keel was imported
 * is picked up. Kept, since `getTracer` allocates a proxy per call while no SDK is registered.
 */
export function keelTracer(): Tracer {
  return (tracer ??= trace.getTracer('keel', KEEL_TRACER_VERSION));
}

/** Marks a span failed: status ERROR with the error's message, and the exception event. */
export function recordError(span: Span, error: unknown): void {
  if (!span.isRecording()) return;
  const err =
    error instanceof Error
      ? error
      : new Error(typeof error === 'string' ? error : (JSON.stringify(error) ?? String(error)));
  span.recordException(err);
  span.setStatus({ code: SpanStatusCode.ERROR, message: err.message });
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string') span.setAttribute('keel.error.code', code);
}

/**
 * Runs `fn` inside a CLIENT span for one outgoing HTTP request, with the OpenTelemetry HTTP
 * semantic conventions: the span is named after the method, carries `http.request.method`,
 * `url.full`, `server.address`, `server.port` and, once answered, `http.response.status_code`
 * (status ERROR from 500 up, or when no answer came). The span's context is written with
 * `setHeader` (`traceparent`, see `injectContext`) before `fn` sends the headers, and the request runs
 * with the span active. With no trace to continue and no SDK, `fn` just runs.
 *
 * @example
 * ```ts
 * const res = await httpClientSpan('POST', url, (k, v) => (headers[k] = v), () => send(headers), (r) => r.status);
 * ```
 */
export async function httpClientSpan<T>(
  method: string,
  url: string,
  setHeader: (name: string, value: string) => void,
  fn: () => Promise<T>,
  /** The answer's status code, or why no answer came (a message). */
  statusOf: (result: T) => number | string,
  attributes?: Attributes,
): Promise<T> {
  const span = keelTracer().startSpan(method, { kind: SpanKind.CLIENT });
  if (!span.isRecording() && !trace.isSpanContextValid(span.spanContext())) return fn();
  const ctx = trace.setSpan(otelContext.active(), span);
  injectContext(setHeader, (set, k, v) => set(k, v), ctx);
  if (span.isRecording()) {
    span.setAttribute('http.request.method', method);
    span.setAttribute('url.full', redactUrl(url));
    try {
      const u = new URL(url);
      span.setAttribute('server.address', u.hostname);
      span.setAttribute(
        'server.port',
        u.port === '' ? (u.protocol === 'https:' ? 443 : 80) : Number(u.port),
      );
    } catch {
      // an unparsable URL fails the request itself; the span says so
    }
    if (attributes) span.setAttributes(attributes);
  }
  try {
    const result = await otelContext.with(ctx, fn);
    const status = statusOf(result);
    if (typeof status === 'string') {
      if (span.isRecording()) {
        span.setAttribute('error.type', 'no_answer');
        span.setStatus({ code: SpanStatusCode.ERROR, message: status });
      }
    } else if (span.isRecording()) {
      span.setAttribute('http.response.status_code', status);
      if (status >= 500) {
        span.setStatus({ code: SpanStatusCode.ERROR, message: `answered ${status}` });
        span.setAttribute('error.type', String(status));
      }
    }
    return result;
  } catch (err) {
    if (span.isRecording()) {
      const code = (err as { code?: unknown } | null)?.code;
      span.setAttribute(
        'error.type',
        typeof code === 'string' ? code : ((err as Error)?.name ?? 'Error'),
      );
    }
    recordError(span, err);
    throw err;
  } finally {
    span.end();
  }
}

/**
 * A URL as a span may show it: no user or password, and query values replaced (they carry
 * API keys and tokens often enough), as the semantic conventions recommend.
 */
export function redactUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return url.split('?')[0]!;
  }
  if (u.username !== '' || u.password !== '') {
    u.username = 'REDACTED';
    u.password = '';
  }
  if (u.search !== '') {
    const q = new URLSearchParams(u.search);
    const out = new URLSearchParams();
    for (const k of q.keys()) out.append(k, 'REDACTED');
    u.search = out.toString();
  }
  return u.toString();
}
