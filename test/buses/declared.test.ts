/**
 * Subscriptions declared in the declaration file: parsing (DSL and JSON) with errors at a line
 * and column, target resolution with errors naming the subscription, and an app started from a
 * file consuming from the real brokers, its subscriptions listed on the admin API.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as amqp from 'amqplib';
import { connect, headers } from 'nats';
import { afterAll, describe, expect, it } from 'vitest';
import { startApp, type App } from '../../src/app.js';
import {
  parseSubscriptions,
  resolveSubscriptions,
  type BusMessage,
} from '../../src/buses/index.js';
import { object, service } from '../../src/index.js';
import { parseIntegrations } from '../../src/integrations/declarations/dsl/parse.js';
import { IntegrationDeclarationError } from '../../src/integrations/errors.js';
import { tempDir } from '../helpers.js';
import { reachable, runId, until } from './helpers.js';

const AMQP_URL = process.env.KEEL_TEST_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const NATS_URL = process.env.KEEL_TEST_NATS_URL ?? 'nats://127.0.0.1:4222';
const bothUp = (await reachable(AMQP_URL, 5672)) && (await reachable(NATS_URL, 4222));
if (!bothUp)
  console.log(
    `SKIPPED test/buses/declared.test.ts (app from a file): RabbitMQ at ${AMQP_URL} or NATS at ${NATS_URL} unreachable`,
  );

const DSL = `
integration Api {
  type: rest
  base_url: "http://127.0.0.1:1"
}

subscription OrdersCreated {
  bus: rabbitmq
  exchange: "orders"
  exchange_type: topic
  routing_keys: ["order.created", "order.updated"]
  queue: "keel.orders-created"
  target: Shipping.onOrder
  key: payload.customerId
  dedupe_by: payload.eventId
  max_attempts: 5
  prefetch: 8
  dead_letter: "keel.orders-created.dlq"
}

subscription Payments {
  bus: nats
  stream: PAYMENTS
  subject: "payments.>"
  durable: "keel-payments"
  target: Ledger.apply
}
`;

describe('parsing subscription blocks', () => {
  it('reads both buses from the DSL', () => {
    expect(parseSubscriptions(DSL)).toEqual([
      {
        name: 'OrdersCreated',
        bus: 'rabbitmq',
        exchange: 'orders',
        exchangeType: 'topic',
        routingKeys: ['order.created', 'order.updated'],
        queue: 'keel.orders-created',
        target: 'Shipping.onOrder',
        key: 'payload.customerId',
        dedupeBy: 'payload.eventId',
        maxAttempts: 5,
        prefetch: 8,
        deadLetter: 'keel.orders-created.dlq',
      },
      {
        name: 'Payments',
        bus: 'nats',
        stream: 'PAYMENTS',
        subject: 'payments.>',
        durable: 'keel-payments',
        target: 'Ledger.apply',
      },
    ]);
  });

  it('answers any mangled file with a declaration error (never another exception)', () => {
    // A small deterministic fuzz: cut, repeat and replace characters of a valid file.
    let seed = 14;
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const alphabet = '{}[]():,."#\n abz_.>*+-0123456789';
    let errors = 0;
    for (let i = 0; i < 2000; i++) {
      let text = DSL;
      for (let k = 0; k <= rand(4); k++) {
        const at = rand(text.length);
        const op = rand(3);
        const ch = alphabet[rand(alphabet.length)]!;
        text =
          op === 0
            ? text.slice(0, at) + text.slice(at + 1 + rand(8))
            : op === 1
              ? text.slice(0, at) + ch + text.slice(at)
              : text.slice(0, at) + ch + text.slice(at + 1);
      }
      try {
        for (const s of parseSubscriptions(text)) {
          expect(typeof s.name).toBe('string');
          expect(s.target).toMatch(/^[^.]+\.[^.]+$/);
        }
      } catch (err) {
        errors++;
        expect(err).toBeInstanceOf(IntegrationDeclarationError);
      }
    }
    expect(errors).toBeGreaterThan(0);
  });

  it('reads an MQTT subscription', () => {
    expect(
      parseSubscriptions(
        'subscription Sensors {\n  bus: mqtt\n  topic: "sensors/+/temp"\n  target: Readings.take\n  dead_letter: "sensors/dead"\n}',
      ),
    ).toEqual([
      {
        name: 'Sensors',
        bus: 'mqtt',
        topic: 'sensors/+/temp',
        target: 'Readings.take',
        deadLetter: 'sensors/dead',
      },
    ]);
    expect(() =>
      parseSubscriptions('subscription S {\n  bus: mqtt\n  target: R.t\n  queue: "q"\n}'),
    ).toThrow(
      /line 4.*subscription S, queue: is a RabbitMQ field; this subscription has bus: mqtt/,
    );
  });

  it('leaves the integrations of the same file to the integrations reader, which skips subscriptions', () => {
    expect(parseIntegrations(DSL).map((c) => c.name)).toEqual(['Api']);
  });

  it('reads the JSON form', () => {
    const json = JSON.stringify({
      integrations: [],
      subscriptions: [
        {
          name: 'Orders',
          bus: 'rabbitmq',
          exchange: 'orders',
          routing_key: 'order.*',
          queue: 'q',
          target: 'Shipping.onOrder',
          key: 'headers.x-customer',
        },
      ],
    });
    expect(parseSubscriptions(json)).toEqual([
      {
        name: 'Orders',
        bus: 'rabbitmq',
        exchange: 'orders',
        routingKeys: ['order.*'],
        queue: 'q',
        target: 'Shipping.onOrder',
        key: 'headers.x-customer',
      },
    ]);
    expect(parseIntegrations(JSON.stringify({ subscriptions: [] }))).toEqual([]);
  });

  it.each([
    [
      'subscription A {\n  bus: kafka\n}',
      /line 2, column 8.*subscription A, bus: expected rabbitmq, nats or mqtt/,
    ],
    [
      'subscription A {\n  bus: nats\n  stream: S\n  subject: "s.>"\n  durable: d\n  target: X.y\n  queue: "q"\n}',
      /line 7.*subscription A, queue: is a RabbitMQ field; this subscription has bus: nats/,
    ],
    [
      'subscription A {\n  bus: nats\n  stream: S\n  subject: "s.>"\n  durable: d\n  target: X.y\n  prefech: 3\n}',
      /line 7.*unknown field 'prefech'; did you mean 'prefetch'\?/,
    ],
    [
      'subscription A {\n  bus: rabbitmq\n  exchange: "e"\n  queue: "q"\n  target: X.y\n}',
      /subscription A: no routing_keys/,
    ],
    [
      'subscription A {\n  bus: nats\n  stream: S\n  subject: "s.>"\n  durable: d\n  target: X.y\n  key: body.id\n}',
      /line 7.*subscription A, key: a path starts with payload, headers, subject, id/,
    ],
    [
      'subscription A {\n  bus: nats\n  stream: S\n  subject: "s.>"\n  durable: d\n  target: "X"\n}',
      /line 6.*subscription A, target: expected Service.handler/,
    ],
    [
      'subscription A {\n  bus: nats\n  stream: S\n  subject: "s.>"\n  durable: d\n  target: X.y\n  max_attempts: 0\n}',
      /subscription A, max_attempts: expected a whole number of at least 1/,
    ],
    [
      'subscription A {\n  bus: nats\n  stream: S\n  subject: "s.>"\n  target: X.y\n}',
      /subscription A: no durable/,
    ],
    [
      'subscription A {\n  bus: nats\n  stream: S\n  subject: "s.>"\n  durable: d\n  target: X.y\n}\nsubscription A {\n  bus: nats\n}',
      /line 8.*subscription A is declared twice \(first at line 1/,
    ],
  ])('refuses a mistake with its line: %#', (text, error) => {
    expect(() => parseSubscriptions(text)).toThrow(error);
  });
});

const Shipping = object({
  name: 'Shipping',
  handlers: { onOrder: async (_ctx, m: BusMessage) => m.id },
});
const Ledger = service({
  name: 'Ledger',
  handlers: { apply: async (_ctx, m: BusMessage) => m.id },
});

describe('resolving declared targets', () => {
  const nats = {
    name: 'P',
    bus: 'nats' as const,
    stream: 'S',
    subject: 's.>',
    durable: 'd',
  };
  it('finds the definition and handler; paths become key and dedupe functions', () => {
    const [s] = resolveSubscriptions(
      [
        {
          ...nats,
          target: 'Shipping.onOrder',
          key: 'payload.customer.id',
          dedupeBy: 'headers.x-id',
        },
      ],
      [Shipping, Ledger],
    );
    expect(s!.target).toEqual({ definition: Shipping, handler: 'onOrder' });
    const msg: BusMessage = {
      id: 'm',
      bus: 'nats',
      subscription: 'P',
      subject: 's.a',
      headers: { 'x-id': 'h1' },
      payload: { customer: { id: 42 } },
    };
    expect(s!.key!(msg)).toBe('42');
    expect(s!.dedupeBy!(msg)).toBe('h1');
    expect(() => s!.key!({ ...msg, payload: {} })).toThrow(
      /subscription P: the message has no key at payload.customer.id/,
    );
  });

  it.each([
    [
      'Nope.x',
      /subscription P: target Nope.x: no service, object or workflow named Nope in this app \(it has: Shipping, Ledger\)/,
    ],
    [
      'Ledger.nope',
      /subscription P: target Ledger.nope: Ledger has no handler "nope" \(it has: apply\)/,
    ],
    [
      'Shipping.onOrder',
      /subscription "P": its target Shipping is a keyed object, so the subscription needs key/,
    ],
  ])('refuses target %s naming the subscription', async (target, error) => {
    const { withSubscriptions } = await import('../../src/buses/index.js');
    expect(() =>
      withSubscriptions([], resolveSubscriptions([{ ...nats, target }], [Shipping, Ledger])),
    ).toThrow(error);
  });
});

describe.skipIf(!bothUp)('an app started from a declaration file', () => {
  const base = runId();
  const tmp = tempDir('keel-buses-declared-');
  const seen: string[] = [];
  const Orders = object({
    name: 'Orders',
    handlers: {
      take: async (ctx, m: BusMessage<{ customerId: string; n: number }>) => {
        seen.push(`${ctx.key}:${m.payload.n}`);
      },
    },
  });
  const Events = service({
    name: 'Events',
    handlers: {
      take: async (_ctx, m: BusMessage<{ n: number }>) => void seen.push(`nats:${m.payload.n}`),
    },
  });
  let app: App | undefined;
  let conn: amqp.ChannelModel | undefined;
  afterAll(async () => {
    await app?.close();
    if (conn) {
      const ch = await conn.createChannel();
      await ch.deleteQueue(`${base}.orders`).catch(() => undefined);
      await ch.deleteExchange(`${base}.ex`).catch(() => undefined);
      await conn.close();
    }
    const nc = await connect({ servers: new URL(NATS_URL).host });
    await (await nc.jetstreamManager()).streams.delete(`${base}_EV`).catch(() => undefined);
    await nc.close();
    tmp.cleanup();
  });

  it('consumes with the declared subscriptions and lists them with counters on GET /buses/subscriptions', async () => {
    const file = join(tmp.dir, 'integrations.cai');
    writeFileSync(
      file,
      `
subscription ${base}-orders {
  bus: rabbitmq
  exchange: "${base}.ex"
  routing_keys: "order.*"
  queue: "${base}.orders"
  target: Orders.take
  key: payload.customerId
}
subscription ${base}-events {
  bus: nats
  stream: ${base}_EV
  subject: "${base}.ev.>"
  durable: ${base}_ev
  target: Events.take
  dedupe_by: payload.n
}
`,
    );
    app = await startApp({
      services: [Orders, Events],
      db: join(tmp.dir, 'keel.db'),
      port: 0,
      adminPort: 0,
      integrationsFile: file,
      logger: () => undefined,
    });
    const list = async (): Promise<any[]> =>
      ((await (await fetch(`${app!.admin.url}/buses/subscriptions`)).json()) as any).subscriptions;
    await until('both connections up', async () =>
      (await list()).every((s) => s.connection?.state === 'up'),
    );
    conn = await amqp.connect(AMQP_URL);
    const ch = await conn.createConfirmChannel();
    ch.publish(
      `${base}.ex`,
      'order.created',
      Buffer.from(JSON.stringify({ customerId: 'c1', n: 1 })),
      {
        messageId: `${base}-1`,
      },
    );
    ch.publish(
      `${base}.ex`,
      'order.created',
      Buffer.from(JSON.stringify({ customerId: 'c1', n: 1 })),
      {
        messageId: `${base}-1`,
      },
    );
    await ch.waitForConfirms();
    const nc = await connect({ servers: new URL(NATS_URL).host });
    for (const id of ['a', 'b']) {
      const h = headers();
      h.set('Nats-Msg-Id', `${base}-${id}`); // two message ids, one payload.n: one invocation
      await nc
        .jetstream()
        .publish(`${base}.ev.x`, Buffer.from(JSON.stringify({ n: 7 })), { headers: h });
    }
    await nc.close();
    await until('handled and settled', async () => {
      const subs = await list();
      return subs.every((s) => s.counters.received === 2 && s.counters.inFlight === 0);
    });
    expect(seen.sort()).toEqual(['c1:1', 'nats:7']);
    const subs = await list();
    expect(subs).toEqual([
      {
        name: `${base}-orders`,
        bus: 'rabbitmq',
        source: {
          exchange: `${base}.ex`,
          exchangeType: 'topic',
          routingKeys: ['order.*'],
          queue: `${base}.orders`,
        },
        target: 'Orders.take',
        options: {
          key: 'payload.customerId',
          dedupeBy: 'message id',
          maxAttempts: 3,
          prefetch: 32,
          deadLetter: null,
        },
        counters: {
          received: 2,
          started: 1,
          deduplicated: 1,
          deadLettered: 0,
          acked: 2,
          requeued: 0,
          rejected: 0,
          inFlight: 0,
        },
        connection: expect.objectContaining({ state: 'up', connects: 1 }),
      },
      expect.objectContaining({
        name: `${base}-events`,
        bus: 'nats',
        source: { stream: `${base}_EV`, subject: `${base}.ev.>`, durable: `${base}_ev` },
        target: 'Events.take',
        options: expect.objectContaining({ key: 'none', dedupeBy: 'payload.n' }),
        counters: expect.objectContaining({ received: 2, started: 1, deduplicated: 1 }),
      }),
    ]);
    const one = await fetch(`${app.admin.url}/buses/subscriptions/${base}-events`);
    expect(((await one.json()) as any).name).toBe(`${base}-events`);
    const missing = await fetch(`${app.admin.url}/buses/subscriptions/nope`);
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as any).code).toBe('not_found');
    const post = await fetch(`${app.admin.url}/buses/subscriptions`, { method: 'POST' });
    expect(post.status).toBe(405);
    const conns = (await (await fetch(`${app.admin.url}/buses`)).json()) as any;
    expect(conns.connections.map((c: any) => c.bus).sort()).toEqual(['nats', 'rabbitmq']);
  });

  it('refuses to start with a target the app does not have, naming the subscription', async () => {
    const file = join(tmp.dir, 'bad.cai');
    writeFileSync(
      file,
      'subscription Bad {\n bus: nats\n stream: S\n subject: "s.>"\n durable: d\n target: Missing.handler\n}\n',
    );
    await expect(
      startApp({
        services: [Events],
        db: join(tmp.dir, 'bad.db'),
        port: 0,
        adminPort: 0,
        integrationsFile: file,
        logger: () => undefined,
      }),
    ).rejects.toThrow(
      /subscription Bad: target Missing.handler: no service, object or workflow named Missing/,
    );
  });
});
