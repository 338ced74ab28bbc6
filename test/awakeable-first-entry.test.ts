import { afterEach, describe, expect, it } from 'vitest';
import { object, workflow } from '../src/index.js';
import { harness, type Harness } from './helpers.js';

/**
 * An awakeable created as an invocation's very first journal entry, its id handed at once to a
 * call or a send whose handler completes it: the completing handler runs before the creating
 * invocation's own insert is committed (the engine starts work before its insert is durable,
 * and the store commits in groups), so the awakeable's invocation is not in the store yet. It
 * is running here, and its awakeable must be found.
 */
const Resolver = object({
  name: 'Resolver',
  handlers: {
    go: async (ctx, id: string) => {
      await ctx.resolveAwakeable(id, `resolved by ${ctx.key}`);
      return 'ok';
    },
  },
});

const ByCall = workflow({
  name: 'AwkByCall',
  run: async (ctx) => {
    const { id, promise } = ctx.awakeable<string>();
    await ctx.objectClient(Resolver, 'call').go(id);
    return promise;
  },
});

const BySend = workflow({
  name: 'AwkBySend',
  run: async (ctx) => {
    const { id, promise } = ctx.awakeable<string>();
    ctx.objectSendClient(Resolver, 'send').go(id);
    return promise;
  },
});

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

describe('an awakeable that is the first journal entry', () => {
  it('is completed by a handler the same attempt called with its id', async () => {
    h = await harness({ services: [Resolver, ByCall, BySend] });
    expect(await h.engine.invoke({ service: 'AwkByCall', handler: 'run', key: 'a' })).toBe(
      'resolved by call',
    );
  });

  it('is completed by a handler the same attempt sent its id to', async () => {
    h = await harness({ services: [Resolver, ByCall, BySend] });
    expect(await h.engine.invoke({ service: 'AwkBySend', handler: 'run', key: 'b' })).toBe(
      'resolved by send',
    );
  });
});
