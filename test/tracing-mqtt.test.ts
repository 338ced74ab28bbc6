import { context, SpanKind, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
} from '@opentelemetry/sdk-trace-base';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBuses, publish, type BusMessage } from '../src/buses/index.js';
import { service, type Definition, type Engine } from '../src/index.js';
import { reachable, runId, sqliteEngines, until } from './buses/helpers.js';

/**
 * Trace context through MQTT 5 (the Mosquitto the bus tests use): a handler's publish carries its
 * span's `traceparent` as a user property of the PUBLISH, and the subscription's delivery
 * invocation, with the handler it calls, continues that trace.
 */
const URL_ = process.env.KEEL_TEST_MQTT_URL ?? process.env.KEEL_MQTT_URL ?? 'mqtt://127.0.0.1:1883';
const up = await reachable(URL_, 1883);
if (!up) console.log(`SKIPPED test/tracing-mqtt.test.ts: Mosquitto unreachable at ${URL_}`);

const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const CLIENT_SPAN = '00f067aa0ba902b7';
const base = runId();
const TOPIC = `${base}/tr/orders`;
/** The engine's persistent session, ended after the test so the shared broker keeps nothing. */
const SESSION = `${base}-tr`;

const spans = (): ReadableSpan[] => exporter.getFinishedSpans();
const named = (name: string): ReadableSpan[] => spans().filter((s) => s.name === name);

describe.skipIf(!up)('tracing through MQTT', () => {
  /** The test's own subscriber: what the broker forwarded, user properties included. */
  let watcher: MqttClient;
  const received: Array<Record<string, string | string[]>> = [];
  beforeAll(async () => {
    trace.setGlobalTracerProvider(provider);
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    watcher = await mqtt.connectAsync(URL_, { protocolVersion: 5, clientId: `${base}-tr-w` });
    watcher.on('message', (_t, _payload, packet) =>
      received.push(packet.properties?.userProperties ?? {}),
    );
    await watcher.subscribeAsync(TOPIC, { qos: 1 });
  });
  afterAll(async () => {
    trace.disable();
    context.disable();
    await provider.shutdown();
    await watcher?.endAsync();
    // A clean connect with no expiry ends the engine's persistent session.
    await mqtt
      .connectAsync(URL_, {
        clientId: SESSION,
        clean: true,
        protocolVersion: 5,
        properties: { sessionExpiryInterval: 0 },
      })
      .then((c) => c.endAsync())
      .catch(() => undefined);
  });

  it('publishes the span context as a user property and continues it in the subscriber', async () => {
    const got: string[] = [];
    const Inbox = service({
      name: 'TracedInbox',
      handlers: { take: async (_ctx, m: BusMessage<{ n: number }>) => void got.push(m.id) },
    });
    const Emitter = service({
      name: 'TracedEmitter',
      handlers: {
        emit: async (ctx, n: number) => (await publish(ctx, 'mqtt', TOPIC, { n })).messageId,
      },
    });
    const buses = createBuses({
      mqtt: { url: URL_, clientId: SESSION },
      subscriptions: [
        {
          name: `${base}-orders`,
          bus: 'mqtt',
          topic: TOPIC,
          target: { definition: Inbox, handler: 'take' },
        },
      ],
    });
    const { make, cleanup } = sqliteEngines([Inbox, Emitter] as Definition[], () => [buses]);
    let engine: Engine | undefined;
    try {
      engine = await make();
      await until('subscribed', () => buses.status()[0]?.state === 'up');
      await engine.invoke({
        service: 'TracedEmitter',
        handler: 'emit',
        input: 1,
        traceparent: `00-${TRACE_ID}-${CLIENT_SPAN}-01`,
      });
      await until('the message is handled', () => got.length === 1);
      await until('the subscriber span ends', () => named('TracedInbox/take').length === 2);
      await until('the watcher got the message', () => received.length === 1);
    } finally {
      await engine?.stop();
      cleanup();
    }
    const send = named(`send ${TOPIC}`);
    expect(send).toHaveLength(1);
    expect(send[0]!.kind).toBe(SpanKind.PRODUCER);
    expect(send[0]!.attributes['messaging.system']).toBe('mqtt');
    // The PUBLISH carries the publish span's context as an MQTT 5 user property.
    expect(received[0]!.traceparent).toBe(`00-${TRACE_ID}-${send[0]!.spanContext().spanId}-01`);
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
