import { context as otelContext, SpanKind, trace } from '@opentelemetry/api';
import { injectContext } from './propagation.js';
import { keelTracer, recordError } from './tracer.js';

/**
 * Runs `send` (a publish to a broker) in a PRODUCER span named `send {destination}`, with the
 * messaging semantic conventions (`messaging.system`, `messaging.destination.name`,
 * `messaging.operation.type`, `messaging.message.id`), and returns the headers to publish: a copy
 * of `headers` with the span's `traceparent` (and `tracestate`) added, so the consumer's
 * invocation continues the trace. With no trace to continue and no SDK, `headers` as they are.
 *
 * @example
 * ```ts
 * await producerSpan('rabbitmq', 'orders', id, headers, (h) => channel.publish(..., { headers: h }));
 * ```
 */
export async function producerSpan<T>(
  system: string,
  destination: string,
  messageId: string,
  headers: Record<string, string>,
  send: (headers: Record<string, string>) => Promise<T>,
): Promise<T> {
  const span = keelTracer().startSpan(`send ${destination}`, { kind: SpanKind.PRODUCER });
  if (!span.isRecording() && !trace.isSpanContextValid(span.spanContext())) return send(headers);
  if (span.isRecording()) {
    span.setAttributes({
      'messaging.system': system,
      'messaging.destination.name': destination,
      'messaging.operation.type': 'send',
      'messaging.message.id': messageId,
    });
  }
  const ctx = trace.setSpan(otelContext.active(), span);
  const out = { ...headers };
  injectContext(out, (h, k, v) => (h[k] = v), ctx);
  try {
    return await otelContext.with(ctx, () => send(out));
  } catch (err) {
    recordError(span, err);
    throw err;
  } finally {
    span.end();
  }
}
