/**
 * MQTT subscriptions and publish against the real Mosquitto: one invocation per message (by the
 * `message-id` user property, else a hash of topic and payload), the persistent session keeping
 * what arrived while no engine ran, publish with QoS 1 and a stable id, dead-lettering.
 */
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBuses, publish, type BusMessage, type Buses } from '../../src/buses/index.js';
import { topicMatches } from '../../src/buses/mqtt.js';
import { service, TerminalError, type Engine } from '../../src/index.js';
import { reachable, runId, sqliteEngines, until } from './helpers.js';

const URL_ = process.env.KEEL_TEST_MQTT_URL ?? process.env.KEEL_MQTT_URL ?? 'mqtt://127.0.0.1:1883';
const up = await reachable(URL_, 1883);
if (!up) console.log(`SKIPPED test/buses/mqtt.test.ts: Mosquitto unreachable at ${URL_}`);

const base = runId();
const seen = new Map<string, number>();
const note = (id: string): void => void seen.set(id, (seen.get(id) ?? 0) + 1);
const ids: string[] = [];
const Inbox = service({
  name: 'Inbox',
  handlers: {
    take: async (_ctx, m: BusMessage<{ id: string }>) => {
      note(m.payload.id);
      ids.push(m.id);
    },
    poison: async (_ctx, m: BusMessage<{ id: string }>) => {
      note(m.payload.id);
      throw new TerminalError('cannot handle this one');
    },
  },
});
const Emitter = service({
  name: 'Emitter',
  handlers: {
    emit: async (ctx, n: number) => {
      const { messageId } = await publish(ctx, 'mqtt', `${base}/out/emitted`, { n });
      return messageId;
    },
  },
});

/** Ends a persistent session for good, so the shared broker keeps nothing of this test. */
async function endSession(clientId: string): Promise<void> {
  const c = await mqtt.connectAsync(URL_, {
    clientId,
    clean: true,
    protocolVersion: 5,
    properties: { sessionExpiryInterval: 0 },
  });
  await c.endAsync();
}

describe('MQTT topic filters', () => {
  it.each([
    ['a/+/c', 'a/b/c', true],
    ['a/+/c', 'a/b/d', false],
    ['a/#', 'a/b/c', true],
    ['a/#', 'a', true],
    ['a/b', 'a/b/c', false],
    ['+', 'a', true],
  ])('%s matches %s: %s', (filter, topic, result) => {
    expect(topicMatches(filter, topic)).toBe(result);
  });
});

describe.skipIf(!up)('MQTT subscriptions and publish', () => {
  let client: MqttClient;
  const engines: Engine[] = [];
  const sessions: string[] = [];
  beforeAll(async () => {
    client = await mqtt.connectAsync(URL_, { protocolVersion: 5, clientId: `${base}-test` });
  });
  afterAll(async () => {
    for (const e of engines) await e.stop().catch(() => undefined);
    await client?.endAsync();
    for (const s of sessions) await endSession(s).catch(() => undefined);
  });
  const send = async (topic: string, body: unknown, messageId?: string): Promise<void> => {
    await client.publishAsync(topic, typeof body === 'string' ? body : JSON.stringify(body), {
      qos: 1,
      ...(messageId ? { properties: { userProperties: { 'message-id': messageId } } } : {}),
    });
  };
  const session = (name: string): string => {
    const id = `${base}-${name}`;
    sessions.push(id);
    return id;
  };

  it('starts one invocation per message: by message-id, else by topic and payload', async () => {
    const buses = createBuses({
      mqtt: { url: URL_, clientId: session('dedupe') },
      subscriptions: [
        {
          name: `${base}-dedupe`,
          bus: 'mqtt',
          topic: `${base}/dedupe/+`,
          target: { definition: Inbox, handler: 'take' },
        },
      ],
    });
    const { make, cleanup } = sqliteEngines([Inbox], () => [buses]);
    const engine = await make();
    engines.push(engine);
    await until('connected', () => buses.status()[0]?.state === 'up');
    await send(`${base}/dedupe/a`, { id: 'm1' }, `${base}-m1`);
    await send(`${base}/dedupe/a`, { id: 'm1' }, `${base}-m1`); // the same id: a duplicate
    await send(`${base}/dedupe/b`, { id: 'h1' }); // no id: hashed
    await send(`${base}/dedupe/b`, { id: 'h1' }); // the same topic and payload: one message
    await send(`${base}/dedupe/c`, { id: 'h1' }); // another topic: another message
    await send(`${base}/dedupe/a`, { id: 'last' }, `${base}-last`);
    // Taken one at a time in order, so once the last is handled the others were settled.
    await until('the last handled', () => seen.has('last'));
    expect([seen.get('m1'), seen.get('h1'), seen.get('last')]).toEqual([1, 2, 1]);
    expect(ids).toContain(`${base}-m1`);
    expect(ids.filter((i) => i.startsWith('sha256:'))).toHaveLength(2);
    await engine.stop();
    cleanup();
  });

  it('keeps messages that arrive while no engine runs, and those not acknowledged, in the persistent session', async () => {
    const clientId = session('persist');
    const subscriptions = [
      {
        name: `${base}-persist`,
        bus: 'mqtt' as const,
        topic: `${base}/persist/#`,
        target: { definition: Inbox, handler: 'take' },
      },
    ];
    let buses: Buses | undefined;
    const { make, cleanup } = sqliteEngines([Inbox], () => [
      (buses = createBuses({ mqtt: { url: URL_, clientId }, subscriptions })),
    ]);
    const first = await make();
    await until('subscribed', () => buses?.status()[0]?.state === 'up');
    await send(`${base}/persist/x`, { id: 'p0' }, `${base}-p0`);
    await until('p0 handled', () => seen.has('p0'));
    await first.stop();
    // Nobody is connected with that client id now: the broker queues for its session.
    for (let i = 1; i <= 5; i++) await send(`${base}/persist/x`, { id: `p${i}` }, `${base}-p${i}`);
    const second = await make();
    engines.push(second);
    await until('all handled', () => [1, 2, 3, 4, 5].every((i) => seen.has(`p${i}`)));
    expect([0, 1, 2, 3, 4, 5].map((i) => seen.get(`p${i}`))).toEqual([1, 1, 1, 1, 1, 1]);
    await second.stop();
    cleanup();
  });

  it('publishes with QoS 1 and the stable message id as a user property', async () => {
    const received: Array<{ id: unknown; body: string }> = [];
    const watcher = await mqtt.connectAsync(URL_, { protocolVersion: 5, clientId: `${base}-w` });
    watcher.on('message', (_t, payload, packet) =>
      received.push({
        id: packet.properties?.userProperties?.['message-id'],
        body: payload.toString(),
      }),
    );
    await watcher.subscribeAsync(`${base}/out/#`, { qos: 1 });
    const { make, cleanup } = sqliteEngines([Emitter], () => [
      createBuses({ mqtt: { url: URL_, clientId: session('emitter') } }),
    ]);
    const engine = await make();
    engines.push(engine);
    const { invocationId } = await engine.send({ service: 'Emitter', handler: 'emit', input: 7 });
    expect(await engine.attach(invocationId)).toBe(`${invocationId}:publish:0`);
    await until('received', () => received.length === 1);
    expect(received[0]).toEqual({ id: `${invocationId}:publish:0`, body: '{"n":7}' });
    await watcher.endAsync();
    await engine.stop();
    cleanup();
  });

  it('dead-letters a message to a topic after maxAttempts failed invocations', async () => {
    const dead: string[] = [];
    const watcher = await mqtt.connectAsync(URL_, { protocolVersion: 5, clientId: `${base}-d` });
    watcher.on('message', (_t, payload) => dead.push(payload.toString()));
    await watcher.subscribeAsync(`${base}/dead`, { qos: 1 });
    const buses = createBuses({
      mqtt: { url: URL_, clientId: session('poison') },
      subscriptions: [
        {
          name: `${base}-poison`,
          bus: 'mqtt',
          topic: `${base}/poison`,
          target: { definition: Inbox, handler: 'poison' },
          maxAttempts: 2,
          deadLetter: { topic: `${base}/dead` },
        },
      ],
    });
    const { make, cleanup } = sqliteEngines([Inbox], () => [buses]);
    const engine = await make();
    engines.push(engine);
    await until('connected', () => buses.status()[0]?.state === 'up');
    await send(`${base}/poison`, { id: 'mq-poison' }, `${base}-poison-1`);
    await send(`${base}/poison`, 'not json {', `${base}-garbage`);
    await until('two dead letters', () => dead.length === 2);
    expect(seen.get('mq-poison')).toBe(2);
    expect(dead).toContain('not json {');
    const letter = JSON.parse(dead.find((d) => d !== 'not json {')!);
    expect(letter).toMatchObject({ attempts: 2, message: { id: `${base}-poison-1` } });
    await watcher.endAsync();
    await engine.stop();
    cleanup();
  });
});
