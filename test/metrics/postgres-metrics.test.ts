import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startApp, type App } from '../../src/app.js';
import { object, service, TerminalError } from '../../src/index.js';
import { FakeClock } from '../../src/testing/index.js';
import { until } from '../helpers.js';
import { scrape, series, value, type Sample } from './prom.js';

/**
 * The gauges `GET /metrics` reads from the store (`keel_invocations` by status,
 * `keel_timers_pending`, `keel_key_queue_depth`), on an app on PostgreSQL (a schema of its own,
 * dropped afterwards): N finished invocations (F failed), a sleeper (suspended, one timer), a
 * delayed send (scheduled), an invocation backing off after a transient error, and two object
 * keys held by sleeping invocations with queues of 3 and 1 behind them. Every value is exact.
 */
const ADMIN = 'admin-token-0123456789abcdef0123456789';
const N = 5;
/** The three sleeps, the delayed start and the retry: each a durable timer. */
const TIMERS = 5;
const F = 2;
const url = inject('postgresUrl');
const schema = `keel_metrics_${randomBytes(4).toString('hex')}`;

const Flow = service({
  name: 'Flow',
  handlers: {
    run: async (ctx, input: { fail: boolean }) =>
      ctx.run('a', () => {
        if (input.fail) throw new TerminalError('refused', { code: 'refused' });
        return 1;
      }),
  },
});
const Sleeper = service({
  name: 'Sleeper',
  handlers: { run: async (ctx) => ctx.sleep('1h') },
});
const Flaky = service({
  name: 'Flaky',
  // The next attempt an hour away: the invocation stays backing-off for the test.
  retry: { maxAttempts: 5, initialInterval: '1h' },
  handlers: {
    run: async () => {
      throw new Error('not yet');
    },
  },
});
const Account = object({
  name: 'Account',
  handlers: { hold: async (ctx) => ctx.sleep('1h') },
});

let app: App;
const clock = new FakeClock();
let samples: Sample[];

beforeAll(async () => {
  app = await startApp({
    services: [Flow, Sleeper, Flaky, Account],
    databaseUrl: url,
    databaseSchema: schema,
    clock,
    port: 0,
    adminPort: 0,
    adminToken: ADMIN,
    logger: () => undefined,
  });
  const e = app.engine;
  const results = await Promise.allSettled(
    Array.from({ length: N }, (_, i) =>
      e.invoke({ service: 'Flow', handler: 'run', input: { fail: i < F } }),
    ),
  );
  expect(results.filter((r) => r.status === 'rejected')).toHaveLength(F);
  const sleeper = await e.send({ service: 'Sleeper', handler: 'run' });
  await e.send({ service: 'Sleeper', handler: 'run', delayMs: 3_600_000 });
  const flaky = await e.send({ service: 'Flaky', handler: 'run' });
  const hot = await e.send({ service: 'Account', handler: 'hold', key: 'hot' });
  for (let i = 0; i < 3; i++) await e.send({ service: 'Account', handler: 'hold', key: 'hot' });
  const warm = await e.send({ service: 'Account', handler: 'hold', key: 'warm' });
  await e.send({ service: 'Account', handler: 'hold', key: 'warm' });
  await until(
    async () => (await e.getInvocation(flaky.invocationId))?.status === 'backing-off',
    'Flaky backing off',
  );
  // Past suspendAfter (1s): the three sleeping invocations leave memory.
  await clock.advance('2s');
  for (const { invocationId: id } of [sleeper, hot, warm])
    await until(async () => (await e.getInvocation(id))?.status === 'suspended', `${id} suspended`);
  samples = await scrape(app.admin.url, ADMIN);
}, 120_000);

afterAll(async () => {
  await app?.close();
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await c.end();
});

describe('store gauges on PostgreSQL', () => {
  it('counts unfinished invocations by status, every status present', () => {
    expect(value(samples, 'keel_invocations', { status: 'suspended' })).toBe(3);
    expect(value(samples, 'keel_invocations', { status: 'pending' })).toBe(4);
    expect(value(samples, 'keel_invocations', { status: 'scheduled' })).toBe(1);
    expect(value(samples, 'keel_invocations', { status: 'backing-off' })).toBe(1);
    expect(value(samples, 'keel_invocations', { status: 'running' })).toBe(0);
    expect(value(samples, 'keel_invocations', { status: 'paused' })).toBe(0);
    expect(value(samples, 'keel_invocations', { status: 'queued' })).toBe(0);
    // Finished invocations are counters, not gauges.
    expect(series(samples, 'keel_invocations')).toHaveLength(7);
    const flow = { service: 'Flow', handler: 'run' };
    expect(
      value(samples, 'keel_invocations_finished_total', { ...flow, outcome: 'completed' }),
    ).toBe(N - F);
    expect(value(samples, 'keel_invocations_finished_total', { ...flow, outcome: 'failed' })).toBe(
      F,
    );
  });

  it('counts the pending timers', () => {
    expect(value(samples, 'keel_timers_pending')).toBe(TIMERS);
  });

  it('reports the object keys with queues, deepest first', () => {
    const depths = series(samples, 'keel_key_queue_depth');
    expect(depths.map((s) => [s.labels.service, s.labels.key, s.value])).toEqual([
      ['Account', 'hot', 3],
      ['Account', 'warm', 1],
    ]);
    expect(value(samples, 'keel_invocations_in_memory')).toBe(0);
  });
});
