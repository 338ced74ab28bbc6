/**
 * Seed 000, exercise 3 (inventory), one test per Success Criteria box: out of stock is a
 * terminal error (checked before the charge: nothing charged); the stock is reserved after the
 * payment; the reservation is released (and the payment refunded) when shipping fails; every
 * call is journaled, so a crash and restart repeats none of them.
 */
import { describe, expect, it } from 'vitest';
import {
  OrderInventory,
  OrderShipments,
  UNSHIPPABLE_CUSTOMER,
} from '../../../examples/order-notifications/index.js';
import { indexOf, order, placeOrder, useSystem } from './support.js';

const start = useSystem();

describe('NotifiedOrder: inventory (seed 000, exercise 3)', () => {
  it('out of stock: a terminal error before any charge', async () => {
    const s = await start();
    const items = [
      { productId: 'PROD-001', quantity: 1, price: 29.99 },
      { productId: 'PROD-SOLD-OUT', quantity: 1, price: 5 },
    ];
    const run = await placeOrder(s, order('inv-1', { items, total: 34.99 }));
    expect(run.error?.code).toBe('out_of_stock');
    const inv = await s.engine.getInvocation(run.id);
    // Terminal: failed at once, never retried.
    expect(inv?.attempt).toBe(0);
    expect(inv?.status).toBe('failed');
    expect(s.app.connectors.mocks.payments.requests).toHaveLength(0);
    const journal = await s.engine.getJournal(run.id);
    expect(indexOf(journal, 'OrderPayments.create_charge')).toBe(-1);
    expect(indexOf(journal, /reserveInventory/)).toBe(-1);
    expect(await s.engine.client(s.app.NotifiedOrder, 'inv-1').status()).toMatchObject({
      status: 'failed',
      failure: { code: 'out_of_stock' },
    });
    expect((await s.engine.client(OrderInventory, 'main').stock()).stock['PROD-001']).toBe(100);
  });

  it('checks before the charge and reserves after it', async () => {
    const s = await start();
    const run = await placeOrder(s, order('inv-2'));
    expect(run.value?.reservation).toEqual({ id: 'res_inv-2', items: order('inv-2').items });
    const journal = await s.engine.getJournal(run.id);
    const check = indexOf(journal, 'OrderInventory/main/checkAvailability');
    const charge = indexOf(journal, 'OrderPayments.create_charge');
    const reserve = indexOf(journal, 'OrderInventory/main/reserveInventory');
    expect(check).toBeGreaterThanOrEqual(0);
    expect(charge).toBeGreaterThan(check);
    expect(reserve).toBeGreaterThan(charge);
    const stock = await s.engine.client(OrderInventory, 'main').stock();
    expect(stock.stock).toMatchObject({ 'PROD-001': 98, 'PROD-003': 2 });
    expect(stock.reservations).toEqual([
      expect.objectContaining({ id: 'res_inv-2', status: 'reserved' }),
    ]);
  });

  it('releases the reservation and refunds when shipping fails', async () => {
    const s = await start();
    const run = await placeOrder(s, order('inv-3', { customerId: UNSHIPPABLE_CUSTOMER }));
    expect(run.error?.code).toBe('shipping_unavailable');
    const status = await s.engine.client(s.app.NotifiedOrder, 'inv-3').status();
    expect(status).toMatchObject({
      status: 'failed',
      failure: {
        code: 'shipping_unavailable',
        compensated: ['release reservation', 'refund payment'],
      },
    });
    const stock = await s.engine.client(OrderInventory, 'main').stock();
    expect(stock.stock).toMatchObject({ 'PROD-001': 100, 'PROD-003': 3 });
    expect(stock.reservations).toEqual([
      expect.objectContaining({ id: 'res_inv-3', status: 'released' }),
    ]);
    expect(s.app.connectors.mocks.payments.requests.map((r) => r.path)).toEqual([
      '/v1/charges',
      '/v1/refunds',
    ]);
    expect(await s.engine.client(OrderShipments, 'inv-3').get()).toBeNull();
  });

  it('journals every call: replayed after a crash, none is made again', async () => {
    const s = await start();
    const run = await placeOrder(s, order('inv-4'));
    const journal = await s.engine.getJournal(run.id);
    expect(journal.filter((e) => e.kind === 'call').map((e) => e.name)).toEqual([
      'OrderInventory/main/checkAvailability',
      'OrderInventory/main/checkAvailability',
      'OrderInventory/main/reserveInventory',
      'OrderShipments/inv-4/create',
    ]);
    expect(journal.filter((e) => e.kind === 'run').map((e) => e.name)).toContain(
      'OrderPayments.create_charge',
    );
    // The same order again (a workflow runs once per key): the recorded result, no new charge.
    await s.crashAndRestart({});
    const again = await placeOrder(s, order('inv-4'));
    expect(again.value).toEqual(run.value);
    expect(s.app.connectors.mocks.payments.requests).toHaveLength(0);
    expect((await s.engine.client(OrderInventory, 'main').stock()).stock['PROD-001']).toBe(98);
  });
});
