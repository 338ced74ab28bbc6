import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  Engine,
  serve,
  serveAdmin,
  type AdminServer,
  type IngressServer,
} from '../../../src/index.js';
import { createIntegrations } from '../../../src/integrations/index.js';
import { mockModeOn } from '../../../src/integrations/mocks.js';
import { openSqliteStore } from '../../../src/store/sqlite/index.js';
import {
  answer,
  definitions,
  extensions,
  priceOf,
  serviceList,
  SERVICE_NAMES,
  startFakeServices,
  type FakeServices,
} from '../../../examples/integration-platform/index.js';
import { tempDir, until } from '../../helpers.js';
import { call } from '../../gateway/helpers.js';

/**
 * The integration platform end to end over real HTTP: the gateway (keys from the environment
 * and the admin API, per-key limits, mapping) in front of the `order-intake` flow and the
 * TypeScript workflows, whose 120 declared services call one local fake server.
 */
const KEY = 'demo-key-0123456789abcdef';
let fake: FakeServices;
let engine: Engine;
let ingress: IngressServer;
let admin: AdminServer;
let cleanup: () => void;

beforeAll(async () => {
  fake = await startFakeServices();
  const tmp = tempDir('keel-platform-');
  cleanup = tmp.cleanup;
  engine = new Engine({
    services: definitions,
    store: openSqliteStore({ path: join(tmp.dir, 'keel.db'), durability: 'os' }),
    logger: () => undefined,
    extensions: [
      createIntegrations({
        integrations: serviceList,
        env: { PLATFORM_SERVICES_URL: fake.url },
        logRequests: false,
        log: () => undefined,
      }),
      ...extensions({ gateway: { env: { KEEL_GATEWAY_KEYS: `demo:${KEY}` } } }),
    ],
  });
  await engine.start();
  ingress = await serve(engine, { port: 0 });
  admin = await serveAdmin(engine, { port: 0 });
});
afterAll(async () => {
  await Promise.all([ingress.close(), admin.close()]);
  await engine.stop();
  await fake.close();
  cleanup();
});

const hitsOf = (service: string, operation: string) =>
  fake.hits.filter((h) => h.service === service && h.operation === operation);

describe('integration platform', () => {
  it('declares 120 external services, all on /integrations/status', async () => {
    expect(SERVICE_NAMES).toHaveLength(120);
    expect(new Set(serviceList.map((s) => s.name)).size).toBe(120);
    const r = await call(admin.url, 'GET', '/integrations/status');
    expect(r.status).toBe(200);
    const listed = JSON.stringify(r.body);
    for (const name of SERVICE_NAMES) expect(listed).toContain(`"${name}"`);
    const row = (r.body as { integrations: Array<Record<string, unknown>> }).integrations.find(
      (i) => i.name === 'pricing-eu-1',
    );
    // Each has a circuit breaker and an active health check.
    expect(row).toMatchObject({ circuit_state: 'closed', health_check: expect.anything() });
  });

  it('runs an order through the gateway into the order-intake flow (two API steps)', async () => {
    const r = await call(ingress.url, 'POST', '/gateway/v1/orders/o-1', {
      key: KEY,
      body: { sku: 'SKU-7', qty: 3 },
    });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({
      orderId: 'o-1',
      reservationId: 'inventory-eu-1:SKU-7:3',
      total: priceOf('SKU-7') * 3,
      flowVersion: 1,
    });
    expect(r.body.durationMs).toEqual(expect.any(Number));
    expect(hitsOf('inventory-eu-1', 'reserve')).toHaveLength(1);
    expect(hitsOf('pricing-eu-1', 'quote')).toHaveLength(1);
    // The same order id is the same run: answered again, nothing called again.
    const again = await call(ingress.url, 'POST', '/gateway/v1/orders/o-1', {
      key: KEY,
      body: { sku: 'SKU-7', qty: 3 },
    });
    expect(again.body).toEqual(r.body);
    expect(hitsOf('pricing-eu-1', 'quote')).toHaveLength(1);
  });

  it('runs the same two steps as a TypeScript workflow', async () => {
    const r = await call(ingress.url, 'POST', '/gateway/v1/orders-code/c-1', {
      key: KEY,
      body: { sku: 'SKU-8', qty: 2 },
    });
    expect(r).toMatchObject({
      status: 200,
      body: {
        orderId: 'c-1',
        reservationId: 'inventory-eu-1:SKU-8:2',
        total: priceOf('SKU-8') * 2,
      },
    });
  });

  it('maps query parameters with defaults and types, and refuses what does not fit', async () => {
    const r = await call(ingress.url, 'GET', '/gateway/v1/quotes/SKU-1?qty=4&region=us-2', {
      key: KEY,
    });
    expect(r.body).toEqual({
      sku: 'SKU-1',
      qty: 4,
      total: priceOf('SKU-1') * 4,
      priced_by: 'pricing-us-2',
    });
    const dflt = await call(ingress.url, 'GET', '/gateway/v1/quotes/SKU-1', { key: KEY });
    expect(dflt.body).toMatchObject({ qty: 1, priced_by: 'pricing-eu-1' });
    const bad = await call(ingress.url, 'GET', '/gateway/v1/quotes/SKU-1?qty=many', { key: KEY });
    expect(bad).toMatchObject({ status: 400, body: { code: 'invalid_request' } });
    const region = await call(ingress.url, 'GET', '/gateway/v1/quotes/SKU-1?region=mars', {
      key: KEY,
    });
    expect(region).toMatchObject({ status: 400, body: { code: 'unknown_region' } });
    const noSku = await call(ingress.url, 'POST', '/gateway/v1/orders/o-x', {
      key: KEY,
      body: { qty: 1 },
    });
    expect(noSku.status).toBe(400);
    expect(noSku.body.message).toMatch(/body\.sku is required/);
  });

  it('accepts a fulfilment with 202 and runs its four steps in the background', async () => {
    const r = await call(ingress.url, 'POST', '/gateway/v1/fulfilments/f-1', {
      key: KEY,
      body: { sku: 'SKU-2', qty: 1, region: 'ap-1' },
    });
    expect(r.status).toBe(202);
    expect(r.body.invocationId).toEqual(expect.any(String));
    await until(async () => {
      const s = await call(ingress.url, 'GET', '/gateway/v1/fulfilments/f-1', { key: KEY });
      return s.body?.stage === 'done';
    }, 'fulfilment f-1 done');
    for (const [service, op] of [
      ['inventory-ap-1', 'reserve'],
      ['pricing-ap-1', 'quote'],
      ['shipping-ap-1', 'reserve'],
      ['notify-ap-1', 'send'],
    ] as const)
      expect(hitsOf(service, op), `${service}.${op}`).toHaveLength(1);
  });

  it('takes keys made through the admin API, with their own limit', async () => {
    const made = await call(admin.url, 'POST', '/gateway/keys', {
      body: { name: 'partner', rateLimit: { requests: 2, window: '1m' } },
    });
    expect(made.status).toBe(201);
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++)
      statuses.push(
        (await call(ingress.url, 'GET', '/gateway/v1/quotes/SKU-3', { key: made.body.key })).status,
      );
    expect(statuses).toEqual([200, 200, 429]);
  });

  it('runs against in-process mocks until PLATFORM_SERVICES_URL is set, with the same answers', () => {
    for (const s of serviceList) {
      expect(mockModeOn(s, {})).toBe(true);
      expect(mockModeOn(s, { PLATFORM_SERVICES_URL: 'http://127.0.0.1:1' })).toBe(false);
    }
    expect(answer('pricing-eu-1', 'quote', { sku: 'A', qty: 2 })).toMatchObject({
      total: priceOf('A') * 2,
    });
  });
});
