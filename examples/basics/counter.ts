import { object, shared, TerminalError } from '../../src/index.js';

/**
 * A keyed object: `add` is exclusive per key (increments never interleave), `get` is shared
 * (runs concurrently with `add` and reads the last committed total).
 */
export const Counter = object({
  name: 'Counter',
  handlers: {
    add: async (ctx, amount: number) => {
      if (typeof amount !== 'number' || !Number.isFinite(amount)) {
        throw new TerminalError('add takes a number, e.g. 5', {
          code: 'invalid_amount',
          status: 400,
        });
      }
      const total = ((await ctx.get<number>('total')) ?? 0) + amount;
      ctx.set('total', total);
      return total;
    },
    get: shared(async (ctx) => (await ctx.get<number>('total')) ?? 0),
    reset: async (ctx) => {
      ctx.clearAll();
      return 0;
    },
  },
});
