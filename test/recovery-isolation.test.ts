/**
 * Issue 11: "a process must not be able to crash-loop on its own journal". A journal that
 * cannot be replayed (a decision naming an input the code no longer has, an entry that cannot
 * be decoded) pauses its one invocation with a clear error; recovery goes on, everything else
 * runs, and the operator can resume the invocation once the journal is repaired.
 */
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { object, workflow, type ObjectContext } from '../src/index.js';
import { harness, until, type Harness } from './helpers.js';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

/** Decides a race, then waits again. */
const Racer = workflow({
  name: 'Racer',
  run: async (ctx) => {
    const first = await ctx.race([
      ctx.promise<string>('a').get(),
      ctx.sleep('1h').then(() => 'timeout'),
    ]);
    const second = await ctx.promise<string>('b').get();
    return { first, second };
  },
  handlers: {
    a: async (ctx, v: string) => ctx.promise<string>('a').resolve(v),
    b: async (ctx, v: string) => ctx.promise<string>('b').resolve(v),
  },
});

const Counter = object({
  name: 'Counter',
  handlers: {
    add: async (ctx: ObjectContext, n: number) => {
      const total = ((await ctx.get<number>('total')) ?? 0) + n;
      ctx.set('total', total);
      return total;
    },
  },
});

/** A Racer whose race is decided and which waits for "b", suspended. */
async function decidedRacer(key: string): Promise<string> {
  const { invocationId } = await h!.engine.send({ service: 'Racer', handler: 'run', key });
  await h!.engine.client(Racer, key).a('A');
  await h!.clock.advance('2s');
  await until(
    async () => (await h!.engine.getInvocation(invocationId))?.status === 'suspended',
    'suspension',
  );
  return invocationId;
}

async function combinatorIndex(id: string): Promise<number> {
  const entry = (await h!.engine.getJournal(id)).find((e) => e.kind === 'combinator');
  return entry!.index;
}

describe('recovery with a journal that cannot be replayed', () => {
  it('pauses that invocation with a clear error, and recovers and runs everything else', async () => {
    h = await harness({ services: [Racer, Counter] });
    const damaged = await decidedRacer('damaged');
    const unreadable = await decidedRacer('unreadable');
    const healthy = await decidedRacer('healthy');
    const at = await combinatorIndex(damaged);
    // As a crash mid-run leaves them: running, to be replayed by recovery. One race's decision
    // names an input that does not exist; another's entry is not even JSON.
    await h.engine.store.write([
      {
        op: 'journal.put',
        invocationId: damaged,
        index: at,
        entry: { kind: 'combinator', name: 'race', done: true, value: 7 },
      },
      ...[damaged, unreadable, healthy].map((id) => ({
        op: 'invocation.update' as const,
        id,
        set: { status: 'running' as const },
      })),
    ]);
    await h.engine.stop();
    const db = new Database(h.dbPath);
    db.prepare('UPDATE journal SET data = ? WHERE invocation_id = ? AND idx = ?').run(
      '{"value":',
      unreadable,
      at,
    );
    db.close();

    const engine = await h.restart();
    expect(await engine.client(Counter, 'c').add(2)).toBe(2);
    await engine.client(Racer, 'healthy').b('B');
    expect(await engine.attach(healthy)).toEqual({ first: 'A', second: 'B' });

    await until(
      async () => (await engine.getInvocation(damaged))?.status === 'paused',
      'the damaged invocation to be paused',
    );
    expect((await engine.getInvocation(damaged))?.error).toMatchObject({
      code: 'non_determinism',
      message: expect.stringContaining(`journal mismatch at entry ${at}`),
    });
    await until(
      async () => (await engine.getInvocation(unreadable))?.status === 'paused',
      'the unreadable invocation to be paused',
    );
    expect((await engine.getInvocation(unreadable))?.error).toMatchObject({
      code: 'journal_unreadable',
      message: expect.stringContaining(
        `the journal of invocation ${unreadable} cannot be replayed`,
      ),
    });

    // Repaired, it resumes where it was.
    await engine.store.write([
      {
        op: 'journal.put',
        invocationId: damaged,
        index: at,
        entry: { kind: 'combinator', name: 'race', done: true, value: 0 },
      },
    ]);
    await engine.resumePaused(damaged);
    await engine.client(Racer, 'damaged').b('fixed');
    expect(await engine.attach(damaged)).toEqual({ first: 'A', second: 'fixed' });
  });
});
