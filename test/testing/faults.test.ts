import { afterEach, describe, expect, it } from 'vitest';
import {
  OrderSaga,
  OrderSagaInventory,
  OrderSagaPayments,
  orderSaga,
  type OrderRequest,
} from '../../examples/order-saga/index.js';
import { object, saga, service, TerminalError, workflow } from '../../src/index.js';
import { testApp, type TestApp } from '../../src/testing/index.js';

/** Step bodies that really ran, by name (a side channel outside the engine). */
let ran: string[] = [];

const Checkout = workflow({
  name: 'Checkout',
  run: async (ctx, amount: number) => {
    const out = await saga(ctx, async (s) => {
      const hold = await s.step('reserve', () => (ran.push('reserve'), 'hold-1'), {
        compensate: () => ran.push('release'),
      });
      const charge = await s.step('charge', () => (ran.push('charge'), `paid ${amount}`), {
        compensate: () => ran.push('refund'),
      });
      return { hold, charge };
    });
    return out.status === 'completed'
      ? out.value
      : { failed: out.error.code, compensated: out.compensated };
  },
});

const Slow = object({
  name: 'Slow',
  handlers: { work: async (ctx) => `done by ${ctx.key}` },
});

const Caller = service({
  name: 'Caller',
  handlers: {
    callWithin: async (ctx, within: string) => {
      try {
        return await ctx.objectClient(Slow, 'k').work().orTimeout(within);
      } catch (err) {
        return `gave up: ${(err as { code?: string }).code}`;
      }
    },
  },
});

const order: OrderRequest = {
  orderId: 'o1',
  customerId: 'cust-1',
  items: [{ sku: 'ITEM-001', quantity: 2 }],
  amount: 99.99,
};

let t: TestApp | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
  ran = [];
});

describe('t.faults.failStep', () => {
  it('fails a step twice, then it succeeds: the journal shows 3 attempts', async () => {
    t = await testApp({ services: [Checkout] });
    const fault = t.faults.failStep(Checkout, 'charge', { times: 2 });
    const id = await t.workflowSend(Checkout, 'a').run(5);
    await t.runUntilIdle({ skipTime: true }); // the retries' backoffs
    expect(await t.attach(id)).toEqual({ hold: 'hold-1', charge: 'paid 5' });
    expect(fault).toMatchObject({ fired: 2, remaining: 0 });
    const charge = (await t.journal(id)).find((e) => e.kind === 'run' && e.name === 'charge');
    expect(charge).toMatchObject({ done: true, value: 'paid 5', attempts: 3 });
    // The injected failures came instead of the body: it ran once, "reserve" was not redone.
    expect(ran).toEqual(['reserve', 'charge']);
    expect(t.logs.some((l) => l.message.includes('t.faults.failStep, failure 2'))).toBe(true);
  });

  it('fails a step terminally: the saga compensates what it did', async () => {
    t = await testApp({ services: [Checkout] });
    t.faults.failStep(Checkout, 'charge', {
      error: new TerminalError('card declined', { code: 'declined' }),
    });
    const result = await t.workflow(Checkout, 'b').run(5);
    expect(result).toEqual({ failed: 'declined', compensated: ['reserve'] });
    expect(ran).toEqual(['reserve', 'release']);
  });
});

describe('t.faults.failHandler', () => {
  it('OrderSaga: inventory fails for good, the payment is refunded', async () => {
    t = await testApp({ services: orderSaga });
    t.faults.failHandler(OrderSagaInventory, 'reserve', {
      error: new TerminalError('warehouse closed', { code: 'warehouse_closed' }),
    });
    const result = await t.workflow(OrderSaga, 'o1').run(order);
    expect(result).toMatchObject({
      status: 'inventory_failed',
      reason: 'warehouse_closed',
      compensated: ['charge payment'],
    });
    expect(await t.object(OrderSagaPayments, 'cust-1').ledger()).toMatchObject({
      captured: 0,
      refunded: 99.99,
    });
  });

  it('fails two attempts of a call with a retryable error: the third one answers', async () => {
    t = await testApp({ services: orderSaga });
    const fault = t.faults.failHandler(OrderSagaPayments, 'charge', { times: 2 });
    const id = await t.workflowSend(OrderSaga, 'o1').run(order);
    await t.runUntilIdle({ skipTime: true });
    expect(await t.attach(id)).toMatchObject({ status: 'completed', paymentId: 'pay_o1' });
    expect(fault.fired).toBe(2);
    const [charge] = await t.invocations({ service: OrderSagaPayments, handler: 'charge' });
    expect(charge).toMatchObject({ status: 'completed', attempt: 2 });
  });
});

describe('t.faults.delayHandler', () => {
  it("delays a callee past its caller's timeout, on the fake clock", async () => {
    t = await testApp({ services: [Caller, Slow] });
    t.faults.delayHandler(Slow, 'work', '10m');
    const id = await t.serviceSend(Caller).callWithin('5m');
    await t.advance('4m');
    expect(await t.output(id)).toMatchObject({ ready: false });
    await t.advance('1m');
    expect(await t.attach(id)).toBe('gave up: timeout');
    // The callee still runs once its delay is over, and the next call is not delayed.
    const [slow] = await t.invocations({ service: Slow });
    expect(slow).toMatchObject({ status: 'suspended' });
    await t.advance('5m');
    expect(await t.output(slow!.id)).toEqual({ ready: true, outcome: { output: 'done by k' } });
    expect(await t.service(Caller).callWithin('5m')).toBe('done by k');
  });
});

describe('t.faults.failNextCommit', () => {
  it('a lost commit: the step runs again, the invocation completes once', async () => {
    t = await testApp({ services: [Checkout] });
    const fault = t.faults.failNextCommit({ entry: 'charge' });
    const id = await t.workflowSend(Checkout, 'c').run(7);
    await t.runUntilIdle({ skipTime: true });
    expect(fault.fired).toBe(1);
    expect(await t.attach(id)).toEqual({ hold: 'hold-1', charge: 'paid 7' });
    // The charge's result never became durable, so its body ran again (at least once).
    expect(ran).toEqual(['reserve', 'charge', 'charge']);
    const steps = (await t.journal(id)).filter((e) => e.kind === 'run').map((e) => e.name);
    expect(steps).toEqual(['reserve', 'charge']);
    expect(await t.invocations({ service: Checkout })).toMatchObject([{ status: 'completed' }]);
    expect(t.logs.some((l) => l.message.includes('t.faults.failNextCommit'))).toBe(true);
  });

  it('an applied commit reported as failed: the replay finds it, nothing runs twice', async () => {
    t = await testApp({ services: [Checkout] });
    const fault = t.faults.failNextCommit({ entry: 'charge', applied: true });
    const id = await t.workflowSend(Checkout, 'd').run(7);
    await t.runUntilIdle({ skipTime: true });
    expect(fault.fired).toBe(1);
    expect(await t.attach(id)).toEqual({ hold: 'hold-1', charge: 'paid 7' });
    expect(ran).toEqual(['reserve', 'charge']);
    expect(await t.invocations({ service: Checkout })).toMatchObject([{ status: 'completed' }]);
  });
});
