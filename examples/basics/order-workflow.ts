import { z } from 'zod';
import { handler, workflow, type WorkflowContext } from '../../src/index.js';

/** The body of `POST /OrderWorkflow/{orderId}/run`, e.g. `{"item":"book","quantity":2}`. */
export const OrderInput = z.object(
  {
    item: z.string().min(1),
    quantity: z.number().int().positive().optional(),
  },
  { error: 'the request body must be a JSON object, e.g. {"item":"book","quantity":2}' },
);
export type OrderInput = z.infer<typeof OrderInput>;

/**
 * A small multi-step workflow: reserve, wait (durably), charge, confirm. `status` can be
 * called while `run` is in progress and reads the stage it has reached.
 */
export const OrderWorkflow = workflow({
  name: 'OrderWorkflow',
  run: handler({ input: OrderInput }, async (ctx: WorkflowContext, order) => {
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
  }),
  handlers: {
    status: async (ctx) => ({ stage: (await ctx.get<string>('stage')) ?? 'not started' }),
  },
});
