import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openSqliteStore } from '../store/sqlite/index.js';
import type { Store } from '../store/types.js';
import { awakeableIdFor } from './ids.js';
import { loadAwakeableSecret, SECRET_SCOPE } from './secrets.js';

let cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

function sqlite(): { path: string; open: () => Store } {
  const dir = mkdtempSync(join(tmpdir(), 'keel-secret-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'keel.db');
  return {
    path,
    open: () => {
      const store = openSqliteStore({ path });
      cleanups.push(() => store.close());
      return store;
    },
  };
}

describe('the awakeable secret', () => {
  it('is made once per store and read back by every later start', async () => {
    const db = sqlite();
    const first = await loadAwakeableSecret(db.open());
    expect(first).toHaveLength(32);
    const again = await loadAwakeableSecret(db.open());
    expect(again.equals(first)).toBe(true);
    expect(await loadAwakeableSecret(sqlite().open())).not.toEqual(first); // another store
  });

  it('refuses a damaged stored value rather than replacing it (that would orphan every id)', async () => {
    const store = sqlite().open();
    await store.write([{ op: 'kv.put', scope: SECRET_SCOPE, key: 'awakeable', value: 'c2hvcnQ=' }]);
    await expect(loadAwakeableSecret(store)).rejects.toMatchObject({ code: 'secret_damaged' });
    expect((await store.getKv(SECRET_SCOPE, 'awakeable'))?.value).toBe('c2hvcnQ=');
  });
});

describe('awakeableIdFor', () => {
  const secret = Buffer.alloc(32, 7);
  const inv = 'inv_0000000000aaaaaaaaaaaaaaaa';

  it('is the same for the same entry, and differs by entry, invocation and secret', () => {
    const id = awakeableIdFor(secret, inv, 3);
    expect(id).toMatch(/^awk_[0-9a-z]{26}$/);
    expect(awakeableIdFor(secret, inv, 3)).toBe(id);
    const others = [
      awakeableIdFor(secret, inv, 4),
      awakeableIdFor(secret, 'inv_0000000000aaaaaaaaaaaaaaab', 3),
      awakeableIdFor(Buffer.alloc(32, 8), inv, 3),
    ];
    for (const other of others) expect(other).not.toBe(id);
  });
});
