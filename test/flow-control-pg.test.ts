import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { Engine, service, ThrottledError, type Context } from '../src/index.js';
import { openPostgresStore } from '../src/store/postgres/index.js';
import { gate, pausingReads, until } from './helpers.js';

/**
 * Debounce and throttle shared by two engines (processes) on one PostgreSQL schema: their
 * state is in the store, so the two count and debounce together. Real clock: the periods are
 * long enough that the sends of a burst are never a period apart.
 */
const url = inject('postgresUrl');
const schema = `keel_flow_${randomBytes(4).toString('hex')}`;
const admin = new pg.Pool({ connectionString: url, max: 1 });
let engines: Engine[] = [];

beforeAll(async () => {
  const store = await openPostgresStore({ url, schema });
  await store.close();
});

afterEach(async () => {
  for (const e of engines) await e.stop().catch(() => undefined);
  engines = [];
});

afterAll(async () => {
  await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await admin.end();
});

function target(runs: Array<{ v: number; id: string }>, ranAt: number[] = []) {
  return service({
    name: `Flow_${randomBytes(4).toString('hex')}`,
    handlers: {
      run: async (ctx: Context, v: number) => {
        runs.push({ v, id: ctx.invocationId });
        ranAt.push(Date.now());
        return v;
      },
    },
  });
}

async function makeEngine(services: ConstructorParameters<typeof Engine>[0]['services']) {
  const store = await openPostgresStore({ url, schema });
  const engine = new Engine({ services, store, lease: '2s', logger: () => undefined });
  engines.push(engine);
  await engine.start();
  return engine;
}

describe('debounce on a shared PostgreSQL store', () => {
  it('two engines sending to one key at once start one invocation; the next burst another', async () => {
    const runs: Array<{ v: number; id: string }> = [];
    const Svc = target(runs);
    const a = await makeEngine([Svc]);
    const b = await makeEngine([Svc]);
    const send = (e: Engine, v: number) =>
      e.send({
        service: Svc.name,
        handler: 'run',
        input: v,
        debounce: { key: 'doc', period: '3s' },
      });
    const sent = await Promise.all(
      Array.from({ length: 20 }, (_, v) => send(v % 2 === 0 ? a : b, v)),
    );
    const ids = new Set(sent.map((s) => s.invocationId));
    expect(ids.size).toBe(1);
    expect(sent.filter((s) => !s.existing)).toHaveLength(1);
    const [id] = [...ids];
    // Sequential sends from both engines after the concurrent ones: the last is the input.
    expect((await send(b, 100)).invocationId).toBe(id);
    expect((await send(a, 101)).invocationId).toBe(id);
    await until(
      async () => (await a.getInvocation(id!))?.status === 'completed',
      'the burst to run',
    );
    expect(runs).toEqual([{ v: 101, id }]);
    // After the start, a send begins a new burst, whichever engine sends it.
    const next = await send(b, 200);
    expect(next.invocationId).not.toBe(id);
    expect((await send(a, 201)).invocationId).toBe(next.invocationId);
    await until(
      async () => (await b.getInvocation(next.invocationId))?.status === 'completed',
      'the second burst to run',
    );
    expect(runs).toEqual([
      { v: 101, id },
      { v: 201, id: next.invocationId },
    ]);
    const { rows } = await admin.query(
      `SELECT count(*)::int AS n FROM ${schema}.invocations WHERE service = $1`,
      [Svc.name],
    );
    expect(rows[0].n).toBe(2);
  });
});

describe('debounce: a send of another process while the start is decided', () => {
  it('joins the burst, which then waits its quiet period: it runs once, with that send input', async () => {
    const runs: Array<{ v: number; id: string }> = [];
    const ranAt: number[] = [];
    const Svc = target(runs, ranAt);
    // Engine a's read of the burst's row (its start timer's) waits until the test lets it go.
    let pauseFor: string | undefined;
    const reading = gate();
    const go = gate();
    const storeA = pausingReads(
      await openPostgresStore({ url, schema }),
      () => pauseFor,
      () => {
        pauseFor = undefined;
        reading.open();
        return go.promise;
      },
    );
    const a = new Engine({ services: [Svc], store: storeA, lease: '2s', logger: () => undefined });
    engines.push(a);
    await a.start();
    const b = await makeEngine([Svc]);
    const send = (e: Engine, v: number) =>
      e.send({ service: Svc.name, handler: 'run', input: v, debounce: { key: 'k', period: '1s' } });
    const first = await send(a, 1); // a owns the burst: its timer starts it
    pauseFor = first.invocationId;
    await reading.promise; // a's timer read the row: due
    const joinedAt = Date.now();
    const joined = await send(b, 2); // b's write lands before a's start
    expect(joined.invocationId).toBe(first.invocationId);
    go.open();
    await until(
      async () => (await b.getInvocation(first.invocationId))?.status === 'completed',
      'the burst to run',
    );
    expect(runs).toEqual([{ v: 2, id: first.invocationId }]);
    // a's start expected the runAt it had read; b moved it, so the start waited for the new
    // one: a full period of quiet after b's send (before, it started at once).
    expect(ranAt[0]).toBeGreaterThanOrEqual(joinedAt + 1000);
    // Nothing else was started, and no timer is left behind.
    const { rows } = await admin.query(
      `SELECT (SELECT count(*)::int FROM ${schema}.invocations WHERE service = $1) AS n,
              (SELECT count(*)::int FROM ${schema}.timers WHERE invocation_id = $2) AS t`,
      [Svc.name, first.invocationId],
    );
    expect(rows[0]).toEqual({ n: 1, t: 0 });
  });
});

describe('throttle on a shared PostgreSQL store', () => {
  it('drop: two engines sending 20 at once to a limit of 5 start exactly 5', async () => {
    const runs: Array<{ v: number; id: string }> = [];
    const Svc = target(runs);
    const a = await makeEngine([Svc]);
    const b = await makeEngine([Svc]);
    const outcomes = await Promise.all(
      Array.from({ length: 20 }, (_, v) =>
        (v % 2 === 0 ? a : b)
          .send({
            service: Svc.name,
            handler: 'run',
            input: v,
            throttle: { key: 'tenant', limit: 5, period: '1h', mode: 'drop' },
          })
          .then(
            () => 'accepted',
            (err: unknown) => {
              if (err instanceof ThrottledError) return 'dropped';
              throw err;
            },
          ),
      ),
    );
    expect(outcomes.filter((o) => o === 'accepted')).toHaveLength(5);
    expect(outcomes.filter((o) => o === 'dropped')).toHaveLength(15);
    await until(() => runs.length === 5, 'the accepted sends to run');
    const { rows } = await admin.query(
      `SELECT count(*)::int AS n FROM ${schema}.invocations WHERE service = $1`,
      [Svc.name],
    );
    expect(rows[0].n).toBe(5);
  });

  it('delay: two engines sending 9 at once to a limit of 2 schedule 2 per period slot', async () => {
    const Svc = target([]);
    const a = await makeEngine([Svc]);
    const b = await makeEngine([Svc]);
    const before = Date.now();
    const sent = await Promise.all(
      Array.from({ length: 9 }, (_, v) =>
        (v % 2 === 0 ? a : b).send({
          service: Svc.name,
          handler: 'run',
          input: v,
          throttle: { key: 'tenant', limit: 2, period: '1h' },
        }),
      ),
    );
    const { rows } = await admin.query<{ run_at: string | null; status: string }>(
      `SELECT run_at, status FROM ${schema}.invocations WHERE service = $1`,
      [Svc.name],
    );
    expect(rows).toHaveLength(9);
    expect(sent.filter((s) => s.status === 'scheduled')).toHaveLength(7);
    // The scheduled ones fall into 4 slots an hour apart, at most 2 in each.
    const slots = new Map<number, number>();
    for (const r of rows) {
      if (r.status !== 'scheduled') continue;
      const hours = Math.round((Number(r.run_at) - before) / 3_600_000);
      slots.set(hours, (slots.get(hours) ?? 0) + 1);
    }
    expect([...slots.entries()].sort((x, y) => x[0] - y[0])).toEqual([
      [1, 2],
      [2, 2],
      [3, 2],
      [4, 1],
    ]);
  });
});
