/**
 * kill -9 of an app process (a child, test/fixtures/buses-app.ts) consuming from the real
 * RabbitMQ and NATS: between a message's durable acceptance and its ack, at random points of a
 * stream, and between a publish's broker confirm and its journal entry. After restarts, each
 * message has started exactly one target invocation.
 *
 * Counting: the target records each execution of its body (pid, message id, invocation id) to
 * a file. A re-executed body of the same invocation is not a duplicate. Nor is a body that ran
 * in the killed process under an invocation whose insert never became durable: the engine
 * starts executing before the insert is durable (src/engine/admission.ts), so such a "phantom"
 * execution leaves a line but no invocation. So a message's invocations are the distinct ids
 * of its lines that the store holds (the admin API answers them), and there must be one.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as amqp from 'amqplib';
import mqtt, { type MqttClient } from 'mqtt';
import { connect, headers, type JetStreamManager, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { killHard, tempDir } from '../helpers.js';
import { reachable, runId, until } from './helpers.js';

const AMQP_URL = process.env.KEEL_TEST_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const NATS_URL = process.env.KEEL_TEST_NATS_URL ?? 'nats://127.0.0.1:4222';
const rabbitUp = await reachable(AMQP_URL, 5672);
const natsUp = await reachable(NATS_URL, 4222);
const MQTT_URL = process.env.KEEL_TEST_MQTT_URL ?? 'mqtt://127.0.0.1:1883';
const mqttUp = await reachable(MQTT_URL, 1883);
if (!rabbitUp)
  console.log(`SKIPPED test/buses/kill.test.ts (RabbitMQ): unreachable at ${AMQP_URL}`);
if (!natsUp) console.log(`SKIPPED test/buses/kill.test.ts (NATS): unreachable at ${NATS_URL}`);
if (!mqttUp) console.log(`SKIPPED test/buses/kill.test.ts (MQTT): unreachable at ${MQTT_URL}`);

const fixture = join(import.meta.dirname, '../fixtures/buses-app.ts');
const base = runId();
const children: ChildProcess[] = [];
const tmp = tempDir('keel-buses-kill-');
afterAll(() => {
  for (const c of children) c.kill('SIGKILL');
  if (process.env.KEEL_TEST_KEEP) console.log(`kept ${tmp.dir}`);
  else tmp.cleanup();
});

interface Run {
  child: ChildProcess;
  url: string;
  admin: string;
}

/** Starts the fixture; resolves once it serves (or rejects if it died first, e.g. by its hook). */
function startChild(env: Record<string, string>): Promise<Run> {
  const child = spawn(process.execPath, ['--import', 'tsx', fixture], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /READY (\S+) (\S+)/.exec(out);
      if (m) resolve({ child, url: m[1]!, admin: m[2]! });
    });
    child.on('exit', (code, signal) =>
      reject(new Error(`app exited early (${signal ?? code}): ${out}`)),
    );
  });
}

const exited = (child: ChildProcess): Promise<unknown> =>
  child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve()
    : new Promise((r) => child.once('exit', r));

interface LogLine {
  pid: string;
  kind: string;
  id: string;
  invocation?: string;
}
function readLog(file: string): LogLine[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const [pid, kind, id, invocation] = l.split(' ');
      return { pid: pid!, kind: kind!, id: id!, ...(invocation ? { invocation } : {}) };
    });
}
/** Per message id, the distinct target invocations that executed it. */
function invocations(file: string): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const l of readLog(file).filter((l) => l.kind === 'take')) {
    const s = out.get(l.id) ?? new Set<string>();
    s.add(l.invocation!);
    out.set(l.id, s);
  }
  return out;
}

/** Per message id, the distinct target invocations the store holds (durable ones). */
async function durableInvocations(file: string, run: Run): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  for (const [id, invs] of invocations(file)) {
    const kept: string[] = [];
    for (const inv of invs) {
      const res = await fetch(`${run.admin}/invocations/${inv}`);
      await res.arrayBuffer();
      if (res.status === 200) kept.push(inv);
      else expect(res.status).toBe(404);
    }
    out.set(id, kept);
  }
  return out;
}

async function counters(run: Run, sub: string): Promise<Record<string, number>> {
  const res = await fetch(`${run.admin}/buses/subscriptions/${encodeURIComponent(sub)}`);
  const body = (await res.json()) as { counters: Record<string, number> };
  return body.counters;
}
async function connectionUp(run: Run, sub: string): Promise<boolean> {
  const res = await fetch(`${run.admin}/buses/subscriptions/${encodeURIComponent(sub)}`).catch(
    () => undefined,
  );
  if (!res?.ok) return false;
  const body = (await res.json()) as { connection: { state: string } | null };
  return body.connection?.state === 'up';
}

/** What the tests need from a broker, whichever it is. */
interface Driver {
  bus: 'rabbitmq' | 'nats' | 'mqtt';
  /** The app's environment for subscription `name`. */
  env: (name: string) => Record<string, string>;
  /** The subscription (as the fixture's BUS_SUBSCRIPTIONS entry) named `name`. */
  subscription(name: string): Record<string, unknown>;
  /** Publishes `{ id }` with message id `id` to the subscription `name`. */
  send(name: string, id: string): Promise<void>;
  /** Where `Emitter.emit` publishes so that subscription `name` receives it. */
  emitTo(name: string): { destination: string; routingKey?: string };
  /** True once the broker has nothing left for the subscription: none ready, none unacked. */
  drained(name: string, run: Run, log: string): Promise<boolean>;
  /** How many copies of what `Emitter.emit` published for `name` the broker stored, where it can tell. */
  storedCopies?(name: string): Promise<number>;
}

function suite(driver: () => Driver): void {
  it('a kill -9 between the durable acceptance and the ack: redelivered, deduplicated, one invocation', async () => {
    const d = driver();
    const name = `${base}-accept-${d.bus}`;
    const log = join(tmp.dir, `${name}.log`);
    const env = {
      ...d.env(name),
      KEEL_DB: join(tmp.dir, `${name}.db`),
      BUS_LOG: log,
      BUS_SUBSCRIPTIONS: JSON.stringify([d.subscription(name)]),
    };
    const ids = Array.from({ length: 20 }, (_, i) => `${name}-m${i}`);
    const victim = ids[5]!;
    const first = await startChild({ ...env, CRASH_AFTER_ACCEPT: victim });
    await until('connected', () => connectionUp(first, name));
    for (const id of ids) await d.send(name, id).catch(() => undefined);
    await exited(first.child);
    expect(first.child.signalCode).toBe('SIGKILL');
    expect(readLog(log).some((l) => l.kind === 'crash' && l.id === 'after-accept')).toBe(true);

    const second = await startChild(env);
    await until(
      'every message handled and the broker drained',
      async () =>
        ids.every((id) => invocations(log).has(id)) && (await d.drained(name, second, log)),
      60_000,
    );
    const byId = await durableInvocations(log, second);
    expect(ids.filter((id) => byId.get(id)?.length !== 1)).toEqual([]);
    // The victim was accepted before the crash and never acked: the broker redelivered it, and
    // its idempotency key answered the invocation that existed.
    expect((await counters(second, name)).deduplicated).toBeGreaterThanOrEqual(1);
    await killHard(second.child);
  }, 120_000);

  it('kill -9 at random points of a stream: every message exactly one invocation', async () => {
    const d = driver();
    const name = `${base}-stream-${d.bus}`;
    const log = join(tmp.dir, `${name}.log`);
    const env = {
      ...d.env(name),
      KEEL_DB: join(tmp.dir, `${name}.db`),
      BUS_LOG: log,
      BUS_SUBSCRIPTIONS: JSON.stringify([d.subscription(name)]),
    };
    const ids = Array.from({ length: 300 }, (_, i) => `${name}-s${i}`);
    let run = await startChild(env);
    await until('connected', () => connectionUp(run, name));
    // Paced, so that the kills fall while the stream is still arriving.
    const publishing = (async () => {
      for (const id of ids) {
        await d.send(name, id);
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    let interrupted = 0;
    for (let kill = 0; kill < 3; kill++) {
      const before = invocations(log).size;
      if (before >= ids.length) break; // all handled already: no kill can interrupt anything
      await until('progress', () => invocations(log).size > before, 60_000);
      await new Promise((r) => setTimeout(r, Math.random() * 300));
      await killHard(run.child);
      if (invocations(log).size < ids.length) interrupted++;
      run = await startChild(env);
    }
    await publishing;
    await until(
      'every message handled and the broker drained',
      async () => ids.every((id) => invocations(log).has(id)) && (await d.drained(name, run, log)),
      90_000,
    );
    // The kills fell in the middle of the stream, or this test proves nothing.
    expect(interrupted).toBeGreaterThan(0);
    const byId = await durableInvocations(log, run);
    expect(ids.filter((id) => byId.get(id)?.length !== 1)).toEqual([]);
    expect([...byId.keys()].filter((id) => id.startsWith(name)).length).toBe(ids.length);
    await killHard(run.child);
  }, 240_000);

  it("a handler's publish, killed after the broker's confirm and before its journal entry, starts one invocation downstream", async () => {
    const d = driver();
    const name = `${base}-emit-${d.bus}`;
    const log = join(tmp.dir, `${name}.log`);
    const env = {
      ...d.env(name),
      KEEL_DB: join(tmp.dir, `${name}.db`),
      BUS_LOG: log,
      BUS_PUBLISHES: d.bus,
      BUS_SUBSCRIPTIONS: JSON.stringify([d.subscription(name)]),
    };
    const first = await startChild({ ...env, CRASH_AFTER_CONFIRM: '1' });
    await until('connected', () => connectionUp(first, name));
    // With an Idempotency-Key the step bodies wait for the durable insert, which the 202
    // acknowledges: without one the publish may run (and the process die) before the insert's
    // fdatasync returns, and the 202 is never sent (test/step-before-insert.test.ts).
    const res = await fetch(`${first.url}/Emitter/emit/send`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': `${name}-1` },
      body: JSON.stringify({ bus: d.bus, ...d.emitTo(name), payload: { id: 'emitted' } }),
    });
    expect(res.status).toBe(202);
    const { invocationId } = (await res.json()) as { invocationId: string };
    const messageId = `${invocationId}:publish:0`;
    await exited(first.child);
    expect(first.child.signalCode).toBe('SIGKILL');

    const second = await startChild(env);
    await until(
      'published again, handled, drained',
      async () =>
        readLog(log).filter((l) => l.kind === 'published').length === 2 &&
        invocations(log).has(messageId) &&
        (await d.drained(name, second, log)),
      60_000,
    );
    const published = readLog(log).filter((l) => l.kind === 'published');
    // Published (and confirmed) by both processes, with the same stable id...
    expect(published.map((l) => l.id)).toEqual([messageId, messageId]);
    expect(new Set(published.map((l) => l.pid)).size).toBe(2);
    // ...and one invocation downstream (NATS: and one copy in the stream, by Nats-Msg-Id).
    expect((await durableInvocations(log, second)).get(messageId)).toHaveLength(1);
    if (d.storedCopies) expect(await d.storedCopies(name)).toBe(1);
    await killHard(second.child);
  }, 120_000);
}

describe.skipIf(!rabbitUp)('kill -9 with RabbitMQ', () => {
  let conn: amqp.ChannelModel;
  let ch: amqp.ConfirmChannel;
  const exchange = `${base}.kill`;
  const queues: string[] = [];
  beforeAll(async () => {
    conn = await amqp.connect(AMQP_URL);
    ch = await conn.createConfirmChannel();
    await ch.assertExchange(exchange, 'topic', { durable: true });
  });
  afterAll(async () => {
    if (!ch) return;
    for (const q of queues) await ch.deleteQueue(q).catch(() => undefined);
    await ch.deleteExchange(exchange).catch(() => undefined);
    await conn.close();
  });
  suite(() => ({
    bus: 'rabbitmq',
    env: () => ({ BUS_AMQP_URL: AMQP_URL }),
    subscription: (name) => {
      queues.push(name);
      return {
        name,
        bus: 'rabbitmq',
        exchange,
        routingKeys: `${name}.*`,
        queue: name,
        prefetch: 16,
      };
    },
    async send(name, id) {
      ch.publish(exchange, `${name}.x`, Buffer.from(JSON.stringify({ id })), {
        messageId: id,
        persistent: true,
      });
      await ch.waitForConfirms();
    },
    emitTo: (name) => ({ destination: exchange, routingKey: `${name}.emitted` }),
    // Nothing ready on the broker, nothing unsettled in the app (what it received it acked).
    drained: async (name, run) =>
      (await ch.checkQueue(name)).messageCount === 0 && (await counters(run, name)).inFlight === 0,
  }));
});

describe.skipIf(!natsUp)('kill -9 with NATS JetStream', () => {
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  const stream = `${base}_KILL`;
  beforeAll(async () => {
    nc = await connect({ servers: new URL(NATS_URL).host });
    jsm = await nc.jetstreamManager();
    await jsm.streams.add({ name: stream, subjects: [`${base}.kill.>`] });
  });
  afterAll(async () => {
    if (!jsm) return;
    await jsm.streams.delete(stream).catch(() => undefined);
    await nc.close();
  });
  const subject = (name: string): string => `${base}.kill.${name.replace(/[^A-Za-z0-9_-]/g, '_')}`;
  suite(() => ({
    bus: 'nats',
    env: () => ({ BUS_NATS_URL: NATS_URL }),
    subscription: (name) => ({
      name,
      bus: 'nats',
      stream,
      subject: subject(name),
      durable: name.replace(/[^A-Za-z0-9_-]/g, '_'),
      prefetch: 16,
      // A killed process's unacked messages come back after this (30 s by default).
      ackWait: '3s',
    }),
    async send(name, id) {
      const h = headers();
      h.set('Nats-Msg-Id', id);
      await nc.jetstream().publish(subject(name), Buffer.from(JSON.stringify({ id })), {
        headers: h,
      });
    },
    emitTo: (name) => ({ destination: subject(name) }),
    async storedCopies(name) {
      const info = await jsm.streams.info(stream, { subjects_filter: subject(name) });
      return info.state.subjects?.[subject(name)] ?? 0;
    },
    async drained(name) {
      const info = await jsm.consumers.info(stream, name.replace(/[^A-Za-z0-9_-]/g, '_'));
      return info.num_pending === 0 && info.num_ack_pending === 0;
    },
  }));
});

describe.skipIf(!mqttUp)('kill -9 with MQTT (Mosquitto)', () => {
  let client: MqttClient;
  const sessions: string[] = [];
  const sentinels = new Map<string, string>();
  beforeAll(async () => {
    client = await mqtt.connectAsync(MQTT_URL, { protocolVersion: 5, clientId: `${base}-kill` });
  });
  afterAll(async () => {
    await client?.endAsync();
    // The apps' persistent sessions: ended, so the shared broker keeps nothing.
    for (const clientId of sessions) {
      const c = await mqtt.connectAsync(MQTT_URL, {
        clientId,
        clean: true,
        protocolVersion: 5,
        properties: { sessionExpiryInterval: 0 },
      });
      await c.endAsync();
    }
  });
  const topic = (name: string): string => `${base}/kill/${name}`;
  const send = async (name: string, id: string): Promise<void> => {
    await client.publishAsync(`${topic(name)}/x`, JSON.stringify({ id }), {
      qos: 1,
      properties: { userProperties: { 'message-id': id } },
    });
  };
  suite(() => ({
    bus: 'mqtt',
    env: (name) => {
      if (!sessions.includes(name)) sessions.push(name);
      return { BUS_MQTT_URL: MQTT_URL, BUS_MQTT_CLIENT_ID: name };
    },
    subscription: (name) => ({ name, bus: 'mqtt', topic: `${topic(name)}/#` }),
    send,
    emitTo: (name) => ({ destination: `${topic(name)}/emitted` }),
    // MQTT has no queue to inspect: a sentinel published last is taken last (one session, in
    // order, redeliveries first), so once it was taken and nothing is in flight, all were settled.
    async drained(name, run, log) {
      const s = sentinels.get(name);
      if (s === undefined) {
        const id = `sentinel-${name}`;
        sentinels.set(name, id);
        await send(name, id);
        return false;
      }
      if (!invocations(log).has(s)) return false;
      sentinels.delete(name);
      return (await counters(run, name)).inFlight === 0;
    },
  }));
});
