/**
 * Issue 11, "crash loop from one request": a decided race/any/all replayed from the journal
 * must still handle the rejection of every input. A losing input that fails later (an
 * awakeable rejected over HTTP, a timer completed by a cancel) was an unhandled rejection,
 * which ends a Node process, and recovery replaying the same journal ended it again.
 *
 * The probe below records unhandled rejections in this test process: each one would have been
 * an exit of a production process.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { workflow } from '../src/index.js';
import { settle } from '../src/testing/index.js';
import { harness, until, type Harness } from './helpers.js';

let h: Harness | undefined;
const unhandled: unknown[] = [];
const probe = (reason: unknown): void => {
  unhandled.push(reason);
};
beforeEach(() => {
  unhandled.length = 0;
  process.on('unhandledRejection', probe);
});
afterEach(async () => {
  process.off('unhandledRejection', probe);
  await h?.close();
  h = undefined;
});

/** Lets Node report any rejection left unhandled by what just ran. */
async function drain(): Promise<void> {
  await settle(5);
  await new Promise((r) => setImmediate(r));
  await settle(5);
}

const status = async (id: string): Promise<string | undefined> =>
  (await h!.engine.getInvocation(id))?.status;

const awakeables = new Map<string, string>();

/** Races an awakeable against a timer, then waits again (and suspends meanwhile). */
const RaceAwakeable = workflow({
  name: 'RaceAwakeable',
  run: async (ctx) => {
    const callback = ctx.awakeable<string>();
    awakeables.set(ctx.key, callback.id);
    const first = await ctx.race([callback.promise, ctx.sleep('1h').then(() => 'timeout')]);
    const next = await ctx.promise<string>('next').get();
    return { first, next };
  },
  handlers: {
    next: async (ctx, value: string) => ctx.promise<string>('next').resolve(value),
  },
});

/** Wins an `orTimeout` (the promise came in time), then waits again. */
const Deadline = workflow({
  name: 'Deadline',
  run: async (ctx) => {
    const ready = await ctx.promise<string>('ready').get().orTimeout('45m');
    const done = await ctx.promise<string>('done').get();
    return { ready, done };
  },
  handlers: {
    ready: async (ctx, value: string) => ctx.promise<string>('ready').resolve(value),
    done: async (ctx, value: string) => ctx.promise<string>('done').resolve(value),
  },
});

/** `any` decided by its first success; the other input fails later. */
const AnyFlow = workflow({
  name: 'AnyFlow',
  run: async (ctx) => {
    const callback = ctx.awakeable<string>();
    awakeables.set(ctx.key, callback.id);
    const first = await ctx.any([ctx.promise<string>('fast').get(), callback.promise]);
    const next = await ctx.promise<string>('next').get();
    return { first, next };
  },
  handlers: {
    fast: async (ctx, value: string) => ctx.promise<string>('fast').resolve(value),
    next: async (ctx, value: string) => ctx.promise<string>('next').resolve(value),
  },
});

describe('losing inputs of a replayed combinator', () => {
  it('survives the rejection of an awakeable that lost a race to a timer', async () => {
    h = await harness({ services: [RaceAwakeable] });
    const { invocationId } = await h.engine.send({
      service: 'RaceAwakeable',
      handler: 'run',
      key: 'r1',
    });
    await until(() => awakeables.has('r1'), 'the awakeable to be created');
    await h.clock.advance('1h'); // the timer wins
    await h.clock.advance('2s'); // waits for "next": suspended
    await until(async () => (await status(invocationId)) === 'suspended', 'suspension');

    await h.engine.rejectAwakeable(awakeables.get('r1')!, 'too late');
    await drain();
    expect(unhandled).toEqual([]);

    await h.engine.client(RaceAwakeable, 'r1').next('go');
    expect(await h.engine.attach(invocationId)).toEqual({ first: 'timeout', next: 'go' });
    await drain();
    expect(unhandled).toEqual([]);
  });

  it('survives a restart whose recovery replays the rejected loser', async () => {
    h = await harness({ services: [RaceAwakeable] });
    const { invocationId } = await h.engine.send({
      service: 'RaceAwakeable',
      handler: 'run',
      key: 'r2',
    });
    await until(() => awakeables.has('r2'), 'the awakeable to be created');
    await h.clock.advance('1h');
    await until(async () => (await status(invocationId)) === 'running', 'the timer to fire');
    await h.engine.rejectAwakeable(awakeables.get('r2')!, 'too late');
    await h.restart(); // recovery replays the journal with the loser rejected
    await drain();
    expect(unhandled).toEqual([]);
    await h.engine.client(RaceAwakeable, 'r2').next('again');
    expect(await h.engine.attach(invocationId)).toEqual({ first: 'timeout', next: 'again' });
  });

  it('cancels cleanly a suspended workflow that won an orTimeout and waits again', async () => {
    h = await harness({ services: [Deadline] });
    const { invocationId } = await h.engine.send({
      service: 'Deadline',
      handler: 'run',
      key: 'd1',
    });
    await h.engine.client(Deadline, 'd1').ready('yes');
    await h.clock.advance('2s');
    await until(async () => (await status(invocationId)) === 'suspended', 'suspension');

    await h.engine.cancel(invocationId);
    await expect(h.engine.attach(invocationId)).rejects.toMatchObject({ code: 'cancelled' });
    await drain();
    expect(unhandled).toEqual([]);
  });

  it('cancels cleanly an in-memory workflow that won an orTimeout and waits again', async () => {
    h = await harness({ services: [Deadline] });
    const { invocationId } = await h.engine.send({
      service: 'Deadline',
      handler: 'run',
      key: 'd2',
    });
    await h.engine.client(Deadline, 'd2').ready('yes');
    await until(async () => (await status(invocationId)) === 'running', 'waiting for done');
    await h.engine.cancel(invocationId);
    await expect(h.engine.attach(invocationId)).rejects.toMatchObject({ code: 'cancelled' });
    await drain();
    expect(unhandled).toEqual([]);
  });

  it('survives the failure of an input that lost an any()', async () => {
    h = await harness({ services: [AnyFlow] });
    const { invocationId } = await h.engine.send({ service: 'AnyFlow', handler: 'run', key: 'a1' });
    await until(() => awakeables.has('a1'), 'the awakeable to be created');
    await h.engine.client(AnyFlow, 'a1').fast('quick');
    await h.clock.advance('2s');
    await until(async () => (await status(invocationId)) === 'suspended', 'suspension');
    await h.engine.rejectAwakeable(awakeables.get('a1')!, 'lost anyway');
    await drain();
    expect(unhandled).toEqual([]);
    await h.engine.client(AnyFlow, 'a1').next('n');
    expect(await h.engine.attach(invocationId)).toEqual({ first: 'quick', next: 'n' });
  });
});
