import { afterEach, describe, expect, it } from 'vitest';
import {
  CancelledError,
  object,
  saga,
  service,
  TerminalError,
  workflow,
  type ObjectContext,
} from '../src/index.js';
import { gate, harness, until, type Harness } from './helpers.js';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const status = async (id: string): Promise<string | undefined> =>
  (await h!.engine.getInvocation(id))?.status;

interface Approval {
  approved: boolean;
  by: string;
}

/** Seed 002 exercise 5: approval promise against a 30-day timer. */
const Claim = workflow({
  name: 'Claim',
  run: async (ctx, claim: { amount: number }) => {
    const approval = ctx.promise<Approval>('approval');
    const winner = await ctx.race([
      approval.get(),
      ctx.sleep('30d').then(() => 'timeout' as const),
    ]);
    if (winner === 'timeout') return { status: 'timeout' };
    if (!winner.approved) return { status: 'rejected' };
    const paymentId = await ctx.run('pay', () => `pay-${claim.amount}`);
    return { status: 'paid', paymentId, by: winner.by };
  },
  handlers: {
    approve: async (ctx, approval: Approval) => ctx.promise<Approval>('approval').resolve(approval),
    peek: async (ctx) => (await ctx.promise<Approval>('approval').peek()) ?? null,
  },
});

describe('durable promises against a 30-day timer', () => {
  it('pays when the approval arrives before the timer', async () => {
    h = await harness({ services: [Claim] });
    const run = await h.engine.send({
      service: 'Claim',
      handler: 'run',
      key: 'c1',
      input: { amount: 10 },
    });
    await h.clock.advance('3d'); // suspended meanwhile
    expect(await status(run.invocationId)).toBe('suspended');
    expect(await h.engine.client(Claim, 'c1').peek()).toBeNull();
    await h.engine.client(Claim, 'c1').approve({ approved: true, by: 'ann' });
    expect(await h.engine.attach(run.invocationId)).toEqual({
      status: 'paid',
      paymentId: 'pay-10',
      by: 'ann',
    });
    expect(await h.engine.client(Claim, 'c1').peek()).toEqual({ approved: true, by: 'ann' });
  });

  it('times out when 30 days pass without approval', async () => {
    h = await harness({ services: [Claim] });
    const run = await h.engine.send({
      service: 'Claim',
      handler: 'run',
      key: 'c2',
      input: { amount: 10 },
    });
    await h.clock.advance('29d');
    expect(await status(run.invocationId)).toBe('suspended');
    await h.clock.advance('1d');
    expect(await h.engine.attach(run.invocationId)).toEqual({ status: 'timeout' });
  });

  it('keeps an approval resolved before run asks for it', async () => {
    h = await harness({ services: [Claim] });
    await h.engine.client(Claim, 'c3').approve({ approved: false, by: 'bob' });
    expect(await h.engine.client(Claim, 'c3').run({ amount: 5 })).toEqual({ status: 'rejected' });
  });

  it('refuses to resolve a promise twice with a 409 and keeps the first value', async () => {
    h = await harness({ services: [Claim] });
    await h.engine.client(Claim, 'c4').approve({ approved: true, by: 'first' });
    await expect(
      h.engine.client(Claim, 'c4').approve({ approved: false, by: 'second' }),
    ).rejects.toMatchObject({
      status: 409,
      code: 'promise_already_completed',
    });
    expect(await h.engine.client(Claim, 'c4').peek()).toEqual({ approved: true, by: 'first' });
  });

  it('survives a restart while waiting for the approval', async () => {
    h = await harness({ services: [Claim] });
    const run = await h.engine.send({
      service: 'Claim',
      handler: 'run',
      key: 'c5',
      input: { amount: 7 },
    });
    await h.clock.advance('1h');
    const engine = await h.restart();
    await engine.client(Claim, 'c5').approve({ approved: true, by: 'cy' });
    expect(await engine.attach(run.invocationId)).toMatchObject({ status: 'paid', by: 'cy' });
  });
});

describe('awakeables', () => {
  function waiter(ids: string[], release: Promise<void>) {
    return service({
      name: 'Waiter',
      handlers: {
        wait: async (ctx) => {
          const { id, promise } = ctx.awakeable<string>();
          await ctx.run('publish id', () => {
            ids.push(id);
          });
          await ctx.run('do other work', () => release);
          return `got ${await promise}`;
        },
      },
    });
  }

  it('delivers a value resolved after the handler started waiting', async () => {
    const ids: string[] = [];
    const W = waiter(ids, Promise.resolve());
    h = await harness({ services: [W] });
    const inv = await h.engine.send({ service: 'Waiter', handler: 'wait' });
    await until(() => ids.length === 1, 'awakeable id published');
    await h.clock.advance('5s'); // suspends while waiting
    expect(await status(inv.invocationId)).toBe('suspended');
    await h.engine.resolveAwakeable(ids[0]!, 'late');
    expect(await h.engine.attach(inv.invocationId)).toBe('got late');
  });

  it('keeps a value resolved before the handler reaches the await', async () => {
    const ids: string[] = [];
    const release = gate();
    const W = waiter(ids, release.promise);
    h = await harness({ services: [W] });
    const inv = await h.engine.send({ service: 'Waiter', handler: 'wait' });
    await until(() => ids.length === 1, 'awakeable id published');
    await h.engine.resolveAwakeable(ids[0]!, 'early');
    release.open();
    expect(await h.engine.attach(inv.invocationId)).toBe('got early');
  });

  it('answers 404 for unknown ids and 409 for completed ones, changing nothing', async () => {
    const ids: string[] = [];
    const W = waiter(ids, Promise.resolve());
    h = await harness({ services: [W] });
    await expect(h.engine.resolveAwakeable('awk_nope', 1)).rejects.toMatchObject({ status: 404 });
    await expect(
      h.engine.resolveAwakeable('awk_0000000000000000000000000a_3', 1),
    ).rejects.toMatchObject({ status: 404 });
    const inv = await h.engine.send({ service: 'Waiter', handler: 'wait' });
    await until(() => ids.length === 1, 'awakeable id published');
    await h.engine.rejectAwakeable(ids[0]!, 'no');
    await expect(h.engine.resolveAwakeable(ids[0]!, 'again')).rejects.toMatchObject({
      status: 409,
    });
    await expect(h.engine.attach(inv.invocationId)).rejects.toMatchObject({
      code: 'rejected',
      message: 'no',
    });
  });

  it('lets one handler resolve another handler’s awakeable, exactly once', async () => {
    const ids: string[] = [];
    const W = waiter(ids, Promise.resolve());
    const Resolver = service({
      name: 'Resolver',
      handlers: {
        go: async (ctx, id: string) => {
          await ctx.resolveAwakeable(id, 'from a handler');
          try {
            await ctx.resolveAwakeable(id, 'twice');
            return 'resolved twice?';
          } catch (e) {
            return (e as TerminalError).status;
          }
        },
      },
    });
    h = await harness({ services: [W, Resolver] });
    const inv = await h.engine.send({ service: 'Waiter', handler: 'wait' });
    await until(() => ids.length === 1, 'awakeable id published');
    expect(await h.engine.client(Resolver).go(ids[0]!)).toBe(409);
    expect(await h.engine.attach(inv.invocationId)).toBe('got from a handler');
  });
});

describe('combinators', () => {
  it('races a call against a timeout, both ways', async () => {
    const Slow = service({
      name: 'Slow',
      handlers: {
        work: async (ctx, minutes: number) => {
          await ctx.sleep(minutes * 60_000);
          return `done in ${minutes}m`;
        },
      },
    });
    const Caller = service({
      name: 'Caller',
      handlers: {
        go: async (ctx, minutes: number) => {
          try {
            return await ctx.serviceClient(Slow).work(minutes).orTimeout('10m');
          } catch (e) {
            return (e as TerminalError).code;
          }
        },
      },
    });
    h = await harness({ services: [Slow, Caller] });
    const fast = await h.engine.send({ service: 'Caller', handler: 'go', input: 5 });
    const slow = await h.engine.send({ service: 'Caller', handler: 'go', input: 20 });
    await h.clock.advance('30m');
    expect(await h.engine.attach(fast.invocationId)).toBe('done in 5m');
    expect(await h.engine.attach(slow.invocationId)).toBe('timeout');
  });

  it('replays a race with the winner it recorded, even when both inputs finished meanwhile', async () => {
    const release = gate();
    let blocked = true;
    const W = service({
      name: 'W',
      handlers: {
        go: async (ctx) => {
          const { id, promise } = ctx.awakeable<string>();
          await ctx.run('id', () => id);
          const winner = await ctx.race([promise, ctx.sleep('1h').then(() => 'timer')]);
          await ctx.run('after', async () => {
            if (blocked) await release.promise;
          });
          return winner;
        },
      },
    });
    h = await harness({ services: [W] });
    const inv = await h.engine.send({ service: 'W', handler: 'go' });
    await h.clock.advance('1h'); // the timer wins
    await until(
      async () =>
        (await h!.engine.getJournal(inv.invocationId)).some((e) => e.kind === 'combinator'),
      'race decided',
    );
    const idEntry = (await h.engine.getJournal(inv.invocationId)).find(
      (e) => e.kind === 'run' && e.name === 'id',
    );
    await h.engine.resolveAwakeable(idEntry!.value as string, 'awakeable'); // now both are done
    blocked = false;
    const engine = await h.restart();
    expect(await engine.attach(inv.invocationId)).toBe('timer');
  });

  it('runs steps in parallel and replays them in the same order after a crash', async () => {
    const runs: string[] = [];
    const release = gate();
    let block = true;
    const P = service({
      name: 'P',
      handlers: {
        fan: async (ctx) => {
          const results = await ctx.all(
            ['a', 'b', 'c', 'd'].map((n) =>
              ctx.run(n, async () => {
                runs.push(n);
                if (n === 'c' && block) await release.promise;
                return n.toUpperCase();
              }),
            ),
          );
          const settled = await ctx.allSettled([
            ctx.run('ok', () => 1),
            ctx.run('bad', () => Promise.reject(new TerminalError('x'))),
          ]);
          return { results, settled: settled.map((s) => s.status) };
        },
      },
    });
    h = await harness({ services: [P] });
    const inv = await h.engine.send({ service: 'P', handler: 'fan' });
    await until(() => runs.length === 4, 'all four started');
    block = false;
    const engine = await h.restart();
    expect(await engine.attach(inv.invocationId)).toEqual({
      results: ['A', 'B', 'C', 'D'],
      settled: ['fulfilled', 'rejected'],
    });
    // a, b and d completed before the restart and did not run again; c did.
    expect(runs.filter((r) => r === 'a')).toHaveLength(1);
    expect(runs.filter((r) => r === 'c')).toHaveLength(2);
    const journal = await engine.getJournal(inv.invocationId);
    expect(journal.slice(0, 4).map((e) => e.name)).toEqual(['a', 'b', 'c', 'd']);
  });

  it('any resolves with the first success', async () => {
    const S = service({
      name: 'S',
      handlers: {
        go: async (ctx) =>
          ctx.any([
            ctx.run('fails', () => Promise.reject(new TerminalError('no'))),
            ctx.sleep('1m').then(() => 'slow'),
            ctx.run('fast', () => 'fast'),
          ]),
      },
    });
    h = await harness({ services: [S] });
    expect(await h.engine.client(S).go()).toBe('fast');
  });
});

describe('sagas', () => {
  function inventory(log: string[]) {
    return object({
      name: 'Stock',
      handlers: {
        reserve: async (ctx: ObjectContext, n: number) => {
          const left = ((await ctx.get<number>('left')) ?? 10) - n;
          if (left < 0) throw new TerminalError('out of stock', { code: 'out_of_stock' });
          ctx.set('left', left);
          log.push(`reserve ${n}`);
          return { reservationId: `r${n}` };
        },
        release: async (ctx: ObjectContext, n: number) => {
          ctx.set('left', ((await ctx.get<number>('left')) ?? 10) + n);
          log.push(`release ${n}`);
        },
        left: async (ctx: ObjectContext) => (await ctx.get<number>('left')) ?? 10,
      },
    });
  }

  it('compensates steps 2 and 1, in that order, exactly once, when step 3 fails terminally', async () => {
    const log: string[] = [];
    const Stock = inventory(log);
    const Order = workflow({
      name: 'Order',
      run: async (ctx, input: { n: number; failShipping: boolean }) => {
        const result = await saga(ctx, async (s) => {
          const pay = await s.step('charge', () => (log.push('charge'), 'pay-1'), {
            compensate: (id) => log.push(`refund ${id}`),
          });
          await s.invoke('reserve', () => ctx.objectClient(Stock, 'sku').reserve(input.n), {
            undo: () => ctx.objectClient(Stock, 'sku').release(input.n),
          });
          await s.step('ship', () => {
            log.push('ship');
            if (input.failShipping) throw new TerminalError('no carrier', { code: 'no_carrier' });
          });
          await s.step('email', () => Promise.reject(new TerminalError('smtp down')), {
            critical: false,
          });
          return pay;
        });
        return result;
      },
    });
    h = await harness({ services: [Stock, Order] });
    const bad = await h.engine.client(Order, 'o1').run({ n: 3, failShipping: true });
    expect(bad).toMatchObject({
      status: 'compensated',
      compensated: ['reserve', 'charge'],
      error: { code: 'no_carrier' },
    });
    expect(log).toEqual(['charge', 'reserve 3', 'ship', 'release 3', 'refund pay-1']);
    expect(await h.engine.client(Stock, 'sku').left()).toBe(10);
    const info = (await h.engine.listInvocations({ service: 'Order' })).invocations[0]!;
    expect(info.outcome).toBe('compensated');

    log.length = 0;
    const good = await h.engine.client(Order, 'o2').run({ n: 2, failShipping: false });
    expect(good).toEqual({ status: 'completed', value: 'pay-1' }); // email failed, not critical
    expect(log).toEqual(['charge', 'reserve 2', 'ship']);
  });

  it('runs the compensations of a cancelled saga; kill runs none; purge removes the journal', async () => {
    const log: string[] = [];
    const Job = workflow({
      name: 'Job',
      run: async (ctx) =>
        saga(ctx, async (s) => {
          await s.step('one', () => log.push('one'), { compensate: () => log.push('undo one') });
          await s.step('two', () => log.push('two'), { compensate: () => log.push('undo two') });
          await ctx.sleep('1d');
          await s.step('three', () => log.push('three'));
        }),
    });
    h = await harness({ services: [Job], retention: '30d' });
    const a = await h.engine.send({ service: 'Job', handler: 'run', key: 'a' });
    const b = await h.engine.send({ service: 'Job', handler: 'run', key: 'b' });
    await h.clock.advance('5s');
    expect(await status(a.invocationId)).toBe('suspended');

    await h.engine.cancel(a.invocationId);
    await expect(h.engine.attach(a.invocationId)).rejects.toBeInstanceOf(CancelledError);
    expect(log.filter((l) => l.startsWith('undo'))).toEqual(['undo two', 'undo one']);
    expect((await h.engine.getInvocation(a.invocationId))?.outcome).toBe('compensated');

    log.length = 0;
    await h.engine.kill(b.invocationId);
    await expect(h.engine.attach(b.invocationId)).rejects.toMatchObject({ code: 'killed' });
    await h.clock.advance('2d');
    expect(log).toEqual([]);

    expect((await h.engine.getJournal(a.invocationId)).length).toBeGreaterThan(0);
    await h.engine.purge(a.invocationId);
    await expect(h.engine.getJournal(a.invocationId)).rejects.toMatchObject({ status: 404 });
  });
});

describe('cancellation', () => {
  it('propagates to the call the cancelled invocation waits on', async () => {
    const Child = service({
      name: 'Child',
      handlers: {
        work: async (ctx) => {
          await ctx.sleep('1d');
          return 'finished';
        },
      },
    });
    const Parent = service({
      name: 'Parent',
      handlers: {
        go: async (ctx) => {
          try {
            return await ctx.serviceClient(Child).work();
          } catch (e) {
            // Cancellation arrives at the await; the handler may still do durable work.
            await ctx.run('cleanup', () => 'cleaned');
            throw e;
          }
        },
      },
    });
    h = await harness({ services: [Child, Parent] });
    const parent = await h.engine.send({ service: 'Parent', handler: 'go' });
    await h.clock.advance('5s');
    const child = (await h.engine.listInvocations({ service: 'Child' })).invocations[0]!;
    expect(child.status).toBe('suspended');
    await h.engine.cancel(parent.invocationId);
    await expect(h.engine.attach(parent.invocationId)).rejects.toMatchObject({ code: 'cancelled' });
    await expect(h.engine.attach(child.id)).rejects.toMatchObject({ code: 'cancelled' });
    const journal = await h.engine.getJournal(parent.invocationId);
    expect(journal.some((e) => e.kind === 'run' && e.name === 'cleanup')).toBe(true);
  });

  it('reaches a handler busy in a step at its next step, once', async () => {
    const release = gate();
    const seen: string[] = [];
    const S = service({
      name: 'S',
      handlers: {
        go: async (ctx) => {
          await ctx.run('busy', () => release.promise);
          try {
            await ctx.run('next', () => seen.push('next ran'));
          } catch (e) {
            seen.push((e as TerminalError).code);
          }
          await ctx.run('after', () => seen.push('after ran'));
          return seen;
        },
      },
    });
    h = await harness({ services: [S] });
    const inv = await h.engine.send({ service: 'S', handler: 'go' });
    await until(async () => (await status(inv.invocationId)) === 'running', 'running');
    await h.engine.cancel(inv.invocationId);
    release.open();
    expect(await h.engine.attach(inv.invocationId)).toEqual(['cancelled', 'after ran']);
    expect((await h.engine.getInvocation(inv.invocationId))?.cancel).toBe('delivered');
  });
});

describe('control: bad input changes nothing', () => {
  it('refuses to cancel, kill or resume a finished invocation and to purge a running one', async () => {
    const release = gate();
    const S = service({
      name: 'S',
      handlers: {
        quick: async () => 1,
        slow: async (ctx) => ctx.run('wait', () => release.promise),
      },
    });
    h = await harness({ services: [S] });
    const done = await h.engine.send({ service: 'S', handler: 'quick' });
    await h.engine.attach(done.invocationId);
    await expect(h.engine.cancel(done.invocationId)).rejects.toMatchObject({
      status: 409,
      code: 'already_finished',
    });
    await expect(h.engine.kill(done.invocationId)).rejects.toMatchObject({ status: 409 });
    await expect(h.engine.resumePaused(done.invocationId)).rejects.toMatchObject({
      status: 409,
      code: 'not_paused',
    });
    await expect(h.engine.cancel('inv_00000000000000000000000000')).rejects.toMatchObject({
      status: 404,
    });
    const running = await h.engine.send({ service: 'S', handler: 'slow' });
    await expect(h.engine.purge(running.invocationId)).rejects.toMatchObject({
      status: 409,
      code: 'not_finished',
    });
    expect(await status(done.invocationId)).toBe('completed');
    release.open();
    expect(await h.engine.attach(running.invocationId)).toBeUndefined();
  });

  it('cancels a queued object invocation before it starts', async () => {
    const release = gate();
    let started = 0;
    const Obj = object({
      name: 'Obj',
      handlers: {
        work: async (ctx: ObjectContext) => {
          started++;
          await ctx.run('wait', () => release.promise);
        },
      },
    });
    h = await harness({ services: [Obj] });
    const first = await h.engine.send({ service: 'Obj', handler: 'work', key: 'k' });
    const queued = await h.engine.send({ service: 'Obj', handler: 'work', key: 'k' });
    await h.engine.cancel(queued.invocationId);
    await expect(h.engine.attach(queued.invocationId)).rejects.toMatchObject({ code: 'cancelled' });
    release.open();
    await h.engine.attach(first.invocationId);
    expect(started).toBe(1);
  });

  it('resumes a paused invocation once its code is fixed', async () => {
    const release = gate();
    let version = 1;
    const S = service({
      name: 'S',
      handlers: {
        go: async (ctx) => {
          if (version === 2) await ctx.run('renamed', () => 1);
          else await ctx.run('first', () => 1);
          await ctx.run('block', () => release.promise);
          return `v${version}`;
        },
      },
    });
    h = await harness({ services: [S] });
    const inv = await h.engine.send({ service: 'S', handler: 'go' });
    await until(
      async () => (await h!.engine.getJournal(inv.invocationId)).length === 1,
      'first step journaled',
    );
    version = 2;
    const engine = await h.restart();
    await until(
      async () => (await status(inv.invocationId)) === 'paused',
      'paused after the mismatch',
    );
    version = 1; // the fix: restore the step order
    release.open();
    await engine.resumePaused(inv.invocationId);
    expect(await engine.attach(inv.invocationId)).toBe('v1');
  });
});
