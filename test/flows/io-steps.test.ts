/**
 * The steps that reach real infrastructure: `database` on PostgreSQL and Redis (through the
 * databases extension), `event` on RabbitMQ (through the buses extension). Each runs as one
 * journal entry named after the step. Skipped, with the reason printed, when a server is down.
 */
import * as amqp from 'amqplib';
import { connect } from 'nats';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createBuses } from '../../src/buses/index.js';
import { createDatabases, database } from '../../src/databases/index.js';
import { runFlow, type FlowDefinition } from '../../src/flows/index.js';
import { reachable } from '../buses/helpers.js';
import { available, PG_URL, REDIS_URL, uniqueName } from '../databases/helpers.js';
import { ShopServer } from '../fakes/shop-server.js';
import { flowEngines, stepNames } from './helpers.js';

const AMQP_URL = process.env.KEEL_TEST_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const pgUp = await available('PostgreSQL', PG_URL, 5432, 'test/flows/io-steps.test.ts');
const redisUp = await available('Redis', REDIS_URL, 6379, 'test/flows/io-steps.test.ts');
const rabbitUp = await reachable(AMQP_URL, 5672);
if (!rabbitUp)
  console.log(`SKIPPED test/flows/io-steps.test.ts (event): RabbitMQ unreachable at ${AMQP_URL}`);

const NATS_URL = process.env.KEEL_TEST_NATS_URL ?? 'nats://127.0.0.1:4222';
const natsUp = await reachable(NATS_URL, 4222);
if (!natsUp)
  console.log(
    `SKIPPED test/flows/io-steps.test.ts (event on NATS): NATS unreachable at ${NATS_URL}`,
  );

let shop: ShopServer;
beforeAll(async () => {
  shop = await ShopServer.start();
});
afterAll(async () => {
  await shop.close();
});
const envs: Array<ReturnType<typeof flowEngines>> = [];
afterEach(async () => {
  for (const e of envs.splice(0)) {
    await e.stop();
    e.cleanup();
  }
});

describe.skipIf(!pgUp || !redisUp)('database steps', () => {
  it('runs SQL on PostgreSQL and a command on Redis, with templates as parameters', async () => {
    const table = uniqueName('flow_orders');
    const key = uniqueName('flow');
    const def: FlowDefinition = {
      name: 'db',
      steps: [
        {
          id: 'create',
          type: 'database',
          database: 'orders',
          query: `CREATE TABLE ${table} (id text primary key, amount int)`,
        },
        {
          id: 'insert',
          type: 'database',
          database: 'orders',
          query: `INSERT INTO ${table} VALUES ($1, $2) RETURNING id, amount`,
          params: ['{{input.id}}', '{{input.amount}}'],
          storeAs: 'row',
        },
        {
          id: 'count',
          type: 'database',
          database: 'cache',
          command: 'INCRBY',
          args: [key, '{{row.rows[0].amount}}'],
        },
        {
          id: 'read',
          type: 'database',
          database: 'cache',
          command: 'GET',
          args: [key],
          storeAs: 'cached',
        },
        { id: 'drop', type: 'database', database: 'orders', query: `DROP TABLE ${table}` },
      ],
      output: { inserted: '{{row.rowCount}}', cached: '{{cached}}' },
    };
    const env = flowEngines(shop.url, { definitions: [def] }, () => [
      createDatabases([
        database({ name: 'orders', type: 'postgres', url: PG_URL }),
        database({ name: 'cache', type: 'redis', url: REDIS_URL }),
      ]),
    ]);
    envs.push(env);
    const engine = await env.make();
    const r = await runFlow(engine, 'db', { id: 'o-1', amount: 42 });
    expect(r.errors).toEqual([]);
    expect(r.outputs.insert).toEqual({ rows: [{ id: 'o-1', amount: 42 }], rowCount: 1 });
    expect(r.outputs.count).toBe(42);
    expect(r.data).toEqual({ inserted: 1, cached: '42' });
    expect(await stepNames(engine, r.invocationId)).toEqual([
      'flow definition',
      'create',
      'insert',
      'count',
      'read',
      'drop',
    ]);
  });

  it('refuses, at registration, a database the engine does not declare', async () => {
    const env = flowEngines(
      shop.url,
      {
        definitions: [
          {
            name: 'x',
            steps: [{ id: 'q', type: 'database', database: 'ghost', query: 'select 1' }],
          },
        ],
      },
      () => [createDatabases([database({ name: 'orders', type: 'postgres', url: PG_URL })])],
    );
    envs.push(env);
    await expect(env.make()).rejects.toMatchObject({ code: 'unknown_database', step: 'q' });
  });
});

describe.skipIf(!rabbitUp)('event steps', () => {
  it('publishes once on RabbitMQ, as a journal entry named after the step', async () => {
    const queue = uniqueName('keel_flow_events');
    const conn = await amqp.connect(AMQP_URL);
    const ch = await conn.createChannel();
    await ch.assertQueue(queue, { durable: false, autoDelete: false });
    try {
      const env = flowEngines(
        shop.url,
        {
          definitions: [
            {
              name: 'notify',
              steps: [
                { id: 'total', type: 'transform', expression: 'input.qty * 2', storeAs: 'total' },
                {
                  id: 'order placed',
                  type: 'event',
                  bus: 'rabbitmq',
                  destination: '',
                  routingKey: queue,
                  payload: { orderId: '{{input.id}}', total: '{{total}}' },
                },
              ],
            },
          ],
        },
        () => [createBuses({ rabbitmq: { url: AMQP_URL } })],
      );
      envs.push(env);
      const engine = await env.make();
      const r = await runFlow(engine, 'notify', { id: 'o-9', qty: 3 });
      expect(r.errors).toEqual([]);
      expect(r.outputs['order placed']).toEqual({ messageId: `${r.invocationId}:publish:0` });
      expect(await stepNames(engine, r.invocationId)).toEqual([
        'flow definition',
        'total',
        'order placed',
      ]);
      const msg = await ch.get(queue, { noAck: true });
      expect(msg).not.toBe(false);
      if (msg === false) return;
      expect(JSON.parse(msg.content.toString())).toEqual({ orderId: 'o-9', total: 6 });
      expect(msg.properties.messageId).toBe(`${r.invocationId}:publish:0`);
      expect(await ch.get(queue, { noAck: true })).toBe(false);
    } finally {
      await ch.deleteQueue(queue).catch(() => undefined);
      await conn.close();
    }
  });
});

describe.skipIf(!natsUp)('event steps on NATS', () => {
  it('publishes once on a JetStream subject with the step id as its journal entry', async () => {
    const subject = `${uniqueName('keel_flow')}.placed`;
    const stream = uniqueName('KEEL_FLOW').toUpperCase();
    const nc = await connect({ servers: new URL(NATS_URL).host });
    const jsm = await nc.jetstreamManager();
    await jsm.streams.add({ name: stream, subjects: [subject] });
    try {
      const env = flowEngines(
        shop.url,
        {
          definitions: [
            {
              name: 'notify-nats',
              steps: [
                {
                  id: 'placed',
                  type: 'event',
                  bus: 'nats',
                  topic: subject,
                  params: { orderId: '{{input.id}}' },
                },
              ],
            },
          ],
        },
        () => [createBuses({ nats: { url: NATS_URL } })],
      );
      envs.push(env);
      const engine = await env.make();
      const r = await runFlow(engine, 'notify-nats', { id: 'o-n' });
      expect(r.errors).toEqual([]);
      expect(await stepNames(engine, r.invocationId)).toEqual(['flow definition', 'placed']);
      const info = await jsm.streams.info(stream, { subjects_filter: '>' });
      expect(info.state.subjects?.[subject]).toBe(1);
      const m = await jsm.streams.getMessage(stream, { last_by_subj: subject });
      expect(JSON.parse(new TextDecoder().decode(m.data))).toEqual({ orderId: 'o-n' });
      expect(m.header.get('Nats-Msg-Id')).toBe(`${r.invocationId}:publish:0`);
    } finally {
      await jsm.streams.delete(stream).catch(() => undefined);
      await nc.close();
    }
  });
});
