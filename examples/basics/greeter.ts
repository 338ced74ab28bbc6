import { service } from '../../src/index.js';

/** The smallest service: a stateless handler. */
export const Greeter = service({
  name: 'Greeter',
  handlers: {
    greet: async (_ctx, name: string) => `Hello, ${name ?? 'world'}!`,
  },
});
