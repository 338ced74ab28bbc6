import { afterEach, describe, expect, it } from 'vitest';
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
import { serve } from '../../../src/ingress/index.js';
import { harness, until, type Harness } from '../../helpers.js';

/**
 * Exercise 1 (E-Commerce Order Saga): payment → inventory → shipment → email; a failed
 * inventory step refunds, a failed shipment releases and refunds, a failed email does not
 * fail the order. Downstream state (ledger, stock, shipment, outbox) is checked every time.
 */
let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const start = async (): Promise<Harness> => (h = await harness({ services: orderSaga }));

/** The seed's request, for another order id and customer when given. */
const order = (orderId: string, customerId = 'cust-123', over: Partial<OrderRequest> = {}) => ({
  orderId,
  customerId,
  items: [{ sku: 'ITEM-001', quantity: 2 }],
  amount: 99.99,
  ...over,
});

const views = (e: Harness['engine'], orderId: string, customerId: string) => ({
  ledger: () => e.client(OrderSagaPayments, customerId).ledger(),
  stock: async () => (await e.client(OrderSagaInventory, 'main').stock()).available,
  shipment: () => e.client(OrderSagaShipping, orderId).shipment(),
  outbox: () => e.client(OrderSagaEmail, customerId).outbox(),
});

describe('OrderSaga (seed 002, exercise 1)', () => {
  it('charges, reserves, ships and emails: the seed’s curl request completes', async () => {
    const { engine } = await start();
    const v = views(engine, 'order-001', 'cust-123');
    const result = await engine.client(OrderSaga, 'order-001').run(order('order-001'));
    expect(result).toEqual({
      status: 'completed',
      paymentId: 'pay_order-001',
      reservationId: 'res_order-001',
      shipmentId: 'shp_order-001',
      emailSent: true,
    });
    expect(await v.ledger()).toMatchObject({ captured: 99.99, refunded: 0, replays: 0 });
    expect((await v.stock())['ITEM-001']).toBe(98);
    expect(await v.shipment()).toMatchObject({
      status: 'label_created',
      reservationId: 'res_order-001',
    });
    expect(await v.outbox()).toHaveLength(1);
    expect(await engine.client(OrderSaga, 'order-001').status()).toMatchObject({
      stage: 'done',
      outcome: 'completed',
    });

    // A workflow runs once per key: the same order again returns the same result, charging once.
    expect(await engine.client(OrderSaga, 'order-001').run(order('order-001'))).toEqual(result);
    expect((await v.ledger()).payments).toHaveLength(1);
    expect((await v.stock())['ITEM-001']).toBe(98);
  });

  it('payment fails: nothing is reserved or shipped', async () => {
    const { engine } = await start();
    const v = views(engine, 'o-pay', 'cust-fail-payment');
    expect(
      await engine.client(OrderSaga, 'o-pay').run(order('o-pay', 'cust-fail-payment')),
    ).toEqual({
      status: 'payment_failed',
      reason: 'payment_declined',
      message: expect.stringContaining('declined'),
      compensated: [],
    });
    expect((await v.ledger()).payments).toEqual([]);
    expect((await v.stock())['ITEM-001']).toBe(100);
    expect(await v.shipment()).toBeNull();
  });

  it('inventory fails: the payment is refunded, the stock is untouched (all or nothing)', async () => {
    const { engine } = await start();
    const v = views(engine, 'o-stock', 'cust-7');
    const items = [
      { sku: 'ITEM-001', quantity: 1 },
      { sku: 'ITEM-SOLD-OUT', quantity: 1 },
    ];
    expect(
      await engine.client(OrderSaga, 'o-stock').run(order('o-stock', 'cust-7', { items })),
    ).toMatchObject({
      status: 'inventory_failed',
      reason: 'out_of_stock',
      compensated: ['charge payment'],
    });
    expect(await v.ledger()).toMatchObject({ captured: 0, refunded: 99.99, replays: 0 });
    expect((await v.stock())['ITEM-001']).toBe(100); // the first line was not taken either
    expect(await v.shipment()).toBeNull();
  });

  it('shipment fails: the inventory is released, then the payment refunded', async () => {
    const { engine } = await start();
    const v = views(engine, 'o-ship', 'cust-fail-shipment');
    expect(
      await engine.client(OrderSaga, 'o-ship').run(order('o-ship', 'cust-fail-shipment')),
    ).toMatchObject({
      status: 'shipment_failed',
      reason: 'no_carrier',
      compensated: ['reserve inventory', 'charge payment'],
    });
    expect(await v.ledger()).toMatchObject({ captured: 0, refunded: 99.99, replays: 0 });
    expect((await v.stock())['ITEM-001']).toBe(100);
    const { reservations } = await engine.client(OrderSagaInventory, 'main').stock();
    expect(reservations).toMatchObject([{ reservationId: 'res_o-ship', status: 'released' }]);
    expect(await v.outbox()).toEqual([]);
  });

  it('email fails: the order still completes, nothing is undone', async () => {
    const { engine } = await start();
    const v = views(engine, 'o-mail', 'cust-fail-email');
    expect(
      await engine.client(OrderSaga, 'o-mail').run(order('o-mail', 'cust-fail-email')),
    ).toEqual({
      status: 'completed',
      paymentId: 'pay_o-mail',
      reservationId: 'res_o-mail',
      shipmentId: 'shp_o-mail',
      emailSent: false,
    });
    expect(await v.ledger()).toMatchObject({ captured: 99.99, refunded: 0 });
    expect((await v.stock())['ITEM-001']).toBe(98);
    expect(await v.shipment()).toMatchObject({ status: 'label_created' });
  });

  it('waits durably for a slow carrier, and a cancel meanwhile undoes every step', async () => {
    const { engine, clock } = await start();
    const slow = await engine.send({
      service: 'OrderSaga',
      handler: 'run',
      key: 'o-slow',
      input: order('o-slow', 'cust-slow-shipment'),
    });
    await until(
      async () => (await engine.client(OrderSaga, 'o-slow').status()).stage === 'shipment',
      'waiting for the carrier',
    );
    await clock.advance('3s');
    expect(await engine.attach(slow.invocationId)).toMatchObject({ status: 'completed' });

    const cancelled = await engine.send({
      service: 'OrderSaga',
      handler: 'run',
      key: 'o-cancel',
      input: order('o-cancel', 'cust-slow-shipment'),
    });
    await until(
      async () => (await engine.client(OrderSaga, 'o-cancel').status()).stage === 'shipment',
      'waiting for the carrier',
    );
    await engine.cancel(cancelled.invocationId);
    await clock.advance('3s'); // the shipment call finishes cancelled; compensation runs
    await expect(engine.attach(cancelled.invocationId)).rejects.toBeInstanceOf(CancelledError);
    const v = views(engine, 'o-cancel', 'cust-slow-shipment');
    expect((await v.ledger()).payments).toMatchObject([
      { orderId: 'o-slow', status: 'captured' },
      { orderId: 'o-cancel', status: 'refunded' },
    ]);
    expect((await v.stock())['ITEM-001']).toBe(98); // o-slow's two units only
    expect((await engine.getInvocation(cancelled.invocationId))?.outcome).toBe('compensated');
  });

  it('refuses bad input with a 400 before any side effect', async () => {
    const { engine } = await start();
    await expect(
      engine.client(OrderSaga, 'o-bad').run(order('o-bad', 'cust-1', { amount: -5 })),
    ).rejects.toMatchObject({ status: 400, code: 'validation_failed' });
    await expect(engine.client(OrderSaga, 'o-key').run(order('another-id'))).rejects.toMatchObject({
      status: 400,
    });
    expect((await engine.client(OrderSagaPayments, 'cust-1').ledger()).payments).toEqual([]);
  });

  it('a refused request does not take the order id: the valid request that follows runs', async () => {
    const { engine } = await start();
    const ingress = await serve(engine, { port: 0 });
    try {
      const post = async (body: unknown) => {
        const res = await fetch(`${ingress.url}/OrderSaga/order-001/run`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(body),
        });
        return { status: res.status, body: (await res.json()) as Record<string, unknown> };
      };
      expect((await post({})).status).toBe(400);
      // Refused inside the handler (the body contradicts the URL key): nothing journaled either.
      expect((await post(order('another-id'))).status).toBe(400);
      expect(await post(order('order-001'))).toMatchObject({
        status: 200,
        body: { status: 'completed', paymentId: 'pay_order-001' },
      });
      expect((await engine.client(OrderSagaPayments, 'cust-123').ledger()).payments).toHaveLength(
        1,
      );
    } finally {
      await ingress.close();
    }
  });
});
