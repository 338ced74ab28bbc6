import { describe, expect, it } from 'vitest';
import type { ConformanceHarness } from './conformance.js';
import type { InvocationRow, QueueAdmit, QueueAdmitResult, Store, WriteOp } from './types.js';

/**
 * The flow-control queue part of the Store conformance suite (run by `storeConformance`):
 * `queue.put` and `queue.admit` apply the same rules on every adapter, and (shared stores)
 * two stores admitting from one queue at once never exceed its limits.
 */
export function queueConformance(get: () => { store: Store; h: ConformanceHarness }): void {
  let n = 0;
  const row = (id: string, over: Partial<InvocationRow> = {}): InvocationRow => ({
    id,
    service: 'Q',
    handler: 'h',
    key: '',
    exclusive: false,
    status: 'queued',
    input: null,
    attempt: 0,
    retryIndex: -1,
    createdAt: 1000 + n++,
    modifiedAt: 1000,
    ...over,
  });
  const put = (store: Store, queue: string, id: string, key = '', priority = 0, over = {}) =>
    store.write([
      { op: 'invocation.insert', row: row(id, over) },
      { op: 'queue.put', invocationId: id, queue, key, priority },
    ]);
  const admit = async (store: Store, req: Omit<QueueAdmit, 'now' | 'max'> & Partial<QueueAdmit>) =>
    (
      await store.write([{ op: 'queue.admit', now: 10_000, max: 64, ...req }])
    )[0] as QueueAdmitResult;
  const ids = (r: QueueAdmitResult) => r.admitted.map((x) => x.id);
  const finish = (store: Store, id: string) =>
    store.write([{ op: 'invocation.update', id, set: { status: 'completed' } }]);

  describe('flow-control queues', () => {
    it('admits within the concurrency, running and owned, oldest first, and frees slots as they finish', async () => {
      const { store } = get();
      for (const id of ['c1', 'c2', 'c3', 'c4']) await put(store, 'qc', id);
      const first = await admit(store, { queue: 'qc', concurrency: 2, owner: undefined });
      expect(ids(first)).toEqual(['c1', 'c2']);
      expect(first.admitted[0]).toMatchObject({ status: 'running' });
      expect((await store.getInvocation('c3'))?.status).toBe('queued');
      expect(ids(await admit(store, { queue: 'qc', concurrency: 2 }))).toEqual([]);
      expect(await store.queueStats('qc')).toMatchObject({ waiting: 2, running: 2, keys: 1 });
      await finish(store, 'c1');
      expect(ids(await admit(store, { queue: 'qc', concurrency: 2 }))).toEqual(['c3']);
      // A suspended invocation keeps its slot.
      await store.write([{ op: 'invocation.update', id: 'c2', set: { status: 'suspended' } }]);
      expect(ids(await admit(store, { queue: 'qc', concurrency: 2 }))).toEqual([]);
    });

    it('files only a queued invocation its write inserted (a dedupe conflict files nothing)', async () => {
      const { store } = get();
      await put(store, 'qd', 'd1', '', 0, { dedupe: 'qd-key' });
      await put(store, 'qd', 'd2', '', 0, { dedupe: 'qd-key' });
      expect(await store.getInvocation('d2')).toBeUndefined();
      expect(ids(await admit(store, { queue: 'qd' }))).toEqual(['d1']);
    });

    it('limits each key, lets keys take turns, and orders a key by priority then arrival', async () => {
      const { store } = get();
      for (let i = 0; i < 4; i++) await put(store, 'qk', `a${i}`, 'A', i === 3 ? 5 : 0);
      await put(store, 'qk', 'b0', 'B');
      const r = await admit(store, { queue: 'qk', concurrency: 10, keyConcurrency: 1 });
      expect(ids(r).sort()).toEqual(['a3', 'b0']);
      await finish(store, 'a3');
      await finish(store, 'b0');
      await put(store, 'qk', 'b1', 'B');
      const one = await admit(store, { queue: 'qk', concurrency: 1 });
      const two = await admit(store, { queue: 'qk', concurrency: 2 });
      // A and B were each served once; A's turn came first, so A goes first now.
      expect(ids(one)).toEqual(['a0']);
      expect(ids(two)).toEqual(['b1']);
    });

    it('applies a sliding-window rate and says when it opens', async () => {
      const { store } = get();
      for (let i = 0; i < 5; i++) await put(store, 'qr', `r${i}`);
      const rate = { limit: 2, periodMs: 1000 };
      const a = await admit(store, { queue: 'qr', rate, now: 10_000 });
      expect(ids(a)).toEqual(['r0', 'r1']);
      expect(a.retryAt).toBe(11_000);
      const b = await admit(store, { queue: 'qr', rate, now: 10_999 });
      expect(ids(b)).toEqual([]);
      expect(b.retryAt).toBe(11_000);
      const c = await admit(store, { queue: 'qr', rate, now: 11_000 });
      expect(ids(c)).toEqual(['r2', 'r3']);
    });

    it('counts a rate by slots: a start waits until the whole slot of the oldest has left', async () => {
      const { store } = get();
      for (let i = 0; i < 6; i++) await put(store, 'qw', `w${i}`);
      // 10 slots per period: starts less than 100 ms after a slot's first share it.
      const rate = { limit: 3, periodMs: 1000 };
      expect(ids(await admit(store, { queue: 'qw', rate, now: 10_000, max: 1 }))).toEqual(['w0']);
      expect(ids(await admit(store, { queue: 'qw', rate, now: 10_050, max: 1 }))).toEqual(['w1']);
      const full = await admit(store, { queue: 'qw', rate, now: 10_150 });
      expect(ids(full)).toEqual(['w2']);
      // The slot [10,000, 10,050] counts 2 until 10,050 left the window: not at 11,000 yet.
      expect(full.retryAt).toBe(11_050);
      const early = await admit(store, { queue: 'qw', rate, now: 11_000 });
      expect(ids(early)).toEqual([]);
      expect(early.retryAt).toBe(11_050);
      const open = await admit(store, { queue: 'qw', rate, now: 11_050 });
      expect(ids(open)).toEqual(['w3', 'w4']);
      expect(open.retryAt).toBe(11_150);
    });

    it('keeps a small start log for a large rate, whatever the number of starts', async (t) => {
      const { h, store } = get();
      t.skip(!h.queueStartLog, 'the harness cannot read the start logs');
      const rate = { limit: 2000, periodMs: 60_000 };
      const limits = { rate, keyRate: rate };
      let id = 0;
      // 1,500 starts of key "k" over 58 s (all inside one period): per round, 25 filed then
      // admitted, and 25 admitted at insert (the fast path).
      for (let round = 0; round < 30; round++) {
        const now = 10_000 + round * 2000;
        const filed: WriteOp[] = [];
        for (let i = 0; i < 25; i++, id++) {
          filed.push({ op: 'invocation.insert', row: row(`big${id}`) });
          filed.push({
            op: 'queue.put',
            invocationId: `big${id}`,
            queue: 'qbig',
            key: 'k',
            priority: 0,
          });
        }
        await store.write(filed);
        expect(await admit(store, { queue: 'qbig', ...limits, now })).toMatchObject({
          admitted: expect.any(Array),
          waiting: false,
        });
        const fast: WriteOp[] = [];
        for (let i = 0; i < 25; i++, id++) {
          fast.push({ op: 'invocation.insert', row: row(`big${id}`) });
          fast.push({
            op: 'queue.put',
            invocationId: `big${id}`,
            queue: 'qbig',
            key: 'k',
            priority: 0,
            admit: { ...limits, now: now + 20 },
          });
        }
        const r = await store.write(fast);
        expect(r.filter((x) => (x as { admitted?: boolean })?.admitted === true)).toHaveLength(25);
      }
      expect(await store.queueStats('qbig')).toMatchObject({ waiting: 0, running: 1500 });
      for (const key of [undefined, 'k']) {
        const raw = await h.queueStartLog!.read('qbig', key);
        expect(raw).toBeDefined();
        // Slots, not one time per start: a few hundred bytes (1,500 times take ~21 KB).
        expect(raw!.length).toBeLessThan(600);
        const slots = JSON.parse(raw!) as Array<[number, number, number]>;
        expect(slots.length).toBeLessThanOrEqual(12);
        // Every start is counted.
        expect(slots.reduce((n, s) => n + s[2], 0)).toBe(1500);
      }
      // The limit holds: 500 more at most in this period.
      await store.write(
        Array.from({ length: 600 }, (_, i): WriteOp[] => [
          { op: 'invocation.insert', row: row(`more${i}`) },
          { op: 'queue.put', invocationId: `more${i}`, queue: 'qbig', key: 'k', priority: 0 },
        ]).flat(),
      );
      const more = await admit(store, { queue: 'qbig', ...limits, now: 69_000, max: 1000 });
      expect(more.admitted).toHaveLength(500);
      expect(more.retryAt).toBeGreaterThan(69_000);
    });

    it('reads the start logs of earlier versions (one time per start)', async (t) => {
      const { h, store } = get();
      t.skip(!h.queueStartLog, 'the harness cannot write the start logs');
      const rate = { limit: 3, periodMs: 1000 };
      await h.queueStartLog!.write('qo', undefined, '[10000,10500,10000]');
      for (let i = 0; i < 4; i++) await put(store, 'qo', `o${i}`);
      const full = await admit(store, { queue: 'qo', rate, now: 10_600 });
      expect(ids(full)).toEqual([]);
      expect(full.retryAt).toBe(11_000);
      expect(ids(await admit(store, { queue: 'qo', rate, now: 11_000 }))).toEqual(['o0', 'o1']);
      // Written back as slots.
      expect(JSON.parse((await h.queueStartLog!.read('qo'))!)).toEqual([
        [10_500, 10_500, 1],
        [11_000, 11_000, 2],
      ]);
      // A key's log, on the fast path and by an admission; and an idle row it still counts
      // outlives the deletion of the rows whose starts left.
      const keyRate = { limit: 1, periodMs: 1000 };
      await h.queueStartLog!.write('qo2', 'A', '[10500]');
      const fast = (id: string, now: number) =>
        store
          .write([
            { op: 'invocation.insert', row: row(id) },
            {
              op: 'queue.put',
              invocationId: id,
              queue: 'qo2',
              key: 'A',
              priority: 0,
              admit: { now, keyRate },
            },
          ])
          .then((r) => r[1]);
      expect(await fast('a1', 11_400)).toEqual({ admitted: false });
      expect(ids(await admit(store, { queue: 'qo2', keyRate, now: 11_499 }))).toEqual([]);
      expect(ids(await admit(store, { queue: 'qo2', keyRate, now: 11_500 }))).toEqual(['a1']);
      await h.queueStartLog!.write('qo2', 'B', '[12000]');
      expect(await fast('a2', 12_600)).toEqual({ admitted: true });
      expect(await h.queueStartLog!.read('qo2', 'B')).toBe('[12000]');
      expect(await fast('a3', 14_000)).toEqual({ admitted: true });
      expect(await h.queueStartLog!.read('qo2', 'B')).toBeUndefined();
    });

    it('skips an invocation that is not queued any more (cancelled) and forgets it', async () => {
      const { store } = get();
      await put(store, 'qx', 'x1');
      await put(store, 'qx', 'x2');
      await store.write([{ op: 'invocation.update', id: 'x1', set: { status: 'failed' } }]);
      expect(ids(await admit(store, { queue: 'qx', concurrency: 1 }))).toEqual(['x2']);
      expect(await store.queueStats('qx')).toMatchObject({ waiting: 0, running: 1, keys: 0 });
    });

    it('admits at insert when nothing waits and the limits allow (the fast path), else files it', async () => {
      const { store } = get();
      const fast = (id: string, key: string, limits: Omit<QueueAdmit, 'queue' | 'max'>) =>
        store
          .write([
            { op: 'invocation.insert', row: row(id) },
            { op: 'queue.put', invocationId: id, queue: 'qf', key, priority: 0, admit: limits },
          ])
          .then((r) => r[1] as { admitted: boolean });
      const limits = {
        now: 10_000,
        concurrency: 2,
        keyConcurrency: 1,
        rate: { limit: 3, periodMs: 1000 },
      };
      expect(await fast('f1', 'A', limits)).toEqual({ admitted: true });
      expect((await store.getInvocation('f1'))?.status).toBe('running');
      // Key A is at its limit: filed, waiting.
      expect(await fast('f2', 'A', limits)).toEqual({ admitted: false });
      expect((await store.getInvocation('f2'))?.status).toBe('queued');
      // A slot is free for key B, but f2 waits: B does not pass it by on the fast path.
      expect(await fast('f3', 'B', limits)).toEqual({ admitted: false });
      expect(await store.queueStats('qf')).toMatchObject({ waiting: 2, running: 1 });
      // The admission takes the waiting ones in turn and counts the fast path's start.
      expect(ids(await admit(store, { queue: 'qf', ...limits }))).toEqual(['f3']);
      await finish(store, 'f1');
      await finish(store, 'f3');
      // The rate: 3 starts (f1, f3, then f2) fill the window.
      expect(ids(await admit(store, { queue: 'qf', ...limits }))).toEqual(['f2']);
      await finish(store, 'f2');
      expect(await fast('f4', 'C', limits)).toEqual({ admitted: false });
      expect(await fast('f5', 'C', { ...limits, now: 11_000 })).toEqual({ admitted: false });
      expect(ids(await admit(store, { queue: 'qf', ...limits, now: 11_000 }))).toEqual(['f4']);
    });

    it('serves a key that waits between the items of keys that arrive new', async () => {
      const { store } = get();
      // "zz" has a backlog; a new key arrives after each of its starts. New keys join the back
      // of the round, so they cannot keep "zz" waiting (they sort before it on a tie).
      for (let i = 0; i < 4; i++) await put(store, 'qn', `z${i}`, 'zz');
      const order: string[] = [];
      for (let i = 0; i < 6; i++) {
        const [id] = ids(await admit(store, { queue: 'qn', concurrency: 1 }));
        expect(id).toBeDefined();
        order.push(id!);
        await finish(store, id!);
        await put(store, 'qn', `n${i}`, `k${i}`);
      }
      // Round robin by last turn (a tie goes to the lower key): "zz" keeps its share. New keys
      // placed ahead of every served key would be served one after the other, "zz" never.
      expect(order).toEqual(['z0', 'n0', 'z1', 'n1', 'n2', 'z2']);
    });

    it('does not let a key whose row was deleted pass the keys it was behind', async () => {
      const { store } = get();
      await put(store, 'qb', 'b0', 'B');
      await put(store, 'qb', 'b1', 'B');
      await put(store, 'qb', 'a0', 'A');
      expect(ids(await admit(store, { queue: 'qb', concurrency: 1 }))).toEqual(['a0']);
      await finish(store, 'a0');
      // A had nothing left (its row may be gone); with an item again it goes after B, served
      // less recently.
      await put(store, 'qb', 'a1', 'A');
      expect(ids(await admit(store, { queue: 'qb', concurrency: 1 }))).toEqual(['b0']);
      await finish(store, 'b0');
      expect(ids(await admit(store, { queue: 'qb', concurrency: 1 }))).toEqual(['a1']);
      await finish(store, 'a1');
      expect(ids(await admit(store, { queue: 'qb', concurrency: 1 }))).toEqual(['b1']);
    });

    it('keeps no row for a key with nothing waiting and nothing a rate counts', async (t) => {
      const { h, store } = get();
      t.skip(!h.queueKeyRows, 'the harness cannot count the rows of queue_keys');
      // Filed, then admitted: one item for each of 50 keys (a user id, say).
      for (let i = 0; i < 50; i++) await put(store, 'qu', `u${i}`, `user-${i}`);
      const all = await admit(store, { queue: 'qu', concurrency: 100, keyConcurrency: 1 });
      expect(all.admitted).toHaveLength(50);
      for (const r of all.admitted) await finish(store, r.id);
      expect(await h.queueKeyRows!('qu')).toBe(0);
      // Admitted at insert (the fast path): 50 more keys.
      for (let i = 50; i < 100; i++) {
        const [, r] = await store.write([
          { op: 'invocation.insert', row: row(`u${i}`) },
          {
            op: 'queue.put',
            invocationId: `u${i}`,
            queue: 'qu',
            key: `user-${i}`,
            priority: 0,
            admit: { now: 10_000, concurrency: 100, keyConcurrency: 1 },
          },
        ]);
        expect(r).toEqual({ admitted: true });
        await finish(store, `u${i}`);
      }
      expect(await h.queueKeyRows!('qu')).toBe(0);
      // A key seen before gets an item again: its row comes back, and it is admitted.
      await put(store, 'qu', 'again', 'user-7');
      expect(await h.queueKeyRows!('qu')).toBe(1);
      expect(await store.queueStats('qu')).toMatchObject({ waiting: 1, keys: 1 });
      expect(ids(await admit(store, { queue: 'qu', concurrency: 100, keyConcurrency: 1 }))).toEqual(
        ['again'],
      );
      expect(await h.queueKeyRows!('qu')).toBe(0);
    });

    it('keeps the row of a key while its per-key rate counts a start, then deletes it', async (t) => {
      const { h, store } = get();
      t.skip(!h.queueKeyRows, 'the harness cannot count the rows of queue_keys');
      const keyRate = { limit: 1, periodMs: 1000 };
      // 30 keys start one item each at 10,000: their rows hold the start the rate counts.
      for (let i = 0; i < 30; i++) await put(store, 'qp', `p${i}`, `user-${i}`);
      const first = await admit(store, { queue: 'qp', keyRate, now: 10_000 });
      expect(first.admitted).toHaveLength(30);
      for (const r of first.admitted) await finish(store, r.id);
      expect(await h.queueKeyRows!('qp')).toBe(30);
      // Within the period, user-3's next item waits for its rate: the row still counts.
      await put(store, 'qp', 'p3b', 'user-3');
      expect(ids(await admit(store, { queue: 'qp', keyRate, now: 10_500 }))).toEqual([]);
      expect(ids(await admit(store, { queue: 'qp', keyRate, now: 11_000 }))).toEqual(['p3b']);
      await finish(store, 'p3b');
      // New keys keep starting, one a second, each at insert or by an admission: the rows whose
      // start left the window go, a few per start.
      for (let i = 0; i < 20; i++) {
        const now = 12_000 + i * 1000;
        const id = `q${i}`;
        if (i % 2 === 0) {
          await put(store, 'qp', id, `new-${i}`);
          expect(ids(await admit(store, { queue: 'qp', keyRate, now }))).toEqual([id]);
        } else {
          const [, r] = await store.write([
            { op: 'invocation.insert', row: row(id) },
            {
              op: 'queue.put',
              invocationId: id,
              queue: 'qp',
              key: `new-${i}`,
              priority: 0,
              admit: { now, keyRate },
            },
          ]);
          expect(r).toEqual({ admitted: true });
        }
        await finish(store, id);
      }
      // Only the last start is still in its window.
      expect(await h.queueKeyRows!('qp')).toBe(1);
    });

    it('loses no item when puts of a key race the admissions that delete its row', async (t) => {
      const { h, store } = get();
      t.skip(!h.another, 'this adapter is not shared between processes');
      const other = await h.another!();
      try {
        const limits = { concurrency: 2, keyConcurrency: 1 };
        const total = 60;
        let putsDone = false;
        // One store files items of 3 keys (every other one tries the fast path first) ...
        const putting = (async () => {
          for (let i = 0; i < total; i++) {
            const id = `race${i}`;
            await store.write([
              { op: 'invocation.insert', row: row(id) },
              {
                op: 'queue.put',
                invocationId: id,
                queue: 'qrace',
                key: `k${i % 3}`,
                priority: 0,
                ...(i % 2 === 0 ? { admit: { now: 10_000, ...limits } } : {}),
              },
            ]);
          }
          putsDone = true;
        })();
        // ... while the other admits and finishes them, emptying (deleting) the keys' rows.
        const started = new Set<string>();
        const admitting = (async () => {
          // Until all is put and nothing runs; then a few idle rounds more, which admit what a
          // lost count would leave behind only if it was not lost.
          for (let idle = 0; idle < 5;) {
            const r = await admit(other, { queue: 'qrace', ...limits });
            for (const x of r.admitted) {
              expect(started.has(x.id)).toBe(false);
              started.add(x.id);
            }
            const running = await other.listInvocations({ status: 'running', limit: 10 });
            for (const x of running) await finish(other, x.id);
            const quiet = putsDone && r.admitted.length === 0 && running.length === 0;
            idle = quiet ? idle + 1 : 0;
          }
        })();
        await Promise.all([putting, admitting]);
        // Admitted here or at insert: every item ran, none waits, no key row is left.
        const done = await store.listInvocations({ status: 'completed', limit: 1000 });
        expect(done.filter((x) => x.id.startsWith('race'))).toHaveLength(total);
        expect(await store.queueStats('qrace')).toMatchObject({ waiting: 0, running: 0, keys: 0 });
        if (h.queueKeyRows) expect(await h.queueKeyRows('qrace')).toBe(0);
      } finally {
        await other.close();
      }
    });

    it('refuses queue.admit with other ops in the same write', async () => {
      const { store } = get();
      await expect(
        store.write([
          { op: 'queue.admit', queue: 'qz', now: 1, max: 1 },
          { op: 'kv.put', scope: 's', key: 'k', value: 1 },
        ]),
      ).rejects.toMatchObject({ code: 'write_failed' });
      expect(await store.getKv('s', 'k')).toBeUndefined();
    });

    it('never exceeds the limits when two stores admit at once', async (t) => {
      const { h, store } = get();
      t.skip(!h.another, 'this adapter is not shared between processes');
      const other = await h.another!();
      try {
        for (let i = 0; i < 40; i++) await put(store, 'qs', `s${i}`, `k${i % 4}`);
        const admitted = new Set<string>();
        for (let round = 0; round < 12; round++) {
          const [x, y] = await Promise.all([
            admit(store, { queue: 'qs', concurrency: 3, keyConcurrency: 1 }),
            admit(other, { queue: 'qs', concurrency: 3, keyConcurrency: 1 }),
          ]);
          const now = [...ids(x), ...ids(y)];
          for (const id of now) {
            expect(admitted.has(id)).toBe(false);
            admitted.add(id);
          }
          const stats = await store.queueStats('qs');
          expect(stats.running).toBeLessThanOrEqual(3);
          // Finish what runs, so the next round admits more.
          for (const id of now) await finish(store, id);
        }
        expect(admitted.size).toBe(36);
      } finally {
        await other.close();
      }
    });
  });
}
