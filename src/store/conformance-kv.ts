import { describe, expect, it } from 'vitest';
import type { ConformanceHarness } from './conformance.js';
import type { Store } from './types.js';

/**
 * The key-value part of the Store conformance suite (run by `storeConformance`): versions,
 * compare-and-set, listing, expiry and read-modify-write races, within one store and, for
 * shared stores, between two.
 */
export function kvConformance(get: () => { store: Store; h: ConformanceHarness }): void {
  const put = (
    store: Store,
    key: string,
    value: unknown,
    expectVersion?: number,
    expiresAt?: number,
  ) =>
    store
      .write([{ op: 'kv.put', scope: 'sc', key, value, expectVersion, expiresAt }])
      .then(([r]) => r as { ok: boolean; version: number });

  /** Read, add one, compare-and-set; again on a conflict. Returns how many conflicts it met. */
  const increment = async (store: Store, key: string): Promise<number> => {
    for (let conflicts = 0; ; conflicts++) {
      const row = await store.getKv('sc', key);
      const r = await put(store, key, ((row?.value as number) ?? 0) + 1, row?.version ?? 0);
      if (r.ok) return conflicts;
      expect(r.version).not.toBe(row?.version ?? 0);
    }
  };

  describe('key-value space', () => {
    it('versions values from 1 and returns them with their expiry', async () => {
      const { store } = get();
      expect(await store.getKv('sc', 'a')).toBeUndefined();
      expect(await put(store, 'a', { n: 1 })).toEqual({ ok: true, version: 1 });
      expect(await put(store, 'a', { n: 2 }, undefined, 5_000)).toEqual({ ok: true, version: 2 });
      expect(await store.getKv('sc', 'a')).toEqual({
        value: { n: 2 },
        version: 2,
        expiresAt: 5_000,
      });
      expect(await put(store, 'a', [null, 'x'])).toEqual({ ok: true, version: 3 });
      expect(await store.getKv('sc', 'a')).toEqual({ value: [null, 'x'], version: 3 });
      // Scopes are apart.
      expect(await store.getKv('other', 'a')).toBeUndefined();
    });

    it('compare-and-sets: writes over the version read, refuses any other and reports it', async () => {
      const { store } = get();
      expect(await put(store, 'k', 'first', 0)).toEqual({ ok: true, version: 1 });
      expect(await put(store, 'k', 'again', 0)).toEqual({ ok: false, version: 1 });
      expect(await put(store, 'k', 'second', 1)).toEqual({ ok: true, version: 2 });
      expect(await put(store, 'k', 'stale', 1)).toEqual({ ok: false, version: 2 });
      expect(await put(store, 'missing', 'x', 3)).toEqual({ ok: false, version: 0 });
      expect(await store.getKv('sc', 'k')).toEqual({ value: 'second', version: 2 });
      expect(await store.getKv('sc', 'missing')).toBeUndefined();
    });

    it('deletes unconditionally or at a version, and a deleted key starts again at 1', async () => {
      const { store } = get();
      await put(store, 'k', 1);
      await put(store, 'k', 2);
      const del = (expectVersion?: number) =>
        store.write([{ op: 'kv.delete', scope: 'sc', key: 'k', expectVersion }]).then(([r]) => r);
      expect(await del(1)).toEqual({ ok: false, version: 2 });
      expect(await del(2)).toEqual({ ok: true, version: 2 });
      expect(await del()).toEqual({ ok: false, version: 0 });
      expect(await put(store, 'k', 'new', 0)).toEqual({ ok: true, version: 1 });
    });

    it('lists a scope in key order, by prefix, after a key and up to a limit', async () => {
      const { store } = get();
      for (const k of ['ep/2', 'ep/1', 'ep/10', 'log/1', 'ep']) await put(store, k, k);
      await store.write([{ op: 'kv.put', scope: 'sc2', key: 'ep/3', value: 0 }]);
      const keys = async (o?: { prefix?: string; after?: string; limit?: number }) =>
        (await store.listKv('sc', o)).map((r) => r.key);
      expect(await keys()).toEqual(['ep', 'ep/1', 'ep/10', 'ep/2', 'log/1']);
      expect(await keys({ prefix: 'ep/' })).toEqual(['ep/1', 'ep/10', 'ep/2']);
      expect(await keys({ prefix: 'ep/', after: 'ep/1' })).toEqual(['ep/10', 'ep/2']);
      expect(await keys({ limit: 2 })).toEqual(['ep', 'ep/1']);
      const [first] = await store.listKv('sc', { prefix: 'log/' });
      expect(first).toEqual({ key: 'log/1', value: 'log/1', version: 1 });
    });

    it('keeps expired values until purged, then purges only those, up to the limit', async () => {
      const { store } = get();
      await put(store, 'old1', 1, undefined, 1_000);
      await put(store, 'old2', 2, undefined, 2_000);
      await put(store, 'later', 3, undefined, 9_000);
      await put(store, 'never', 4);
      expect((await store.getKv('sc', 'old1'))?.expiresAt).toBe(1_000);
      expect(await store.write([{ op: 'kv.purge', before: 5_000, limit: 1 }])).toEqual([
        { deleted: 1 },
      ]);
      expect(await store.write([{ op: 'kv.purge', before: 5_000 }])).toEqual([{ deleted: 1 }]);
      expect((await store.listKv('sc')).map((r) => r.key)).toEqual(['later', 'never']);
    });

    it('applies a put and a compare-and-set on it in one write, in order', async () => {
      const { store } = get();
      const results = await store.write([
        { op: 'kv.put', scope: 'sc', key: 'k', value: 'a', expectVersion: 0 },
        { op: 'kv.put', scope: 'sc', key: 'k', value: 'b', expectVersion: 1 },
        { op: 'kv.put', scope: 'sc', key: 'k', value: 'c', expectVersion: 1 },
      ]);
      expect(results).toEqual([
        { ok: true, version: 1 },
        { ok: true, version: 2 },
        { ok: false, version: 2 },
      ]);
    });

    it('loses no increment when many read-modify-writes race', async () => {
      const { store } = get();
      const n = 40;
      const conflicts = await Promise.all(Array.from({ length: n }, () => increment(store, 'c')));
      expect(await store.getKv('sc', 'c')).toEqual({ value: n, version: n });
      // They did race: all read before any wrote, so most had to try again.
      expect(conflicts.reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
    });

    it('survives a reopen', async (t) => {
      const { h, store } = get();
      t.skip(!h.reopen, 'this adapter does not persist across instances');
      await put(store, 'k', { kept: true }, undefined, 42);
      await store.close();
      const again = await h.reopen!();
      expect(await again.getKv('sc', 'k')).toEqual({
        value: { kept: true },
        version: 1,
        expiresAt: 42,
      });
    });

    it('loses no increment when two processes race (shared stores)', async (t) => {
      const { h, store } = get();
      t.skip(!store.shared || !h.another, 'not a shared store: one process owns it');
      const other = await h.another!();
      const n = 30;
      await Promise.all(
        Array.from({ length: n }, (_, i) => increment(i % 2 === 0 ? store : other, 'c')),
      );
      expect(await other.getKv('sc', 'c')).toEqual({ value: n, version: n });
    });
  });
}
