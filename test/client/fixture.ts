import { join } from 'node:path';
import { z } from 'zod';
import { startApp, type App, type AppOptions } from '../../src/app.js';
import { handler, object, service, shared, TerminalError, workflow } from '../../src/index.js';
import { tempDir } from '../helpers.js';

/**
 * The app the remote client's tests call over real HTTP. The client's tests import these
 * definitions as types only (`import type`), as a client app would; the counters are read by
 * the tests, which run the app in their own process.
 */

/** How many times each body ran, by a name the test chose (counted outside the engine). */
export const executions = new Map<string, number>();
const count = (name: string): number => {
  const n = (executions.get(name) ?? 0) + 1;
  executions.set(name, n);
  return n;
};

export const Greeter = service({
  name: 'Greeter',
  handlers: {
    greet: async (_ctx, name: string) => `Hello, ${name}!`,
    ping: async () => 'pong',
    double: handler({ input: z.object({ n: z.number() }) }, async (_ctx, x) => x.n * 2),
    decline: async (_ctx, reason: string): Promise<never> => {
      throw new TerminalError(`card declined: ${reason}`, { code: 'card_declined', status: 402 });
    },
    /** Counts its executions under `tag`: what the idempotency and retry tests look at. */
    tally: async (ctx, tag: string) => {
      await ctx.run('count', () => count(tag));
      return `tallied ${tag}`;
    },
  },
});

export const Ledger = object({
  name: 'Ledger',
  handlers: {
    add: async (ctx, n: number) => {
      count(`Ledger/${ctx.key}/add`);
      const total = ((await ctx.get<number>('total')) ?? 0) + n;
      ctx.set('total', total);
      return total;
    },
    total: shared(async (ctx) => (await ctx.get<number>('total')) ?? 0),
  },
});

export const Signup = workflow({
  name: 'Signup',
  run: async (ctx, user: { email: string }) => {
    await ctx.run('create account', () => count(`Signup/${ctx.key}`));
    ctx.set('stage', 'done');
    return { account: `acct-${ctx.key}`, email: user.email };
  },
  handlers: { stage: async (ctx) => (await ctx.get<string>('stage')) ?? 'none' },
});

/** Waits for an awakeable whose id it publishes in its state once the awakeable is durable. */
export const Approval = workflow({
  name: 'Approval',
  run: async (ctx) => {
    const { id, promise } = ctx.awakeable<{ approved: boolean }>();
    await ctx.run('publish', () => id);
    ctx.set('awakeable', id);
    const answer = await promise;
    return answer;
  },
  handlers: { awakeableId: async (ctx) => (await ctx.get<string>('awakeable')) ?? null },
});

export const SERVICES = [Greeter, Ledger, Signup, Approval];

/** The app on a fresh SQLite file, on free ports. */
export async function startClientApp(
  options: Partial<AppOptions> = {},
): Promise<{ app: App; close(): Promise<void> }> {
  const tmp = tempDir('keel-client-');
  const app = await startApp({
    services: SERVICES,
    db: join(tmp.dir, 'keel.db'),
    durability: 'os',
    port: 0,
    adminPort: 0,
    storeWait: 0,
    logger: () => undefined,
    ...options,
  });
  return {
    app,
    async close() {
      await app.close();
      tmp.cleanup();
    },
  };
}
