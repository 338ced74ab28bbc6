import { SpanKind, TraceFlags } from '@opentelemetry/api';
import { describe, expect, it } from 'vitest';
import { decodeTrace, encodeTrace, formatTraceparent, parseTraceparent } from './traceparent.js';

const TP = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

describe('W3C traceparent', () => {
  it('parses a valid header into a remote span context, with its tracestate', () => {
    const ctx = parseTraceparent(TP, 'a=1, b=two words');
    expect(ctx).toMatchObject({
      traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
      spanId: '00f067aa0ba902b7',
      traceFlags: TraceFlags.SAMPLED,
      isRemote: true,
    });
    expect(ctx?.traceState?.get('b')).toBe('two words');
    expect(ctx?.traceState?.serialize()).toBe('a=1,b=two words');
    expect(formatTraceparent(ctx!)).toBe(TP);
  });

  it('ignores malformed headers, as the specification says', () => {
    for (const bad of [
      undefined,
      '',
      'garbage',
      TP.toUpperCase(),
      TP.replace('-01', '-1'),
      `ff${TP.slice(2)}`, // version ff is invalid
      `${TP}-extra`, // version 00 has four fields
      '00-00000000000000000000000000000000-00f067aa0ba902b7-01', // all-zero trace id
      '00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01', // all-zero span id
    ])
      expect(parseTraceparent(bad), String(bad)).toBeUndefined();
    // A later version may add fields: the first four are read.
    expect(parseTraceparent(`01${TP.slice(2)}-more`)?.spanId).toBe('00f067aa0ba902b7');
    // Unsampled stays unsampled; unknown flag bits are dropped.
    expect(parseTraceparent(TP.replace(/-01$/, '-00'))?.traceFlags).toBe(TraceFlags.NONE);
    expect(parseTraceparent(TP.replace(/-01$/, '-ff'))?.traceFlags).toBe(TraceFlags.SAMPLED);
  });

  it('stores a parent and a span kind, with or without a tracestate, and reads them back', () => {
    const parent = parseTraceparent(TP, 'vendor=x y')!;
    const stored = encodeTrace({ parent, kind: SpanKind.CONSUMER });
    expect(stored).toBe(`${TP} c vendor=x y`);
    const back = decodeTrace(stored)!;
    expect(back.kind).toBe(SpanKind.CONSUMER);
    expect(formatTraceparent(back.parent)).toBe(TP);
    expect(back.parent.traceState?.get('vendor')).toBe('x y');
    const plain = encodeTrace({ parent: parseTraceparent(TP)!, kind: SpanKind.SERVER });
    expect(plain).toBe(`${TP} s`);
    expect(decodeTrace(plain)).toMatchObject({ kind: SpanKind.SERVER });
    expect(decodeTrace(plain)!.parent.traceState).toBeUndefined();
    // A bare traceparent (written by hand, say) is an internal parent; garbage is none.
    expect(decodeTrace(TP)?.kind).toBe(SpanKind.INTERNAL);
    expect(decodeTrace('nonsense')).toBeUndefined();
    expect(decodeTrace(undefined)).toBeUndefined();
  });
});
