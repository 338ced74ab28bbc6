import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ErrorInfo } from '../core/errors.js';
import type { JournalEntry } from '../core/journal.js';
import type { InvocationRow, OpResult, PromiseWaiter, Store, WriteOp } from './types.js';

/** What a conformance run needs from an adapter: a fresh, empty store per test. */
export interface ConformanceHarness {
  store: Store;
  /**
   * Opens the same database again, as a new process would. The suite closes `store` first.
   * Omit it for adapters without persistence across instances (the durability tests are skipped).
   */
  reopen?: () => Promise<Store>;
  /** Closes every store the harness opened (tolerating closed ones) and deletes the data. */
  cleanup: () => Promise<void>;
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

      it('does not create an invocation when updating an unknown id', async () => {
        await store.write([{ op: 'invocation.update', id: 'ghost', set: { status: 'running' } }]);
        expect(await store.getInvocation('ghost')).toBeUndefined();
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
        if (!h.reopen) t.skip();
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
        if (!h.reopen) t.skip();
        const pending = store.write([{ op: 'invocation.insert', row: inv('in-flight') }]);
        const closed = store.close();
        expect(await pending).toEqual([{ inserted: true }]);
        await closed;
        const again = await h.reopen!();
        expect(await again.getInvocation('in-flight')).toBeDefined();
      });

      it('keeps everything across close and reopen', async (t) => {
        if (!h.reopen) t.skip();
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
