import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  handler,
  object,
  service,
  shared,
  TerminalError,
  workflow,
  type ObjectContext,
  type WriteOp,
} from '../src/index.js';
import { gate, harness, until, type Harness } from './helpers.js';
import { kernelOf } from '../src/engine/kernel.js';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

describe('steps and replay', () => {
  it('runs a completed step exactly once across a restart, and re-runs the interrupted one', async () => {
    const runs = { a: 0, b: 0 };
    const release = gate();
    let blockB = true;
    const Flow = service({
      name: 'Flow',
      handlers: {
        go: async (ctx, input: string) => {
          const a = await ctx.run('a', () => {
            runs.a++;
            return `${input}-a`;
          });
          const b = await ctx.run('b', async () => {
            runs.b++;
            if (blockB) await release.promise;
            return `${a}-b`;
          });
          return b;
        },
      },
    });
    h = await harness({ services: [Flow] });
    const sent = await h.engine.send({ service: 'Flow', handler: 'go', input: 'x' });
    await until(() => runs.b === 1, 'step b started');
    // Restart while b is in flight: a is durable, b is not.
    blockB = false;
    const engine = await h.restart();
    expect(await engine.attach(sent.invocationId)).toBe('x-a-b');
    expect(runs).toEqual({ a: 1, b: 2 });
  });

  it('returns step results in their JSON form, the same as a replay would', async () => {
    const S = service({
      name: 'S',
      handlers: { go: async (ctx) => (await ctx.run('d', () => ({ at: new Date(0) }))).at },
    });
    h = await harness({ services: [S] });
    expect(await h.engine.client(S).go()).toBe('1970-01-01T00:00:00.000Z');
  });

  it('journals ctx.now and derives random/uuid from the invocation, identically on replay', async () => {
    const seen: unknown[] = [];
    const release = gate();
    let first = true;
    const S = service({
      name: 'S',
      handlers: {
        go: async (ctx) => {
          const values = { now: await ctx.now(), r: ctx.random(), u: ctx.uuid() };
          seen.push(values);
          await ctx.run('wait', async () => {
            if (first) await release.promise;
          });
          return values;
        },
      },
    });
    h = await harness({ services: [S] });
    const { invocationId } = await h.engine.send({ service: 'S', handler: 'go' });
    await until(() => seen.length === 1, 'first execution');
    await h.clock.advance('1h'); // a replay at a later time still sees the journaled now
    first = false;
    const engine = await h.restart();
    const result = await engine.attach(invocationId);
    expect(seen).toHaveLength(2);
    expect(seen[1]).toEqual(seen[0]);
    expect(result).toEqual(seen[0]);
  });

  it('keeps ctx.log quiet while replaying', async () => {
    const release = gate();
    let block = true;
    const S = service({
      name: 'S',
      handlers: {
        go: async (ctx) => {
          ctx.log.info('before step');
          await ctx.run('a', () => 1);
          ctx.log.info('after step a');
          await ctx.run('b', async () => {
            if (block) await release.promise;
          });
          ctx.log.info('after step b');
          return 'ok';
        },
      },
    });
    h = await harness({ services: [S] });
    const { invocationId } = await h.engine.send({ service: 'S', handler: 'go' });
    await until(() => h!.logs.some((l) => l.includes('after step a')), 'first execution logged');
    block = false;
    const engine = await h.restart();
    expect(await engine.attach(invocationId)).toBe('ok');
    const count = (text: string): number => h!.logs.filter((l) => l.includes(text)).length;
    expect(count('before step')).toBe(1); // replayed: silent
    // Code after the last journaled entry runs for real again (b had not completed), so its
    // line is logged again, as in Restate.
    expect(count('after step a')).toBe(2);
    expect(count('after step b')).toBe(1);
  });

  it('pauses an invocation whose journal no longer matches the code, naming the entry', async () => {
    const release = gate();
    let version = 1;
    const S = service({
      name: 'S',
      handlers: {
        go: async (ctx) => {
          if (version === 1) {
            await ctx.run('first', () => 1);
            await ctx.run('block', () => release.promise);
          } else {
            await ctx.run('renamed', () => 1);
          }
          return 'done';
        },
      },
    });
    h = await harness({ services: [S] });
    const { invocationId } = await h.engine.send({ service: 'S', handler: 'go' });
    await until(
      async () => (await h!.engine.store.getJournal(invocationId)).length === 1,
      'first step journaled',
    );
    version = 2;
    const engine = await h.restart();
    await until(
      async () => (await engine.getInvocation(invocationId))?.status === 'paused',
      'paused',
    );
    const info = await engine.getInvocation(invocationId);
    expect(info?.error?.code).toBe('non_determinism');
    expect(info?.error?.message).toContain('entry 0');
    expect(info?.error?.message).toContain('run("first")');
    expect(info?.error?.message).toContain('run("renamed")');
  });
});

describe('retries', () => {
  it('retries a failing step with exponential backoff and succeeds, without re-running earlier steps', async () => {
    let before = 0;
    let attempts = 0;
    const S = service({
      name: 'S',
      handlers: {
        go: async (ctx) => {
          await ctx.run('before', () => before++);
          return ctx.run('flaky', () => {
            attempts++;
            if (attempts < 3) throw new Error(`boom ${attempts}`);
            return 'ok';
          });
        },
      },
    });
    h = await harness({ services: [S], retry: { initialInterval: '1s', factor: 2, jitter: 0 } });
    const { invocationId } = await h.engine.send({ service: 'S', handler: 'go' });
    await until(
      async () => (await h!.engine.getInvocation(invocationId))?.status === 'backing-off',
      'first backoff',
    );
    let info = await h.engine.getInvocation(invocationId);
    expect(info?.attempt).toBe(1);
    expect(Date.parse(info!.nextAttemptAt!) - h.clock.now()).toBe(1000);
    await h.clock.advance('1s');
    await until(
      async () => (await h!.engine.getInvocation(invocationId))?.attempt === 2,
      'second failure',
    );
    info = await h.engine.getInvocation(invocationId);
    expect(Date.parse(info!.nextAttemptAt!) - h.clock.now()).toBe(2000); // doubled
    await h.clock.advance('2s');
    expect(await h.engine.attach(invocationId)).toBe('ok');
    expect(attempts).toBe(3);
    expect(before).toBe(1);
  });

  it('fails a step with retries_exhausted after maxAttempts; the handler can catch it', async () => {
    let attempts = 0;
    const S = service({
      name: 'S',
      handlers: {
        go: async (ctx) => {
          try {
            await ctx.run(
              'never',
              () => {
                attempts++;
                throw new Error('down');
              },
              { retry: { maxAttempts: 3, initialInterval: '10ms', jitter: 0 } },
            );
            return 'impossible';
          } catch (e) {
            return (e as TerminalError).code;
          }
        },
      },
    });
    h = await harness({ services: [S] });
    const { invocationId } = await h.engine.send({ service: 'S', handler: 'go' });
    for (let i = 0; i < 5; i++) await h.clock.advance('1s');
    expect(await h.engine.attach(invocationId)).toBe('retries_exhausted');
    expect(attempts).toBe(3);
  });

  it('fails the invocation with retries_exhausted when the handler keeps throwing', async () => {
    let attempts = 0;
    const S = service({
      name: 'S',
      handlers: {
        go: handler({ retry: { maxAttempts: 2, initialInterval: '10ms' } }, async () => {
          attempts++;
          throw new Error('always');
        }),
      },
    });
    h = await harness({ services: [S] });
    const { invocationId } = await h.engine.send({ service: 'S', handler: 'go' });
    await h.clock.advance('1s');
    await expect(h.engine.attach(invocationId)).rejects.toMatchObject({
      code: 'retries_exhausted',
    });
    expect(attempts).toBe(2);
    expect((await h.engine.getInvocation(invocationId))?.status).toBe('failed');
  });

  it('never retries a TerminalError and propagates its code through calls', async () => {
    let attempts = 0;
    const Payments = service({
      name: 'Payments',
      handlers: {
        charge: async (ctx) =>
          ctx.run('charge', () => {
            attempts++;
            throw new TerminalError('card declined', { code: 'card_declined', status: 402 });
          }),
      },
    });
    const Shop = service({
      name: 'Shop',
      handlers: {
        buy: async (ctx) => {
          try {
            await ctx.serviceClient(Payments).charge();
            return 'paid';
          } catch (e) {
            throw new TerminalError(`order failed: ${(e as Error).message}`, {
              code: (e as TerminalError).code,
              status: 402,
            });
          }
        },
      },
    });
    h = await harness({ services: [Payments, Shop] });
    await expect(h.engine.client(Shop).buy()).rejects.toMatchObject({
      code: 'card_declined',
      status: 402,
      message: 'order failed: card declined',
    });
    expect(attempts).toBe(1);
  });
});

describe('objects', () => {
  function counter(track: { active: number; max: number }) {
    return object({
      name: 'Counter',
      handlers: {
        add: async (ctx: ObjectContext, n: number) => {
          track.active++;
          track.max = Math.max(track.max, track.active);
          const total = ((await ctx.get<number>('total')) ?? 0) + n;
          await ctx.run('slow', () => new Promise((r) => setTimeout(r, 2)));
          ctx.set('total', total);
          track.active--;
          return total;
        },
        get: shared(async (ctx) => (await ctx.get<number>('total')) ?? 0),
        keys: shared(async (ctx) => ctx.stateKeys()),
        wipe: async (ctx: ObjectContext) => {
          ctx.clear('total');
          return ctx.stateKeys();
        },
      },
    });
  }

  it('runs exclusive handlers one at a time per key, in arrival order, with exact totals', async () => {
    const track = { active: 0, max: 0 };
    const Counter = counter(track);
    h = await harness({ services: [Counter] });
    const results = await Promise.all(
      Array.from({ length: 20 }, () => h!.engine.client(Counter, 'k').add(1)),
    );
    expect(track.max).toBe(1);
    // FIFO: the i-th request to arrive sees the i-th total.
    expect(results).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(await h.engine.client(Counter, 'k').get()).toBe(20);
  });

  it('runs different keys concurrently and keeps their state apart', async () => {
    const track = { active: 0, max: 0 };
    const Counter = counter(track);
    h = await harness({ services: [Counter] });
    await Promise.all(
      ['a', 'b', 'c', 'd'].flatMap((k) => [
        h!.engine.client(Counter, k).add(1),
        h!.engine.client(Counter, k).add(2),
      ]),
    );
    expect(track.max).toBeGreaterThan(1);
    for (const k of ['a', 'b', 'c', 'd']) expect(await h.engine.client(Counter, k).get()).toBe(3);
  });

  it('lets a shared handler run while an exclusive one holds the key', async () => {
    const release = gate();
    const Obj = object({
      name: 'Obj',
      handlers: {
        hold: async (ctx: ObjectContext) => {
          ctx.set('v', 1);
          await ctx.run('hold', () => release.promise);
          return 'held';
        },
        peek: shared(async (ctx) => (await ctx.get<number>('v')) ?? null),
      },
    });
    h = await harness({ services: [Obj] });
    const holding = h.engine.client(Obj, 'k').hold();
    await until(
      async () => (await h!.engine.client(Obj, 'k').peek()) === 1,
      'state visible to shared handler',
    );
    release.open();
    expect(await holding).toBe('held');
  });

  it('rejects state writes from a shared handler with a clear error', async () => {
    const Obj = object({
      name: 'Obj',
      handlers: {
        bad: shared(async (ctx) => {
          (ctx as unknown as ObjectContext).set('x', 1);
          return 'no';
        }),
      },
    });
    h = await harness({ services: [Obj] });
    await expect(h.engine.client(Obj, 'k').bad()).rejects.toMatchObject({
      code: 'usage',
      message: expect.stringContaining('shared handler'),
    });
  });

  it('clears state and lists keys', async () => {
    const Counter = counter({ active: 0, max: 0 });
    h = await harness({ services: [Counter] });
    await h.engine.client(Counter, 'k').add(5);
    expect(await h.engine.client(Counter, 'k').keys()).toEqual(['total']);
    expect(await h.engine.client(Counter, 'k').wipe()).toEqual([]);
    expect(await h.engine.client(Counter, 'k').get()).toBe(0);
  });
});

describe('workflows', () => {
  it('runs run once per key; a second call attaches and returns the same result', async () => {
    let runs = 0;
    const release = gate();
    const Wf = workflow({
      name: 'Wf',
      run: async (ctx, input: { n: number }) => {
        runs++;
        ctx.set('stage', 'started');
        await ctx.run('block', () => release.promise);
        ctx.set('stage', 'finished');
        return input.n * 2;
      },
      handlers: { stage: async (ctx) => ctx.get<string>('stage') },
    });
    h = await harness({ services: [Wf] });
    const first = h.engine.client(Wf, 'w1').run({ n: 21 });
    const second = h.engine.client(Wf, 'w1').run({ n: 99 });
    await until(
      async () => (await h!.engine.client(Wf, 'w1').stage()) === 'started',
      'other handler reads state while run runs',
    );
    release.open();
    expect(await first).toBe(42);
    expect(await second).toBe(42);
    expect(await h.engine.client(Wf, 'w1').run({ n: 1 })).toBe(42);
    expect(runs).toBe(1);
    expect(await h.engine.client(Wf, 'w1').stage()).toBe('finished');
  });
});

describe('idempotency', () => {
  it('returns the same invocation and result for the same key, attaching while it runs', async () => {
    let runs = 0;
    const release = gate();
    const S = service({
      name: 'S',
      handlers: {
        go: async (ctx, n: number) => {
          runs++;
          await ctx.run('block', () => release.promise);
          return n + 1;
        },
      },
    });
    h = await harness({ services: [S] });
    const a = await h.engine.send({ service: 'S', handler: 'go', input: 1, idempotencyKey: 'k1' });
    const b = await h.engine.send({ service: 'S', handler: 'go', input: 1, idempotencyKey: 'k1' });
    expect(b.invocationId).toBe(a.invocationId);
    expect(b.existing).toBe(true);
    const attached = h.engine.invoke({
      service: 'S',
      handler: 'go',
      input: 1,
      idempotencyKey: 'k1',
    });
    release.open();
    expect(await attached).toBe(2);
    expect(
      await h.engine.invoke({ service: 'S', handler: 'go', input: 1, idempotencyKey: 'k1' }),
    ).toBe(2);
    const other = await h.engine.invoke({
      service: 'S',
      handler: 'go',
      input: 5,
      idempotencyKey: 'k2',
    });
    expect(other).toBe(6);
    expect(runs).toBe(2);
  });

  it('deduplicates calls made with an idempotency key from inside handlers', async () => {
    let charges = 0;
    const Pay = service({
      name: 'Pay',
      handlers: { charge: async (ctx) => ctx.run('c', () => ++charges) },
    });
    const Shop = service({
      name: 'Shop',
      handlers: {
        buy: async (ctx) => {
          const a = await ctx.serviceClient(Pay).charge(undefined, { idempotencyKey: 'order-1' });
          const b = await ctx.serviceClient(Pay).charge(undefined, { idempotencyKey: 'order-1' });
          return [a, b];
        },
      },
    });
    h = await harness({ services: [Pay, Shop] });
    expect(await h.engine.client(Shop).buy()).toEqual([1, 1]);
    expect(charges).toBe(1);
  });
});

describe('retention', () => {
  it('deletes finished invocations after the retention period, freeing their idempotency keys', async () => {
    let runs = 0;
    const S = service({ name: 'S', handlers: { go: async () => ++runs } });
    h = await harness({ services: [S], retention: '1h' });
    const first = await h.engine.send({ service: 'S', handler: 'go', idempotencyKey: 'once' });
    expect(await h.engine.attach(first.invocationId)).toBe(1);
    await h.clock.advance('59m');
    expect(await h.engine.getInvocation(first.invocationId)).toBeDefined();
    await h.clock.advance('2h');
    await until(
      async () => (await h!.engine.getInvocation(first.invocationId)) === undefined,
      'retention ended',
    );
    expect(await h.engine.store.getJournal(first.invocationId)).toEqual([]);
    const again = await h.engine.send({ service: 'S', handler: 'go', idempotencyKey: 'once' });
    expect(again.invocationId).not.toBe(first.invocationId);
    expect(await h.engine.attach(again.invocationId)).toBe(2);
  });
});

describe('retention of key-value records', () => {
  it('purges every expired record in one sweep, beyond one batch, and keeps the live ones', async () => {
    const S = service({ name: 'S', handlers: { go: async () => 1 } });
    h = await harness({ services: [S], retention: '1h' });
    const now = h.clock.now();
    const ops: WriteOp[] = [];
    // Sweeps run every 15 minutes (retention / 4): only the one at 2 h sees them expired.
    for (let i = 0; i < 2_500; i++)
      ops.push({
        op: 'kv.put',
        scope: 'log',
        key: `old-${i}`,
        value: i,
        expiresAt: now + 110 * 60_000,
      });
    ops.push({
      op: 'kv.put',
      scope: 'log',
      key: 'live',
      value: 'kept',
      expiresAt: now + 86_400_000,
    });
    await h.engine.store.write(ops);
    await h.clock.advance('2h');
    await until(
      async () => (await h!.engine.store.listKv('log', { limit: 10 })).length === 1,
      'expired records purged',
    );
    expect(await h.engine.store.listKv('log')).toEqual([
      { key: 'live', value: 'kept', version: 1, expiresAt: now + 86_400_000 },
    ]);
  });
});

describe('timers and suspension', () => {
  it('sleeps durably with a fake clock, suspending while it waits', async () => {
    let after = 0;
    const S = service({
      name: 'S',
      handlers: {
        go: async (ctx) => {
          await ctx.sleep('1h');
          after++;
          return 'woke';
        },
      },
    });
    h = await harness({ services: [S] });
    const { invocationId } = await h.engine.send({ service: 'S', handler: 'go' });
    expect(kernelOf(h.engine).active.size).toBe(1);
    await h.clock.advance('2s'); // past suspendAfter
    expect((await h.engine.getInvocation(invocationId))?.status).toBe('suspended');
    expect(kernelOf(h.engine).active.size).toBe(0); // no handler closure is held while it sleeps
    await h.clock.advance('59m');
    expect(after).toBe(0);
    await h.clock.advance('1m');
    expect(await h.engine.attach(invocationId)).toBe('woke');
    expect(after).toBe(1);
  });

  it('fires a timer after a restart', async () => {
    let steps = 0;
    const S = service({
      name: 'S',
      handlers: {
        go: async (ctx) => {
          await ctx.run('before', () => steps++);
          await ctx.sleep('30d');
          await ctx.run('after', () => steps++);
          return steps;
        },
      },
    });
    h = await harness({ services: [S] });
    const { invocationId } = await h.engine.send({ service: 'S', handler: 'go' });
    await until(() => steps === 1, 'first step');
    const engine = await h.restart();
    await h.clock.advance('30d');
    expect(await engine.attach(invocationId)).toBe(2);
  });

  it('delays a send until its time', async () => {
    let ran = 0;
    const S = service({ name: 'S', handlers: { go: async () => ++ran } });
    h = await harness({ services: [S] });
    const sent = await h.engine.send({ service: 'S', handler: 'go', delayMs: 5 * 60_000 });
    expect(sent.status).toBe('scheduled');
    await h.clock.advance('4m');
    expect(ran).toBe(0);
    await h.clock.advance('1m');
    expect(await h.engine.attach(sent.invocationId)).toBe(1);
  });

  it('resumes a suspended caller when its callee returns', async () => {
    const Slow = service({
      name: 'Slow',
      handlers: {
        work: async (ctx, n: number) => {
          await ctx.sleep('10m');
          return n * 10;
        },
      },
    });
    const Caller = service({
      name: 'Caller',
      handlers: { go: async (ctx) => ctx.serviceClient(Slow).work(4) },
    });
    h = await harness({ services: [Slow, Caller] });
    const { invocationId } = await h.engine.send({ service: 'Caller', handler: 'go' });
    await h.clock.advance('5s');
    expect((await h.engine.getInvocation(invocationId))?.status).toBe('suspended');
    await h.clock.advance('10m');
    expect(await h.engine.attach(invocationId)).toBe(40);
  });
});

describe('calls, sends and validation', () => {
  it('calls objects and workflows through typed clients and sends one-way', async () => {
    const Counter = object({
      name: 'Counter',
      handlers: {
        add: async (ctx: ObjectContext, n: number) => {
          const t = ((await ctx.get<number>('t')) ?? 0) + n;
          ctx.set('t', t);
          return t;
        },
        get: shared(async (ctx) => (await ctx.get<number>('t')) ?? 0),
      },
    });
    const Main = service({
      name: 'Main',
      handlers: {
        go: async (ctx) => {
          const a = await ctx.objectClient(Counter, 'x').add(2);
          const handle = ctx.objectSendClient(Counter, 'x').add(3);
          return { a, id: await handle.invocationId };
        },
      },
    });
    h = await harness({ services: [Counter, Main] });
    const r = await h.engine.client(Main).go();
    expect(r.a).toBe(2);
    expect(await h.engine.attach(r.id)).toBe(5);
    expect(await h.engine.client(Counter, 'x').get()).toBe(5);
  });

  it('validates input with a Standard Schema (zod) and answers with a 400 ValidationError', async () => {
    const S = service({
      name: 'S',
      handlers: {
        greet: handler(
          { input: z.object({ name: z.string().min(1) }) },
          async (_ctx, input) => `hi ${input.name}`,
        ),
      },
    });
    h = await harness({ services: [S] });
    expect(await h.engine.client(S).greet({ name: 'Ada' })).toBe('hi Ada');
    await expect(h.engine.client(S).greet({ name: '' })).rejects.toMatchObject({
      code: 'validation_failed',
      status: 400,
    });
    await expect(
      h.engine.invoke({ service: 'S', handler: 'greet', input: { nope: 1 } }),
    ).rejects.toMatchObject({
      status: 400,
      message: expect.stringContaining('name'),
    });
  });

  it('fails an invocation whose result or step result is not JSON, instead of hanging', async () => {
    const S = service({
      name: 'S',
      handlers: {
        big: async () => ({ n: 1n }),
        top: async () => 1n,
        step: async (ctx) => {
          try {
            await ctx.run('bad', () => ({ f: 2n }));
          } catch (e) {
            return (e as TerminalError).code;
          }
        },
      },
    });
    h = await harness({ services: [S] });
    await expect(h.engine.client(S).big()).rejects.toMatchObject({ code: 'not_json' });
    await expect(h.engine.client(S).top()).rejects.toMatchObject({ code: 'not_json' });
    expect(await h.engine.client(S).step()).toBe('not_json');
    await expect(
      h.engine.invoke({ service: 'S', handler: 'big', input: { x: 1n } }),
    ).rejects.toMatchObject({ status: 400 });
  });

  it('answers unknown targets with a 404 that lists what exists', async () => {
    const S = service({ name: 'S', handlers: { a: async () => 1 } });
    h = await harness({ services: [S] });
    await expect(h.engine.invoke({ service: 'Nope', handler: 'a' })).rejects.toMatchObject({
      status: 404,
      message: expect.stringContaining('S'),
    });
    await expect(h.engine.invoke({ service: 'S', handler: 'b' })).rejects.toMatchObject({
      status: 404,
      message: expect.stringContaining('a'),
    });
  });
});
