/**
 * A broker restart mid-stream loses and duplicates nothing: a private broker of the test's own
 * (never the shared one, which other tests use concurrently) is stopped and started again, on
 * the same data, while a stream of messages is published and consumed. Every message must start
 * exactly one invocation (counted), and the subscription's connection must come back up.
 */
import * as amqp from 'amqplib';
import mqtt, { type MqttClient } from 'mqtt';
import { connect, headers } from 'nats';
import { afterAll, describe, expect, it } from 'vitest';
import { createBuses, type BusMessage, type Buses } from '../../src/buses/index.js';
import { service, type Engine } from '../../src/index.js';
import {
  mosquittoMissing,
  natsServerMissing,
  privateMosquitto,
  privateNats,
  privateRabbit,
  rabbitServerMissing,
  type PrivateBroker,
} from './brokers.js';
import { runId, sqliteEngines, until } from './helpers.js';

const natsMissing = natsServerMissing();
const rabbitMissing = rabbitServerMissing();
const mqttMissing = mosquittoMissing();
if (mqttMissing) console.log(`SKIPPED test/buses/restart.test.ts (MQTT): ${mqttMissing}`);
if (natsMissing) console.log(`SKIPPED test/buses/restart.test.ts (NATS): ${natsMissing}`);
if (rabbitMissing) console.log(`SKIPPED test/buses/restart.test.ts (RabbitMQ): ${rabbitMissing}`);

const base = runId();
/** Target invocations by message id: each invocation's id, so a replayed body counts once. */
const seen = new Map<string, Set<string>>();
const Inbox = service({
  name: 'Inbox',
  handlers: {
    take: async (ctx, m: BusMessage<{ id: string }>) => {
      const s = seen.get(m.payload.id) ?? new Set<string>();
      s.add(ctx.invocationId);
      seen.set(m.payload.id, s);
    },
  },
});

const brokers: PrivateBroker[] = [];
const engines: Engine[] = [];
afterAll(async () => {
  for (const e of engines) await e.stop().catch(() => undefined);
  for (const b of brokers) await b.close();
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Publishes the stream with a publisher that survives the restart: each message is retried
 * (with the same message id) until the broker confirmed it. A retry after a lost confirm may
 * store a second copy: that is what the subscription's deduplication is for.
 */
async function publishAll(ids: string[], send: (id: string) => Promise<void>): Promise<number> {
  let retries = 0;
  for (const id of ids) {
    for (;;) {
      try {
        await send(id);
        await sleep(10); // a stream, not a burst: it spans the restart
        break;
      } catch {
        retries++;
        await sleep(100);
      }
    }
  }
  return retries;
}

/** Stops the broker once some messages were handled, and starts it again. */
async function restartMidStream(broker: PrivateBroker, buses: Buses, ids: string[]) {
  await until('some handled', () => ids.filter((id) => seen.has(id)).length >= 40, 60_000);
  const handledBefore = ids.filter((id) => seen.has(id)).length;
  await broker.stop();
  await until('the connection noticed', () => buses.status()[0]?.state !== 'up', 30_000);
  await sleep(500);
  await broker.start();
  return handledBefore;
}

function assertExactlyOnce(ids: string[]): void {
  const wrong = ids.filter((id) => seen.get(id)?.size !== 1);
  expect(wrong).toEqual([]);
}

describe.skipIf(natsMissing !== undefined)('a NATS server restart mid-stream', () => {
  it('loses and duplicates nothing', async () => {
    const broker = await privateNats();
    brokers.push(broker);
    const stream = `${base}_RESTART`;
    const subject = `${base}.restart.in`;
    const admin = await connect({
      servers: new URL(broker.url).host,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 200,
    });
    await (
      await admin.jetstreamManager()
    ).streams.add({ name: stream, subjects: [`${base}.restart.>`] });
    const buses = createBuses({
      nats: { url: broker.url },
      reconnectInitialMs: 50,
      reconnectMaxMs: 500,
      subscriptions: [
        {
          name: `${base}-restart`,
          bus: 'nats',
          stream,
          subject,
          durable: `${base}_restart`,
          target: { definition: Inbox, handler: 'take' },
          prefetch: 16,
        },
      ],
    });
    const { make, cleanup } = sqliteEngines([Inbox], () => [buses]);
    const engine = await make();
    engines.push(engine);
    await until('up', () => buses.status()[0]?.state === 'up');
    const ids = Array.from({ length: 400 }, (_, i) => `nr${i}`);
    const send = async (id: string): Promise<void> => {
      const h = headers();
      h.set('Nats-Msg-Id', `${base}-${id}`);
      await admin
        .jetstream()
        .publish(subject, Buffer.from(JSON.stringify({ id })), { headers: h, timeout: 2000 });
    };
    const [, handledBefore] = await Promise.all([
      publishAll(ids, send),
      restartMidStream(broker, buses, ids),
    ]);
    await until('all handled', () => ids.every((id) => seen.has(id)), 120_000);
    // The restart fell in the middle of the stream, or this test proves nothing.
    expect(handledBefore).toBeLessThan(ids.length);
    assertExactlyOnce(ids);
    expect(buses.status()[0]).toMatchObject({ state: 'up' });
    expect(buses.status()[0]!.connects).toBeGreaterThanOrEqual(2);
    await engine.stop();
    await admin.close();
    cleanup();
  }, 240_000);
});

describe.skipIf(rabbitMissing !== undefined)('a RabbitMQ node restart mid-stream', () => {
  it('loses and duplicates nothing', async () => {
    const broker = await privateRabbit();
    brokers.push(broker);
    const exchange = `${base}.restart`;
    const queue = `${base}.restart.q`;
    const buses = createBuses({
      rabbitmq: { url: broker.url },
      reconnectInitialMs: 50,
      reconnectMaxMs: 500,
      subscriptions: [
        {
          name: `${base}-restart`,
          bus: 'rabbitmq',
          exchange,
          routingKeys: 'in.*',
          queue,
          target: { definition: Inbox, handler: 'take' },
          prefetch: 16,
        },
      ],
    });
    const { make, cleanup } = sqliteEngines([Inbox], () => [buses]);
    const engine = await make();
    engines.push(engine);
    await until('up', () => buses.status()[0]?.state === 'up', 60_000);
    // A publisher that reconnects: a channel of a dead connection throws, and is replaced.
    let ch: amqp.ConfirmChannel | undefined;
    const channel = async (): Promise<amqp.ConfirmChannel> => {
      if (ch) return ch;
      const conn = await amqp.connect(broker.url);
      conn.on('error', () => undefined);
      const c = await conn.createConfirmChannel();
      c.on('error', () => undefined);
      const drop = (): void => {
        if (ch === c) ch = undefined;
      };
      conn.on('close', drop);
      c.on('close', drop);
      ch = c;
      return c;
    };
    const send = async (id: string): Promise<void> => {
      const c = await channel();
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no confirm')), 5000);
        try {
          c.publish(
            exchange,
            'in.x',
            Buffer.from(JSON.stringify({ id })),
            { messageId: `${base}-${id}`, persistent: true },
            (err: unknown) => {
              clearTimeout(timer);
              if (err) reject(err instanceof Error ? err : new Error('nacked'));
              else resolve();
            },
          );
        } catch (err) {
          clearTimeout(timer);
          ch = undefined;
          reject(err instanceof Error ? err : new Error(String(err)));
        }
      });
    };
    const ids = Array.from({ length: 400 }, (_, i) => `rr${i}`);
    const [, handledBefore] = await Promise.all([
      publishAll(ids, send),
      restartMidStream(broker, buses, ids),
    ]);
    await until('all handled', () => ids.every((id) => seen.has(id)), 120_000);
    expect(handledBefore).toBeLessThan(ids.length);
    assertExactlyOnce(ids);
    expect(buses.status()[0]).toMatchObject({ state: 'up' });
    expect(buses.status()[0]!.connects).toBeGreaterThanOrEqual(2);
    await engine.stop();
    await ch?.close().catch(() => undefined);
    cleanup();
  }, 300_000);
});

describe.skipIf(mqttMissing !== undefined)('a Mosquitto restart mid-stream', () => {
  it('loses and duplicates nothing (the persistent session survives it)', async () => {
    const broker = await privateMosquitto();
    brokers.push(broker);
    const buses = createBuses({
      mqtt: { url: broker.url, clientId: `${base}-restart` },
      reconnectInitialMs: 50,
      reconnectMaxMs: 500,
      subscriptions: [
        {
          name: `${base}-restart`,
          bus: 'mqtt',
          topic: `${base}/restart/#`,
          target: { definition: Inbox, handler: 'take' },
        },
      ],
    });
    const { make, cleanup } = sqliteEngines([Inbox], () => [buses]);
    const engine = await make();
    engines.push(engine);
    await until('up', () => buses.status()[0]?.state === 'up');
    // A publisher with a persistent session of its own: QoS 1 messages not acknowledged by the
    // broker before it stopped are sent again when it is back.
    const publisher: MqttClient = await mqtt.connectAsync(broker.url, {
      clientId: `${base}-pub`,
      protocolVersion: 5,
      clean: false,
      properties: { sessionExpiryInterval: 3600 },
      reconnectPeriod: 200,
    });
    publisher.on('error', () => undefined);
    const send = async (id: string): Promise<void> => {
      await Promise.race([
        publisher.publishAsync(`${base}/restart/x`, JSON.stringify({ id }), {
          qos: 1,
          properties: { userProperties: { 'message-id': `${base}-${id}` } },
        }),
        new Promise((_, reject) => setTimeout(() => reject(new Error('no PUBACK')), 3000)),
      ]);
    };
    const ids = Array.from({ length: 400 }, (_, i) => `mr${i}`);
    const [, handledBefore] = await Promise.all([
      publishAll(ids, send),
      restartMidStream(broker, buses, ids),
    ]);
    await until('all handled', () => ids.every((id) => seen.has(id)), 120_000);
    expect(handledBefore).toBeLessThan(ids.length);
    assertExactlyOnce(ids);
    expect(buses.status()[0]).toMatchObject({ state: 'up' });
    expect(buses.status()[0]!.connects).toBeGreaterThanOrEqual(2);
    await publisher.endAsync(true);
    await engine.stop();
    cleanup();
  }, 240_000);
});
