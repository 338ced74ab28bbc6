/**
 * The PostgreSQL store with several write batches in flight at once (`pipeline` > 1): what it
 * must keep from one batch at a time. Calls that touch the same invocation, key-value entry or
 * object key commit in the order they were made, even when they are issued without waiting and
 * other batches overlap them; a failing call is rolled back alone; a conflict is retried without
 * a later call overtaking it; a connection killed mid-batch fails that batch's calls (and the
 * calls queued behind it) with `store_unavailable` and nothing else, and the store goes on.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, afterEach, describe, expect, inject, it, onTestFinished } from 'vitest';
import { appOptionsFromEnv } from '../src/app.js';
import type { JournalEntry } from '../src/core/journal.js';
import { inv } from '../src/store/conformance.js';
import { type PostgresStoreOptions, openPostgresStore } from '../src/store/postgres/index.js';
import { orderingDomains } from '../src/store/postgres/group-commit.js';
import type { OpResult, WriteOp } from '../src/store/types.js';

const url = inject('postgresUrl');

/** For test bookkeeping: creating and dropping schemas, looking inside, holding locks, killing. */
const admin = new pg.Pool({ connectionString: url, max: 3 });
admin.on('error', () => {});
afterAll(() => admin.end());

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

/** A store on a fresh schema, its connections named `appName` in pg_stat_activity. */
async function open(options: Partial<PostgresStoreOptions> = {}) {
  const schema = `keel_t_${randomBytes(6).toString('hex')}`;
  const appName = `keel-pipe-${randomBytes(4).toString('hex')}`;
  const store = await openPostgresStore({
    url,
    schema,
    poolSize: 6,
    pipeline: 3,
    applicationName: appName,
    ...options,
  });
  cleanups.push(async () => {
    await store.close().catch(() => undefined);
    await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  });
  return { store, schema, appName };
}

/** The next turn of the event loop: calls issued before it and after it go in different batches. */
const turn = () => new Promise<void>((r) => setImmediate(r));

async function until(check: () => Promise<boolean> | boolean, what: string): Promise<void> {
  for (let i = 0; !(await check()); i++) {
    if (i > 3000) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** The backends of `appName` waiting for a row lock, once there is one. */
async function waitingForLock(appName: string): Promise<number[]> {
  let pids: number[] = [];
  await until(async () => {
    const { rows } = await admin.query<{ pid: number }>(
      "SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'",
      [appName],
    );
    pids = rows.map((r) => r.pid);
    return pids.length > 0;
  }, 'a batch of the store waits for a lock');
  return pids;
}

/** A promise's outcome without waiting for it: `settled` flips when it resolves or rejects. */
function watch<T>(p: Promise<T>): { p: Promise<T>; settled: () => boolean } {
  let done = false;
  p.then(
    () => (done = true),
    () => (done = true),
  );
  return { p, settled: () => done };
}

const step = (i: number): JournalEntry => ({ kind: 'run', name: `s${i}`, done: true, value: i });

describe('PostgresStore with several batches in flight (pipeline)', () => {
  it('commits the calls of each invocation and key-value entry in the order they were made', async () => {
    const { store, schema } = await open({ pipeline: 4, poolSize: 8 });
    const INVOCATIONS = 24;
    const ROUNDS = 20;
    const ids = Array.from({ length: INVOCATIONS }, (_, j) => `o${j}`);
    await store.write(ids.map((id): WriteOp => ({ op: 'invocation.insert', row: inv(id) })));
    const next = new Map(ids.map((id) => [id, 0]));
    const results = new Map<string, Array<Promise<OpResult[]>>>(ids.map((id) => [id, []]));
    // Each turn, the next call of a varying subset of the invocations, none awaited: calls of
    // invocations with nothing in common overlap in different batches, and each invocation's
    // next call is queued while its previous one may still be in flight.
    let seed = 7;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    while ([...next.values()].some((r) => r < ROUNDS)) {
      for (const id of ids) {
        const r = next.get(id)!;
        if (r >= ROUNDS || random() < 0.5) continue;
        next.set(id, r + 1);
        results.get(id)!.push(
          store.write([
            { op: 'journal.put', invocationId: id, index: r, entry: step(r) },
            { op: 'invocation.update', id, set: { attempt: r } },
            // Blind: each put adds one to the version, so the versions show the commit order.
            { op: 'kv.put', scope: 'blind', key: id, value: r },
            // Compare-and-set on the version the previous call left: fails if reordered.
            { op: 'kv.put', scope: 'cas', key: id, value: r, expectVersion: r },
            { op: 'state.set', service: 'Svc', key: id, name: 'last', value: r },
          ]),
        );
      }
      await turn();
    }
    for (const id of ids) {
      const answers = await Promise.all(results.get(id)!);
      expect(answers.map((a) => a[2])).toEqual(
        answers.map((_, r) => ({ ok: true, version: r + 1 })),
      );
      expect(answers.map((a) => a[3])).toEqual(
        answers.map((_, r) => ({ ok: true, version: r + 1 })),
      );
      expect((await store.getJournal(id)).map(([i, e]) => [i, e.value])).toEqual(
        Array.from({ length: ROUNDS }, (_, r) => [r, r]),
      );
      expect(await store.getInvocation(id)).toMatchObject({ attempt: ROUNDS - 1 });
      expect(await store.getKv('blind', id)).toMatchObject({ value: ROUNDS - 1, version: ROUNDS });
      expect(await store.getState('Svc', id, 'last')).toBe(ROUNDS - 1);
    }
    const { rows } = await admin.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM "${schema}".journal`,
    );
    expect(rows[0]!.n).toBe(INVOCATIONS * ROUNDS);
    // It did overlap batches, and held calls back for the ones in flight.
    expect(store.stats.pipelined).toBeGreaterThan(0);
    expect(store.stats.held).toBeGreaterThan(0);
    expect(store.stats.writes).toBe(1 + INVOCATIONS * ROUNDS);
  });

  it('loses no increment when read-modify-writes of several counters race on one store', async () => {
    const { store } = await open({ pipeline: 4, poolSize: 8 });
    const COUNTERS = 4;
    const WORKERS = 16;
    const EACH = 12;
    let lostRaces = 0;
    const worker = async (w: number) => {
      const key = `c${w % COUNTERS}`;
      for (let done = 0; done < EACH;) {
        const row = await store.getKv('counters', key);
        const value = ((row?.value as number | undefined) ?? 0) + 1;
        const [r] = (await store.write([
          { op: 'kv.put', scope: 'counters', key, value, expectVersion: row?.version ?? 0 },
        ])) as Array<{ ok: boolean }>;
        if (r!.ok) done++;
        else lostRaces++;
      }
    };
    await Promise.all(Array.from({ length: WORKERS }, (_, w) => worker(w)));
    for (let c = 0; c < COUNTERS; c++) {
      const row = await store.getKv('counters', `c${c}`);
      expect(row?.value).toBe((WORKERS / COUNTERS) * EACH);
      // Every put that succeeded added one version, and only those.
      expect(row?.version).toBe((WORKERS / COUNTERS) * EACH);
    }
    expect(store.stats.writes).toBe(WORKERS * EACH + lostRaces);
  });

  it('rolls a failing call back alone while the batches around it commit', async () => {
    const { store } = await open();
    await store.write([{ op: 'invocation.insert', row: inv('taken') }]);
    const good: Array<Promise<OpResult[]>> = [];
    const bad: Array<Promise<unknown>> = [];
    const after: Array<Promise<OpResult[]>> = [];
    for (let t = 0; t < 30; t++) {
      for (let j = 0; j < 4; j++)
        good.push(
          store.write([
            { op: 'invocation.insert', row: inv(`g${t}-${j}`) },
            { op: 'state.set', service: 'Svc', key: `g${t}-${j}`, name: 'ok', value: true },
          ]),
        );
      if (t % 3 === 0) {
        // Fails at its last op (the id is taken): its first op must not stay either.
        bad.push(
          store
            .write([
              { op: 'kv.put', scope: 'f', key: `k${t}`, value: 'bad' },
              { op: 'invocation.insert', row: inv('taken') },
            ])
            .then(
              () => 'committed',
              (err: unknown) => err,
            ),
        );
        // The same entry, issued right behind it: not rejected with it, applied after it.
        after.push(store.write([{ op: 'kv.put', scope: 'f', key: `k${t}`, value: 'good' }]));
      }
      await turn();
    }
    await Promise.all(good);
    for (const err of await Promise.all(bad)) expect(err).toMatchObject({ code: 'write_failed' });
    expect((await Promise.all(after)).map((r) => r[0])).toEqual(
      after.map(() => ({ ok: true, version: 1 })),
    );
    for (let t = 0; t < 30; t += 3)
      expect(await store.getKv('f', `k${t}`)).toMatchObject({ value: 'good', version: 1 });
    expect(await store.getState('Svc', 'g29-3', 'ok')).toBe(true);
    expect(store.stats.isolated).toBeGreaterThan(0);
    expect(store.stats.pipelined).toBeGreaterThan(0);
  });

  it('retries a batch rolled back for a deadlock; a later call on its invocation stays behind it while other batches commit', async () => {
    const { store, schema, appName } = await open();
    await store.write([
      { op: 'invocation.insert', row: inv('a') },
      { op: 'invocation.insert', row: inv('b') },
    ]);
    const other = await admin.connect();
    try {
      // The other transaction looks for a deadlock later: the store's batch is rolled back.
      await other.query("SET deadlock_timeout = '20s'");
      await other.query('BEGIN');
      await other.query(`UPDATE "${schema}".invocations SET attempt = 7 WHERE id = 'b'`);
      // Locks a (a blind update), then waits for b (a suspension reads before it writes).
      const first = watch(
        store.write([
          { op: 'invocation.update', id: 'a', set: { attempt: 1 } },
          { op: 'invocation.suspend', id: 'b', waitingFor: [], modifiedAt: 5 },
        ]),
      );
      await waitingForLock(appName);
      // Issued while the first waits: the same invocation (held back), and others (not).
      const later = watch(store.write([{ op: 'invocation.update', id: 'a', set: { attempt: 2 } }]));
      const others = Array.from({ length: 20 }, (_, i) =>
        store.write([{ op: 'invocation.insert', row: inv(`x${i}`) }]),
      );
      await Promise.all(others);
      // The first cannot commit while the other transaction holds b: nothing overtook it.
      expect(first.settled()).toBe(false);
      expect(later.settled()).toBe(false);
      // Now a cycle: the other transaction waits for a, the batch for b.
      await other.query(`UPDATE "${schema}".invocations SET attempt = 8 WHERE id = 'a'`);
      await other.query('COMMIT');
      expect(await first.p).toEqual([undefined, { suspended: true }]);
      expect(await later.p).toEqual([undefined]);
    } finally {
      await other.query('ROLLBACK').catch(() => undefined);
      other.release();
    }
    expect(store.stats.conflicts).toBeGreaterThan(0);
    // The retried batch committed after the other transaction, and the later call after it.
    expect(await store.getInvocation('a')).toMatchObject({ attempt: 2 });
    expect(await store.getInvocation('b')).toMatchObject({ attempt: 7, status: 'suspended' });
  });

  it('fails the calls of a batch whose connection is killed mid-batch, and those queued behind them, and goes on', async () => {
    const { store, schema, appName } = await open();
    const acknowledged: string[] = [];
    const rejected: unknown[] = [];
    const rejectedIds: string[] = [];
    let stop = false;
    let n = 0;
    const writer = async () => {
      while (!stop) {
        const id = `w${n++}`;
        try {
          await store.write([
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
    // However the test ends, the writers stop (a failed assertion must not leave them looping
    // against a closed store).
    onTestFinished(() => {
      stop = true;
    });
    const writers = Array.from({ length: 8 }, writer);
    await until(() => acknowledged.length >= 100, 'writes flow');
    const blocker = await admin.connect();
    let blocked: ReturnType<typeof watch<OpResult[]>>;
    let behind: Promise<unknown>;
    try {
      await blocker.query('BEGIN');
      await blocker.query(
        `INSERT INTO "${schema}".state (service, key, name, value) VALUES ('Lock', 'l', 'n', '0')`,
      );
      blocked = watch(
        store.write([
          { op: 'kv.put', scope: 'kill', key: 'x', value: 'blocked' },
          { op: 'state.set', service: 'Lock', key: 'l', name: 'n', value: 1 },
        ]),
      );
      const [pid] = await waitingForLock(appName);
      // Queued behind the stuck call on the same entry: it must never commit after it fails.
      behind = store.write([{ op: 'kv.put', scope: 'kill', key: 'x', value: 'behind' }]).then(
        () => 'committed',
        (err: unknown) => err,
      );
      // The other batches in flight go on meanwhile. Fresh writers: under load every writer's
      // outstanding call may have joined the stuck call's batch (group commit), and waits with it.
      writers.push(...Array.from({ length: 4 }, writer));
      const before = acknowledged.length;
      await until(() => acknowledged.length >= before + 100, 'writes go on beside a stuck batch');
      expect(blocked.settled()).toBe(false);
      const { rows } = await admin.query<{ ok: boolean }>('SELECT pg_terminate_backend($1) AS ok', [
        pid,
      ]);
      expect(rows[0]!.ok).toBe(true);
      await expect(blocked.p).rejects.toMatchObject({
        code: 'store_unavailable',
        message: expect.stringMatching(/terminat|connection/i),
      });
      expect(await behind).toMatchObject({ code: 'store_unavailable' });
    } finally {
      await blocker.query('ROLLBACK');
      blocker.release();
    }
    const afterKill = acknowledged.length;
    await until(() => acknowledged.length >= afterKill + 100, 'writes go on after the kill');
    stop = true;
    await Promise.all(writers);
    // Only the stuck batch's calls and calls queued at that moment failed, all as unavailable.
    for (const err of rejected) expect(err).toMatchObject({ code: 'store_unavailable' });
    // Neither the killed batch nor the call behind it committed; the entry works again.
    expect(await store.getKv('kill', 'x')).toBeUndefined();
    expect(await store.write([{ op: 'kv.put', scope: 'kill', key: 'x', value: 'after' }])).toEqual([
      { ok: true, version: 1 },
    ]);
    // Every acknowledged write is there, whole; a rejected one is all there or not at all.
    const { rows } = await admin.query<{ id: string }>(
      `SELECT i.id FROM "${schema}".invocations i JOIN "${schema}".state s ON s.key = i.id AND s.service = 'Kill'`,
    );
    const stored = new Set(rows.map((r) => r.id));
    expect(acknowledged.filter((id) => !stored.has(id))).toEqual([]);
    const partial = await admin.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM "${schema}".invocations i WHERE i.id = ANY($1) AND NOT EXISTS
         (SELECT 1 FROM "${schema}".state s WHERE s.service = 'Kill' AND s.key = i.id)`,
      [rejectedIds],
    );
    expect(partial.rows[0]!.n).toBe(0);
  });

  it('runs a write that registers a process after every batch in flight, and nothing issued after it before it', async () => {
    const { store, schema, appName } = await open();
    const order: string[] = [];
    const blocker = await admin.connect();
    try {
      await blocker.query('BEGIN');
      await blocker.query(
        `INSERT INTO "${schema}".state (service, key, name, value) VALUES ('Lock', 'l', 'n', '0')`,
      );
      const blocked = store
        .write([{ op: 'state.set', service: 'Lock', key: 'l', name: 'n', value: 1 }])
        .then(() => order.push('blocked'));
      await waitingForLock(appName);
      // Nothing in common with the stuck batch: commits beside it.
      await store.write([{ op: 'invocation.insert', row: inv('before') }]);
      const sent = store.stats.pipelined;
      const held = store.stats.held;
      const register = store
        .write([{ op: 'process.register', id: 'p1', leaseUntil: 1e15 }])
        .then(() => order.push('register'));
      const after = store
        .write([{ op: 'invocation.insert', row: inv('after') }])
        .then(() => order.push('after'));
      // The flush has run (it was scheduled first): both calls were held, none was sent.
      await turn();
      expect(store.stats.pipelined).toBe(sent);
      expect(store.stats.held).toBeGreaterThanOrEqual(held + 2);
      expect(order).toEqual([]);
      await blocker.query('COMMIT');
      await Promise.all([blocked, register, after]);
      expect(order).toEqual(['blocked', 'register', 'after']);
    } finally {
      await blocker.query('ROLLBACK').catch(() => undefined);
      blocker.release();
    }
  });

  it('sends one batch at a time with pipeline 1', async () => {
    const { store } = await open({ pipeline: 1 });
    for (let t = 0; t < 20; t++) {
      void Promise.all(
        Array.from({ length: 5 }, (_, j) =>
          store.write([{ op: 'invocation.insert', row: inv(`s${t}-${j}`) }]),
        ),
      );
      await turn();
    }
    await store.write([{ op: 'invocation.insert', row: inv('last') }]);
    expect(store.stats.writes).toBe(101);
    expect(store.stats.pipelined).toBe(0);
  });

  it('refuses a pipeline that is not a whole number from 1 to the pool size', async () => {
    for (const pipeline of [0, 1.5, 7, 33])
      await expect(
        openPostgresStore({ url, schema: 'keel_never_created', poolSize: 6, pipeline }),
      ).rejects.toMatchObject({ code: 'usage', message: expect.stringMatching(/pipeline/) });
    expect(appOptionsFromEnv({ KEEL_PG_PIPELINE: '3' }).databasePipeline).toBe(3);
    expect(() => appOptionsFromEnv({ KEEL_PG_PIPELINE: 'two' })).toThrow(/KEEL_PG_PIPELINE/);
    expect(() => appOptionsFromEnv({ KEEL_PG_PIPELINE: '0' })).toThrow(/KEEL_PG_PIPELINE/);
  });

  it('orders by invocation, object key, entry and promise, and makes process ops barriers', () => {
    expect(
      orderingDomains([
        { op: 'journal.put', invocationId: 'a', index: 0, entry: step(0) },
        { op: 'state.set', service: 'Cart', key: 'ann', name: 'items', value: [] },
        { op: 'kv.put', scope: 'sc', key: 'k', value: 1 },
        { op: 'invocation.insert', row: inv('b', { key: 'ann', service: 'Cart', callerId: 'a' }) },
      ]),
    ).toEqual(['i\0a', 's\0Cart\0ann', 'v\0sc\0k', 'i\0b', 'i\0a', 'k\0Cart\0ann']);
    expect(orderingDomains([{ op: 'process.heartbeat', id: 'p', leaseUntil: 1 }])).toBeNull();
    expect(
      orderingDomains([
        { op: 'invocation.update', id: 'a', set: {} },
        { op: 'kv.purge', before: 1 },
      ]),
    ).toBeNull();
  });
});
