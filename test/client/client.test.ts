import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  connect,
  ConflictError,
  InvalidDelayError,
  KeelError,
  NotFoundError,
  TerminalError,
  UsageError,
  ValidationError,
  type KeelClient,
} from '../../src/client/index.js';
import { until } from '../helpers.js';
import type { Approval, Greeter, Ledger, Signup } from './fixture.js';
import { executions, Ledger as LedgerDefinition, startClientApp } from './fixture.js';

/**
 * `keel/client` against a real app (`startApp` on a SQLite file) over real HTTP: calls, sends,
 * delays, idempotency, attach and output, workflows, objects, awakeables and typed errors.
 * Retries over broken connections are in retry.test.ts, API keys in keys.test.ts.
 */

let server: Awaited<ReturnType<typeof startClientApp>>;
let keel: KeelClient;

beforeAll(async () => {
  server = await startClientApp();
  keel = connect({ url: server.app.ingress.url });
});
afterAll(async () => {
  await server?.close();
});

/** What an awaited promise rejected with (fails the test if it resolved). */
async function rejection(p: Promise<unknown>): Promise<KeelError> {
  const outcome = await p.then(
    (value) => ({ value }),
    (err: unknown) => ({ err }),
  );
  if (!('err' in outcome)) throw new Error(`expected a rejection, got ${JSON.stringify(outcome)}`);
  return outcome.err as KeelError;
}

describe('calls', () => {
  it('calls a service handler with its typed input and answers its result', async () => {
    const greeter = keel.serviceClient<typeof Greeter>('Greeter');
    expect(await greeter.greet('Ada')).toBe('Hello, Ada!');
    expect(await greeter.ping()).toBe('pong');
    expect(await greeter.double({ n: 21 })).toBe(42);
  });

  it("calls an object's exclusive and shared handlers on one key, keys kept apart", async () => {
    const a = keel.objectClient<typeof Ledger>('Ledger', 'acct/a b');
    expect(await a.add(2)).toBe(2);
    expect(await a.add(3)).toBe(5);
    expect(await a.total()).toBe(5);
    // A key with a slash and a space reaches one key, not a path: it is encoded.
    expect(await keel.objectClient<typeof Ledger>('Ledger', 'acct').total()).toBe(0);
  });

  it('takes the definition value too, and refuses one of another kind', async () => {
    expect(await keel.objectClient(LedgerDefinition, 'by-value').add(7)).toBe(7);
    expect(() => keel.serviceClient(LedgerDefinition as never)).toThrow(UsageError);
  });

  it('refuses a key URLs would resolve away (".", "..") before sending', async () => {
    const err = await rejection(keel.objectClient<typeof Ledger>('Ledger', '..').add(1));
    expect(err).toBeInstanceOf(UsageError);
    expect(err.message).toContain('".."');
  });

  it('the untyped call reaches the same handlers', async () => {
    expect(await keel.call<number>({ service: 'Ledger', key: 'untyped', handler: 'add' }, 4)).toBe(
      4,
    );
  });
});

describe('idempotency keys', () => {
  it('two calls with the same key run once and answer the same result', async () => {
    const greeter = keel.serviceClient<typeof Greeter>('Greeter');
    const first = await greeter.tally('idem-call', { idempotencyKey: 'k-call-1' });
    const second = await greeter.tally('idem-call', { idempotencyKey: 'k-call-1' });
    expect([first, second]).toEqual(['tallied idem-call', 'tallied idem-call']);
    expect(executions.get('idem-call')).toBe(1);
    // Another key is another invocation.
    await greeter.tally('idem-call', { idempotencyKey: 'k-call-2' });
    expect(executions.get('idem-call')).toBe(2);
  });

  it('two sends with the same key answer the same invocation id, the second as existing', async () => {
    const sender = keel.serviceSendClient<typeof Greeter>('Greeter');
    const a = await sender.tally('idem-send', { idempotencyKey: 'k-send-1' });
    const b = await sender.tally('idem-send', { idempotencyKey: 'k-send-1' });
    expect(a.invocationId).toMatch(/^inv_/);
    expect(b.invocationId).toBe(a.invocationId);
    expect([a.existing, b.existing]).toEqual([false, true]);
    expect(await b.attach()).toBe('tallied idem-send');
    expect(executions.get('idem-send')).toBe(1);
  });

  it('a key HTTP cannot carry, or one the ingress refuses, is invalid_idempotency_key (400)', async () => {
    const greeter = keel.serviceClient<typeof Greeter>('Greeter');
    // 'a\nb' is refused before sending, '' by the ingress: the same class, code and status.
    for (const idempotencyKey of ['a\nb', 'ключ', '']) {
      const err = await rejection(greeter.tally('bad-key', { idempotencyKey }));
      expect(err).toBeInstanceOf(TerminalError);
      expect(err).toMatchObject({ code: 'invalid_idempotency_key', status: 400 });
    }
    expect(executions.get('bad-key')).toBeUndefined();
  });

  it("a send client's key applies to each of its sends", async () => {
    const sender = keel.objectSendClient<typeof Ledger>('Ledger', 'client-key', {
      idempotencyKey: 'k-client-1',
    });
    const a = await sender.add(10);
    const b = await sender.add(10);
    expect(b.invocationId).toBe(a.invocationId);
    expect(await a.attach()).toBe(10);
    expect(executions.get('Ledger/client-key/add')).toBe(1);
  });
});

describe('sends, attach and output', () => {
  it('a send answers at once with the invocation; attach waits for its result', async () => {
    const sent = await keel.objectSendClient<typeof Ledger>('Ledger', 'sent').add(5);
    expect(sent.existing).toBe(false);
    expect(['pending', 'running', 'completed']).toContain(sent.status);
    expect(await sent.attach()).toBe(5);
    expect(await sent.output()).toEqual({ ready: true, output: 5 });
    const info = await sent.info();
    expect(info).toMatchObject({
      id: sent.invocationId,
      service: 'Ledger',
      handler: 'add',
      key: 'sent',
      status: 'completed',
    });
    // The same invocation by id, from anywhere.
    expect(await keel.invocation<number>(sent.invocationId).attach()).toBe(5);
  });

  it('a delayed send is scheduled: output is not ready, and the start time is the delay away', async () => {
    const before = Date.now();
    const sent = await keel
      .serviceSendClient<typeof Greeter>('Greeter', { delay: '1h' })
      .greet('later');
    expect(sent.status).toBe('scheduled');
    expect(await sent.output()).toEqual({ ready: false, status: 'scheduled' });
    const info = await sent.info();
    expect(Date.parse(info.nextAttemptAt!)).toBeGreaterThanOrEqual(before + 3_600_000);
  });

  it('a short delay runs the invocation after it, and attach gets the result', async () => {
    const sent = await keel
      .serviceSendClient<typeof Greeter>('Greeter', { delay: 300 })
      .greet('soon');
    expect(sent.status).toBe('scheduled');
    expect(await sent.attach()).toBe('Hello, soon!');
  });

  it('a bad delay is an InvalidDelayError before any request', async () => {
    for (const delay of ['soon', '400d', -1]) {
      const err = await rejection(
        keel.serviceSendClient<typeof Greeter>('Greeter', { delay }).greet('never'),
      );
      expect(err).toBeInstanceOf(InvalidDelayError);
      expect(err.code).toBe('invalid_delay');
    }
  });

  it('the untyped send takes a delay per send', async () => {
    const sent = await keel.send({ service: 'Greeter', handler: 'greet' }, 'x', { delay: '2h' });
    expect(sent.status).toBe('scheduled');
  });
});

describe('workflows', () => {
  it('run once per key: a second run, by call or send, answers the first run', async () => {
    const sent = await keel
      .workflowSendClient<typeof Signup>('Signup', 'user-1')
      .run({ email: 'ada@example.com' });
    expect(await sent.attach()).toEqual({ account: 'acct-user-1', email: 'ada@example.com' });
    const again = await keel
      .workflowClient<typeof Signup>('Signup', 'user-1')
      .run({ email: 'other@example.com' });
    expect(again).toEqual({ account: 'acct-user-1', email: 'ada@example.com' });
    const resent = await keel
      .workflowSendClient<typeof Signup>('Signup', 'user-1')
      .run({ email: 'third@example.com' });
    expect(resent).toMatchObject({ invocationId: sent.invocationId, existing: true });
    expect(executions.get('Signup/user-1')).toBe(1);
    expect(await keel.workflowClient<typeof Signup>('Signup', 'user-1').stage()).toBe('done');
  });
});

describe('awakeables', () => {
  async function waitingApproval(key: string) {
    const sent = await keel.workflowSendClient<typeof Approval>('Approval', key).run();
    const approval = keel.workflowClient<typeof Approval>('Approval', key);
    let id: string | null = null;
    await until(async () => (id = await approval.awakeableId()) !== null, 'the awakeable id');
    return { sent, id: id! };
  }

  it('resolves one; the waiting run returns the value; a second resolve is a ConflictError (409)', async () => {
    const { sent, id } = await waitingApproval('appr-1');
    await keel.resolveAwakeable(id, { approved: true });
    expect(await sent.attach()).toEqual({ approved: true });
    const err = await rejection(keel.resolveAwakeable(id, { approved: false }));
    expect(err).toBeInstanceOf(ConflictError);
    // The run has finished by now, which the engine reports before the awakeable's own state.
    expect(err).toMatchObject({ code: 'already_finished', status: 409 });
  });

  it('rejects one: attach fails with the reason as a TerminalError', async () => {
    const { sent, id } = await waitingApproval('appr-2');
    await keel.rejectAwakeable(id, 'declined by the approver');
    const err = await rejection(sent.attach());
    expect(err).toBeInstanceOf(TerminalError);
    expect(err.message).toContain('declined by the approver');
  });

  it('an unknown awakeable is a NotFoundError', async () => {
    const err = await rejection(keel.resolveAwakeable('awk_0000000000aaaaaaaaaaaaaaaa_1', 1));
    expect(err).toBeInstanceOf(NotFoundError);
  });
});

describe('typed errors', () => {
  it("a handler's TerminalError arrives with its class, code and status, from a call and from output", async () => {
    const err = await rejection(keel.serviceClient<typeof Greeter>('Greeter').decline('limit'));
    expect(err).toBeInstanceOf(TerminalError);
    expect(err).toMatchObject({ code: 'card_declined', status: 402 });
    expect(err.message).toBe('card declined: limit');

    const sent = await keel.serviceSendClient<typeof Greeter>('Greeter').decline('expired');
    const attached = await rejection(sent.attach());
    expect(attached).toMatchObject({ code: 'card_declined', status: 402 });
    const read = await rejection(sent.output());
    expect(read).toBeInstanceOf(TerminalError);
    expect(read).toMatchObject({ code: 'card_declined', message: 'card declined: expired' });
  });

  it('input the schema refuses is a ValidationError (400)', async () => {
    const double = keel.serviceClient<typeof Greeter>('Greeter').double as (
      x: unknown,
    ) => Promise<number>;
    const err = await rejection(double({ n: 'two' }));
    expect(err).toBeInstanceOf(ValidationError);
    expect(err).toMatchObject({ code: 'validation_failed', status: 400 });
  });

  it('an unknown handler, service or invocation is a NotFoundError (404)', async () => {
    const byName = keel.serviceClient<typeof Greeter>('Greeter') as unknown as Record<
      string,
      () => Promise<unknown>
    >;
    for (const request of [
      () => byName.nope!(),
      () => keel.call({ service: 'Nobody', handler: 'x' }),
      () => keel.invocation('inv_00000000000000000000000000').attach(),
    ]) {
      const err = await rejection(request());
      expect(err).toBeInstanceOf(NotFoundError);
      expect(err).toMatchObject({ code: 'not_found', status: 404 });
    }
  });

  it('an input with no JSON form is a ValidationError before any request', async () => {
    const err = await rejection(keel.call({ service: 'Greeter', handler: 'greet' }, 10n));
    expect(err).toBeInstanceOf(ValidationError);
  });
});
