import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, afterEach, describe, expect, inject, it } from 'vitest';
import { inv, storeConformance } from '../src/store/conformance.js';
import {
  type PostgresStore,
  type PostgresStoreOptions,
  SCHEMA_VERSION,
  openPostgresStore,
} from '../src/store/postgres/index.js';
import { MIGRATIONS } from '../src/store/postgres/migrations.js';
import {
  SCHEMA_VERSION as SQLITE_SCHEMA_VERSION,
  openSqliteStore,
} from '../src/store/sqlite/index.js';
import type { JournalEntry } from '../src/core/journal.js';
import { encodeOp } from '../src/store/postgres/codec.js';
import { messageSubject } from '../src/store/types.js';
import type { InvocationStatus, OpResult, Store, WriteOp } from '../src/store/types.js';

const url = inject('postgresUrl');

/** For test bookkeeping: creating and dropping schemas, looking inside, killing connections. */
const admin = new pg.Pool({ connectionString: url, max: 2 });
admin.on('error', () => {});
afterAll(() => admin.end());

function schemaName(): string {
  return `keel_t_${randomBytes(6).toString('hex')}`;
}

/** Opens stores on one fresh schema; `cleanup` closes them and drops the schema. */
function harnessFor(schema = schemaName(), options: Partial<PostgresStoreOptions> = {}) {
  const opened: PostgresStore[] = [];
  const open = async () => {
    const s = await openPostgresStore({ url, schema, poolSize: 4, ...options });
    opened.push(s);
    return s;
  };
  return {
    schema,
    open,
    cleanup: async () => {
      await Promise.allSettled(opened.map((s) => s.close()));
      await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    },
  };
}

storeConformance('postgres', async () => {
  const h = harnessFor();
  return {
    store: await h.open(),
    reopen: h.open,
    another: h.open,
    cleanup: h.cleanup,
    queueKeyRows: async (queue) => {
      const r = await admin.query<{ n: string }>(
        `SELECT count(*) AS n FROM "${h.schema}".queue_keys WHERE queue = $1`,
        [queue],
      );
      return Number(r.rows[0]!.n);
    },
    queueStartLog: {
      read: async (queue, key) => {
        const r =
          key === undefined
            ? await admin.query<{ starts: string }>(
                `SELECT starts FROM "${h.schema}".queues WHERE queue = $1`,
                [queue],
              )
            : await admin.query<{ starts: string }>(
                `SELECT starts FROM "${h.schema}".queue_keys WHERE queue = $1 AND qkey = $2`,
                [queue, key],
              );
        return r.rows[0]?.starts;
      },
      write: async (queue, key, starts) => {
        if (key === undefined)
          await admin.query(
            `INSERT INTO "${h.schema}".queues (queue, turn, starts) VALUES ($1, 0, $2) ` +
              'ON CONFLICT (queue) DO UPDATE SET starts = excluded.starts',
            [queue, starts],
          );
        else
          await admin.query(
            `INSERT INTO "${h.schema}".queue_keys (queue, qkey, waiting, turn, starts) ` +
              'VALUES ($1, $2, 0, 0, $3) ON CONFLICT (queue, qkey) DO UPDATE SET starts = excluded.starts',
            [queue, key, starts],
          );
      },
    },
  };
});

describe('PostgresStore', () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0)) await c();
  });
  function fresh(options: Partial<PostgresStoreOptions> = {}) {
    const h = harnessFor(schemaName(), options);
    cleanups.push(h.cleanup);
    return h;
  }

  describe('migrations', () => {
    it('numbers its migrations like the SQLite store and records the version reached', async () => {
      expect(MIGRATIONS.map((m) => m.version)).toEqual(MIGRATIONS.map((_, i) => i + 1));
      expect(SCHEMA_VERSION).toBe(SQLITE_SCHEMA_VERSION);
      const h = fresh();
      await h.open();
      const { rows } = await admin.query(
        `SELECT version, name FROM "${h.schema}".migrations ORDER BY version`,
      );
      expect(rows).toEqual(MIGRATIONS.map((m) => ({ version: m.version, name: m.name })));
      // Opening again applies nothing.
      await h.open();
      const again = await admin.query(`SELECT count(*)::int AS n FROM "${h.schema}".migrations`);
      expect(again.rows[0].n).toBe(MIGRATIONS.length);
    });

    it('migrates a new schema from three pools at once', async () => {
      for (let attempt = 0; attempt < 5; attempt++) {
        const h = fresh();
        // Each pool connects on its own, so the three migrations overlap.
        const stores = await Promise.all([h.open(), h.open(), h.open()]);
        const { rows } = await admin.query(
          `SELECT version FROM "${h.schema}".migrations ORDER BY version`,
        );
        expect(rows.map((r) => r.version)).toEqual(MIGRATIONS.map((m) => m.version));
        // All three work on the same tables.
        await Promise.all(
          stores.map((s, i) => s.write([{ op: 'invocation.insert', row: inv(`p${i}`) }])),
        );
        expect(await stores[0].listInvocations({})).toHaveLength(3);
      }
    });

    it('refuses a schema with a newer version (schema_too_new) and leaves it alone', async () => {
      const h = fresh();
      const first = await h.open();
      await first.write([{ op: 'invocation.insert', row: inv('kept') }]);
      await admin.query(
        `INSERT INTO "${h.schema}".migrations (version, name) VALUES ($1, 'from_the_future')`,
        [SCHEMA_VERSION + 1],
      );
      const error = await h.open().then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(error).toMatchObject({ code: 'schema_too_new' });
      expect((error as Error).message).toMatch(/upgrade Keel/);
      expect(await first.getInvocation('kept')).toBeDefined();
    });

    it('rejects an invalid schema name with a clear error', async () => {
      for (const schema of ['Keel', 'a-b', 'x"; DROP TABLE y; --', '', 'pg_keel', 'a'.repeat(64)]) {
        await expect(openPostgresStore({ url, schema })).rejects.toThrow(
          /invalid PostgreSQL schema name/,
        );
      }
    });

    it('fails to open with store_unavailable when no server answers', async () => {
      await expect(
        openPostgresStore({ url: 'postgres://postgres@127.0.0.1:1/none', connectTimeoutMs: 2000 }),
      ).rejects.toMatchObject({ code: 'store_unavailable' });
    });
  });

  it('commits concurrent writes together: few batches for many calls', async () => {
    const store = await fresh().open();
    await Promise.all(
      Array.from({ length: 300 }, (_, i) =>
        store.write([{ op: 'invocation.insert', row: inv(`b${i}`) }]),
      ),
    );
    expect(store.stats.writes).toBe(300);
    expect(store.stats.batches).toBeLessThanOrEqual(3);
    expect(store.stats.isolated).toBe(0);
  });

  it('rejects a call with a NUL character in a name alone, and stores one in a value', async () => {
    const store = await fresh().open();
    const bad = store.write([
      { op: 'state.set', service: 's', key: 'k\u0000', name: 'n', value: 1 },
    ]);
    const good = store.write([
      { op: 'state.set', service: 's', key: 'k', name: 'n', value: 'a\u0000b\ud800' },
    ]);
    await expect(bad).rejects.toMatchObject({ code: 'write_failed' });
    await good;
    expect(await store.getState('s', 'k', 'n')).toBe('a\u0000b\ud800');
  });

  it('stores numbers, times and seq as JS numbers', async () => {
    const store = await fresh().open();
    const t = 8_640_000_000_000; // the largest Date
    await store.write([
      { op: 'invocation.insert', row: inv('n', { createdAt: t, runAt: t - 1, callerEntry: 7 }) },
      { op: 'timer.put', timer: { invocationId: 'n', index: -1, fireAt: t } },
    ]);
    const row = await store.getInvocation('n');
    expect(row).toMatchObject({ createdAt: t, runAt: t - 1, callerEntry: 7 });
    expect(typeof row?.seq).toBe('number');
    expect(await store.dueTimers(t, 1)).toEqual([{ invocationId: 'n', index: -1, fireAt: t }]);
    expect(typeof (await store.listKeyHolders())).toBe('object');
  });

  it('answers a taken dedupe key with its holder as updated earlier in the same batch', async () => {
    const store = await fresh().open();
    await store.write([{ op: 'invocation.insert', row: inv('holder', { dedupe: 'D' }) }]);
    // Issued together: one batch, in which the insert's dedupe key is held by the invocation
    // the update changes (the store must not answer with the row as it was before the update).
    const [updated, inserted, updatedAgain] = await Promise.all([
      store.write([{ op: 'invocation.update', id: 'holder', set: { status: 'completed' } }]),
      store.write([{ op: 'invocation.insert', row: inv('dup', { dedupe: 'D' }) }]),
      store.write([{ op: 'invocation.update', id: 'holder', set: { outcome: 'later' } }]),
    ]);
    expect(updated).toEqual([undefined]);
    expect(updatedAgain).toEqual([undefined]);
    expect(inserted).toEqual([
      {
        inserted: false,
        existing: expect.objectContaining({ id: 'holder', status: 'completed' }),
      },
    ]);
    expect((inserted[0] as { existing: object }).existing).not.toHaveProperty('outcome');
    expect(store.stats.batches).toBe(2);
    expect(await store.getInvocation('holder')).toMatchObject({ outcome: 'later' });
  });

  describe('promise waiters (white box)', () => {
    const awaitP = (invocationId: string, index: number, name = 'p'): WriteOp => ({
      op: 'promise.await',
      service: 'Wf',
      key: 'wf1',
      name,
      invocationId,
      index,
      entry: { kind: 'promise', name, done: false },
    });
    const waiterCount = async (schema: string) =>
      (await admin.query(`SELECT count(*)::int AS n FROM "${schema}".promise_waiters`)).rows[0]
        .n as number;

    it('deletes the waiters of a completed promise and of a deleted invocation', async () => {
      const h = fresh();
      const store = await h.open();
      await store.write([
        { op: 'invocation.insert', row: inv('a', { service: 'Wf', key: 'wf1' }) },
        { op: 'invocation.insert', row: inv('b', { service: 'Wf', key: 'wf1' }) },
        awaitP('a', 0),
        awaitP('a', 0),
        awaitP('b', 0),
        awaitP('b', 1, 'q'),
      ]);
      expect(await waiterCount(h.schema)).toBe(3);
      await store.write([{ op: 'invocation.delete', id: 'b' }]);
      expect(await waiterCount(h.schema)).toBe(1);
      await store.write([{ op: 'promise.complete', service: 'Wf', key: 'wf1', name: 'p' }]);
      expect(await waiterCount(h.schema)).toBe(0);
    });

    it('records a waiter whose journal row is missing, unless its invocation is gone', async () => {
      const h = fresh();
      const store = await h.open();
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
      await admin.query(`DELETE FROM "${h.schema}".journal WHERE invocation_id IN ('a', 'b')`);
      await admin.query(`DELETE FROM "${h.schema}".invocations WHERE id = 'b'`);
      expect(
        await store.write([
          { op: 'promise.complete', service: 'Wf', key: 'wf1', name: 'p', value: 'v' },
        ]),
      ).toEqual([{ completed: true, waiters: [{ invocationId: 'a', index: 2, resumed: true }] }]);
      expect(await store.getJournal('a')).toEqual([
        [2, { kind: 'promise', name: 'p', done: true, value: 'v' }],
      ]);
      expect(await waiterCount(h.schema)).toBe(0);
    });

    it('keeps the other fields of an awaited entry exactly when completing it', async () => {
      const h = fresh();
      const store = await h.open();
      await store.write([
        { op: 'invocation.insert', row: inv('a', { service: 'Wf', key: 'wf1' }) },
        {
          op: 'promise.await',
          service: 'Wf',
          key: 'wf1',
          name: 'p',
          invocationId: 'a',
          index: 0,
          entry: { kind: 'promise', name: 'p', done: false, calleeId: 'x\u00e9"', wakeAt: 1.5 },
        },
      ]);
      await store.write([
        { op: 'promise.complete', service: 'Wf', key: 'wf1', name: 'p', value: { big: 2 ** 60 } },
      ]);
      expect(await store.getJournal('a')).toEqual([
        [
          0,
          {
            kind: 'promise',
            name: 'p',
            done: true,
            calleeId: 'x\u00e9"',
            wakeAt: 1.5,
            value: { big: 2 ** 60 },
          },
        ],
      ]);
    });
  });

  describe('several processes on one schema', () => {
    it('completes a promise once when two stores race to complete it', async () => {
      const h = fresh();
      const [a, b] = await Promise.all([h.open(), h.open()]);
      for (let round = 0; round < 20; round++) {
        const name = `p${round}`;
        const complete = (s: PostgresStore, value: string) =>
          s.write([{ op: 'promise.complete', service: 'Wf', key: 'k', name, value }]);
        const results = await Promise.all([complete(a, 'a'), complete(b, 'b')]);
        const completed = results.filter((r) => (r[0] as { completed: boolean }).completed);
        expect(completed).toHaveLength(1);
      }
    });

    it('never loses a waiter when an await and a completion race', async () => {
      const h = fresh();
      const [a, b] = await Promise.all([h.open(), h.open()]);
      const rounds = 30;
      await a.write(
        Array.from({ length: rounds }, (_, i) => ({
          op: 'invocation.insert' as const,
          row: inv(`w${i}`, { service: 'Wf', key: 'k', status: 'running' }),
        })),
      );
      for (let i = 0; i < rounds; i++) {
        const name = `p${i}`;
        const [[awaited]] = await Promise.all([
          a.write([
            {
              op: 'promise.await',
              service: 'Wf',
              key: 'k',
              name,
              invocationId: `w${i}`,
              index: 0,
              entry: { kind: 'promise', name, done: false },
            },
          ]),
          b.write([{ op: 'promise.complete', service: 'Wf', key: 'k', name, value: i }]),
        ]);
        // Either the await saw the completed promise, or the completion completed the waiter:
        // in both cases the entry ends up done.
        expect(awaited).toBeDefined();
        expect(await a.getJournal(`w${i}`)).toEqual([
          [0, { kind: 'promise', name, done: true, value: i }],
        ]);
      }
    });

    it('completes a journal entry once when two stores race', async () => {
      const h = fresh();
      const [a, b] = await Promise.all([h.open(), h.open()]);
      const rounds = 20;
      await a.write(
        Array.from({ length: rounds }, (_, i) => ({
          op: 'invocation.insert' as const,
          row: inv(`c${i}`, { status: 'suspended' }),
        })),
      );
      for (let i = 0; i < rounds; i++) {
        const complete = (s: PostgresStore, value: string) =>
          s.write([
            {
              op: 'journal.complete',
              invocationId: `c${i}`,
              index: 0,
              entry: { kind: 'sleep', name: '', done: true, value },
            },
          ]);
        const results = await Promise.all([complete(a, 'a'), complete(b, 'b')]);
        const won = results.filter((r) => (r[0] as { completed: boolean }).completed);
        expect(won).toHaveLength(1);
      }
    });
  });

  describe('messages (LISTEN/NOTIFY)', () => {
    /** Waits for `check`, polling. */
    const until = async (check: () => boolean | Promise<boolean>, timeoutMs = 10_000) => {
      const deadline = Date.now() + timeoutMs;
      while (!(await check())) {
        if (Date.now() > deadline) throw new Error('timed out');
        await new Promise((r) => setTimeout(r, 10));
      }
    };
    const listeners = async (appName: string) =>
      (
        await admin.query<{ pid: number }>(
          'SELECT pid FROM pg_stat_activity WHERE application_name = $1',
          [`${appName}/listen`],
        )
      ).rows.map((r) => r.pid);

    it('sends a message when its batch commits, not while the batch waits', async () => {
      const h = fresh();
      const store = await h.open();
      const got: string[] = [];
      const stop = await store.listen('p1', (m) => got.push(messageSubject(m)));
      const blocker = await admin.connect();
      try {
        await blocker.query('BEGIN');
        await blocker.query(
          `INSERT INTO "${h.schema}".state (service, key, name, value) VALUES ('S', 'k', 'n', '0')`,
        );
        // pg_notify runs first, then the batch waits for the row lock held above.
        const write = store.write([
          { op: 'notify', to: 'p1', message: { type: 'wake', invocationId: 'a' } },
          { op: 'state.set', service: 'S', key: 'k', name: 'n', value: 1 },
        ]);
        await until(
          async () =>
            (
              await admin.query(
                `SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%.apply(%'`,
              )
            ).rows[0].n > 0,
        );
        await new Promise((r) => setTimeout(r, 200));
        expect(got).toEqual([]);
        await blocker.query('COMMIT');
        expect(await write).toEqual([undefined, undefined]);
        await until(() => got.length > 0);
        expect(got).toEqual(['a']);
      } finally {
        blocker.release();
        await stop();
      }
    });

    it('names channels within 63 bytes, readable when they fit, for any process id', async () => {
      const h = fresh();
      const store = await h.open();
      const channel = async (p: string | null) =>
        (await admin.query(`SELECT "${h.schema}".channel($1) AS c`, [p])).rows[0].c as string;
      expect(await channel(null)).toBe(`keel.${h.schema}`);
      expect(await channel('web-1')).toBe(`keel.${h.schema}.web-1`);
      const ids = ['x'.repeat(300), 'é"; DROP SCHEMA x; --\\'.repeat(5), 'a b"c', 'web-1'];
      for (const id of ids) expect(Buffer.byteLength(await channel(id))).toBeLessThanOrEqual(63);
      const got = new Map<string, string[]>();
      const stops = await Promise.all(
        ids.map((id) =>
          store.listen(id, (m) => got.set(id, [...(got.get(id) ?? []), messageSubject(m)])),
        ),
      );
      try {
        await store.write(
          ids.map((id, i) => ({
            op: 'notify' as const,
            to: id,
            message: { type: 'wake' as const, invocationId: `for-${i}` },
          })),
        );
        await until(() => ids.every((id) => got.has(id)));
        expect(ids.map((id) => got.get(id))).toEqual(ids.map((_, i) => [`for-${i}`]));
      } finally {
        await Promise.all(stops.map((stop) => stop()));
      }
      // A long schema name gets a hashed broadcast channel too.
      const long = `k${randomBytes(31).toString('hex')}`.slice(0, 63);
      const hl = harnessFor(long);
      cleanups.push(hl.cleanup);
      const longStore = await hl.open();
      const c = (await admin.query(`SELECT "${long}".channel(NULL) AS c`)).rows[0].c as string;
      expect(c).toMatch(/^keel#[0-9a-f]{32}$/);
      const heard: string[] = [];
      const stop = await longStore.listen('p', (m) => heard.push(messageSubject(m)));
      await longStore.write([{ op: 'notify', message: { type: 'done', invocationId: 'all' } }]);
      await until(() => heard.length > 0);
      await stop();
    });

    it('listens again after its connection is terminated', async () => {
      const appName = `keel-listen-${randomBytes(4).toString('hex')}`;
      const store = await fresh({ applicationName: appName }).open();
      const got = new Set<string>();
      const stop = await store.listen('p1', (m) => got.add(messageSubject(m)));
      try {
        for (let round = 0; round < 3; round++) {
          const [pid] = await listeners(appName);
          expect(pid).toBeDefined();
          await admin.query('SELECT pg_terminate_backend($1)', [pid]);
          // Messages sent while it is away are lost: keep sending until one arrives.
          let n = 0;
          await until(async () => {
            await store.write([
              {
                op: 'notify',
                to: 'p1',
                message: { type: 'wake', invocationId: `r${round}-${n++}` },
              },
            ]);
            await new Promise((r) => setTimeout(r, 20));
            return [...got].some((id) => id.startsWith(`r${round}-`));
          });
          expect(await listeners(appName)).toHaveLength(1);
          expect(await listeners(appName)).not.toContain(pid);
        }
      } finally {
        await stop();
      }
    });

    it('ends its connection when unsubscribed, and every one when the store closes', async () => {
      const appName = `keel-unsub-${randomBytes(4).toString('hex')}`;
      const store = await fresh({ applicationName: appName }).open();
      const stops = await Promise.all([
        store.listen('p1', () => {}),
        store.listen('p2', () => {}),
        store.listen('p3', () => {}),
      ]);
      expect(await listeners(appName)).toHaveLength(3);
      await stops[0]();
      await stops[0](); // twice is harmless
      await until(async () => (await listeners(appName)).length === 2);
      await store.close();
      await until(async () => (await listeners(appName)).length === 0);
      await expect(store.listen('p4', () => {})).rejects.toMatchObject({ code: 'store_closed' });
      await stops[1](); // after close: harmless
    });
  });

  it('upgrades a version 2 schema in place, keeping its data', async () => {
    const h = fresh();
    const s = `"${h.schema}"`;
    await admin.query(`CREATE SCHEMA ${s}`);
    await admin.query(
      `CREATE TABLE ${s}.migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`,
    );
    for (const m of MIGRATIONS.slice(0, 2)) {
      await admin.query(m.sql(s));
      await admin.query(`INSERT INTO ${s}.migrations (version, name) VALUES ($1, $2)`, [
        m.version,
        m.name,
      ]);
    }
    const insert = (id: string, status: string) =>
      admin.query(
        `INSERT INTO ${s}.invocations (id, service, handler, key, exclusive, status, input, attempt, retry_index, created_at, modified_at) ` +
          `VALUES ($1, 'Obj', 'run', 'k', true, $2, '1', 0, -1, 5, 6)`,
        [id, status],
      );
    await insert('old-running', 'running');
    await insert('old-pending', 'pending');
    await admin.query(
      `INSERT INTO ${s}.journal (invocation_id, idx, kind, name, done) VALUES ('old-running', 0, 'sleep', '', false)`,
    );
    const store = await h.open();
    const { rows } = await admin.query(`SELECT max(version)::int AS v FROM ${s}.migrations`);
    expect(rows[0].v).toBe(SCHEMA_VERSION);
    expect(await store.getInvocation('old-running')).toEqual({
      id: 'old-running',
      service: 'Obj',
      handler: 'run',
      key: 'k',
      exclusive: true,
      status: 'running',
      input: 1,
      attempt: 0,
      retryIndex: -1,
      createdAt: 5,
      modifiedAt: 6,
      seq: expect.any(Number),
    });
    expect(
      await store.write([
        { op: 'key.acquire', service: 'Obj', key: 'k', invocationId: 'old-running' },
        {
          op: 'journal.complete',
          invocationId: 'old-running',
          index: 0,
          entry: { kind: 'sleep', name: '', done: true },
          notifyFrom: 'p1',
        },
        { op: 'invocation.update', id: 'old-running', set: { status: 'completed' } },
        { op: 'key.release', service: 'Obj', key: 'k', invocationId: 'old-running', owner: 'p1' },
        { op: 'invocation.insert', row: inv('new', { owner: 'p1' }) },
      ]),
    ).toEqual([
      { acquired: true, holder: 'old-running' },
      { completed: true, resumed: false },
      undefined,
      { next: expect.objectContaining({ id: 'old-pending', owner: 'p1' }) },
      { inserted: true },
    ]);
    expect((await store.listRunnable('p1')).map((r) => r.id)).toEqual(['old-pending', 'new']);
  });

  it('migration 16 turns the start logs of queues into slots, and the fast path counts them', async () => {
    const h = fresh();
    const s = `"${h.schema}"`;
    await admin.query(`CREATE SCHEMA ${s}`);
    await admin.query(
      `CREATE TABLE ${s}.migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`,
    );
    for (const m of MIGRATIONS.slice(0, 15)) {
      await admin.query(m.sql(s));
      await admin.query(`INSERT INTO ${s}.migrations (version, name) VALUES ($1, $2)`, [
        m.version,
        m.name,
      ]);
    }
    // Start logs of one time per start, as version 15 kept them (a batch shares its time).
    await admin.query(
      `INSERT INTO ${s}.queues (queue, turn, starts) VALUES ` +
        `('q', 9, '[10000,10000,10000,10400]'), ('empty', 1, '[]'), ('new', 2, '[[10000,10050,3]]')`,
    );
    await admin.query(
      `INSERT INTO ${s}.queue_keys (queue, qkey, waiting, turn, starts) VALUES ` +
        `('q', 'A', 0, 9, '[10400,10000]'), ('q', 'B', 0, 3, '[]')`,
    );
    const store = await h.open();
    const { rows: queues } = await admin.query(
      `SELECT queue, starts::jsonb AS starts FROM ${s}.queues ORDER BY queue`,
    );
    expect(queues).toEqual([
      { queue: 'empty', starts: [] },
      { queue: 'new', starts: [[10_000, 10_050, 3]] },
      {
        queue: 'q',
        starts: [
          [10_000, 10_000, 3],
          [10_400, 10_400, 1],
        ],
      },
    ]);
    const { rows: keys } = await admin.query(
      `SELECT qkey, starts::jsonb AS starts FROM ${s}.queue_keys ORDER BY qkey`,
    );
    expect(keys).toEqual([
      {
        qkey: 'A',
        starts: [
          [10_000, 10_000, 1],
          [10_400, 10_400, 1],
        ],
      },
      { qkey: 'B', starts: [] },
    ]);
    // The converted logs count what they counted (4 starts in [10,000, 11,000)), on the fast
    // path (queue_admit_now of migration 16) as in the admission.
    const rate = { limit: 5, periodMs: 1000 };
    const fast = async (id: string, now: number) =>
      (
        await store.write([
          { op: 'invocation.insert', row: inv(id, { status: 'queued' }) },
          {
            op: 'queue.put',
            invocationId: id,
            queue: 'q',
            key: 'C',
            priority: 0,
            admit: { now, rate },
          },
        ])
      )[1];
    expect(await fast('f1', 10_500)).toEqual({ admitted: true });
    expect(await fast('f2', 10_500)).toEqual({ admitted: false });
    const [r] = await store.write([{ op: 'queue.admit', queue: 'q', now: 10_999, max: 10, rate }]);
    expect(r).toMatchObject({ admitted: [], retryAt: 11_000 });
    const { rows: after } = await admin.query(
      `SELECT starts::jsonb AS starts FROM ${s}.queues WHERE queue = 'q'`,
    );
    expect(after[0].starts).toEqual([
      [10_000, 10_000, 3],
      [10_400, 10_400, 1],
      [10_500, 10_500, 1],
    ]);
  });

  it('rejects in-flight writes with store_unavailable when its connections are terminated, then works again', async () => {
    const h = fresh({ applicationName: `keel-kill-${randomBytes(4).toString('hex')}` });
    const store = await h.open();
    const appName = `keel-kill-${h.schema}`;
    await store.close();
    // Reopen with a name that identifies this store's connections.
    const victim = await openPostgresStore({ url, schema: h.schema, applicationName: appName });
    cleanups.push(() => victim.close());

    const acknowledged: string[] = [];
    const rejected: unknown[] = [];
    const rejectedIds: string[] = [];
    let stop = false;
    let n = 0;
    // 16 writers, each writing one invocation after another, until told to stop.
    const writer = async () => {
      while (!stop) {
        const id = `k${n++}`;
        try {
          await victim.write([
            { op: 'invocation.insert', row: inv(id) },
            { op: 'state.set', service: 'Kill', key: id, name: 'acked', value: true },
          ]);
          acknowledged.push(id);
        } catch (err) {
          rejected.push(err);
          rejectedIds.push(id);
        }
      }
    };
    const writers = Array.from({ length: 16 }, writer);
    const terminate = () =>
      admin.query(
        'SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE application_name = $1',
        [appName],
      );
    const waitFor = async (check: () => Promise<boolean> | boolean) => {
      for (let i = 0; !(await check()); i++) {
        if (i > 2000) throw new Error('timed out');
        await new Promise((r) => setTimeout(r, 5));
      }
    };
    // Terminate mid-stream, several times, once writes are flowing each time. To be sure a
    // batch is in flight when its connection dies, one write waits for a row lock held here.
    let killed = 0;
    const stuck: Array<unknown> = [];
    for (let round = 0; round < 3; round++) {
      const before = acknowledged.length;
      await waitFor(() => acknowledged.length >= before + 200);
      const blocker = await admin.connect();
      try {
        await blocker.query('BEGIN');
        await blocker.query(
          `INSERT INTO "${h.schema}".state (service, key, name, value) VALUES ('Kill', 'lock', $1, '0')`,
          [`r${round}`],
        );
        const blocked = victim
          .write([{ op: 'state.set', service: 'Kill', key: 'lock', name: `r${round}`, value: 1 }])
          .then(
            () => 'committed',
            (err: unknown) => err,
          );
        await waitFor(
          async () =>
            (
              await admin.query(
                "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'",
                [appName],
              )
            ).rows[0].n > 0,
        );
        killed += (await terminate()).rows[0].n as number;
        stuck.push(await blocked);
      } finally {
        await blocker.query('ROLLBACK');
        blocker.release();
      }
    }
    const afterKills = acknowledged.length;
    await waitFor(() => acknowledged.length >= afterKills + 200);
    stop = true;
    await Promise.all(writers);

    for (const err of stuck) expect(err).toMatchObject({ code: 'store_unavailable' });
    expect(killed).toBeGreaterThan(0);
    // The calls batched with (or queued behind) the stuck ones were rejected too.
    expect(rejected.length).toBeGreaterThan(0);
    for (const err of rejected) expect(err).toMatchObject({ code: 'store_unavailable' });
    // Writes and reads work again on new connections.
    expect(await victim.write([{ op: 'invocation.insert', row: inv('after') }])).toEqual([
      { inserted: true },
    ]);
    expect(await victim.getInvocation('after')).toBeDefined();
    // Every acknowledged write is there, whole.
    const { rows } = await admin.query<{ id: string }>(
      `SELECT i.id FROM "${h.schema}".invocations i JOIN "${h.schema}".state s ON s.key = i.id AND s.service = 'Kill'`,
    );
    const stored = new Set(rows.map((r) => r.id));
    expect(acknowledged.filter((id) => !stored.has(id))).toEqual([]);
    // A rejected write is all there (it committed before the connection broke) or not at all.
    const invocations = await admin.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM "${h.schema}".invocations WHERE id = ANY($1)`,
      [rejectedIds],
    );
    const states = await admin.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM "${h.schema}".state WHERE key = ANY($1)`,
      [rejectedIds],
    );
    expect(invocations.rows[0]!.n).toBe(states.rows[0]!.n);
  });

  it('retries a read whose pooled connection was terminated while idle', async () => {
    const appName = `keel-idle-${randomBytes(4).toString('hex')}`;
    const store = await fresh({ applicationName: appName }).open();
    await store.write([{ op: 'invocation.insert', row: inv('r') }]);
    for (let round = 0; round < 5; round++) {
      // Warm several pooled connections, then terminate them all while they sit idle.
      await Promise.all(Array.from({ length: 4 }, () => store.getInvocation('r')));
      const { rows } = await admin.query(
        'SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE application_name = $1',
        [appName],
      );
      expect(rows[0].n).toBeGreaterThan(0);
      expect((await store.getInvocation('r'))?.id).toBe('r');
      expect(await store.listInvocations({})).toHaveLength(1);
    }
  });

  describe('conflicts between processes', () => {
    /** Until the store's backend (by application name) waits for a lock. */
    async function waitingForLock(appName: string): Promise<void> {
      for (let i = 0; i < 500; i++) {
        const { rows } = await admin.query(
          "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'",
          [appName],
        );
        if (rows[0].n > 0) return;
        await new Promise((r) => setTimeout(r, 10));
      }
      throw new Error('the store never waited for the lock');
    }

    it('runs a batch PostgreSQL rolled back for a deadlock again, and its caller never sees it', async () => {
      const appName = `keel-deadlock-${randomBytes(4).toString('hex')}`;
      const h = fresh({ applicationName: appName });
      const store = await h.open();
      await store.write([
        { op: 'invocation.insert', row: inv('a') },
        { op: 'invocation.insert', row: inv('b') },
      ]);
      const other = await admin.connect();
      try {
        // The other transaction waits longer before it looks for a deadlock: the store's
        // batch is the one PostgreSQL rolls back.
        await other.query("SET deadlock_timeout = '20s'");
        await other.query('BEGIN');
        await other.query(`UPDATE "${h.schema}".invocations SET attempt = 7 WHERE id = 'b'`);
        // Locks a (a blind update), then waits for b (a suspension reads before it writes).
        const write = store.write([
          { op: 'invocation.update', id: 'a', set: { attempt: 1 } },
          { op: 'invocation.suspend', id: 'b', waitingFor: [], modifiedAt: 5 },
        ]);
        await waitingForLock(appName);
        // Now a cycle: the other transaction waits for a, the batch for b.
        await other.query(`UPDATE "${h.schema}".invocations SET attempt = 8 WHERE id = 'a'`);
        await other.query('COMMIT');
        expect(await write).toEqual([undefined, { suspended: true }]);
      } finally {
        await other.query('ROLLBACK').catch(() => undefined);
        other.release();
      }
      expect(store.stats.conflicts).toBeGreaterThan(0);
      // Applied after the other transaction, as a whole.
      expect(await store.getInvocation('a')).toMatchObject({ attempt: 1 });
      expect(await store.getInvocation('b')).toMatchObject({ attempt: 7, status: 'suspended' });
    });

    describe('a completion racing the suspension of its invocation', () => {
      const sleeping: JournalEntry = { kind: 'sleep', name: '', done: false, wakeAt: 50 };
      const woken: JournalEntry = { kind: 'sleep', name: '', done: true, wakeAt: 50 };
      const suspend: WriteOp = {
        op: 'invocation.suspend',
        id: 'w',
        waitingFor: [0],
        modifiedAt: 5,
      };
      // From another process than the owner: its wake-up is a message, which may be lost (the
      // owner dies, or its connection drops), so the rows alone must leave w runnable.
      const complete: WriteOp = {
        op: 'journal.complete',
        invocationId: 'w',
        index: 0,
        entry: woken,
        notifyFrom: 'p2',
      };

      /** A store whose backend is recognizable, with w running on p1 and waiting for entry 0. */
      async function setUp() {
        const appName = `keel-suspend-${randomBytes(4).toString('hex')}`;
        const h = fresh({ applicationName: appName });
        const store = await h.open();
        await store.write([
          { op: 'invocation.insert', row: inv('w', { status: 'running', owner: 'p1' }) },
          { op: 'journal.put', invocationId: 'w', index: 0, entry: sleeping },
        ]);
        return { appName, schema: h.schema, store };
      }

      /** Runs `op` in a transaction of another connection that stays open until `commit`. */
      async function hold(schema: string, op: WriteOp) {
        const other = await admin.connect();
        await other.query('BEGIN');
        const { rows } = await other.query(`SELECT "${schema}".apply_op($1::jsonb) AS r`, [
          JSON.stringify(encodeOp(op).tuple),
        ]);
        return {
          result: rows[0].r as unknown,
          commit: async () => {
            try {
              await other.query('COMMIT');
            } finally {
              other.release();
            }
          },
        };
      }

      it('resumes it when the suspension committed while the completion waited for it', async () => {
        const { appName, schema, store } = await setUp();
        const held = await hold(schema, suspend);
        expect(held.result).toBe(true);
        const write = store.write([complete]);
        await waitingForLock(appName);
        await held.commit();
        expect(await write).toEqual([{ completed: true, resumed: true, owner: 'p1' }]);
        expect((await store.getInvocation('w'))?.status).toBe('running');
      });

      it('does not suspend it when the completion committed while the suspension waited', async () => {
        const { appName, schema, store } = await setUp();
        const held = await hold(schema, complete);
        const write = store.write([suspend]);
        await waitingForLock(appName);
        await held.commit();
        expect(await write).toEqual([{ suspended: false }]);
        expect((await store.getInvocation('w'))?.status).toBe('running');
      });
    });

    it('reaps without waiting for an invocation another transaction holds, and adopts it later', async () => {
      const h = fresh();
      const store = await h.open();
      await store.write([
        { op: 'process.register', id: 'me', leaseUntil: 1e15 },
        { op: 'process.register', id: 'dead', leaseUntil: 10 },
        { op: 'invocation.insert', row: inv('x', { owner: 'dead' }) },
        { op: 'invocation.insert', row: inv('y', { owner: 'dead' }) },
      ]);
      const other = await admin.connect();
      try {
        await other.query('BEGIN');
        await other.query(`SELECT 1 FROM "${h.schema}".invocations WHERE id = 'x' FOR UPDATE`);
        const reap = store.write([{ op: 'process.reap', now: 20, by: 'me' }]);
        const waited = await Promise.race([
          reap.then(() => false),
          new Promise<boolean>((r) => setTimeout(() => r(true), 3000)),
        ]);
        expect(waited, 'the reaper waited for a locked invocation').toBe(false);
        expect(await reap).toEqual([{ reaped: ['dead'], invocations: ['y'] }]);
        await other.query('COMMIT');
      } finally {
        await other.query('ROLLBACK').catch(() => undefined);
        other.release();
      }
      // Its owner is unregistered now: the next reap adopts it.
      expect(await store.write([{ op: 'process.reap', now: 20, by: 'me' }])).toEqual([
        { reaped: ['dead'], invocations: ['x'] },
      ]);
      expect((await store.getInvocation('x'))?.owner).toBe('me');
    });
  });
});

/** A small deterministic PRNG (mulberry32), so a failing sequence can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Random calls over a few keys, so that calls of one batch often touch the same rows: exercises
 * how the PostgreSQL store cuts batches into runs, and its fallbacks. Inserts mostly use new
 * ids (a call that fails sends its whole batch down the call-by-call path), which later ops
 * then pick from along with a few fixed ones.
 */
function randomCalls(rand: () => number) {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const ids = new Set(['a', 'b', 'c']);
  const recent = ['a', 'b', 'c'];
  let fresh = 0;
  const someId = () => pick(recent);
  const statuses: InvocationStatus[] = ['running', 'suspended', 'pending', 'completed'];
  const value = () => pick([undefined, null, 0, 'x', { n: Math.floor(rand() * 100) }, [1, 'two']]);
  const entry = (done: boolean) => ({
    kind: pick(['run', 'sleep', 'promise'] as const),
    name: pick(['s1', 's2', '']),
    done,
    ...(done && rand() < 0.7 ? { value: value() } : {}),
    ...(rand() < 0.3 ? { wakeAt: Math.floor(rand() * 1000) } : {}),
  });
  const owner = () => pick(['p1', 'p2', 'p3']);
  const maybeOwner = () => (rand() < 0.5 ? { owner: owner() } : {});
  const op = (): WriteOp => {
    const index = Math.floor(rand() * 2);
    const state = { service: 'S', key: pick(['k1', 'k2']), name: pick(['n1', 'n2']) };
    const promise = { service: 'Wf', key: 'wf', name: pick(['p1', 'p2']) };
    switch (Math.floor(rand() * 20)) {
      case 0:
      case 1: {
        let id: string;
        if (rand() < 0.1) {
          id = pick(['a', 'b', 'c']);
        } else {
          id = `n${fresh++}`;
          ids.add(id);
          recent.push(id);
          if (recent.length > 8) recent.splice(3, 1);
        }
        return {
          op: 'invocation.insert',
          row: inv(id, {
            status: pick(statuses),
            key: pick(['', 'k1']),
            exclusive: rand() < 0.5,
            input: value(),
            ...(rand() < 0.5 ? { dedupe: pick(['d1', 'd2', 'd3', 'd4']) } : {}),
            ...maybeOwner(),
          }),
        };
      }
      case 2:
      case 3:
        return {
          op: 'invocation.update',
          id: someId(),
          set: {
            status: pick(statuses),
            ...(rand() < 0.5 ? { output: value() } : {}),
            ...(rand() < 0.3 ? { runAt: undefined, modifiedAt: 5 } : {}),
            ...(rand() < 0.2 ? { dedupe: pick(['d1', 'd5']) } : {}),
            ...(rand() < 0.3 ? { owner: rand() < 0.2 ? undefined : owner() } : {}),
          },
        };
      case 4:
        return { op: 'invocation.delete', id: someId() };
      case 5:
      case 6:
        return { op: 'journal.put', invocationId: someId(), index, entry: entry(rand() < 0.5) };
      case 7:
        return {
          op: 'journal.complete',
          invocationId: someId(),
          index,
          entry: entry(true),
          ...(rand() < 0.5 ? { notifyFrom: owner() } : {}),
        };
      case 8:
      case 9:
        return { op: 'state.set', ...state, value: value() };
      case 10:
        return { op: 'state.delete', ...state };
      case 11:
        return rand() < 0.3
          ? { op: 'state.clear', service: 'S', key: state.key }
          : { op: 'timer.delete', invocationId: someId(), index };
      case 12:
        return { op: 'timer.put', timer: { invocationId: someId(), index, fireAt: index * 10 } };
      case 13:
        return { op: 'timer.delete', invocationId: someId(), index };
      case 14:
        return rand() < 0.5
          ? {
              op: 'promise.complete',
              ...promise,
              value: value(),
              ...(rand() < 0.5 ? { notifyFrom: owner() } : {}),
            }
          : { op: 'promise.complete', ...promise, error: { code: 'no', message: 'denied' } };
      case 15:
        return { op: 'key.acquire', service: 'Svc', key: 'k1', invocationId: someId() };
      case 16:
        return {
          op: 'key.release',
          service: 'Svc',
          key: 'k1',
          invocationId: someId(),
          owner: owner(),
        };
      case 17: {
        const leaseUntil = Math.floor(rand() * 100);
        const r = rand();
        return r < 0.4
          ? { op: 'process.register', id: owner(), leaseUntil }
          : r < 0.7
            ? { op: 'process.heartbeat', id: owner(), leaseUntil }
            : { op: 'process.reap', now: leaseUntil, by: owner() };
      }
      case 18:
        return {
          op: 'notify',
          message: { type: pick(['wake', 'done'] as const), invocationId: someId() },
          ...(rand() < 0.5 ? { to: owner() } : {}),
        };
      default:
        return {
          op: 'promise.await',
          ...promise,
          invocationId: someId(),
          index,
          entry: { kind: 'promise', name: promise.name, done: false },
        };
    }
  };
  return { ids, next: () => Array.from({ length: 1 + Math.floor(rand() * 3) }, op) };
}

/** A copy without `seq` fields: stores number arrival order differently. */
function withoutSeq(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(withoutSeq);
  if (v === null || typeof v !== 'object') return v;
  return Object.fromEntries(
    Object.entries(v)
      .filter(([k]) => k !== 'seq')
      .map(([k, x]) => [k, withoutSeq(x)]),
  );
}

/** Results and errors without what legitimately differs between stores: seq, messages. */
function comparable(settled: PromiseSettledResult<OpResult[]>): unknown {
  if (settled.status === 'rejected') return { error: (settled.reason as { code: string }).code };
  return withoutSeq(settled.value);
}

/** Everything a store holds about the keys `randomCall` uses. */
async function contents(store: Store, ids: Iterable<string>): Promise<unknown> {
  const out: Record<string, unknown> = {};
  for (const id of ids) {
    out[`inv ${id}`] = withoutSeq(await store.getInvocation(id));
    out[`journal ${id}`] = await store.getJournal(id);
  }
  for (const d of ['d1', 'd2', 'd3', 'd4', 'd5'])
    out[`dedupe ${d}`] = (await store.findByDedupe(d))?.id;
  for (const key of ['k1', 'k2']) {
    out[`keys ${key}`] = await store.getStateKeys('S', key);
    for (const name of ['n1', 'n2'])
      out[`state ${key} ${name}`] = await store.getState('S', key, name);
  }
  for (const name of ['p1', 'p2'])
    out[`promise ${name}`] = await store.getPromise('Wf', 'wf', name);
  out.timers = await store.dueTimers(1_000_000, 1000);
  out.runnable = (await store.listRunnable()).map((r) => r.id);
  for (const owner of ['p1', 'p2', 'p3']) {
    out[`runnable ${owner}`] = (await store.listRunnable(owner)).map((r) => r.id);
    out[`timers ${owner}`] = await store.dueTimers(1_000_000, 1000, owner);
  }
  // Who holds the key: a probe acquire (last, it takes the key when free).
  out.holder = (
    await store.write([{ op: 'key.acquire', service: 'Svc', key: 'k1', invocationId: 'probe' }])
  )[0];
  out.holders = (await store.listKeyHolders()).map((r) => r.id);
  out.listed = (await store.listInvocations({ limit: 1000 })).map((r) => r.id);
  return out;
}

describe('PostgresStore against the SQLite store', () => {
  it('gives the same results and contents for random concurrent writes', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-diff-'));
    const sqlite = openSqliteStore({ path: path.join(dir, 'keel.db'), durability: 'os' });
    const h = harnessFor();
    try {
      const postgres = await h.open();
      const seed = Number(process.env.KEEL_DIFF_SEED ?? Date.now() % 1_000_000);
      const rand = prng(seed);
      const calls = randomCalls(rand);
      let fallbacks = 0;
      for (let round = 0; round < 300; round++) {
        // Issued together, so each store commits them in a few batches.
        const batch = Array.from({ length: 1 + Math.floor(rand() * 24) }, calls.next);
        const [a, b] = await Promise.all([
          Promise.allSettled(batch.map((ops) => sqlite.write(ops))),
          Promise.allSettled(batch.map((ops) => postgres.write(ops))),
        ]);
        expect(b.map(comparable), `seed ${seed}, round ${round}`).toEqual(a.map(comparable));
        fallbacks = postgres.stats.isolated;
      }
      expect(await contents(postgres, calls.ids), `seed ${seed}`).toEqual(
        await contents(sqlite, calls.ids),
      );
      // The sequences include failing calls (duplicate ids), so batches ran call by call too.
      expect(fallbacks).toBeGreaterThan(0);
    } finally {
      await sqlite.close();
      fs.rmSync(dir, { recursive: true, force: true });
      await h.cleanup();
    }
  });
});
