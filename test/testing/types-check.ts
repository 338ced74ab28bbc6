/**
 * The test kit's type test: `tsc --noEmit -p .` (in `npm test` and `npm run typecheck`) checks
 * this file, and each `@ts-expect-error` line fails the check if its error goes away, so a
 * regression to `any` or to looser types is caught. Nothing here runs: `check` is never called.
 */
import { z } from 'zod';
import { handler, object, service, shared, workflow } from '../../src/index.js';
import { testApp, type TestAppErrorCode } from '../../src/testing/index.js';

type Equal<A, B> =
  (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
const same = <A, B>(_proof: Equal<A, B>): void => undefined;

const Greeter = service({
  name: 'Greeter',
  handlers: {
    greet: async (_ctx, name: string) => `Hello, ${name}!`,
    double: handler({ input: z.object({ n: z.number() }) }, async (_ctx, x) => x.n * 2),
  },
});

const Ledger = object({
  name: 'Ledger',
  handlers: {
    add: async (ctx, n: number) => {
      const total = ((await ctx.get<number>('total')) ?? 0) + n;
      ctx.set('total', total);
      return total;
    },
    total: shared(async (ctx) => (await ctx.get<number>('total')) ?? 0),
  },
});

const Signup = workflow({
  name: 'Signup',
  run: async (_ctx, user: { email: string }) => ({ account: 'a1', email: user.email }),
  handlers: { stage: async (ctx) => (await ctx.get<string>('stage')) ?? 'none' },
});

export async function check(): Promise<void> {
  await using t = await testApp({ services: [Greeter, Ledger, Signup], retry: { maxAttempts: 3 } });

  // Calls: inputs and results are the handlers' own.
  const greeting: string = await t.service(Greeter).greet('Ada');
  const doubled: number = await t.service(Greeter).double({ n: 2 });
  const total: number = await t.object(Ledger, 'k').add(1);
  const account: { account: string; email: string } = await t
    .workflow(Signup, 'u1')
    .run({ email: 'a@b.c' });
  const stage: string = await t.workflow(Signup, 'u1').stage();
  void [greeting, doubled, total, account, stage];
  // @ts-expect-error greet takes a string
  await t.service(Greeter).greet(42);
  // @ts-expect-error greet's input is required
  await t.service(Greeter).greet();
  // @ts-expect-error double's input is { n: number } (from its zod schema)
  await t.service(Greeter).double({ n: 'two' });
  // @ts-expect-error the result is a string, not a number
  const wrongResult: number = await t.service(Greeter).greet('Ada');
  void wrongResult;
  // @ts-expect-error no such handler
  await t.service(Greeter).greeet('Ada');
  // @ts-expect-error an object is not a service
  t.service(Ledger);
  // @ts-expect-error an object needs a key
  t.object(Ledger);
  // @ts-expect-error a service is not a workflow
  t.workflow(Greeter, 'k');
  // @ts-expect-error run's input is { email: string }
  await t.workflow(Signup, 'u1').run({ mail: 'a@b.c' });

  // Sends: the same inputs, resolving with the invocation id.
  const id = await t.objectSend(Ledger, 'k', { delay: '1h' }).add(1);
  same<typeof id, string>(true);
  await t.workflowSend(Signup, 'u2').run({ email: 'x' }, { idempotencyKey: 'once' });
  // @ts-expect-error add takes a number
  await t.objectSend(Ledger, 'k').add('1');
  // @ts-expect-error a delay is a Duration
  t.serviceSend(Greeter, { delay: true });
  // @ts-expect-error an option a send does not take
  await t.serviceSend(Greeter).greet('Ada', { idempotencyKye: 'k' });

  // Results, state, journal, invocations.
  const out: number = await t.attach<number>(id);
  void out;
  const state = await t.state<{ total?: number }>(Ledger, 'k');
  same<typeof state, { total?: number }>(true);
  void state;
  // @ts-expect-error a service has no state
  await t.state(Greeter, 'k');
  const kinds: string[] = (await t.journal(id)).map((e) => e.kind);
  void kinds;
  await t.invocations({ service: Ledger, status: ['completed', 'failed'] });
  // @ts-expect-error not a status
  await t.invocations({ status: 'done' });

  // Time.
  await t.advance('30d');
  await t.advance(1000);
  await t.runUntilIdle({ skipTime: true, limit: '90d' });
  // @ts-expect-error skipTime is a boolean
  await t.runUntilIdle({ skipTime: 'yes' });
  // @ts-expect-error a duration is a string or a number of ms
  await t.advance(new Date());
  const code: TestAppErrorCode = 'time_limit';
  void code;

  // @ts-expect-error the store and the clock are the test app's own
  await testApp({ services: [Greeter], store: undefined });
  // @ts-expect-error services are definitions
  await testApp({ services: ['Greeter'] });
}
