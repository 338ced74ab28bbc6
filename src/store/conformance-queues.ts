import { describe, expect, it } from 'vitest';
import type { ConformanceHarness } from './conformance.js';
import type { InvocationRow, QueueAdmit, QueueAdmitResult, Store } from './types.js';

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
