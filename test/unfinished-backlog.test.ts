import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, afterEach, describe, expect, inject, it, vi } from 'vitest';
import {
  Engine,
  workflow,
  type WorkflowContext,
  type WorkflowSharedContext,
} from '../src/index.js';
import { kernelOf } from '../src/engine/kernel.js';
import { inv } from '../src/store/conformance.js';
import { openPostgresStore, type PostgresStore } from '../src/store/postgres/index.js';
import { openSqliteStore } from '../src/store/sqlite/index.js';
import type { Store, WriteOp } from '../src/store/types.js';
import { FakeClock, settle } from '../src/testing/index.js';
import { tempDir, until } from './helpers.js';

/**
 * What a backlog of unfinished invocations (sleeping, waiting, scheduled) costs the work that
 * goes on beside it: the periodic reads must follow what runs, not what waits.
 */

describe('a stale read of a suspended invocation', () => {
  let cleanup: (() => void) | undefined;
  let engine: Engine | undefined;
  afterEach(async () => {
    await engine?.stop();
    cleanup?.();
    engine = cleanup = undefined;
  });

  const Waiter = workflow({
    name: 'Waiter',
    run: async (ctx: WorkflowContext) => (await ctx.promise<number>('go').get()) + 1,
    handlers: {
      go: async (ctx: WorkflowSharedContext, n: number) => {
        await ctx.promise<number>('go').resolve(n);
        return 'ok';
      },
    },
  });

  /** The store, counting suspensions and journal reads of `id`. */
  function counting(store: Store): { store: Store; suspends: number; journals: number } {
    const counts = { store, suspends: 0, journals: 0 };
    counts.store = new Proxy(store, {
      get(target, prop, receiver) {
        const v = Reflect.get(target, prop, receiver) as unknown;
        if (prop === 'write')
          return (ops: WriteOp[]) => {
            counts.suspends += ops.filter((o) => o.op === 'invocation.suspend').length;
            return target.write(ops);
          };
        if (prop === 'getJournal')
          return (id: string) => {
            counts.journals++;
            return target.getJournal(id);
          };
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
    return counts;
  }

  it('does not replay it: it waits in the store until a completion, instead of suspending again every second', async () => {
    const dir = tempDir('keel-backlog-');
    cleanup = dir.cleanup;
    const clock = new FakeClock();
    const counts = counting(openSqliteStore({ path: join(dir.dir, 'keel.db') }));
    engine = new Engine({ services: [Waiter], store: counts.store, clock, logger: () => {} });
    await engine.start();
    const { invocationId: id } = await engine.send({ service: 'Waiter', handler: 'run', key: 'w' });
    await until(async () => {
      await clock.advance(1000);
      await settle();
      return (await engine!.getInvocation(id))?.status === 'suspended';
    }, 'the run to suspend');
    const k = kernelOf(engine);
    const row = (await counts.store.getInvocation(id))!;
    counts.suspends = counts.journals = 0;

    // A cluster's sweep read the row while it was still running, and looks at it once its
    // suspension committed (nothing is settling any more): it asks for a resume.
    k.admission.resume({ ...row, status: 'running' });
    await until(() => !k.loading.has(id), 'the journal to load');
    expect(k.active.has(id)).toBe(false);
    for (let i = 0; i < 10; i++) {
      await clock.advance(1000);
      await settle();
    }
    // Before: replayed, suspended a second later (refused: the row is not running), resumed
    // by the refusal, and so on, once per suspendAfter for as long as it waits.
    expect(counts.suspends).toBe(0);
    expect(counts.journals).toBe(1);
    expect((await engine.getInvocation(id))?.status).toBe('suspended');

    // Its completion still runs it.
    expect(await engine.invoke({ service: 'Waiter', handler: 'go', key: 'w', input: 41 })).toBe(
      'ok',
    );
    expect(await engine.attach(id)).toBe(42);
  });
});

describe('the sweep of a PostgreSQL process', () => {
  const url = inject('postgresUrl');
  const schema = `keel_backlog_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Pool({ connectionString: url, max: 1 });
  let store: PostgresStore | undefined;

  afterAll(async () => {
    vi.restoreAllMocks();
    await store?.close();
    await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await admin.end();
  });

  /** Index entries and rows a plan read (EXPLAIN ANALYZE in JSON), over every node. */
  function rowsRead(plan: Record<string, unknown>): number {
    let n = 0;
    const type = plan['Node Type'] as string;
    if (type.includes('Index Scan') || type === 'Seq Scan') n += Number(plan['Actual Rows'] ?? 0);
    n += Number(plan['Rows Removed by Filter'] ?? 0);
    for (const child of (plan.Plans as Array<Record<string, unknown>> | undefined) ?? [])
      n += rowsRead(child);
    return n;
  }

  it("reads this process's running and pending invocations, not every one it owns", async () => {
    store = await openPostgresStore({ url, schema });
    // Statistics as after a burst of inserts, before autovacuum has analyzed the table: the
    // planner chose by its defaults then (and took the owner's index, every unfinished row).
    await admin.query(
      `ALTER TABLE ${schema}.invocations SET (autovacuum_enabled = false, toast.autovacuum_enabled = false)`,
    );
    const waiting = 3000;
    const ops: WriteOp[] = [];
    for (let i = 0; i < waiting; i++)
      ops.push({
        op: 'invocation.insert',
        row: inv(`w${i}`, { status: i % 3 === 0 ? 'scheduled' : 'suspended', owner: 'proc_a' }),
      });
    ops.push({ op: 'invocation.insert', row: inv('r1', { owner: 'proc_a' }) });
    ops.push({ op: 'invocation.insert', row: inv('p1', { status: 'pending', owner: 'proc_a' }) });
    ops.push({ op: 'invocation.insert', row: inv('r2', { owner: 'proc_b' }) });
    await store.write(ops);

    // The statement the store prepares, as it sends it.
    const query = vi.spyOn(pg.Pool.prototype, 'query');
    const runnable = await store.listRunnable('proc_a');
    const seen = query.mock.calls
      .map(([config]) => config as unknown)
      .filter(
        (config): config is pg.QueryConfig =>
          typeof config === 'object' &&
          config !== null &&
          (config as pg.QueryConfig).name?.endsWith('runnable_of') === true,
      );
    query.mockRestore();
    expect(runnable.map((r) => r.id).sort()).toEqual(['p1', 'r1']);
    expect(seen).toHaveLength(1);
    const text = seen[0]!.text;

    const c = await admin.connect();
    try {
      for (const analyzed of [false, true]) {
        if (analyzed) await c.query(`ANALYZE ${schema}.invocations`);
        // Planned with the value (the first executions of a prepared statement) and without
        // it (the generic plan a prepared statement settles on).
        for (const mode of ['force_custom_plan', 'force_generic_plan']) {
          await c.query(`SET plan_cache_mode = ${mode}`);
          await c.query(`PREPARE runnable_of_check(text) AS ${text}`);
          try {
            const { rows } = await c.query<{
              'QUERY PLAN': Array<{ Plan: Record<string, unknown> }>;
            }>("EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE runnable_of_check('proc_a')");
            const read = rowsRead(rows[0]!['QUERY PLAN'][0]!.Plan);
            // Three runnable rows in all (two of them proc_a's) among 3,003: a plan through
            // the owner's unfinished rows reads all 3,002 of proc_a's.
            expect({ analyzed, mode, read: read <= 10 }).toEqual({ analyzed, mode, read: true });
          } finally {
            await c.query('DEALLOCATE runnable_of_check');
          }
        }
      }
    } finally {
      await c.query('RESET plan_cache_mode');
      c.release();
    }
  });
});

describe('a reap with a limit', () => {
  const url = inject('postgresUrl');
  const schema = `keel_reap_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Pool({ connectionString: url, max: 1 });
  const opened: Array<{ close(): Promise<void> }> = [];
  const dirs: Array<() => void> = [];
  let engine: Engine | undefined;

  afterAll(async () => {
    await engine?.stop();
    for (const s of opened) await s.close().catch(() => undefined);
    for (const cleanup of dirs) cleanup();
    await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await admin.query(`DROP SCHEMA IF EXISTS ${schema}_e CASCADE`);
    await admin.end();
  });

  /** A process whose lease ended, owning `n` unfinished invocations. */
  async function deadOwner(store: Store, dead: string, n: number): Promise<void> {
    const ops: WriteOp[] = [{ op: 'process.register', id: dead, leaseUntil: 1 }];
    for (let i = 0; i < n; i++)
      ops.push({
        op: 'invocation.insert',
        row: inv(`${dead}-${String(i).padStart(6, '0')}`, { status: 'suspended', owner: dead }),
      });
    await store.write(ops);
  }

  it.each(['sqlite', 'postgres'])(
    'takes at most that many, and the rest at the next reaps (%s)',
    async (kind) => {
      let store: Store;
      if (kind === 'sqlite') {
        const { dir, cleanup } = tempDir('keel-reap-');
        dirs.push(cleanup);
        store = openSqliteStore({ path: join(dir, 'keel.db') });
      } else store = await openPostgresStore({ url, schema });
      opened.push(store);
      await deadOwner(store, 'proc_dead', 12);
      const rounds: Array<{ reaped: string[]; invocations: string[] }> = [];
      for (let i = 0; i < 4; i++) {
        const [r] = await store.write([
          { op: 'process.reap', now: Date.now(), by: 'proc_alive', limit: 5 },
        ]);
        rounds.push(r as { reaped: string[]; invocations: string[] });
      }
      expect(rounds.map((r) => r.invocations.length)).toEqual([5, 5, 2, 0]);
      // The first round removes the process; its invocations left are an unregistered owner's.
      expect(rounds.map((r) => r.reaped)).toEqual([
        ['proc_dead'],
        ['proc_dead'],
        ['proc_dead'],
        [],
      ]);
      const taken = rounds.flatMap((r) => r.invocations);
      expect(new Set(taken).size).toBe(12);
      // The oldest first.
      expect(rounds[0]!.invocations).toEqual(
        Array.from({ length: 5 }, (_, i) => `proc_dead-${String(i).padStart(6, '0')}`),
      );
      expect(
        (await store.listInvocations({ limit: 20 })).every((r) => r.owner === 'proc_alive'),
      ).toBe(true);
    },
  );

  it('an engine starting next to a dead process with a large backlog adopts it in rounds', async () => {
    const store = await openPostgresStore({ url, schema: `${schema}_e` });
    opened.push(store);
    await deadOwner(store, 'proc_gone', 12_000);
    const reaps: number[] = [];
    const watched = new Proxy(store, {
      get(target, prop, receiver) {
        const v = Reflect.get(target, prop, receiver) as unknown;
        if (prop === 'write')
          return async (ops: WriteOp[]) => {
            const results = await target.write(ops);
            ops.forEach((o, i) => {
              if (o.op === 'process.reap')
                reaps.push((results[i] as { invocations: string[] }).invocations.length);
            });
            return results;
          };
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
    engine = new Engine({ services: [], store: watched, logger: () => {} });
    await engine.start();
    const me = kernelOf(engine).own.processId!;
    const { rows } = await admin.query<{ owner: string; n: number }>(
      `SELECT owner, count(*)::int AS n FROM ${schema}_e.invocations GROUP BY owner`,
    );
    expect(rows).toEqual([{ owner: me, n: 12_000 }]);
    // Before: one reap took all 12,000 in one statement, holding back the heartbeats.
    expect(Math.max(...reaps)).toBeLessThanOrEqual(5000);
    expect(reaps.reduce((a, b) => a + b, 0)).toBe(12_000);
    await engine.stop();
    engine = undefined;
  });
});
