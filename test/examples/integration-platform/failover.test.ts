import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  startFakeServices,
  type FakeServices,
} from '../../../examples/integration-platform/index.js';
import { killHard, spawnApp } from '../../helpers.js';

/**
 * Failover of the platform: two processes on one PostgreSQL schema; requests go through the
 * gateway of process A into multi-step workflows (the four-step fulfilment, sent, and the
 * two-step order-intake flow, awaited); A is killed with SIGKILL while they are in flight, and
 * process B finishes them. Counted at the fake services: every accepted request completes, and
 * each of its steps was sent with one idempotency key (a step cut by the kill is sent again with
 * the same key, never as a second call).
 */
const url = inject('postgresUrl');
const schema = `keel_platform_${randomBytes(4).toString('hex')}`;
const KEY = 'failover-key-0123456789';
const children: ChildProcess[] = [];
let fake: FakeServices;

beforeAll(async () => {
  fake = await startFakeServices();
  fake.delayMs = 40;
});
afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  await fake.close();
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await client.end();
});

const start = () =>
  spawnApp(
    join(import.meta.dirname, '../../fixtures/platform-app.ts'),
    {
      KEEL_DATABASE_URL: url,
      KEEL_DATABASE_SCHEMA: schema,
      KEEL_LEASE: '2s',
      KEEL_GATEWAY_KEYS: `ops:${KEY}:100000/1m`,
      PLATFORM_SERVICES_URL: fake.url,
    },
    children,
  );

async function post(base: string, path: string, body: unknown) {
  const res = await fetch(`${base}/gateway${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as any };
}

describe('integration platform failover (PostgreSQL, two processes)', () => {
  it('finishes the workflows accepted by a killed process, each once', async () => {
    const a = await start();
    const b = await start();
    const fulfilments = Array.from({ length: 16 }, (_, i) => `f-${i}`);
    const orders = Array.from({ length: 8 }, (_, i) => `o-${i}`);

    const accepted = await Promise.all(
      fulfilments.map((id) =>
        post(a.url, `/v1/fulfilments/${id}`, { sku: id, qty: 1, region: 'eu-2' }),
      ),
    );
    for (const r of accepted) expect(r.status).toBe(202);
    // Orders waited on through A: their answers are lost with A.
    const waited = orders.map((id) =>
      post(a.url, `/v1/orders/${id}`, { sku: id, qty: 2 }).then(
        (r) => r,
        () => undefined,
      ),
    );

    // Kill A once work is under way but not finished.
    const deadline = Date.now() + 20_000;
    while (fake.hits.length < 12 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 5));
    await killHard(a.child);
    const before = fake.hits.filter((h) => h.operation === 'send').length;
    expect(before).toBeLessThan(fulfilments.length);
    await Promise.all(waited);

    // B finishes every accepted fulfilment (attach to it by id)...
    const results = await Promise.all(
      accepted.map(async (r) => {
        const res = await fetch(`${b.url}/invocations/${r.body.invocationId}/attach`);
        return { status: res.status, body: (await res.json()) as any };
      }),
    );
    results.forEach((r, i) => {
      expect(r.status).toBe(200);
      expect(r.body).toMatchObject({
        orderId: fulfilments[i],
        shipmentId: `shipping-eu-2:${fulfilments[i]}:1`,
      });
    });
    // ...and the orders, asked again through B's gateway with the same ids, answer the same runs.
    for (const id of orders) {
      const r = await post(b.url, `/v1/orders/${id}`, { sku: id, qty: 2 });
      expect(r.status).toBe(200);
      expect(r.body).toMatchObject({ orderId: id, reservationId: `inventory-eu-1:${id}:2` });
    }

    // Each step of each request reached its service under one idempotency key: one call.
    const steps: Array<[string, string, string[]]> = [
      ['inventory-eu-2', 'reserve', fulfilments],
      ['pricing-eu-2', 'quote', fulfilments],
      ['shipping-eu-2', 'reserve', fulfilments],
      ['notify-eu-2', 'send', []],
      ['inventory-eu-1', 'reserve', orders],
      ['pricing-eu-1', 'quote', orders],
    ];
    for (const [service, op, skus] of steps)
      for (const sku of skus) {
        const hits = fake.hits.filter(
          (h) => h.service === service && h.operation === op && h.sku === sku,
        );
        expect(hits.length, `${service}.${op} ${sku}`).toBeGreaterThanOrEqual(1);
        expect(hits.every((h) => h.idempotencyKey !== undefined)).toBe(true);
        expect(new Set(hits.map((h) => h.idempotencyKey)).size, `${service}.${op} ${sku}`).toBe(1);
      }
    // The last step (no sku: it notifies the key's name): one key per fulfilment.
    const sends = fake.hits.filter((h) => h.service === 'notify-eu-2' && h.operation === 'send');
    expect(new Set(sends.map((h) => h.idempotencyKey)).size).toBe(fulfilments.length);
  }, 60_000);
});
