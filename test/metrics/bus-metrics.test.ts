import { join } from 'node:path';
import { connect, type JetStreamManager, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApp, type App } from '../../src/app.js';
import { createBuses, publish, type BusMessage } from '../../src/buses/index.js';
import { service, TerminalError } from '../../src/index.js';
import { reachable, runId, until } from '../buses/helpers.js';
import { tempDir } from '../helpers.js';
import { scrape, series, value, type Sample } from './prom.js';

/**
 * The buses' metrics after known work through the NATS JetStream server the bus tests use: a
 * handler publishes N messages to the subject a subscription of the same app consumes, the test
 * publishes K more and one undecodable body. One of the handler's messages is poison (its
 * target fails terminally on every attempt): it is dead-lettered after `maxAttempts`, the
 * undecodable one at once. Every count checked is exact.
 */
const URL_ = process.env.KEEL_TEST_NATS_URL ?? 'nats://127.0.0.1:4222';
const up = await reachable(URL_, 4222);
if (!up) console.log(`SKIPPED test/metrics/bus-metrics.test.ts: NATS unreachable at ${URL_}`);

const ADMIN = 'admin-token-0123456789abcdef0123456789';
const N = 5;
const K = 2;
const MAX_ATTEMPTS = 2;
const base = runId();
const STREAM = `${base}_M`;
const SUBJECT = `${base}.m.in`;
const DLQ = `${base}.dlq.in`;
const SUB = `${base}-in`;

/** Target invocations per message id. */
const seen = new Map<string, number>();
const Inbox = service({
  name: 'MetricsInbox',
  handlers: {
    take: async (_ctx, m: BusMessage<{ id: string; poison?: boolean }>) => {
      seen.set(m.payload.id, (seen.get(m.payload.id) ?? 0) + 1);
      if (m.payload.poison) throw new TerminalError('cannot handle this one');
    },
  },
});
const Emitter = service({
  name: 'MetricsEmitter',
  handlers: {
    emit: async (ctx) => {
      for (let i = 0; i < N; i++)
        await publish(ctx, 'nats', SUBJECT, { id: `h${i}`, ...(i === 0 ? { poison: true } : {}) });
    },
  },
});

describe.skipIf(!up)('bus metrics through NATS JetStream', () => {
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  let app: App;
  let samples: Sample[];
  const tmp = tempDir('keel-bus-metrics-');
  const inStream = async (subject: string): Promise<number> => {
    const info = await jsm.streams.info(STREAM, { subjects_filter: '>' });
    return info.state.subjects?.[subject] ?? 0;
  };

  beforeAll(async () => {
    nc = await connect({ servers: new URL(URL_).host });
    jsm = await nc.jetstreamManager();
    await jsm.streams.add({ name: STREAM, subjects: [`${base}.m.>`, `${base}.dlq.>`] });
    const buses = createBuses({
      nats: { url: URL_ },
      subscriptions: [
        {
          name: SUB,
          bus: 'nats',
          stream: STREAM,
          subject: SUBJECT,
          durable: `${base}_in`,
          target: { definition: Inbox, handler: 'take' },
          maxAttempts: MAX_ATTEMPTS,
          deadLetter: { subject: DLQ },
        },
      ],
    });
    app = await startApp({
      services: [Inbox, Emitter],
      extensions: [buses],
      db: join(tmp.dir, 'keel.db'),
      port: 0,
      adminPort: 0,
      adminToken: ADMIN,
      logger: () => undefined,
    });

    await app.engine.invoke({ service: 'MetricsEmitter', handler: 'emit' });
    const js = nc.jetstream();
    for (let i = 0; i < K; i++)
      await js.publish(SUBJECT, Buffer.from(JSON.stringify({ id: `t${i}` })));
    await js.publish(SUBJECT, Buffer.from('not json {'));

    await until(
      'the good messages handled',
      () => [...seen.keys()].filter((id) => id !== 'h0').length === N - 1 + K,
    );
    await until('two dead letters in the stream', async () => (await inStream(DLQ)) === 2);
    // Every delivery invocation finished (the poison one after its dead letter was counted).
    await until('the deliveries finished', async () => {
      const s = await scrape(app.admin.url, ADMIN);
      const finished = series(s, 'keel_invocations_finished_total')
        .filter((x) => x.labels.service === 'keel.buses')
        .reduce((n, x) => n + x.value, 0);
      return finished === N + K;
    });
    samples = await scrape(app.admin.url, ADMIN);
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    tmp.cleanup();
    if (!jsm) return;
    await jsm.streams.delete(STREAM).catch(() => undefined);
    await nc.close();
  });

  it('counts the messages received and acked by the subscription', () => {
    const sub = { bus: 'nats', subscription: SUB };
    // Every delivery was accepted (the undecodable one by publishing its dead letter).
    expect(value(samples, 'keel_bus_messages_received_total', sub)).toBe(N + K + 1);
    expect(value(samples, 'keel_bus_messages_acked_total', sub)).toBe(N + K + 1);
    expect(seen.get('h0')).toBe(MAX_ATTEMPTS);
  });

  it('counts both dead letters: the poison message and the undecodable one', () => {
    expect(
      value(samples, 'keel_bus_messages_dead_lettered_total', { bus: 'nats', subscription: SUB }),
    ).toBe(2);
  });

  it('counts what handlers published, not the dead letters', () => {
    expect(value(samples, 'keel_bus_messages_published_total', { bus: 'nats' })).toBe(N);
    expect(series(samples, 'keel_bus_messages_published_total')).toHaveLength(1);
  });

  it('labels series with the bus and subscription only, never a message id', () => {
    for (const name of [
      'keel_bus_messages_received_total',
      'keel_bus_messages_acked_total',
      'keel_bus_messages_dead_lettered_total',
    ]) {
      const s = series(samples, name);
      expect(s).toHaveLength(1);
      expect(Object.keys(s[0]!.labels).sort()).toEqual(['bus', 'subscription']);
    }
    for (const s of samples)
      for (const v of Object.values(s.labels)) expect(v).not.toMatch(/:publish:|^inv_/);
  });
});
