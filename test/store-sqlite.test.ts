import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { storeConformance, inv } from '../src/store/conformance.js';
import { SCHEMA_VERSION, type SqliteStore, openSqliteStore } from '../src/store/sqlite/index.js';
import { MIGRATIONS } from '../src/store/sqlite/migrations.js';
import { messageSubject } from '../src/store/types.js';

const WRITER = path.join(import.meta.dirname, 'fixtures', 'store-writer.ts');
const OPEN_MANY = path.join(import.meta.dirname, 'fixtures', 'open-many.ts');

function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'keel-store-'));
}

/** Closes every store opened through it and deletes its directory. */
function harnessFor(dir: string, durability: 'fsync' | 'os') {
  const file = path.join(dir, 'keel.db');
  const opened: SqliteStore[] = [];
  const open = () => {
    const s = openSqliteStore({ path: file, durability });
    opened.push(s);
    return s;
  };
  return {
    file,
    open,
    cleanup: async () => {
      await Promise.allSettled(opened.map((s) => s.close()));
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

for (const durability of ['fsync', 'os'] as const) {
  storeConformance(`sqlite (${durability})`, async () => {
    const h = harnessFor(tempDir(), durability);
    return {
      store: h.open(),
      reopen: async () => h.open(),
      cleanup: h.cleanup,
      queueKeyRows: async (queue) => {
        // A reader of its own, as another process would be: it sees what the store committed.
        const db = new Database(h.file, { readonly: true });
        try {
          return db
            .prepare('SELECT count(*) FROM queue_keys WHERE queue = ?')
            .pluck()
            .get(queue) as number;
        } finally {
          db.close();
        }
      },
      queueStartLog: {
        read: async (queue, key) => {
          const db = new Database(h.file, { readonly: true });
          try {
            return (
              key === undefined
                ? db.prepare('SELECT starts FROM queues WHERE queue = ?').pluck().get(queue)
                : db
                    .prepare('SELECT starts FROM queue_keys WHERE queue = ? AND qkey = ?')
                    .pluck()
                    .get(queue, key)
            ) as string | undefined;
          } finally {
            db.close();
          }
        },
        write: async (queue, key, starts) => {
          // Another connection, as an earlier version's process would be (WAL: the store sees it).
          const db = new Database(h.file);
          try {
            if (key === undefined)
              db.prepare(
                'INSERT INTO queues (queue, turn, starts) VALUES (?, 0, ?) ' +
                  'ON CONFLICT (queue) DO UPDATE SET starts = excluded.starts',
              ).run(queue, starts);
            else
              db.prepare(
                'INSERT INTO queue_keys (queue, qkey, waiting, turn, starts) VALUES (?, ?, 0, 0, ?) ' +
                  'ON CONFLICT (queue, qkey) DO UPDATE SET starts = excluded.starts',
              ).run(queue, key, starts);
          } finally {
            db.close();
          }
        },
      },
    };
  });
}

describe('SqliteStore', () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0)) await c();
  });
  function fresh(durability: 'fsync' | 'os' = 'fsync') {
    const h = harnessFor(tempDir(), durability);
    cleanups.push(h.cleanup);
    return h;
  }

  it('refuses in-memory databases', () => {
    expect(() => openSqliteStore({ path: ':memory:' })).toThrow(/in-memory/i);
    expect(() => openSqliteStore({ path: '' })).toThrow(/file/);
  });

  it('creates missing parent directories', async () => {
    const dir = tempDir();
    cleanups.push(async () => fs.rmSync(dir, { recursive: true, force: true }));
    const store = openSqliteStore({ path: path.join(dir, 'a', 'b', 'keel.db') });
    await store.write([{ op: 'invocation.insert', row: inv('x') }]);
    await store.close();
    expect(fs.existsSync(path.join(dir, 'a', 'b', 'keel.db'))).toBe(true);
  });

  it('refuses a database with a newer schema version (schema_too_new)', async () => {
    const h = fresh();
    await h.open().close();
    const db = new Database(h.file);
    db.prepare("UPDATE keel_meta SET value = ? WHERE key = 'schema_version'").run(
      String(SCHEMA_VERSION + 1),
    );
    db.close();
    let error: unknown;
    try {
      h.open();
    } catch (err) {
      error = err;
    }
    expect(error).toMatchObject({ code: 'schema_too_new' });
    expect((error as Error).message).toMatch(/upgrade Keel/);
  });

  it('records the schema version and reopens an up-to-date database without migrating', async () => {
    const h = fresh();
    const first = h.open();
    await first.write([{ op: 'invocation.insert', row: inv('a') }]);
    await first.close();
    const db = new Database(h.file, { readonly: true });
    expect(db.prepare("SELECT value FROM keel_meta WHERE key = 'schema_version'").get()).toEqual({
      value: String(SCHEMA_VERSION),
    });
    db.close();
    const second = h.open();
    expect(await second.getInvocation('a')).toBeDefined();
  });

  it('numbers its migrations 1, 2, ... and is at version 19', () => {
    expect(MIGRATIONS.map((m) => m.version)).toEqual(MIGRATIONS.map((_, i) => i + 1));
    expect(SCHEMA_VERSION).toBe(19);
  });

  it('migration 15 deletes the idle queue key rows nothing counts, keeping the others', async () => {
    const h = fresh();
    await h.open().close();
    // A version 14 database with the rows it kept: idle ones with and without a start log.
    const db = new Database(h.file);
    db.exec(`
      DROP INDEX queue_keys_idle;
      UPDATE keel_meta SET value = '14' WHERE key = 'schema_version';
      INSERT INTO queue_keys (queue, qkey, waiting, turn, starts) VALUES
        ('q', 'idle', 0, 3, '[]'), ('q', 'logged', 0, 4, '[5000]'), ('q', 'waits', 2, 5, '[]');
    `);
    db.close();
    await h.open().close();
    const after = new Database(h.file, { readonly: true });
    expect(after.prepare('SELECT qkey FROM queue_keys ORDER BY qkey').pluck().all()).toEqual([
      'logged',
      'waits',
    ]);
    after.close();
  });

  it('migration 16 turns the start logs of queues into slots, counting the same starts', async () => {
    const h = fresh();
    await h.open().close();
    // A version 15 database with start logs of one time per start (a batch shares its time).
    const db = new Database(h.file);
    db.exec(`
      UPDATE keel_meta SET value = '15' WHERE key = 'schema_version';
      INSERT INTO queues (queue, turn, starts) VALUES
        ('q', 9, '[10000,10000,10000,10400]'), ('empty', 1, '[]'), ('new', 2, '[[10000,10050,3]]');
      INSERT INTO queue_keys (queue, qkey, waiting, turn, starts) VALUES
        ('q', 'A', 0, 9, '[10400,10000]'), ('q', 'B', 0, 3, '[]');
    `);
    db.close();
    const store = h.open();
    const read = (sql: string) => {
      const r = new Database(h.file, { readonly: true });
      try {
        return r.prepare(sql).all();
      } finally {
        r.close();
      }
    };
    expect(read('SELECT queue, starts FROM queues ORDER BY queue')).toEqual([
      { queue: 'empty', starts: '[]' },
      { queue: 'new', starts: '[[10000,10050,3]]' },
      { queue: 'q', starts: '[[10000,10000,3],[10400,10400,1]]' },
    ]);
    expect(read('SELECT qkey, starts FROM queue_keys ORDER BY qkey')).toEqual([
      { qkey: 'A', starts: '[[10000,10000,1],[10400,10400,1]]' },
      { qkey: 'B', starts: '[]' },
    ]);
    // The converted logs count what they counted: 4 of 5 starts in [10,000, 11,000).
    await store.write([
      { op: 'invocation.insert', row: inv('w1', { status: 'queued' }) },
      { op: 'invocation.insert', row: inv('w2', { status: 'queued' }) },
      { op: 'queue.put', invocationId: 'w1', queue: 'q', key: 'C', priority: 0 },
      { op: 'queue.put', invocationId: 'w2', queue: 'q', key: 'C', priority: 0 },
    ]);
    const [r] = await store.write([
      { op: 'queue.admit', queue: 'q', now: 10_500, max: 10, rate: { limit: 5, periodMs: 1000 } },
    ]);
    expect(r).toMatchObject({ admitted: [{ id: 'w1' }], retryAt: 11_000 });
    await store.close();
  });

  it('upgrades a version 1 database in place, keeping its data', async () => {
    const h = fresh();
    const v1 = new Database(h.file);
    v1.pragma('journal_mode = WAL');
    v1.exec(
      'CREATE TABLE keel_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;' +
        MIGRATIONS[0]!.sql +
        "INSERT INTO keel_meta VALUES ('schema_version', '1');",
    );
    v1.prepare(
      'INSERT INTO invocations (id, service, handler, key, exclusive, status, input, attempt, retry_index, created_at, modified_at) ' +
        "VALUES ('old', 'Wf', 'run', 'wf1', 1, 'suspended', '{\"a\":1}', 0, -1, 5, 6)",
    ).run();
    v1.prepare(
      "INSERT INTO journal (invocation_id, idx, kind, name, done, data) VALUES ('old', 0, 'run', 's', 1, '{\"value\":7}')",
    ).run();
    v1.close();

    const store = h.open();
    const old = await store.getInvocation('old');
    expect(old).toEqual({
      id: 'old',
      service: 'Wf',
      handler: 'run',
      key: 'wf1',
      exclusive: true,
      status: 'suspended',
      input: { a: 1 },
      attempt: 0,
      retryIndex: -1,
      createdAt: 5,
      modifiedAt: 6,
      seq: expect.any(Number),
    });
    expect(await store.getJournal('old')).toEqual([
      [0, { kind: 'run', name: 's', done: true, value: 7 }],
    ]);
    await store.write([
      { op: 'invocation.update', id: 'old', set: { cancel: 'requested', outcome: 'x' } },
      {
        op: 'promise.await',
        service: 'Wf',
        key: 'wf1',
        name: 'p',
        invocationId: 'old',
        index: 1,
        entry: { kind: 'promise', name: 'p', done: false },
      },
    ]);
    expect(
      await store.write([
        { op: 'promise.complete', service: 'Wf', key: 'wf1', name: 'p', value: 1 },
      ]),
    ).toEqual([{ completed: true, waiters: [{ invocationId: 'old', index: 1, resumed: true }] }]);
    expect(await store.getInvocation('old')).toMatchObject({
      cancel: 'requested',
      outcome: 'x',
      status: 'running',
    });
    await store.close();
    const db = new Database(h.file, { readonly: true });
    try {
      expect(
        db.prepare("SELECT value FROM keel_meta WHERE key = 'schema_version'").pluck().get(),
      ).toBe(String(SCHEMA_VERSION));
    } finally {
      db.close();
    }
  });

  it('upgrades a version 2 database in place, keeping its data', async () => {
    const h = fresh();
    const v2 = new Database(h.file);
    v2.pragma('journal_mode = WAL');
    v2.exec(
      'CREATE TABLE keel_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;' +
        MIGRATIONS[0]!.sql +
        MIGRATIONS[1]!.sql +
        "INSERT INTO keel_meta VALUES ('schema_version', '2');",
    );
    const insert = v2.prepare(
      'INSERT INTO invocations (id, service, handler, key, exclusive, status, input, attempt, retry_index, created_at, modified_at) ' +
        "VALUES (?, 'Obj', 'run', 'k', 1, ?, '1', 0, -1, 5, 6)",
    );
    insert.run('old-running', 'running');
    insert.run('old-pending', 'pending');
    v2.close();

    const store = h.open();
    const old = await store.getInvocation('old-running');
    expect(old).toMatchObject({ id: 'old-running', status: 'running', input: 1 });
    expect(old !== undefined && 'owner' in old).toBe(false);
    expect(
      await store.write([
        { op: 'key.acquire', service: 'Obj', key: 'k', invocationId: 'old-running' },
        { op: 'invocation.update', id: 'old-running', set: { status: 'completed' } },
        { op: 'key.release', service: 'Obj', key: 'k', invocationId: 'old-running', owner: 'p1' },
        { op: 'process.register', id: 'p1', leaseUntil: 10 },
      ]),
    ).toEqual([
      { acquired: true, holder: 'old-running' },
      undefined,
      { next: expect.objectContaining({ id: 'old-pending', owner: 'p1' }) },
      undefined,
    ]);
    expect((await store.listRunnable('p1')).map((r) => r.id)).toEqual(['old-pending']);
    await store.close();
    const db = new Database(h.file, { readonly: true });
    try {
      expect(
        db.prepare("SELECT value FROM keel_meta WHERE key = 'schema_version'").pluck().get(),
      ).toBe(String(SCHEMA_VERSION));
    } finally {
      db.close();
    }
  });

  it('is not shared, and delivers messages only to listeners of the same instance', async () => {
    const h = fresh();
    const a = h.open();
    const b = h.open();
    expect(a.shared).toBe(false);
    const gotA: string[] = [];
    const gotB: string[] = [];
    const stopA = await a.listen('p1', (m) => gotA.push(messageSubject(m)));
    const stopB = await b.listen('p1', (m) => gotB.push(messageSubject(m)));
    const write = a.write([
      { op: 'notify', to: 'p1', message: { type: 'wake', invocationId: 'x' } },
    ]);
    // Not before the write resolved (after its fdatasync).
    expect(gotA).toEqual([]);
    await write;
    await new Promise((r) => setImmediate(r));
    expect(gotA).toEqual(['x']);
    expect(gotB).toEqual([]);
    await stopA();
    await stopB();
    // Closing drops the listeners; listening on a closed store fails.
    const late: string[] = [];
    await a.listen('p2', (m) => late.push(messageSubject(m)));
    await a.close();
    await expect(a.listen('p3', () => {})).rejects.toMatchObject({ code: 'store_closed' });
    expect(late).toEqual([]);
  });

  it('lets several processes open and migrate the same new files at the same time (migration race)', async () => {
    const h = fresh();
    const dir = path.dirname(h.file);
    const files = 30;
    const children = Array.from({ length: 3 }, () => runChild([OPEN_MANY, dir, String(files)]));
    // Release the children together after their (slow) startup: they then walk the same new
    // files in lockstep, so many opens overlap with another child's migration.
    await Promise.all(children.map((c) => c.waitForLines(1)));
    for (const c of children) c.go();
    const outputs = await Promise.all(children.map((c) => c.done));
    for (const out of outputs) expect(out.lines).toEqual(['ready', 'done']);
    for (let i = 0; i < files; i++) {
      const db = new Database(path.join(dir, `${i}.db`), { readonly: true });
      try {
        expect(
          db.prepare("SELECT value FROM keel_meta WHERE key = 'schema_version'").pluck().get(),
        ).toBe(String(SCHEMA_VERSION));
        expect(db.prepare('SELECT count(*) FROM invocations').pluck().get()).toBe(3);
      } finally {
        db.close();
      }
    }
  });

  describe('promise waiters (white box)', () => {
    const awaitP = (invocationId: string, index: number) =>
      ({
        op: 'promise.await',
        service: 'Wf',
        key: 'wf1',
        name: 'p',
        invocationId,
        index,
        entry: { kind: 'promise', name: 'p', done: false },
      }) as const;
    const waiterCount = (file: string) => {
      const db = new Database(file, { readonly: true });
      try {
        return db.prepare('SELECT count(*) FROM promise_waiters').pluck().get();
      } finally {
        db.close();
      }
    };

    it('deletes the waiters of a completed promise and of a deleted invocation', async () => {
      const h = fresh();
      const store = h.open();
      await store.write([
        { op: 'invocation.insert', row: inv('a', { service: 'Wf', key: 'wf1' }) },
        { op: 'invocation.insert', row: inv('b', { service: 'Wf', key: 'wf1' }) },
        awaitP('a', 0),
        awaitP('a', 0),
        awaitP('b', 0),
        { ...awaitP('b', 1), name: 'q' },
      ]);
      expect(waiterCount(h.file)).toBe(3);
      await store.write([{ op: 'invocation.delete', id: 'b' }]);
      expect(waiterCount(h.file)).toBe(1);
      await store.write([{ op: 'promise.complete', service: 'Wf', key: 'wf1', name: 'p' }]);
      expect(waiterCount(h.file)).toBe(0);
    });

    it('records a waiter whose journal row is missing, as journal.complete does, unless its invocation is gone', async () => {
      const h = fresh();
      const store = h.open();
      await store.write([
        {
          op: 'invocation.insert',
          row: inv('a', { service: 'Wf', key: 'wf1', status: 'suspended' }),
        },
        {
          op: 'invocation.insert',
          row: inv('b', { service: 'Wf', key: 'wf1', status: 'suspended' }),
        },
        awaitP('a', 2),
        awaitP('b', 0),
      ]);
      // Neither can happen through the Store interface.
      const db = new Database(h.file);
      db.prepare("DELETE FROM journal WHERE invocation_id IN ('a', 'b')").run();
      db.prepare("DELETE FROM invocations WHERE id = 'b'").run();
      db.close();
      expect(
        await store.write([
          { op: 'promise.complete', service: 'Wf', key: 'wf1', name: 'p', value: 'v' },
        ]),
      ).toEqual([{ completed: true, waiters: [{ invocationId: 'a', index: 2, resumed: true }] }]);
      expect(await store.getJournal('a')).toEqual([
        [2, { kind: 'promise', name: 'p', done: true, value: 'v' }],
      ]);
      expect(await store.getJournal('b')).toEqual([]);
      expect(waiterCount(h.file)).toBe(0);
    });
  });

  it('commits concurrent writes together: few transactions and fdatasyncs for many calls', async () => {
    const h = fresh();
    const store = h.open();
    await Promise.all(
      Array.from({ length: 300 }, (_, i) =>
        store.write([{ op: 'invocation.insert', row: inv(`b${i}`) }]),
      ),
    );
    expect(store.stats.writes).toBe(300);
    expect(store.stats.transactions).toBeLessThanOrEqual(3);
    expect(store.stats.syncs).toBe(store.stats.transactions);
  });

  it('checkpoints a growing WAL, reuses it, and keeps every write', async () => {
    const h = fresh();
    const store = openSqliteStore({ path: h.file, checkpointBytes: 64 * 1024 });
    cleanups.push(() => store.close());
    // Checkpoints run on a worker thread, concurrently with writes: keep writing until several
    // have completed (bounded, so a store that never checkpoints fails the test).
    let i = 0;
    for (; i < 20_000 && (i < 5000 || store.stats.checkpoints < 5); i++) {
      await store.write([
        { op: 'invocation.insert', row: inv(`c${i}`, { input: 'x'.repeat(500) }) },
        { op: 'state.set', service: 's', key: `k${i % 10}`, name: 'n', value: i },
      ]);
    }
    expect(store.stats.checkpoints).toBeGreaterThanOrEqual(5);
    // Each of these small transactions appends at least two 4 KiB pages to the WAL: without
    // reuse from its start, the WAL would hold more than 40 MB by now. (It does exceed 64 KiB:
    // writes continue while the worker thread starts and while a checkpoint copies.)
    expect(fs.statSync(`${h.file}-wal`).size).toBeLessThan(16 * 1024 * 1024);
    await store.write([{ op: 'invocation.update', id: 'c0', set: { status: 'completed' } }]);
    await store.close();
    const again = h.open();
    expect(await again.listInvocations({ limit: 100_000 })).toHaveLength(i);
    expect((await again.getInvocation('c0'))?.status).toBe('completed');
    expect(await again.getState('s', `k${(i - 1) % 10}`, 'n')).toBe(i - 1);
  });

  for (const durability of ['fsync', 'os'] as const) {
    it(`keeps every acknowledged write when the process is killed with SIGKILL (${durability})`, async () => {
      const h = fresh(durability);
      const child = runChild([WRITER, h.file, durability, '1000000', '16']);
      // Kill mid-stream, once a good number of writes were acknowledged.
      const acked = await child.waitForLines(500);
      child.kill();
      const out = await child.done;
      expect(out.signal).toBe('SIGKILL');
      const ids = out.lines.filter((l) => l !== 'done');
      expect(ids.length).toBeGreaterThanOrEqual(acked);

      const store = h.open();
      const missing: string[] = [];
      for (const id of ids) {
        const row = await store.getInvocation(id);
        const journal = await store.getJournal(id);
        const acknowledged = await store.getState('Crash', id, 'acked');
        if (!row || journal.length !== 1 || acknowledged !== true) missing.push(id);
      }
      expect(missing).toEqual([]);
      // The database is usable after recovery.
      expect(await store.write([{ op: 'invocation.insert', row: inv('after-crash') }])).toEqual([
        { inserted: true },
      ]);
    });
  }
});

interface ChildResult {
  lines: string[];
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

/** Runs a fixture script in a child process; `go()` writes a line to its stdin. */
function runChild(args: string[]) {
  const child = spawn(process.execPath, ['--import', 'tsx', ...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  let partial = '';
  let stderr = '';
  const lineWaiters: Array<{ n: number; resolve: (n: number) => void }> = [];
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    const parts = (partial + chunk).split('\n');
    partial = parts.pop()!;
    lines.push(...parts);
    for (const w of lineWaiters.splice(0)) {
      if (lines.length >= w.n) w.resolve(lines.length);
      else lineWaiters.push(w);
    }
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const done = new Promise<ChildResult>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      // A line cut by SIGKILL was never fully acknowledged: drop it.
      if (code !== 0 && signal === null)
        reject(new Error(`fixture exited with ${code}: ${stderr}`));
      else resolve({ lines, code, signal, stderr });
    });
  });
  return {
    done,
    kill: () => child.kill('SIGKILL'),
    go: () => child.stdin.end('go\n'),
    waitForLines: (n: number) =>
      new Promise<number>((resolve, reject) => {
        if (lines.length >= n) resolve(lines.length);
        else lineWaiters.push({ n, resolve });
        done.then(
          () => reject(new Error(`store-writer ended before printing ${n} lines: ${stderr}`)),
          reject,
        );
      }),
  };
}
