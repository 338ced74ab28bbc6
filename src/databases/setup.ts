/**
 * The `databases` engine extension: opens a pool per declared database when the engine starts,
 * makes them reachable from handlers (`use(ctx, db)`) and from the engine (`databasesOf`), and
 * closes them when the engine stops.
 */
import { UsageError } from '../core/errors.js';
import type { Engine } from '../engine/engine.js';
import { contextKey, type EngineExtension } from '../engine/extension.js';
import { isEnvRef, type Env } from '../integrations/declarations/secrets.js';
import type { DatabaseAdapter, ResolvedDatabase } from './adapter.js';
import { databasesAdminMount } from './admin.js';
import { DatabaseConnection } from './connection.js';
import { checkUrl, DEFAULTS, duration, redactUrl } from './declare.js';
import { DatabaseConfigError } from './errors.js';
import type { Database, DatabaseStatus, DatabaseType } from './types.js';

/**
 * One adapter per type: a new database is one file and one line here. Loaded when an engine
 * with such a database starts, so an app without databases never loads their drivers.
 */
const ADAPTERS: Record<DatabaseType, () => Promise<DatabaseAdapter>> = {
  postgres: async () => (await import('./postgres.js')).postgresAdapter,
  mysql: async () => (await import('./mysql.js')).mysqlAdapter,
  redis: async () => (await import('./redis.js')).redisAdapter,
};

/** The open databases of one engine. */
export class DatabasesRuntime {
  constructor(readonly connections: ReadonlyMap<string, DatabaseConnection>) {}

  /** The connection of `db` (or of the database named `db`), or a UsageError saying how to declare it. */
  get(db: Database | string): DatabaseConnection {
    const name = typeof db === 'string' ? db : db.name;
    const conn = this.connections.get(name);
    if (conn === undefined)
      throw new UsageError(
        `database ${name} is not declared on this engine (declared: ${[...this.connections.keys()].join(', ') || 'none'}); add it to createDatabases([...])`,
      );
    if (
      typeof db !== 'string' &&
      conn.database !== db &&
      JSON.stringify(conn.database.config) !== JSON.stringify(db.config)
    )
      throw new UsageError(
        `database ${name}: this declaration differs from the one given to createDatabases([...])`,
      );
    return conn;
  }
}

/** Where handlers' contexts find the open databases. */
export const DATABASES = contextKey<DatabasesRuntime>('keel.databases');

const byEngine = new WeakMap<Engine, DatabasesRuntime>();

/**
 * The open databases of an engine (empty when it has no `databases` extension or has not
 * started): what active health checks `ping()` on each one's `healthCheckIntervalMs`, and what
 * status pages list with `status()`.
 *
 * @example
 * ```ts
 * for (const db of databasesOf(engine)) console.log(db.status());
 * ```
 */
export function databasesOf(engine: Engine): DatabaseConnection[] {
  return [...(byEngine.get(engine)?.connections.values() ?? [])];
}

/** Databases for one engine: an {@link EngineExtension} named `databases`. */
export interface Databases extends EngineExtension {
  readonly name: 'databases';
  /** The declared databases. */
  readonly declared: readonly Database[];
  /**
   * Adds declarations before the engine starts (`startApp` adds an integrations file's
   * `database` blocks this way). One already declared identically is skipped; a different one
   * of the same name is refused.
   */
  add(databases: readonly Database[]): void;
  /** The open connection of a database (after the engine started); throws for an undeclared one. */
  connection(db: Database | string): DatabaseConnection;
  /** Each database's status (before the engine started: `unknown`, URL as declared). */
  status(): DatabaseStatus[];
  /** Closes the pools (the engine calls it when it stops). */
  close(): Promise<void>;
}

/** Options of {@link createDatabases}. */
export interface DatabasesOptions {
  /** Where `env('NAME')` URLs are read. Default `process.env`. */
  env?: Env;
}

/**
 * The `databases` extension: a pool per declared database, opened when the engine starts and
 * closed when it stops. Handlers use them with `use(ctx, db)`.
 *
 * @example
 * ```ts
 * const Orders = database({ name: 'orders', type: 'postgres', url: env('ORDERS_DB_URL') });
 * const Cache = database({ name: 'cache', type: 'redis', url: 'redis://127.0.0.1:6379' });
 * const engine = new Engine({ services: [Shop], store, extensions: [createDatabases([Orders, Cache])] });
 * ```
 */
export function createDatabases(
  databases: readonly Database[] = [],
  options: DatabasesOptions = {},
): Databases {
  const declared: Database[] = [];
  let runtime: DatabasesRuntime | undefined;
  let engine: Engine | undefined;
  const add = (more: readonly Database[]): void => {
    if (runtime) throw new UsageError('databases: add() declarations before the engine starts');
    for (const db of more) {
      if (
        typeof db !== 'object' ||
        db === null ||
        typeof db.name !== 'string' ||
        !(db.type in ADAPTERS)
      )
        throw new UsageError('databases: declare each database with database({ name, type, url })');
      const had = declared.find((d) => d.name === db.name);
      if (had === undefined) declared.push(db);
      else if (JSON.stringify(had.config) !== JSON.stringify(db.config))
        throw new DatabaseConfigError(
          db.name,
          'name',
          'is declared twice, differently; keep one declaration',
        );
    }
  };
  add(databases);
  const ext: Databases = {
    name: 'databases',
    declared,
    add,
    mounts: {
      admin: databasesAdminMount({
        status: () => ext.status(),
        connection: (name) => runtime?.connections.get(name),
      }),
    },
    async install(host) {
      if (runtime) throw new UsageError('databases: one createDatabases() per engine');
      // Every URL is read and checked before any pool opens: a missing variable fails the start.
      const resolved = declared.map((db) => resolve(db, options.env ?? process.env));
      const adapters = await Promise.all(declared.map((db) => ADAPTERS[db.type]()));
      const connections = new Map<string, DatabaseConnection>();
      for (const [i, db] of declared.entries()) {
        const r = resolved[i]!;
        const ref: { conn?: DatabaseConnection } = {};
        const client = adapters[i]!.open(r, {
          connectionLost: (err) => ref.conn?.connectionLost(err),
        });
        const interval =
          db.config.healthCheckInterval === undefined
            ? DEFAULTS.healthCheckIntervalMs
            : duration(db.name, 'healthCheckInterval', db.config.healthCheckInterval);
        const conn = new DatabaseConnection(db, r, client, interval, (level, message, fields) =>
          host.log(level, message, fields),
        );
        ref.conn = conn;
        connections.set(db.name, conn);
      }
      runtime = new DatabasesRuntime(connections);
      engine = host.engine;
      byEngine.set(host.engine, runtime);
      host.provide(DATABASES, runtime);
    },
    connection(db) {
      if (!runtime) throw new UsageError('databases: the engine has not started yet');
      return runtime.get(db);
    },
    status() {
      if (runtime) return [...runtime.connections.values()].map((c) => c.status());
      return declared.map((db) => ({
        name: db.name,
        type: db.type,
        url: isEnvRef(db.config.url) ? `env(${db.config.url.env})` : redactUrl(db.config.url),
        state: 'unknown' as const,
        since: new Date().toISOString(),
        healthCheckIntervalMs:
          db.config.healthCheckInterval === undefined
            ? DEFAULTS.healthCheckIntervalMs
            : duration(db.name, 'healthCheckInterval', db.config.healthCheckInterval),
        pool: { total: 0, idle: 0, waiting: 0 },
      }));
    },
    async close() {
      const open = runtime;
      runtime = undefined; // a later start (startApp retrying) installs afresh
      if (engine) byEngine.delete(engine);
      if (open) await Promise.allSettled([...open.connections.values()].map((c) => c.close()));
    },
  };
  return ext;
}

/** Reads the URL (from the environment for `env()`) and turns durations into ms. */
function resolve(db: Database, env: Env): ResolvedDatabase {
  const c = db.config;
  let url: string;
  if (isEnvRef(c.url)) {
    const v = env[c.url.env];
    if (v === undefined || v === '')
      throw new DatabaseConfigError(
        db.name,
        'url',
        `reads the environment variable ${c.url.env}, which is ${v === '' ? 'empty' : 'not set'}; set it in the environment of the process that runs Keel`,
      );
    url = v;
  } else {
    url = c.url;
  }
  checkUrl(db.name, db.type, url);
  return {
    name: db.name,
    type: db.type,
    url,
    poolMax: c.pool?.max ?? DEFAULTS.poolMax,
    idleTimeoutMs:
      c.pool?.idleTimeout === undefined
        ? DEFAULTS.idleTimeoutMs
        : duration(db.name, 'pool.idleTimeout', c.pool.idleTimeout),
    statementTimeoutMs:
      c.statementTimeout === undefined
        ? undefined
        : duration(db.name, 'statementTimeout', c.statementTimeout),
    stepsTable: c.stepsTable ?? DEFAULTS.stepsTable,
  };
}

/**
 * The engine's extensions with `databases` declared too (an integrations file's `database`
 * blocks, as `startApp` reads them): added to the app's own `createDatabases(...)` if it has
 * one (the same name declared differently is refused), else in a new one.
 *
 * @example
 * ```ts
 * const extensions = withDatabases(options.extensions ?? [], await readDatabasesFile(file));
 * ```
 */
export function withDatabases(
  extensions: readonly EngineExtension[],
  databases: readonly Database[],
): EngineExtension[] {
  if (databases.length === 0) return [...extensions];
  const existing = extensions.find((e) => e.name === 'databases') as Partial<Databases> | undefined;
  if (existing === undefined) return [...extensions, createDatabases(databases)];
  if (typeof existing.add !== 'function')
    throw new UsageError(
      'databases: the extension named "databases" was not made by createDatabases()',
    );
  existing.add(databases);
  return [...extensions];
}
