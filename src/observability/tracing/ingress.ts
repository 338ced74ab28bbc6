import { context, SpanKind, trace, type SpanContext } from '@opentelemetry/api';
import { extractSpanContext, type HeaderBag } from './propagation.js';
import { encodeTrace, formatTraceparent, parseTraceparent } from './traceparent.js';

/**
 * The trace fields of an invocation a request starts: the caller's span context from the
 * `traceparent`/`tracestate` headers (or the registered propagator's fields), stored as the
 * invocation's `trace`; the invocation's spans are kind server for an invoke, consumer for a
 * send. A missing or malformed `traceparent` starts a new trace.
 *
 * @example
 * ```ts
 * const admit = { ...target, input, ...traceOfRequest(req.headers, false) };
 * ```
 */
export function traceOfRequest(
  headers: HeaderBag,
  send: boolean,
): { trace?: string; spanKind: SpanKind } {
  const spanKind = send ? SpanKind.CONSUMER : SpanKind.SERVER;
  const parent = extractSpanContext(headers);
  return parent ? { trace: encodeTrace({ parent, kind: spanKind }), spanKind } : { spanKind };
}

/**
 * The trace fields of an invocation started through `Engine.invoke`/`Engine.send`: the given
 * `traceparent`/`tracestate`, or else the span active where the engine was called (a user's
 * instrumented HTTP handler), or else none (the first attempt then roots a new trace).
 *
 * @example
 * ```ts
 * const admit = { ...target, input, ...traceOfInvoke({ traceparent }, true) };
 * ```
 */
export function traceOfInvoke(
  req: { traceparent?: string; tracestate?: string },
  send: boolean,
): { trace?: string; spanKind: SpanKind } {
  const spanKind = send ? SpanKind.CONSUMER : SpanKind.SERVER;
  let parent: SpanContext | undefined;
  if (req.traceparent !== undefined) parent = parseTraceparent(req.traceparent, req.tracestate);
  else {
    const active = trace.getSpanContext(context.active());
    if (active && trace.isSpanContextValid(active)) parent = active;
  }
  return parent ? { trace: encodeTrace({ parent, kind: spanKind }), spanKind } : { spanKind };
}

/**
 * The W3C trace context of a broker message's headers (the registered propagator's, or
 * `traceparent`/`tracestate`), as `Engine.send` takes it; empty when it carries none.
 */
export function traceHeadersOf(headers: HeaderBag): { traceparent?: string; tracestate?: string } {
  const sc = extractSpanContext(headers);
  if (!sc) return {};
  const state = sc.traceState?.serialize();
  return state
    ? { traceparent: formatTraceparent(sc), tracestate: state }
    : { traceparent: formatTraceparent(sc) };
}
