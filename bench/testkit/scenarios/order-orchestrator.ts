/** examples/order-orchestrator (seed 001, exercise 1), after test/examples/orchestrators/order.test.ts. */
import { expect } from 'vitest';
import {
  FulfillmentEmail,
  FulfillmentInventory,
  FulfillmentPayments,
  FulfillmentShipping,
  FulfillmentWarehouse,
  OrderOrchestrator,
  orderFulfillment,
} from '../../../examples/order-orchestrator/index.js';
import type { OrderRequest } from '../../../examples/order-orchestrator/orchestrator.js';
import type { RunStatus } from '../../../examples/orchestration-kit/status.js';
import type { Driver, Scenario } from '../driver.js';

const services = orderFulfillment;
const options = { logger: () => undefined };

const order = (patch: Partial<OrderRequest> = {}): OrderRequest => ({
  customerId: 'c-1',
  email: 'ann@example.com',
  items: [
    { sku: 'book', quantity: 2, unitPrice: 12.5 },
    { sku: 'mug', quantity: 1, unitPrice: 8 },
  ],
  shippingAddress: {
    name: 'Ann',
    street: '1 Main St',
    city: 'Berlin',
    postalCode: '10115',
    country: 'DE',
  },
  ...patch,
});

async function stocked(d: Driver): Promise<void> {
  await d.engine.client(FulfillmentInventory, 'book').restock(10);
  await d.engine.client(FulfillmentInventory, 'mug').restock(5);
}
const onHand = async (d: Driver, sku: string) =>
  (await d.engine.client(FulfillmentInventory, sku).level()).onHand;
const events = (s: RunStatus) => s.history.map((e) => `${e.step}:${e.event}`);

export const orderOrchestratorScenarios: Scenario[] = [
  {
    name: 'fulfils an order, coordinating inventory, payment, warehouse, shipping and email',
    services,
    options,
    async run(d) {
      await stocked(d);
      const result = await d.engine.client(OrderOrchestrator, 'o-1').run(order());
      expect(result).toMatchObject({
        status: 'completed',
        orderId: 'o-1',
        amount: 33,
        paymentId: 'o-1',
        pickTicket: 'pick-main-o-1',
        carrier: 'DHL',
        emailSent: true,
      });
      if (result.status !== 'completed') throw new Error('unreachable');
      expect(await onHand(d, 'book')).toBe(8);
      expect(await onHand(d, 'mug')).toBe(4);
      expect(await d.engine.client(FulfillmentPayments, 'o-1').get()).toMatchObject({
        status: 'charged',
        amount: 33,
      });
      expect(await d.engine.client(FulfillmentShipping, 'o-1').get()).toMatchObject({
        status: 'created',
        trackingNumber: result.trackingNumber,
      });
      const inbox = await d.engine.client(FulfillmentEmail, 'ann@example.com').inbox();
      expect(inbox[0]!.body).toContain(result.trackingNumber);
      const status = await d.engine.client(OrderOrchestrator, 'o-1').status();
      expect(events(status).filter((e) => e.endsWith(':completed'))).toEqual([
        'check inventory:completed',
        'reserve book:completed',
        'reserve mug:completed',
        'charge customer:completed',
        'create pick ticket:completed',
        'create shipping label:completed',
        'send tracking email:completed',
        'run:completed',
      ]);
    },
  },
  {
    name: 'releases the stock when the payment fails, and charges nothing',
    services,
    options,
    async run(d) {
      await stocked(d);
      const result = await d.engine
        .client(OrderOrchestrator, 'o-2')
        .run(order({ simulate: { payment: 'fail' } }));
      expect(result).toMatchObject({
        status: 'compensated',
        failedStep: 'charge customer',
        error: { code: 'card_declined' },
        compensated: ['release mug', 'release book'],
      });
      expect(await onHand(d, 'book')).toBe(10);
      expect(await onHand(d, 'mug')).toBe(5);
      expect(await d.engine.client(FulfillmentPayments, 'o-2').get()).toBeNull();
    },
  },
  {
    name: 'refunds the payment, cancels the ticket and releases the stock when shipping fails',
    services,
    options,
    async run(d) {
      await stocked(d);
      const address = { ...order().shippingAddress, country: 'AQ' };
      const result = await d.engine
        .client(OrderOrchestrator, 'o-3')
        .run(order({ shippingAddress: address }));
      expect(result).toMatchObject({
        status: 'compensated',
        failedStep: 'create shipping label',
        error: { code: 'no_carrier' },
        compensated: ['cancel pick ticket', 'refund payment', 'release mug', 'release book'],
      });
      expect(await d.engine.client(FulfillmentPayments, 'o-3').get()).toMatchObject({
        status: 'refunded',
        amount: 33,
      });
      const { tickets } = await d.engine.client(FulfillmentWarehouse, 'main').tickets();
      expect(tickets['o-3']?.status).toBe('cancelled');
      expect(await onHand(d, 'book')).toBe(10);
    },
  },
  {
    name: 'refunds and releases when the warehouse is closed',
    services,
    options,
    async run(d) {
      await stocked(d);
      await d.engine.client(FulfillmentWarehouse, 'main').close();
      expect(await d.engine.client(OrderOrchestrator, 'o-4').run(order())).toMatchObject({
        status: 'compensated',
        failedStep: 'create pick ticket',
        error: { code: 'warehouse_closed' },
        compensated: ['refund payment', 'release mug', 'release book'],
      });
      expect((await d.engine.client(FulfillmentPayments, 'o-4').get())?.status).toBe('refunded');
    },
  },
  {
    name: 'stops before reserving anything when a SKU is short',
    services,
    options,
    async run(d) {
      await d.engine.client(FulfillmentInventory, 'book').restock(1);
      await d.engine.client(FulfillmentInventory, 'mug').restock(5);
      expect(await d.engine.client(OrderOrchestrator, 'o-5').run(order())).toMatchObject({
        status: 'compensated',
        failedStep: 'check inventory',
        error: { code: 'out_of_stock', message: expect.stringContaining('book (1 left)') },
        compensated: [],
      });
      expect((await d.engine.client(FulfillmentInventory, 'mug').level()).reservations).toEqual({});
    },
  },
  {
    name: 'gives up on a hung payment after 5 minutes and refunds it once it goes through',
    services,
    options,
    async run(d) {
      await stocked(d);
      const { invocationId } = await d.engine.send({
        service: 'OrderOrchestrator',
        handler: 'run',
        key: 'o-6',
        input: order({ simulate: { payment: 'stall' } }),
      });
      const status = () => d.engine.client(OrderOrchestrator, 'o-6').status();
      await d.waitFor(async () => (await status()).currentStep === 'charge customer', 'charging');
      await d.advance('4m');
      expect((await status()).state).toBe('running');
      await d.advance('1m');
      await d.waitFor(async () => (await status()).state === 'compensating', 'compensating');
      expect(await d.engine.client(FulfillmentPayments, 'o-6').get()).toBeNull();
      await d.advance('1h');
      expect(await d.engine.attach(invocationId)).toMatchObject({
        status: 'compensated',
        failedStep: 'charge customer',
        error: { code: 'timeout' },
        compensated: ['refund payment', 'release mug', 'release book'],
      });
      expect(await d.engine.client(FulfillmentPayments, 'o-6').get()).toMatchObject({
        status: 'refunded',
        amount: 33,
      });
      expect(await onHand(d, 'book')).toBe(10);
    },
  },
  {
    name: 'completes the order when only the tracking email fails',
    services,
    options,
    async run(d) {
      await stocked(d);
      const result = await d.engine
        .client(OrderOrchestrator, 'o-7')
        .run(order({ email: 'ann@nowhere.invalid' }));
      expect(result).toMatchObject({ status: 'completed', emailSent: false });
      const status = await d.engine.client(OrderOrchestrator, 'o-7').status();
      expect(events(status)).toContain('send tracking email:failed');
      expect((await d.engine.client(FulfillmentPayments, 'o-7').get())?.status).toBe('charged');
    },
  },
  {
    name: 'runs an order id once: a second run returns the first result',
    services,
    options,
    async run(d) {
      await stocked(d);
      const first = await d.engine.client(OrderOrchestrator, 'o-8').run(order());
      const again = await d.engine
        .client(OrderOrchestrator, 'o-8')
        .run(order({ items: [{ sku: 'book', quantity: 5, unitPrice: 1 }] }));
      expect(again).toEqual(first);
      expect(await onHand(d, 'book')).toBe(8);
      expect(
        (await d.engine.listInvocations({ service: 'FulfillmentPayments' })).invocations,
      ).toHaveLength(1);
    },
  },
  {
    name: 'rejects an invalid order with a 400 before doing anything',
    services,
    options,
    async run(d) {
      await expect(
        d.engine.client(OrderOrchestrator, 'bad').run({ ...order(), items: [] }),
      ).rejects.toMatchObject({ status: 400, code: 'validation_failed' });
      expect((await d.engine.client(OrderOrchestrator, 'bad').status()).state).toBe('not_started');
    },
  },
  {
    name: 'keeps going across a restart in the middle of the order',
    services,
    options,
    async run(d) {
      await stocked(d);
      const { invocationId } = await d.engine.send({
        service: 'OrderOrchestrator',
        handler: 'run',
        key: 'o-9',
        input: order({ simulate: { warehouse: 'stall' } }),
      });
      const status = () => d.engine.client(OrderOrchestrator, 'o-9').status();
      await d.waitFor(async () => (await status()).currentStep === 'create pick ticket', 'picking');
      await d.restart();
      expect(await d.finish(invocationId, '10m')).toMatchObject({
        status: 'compensated',
        failedStep: 'create pick ticket',
        error: { code: 'timeout' },
      });
      const { tickets } = await d.engine.client(FulfillmentWarehouse, 'main').tickets();
      expect(tickets['o-9']?.status).toBe('cancelled');
      expect((await d.engine.client(FulfillmentPayments, 'o-9').get())?.status).toBe('refunded');
    },
  },
];
