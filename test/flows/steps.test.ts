/**
 * Flows run by the engine against a fake shop over real HTTP: api, transform (function and
 * expression) and conditional steps, storeAs variables, each step a journal entry named after
 * it, onError retry/continue/fail, compensations in reverse, a real duration.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../src/index.js';
import { runFlow, type FlowDefinition, type WorkflowResult } from '../../src/flows/index.js';
import { ShopServer } from '../fakes/shop-server.js';
import { flowEngines, stepNames } from './helpers.js';

let shop: ShopServer;
beforeAll(async () => {
  shop = await ShopServer.start();
});
afterAll(async () => {
  await shop.close();
});

const envs: Array<ReturnType<typeof flowEngines>> = [];
afterEach(async () => {
  for (const e of envs.splice(0)) {
    await e.stop();
    e.cleanup();
  }
});

async function engineWith(definitions: FlowDefinition[]): Promise<Engine> {
  const env = flowEngines(shop.url, {
    definitions,
    transforms: {
      lineTotal: (input) => {
        const i = input as { qty: number; price: number };
        return { total: i.qty * i.price };
      },
    },
  });
  envs.push(env);
  return env.make();
}

const order: FlowDefinition = {
  name: 'order',
  steps: [
    {
      id: 'quote',
      type: 'api',
      integration: 'Shop',
      operation: 'quote',
      params: { sku: '{{input.sku}}' },
      storeAs: 'quote',
    },
    {
      id: 'total',
      type: 'transform',
      function: 'lineTotal',
      input: { qty: '{{input.qty}}', price: '{{quote.price}}' },
      storeAs: 'line',
    },
    {
      id: 'big order?',
      type: 'conditional',
      condition: 'line.total >= 100',
      then: [
        { id: 'discount', type: 'transform', expression: 'line.total * 0.9', storeAs: 'amount' },
      ],
      else: [{ id: 'full price', type: 'transform', expression: 'line.total', storeAs: 'amount' }],
    },
    {
      id: 'charge',
      type: 'api',
      integration: 'Shop',
      operation: 'charge',
      params: { amount: '{{amount}}', note: 'order of {{input.qty}} x {{input.sku}}' },
      storeAs: 'payment',
    },
  ],
  output: { paid: '{{payment.amount}}', charge: '{{steps.charge.chargeId}}' },
};

describe('flow steps', () => {
  it('runs api, transform and conditional steps with storeAs variables, each a journal entry named after it', async () => {
    const engine = await engineWith([order]);
    const big: WorkflowResult = await runFlow(engine, 'order', { sku: 'A-1', qty: 20 });
    expect(big.success).toBe(true);
    expect(big.status).toBe('completed');
    expect(big.version).toBe(1);
    expect(big.outputs.total).toEqual({ total: 200 });
    expect(big.outputs['big order?']).toBe(180);
    expect(big.outputs.discount).toBe(180);
    expect(big.outputs['full price']).toBeUndefined();
    expect(big.data).toEqual({
      paid: 180,
      charge: big.outputs.charge && (big.outputs.charge as any).chargeId,
    });
    const charged = shop.seen('/payments/charge').at(-1)!;
    expect(charged.body).toEqual({ amount: 180, note: 'order of 20 x A-1' });
    expect(charged.key).toBe(`${big.invocationId}:charge`);
    expect(await stepNames(engine, big.invocationId)).toEqual([
      'flow definition',
      'quote',
      'total',
      'big order?',
      'discount',
      'charge',
    ]);
    expect(big.duration).toBe(Date.parse(big.endedAt) - Date.parse(big.startedAt));
    expect(big.duration).toBeGreaterThanOrEqual(0);

    const small = await runFlow(engine, 'order', { sku: 'A-1', qty: 2 });
    expect(small.outputs['full price']).toBe(20);
    expect(small.outputs.discount).toBeUndefined();
    expect(small.data).toMatchObject({ paid: 20 });
  });

  it('is an invocation of keel.flows listed like any other, with the flow result as its output', async () => {
    const engine = await engineWith([order]);
    const r = await runFlow(engine, 'order', { sku: 'B', qty: 1 }, { id: 'run-1' });
    expect(r.runId).toBe('order:run-1');
    const info = await engine.getInvocation(r.invocationId);
    expect(info).toMatchObject({
      service: 'keel.flows',
      handler: 'run',
      key: 'order:run-1',
      status: 'completed',
    });
    const again = await runFlow(engine, 'order', { sku: 'B', qty: 1 }, { id: 'run-1' });
    expect(again).toEqual(r);
  });

  it('onError: retry retries the step (durably, with backoff) and the flow goes on', async () => {
    const engine = await engineWith([
      {
        name: 'retrying',
        steps: [
          {
            id: 'reserve',
            type: 'api',
            integration: 'Shop',
            operation: 'reserve',
            params: { sku: 'R', qty: 1 },
            onError: 'retry',
            retries: 3,
            backoff: { initial: '10ms', max: '50ms' },
          },
        ],
      },
    ]);
    const before = shop.seen('/inventory/reserve').length;
    shop.fail('/inventory/reserve', 2, 503);
    const r = await runFlow(engine, 'retrying', {});
    expect(r.success).toBe(true);
    const calls = shop.seen('/inventory/reserve').slice(before);
    expect(calls).toHaveLength(3);
    // One idempotency key through every attempt.
    expect(new Set(calls.map((c) => c.key)).size).toBe(1);
  });

  it('onError: retry gives up after its retries and fails the flow naming the step', async () => {
    const engine = await engineWith([
      {
        name: 'giving-up',
        steps: [
          {
            id: 'reserve',
            type: 'api',
            integration: 'Shop',
            operation: 'reserve',
            params: { sku: 'G', qty: 1 },
            onError: 'retry',
            retries: 1,
            backoff: { initial: '10ms' },
          },
        ],
      },
    ]);
    const before = shop.seen('/inventory/reserve').length;
    shop.fail('/inventory/reserve', 5, 503);
    const r = await runFlow(engine, 'giving-up', {});
    shop.fail('/inventory/reserve', 0);
    expect(shop.seen('/inventory/reserve').length - before).toBe(2);
    expect(r.success).toBe(false);
    expect(r.failedStep).toBe('reserve');
    expect(r.errors).toEqual([
      expect.objectContaining({ step: 'reserve', code: 'retries_exhausted' }),
    ]);
    expect(r.errors[0]!.message).toMatch(/2 attempts/);
    // Drain the queued failures for the other tests.
    (shop as any).failures.delete('/inventory/reserve');
  });

  it('onError: continue records the error and runs the next steps', async () => {
    const engine = await engineWith([
      {
        name: 'continuing',
        steps: [
          {
            id: 'charge',
            type: 'api',
            integration: 'Shop',
            operation: 'charge',
            params: { amount: 5000 },
            onError: 'continue',
            storeAs: 'payment',
          },
          { id: 'after', type: 'transform', expression: "payment == null ? 'unpaid' : 'paid'" },
        ],
      },
    ]);
    const r = await runFlow(engine, 'continuing', {});
    expect(r.success).toBe(false);
    expect(r.status).toBe('completed');
    expect(r.errors).toEqual([
      expect.objectContaining({ step: 'charge', code: 'integration_rejected' }),
    ]);
    expect(r.outputs.after).toBe('unpaid');
    expect(r.failedStep).toBeUndefined();
  });

  it('onError: fail (the default) stops the flow, names the step and compensates completed steps in reverse', async () => {
    const engine = await engineWith([
      {
        name: 'saga',
        steps: [
          {
            id: 'reserve',
            type: 'api',
            integration: 'Shop',
            operation: 'reserve',
            params: { sku: 'S', qty: 1 },
            storeAs: 'reservation',
            compensate: {
              id: 'release',
              type: 'api',
              integration: 'Shop',
              operation: 'release',
              params: { reservationId: '{{reservation.reservationId}}' },
            },
          },
          {
            id: 'charge',
            type: 'api',
            integration: 'Shop',
            operation: 'charge',
            params: { amount: 10 },
            storeAs: 'payment',
            compensate: [
              {
                id: 'refund',
                type: 'api',
                integration: 'Shop',
                operation: 'refund',
                params: { chargeId: '{{payment.chargeId}}' },
              },
            ],
          },
          {
            id: 'ship',
            type: 'api',
            integration: 'Shop',
            operation: 'ship',
            params: { address: 'x' },
          },
          { id: 'never', type: 'transform', expression: '1' },
        ],
      },
    ]);
    shop.failAlways('/shipping/ship', 500);
    try {
      const r = await runFlow(engine, 'saga', {});
      expect(r.success).toBe(false);
      expect(r.status).toBe('compensated');
      expect(r.failedStep).toBe('ship');
      expect(r.errors).toEqual([
        expect.objectContaining({ step: 'ship', code: 'integration_unavailable' }),
      ]);
      expect(r.compensated).toEqual(['charge', 'reserve']);
      expect(r.outputs.never).toBeUndefined();
      const names = await stepNames(engine, r.invocationId);
      expect(names).toEqual(['flow definition', 'reserve', 'charge', 'ship', 'refund', 'release']);
      const refund = shop.seen('/payments/refund').at(-1)!;
      expect(refund.body).toEqual({ chargeId: (r.outputs.charge as any).chargeId });
      const release = shop.seen('/inventory/release').at(-1)!;
      expect(release.body).toEqual({ reservationId: (r.outputs.reserve as any).reservationId });
      const info = await engine.getInvocation(r.invocationId);
      expect(info?.outcome).toBe('compensated');
    } finally {
      shop.failAlways('/shipping/ship', undefined);
    }
  });

  it('a cancelled run compensates its completed steps, then ends cancelled', async () => {
    const engine = await engineWith([
      {
        name: 'cancellable',
        steps: [
          {
            id: 'charge',
            type: 'api',
            integration: 'Shop',
            operation: 'charge',
            params: { amount: 3 },
            storeAs: 'payment',
            compensate: {
              id: 'refund',
              type: 'api',
              integration: 'Shop',
              operation: 'refund',
              params: { chargeId: '{{payment.chargeId}}' },
            },
          },
          {
            id: 'ship',
            type: 'api',
            integration: 'Shop',
            operation: 'ship',
            params: { address: 'y' },
          },
          // The cancellation is delivered at the next step (the one in flight finishes).
          { id: 'after', type: 'transform', expression: '1' },
        ],
      },
    ]);
    const held = shop.hold('/shipping/ship');
    const running = runFlow(engine, 'cancellable', {}, { id: 'to-cancel' });
    running.catch(() => undefined);
    await held.arrived;
    const [inv] = (
      await engine.listInvocations({ service: 'keel.flows', key: 'cancellable:to-cancel' })
    ).invocations;
    await engine.cancel(inv!.id);
    held.release();
    await expect(running).rejects.toMatchObject({ code: 'cancelled' });
    const names = await stepNames(engine, inv!.id);
    expect(names).toContain('refund');
    expect(names).not.toContain('after');
    expect((await engine.getInvocation(inv!.id))?.outcome).toBe('compensated');
    const charge = (await engine.getJournal(inv!.id)).find((e) => e.name === 'charge');
    expect(shop.seen('/payments/refund').at(-1)!.body).toEqual({
      chargeId: (charge!.value as { chargeId: string }).chargeId,
    });
  });

  it('a runtime expression error fails the step with a typed code', async () => {
    const engine = await engineWith([
      { name: 'bad-math', steps: [{ id: 'oops', type: 'transform', expression: "input.a < 'b'" }] },
    ]);
    const r = await runFlow(engine, 'bad-math', { a: 1 });
    expect(r.success).toBe(false);
    expect(r.errors).toEqual([
      expect.objectContaining({ step: 'oops', code: 'flow_expression_failed' }),
    ]);
  });

  it('refuses to run a flow that is not registered', async () => {
    const engine = await engineWith([order]);
    await expect(runFlow(engine, 'nope', {})).rejects.toMatchObject({
      code: 'flow_not_found',
      status: 404,
    });
  });
});
