import { join } from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { serveAdmin } from '../../src/admin/server.js';
import { startApp } from '../../src/app.js';
import { createDatabases, database } from '../../src/databases/index.js';
import { Engine, service } from '../../src/index.js';
import { createIntegrations, type IntegrationEvent } from '../../src/integrations/index.js';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import { FakeClock } from '../../src/testing/index.js';
import { tempDir, until } from '../helpers.js';

/**
 * Declared databases on `/integrations/status`: the integrations extension probes each open
 * connection's `ping()`. A real PostgreSQL is healthy; one on a port where nothing listens is
 * unhealthy, with an `IntegrationUnhealthy` event of kind `database`.
 */
describe('database health on /integrations/status', () => {
  const tmp = tempDir('keel-health-db-');
  afterAll(() => tmp.cleanup());

  it('a row per database with kind "database", probed with ping()', async () => {
    const events: IntegrationEvent[] = [];
    const integrations = createIntegrations({
      log: () => undefined,
      onEvent: (e) => void events.push(e),
    });
    const engine = new Engine({
      services: [service({ name: 'Noop', handlers: { noop: async () => null } })],
      store: openSqliteStore({ path: join(tmp.dir, 'keel.db') }),
      clock: new FakeClock(),
      logger: () => undefined,
      extensions: [
        createDatabases([
          database({ name: 'orders', type: 'postgres', url: inject('postgresUrl') }),
          database({
            name: 'gone',
            type: 'postgres',
            url: 'postgres://keel:hunter2@127.0.0.1:1/none',
            healthCheckInterval: '10s',
          }),
        ]),
        integrations,
      ],
    });
    await engine.start();
    const admin = await serveAdmin(engine, { port: 0 });
    try {
      const health = integrations.runtime.health;
      await health.probeAll();
      const status: any = await (await fetch(`${admin.url}/integrations/status`)).json();
      expect(status.integrations).toEqual([
        {
          name: 'orders',
          kind: 'database',
          type: 'postgres',
          status: 'healthy',
          health_check: 'healthy',
        },
        {
          name: 'gone',
          kind: 'database',
          type: 'postgres',
          status: 'unhealthy',
          health_check: 'unhealthy',
        },
      ]);
      const gone: any = await (await fetch(`${admin.url}/integrations/gone/health`)).json();
      expect(gone).toMatchObject({
        kind: 'database',
        probe: { result: 'unhealthy', consecutive_failures: 1, interval_ms: 10_000 },
        details: { state: 'down', url: expect.stringContaining('***') },
      });
      expect(JSON.stringify(gone)).not.toContain('hunter2');
      await until(() => events.length >= 1, 'the unhealthy event');
      expect(events).toEqual([
        expect.objectContaining({
          type: 'IntegrationUnhealthy',
          integration: 'gone',
          kind: 'database',
        }),
      ]);
      expect(JSON.stringify(events)).not.toContain('hunter2');
    } finally {
      await admin.close();
      await engine.stop();
    }
  });

  it('startApp with databases and no API integrations still serves their health', async () => {
    const app = await startApp({
      services: [service({ name: 'Noop2', handlers: { noop: async () => null } })],
      extensions: [
        createDatabases([
          database({ name: 'ledger', type: 'postgres', url: inject('postgresUrl') }),
        ]),
      ],
      db: join(tmp.dir, 'app.db'),
      port: 0,
      adminPort: 0,
      logger: () => undefined,
    });
    try {
      await app.integrations!.health.probeNow('ledger');
      const status: any = await (await fetch(`${app.admin.url}/integrations/status`)).json();
      expect(status.integrations).toEqual([
        {
          name: 'ledger',
          kind: 'database',
          type: 'postgres',
          status: 'healthy',
          health_check: 'healthy',
        },
      ]);
    } finally {
      await app.close();
    }
  });
});
