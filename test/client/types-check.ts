/**
 * The remote client's type test: `tsc --noEmit -p .` (in `npm test` and `npm run typecheck`)
 * checks this file, and each `@ts-expect-error` line fails the check if its error goes away, so
 * a regression to `any` or to looser types is caught. Nothing here runs: `check` is never
 * called. The definitions are imported as types only, as a client app imports them.
 */
import { connect, type RemoteClient, type SentInvocation } from '../../src/client/index.js';
import type { Client } from '../../src/core/definitions.js';
import type { Approval, Greeter, Ledger, Signup } from './fixture.js';

type Equal<A, B> =
  (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
const same = <A, B>(_proof: Equal<A, B>): void => undefined;

export async function check(): Promise<void> {
  const keel = connect({ url: 'http://127.0.0.1:9080' });
  const greeter = keel.serviceClient<typeof Greeter>('Greeter');

  // Inputs and results are the handlers' own.
  const greeting: string = await greeter.greet('Ada');
  const doubled: number = await greeter.double({ n: 2 });
  const pong: string = await greeter.ping();
  void [greeting, doubled, pong];
  // @ts-expect-error greet takes a string
  await greeter.greet(42);
  // @ts-expect-error greet's input is required
  await greeter.greet();
  // @ts-expect-error double's input is { n: number } (from its zod schema)
  await greeter.double({ n: 'two' });
  // @ts-expect-error the result is a string, not a number
  const wrongResult: number = await greeter.greet('Ada');
  void wrongResult;
  // @ts-expect-error no such handler
  await greeter.greeet('Ada');
  // @ts-expect-error an option a call does not take
  await greeter.greet('Ada', { idempotencyKye: 'k' });
  await greeter.greet('Ada', { idempotencyKey: 'k', signal: AbortSignal.timeout(1000) });

  // @ts-expect-error the name must be the definition's
  keel.serviceClient<typeof Greeter>('Greeter2');
  // @ts-expect-error an object is not a service
  keel.serviceClient<typeof Ledger>('Ledger');
  // @ts-expect-error an object needs a key
  keel.objectClient<typeof Ledger>('Ledger');

  const ledger = keel.objectClient<typeof Ledger>('Ledger', 'k');
  const total: number = await ledger.add(1);
  const shared: number = await ledger.total();
  void [total, shared];
  // @ts-expect-error add takes a number
  await ledger.add('1');

  const signup = keel.workflowClient<typeof Signup>('Signup', 'u1');
  const account: { account: string; email: string } = await signup.run({ email: 'a@b.c' });
  void account;
  // @ts-expect-error run's input is { email: string }
  await signup.run({ mail: 'a@b.c' });
  const stage: string = await signup.stage();
  void stage;

  // Sends: typed input, and a handle typed with the handler's result.
  const sent = await keel.workflowSendClient<typeof Signup>('Signup', 'u1').run({ email: 'x' });
  same<typeof sent, SentInvocation<{ account: string; email: string }>>(true);
  const attached: { account: string; email: string } = await sent.attach();
  void attached;
  const out = await sent.output();
  if (out.ready) {
    const email: string = out.output.email;
    void email;
  }
  // @ts-expect-error the send client checks inputs as the call client does
  await keel.serviceSendClient<typeof Greeter>('Greeter', { delay: '1h' }).greet(1);
  // @ts-expect-error a delay is a Duration
  keel.serviceSendClient<typeof Greeter>('Greeter', { delay: true });
  await keel.workflowSendClient<typeof Approval>('Approval', 'a1').run();

  // Given the definition value (where it can be imported), the same types.
  const byValue = null as unknown as typeof Greeter;
  same<ReturnType<typeof keel.serviceClient<typeof Greeter>>, typeof greeter>(true);
  const g2 = keel.serviceClient(byValue);
  same<typeof g2, typeof greeter>(true);
  void g2;

  // The parameters are exactly those of the handlers' own clients.
  same<
    Parameters<RemoteClient<typeof Greeter>['double']>[0],
    Parameters<Client<typeof Greeter>['double']>[0]
  >(true);
  same<
    Parameters<RemoteClient<typeof Ledger>['add']>[0],
    Parameters<Client<typeof Ledger>['add']>[0]
  >(true);
}
