import { afterEach, describe, expect, it } from 'vitest';
import { Engine, workflow } from '../src/index.js';
import { openSqliteStore } from '../src/store/sqlite/index.js';
import { crash } from '../src/testing/index.js';
import { gate, harness, until, type Harness } from './helpers.js';

/**
 * Versioning of in-flight work (`ctx.patched`, `ctx.deprecatePatch`): an app restarts with
 * changed code over invocations suspended in a sleep, on a real SQLite file and a fake clock.
 */

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

/**
 * Which code the workflow runs, as a deployment would swap it:
 * - 1: A, sleep, B (the original);
 * - 2: A, `if (patched('x'))` C, sleep, B (the change, gated);
 * - 'late': A, sleep, `if (patched('x'))` C, B (the same change, gated after the sleep);
 * - 'ungated': A, C, sleep, B (the change without a gate);
 * - 3: A, `deprecatePatch('x')`, C, sleep, B (the old branch retired);
 * - 4: A, C, sleep, B (the gate's call removed once retired; same code as 'ungated');
 * - 5: A, `if (patched('y'))` D, `if (patched('x'))` C, sleep, B (a second change, gated at the same point).
 */
let version: 1 | 2 | 'late' | 'ungated' | 3 | 4 | 5 = 1;
/** `key:step` for every step body that really ran (replays run none). */
let ran: string[] = [];
/** While set, step B's body waits for it. */
let holdB: Promise<void> | undefined;

const Order = workflow({
  name: 'Order',
  run: async (ctx) => {
    const step = (name: string): PromiseLike<string> =>
      ctx.run(name, async () => {
        ran.push(`${ctx.key}:${name}`);
        if (name === 'B' && holdB) await holdB;
        return name;
      });
    const path = [await step('A')];
    if (version === 5 && ctx.patched('y')) path.push(await step('D'));
    if ((version === 2 || version === 5) && ctx.patched('x')) path.push(await step('C'));
    if (version === 3) {
      ctx.deprecatePatch('x');
      path.push(await step('C'));
    }
    if (version === 'ungated' || version === 4) path.push(await step('C'));
    await ctx.sleep('1h');
    if (version === 'late' && ctx.patched('x')) path.push(await step('C'));
    path.push(await step('B'));
    return path;
  },
});

afterEach(() => {
  version = 1;
  ran = [];
  holdB = undefined;
});

const status = async (id: string): Promise<string | undefined> =>
  (await h!.engine.getInvocation(id))?.status;

/** The kinds (and patch names) of an invocation's journal, in index order. */
async function kinds(id: string): Promise<string[]> {
  const entries = await h!.engine.getJournal(id);
  return entries.map((e) => (e.kind === 'patch' ? `patch(${e.name})` : e.kind));
}

/** Starts the workflow for `key` and waits until it is suspended in its sleep. */
async function startSuspended(key: string): Promise<string> {
  const { invocationId } = await h!.engine.send({ service: 'Order', handler: 'run', key });
  await sleeping(invocationId);
  // Past suspendAfter, a second at a time (far from the sleep's hour) on a slow machine.
  await until(async () => {
    await h!.clock.advance('1s');
    return (await status(invocationId)) === 'suspended';
  }, `${key} suspended`);
  return invocationId;
}

/** Waits until the invocation's sleep is journaled, so advancing the clock can fire it. */
async function sleeping(id: string): Promise<void> {
  await until(async () => (await kinds(id)).includes('sleep'), 'the sleep to be journaled');
}

const count = (what: string): number => ran.filter((r) => r === what).length;

describe('ctx.patched over in-flight invocations', () => {
  it('lets a run started under the old code finish on the old branch and a new run take the new one', async () => {
    h = await harness({ services: [Order] });
    const old = await startSuspended('old');
    expect(await kinds(old)).toEqual(['run', 'sleep']);

    version = 2; // deploy the gated change
    await h.restart();
    const fresh = await startSuspended('new');
    // The new run recorded the marker where it asked, then took the new branch.
    expect(await kinds(fresh)).toEqual(['run', 'patch(x)', 'run', 'sleep']);

    await h.clock.advance('1h');
    expect(await h.engine.attach(old)).toEqual(['A', 'B']);
    expect(await h.engine.attach(fresh)).toEqual(['A', 'C', 'B']);
    expect(count('old:C')).toBe(0);
    expect(count('new:C')).toBe(1);
    // The old run's journal has no marker: `patched` answered false without taking an index.
    expect(await kinds(old)).toEqual(['run', 'sleep', 'run']);
    expect(count('old:A')).toBe(1); // replayed, not run again
  });

  it('takes the new branch for a run that had not reached the gate yet', async () => {
    h = await harness({ services: [Order] });
    const old = await startSuspended('early');
    version = 'late'; // the gate sits after the sleep the run is suspended in
    await h.restart();
    await h.clock.advance('1h');
    expect(await h.engine.attach(old)).toEqual(['A', 'C', 'B']);
    expect(await kinds(old)).toEqual(['run', 'sleep', 'patch(x)', 'run', 'run']);
  });

  it('still pauses an old run when the code changed without a gate, naming the entry', async () => {
    h = await harness({ services: [Order] });
    const old = await startSuspended('old');
    version = 'ungated';
    await h.restart();
    await h.clock.advance('1h');
    await until(async () => (await status(old)) === 'paused', 'paused');
    const info = await h.engine.getInvocation(old);
    expect(info?.error?.code).toBe('non_determinism');
    expect(info?.error?.message).toContain('entry 1');
    expect(info?.error?.message).toContain('recorded sleep');
    expect(info?.error?.message).toContain('run("C")');
    expect(count('old:C')).toBe(0);
  });

  it('replays the same branch after a crash of a run started under the gated code', async () => {
    version = 2;
    h = await harness({ services: [Order] });
    const { invocationId } = await h.engine.send({ service: 'Order', handler: 'run', key: 'k' });
    const blocked = gate();
    holdB = blocked.promise;
    await sleeping(invocationId);
    await h.clock.advance('1h'); // the sleep fires; B starts and waits
    await until(() => count('k:B') === 1, 'step B to start');
    await crash(h.engine);

    holdB = undefined;
    h.engine = new Engine({
      services: [Order],
      store: openSqliteStore({ path: h.dbPath }),
      clock: h.clock,
      suspendAfter: '1s',
      logger: () => undefined,
    });
    await h.engine.start();
    expect(await h.engine.attach(invocationId)).toEqual(['A', 'C', 'B']);
    expect(count('k:C')).toBe(1); // the marker decided the replay: C was replayed, not re-run
    expect(count('k:B')).toBe(2); // B had not completed: it ran again
    expect(await kinds(invocationId)).toEqual(['run', 'patch(x)', 'run', 'sleep', 'run']);
  });
});

describe('retiring a gate', () => {
  it('deprecatePatch replays runs with the marker, records it for new runs, and pauses a run that took the old branch', async () => {
    h = await harness({ services: [Order] });
    const old = await startSuspended('old');
    version = 2;
    await h.restart();
    const patched = await startSuspended('patched');

    version = 3; // the old branch retired
    await h.restart();
    const fresh = await startSuspended('new');
    expect(await kinds(fresh)).toEqual(['run', 'patch(x)', 'run', 'sleep']);

    await h.clock.advance('1h');
    expect(await h.engine.attach(patched)).toEqual(['A', 'C', 'B']);
    expect(count('patched:C')).toBe(1);
    expect(await h.engine.attach(fresh)).toEqual(['A', 'C', 'B']);
    // A run that took the old branch cannot replay code without it: paused, naming the change.
    await until(async () => (await status(old)) === 'paused', 'the old run paused');
    const info = await h.engine.getInvocation(old);
    expect(info?.error?.code).toBe('non_determinism');
    expect(info?.error?.message).toContain('entry 1');
    expect(info?.error?.message).toContain('deprecatePatch("x")');
    expect(count('old:C')).toBe(0);
  });

  it('replays a run with the marker once the gate call is removed altogether', async () => {
    version = 2;
    h = await harness({ services: [Order] });
    const patched = await startSuspended('patched');
    version = 4; // A, C, sleep, B: no gate, the new branch kept
    await h.restart();
    await h.clock.advance('1h');
    expect(await h.engine.attach(patched)).toEqual(['A', 'C', 'B']);
    expect(count('patched:C')).toBe(1);
    expect(await kinds(patched)).toEqual(['run', 'patch(x)', 'run', 'sleep', 'run']);
  });

  it('keeps a run on the branches it took when a second gate is added at the same point', async () => {
    version = 2;
    h = await harness({ services: [Order] });
    const withX = await startSuspended('x-only');
    version = 5;
    await h.restart();
    const fresh = await startSuspended('both');
    expect(await kinds(fresh)).toEqual(['run', 'patch(y)', 'run', 'patch(x)', 'run', 'sleep']);
    await h.clock.advance('1h');
    // The marker of x, found where y asks, is not y's: y answers false and takes no index.
    expect(await h.engine.attach(withX)).toEqual(['A', 'C', 'B']);
    expect(count('x-only:D')).toBe(0);
    expect(await h.engine.attach(fresh)).toEqual(['A', 'D', 'C', 'B']);
  });
});
