/**
 * Sagas with steps whose outcome is in doubt (`undoWhen: 'maybe'` / `'started'`): the undo is
 * registered in the journal before the step runs, and runs when the step timed out, was
 * cancelled in flight or (with `'started'`) failed, but never for a step that did not start.
 * The downstream is a real local HTTP server that can hold its answers.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  saga,
  TerminalError,
  workflow,
  type SagaStepOptions,
  type WorkflowContext,
} from '../src/index.js';
import { harness, until, type Harness } from './helpers.js';

/**
 * A payment provider: `POST /charge/{id}` and `/refund/{id}`. A charge (or `/slow`) of an id in `hold` is
 * taken in but not done until the test calls `complete(id)` (the provider is slow); a refund
 * of a charge still pending waits for it, as a provider serialises the operations of one id.
 */
class FakeProvider {
  readonly requests: string[] = [];
  readonly charged = new Map<string, 'charged' | 'refunded'>();
  readonly hold = new Set<string>();
  private readonly pending = new Map<string, Array<() => void>>();
  private server!: Server;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }

  reset(): void {
    this.requests.length = 0;
    this.charged.clear();
    this.hold.clear();
    this.pending.clear();
  }

  /** The slow provider finally does the held charge (and whatever waited for it). */
  complete(id: string): void {
    this.hold.delete(id);
    this.charged.set(id, 'charged');
    for (const go of this.pending.get(id) ?? []) go();
    this.pending.delete(id);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const [, op, id = ''] = (req.url ?? '').split('/');
    this.requests.push(`${op} ${id}`);
    if ((op === 'charge' || op === 'slow') && this.hold.has(id)) await this.after(id);
    if (op === 'charge' && !this.charged.has(id)) this.charged.set(id, 'charged');
    if (op === 'refund') {
      if (this.hold.has(id)) await this.after(id);
      if (this.charged.has(id)) this.charged.set(id, 'refunded');
    }
    if (op === 'fail') {
      // Takes the money, then answers an error: the step fails, its effect stays.
      this.charged.set(id, 'charged');
      res.writeHead(402, { 'content-type': 'application/json' }).end('{"error":"declined"}');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ id, op }));
  }

  private after(id: string): Promise<void> {
    return new Promise((r) => this.pending.set(id, [...(this.pending.get(id) ?? []), r]));
  }
}

const provider = new FakeProvider();
beforeAll(() => provider.start());
afterAll(() => provider.close());

async function post(path: string): Promise<{ id: string; op: string }> {
  const res = await fetch(`${provider.url}${path}`, { method: 'POST' });
  if (res.status === 402) throw new TerminalError('card declined', { code: 'card_declined' });
  if (!res.ok) throw new Error(`provider answered ${res.status}`);
  return (await res.json()) as { id: string; op: string };
}

interface Plan {
  /** `'maybe'`, `'started'` or the default. */
  undoWhen?: 'maybe' | 'started';
  /** How the charge step ends: `ok`, `fail` (the provider takes the money and says 402). */
  charge?: 'ok' | 'fail';
  timeout?: string;
  /** Fail after the charge, so every owed undo runs. */
  failAfter?: boolean;
}

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
  provider.reset();
});

/** One saga: a first step `reserve`, then `charge` (HTTP, the step under test), then `ship`. */
const Checkout = workflow({
  name: 'Checkout',
  run: async (ctx: WorkflowContext, plan: Plan) => {
    const id = ctx.key;
    const undoneWith: string[] = [];
    const result = await saga(ctx, async (s) => {
      await s.step('reserve', () => post(`/reserve/${id}`), {
        compensate: () => post(`/release/${id}`),
      });
      const refund = {
        timeout: plan.timeout,
        compensate: async (r: { id: string } | undefined) => {
          undoneWith.push(r?.id ?? 'no result');
          return post(`/refund/${id}`);
        },
      };
      const options: SagaStepOptions<{ id: string; op: string }> = plan.undoWhen
        ? { ...refund, undoWhen: plan.undoWhen }
        : refund;
      await s.step(
        'charge',
        () => post(plan.charge === 'fail' ? `/fail/${id}` : `/charge/${id}`),
        options,
      );
      if (plan.failAfter) throw new TerminalError('no carrier', { code: 'no_carrier' });
      return 'shipped';
    });
    return { ...result, undoneWith };
  },
});

/** `reserve` waits on the provider (held under its id), then an in-doubt `charge`. */
const SlowCheckout = workflow({
  name: 'SlowCheckout',
  run: async (ctx: WorkflowContext) =>
    saga(ctx, async (s) => {
      await s.step('reserve', () => post(`/slow/${ctx.key}`), {
        compensate: () => post(`/release/${ctx.key}`),
      });
      await s.step('charge', () => post(`/charge/${ctx.key}`), {
        undoWhen: 'maybe',
        compensate: () => post(`/refund-charge/${ctx.key}`),
      });
    }),
});

async function start(): Promise<Harness> {
  h = await harness({ services: [Checkout, SlowCheckout], logger: () => undefined });
  return h;
}

describe('saga steps in doubt', () => {
  it('refunds a charge that timed out and that the provider did later', async () => {
    const h = await start();
    provider.hold.add('c1');
    const { invocationId } = await h.engine.send({
      service: 'Checkout',
      handler: 'run',
      key: 'c1',
      input: { undoWhen: 'maybe', timeout: '5m' } satisfies Plan,
    });
    await until(() => provider.requests.includes('charge c1'), 'the charge request');
    // No answer in 5 minutes: the step times out and the saga compensates at once. The refund
    // reaches the provider while the charge is still pending there...
    await h.clock.advance('5m');
    await until(() => provider.requests.includes('refund c1'), 'the refund request');
    expect(provider.charged.get('c1')).toBeUndefined();
    // ...which then does the charge, late, and the refund after it.
    provider.complete('c1');

    expect(await h.engine.attach(invocationId)).toEqual({
      status: 'compensated',
      failedStep: 'charge',
      error: expect.objectContaining({ code: 'timeout' }),
      compensated: ['charge', 'reserve'],
      // The undo ran without a result: the step never answered.
      undoneWith: ['no result'],
    });
    expect(provider.charged.get('c1')).toBe('refunded');
    expect(provider.requests).toEqual(['reserve c1', 'charge c1', 'refund c1', 'release c1']);
  });

  it('still owes the undo after a restart in the middle of the in-doubt step', async () => {
    const h = await start();
    provider.hold.add('c3');
    const { invocationId } = await h.engine.send({
      service: 'Checkout',
      handler: 'run',
      key: 'c3',
      input: { undoWhen: 'maybe', timeout: '5m' } satisfies Plan,
    });
    await until(() => provider.requests.includes('charge c3'), 'the charge request');
    const journal = (await h.engine.getJournal(invocationId)).map((e) => `${e.kind} ${e.name}`);
    expect(journal).toContain('run register undo: charge');
    await h.restart();
    // The replay knows the undo is owed; the step runs again (at least once: the provider
    // dedupes by id) and times out again.
    await until(
      () => provider.requests.filter((r) => r === 'charge c3').length === 2,
      'the charge again',
    );
    await h.clock.advance('5m');
    await until(() => provider.requests.includes('refund c3'), 'the refund request');
    provider.complete('c3');
    expect(await h.engine.attach(invocationId)).toMatchObject({
      status: 'compensated',
      failedStep: 'charge',
      error: { code: 'timeout' },
      compensated: ['charge', 'reserve'],
    });
    expect(provider.charged.get('c3')).toBe('refunded');
  });

  it('without undoWhen, a timed-out step owes no undo (the default is unchanged)', async () => {
    const h = await start();
    provider.hold.add('c2');
    const { invocationId } = await h.engine.send({
      service: 'Checkout',
      handler: 'run',
      key: 'c2',
      input: { timeout: '5m' } satisfies Plan,
    });
    await until(() => provider.requests.includes('charge c2'), 'the charge request');
    await h.clock.advance('5m');
    expect(await h.engine.attach(invocationId)).toMatchObject({
      status: 'compensated',
      failedStep: 'charge',
      compensated: ['reserve'],
    });
    provider.complete('c2');
    expect(provider.requests).not.toContain('refund c2');
  });

  it("with 'maybe', a step that failed for sure owes nothing; with 'started' it does", async () => {
    const h = await start();
    const maybe = await h.engine
      .client(Checkout, 'm1')
      .run({ undoWhen: 'maybe', charge: 'fail' } satisfies Plan);
    expect(maybe).toMatchObject({
      status: 'compensated',
      failedStep: 'charge',
      error: { code: 'card_declined' },
      compensated: ['reserve'],
    });
    expect(provider.requests).not.toContain('refund m1');

    // The provider kept the money although it declined: 'started' undoes it anyway.
    const started = await h.engine
      .client(Checkout, 's1')
      .run({ undoWhen: 'started', charge: 'fail' } satisfies Plan);
    expect(started).toMatchObject({
      status: 'compensated',
      failedStep: 'charge',
      compensated: ['charge', 'reserve'],
      undoneWith: ['no result'],
    });
    expect(provider.charged.get('s1')).toBe('refunded');
  });

  it('passes the result to an in-doubt undo when the step did answer', async () => {
    const h = await start();
    const result = await h.engine
      .client(Checkout, 'r1')
      .run({ undoWhen: 'maybe', timeout: '5m', failAfter: true } satisfies Plan);
    expect(result).toMatchObject({
      status: 'compensated',
      error: { code: 'no_carrier' },
      compensated: ['charge', 'reserve'],
      undoneWith: ['r1'],
    });
    expect(result).not.toHaveProperty('failedStep');
  });

  it('undoes a step cancelled in flight, and the provider doing it late changes nothing', async () => {
    const h = await start();
    provider.hold.add('x1');
    const { invocationId } = await h.engine.send({
      service: 'Checkout',
      handler: 'run',
      key: 'x1',
      input: { undoWhen: 'maybe', timeout: '1h' } satisfies Plan,
    });
    await until(() => provider.requests.includes('charge x1'), 'the charge request');
    await h.engine.cancel(invocationId);
    await until(() => provider.requests.includes('refund x1'), 'the refund request');
    provider.complete('x1');
    await expect(h.engine.attach(invocationId)).rejects.toMatchObject({ code: 'cancelled' });
    expect(provider.charged.get('x1')).toBe('refunded');
    expect(provider.requests).toEqual(['reserve x1', 'charge x1', 'refund x1', 'release x1']);
    expect((await h.engine.getInvocation(invocationId))?.outcome).toBe('compensated');
  });

  it('never runs the undo of a step a cancellation kept from starting', async () => {
    const h = await start();
    // `reserve` is slow; the cancellation arrives while its body runs, so it is delivered at
    // the next thing the saga does: registering the charge's undo. The charge never starts.
    provider.hold.add('n1');
    const { invocationId } = await h.engine.send({
      service: 'SlowCheckout',
      handler: 'run',
      key: 'n1',
    });
    await until(() => provider.requests.includes('slow n1'), 'the slow first step');
    await h.engine.cancel(invocationId);
    provider.complete('n1');
    await expect(h.engine.attach(invocationId)).rejects.toMatchObject({ code: 'cancelled' });
    expect(provider.requests).toEqual(['slow n1', 'release n1']);
    const journal = (await h.engine.getJournal(invocationId)).map((e) => `${e.kind} ${e.name}`);
    // The cancellation took the registration's place; nothing of the charge ran.
    expect(journal).toContain('cancel ');
    expect(journal).not.toContain('run register undo: charge');
  });
});
