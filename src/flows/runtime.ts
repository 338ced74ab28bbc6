/**
 * What the flows extension keeps per engine: the definition registry, the registered transform
 * functions, the database adapter, and the engine's integrations (found among its extensions,
 * so a flow's `api` steps are checked against what is declared and called through it).
 */
import { UsageError } from '../core/errors.js';
import type { Engine } from '../engine/engine.js';
import { contextKey, type ExtensionHost } from '../engine/extension.js';
import { kernelOf } from '../engine/kernel.js';
import { databasesOf } from '../databases/setup.js';
import type { Integrations } from '../integrations/runtime/install.js';
import type { IntegrationRuntime } from '../integrations/runtime/runtime.js';
import { FlowRegistry } from './registry.js';
import type { FlowEnvironment } from './validate.js';

/**
 * A registered transform: gets the step's rendered `input` and the flow's variables, returns
 * the step's output (JSON). It runs inside a journaled step, so it runs again only when a crash
 * interrupted it.
 */
export type FlowTransform = (
  input: unknown,
  context: { input: unknown; variables: Readonly<Record<string, unknown>> },
) => unknown;

/** A database as `database` steps use it (see `FlowsOptions.databases`). */
export interface FlowDatabase {
  /** Runs SQL with parameters. */
  query(sql: string, params: unknown[]): Promise<{ rows: unknown[]; rowCount: number }>;
  /** Runs a Redis command. */
  command?(name: string, ...args: unknown[]): Promise<unknown>;
}

/** Where handlers' contexts find the flows runtime. */
export const FLOWS_RUNTIME = contextKey<FlowsRuntime>('keel.flows');

/**
 * The runtime of the flows extension on one engine: `flows.runtime` once the engine started.
 *
 * @example
 * ```ts
 * const flows = createFlows();
 * // ... after engine.start():
 * const { version } = await flows.runtime.registry.register(definition);
 * ```
 */
export class FlowsRuntime {
  readonly registry: FlowRegistry;

  constructor(
    readonly host: ExtensionHost,
    readonly transforms: Readonly<Record<string, FlowTransform>>,
    private readonly databases: Readonly<Record<string, FlowDatabase>>,
  ) {
    this.registry = new FlowRegistry(host.store, host.clock, () => this.environment());
  }

  /** What validation checks steps against. */
  environment(): FlowEnvironment {
    const rt = this.integrations();
    const env: FlowEnvironment = { transforms: new Set(Object.keys(this.transforms)) };
    const declared = databasesOf(this.host.engine);
    if (declared.length > 0 || Object.keys(this.databases).length > 0) {
      env.databases = new Map([
        ...declared.map((d) => [d.name, d.type === 'redis' ? 'redis' : 'sql'] as const),
        ...Object.entries(this.databases).map(
          ([name, db]) => [name, db.command ? 'any' : 'sql'] as const,
        ),
      ]);
    }
    if (rt) {
      env.integrations = new Map(
        rt.list().map((h) => [h.integration.name, new Set(Object.keys(h.integration.operations))]),
      );
    }
    return env;
  }

  /** The engine's integrations runtime, when it has the integrations extension installed. */
  integrations(): IntegrationRuntime | undefined {
    return integrationsOf(this.host.engine);
  }

  /**
   * A database by name: one given to `createFlows({ databases })`, else one declared with the
   * databases extension (`createDatabases`, keel/databases). A terminal error when neither has it.
   */
  database(name: string): FlowDatabase {
    const own = Object.hasOwn(this.databases, name) ? this.databases[name] : undefined;
    if (own !== undefined) return own;
    const conn = databasesOf(this.host.engine).find((d) => d.name === name);
    if (conn === undefined)
      throw new UsageError(
        `no database named "${name}": declare it with createDatabases([...]) (keel/databases) or pass it in createFlows({ databases })`,
      );
    return {
      query: async (sql, params) => {
        const r = await conn.query(sql, params);
        return { rows: r.rows, rowCount: r.rowCount };
      },
      command: (command, ...args) => conn.command(command, args),
    };
  }
}

/** The integrations runtime of an engine, if its integrations extension is installed. */
function integrationsOf(engine: Engine): IntegrationRuntime | undefined {
  const k = kernelOf(engine);
  const ext = k.extensions.find((e) => e.name === 'integrations') as Integrations | undefined;
  if (ext === undefined || !k.installed.has(ext)) return undefined;
  return ext.runtime;
}
