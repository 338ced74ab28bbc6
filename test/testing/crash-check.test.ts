import { describe, expect, it } from 'vitest';
import {
  OrderSaga,
  OrderSagaPayments,
  orderSaga,
  type OrderRequest,
} from '../../examples/order-saga/index.js';
import { workflow } from '../../src/index.js';
import { kernelOf } from '../../src/engine/kernel.js';
import { checkCrashes, CrashCheckError, testApp } from '../../src/testing/index.js';
import { instrumentsOf } from '../../src/testing/instrument.js';

const order: OrderRequest = {
  orderId: 'o1',
  customerId: 'cust-1',
  items: [{ sku: 'ITEM-001', quantity: 2 }],
  amount: 99.99,
};

/**
 * An email provider outside the engine, as a real one is: emails delivered per workflow key.
 * Given an idempotency key it delivers once per key, as Stripe or SendGrid do.
 */
const emails = new Map<string, Set<string>>();
let unkeyed = 0;
const send = (to: string, idempotencyKey?: string): void => {
  const sent = emails.get(to) ?? new Set<string>();
  sent.add(idempotencyKey ?? `unkeyed-${++unkeyed}`);
  emails.set(to, sent);
};
const sentTo = (to: string): number => emails.get(to)?.size ?? 0;

/**
 * Sends its email in a step, with an idempotency key: a step interrupted before its result is
 * durable runs again (at least once), and the key makes that harmless.
 */
const Careful = workflow({
  name: 'Careful',
  run: async (ctx) => {
    const reserved = await ctx.run('reserve', () => 'r1');
    await ctx.run('email', () => send(ctx.key, `${ctx.key}/email`));
    const charged = await ctx.run('charge', () => 'c1');
    return { reserved, charged };
  },
});

/** The bug: the email goes out between two steps, outside the journal. */
const Careless = workflow({
  name: 'Careless',
  run: async (ctx) => {
    const reserved = await ctx.run('reserve', () => 'r1');
    send(ctx.key);
    const charged = await ctx.run('charge', () => 'c1');
    return { reserved, charged };
  },
});

/** A step, then a sleep long enough to suspend: waking replays the step from the journal. */
let napperAttempts = 0;
const Napper = workflow({
  name: 'Napper',
  run: async (ctx) => {
    napperAttempts++;
    const a = await ctx.run('before nap', () => 1);
    await ctx.sleep('1h');
    const b = await ctx.run('after nap', () => 2);
    return a + b;
  },
});

describe('checkCrashes', () => {
  it('counts step bodies that run, not steps replayed from the journal (what "ran again" uses)', async () => {
    await using t = await testApp({ services: [Napper] });
    const id = await t.workflowSend(Napper, 'n').run();
    await t.runUntilIdle({ skipTime: true });
    expect(await t.attach(id)).toBe(3);
    const journal = await t.journal(id);
    const nap = journal.findIndex((e) => e.kind === 'sleep');
    const steps = journal.filter((e) => e.kind === 'run').map((e) => e.index);
    // The sleep suspended the invocation (after 1 s): the handler ran again from the top and
    // "before nap" was replayed, not run.
    expect(napperAttempts).toBe(2);
    const ins = instrumentsOf(kernelOf(t.engine));
    expect(steps.map((i) => ins.runsOf(id, i))).toEqual([1, 1]);
    expect(nap).toBe(steps[0]! + 1);
  });

  it('OrderSaga: one charge and the same result at every crash point', async () => {
    const report = await checkCrashes({
      services: orderSaga,
      run: (t) => t.workflowSend(OrderSaga, 'o1').run(order),
      observe: async (t, id) => ({
        result: await t.attach(id),
        ledger: await t.object(OrderSagaPayments, 'cust-1').ledger(),
      }),
      // Everything observed lives in each test app's own engine: the points can run side by side.
      concurrency: 4,
    });

    // Without a crash: completed, charged once, never asked to charge twice.
    expect(report.baseline.outcome).toMatchObject({
      result: { status: 'completed', paymentId: 'pay_o1' },
      ledger: { captured: 99.99, refunded: 0, replays: 0, payments: [{ paymentId: 'pay_o1' }] },
    });
    expect(report.baseline.invocations).toMatchObject({ 'OrderSagaPayments/charge': 1 });
    // Every write is a crash point, before and after it is durable, the charge's included.
    expect(report.baseline.writes).toBeGreaterThan(10);
    expect(report.points).toHaveLength(report.baseline.writes * 2);
    expect(report.points.every((p) => p.reached)).toBe(true);
    expect(report.points.some((p) => p.write.includes('OrderSagaPayments/cust-1/charge'))).toBe(
      true,
    );
    // Crashes both before and after the request was answered.
    expect(report.points.some((p) => !p.acknowledged)).toBe(true);
    // The same result and ledger (one payment, no replayed charge) at every crash point.
    for (const p of report.points) {
      expect(p.problems, `crash ${p.at} write ${p.k}`).toEqual([]);
      expect(p.outcome).toEqual(report.baseline.outcome);
    }
  });

  it('passes a workflow whose side effect is a step, and checks its completed steps', async () => {
    const report = await checkCrashes({
      services: [Careful],
      run: (t) => {
        emails.delete('k');
        return t.workflowSend(Careful, 'k').run();
      },
      observe: async (t, id) => ({ result: await t.attach(id), emails: sentTo('k') }),
    });
    expect(report.baseline.outcome).toEqual({
      result: { reserved: 'r1', charged: 'c1' },
      emails: 1,
    });
    // Steps were durable at some crash points, and none of them ran again.
    expect(Math.max(...report.points.map((p) => p.committed.completedSteps))).toBe(3);
    expect(report.points.flatMap((p) => p.rerun)).toEqual([]);
  });

  it('catches a side effect outside ctx.run, naming the crash point', async () => {
    const err = await checkCrashes({
      services: [Careless],
      run: (t) => {
        emails.delete('k');
        return t.workflowSend(Careless, 'k').run();
      },
      observe: async (t, id) => ({ result: await t.attach(id), emails: sentTo('k') }),
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(CrashCheckError);
    const e = err as CrashCheckError;
    expect(e.code).toBe('crash_check');
    expect(e.message).toMatch(/^a crash (before|after) store write \d+ of \d+ \(/);
    expect(e.message).toContain('the outcome differs from the uncrashed run');
    expect(e.message).toContain('"emails":1');
    expect(e.message).toContain('"emails":2');
    expect(e.message).toContain('move side effects into steps');
    // The failing points are those between the "reserve" step and the "charge" step.
    const failed = e.report.points.filter((p) => p.problems.length > 0);
    expect(failed.length).toBeGreaterThan(0);
    expect(failed.every((p) => (p.outcome as { emails: number }).emails === 2)).toBe(true);
    expect(e.report.points.some((p) => p.problems.length === 0)).toBe(true);
  });
});
