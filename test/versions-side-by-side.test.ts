import { afterEach, describe, expect, it } from 'vitest';
import { Engine, workflow, type Definition, type WorkflowContext } from '../src/index.js';
import { openSqliteStore } from '../src/store/sqlite/index.js';
import { FakeClock } from '../src/testing/index.js';
import { tempDir, until } from './helpers.js';

/**
 * Side-by-side versions of a definition (`version` on `workflow`/`service`/`object`): a
 * deployment registers the new code beside the old; in-flight invocations keep the version
 * their journal was written by, new ones take the highest. An app restarts over invocations
 * suspended in a sleep, on a real SQLite file and a fake clock.
 */

/** `key:version:step` for every step body that really ran (replays run none). */
let ran: string[] = [];

const code = (label: string, steps: string[]) => async (ctx: WorkflowContext) => {
  const out: string[] = [];
  for (const [i, s] of steps.entries()) {
    out.push(
      await ctx.run(s, async () => {
        ran.push(`${ctx.key}:${label}:${s}`);
        return s;
      }),
    );
    if (i === 0) await ctx.sleep('1h');
  }
  return `${label}:${out.join(',')}`;
};

// The original code, before versions were declared; then the same code as version 1, and a
// changed one as version 2 (a step renamed and one added: it would not replay an old journal).
const Unversioned = workflow({ name: 'Order', run: code('v1', ['A', 'B']) });
const V1 = workflow({ name: 'Order', version: 1, run: code('v1', ['A', 'B']) });
const V2 = workflow({ name: 'Order', version: 2, run: code('v2', ['A2', 'C', 'B']) });

const dirs: Array<() => void> = [];
let engine: Engine | undefined;
afterEach(async () => {
  await engine?.stop().catch(() => undefined);
  engine = undefined;
  for (const d of dirs.splice(0)) d();
  ran = [];
});

function deploy(path: string, clock: FakeClock, services: Definition[]): Promise<Engine> {
  engine = new Engine({
    services,
    store: openSqliteStore({ path }),
    clock,
    logger: () => undefined,
  });
  return engine.start().then(() => engine!);
}

async function output(e: Engine, id: string): Promise<unknown> {
  await until(async () => (await e.getInvocation(id))?.status === 'completed', `${id} completed`);
  const out = await e.output(id);
  return out.ready && 'output' in out.outcome ? out.outcome.output : out;
}

describe('side-by-side versions', () => {
  it('finishes old runs on the old version and starts new ones on the new, across restarts', async () => {
    const { dir, cleanup } = tempDir();
    dirs.push(cleanup);
    const path = `${dir}/keel.db`;
    const clock = new FakeClock();
    // Before versions: run `old` starts and sleeps after A.
    let e = await deploy(path, clock, [Unversioned]);
    const old = await e.send({ service: 'Order', handler: 'run', key: 'old' });
    await until(async () => ran.includes('old:v1:A'), 'old ran A');
    await e.stop();
    // The deployment: v1 (the same code) beside v2.
    e = await deploy(path, clock, [V1, V2]);
    const fresh = await e.send({ service: 'Order', handler: 'run', key: 'new' });
    await until(async () => ran.includes('new:v2:A2'), 'new ran A2 on v2');
    const journal = await e.getJournal(fresh.invocationId);
    expect(journal[0]).toMatchObject({ kind: 'patch', name: '@version:2' });
    // Another restart (same two versions, listed the other way round) while both sleep.
    await e.stop();
    e = await deploy(path, clock, [V2, V1]);
    await clock.advance('1h');
    expect(await output(e, old.invocationId)).toBe('v1:A,B');
    expect(await output(e, fresh.invocationId)).toBe('v2:A2,C,B');
    expect(ran.sort()).toEqual(['new:v2:A2', 'new:v2:B', 'new:v2:C', 'old:v1:A', 'old:v1:B']);
  });

  it('ends an invocation pinned to a version no longer registered, saying which and what to do', async () => {
    const { dir, cleanup } = tempDir();
    dirs.push(cleanup);
    const path = `${dir}/keel.db`;
    const clock = new FakeClock();
    let e = await deploy(path, clock, [V1, V2]);
    // A v1-pinned run: start it while v1 is the highest, then drop v1.
    await e.stop();
    e = await deploy(path, clock, [V1]);
    const pinned = await e.send({ service: 'Order', handler: 'run', key: 'p' });
    await until(async () => ran.includes('p:v1:A'), 'p ran A');
    await e.stop();
    e = await deploy(path, clock, [
      V2,
      workflow({ name: 'Order', version: 3, run: code('v3', ['X']) }),
    ]);
    await clock.advance('1h');
    await until(
      async () => (await e.getInvocation(pinned.invocationId))?.status === 'failed',
      'the pinned run ended',
    );
    const info = await e.getInvocation(pinned.invocationId);
    expect(info?.error?.message).toMatch(
      /version 1 of Order .* is no longer registered: register it again/,
    );
  });

  it('refuses two definitions of one name without distinct versions', () => {
    const { dir, cleanup } = tempDir();
    dirs.push(cleanup);
    const store = () => openSqliteStore({ path: `${dir}/k.db` });
    expect(() => new Engine({ services: [Unversioned, V2], store: store() })).toThrow(
      /each must have its own "version"/,
    );
    expect(() => new Engine({ services: [V1, V1], store: store() })).toThrow(
      /each must have its own "version"/,
    );
    expect(() => workflow({ name: 'W', version: 0, run: async () => 1 })).toThrow(
      /"version" must be a whole number from 1/,
    );
  });

  it('keeps "@version:" change ids for itself', async () => {
    const { dir, cleanup } = tempDir();
    dirs.push(cleanup);
    const W = workflow({
      name: 'W',
      run: async (ctx) => ctx.patched('@version:1'),
    });
    const e = await deploy(`${dir}/k.db`, new FakeClock(), [W]);
    const r = await e.send({ service: 'W', handler: 'run', key: 'k' });
    await until(async () => (await e.getInvocation(r.invocationId))?.status === 'failed', 'failed');
    expect((await e.getInvocation(r.invocationId))?.error?.message).toMatch(/Keel's own/);
  });
});
