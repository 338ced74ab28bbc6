import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  Engine,
  object,
  service,
  workflow,
  type ObjectContext,
  type SendResult,
} from '../src/index.js';
import { openSqliteStore } from '../src/store/sqlite/index.js';
import type { WriteOp } from '../src/store/types.js';
import { crash, FakeClock, settle } from '../src/testing/index.js';
import { holdingStore, tempDir, until, type HoldingStore } from './helpers.js';

/**
 * An acknowledged invocation (a send's answer, an HTTP 202) survives a crash at any moment:
 * the row it names is durable before the answer, and nothing that makes it runnable is
 * deleted before what replaces it is durable. Each test crashes with `crash()` (kill -9
 * semantics), holding back writes that a real crash could lose, and starts a new engine on
 * the same SQLite file.
 */
let dirs: Array<() => void> = [];
let engines: Engine[] = [];
afterEach(async () => {
  for (const e of engines) await e.stop().catch(() => undefined);
  for (const cleanup of dirs) cleanup();
  engines = [];
  dirs = [];
});

/** Engines on one SQLite file and one fake clock; each new one is the restart of the last. */
function node(services: ConstructorParameters<typeof Engine>[0]['services']) {
  const { dir, cleanup } = tempDir('keel-ack-');
  dirs.push(cleanup);
  const clock = new FakeClock();
  const path = join(dir, 'keel.db');
  return {
    clock,
    async start(): Promise<{ engine: Engine; store: HoldingStore }> {
      const store = holdingStore(openSqliteStore({ path }));
      const engine = new Engine({ services, store, clock, logger: () => undefined });
      engines.push(engine);
      await engine.start();
      return { engine, store };
    },
  };
}

const inserts = (ops: WriteOp[]): boolean => ops.some((o) => o.op === 'invocation.insert');

describe('duplicate submissions', () => {
  const runs: string[] = [];
  const Pay = service({
    name: 'Pay',
    handlers: { charge: async (ctx, n: number) => ctx.run('charge', () => (runs.push('pay'), n)) },
  });
  const Order = workflow({
    name: 'Order',
    run: async (ctx, n: number) => ctx.run('place', () => (runs.push('order'), n)),
  });
  const cases = [
    {
      what: 'an idempotency key',
      req: { service: 'Pay', handler: 'charge', idempotencyKey: 'pay-1', input: 7 },
    },
    { what: 'a workflow key', req: { service: 'Order', handler: 'run', key: 'o-1', input: 7 } },
  ];

  it.each(cases)(
    'acknowledges a duplicate ($what) only once the original is durable, so the id survives a crash',
    async ({ req }) => {
      runs.length = 0;
      const n = node([Pay, Order]);
      const first = await n.start();
      // The original's insert waits for its group commit (held here); a kill -9 now loses it.
      first.store.hold(inserts);
      void first.engine.send(req).catch(() => undefined);
      await until(() => first.store.held > 0, 'the original insert queued');
      let acked: SendResult | undefined;
      const duplicate = first.engine.send(req).then((r) => (acked = r));
      await settle(10);
      // Only a duplicate not answered yet lets the commit happen: one answered while the
      // original's insert is still held is crashed on, as a kill -9 right after its 202 would.
      if (acked === undefined) first.store.release();
      const ack = await duplicate;
      expect(ack.existing).toBe(true);

      await crash(first.engine);
      const second = await n.start();
      expect(await second.engine.getInvocation(ack.invocationId)).toBeDefined();
      expect(await second.engine.attach(ack.invocationId)).toBe(7);
      const again = await second.engine.send(req);
      expect(again).toMatchObject({ invocationId: ack.invocationId, existing: true });
    },
  );

  it('never answers a duplicate with the dead id of an original whose insert failed', async () => {
    runs.length = 0;
    const n = node([Pay, Order]);
    const { engine, store } = await n.start();
    const req = cases[0]!.req;
    store.hold(inserts);
    const original = engine.send(req);
    await until(() => store.held > 0, 'the original insert queued');
    const duplicate = engine.send(req);
    await settle(10);
    store.fail(new Error('disk unplugged'));
    await expect(original).rejects.toThrow(/disk unplugged/);
    // The key is free again: the duplicate becomes the invocation that holds it.
    const ack = await duplicate;
    expect(await engine.getInvocation(ack.invocationId), 'answered with a dead id').toBeDefined();
    expect(ack.existing).toBe(false);
    expect(await engine.attach(ack.invocationId)).toBe(7);
    expect(await engine.send(req)).toMatchObject({
      invocationId: ack.invocationId,
      existing: true,
    });
  });
});

describe('delayed sends to a busy key', () => {
  it('runs a delayed send whose timer fired while its key was busy, once, after a crash', async () => {
    const added: number[] = [];
    const Counter = object({
      name: 'Counter',
      handlers: {
        // Holds the key while it sleeps (suspended), as a long-running exclusive handler does.
        hold: async (ctx: ObjectContext) => {
          await ctx.sleep('10m');
          return 'held';
        },
        add: async (ctx: ObjectContext, n: number) => {
          await ctx.run('add', () => added.push(n));
          const total = ((await ctx.get<number>('total')) ?? 0) + n;
          ctx.set('total', total);
          return total;
        },
      },
    });
    const n = node([Counter]);
    const first = await n.start();
    const holder = await first.engine.send({ service: 'Counter', handler: 'hold', key: 'k' });
    const delayed = await first.engine.send({
      service: 'Counter',
      handler: 'add',
      key: 'k',
      input: 5,
      delayMs: 60_000,
    });
    expect(delayed.status).toBe('scheduled');
    await n.clock.advance('2m'); // the delayed send is due while 'hold' still has the key
    expect(added).toEqual([]);

    await crash(first.engine);
    const second = await n.start();
    await n.clock.advance('10m'); // 'hold' finishes and hands the key on
    expect(await second.engine.attach(holder.invocationId)).toBe('held');
    await until(
      async () => (await second.engine.getInvocation(delayed.invocationId))?.status === 'completed',
      'the delayed send to run',
    );
    expect(await second.engine.attach(delayed.invocationId)).toBe(5);
    expect(added).toEqual([5]);
  });
});

describe('retries', () => {
  it('recovers a retry that was running when the process crashed', async () => {
    let attempts = 0;
    const Flaky = service({
      name: 'Flaky',
      handlers: {
        go: async () => {
          attempts++;
          if (attempts === 1) throw new Error('first attempt fails');
          // The retry is still running when the crash comes.
          if (attempts === 2) await new Promise(() => undefined);
          return attempts;
        },
      },
    });
    const n = node([Flaky]);
    const first = await n.start();
    const sent = await first.engine.send({ service: 'Flaky', handler: 'go' });
    await until(
      async () => (await first.engine.getInvocation(sent.invocationId))?.status === 'backing-off',
      'the first attempt to fail',
    );
    await n.clock.advance('1m'); // the retry timer fires: attempt 2 starts
    await until(() => attempts === 2, 'the retry to start');
    await crash(first.engine);

    const second = await n.start();
    await until(
      async () => (await second.engine.getInvocation(sent.invocationId))?.status === 'completed',
      'the retry to run again after the restart',
    );
    expect(await second.engine.attach(sent.invocationId)).toBe(3);
  });
});

describe('sends from handlers', () => {
  const sendsTarget = (ops: WriteOp[]): boolean =>
    ops.some((o) => o.op === 'invocation.insert' && o.row.service === 'Target');

  it('gives a handler the id of a send only once the invocation it names is durable', async () => {
    const told: string[] = [];
    const Target = service({ name: 'Target', handlers: { go: async (_ctx, n: number) => n } });
    const Sender = service({
      name: 'Sender',
      handlers: {
        go: async (ctx) => {
          const id = await ctx.serviceSendClient(Target).go(1).invocationId;
          // The id leaves the engine (an email, another system): it must name a durable row.
          await ctx.run('tell', () => told.push(id));
          return id;
        },
      },
    });
    const n = node([Target, Sender]);
    const first = await n.start();
    first.store.hold(sendsTarget);
    const sender = await first.engine.send({ service: 'Sender', handler: 'go' });
    await until(() => first.store.held > 0, 'the send queued');
    await settle(10);
    // A handler that was given the id already is crashed on while the send is still held.
    if (told.length === 0) first.store.release();
    await until(() => told.length > 0, 'the handler to get the id');
    await crash(first.engine);

    const second = await n.start();
    const id = await second.engine.attach(sender.invocationId);
    for (const t of told) expect(await second.engine.getInvocation(t), `told ${t}`).toBeDefined();
    expect(await second.engine.attach(id as string)).toBe(1);
  });

  it('retries the attempt of a handler whose send could not be stored, so the send happens', async () => {
    const Target = service({ name: 'Target', handlers: { go: async (_ctx, n: number) => n } });
    const Sender = service({
      name: 'Sender',
      handlers: {
        // Does not wait for the id: only the engine can notice that the send was lost.
        go: async (ctx) => {
          void ctx
            .serviceSendClient(Target)
            .go(1)
            .invocationId.catch(() => undefined);
          await ctx.run('after', () => 'later step');
          return 'sent';
        },
      },
    });
    const n = node([Target, Sender]);
    const { engine, store } = await n.start();
    store.hold(sendsTarget);
    const sender = await engine.send({ service: 'Sender', handler: 'go' });
    await until(() => store.held > 0, 'the send queued');
    await settle(10); // the handler waits for its next step's commit, behind the send
    // The send's write fails alone (a dropped connection); the step's commit goes through.
    store.failFirst(new Error('connection lost'));
    await n.clock.advance('5s'); // the retry of the sender's attempt
    expect(await engine.attach(sender.invocationId)).toBe('sent');
    const targets = async () =>
      (await engine.listInvocations({ service: 'Target' })).invocations.map((i) => i.status);
    await until(async () => (await targets()).includes('completed'), 'the send to run');
    expect(await targets()).toEqual(['completed']);
  });
});
