import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  Engine,
  handler,
  InvalidFlowControlError,
  queue,
  service,
  type Context,
} from '../src/index.js';
import { openSqliteStore } from '../src/store/sqlite/index.js';
import { crash, FakeClock, settle } from '../src/testing/index.js';
import type { Store } from '../src/store/types.js';
import {
  gate,
  harness,
  holdingStore,
  pausingReads,
  tempDir,
  until,
  type Harness,
} from './helpers.js';

/**
 * Debounce (engine API, SQLite, fake clock): a burst of sends to one key makes one invocation
 * with the last input, started once the key is quiet for the period or at maxWait; a send
 * after the start begins a new burst; an acknowledged send survives a crash.
 */
interface Run {
  input: unknown;
  at: number;
  id: string;
}

// What the handlers saw, and the clock they read (each test sets both).
let runs: Run[] = [];
let clock: FakeClock = new FakeClock();

const Indexer = service({
  name: 'Indexer',
  handlers: {
    reindex: async (ctx: Context, doc: { v: number }) => {
      runs.push({ input: doc, at: clock.now(), id: ctx.invocationId });
      return doc.v;
    },
  },
});

const Relay = service({
  name: 'Relay',
  handlers: {
    // Sends a debounced reindex from inside a handler (journaled with the send).
    relay: async (ctx: Context, doc: { v: number }) =>
      ctx.serviceSendClient(Indexer, { debounce: { key: 'relayed', period: '1s' } }).reindex(doc)
        .invocationId,
    // A throttle in drop mode cannot be journaled: refused inside a handler.
    dropper: async (ctx: Context) => {
      await ctx
        .serviceSendClient(Indexer, {
          throttle: { key: 'x', limit: 1, period: '1s', mode: 'drop' },
        })
        .reindex({ v: 0 }).invocationId;
    },
  },
});

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

async function setup(): Promise<{ h: Harness; runs: Run[] }> {
  runs = [];
  h = await harness({ services: [Indexer, Relay] });
  clock = h.clock;
  return { h, runs };
}

const debounce = (period = '1s', maxWait?: string) => ({
  key: 'doc-1',
  period,
  ...(maxWait ? { maxWait } : {}),
});

async function settled(): Promise<void> {
  for (let i = 0; i < 20; i++) await settle();
}

describe('debounce', () => {
  it('100 sends within the period start one invocation, with the last input', async () => {
    const { h, runs } = await setup();
    const ids = new Set<string>();
    for (let v = 0; v < 100; v++) {
      const sent = await h.engine.send({
        service: 'Indexer',
        handler: 'reindex',
        input: { v },
        debounce: debounce('1s'),
      });
      expect(sent.status).toBe('scheduled');
      expect(sent.existing).toBe(v > 0);
      ids.add(sent.invocationId);
      await h.clock.advance('9ms'); // 100 sends over 900 ms: never quiet for 1 s
    }
    expect(ids.size).toBe(1);
    const [id] = [...ids];
    // 1 s after the first send the key was not quiet yet: nothing started.
    await h.clock.advance('200ms');
    expect(runs).toEqual([]);
    // 1 s after the last send it starts, once.
    await h.clock.advance('1s');
    await until(() => runs.length === 1, 'the debounced invocation to run');
    await h.clock.advance('10s');
    await settled();
    expect(runs).toHaveLength(1);
    expect(runs[0]!.input).toEqual({ v: 99 });
    expect(runs[0]!.id).toBe(id);
    expect(await h.engine.attach(id!)).toBe(99);
    const all = await h.engine.listInvocations({ service: 'Indexer' });
    expect(all.invocations.map((i) => i.id)).toEqual([id]);
  });

  it('starts at maxWait after the first send when sends keep coming', async () => {
    const { h, runs } = await setup();
    const start = h.clock.now();
    const ids: string[] = [];
    // A send every 500 ms for 7 s with a 1 s period: never quiet; maxWait 3 s bounds each burst.
    // Where a burst starts, the clock stands still until it ran (so it ran at that time).
    const ranBy = new Map([
      [3000, 1],
      [6000, 2],
    ]);
    for (let v = 0; v < 14; v++) {
      const sent = await h.engine.send({
        service: 'Indexer',
        handler: 'reindex',
        input: { v },
        debounce: debounce('1s', '3s'),
      });
      ids.push(sent.invocationId);
      await h.clock.advance('500ms');
      const n = ranBy.get(h.clock.now() - start);
      if (n !== undefined) await until(() => runs.length === n, `burst ${n} to run`);
    }
    await h.clock.advance('500ms'); // to 7500: the last burst is due
    await until(() => runs.length === 3, 'three bursts to run');
    await settled();
    expect(runs).toHaveLength(3);
    // Bursts: sends at 0..2500 (start at 3000, last input v=5), 3000..5500 (start at 6000,
    // v=11), 6000..6500 (quiet from 6500: start at 7500, v=13).
    expect(runs.map((r) => r.at - start)).toEqual([3000, 6000, 7500]);
    expect(runs.map((r) => r.input)).toEqual([{ v: 5 }, { v: 11 }, { v: 13 }]);
    expect(new Set(ids).size).toBe(3);
    expect(ids.slice(0, 6).every((id) => id === runs[0]!.id)).toBe(true);
    expect(ids.slice(6, 12).every((id) => id === runs[1]!.id)).toBe(true);
    expect(ids.slice(12).every((id) => id === runs[2]!.id)).toBe(true);
  });

  it('a send after the start begins a new burst; other keys and targets are separate', async () => {
    const { h, runs } = await setup();
    const send = (v: number, key = 'doc-1') =>
      h.engine.send({
        service: 'Indexer',
        handler: 'reindex',
        input: { v },
        debounce: { key, period: '1s' },
      });
    const a = await send(1);
    const other = await send(2, 'doc-2');
    expect(other.invocationId).not.toBe(a.invocationId);
    await h.clock.advance('1s');
    await until(() => runs.length === 2, 'both keys to run');
    const b = await send(3);
    expect(b.invocationId).not.toBe(a.invocationId);
    expect(b.existing).toBe(false);
    await h.clock.advance('1s');
    await until(() => runs.length === 3, 'the new burst to run');
    expect(runs.map((r) => r.input)).toEqual([{ v: 1 }, { v: 2 }, { v: 3 }]);
    expect(runs[2]!.id).toBe(b.invocationId);
  });

  it('concurrent sends in one process join one burst, the last call wins', async () => {
    const { h, runs } = await setup();
    const sent = await Promise.all(
      Array.from({ length: 30 }, (_, v) =>
        h.engine.send({
          service: 'Indexer',
          handler: 'reindex',
          input: { v },
          debounce: debounce(),
        }),
      ),
    );
    expect(new Set(sent.map((s) => s.invocationId)).size).toBe(1);
    await h.clock.advance('1s');
    await until(() => runs.length === 1, 'the burst to run');
    await h.clock.advance('5s');
    await settled();
    expect(runs).toHaveLength(1);
    expect(runs[0]!.input).toEqual({ v: 29 });
  });

  it('a send from inside a handler is journaled and debounced with the others', async () => {
    const { h, runs } = await setup();
    const outer = await h.engine.send({
      service: 'Indexer',
      handler: 'reindex',
      input: { v: 1 },
      debounce: { key: 'relayed', period: '1s' },
    });
    const relayedId = await h.engine.invoke({
      service: 'Relay',
      handler: 'relay',
      input: { v: 2 },
    });
    expect(relayedId).toBe(outer.invocationId);
    await h.clock.advance('1s');
    await until(() => runs.length === 1, 'the burst to run');
    expect(runs[0]!.input).toEqual({ v: 2 });
    // The relay's journal records the send with the burst's id.
    const relays = await h.engine.listInvocations({ service: 'Relay' });
    const journal = await h.engine.getJournal(relays.invocations[0]!.id);
    expect(journal.find((e) => e.kind === 'send')?.calleeId).toBe(outer.invocationId);
  });

  it('a debounced send to a queued handler starts through its queue, once', async () => {
    runs = [];
    const Q = queue({ name: 'debounced', concurrency: 1 });
    const Queued = service({
      name: 'Queued',
      handlers: {
        go: handler({ queue: Q }, async (ctx: Context, doc: { v: number }) => {
          if (doc.v < 0) await ctx.run('hold', () => held.promise);
          else runs.push({ input: doc, at: clock.now(), id: ctx.invocationId });
        }),
      },
    });
    const held = gate();
    h = await harness({ services: [Queued] });
    clock = h.clock;
    // The queue's one slot is taken while the burst comes due.
    const holder = await h.engine.send({ service: 'Queued', handler: 'go', input: { v: -1 } });
    await until(
      async () => (await h!.engine.getInvocation(holder.invocationId))?.status === 'running',
      'the holder to run',
    );
    const ids = new Set<string>();
    for (let v = 0; v < 5; v++) {
      const sent = await h.engine.send({
        service: 'Queued',
        handler: 'go',
        input: { v },
        debounce: debounce(),
      });
      ids.add(sent.invocationId);
      await h.clock.advance('100ms');
    }
    expect(ids.size).toBe(1);
    const [id] = [...ids];
    await h.clock.advance('1s');
    await until(
      async () => (await h!.engine.getInvocation(id!))?.status === 'queued',
      'the burst to wait in its queue',
    );
    expect(runs).toEqual([]);
    held.open();
    await until(() => runs.length === 1, 'the burst to run through its queue');
    await h.clock.advance('5s');
    await settled();
    expect(runs).toEqual([expect.objectContaining({ id: [...ids][0], input: { v: 4 } })]);
    // Its debounce timer did not outlive the start.
    expect(await h.engine.store.dueTimers(Number.MAX_SAFE_INTEGER, 10)).toEqual([]);
  });

  it('refuses a throttle in drop mode inside a handler with a clear error', async () => {
    const { h } = await setup();
    await expect(h.engine.invoke({ service: 'Relay', handler: 'dropper' })).rejects.toThrow(
      /throttle mode 'drop' is not available for sends inside a handler/,
    );
  });

  it('refuses unusable options with 400 and stores nothing', async () => {
    const { h } = await setup();
    const bad: Array<[Record<string, unknown>, RegExp]> = [
      [{ debounce: { key: '', period: '1s' } }, /debounce key is empty/],
      [{ debounce: { period: '1s' } }, /debounce key is missing/],
      [{ debounce: { key: 'k', period: '0s' } }, /out of range/],
      [{ debounce: { key: 'k', period: 'soon' } }, /"soon" is not a duration/],
      [{ debounce: { key: 'k', period: '10s', maxWait: '1s' } }, /shorter than its period/],
      [{ debounce: { key: 'k', period: '1s' }, delayMs: 5 }, /cannot be combined with a delay/],
      [
        { debounce: { key: 'k', period: '1s' }, idempotencyKey: 'i' },
        /cannot be combined with an idempotency key/,
      ],
      [
        { debounce: { key: 'k', period: '1s' }, throttle: { key: 'k', limit: 1, period: '1s' } },
        /cannot be combined/,
      ],
      [{ throttle: { key: 'k', limit: 0, period: '1s' } }, /throttle limit 0 is not valid/],
      [{ throttle: { key: 'k', limit: 1.5, period: '1s' } }, /throttle limit 1.5 is not valid/],
      [{ throttle: { key: 'k', limit: 1, period: '1s', mode: 'later' } }, /mode "later"/],
    ];
    for (const [options, message] of bad) {
      const err = await h.engine
        .send({ service: 'Indexer', handler: 'reindex', input: { v: 0 }, ...options })
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      expect(err, JSON.stringify(options)).toBeInstanceOf(InvalidFlowControlError);
      expect((err as InvalidFlowControlError).status).toBe(400);
      expect((err as Error).message).toMatch(message);
    }
    await expect(
      h.engine.invoke({
        service: 'Indexer',
        handler: 'reindex',
        input: { v: 0 },
        debounce: { key: 'k', period: '1s' },
      }),
    ).rejects.toThrow(/apply to sends only/);
    expect((await h.engine.listInvocations({})).invocations).toEqual([]);
    expect(await h.engine.store.listKv('keel.debounce')).toEqual([]);
    expect(await h.engine.store.listKv('keel.throttle')).toEqual([]);
  });
});

describe('debounce across a crash', () => {
  const tmp = tempDir('keel-debounce-');

  it('an acknowledged send survives kill -9: the burst runs once with the last acknowledged input', async () => {
    const dbPath = join(tmp.dir, `crash-${Date.now()}.db`);
    clock = new FakeClock();
    runs = [];
    const make = () =>
      new Engine({
        services: [Indexer],
        store: openSqliteStore({ path: dbPath }),
        clock,
        logger: () => undefined,
      });
    const first = make();
    await first.start();
    let id: string | undefined;
    for (let v = 0; v < 5; v++) {
      const sent = await first.send({
        service: 'Indexer',
        handler: 'reindex',
        input: { v },
        debounce: debounce('1s'),
      });
      id ??= sent.invocationId;
      expect(sent.invocationId).toBe(id);
      await clock.advance('100ms');
    }
    await crash(first);
    const second = make();
    await second.start();
    try {
      // The same burst goes on after the restart.
      const sent = await second.send({
        service: 'Indexer',
        handler: 'reindex',
        input: { v: 5 },
        debounce: debounce('1s'),
      });
      expect(sent.invocationId).toBe(id);
      await crash(second);
      const third = make();
      await third.start();
      try {
        await clock.advance('1s');
        await until(() => runs.length === 1, 'the burst to run after the restarts');
        await clock.advance('10s');
        await settled();
        expect(runs).toHaveLength(1);
        expect(runs[0]).toMatchObject({ id, input: { v: 5 } });
      } finally {
        await third.stop();
      }
    } finally {
      await second.stop().catch(() => undefined);
      tmp.cleanup();
    }
  });
});

describe('debounce when the start and a send race', () => {
  const tmp = tempDir('keel-debounce-race-');
  afterAll(() => tmp.cleanup());

  async function engineOn(store: Store): Promise<Engine> {
    const engine = new Engine({ services: [Indexer], store, clock, logger: () => undefined });
    await engine.start();
    return engine;
  }

  const send = (engine: Engine, v: number) =>
    engine.send({ service: 'Indexer', handler: 'reindex', input: { v }, debounce: debounce('1s') });

  it('a send while the start is being written begins a new burst', async () => {
    clock = new FakeClock();
    runs = [];
    const store = holdingStore(openSqliteStore({ path: join(tmp.dir, 'after.db') }));
    const engine = await engineOn(store);
    try {
      const first = await send(engine, 1);
      // Hold the start's write (it deletes the debounce timer, index -2) and all after it.
      store.hold((ops) => ops.some((o) => o.op === 'timer.delete' && o.index === -2));
      await clock.advance('1s');
      await until(() => store.held === 1, 'the start to be written');
      // The send waits for the start (in one process they take turns), writing nothing yet.
      const late = send(engine, 2);
      await settled();
      expect(store.held).toBe(1);
      store.release();
      const second = await late;
      expect(second.invocationId).not.toBe(first.invocationId);
      await until(() => runs.length === 1, 'the first burst to run');
      await clock.advance('1s');
      await until(() => runs.length === 2, 'the second burst to run');
      expect(runs).toEqual([
        expect.objectContaining({ id: first.invocationId, input: { v: 1 } }),
        expect.objectContaining({ id: second.invocationId, input: { v: 2 } }),
      ]);
    } finally {
      await engine.stop();
    }
  });

  it('in one process, a send during the start timer check waits and begins a new burst', async () => {
    clock = new FakeClock();
    runs = [];
    const real = openSqliteStore({ path: join(tmp.dir, 'between.db') });
    // The timer's read of the row waits (after reading) until the test lets it go on.
    let pauseFor: string | undefined;
    const go = gate();
    const reading = gate();
    const store = pausingReads(
      real,
      () => pauseFor,
      () => {
        pauseFor = undefined;
        reading.open();
        return go.promise;
      },
    );
    const engine = await engineOn(store);
    try {
      const first = await send(engine, 1);
      pauseFor = first.invocationId;
      await clock.advance('1s');
      await reading.promise; // the timer read the row: due
      let answered = false;
      const later = send(engine, 2).then((r) => {
        answered = true;
        return r;
      });
      await settled();
      expect(answered).toBe(false); // it waits for the start to commit
      go.open();
      const second = await later;
      expect(second.invocationId).not.toBe(first.invocationId);
      await until(() => runs.length === 1, 'the first burst to run');
      await clock.advance('1s');
      await until(() => runs.length === 2, 'the second burst to run');
      expect(runs).toEqual([
        expect.objectContaining({ id: first.invocationId, input: { v: 1 } }),
        expect.objectContaining({ id: second.invocationId, input: { v: 2 } }),
      ]);
    } finally {
      await engine.stop();
    }
  });
});

describe('debounce pointers expire', () => {
  const send = (h: Harness, key: string, v: number, period = '1s') =>
    h.engine.send({
      service: 'Indexer',
      handler: 'reindex',
      input: { v },
      debounce: { key, period },
    });
  const pointers = async (h: Harness) => h.engine.store.listKv('keel.debounce', { limit: 1000 });

  it('retention deletes the pointers of bursts that ran; a later send to such a key starts a new burst, run once', async () => {
    runs = [];
    h = await harness({ services: [Indexer], retention: '1h' });
    clock = h.clock;
    const first = new Map<string, string>();
    for (let i = 0; i < 30; i++) first.set(`k${i}`, (await send(h, `k${i}`, i)).invocationId);
    await h.clock.advance('1s');
    await until(() => runs.length === 30, 'the 30 bursts to run');
    const kept = await pointers(h);
    expect(kept).toHaveLength(30);
    // Each expires twice the retention (at least 2 h) after its burst's start time.
    for (const p of kept) expect(p.expiresAt).toBe(h.clock.now() + 2 * 3_600_000);
    // Past that (and a retention sweep), the pointers are gone with the bursts they named.
    await h.clock.advance('2h');
    await h.clock.advance('30m');
    await until(async () => (await pointers(h!)).length === 0, 'retention to delete the pointers');
    expect((await h.engine.listInvocations({ service: 'Indexer' })).invocations).toEqual([]);
    // An old key debounces as a new one: a new burst, joined by the sends within its period.
    const again = await send(h, 'k0', 100);
    expect(again.existing).toBe(false);
    expect(again.invocationId).not.toBe(first.get('k0'));
    expect((await send(h, 'k0', 101)).invocationId).toBe(again.invocationId);
    await h.clock.advance('1s');
    await until(() => runs.length === 31, 'the new burst to run');
    await h.clock.advance('10s');
    await settled();
    expect(runs.slice(30)).toEqual([
      expect.objectContaining({ id: again.invocationId, input: { v: 101 } }),
    ]);
    expect(await pointers(h)).toHaveLength(1);
  });

  it('without its pointer, a send finds the burst by the chain: joins it while it waits, else starts the next', async () => {
    runs = [];
    h = await harness({ services: [Indexer] });
    clock = h.clock;
    const drop = async () => {
      const [p] = await pointers(h!);
      expect(p).toBeDefined();
      await h!.engine.store.write([{ op: 'kv.delete', scope: 'keel.debounce', key: p!.key }]);
    };
    const a = await send(h, 'doc', 1);
    await drop();
    // The burst still waits: found at the chain's start, and joined.
    const joined = await send(h, 'doc', 2);
    expect(joined).toMatchObject({ invocationId: a.invocationId, existing: true });
    await h.clock.advance('1s');
    await until(() => runs.length === 1, 'the burst to run');
    // Joined by the chain, not by a pointer: none was written again.
    expect(await pointers(h)).toEqual([]);
    // It ran (and is still kept): the chain leads past it to a new burst.
    const b = await send(h, 'doc', 3);
    expect(b.existing).toBe(false);
    expect(b.invocationId).not.toBe(a.invocationId);
    await h.clock.advance('1s');
    await until(() => runs.length === 2, 'the second burst to run');
    await h.clock.advance('10s');
    await settled();
    expect(runs.map((r) => [r.id, r.input])).toEqual([
      [a.invocationId, { v: 2 }],
      [b.invocationId, { v: 3 }],
    ]);
  });

  it('a burst its sends keep waiting keeps its pointer past the first expiry', async () => {
    runs = [];
    h = await harness({ services: [Indexer], retention: '1h' });
    clock = h.clock;
    const start = h.clock.now();
    const first = await send(h, 'busy', 0, '40m');
    const [p0] = await pointers(h);
    expect(p0!.expiresAt).toBe(start + 40 * 60_000 + 2 * 3_600_000);
    // A send every 30 min for 3.5 h: never quiet for 40 min, so the burst waits all along.
    for (let v = 1; v <= 7; v++) {
      await h.clock.advance('30m');
      expect((await send(h, 'busy', v, '40m')).invocationId).toBe(first.invocationId);
    }
    // Retention swept past the first expiry; the joins pushed it back instead.
    expect(h.clock.now()).toBeGreaterThan(p0!.expiresAt!);
    const [p] = await pointers(h);
    expect(p).toMatchObject({ value: { id: first.invocationId } });
    expect(p!.expiresAt).toBeGreaterThan(h.clock.now() + 40 * 60_000);
    await h.clock.advance('40m');
    await until(() => runs.length === 1, 'the burst to run');
    expect(runs[0]).toMatchObject({ id: first.invocationId, input: { v: 7 } });
  });
});
