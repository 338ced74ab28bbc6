import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { Engine, service, type Context } from '../../src/index.js';
import { schedule, schedules, type Schedules } from '../../src/schedules/index.js';
import { openPostgresStore } from '../../src/store/postgres/index.js';
import { until } from '../helpers.js';
import { invocationsOf } from './helpers.js';

/**
 * Two processes (engines) on one PostgreSQL schema, the real clock, schedules every second: a
 * declared one both processes fire, and one created through one process's admin API that the
 * other learns of by its refresh. Every tick is one invocation, its handler run once.
 */
const url = inject('postgresUrl');
const schema = `keel_cron_${randomBytes(4).toString('hex')}`;
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

/** Handler runs, by invocation id, across both engines (one process's memory stands for the log). */
const runs = new Map<string, number>();
const Beat = service({
  name: 'Beat',
  handlers: {
    hit: async (ctx: Context) => {
      runs.set(ctx.invocationId, (runs.get(ctx.invocationId) ?? 0) + 1);
    },
  },
});

const everySecond = schedule({
  name: 'every-second',
  cron: '* * * * * *',
  target: { service: Beat, handler: 'hit' },
});

async function start(): Promise<{ engine: Engine; ext: Schedules }> {
  const ext = schedules([everySecond], { refresh: '200ms' });
  const store = await openPostgresStore({ url, schema });
  const engine = new Engine({
    services: [Beat],
    store,
    lease: '2s',
    logger: () => undefined,
    extensions: [ext],
  });
  engines.push(engine);
  await engine.start();
  return { engine, ext };
}

describe('schedules on two processes sharing PostgreSQL', () => {
  it('fire each tick once, whichever process gets there first', async () => {
    const a = await start();
    await start();
    // Created through A's API; B's refresh picks it up, and both fire it.
    await a.ext.create({
      name: 'api-made',
      cron: '* * * * * *',
      target: { service: 'Beat', handler: 'hit' },
    });
    const began = Date.now();
    await until(() => Date.now() - began > 5_000, 'five seconds of ticks', 100_000);
    await Promise.all(engines.map((e) => e.stop()));
    // The engines are stopped: read the rows through a store of the test's own.
    const store = await openPostgresStore({ url, schema });
    const reader = new Engine({ services: [Beat], store, logger: () => undefined });
    const rows = await invocationsOf(reader, 'Beat');
    await store.close();

    for (const name of ['every-second', 'api-made']) {
      const keys = rows
        .map((r) => r.idempotencyKey!)
        .filter((k) => k.startsWith(`schedule:${name}:`))
        .sort();
      const ticks = keys.map((k) => Date.parse(k.slice(`schedule:${name}:`.length)));
      expect(ticks.length, name).toBeGreaterThanOrEqual(4);
      expect(new Set(ticks).size, name).toBe(ticks.length);
      // Consecutive seconds: no tick lost between the first and the last.
      for (let i = 1; i < ticks.length; i++) expect(ticks[i]! - ticks[i - 1]!, name).toBe(1000);
    }
    expect(rows).toHaveLength(new Set(rows.map((r) => r.idempotencyKey)).size);
    // Each finished invocation's handler ran once, in one of the two processes.
    const completed = rows.filter((r) => r.status === 'completed');
    expect(completed.length).toBeGreaterThanOrEqual(rows.length - 4);
    for (const r of completed) expect(runs.get(r.id), r.id).toBe(1);
  });

  it('fire 300 schedules due together once each: bulk reads, bulk compare-and-sets, one loser', async () => {
    const a = await start();
    await start();
    // Every second, all of them: both processes evaluate the 300 together each tick, and the
    // slower one's compare-and-sets of lastTick lose and are read again in bulk. `all`: a
    // process that lags a second under the test's load still fires every tick.
    await Promise.all(
      Array.from({ length: 300 }, (_, i) =>
        a.ext.create({
          name: `bulk-${String(i).padStart(3, '0')}`,
          cron: '* * * * * *',
          target: { service: 'Beat', handler: 'hit' },
          missed: { all: 10 },
        }),
      ),
    );
    const began = Date.now();
    await until(() => Date.now() - began > 3_000, 'three seconds of ticks', 100_000);
    await Promise.all(engines.map((e) => e.stop()));
    const store = await openPostgresStore({ url, schema });
    const reader = new Engine({ services: [Beat], store, logger: () => undefined });
    const rows = (await invocationsOf(reader, 'Beat')).filter((r) =>
      r.idempotencyKey!.startsWith('schedule:bulk-'),
    );
    const kv = await store.listKv('keel.schedules', { prefix: 'bulk-', limit: 1000 });
    await store.close();

    expect(rows).toHaveLength(new Set(rows.map((r) => r.idempotencyKey)).size);
    const byName = new Map<string, number[]>();
    for (const r of rows) {
      const [, name, ...at] = r.idempotencyKey!.split(':');
      byName.set(name!, [...(byName.get(name!) ?? []), Date.parse(at.join(':'))]);
    }
    expect(byName.size).toBe(300);
    const lastTicks = new Map(kv.map((r) => [r.key, (r.value as { lastTick?: number }).lastTick]));
    for (const [name, ticks] of byName) {
      ticks.sort((x, y) => x - y);
      expect(ticks.length, name).toBeGreaterThanOrEqual(2);
      for (let i = 1; i < ticks.length; i++) expect(ticks[i]! - ticks[i - 1]!, name).toBe(1000);
      // Marked through its latest fired tick (a tick sent as the engines stopped may be unmarked).
      expect(lastTicks.get(name), name).toBeGreaterThanOrEqual(ticks[ticks.length - 2] ?? 0);
    }
    const completed = rows.filter((r) => r.status === 'completed');
    for (const r of completed) expect(runs.get(r.id), r.id).toBe(1);
  });
});
