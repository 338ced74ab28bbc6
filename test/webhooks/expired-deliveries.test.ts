import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApp, type App } from '../../src/app.js';
import { service } from '../../src/index.js';
import { FakeClock } from '../../src/testing/index.js';
import { publish } from '../../src/webhooks/index.js';
import { tempDir, until } from '../helpers.js';
import { scrape, value } from '../metrics/prom.js';
import { receiver, type Receiver } from './helpers.js';

/**
 * A delivery record past its retention is gone: `GET /deliveries/:id` says 404 at once, but the
 * record stays in the store until the engine's retention sweep (every 6 hours with the default
 * engine retention). Until then it must not show anywhere else either: not in the endpoint's
 * delivery list, not in the dead-letter gauge, not in a replay of failed deliveries. Real HTTP,
 * a SQLite file, a fake clock moved past the delivery retention but not to the next sweep.
 */
const ADMIN = 'admin-token-0123456789abcdef0123456789';
const BAD = 3;

let r: Receiver;
let app: App;
let endpoint: { id: string };
const clock = new FakeClock();
const tmp = tempDir('keel-webhook-expired-');

const Events = service({
  name: 'Events',
  handlers: { emit: async (ctx, n: number) => publish(ctx, 'thing.failed', { n }) },
});

async function admin(method: string, path: string, body?: unknown): Promise<any> {
  const res = await fetch(`${app.admin.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

async function failed(): Promise<Array<{ id: string }>> {
  const res = await admin('GET', `/webhooks/${endpoint.id}/deliveries?status=failed`);
  expect(res.status).toBe(200);
  return res.body.deliveries;
}

beforeAll(async () => {
  r = await receiver(() => ({ status: 500 }));
  app = await startApp({
    services: [Events],
    db: join(tmp.dir, 'keel.db'),
    clock,
    port: 0,
    adminPort: 0,
    adminToken: ADMIN,
    webhooks: {
      allow: ['127.0.0.1'],
      // One attempt: each delivery is dead-lettered at once.
      retry: { schedule: [] },
      breaker: { failures: 1000 },
      retention: '1m',
    },
    logger: () => undefined,
  });
  endpoint = (await admin('POST', '/webhooks', { name: 'x', url: r.url, events: ['thing.*'] }))
    .body;
}, 60_000);
afterAll(async () => {
  await app?.close();
  await r?.close();
  tmp.cleanup();
});

describe('delivery records past their retention', () => {
  it('leave the list, the dead-letter gauge and replays as they leave GET', async () => {
    for (let n = 0; n < BAD; n++)
      await app.engine.invoke({ service: 'Events', handler: 'emit', input: n });
    await until(async () => (await failed()).length === BAD, 'dead-lettered');
    const ids = (await failed()).map((d) => d.id);
    expect((await admin('GET', `/webhooks/deliveries/${ids[0]}`)).status).toBe(200);

    // Past the 1-minute retention, hours before the next retention sweep.
    await clock.advance('2m');
    expect((await admin('GET', `/webhooks/deliveries/${ids[0]}`)).status).toBe(404);
    expect(await failed()).toEqual([]);
    const all = await admin('GET', `/webhooks/${endpoint.id}/deliveries`);
    expect(all.body.deliveries).toEqual([]);
    // The first scrape of this app: nothing cached.
    expect(value(await scrape(app.admin.url, ADMIN), 'keel_webhook_dlq_size')).toBe(0);
    const before = r.requests.length;
    const replay = await admin('POST', `/webhooks/${endpoint.id}/replay`, { since: 0 });
    expect(replay.status).toBe(202);
    expect(replay.body.replayed).toBe(0);
    expect(r.requests.length).toBe(before);
  });
});
