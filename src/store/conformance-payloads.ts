import { describe, expect, it } from 'vitest';
import type { JournalEntry } from '../core/journal.js';
import type { ConformanceHarness } from './conformance.js';
import { DEFAULT_LARGE_PAYLOAD_THRESHOLD, LargePayload } from './payloads.js';
import type { InvocationRow, Store, WriteOp } from './types.js';

/**
 * The large-payload part of the Store conformance suite (run by `storeConformance`, with the
 * stores' default options): values whose JSON is longer than `largePayloadThreshold` are
 * stored out of line and must read back identical through every read, be listed by size only,
 * and survive reopening; writes that did not happen must not change them. See
 * docs/payloads.md.
 */
export function payloadConformance(get: () => { store: Store; h: ConformanceHarness }): void {
  const T = DEFAULT_LARGE_PAYLOAD_THRESHOLD;
  /** A string whose JSON (with its quotes) is exactly `bytes` bytes of UTF-8. */
  const sized = (bytes: number, fill = 'x') => fill.repeat(bytes - 2);
  /** Large, with what JSON and the stores must keep exactly: escapes, NUL, non-ASCII. */
  const big = (tag: string) => ({
    tag,
    text: 'é\u0000"\\\n\u2028😀'.repeat(4096) + sized(T),
    nested: { $blob: 1, marker: '@blob:12', list: [1, null, 'x'] },
  });
  const bytesOf = (v: unknown) => Buffer.byteLength(JSON.stringify(v), 'utf8');
  const row = (id: string, over: Partial<InvocationRow> = {}): InvocationRow => ({
    id,
    service: 'Big',
    handler: 'run',
    key: '',
    exclusive: false,
    status: 'running',
    input: big(`in-${id}`),
    attempt: 0,
    retryIndex: -1,
    createdAt: 1_700_000_000_000,
    modifiedAt: 1_700_000_000_000,
    ...over,
  });
  const set = (name: string, value: unknown): WriteOp => ({
    op: 'state.set',
    service: 'Big',
    key: 'k',
    name,
    value,
  });

  describe('large payloads', () => {
    it('reads back a large input and output identical, and lists them by size only', async () => {
      const { store } = get();
      const r = row('a', { dedupe: 'idem:a' });
      await store.write([{ op: 'invocation.insert', row: r }]);
      const output = big('out');
      await store.write([{ op: 'invocation.update', id: 'a', set: { output } }]);
      const full = { ...r, output, seq: expect.any(Number) };
      expect(await store.getInvocation('a')).toEqual(full);
      expect(await store.findByDedupe('idem:a')).toEqual(full);
      expect((await store.listRunnable()).find((x) => x.id === 'a')).toEqual(full);
      const [listed] = await store.listInvocations({ service: 'Big' });
      expect(listed!.input).toBeInstanceOf(LargePayload);
      expect(listed!.input).toMatchObject({ bytes: bytesOf(r.input) });
      expect(listed!.output).toMatchObject({ bytes: bytesOf(output) });
    });

    it('keeps a value of exactly the threshold in line, and one byte more out of line', async () => {
      const { store } = get();
      await store.write([
        { op: 'invocation.insert', row: row('at', { input: sized(T) }) },
        { op: 'invocation.insert', row: row('above', { input: sized(T + 1) }) },
      ]);
      const listed = await store.listInvocations({ service: 'Big' });
      const byId = new Map(listed.map((x) => [x.id, x.input]));
      expect(byId.get('at')).toBe(sized(T));
      expect(byId.get('above')).toEqual(new LargePayload(T + 1));
      expect((await store.getInvocation('above'))!.input).toBe(sized(T + 1));
    });

    it('replays a large journal entry identical, keeping its other fields', async () => {
      const { store } = get();
      const value = big('step');
      const entry: JournalEntry = {
        kind: 'run',
        name: 'fetch',
        done: true,
        value,
        startedAt: 1_700_000_000_123,
        durationMs: 12.5,
        attempts: 2,
      };
      await store.write([
        { op: 'invocation.insert', row: row('j', { input: 1 }) },
        { op: 'journal.put', invocationId: 'j', index: 0, entry },
        {
          op: 'journal.put',
          invocationId: 'j',
          index: 1,
          entry: { kind: 'run', name: 'small', done: true, value: 2 },
        },
      ]);
      expect(await store.getJournal('j')).toEqual([
        [0, entry],
        [1, { kind: 'run', name: 'small', done: true, value: 2 }],
      ]);
      // Replaced by a small entry, then by another large one: each read sees the latest.
      await store.write([
        {
          op: 'journal.put',
          invocationId: 'j',
          index: 0,
          entry: { kind: 'run', name: 'fetch', done: true, value: 'small' },
        },
      ]);
      expect((await store.getJournal('j'))[0]).toEqual([
        0,
        { kind: 'run', name: 'fetch', done: true, value: 'small' },
      ]);
      const again = { ...entry, value: big('step2') };
      await store.write([{ op: 'journal.put', invocationId: 'j', index: 0, entry: again }]);
      expect((await store.getJournal('j'))[0]).toEqual([0, again]);
    });

    it('completes a waiting entry with a large value once; a later completion changes nothing', async () => {
      const { store } = get();
      await store.write([
        { op: 'invocation.insert', row: row('w', { input: 1, status: 'suspended' }) },
        {
          op: 'journal.put',
          invocationId: 'w',
          index: 0,
          entry: { kind: 'call', name: 'B/run', done: false, startedAt: 1_700_000_000_000 },
        },
      ]);
      const first = big('first');
      const done = (value: unknown): WriteOp => ({
        op: 'journal.complete',
        invocationId: 'w',
        index: 0,
        entry: { kind: 'call', name: 'B/run', done: true, value },
      });
      expect(await store.write([done(first)])).toEqual([
        expect.objectContaining({ completed: true, resumed: true }),
      ]);
      expect(await store.write([done(big('second'))])).toEqual([
        expect.objectContaining({ completed: false }),
      ]);
      expect(await store.getJournal('w')).toEqual([
        [
          0,
          {
            kind: 'call',
            name: 'B/run',
            done: true,
            value: first,
            startedAt: 1_700_000_000_000,
          },
        ],
      ]);
    });

    it('stores large state values, replaced by small and large ones, deleted and cleared', async () => {
      const { store } = get();
      const a = big('a');
      await store.write([set('a', a), set('b', big('b'))]);
      expect(await store.getState('Big', 'k', 'a')).toEqual(a);
      await store.write([set('a', 'small')]);
      expect(await store.getState('Big', 'k', 'a')).toBe('small');
      const a2 = big('a2');
      await store.write([set('a', a2)]);
      expect(await store.getState('Big', 'k', 'a')).toEqual(a2);
      await store.write([{ op: 'state.delete', service: 'Big', key: 'k', name: 'a' }]);
      expect(await store.getState('Big', 'k', 'a')).toBeUndefined();
      expect(await store.getState('Big', 'k', 'b')).toEqual(big('b'));
      await store.write([{ op: 'state.clear', service: 'Big', key: 'k' }]);
      expect(await store.getState('Big', 'k', 'b')).toBeUndefined();
      await store.write([set('b', 1)]);
      expect(await store.getState('Big', 'k', 'b')).toBe(1);
    });

    it('answers a dedupe conflict and a key hand-off with the large input', async () => {
      const { store } = get();
      const first = row('d1', { dedupe: 'idem:d' });
      await store.write([{ op: 'invocation.insert', row: first }]);
      const [conflict] = await store.write([
        { op: 'invocation.insert', row: row('d2', { dedupe: 'idem:d', input: big('other') }) },
      ]);
      expect(conflict).toEqual({
        inserted: false,
        existing: { ...first, seq: expect.any(Number) },
      });
      // The refused insert left nothing behind: d2 does not exist.
      expect(await store.getInvocation('d2')).toBeUndefined();

      const holder = row('h', { service: 'Obj', key: 'k', exclusive: true, input: 1 });
      const next = row('n', { service: 'Obj', key: 'k', exclusive: true, status: 'pending' });
      await store.write([
        { op: 'invocation.insert', row: holder },
        { op: 'key.acquire', service: 'Obj', key: 'k', invocationId: 'h' },
        { op: 'invocation.insert', row: next },
      ]);
      const [released] = await store.write([
        { op: 'key.release', service: 'Obj', key: 'k', invocationId: 'h', owner: 'p1' },
      ]);
      expect((released as { next?: InvocationRow }).next).toMatchObject({
        id: 'n',
        input: next.input,
      });
    });

    it('deletes an invocation with its large values; the id can be used again', async () => {
      const { store } = get();
      await store.write([
        { op: 'invocation.insert', row: row('x', { output: big('o') }) },
        {
          op: 'journal.put',
          invocationId: 'x',
          index: 0,
          entry: { kind: 'run', name: 's', done: true, value: big('s') },
        },
      ]);
      await store.write([{ op: 'invocation.delete', id: 'x' }]);
      expect(await store.getInvocation('x')).toBeUndefined();
      expect(await store.getJournal('x')).toEqual([]);
      await store.write([{ op: 'invocation.insert', row: row('x', { input: 'small' }) }]);
      expect(await store.getInvocation('x')).toMatchObject({ input: 'small' });
      expect((await store.getInvocation('x'))!.output).toBeUndefined();
    });

    it('keeps large values across a reopen, and shows them to another process', async () => {
      const { store, h } = get();
      const r = row('r');
      const value = big('state');
      await store.write([{ op: 'invocation.insert', row: r }, set('s', value)]);
      if (h.another) {
        const other = await h.another();
        expect((await other.getInvocation('r'))!.input).toEqual(r.input);
        expect(await other.getState('Big', 'k', 's')).toEqual(value);
      }
      if (!h.reopen) return;
      await store.close();
      const again = await h.reopen();
      expect((await again.getInvocation('r'))!.input).toEqual(r.input);
      expect(await again.getState('Big', 'k', 's')).toEqual(value);
    });
  });
}
