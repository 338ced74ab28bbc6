import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { inv } from '../src/store/conformance.js';
import { type SqliteStore, openSqliteStore } from '../src/store/sqlite/index.js';

/**
 * The SQLite group commit keeps up to two fdatasyncs of the WAL in flight (group-commit.ts).
 * These tests take the fdatasyncs in hand (the real ones still run, their callbacks are held)
 * and check that a write resolves only once the fdatasync covering it and every earlier one
 * returned, in commit order, and that a failed one fails everything not yet acknowledged.
 */
type Callback = (err: NodeJS.ErrnoException | null) => void;
const realFdatasync = fs.fdatasync;

describe('SQLite fdatasyncs in flight', () => {
  const dirs: string[] = [];
  const stores: SqliteStore[] = [];
  let held: Array<{ err: NodeJS.ErrnoException | null; cb: Callback }> = [];
  let failNext = false;

  function hold(): void {
    held = [];
    (fs as { fdatasync: unknown }).fdatasync = (fd: number, cb: Callback) => {
      const fail = failNext;
      failNext = false;
      realFdatasync(fd, (err) => {
        const e = fail ? Object.assign(new Error('EIO: injected'), { code: 'EIO' }) : err;
        held.push({ err: e, cb });
      });
    };
  }

  afterEach(async () => {
    (fs as { fdatasync: unknown }).fdatasync = realFdatasync;
    for (const h of held.splice(0)) h.cb(h.err);
    await Promise.allSettled(stores.splice(0).map((s) => s.close()));
    for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  });

  function open(): SqliteStore {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-syncs-'));
    dirs.push(d);
    const s = openSqliteStore({ path: path.join(d, 'keel.db') });
    stores.push(s);
    return s;
  }

  async function until(cond: () => boolean, what: string): Promise<void> {
    for (let i = 0; i < 2000 && !cond(); i++) await new Promise((r) => setTimeout(r, 1));
    if (!cond()) throw new Error(`timed out waiting for ${what}`);
  }

  function tracked(p: Promise<unknown>, order: string[], name: string): Promise<unknown> {
    return p.then(
      (v) => {
        order.push(name);
        return v;
      },
      (err: unknown) => {
        order.push(`${name} failed`);
        throw err;
      },
    );
  }

  it('runs two at once and resolves the writes in commit order, whichever returns first', async () => {
    const store = open();
    hold();
    const order: string[] = [];
    const a = tracked(store.write([{ op: 'invocation.insert', row: inv('a') }]), order, 'a');
    await until(() => held.length === 1, 'the first fdatasync');
    // Committed while the first runs: it starts the second fdatasync at once.
    const b = tracked(store.write([{ op: 'invocation.insert', row: inv('b') }]), order, 'b');
    await until(() => held.length === 2, 'the second fdatasync');
    // Both slots taken: this one waits in the queue, not committed yet.
    const c = tracked(store.write([{ op: 'invocation.insert', row: inv('c') }]), order, 'c');
    await new Promise((r) => setTimeout(r, 20));
    expect(held).toHaveLength(2);
    expect(await store.getInvocation('c')).toBeUndefined();

    // The second returns first: b must still wait for a's.
    const [first, second] = held.splice(0, 2);
    second!.cb(second!.err);
    await new Promise((r) => setTimeout(r, 20));
    expect(order).toEqual([]);
    first!.cb(first!.err);
    await Promise.all([a, b]);
    expect(order).toEqual(['a', 'b']);
    // A slot freed: c is committed and its fdatasync started.
    await until(() => held.length === 1, "c's fdatasync");
    expect(order).toEqual(['a', 'b']);
    held.splice(0).forEach((h) => h.cb(h.err));
    await c;
    expect(order).toEqual(['a', 'b', 'c']);
    for (const id of ['a', 'b', 'c']) expect((await store.getInvocation(id))?.id).toBe(id);
  });

  it('fails every write not yet acknowledged when one of the two fails, and refuses later writes', async () => {
    const store = open();
    hold();
    const order: string[] = [];
    failNext = true;
    const a = tracked(store.write([{ op: 'invocation.insert', row: inv('a') }]), order, 'a');
    await until(() => held.length === 1, 'the first fdatasync');
    const b = tracked(store.write([{ op: 'invocation.insert', row: inv('b') }]), order, 'b');
    await until(() => held.length === 2, 'the second fdatasync');
    const [first, second] = held.splice(0, 2);
    // The second succeeds first, then the first fails: b was never acknowledged, so it fails too.
    second!.cb(second!.err);
    first!.cb(first!.err);
    await expect(a).rejects.toMatchObject({ code: 'store_failed' });
    await expect(b).rejects.toMatchObject({ code: 'store_failed' });
    expect(order).toEqual(['a failed', 'b failed']);
    await expect(store.write([{ op: 'invocation.insert', row: inv('c') }])).rejects.toMatchObject({
      code: 'store_failed',
    });
  });
});
