import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ErrorInfo } from '../core/errors.js';
import type { JournalEntry } from '../core/journal.js';
import { kvConformance } from './conformance-kv.js';
import { queueConformance } from './conformance-queues.js';
import { payloadConformance } from './conformance-payloads.js';
import { StoreError } from './errors.js';
import type {
  ClusterMessage,
  InvocationFilter,
  InvocationRow,
  InvocationStatus,
  OpResult,
  PromiseWaiter,
  Store,
  WriteOp,
} from './types.js';
import { messageSubject } from './types.js';

/** What a conformance run needs from an adapter: a fresh, empty store per test. */
export interface ConformanceHarness {
  store: Store;
  /**
   * Opens the same database again, as a new process would. The suite closes `store` first.
   * Omit it for adapters without persistence across instances (the durability tests are skipped).
   */
  reopen?: () => Promise<Store>;
  /**
   * Opens a second store on the same database while `store` stays open, as another process
   * would. Only for shared stores; the tests of several processes are skipped without it.
   */
  another?: () => Promise<Store>;
  /** Closes every store the harness opened (tolerating closed ones) and deletes the data. */
  cleanup: () => Promise<void>;
  /**
   * A look inside, for the tests that bound what the store keeps: how many per-key rows
   * flow-control queue `queue` holds (idle ones included). Those tests are skipped without it.
   */
  queueKeyRows?: (queue: string) => Promise<number>;
  /**
   * A look inside, for the tests of what the store keeps of a rate: the raw stored start log
   * (JSON text) of flow-control queue `queue`, or of its key `key`; `undefined` without a row.
   * `write` stores one as is (the row is created when missing, idle, at turn 0), as an earlier
   * version of Keel may have left it. Those tests are skipped without it.
   */
  queueStartLog?: {
    read: (queue: string, key?: string) => Promise<string | undefined>;
    write: (queue: string, key: string | undefined, starts: string) => Promise<void>;
  };
}

/**
 * The one Store conformance suite. Every adapter runs it; it tests only the behaviour of the
 * `Store` interface, nothing specific to a backend.
 *
 * @example
 * ```ts
 * storeConformance('sqlite', async () => {
 *   const file = tempFile();
 *   const store = openSqliteStore({ path: file });
 *   return { store, reopen: async () => openSqliteStore({ path: file }), cleanup: ... };
 * });
 * ```
 */
export function storeConformance(name: string, open: () => Promise<ConformanceHarness>): void {
  describe(`Store conformance: ${name}`, () => {
    let h: ConformanceHarness;
    let store: Store;

    beforeEach(async () => {
      h = await open();
      store = h.store;
    });
    afterEach(async () => {
      await h.cleanup();
    });

    const insert = (row: InvocationRow) => store.write([{ op: 'invocation.insert', row }]);

    const acquire = (key: string, invocationId: string, service = 'Obj'): WriteOp => ({
      op: 'key.acquire',
      service,
      key,
      invocationId,
    });
    const release = (
      key: string,
      invocationId: string,
      owner: string,
      service = 'Obj',
    ): WriteOp => ({ op: 'key.release', service, key, invocationId, owner });
    /** An exclusive invocation of object Obj/k, pending: waiting for its key. */
    const queued = (id: string, over: Partial<InvocationRow> = {}): WriteOp => ({
      op: 'invocation.insert',
      row: inv(id, { service: 'Obj', key: 'k', exclusive: true, status: 'pending', ...over }),
    });

    describe('invocations', () => {
      it('round-trips every field of an inserted invocation and assigns seq', async () => {
        const full = inv('full', {
          key: 'k1',
          exclusive: true,
          status: 'backing-off',
          input: { nested: [1, 'two', null, true], quote: 'a "b" \u00e9 \u{1F600}' },
          output: { ok: 1 },
          error: { code: 'boom', message: 'it broke', status: 503 },
          dedupe: 'd-full',
          callerId: 'parent',
          callerEntry: 3,
          attempt: 2,
          retryIndex: 5,
          runAt: 1_700_000_000_500,
          completedAt: 1_700_000_000_600,
          expiresAt: 1_700_000_000_700,
          cancel: 'requested',
          outcome: 'compensated',
          owner: 'process-1',
          trace: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
        });
        expect(await insert(full)).toEqual([{ inserted: true }]);
        const got = await store.getInvocation('full');
        expect(got).toEqual({ ...full, seq: expect.any(Number) });
        expect(got?.exclusive).toBe(true);
      });

      it('keeps absent optional fields absent and null values null', async () => {
        await store.write([
          { op: 'invocation.insert', row: inv('min', { input: undefined }) },
          { op: 'invocation.insert', row: inv('nul', { input: null, output: null }) },
          {
            op: 'invocation.insert',
            row: inv('falsy', { input: 0, output: '', exclusive: false }),
          },
        ]);
        const min = await store.getInvocation('min');
        expect(min?.input).toBeUndefined();
        for (const f of [
          'output',
          'error',
          'dedupe',
          'callerId',
          'callerEntry',
          'runAt',
          'completedAt',
          'expiresAt',
          'cancel',
          'outcome',
          'owner',
          'trace',
        ] as const) {
          expect(min?.[f], f).toBeUndefined();
          expect(min !== undefined && f in min, f).toBe(false);
        }
        const nul = await store.getInvocation('nul');
        expect(nul?.input).toBeNull();
        expect(nul?.output).toBeNull();
        const falsy = await store.getInvocation('falsy');
        expect(falsy?.input).toBe(0);
        expect(falsy?.output).toBe('');
        expect(falsy?.exclusive).toBe(false);
      });

      it('returns undefined for an unknown id', async () => {
        await insert(inv('a'));
        expect(await store.getInvocation('nope')).toBeUndefined();
        expect(await store.findByDedupe('nope')).toBeUndefined();
      });

      it('answers a taken dedupe key with the existing invocation and does not insert', async () => {
        await insert(inv('first', { dedupe: 'order-1', input: 1 }));
        const [res] = await insert(inv('second', { dedupe: 'order-1', input: 2 }));
        expect(res).toEqual({
          inserted: false,
          existing: expect.objectContaining({ id: 'first', input: 1 }),
        });
        expect(await store.getInvocation('second')).toBeUndefined();
        expect((await store.findByDedupe('order-1'))?.id).toBe('first');
        // Invocations without a dedupe key never conflict with each other.
        expect(
          await store.write([
            { op: 'invocation.insert', row: inv('n1') },
            { op: 'invocation.insert', row: inv('n2') },
          ]),
        ).toEqual([{ inserted: true }, { inserted: true }]);
      });

      it('sees a dedupe key taken earlier in the same write', async () => {
        const results = await store.write([
          { op: 'invocation.insert', row: inv('x1', { dedupe: 'same' }) },
          { op: 'invocation.insert', row: inv('x2', { dedupe: 'same' }) },
        ]);
        expect(results[0]).toEqual({ inserted: true });
        expect(results[1]).toMatchObject({
          inserted: false,
          existing: { id: 'x1', dedupe: 'same' },
        });
      });

      it('updates the given fields only, and clears fields set to undefined', async () => {
        await insert(inv('u', { status: 'backing-off', runAt: 500, attempt: 1, input: { a: 1 } }));
        const before = await store.getInvocation('u');
        const res = await store.write([
          {
            op: 'invocation.update',
            id: 'u',
            set: {
              status: 'completed',
              output: { total: 42 },
              runAt: undefined,
              modifiedAt: 2000,
              completedAt: 2000,
            },
          },
        ]);
        expect(res).toEqual([undefined]);
        const after = await store.getInvocation('u');
        expect(after).toEqual({
          ...before,
          status: 'completed',
          output: { total: 42 },
          modifiedAt: 2000,
          completedAt: 2000,
          runAt: undefined,
        });
        expect(after?.runAt).toBeUndefined();
        expect(after?.seq).toBe(before?.seq);
        expect(after?.input).toEqual({ a: 1 });
      });

      it('updates an error and a null output', async () => {
        await insert(inv('e'));
        await store.write([
          {
            op: 'invocation.update',
            id: 'e',
            set: { status: 'failed', error: { code: 'x', message: 'y' }, output: null },
          },
        ]);
        const got = await store.getInvocation('e');
        expect(got?.error).toEqual({ code: 'x', message: 'y' });
        expect(got?.output).toBeNull();
        expect(got?.status).toBe('failed');
      });

      it('updates and clears cancel and outcome', async () => {
        await insert(inv('c', { status: 'suspended', cancel: 'requested' }));
        expect((await store.getInvocation('c'))?.cancel).toBe('requested');
        await store.write([
          {
            op: 'invocation.update',
            id: 'c',
            set: { cancel: 'delivered', outcome: 'compensated', status: 'running' },
          },
        ]);
        const delivered = await store.getInvocation('c');
        expect(delivered).toMatchObject({
          cancel: 'delivered',
          outcome: 'compensated',
          status: 'running',
        });
        // Listings decode them too.
        expect((await store.listRunnable())[0]).toMatchObject({
          id: 'c',
          cancel: 'delivered',
          outcome: 'compensated',
        });
        await store.write([
          { op: 'invocation.update', id: 'c', set: { cancel: undefined, outcome: 'done' } },
        ]);
        const cleared = await store.getInvocation('c');
        expect(cleared).toEqual({ ...delivered, outcome: 'done', cancel: undefined });
        expect(cleared !== undefined && 'cancel' in cleared).toBe(false);
        await store.write([{ op: 'invocation.update', id: 'c', set: { outcome: undefined } }]);
        const none = await store.getInvocation('c');
        expect(none !== undefined && 'outcome' in none).toBe(false);
        expect(none?.status).toBe('running');
      });

      it('round-trips the trace through inserts, updates, conditional updates and listings', async () => {
        const t1 = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
        const t2 = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00';
        // Traced and untraced inserts in one write, and a traced one that meets a dedupe conflict.
        const res = await store.write([
          { op: 'invocation.insert', row: inv('tr1', { trace: t1, dedupe: 'tr-d' }) },
          { op: 'invocation.insert', row: inv('tr2') },
          { op: 'invocation.insert', row: inv('tr3', { trace: t2, dedupe: 'tr-d' }) },
        ]);
        expect(res[0]).toEqual({ inserted: true });
        expect(res[2]).toMatchObject({ inserted: false, existing: { id: 'tr1', trace: t1 } });
        expect(await store.getInvocation('tr3')).toBeUndefined();
        expect((await store.getInvocation('tr1'))?.trace).toBe(t1);
        expect((await store.listRunnable()).find((r) => r.id === 'tr1')?.trace).toBe(t1);
        expect((await store.findByDedupe('tr-d'))?.trace).toBe(t1);
        const untraced = await store.getInvocation('tr2');
        expect(untraced !== undefined && 'trace' in untraced).toBe(false);
        // Set with other fields, then alone; an update without it keeps it.
        await store.write([
          { op: 'invocation.update', id: 'tr2', set: { trace: t2, status: 'suspended' } },
        ]);
        expect(await store.getInvocation('tr2')).toMatchObject({ trace: t2, status: 'suspended' });
        await store.write([{ op: 'invocation.update', id: 'tr2', set: { status: 'running' } }]);
        expect((await store.getInvocation('tr2'))?.trace).toBe(t2);
        await store.write([{ op: 'invocation.update', id: 'tr1', set: { trace: t2 } }]);
        expect((await store.getInvocation('tr1'))?.trace).toBe(t2);
        // A conditional update that does not apply leaves it; one that applies sets it.
        expect(
          await store.write([
            { op: 'invocation.update', id: 'tr1', set: { trace: t1 }, ifStatus: 'scheduled' },
          ]),
        ).toEqual([{ updated: false }]);
        expect((await store.getInvocation('tr1'))?.trace).toBe(t2);
        expect(
          await store.write([
            { op: 'invocation.update', id: 'tr1', set: { trace: t1 }, ifStatus: 'running' },
          ]),
        ).toEqual([{ updated: true }]);
        expect((await store.getInvocation('tr1'))?.trace).toBe(t1);
        // undefined clears it.
        await store.write([{ op: 'invocation.update', id: 'tr1', set: { trace: undefined } }]);
        const cleared = await store.getInvocation('tr1');
        expect(cleared !== undefined && 'trace' in cleared).toBe(false);
      });

      it('does not create an invocation when updating an unknown id', async () => {
        await store.write([{ op: 'invocation.update', id: 'ghost', set: { status: 'running' } }]);
        expect(await store.getInvocation('ghost')).toBeUndefined();
      });

      it('updates with ifStatus only while the status is the one given, and says whether it did', async () => {
        await store.write([
          { op: 'invocation.insert', row: inv('due', { status: 'scheduled', runAt: 5 }) },
          { op: 'timer.put', timer: { invocationId: 'due', index: -1, fireAt: 5 } },
        ]);
        // The transition and the timer's deletion are one write: both happen or neither.
        const fired = await store.write([
          { op: 'timer.delete', invocationId: 'due', index: -1 },
          {
            op: 'invocation.update',
            id: 'due',
            set: { status: 'pending', modifiedAt: 6 },
            ifStatus: 'scheduled',
          },
        ]);
        expect(fired[1]).toEqual({ updated: true });
        expect(await store.getInvocation('due')).toMatchObject({
          status: 'pending',
          modifiedAt: 6,
        });
        expect(await store.dueTimers(100, 10)).toEqual([]);
        expect((await store.listRunnable()).map((r) => r.id)).toEqual(['due']);
        // A status changed meanwhile (a cancellation) is not overwritten.
        await store.write([{ op: 'invocation.update', id: 'due', set: { status: 'failed' } }]);
        const again = await store.write([
          { op: 'invocation.update', id: 'due', set: { status: 'pending' }, ifStatus: 'scheduled' },
          {
            op: 'invocation.update',
            id: 'ghost',
            set: { status: 'pending' },
            ifStatus: 'scheduled',
          },
        ]);
        expect(again).toEqual([{ updated: false }, { updated: false }]);
        expect((await store.getInvocation('due'))?.status).toBe('failed');
        expect(await store.getInvocation('ghost')).toBeUndefined();
      });

      it('applies a write behind invocation.expect only while the status is one of those given', async () => {
        await insert(inv('ex', { status: 'pending' }));
        const cancel = (): Promise<unknown> =>
          store.write([
            { op: 'invocation.expect', id: 'ex', status: ['pending', 'scheduled'] },
            { op: 'invocation.update', id: 'ex', set: { status: 'failed', modifiedAt: 9 } },
            { op: 'kv.put', scope: 'ex', key: 'after', value: 1 },
          ]);
        // It started meanwhile (another process): the cancel's write applies nothing at all.
        await store.write([{ op: 'invocation.update', id: 'ex', set: { status: 'running' } }]);
        const [refused, other] = await Promise.allSettled([
          cancel(),
          // A call committed in the same batch is not rolled back with the refused one.
          store.write([{ op: 'kv.put', scope: 'ex', key: 'other', value: 2 }]),
        ]);
        expect(refused.status).toBe('rejected');
        const err = (refused as PromiseRejectedResult).reason as StoreError;
        expect(err).toBeInstanceOf(StoreError);
        expect(err.code).toBe('precondition_failed');
        expect(err.message).toMatch(/invocation ex is running, not pending or scheduled/);
        expect(other.status).toBe('fulfilled');
        expect((await store.getInvocation('ex'))?.status).toBe('running');
        expect(await store.getKv('ex', 'after')).toBeUndefined();
        expect((await store.getKv('ex', 'other'))?.value).toBe(2);
        // Back to pending: the same write applies, as a whole.
        await store.write([{ op: 'invocation.update', id: 'ex', set: { status: 'pending' } }]);
        await cancel();
        expect((await store.getInvocation('ex'))?.status).toBe('failed');
        expect((await store.getKv('ex', 'after'))?.value).toBe(1);
        // An invocation that does not exist fails the precondition too.
        await expect(
          store.write([{ op: 'invocation.expect', id: 'ghost', status: ['running'] }]),
        ).rejects.toMatchObject({ code: 'precondition_failed' });
      });

      it('invocation.expect with runAt also needs the row to run at that time', async () => {
        await insert(inv('ra', { status: 'scheduled', runAt: 5_000 }));
        const start = (runAt: number): Promise<unknown> =>
          store.write([
            { op: 'invocation.expect', id: 'ra', status: ['scheduled'], runAt },
            { op: 'invocation.update', id: 'ra', set: { status: 'pending', modifiedAt: 9 } },
          ]);
        // A debounced send moved it later meanwhile: the start applies nothing.
        await store.write([{ op: 'invocation.update', id: 'ra', set: { runAt: 8_000 } }]);
        const err = (await start(5_000).catch((e: unknown) => e)) as StoreError;
        expect(err).toBeInstanceOf(StoreError);
        expect(err.code).toBe('precondition_failed');
        expect(err.message).toMatch(/invocation ra runs at 8000, not 5000/);
        expect((await store.getInvocation('ra'))?.status).toBe('scheduled');
        // The status is checked as before, and the time it runs at now lets it through.
        await expect(
          store.write([{ op: 'invocation.expect', id: 'ra', status: ['running'], runAt: 8_000 }]),
        ).rejects.toMatchObject({ code: 'precondition_failed' });
        await start(8_000);
        expect((await store.getInvocation('ra'))?.status).toBe('pending');
      });

      it('assigns seq in arrival order, within and across writes, above every stored one', async () => {
        await store.write([
          { op: 'invocation.insert', row: inv('s1') },
          { op: 'invocation.insert', row: inv('s2') },
        ]);
        await insert(inv('s3'));
        const seqs = await Promise.all(
          ['s1', 's2', 's3'].map(async (id) => (await store.getInvocation(id))?.seq),
        );
        expect(seqs.every((s) => typeof s === 'number')).toBe(true);
        const [a, b, c] = seqs as number[];
        expect(a).toBeLessThan(b!);
        expect(b).toBeLessThan(c!);
        // FIFO per key only compares stored invocations: a new one sorts after all of them.
        await store.write([{ op: 'invocation.delete', id: 's1' }]);
        await insert(inv('s4'));
        expect((await store.getInvocation('s4'))?.seq).toBeGreaterThan(c!);
      });

      it('rejects inserting an id that already exists and keeps the original', async () => {
        await insert(inv('dup', { input: 'original' }));
        await expect(insert(inv('dup', { input: 'second' }))).rejects.toMatchObject({
          code: 'write_failed',
        });
        expect((await store.getInvocation('dup'))?.input).toBe('original');
      });

      it('deletes an invocation with its journal and timers, but not its object state', async () => {
        await store.write([
          { op: 'invocation.insert', row: inv('del', { key: 'k', dedupe: 'del-d' }) },
          { op: 'invocation.insert', row: inv('keep', { key: 'k' }) },
          { op: 'journal.put', invocationId: 'del', index: 0, entry: entry('run', 'a') },
          { op: 'journal.put', invocationId: 'keep', index: 0, entry: entry('run', 'b') },
          { op: 'timer.put', timer: { invocationId: 'del', index: 1, fireAt: 10 } },
          { op: 'timer.put', timer: { invocationId: 'keep', index: 1, fireAt: 20 } },
          { op: 'state.set', service: 'svc', key: 'k', name: 'n', value: 7 },
        ]);
        await store.write([{ op: 'invocation.delete', id: 'del' }]);
        expect(await store.getInvocation('del')).toBeUndefined();
        expect(await store.getJournal('del')).toEqual([]);
        expect(await store.dueTimers(100, 10)).toEqual([
          { invocationId: 'keep', index: 1, fireAt: 20 },
        ]);
        expect(await store.getJournal('keep')).toHaveLength(1);
        expect(await store.getState('svc', 'k', 'n')).toBe(7);
        // The dedupe key is free again.
        expect(await insert(inv('del2', { dedupe: 'del-d' }))).toEqual([{ inserted: true }]);
      });
    });

    describe('journal', () => {
      it('returns entries in index order, replaces on put, and keeps null apart from undefined', async () => {
        await insert(inv('j'));
        await store.write([
          {
            op: 'journal.put',
            invocationId: 'j',
            index: 2,
            entry: { kind: 'run', name: 'null', done: true, value: null },
          },
          {
            op: 'journal.put',
            invocationId: 'j',
            index: 0,
            entry: { kind: 'run', name: 'undef', done: true },
          },
          {
            op: 'journal.put',
            invocationId: 'j',
            index: 1,
            entry: { kind: 'sleep', name: '', done: false, wakeAt: 99 },
          },
          {
            op: 'journal.put',
            invocationId: 'j',
            index: 10,
            entry: {
              kind: 'call',
              name: 'S/k/h',
              done: true,
              calleeId: 'c1',
              error: { code: 'e', message: 'm', status: 409 },
            },
          },
        ]);
        await store.write([
          {
            op: 'journal.put',
            invocationId: 'j',
            index: 1,
            entry: { kind: 'sleep', name: '', done: true, wakeAt: 99 },
          },
        ]);
        const journal = await store.getJournal('j');
        expect(journal.map(([i]) => i)).toEqual([0, 1, 2, 10]);
        expect(journal[0]![1]).toEqual({ kind: 'run', name: 'undef', done: true });
        expect('value' in journal[0]![1]).toBe(false);
        expect(journal[1]![1]).toEqual({ kind: 'sleep', name: '', done: true, wakeAt: 99 });
        expect(journal[2]![1]).toEqual({ kind: 'run', name: 'null', done: true, value: null });
        expect(journal[2]![1].value).toBeNull();
        expect(journal[3]![1]).toEqual({
          kind: 'call',
          name: 'S/k/h',
          done: true,
          calleeId: 'c1',
          error: { code: 'e', message: 'm', status: 409 },
        });
      });

      it('round-trips falsy and structured values', async () => {
        const values: unknown[] = [
          0,
          false,
          '',
          [],
          {},
          { a: [1, { b: null }] },
          'x'.repeat(10_000),
        ];
        await store.write(
          values.map((value, index) => ({
            op: 'journal.put',
            invocationId: 'v',
            index,
            entry: { kind: 'run', name: 's', done: true, value },
          })),
        );
        expect((await store.getJournal('v')).map(([, e]) => e.value)).toEqual(values);
      });

      it('keeps journals of different invocations apart and returns [] for an unknown one', async () => {
        await store.write([
          { op: 'journal.put', invocationId: 'a', index: 0, entry: entry('run', 'a0') },
          { op: 'journal.put', invocationId: 'b', index: 0, entry: entry('run', 'b0') },
        ]);
        expect(await store.getJournal('a')).toEqual([[0, entry('run', 'a0')]]);
        expect(await store.getJournal('b')).toEqual([[0, entry('run', 'b0')]]);
        expect(await store.getJournal('none')).toEqual([]);
      });
    });

    describe('journal.complete', () => {
      const sleeping: JournalEntry = { kind: 'sleep', name: '', done: false, wakeAt: 50 };
      const woken: JournalEntry = { kind: 'sleep', name: '', done: true, wakeAt: 50 };

      it('completes a waiting entry and resumes a suspended owner', async () => {
        await store.write([
          { op: 'invocation.insert', row: inv('w', { status: 'suspended' }) },
          { op: 'journal.put', invocationId: 'w', index: 0, entry: sleeping },
        ]);
        const res = await store.write([
          { op: 'journal.complete', invocationId: 'w', index: 0, entry: woken },
        ]);
        expect(res).toEqual([{ completed: true, resumed: true }]);
        expect(await store.getJournal('w')).toEqual([[0, woken]]);
        expect((await store.getInvocation('w'))?.status).toBe('running');
        expect((await store.listRunnable()).map((r) => r.id)).toEqual(['w']);
      });

      it('completes without resuming an owner that is not suspended', async () => {
        await store.write([
          { op: 'invocation.insert', row: inv('r', { status: 'running' }) },
          { op: 'invocation.insert', row: inv('b', { status: 'backing-off' }) },
          { op: 'journal.put', invocationId: 'r', index: 0, entry: sleeping },
          { op: 'journal.put', invocationId: 'b', index: 0, entry: sleeping },
        ]);
        const res = await store.write([
          { op: 'journal.complete', invocationId: 'r', index: 0, entry: woken },
          { op: 'journal.complete', invocationId: 'b', index: 0, entry: woken },
        ]);
        expect(res).toEqual([
          { completed: true, resumed: false },
          { completed: true, resumed: false },
        ]);
        expect((await store.getInvocation('r'))?.status).toBe('running');
        expect((await store.getInvocation('b'))?.status).toBe('backing-off');
        expect((await store.getJournal('b'))[0]![1].done).toBe(true);
      });

      it('leaves an entry that is already done untouched', async () => {
        const first: JournalEntry = { kind: 'call', name: 'S/h', done: true, value: 'first' };
        await store.write([
          { op: 'invocation.insert', row: inv('d', { status: 'suspended' }) },
          { op: 'journal.put', invocationId: 'd', index: 0, entry: first },
        ]);
        const res = await store.write([
          {
            op: 'journal.complete',
            invocationId: 'd',
            index: 0,
            entry: { kind: 'call', name: 'S/h', done: true, value: 'second' },
          },
        ]);
        expect(res).toEqual([{ completed: false, resumed: false }]);
        expect(await store.getJournal('d')).toEqual([[0, first]]);
        expect((await store.getInvocation('d'))?.status).toBe('suspended');
      });

      it('records a completion that arrives before its entry exists', async () => {
        await insert(inv('m', { status: 'suspended' }));
        const res = await store.write([
          { op: 'journal.complete', invocationId: 'm', index: 3, entry: woken },
        ]);
        expect(res).toEqual([{ completed: true, resumed: true }]);
        expect(await store.getJournal('m')).toEqual([[3, woken]]);
      });

      it('applies a completion after a start in the same write, in order', async () => {
        await insert(inv('o', { status: 'running' }));
        const res = await store.write([
          { op: 'journal.put', invocationId: 'o', index: 0, entry: sleeping },
          { op: 'invocation.update', id: 'o', set: { status: 'suspended' } },
          { op: 'journal.complete', invocationId: 'o', index: 0, entry: woken },
          { op: 'journal.complete', invocationId: 'o', index: 0, entry: { ...woken, wakeAt: 1 } },
        ]);
        expect(res).toEqual([
          undefined,
          undefined,
          { completed: true, resumed: true },
          { completed: false, resumed: false },
        ]);
        expect(await store.getJournal('o')).toEqual([[0, woken]]);
      });

      it('ignores a completion for an invocation that does not exist', async () => {
        const res = await store.write([
          { op: 'journal.complete', invocationId: 'gone', index: 0, entry: woken },
        ]);
        expect(res).toEqual([{ completed: false, resumed: false }]);
        expect(await store.getJournal('gone')).toEqual([]);
      });

      it("keeps the waiting entry's startedAt when the completion carries none, and the value's key order", async () => {
        const waiting: JournalEntry = {
          kind: 'call',
          name: 'S/h',
          done: false,
          calleeId: 'c',
          startedAt: 1_700_000_000_123,
        };
        await store.write([
          { op: 'invocation.insert', row: inv('t', { status: 'suspended' }) },
          { op: 'journal.put', invocationId: 't', index: 0, entry: waiting },
        ]);
        // The value holds a "startedAt" of its own, and keys in no sorted order.
        const value = { z: 1, startedAt: 'mine', a: { y: [2, { d: 1, c: 0 }], b: null } };
        const answered: JournalEntry = {
          kind: 'call',
          name: 'S/h',
          done: true,
          calleeId: 'c',
          value,
          completedAt: 1_700_000_000_456,
          completedBy: 'call c',
        };
        const res = await store.write([
          { op: 'journal.complete', invocationId: 't', index: 0, entry: answered },
        ]);
        expect(res).toEqual([{ completed: true, resumed: true }]);
        const [[, stored]] = (await store.getJournal('t')) as [[number, JournalEntry]];
        expect(stored).toEqual({ ...answered, startedAt: 1_700_000_000_123 });
        const got = stored.value as typeof value;
        expect(Object.keys(got)).toEqual(['z', 'startedAt', 'a']);
        expect(Object.keys(got.a)).toEqual(['y', 'b']);
        expect(Object.keys(got.a.y[1] as object)).toEqual(['d', 'c']);
      });

      it('keeps a startedAt the completion carries, and adds the stored one to a completion without data', async () => {
        const started = (at: number): JournalEntry => ({
          kind: 'awakeable',
          name: 'awk',
          done: false,
          startedAt: at,
        });
        await insert(inv('u', { status: 'running' }));
        const res = await store.write([
          { op: 'journal.put', invocationId: 'u', index: 0, entry: started(10) },
          { op: 'journal.put', invocationId: 'u', index: 1, entry: started(20) },
          // Its own startedAt wins.
          {
            op: 'journal.complete',
            invocationId: 'u',
            index: 0,
            entry: { kind: 'awakeable', name: 'awk', done: true, value: 'x', startedAt: 11 },
          },
          // Nothing but kind, name and done (a value of undefined): the stored one is kept.
          {
            op: 'journal.complete',
            invocationId: 'u',
            index: 1,
            entry: { kind: 'awakeable', name: 'awk', done: true },
          },
        ]);
        expect(res.slice(2)).toEqual([
          { completed: true, resumed: false },
          { completed: true, resumed: false },
        ]);
        expect(await store.getJournal('u')).toEqual([
          [0, { kind: 'awakeable', name: 'awk', done: true, value: 'x', startedAt: 11 }],
          [1, { kind: 'awakeable', name: 'awk', done: true, startedAt: 20 }],
        ]);
      });
    });

    describe('durable promises', () => {
      /** Entry `index` of `invocationId` waiting for promise `name` of Wf/`key`. */
      const awaitOp = (
        invocationId: string,
        index: number,
        name: string,
        key = 'wf1',
        service = 'Wf',
      ): WriteOp => ({
        op: 'promise.await',
        service,
        key,
        name,
        invocationId,
        index,
        entry: { kind: 'promise', name, done: false },
      });
      const complete = (
        name: string,
        outcome: { value?: unknown; error?: ErrorInfo },
        key = 'wf1',
        service = 'Wf',
      ): WriteOp => ({ op: 'promise.complete', service, key, name, ...outcome });

      it('is undefined until awaited, pending once awaited, done once completed', async () => {
        expect(await store.getPromise('Wf', 'wf1', 'approval')).toBeUndefined();
        await insert(inv('a', { service: 'Wf', key: 'wf1', status: 'running' }));
        expect(await store.write([awaitOp('a', 0, 'approval')])).toEqual([{ done: false }]);
        expect(await store.getPromise('Wf', 'wf1', 'approval')).toEqual({ done: false });
        expect(await store.getJournal('a')).toEqual([
          [0, { kind: 'promise', name: 'approval', done: false }],
        ]);
        await store.write([complete('approval', { value: { ok: true } })]);
        expect(await store.getPromise('Wf', 'wf1', 'approval')).toEqual({
          done: true,
          value: { ok: true },
        });
        // A peek by another name of the same key sees nothing.
        expect(await store.getPromise('Wf', 'wf1', 'other')).toBeUndefined();
      });

      it('completes a promise nobody awaits, and a later await gets its value at once', async () => {
        await insert(inv('late', { service: 'Wf', key: 'wf1', status: 'running' }));
        expect(await store.write([complete('p', { value: [1, 'two'] })])).toEqual([
          { completed: true, waiters: [] },
        ]);
        expect(await store.getPromise('Wf', 'wf1', 'p')).toEqual({ done: true, value: [1, 'two'] });
        expect(await store.write([awaitOp('late', 4, 'p')])).toEqual([
          { done: true, value: [1, 'two'] },
        ]);
        expect(await store.getJournal('late')).toEqual([
          [4, { kind: 'promise', name: 'p', done: true, value: [1, 'two'] }],
        ]);
        // Nothing waits: completing again changes nothing and lists nobody.
        expect(await store.write([complete('p', { value: 'again' })])).toEqual([
          { completed: false, waiters: [] },
        ]);
        expect((await store.getJournal('late'))[0]![1].value).toEqual([1, 'two']);
      });

      it('completes the entry of a waiter and resumes it when suspended', async () => {
        await store.write([
          { op: 'invocation.insert', row: inv('w', { service: 'Wf', key: 'wf1' }) },
          { op: 'journal.put', invocationId: 'w', index: 0, entry: entry('run', 'step') },
          awaitOp('w', 1, 'approval'),
          { op: 'invocation.update', id: 'w', set: { status: 'suspended' } },
        ]);
        expect(await store.listRunnable()).toEqual([]);
        const res = await store.write([complete('approval', { value: 'yes' })]);
        expect(res).toEqual([
          { completed: true, waiters: [{ invocationId: 'w', index: 1, resumed: true }] },
        ]);
        expect(await store.getJournal('w')).toEqual([
          [0, entry('run', 'step')],
          [1, { kind: 'promise', name: 'approval', done: true, value: 'yes' }],
        ]);
        expect((await store.getInvocation('w'))?.status).toBe('running');
        expect((await store.listRunnable()).map((r) => r.id)).toEqual(['w']);
      });

      it('completes a waiter that is not suspended without resuming it', async () => {
        await store.write([
          {
            op: 'invocation.insert',
            row: inv('bo', { service: 'Wf', key: 'wf1', status: 'backing-off' }),
          },
          awaitOp('bo', 2, 'p'),
        ]);
        expect(await store.write([complete('p', { value: 1 })])).toEqual([
          { completed: true, waiters: [{ invocationId: 'bo', index: 2, resumed: false }] },
        ]);
        expect((await store.getInvocation('bo'))?.status).toBe('backing-off');
        expect(await store.getJournal('bo')).toEqual([
          [2, { kind: 'promise', name: 'p', done: true, value: 1 }],
        ]);
      });

      it('completes only once: a second completion changes nothing', async () => {
        await store.write([
          {
            op: 'invocation.insert',
            row: inv('w', { service: 'Wf', key: 'wf1', status: 'suspended' }),
          },
          awaitOp('w', 0, 'p'),
        ]);
        const [first] = await store.write([complete('p', { value: 'first' })]);
        expect(first).toMatchObject({ completed: true });
        // Waiting again after the completion (a replay) is answered from the promise.
        await store.write([
          { op: 'invocation.update', id: 'w', set: { status: 'suspended' } },
          awaitOp('w', 0, 'p'),
        ]);
        const res = await store.write([
          complete('p', { value: 'second' }),
          complete('p', { error: { code: 'nope', message: 'too late' } }),
        ]);
        expect(res).toEqual([
          { completed: false, waiters: [] },
          { completed: false, waiters: [] },
        ]);
        expect(await store.getPromise('Wf', 'wf1', 'p')).toEqual({ done: true, value: 'first' });
        expect(await store.getJournal('w')).toEqual([
          [0, { kind: 'promise', name: 'p', done: true, value: 'first' }],
        ]);
        expect((await store.getInvocation('w'))?.status).toBe('suspended');
      });

      it('rejects with an error, for waiters and for later awaits', async () => {
        const error: ErrorInfo = { code: 'denied', message: 'rejected by Ann', status: 409 };
        await store.write([
          {
            op: 'invocation.insert',
            row: inv('w', { service: 'Wf', key: 'wf1', status: 'suspended' }),
          },
          awaitOp('w', 0, 'approval'),
        ]);
        expect(await store.write([complete('approval', { error })])).toEqual([
          { completed: true, waiters: [{ invocationId: 'w', index: 0, resumed: true }] },
        ]);
        const peek = await store.getPromise('Wf', 'wf1', 'approval');
        expect(peek).toEqual({ done: true, error });
        expect(peek !== undefined && 'value' in peek).toBe(false);
        const [[, waited]] = (await store.getJournal('w')) as [[number, JournalEntry]];
        expect(waited).toEqual({ kind: 'promise', name: 'approval', done: true, error });
        expect('value' in waited).toBe(false);

        const [later] = await store.write([awaitOp('w', 1, 'approval')]);
        expect(later).toEqual({ done: true, error });
        expect(later !== undefined && 'value' in later).toBe(false);
        expect((await store.getJournal('w'))[1]).toEqual([
          1,
          { kind: 'promise', name: 'approval', done: true, error },
        ]);
      });

      it('refuses a completion with both a value and an error, and applies none of the write', async () => {
        await expect(
          store.write([
            { op: 'state.set', service: 'Wf', key: 'wf1', name: 's', value: 1 },
            complete('p', { value: 1, error: { code: 'x', message: 'y' } }),
          ]),
        ).rejects.toMatchObject({ code: 'write_failed' });
        expect(await store.getPromise('Wf', 'wf1', 'p')).toBeUndefined();
        expect(await store.getState('Wf', 'wf1', 's')).toBeUndefined();
      });

      it("keeps the waiting entry's startedAt when the promise completes, or completed it already", async () => {
        const timedAwait = (invocationId: string, index: number, name: string): WriteOp => ({
          op: 'promise.await',
          service: 'Wf',
          key: 'wf1',
          name,
          invocationId,
          index,
          entry: { kind: 'promise', name, done: false, startedAt: 1_700_000_000_001 },
        });
        await insert(inv('pt', { service: 'Wf', key: 'wf1', status: 'running' }));
        await store.write([timedAwait('pt', 0, 'later'), complete('sooner', { value: 1 })]);
        await store.write([
          complete('later', { value: { b: 1, a: 2 } }),
          timedAwait('pt', 1, 'sooner'),
        ]);
        const journal = await store.getJournal('pt');
        expect(journal).toEqual([
          [
            0,
            {
              kind: 'promise',
              name: 'later',
              done: true,
              value: { b: 1, a: 2 },
              startedAt: 1_700_000_000_001,
            },
          ],
          [
            1,
            { kind: 'promise', name: 'sooner', done: true, value: 1, startedAt: 1_700_000_000_001 },
          ],
        ]);
        expect(Object.keys(journal[0]![1].value as object)).toEqual(['b', 'a']);
      });

      it('stores an awaited entry with the outcome of the promise only', async () => {
        const error: ErrorInfo = { code: 'denied', message: 'no' };
        await store.write([
          { op: 'invocation.insert', row: inv('w', { service: 'Wf', key: 'wf1' }) },
          complete('rejected', { error }),
        ]);
        // A stale value in the awaited entry does not survive next to the promise's error.
        const [res] = await store.write([
          {
            op: 'promise.await',
            service: 'Wf',
            key: 'wf1',
            name: 'rejected',
            invocationId: 'w',
            index: 0,
            entry: { kind: 'promise', name: 'rejected', done: false, value: 'stale' },
          },
        ]);
        expect(res).toEqual({ done: true, error });
        const [[, stored]] = (await store.getJournal('w')) as [[number, JournalEntry]];
        expect(stored).toEqual({ kind: 'promise', name: 'rejected', done: true, error });
        expect('value' in stored).toBe(false);
      });

      it('keeps a promise resolved with undefined apart from one resolved with null', async () => {
        await store.write([
          { op: 'invocation.insert', row: inv('w', { service: 'Wf', key: 'wf1' }) },
          awaitOp('w', 0, 'undef'),
          awaitOp('w', 1, 'nul'),
        ]);
        await store.write([complete('undef', {}), complete('nul', { value: null })]);
        const undef = await store.getPromise('Wf', 'wf1', 'undef');
        expect(undef).toEqual({ done: true });
        expect(undef !== undefined && ('value' in undef || 'error' in undef)).toBe(false);
        expect(await store.getPromise('Wf', 'wf1', 'nul')).toEqual({ done: true, value: null });
        const journal = await store.getJournal('w');
        expect(journal[0]![1]).toEqual({ kind: 'promise', name: 'undef', done: true });
        expect('value' in journal[0]![1]).toBe(false);
        expect(journal[1]![1]).toEqual({ kind: 'promise', name: 'nul', done: true, value: null });

        const [u, n] = await store.write([awaitOp('w', 2, 'undef'), awaitOp('w', 3, 'nul')]);
        expect(u).toEqual({ done: true });
        expect(u !== undefined && 'value' in u).toBe(false);
        expect(n).toEqual({ done: true, value: null });
        expect((await store.getJournal('w')).slice(2)).toEqual([
          [2, { kind: 'promise', name: 'undef', done: true }],
          [3, { kind: 'promise', name: 'nul', done: true, value: null }],
        ]);
      });

      it('completes the waiters of several invocations, and several entries of one', async () => {
        await store.write([
          {
            op: 'invocation.insert',
            row: inv('run1', { service: 'Wf', key: 'wf1', status: 'suspended' }),
          },
          {
            op: 'invocation.insert',
            row: inv('get1', { service: 'Wf', key: 'wf1', status: 'suspended' }),
          },
          {
            op: 'invocation.insert',
            row: inv('get2', { service: 'Wf', key: 'wf1', status: 'running' }),
          },
          awaitOp('run1', 3, 'done'),
          awaitOp('get1', 0, 'done'),
          awaitOp('get2', 0, 'done'),
          awaitOp('get2', 5, 'done'),
          // Waiting twice at the same entry (a replay) is one waiter.
          awaitOp('run1', 3, 'done'),
        ]);
        const [res] = (await store.write([complete('done', { value: 42 })])) as [
          { completed: boolean; waiters: PromiseWaiter[] },
        ];
        expect(res.completed).toBe(true);
        expect(sortWaiters(res.waiters)).toEqual([
          { invocationId: 'get1', index: 0, resumed: true },
          { invocationId: 'get2', index: 0, resumed: false },
          // A second entry of an invocation that the first one already resumed.
          { invocationId: 'get2', index: 5, resumed: false },
          { invocationId: 'run1', index: 3, resumed: true },
        ]);
        for (const [id, index] of [
          ['run1', 3],
          ['get1', 0],
          ['get2', 0],
          ['get2', 5],
        ] as const) {
          expect(await store.getJournal(id)).toContainEqual([
            index,
            { kind: 'promise', name: 'done', done: true, value: 42 },
          ]);
        }
        expect((await store.listRunnable()).map((r) => r.id).sort()).toEqual([
          'get1',
          'get2',
          'run1',
        ]);
      });

      it('keeps promises of different names, workflow keys and services apart', async () => {
        await store.write([
          { op: 'invocation.insert', row: inv('a', { service: 'Wf', key: 'wf1' }) },
          { op: 'invocation.insert', row: inv('b', { service: 'Wf', key: 'wf2' }) },
          { op: 'invocation.insert', row: inv('c', { service: 'Other', key: 'wf1' }) },
          { op: 'invocation.insert', row: inv('d', { service: 'Wf', key: 'wf1' }) },
          awaitOp('a', 0, 'p', 'wf1'),
          awaitOp('b', 0, 'p', 'wf2'),
          awaitOp('c', 0, 'p', 'wf1', 'Other'),
          awaitOp('d', 0, 'q', 'wf1'),
        ]);
        expect(await store.write([complete('p', { value: 'for wf1' }, 'wf1')])).toEqual([
          { completed: true, waiters: [{ invocationId: 'a', index: 0, resumed: false }] },
        ]);
        expect(await store.getPromise('Wf', 'wf2', 'p')).toEqual({ done: false });
        expect(await store.getPromise('Other', 'wf1', 'p')).toEqual({ done: false });
        expect(await store.getPromise('Wf', 'wf1', 'q')).toEqual({ done: false });
        for (const id of ['b', 'c', 'd'])
          expect((await store.getJournal(id))[0]![1].done, id).toBe(false);

        // The others are still waiting, each for its own promise.
        expect(await store.write([complete('p', { value: 'for wf2' }, 'wf2')])).toEqual([
          { completed: true, waiters: [{ invocationId: 'b', index: 0, resumed: false }] },
        ]);
        expect(await store.write([complete('p', { value: 'other' }, 'wf1', 'Other')])).toEqual([
          { completed: true, waiters: [{ invocationId: 'c', index: 0, resumed: false }] },
        ]);
        expect(await store.getPromise('Wf', 'wf1', 'p')).toEqual({ done: true, value: 'for wf1' });
        expect(await store.getPromise('Wf', 'wf2', 'p')).toEqual({ done: true, value: 'for wf2' });
        expect((await store.getJournal('d'))[0]![1].done).toBe(false);
      });

      it('forgets the waiters of a deleted invocation, but not the promise', async () => {
        await store.write([
          {
            op: 'invocation.insert',
            row: inv('gone', { service: 'Wf', key: 'wf1', status: 'suspended' }),
          },
          {
            op: 'invocation.insert',
            row: inv('stays', { service: 'Wf', key: 'wf1', status: 'suspended' }),
          },
          awaitOp('gone', 0, 'p'),
          awaitOp('stays', 1, 'p'),
          awaitOp('gone', 0, 'resolved'),
        ]);
        await store.write([complete('resolved', { value: 'kept' })]);
        await store.write([{ op: 'invocation.delete', id: 'gone' }]);
        expect(await store.getPromise('Wf', 'wf1', 'p')).toEqual({ done: false });
        expect(await store.getPromise('Wf', 'wf1', 'resolved')).toEqual({
          done: true,
          value: 'kept',
        });
        expect(await store.write([complete('p', { value: 1 })])).toEqual([
          { completed: true, waiters: [{ invocationId: 'stays', index: 1, resumed: true }] },
        ]);
        // No journal is recreated for the deleted invocation.
        expect(await store.getJournal('gone')).toEqual([]);
        expect(await store.getInvocation('gone')).toBeUndefined();
      });

      it('forgets the waiters of a deleted invocation even when its id is reused', async () => {
        await store.write([
          { op: 'invocation.insert', row: inv('x', { service: 'Wf', key: 'wf1' }) },
          awaitOp('x', 0, 'p'),
        ]);
        await store.write([
          { op: 'invocation.delete', id: 'x' },
          {
            op: 'invocation.insert',
            row: inv('x', { service: 'Wf', key: 'wf1', status: 'suspended' }),
          },
        ]);
        expect(await store.write([complete('p', { value: 1 })])).toEqual([
          { completed: true, waiters: [] },
        ]);
        expect(await store.getJournal('x')).toEqual([]);
        expect((await store.getInvocation('x'))?.status).toBe('suspended');
      });

      it('does not overwrite an awaited entry that something else completed', async () => {
        const other: JournalEntry = { kind: 'promise', name: 'p', done: true, value: 'other' };
        await store.write([
          {
            op: 'invocation.insert',
            row: inv('w', { service: 'Wf', key: 'wf1', status: 'suspended' }),
          },
          {
            op: 'invocation.insert',
            row: inv('v', { service: 'Wf', key: 'wf1', status: 'suspended' }),
          },
          awaitOp('w', 0, 'p'),
          awaitOp('v', 0, 'p'),
        ]);
        // Done by a put (no resume) and by a completion (which resumes v itself).
        await store.write([
          { op: 'journal.put', invocationId: 'w', index: 0, entry: other },
          { op: 'journal.complete', invocationId: 'v', index: 0, entry: other },
          { op: 'invocation.update', id: 'v', set: { status: 'suspended' } },
        ]);
        expect(await store.write([complete('p', { value: 'promised' })])).toEqual([
          { completed: true, waiters: [] },
        ]);
        expect(await store.getJournal('w')).toEqual([[0, other]]);
        expect(await store.getJournal('v')).toEqual([[0, other]]);
        expect((await store.getInvocation('w'))?.status).toBe('suspended');
        expect((await store.getInvocation('v'))?.status).toBe('suspended');
        expect(await store.getPromise('Wf', 'wf1', 'p')).toEqual({
          done: true,
          value: 'promised',
        });
      });

      it('applies an await and a completion in the same write in order', async () => {
        await insert(inv('w', { service: 'Wf', key: 'wf1', status: 'suspended' }));
        const res = await store.write([
          awaitOp('w', 0, 'p'),
          complete('p', { value: 'v' }),
          awaitOp('w', 1, 'p'),
        ]);
        expect(res).toEqual([
          { done: false },
          { completed: true, waiters: [{ invocationId: 'w', index: 0, resumed: true }] },
          { done: true, value: 'v' },
        ]);
        expect(await store.getJournal('w')).toEqual([
          [0, { kind: 'promise', name: 'p', done: true, value: 'v' }],
          [1, { kind: 'promise', name: 'p', done: true, value: 'v' }],
        ]);
      });

      it('keeps promises and waiters across close and reopen', async (t) => {
        t.skip(!h.reopen, 'this adapter does not persist across instances');
        await store.write([
          {
            op: 'invocation.insert',
            row: inv('w', { service: 'Wf', key: 'wf1', status: 'suspended' }),
          },
          awaitOp('w', 0, 'pending'),
          complete('resolved', { value: { n: 1 } }),
        ]);
        await store.close();
        const again = await h.reopen!();
        expect(await again.getPromise('Wf', 'wf1', 'resolved')).toEqual({
          done: true,
          value: { n: 1 },
        });
        expect(await again.getPromise('Wf', 'wf1', 'pending')).toEqual({ done: false });
        expect(
          await again.write([
            { op: 'promise.complete', service: 'Wf', key: 'wf1', name: 'pending', value: 2 },
          ]),
        ).toEqual([{ completed: true, waiters: [{ invocationId: 'w', index: 0, resumed: true }] }]);
        expect(await again.getJournal('w')).toEqual([
          [0, { kind: 'promise', name: 'pending', done: true, value: 2 }],
        ]);
      });
    });

    describe('state', () => {
      it('sets, overwrites, reads and deletes values per (service, key)', async () => {
        await store.write([
          { op: 'state.set', service: 'cart', key: 'ann', name: 'items', value: ['apple'] },
          { op: 'state.set', service: 'cart', key: 'ann', name: 'total', value: 3 },
          { op: 'state.set', service: 'cart', key: 'bob', name: 'items', value: ['pear'] },
          { op: 'state.set', service: 'wish', key: 'ann', name: 'items', value: ['car'] },
          { op: 'state.set', service: 'cart', key: 'ann', name: 'nothing', value: null },
        ]);
        await store.write([
          { op: 'state.set', service: 'cart', key: 'ann', name: 'items', value: ['apple', 'fig'] },
        ]);
        expect(await store.getState('cart', 'ann', 'items')).toEqual(['apple', 'fig']);
        expect(await store.getState('cart', 'bob', 'items')).toEqual(['pear']);
        expect(await store.getState('wish', 'ann', 'items')).toEqual(['car']);
        expect(await store.getState('cart', 'ann', 'nothing')).toBeNull();
        expect(await store.getState('cart', 'ann', 'missing')).toBeUndefined();
        expect([...(await store.getStateKeys('cart', 'ann'))].sort()).toEqual([
          'items',
          'nothing',
          'total',
        ]);

        await store.write([{ op: 'state.delete', service: 'cart', key: 'ann', name: 'total' }]);
        expect(await store.getState('cart', 'ann', 'total')).toBeUndefined();
        expect([...(await store.getStateKeys('cart', 'ann'))].sort()).toEqual(['items', 'nothing']);
      });

      it('clears one (service, key) and nothing else', async () => {
        await store.write([
          { op: 'state.set', service: 'cart', key: 'ann', name: 'a', value: 1 },
          { op: 'state.set', service: 'cart', key: 'ann', name: 'b', value: 2 },
          { op: 'state.set', service: 'cart', key: 'bob', name: 'a', value: 3 },
          { op: 'state.set', service: 'other', key: 'ann', name: 'a', value: 4 },
        ]);
        await store.write([{ op: 'state.clear', service: 'cart', key: 'ann' }]);
        expect(await store.getStateKeys('cart', 'ann')).toEqual([]);
        expect(await store.getState('cart', 'ann', 'a')).toBeUndefined();
        expect(await store.getState('cart', 'bob', 'a')).toBe(3);
        expect(await store.getState('other', 'ann', 'a')).toBe(4);
      });

      it('treats the empty key (services) as a key like any other', async () => {
        await store.write([{ op: 'state.set', service: 'svc', key: '', name: 'n', value: 'v' }]);
        expect(await store.getState('svc', '', 'n')).toBe('v');
        expect(await store.getStateKeys('svc', '')).toEqual(['n']);
        expect(await store.getStateKeys('svc', 'k')).toEqual([]);
      });

      it('lists the keys of a service that have state, in key order, page by page', async () => {
        await store.write([
          { op: 'state.set', service: 'cart', key: 'cy', name: 'a', value: 1 },
          { op: 'state.set', service: 'cart', key: 'ann', name: 'a', value: 1 },
          { op: 'state.set', service: 'cart', key: 'ann', name: 'b', value: 2 },
          { op: 'state.set', service: 'cart', key: '', name: 'a', value: 1 },
          { op: 'state.set', service: 'cart', key: 'bob', name: 'a', value: 1 },
          { op: 'state.set', service: 'wish', key: 'dan', name: 'a', value: 1 },
        ]);
        await store.write([{ op: 'state.clear', service: 'cart', key: 'bob' }]);
        expect(await store.listStateKeys('cart')).toEqual(['', 'ann', 'cy']);
        expect(await store.listStateKeys('cart', { limit: 2 })).toEqual(['', 'ann']);
        expect(await store.listStateKeys('cart', { after: 'ann', limit: 2 })).toEqual(['cy']);
        expect(await store.listStateKeys('cart', { after: 'cy' })).toEqual([]);
        expect(await store.listStateKeys('nobody')).toEqual([]);
      });
    });

    describe('timers', () => {
      it('returns due timers earliest first, inclusive of `before`, at most `limit`', async () => {
        await store.write([
          { op: 'timer.put', timer: { invocationId: 'a', index: 0, fireAt: 300 } },
          { op: 'timer.put', timer: { invocationId: 'b', index: -1, fireAt: 100 } },
          { op: 'timer.put', timer: { invocationId: 'c', index: 2, fireAt: 200 } },
          { op: 'timer.put', timer: { invocationId: 'd', index: 0, fireAt: 400 } },
        ]);
        expect(await store.dueTimers(300, 10)).toEqual([
          { invocationId: 'b', index: -1, fireAt: 100 },
          { invocationId: 'c', index: 2, fireAt: 200 },
          { invocationId: 'a', index: 0, fireAt: 300 },
        ]);
        expect((await store.dueTimers(1000, 2)).map((t) => t.invocationId)).toEqual(['b', 'c']);
        expect(await store.dueTimers(99, 10)).toEqual([]);
      });

      it('replaces a timer with the same (invocation, index) and deletes one', async () => {
        await store.write([
          { op: 'timer.put', timer: { invocationId: 'a', index: 0, fireAt: 100 } },
          { op: 'timer.put', timer: { invocationId: 'a', index: 1, fireAt: 150 } },
        ]);
        await store.write([
          { op: 'timer.put', timer: { invocationId: 'a', index: 0, fireAt: 500 } },
        ]);
        expect(await store.dueTimers(1000, 10)).toEqual([
          { invocationId: 'a', index: 1, fireAt: 150 },
          { invocationId: 'a', index: 0, fireAt: 500 },
        ]);
        await store.write([{ op: 'timer.delete', invocationId: 'a', index: 1 }]);
        expect(await store.dueTimers(1000, 10)).toEqual([
          { invocationId: 'a', index: 0, fireAt: 500 },
        ]);
      });
    });

    describe('queries', () => {
      it('lists expired finished invocations only, at most `limit`', async () => {
        await store.write([
          { op: 'invocation.insert', row: inv('c-old', { status: 'completed', expiresAt: 100 }) },
          { op: 'invocation.insert', row: inv('f-old', { status: 'failed', expiresAt: 200 }) },
          { op: 'invocation.insert', row: inv('c-edge', { status: 'completed', expiresAt: 300 }) },
          { op: 'invocation.insert', row: inv('c-new', { status: 'completed', expiresAt: 301 }) },
          { op: 'invocation.insert', row: inv('c-forever', { status: 'completed' }) },
          { op: 'invocation.insert', row: inv('r-old', { status: 'running', expiresAt: 50 }) },
          { op: 'invocation.insert', row: inv('s-old', { status: 'suspended', expiresAt: 50 }) },
        ]);
        expect([...(await store.expired(300, 10))].sort()).toEqual(['c-edge', 'c-old', 'f-old']);
        expect(await store.expired(300, 2)).toHaveLength(2);
        expect(await store.expired(99, 10)).toEqual([]);
      });

      it('lists runnable invocations (running, pending) oldest first', async () => {
        await store.write(
          (
            [
              'running',
              'suspended',
              'pending',
              'scheduled',
              'backing-off',
              'completed',
              'failed',
              'running',
            ] as const
          ).map(
            (status, i) =>
              ({ op: 'invocation.insert', row: inv(`i${i}`, { status }) }) satisfies WriteOp,
          ),
        );
        const runnable = await store.listRunnable();
        expect(runnable.map((r) => r.id)).toEqual(['i0', 'i2', 'i7']);
        expect(runnable[0]).toEqual({
          ...inv('i0', { status: 'running' }),
          seq: expect.any(Number),
        });
      });

      it('lists holders of exclusive object keys (running, suspended, backing-off, paused, pending) oldest first', async () => {
        await store.write([
          {
            op: 'invocation.insert',
            row: inv('h1', { key: 'k1', exclusive: true, status: 'suspended' }),
          },
          {
            op: 'invocation.insert',
            row: inv('h2', { key: 'k1', exclusive: true, status: 'pending' }),
          },
          {
            op: 'invocation.insert',
            row: inv('shared', { key: 'k1', exclusive: false, status: 'running' }),
          },
          {
            op: 'invocation.insert',
            row: inv('svc', { key: '', exclusive: true, status: 'running' }),
          },
          {
            op: 'invocation.insert',
            row: inv('done', { key: 'k1', exclusive: true, status: 'completed' }),
          },
          {
            op: 'invocation.insert',
            row: inv('failed', { key: 'k1', exclusive: true, status: 'failed' }),
          },
          {
            op: 'invocation.insert',
            row: inv('sched', { key: 'k2', exclusive: true, status: 'scheduled' }),
          },
          {
            op: 'invocation.insert',
            row: inv('h3', { service: 'other', key: 'k2', exclusive: true, status: 'backing-off' }),
          },
          {
            op: 'invocation.insert',
            row: inv('h4', { key: 'k3', exclusive: true, status: 'running' }),
          },
          // Paused by a non-determinism error: it keeps its key until resumed or cancelled.
          {
            op: 'invocation.insert',
            row: inv('h5', { key: 'k4', exclusive: true, status: 'paused' }),
          },
        ]);
        const holders = await store.listKeyHolders();
        expect(holders.map((r) => r.id)).toEqual(['h1', 'h2', 'h3', 'h4', 'h5']);
        const seq = (await store.getInvocation('h3'))?.seq;
        expect(holders[2]).toMatchObject({
          id: 'h3',
          service: 'other',
          key: 'k2',
          status: 'backing-off',
          seq,
        });
      });

      it('lists invocations newest first with filters', async () => {
        await store.write([
          {
            op: 'invocation.insert',
            row: inv('l1', { service: 'A', key: 'x', status: 'completed' }),
          },
          {
            op: 'invocation.insert',
            row: inv('l2', { service: 'A', key: 'y', status: 'running' }),
          },
          {
            op: 'invocation.insert',
            row: inv('l3', { service: 'B', key: 'x', status: 'completed' }),
          },
          {
            op: 'invocation.insert',
            row: inv('l4', { service: 'A', key: 'x', status: 'running' }),
          },
        ]);
        const ids = async (f: Parameters<Store['listInvocations']>[0]) =>
          (await store.listInvocations(f)).map((r) => r.id);
        expect(await ids({})).toEqual(['l4', 'l3', 'l2', 'l1']);
        expect(await ids({ status: 'completed' })).toEqual(['l3', 'l1']);
        expect(await ids({ service: 'A' })).toEqual(['l4', 'l2', 'l1']);
        expect(await ids({ key: 'x' })).toEqual(['l4', 'l3', 'l1']);
        expect(await ids({ service: 'A', key: 'x', status: 'running' })).toEqual(['l4']);
        expect(await ids({ limit: 2 })).toEqual(['l4', 'l3']);
        expect(await ids({ service: 'none' })).toEqual([]);
        const full = (await store.listInvocations({ service: 'B' }))[0];
        expect(full).toEqual({
          ...inv('l3', { service: 'B', key: 'x', status: 'completed' }),
          seq: expect.any(Number),
        });
      });

      it('pages with beforeSeq without gaps or repeats, 100 per page by default', async () => {
        const ops: WriteOp[] = [];
        for (let i = 0; i < 230; i++)
          ops.push({ op: 'invocation.insert', row: inv(`p${String(i).padStart(3, '0')}`) });
        await store.write(ops);
        const seen: string[] = [];
        let beforeSeq: number | undefined;
        const pageSizes: number[] = [];
        for (;;) {
          const page = await store.listInvocations(beforeSeq === undefined ? {} : { beforeSeq });
          if (page.length === 0) break;
          pageSizes.push(page.length);
          seen.push(...page.map((r) => r.id));
          beforeSeq = page[page.length - 1]!.seq;
        }
        expect(pageSizes).toEqual([100, 100, 30]);
        expect(seen).toEqual(ops.map((o) => (o as { row: InvocationRow }).row.id).reverse());
      });

      it('filters by handler, error code, created time and several statuses, alone and combined, paging without gaps', async () => {
        // A deterministic mix; every filter below is checked against the same filter in plain
        // code over the rows, page by page (7 per page) through beforeSeq.
        const statuses: InvocationStatus[] = [
          'pending',
          'running',
          'suspended',
          'backing-off',
          'completed',
          'failed',
        ];
        const codes = ['timeout', 'card_declined', undefined];
        const rows: InvocationRow[] = [];
        for (let i = 0; i < 90; i++) {
          const status = statuses[(i + (i >> 2)) % statuses.length]!;
          const code = codes[i % codes.length];
          const failing = status === 'failed' || status === 'backing-off';
          rows.push(
            inv(`f${String(i).padStart(2, '0')}`, {
              service: ['Orders', 'Payments', 'Mail'][i % 3]!,
              handler: ['run', 'charge'][(i >> 1) % 2]!,
              key: ['', 'k1', 'k2'][(i >> 2) % 3]!,
              status,
              // Not monotonic in arrival order, as times from several processes are not.
              createdAt: 1_700_000_000_000 + ((i * 37) % 90) * 1000,
              ...(failing
                ? {
                    error:
                      code === undefined
                        ? ({ message: 'no code' } as ErrorInfo)
                        : { code, message: `m ${i}` },
                  }
                : {}),
            }),
          );
        }
        await store.write(rows.map((row) => ({ op: 'invocation.insert' as const, row })));
        // The index follows updates of the error: set, changed and cleared.
        await store.write([
          {
            op: 'invocation.update',
            id: 'f00',
            set: { status: 'failed', error: { code: 'late', message: 'x' } },
          },
          { op: 'invocation.update', id: 'f03', set: { status: 'running', error: undefined } },
        ]);
        const current = new Map(rows.map((r) => [r.id, r]));
        current.set('f00', {
          ...current.get('f00')!,
          status: 'failed',
          error: { code: 'late', message: 'x' },
        });
        const f03 = { ...current.get('f03')!, status: 'running' as const };
        delete f03.error;
        current.set('f03', f03);
        const t0 = 1_700_000_000_000;
        const filters: InvocationFilter[] = [
          { handler: 'charge' },
          { service: 'Orders', handler: 'run' },
          { errorCode: 'timeout' },
          { errorCode: 'late' },
          { errorCode: 'nope' },
          { createdSince: t0 + 30_000 },
          { createdUntil: t0 + 20_000 },
          { createdSince: t0 + 10_000, createdUntil: t0 + 50_000 },
          { status: ['failed', 'backing-off'] },
          { status: ['completed', 'pending', 'suspended'] },
          { status: ['running'] },
          { status: [] },
          { status: 'failed', errorCode: 'card_declined' },
          { status: ['failed', 'backing-off'], service: 'Payments', createdSince: t0 + 20_000 },
          { service: 'Mail', handler: 'charge', key: 'k2' },
          { key: 'k1', errorCode: 'card_declined', createdUntil: t0 + 60_000 },
          {
            handler: 'run',
            status: ['pending', 'running'],
            createdSince: t0,
            createdUntil: t0 + 89_000,
          },
        ];
        const matches = (r: InvocationRow, f: InvocationFilter): boolean => {
          const st =
            f.status === undefined ? [] : typeof f.status === 'string' ? [f.status] : f.status;
          return (
            (st.length === 0 || st.includes(r.status)) &&
            (f.service === undefined || r.service === f.service) &&
            (f.handler === undefined || r.handler === f.handler) &&
            (f.key === undefined || r.key === f.key) &&
            (f.errorCode === undefined || r.error?.code === f.errorCode) &&
            (f.createdSince === undefined || r.createdAt >= f.createdSince) &&
            (f.createdUntil === undefined || r.createdAt <= f.createdUntil)
          );
        };
        for (const f of filters) {
          const expected = [...current.values()]
            .filter((r) => matches(r, f))
            .map((r) => r.id)
            .reverse();
          const seen: string[] = [];
          let beforeSeq: number | undefined;
          for (let pages = 0; pages < 20; pages++) {
            const page = await store.listInvocations({
              ...f,
              limit: 7,
              ...(beforeSeq === undefined ? {} : { beforeSeq }),
            });
            seen.push(...page.map((r) => r.id));
            if (page.length < 7) break;
            beforeSeq = page[page.length - 1]!.seq;
          }
          expect({ filter: f, ids: seen }).toEqual({ filter: f, ids: expected });
          // Unpaged, the same rows in the same order.
          expect((await store.listInvocations({ ...f, limit: 1000 })).map((r) => r.id)).toEqual(
            expected,
          );
        }
        // Sanity: the mix exercises each filter: only the unknown code matches nothing.
        const empty = filters.filter((f) => ![...current.values()].some((r) => matches(r, f)));
        expect(empty).toEqual([{ errorCode: 'nope' }]);
      });

      it('stores errors whose code or message hold NUL or a lone surrogate, and finds unusual codes exactly', async () => {
        // Such text must never fail a write (PostgreSQL refuses both escapes as text).
        await store.write([
          {
            op: 'invocation.insert',
            row: inv('nul', {
              status: 'failed',
              error: { code: 'odd\u0000', message: 'a\u0000b' },
            }),
          },
          {
            op: 'invocation.insert',
            row: inv('sur', {
              status: 'failed',
              error: { code: 'x\ud800', message: 'cut \ud83d' },
            }),
          },
          {
            op: 'invocation.insert',
            row: inv('odd', {
              status: 'failed',
              error: { code: 'c\\u0000d"é', message: 'm', cause: { code: 'inner' } } as ErrorInfo,
            }),
          },
        ]);
        await store.write([
          { op: 'invocation.update', id: 'nul', set: { error: { code: 'y', message: '\udc00' } } },
        ]);
        expect((await store.listInvocations({ status: 'failed' })).map((r) => r.id)).toEqual([
          'odd',
          'sur',
          'nul',
        ]);
        expect(
          (await store.listInvocations({ errorCode: 'c\\u0000d"é' })).map((r) => r.id),
        ).toEqual(['odd']);
        expect((await store.listInvocations({ errorCode: 'y' })).map((r) => r.id)).toEqual(['nul']);
        expect(await store.listInvocations({ errorCode: 'inner' })).toEqual([]);
      });
    });

    describe('write()', () => {
      it('resolves with one result per op, and [] for no ops', async () => {
        expect(await store.write([])).toEqual([]);
        const res = await store.write([
          { op: 'invocation.insert', row: inv('r1') },
          { op: 'state.set', service: 's', key: 'k', name: 'n', value: 1 },
          { op: 'timer.put', timer: { invocationId: 'r1', index: 0, fireAt: 1 } },
          { op: 'journal.put', invocationId: 'r1', index: 0, entry: entry('run', 'x') },
        ]);
        expect(res).toEqual([{ inserted: true }, undefined, undefined, undefined]);
      });

      it('applies all of a failing write or none of it, while a concurrent write commits', async () => {
        await insert(inv('taken'));
        const failing = store.write([
          { op: 'invocation.insert', row: inv('half') },
          { op: 'journal.put', invocationId: 'half', index: 0, entry: entry('run', 'x') },
          { op: 'state.set', service: 's', key: 'k', name: 'half', value: 1 },
          { op: 'timer.put', timer: { invocationId: 'half', index: 0, fireAt: 1 } },
          { op: 'invocation.insert', row: inv('taken') }, // duplicate id: fails
        ]);
        const before = store.write([{ op: 'invocation.insert', row: inv('ok-before') }]);
        const after = store.write([
          { op: 'invocation.insert', row: inv('ok-after') },
          { op: 'state.set', service: 's', key: 'k', name: 'ok', value: 2 },
        ]);
        const settled = await Promise.allSettled([before, failing, after]);
        expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
        expect((settled[1] as PromiseRejectedResult).reason).toMatchObject({
          code: 'write_failed',
        });
        expect(await store.getInvocation('half')).toBeUndefined();
        expect(await store.getJournal('half')).toEqual([]);
        expect(await store.getState('s', 'k', 'half')).toBeUndefined();
        expect(await store.dueTimers(10, 10)).toEqual([]);
        expect(await store.getInvocation('ok-before')).toBeDefined();
        expect(await store.getInvocation('ok-after')).toBeDefined();
        expect(await store.getState('s', 'k', 'ok')).toBe(2);
        // The store keeps working.
        expect(await insert(inv('later'))).toEqual([{ inserted: true }]);
      });

      it('rejects a write with an unserializable value and applies none of it', async () => {
        const bad = store.write([
          { op: 'invocation.insert', row: inv('bigint') },
          { op: 'state.set', service: 's', key: 'k', name: 'n', value: { amount: 10n } },
        ]);
        const good = store.write([{ op: 'invocation.insert', row: inv('fine') }]);
        await expect(bad).rejects.toMatchObject({ code: 'write_failed' });
        await good;
        expect(await store.getInvocation('bigint')).toBeUndefined();
        expect(await store.getInvocation('fine')).toBeDefined();
      });

      it('stores a snapshot of the values passed, not later mutations', async () => {
        const value = { n: 1 };
        const p = store.write([{ op: 'state.set', service: 's', key: 'k', name: 'v', value }]);
        value.n = 2;
        await p;
        expect(await store.getState('s', 'k', 'v')).toEqual({ n: 1 });
      });

      it('commits many concurrent writes, each with its own results (group commit)', async () => {
        const n = 500;
        const writes = Array.from({ length: n }, (_, i) =>
          store.write([
            {
              op: 'invocation.insert',
              row: inv(`g${i}`, { dedupe: `gd${i % 250}`, status: 'suspended' }),
            },
            {
              op: 'journal.put',
              invocationId: `g${i}`,
              index: 0,
              entry: { kind: 'sleep', name: '', done: false },
            },
            {
              op: 'journal.complete',
              invocationId: `g${i}`,
              index: 0,
              entry: { kind: 'sleep', name: '', done: true },
            },
            { op: 'state.set', service: 'g', key: `k${i}`, name: 'i', value: i },
          ]),
        );
        const results = await Promise.all(writes);
        for (let i = 0; i < n; i++) {
          const first = i < 250;
          expect(results[i]![0]).toEqual(
            first
              ? { inserted: true }
              : { inserted: false, existing: expect.objectContaining({ id: `g${i - 250}` }) },
          );
          // A deduplicated insert leaves nothing to resume: the put entry has no owner.
          expect(results[i]![2]).toEqual({ completed: true, resumed: first });
        }
        expect(await store.listRunnable()).toHaveLength(250);
        for (let i = 0; i < n; i++) expect(await store.getState('g', `k${i}`, 'i')).toBe(i);
      });

      it('keeps the order of writes issued one after another without awaiting', async () => {
        const ps: Array<Promise<OpResult[]>> = [];
        for (let i = 0; i < 50; i++)
          ps.push(
            store.write([{ op: 'state.set', service: 's', key: 'k', name: 'last', value: i }]),
          );
        await Promise.all(ps);
        expect(await store.getState('s', 'k', 'last')).toBe(49);
      });
    });

    describe('owners', () => {
      it('round-trips an owner on insert and update, and clears it', async () => {
        await store.write([
          { op: 'invocation.insert', row: inv('o1', { owner: 'p1' }) },
          { op: 'invocation.insert', row: inv('o2') },
        ]);
        expect((await store.getInvocation('o1'))?.owner).toBe('p1');
        const none = await store.getInvocation('o2');
        expect(none !== undefined && 'owner' in none).toBe(false);
        await store.write([
          { op: 'invocation.update', id: 'o1', set: { owner: 'p2' } },
          { op: 'invocation.update', id: 'o2', set: { owner: 'p1', status: 'pending' } },
        ]);
        expect((await store.getInvocation('o1'))?.owner).toBe('p2');
        expect(await store.getInvocation('o2')).toMatchObject({ owner: 'p1', status: 'pending' });
        await store.write([{ op: 'invocation.update', id: 'o1', set: { owner: undefined } }]);
        const cleared = await store.getInvocation('o1');
        expect(cleared !== undefined && 'owner' in cleared).toBe(false);
        // The existing row a dedupe conflict answers with carries it too.
        await insert(inv('o3', { owner: 'p3', dedupe: 'o-d' }));
        expect(await insert(inv('o4', { dedupe: 'o-d' }))).toEqual([
          { inserted: false, existing: expect.objectContaining({ id: 'o3', owner: 'p3' }) },
        ]);
        expect((await store.listInvocations({}))[0]).toMatchObject({ id: 'o3', owner: 'p3' });
      });

      it('lists the runnable invocations of one owner, oldest first, or of everyone', async () => {
        const rows: Array<[string, string | undefined, InvocationRow['status']]> = [
          ['a1', 'p1', 'running'],
          ['b1', 'p2', 'running'],
          ['a2', 'p1', 'suspended'],
          ['n1', undefined, 'pending'],
          ['a3', 'p1', 'pending'],
          ['a4', 'p1', 'completed'],
          ['b2', 'p2', 'pending'],
          ['a5', 'p1', 'running'],
        ];
        await store.write(
          rows.map(([id, owner, status]) => ({
            op: 'invocation.insert' as const,
            row: inv(id, { status, ...(owner === undefined ? {} : { owner }) }),
          })),
        );
        const ids = async (owner?: string) => (await store.listRunnable(owner)).map((r) => r.id);
        expect(await ids('p1')).toEqual(['a1', 'a3', 'a5']);
        expect(await ids('p2')).toEqual(['b1', 'b2']);
        expect(await ids('p3')).toEqual([]);
        expect(await ids()).toEqual(['a1', 'b1', 'n1', 'a3', 'b2', 'a5']);
        expect((await store.listRunnable('p1'))[0]).toEqual({
          ...inv('a1', { owner: 'p1' }),
          seq: expect.any(Number),
        });
        // A change of owner moves it from one list to the other.
        await store.write([{ op: 'invocation.update', id: 'a3', set: { owner: 'p2' } }]);
        expect(await ids('p1')).toEqual(['a1', 'a5']);
        expect(await ids('p2')).toEqual(['b1', 'a3', 'b2']);
      });

      it('lists the due timers of one owner, earliest first, at most `limit`', async () => {
        await store.write([
          { op: 'invocation.insert', row: inv('t1', { owner: 'p1', status: 'suspended' }) },
          { op: 'invocation.insert', row: inv('t2', { owner: 'p2', status: 'suspended' }) },
          { op: 'invocation.insert', row: inv('t3', { status: 'scheduled' }) },
          { op: 'invocation.insert', row: inv('t4', { owner: 'p1', status: 'scheduled' }) },
          { op: 'timer.put', timer: { invocationId: 't1', index: 0, fireAt: 300 } },
          { op: 'timer.put', timer: { invocationId: 't1', index: 2, fireAt: 100 } },
          { op: 'timer.put', timer: { invocationId: 't2', index: 0, fireAt: 50 } },
          { op: 'timer.put', timer: { invocationId: 't3', index: -1, fireAt: 60 } },
          { op: 'timer.put', timer: { invocationId: 't4', index: -1, fireAt: 200 } },
          { op: 'timer.put', timer: { invocationId: 't4', index: 3, fireAt: 900 } },
        ]);
        expect(await store.dueTimers(500, 10, 'p1')).toEqual([
          { invocationId: 't1', index: 2, fireAt: 100 },
          { invocationId: 't4', index: -1, fireAt: 200 },
          { invocationId: 't1', index: 0, fireAt: 300 },
        ]);
        expect(await store.dueTimers(200, 1, 'p1')).toEqual([
          { invocationId: 't1', index: 2, fireAt: 100 },
        ]);
        expect(await store.dueTimers(500, 10, 'p2')).toEqual([
          { invocationId: 't2', index: 0, fireAt: 50 },
        ]);
        expect(await store.dueTimers(500, 10, 'p3')).toEqual([]);
        // Without an owner: every due timer, as before.
        expect((await store.dueTimers(500, 10)).map((t) => t.invocationId)).toEqual([
          't2',
          't3',
          't1',
          't4',
          't1',
        ]);
      });
    });

    describe('messages', () => {
      it('delivers a notify to the process it names, and a broadcast to every process', async () => {
        const p1 = await listen(store, 'p1');
        const p2 = await listen(store, 'p2');
        try {
          expect(
            await store.write([
              { op: 'notify', to: 'p1', message: { type: 'wake', invocationId: 'a' } },
              { op: 'notify', message: { type: 'done', invocationId: 'b' } },
              { op: 'notify', to: 'p3', message: { type: 'kill', invocationId: 'c' } },
              { op: 'notify', to: 'p2', message: { type: 'cancel', invocationId: 'd' } },
            ]),
          ).toEqual([undefined, undefined, undefined, undefined]);
          await sync(store, p1, p2);
          expect(byId(p1.got)).toEqual([
            { type: 'wake', invocationId: 'a' },
            { type: 'done', invocationId: 'b' },
          ]);
          expect(byId(p2.got)).toEqual([
            { type: 'done', invocationId: 'b' },
            { type: 'cancel', invocationId: 'd' },
          ]);
        } finally {
          await p1.stop();
          await p2.stop();
        }
      });

      it('sends the messages of calls that commit only, not of a call that fails', async () => {
        const p1 = await listen(store, 'p1');
        try {
          await insert(inv('taken'));
          // Issued together: the failing call is rolled back alone, the others commit.
          const settled = await Promise.allSettled([
            store.write([
              { op: 'notify', to: 'p1', message: { type: 'wake', invocationId: 'ok1' } },
            ]),
            store.write([
              { op: 'notify', to: 'p1', message: { type: 'wake', invocationId: 'lost' } },
              { op: 'notify', message: { type: 'done', invocationId: 'lost-too' } },
              { op: 'invocation.insert', row: inv('taken') },
            ]),
            store.write([{ op: 'notify', message: { type: 'done', invocationId: 'ok2' } }]),
          ]);
          expect(settled.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
          // Alone, too.
          await expect(
            store.write([
              { op: 'notify', to: 'p1', message: { type: 'wake', invocationId: 'lost-alone' } },
              { op: 'invocation.insert', row: inv('taken') },
            ]),
          ).rejects.toMatchObject({ code: 'write_failed' });
          await sync(store, p1);
          expect(byId(p1.got)).toEqual([
            { type: 'wake', invocationId: 'ok1' },
            { type: 'done', invocationId: 'ok2' },
          ]);
        } finally {
          await p1.stop();
        }
      });

      it('delivers nothing after unsubscribing', async () => {
        const p1 = await listen(store, 'p1');
        const other = await listen(store, 'p2');
        try {
          await p1.stop();
          await store.write([
            { op: 'notify', to: 'p1', message: { type: 'wake', invocationId: 'late' } },
            { op: 'notify', message: { type: 'done', invocationId: 'late-all' } },
          ]);
          await sync(store, other);
          expect(p1.got).toEqual([]);
          expect(other.got).toEqual([{ type: 'done', invocationId: 'late-all' }]);
        } finally {
          await other.stop();
        }
      });

      it('refuses a message longer than 7999 bytes of JSON, and applies none of the write', async () => {
        await expect(
          store.write([
            { op: 'invocation.insert', row: inv('with-long') },
            { op: 'notify', message: { type: 'wake', invocationId: 'x'.repeat(8000) } },
          ]),
        ).rejects.toMatchObject({ code: 'write_failed' });
        expect(await store.getInvocation('with-long')).toBeUndefined();
      });

      it('wakes the owner of an entry completed by another process, and says who owns it', async () => {
        const p1 = await listen(store, 'p1');
        const p2 = await listen(store, 'p2');
        try {
          const sleeping = { kind: 'sleep', name: '', done: false } as const;
          const fired = { kind: 'sleep', name: '', done: true } as const;
          await store.write([
            { op: 'invocation.insert', row: inv('a', { owner: 'p1', status: 'suspended' }) },
            { op: 'invocation.insert', row: inv('b', { owner: 'p1', status: 'running' }) },
            { op: 'invocation.insert', row: inv('c', { status: 'suspended' }) },
            { op: 'journal.put', invocationId: 'a', index: 0, entry: sleeping },
            { op: 'journal.put', invocationId: 'a', index: 1, entry: sleeping },
            { op: 'journal.put', invocationId: 'b', index: 0, entry: sleeping },
            { op: 'journal.put', invocationId: 'b', index: 1, entry: sleeping },
            { op: 'journal.put', invocationId: 'c', index: 0, entry: sleeping },
          ]);
          const complete = (invocationId: string, index: number, notifyFrom?: string): WriteOp => ({
            op: 'journal.complete',
            invocationId,
            index,
            entry: fired,
            ...(notifyFrom === undefined ? {} : { notifyFrom }),
          });
          expect(
            await store.write([
              complete('a', 0, 'p2'), // woken
              complete('b', 0, 'p2'), // woken, not resumed (running)
              complete('a', 1, 'p1'), // its own process: no message
              complete('c', 0, 'p2'), // no owner: no message
              complete('a', 0, 'p2'), // already done: nothing
              complete('b', 1), // no notifyFrom: no message
              complete('gone', 0, 'p2'), // no such invocation
            ]),
          ).toEqual([
            { completed: true, resumed: true, owner: 'p1' },
            { completed: true, resumed: false, owner: 'p1' },
            { completed: true, resumed: false, owner: 'p1' },
            { completed: true, resumed: true },
            { completed: false, resumed: false },
            { completed: true, resumed: false, owner: 'p1' },
            { completed: false, resumed: false },
          ]);
          await sync(store, p1, p2);
          expect(byId(p1.got)).toEqual([
            { type: 'wake', invocationId: 'a' },
            { type: 'wake', invocationId: 'b' },
          ]);
          expect(p2.got).toEqual([]);
          // A completion recorded before its entry exists wakes the owner too.
          await insert(inv('early', { owner: 'p1', status: 'running' }));
          expect(await store.write([complete('early', 0, 'p2')])).toEqual([
            { completed: true, resumed: false, owner: 'p1' },
          ]);
          await sync(store, p1);
          expect(byId(p1.got).map((m) => messageSubject(m))).toEqual(['a', 'b', 'early']);
        } finally {
          await p1.stop();
          await p2.stop();
        }
      });

      it('wakes the owners of promise waiters completed by another process, once per invocation', async () => {
        const p1 = await listen(store, 'p1');
        const p2 = await listen(store, 'p2');
        try {
          const wait = (invocationId: string, index: number): WriteOp => ({
            op: 'promise.await',
            service: 'Wf',
            key: 'k',
            name: 'p',
            invocationId,
            index,
            entry: { kind: 'promise', name: 'p', done: false },
          });
          await store.write([
            { op: 'invocation.insert', row: inv('w1', { owner: 'p1', status: 'suspended' }) },
            { op: 'invocation.insert', row: inv('w2', { owner: 'p2', status: 'suspended' }) },
            { op: 'invocation.insert', row: inv('w3', { status: 'running' }) },
            { op: 'invocation.insert', row: inv('w4', { owner: 'p1', status: 'running' }) },
            wait('w1', 0),
            wait('w1', 1),
            wait('w2', 0),
            wait('w3', 0),
            wait('w4', 2),
          ]);
          const [res] = await store.write([
            {
              op: 'promise.complete',
              service: 'Wf',
              key: 'k',
              name: 'p',
              value: 1,
              notifyFrom: 'p2',
            },
          ]);
          const r = res as { completed: boolean; waiters: PromiseWaiter[] };
          expect(r.completed).toBe(true);
          expect(sortWaiters(r.waiters)).toEqual([
            { invocationId: 'w1', index: 0, owner: 'p1', resumed: true },
            { invocationId: 'w1', index: 1, owner: 'p1', resumed: false },
            { invocationId: 'w2', index: 0, owner: 'p2', resumed: true },
            { invocationId: 'w3', index: 0, resumed: false },
            { invocationId: 'w4', index: 2, owner: 'p1', resumed: false },
          ]);
          await sync(store, p1, p2);
          expect(byId(p1.got)).toEqual([
            { type: 'wake', invocationId: 'w1' },
            { type: 'wake', invocationId: 'w4' },
          ]);
          expect(p2.got).toEqual([]);
          // Without notifyFrom: owners in the result, no messages.
          await store.write([{ ...wait('w4', 3), name: 'q' } as WriteOp]);
          expect(
            await store.write([
              { op: 'promise.complete', service: 'Wf', key: 'k', name: 'q', value: 2 },
            ]),
          ).toEqual([
            {
              completed: true,
              waiters: [{ invocationId: 'w4', index: 3, owner: 'p1', resumed: false }],
            },
          ]);
          await sync(store, p1);
          expect(byId(p1.got).map((m) => messageSubject(m))).toEqual(['w1', 'w4']);
        } finally {
          await p1.stop();
          await p2.stop();
        }
      });
    });

    describe('processes', () => {
      it('registers processes, extends leases, and reaps expired ones with their unfinished invocations', async () => {
        await store.write([
          { op: 'process.register', id: 'p1', leaseUntil: 100 },
          { op: 'process.register', id: 'p2', leaseUntil: 200 },
          { op: 'process.register', id: 'p3', leaseUntil: 50 },
          { op: 'process.register', id: 'p4', leaseUntil: 10 },
        ]);
        const statuses: Array<InvocationRow['status']> = [
          'running',
          'suspended',
          'pending',
          'scheduled',
          'backing-off',
          'paused',
          'completed',
          'failed',
        ];
        await store.write([
          ...statuses.map((status, i) => ({
            op: 'invocation.insert' as const,
            row: inv(`d${i}`, { owner: 'p3', status }),
          })),
          { op: 'invocation.insert', row: inv('live', { owner: 'p2', status: 'running' }) },
          { op: 'invocation.insert', row: inv('mine', { owner: 'p1', status: 'running' }) },
          { op: 'invocation.insert', row: inv('nobody', { status: 'running' }) },
          { op: 'invocation.insert', row: inv('p4-done', { owner: 'p4', status: 'completed' }) },
        ]);
        expect(
          await store.write([
            { op: 'process.heartbeat', id: 'p2', leaseUntil: 300 },
            { op: 'process.heartbeat', id: 'p2', leaseUntil: 250 },
          ]),
        ).toEqual([{ alive: true }, { alive: true }]);
        // p1's own lease ended too, but a process never reaps itself. p2's is at 300: an older
        // renewal committing after a newer one (a batch a dead connection's backend still ran)
        // never shortens a lease the process counts on.
        const [reap] = await store.write([{ op: 'process.reap', now: 150, by: 'p1' }]);
        expect(reap).toEqual({
          reaped: ['p3', 'p4'],
          invocations: ['d0', 'd1', 'd2', 'd3', 'd4', 'd5'],
        });
        for (let i = 0; i < statuses.length; i++)
          expect((await store.getInvocation(`d${i}`))?.owner, statuses[i]).toBe(
            i < 6 ? 'p1' : 'p3',
          );
        expect((await store.getInvocation('live'))?.owner).toBe('p2');
        expect((await store.getInvocation('mine'))?.owner).toBe('p1');
        expect((await store.getInvocation('p4-done'))?.owner).toBe('p4');
        const nobody = await store.getInvocation('nobody');
        expect(nobody !== undefined && 'owner' in nobody).toBe(false);
        expect((await store.listRunnable('p1')).map((r) => r.id)).toEqual(['d0', 'd2', 'mine']);
        // Nothing left to reap, at the same time or later, until p2's lease ends.
        expect(await store.write([{ op: 'process.reap', now: 150, by: 'p1' }])).toEqual([
          { reaped: [], invocations: [] },
        ]);
        expect(await store.write([{ op: 'process.reap', now: 300, by: 'p1' }])).toEqual([
          { reaped: [], invocations: [] },
        ]);
        expect(await store.write([{ op: 'process.reap', now: 301, by: 'p1' }])).toEqual([
          { reaped: ['p2'], invocations: ['live'] },
        ]);
      });

      it('unregisters a leaving process at once, whatever its lease; the next reap adopts its invocations', async () => {
        await store.write([
          { op: 'process.register', id: 'stays', leaseUntil: 1000 },
          { op: 'process.register', id: 'leaves', leaseUntil: 1000 },
          { op: 'invocation.insert', row: inv('l-run', { owner: 'leaves', status: 'running' }) },
          { op: 'invocation.insert', row: inv('l-wait', { owner: 'leaves', status: 'suspended' }) },
          { op: 'invocation.insert', row: inv('l-done', { owner: 'leaves', status: 'completed' }) },
        ]);
        // Its lease runs to 1000: a reap at 10 takes nothing of it.
        expect(await store.write([{ op: 'process.reap', now: 10, by: 'stays' }])).toEqual([
          { reaped: [], invocations: [] },
        ]);
        // Leaving twice, or a process never registered, is no error.
        expect(
          await store.write([
            { op: 'process.leave', id: 'leaves' },
            { op: 'process.leave', id: 'leaves' },
            { op: 'process.leave', id: 'never' },
          ]),
        ).toEqual([undefined, undefined, undefined]);
        expect(
          await store.write([{ op: 'process.heartbeat', id: 'leaves', leaseUntil: 2000 }]),
        ).toEqual([{ alive: false }]);
        expect(await store.write([{ op: 'process.reap', now: 10, by: 'stays' }])).toEqual([
          { reaped: ['leaves'], invocations: ['l-run', 'l-wait'] },
        ]);
        expect((await store.getInvocation('l-wait'))?.owner).toBe('stays');
        expect((await store.getInvocation('l-done'))?.owner).toBe('leaves');
        // The one that stays is still registered: its heartbeat finds it.
        expect(
          await store.write([{ op: 'process.heartbeat', id: 'stays', leaseUntil: 1100 }]),
        ).toEqual([{ alive: true }]);
      });

      it('does not bring a reaped process back on heartbeat; registering again does', async () => {
        await store.write([
          { op: 'process.register', id: 'old', leaseUntil: 10 },
          { op: 'process.register', id: 'me', leaseUntil: 1000 },
        ]);
        expect(await store.write([{ op: 'process.reap', now: 20, by: 'me' }])).toEqual([
          { reaped: ['old'], invocations: [] },
        ]);
        expect(
          await store.write([
            { op: 'process.heartbeat', id: 'old', leaseUntil: 100 },
            { op: 'process.heartbeat', id: 'never', leaseUntil: 100 },
          ]),
        ).toEqual([{ alive: false }, { alive: false }]);
        // Still gone: a heartbeat does not re-create it.
        expect(
          await store.write([{ op: 'process.heartbeat', id: 'old', leaseUntil: 100 }]),
        ).toEqual([{ alive: false }]);
        await store.write([{ op: 'process.register', id: 'old', leaseUntil: 30 }]);
        expect(
          await store.write([
            { op: 'process.heartbeat', id: 'old', leaseUntil: 40 },
            { op: 'process.reap', now: 35, by: 'me' },
            { op: 'process.register', id: 'old', leaseUntil: 20 },
            { op: 'process.reap', now: 35, by: 'me' },
          ]),
        ).toEqual([
          { alive: true },
          { reaped: [], invocations: [] },
          undefined,
          { reaped: ['old'], invocations: [] },
        ]);
      });
    });

    describe('orphans and suspension', () => {
      it('adopts the unfinished invocations of owners that are not registered, with their keys', async () => {
        await store.write([
          { op: 'process.register', id: 'me', leaseUntil: 1000 },
          { op: 'process.register', id: 'alive', leaseUntil: 1000 },
          // A holder of an object key and one queued behind it, written under an id nobody
          // registered (or that was reaped before the write committed).
          {
            op: 'invocation.insert',
            row: inv('held', {
              owner: 'ghost',
              status: 'running',
              service: 'Obj',
              key: 'k',
              exclusive: true,
            }),
          },
          acquire('k', 'held'),
          queued('behind', { owner: 'ghost' }),
          {
            op: 'invocation.insert',
            row: inv('sleeping', { owner: 'ghost', status: 'suspended' }),
          },
          { op: 'invocation.insert', row: inv('done', { owner: 'ghost', status: 'completed' }) },
          { op: 'invocation.insert', row: inv('theirs', { owner: 'alive', status: 'running' }) },
          { op: 'invocation.insert', row: inv('gone', { owner: 'zombie', status: 'failed' }) },
        ]);
        expect(await store.write([{ op: 'process.reap', now: 10, by: 'me' }])).toEqual([
          { reaped: ['ghost'], invocations: ['held', 'behind', 'sleeping'] },
        ]);
        for (const id of ['held', 'behind', 'sleeping'])
          expect((await store.getInvocation(id))?.owner, id).toBe('me');
        expect((await store.getInvocation('done'))?.owner).toBe('ghost');
        expect((await store.getInvocation('theirs'))?.owner).toBe('alive');
        // The key stays with its holder, and is handed on by the adopter.
        expect(await store.write([release('k', 'held', 'me')])).toEqual([
          { next: expect.objectContaining({ id: 'behind', owner: 'me' }) },
        ]);
        expect(await store.write([{ op: 'process.reap', now: 10, by: 'me' }])).toEqual([
          { reaped: [], invocations: [] },
        ]);
      });

      it('suspends a running invocation unless an entry it waits for is already done', async () => {
        const entry = (done: boolean): JournalEntry => ({ kind: 'sleep', name: '', done });
        await store.write([
          { op: 'invocation.insert', row: inv('a', { status: 'running' }) },
          { op: 'journal.put', invocationId: 'a', index: 0, entry: entry(true) },
          { op: 'journal.put', invocationId: 'a', index: 1, entry: entry(false) },
          { op: 'journal.put', invocationId: 'a', index: 2, entry: entry(false) },
          { op: 'invocation.insert', row: inv('b', { status: 'running' }) },
          { op: 'journal.put', invocationId: 'b', index: 0, entry: entry(false) },
          { op: 'invocation.insert', row: inv('c', { status: 'completed' }) },
        ]);
        // Waits for 1 and 2, neither done (a done entry it does not wait for does not count).
        expect(
          await store.write([
            { op: 'invocation.suspend', id: 'a', waitingFor: [1, 2], modifiedAt: 50 },
          ]),
        ).toEqual([{ suspended: true }]);
        expect(await store.getInvocation('a')).toMatchObject({
          status: 'suspended',
          modifiedAt: 50,
        });
        // A completion committed before the suspension: it stays running.
        await store.write([
          {
            op: 'journal.complete',
            invocationId: 'b',
            index: 0,
            entry: { kind: 'sleep', name: '', done: true },
          },
        ]);
        expect(
          await store.write([
            { op: 'invocation.suspend', id: 'b', waitingFor: [0], modifiedAt: 60 },
            { op: 'invocation.suspend', id: 'c', waitingFor: [], modifiedAt: 60 },
            { op: 'invocation.suspend', id: 'nope', waitingFor: [0], modifiedAt: 60 },
          ]),
        ).toEqual([{ suspended: false }, { suspended: false }, { suspended: false }]);
        expect((await store.getInvocation('b'))?.status).toBe('running');
        expect((await store.getInvocation('c'))?.status).toBe('completed');
      });
    });

    describe('object keys', () => {
      it('takes a free key, again for its holder, and not for another invocation', async () => {
        expect(
          await store.write([acquire('k', 'a'), acquire('k', 'a'), acquire('k', 'b')]),
        ).toEqual([
          { acquired: true, holder: 'a' },
          { acquired: true, holder: 'a' },
          { acquired: false, holder: 'a' },
        ]);
        // Keys of other objects and other services are apart.
        expect(
          await store.write([acquire('k2', 'b'), acquire('k', 'c', 'Other'), acquire('k', 'd')]),
        ).toEqual([
          { acquired: true, holder: 'b' },
          { acquired: true, holder: 'c' },
          { acquired: false, holder: 'a' },
        ]);
      });

      it('inserts with the key: running when it was free, pending behind a holder, and a dedupe loser takes nothing', async () => {
        const insertTaking = (id: string, over: Partial<InvocationRow> = {}): WriteOp => ({
          ...(queued(id, over) as Extract<WriteOp, { op: 'invocation.insert' }>),
          acquireKey: true,
        });
        expect(
          await store.write([insertTaking('a', { dedupe: 'run-a' }), insertTaking('b')]),
        ).toEqual([
          { inserted: true, acquired: true },
          { inserted: true, acquired: false },
        ]);
        expect((await store.getInvocation('a'))?.status).toBe('running');
        expect((await store.getInvocation('b'))?.status).toBe('pending');
        expect(await store.write([acquire('k', 'zz')])).toEqual([{ acquired: false, holder: 'a' }]);
        // A duplicate of a's dedupe key on a free key: answered with a, and the key stays free.
        const [dup] = await store.write([insertTaking('c', { key: 'k3', dedupe: 'run-a' })]);
        expect(dup).toMatchObject({ inserted: false, existing: { id: 'a' } });
        expect(await store.getInvocation('c')).toBeUndefined();
        expect(await store.write([acquire('k3', 'd')])).toEqual([{ acquired: true, holder: 'd' }]);
        // The release hands the key on to b, queued by the insert.
        const [released] = await store.write([release('k', 'a', 'p9')]);
        expect((released as { next?: InvocationRow }).next).toMatchObject({ id: 'b', owner: 'p9' });
      });

      it('hands a released key to the oldest pending exclusive invocation of that key, which the releaser then owns', async () => {
        await store.write([
          queued('h', { status: 'running', owner: 'p1' }),
          acquire('k', 'h'),
          queued('s', { status: 'suspended' }), // not pending
          queued('x1', { owner: 'p2' }),
          queued('shared', { exclusive: false }), // not exclusive
          queued('other', { key: 'k2' }), // another key
          queued('svc', { service: 'Svc2' }), // another service
          queued('x2', { owner: 'p1' }),
          queued('x3'),
        ]);
        // Only the holder releases.
        expect(await store.write([release('k', 'x1', 'p3'), acquire('k', 'x1')])).toEqual([
          {},
          { acquired: false, holder: 'h' },
        ]);
        await store.write([{ op: 'invocation.update', id: 'h', set: { status: 'completed' } }]);
        const [first] = await store.write([release('k', 'h', 'p3')]);
        const x1 = (first as { next: InvocationRow }).next;
        // Started by the hand-off itself: a decision that expects x1 pending (a cancel, a
        // pause) finds it changed, rather than ending an invocation that runs.
        expect(x1).toEqual({
          ...inv('x1', { service: 'Obj', key: 'k', exclusive: true, status: 'running' }),
          owner: 'p3',
          seq: expect.any(Number),
        });
        expect(await store.getInvocation('x1')).toEqual(x1);
        expect(await store.write([acquire('k', 'x2'), acquire('k', 'x1')])).toEqual([
          { acquired: false, holder: 'x1' },
          { acquired: true, holder: 'x1' },
        ]);
        // In seq order; each handoff sets the new holder's owner.
        await store.write([{ op: 'invocation.update', id: 'x1', set: { status: 'completed' } }]);
        const [second] = await store.write([release('k', 'x1', 'p4')]);
        expect((second as { next: InvocationRow }).next).toMatchObject({ id: 'x2', owner: 'p4' });
        await store.write([{ op: 'invocation.update', id: 'x2', set: { status: 'running' } }]);
        const [third] = await store.write([release('k', 'x2', 'p1')]);
        expect((third as { next: InvocationRow }).next).toMatchObject({
          id: 'x3',
          owner: 'p1',
          status: 'running',
        });
        expect((await store.getInvocation('x3'))?.status).toBe('running');
        // Nobody pending: the key is free.
        await store.write([{ op: 'invocation.update', id: 'x3', set: { status: 'failed' } }]);
        expect(await store.write([release('k', 'x3', 'p1'), acquire('k', 'new')])).toEqual([
          {},
          { acquired: true, holder: 'new' },
        ]);
        // The others were left alone.
        expect((await store.getInvocation('s'))?.status).toBe('suspended');
        expect(await store.getInvocation('shared')).not.toHaveProperty('owner');
        expect(await store.getInvocation('other')).not.toHaveProperty('owner');
        expect(await store.getInvocation('svc')).not.toHaveProperty('owner');
      });

      it('hands on a key after a release and an acquire in the same write, in order', async () => {
        expect(
          await store.write([
            acquire('k', 'a'),
            queued('b'),
            acquire('k', 'b'),
            release('k', 'a', 'p1'),
            acquire('k', 'b'),
          ]),
        ).toEqual([
          { acquired: true, holder: 'a' },
          { inserted: true },
          { acquired: false, holder: 'a' },
          { next: expect.objectContaining({ id: 'b', owner: 'p1' }) },
          { acquired: true, holder: 'b' },
        ]);
      });

      it('never gives a free key to an invocation that has finished (a late acquire)', async () => {
        // The acquire was sent while x was pending (a sweep, a takeover); meanwhile x got the
        // key from a release, ran, finished and released it. Taking the key now would hold it
        // for a finished invocation, which nothing ever releases: the queue behind it stalls.
        await store.write([
          queued('x', { status: 'completed', owner: 'p1' }),
          queued('y', { status: 'failed', owner: 'p1' }),
          queued('z', { owner: 'p2' }),
        ]);
        expect(await store.write([acquire('k', 'x'), acquire('k', 'y')])).toEqual([
          { acquired: false },
          { acquired: false },
        ]);
        // The key stayed free: the next in line takes it, and is started by it.
        expect(await store.write([acquire('k', 'z')])).toEqual([
          { acquired: true, holder: 'z', started: true },
        ]);
        expect((await store.getInvocation('z'))?.status).toBe('running');
      });

      it('frees a key its finished holder acquires again (a repeated acquire)', async () => {
        // x took the key, then finished without its release being written (a lost write); an
        // acquire repeated for x must not keep the key held for a finished invocation.
        await store.write([queued('x', { status: 'running', owner: 'p1' }), acquire('k', 'x')]);
        await store.write([
          { op: 'invocation.update', id: 'x', set: { status: 'completed', modifiedAt: 2 } },
        ]);
        expect(await store.write([acquire('k', 'x')])).toEqual([{ acquired: false }]);
        await store.write([queued('z', { owner: 'p2' })]);
        expect(await store.write([acquire('k', 'z')])).toEqual([
          { acquired: true, holder: 'z', started: true },
        ]);
        // Repeated, it starts nothing: z runs already.
        expect(await store.write([acquire('k', 'z')])).toEqual([{ acquired: true, holder: 'z' }]);
      });

      it('drops the key of a deleted holder, and only of a holder', async () => {
        await store.write([
          queued('a', { status: 'running' }),
          queued('b'),
          acquire('k', 'a'),
          { op: 'invocation.delete', id: 'b' },
        ]);
        expect(await store.write([acquire('k', 'c')])).toEqual([{ acquired: false, holder: 'a' }]);
        await store.write([{ op: 'invocation.delete', id: 'a' }]);
        expect(await store.write([acquire('k', 'c')])).toEqual([{ acquired: true, holder: 'c' }]);
        // A release by the deleted holder changes nothing.
        expect(await store.write([release('k', 'a', 'p1'), acquire('k', 'd')])).toEqual([
          {},
          { acquired: false, holder: 'c' },
        ]);
      });
    });

    describe('several processes (shared stores only)', () => {
      const reason = 'not a shared store: one process owns it, nobody else to race or to tell';

      it('delivers a message another store sends, once its write committed', async (t) => {
        t.skip(!store.shared || !h.another, reason);
        const other = await h.another!();
        const p1 = await listen(store, 'p1');
        const seen: Array<Promise<InvocationRow | undefined>> = [];
        const unsubscribe = await store.listen('p1', (m) => {
          // Read at once: the write that sent it must be visible already.
          seen.push(store.getInvocation(messageSubject(m)));
        });
        try {
          await other.write([
            { op: 'invocation.insert', row: inv('x', { owner: 'p1', status: 'suspended' }) },
            {
              op: 'journal.put',
              invocationId: 'x',
              index: 0,
              entry: { kind: 'sleep', name: '', done: false },
            },
            { op: 'notify', to: 'p1', message: { type: 'wake', invocationId: 'x' } },
          ]);
          expect(
            await other.write([
              {
                op: 'journal.complete',
                invocationId: 'x',
                index: 0,
                entry: { kind: 'sleep', name: '', done: true },
                notifyFrom: 'p2',
              },
            ]),
          ).toEqual([{ completed: true, resumed: true, owner: 'p1' }]);
          await sync(other, p1);
          expect(p1.got).toEqual([
            { type: 'wake', invocationId: 'x' },
            { type: 'wake', invocationId: 'x' },
          ]);
          await until(() => seen.length >= 2);
          expect((await Promise.all(seen)).slice(0, 2).map((r) => r?.id)).toEqual(['x', 'x']);
        } finally {
          await unsubscribe();
          await p1.stop();
        }
      });

      it('refuses every write of a process once another reaped it, until it registers anew', async (t) => {
        t.skip(!store.shared || !h.another || !store.fenceWrites, reason);
        const other = await h.another!();
        const fenced: string[] = [];
        store.fenceWrites!('p1', (id) => fenced.push(id));
        await store.write([{ op: 'process.register', id: 'p1', leaseUntil: 10 }]);
        await store.write([{ op: 'invocation.insert', row: inv('before', { owner: 'p1' }) }]);
        await other.write([{ op: 'process.register', id: 'p2', leaseUntil: 1e15 }]);
        expect(await other.write([{ op: 'process.reap', now: 20, by: 'p2' }])).toEqual([
          { reaped: ['p1'], invocations: ['before'] },
        ]);
        // The stalled process wakes up and writes under its old id: nothing commits.
        const refused = await Promise.allSettled([
          store.write([{ op: 'invocation.insert', row: inv('after', { owner: 'p1' }) }]),
          store.write([{ op: 'invocation.update', id: 'before', set: { status: 'completed' } }]),
          store.write([{ op: 'process.heartbeat', id: 'p1', leaseUntil: 1e15 }]),
        ]);
        for (const r of refused)
          expect(r).toMatchObject({ status: 'rejected', reason: { code: 'process_fenced' } });
        expect(fenced[0]).toBe('p1');
        expect(await other.getInvocation('after')).toBeUndefined();
        expect(await other.getInvocation('before')).toMatchObject({
          status: 'running',
          owner: 'p2',
        });
        // It joins again under a new id, and writes under that one.
        store.fenceWrites!('p1b', (id) => fenced.push(id));
        await store.write([{ op: 'process.register', id: 'p1b', leaseUntil: 1e15 }]);
        await store.write([{ op: 'invocation.insert', row: inv('again', { owner: 'p1b' }) }]);
        expect((await other.getInvocation('again'))?.owner).toBe('p1b');
      });

      it('reaps each expired process exactly once when two stores reap at once', async (t) => {
        t.skip(!store.shared || !h.another, reason);
        const other = await h.another!();
        for (let round = 0; round < 10; round++) {
          const dead = Array.from({ length: 20 }, (_, i) => `r${round}-p${i}`);
          await store.write([
            ...dead.map((id) => ({ op: 'process.register' as const, id, leaseUntil: 10 })),
            { op: 'process.register', id: `r${round}-a`, leaseUntil: 1000 },
            { op: 'process.register', id: `r${round}-b`, leaseUntil: 1000 },
            ...dead.flatMap((owner) =>
              [0, 1].map((j) => ({
                op: 'invocation.insert' as const,
                row: inv(`${owner}-i${j}`, { owner, status: 'suspended' }),
              })),
            ),
          ]);
          type Reaped = { reaped: string[]; invocations: string[] };
          const [[ra], [rb]] = await Promise.all([
            store.write([{ op: 'process.reap', now: 20, by: `r${round}-a` }]),
            other.write([{ op: 'process.reap', now: 20, by: `r${round}-b` }]),
          ]);
          const a = ra as Reaped;
          const b = rb as Reaped;
          expect([...a.reaped, ...b.reaped].sort()).toEqual([...dead].sort());
          expect(a.reaped.filter((id) => b.reaped.includes(id))).toEqual([]);
          for (const [mine, by] of [
            [a, `r${round}-a`],
            [b, `r${round}-b`],
          ] as const) {
            expect([...mine.invocations].sort()).toEqual(
              mine.reaped.flatMap((p) => [`${p}-i0`, `${p}-i1`]).sort(),
            );
            for (const id of mine.invocations)
              expect((await store.getInvocation(id))?.owner).toBe(by);
          }
        }
      });

      it('never leaves a pending invocation without a holder when acquires race releases', async (t) => {
        t.skip(!store.shared || !h.another, reason);
        const other = await h.another!();
        // Each round, store 1 queues an invocation on the key (insert + acquire in one write,
        // as the engine does) while store 2 finishes the holder and releases the key, at once,
        // with nobody else waiting. Whatever the interleaving, the new invocation must come out
        // holding the key: acquired, or handed the key by the release. Otherwise it was left
        // pending with nobody to hand it on (the release missed it, its acquire saw the key held).
        await store.write([queued('h', { status: 'running' }), acquire('k', 'h')]);
        let holder = 'h';
        let handedOn = 0;
        for (let round = 0; round < 300; round++) {
          const id = `r${round}`;
          const [[, acquired], [, released]] = await Promise.all([
            store.write([queued(id, { owner: 'p1' }), acquire('k', id)]),
            other.write([
              { op: 'invocation.update', id: holder, set: { status: 'completed' } },
              release('k', holder, 'p2'),
            ]),
          ]);
          const next = (released as { next?: InvocationRow }).next;
          const took = (acquired as { acquired: boolean }).acquired;
          expect({ took, next: next?.id }, `round ${round}`).toEqual(
            took ? { took: true, next: undefined } : { took: false, next: id },
          );
          if (next) handedOn++;
          holder = id;
          await store.write([{ op: 'invocation.update', id, set: { status: 'running' } }]);
        }
        // Both orders happened (else the test raced nothing).
        expect(handedOn).toBeGreaterThan(0);
        expect(handedOn).toBeLessThan(300);
        const [, last] = await other.write([
          { op: 'invocation.update', id: holder, set: { status: 'completed' } },
          release('k', holder, 'p2'),
        ]);
        expect(last).toEqual({});
        expect(await store.listRunnable()).toEqual([]);
        expect(await store.write([acquire('k', 'probe')])).toEqual([
          { acquired: true, holder: 'probe' },
        ]);
      });

      it('lets a completion racing a takeover wake the new owner, or be seen by it', async (t) => {
        t.skip(!store.shared || !h.another, reason);
        const other = await h.another!();
        // Store 2 is the reaper "r": once it took an invocation over, it reads its journal. A
        // completion committed concurrently by store 1 must then be in what it read, or wake it.
        const inbox = await listen(other, 'r');
        try {
          await store.write([{ op: 'process.register', id: 'r', leaseUntil: 1e15 }]);
          let woken = 0;
          const rounds = 250;
          for (let round = 0; round < rounds; round++) {
            const dead = `dead${round}`;
            const id = `c${round}`;
            await store.write([
              { op: 'process.register', id: dead, leaseUntil: 10 },
              { op: 'invocation.insert', row: inv(id, { owner: dead, status: 'running' }) },
              {
                op: 'journal.put',
                invocationId: id,
                index: 0,
                entry: { kind: 'call', name: 'x', done: false },
              },
            ]);
            const [[completed], seen] = await Promise.all([
              store.write([
                {
                  op: 'journal.complete',
                  invocationId: id,
                  index: 0,
                  entry: { kind: 'call', name: 'x', done: true, value: round },
                  notifyFrom: 'c',
                },
              ]),
              other.write([{ op: 'process.reap', now: 20, by: 'r' }]).then(async ([first]) => {
                let reaped = first as { reaped: string[]; invocations: string[] };
                expect(reaped.reaped).toEqual([dead]);
                // A reaper skips an invocation a concurrent write holds (never waits for it, so
                // never deadlocks with it); its next reap adopts it, unregistered owner and all.
                while (reaped.invocations.length === 0) {
                  [reaped] = (await other.write([{ op: 'process.reap', now: 20, by: 'r' }])) as [
                    typeof reaped,
                  ];
                }
                expect(reaped).toEqual({ reaped: [dead], invocations: [id] });
                return (await other.getJournal(id))[0]![1].done;
              }),
            ]);
            await sync(store, inbox);
            const woke = inbox.got.some((m) => messageSubject(m) === id);
            const owner = (completed as { owner?: string }).owner;
            expect({ seen, woke, owner }, `round ${round}`).toEqual(
              owner === 'r'
                ? { seen, woke: true, owner }
                : { seen: true, woke: false, owner: dead },
            );
            if (woke) woken++;
          }
          // Both orders happened (else the test raced nothing).
          expect(woken).toBeGreaterThan(0);
          expect(woken).toBeLessThan(rounds);
        } finally {
          await inbox.stop();
        }
      });
    });

    kvConformance(() => ({ store, h }));
    queueConformance(() => ({ store, h }));
    payloadConformance(() => ({ store, h }));

    describe('lifecycle', () => {
      it('rejects writes after close with code store_closed, and close is idempotent', async () => {
        await store.close();
        await expect(
          store.write([{ op: 'invocation.insert', row: inv('late') }]),
        ).rejects.toMatchObject({ code: 'store_closed' });
        await expect(store.write([])).rejects.toMatchObject({ code: 'store_closed' });
        await expect(store.getInvocation('late')).rejects.toMatchObject({ code: 'store_closed' });
        await store.close();
      });

      it('finishes writes accepted before close', async (t) => {
        t.skip(!h.reopen, 'this adapter does not persist across instances');
        const pending = store.write([{ op: 'invocation.insert', row: inv('in-flight') }]);
        const closed = store.close();
        expect(await pending).toEqual([{ inserted: true }]);
        await closed;
        const again = await h.reopen!();
        expect(await again.getInvocation('in-flight')).toBeDefined();
      });

      it('keeps everything across close and reopen', async (t) => {
        t.skip(!h.reopen, 'this adapter does not persist across instances');
        const row = inv('dur', {
          status: 'suspended',
          key: 'k',
          exclusive: true,
          dedupe: 'dur-d',
          input: { x: [1, null] },
          runAt: 5,
        });
        await store.write([
          { op: 'invocation.insert', row },
          {
            op: 'journal.put',
            invocationId: 'dur',
            index: 0,
            entry: { kind: 'run', name: 'a', done: true, value: null },
          },
          {
            op: 'journal.put',
            invocationId: 'dur',
            index: 1,
            entry: { kind: 'sleep', name: '', done: false, wakeAt: 9 },
          },
          { op: 'state.set', service: 'svc', key: 'k', name: 'n', value: { deep: true } },
          { op: 'timer.put', timer: { invocationId: 'dur', index: 1, fireAt: 9 } },
        ]);
        const many = Array.from({ length: 300 }, (_, i) =>
          store.write([{ op: 'invocation.insert', row: inv(`m${i}`) }]),
        );
        await Promise.all(many);
        const seq = (await store.getInvocation('dur'))?.seq;
        await store.close();

        const again = await h.reopen!();
        expect(await again.getInvocation('dur')).toEqual({ ...row, seq });
        expect(await again.findByDedupe('dur-d')).toMatchObject({ id: 'dur' });
        expect(await again.getJournal('dur')).toEqual([
          [0, { kind: 'run', name: 'a', done: true, value: null }],
          [1, { kind: 'sleep', name: '', done: false, wakeAt: 9 }],
        ]);
        expect(await again.getState('svc', 'k', 'n')).toEqual({ deep: true });
        expect(await again.dueTimers(10, 10)).toEqual([
          { invocationId: 'dur', index: 1, fireAt: 9 },
        ]);
        expect(await again.listInvocations({ limit: 1000 })).toHaveLength(301);
        // Arrival order continues after a reopen.
        await again.write([{ op: 'invocation.insert', row: inv('next') }]);
        expect((await again.getInvocation('next'))!.seq!).toBeGreaterThan(
          (await again.getInvocation('m299'))!.seq!,
        );
      });
    });
  });
}

/** A minimal valid invocation row; tests override what they care about. */
export function inv(id: string, over: Partial<InvocationRow> = {}): InvocationRow {
  return {
    id,
    service: 'Svc',
    handler: 'run',
    key: '',
    exclusive: false,
    status: 'running',
    input: { id },
    attempt: 0,
    retryIndex: -1,
    createdAt: 1_700_000_000_000,
    modifiedAt: 1_700_000_000_000,
    ...over,
  };
}

/** What one listener received, but the markers of {@link sync}. */
interface Inbox {
  processId: string;
  got: ClusterMessage[];
  marks: Set<string>;
  stop: () => Promise<void>;
}

const MARK = 'sync-mark:';
let marks = 0;

async function listen(store: Store, processId: string): Promise<Inbox> {
  const inbox: Inbox = { processId, got: [], marks: new Set(), stop: async () => {} };
  inbox.stop = await store.listen(processId, (m) => {
    if (messageSubject(m).startsWith(MARK)) inbox.marks.add(messageSubject(m));
    else inbox.got.push(m);
  });
  return inbox;
}

/**
 * Sends each inbox a marker through `writer` and waits for them: every message sent by a write
 * that resolved earlier has arrived then (messages arrive in commit order), so what did not
 * arrive will not.
 */
async function sync(writer: Store, ...inboxes: Inbox[]): Promise<void> {
  const ids = inboxes.map(() => `${MARK}${++marks}`);
  await writer.write(
    inboxes.map((inbox, i) => ({
      op: 'notify' as const,
      to: inbox.processId,
      message: { type: 'done' as const, invocationId: ids[i]! },
    })),
  );
  await until(() => inboxes.every((inbox, i) => inbox.marks.has(ids[i]!)));
}

async function until(check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** Messages in a comparable order: by invocation id, then type. */
function byId(messages: ClusterMessage[]): ClusterMessage[] {
  const key = (m: ClusterMessage) => `${messageSubject(m)}\0${m.type}`;
  return [...messages].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}

function sortWaiters(waiters: PromiseWaiter[]): PromiseWaiter[] {
  return [...waiters].sort((a, b) =>
    a.invocationId === b.invocationId
      ? a.index - b.index
      : a.invocationId < b.invocationId
        ? -1
        : 1,
  );
}

function entry(kind: JournalEntry['kind'], name: string): JournalEntry {
  return { kind, name, done: true, value: name };
}
