import * as amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBuses, publish, type BusMessage } from '../../src/buses/index.js';
import { object, service, TerminalError, type Engine } from '../../src/index.js';
import { crash } from '../../src/testing/index.js';
import { tcpProxy } from '../tcp-proxy.js';
import { reachable, runId, sqliteEngines, until } from './helpers.js';

const URL_ = process.env.KEEL_TEST_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const up = await reachable(URL_, 5672);
if (!up) console.log(`SKIPPED test/buses/rabbitmq.test.ts: RabbitMQ unreachable at ${URL_}`);

const base = runId();
const exchange = `${base}.ex`;
const queues: string[] = [];
const q = (name: string): string => {
  const n = `${base}.${name}`;
  queues.push(n);
  return n;
};

/** Executions of the targets, by message id. */
const seen = new Map<string, number>();
const note = (id: string): void => void seen.set(id, (seen.get(id) ?? 0) + 1);

const Inbox = service({
  name: 'Inbox',
  handlers: {
    take: async (_ctx, m: BusMessage<{ id: string }>) => note(m.payload.id),
    poison: async (_ctx, m: BusMessage<{ id: string }>) => {
      note(m.payload.id);
      throw new TerminalError('cannot handle this one');
    },
  },
});
const Ledger = object({
  name: 'Ledger',
  handlers: { take: async (_ctx, m: BusMessage<{ id: string }>) => note(m.payload.id) },
});

let gate: () => void = () => undefined;
let opened = new Promise<void>((r) => (gate = r));
const Emitter = service({
  name: 'Emitter',
  handlers: {
    emit: async (ctx, n: number) => {
      await publish(ctx, 'rabbitmq', exchange, { n }, { routingKey: 'out.emitted' });
      await ctx.run('wait for the test', () => opened);
      return n;
    },
  },
});

describe.skipIf(!up)('RabbitMQ subscriptions and publish', () => {
  let conn: amqp.ChannelModel;
  let ch: amqp.ConfirmChannel;
  const engines: Engine[] = [];

  beforeAll(async () => {
    conn = await amqp.connect(URL_);
    ch = await conn.createConfirmChannel();
    await ch.assertExchange(exchange, 'topic', { durable: true });
  });
  afterAll(async () => {
    for (const e of engines) await e.stop().catch(() => undefined);
    if (!ch) return;
    for (const name of queues) await ch.deleteQueue(name).catch(() => undefined);
    await ch.deleteExchange(exchange).catch(() => undefined);
    await conn.close();
  });

  const send = async (routingKey: string, body: unknown, messageId?: string): Promise<void> => {
    const content = Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
    ch.publish(exchange, routingKey, content, {
      persistent: true,
      ...(messageId ? { messageId } : {}),
    });
    await ch.waitForConfirms();
  };
  const drain = async (queue: string): Promise<amqp.GetMessage[]> => {
    const out: amqp.GetMessage[] = [];
    for (;;) {
      const m = await ch.get(queue, { noAck: true });
      if (m === false) return out;
      out.push(m);
    }
  };

  it('starts one invocation per message; the same message id again, or a redelivery, starts none', async () => {
    const subscriptions = [
      {
        name: `${base}-dedupe`,
        bus: 'rabbitmq' as const,
        exchange,
        routingKeys: 'dedupe.*',
        queue: q('dedupe'),
        target: { definition: Ledger, handler: 'take' },
        // One key: deliveries are sent in arrival order, so once a later message ran, the
        // earlier ones were settled (started or found to exist).
        key: () => 'k',
      },
    ];
    let buses = createBuses({ rabbitmq: { url: URL_ }, subscriptions });
    const { make, cleanup } = sqliteEngines([Ledger], () => [buses]);
    const engine = await make();
    engines.push(engine);
    await until('connected', () => buses.status()[0]?.state === 'up');
    await send('dedupe.a', { id: 'first' }, `${base}-first`);
    await send('dedupe.a', { id: 'first' }, `${base}-first`);
    await send('dedupe.a', { id: 'last' }, `${base}-last`);
    await until('the last message handled', () => seen.has('last'));
    expect(seen.get('first')).toBe(1);
    // Stopped at once: the deliveries not acknowledged yet are redelivered to the next engine.
    await engine.stop();
    buses = createBuses({ rabbitmq: { url: URL_ }, subscriptions });
    const next = await make();
    engines.push(next);
    await send('dedupe.a', { id: 'first' }, `${base}-first`);
    await send('dedupe.a', { id: 'final' }, `${base}-final`);
    await until('the final message handled', () => seen.has('final'));
    expect([seen.get('first'), seen.get('last'), seen.get('final')]).toEqual([1, 1, 1]);
    await next.stop();
    cleanup();
  });

  it('publishes once across a crash', async () => {
    const out = q('out');
    await ch.assertQueue(out, { durable: true });
    await ch.bindQueue(out, exchange, 'out.*');
    const { make, cleanup } = sqliteEngines([Emitter], () => [
      createBuses({ rabbitmq: { url: URL_ } }),
    ]);
    const first = await make();
    const { invocationId } = await first.send({ service: 'Emitter', handler: 'emit', input: 7 });
    await until('the message published', async () => (await ch.checkQueue(out)).messageCount === 1);
    await crash(first);
    gate();
    const second = await make();
    engines.push(second);
    expect(await second.attach(invocationId)).toBe(7);
    const got = await drain(out);
    // RabbitMQ has no broker-side deduplication: a crash after the broker confirmed and before
    // the step's entry was durable publishes again, under the same message id (Keel's
    // subscriptions drop the copy by it). So: one message id, every copy the same message.
    expect(got.length).toBeGreaterThanOrEqual(1);
    expect([...new Set(got.map((m) => m.properties.messageId))]).toEqual([
      `${invocationId}:publish:0`,
    ]);
    for (const m of got) expect(JSON.parse(m.content.toString())).toEqual({ n: 7 });
    await second.stop();
    opened = new Promise<void>((r) => (gate = r));
    cleanup();
  });

  it('dead-letters a message after maxAttempts failed invocations, and an undecodable one at once', async () => {
    const dlq = q('poison.dlq');
    const buses = createBuses({
      rabbitmq: { url: URL_ },
      subscriptions: [
        {
          name: `${base}-poison`,
          bus: 'rabbitmq',
          exchange,
          routingKeys: ['poison.#'],
          queue: q('poison'),
          target: { definition: Inbox, handler: 'poison' },
          maxAttempts: 3,
          deadLetter: { queue: dlq },
        },
      ],
    });
    const { make, cleanup } = sqliteEngines([Inbox], () => [buses]);
    const engine = await make();
    engines.push(engine);
    await until('connected', () => buses.status()[0]?.state === 'up');
    await send('poison.x', { id: 'poison' }, `${base}-poison-1`);
    await send('poison.x', 'not json {', `${base}-garbage`);
    await until('two dead letters', async () => (await ch.checkQueue(dlq)).messageCount === 2);
    const letters = await drain(dlq);
    const bad = letters.find((m) => m.content.toString() === 'not json {');
    expect(bad?.properties.headers?.['x-keel-error']).toMatch(/JSON/);
    const dead = letters.find((m) => m !== bad)!;
    const body = JSON.parse(dead.content.toString());
    expect(body).toMatchObject({
      attempts: 3,
      message: { id: `${base}-poison-1`, payload: { id: 'poison' } },
    });
    expect(body.error).toMatch(/cannot handle this one/);
    expect(seen.get('poison')).toBe(3);
    await engine.stop();
    cleanup();
  });

  it('loses and duplicates nothing when the connection drops mid-stream', async () => {
    const broker = new URL(URL_);
    const proxy = await tcpProxy({ host: broker.hostname, port: Number(broker.port || 5672) });
    const via = new URL(URL_);
    via.hostname = '127.0.0.1';
    via.port = String(proxy.port);
    const buses = createBuses({
      rabbitmq: { url: via.toString() },
      reconnectInitialMs: 50,
      reconnectMaxMs: 200,
      subscriptions: [
        {
          name: `${base}-stream`,
          bus: 'rabbitmq',
          exchange,
          routingKeys: 'stream.*',
          queue: q('stream'),
          target: { definition: Inbox, handler: 'take' },
          prefetch: 16,
        },
      ],
    });
    const { make, cleanup } = sqliteEngines([Inbox], () => [buses]);
    const engine = await make();
    engines.push(engine);
    await until('connected', () => buses.status()[0]?.state === 'up');
    const total = 300;
    const ids = Array.from({ length: total }, (_, i) => `s${i}`);
    for (const id of ids)
      ch.publish(exchange, 'stream.x', Buffer.from(JSON.stringify({ id })), {
        messageId: `${base}-${id}`,
        persistent: true,
      });
    await ch.waitForConfirms();
    await until('some handled', () => ids.filter((id) => seen.has(id)).length >= 50);
    await proxy.stop();
    await until('down', () => buses.status()[0]?.state === 'down');
    await proxy.start();
    await until('all handled', () => ids.every((id) => seen.has(id)));
    expect(ids.map((id) => seen.get(id)).filter((n) => n !== 1)).toEqual([]);
    expect(buses.status()[0]).toMatchObject({ state: 'up', subscriptions: [`${base}-stream`] });
    expect(buses.status()[0]!.connects).toBeGreaterThanOrEqual(2);
    // Redeliveries of the messages whose acks the drop lost arrive after every message was seen
    // (each is deduplicated and acked): wait until every delivery is settled and none arrived
    // for a while, as a stop in production would find it. One still under way at the stop is
    // handed back to the broker (at-least-once), which the count below would see.
    let last = -1;
    await until('deliveries settled', () => {
      const c = buses.runtime.counters(`${base}-stream`);
      const quiet = c.inFlight === 0 && c.received === last;
      last = c.received;
      return quiet;
    });
    await engine.stop();
    expect((await ch.checkQueue(q('stream'))).messageCount).toBe(0);
    await proxy.close();
    cleanup();
  });
});
