import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { Engine, workflow } from '../../../src/index.js';
import {
  createIntegrations,
  stripe,
  use,
  type IntegrationRuntime,
  type StripeCharge,
  type StripeRefund,
} from '../../../src/integrations/index.js';
import { stripeMock } from '../../../src/integrations/mocks.js';
import { openSqliteStore } from '../../../src/store/sqlite/index.js';
import { FakeClock } from '../../../src/testing/index.js';
import { tempDir, until } from '../../helpers.js';

/**
 * A connector in mock mode inside a durable workflow: the charge is journaled with the
 * idempotency key the engine derives, and after a restart (a fresh mock, its memory gone) the
 * refund still finds the charge, as it would against Stripe.
 */
const tmp = tempDir('keel-connectors-');
const running: { engine: Engine; runtime: IntegrationRuntime }[] = [];
afterEach(async () => {
  for (const n of running.splice(0)) {
    await n.engine.stop().catch(() => undefined);
    await n.runtime.close();
  }
});
afterAll(() => tmp.cleanup());

describe('a connector in a durable workflow (mock mode)', () => {
  it('charges once, survives a restart, and refunds the journaled charge', async () => {
    let mock = stripeMock();
    let payments = stripe({ name: 'StripeDurable', mock });
    const Checkout = workflow({
      name: 'Checkout',
      run: async (ctx, orderId: string) => {
        const charge: StripeCharge = await use(ctx, payments).create_charge({
          amount: 2500,
          currency: 'usd',
          source: 'tok_visa',
          metadata: { order_id: orderId },
        });
        await ctx.sleep('1h');
        const refund: StripeRefund = await use(ctx, payments).create_refund({ charge: charge.id });
        return { charge: charge.id, refunded: refund.amount };
      },
    });
    const clock = new FakeClock();
    const file = join(tmp.dir, 'keel.db');
    const start = async () => {
      const integrations = createIntegrations({ mock: true, env: {}, log: () => undefined });
      const engine = new Engine({
        services: [Checkout],
        store: openSqliteStore({ path: file }),
        clock,
        logger: () => undefined,
        extensions: [integrations],
      });
      await engine.start();
      running.push({ engine, runtime: integrations.runtime });
      return engine;
    };

    let engine = await start();
    const { invocationId } = await engine.send({
      service: 'Checkout',
      handler: 'run',
      key: 'order-7',
      input: 'order-7',
    });
    await until(
      async () => (await engine.getJournal(invocationId)).length >= 2,
      'the charge and the sleep',
    );
    expect(mock.requests).toHaveLength(1);
    expect(mock.requests[0]!.headers['idempotency-key']).toBe(`${invocationId}.0`);
    await engine.stop();

    // A restart: a new process would build a new connector, with a new, empty mock.
    mock = stripeMock();
    payments = stripe({ name: 'StripeDurable', mock });
    engine = await start();
    const done = engine.attach(invocationId);
    await clock.advance('1h');
    const result = (await done) as { charge: string; refunded: number };
    expect(result.refunded).toBe(2500);
    expect(mock.requests.map((r) => r.path)).toEqual(['/v1/refunds']);
  });
});
