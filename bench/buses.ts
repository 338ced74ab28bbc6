/**
 * The event-bus rows of `npm run bench` (`--only=buses`): messages/s from RabbitMQ and from
 * NATS JetStream (and MQTT, one message at a time) into durable invocations, on a SQLite store
 * (`fsync`).
 *
 * Per row: a backlog of N messages is published to a fresh queue (stream) first, then an engine
 * with one subscription starts and drains it: each message is received, `send`s a delivery
 * invocation (durable, idempotency key = subscription + message id) and is acknowledged; the
 * delivery invocation then calls the target (a service handler that does nothing), a journaled
 * call. "accepted/s" = messages acknowledged per second (the invocation was durable first);
 * "completed/s" = target invocations finished per second, both from the first delivery to the
 * last. The engine runs in this process; the brokers are the machine's, sharing its 2 cores.
 *
 *   npm run bench -- --only=buses
 *   BENCH_BUS_N=20000 npm run bench -- --only=buses
 */
import fs from 'node:fs';
import path from 'node:path';
import * as amqp from 'amqplib';
import mqtt from 'mqtt';
import { connect, headers } from 'nats';
import { createBuses, type BusMessage, type Subscription } from '../src/buses/index.js';
import { Engine, service } from '../src/index.js';
import { openSqliteStore } from '../src/store/sqlite/index.js';

const AMQP_URL = process.env.KEEL_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const NATS_URL = process.env.KEEL_NATS_URL ?? 'nats://127.0.0.1:4222';
const MQTT_URL = process.env.KEEL_MQTT_URL ?? 'mqtt://127.0.0.1:1883';
type Bus = 'rabbitmq' | 'nats' | 'mqtt';

interface BusRow {
  bus: Bus;
  prefetch: number;
  messages: number;
  acceptedPerS: number;
  completedPerS: number;
  cpuMsPer1k: number;
  started: number;
  error?: string;
}

let completed = 0;
const Sink = service({
  name: 'BenchSink',
  handlers: { take: async (_ctx, _m: BusMessage) => void completed++ },
});

async function fill(bus: Bus, n: number, where: { name: string }): Promise<void> {
  const body = (i: number): Buffer => Buffer.from(JSON.stringify({ i, order: 'A-1', qty: 2 }));
  if (bus === 'rabbitmq') {
    const conn = await amqp.connect(AMQP_URL);
    const ch = await conn.createConfirmChannel();
    await ch.assertExchange(where.name, 'topic', { durable: true });
    await ch.assertQueue(where.name, { durable: true });
    await ch.bindQueue(where.name, where.name, 'bench.#');
    for (let i = 0; i < n; i++) {
      ch.publish(where.name, 'bench.x', body(i), {
        messageId: `${where.name}-${i}`,
        persistent: true,
      });
      if (i % 500 === 499) await ch.waitForConfirms();
    }
    await ch.waitForConfirms();
    await conn.close();
    return;
  }
  if (bus === 'mqtt') {
    // The session the engine will resume (its client id), subscribed, so the backlog queues in it.
    const session = await mqtt.connectAsync(MQTT_URL, {
      clientId: where.name,
      clean: false,
      protocolVersion: 5,
      properties: { sessionExpiryInterval: 3600 },
    });
    await session.subscribeAsync(`${where.name}/#`, { qos: 1 });
    await session.endAsync();
    const pub = await mqtt.connectAsync(MQTT_URL, { protocolVersion: 5 });
    const pending: Promise<unknown>[] = [];
    for (let i = 0; i < n; i++) {
      pending.push(
        pub.publishAsync(`${where.name}/x`, body(i), {
          qos: 1,
          properties: { userProperties: { 'message-id': `${where.name}-${i}` } },
        }),
      );
      if (pending.length >= 100) await Promise.all(pending.splice(0));
    }
    await Promise.all(pending);
    await pub.endAsync();
    return;
  }
  const nc = await connect({ servers: new URL(NATS_URL).host });
  const jsm = await nc.jetstreamManager();
  await jsm.streams.add({ name: where.name, subjects: [`${where.name}.>`] });
  const js = nc.jetstream();
  const pending: Promise<unknown>[] = [];
  for (let i = 0; i < n; i++) {
    const h = headers();
    h.set('Nats-Msg-Id', `${where.name}-${i}`);
    pending.push(js.publish(`${where.name}.x`, body(i), { headers: h }));
    if (pending.length >= 500) await Promise.all(pending.splice(0));
  }
  await Promise.all(pending);
  await nc.close();
}

async function cleanup(bus: Bus, name: string): Promise<void> {
  if (bus === 'rabbitmq') {
    const conn = await amqp.connect(AMQP_URL);
    const ch = await conn.createChannel();
    await ch.deleteQueue(name).catch(() => undefined);
    await ch.deleteExchange(name).catch(() => undefined);
    await conn.close().catch(() => undefined);
    return;
  }
  if (bus === 'mqtt') {
    const c = await mqtt.connectAsync(MQTT_URL, {
      clientId: name,
      clean: true,
      protocolVersion: 5,
      properties: { sessionExpiryInterval: 0 },
    });
    await c.endAsync();
    return;
  }
  const nc = await connect({ servers: new URL(NATS_URL).host });
  await (await nc.jetstreamManager()).streams.delete(name).catch(() => undefined);
  await nc.close();
}

async function row(
  bus: Bus,
  prefetch: number,
  n: number,
  tmp: string,
  log: (s: string) => void,
): Promise<BusRow> {
  const name = `keelbench_${bus}_${prefetch}_${process.pid}`;
  log(`buses: ${bus} prefetch ${prefetch}: publishing ${n} messages`);
  await fill(bus, n, { name });
  const sub: Subscription =
    bus === 'mqtt'
      ? { name, bus, topic: `${name}/#`, target: { definition: Sink, handler: 'take' } }
      : bus === 'rabbitmq'
        ? {
            name,
            bus,
            exchange: name,
            routingKeys: 'bench.#',
            queue: name,
            target: { definition: Sink, handler: 'take' },
            prefetch,
          }
        : {
            name,
            bus,
            stream: name,
            subject: `${name}.>`,
            durable: name,
            target: { definition: Sink, handler: 'take' },
            prefetch,
          };
  const buses = createBuses({
    rabbitmq: { url: AMQP_URL },
    nats: { url: NATS_URL },
    mqtt: { url: MQTT_URL, clientId: name },
    subscriptions: [sub],
  });
  const dbPath = path.join(tmp, `${name}.db`);
  const engine = new Engine({
    services: [Sink],
    store: openSqliteStore({ path: dbPath }),
    extensions: [buses],
    logger: () => undefined,
  });
  completed = 0;
  await engine.start();
  const cpu0 = process.cpuUsage();
  let first = 0;
  let acceptedAt = 0;
  let completedAt = 0;
  const deadline = Date.now() + 300_000;
  try {
    for (;;) {
      const c = buses.runtime.counters(name);
      const now = performance.now();
      if (first === 0 && c.received > 0) first = now;
      if (acceptedAt === 0 && c.acked >= n) acceptedAt = now;
      if (completedAt === 0 && completed >= n) completedAt = now;
      // Both: a target may finish before its delivery's insert is durable (and so acked).
      if (acceptedAt !== 0 && completedAt !== 0) break;
      if (Date.now() > deadline) throw new Error(`only ${completed} of ${n} completed in 300 s`);
      await new Promise((r) => setTimeout(r, 5));
    }
    const cpu = process.cpuUsage(cpu0);
    const c = buses.runtime.counters(name);
    return {
      bus,
      prefetch,
      messages: n,
      acceptedPerS: n / ((acceptedAt - first) / 1000),
      completedPerS: n / ((completedAt - first) / 1000),
      cpuMsPer1k: (cpu.user + cpu.system) / 1000 / (n / 1000),
      started: c.started,
    };
  } finally {
    await engine.stop();
    await cleanup(bus, name);
    for (const f of [dbPath, `${dbPath}-wal`, `${dbPath}-shm`]) fs.rmSync(f, { force: true });
  }
}

/** Runs the rows; returns a markdown section (or why it could not run). */
export async function busesBench(
  log: (s: string) => void,
  opts: { tmp: string; messages?: number },
): Promise<string> {
  const n = opts.messages ?? Number(process.env.BENCH_BUS_N ?? 5000);
  fs.mkdirSync(opts.tmp, { recursive: true });
  const rows: BusRow[] = [];
  for (const bus of ['rabbitmq', 'nats', 'mqtt'] as const) {
    // MQTT takes one message at a time (see src/buses/mqtt.ts): one row.
    for (const prefetch of bus === 'mqtt' ? [1] : [32, 256]) {
      try {
        // Mosquitto queues at most `max_queued_messages` (default 1,000) for a session while
        // its client is away, and drops the rest: the MQTT backlog stays under it.
        rows.push(await row(bus, prefetch, bus === 'mqtt' ? Math.min(n, 900) : n, opts.tmp, log));
      } catch (err) {
        log(`buses: ${bus}: ${(err as Error).message}`);
        rows.push({
          bus,
          prefetch,
          messages: n,
          acceptedPerS: 0,
          completedPerS: 0,
          cpuMsPer1k: 0,
          started: 0,
          error: (err as Error).message,
        });
      }
    }
  }
  const fmt = (x: number): string => Math.round(x).toLocaleString('en-US');
  const lines = [
    '## Event buses into durable invocations',
    '',
    '| Bus | prefetch | Messages | accepted/s | completed/s | Keel CPU ms / 1k msgs | Invocations started |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...rows.map((r) =>
      r.error
        ? `| ${r.bus} | ${r.prefetch} | ${fmt(r.messages)} | – | – | – | ${r.error} |`
        : `| ${r.bus} | ${r.prefetch} | ${fmt(r.messages)} | ${fmt(r.acceptedPerS)} | ${fmt(r.completedPerS)} | ${r.cpuMsPer1k.toFixed(0)} | ${fmt(r.started)} |`,
    ),
    '',
    'A backlog of N persistent messages (RabbitMQ: durable queue, publisher confirms; NATS: file-backed stream, Nats-Msg-Id; MQTT: QoS 1, queued in the persistent session, at most 900 as Mosquitto keeps 1,000 by default) drained by one engine ' +
      '(SQLite, `fsync`) with one subscription: per message a durable delivery invocation (idempotency key = subscription + message id), then the ack, ' +
      'then a journaled call of the target (a handler that does nothing). accepted/s = acked messages per second, completed/s = finished target invocations per second, ' +
      'both from the first delivery to the last. The engine runs in the bench process; RabbitMQ and nats-server share the same 2 cores. ' +
      'Invocations started must equal Messages (no duplicates). See bench/buses.ts.',
  ];
  return lines.join('\n');
}
