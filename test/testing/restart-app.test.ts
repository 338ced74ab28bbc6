import { existsSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import {
  OrderSaga,
  OrderSagaPayments,
  orderSaga,
  type OrderRequest,
} from '../../examples/order-saga/index.js';
import { workflow, type WorkflowContext } from '../../src/index.js';
import { testApp, TestAppError, type TestApp } from '../../src/testing/index.js';

/** Step bodies run, by name: a test-only side channel that survives the engine. */
let ran: string[] = [];

const Nap = workflow({
  name: 'Nap',
  run: async (ctx: WorkflowContext, hours: number) => {
    await ctx.run('before', () => void ran.push('before'));
    await ctx.sleep(`${hours}h`);
    await ctx.run('after', () => void ran.push('after'));
    return `slept ${hours}h`;
  },
});

const order = (orderId: string): OrderRequest => ({
  orderId,
  customerId: 'cust-r',
  items: [{ sku: 'ITEM-001', quantity: 1 }],
  amount: 10,
});

let apps: TestApp[] = [];
afterEach(async () => {
  for (const a of apps) await a.close();
  apps = [];
  ran = [];
});

describe('t.restartApp', () => {
  it('stops the engine and starts one on the same file, the clock where it was', async () => {
    const t = await testApp({ services: [Nap] });
    apps.push(t);
    const id = await t.workflowSend(Nap, 'n1').run(3);
    await t.idle();
    await t.advance('1h');
    const at = t.clock.now();
    const t2 = await t.restartApp();
    apps.push(t2);
    expect(t2.path).toBe(t.path);
    expect(t2.clock.now()).toBe(at);
    // The old app is closed; its file is the new app's now.
    expect(() => t.workflow(Nap, 'n2')).toThrow(/this test app was restarted: use the test app/);
    expect(existsSync(t2.path)).toBe(true);
    await t2.advance('2h'); // the sleep's timer, recovered from the store, fires at 3 h
    expect(await t2.attach(id)).toBe('slept 3h');
    expect(ran).toEqual(['before', 'after']);
    await t2.close();
    expect(existsSync(t2.path)).toBe(false);
  });

  it('with crash: true, recovery finishes what the crash cut off, charging once', async () => {
    const t = await testApp({ services: orderSaga });
    apps.push(t);
    const id = await t.workflowSend(OrderSaga, 'o-r').run(order('o-r'));
    // No idle(): the saga is mid-flight when the engine dies.
    const t2 = await t.restartApp({ crash: true });
    apps.push(t2);
    await t2.runUntilIdle({ skipTime: true });
    expect(await t2.attach(id)).toMatchObject({ status: 'completed', paymentId: 'pay_o-r' });
    const payments = await t2.state<{ state: { payments: Record<string, unknown> } }>(
      OrderSagaPayments,
      'cust-r',
    );
    expect(Object.keys(payments.state.payments)).toEqual(['pay_o-r']);
  });

  it('refuses on a closed app', async () => {
    const t = await testApp({ services: [Nap] });
    await t.close();
    const err = await t.restartApp().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TestAppError);
    expect((err as TestAppError).code).toBe('closed');
  });
});
