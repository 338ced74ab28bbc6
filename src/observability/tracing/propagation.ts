import {
  context as otelContext,
  propagation,
  trace,
  type Context,
  type SpanContext,
} from '@opentelemetry/api';
import { formatTraceparent, parseTraceparent } from './traceparent.js';

/**
 * Reading and writing trace context on the wire. When an SDK registered a propagator (the
 * Node SDK registers W3C trace context and baggage), it is used; otherwise the API's propagator
 * is a no-op, and Keel reads and writes the W3C `traceparent`/`tracestate` headers itself, so a
 * trace started by a client reaches Keel's invocations, and leaves Keel in its outgoing
 * requests, with or without an SDK.
 */

/** Headers as Node gives them (lower-case names). */
export type HeaderBag = Readonly<Record<string, string | string[] | undefined>>;

/** True when an SDK registered a propagator (the API's default one has no fields). */
function globalPropagator(): boolean {
  return propagation.fields().length > 0;
}

function first(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/**
 * The remote span context in incoming headers (`traceparent`, `tracestate`), or undefined.
 *
 * @example
 * ```ts
 * const parent = extractSpanContext(req.headers);
 * ```
 */
export function extractSpanContext(headers: HeaderBag): SpanContext | undefined {
  if (headers.traceparent === undefined) {
    if (!globalPropagator()) return undefined;
  } else if (!globalPropagator()) {
    return parseTraceparent(first(headers.traceparent), first(headers.tracestate));
  }
  const ctx = propagation.extract(otelContext.active(), headers, {
    keys: (c) => Object.keys(c),
    get: (c, key) => c[key.toLowerCase()],
  });
  const sc = trace.getSpanContext(ctx);
  return sc && trace.isSpanContextValid(sc) ? sc : undefined;
}

/**
 * Writes the trace context of `ctx` (default: the active one) into `carrier` through `set`:
 * the registered propagator's fields, or `traceparent`/`tracestate`. Writes nothing when there
 * is no valid span context.
 *
 * @example
 * ```ts
 * injectContext(headers, (h, k, v) => (h[k] = v));
 * ```
 */
export function injectContext<C>(
  carrier: C,
  set: (carrier: C, key: string, value: string) => void,
  ctx: Context = otelContext.active(),
): void {
  if (globalPropagator()) {
    propagation.inject(ctx, carrier, { set });
    return;
  }
  const sc = trace.getSpanContext(ctx);
  if (!sc || !trace.isSpanContextValid(sc)) return;
  set(carrier, 'traceparent', formatTraceparent(sc));
  const state = sc.traceState?.serialize();
  if (state) set(carrier, 'tracestate', state);
}

/** {@link injectContext} into a plain header record. */
export function injectHeaders(headers: Record<string, string>, ctx?: Context): void {
  injectContext(headers, (h, k, v) => (h[k] = v), ctx);
}

/**
 * The context to run a consumer under, from a message's headers: the active one with the
 * remote span context as its parent, or the active one unchanged when there is none.
 */
export function contextFromHeaders(headers: HeaderBag): Context {
  const sc = extractSpanContext(headers);
  const active = otelContext.active();
  return sc ? trace.setSpanContext(active, sc) : active;
}
