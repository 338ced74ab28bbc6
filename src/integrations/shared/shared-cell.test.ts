import { join } from 'node:path';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { afterAll, describe, expect, it } from 'vitest';
import { openSqliteStore } from '../../store/sqlite/index.js';
import type { Store, WriteOp } from '../../store/types.js';
import { SharedCell } from './shared-cell.js';

/** The compare-and-set cell on a real SQLite file, opened twice as two processes would. */
const dir = mkdtempSync(join(tmpdir(), 'keel-cell-'));
const stores: Store[] = [];
afterAll(async () => {
  for (const s of stores) await s.close();
  rmSync(dir, { recursive: true, force: true });
});

function open(file: string): { store: Store; writes: () => number } {
  const store = openSqliteStore({ path: join(dir, file) });
  stores.push(store);
  let n = 0;
  const write = store.write.bind(store);
  store.write = (ops: WriteOp[]) => {
    n += ops.filter((o) => o.op === 'kv.put').length;
    return write(ops);
  };
  return { store, writes: () => n };
}

const counter = (store: Store, now: () => number, maxAgeMs = 1000): SharedCell<{ n: number }> =>
  new SharedCell(
    store,
    'test',
    'counter',
    (v) => v as { n: number },
    () => ({ n: 0 }),
    maxAgeMs,
    now,
  );
const add =
  (k: number) =>
  (s: { n: number }): { value: { n: number }; result: number } => ({
    value: { n: s.n + k },
    result: s.n + k,
  });

describe('SharedCell', () => {
  it('writes nothing for a transition that changes nothing, while its copy is young', async () => {
    const { store, writes } = open('a.db');
    let t = 0;
    const cell = counter(store, () => t);
    expect(await cell.update(add(1))).toBe(1);
    expect(writes()).toBe(1);
    expect(cell.updateSoon((s) => ({ value: s, result: s.n }))).toBe(1); // synchronous, no I/O
    t = 2000;
    expect(cell.updateSoon((s) => ({ value: s, result: s.n }))).toBeInstanceOf(Promise);
    expect(writes()).toBe(1);
  });

  it('groups concurrent transitions into one write, applied in order', async () => {
    const { store, writes } = open('b.db');
    const cell = counter(store, () => 0);
    await cell.update(add(0 + 1));
    const before = writes();
    const results = await Promise.all([1, 2, 3, 4].map((k) => cell.update(add(k))));
    expect(results).toEqual([2, 4, 7, 11]);
    expect(writes() - before).toBeLessThanOrEqual(2);
    expect((await store.getKv('test', 'counter'))?.value).toEqual({ n: 11 });
  });

  it('two cells on one database (two processes): a stale copy loses the CAS and re-applies', async () => {
    const a = open('c.db');
    const b = open('c.db');
    const cellA = counter(a.store, () => 0, 60_000);
    const cellB = counter(b.store, () => 0, 60_000);
    expect(await cellA.update(add(1))).toBe(1);
    expect(await cellB.update(add(10))).toBe(11); // B read fresh
    // A's copy (n = 1) is stale: its write conflicts, it re-reads and re-applies.
    expect(await cellA.update(add(100))).toBe(111);
    expect((await b.store.getKv('test', 'counter'))?.value).toEqual({ n: 111 });
  });

  it('without a store keeps the value in memory', async () => {
    const cell = new SharedCell<{ n: number }>(
      undefined,
      's',
      'k',
      (v) => v as { n: number },
      () => ({ n: 0 }),
      0,
      () => 0,
    );
    await cell.update(add(5));
    expect(await cell.update(add(1))).toBe(6);
  });
});
