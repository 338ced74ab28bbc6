import { z } from 'zod';
import { handler, service, type Context } from '../../src/index.js';

/** The smallest service: a stateless handler. */
export const Greeter = service({
  name: 'Greeter',
  handlers: {
    greet: handler(
      { input: z.string({ error: 'greet takes a name, e.g. "Ada"' }).min(1).optional() },
      async (_ctx: Context, name) => `Hello, ${name ?? 'world'}!`,
    ),
  },
});
