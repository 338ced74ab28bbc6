import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Engine, handler, queue, service, type Context } from '../../src/index.js';
import { openPostgresStore } from '../../src/store/postgres/index.js';
import { until } from '../helpers.js';

/**
 * A flow-control queue shared by two engines on one PostgreSQL schema (two processes of one
 * app): the limits count the work of both, recorded at every enter and exit of a job's body.
 */
const url = inject('postgresUrl');
const schema = `keel_queues_${randomBytes(4).toString('hex')}`;
const admin = new pg.Pool({ connectionString: url, max: 1 });
const engines: Engine[] = [];

beforeAll(async () => {
  const store = await openPostgresStore({ url, schema });
  await store.close();
});

afterAll(async () => {
  for (const e of engines) await e.stop().catch(() => undefined);
  await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await admin.end();
});

describe('a queue shared by two engines on PostgreSQL', () => {
  it('never runs more than 3 at once nor 2 of one key across both, and runs everything once', async () => {
    let total = 0;
    const perKey = new Map<string, number>();
    const peak = { total: 0, perKey: 0 };
    const ran: string[] = [];
    const Q = queue({
      name: 'shared',
      concurrency: 3,
      rateLimit: { limit: 100, period: '1s' },
      perKey: { concurrency: 1 },
    });
    const Jobs = service({
      name: 'Jobs',
      handlers: {
        work: handler(
          { queue: Q, queueKey: (j: { tenant: string }) => j.tenant },
          async (ctx: Context, j: { tenant: string; n: number }) => {
            await ctx.run('work', async () => {
              total++;
              const k = (perKey.get(j.tenant) ?? 0) + 1;
              perKey.set(j.tenant, k);
              peak.total = Math.max(peak.total, total);
              peak.perKey = Math.max(peak.perKey, k);
              ran.push(`${j.tenant}/${j.n}`);
              await new Promise((r) => setTimeout(r, 5));
              total--;
              perKey.set(j.tenant, perKey.get(j.tenant)! - 1);
            });
          },
        ),
      },
    });
    for (let i = 0; i < 2; i++) {
      const e = new Engine({
        services: [Jobs],
        store: await openPostgresStore({ url, schema }),
        lease: '3s',
        logger: () => undefined,
      });
      engines.push(e);
      await e.start();
    }
    const [a, b] = engines as [Engine, Engine];
    const sends: Array<Promise<unknown>> = [];
    for (let n = 0; n < 60; n++)
      sends.push(
        (n % 2 ? a : b).send({
          service: 'Jobs',
          handler: 'work',
          input: { tenant: `t${n % 5}`, n },
        }),
      );
    await Promise.all(sends);
    await until(async () => ran.length >= 60, 'all 60 jobs ran', 2000);
    await until(
      async () => (await a.queues())[0]?.running === 0,
      'no job left running in the queue',
    );
    expect(new Set(ran).size).toBe(60);
    expect(ran).toHaveLength(60);
    expect(peak.total).toBeLessThanOrEqual(3);
    expect(peak.perKey).toBe(1);
    expect(peak.total).toBe(3);
    const done = await a.listInvocations({ status: 'completed', limit: 100 });
    expect(done.invocations).toHaveLength(60);
  });
});

describe('a queue on PostgreSQL with inputs stored out of line', () => {
  it('admits waiting invocations whose input and output live in the blob table, intact', async () => {
    const Q = queue({ name: 'big', concurrency: 1 });
    const got: string[] = [];
    const Big = service({
      name: 'Big',
      handlers: {
        // The first fills the only slot, so the others wait in the queue (not the fast path).
        echo: handler({ queue: Q }, async (ctx: Context, doc: { n: number; body: string }) => {
          await ctx.run('hold', () => new Promise((r) => setTimeout(r, 20)));
          got.push(`${doc.n}:${doc.body.length}:${doc.body.slice(0, 6)}`);
          return { n: doc.n, body: doc.body.toUpperCase() };
        }),
      },
    });
    // A threshold of 1 KiB stores every 4 KiB input and output out of line.
    const e = new Engine({
      services: [Big],
      store: await openPostgresStore({ url, schema, largePayloadThreshold: 1024 }),
      logger: () => undefined,
    });
    engines.push(e);
    await e.start();
    const body = (n: number) => `doc-${n}-`.padEnd(4096, String.fromCharCode(97 + n));
    const sent = await Promise.all(
      [0, 1, 2, 3].map((n) =>
        e.send({ service: 'Big', handler: 'echo', input: { n, body: body(n) } }),
      ),
    );
    const outputs = await Promise.all(sent.map((s) => e.attach(s.invocationId)));
    expect(outputs).toEqual([0, 1, 2, 3].map((n) => ({ n, body: body(n).toUpperCase() })));
    expect([...got].sort()).toEqual([0, 1, 2, 3].map((n) => `${n}:4096:doc-${n}-`));
    // They were stored out of line: an input part and an output part each.
    const { rows } = await admin.query(
      `SELECT count(*)::int AS n FROM ${schema}.invocation_blobs b
         JOIN ${schema}.invocations i ON i.id = b.invocation_id WHERE i.service = 'Big'`,
    );
    expect(rows[0].n).toBeGreaterThanOrEqual(8);
  });
});
