import { expect, it } from 'vitest';
import { OrderSaga, OrderSagaInventory, orderSaga } from '../../examples/order-saga/index.js';
import { checkCrashes, testApp } from '../../src/testing/index.js';

/** The README's "Testing your services" snippet, as written there. */
const order = (orderId: string) => ({
  orderId,
  customerId: 'cust-1',
  items: [{ sku: 'ITEM-001', quantity: 2 }],
  amount: 99.99,
});

it('charges, reserves, ships', async () => {
  await using t = await testApp({ services: orderSaga, replay: 'every-step' });
  const id = await t.workflowSend(OrderSaga, 'o-1').run(order('o-1'));
  await t.runUntilIdle({ skipTime: true }); // fires every sleep and retry on the way
  expect(await t.attach(id)).toMatchObject({ status: 'completed', paymentId: 'pay_o-1' });
  expect(await t.object(OrderSagaInventory, 'main').stock()).toMatchObject({
    available: { 'ITEM-001': 98 },
  });
});

it('charges once, whatever crashes', async () => {
  const report = await checkCrashes({
    services: orderSaga,
    run: (t) => t.workflowSend(OrderSaga, 'o-2').run(order('o-2')),
  });
  expect(report.baseline.outcome).toMatchObject({ output: { status: 'completed' } });
  expect(report.points.length).toBeGreaterThan(10);
});
