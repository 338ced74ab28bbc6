import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Engine, service } from '../../src/index.js';
import {
  createIntegrations,
  integration,
  type IntegrationEvent,
  type IntegrationRuntime,
} from '../../src/integrations/index.js';
import { openPostgresStore } from '../../src/store/postgres/index.js';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import type { Store } from '../../src/store/types.js';
import { FakeClock } from '../../src/testing/index.js';
import { ProviderServer } from '../fakes/provider-server.js';
import { gate, tempDir } from '../helpers.js';

/**
 * The circuit breaker's state lives in the Store: two engine instances (as two processes would)
 * sharing one store see one circuit. Run on a SQLite file and on PostgreSQL.
 */
let api: ProviderServer;
beforeAll(async () => {
  api = await ProviderServer.start();
});
afterAll(async () => {
  await api.close();
});

const Noop = service({ name: 'Noop', handlers: { noop: async () => null } });

interface Pair {
  engines: Engine[];
  runtimes: IntegrationRuntime[];
  events: IntegrationEvent[];
  clock: FakeClock;
}

async function pair(open: () => Promise<Store>): Promise<Pair> {
  const clock = new FakeClock();
  const events: IntegrationEvent[] = [];
  const engines: Engine[] = [];
  const runtimes: IntegrationRuntime[] = [];
  for (let i = 0; i < 2; i++) {
    const integrations = createIntegrations({
      onEvent: (e) => void events.push(e),
      log: () => undefined,
    });
    const engine = new Engine({
      services: [Noop],
      store: await open(),
      clock,
      logger: () => undefined,
      extensions: [integrations],
    });
    await engine.start();
    engines.push(engine);
    runtimes.push(integrations.runtime);
  }
  return { engines, runtimes, events, clock };
}

async function stop(p: Pair): Promise<void> {
  for (const r of p.runtimes) await r.close();
  for (const e of p.engines) await e.stop();
}

/** The scenario, the same on both stores. */
async function breakerScenario(p: Pair): Promise<void> {
  const name = `Flaky_${randomBytes(3).toString('hex')}`;
  const flaky = integration({
    name,
    baseUrl: api.url,
    retry: false,
    circuitBreaker: { failures: 5, window: '1m', reset: '30s' },
    operations: { ping: { path: '/ping' } },
  });
  const a = p.runtimes[0]!.client(flaky);
  const b = p.runtimes[1]!.client(flaky);
  const ping = (c: typeof a): Promise<unknown> => c.ping().catch((e: unknown) => e);

  api.failAll({ status: 503 });
  const before = api.count('/ping');
  // Five failures within the minute, from both instances.
  for (let i = 0; i < 5; i++) {
    expect(await ping(i % 2 === 0 ? a : b)).toMatchObject({ code: 'integration_unavailable' });
    await p.clock.advance('2s');
  }
  expect(api.count('/ping') - before).toBe(5);
  expect(p.events.map((e) => e.type)).toEqual(['IntegrationCircuitOpened']);

  // The sixth call fails fast in both instances, without reaching the server.
  expect(await ping(a)).toMatchObject({ code: 'circuit_open' });
  expect(await ping(b)).toMatchObject({ code: 'circuit_open' });
  expect(api.count('/ping') - before).toBe(5);

  // After the reset time exactly one probe goes out, from either instance: while it is in
  // flight (the server holds it), the other instance is refused.
  api.failAll(undefined);
  await p.clock.advance('30s');
  const release = gate();
  api.script({ pass: true, until: release.promise });
  const calls = [ping(a), ping(b)];
  expect(await Promise.race(calls)).toMatchObject({ code: 'circuit_open' });
  release.open();
  const probes = await Promise.all(calls);
  expect(api.count('/ping') - before).toBe(6);
  expect(probes.filter((r) => (r as { ok?: boolean }).ok === true)).toHaveLength(1);
  expect(p.events.map((e) => e.type)).toEqual([
    'IntegrationCircuitOpened',
    'IntegrationCircuitHalfOpened',
    'IntegrationCircuitClosed',
  ]);

  // The probe's success closed it for both (the other instance sees it once its copy ages out).
  await p.clock.advance('1s');
  expect(await ping(a)).toEqual({ ok: true });
  expect(await ping(b)).toEqual({ ok: true });
  expect(api.count('/ping') - before).toBe(8);
}

describe('circuit breaker shared through the store', () => {
  it('on one SQLite file: opened by failures in both instances, fails fast in both, one probe', async () => {
    const tmp = tempDir('keel-breaker-');
    const file = join(tmp.dir, 'keel.db');
    const p = await pair(async () => openSqliteStore({ path: file }));
    try {
      await breakerScenario(p);
    } finally {
      await stop(p);
      tmp.cleanup();
    }
  });

  it('on PostgreSQL: the same across two engines on one schema', async () => {
    const url = inject('postgresUrl');
    const schema = `keel_breaker_${randomBytes(4).toString('hex')}`;
    const migrate = await openPostgresStore({ url, schema });
    await migrate.close();
    const p = await pair(() => openPostgresStore({ url, schema }));
    try {
      await breakerScenario(p);
    } finally {
      await stop(p);
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await client.end();
    }
  });
});
