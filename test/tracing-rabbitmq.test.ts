import { context, SpanKind, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
} from '@opentelemetry/sdk-trace-base';
import * as amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBuses, publish, type BusMessage } from '../src/buses/index.js';
import { service, type Definition, type Engine } from '../src/index.js';
import { reachable, runId, sqliteEngines, until } from './buses/helpers.js';

/**
 * Trace context through RabbitMQ (the broker the bus tests use): a handler's publish carries its
 * span's `traceparent` in the AMQP message headers, and the subscription's delivery invocation,
 * with the handler it calls, continues that trace.
 */
const URL_ = process.env.KEEL_TEST_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const up = await reachable(URL_, 5672);
if (!up) console.log(`SKIPPED test/tracing-rabbitmq.test.ts: RabbitMQ unreachable at ${URL_}`);

const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const CLIENT_SPAN = '00f067aa0ba902b7';
const base = runId();
const EXCHANGE = `${base}.tr`;
const QUEUE = `${base}.tr.orders`;
/** The test's own queue on the same binding: what the broker got, headers included. */
const WATCH = `${base}.tr.watch`;
const ROUTING_KEY = 'orders.created';

const spans = (): ReadableSpan[] => exporter.getFinishedSpans();
const named = (name: string): ReadableSpan[] => spans().filter((s) => s.name === name);

describe.skipIf(!up)('tracing through RabbitMQ', () => {
  let conn: amqp.ChannelModel;
  let ch: amqp.Channel;
  beforeAll(async () => {
    trace.setGlobalTracerProvider(provider);
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    conn = await amqp.connect(URL_);
    ch = await conn.createChannel();
    await ch.assertExchange(EXCHANGE, 'topic', { durable: true });
    await ch.assertQueue(WATCH, { durable: true });
    await ch.bindQueue(WATCH, EXCHANGE, ROUTING_KEY);
  });
  afterAll(async () => {
    trace.disable();
    context.disable();
    await provider.shutdown();
    if (!ch) return;
    for (const q of [QUEUE, WATCH]) await ch.deleteQueue(q).catch(() => undefined);
    await ch.deleteExchange(EXCHANGE).catch(() => undefined);
    await conn.close();
  });

  it('publishes the span context in the message headers and continues it in the subscriber', async () => {
    const got: string[] = [];
    const Inbox = service({
      name: 'TracedInbox',
      handlers: { take: async (_ctx, m: BusMessage<{ n: number }>) => void got.push(m.id) },
    });
    const Emitter = service({
      name: 'TracedEmitter',
      handlers: {
        emit: async (ctx, n: number) =>
          (await publish(ctx, 'rabbitmq', EXCHANGE, { n }, { routingKey: ROUTING_KEY })).messageId,
      },
    });
    const buses = createBuses({
      rabbitmq: { url: URL_ },
      subscriptions: [
        {
          name: `${base}-orders`,
          bus: 'rabbitmq',
          exchange: EXCHANGE,
          routingKeys: ROUTING_KEY,
          queue: QUEUE,
          target: { definition: Inbox, handler: 'take' },
        },
      ],
    });
    const { make, cleanup } = sqliteEngines([Inbox, Emitter] as Definition[], () => [buses]);
    let engine: Engine | undefined;
    try {
      engine = await make();
      await until('connected', () => buses.status()[0]?.state === 'up');
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
    const send = named(`send ${EXCHANGE}`);
    expect(send).toHaveLength(1);
    expect(send[0]!.kind).toBe(SpanKind.PRODUCER);
    expect(send[0]!.attributes['messaging.system']).toBe('rabbitmq');
    // The message carries the publish span's context in its AMQP headers.
    const m = await ch.get(WATCH, { noAck: true });
    expect(m).not.toBe(false);
    const headers = (m as amqp.GetMessage).properties.headers ?? {};
    expect(headers.traceparent).toBe(`00-${TRACE_ID}-${send[0]!.spanContext().spanId}-01`);
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
