/**
 * Versioned definitions in the store's key-value space, shared by processes: two stores on one
 * PostgreSQL schema (two processes' connections) registering at once get distinct, gap-free
 * versions; a version left without a head (a crash between the two writes) is moved past.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { describe, expect, inject, it } from 'vitest';
import { FlowRegistry } from '../../src/flows/index.js';
import { VERSIONS_SCOPE } from '../../src/flows/registry.js';
import { openPostgresStore } from '../../src/store/postgres/index.js';
import { systemClock } from '../../src/engine/clock.js';

const url = inject('postgresUrl');
const env = () => ({ transforms: new Set<string>() });
const def = (n: number) => ({
  name: 'concurrent',
  steps: [{ id: 'x', type: 'transform', expression: String(n) }],
});

describe('flow registry on PostgreSQL', () => {
  it('gives concurrent registrations from two processes distinct versions 1..n', async () => {
    const schema = `keel_flows_${randomBytes(4).toString('hex')}`;
    const migrate = await openPostgresStore({ url, schema });
    await migrate.close();
    const a = await openPostgresStore({ url, schema });
    const b = await openPostgresStore({ url, schema });
    try {
      const ra = new FlowRegistry(a, systemClock, env);
      const rb = new FlowRegistry(b, systemClock, env);
      const regs = await Promise.all(
        Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? ra : rb).register(def(i))),
      );
      expect(regs.every((r) => r.created)).toBe(true);
      expect(regs.map((r) => r.version).sort((x, y) => x - y)).toEqual([
        1, 2, 3, 4, 5, 6, 7, 8, 9, 10,
      ]);
      expect(await ra.latest('concurrent')).toBe(10);
      // Each version holds the definition registered under it.
      for (const r of regs) {
        const v = await rb.get('concurrent', r.version);
        expect(v.version).toBe(r.version);
      }
      const byVersion = new Map(regs.map((r, i) => [r.version, i]));
      for (const [version, i] of byVersion) {
        expect((await ra.get('concurrent', version)).definition).toEqual(def(i));
      }

      // A crash between the version write and the head write: version 11 exists, head says 10.
      await a.write([
        {
          op: 'kv.put',
          scope: VERSIONS_SCOPE,
          key: `concurrent@${String(11).padStart(10, '0')}`,
          value: {
            name: 'concurrent',
            version: 11,
            definition: def(99),
            registeredAt: new Date().toISOString(),
          },
        },
      ]);
      const next = await ra.register(def(100));
      expect(next).toEqual({ name: 'concurrent', version: 12, created: true });
      expect(await rb.latest('concurrent')).toBe(12);
    } finally {
      await a.close();
      await b.close();
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await client.end();
    }
  });
});
