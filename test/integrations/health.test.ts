import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { serveAdmin } from '../../src/admin/server.js';
import { Engine, service } from '../../src/index.js';
import {
  createIntegrations,
  integration,
  IntegrationRuntime,
  oauth2,
  type IntegrationEvent,
} from '../../src/integrations/index.js';
import { parseIntegrations } from '../../src/integrations/dsl.js';
import { openPostgresStore } from '../../src/store/postgres/index.js';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import type { Store } from '../../src/store/types.js';
import { FakeClock } from '../../src/testing/index.js';
import { ProviderServer } from '../fakes/provider-server.js';
import { tempDir, until } from '../helpers.js';

/**
 * Active health checks: API integrations with a `healthCheckPath` probed on their interval
 * (real HTTP to a local fake), results on the admin API, one event per change, also across two
 * engines sharing a store; probes bypass the breaker and the rate limiter.
 */
let api: ProviderServer;
beforeAll(async () => {
  api = await ProviderServer.start();
});
afterAll(async () => {
  await api.close();
});

const unique = (prefix: string): string => `${prefix}_${randomBytes(3).toString('hex')}`;
const probesOf = (name: string): number =>
  api.requests.filter((r) => r.path === '/ping' && r.query.probe === name).length;

describe('health checks: declaration', () => {
  it('resolves healthCheckPath and healthCheckInterval, and refuses bad ones naming the field', () => {
    const i = integration({
      name: 'H',
      baseUrl: 'http://127.0.0.1:1',
      healthCheckPath: '/health',
      healthCheckInterval: '15s',
    });
    expect(i.healthCheck).toEqual({ path: '/health', intervalMs: 15_000, timeoutMs: 5000 });
    expect(integration({ name: 'N', baseUrl: 'http://x.test' }).healthCheck).toBeUndefined();
    expect(
      integration({ name: 'D', baseUrl: 'http://x.test', healthCheckPath: '/h', timeout: '2s' })
        .healthCheck,
    ).toEqual({ path: '/h', intervalMs: 30_000, timeoutMs: 2000 });
    expect(() =>
      integration({ name: 'B', baseUrl: 'http://x.test', healthCheckPath: 'health' }),
    ).toThrow(/healthCheckPath.*must be a path starting with \//);
    expect(() =>
      integration({ name: 'B', baseUrl: 'http://x.test', healthCheckInterval: '30s' }),
    ).toThrow(/healthCheckInterval.*healthCheckPath is not/);
    expect(() =>
      integration({
        name: 'B',
        baseUrl: 'http://x.test',
        healthCheckPath: '/h',
        healthCheckInterval: '100ms',
      }),
    ).toThrow(/healthCheckInterval.*at least 1s/);
    expect(() => integration({ name: 'B', healthCheckPath: '/h' })).toThrow(/needs a baseUrl/);
  });

  it('reads health_check in the DSL (phrase and block) and in JSON', () => {
    const [a, b, c] = parseIntegrations(`
integration A {
    base_url: "http://a.test"
    health_check: "/health" every 30s
}
integration B {
    base_url: "http://b.test"
    health_check: { path: "/status", every: 1m }
}
integration C {
    base_url: "http://c.test"
    health_check: "/ping"
}
`);
    expect([a?.healthCheckPath, a?.healthCheckInterval]).toEqual(['/health', 30_000]);
    expect([b?.healthCheckPath, b?.healthCheckInterval]).toEqual(['/status', 60_000]);
    expect([c?.healthCheckPath, c?.healthCheckInterval]).toEqual(['/ping', undefined]);
    const [j] = parseIntegrations(
      JSON.stringify({
        integrations: [
          {
            name: 'J',
            base_url: 'http://j.test',
            health_check: { path: '/health', interval: '10s' },
          },
        ],
      }),
    );
    expect([j?.healthCheckPath, j?.healthCheckInterval]).toEqual(['/health', 10_000]);
    const [flat] = parseIntegrations(
      `integration F {\n  base_url: "http://f.test"\n  health_check_path: "/up"\n  health_check_interval: 45s\n}`,
    );
    expect([flat?.healthCheckPath, flat?.healthCheckInterval]).toEqual(['/up', 45_000]);
    expect(() =>
      parseIntegrations(
        `integration F {\n  base_url: "http://f.test"\n  health_check: "/a"\n  health_check_interval: 45s\n}`,
      ),
    ).toThrow(/line 4.*either health_check or health_check_interval/);
    expect(() =>
      parseIntegrations(
        `integration F {\n  base_url: "http://f.test"\n  health_check_interval: 45s\n}`,
      ),
    ).toThrow(/line 3.*healthCheckPath is not/);
    expect(() =>
      parseIntegrations(
        `integration A {\n  base_url: "http://a.test"\n  health_check: "/h" every 10\n}`,
      ),
    ).toThrow(/line 3.*health_check/);
    expect(() =>
      parseIntegrations(
        `integration A {\n  base_url: "http://a.test"\n  health_check: "/h" every 200ms\n}`,
      ),
    ).toThrow(/line 3.*at least 1s/);
    expect(() =>
      parseIntegrations(
        `integration A {\n  base_url: "http://a.test"\n  health_check: { every: 1m }\n}`,
      ),
    ).toThrow(/path is missing/);
  });
});

describe('health checks: probes', () => {
  it('healthy → unhealthy → recovered, one event each, and the admin view of each step', async () => {
    const name = unique('Probed');
    const events: IntegrationEvent[] = [];
    const runtime = new IntegrationRuntime({
      log: () => undefined,
      onEvent: (e) => void events.push(e),
    });
    const probed = integration({
      name,
      baseUrl: api.url,
      healthCheckPath: `/ping?probe=${name}`,
      operations: { ping: { path: '/ping' } },
    });
    runtime.register(probed);
    try {
      expect(runtime.health.status(name)).toMatchObject({ result: 'pending', runs: 0 });
      expect(await runtime.health.probeNow(name)).toMatchObject({
        result: 'healthy',
        consecutiveFailures: 0,
        runs: 1,
      });
      expect(events).toEqual([]);
      expect(probesOf(name)).toBe(1);

      api.failAll({ status: 503 });
      const down = await runtime.health.probeNow(name);
      expect(down).toMatchObject({ result: 'unhealthy', consecutiveFailures: 1 });
      expect(down?.lastError?.message).toMatch(/answered 503/);
      await runtime.health.probeNow(name);
      await runtime.health.probeNow(name);
      expect(runtime.health.status(name)?.consecutiveFailures).toBe(3);
      await until(() => events.length >= 1, 'the unhealthy event');
      expect(events.map((e) => e.type)).toEqual(['IntegrationUnhealthy']);
      expect(events[0]).toMatchObject({
        integration: name,
        kind: 'api',
        consecutiveFailures: 1,
        error: expect.stringMatching(/503/),
      });

      api.failAll(undefined);
      expect(await runtime.health.probeNow(name)).toMatchObject({ result: 'healthy' });
      await runtime.health.probeNow(name);
      await until(() => events.length >= 2, 'the recovered event');
      expect(events.map((e) => e.type)).toEqual(['IntegrationUnhealthy', 'IntegrationRecovered']);
      expect(new Set(events.map((e) => e.id)).size).toBe(2);
      expect(probesOf(name)).toBe(6);
    } finally {
      api.failAll(undefined);
      await runtime.close();
    }
  });

  it('probes with the integration’s auth: an OAuth2 token, fetched again after a 401', async () => {
    const name = unique('Partner');
    const runtime = new IntegrationRuntime({
      env: { CLIENT_SECRET: 's3cr3t' },
      log: () => undefined,
    });
    runtime.register(
      integration({
        name,
        baseUrl: api.url,
        auth: oauth2({
          tokenUrl: `${api.url}/oauth/token`,
          clientId: 'keel',
          clientSecret: { env: 'CLIENT_SECRET' },
        }),
        healthCheckPath: '/me',
        operations: { me: { path: '/me' } },
      }),
    );
    try {
      const from = api.requests.length;
      expect(await runtime.health.probeNow(name)).toMatchObject({ result: 'healthy' });
      const probe = api.requests.slice(from).find((r) => r.path === '/me');
      expect(probe?.headers.authorization).toMatch(/^Bearer tok-\d+$/);
      expect(probe?.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
      // Revoked: that probe fails (and drops the token); the next one gets a new token.
      api.revokeTokens();
      const down = await runtime.health.probeNow(name);
      expect(down?.lastError?.message).toBe('GET /me answered 401');
      expect(await runtime.health.probeNow(name)).toMatchObject({ result: 'healthy' });
    } finally {
      await runtime.close();
    }
  });

  it('a probe never goes through the breaker or the rate limiter, and never opens the circuit', async () => {
    const name = unique('Guarded');
    const runtime = new IntegrationRuntime({ log: () => undefined });
    const guarded = integration({
      name,
      baseUrl: api.url,
      retry: false,
      healthCheckPath: `/ping?probe=${name}`,
      circuitBreaker: { failures: 2, window: '1m', reset: '1h' },
      rateLimit: { requests: 1000, per: '1s' },
      operations: { ping: { path: '/ping' } },
    });
    const client = runtime.client(guarded);
    const h = runtime.get(name);
    try {
      // Failing probes: the circuit stays closed.
      api.failAll({ status: 503 });
      for (let i = 0; i < 4; i++) await runtime.health.probeNow(name);
      expect(runtime.health.status(name)?.consecutiveFailures).toBe(4);
      expect((await h.breaker!.status()).state).toBe('closed');
      expect(h.stats.snapshot(Date.now()).attempts).toBe(0);
      expect((await h.limiter!.usage()).used).toBe(0);

      // Two failing calls open it (and take two permits).
      for (let i = 0; i < 2; i++) await client.ping().catch(() => undefined);
      expect((await h.breaker!.status()).state).toBe('open');
      await expect(client.ping()).rejects.toMatchObject({ code: 'circuit_open' });

      // The API is back: calls still fail fast, the probe reaches it and says so.
      api.failAll(undefined);
      const before = probesOf(name);
      const permits = (await h.limiter!.usage()).used;
      expect(await runtime.health.probeNow(name)).toMatchObject({ result: 'healthy' });
      expect(probesOf(name)).toBe(before + 1);
      expect((await h.limiter!.usage()).used).toBe(permits);
      expect((await h.breaker!.status()).state).toBe('open');
      await expect(client.ping()).rejects.toMatchObject({ code: 'circuit_open' });
    } finally {
      api.failAll(undefined);
      await runtime.close();
    }
  });

  it('runs on its interval on the engine clock, and status serves 150 integrations from memory', async () => {
    const tmp = tempDir('keel-health-');
    const clock = new FakeClock();
    const start = clock.now();
    const prefix = unique('Many');
    const many = Array.from({ length: 150 }, (_, i) =>
      integration({
        name: `${prefix}_${i}`,
        baseUrl: api.url,
        healthCheckPath: `/ping?probe=${prefix}_${i}`,
        healthCheckInterval: '1m',
        operations: { ping: { path: '/ping' } },
      }),
    );
    const integrations = createIntegrations({ integrations: many, log: () => undefined });
    const engine = new Engine({
      services: [service({ name: 'Noop', handlers: { noop: async () => null } })],
      store: openSqliteStore({ path: join(tmp.dir, 'keel.db') }),
      clock,
      logger: () => undefined,
      extensions: [integrations],
    });
    await engine.start();
    const admin = await serveAdmin(engine, { port: 0 });
    const status = async (): Promise<any> =>
      (await fetch(`${admin.url}/integrations/status`)).json();
    try {
      const first = await status();
      expect(first.integrations).toHaveLength(150);
      expect(first.integrations[0]).toEqual({
        name: `${prefix}_0`,
        kind: 'api',
        type: 'rest',
        status: 'healthy',
        circuit_state: 'none',
        error_rate: 0,
        health_check: 'pending',
      });
      const countAll = (): number => many.reduce((n, i) => n + probesOf(i.name), 0);
      expect(countAll()).toBe(0);

      // Within the first 5 s every integration is probed once; a minute later, once more.
      await clock.advance('5s');
      await until(() => countAll() === 150, 'a first probe of each');
      await until(
        () => many.every((i) => integrations.runtime.health.status(i.name)?.runs === 1),
        'every first probe recorded',
      );
      await clock.advance('1m');
      await until(() => countAll() === 300, 'a second probe of each');
      await until(
        () => many.every((i) => integrations.runtime.health.status(i.name)?.runs === 2),
        'every second probe recorded',
      );

      // The status route probes nothing itself.
      const seen = countAll();
      const after = await status();
      expect(countAll()).toBe(seen);
      expect(after.integrations.every((r: any) => r.health_check === 'healthy')).toBe(true);

      const one: any = await (await fetch(`${admin.url}/integrations/${prefix}_7/health`)).json();
      expect(one.probe).toMatchObject({
        result: 'healthy',
        consecutive_failures: 0,
        last_error: null,
        interval_ms: 60_000,
        cluster_status: 'healthy',
        runs: 2,
      });
      expect(typeof one.probe.latency_ms).toBe('number');
      expect(Date.parse(one.probe.last_probe_at)).toBeGreaterThanOrEqual(start + 60_000);
    } finally {
      await admin.close();
      await engine.stop();
      await integrations.close();
      tmp.cleanup();
    }
  });
});

describe('health checks: two engines on one store', () => {
  const Alerts = service({
    name: 'Alerts',
    handlers: {
      health: async (_ctx, e: IntegrationEvent) => {
        received.push(e);
        return null;
      },
    },
  });
  let received: IntegrationEvent[] = [];

  async function scenario(open: () => Promise<Store>): Promise<void> {
    received = [];
    const name = unique('Shared');
    const declared = integration({
      name,
      baseUrl: api.url,
      healthCheckPath: `/ping?probe=${name}`,
      operations: { ping: { path: '/ping' } },
    });
    const published: IntegrationEvent[] = [];
    const engines: Engine[] = [];
    const runtimes: IntegrationRuntime[] = [];
    for (let i = 0; i < 2; i++) {
      const ext = createIntegrations({
        integrations: [declared],
        subscribers: [{ service: 'Alerts', handler: 'health' }],
        onEvent: (e) => void published.push(e),
        log: () => undefined,
      });
      const engine = new Engine({
        services: [Alerts],
        store: await open(),
        clock: new FakeClock(),
        logger: () => undefined,
        extensions: [ext],
      });
      await engine.start();
      engines.push(engine);
      runtimes.push(ext.runtime);
    }
    const [a, b] = runtimes as [IntegrationRuntime, IntegrationRuntime];
    const both = async (): Promise<void> => {
      await Promise.all([a.health.probeNow(name), b.health.probeNow(name)]);
    };
    try {
      await both();
      expect(published).toEqual([]);

      // Both processes see it fail, at the same moment and again: one event.
      api.failAll({ status: 500 });
      await both();
      await both();
      expect(a.health.status(name)?.result).toBe('unhealthy');
      expect(b.health.status(name)?.result).toBe('unhealthy');
      await until(() => received.length >= 1, 'the unhealthy event delivered');
      expect(published.map((e) => e.type)).toEqual(['IntegrationUnhealthy']);

      // Both see it recover: one event.
      api.failAll(undefined);
      await both();
      await both();
      await until(() => received.length >= 2, 'the recovered event delivered');
      expect(published.map((e) => e.type)).toEqual([
        'IntegrationUnhealthy',
        'IntegrationRecovered',
      ]);

      // A third process starting now finds the shared verdict healthy: no event of its own.
      const late = createIntegrations({
        integrations: [declared],
        log: () => undefined,
        onEvent: (e) => void published.push(e),
      });
      const lateEngine = new Engine({
        services: [Alerts],
        store: await open(),
        clock: new FakeClock(),
        logger: () => undefined,
        extensions: [late],
      });
      await lateEngine.start();
      engines.push(lateEngine);
      await late.runtime.health.probeNow(name);
      expect(late.runtime.health.status(name)?.clusterHealthy).toBe(true);
      expect(published).toHaveLength(2);

      // Each subscriber ran once per event.
      for (const e of engines) await e.stop();
      expect(received.map((e) => e.type)).toEqual(['IntegrationUnhealthy', 'IntegrationRecovered']);
    } finally {
      api.failAll(undefined);
      for (const e of engines) await e.stop().catch(() => undefined);
      for (const r of runtimes) await r.close();
    }
  }

  it('on one SQLite file: one event per change, not one per process', async () => {
    const tmp = tempDir('keel-health-shared-');
    const file = join(tmp.dir, 'keel.db');
    try {
      await scenario(async () => openSqliteStore({ path: file }));
    } finally {
      tmp.cleanup();
    }
  });

  it('a change whose maker died before its send is delivered by another process, once', async () => {
    received = [];
    const tmp = tempDir('keel-health-crash-');
    const file = join(tmp.dir, 'keel.db');
    const name = unique('Orphan');
    const declared = integration({
      name,
      baseUrl: api.url,
      healthCheckPath: `/ping?probe=${name}`,
      operations: { ping: { path: '/ping' } },
    });
    const subscribers = [{ service: 'Alerts', handler: 'health' }];
    // Process A: makes the change, then "dies" before its send is accepted (it never is).
    const storeA = openSqliteStore({ path: file });
    const a = new IntegrationRuntime({
      integrations: [declared],
      store: storeA,
      clock: new FakeClock(),
      subscribers,
      send: () => new Promise<never>(() => undefined),
      log: () => undefined,
    });
    const clock = new FakeClock();
    const ext = createIntegrations({ integrations: [declared], subscribers, log: () => undefined });
    const b = new Engine({
      services: [Alerts],
      store: openSqliteStore({ path: file }),
      clock,
      logger: () => undefined,
      extensions: [ext],
    });
    await b.start();
    const verdict = async (): Promise<any> => (await b.store.getKv('keel.health', name))?.value;
    try {
      api.failAll({ status: 500 });
      await a.health.probeNow(name);
      expect(await verdict()).toMatchObject({ healthy: false, generation: 1, notified: false });
      await ext.runtime.health.probeNow(name);
      expect(received).toEqual([]);

      // Long enough after the change, B's next probe sends it (A's id: one invocation at most).
      await clock.advance('31s');
      await ext.runtime.health.probeNow(name);
      await until(() => received.length >= 1, 'the orphaned event delivered');
      expect(await verdict()).toMatchObject({ generation: 1, notified: true });
      await ext.runtime.health.probeNow(name);
      await clock.advance('31s');
      await ext.runtime.health.probeNow(name);
      await b.stop();
      expect(received).toEqual([
        expect.objectContaining({
          type: 'IntegrationUnhealthy',
          integration: name,
          id: `${name}:IntegrationUnhealthy:1:${Date.UTC(2026, 0, 1)}`,
          error: expect.stringMatching(/answered 500/),
          consecutiveFailures: 1,
        }),
      ]);
    } finally {
      api.failAll(undefined);
      await b.stop().catch(() => undefined);
      await a.close();
      await storeA.close();
      tmp.cleanup();
    }
  });

  it('on PostgreSQL: one event per change, not one per process', async () => {
    const url = inject('postgresUrl');
    const schema = `keel_health_${randomBytes(4).toString('hex')}`;
    const migrate = await openPostgresStore({ url, schema });
    await migrate.close();
    try {
      await scenario(() => openPostgresStore({ url, schema }));
    } finally {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await client.end();
    }
  });
});
