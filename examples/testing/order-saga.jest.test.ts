/**
 * Testing a Keel service with `keel/testing` and Jest: the order saga of `examples/order-saga`,
 * on a temporary SQLite file and a fake clock. The same scenarios as `order-saga.test.ts`
 * (Vitest) and `order-saga.node-test.ts` (`node:test`); see docs/testing.md.
 *
 * Run: `npm run test:jest`, with the config in `jest.config.json` beside this file: Jest runs
 * TypeScript through @swc/jest, as ES modules (Node's `--experimental-vm-modules`), and maps
 * `keel/testing` to Keel's sources, so this file imports the kit as an app does. The test
 * functions come from `@jest/globals` (typed, no global types needed).
 */
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { testApp, type TestApp } from 'keel/testing';
import {
  OrderSaga,
  OrderSagaInventory,
  OrderSagaPayments,
  OrderSagaShipping,
  orderSaga,
  type OrderRequest,
} from '../order-saga/index.js';

const order = (orderId: string, customerId: string): OrderRequest => ({
  orderId,
  customerId,
  items: [{ sku: 'ITEM-001', quantity: 2 }],
  amount: 99.99,
});

let t: TestApp;
beforeEach(async () => {
  t = await testApp({ services: orderSaga });
});
afterEach(() => t.close());

describe('OrderSaga, tested with testApp', () => {
  it('charges, reserves, ships and emails', async () => {
    // A typed call, as a handler makes it: the input and the result are checked by tsc.
    const result = await t.workflow(OrderSaga, 'order-001').run(order('order-001', 'cust-123'));
    expect(result).toMatchObject({ status: 'completed', paymentId: 'pay_order-001' });

    // Assert on durable state directly: the payments object of the customer, the stock.
    const payments = await t.state(OrderSagaPayments, 'cust-123');
    expect(payments).toMatchObject({
      state: { payments: { 'pay_order-001': { amountCents: 9999, status: 'captured' } } },
    });
    expect(await t.object(OrderSagaInventory, 'main').stock()).toMatchObject({
      available: { 'ITEM-001': 98 },
    });
  });

  it('refunds and releases when no carrier ships the order', async () => {
    const id = await t.workflowSend(OrderSaga, 'o-ship').run(order('o-ship', 'cust-fail-shipment'));
    await t.idle(); // the saga and every call it made have run

    expect(await t.output(id)).toMatchObject({
      ready: true,
      outcome: {
        output: {
          status: 'shipment_failed',
          compensated: ['reserve inventory', 'charge payment'],
        },
      },
    });
    expect(await t.object(OrderSagaPayments, 'cust-fail-shipment').ledger()).toMatchObject({
      captured: 0,
      refunded: 99.99,
    });
  });

  it('waits for a slow carrier on the fake clock', async () => {
    const id = await t.workflowSend(OrderSaga, 'o-slow').run(order('o-slow', 'cust-slow-shipment'));
    await t.idle();
    // The carrier sleeps 3 s (durably): the saga waits in the shipment stage.
    expect(await t.workflow(OrderSaga, 'o-slow').status()).toMatchObject({ stage: 'shipment' });
    expect(await t.output(id)).toMatchObject({ ready: false });

    await t.advance('3s');
    expect(await t.attach(id)).toMatchObject({ status: 'completed', shipmentId: 'shp_o-slow' });
    expect(await t.object(OrderSagaShipping, 'o-slow').shipment()).toMatchObject({
      status: 'label_created',
    });

    // The saga's journal: its calls, in order (a sleep was the carrier's, not the saga's).
    const calls = (await t.journal(id)).filter((e) => e.kind === 'call').map((e) => e.name);
    expect(calls).toEqual([
      'OrderSagaPayments/cust-slow-shipment/charge',
      'OrderSagaInventory/main/reserve',
      'OrderSagaShipping/o-slow/create',
      'OrderSagaEmail/cust-slow-shipment/sendConfirmation',
    ]);
  });
});
