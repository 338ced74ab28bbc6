/** examples/order-saga (seed 002, exercise 1), after test/examples/sagas/order-saga.test.ts. */
import { expect } from 'vitest';
import {
  OrderSaga,
  OrderSagaEmail,
  OrderSagaInventory,
  OrderSagaPayments,
  OrderSagaShipping,
  orderSaga,
  type OrderRequest,
} from '../../../examples/order-saga/index.js';
import { CancelledError } from '../../../src/index.js';
import type { Driver, Scenario } from '../driver.js';

const services = orderSaga;

const order = (orderId: string, customerId = 'cust-123', over: Partial<OrderRequest> = {}) => ({
  orderId,
  customerId,
  items: [{ sku: 'ITEM-001', quantity: 2 }],
  amount: 99.99,
  ...over,
});

const views = (d: Driver, orderId: string, customerId: string) => ({
  ledger: () => d.engine.client(OrderSagaPayments, customerId).ledger(),
  stock: async () => (await d.engine.client(OrderSagaInventory, 'main').stock()).available,
  shipment: () => d.engine.client(OrderSagaShipping, orderId).shipment(),
  outbox: () => d.engine.client(OrderSagaEmail, customerId).outbox(),
});

const send = (d: Driver, orderId: string, customerId: string) =>
  d.engine.send({
    service: 'OrderSaga',
    handler: 'run',
    key: orderId,
    input: order(orderId, customerId),
  });
const stage = async (d: Driver, orderId: string) =>
  (await d.engine.client(OrderSaga, orderId).status()).stage;

/** The happy path for one order (several orders and amounts below). */
const happy = (orderId: string, quantity: number, amount: number): Scenario => ({
  name: `charges, reserves, ships and emails ${orderId} (${quantity} × ITEM-001)`,
  services,
  async run(d) {
    const v = views(d, orderId, 'cust-123');
    const items = [{ sku: 'ITEM-001', quantity }];
    const result = await d.engine
      .client(OrderSaga, orderId)
      .run(order(orderId, 'cust-123', { items, amount }));
    expect(result).toEqual({
      status: 'completed',
      paymentId: `pay_${orderId}`,
      reservationId: `res_${orderId}`,
      shipmentId: `shp_${orderId}`,
      emailSent: true,
    });
    expect(await v.ledger()).toMatchObject({ captured: amount, refunded: 0, replays: 0 });
    expect((await v.stock())['ITEM-001']).toBe(100 - quantity);
    expect(await v.shipment()).toMatchObject({
      status: 'label_created',
      reservationId: `res_${orderId}`,
    });
    expect(await v.outbox()).toHaveLength(1);
    expect(await d.engine.client(OrderSaga, orderId).status()).toMatchObject({
      stage: 'done',
      outcome: 'completed',
    });
    // A workflow runs once per key: the same order again returns the same result, charging once.
    expect(
      await d.engine.client(OrderSaga, orderId).run(order(orderId, 'cust-123', { items, amount })),
    ).toEqual(result);
    expect((await v.ledger()).payments).toHaveLength(1);
  },
});

export const orderSagaScenarios: Scenario[] = [
  happy('order-001', 2, 99.99),
  happy('order-002', 1, 10),
  happy('order-003', 5, 250.5),
  {
    name: 'payment fails: nothing is reserved or shipped',
    services,
    async run(d) {
      const v = views(d, 'o-pay', 'cust-fail-payment');
      expect(
        await d.engine.client(OrderSaga, 'o-pay').run(order('o-pay', 'cust-fail-payment')),
      ).toEqual({
        status: 'payment_failed',
        reason: 'payment_declined',
        message: expect.stringContaining('declined'),
        compensated: [],
      });
      expect((await v.ledger()).payments).toEqual([]);
      expect((await v.stock())['ITEM-001']).toBe(100);
      expect(await v.shipment()).toBeNull();
    },
  },
  {
    name: 'inventory fails: the payment is refunded, the stock is untouched',
    services,
    async run(d) {
      const v = views(d, 'o-stock', 'cust-7');
      const items = [
        { sku: 'ITEM-001', quantity: 1 },
        { sku: 'ITEM-SOLD-OUT', quantity: 1 },
      ];
      expect(
        await d.engine.client(OrderSaga, 'o-stock').run(order('o-stock', 'cust-7', { items })),
      ).toMatchObject({
        status: 'inventory_failed',
        reason: 'out_of_stock',
        compensated: ['charge payment'],
      });
      expect(await v.ledger()).toMatchObject({ captured: 0, refunded: 99.99, replays: 0 });
      expect((await v.stock())['ITEM-001']).toBe(100);
      expect(await v.shipment()).toBeNull();
    },
  },
  {
    name: 'shipment fails: the inventory is released, then the payment refunded',
    services,
    async run(d) {
      const v = views(d, 'o-ship', 'cust-fail-shipment');
      expect(
        await d.engine.client(OrderSaga, 'o-ship').run(order('o-ship', 'cust-fail-shipment')),
      ).toMatchObject({
        status: 'shipment_failed',
        reason: 'no_carrier',
        compensated: ['reserve inventory', 'charge payment'],
      });
      expect(await v.ledger()).toMatchObject({ captured: 0, refunded: 99.99, replays: 0 });
      expect((await v.stock())['ITEM-001']).toBe(100);
      const { reservations } = await d.engine.client(OrderSagaInventory, 'main').stock();
      expect(reservations).toMatchObject([{ reservationId: 'res_o-ship', status: 'released' }]);
      expect(await v.outbox()).toEqual([]);
    },
  },
  {
    name: 'email fails: the order still completes, nothing is undone',
    services,
    async run(d) {
      const v = views(d, 'o-mail', 'cust-fail-email');
      expect(
        await d.engine.client(OrderSaga, 'o-mail').run(order('o-mail', 'cust-fail-email')),
      ).toMatchObject({ status: 'completed', emailSent: false });
      expect(await v.ledger()).toMatchObject({ captured: 99.99, refunded: 0 });
      expect((await v.stock())['ITEM-001']).toBe(98);
      expect(await v.shipment()).toMatchObject({ status: 'label_created' });
    },
  },
  {
    name: 'waits durably (3 s) for a slow carrier, then completes',
    services,
    async run(d) {
      const slow = await send(d, 'o-slow', 'cust-slow-shipment');
      await d.waitFor(async () => (await stage(d, 'o-slow')) === 'shipment', 'the carrier');
      expect((await d.engine.output(slow.invocationId)).ready).toBe(false);
      await d.advance('3s');
      expect(await d.engine.attach(slow.invocationId)).toMatchObject({ status: 'completed' });
      expect(await views(d, 'o-slow', 'cust-slow-shipment').shipment()).toMatchObject({
        status: 'label_created',
      });
    },
  },
  {
    name: 'a cancel while the carrier is slow undoes every step',
    services,
    async run(d) {
      const cancelled = await send(d, 'o-cancel', 'cust-slow-shipment');
      await d.waitFor(async () => (await stage(d, 'o-cancel')) === 'shipment', 'the carrier');
      await d.engine.cancel(cancelled.invocationId);
      await d.advance('3s'); // the shipment call finishes cancelled; compensation runs
      await expect(d.engine.attach(cancelled.invocationId)).rejects.toBeInstanceOf(CancelledError);
      const v = views(d, 'o-cancel', 'cust-slow-shipment');
      expect((await v.ledger()).payments).toMatchObject([
        { orderId: 'o-cancel', status: 'refunded' },
      ]);
      expect((await v.stock())['ITEM-001']).toBe(100);
      expect((await d.engine.getInvocation(cancelled.invocationId))?.outcome).toBe('compensated');
    },
  },
  {
    name: 'a slow order survives a restart while the carrier works',
    services,
    async run(d) {
      const slow = await send(d, 'o-restart', 'cust-slow-shipment');
      await d.waitFor(async () => (await stage(d, 'o-restart')) === 'shipment', 'the carrier');
      await d.restart();
      expect(await d.finish(slow.invocationId)).toMatchObject({ status: 'completed' });
      expect((await views(d, 'o-restart', 'cust-slow-shipment').ledger()).payments).toHaveLength(1);
    },
  },
  {
    name: 'refuses bad input with a 400 before any side effect',
    services,
    async run(d) {
      await expect(
        d.engine.client(OrderSaga, 'o-bad').run(order('o-bad', 'cust-1', { amount: -5 })),
      ).rejects.toMatchObject({ status: 400, code: 'validation_failed' });
      await expect(
        d.engine.client(OrderSaga, 'o-key').run(order('another-id')),
      ).rejects.toMatchObject({
        status: 400,
      });
      expect((await d.engine.client(OrderSagaPayments, 'cust-1').ledger()).payments).toEqual([]);
    },
  },
];
