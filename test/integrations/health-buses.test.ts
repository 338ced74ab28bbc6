import * as amqp from 'amqplib';
import { afterAll, describe, expect, it } from 'vitest';
import { createBuses, type BusMessage } from '../../src/buses/index.js';
import { service } from '../../src/index.js';
import { createIntegrations } from '../../src/integrations/index.js';
import { serveAdmin } from '../../src/admin/server.js';
import { reachable, runId, sqliteEngines, until } from '../buses/helpers.js';

/**
 * Broker connections on `/integrations/status`: `createBuses` adds a probe per bus to the
 * engine's registry, the integrations extension runs it. A real RabbitMQ is healthy; a NATS
 * URL where nothing listens is a connection that never comes up, so unhealthy.
 */
const URL_ = process.env.KEEL_TEST_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const up = await reachable(URL_, 5672);
if (!up)
  console.log(`SKIPPED test/integrations/health-buses.test.ts: RabbitMQ unreachable at ${URL_}`);

const base = runId();
const Inbox = service({
  name: 'Inbox',
  handlers: { take: async (_ctx, _m: BusMessage) => null },
});

describe.skipIf(!up)('broker health on /integrations/status', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c();
    const conn = await amqp.connect(URL_);
    const ch = await conn.createChannel();
    await ch.deleteQueue(`${base}.q`).catch(() => undefined);
    await ch.deleteExchange(`${base}.ex`).catch(() => undefined);
    await conn.close();
  });

  it('a row per bus with kind "bus": RabbitMQ up is healthy, an unreachable NATS is not', async () => {
    const integrations = createIntegrations({ log: () => undefined });
    const engines = sqliteEngines([Inbox], () => [
      createBuses({
        rabbitmq: { url: URL_ },
        nats: { url: 'nats://127.0.0.1:1' },
        reconnectMaxMs: 200,
        subscriptions: [
          {
            name: 'orders',
            bus: 'rabbitmq',
            exchange: `${base}.ex`,
            routingKeys: 'order.*',
            queue: `${base}.q`,
            target: { definition: Inbox, handler: 'take' },
          },
        ],
      }),
      integrations,
    ]);
    cleanups.push(engines.cleanup);
    const engine = await engines.make();
    cleanups.push(() => engine.stop());
    const admin = await serveAdmin(engine, { port: 0 });
    cleanups.push(() => admin.close());
    const health = integrations.runtime.health;

    await until('RabbitMQ probed healthy', async () => {
      await health.probeNow('rabbitmq');
      return health.status('rabbitmq')?.result === 'healthy';
    });
    // Pending while its first connection attempt runs; unhealthy once one failed.
    await until('NATS probed unhealthy', async () => {
      await health.probeNow('nats');
      return health.status('nats')?.result !== 'pending';
    });
    expect(health.status('nats')).toMatchObject({ result: 'unhealthy', kind: 'bus' });

    const status: any = await (await fetch(`${admin.url}/integrations/status`)).json();
    expect(status.integrations).toEqual([
      {
        name: 'rabbitmq',
        kind: 'bus',
        type: 'rabbitmq',
        status: 'healthy',
        health_check: 'healthy',
      },
      { name: 'nats', kind: 'bus', type: 'nats', status: 'unhealthy', health_check: 'unhealthy' },
    ]);
    const rabbit: any = await (await fetch(`${admin.url}/integrations/rabbitmq/health`)).json();
    expect(rabbit).toMatchObject({
      name: 'rabbitmq',
      kind: 'bus',
      status: 'healthy',
      probe: { result: 'healthy', consecutive_failures: 0 },
      details: { state: 'up', subscriptions: ['orders'] },
    });
    // The URL is shown without its password.
    expect(JSON.stringify(rabbit)).not.toContain('guest:guest');
    const nats: any = await (await fetch(`${admin.url}/integrations/nats/health`)).json();
    expect(nats.probe.last_error.message).toMatch(/^nats connection (connecting|down)/);
  });
});
