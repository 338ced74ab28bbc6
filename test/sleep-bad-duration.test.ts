/**
 * A duration that cannot be read (`ctx.sleep('soon')`) threw a plain `RangeError`, which the
 * engine retried as a transient failure: the invocation spent all its retries (with backoff)
 * before it failed. It is terminal now (`InvalidDelayError`, code `invalid_delay`, 400): one
 * attempt, and the caller sees why.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { InvalidDelayError, service } from '../src/index.js';
import { harness, type Harness } from './helpers.js';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

describe('a sleep whose duration cannot be read', () => {
  it('fails its invocation at once with invalid_delay, spending no retries', async () => {
    let attempts = 0;
    const Nap = service({
      name: 'Nap',
      handlers: {
        take: async (ctx, how: string) => {
          attempts++;
          await ctx.sleep(how);
          return 'rested';
        },
      },
    });
    h = await harness({ services: [Nap] });
    const outcome = h.engine.invoke({ service: 'Nap', handler: 'take', input: 'soon' });
    // Were it retried, its backoff timers would need the clock to move: they never fire here.
    await expect(outcome).rejects.toBeInstanceOf(InvalidDelayError);
    await expect(outcome).rejects.toMatchObject({ code: 'invalid_delay', status: 400 });
    expect(attempts).toBe(1);
  });
});
