import {
  isSpanContextValid,
  SpanKind,
  TraceFlags,
  type SpanContext,
  type TraceState,
} from '@opentelemetry/api';

/**
 * W3C Trace Context (https://www.w3.org/TR/trace-context/) without a propagator: the API's
 * default propagator is a no-op until an SDK registers one, and Keel must accept a
 * `traceparent` at the ingress and store it with the invocation either way. A traceparent is
 * 55 characters: `version-traceid-parentid-flags`, lower-case hex.
 */

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;

/**
 * The span context a `traceparent` header names, or undefined when it is malformed (ignored,
 * as the W3C specification says: a new trace starts instead).
 *
 * @example
 * ```ts
 * parseTraceparent('00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01');
 * // { traceId: '0af7...', spanId: 'b7ad...', traceFlags: 1, isRemote: true }
 * ```
 */
export function parseTraceparent(
  header: string | undefined,
  tracestate?: string,
): SpanContext | undefined {
  if (header === undefined || header.length < 55) return undefined;
  const m = TRACEPARENT.exec(header.trim());
  if (!m) return undefined;
  const [, version, traceId, spanId, flags, rest] = m;
  // Version ff is invalid; version 00 has exactly four fields (later versions may add more).
  if (version === 'ff' || (version === '00' && rest !== undefined)) return undefined;
  const ctx: SpanContext = {
    traceId: traceId!,
    spanId: spanId!,
    traceFlags: parseInt(flags!, 16) & TraceFlags.SAMPLED,
    isRemote: true,
  };
  if (!isSpanContextValid(ctx)) return undefined;
  if (tracestate !== undefined && tracestate.trim() !== '') ctx.traceState = stateOf(tracestate);
  return ctx;
}

/** The `traceparent` header of a span context. */
export function formatTraceparent(ctx: SpanContext): string {
  const flags = (ctx.traceFlags & TraceFlags.SAMPLED).toString(16).padStart(2, '0');
  return `00-${ctx.traceId}-${ctx.spanId}-${flags}`;
}

/** What an invocation's stored `trace` holds: its parent span context and its span kind. */
export interface StoredTrace {
  parent: SpanContext;
  kind: SpanKind;
}

const KIND_LETTER: Record<number, string> = {
  [SpanKind.SERVER]: 's',
  [SpanKind.CONSUMER]: 'c',
  [SpanKind.INTERNAL]: 'i',
};
const LETTER_KIND: Record<string, SpanKind> = {
  s: SpanKind.SERVER,
  c: SpanKind.CONSUMER,
  i: SpanKind.INTERNAL,
};

/**
 * Encodes an invocation's `trace` column: `<traceparent> <kind>[ <tracestate>]`, where kind is
 * `s` (server: started by the ingress or a call), `c` (consumer: a send or a broker message) or
 * `i`. The traceparent has a fixed length, so each part sits at a fixed position and a
 * tracestate (which may hold spaces) needs no escaping.
 *
 * @example
 * ```ts
 * encodeTrace({ parent, kind: SpanKind.SERVER }); // '00-…-01 s'
 * ```
 */
export function encodeTrace(t: StoredTrace): string {
  const state = t.parent.traceState?.serialize();
  const base = `${formatTraceparent(t.parent)} ${KIND_LETTER[t.kind] ?? 'i'}`;
  return state ? `${base} ${state}` : base;
}

/** Decodes {@link encodeTrace}'s string; a bare traceparent is accepted (kind internal). */
export function decodeTrace(stored: string | undefined): StoredTrace | undefined {
  if (stored === undefined) return undefined;
  const parent = parseTraceparent(
    stored.slice(0, 55),
    stored.length > 58 ? stored.slice(58) : undefined,
  );
  if (!parent) return undefined;
  return { parent, kind: LETTER_KIND[stored[56] ?? 'i'] ?? SpanKind.INTERNAL };
}

/**
 * A minimal W3C tracestate: the list as received, kept in order, for forwarding. Keel never
 * edits it, so `set`/`unset` return copies without interpretation beyond the list syntax.
 */
class ListTraceState implements TraceState {
  constructor(private readonly entries: ReadonlyArray<readonly [string, string]>) {}
  get(key: string): string | undefined {
    return this.entries.find(([k]) => k === key)?.[1];
  }
  set(key: string, value: string): TraceState {
    return new ListTraceState([[key, value], ...this.entries.filter(([k]) => k !== key)]);
  }
  unset(key: string): TraceState {
    return new ListTraceState(this.entries.filter(([k]) => k !== key));
  }
  serialize(): string {
    return this.entries.map(([k, v]) => `${k}=${v}`).join(',');
  }
}

/** At most 32 list members, as the specification allows; malformed members are dropped. */
function stateOf(header: string): TraceState {
  const entries: Array<[string, string]> = [];
  for (const part of header.split(',')) {
    const at = part.indexOf('=');
    if (at <= 0) continue;
    const k = part.slice(0, at).trim();
    const v = part.slice(at + 1).trim();
    if (k === '' || v === '' || entries.length >= 32) continue;
    entries.push([k, v]);
  }
  return new ListTraceState(entries);
}
