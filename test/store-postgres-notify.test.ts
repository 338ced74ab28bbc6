import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { inv } from '../src/store/conformance.js';
import { encodeCall, KIND } from '../src/store/postgres/codec.js';
import { planBatch } from '../src/store/postgres/group-commit.js';
import { openPostgresStore } from '../src/store/postgres/index.js';
import { messageSubject, type ClusterMessage, type WriteOp } from '../src/store/types.js';

// Migration 17: `notify` ops are blind writes of their own kind, sent by one statement per run,
// and `channel()` is an expression PostgreSQL can inline.

const url = inject('postgresUrl');
const admin = new pg.Pool({ connectionString: url, max: 2 });
admin.on('error', () => {});
afterAll(() => admin.end());

const done = (id: string): WriteOp => ({
  op: 'notify',
  message: { type: 'done', invocationId: id },
});
const finish = (id: string): WriteOp => ({
  op: 'invocation.update',
  id,
  set: { status: 'completed', output: '1', completedAt: 2 },
});

describe('notify ops in a batch', () => {
  it('join the run of blind writes around them instead of cutting it', () => {
    const calls = [
      [finish('a'), done('a')],
      [finish('b'), done('b')],
      [finish('c'), done('c')],
    ];
    const batch = planBatch(calls.map((ops) => encodeCall(ops)));
    // One run over all six ops: updates and notifies.
    expect(batch.plan).toEqual([0, 6, KIND.UPDATE | KIND.NOTIFY]);
    expect(batch.calls).toEqual([2, 2, 2]);
  });

  it('arrive in the order of their ops, from one batch of many calls', async () => {
    const schema = `keel_t_${randomBytes(6).toString('hex')}`;
    const store = await openPostgresStore({ url, schema, poolSize: 2 });
    const got: ClusterMessage[] = [];
    const stop = await store.listen('p1', (m) => got.push(m));
    try {
      const ids = Array.from({ length: 40 }, (_, i) => `inv-${String(i).padStart(2, '0')}`);
      for (const id of ids) await store.write([{ op: 'invocation.insert', row: inv(id) }]);
      const batches = store.stats.batches;
      // Issued together: one batch (or a few), each call an update and messages to two channels.
      await Promise.all(
        ids.map((id, i) =>
          store.write([
            finish(id),
            i % 3 === 0
              ? { op: 'notify', to: 'p1', message: { type: 'wake', invocationId: id } }
              : done(id),
            { op: 'notify', message: { type: 'done', invocationId: `${id}+` } },
          ]),
        ),
      );
      expect(store.stats.batches - batches).toBeLessThan(ids.length);
      const expected = ids.flatMap((id, i) => [
        i % 3 === 0 ? `wake ${id}` : `done ${id}`,
        `done ${id}+`,
      ]);
      const deadline = Date.now() + 10_000;
      while (got.length < expected.length && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 20));
      expect(got.map((m) => `${m.type} ${messageSubject(m)}`)).toEqual(expected);
      const rows = await admin.query<{ n: string }>(
        `SELECT count(*) AS n FROM "${schema}".invocations WHERE status = 'completed'`,
      );
      expect(rows.rows[0]!.n).toBe('40');
    } finally {
      await stop();
      await store.close();
      await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    }
  });

  it('traced inserts and updates stay blind writes, and their traces are stored on every path', async () => {
    const t1 = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    const t2 = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    const calls: WriteOp[][] = [
      [{ op: 'invocation.insert', row: inv('a', { trace: t1 }) }],
      [{ op: 'invocation.update', id: 'b', set: { trace: t2, attempt: 1 } }],
    ];
    const plan = planBatch(calls.map((ops) => encodeCall(ops))).plan;
    expect(plan).toEqual([0, 2, KIND.INSERT | KIND.UPDATE]);

    const schema = `keel_t_${randomBytes(6).toString('hex')}`;
    // Inputs over 100 bytes go to blobs: migration 13's bi wraps the insert.
    const store = await openPostgresStore({ url, schema, poolSize: 2, largePayloadThreshold: 100 });
    try {
      await store.write([{ op: 'invocation.insert', row: inv('taken') }]);
      await store.write([{ op: 'invocation.insert', row: inv('u1') }]);
      // Issued together: the failing call makes the batch run call by call (apply_op).
      const settled = await Promise.allSettled([
        store.write([{ op: 'invocation.insert', row: inv('fast', { trace: t1 }) }]),
        store.write([{ op: 'invocation.insert', row: inv('taken') }]),
        store.write([{ op: 'invocation.update', id: 'u1', set: { trace: t2 } }]),
        store.write([
          {
            op: 'invocation.insert',
            row: inv('big', { trace: t2, input: JSON.stringify('x'.repeat(500)) }),
          },
        ]),
      ]);
      expect(settled.map((r) => r.status)).toEqual([
        'fulfilled',
        'rejected',
        'fulfilled',
        'fulfilled',
      ]);
      expect((await store.getInvocation('fast'))?.trace).toBe(t1);
      // And in a batch of its own, the run path.
      await store.write([
        { op: 'invocation.insert', row: inv('run', { trace: t2 }) },
        { op: 'invocation.update', id: 'fast', set: { trace: undefined, attempt: 2 } },
      ]);
      const traces = await admin.query<{ id: string; trace: string | null }>(
        `SELECT id, trace FROM "${schema}".invocations WHERE id <> 'taken' ORDER BY id`,
      );
      expect(traces.rows).toEqual([
        { id: 'big', trace: t2 },
        { id: 'fast', trace: null },
        { id: 'run', trace: t2 },
        { id: 'u1', trace: t2 },
      ]);
      expect((await store.getInvocation('big'))?.input).toBe(JSON.stringify('x'.repeat(500)));
      expect((await store.getInvocation('fast'))?.attempt).toBe(2);
    } finally {
      await store.close();
      await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    }
  });

  it("still takes a batch planned by version 16's code, its messages ops on their own", async () => {
    const schema = `keel_t_${randomBytes(6).toString('hex')}`;
    const store = await openPostgresStore({ url, schema, poolSize: 1 });
    const got: ClusterMessage[] = [];
    const stop = await store.listen('p1', (m) => got.push(m));
    try {
      await store.write([{ op: 'invocation.insert', row: inv('old') }]);
      // What a process of the previous version sends while a cluster is being upgraded.
      const ops = [
        ['u', 'old', { status: 'completed', output: '1' }],
        ['n', JSON.stringify({ type: 'done', invocationId: 'old' }), null],
        ['n', JSON.stringify({ type: 'wake', invocationId: 'old' }), 'p1'],
      ];
      const { rows } = await admin.query<{ r: unknown }>(
        `SELECT "${schema}".apply($1::jsonb, $2::int[], $3::int[], NULL) AS r`,
        [JSON.stringify(ops), [3], [0, 1, KIND.UPDATE, 1, 2, 0, 2, 3, 0]],
      );
      expect(rows[0]!.r).toEqual([[], []]);
      const deadline = Date.now() + 10_000;
      while (got.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(got.map((m) => `${m.type} ${messageSubject(m)}`)).toEqual(['done old', 'wake old']);
      expect((await store.getInvocation('old'))?.status).toBe('completed');
    } finally {
      await stop();
      await store.close();
      await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    }
  });

  it('keeps the channel names of migration 3, short and hashed', async () => {
    const schema = `keel_t_${randomBytes(6).toString('hex')}`;
    const store = await openPostgresStore({ url, schema, poolSize: 1 });
    try {
      const long = 'p'.repeat(70);
      const { rows } = await admin.query<{ b: string; p: string; l: string; inlined: boolean }>(
        `SELECT "${schema}".channel(NULL) AS b, "${schema}".channel('proc_1') AS p,
                "${schema}".channel($1) AS l,
                (SELECT prosrc NOT LIKE '%FROM%' FROM pg_proc
                 WHERE proname = 'channel' AND pronamespace = $2::regnamespace) AS inlined`,
        [long, schema],
      );
      expect(rows[0]).toEqual({
        b: `keel.${schema}`,
        p: `keel.${schema}.proc_1`,
        l: `keel#${
          (await admin.query<{ h: string }>('SELECT md5($1) AS h', [`keel.${schema}.${long}`]))
            .rows[0]!.h
        }`,
        inlined: true,
      });
    } finally {
      await store.close();
      await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    }
  });
});
