import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Context } from '../core/context.js';
import { service } from '../core/definitions.js';
import { TerminalError } from '../core/errors.js';
import { runWithWrites, type StepWrite } from '../core/replay.js';
import { openSqliteStore } from '../store/sqlite/index.js';
import type { Store, WriteOp } from '../store/types.js';
import { FakeClock, settle } from '../testing/index.js';
import { Engine } from './engine.js';

/**
 * `runWithWrites`: key-value writes that ride in the commit of a step's journal entry. One
 * store write for both, applied exactly when the step's result is recorded: not when the body
 * fails, and not again when the step replays.
 */
const SCOPE = 'test.step-writes';

interface Rig {
  engine: Engine;
  store: Store;
  /** The ops of every store write() call, in order. */
  writes: WriteOp[][];
  clock: FakeClock;
  restart(): Promise<Engine>;
  close(): Promise<void>;
}

let rig: Rig | undefined;
afterEach(async () => {
  await rig?.close();
  rig = undefined;
});

async function makeRig(defs: ReturnType<typeof service>[]): Promise<Rig> {
  const dir = mkdtempSync(join(tmpdir(), 'keel-step-writes-'));
  const clock = new FakeClock();
  const writes: WriteOp[][] = [];
  const open = (): Store => {
    const store = openSqliteStore({ path: join(dir, 'keel.db') });
    const write = store.write.bind(store);
    store.write = (ops) => {
      // The engine's own one-time setup (the awakeable secret) is not the test's subject.
      const recorded = ops.filter((o) => !('scope' in o && o.scope.startsWith('keel.')));
      if (recorded.length > 0) writes.push(recorded);
      return write(ops);
    };
    return store;
  };
  const make = (store: Store): Engine =>
    // A restart here stands for a crash: no grace for the body it holds.
    new Engine({ services: defs, store, clock, logger: () => undefined, stopGrace: 0 });
  let store = open();
  const r: Rig = {
    engine: make(store),
    get store() {
      return store;
    },
    writes,
    clock,
    async restart() {
      await r.engine.stop();
      store = open();
      r.engine = make(store);
      await r.engine.start();
      return r.engine;
    },
    async close() {
      await r.engine.stop().catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  await r.engine.start();
  return r;
}

const put = (key: string, value: unknown): StepWrite => ({
  op: 'kv.put',
  scope: SCOPE,
  key,
  value,
});

describe('runWithWrites', () => {
  it("commits the writes in the same store write as the step's journal entry", async () => {
    let runs = 0;
    const S = service({
      name: 'S',
      handlers: {
        go: async (ctx: Context, n: number) => {
          const v = await runWithWrites(ctx, 'record', () => {
            runs++;
            return { value: n * 2, writes: [put('a', { n }), put('b', 'x')] };
          });
          return v + 1;
        },
      },
    });
    rig = await makeRig([S]);
    expect(await rig.engine.client(S).go(21)).toBe(43);
    expect(runs).toBe(1);
    expect((await rig.store.getKv(SCOPE, 'a'))?.value).toEqual({ n: 21 });
    expect((await rig.store.getKv(SCOPE, 'b'))?.value).toBe('x');
    const withKv = rig.writes.filter((ops) => ops.some((o) => o.op === 'kv.put'));
    expect(withKv).toHaveLength(1);
    expect(withKv[0]!.map((o) => o.op)).toEqual(['journal.put', 'kv.put', 'kv.put']);
    const entry = withKv[0]![0] as Extract<WriteOp, { op: 'journal.put' }>;
    expect(entry.entry).toMatchObject({ kind: 'run', name: 'record', done: true, value: 42 });
  });

  it('does not run the body or repeat its writes when the step replays', async () => {
    let runs = 0;
    let release!: () => void;
    const blocked = new Promise<void>((r) => (release = r));
    let block = true;
    const S = service({
      name: 'S',
      handlers: {
        go: async (ctx: Context) => {
          await runWithWrites(ctx, 'once', () => {
            runs++;
            return { value: 'done', writes: [put('k', runs)] };
          });
          // Stopped here by a restart: the step is recorded, the handler is not finished.
          await ctx.run('after', async () => {
            if (block) await blocked;
            return 1;
          });
          return 'ok';
        },
      },
    });
    rig = await makeRig([S]);
    const sent = await rig.engine.send({ service: 'S', handler: 'go' });
    for (let i = 0; i < 500 && !(await rig.store.getKv(SCOPE, 'k')); i++) await settle(1);
    block = false;
    const engine = await rig.restart();
    release();
    expect(await engine.attach(sent.invocationId)).toBe('ok');
    expect(runs).toBe(1);
    const row = await rig.store.getKv(SCOPE, 'k');
    expect(row).toMatchObject({ value: 1, version: 1 });
  });

  it('writes nothing for a body that fails, until an attempt succeeds', async () => {
    let runs = 0;
    const S = service({
      name: 'S',
      handlers: {
        retried: async (ctx: Context) =>
          runWithWrites(
            ctx,
            'flaky',
            () => {
              runs++;
              if (runs < 3) throw new Error('not yet');
              return { value: runs, writes: [put('flaky', runs)] };
            },
            { retry: { initialInterval: 1, maxInterval: 1 } },
          ),
        terminal: async (ctx: Context) =>
          runWithWrites(ctx, 'refused', (): { value: number; writes: StepWrite[] } => {
            throw new TerminalError('no');
          }),
      },
    });
    rig = await makeRig([S]);
    const sent = await rig.engine.send({ service: 'S', handler: 'retried' });
    const result = rig.engine.attach(sent.invocationId);
    // Retries wait for their backoff on the (fake) clock.
    for (let i = 0; i < 50 && runs < 3; i++) await rig.clock.advance('1s');
    expect(await result).toBe(3);
    expect(await rig.store.getKv(SCOPE, 'flaky')).toMatchObject({ value: 3, version: 1 });
    await expect(rig.engine.client(S).terminal()).rejects.toThrow('no');
    expect(rig.writes.flat().filter((o) => o.op === 'kv.put')).toHaveLength(1);
  });

  it('deletes, and refuses anything but key-value writes', async () => {
    const S = service({
      name: 'S',
      handlers: {
        del: async (ctx: Context) =>
          runWithWrites(ctx, 'del', () => ({
            value: true,
            writes: [{ op: 'kv.delete', scope: SCOPE, key: 'gone' }],
          })),
        bad: async (ctx: Context) =>
          runWithWrites(ctx, 'bad', () => ({
            value: true,
            writes: [{ op: 'state.clear', service: 'S', key: '' } as unknown as StepWrite],
          })),
      },
    });
    rig = await makeRig([S]);
    await rig.store.write([{ op: 'kv.put', scope: SCOPE, key: 'gone', value: 1 }]);
    expect(await rig.engine.client(S).del()).toBe(true);
    expect(await rig.store.getKv(SCOPE, 'gone')).toBeUndefined();
    await expect(rig.engine.client(S).bad()).rejects.toThrow(/kv.put and kv.delete/);
    expect(rig.writes.flat().some((o) => o.op === 'state.clear')).toBe(false);
  });

  it('needs the context of a running handler', () => {
    expect(() => runWithWrites({}, 'x', () => ({ value: 1, writes: [] }))).toThrow(
      /context of a running handler/,
    );
  });
});
