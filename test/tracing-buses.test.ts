import { context, SpanKind, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
} from '@opentelemetry/sdk-trace-base';
import { connect, type JetStreamManager, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBuses, publish, type BusMessage } from '../src/buses/index.js';
import { service, type Definition, type Engine } from '../src/index.js';
import { reachable, runId, sqliteEngines, until } from './buses/helpers.js';

/**
 * Trace context through a broker (the NATS JetStream server the bus tests use): a handler's
 * publish carries its span's `traceparent` in the message headers, and the subscription's
 * delivery invocation, with the handler it calls, continues that trace.
 */
const URL_ = process.env.KEEL_TEST_NATS_URL ?? 'nats://127.0.0.1:4222';
const up = await reachable(URL_, 4222);
if (!up) console.log(`SKIPPED test/tracing-buses.test.ts: NATS unreachable at ${URL_}`);

const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const CLIENT_SPAN = '00f067aa0ba902b7';
const base = runId();
const STREAM = `${base}_TR`;

const spans = (): ReadableSpan[] => exporter.getFinishedSpans();
const named = (name: string): ReadableSpan[] => spans().filter((s) => s.name === name);

describe.skipIf(!up)('tracing through a broker', () => {
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  beforeAll(async () => {
    trace.setGlobalTracerProvider(provider);
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    nc = await connect({ servers: new URL(URL_).host });
    jsm = await nc.jetstreamManager();
    await jsm.streams.add({ name: STREAM, subjects: [`${base}.tr.>`] });
  });
  afterAll(async () => {
    trace.disable();
    context.disable();
    await provider.shutdown();
    if (!jsm) return;
    await jsm.streams.delete(STREAM).catch(() => undefined);
    await nc.close();
  });

  it('publishes the span context and continues it in the subscriber', async () => {
    const got: string[] = [];
    const Inbox = service({
      name: 'TracedInbox',
      handlers: { take: async (_ctx, m: BusMessage<{ n: number }>) => void got.push(m.id) },
    });
    const subject = `${base}.tr.orders`;
    const Emitter = service({
      name: 'TracedEmitter',
      handlers: {
        emit: async (ctx, n: number) => (await publish(ctx, 'nats', subject, { n })).messageId,
      },
    });
    const buses = createBuses({
      nats: { url: URL_ },
      subscriptions: [
        {
          name: `${base}-orders`,
          bus: 'nats',
          stream: STREAM,
          subject,
          durable: `${base}_orders`,
          target: { definition: Inbox, handler: 'take' },
        },
      ],
    });
    const { make, cleanup } = sqliteEngines([Inbox, Emitter] as Definition[], () => [buses]);
    let engine: Engine | undefined;
    try {
      engine = await make();
      await engine.invoke({
        service: 'TracedEmitter',
        handler: 'emit',
        input: 1,
        traceparent: `00-${TRACE_ID}-${CLIENT_SPAN}-01`,
      });
      await until('the message is handled', () => got.length === 1);
      await until('the subscriber span ends', () => named('TracedInbox/take').length === 2);
    } finally {
      await engine?.stop();
      cleanup();
    }
    const send = named(`send ${subject}`);
    expect(send).toHaveLength(1);
    expect(send[0]!.kind).toBe(SpanKind.PRODUCER);
    expect(send[0]!.attributes['messaging.system']).toBe('nats');
    // The message carries the publish span's context.
    const m = await jsm.streams.getMessage(STREAM, { last_by_subj: subject });
    expect(m.header.get('traceparent')).toBe(`00-${TRACE_ID}-${send[0]!.spanContext().spanId}-01`);
    // The delivery invocation is the publish span's child (a consumer), and calls the handler.
    for (const s of spans()) expect(s.spanContext().traceId, s.name).toBe(TRACE_ID);
    const delivery = spans().find(
      (s) =>
        s.kind === SpanKind.CONSUMER &&
        s.parentSpanContext?.spanId === send[0]!.spanContext().spanId,
    );
    expect(delivery?.name).toMatch(/\/deliver$/);
    const call = named('TracedInbox/take').find((s) => s.kind === SpanKind.CLIENT)!;
    expect(call.parentSpanContext?.spanId).toBe(delivery!.spanContext().spanId);
    const take = named('TracedInbox/take').find((s) => s.kind === SpanKind.SERVER)!;
    expect(take.parentSpanContext?.spanId).toBe(call.spanContext().spanId);
  }, 60_000);
});
