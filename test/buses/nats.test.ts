import { connect, headers, type JetStreamManager, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBuses, publish, type BusMessage } from '../../src/buses/index.js';
import { service, TerminalError, type Engine } from '../../src/index.js';
import { crash } from '../../src/testing/index.js';
import { tcpProxy } from '../tcp-proxy.js';
import { reachable, runId, sqliteEngines, until } from './helpers.js';

const URL_ = process.env.KEEL_TEST_NATS_URL ?? 'nats://127.0.0.1:4222';
const up = await reachable(URL_, 4222);
if (!up) console.log(`SKIPPED test/buses/nats.test.ts: NATS unreachable at ${URL_}`);

const base = runId();
const IN = `${base}_IN`;
const OUT = `${base}_OUT`;

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
let gate: () => void = () => undefined;
const opened = new Promise<void>((r) => (gate = r));
const Emitter = service({
  name: 'Emitter',
  handlers: {
    emit: async (ctx, n: number) => {
      await publish(ctx, 'nats', `${base}.out.emitted`, { n });
      await ctx.run('wait for the test', () => opened);
      return n;
    },
  },
});

describe.skipIf(!up)('NATS JetStream subscriptions and publish', () => {
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  const engines: Engine[] = [];
  const count = async (stream: string, subject: string): Promise<number> => {
    const info = await jsm.streams.info(stream, { subjects_filter: '>' });
    return info.state.subjects?.[subject] ?? 0;
  };
  const send = async (subject: string, body: unknown, msgID?: string): Promise<void> => {
    const data = Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
    const h = headers();
    if (msgID) h.set('Nats-Msg-Id', msgID);
    await nc.jetstream().publish(subject, data, { headers: h });
  };
  const sub = (name: string, extra: object = {}) => ({
    name: `${base}-${name}`,
    bus: 'nats' as const,
    stream: IN,
    subject: `${base}.in.${name}`,
    durable: `${base}_${name}`,
    target: { definition: Inbox, handler: 'take' },
    ...extra,
  });

  beforeAll(async () => {
    nc = await connect({ servers: new URL(URL_).host });
    jsm = await nc.jetstreamManager();
    await jsm.streams.add({ name: IN, subjects: [`${base}.in.>`] });
    await jsm.streams.add({ name: OUT, subjects: [`${base}.out.>`, `${base}.dlq.>`] });
  });
  afterAll(async () => {
    for (const e of engines) await e.stop().catch(() => undefined);
    if (!jsm) return;
    await jsm.streams.delete(IN).catch(() => undefined);
    await jsm.streams.delete(OUT).catch(() => undefined);
    await nc.close();
  });

  it('starts one invocation per message; a duplicate by dedupeBy starts none', async () => {
    const buses = createBuses({
      nats: { url: URL_ },
      subscriptions: [
        sub('dedupe', {
          dedupeBy: (m: BusMessage<{ id: string }>) => m.payload.id,
          key: () => 'k',
        }),
      ],
    });
    const { make, cleanup } = sqliteEngines([Inbox], () => [buses]);
    const engine = await make();
    engines.push(engine);
    await send(`${base}.in.dedupe`, { id: 'n-first' }, `${base}-a`);
    await send(`${base}.in.dedupe`, { id: 'n-first' }, `${base}-b`); // another id, same payload id
    await send(`${base}.in.dedupe`, { id: 'n-last' });
    await until('the last message handled', () => seen.has('n-last'));
    expect([seen.get('n-first'), seen.get('n-last')]).toEqual([1, 1]);
    expect(buses.status()[0]).toMatchObject({ bus: 'nats', state: 'up' });
    await engine.stop();
    cleanup();
  });

  it('publishes once across a crash, with Nats-Msg-Id set', async () => {
    const { make, cleanup } = sqliteEngines([Emitter], () => [
      createBuses({ nats: { url: URL_ } }),
    ]);
    const first = await make();
    const { invocationId } = await first.send({ service: 'Emitter', handler: 'emit', input: 7 });
    await until('published', async () => (await count(OUT, `${base}.out.emitted`)) === 1);
    await crash(first);
    gate();
    const second = await make();
    engines.push(second);
    expect(await second.attach(invocationId)).toBe(7);
    expect(await count(OUT, `${base}.out.emitted`)).toBe(1);
    const m = await jsm.streams.getMessage(OUT, { last_by_subj: `${base}.out.emitted` });
    expect(m.header.get('Nats-Msg-Id')).toBe(`${invocationId}:publish:0`);
    await second.stop();
    cleanup();
  });

  it('dead-letters a message after maxAttempts failed invocations, and an undecodable one at once', async () => {
    const dlq = `${base}.dlq.poison`;
    const buses = createBuses({
      nats: { url: URL_ },
      subscriptions: [
        sub('poison', {
          target: { definition: Inbox, handler: 'poison' },
          maxAttempts: 3,
          deadLetter: { subject: dlq },
        }),
      ],
    });
    const { make, cleanup } = sqliteEngines([Inbox], () => [buses]);
    const engine = await make();
    engines.push(engine);
    await send(`${base}.in.poison`, { id: 'n-poison' });
    await send(`${base}.in.poison`, 'not json {');
    await until('two dead letters', async () => (await count(OUT, dlq)) === 2);
    expect(seen.get('n-poison')).toBe(3);
    await engine.stop();
    cleanup();
  });

  it('loses and duplicates nothing when the connection drops mid-stream', async () => {
    const broker = new URL(URL_);
    const proxy = await tcpProxy({ host: broker.hostname, port: Number(broker.port || 4222) });
    const buses = createBuses({
      nats: { url: `nats://127.0.0.1:${proxy.port}` },
      // Messages delivered but not acked when the connection drops come back only after the
      // ack wait (default 30 s, as long as the wait below): a short one makes them come back
      // well within it, whatever the machine's load.
      subscriptions: [sub('stream', { prefetch: 16, ackWait: '2s' })],
    });
    const { make, cleanup } = sqliteEngines([Inbox], () => [buses]);
    const engine = await make();
    engines.push(engine);
    const ids = Array.from({ length: 300 }, (_, i) => `n${i}`);
    await Promise.all(ids.map((id) => send(`${base}.in.stream`, { id })));
    await until('some handled', () => ids.filter((id) => seen.has(id)).length >= 50);
    await proxy.stop();
    await until('down', () => buses.status()[0]?.state === 'down');
    await proxy.start();
    await until('all handled', () => ids.every((id) => seen.has(id)));
    expect(ids.map((id) => seen.get(id)).filter((n) => n !== 1)).toEqual([]);
    expect(buses.status()[0]).toMatchObject({ state: 'up' });
    expect(buses.status()[0]!.connects).toBeGreaterThanOrEqual(2);
    await engine.stop();
    await proxy.close();
    cleanup();
  }, 90_000);
});
