import { randomUUID } from 'node:crypto';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  object,
  service,
  TerminalError,
  workflow,
  type ObjectContext,
  type WorkflowContext,
  type WorkflowSharedContext,
} from '../../src/index.js';
import { testApp, TestAppError, type TestApp } from '../../src/testing/index.js';
import { acquireShadowGlobals, inShadow } from '../../src/testing/replay-globals.js';
import { Prng } from '../../src/core/prng.js';
import { Counter } from '../../examples/basics/counter.js';
import { Greeter } from '../../examples/basics/greeter.js';
import { OrderWorkflow } from '../../examples/basics/order-workflow.js';
import { ClaimSaga, claimSaga } from '../../examples/claim-saga/index.js';
import { MoneyTransferSaga, moneyTransferSaga } from '../../examples/money-transfer-saga/index.js';
import { OrderSaga, orderSaga, type OrderRequest } from '../../examples/order-saga/index.js';

let t: TestApp | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

/** A handler that reads the wall clock outside ctx.now(): the case the mode exists for. */
const Stamp = object({
  name: 'Stamp',
  handlers: {
    stamp: async (ctx: ObjectContext, note: string) => {
      await ctx.run('validate', () => note.length);
      const at = Date.now();
      ctx.set('stamp', { note, at });
      return 'ok';
    },
  },
});

const Dice = service({
  name: 'Dice',
  handlers: {
    roll: async (ctx) => {
      const n = await ctx.run('load', () => 6);
      // Math.random() names the next step: a replay attempts a step of another name.
      const face = Math.random() * n;
      return ctx.run(`roll ${face}`, () => face);
    },
  },
});

let calls = 0;
const Counted = service({
  name: 'Counted',
  handlers: {
    go: async (ctx) => {
      calls++; // a module variable: the replay sees another value than the live run
      await ctx.run('first', () => 1);
      await ctx.sleep(`${calls}s`);
      return calls;
    },
  },
});

let base = '';
const Fetcher = service({
  name: 'Fetcher',
  handlers: {
    go: async (ctx) => {
      await ctx.run('prepare', () => 'x');
      const r = await fetch(`${base}/price`); // I/O outside ctx.run
      const price = Number(await r.text());
      await ctx.run('charge', () => price);
      return price;
    },
  },
});

let server: Server;
beforeAll(async () => {
  server = createServer((_req, res) => res.end('42'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

describe("replay: 'every-step' finds non-determinism", () => {
  it('Date.now() outside ctx.now(): the call rejects naming the step', async () => {
    t = await testApp({ services: [Stamp], replay: 'every-step' });
    const err = await t
      .object(Stamp, 'k')
      .stamp('hello')
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).toBeInstanceOf(TestAppError);
    expect(err).toMatchObject({ code: 'replay_diverged' });
    const message = (err as Error).message;
    expect(message).toMatch(/invocation inv_\w+ \(Stamp\.stamp\)/);
    expect(message).toContain('entry 1, set "stamp"');
    expect(message).toContain('ctx.now()');
    expect(t.replayFailures).toHaveLength(1);
    expect(t.replayFailures[0]).toMatchObject({
      handler: 'Stamp.stamp',
      index: 1,
      step: 'set "stamp"',
    });
    // The recorded value and the replayed one both show.
    expect(t.replayFailures[0]!.recorded).toMatch(/set "stamp" to \{"note":"hello","at":\d+\}/);
    expect(t.replayFailures[0]!.attempted).not.toEqual(t.replayFailures[0]!.recorded);
  });

  it('Math.random() outside ctx.random()', async () => {
    t = await testApp({ services: [Dice], replay: 'every-step' });
    await expect(t.service(Dice).roll()).rejects.toMatchObject({ code: 'replay_diverged' });
    expect(t.replayFailures[0]).toMatchObject({ handler: 'Dice.roll', index: 1 });
    expect(t.replayFailures[0]!.step).toMatch(/^run "roll [\d.]+"$/);
  });

  it('a mutable module variable', async () => {
    calls = 0;
    t = await testApp({ services: [Counted], replay: 'every-step' });
    const id = await t.serviceSend(Counted).go();
    await expect(t.runUntilIdle({ skipTime: true })).rejects.toMatchObject({
      code: 'replay_diverged',
    });
    expect(t.replayFailures[0]).toMatchObject({ invocationId: id, index: 1, step: 'sleep' });
    expect(t.replayFailures[0]!.message).toContain('a sleep of 1000 ms');
  });

  it('fetch() outside ctx.run', async () => {
    t = await testApp({ services: [Fetcher], replay: 'every-step' });
    await expect(t.service(Fetcher).go()).rejects.toMatchObject({ code: 'replay_diverged' });
    const f = t.replayFailures[0]!;
    expect(f.handler).toBe('Fetcher.go');
    expect(f.attempted).toBe(`fetch("${base}/price")`);
    expect(f.message).toContain('wrap it in ctx.run');
  });

  it('call inputs, send delays, results and crypto.randomUUID() are compared too', async () => {
    const Caller = service({
      name: 'Caller',
      handlers: {
        call: async (ctx) => ctx.objectClient(Ledger, 'c').add(new Date().getUTCHours()),
        send: async (ctx) => {
          ctx
            .objectSendClient(Ledger, 's', {
              delay: ((Math.floor(Date.now() / 3_600_000) % 24) + 1) * 1000,
            })
            .add(1);
          await ctx.run('after', () => 1);
        },
        result: async (ctx) => {
          await ctx.run('only step', () => 1);
          return { id: crypto.randomUUID() };
        },
      },
    });
    t = await testApp({ services: [Caller, Ledger], replay: 'every-step' });
    await expect(t.service(Caller).call()).rejects.toThrow(
      /entry 0, call "Ledger\/c\/add": the journal recorded call "Ledger\/c\/add" with input \d+, but replaying the handler attempted call "Ledger\/c\/add" with input \d+/,
    );
    await expect(t.service(Caller).send()).rejects.toThrow(
      /entry 0, send "Ledger\/s\/add".* with a delay of \d+ ms/,
    );
    await expect(t.service(Caller).result()).rejects.toThrow(
      /\(Caller\.result\) diverged from its journal at the result: the journal recorded the result \{"id":/,
    );
    expect(t.replayFailures.map((f) => f.step)).toEqual([
      'call "Ledger/c/add"',
      'send "Ledger/s/add"',
      'the result',
    ]);
  });

  it('completion values, terminal errors, and a replay that cannot reach the journal', async () => {
    let live = true;
    const Completer = workflow({
      name: 'Completer',
      run: async (ctx: WorkflowContext) => {
        const a = ctx.awakeable<number>();
        await ctx.resolveAwakeable(a.id, Date.now());
        return a.promise;
      },
      handlers: {
        resolve: async (ctx: WorkflowSharedContext) => {
          await ctx.promise('p').resolve(`at ${new Date().toISOString()}`);
        },
        fail: async (ctx: WorkflowSharedContext) => {
          await ctx.run('try', () => 1);
          throw new TerminalError(`failed at ${Date.now()}`);
        },
        gate: async (ctx: WorkflowSharedContext) => {
          await ctx.run('first', () => 1);
          // The live run passes; a replay waits on a promise nothing journaled will settle.
          if (!live) await new Promise(() => undefined);
          live = false;
          await ctx.run('second', () => 2);
        },
      },
    });
    t = await testApp({ services: [Completer], replay: 'every-step' });
    await expect(t.workflow(Completer, 'a').run()).rejects.toThrow(
      /at entry 1, completeAwakeable "awk_\w+": the journal recorded completeAwakeable "awk_\w+" with the value \d+/,
    );
    await expect(t.workflow(Completer, 'a').resolve()).rejects.toThrow(
      /at entry 0, completePromise "p": the journal recorded completePromise "p" with the value "at /,
    );
    await expect(t.workflow(Completer, 'b').fail()).rejects.toThrow(
      /\(Completer\.fail\) diverged from its journal at the result: the journal recorded the failure "failed at \d+", but replaying the handler attempted the failure "failed at \d+"/,
    );
    await expect(t.workflow(Completer, 'c').gate()).rejects.toThrow(
      /at entry 1, run "second": the journal recorded run "second", but replaying the handler attempted nothing: after 1000 ms the replay still waited/,
    );
  });

  it('is off by default', async () => {
    t = await testApp({ services: [Stamp] });
    expect(await t.object(Stamp, 'k').stamp('hello')).toBe('ok');
    await t.idle();
    expect(t.replayFailures).toEqual([]);
  });
});

// ---- deterministic handlers: nothing to report ------------------------------------------

const Ledger = object({
  name: 'Ledger',
  handlers: {
    add: async (ctx: ObjectContext, n: number) => {
      const total = ((await ctx.get<number>('total')) ?? 0) + n;
      ctx.set('total', total);
      if (total > 100) ctx.clear('total');
      return total;
    },
  },
});

const Careful = service({
  name: 'Careful',
  handlers: {
    go: async (ctx, who: string) => {
      const now = await ctx.now();
      const pick = ctx.random();
      const id = ctx.uuid();
      // Non-deterministic reads inside steps are journaled: the replay takes the results.
      const wall = await ctx.run('wall clock', () => Date.now() + Math.random());
      const price = await ctx.run('price', async () =>
        Number(await (await fetch(`${base}/p`)).text()),
      );
      await ctx.sleep('1h');
      const total = await ctx.objectClient(Ledger, who).add(price);
      ctx.objectSendClient(Ledger, who, { delay: '10m' }).add(1);
      const first = await ctx.race([
        ctx.sleep('1d').then(() => 'timer'),
        ctx.run('fast', () => 'step'),
      ]);
      return { now, pick, id, wall: typeof wall, total, first };
    },
  },
});

const Approval = service({
  name: 'Approval',
  handlers: {
    ask: async (ctx, amount: number) => {
      const a = ctx.awakeable<{ ok: boolean }>();
      await ctx.run('send for review', () => a.id);
      const answer = await a.promise;
      return answer.ok ? amount : 0;
    },
  },
});

const Signup = workflow({
  name: 'Signup',
  run: async (ctx: WorkflowContext, email: string) => {
    ctx.set('status', 'waiting');
    const code = await ctx.promise<string>('code').get();
    ctx.set('status', 'verified');
    return `${email}:${code}`;
  },
  handlers: {
    verify: async (ctx: WorkflowSharedContext, code: string) => {
      await ctx.promise<string>('code').resolve(code);
    },
  },
});

const Trip = service({
  name: 'Trip',
  handlers: {
    book: async (ctx, failCar: boolean) => {
      const undo: Array<() => Promise<unknown>> = [];
      try {
        await ctx.run('book flight', () => 'F1');
        undo.push(() => ctx.run('cancel flight', () => 'ok'));
        await ctx.run('book car', () => {
          if (failCar) throw new TerminalError('no cars');
          return 'C1';
        });
        return 'booked';
      } catch (err) {
        for (const u of undo.reverse()) await u();
        throw err;
      }
    },
  },
});

describe("replay: 'every-step' passes deterministic handlers", () => {
  it('ctx.now/random/uuid, steps reading the clock and the network, sleeps, calls, sends, races', async () => {
    t = await testApp({ services: [Careful, Ledger], replay: 'every-step' });
    const id = await t.serviceSend(Careful).go('ada');
    await t.runUntilIdle({ skipTime: true });
    expect(await t.output(id)).toMatchObject({
      ready: true,
      outcome: { output: { total: 42, first: 'step', wall: 'number' } },
    });
    expect(await t.state(Ledger, 'ada')).toEqual({ total: 43 });
    expect(t.replayFailures).toEqual([]);
  });

  it('awakeables, durable promises, state and a saga that compensates', async () => {
    t = await testApp({ services: [Approval, Signup, Trip, Ledger], replay: 'every-step' });
    const id = await t.serviceSend(Approval).ask(7);
    await t.idle();
    const [review] = (await t.journal(id)).filter((e) => e.kind === 'run');
    await t.resolveAwakeable(review!.value as string, { ok: true });
    expect(await t.attach(id)).toBe(7);

    const run = t.workflow(Signup, 'ada').run('ada@example.com');
    await t.idle();
    await t.workflow(Signup, 'ada').verify('1234');
    expect(await run).toBe('ada@example.com:1234');

    await expect(t.service(Trip).book(true)).rejects.toThrow('no cars');
    expect(await t.service(Trip).book(false)).toBe('booked');
    for (const n of [60, 50, 5]) await t.object(Ledger, 'bob').add(n);
    expect(await t.state(Ledger, 'bob')).toEqual({ total: 5 });
    expect(t.replayFailures).toEqual([]);
  });
});

// ---- the seed examples, run under replay checking -----------------------------------------

describe("replay: 'every-step' passes the seed examples", () => {
  const order = (orderId: string, customerId: string): OrderRequest => ({
    orderId,
    customerId,
    items: [{ sku: 'ITEM-001', quantity: 2 }],
    amount: 99.99,
  });

  it('basics: Greeter, Counter, OrderWorkflow (sleep, state, uuid)', async () => {
    t = await testApp({ services: [Greeter, Counter, OrderWorkflow], replay: 'every-step' });
    expect(await t.service(Greeter).greet('Ada')).toBe('Hello, Ada!');
    await t.object(Counter, 'c').add(2);
    expect(await t.object(Counter, 'c').add(3)).toBe(5);
    const id = await t.workflowSend(OrderWorkflow, 'o-1').run({ item: 'book', quantity: 2 });
    await t.runUntilIdle({ skipTime: true });
    expect(await t.attach(id)).toMatchObject({ status: 'confirmed', amount: 20 });
    expect(t.replayFailures).toEqual([]);
  });

  it('order saga: completes, and compensates a failed shipment', async () => {
    t = await testApp({ services: orderSaga, replay: 'every-step' });
    expect(await t.workflow(OrderSaga, 'o-1').run(order('o-1', 'cust-123'))).toMatchObject({
      status: 'completed',
    });
    expect(
      await t.workflow(OrderSaga, 'o-2').run(order('o-2', 'cust-fail-shipment')),
    ).toMatchObject({ status: 'shipment_failed' });
    await t.idle();
    expect(t.replayFailures).toEqual([]);
  });

  it('money transfer saga: moves money, and reverses a failed credit', async () => {
    t = await testApp({ services: moneyTransferSaga, replay: 'every-step' });
    const transfer = (id: string, from: string, to: string, amount: number) =>
      t!
        .workflow(MoneyTransferSaga, id)
        .run({ transferId: id, fromAccount: from, toAccount: to, amount });
    expect(await transfer('tr-1', 'acct-alice', 'acct-bob', 100.25)).toMatchObject({
      status: 'completed',
    });
    expect(await transfer('tr-3', 'acct-alice', 'acct-nobody', 40)).toMatchObject({
      status: 'failed',
      reversed: ['debit source'],
    });
    expect(await transfer('tr-2', 'acct-bob', 'acct-alice', 5000)).toMatchObject({
      reason: 'insufficient_funds',
    });
    expect(t.replayFailures).toEqual([]);
  });

  it('claim saga: a durable promise raced against a 30-day sleep, approval and timeout', async () => {
    t = await testApp({ services: claimSaga, replay: 'every-step' });
    const claim = (claimId: string) => ({
      claimId,
      policyId: 'pol-123',
      customerId: 'cust-123',
      amount: 1200,
      description: 'broken arm',
    });
    const paid = await t.workflowSend(ClaimSaga, 'claim-1').run(claim('claim-1'));
    const late = await t.workflowSend(ClaimSaga, 'claim-t').run(claim('claim-t'));
    await t.advance('3d');
    await t.workflow(ClaimSaga, 'claim-1').approve({ approved: true, reviewer: 'ann' });
    expect(await t.attach(paid)).toMatchObject({ status: 'paid', reviewer: 'ann' });
    await t.runUntilIdle({ skipTime: true });
    expect(await t.attach(late)).toMatchObject({ status: 'timeout' });
    expect(t.replayFailures).toEqual([]);
  });
});

// ---- what a shadow replay sees ------------------------------------------------------------

describe('the globals of a shadow replay', () => {
  it('differ only inside it, reach named imports, and are put back', async () => {
    const RealDate = Date;
    const release = acquireShadowGlobals();
    try {
      const io: string[] = [];
      const scope = {
        shiftMs: 86_400_000,
        prng: new Prng('x'),
        sideEffect: (w: string) => io.push(w),
      };
      const before = Date.now();
      const inside = await inShadow(scope, async () => {
        await Promise.resolve(); // still inside after an await
        expect(() => request('http://127.0.0.1:9/x')).toThrow(/outside ctx.run/);
        return { now: Date.now(), date: new Date().getTime(), uuid: randomUUID() };
      });
      expect(inside.now - before).toBeGreaterThanOrEqual(86_400_000);
      expect(inside.date - before).toBeGreaterThanOrEqual(86_400_000);
      expect(inside.uuid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-/);
      expect(io).toEqual(['http.request("http://127.0.0.1:9/x")']);
      // Outside, the same globals answer as before.
      expect(Date.now() - before).toBeLessThan(86_400_000);
      expect(new Date(0)).toBeInstanceOf(RealDate);
    } finally {
      release();
    }
    expect(globalThis.Date).toBe(RealDate);
  });
});
