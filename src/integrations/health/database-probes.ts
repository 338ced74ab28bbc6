/**
 * Declared databases (`createDatabases`, src/databases) as health probes: one per open
 * connection, named after the database, running its `ping()` (a round trip through the pool,
 * with its own timeout) every `healthCheckInterval` (default 30s, at least 1s).
 *
 * The integrations extension adds them when the engine has started (`EngineExtension.started`),
 * by which time every extension has installed, so the databases' connections are open whatever
 * the order of the extensions.
 */
import type { DatabaseConnection } from '../../databases/connection.js';
import { databasesOf } from '../../databases/setup.js';
import type { Engine } from '../../engine/engine.js';
import { probeRegistry, type Probe } from './registry.js';

/**
 * Adds a probe per open database of `engine` to its registry (those already there are kept).
 * Returns the names of the databases it could not add (a name taken by an integration), with why.
 *
 * @example
 * ```ts
 * started() { addDatabaseProbes(host.engine); }
 * ```
 */
export function addDatabaseProbes(engine: Engine): string[] {
  const registry = probeRegistry(engine);
  const problems: string[] = [];
  for (const conn of databasesOf(engine)) {
    if (registry.get(conn.name)?.kind === 'database') continue;
    try {
      registry.add(databaseProbe(conn));
    } catch (err) {
      problems.push(err instanceof Error ? err.message : String(err));
    }
  }
  return problems;
}

/**
 * The probe of one open database.
 *
 * @example
 * ```ts
 * const probe = databaseProbe(databases.connection('orders'));
 * await probe.check(); // rejects while PostgreSQL cannot be reached
 * ```
 */
export function databaseProbe(conn: DatabaseConnection): Probe {
  return {
    name: conn.name,
    kind: 'database',
    type: conn.type,
    intervalMs: Math.max(1000, conn.healthCheckIntervalMs),
    check: () => conn.ping(),
    details() {
      const s = conn.status();
      return { url: s.url, state: s.state, since: s.since, pool: s.pool };
    },
  };
}
