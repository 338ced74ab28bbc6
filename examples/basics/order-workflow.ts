import { workflow } from '../../src/index.js';

export interface OrderInput {
  item: string;
  quantity?: number;
}

/**
 * A small multi-step workflow: reserve, wait (durably), charge, confirm. `status` can be
 * called while `run` is in progress and reads the stage it has reached.
 */
export const OrderWorkflow = workflow({
  name: 'OrderWorkflow',
  run: async (ctx, order: OrderInput) => {
    ctx.set('stage', 'reserving');
    // Ids come from ctx.uuid() outside the steps: deterministic on replay, so they can serve
    // as idempotency keys for the systems the steps call.
    const reservationId = `res_${ctx.uuid().slice(0, 8)}`;
    const paymentId = `pay_${ctx.uuid().slice(0, 8)}`;
    const reservation = await ctx.run('reserve', () => reservationId);
    ctx.set('stage', 'waiting');
    await ctx.sleep('2s');
    ctx.set('stage', 'charging');
    const payment = await ctx.run('charge', () => ({
      paymentId,
      amount: 10 * (order.quantity ?? 1),
    }));
    ctx.set('stage', 'done');
    return { status: 'confirmed', item: order.item, reservation, ...payment };
  },
  handlers: {
    status: async (ctx) => ({ stage: (await ctx.get<string>('stage')) ?? 'not started' }),
  },
});
