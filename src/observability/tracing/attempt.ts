import {
  context as otelContext,
  ROOT_CONTEXT,
  SpanKind,
  trace,
  type Context,
  type Span,
} from '@opentelemetry/api';
import type { ErrorInfo } from '../../core/errors.js';
import { decodeTrace, encodeTrace } from './traceparent.js';
import { keelTracer, recordError } from './tracer.js';

/** What an attempt's span needs to know of its invocation (an `InvocationRow`'s fields). */
export interface TracedInvocation {
  id: string;
  service: string;
  handler: string;
  key: string;
  attempt: number;
  trace?: string;
}

/**
 * Span kinds of invocations started without a stored trace context (a request without a
 * `traceparent`), by row: admission notes them, the first attempt reads them. Not stored:
 * that attempt stores its own span as the invocation's trace (see {@link AttemptTrace.rootTrace}).
 */
const rootKinds = new WeakMap<object, SpanKind>();

/** Notes the span kind of a new invocation that has no trace context yet. */
export function noteRootKind(row: object, kind: SpanKind): void {
  rootKinds.set(row, kind);
}

/**
 * The spans of one attempt of one invocation: the attempt's span (`{service}/{handler}`), child
 * spans for the live work of the attempt (steps, calls, sleeps, awakeable and promise waits),
 * and the trace context its calls and sends hand to the invocations they start. Entries an
 * attempt replays from the journal get no span: only the engine's live paths call it.
 *
 * Without an SDK, the spans are the API's non-recording ones: each costs an allocation, and
 * nothing builds attributes (`isRecording()` is false); a stored parent's context still passes
 * through to callees.
 */
export class AttemptTrace {
  readonly span: Span;
  readonly context: Context;
  /** Open spans of waits (sleep, call, awakeable, promise), by journal index. */
  private waits: Map<number, Span> | undefined;
  private ended = false;
  /** The `trace` to store for an invocation that had none, once (see {@link rootTrace}). */
  private root: string | undefined;

  constructor(inv: TracedInvocation) {
    const stored = decodeTrace(inv.trace);
    const kind = stored?.kind ?? rootKinds.get(inv) ?? SpanKind.INTERNAL;
    const parent = stored ? trace.setSpanContext(ROOT_CONTEXT, stored.parent) : ROOT_CONTEXT;
    this.span = keelTracer().startSpan(`${inv.service}/${inv.handler}`, { kind }, parent);
    this.context = trace.setSpan(parent, this.span);
    if (this.span.isRecording()) {
      this.span.setAttributes({
        'keel.invocation.id': inv.id,
        'keel.service': inv.service,
        'keel.handler': inv.handler,
        'keel.key': inv.key,
        'keel.attempt': inv.attempt,
      });
      if (!stored) this.root = encodeTrace({ parent: this.span.spanContext(), kind });
    }
  }

  /**
   * For an invocation started without a trace context: the `trace` to store, so that its later
   * attempts (after a suspension, a retry, in another process) join this attempt's trace.
   * Returned once; undefined when the invocation has one or nothing records.
   */
  rootTrace(): string | undefined {
    const r = this.root;
    this.root = undefined;
    return r;
  }

  /** Runs the handler (or anything of the attempt) with the attempt's span active. */
  run<T>(fn: () => T): T {
    return otelContext.with(this.context, fn);
  }

  /** Runs a live step body (`ctx.run`) in a child span named after the step. */
  async step(index: number, name: string, fn: () => unknown): Promise<unknown> {
    if (!this.span.isRecording()) return otelContext.with(this.context, fn);
    const span = keelTracer().startSpan(
      name,
      {
        kind: SpanKind.INTERNAL,
        attributes: { 'keel.step.index': index, 'keel.step.kind': 'run' },
      },
      this.context,
    );
    try {
      return await otelContext.with(trace.setSpan(this.context, span), fn);
    } catch (err) {
      recordError(span, err);
      throw err;
    } finally {
      span.end();
    }
  }

  /**
   * Starts the span of a wait that the journal entry at `index` completes (`settle`): a sleep,
   * an awakeable, a durable promise.
   */
  wait(
    index: number,
    name: string,
    kind: 'sleep' | 'awakeable' | 'promise',
    detail?: string,
  ): void {
    if (!this.span.isRecording() || this.ended) return;
    const span = keelTracer().startSpan(
      name,
      {
        kind: SpanKind.INTERNAL,
        attributes: {
          'keel.step.index': index,
          'keel.step.kind': kind,
          ...(detail === undefined ? {} : { [`keel.${kind}`]: detail }),
        },
      },
      this.context,
    );
    (this.waits ??= new Map()).set(index, span);
  }

  /**
   * Starts the CLIENT span of a call to `service/handler` and returns the `trace` to store with
   * the callee, which becomes the span's child (kind server). Without an SDK the attempt's own
   * context (a stored parent's, passed through) is handed on.
   */
  call(index: number, service: string, handler: string, key: string): string | undefined {
    if (!this.span.isRecording() || this.ended) return this.handOn(SpanKind.SERVER);
    const span = keelTracer().startSpan(
      `${service}/${handler}`,
      {
        kind: SpanKind.CLIENT,
        attributes: {
          'keel.step.index': index,
          'keel.step.kind': 'call',
          'keel.callee.service': service,
          'keel.callee.handler': handler,
          'keel.callee.key': key,
        },
      },
      this.context,
    );
    (this.waits ??= new Map()).set(index, span);
    return encodeTrace({ parent: span.spanContext(), kind: SpanKind.SERVER });
  }

  /**
   * A one-way send: a PRODUCER span, ended at once, and the `trace` for the started invocation
   * (its child, kind consumer).
   */
  send(index: number, service: string, handler: string, key: string): string | undefined {
    if (!this.span.isRecording() || this.ended) return this.handOn(SpanKind.CONSUMER);
    const span = keelTracer().startSpan(
      `${service}/${handler}`,
      {
        kind: SpanKind.PRODUCER,
        attributes: {
          'keel.step.index': index,
          'keel.step.kind': 'send',
          'keel.callee.service': service,
          'keel.callee.handler': handler,
          'keel.callee.key': key,
        },
      },
      this.context,
    );
    span.end();
    return encodeTrace({ parent: span.spanContext(), kind: SpanKind.CONSUMER });
  }

  /** The attempt's context for a callee when nothing records: passes a valid parent through. */
  private handOn(kind: SpanKind): string | undefined {
    const sc = this.span.spanContext();
    return trace.isSpanContextValid(sc) ? encodeTrace({ parent: sc, kind }) : undefined;
  }

  /** The entry at `index` completed (a timer fired, a callee answered, ...): ends its span. */
  settle(index: number, error: ErrorInfo | undefined): void {
    const span = this.waits?.get(index);
    if (!span) return;
    this.waits!.delete(index);
    if (error) recordError(span, Object.assign(new Error(error.message), { code: error.code }));
    span.end();
  }

  /**
   * Ends the attempt: with the handler's outcome (`error` set when it failed), or without one
   * when the attempt was abandoned (suspended, retried, stopped). Open waits end with it,
   * marked `keel.suspended`: they go on in storage, not in this attempt.
   */
  end(outcome?: { output: unknown } | { error: unknown }): void {
    if (this.ended) return;
    this.ended = true;
    if (this.waits) {
      for (const span of this.waits.values()) {
        if (span.isRecording()) span.setAttribute('keel.suspended', true);
        span.end();
      }
      this.waits = undefined;
    }
    if (outcome !== undefined && 'error' in outcome) recordError(this.span, outcome.error);
    else if (outcome === undefined && this.span.isRecording())
      this.span.setAttribute('keel.suspended', true);
    this.span.end();
  }
}
