/**
 * Seed 001, exercise 1 (order fulfillment). Success criteria:
 * - complete workflow implemented  → "fulfils an order ..."
 * - compensation logic works       → "releases the stock when the payment fails", "refunds ...
 *                                     when shipping fails", the warehouse, stall and stock cases
 * - idempotent operations          → "runs an order id once ..." and "downstream operations ..."
 * - all services coordinated       → "fulfils an order ..." checks every service's state
 */
import { describe, expect, it } from 'vitest';
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
import type { Harness } from '../../helpers.js';
import { driveUntil, events, untilStatus, useHarness } from './support.js';

const start = useHarness(orderFulfillment);

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

async function stocked(h: Harness): Promise<void> {
  await h.engine.client(FulfillmentInventory, 'book').restock(10);
  await h.engine.client(FulfillmentInventory, 'mug').restock(5);
}

const onHand = async (h: Harness, sku: string) =>
  (await h.engine.client(FulfillmentInventory, sku).level()).onHand;

describe('OrderOrchestrator', () => {
  it('fulfils an order, coordinating inventory, payment, warehouse, shipping and email', async () => {
    const h = await start();
    await stocked(h);
    const result = await h.engine.client(OrderOrchestrator, 'o-1').run(order());

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
    // Every service holds its part of the order.
    expect(await onHand(h, 'book')).toBe(8);
    expect(await onHand(h, 'mug')).toBe(4);
    expect(await h.engine.client(FulfillmentPayments, 'o-1').get()).toMatchObject({
      status: 'charged',
      amount: 33,
      customerId: 'c-1',
    });
    const warehouse = await h.engine.client(FulfillmentWarehouse, 'main').tickets();
    expect(warehouse.tickets['o-1']).toMatchObject({ status: 'open', items: expect.any(Array) });
    expect(await h.engine.client(FulfillmentShipping, 'o-1').get()).toMatchObject({
      status: 'created',
      trackingNumber: result.trackingNumber,
    });
    const inbox = await h.engine.client(FulfillmentEmail, 'ann@example.com').inbox();
    expect(inbox).toHaveLength(1);
    expect(inbox[0]!.body).toContain(result.trackingNumber);

    // The status shows the steps in the seed's order.
    const status = await h.engine.client(OrderOrchestrator, 'o-1').status();
    expect(status.state).toBe('completed');
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
  });

  it('releases the stock when the payment fails, and charges nothing', async () => {
    const h = await start();
    await stocked(h);
    const result = await h.engine
      .client(OrderOrchestrator, 'o-2')
      .run(order({ simulate: { payment: 'fail' } }));

    expect(result).toMatchObject({
      status: 'compensated',
      failedStep: 'charge customer',
      error: { code: 'card_declined' },
      compensated: ['release mug', 'release book'],
    });
    expect(await onHand(h, 'book')).toBe(10);
    expect(await onHand(h, 'mug')).toBe(5);
    expect(await h.engine.client(FulfillmentPayments, 'o-2').get()).toBeNull();
    expect((await h.engine.client(FulfillmentWarehouse, 'main').tickets()).tickets).toEqual({});
  });

  it('refunds the payment (and cancels the ticket, releases the stock) when shipping fails', async () => {
    const h = await start();
    await stocked(h);
    const address = { ...order().shippingAddress, country: 'AQ' };
    const result = await h.engine
      .client(OrderOrchestrator, 'o-3')
      .run(order({ shippingAddress: address }));

    expect(result).toMatchObject({
      status: 'compensated',
      failedStep: 'create shipping label',
      error: { code: 'no_carrier' },
      compensated: ['cancel pick ticket', 'refund payment', 'release mug', 'release book'],
    });
    expect(await h.engine.client(FulfillmentPayments, 'o-3').get()).toMatchObject({
      status: 'refunded',
      amount: 33,
    });
    const { tickets } = await h.engine.client(FulfillmentWarehouse, 'main').tickets();
    expect(tickets['o-3']?.status).toBe('cancelled');
    expect(await onHand(h, 'book')).toBe(10);
    expect(await onHand(h, 'mug')).toBe(5);
    const status = await h.engine.client(OrderOrchestrator, 'o-3').status();
    expect(status).toMatchObject({
      state: 'compensated',
      failure: { step: 'create shipping label' },
    });
    expect(events(status).slice(-10)).toEqual([
      'create shipping label:failed',
      'cancel pick ticket:compensating',
      'cancel pick ticket:compensated',
      'refund payment:compensating',
      'refund payment:compensated',
      'release mug:compensating',
      'release mug:compensated',
      'release book:compensating',
      'release book:compensated',
      'run:compensated',
    ]);
  });

  it('refunds and releases when the warehouse is closed', async () => {
    const h = await start();
    await stocked(h);
    await h.engine.client(FulfillmentWarehouse, 'main').close();
    const result = await h.engine.client(OrderOrchestrator, 'o-4').run(order());
    expect(result).toMatchObject({
      status: 'compensated',
      failedStep: 'create pick ticket',
      error: { code: 'warehouse_closed' },
      compensated: ['refund payment', 'release mug', 'release book'],
    });
    expect((await h.engine.client(FulfillmentPayments, 'o-4').get())?.status).toBe('refunded');
  });

  it('stops before reserving anything when a SKU is short', async () => {
    const h = await start();
    await h.engine.client(FulfillmentInventory, 'book').restock(1);
    await h.engine.client(FulfillmentInventory, 'mug').restock(5);
    const result = await h.engine.client(OrderOrchestrator, 'o-5').run(order());
    expect(result).toMatchObject({
      status: 'compensated',
      failedStep: 'check inventory',
      error: { code: 'out_of_stock', message: expect.stringContaining('book (1 left)') },
      compensated: [],
    });
    expect((await h.engine.client(FulfillmentInventory, 'mug').level()).reservations).toEqual({});
  });

  it('gives up on a hung payment after 5 minutes and refunds it once it goes through', async () => {
    const h = await start();
    await stocked(h);
    const { invocationId } = await h.engine.send({
      service: 'OrderOrchestrator',
      handler: 'run',
      key: 'o-6',
      input: order({ simulate: { payment: 'stall' } }),
    });
    const status = () => h.engine.client(OrderOrchestrator, 'o-6').status();
    await untilStatus(status, (s) => s.currentStep === 'charge customer', 'charging');
    await h.clock.advance('4m');
    expect((await status()).state).toBe('running');
    // The timeout fires: the stock is released at once, the refund waits for the hung charge.
    await h.clock.advance('1m');
    await untilStatus(status, (s) => s.state === 'compensating', 'compensating');
    expect(await h.engine.client(FulfillmentPayments, 'o-6').get()).toBeNull();
    await h.clock.advance('1h');
    expect(await h.engine.attach(invocationId)).toMatchObject({
      status: 'compensated',
      failedStep: 'charge customer',
      error: { code: 'timeout' },
      compensated: ['refund payment', 'release mug', 'release book'],
    });
    // The charge went through late and was refunded: no money kept.
    expect(await h.engine.client(FulfillmentPayments, 'o-6').get()).toMatchObject({
      status: 'refunded',
      amount: 33,
    });
    expect(await onHand(h, 'book')).toBe(10);
  });

  it('completes the order when only the tracking email fails (it is not critical)', async () => {
    const h = await start();
    await stocked(h);
    const result = await h.engine
      .client(OrderOrchestrator, 'o-7')
      .run(order({ email: 'ann@nowhere.invalid' }));
    expect(result).toMatchObject({ status: 'completed', emailSent: false });
    const status = await h.engine.client(OrderOrchestrator, 'o-7').status();
    expect(events(status)).toContain('send tracking email:failed');
    expect(status.state).toBe('completed');
    expect((await h.engine.client(FulfillmentPayments, 'o-7').get())?.status).toBe('charged');
  });

  it('runs an order id once: a second run returns the first result and charges nothing more', async () => {
    const h = await start();
    await stocked(h);
    const first = await h.engine.client(OrderOrchestrator, 'o-8').run(order());
    const again = await h.engine
      .client(OrderOrchestrator, 'o-8')
      .run(order({ items: [{ sku: 'book', quantity: 5, unitPrice: 1 }] }));
    expect(again).toEqual(first);
    expect(await onHand(h, 'book')).toBe(8);
    expect(
      (await h.engine.listInvocations({ service: 'FulfillmentPayments' })).invocations,
    ).toHaveLength(1);
  });

  it('makes every downstream operation idempotent per order id', async () => {
    const h = await start();
    await stocked(h);
    const book = h.engine.client(FulfillmentInventory, 'book');
    await book.reserve({ orderId: 'x', quantity: 3 });
    await book.reserve({ orderId: 'x', quantity: 3 });
    expect(await onHand(h, 'book')).toBe(7);
    await book.release('x');
    await book.release('x');
    expect(await onHand(h, 'book')).toBe(10);

    const pay = h.engine.client(FulfillmentPayments, 'x');
    const a = await pay.charge({ amount: 10, customerId: 'c' });
    expect(await pay.charge({ amount: 99, customerId: 'c' })).toEqual(a);
    await pay.refund();
    expect(await pay.refund()).toMatchObject({ status: 'refunded', amount: 10 });
    // A refund that arrives before its charge voids it: the late charge takes nothing.
    await h.engine.client(FulfillmentPayments, 'y').refund();
    await expect(
      h.engine.client(FulfillmentPayments, 'y').charge({ amount: 5, customerId: 'c' }),
    ).rejects.toMatchObject({ code: 'payment_voided', status: 409 });

    const label = await h.engine.client(FulfillmentShipping, 'x').createLabel({
      address: order().shippingAddress,
    });
    expect(
      await h.engine.client(FulfillmentShipping, 'x').createLabel({
        address: order().shippingAddress,
      }),
    ).toEqual(label);
  });

  it('rejects an invalid order with a 400 before doing anything', async () => {
    const h = await start();
    await expect(
      h.engine.client(OrderOrchestrator, 'bad').run({ ...order(), items: [] }),
    ).rejects.toMatchObject({ status: 400, code: 'validation_failed' });
    expect((await h.engine.client(OrderOrchestrator, 'bad').status()).state).toBe('not_started');
  });

  it('keeps going across a restart in the middle of the order', async () => {
    const h = await start();
    await stocked(h);
    const { invocationId } = await h.engine.send({
      service: 'OrderOrchestrator',
      handler: 'run',
      key: 'o-9',
      input: order({ simulate: { warehouse: 'stall' } }),
    });
    const status = () => h.engine.client(OrderOrchestrator, 'o-9').status();
    await untilStatus(status, (s) => s.currentStep === 'create pick ticket', 'picking');
    const engine = await h.restart();
    await driveUntil(h, async () => (await status()).state === 'compensated', 'compensated', '10m');
    expect(await engine.attach(invocationId)).toMatchObject({
      status: 'compensated',
      failedStep: 'create pick ticket',
      error: { code: 'timeout' },
    });
    // The hung ticket was created after the timeout, then cancelled by the compensation.
    const { tickets } = await engine.client(FulfillmentWarehouse, 'main').tickets();
    expect(tickets['o-9']?.status).toBe('cancelled');
    expect((await engine.client(FulfillmentPayments, 'o-9').get())?.status).toBe('refunded');
  });
});
