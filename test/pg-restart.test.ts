import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { Engine, object, shared, workflow, type ObjectContext } from '../src/index.js';
import { openPostgresStore } from '../src/store/postgres/index.js';

/**
 * PostgreSQL drops every connection of the cluster in the middle of a run (as a restart or a
 * failover of the database does): the engines reconnect and finish all the work, exactly once.
 */
const url = inject('postgresUrl');
const schema = `keel_pgdrop_${randomBytes(4).toString('hex')}`;
const engines: Engine[] = [];

afterAll(async () => {
  for (const e of engines) await e.stop().catch(() => undefined);
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await client.end();
});

describe('PostgreSQL connections dropped mid-run', () => {
  it('reconnects and finishes every accepted invocation', async () => {
    const runs = new Map<string, number>();
    const Flow = workflow({
      name: 'Flow',
      run: async (ctx, n: number) => {
        let total = 0;
        for (let i = 0; i < 4; i++) {
          total += await ctx.run(`s${i}`, () => {
            runs.set(`${ctx.key}/s${i}`, (runs.get(`${ctx.key}/s${i}`) ?? 0) + 1);
            return n;
          });
          await ctx.sleep(50);
        }
        return total;
      },
    });
    const Counter = object({
      name: 'Counter',
      handlers: {
        add: async (ctx: ObjectContext, n: number) => {
          const t = ((await ctx.get<number>('t')) ?? 0) + n;
          ctx.set('t', t);
          return t;
        },
        get: shared(async (ctx) => (await ctx.get<number>('t')) ?? 0),
      },
    });
    for (let i = 0; i < 2; i++) {
      const store = await openPostgresStore({
        url,
        schema,
        applicationName: `keel-pgdrop-${schema}`,
      });
      const engine = new Engine({
        services: [Flow, Counter],
        store,
        lease: '3s',
        logger: (l, m, f) =>
          process.env.KEEL_DEBUG_TEST && console.log(i, l, m, f.invocationId ?? ''),
      });
      await engine.start();
      engines.push(engine);
    }
    const [a, b] = engines as [Engine, Engine];
    const sent = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        (i % 2 ? a : b).send({ service: 'Flow', handler: 'run', key: `w${i}`, input: i }),
      ),
    );
    const adds = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        (i % 2 ? a : b).send({ service: 'Counter', handler: 'add', key: 'k', input: 1 }),
      ),
    );
    await new Promise((r) => setTimeout(r, 60));

    // Drop every connection the engines hold, twice, as a database restart would.
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    for (let round = 0; round < 2; round++) {
      const { rows } = await admin.query<{ n: number }>(
        'SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE application_name = $1',
        [`keel-pgdrop-${schema}`],
      );
      // The first drop must hit connections; by the second the engines may hold none (the pool
      // reconnects on demand, and the LISTEN connection after a backoff).
      if (round === 0) expect(rows[0]!.n).toBeGreaterThan(0);
      await new Promise((r) => setTimeout(r, 150));
    }
    await admin.end();

    const results = await Promise.all(sent.map((s, i) => (i % 2 ? b : a).attach(s.invocationId)));
    expect(results).toEqual(Array.from({ length: 20 }, (_, i) => 4 * i));
    await Promise.all(adds.map((s) => a.attach(s.invocationId)));
    expect(await b.invoke({ service: 'Counter', handler: 'get', key: 'k' })).toBe(40);
    // A step whose result was journaled never ran again; one cut off by the drop may have.
    expect([...runs.values()].every((n) => n === 1 || n === 2)).toBe(true);
    expect(runs.size).toBe(80);
  }, 60_000);
});
