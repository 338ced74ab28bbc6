/**
 * Testing a Keel service with `keel/testing` and Node's own test runner (`node:test` with
 * `node:assert`): the order saga of `examples/order-saga`, on a temporary SQLite file and a fake
 * clock. The same scenarios as `order-saga.test.ts` (Vitest) and `order-saga.jest.test.ts`
 * (Jest); see docs/testing.md.
 *
 * Run: `npm run test:node`, that is `node --import tsx --test <this file>` (tsx compiles the
 * TypeScript; it also maps `keel/testing` to Keel's sources through the `paths` entry of
 * tsconfig.json, so this file imports the kit as an app does).
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { testApp, type TestApp } from 'keel/testing';
import {
  OrderSaga,
  OrderSagaInventory,
  OrderSagaPayments,
  OrderSagaShipping,
  orderSaga,
  type OrderRequest,
  type OrderResult,
} from '../order-saga/index.js';

const order = (orderId: string, customerId: string): OrderRequest => ({
  orderId,
  customerId,
  items: [{ sku: 'ITEM-001', quantity: 2 }],
  amount: 99.99,
});

/** A payment as `OrderSagaPayments` keeps it in its `state` entry. */
type PaymentsState = {
  state: { payments: Record<string, { amountCents: number; status: string }> };
};

describe('OrderSaga, tested with testApp', () => {
  let t: TestApp;
  beforeEach(async () => {
    t = await testApp({ services: orderSaga });
  });
  afterEach(() => t.close());

  it('charges, reserves, ships and emails', async () => {
    // A typed call, as a handler makes it: the input and the result are checked by tsc.
    const result = await t.workflow(OrderSaga, 'order-001').run(order('order-001', 'cust-123'));
    assert.equal(result.status, 'completed');
    assert.equal(result.paymentId, 'pay_order-001');

    // Assert on durable state directly: the payments object of the customer, the stock.
    const { state } = await t.state<PaymentsState>(OrderSagaPayments, 'cust-123');
    assert.equal(state.payments['pay_order-001']?.amountCents, 9999);
    assert.equal(state.payments['pay_order-001']?.status, 'captured');
    const stock = await t.object(OrderSagaInventory, 'main').stock();
    assert.equal(stock.available['ITEM-001'], 98);
  });

  it('refunds and releases when no carrier ships the order', async () => {
    const id = await t.workflowSend(OrderSaga, 'o-ship').run(order('o-ship', 'cust-fail-shipment'));
    await t.idle(); // the saga and every call it made have run

    const out = await t.output(id);
    assert.ok(out.ready && 'output' in out.outcome, 'the saga has finished with an output');
    const result = out.outcome.output as OrderResult;
    assert.equal(result.status, 'shipment_failed');
    assert.deepEqual(result.compensated, ['reserve inventory', 'charge payment']);

    const ledger = await t.object(OrderSagaPayments, 'cust-fail-shipment').ledger();
    assert.equal(ledger.captured, 0);
    assert.equal(ledger.refunded, 99.99);
  });

  it('waits for a slow carrier on the fake clock', async () => {
    const id = await t.workflowSend(OrderSaga, 'o-slow').run(order('o-slow', 'cust-slow-shipment'));
    await t.idle();
    // The carrier sleeps 3 s (durably): the saga waits in the shipment stage.
    assert.equal((await t.workflow(OrderSaga, 'o-slow').status()).stage, 'shipment');
    assert.equal((await t.output(id)).ready, false);

    await t.advance('3s');
    const result = await t.attach<OrderResult>(id);
    assert.equal(result.status, 'completed');
    assert.equal(result.shipmentId, 'shp_o-slow');
    assert.equal((await t.object(OrderSagaShipping, 'o-slow').shipment())?.status, 'label_created');

    // The saga's journal: its calls, in order (a sleep was the carrier's, not the saga's).
    const calls = (await t.journal(id)).filter((e) => e.kind === 'call').map((e) => e.name);
    assert.deepEqual(calls, [
      'OrderSagaPayments/cust-slow-shipment/charge',
      'OrderSagaInventory/main/reserve',
      'OrderSagaShipping/o-slow/create',
      'OrderSagaEmail/cust-slow-shipment/sendConfirmation',
    ]);
  });
});
