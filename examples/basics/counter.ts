import { z } from 'zod';
import { handler, object, shared, type ObjectContext } from '../../src/index.js';

/**
 * A keyed object: `add` is exclusive per key (increments never interleave), `get` is shared
 * (runs concurrently with `add` and reads the last committed total).
 */
export const Counter = object({
  name: 'Counter',
  handlers: {
    add: handler(
      { input: z.number({ error: 'add takes a number, e.g. 5' }) },
      async (ctx: ObjectContext, amount) => {
        const total = ((await ctx.get<number>('total')) ?? 0) + amount;
        ctx.set('total', total);
        return total;
      },
    ),
    get: shared(async (ctx) => (await ctx.get<number>('total')) ?? 0),
    reset: async (ctx) => {
      ctx.clearAll();
      return 0;
    },
  },
});
