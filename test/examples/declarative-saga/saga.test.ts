/**
 * Seed 004, exercise 2.2 ("Saga Pattern Implementation: create a distributed transaction
 * system"), as a declarative workflow: examples/declarative-saga/order-saga.yaml, served by an
 * app like the example app (startApp with the example's integrations and flows directory)
 * against a local fake shop over real HTTP. One test per bullet of the exercise:
 * - implements saga orchestration
 * - handles compensations
 * - manages timeouts
 * - provides idempotency
 * - tracks transaction state
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FLOWS_DIR, integrations } from '../../../examples/declarative-saga/index.js';
import { startApp, type App } from '../../../src/app.js';
import { ShopServer } from '../../fakes/shop-server.js';
import { tempDir } from '../../helpers.js';

let shop: ShopServer;
let app: App;
const tmp = tempDir('keel-declarative-saga-');

beforeAll(async () => {
  shop = await ShopServer.start();
  // The example's flow as it ships, and a copy whose payment timeout is 1 s instead of 30 s
  // (so the timeout test does not wait half a minute): the same file, one value changed.
  const text = readFileSync(join(FLOWS_DIR, 'order-saga.yaml'), 'utf8');
  expect(text).toContain('timeout: 30s');
  const dir = join(tmp.dir, 'flows');
  mkdirSync(dir);
  writeFileSync(join(dir, 'order-saga.yaml'), text);
  writeFileSync(
    join(dir, 'order-saga-fast-timeout.yaml'),
    text.replace('timeout: 30s', 'timeout: 1s').replace('name: order-saga', 'name: order-saga-1s'),
  );
  app = await startApp({
    services: [],
    db: join(tmp.dir, 'keel.db'),
    port: 0,
    adminPort: 0,
    flowsDir: dir,
    integrations: {
      integrations,
      env: { DECLARATIVE_SAGA_SHOP_URL: shop.url },
      log: () => undefined,
    },
    logger: () => undefined,
  });
});
afterAll(async () => {
  await app?.close();
  await shop.close();
  tmp.cleanup();
});

const order = (orderId: string, extra: object = {}) => ({
  orderId,
  sku: 'SKU-1',
  qty: 2,
  unitPrice: 19.99,
  address: '1 Main St',
  ...extra,
});

async function run(flow: string, input: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(`${app.ingress.url}/flows/${flow}/run`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(input),
  });
  expect(res.status).toBe(200);
  return (await res.json()) as any;
}

async function journalSteps(invocationId: string): Promise<string[]> {
  const res = await fetch(`${app.admin.url}/invocations/${invocationId}/journal`);
  const { entries } = (await res.json()) as { entries: Array<{ kind: string; name: string }> };
  return entries.filter((e) => e.kind === 'run').map((e) => e.name);
}

const stateOf = async (runId: string) =>
  (await (await fetch(`${app.ingress.url}/flows/runs/${encodeURIComponent(runId)}`)).json()) as any;

describe('exercise 2.2: a saga as a declarative workflow', () => {
  it('implements saga orchestration: reserve, charge, ship in order, each step journaled', async () => {
    const r = await run('order-saga', order('o-1', { express: true }));
    expect(r).toMatchObject({
      workflow: 'order-saga',
      success: true,
      status: 'completed',
      errors: [],
    });
    expect(r.data).toEqual({
      orderId: 'o-1',
      amount: 39.98,
      chargeId: r.outputs['charge payment'].chargeId,
      trackingNumber: r.outputs['ship express'].trackingNumber,
    });
    expect(await journalSteps(r.invocationId)).toEqual([
      'flow definition',
      'reserve inventory',
      'price',
      // The charge has a timeout: its refund is owed even if it times out (in doubt), which
      // the saga records before the charge starts.
      'register undo: charge payment',
      'charge payment',
      'express?',
      'ship express',
    ]);
    expect(shop.seen('/payments/charge').at(-1)!.body).toEqual({ orderId: 'o-1', amount: 39.98 });
    expect(shop.seen('/shipping/ship').at(-1)!.body).toMatchObject({ service: 'express' });
    const standard = await run('order-saga', order('o-1b'));
    expect(shop.seen('/shipping/ship').at(-1)!.body).toMatchObject({ service: 'standard' });
    expect(standard.outputs['ship standard']).toBeDefined();
  });

  it('handles compensations: a failed shipment refunds, then releases, in reverse order', async () => {
    shop.failAlways('/shipping/ship', 500);
    let r;
    try {
      r = await run('order-saga', order('o-2'));
    } finally {
      shop.failAlways('/shipping/ship', undefined);
    }
    expect(r).toMatchObject({ success: false, status: 'compensated', failedStep: 'ship standard' });
    expect(r.errors).toEqual([
      expect.objectContaining({ step: 'ship standard', code: 'integration_unavailable' }),
    ]);
    expect(r.compensated).toEqual(['charge payment', 'reserve inventory']);
    const steps = await journalSteps(r.invocationId);
    expect(steps.slice(-2)).toEqual(['refund payment', 'release inventory']);
    expect(shop.seen('/payments/refund').at(-1)!.body).toEqual({ orderId: 'o-2' });
    expect(shop.seen('/inventory/release').at(-1)!.body).toEqual({
      reservationId: r.outputs['reserve inventory'].reservationId,
    });

    // A declined card: nothing to refund, the reservation is released.
    const refunds = shop.seen('/payments/refund').length;
    const declined = await run('order-saga', order('o-3', { qty: 100 }));
    expect(declined).toMatchObject({ status: 'compensated', failedStep: 'charge payment' });
    expect(declined.errors).toEqual([
      expect.objectContaining({ step: 'charge payment', code: 'integration_rejected' }),
    ]);
    expect(declined.compensated).toEqual(['reserve inventory']);
    expect(shop.seen('/payments/refund')).toHaveLength(refunds);
  });

  it('manages timeouts: a payment that does not answer in time fails the saga and is compensated anyway', async () => {
    const held = shop.hold('/payments/charge');
    try {
      const r = await run('order-saga-1s', order('o-4'));
      expect(r).toMatchObject({
        success: false,
        status: 'compensated',
        failedStep: 'charge payment',
      });
      expect(r.errors).toEqual([
        expect.objectContaining({ step: 'charge payment', code: 'timeout' }),
      ]);
      // In doubt (the provider may still charge): refunded by order id, and released.
      expect(r.compensated).toEqual(['charge payment', 'reserve inventory']);
      expect(shop.seen('/payments/refund').at(-1)!.body).toEqual({ orderId: 'o-4' });
      expect(r.duration).toBeGreaterThanOrEqual(1000);
    } finally {
      held.release();
    }
  });

  it('provides idempotency: one Idempotency-Key, one saga; every call carries a stable key', async () => {
    shop.fail('/inventory/reserve', 1, 503); // retried by the flow, with the same key
    const a = await run('order-saga', order('o-5'), { 'idempotency-key': 'checkout-o-5' });
    const b = await run('order-saga', order('o-5'), { 'idempotency-key': 'checkout-o-5' });
    expect(b.invocationId).toBe(a.invocationId);
    expect(b.data).toEqual(a.data);
    const reserves = shop.seen('/inventory/reserve').filter((q) => q.body.orderId === 'o-5');
    expect(reserves).toHaveLength(2);
    expect(new Set(reserves.map((q) => q.key))).toEqual(
      new Set([`${a.invocationId}:reserve%20inventory`]),
    );
    expect(shop.seen('/payments/charge').filter((q) => q.body.orderId === 'o-5')).toHaveLength(1);
  });

  it('tracks transaction state: the run shows its current step, completed and compensated steps', async () => {
    const held = shop.hold('/shipping/ship');
    const pending = run('order-saga', order('o-6'), { 'idempotency-key': 'track-o-6' });
    await held.arrived;
    const runId = 'order-saga:idem:track-o-6';
    expect(await stateOf(runId)).toMatchObject({
      runId,
      flow: 'order-saga',
      version: 1,
      status: 'running',
      current: 'ship standard',
      completed: ['reserve inventory', 'price', 'charge payment'],
      compensated: [],
    });
    shop.failAlways('/shipping/ship', 500);
    held.release();
    const r = await pending;
    shop.failAlways('/shipping/ship', undefined);
    expect(r.status).toBe('compensated');
    expect(await stateOf(runId)).toMatchObject({
      status: 'compensated',
      failed: ['ship standard'],
      compensated: ['charge payment', 'reserve inventory'],
    });
    const inv = (await (
      await fetch(`${app.admin.url}/invocations/${r.invocationId}`)
    ).json()) as any;
    expect(inv).toMatchObject({ status: 'completed', outcome: 'compensated' });
  });
});
