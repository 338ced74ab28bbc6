import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { inv } from '../src/store/conformance.js';
import { type SqliteStore, openSqliteStore } from '../src/store/sqlite/index.js';

/**
 * The WAL is extended with zeros ahead of SQLite's writes (src/store/sqlite/wal-reserve.ts) so
 * that fdatasync pays the overwrite price. These tests check it happens, and that SQLite
 * recovers every committed write from a WAL with a tail of zeros, in the states a crash leaves.
 */
describe('SQLite WAL reserved ahead of the writes', () => {
  const dirs: string[] = [];
  const stores: SqliteStore[] = [];
  afterEach(async () => {
    await Promise.allSettled(stores.splice(0).map((s) => s.close()));
    for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  });
  function dir(): string {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-walres-'));
    dirs.push(d);
    return d;
  }
  function open(
    file: string,
    options: { durability?: 'fsync' | 'os'; checkpointBytes?: number } = {},
  ) {
    const s = openSqliteStore({ path: file, ...options });
    stores.push(s);
    return s;
  }
  /** What a kill -9 or a power cut leaves: the database and WAL files as they are, no close. */
  function crashCopy(file: string): string {
    const to = path.join(dir(), 'copy.db');
    fs.copyFileSync(file, to);
    fs.copyFileSync(`${file}-wal`, `${to}-wal`);
    return to;
  }

  it('extends the WAL past what the writes use, with zeros, and a crash copy recovers every write', async () => {
    const file = path.join(dir(), 'keel.db');
    const store = open(file);
    for (let i = 0; i < 50; i++)
      await store.write([{ op: 'invocation.insert', row: inv(`i${i}`) }]);
    expect(store.stats.walReserved).toBeGreaterThanOrEqual(1024 * 1024);
    const wal = fs.readFileSync(`${file}-wal`);
    expect(wal.length).toBeGreaterThanOrEqual(1024 * 1024);
    // The reserved tail is zeros (the writes so far used far less than a MiB).
    expect(wal.subarray(wal.length - 4096).every((b) => b === 0)).toBe(true);

    const copy = open(crashCopy(file));
    for (let i = 0; i < 50; i++) expect((await copy.getInvocation(`i${i}`))?.id).toBe(`i${i}`);
    expect(await copy.write([{ op: 'invocation.insert', row: inv('after') }])).toEqual([
      { inserted: true },
    ]);
  });

  it('recovers from a WAL that was restarted by a checkpoint, then overwritten, with zeros after it', async () => {
    const file = path.join(dir(), 'keel.db');
    // A small threshold: the WAL is checkpointed and restarted many times over this test.
    const store = open(file, { checkpointBytes: 64 * 1024 });
    const big = 'x'.repeat(2000);
    for (let i = 0; i < 400; i++)
      await store.write([{ op: 'invocation.insert', row: inv(`r${i}`, { input: { big, i } }) }]);
    expect(store.stats.checkpoints).toBeGreaterThan(0);
    const copy = open(crashCopy(file));
    for (let i = 0; i < 400; i++) {
      const row = await copy.getInvocation(`r${i}`);
      expect(row?.input).toEqual({ big, i });
    }
  });

  it('does not reserve with durability os (no fdatasync to save)', async () => {
    const file = path.join(dir(), 'keel.db');
    const store = open(file, { durability: 'os' });
    await store.write([{ op: 'invocation.insert', row: inv('a') }]);
    expect(store.stats.walReserved).toBe(0);
    expect(fs.statSync(`${file}-wal`).size).toBeLessThan(1024 * 1024);
  });

  it('never reserves past the checkpoint threshold plus a chunk', async () => {
    const file = path.join(dir(), 'keel.db');
    const store = open(file, { checkpointBytes: 64 * 1024 });
    for (let i = 0; i < 20; i++)
      await store.write([{ op: 'invocation.insert', row: inv(`s${i}`) }]);
    // 64 KiB of threshold + one 1 MiB chunk, rounded to whole frames.
    expect(fs.statSync(`${file}-wal`).size).toBeLessThanOrEqual(64 * 1024 + 1024 * 1024 + 8192);
  });

  it('reads the WAL size far less often than once per transaction, and keeps the reserve ahead of the writes', async () => {
    const file = path.join(dir(), 'keel.db');
    const store = open(file);
    // About 13 frames per write, 200 writes: some 11 MiB of WAL, under the 16 MiB threshold.
    const big = 'y'.repeat(20_000);
    for (let i = 0; i < 200; i++) {
      await store.write([{ op: 'invocation.insert', row: inv(`w${i}`, { input: { big, i } }) }]);
      // Never written into space that was not reserved: the file's last 4 KiB stay zeros.
      if (i % 10 === 9) {
        const fd = fs.openSync(`${file}-wal`, 'r');
        try {
          const size = fs.fstatSync(fd).size;
          const tail = Buffer.alloc(4096);
          fs.readSync(fd, tail, 0, 4096, size - 4096);
          expect(tail.every((b) => b === 0)).toBe(true);
        } finally {
          fs.closeSync(fd);
        }
      }
    }
    expect(store.stats.walReserved).toBeGreaterThanOrEqual(10 * 1024 * 1024);
    expect(store.stats.checkpoints).toBe(0);
    expect(store.stats.transactions).toBeGreaterThanOrEqual(200);
    expect(store.stats.walChecks).toBeLessThan(store.stats.transactions / 2);
    // Small writes (one frame or two each, as a journal entry is): far fewer reads still.
    const before = { ...store.stats };
    for (let i = 0; i < 400; i++)
      await store.write([{ op: 'state.set', service: 's', key: 'k', name: 'n', value: i }]);
    expect(store.stats.transactions - before.transactions).toBe(400);
    expect(store.stats.walChecks - before.walChecks).toBeLessThan(400 / 8);
  });
});
