import { checkAdminOptions, serveAdmin, type AdminServer } from './admin/index.js';
import { tokenList } from './admin/tokens.js';
import { checkIngressKeys, parseIngressKeys } from './ingress/keys.js';
import type { Definition } from './core/definitions.js';
import { parseDuration, type Duration } from './core/duration.js';
import { constants } from 'node:os';
import { errorMessage, UsageError } from './core/errors.js';
import { Engine, type EngineLogger, type EngineOptions } from './engine/engine.js';
import type { EngineExtension } from './engine/extension.js';
import { serve, type IngressServer } from './ingress/index.js';
import { integration as declare, type Integration } from './integrations/declarations/config.js';
import { readIntegrationsFile } from './integrations/declarations/dsl/parse.js';
import { readDatabasesFile } from './databases/dsl.js';
import { withDatabases } from './databases/setup.js';
import { declaredSubscriptions, withSubscriptions } from './buses/declared.js';
import {
  createIntegrations,
  type Integrations,
  type IntegrationsOptions,
} from './integrations/runtime/install.js';
import type { IntegrationRuntime } from './integrations/runtime/runtime.js';
import { openSqliteStore } from './store/sqlite/index.js';
import { openPostgresStore } from './store/postgres/index.js';
import { createWebhooks, type Webhooks, type WebhooksOptions } from './webhooks/setup.js';
import { outboundFromDeclaration } from './webhooks/outbound/options.js';
import { startWhileUnavailable } from './startup.js';
import { createFlows, type Flows } from './flows/setup.js';
import { schedules as createSchedules } from './schedules/setup.js';
import type { ScheduleDeclaration } from './schedules/spec.js';
import { keelLogger, parseLogLevel, type LogLevel } from './observability/log.js';
import { metricsEnabled } from './observability/metrics/engine-metrics.js';

/** Options of a whole Keel application: engine, store, ingress and admin API. Env vars override none of these; see {@link appOptionsFromEnv}. */
export interface AppOptions extends Omit<EngineOptions, 'store'> {
  /** SQLite database file. Default `./.keel/keel.db` (`KEEL_DB`). Ignored when `databaseUrl` is set. */
  db?: string;
  /**
   * A PostgreSQL URL (`KEEL_DATABASE_URL`): the app then runs on PostgreSQL and can share it
   * with other processes of the same app (scale-out, failover).
   */
  databaseUrl?: string;
  /** The PostgreSQL schema Keel's tables live in. Default `keel` (`KEEL_DATABASE_SCHEMA`). */
  databaseSchema?: string;
  /**
   * PostgreSQL: write batches in flight at once (`KEEL_PG_PIPELINE`). Default 1 (one at a
   * time); more overlap unrelated batches. See `PostgresStoreOptions.pipeline`.
   */
  databasePipeline?: number;
  /** `fsync` (default): acknowledged results survive power loss. `os`: they survive a process crash only. (`KEEL_DURABILITY`) */
  durability?: 'fsync' | 'os';
  /**
   * Values (inputs, outputs, step results, state values) whose JSON is longer than this many
   * bytes are stored out of line and read only when needed (see docs/payloads.md). Default
   * 256 KiB (`KEEL_LARGE_PAYLOAD_THRESHOLD`).
   */
  largePayloadThreshold?: number;
  /**
   * The largest JSON of one stored value, in bytes; above it a write fails with
   * `payload_too_large` (a step with a larger result fails terminally). Default 64 MiB
   * (`KEEL_MAX_PAYLOAD_BYTES`).
   */
  maxPayloadBytes?: number;
  /**
   * Largest request body the ingress accepts, in bytes; larger ones get 413 `body_too_large`.
   * Default 1 MiB (`KEEL_BODY_LIMIT`). Raise it (up to `maxPayloadBytes`) to accept large inputs.
   */
  bodyLimit?: number;
  /** Ingress port. Default 9080 (`KEEL_PORT`). */
  port?: number;
  /** Ingress address. Default `127.0.0.1` (`KEEL_HOST`). */
  host?: string;
  /** Admin API port; `0` picks a free one. Default 9070 (`KEEL_ADMIN_PORT`). */
  adminPort?: number;
  /** Admin API address. Default `127.0.0.1` (`KEEL_ADMIN_HOST`); any other needs `adminToken`. */
  adminHost?: string;
  /** Bearer token every admin request must carry (`KEEL_ADMIN_TOKEN`). Default: none. */
  adminToken?: string;
  /**
   * Read-only bearer token of the admin API (`KEEL_USER_TOKEN`): reads status, health, lists
   * and deliveries; every change answers 403 `forbidden`. Needs `adminToken`, and must differ
   * from it. Default: none.
   */
  userToken?: string;
  /**
   * Read-only bearer token of the admin API (`KEEL_VIEWER_TOKEN`): the documented name of
   * `userToken` (`KEEL_USER_TOKEN` stays an alias; both set to different values is refused).
   */
  viewerToken?: string;
  /** More admin tokens, for rotation (`KEEL_ADMIN_TOKENS`, comma-separated, each ≥ 32 characters). */
  adminTokens?: readonly string[];
  /** More viewer tokens, for rotation (`KEEL_VIEWER_TOKENS`, comma-separated, each ≥ 32 characters). */
  viewerTokens?: readonly string[];
  /**
   * API keys the ingress requires (`KEEL_INGRESS_KEYS`, comma-separated, each ≥ 32 characters):
   * `Authorization: Bearer <key>` or `X-API-Key: <key>` on every request but `GET /health`,
   * inbound webhooks, the gateway and OAuth links. Default: none.
   */
  ingressKeys?: readonly string[];
  /**
   * Enables webhooks: outbound delivery with its management API at `/webhooks` on the admin API,
   * and inbound `receivers` at `POST /webhooks/{name}` on the ingress (see docs/webhooks.md).
   */
  webhooks?: WebhooksOptions;
  /**
   * Declared integrations (or the runtime's options, with `integrations` inside): handlers call
   * them with `use(ctx, integration)`, and the admin API serves `/integrations/...`.
   */
  integrations?: readonly Integration[] | IntegrationsOptions;
  /**
   * A file of integration declarations (`integration GitHubAPI { ... }`, or JSON; see
   * docs/integrations.md), read at start (`KEEL_INTEGRATIONS_FILE`). Its integrations are added
   * to `integrations`; one declared in both places must be the same declaration (the one in code
   * may add a `mock`, and is the one used). A `type: webhook` declaration configures outbound
   * webhook delivery (its signature header, retry schedule and dead-letter retention, see
   * `outboundFromDeclaration`), under the `webhooks` options, which win field by field; it
   * enables webhooks when `webhooks` is not given. Default: none.
   *
   * @example
   * ```ts
   * const app = await startApp({
   *   services: [IntegrationPatterns],
   *   integrationsFile: 'examples/integration-patterns/integrations.cai',
   *   ...appOptionsFromEnv(), // KEEL_INTEGRATIONS_FILE overrides it
   * });
   * ```
   */
  integrationsFile?: string;
  /**
   * How long `startApp` waits for a database it cannot reach (PostgreSQL down, still starting,
   * or unreachable): it tries again to open the store and start the engine, with backoff from
   * 0.25 s doubling to 10 s, logging each failed attempt, and rejects only after this long.
   * The ingress and admin ports are bound only once it has started. Default `'forever'`
   * (`KEEL_STORE_WAIT`): a restarted process waits for its database rather than exit. `0`
   * gives up at the first failure. Errors that waiting cannot fix (a bad URL scheme, a schema
   * migrated by a newer Keel) fail at once.
   */
  storeWait?: Duration;
  /**
   * A directory of declarative flow definitions (`*.json`, `*.yaml`; see docs/flows.md),
   * registered at start (`KEEL_FLOWS_DIR`): adds the flows extension (`POST /flows/{name}/run`,
   * `/flows/definitions` on the admin API), or gives the directory to the flows extension
   * already in `extensions` (`createFlows({ transforms, ... })`). Default: none.
   */
  flowsDir?: string;
  /**
   * Cron schedules declared in code (`schedule({ ... })` from `keel/schedules`; see
   * docs/schedules.md): adds the schedules extension, which fires them and serves `/schedules`
   * on the admin API. `[]` adds it with none declared, for schedules created through the admin
   * API. Ignored when `extensions` has a schedules extension already. Default: none.
   */
  schedules?: readonly ScheduleDeclaration[];
  /**
   * The least severe level Keel's logger writes: `trace`, `debug`, `info`, `warn`, `error` or
   * `silent` (`KEEL_LOG_LEVEL`). Default `info`. Lines are JSON on standard output,
   * human-readable when it is a terminal (see docs/observability.md). Ignored when `logger` is
   * given.
   */
  logLevel?: LogLevel;
}

export interface App {
  engine: Engine;
  ingress: IngressServer;
  admin: AdminServer;
  /** Webhooks, when enabled with the `webhooks` option (endpoints, publish from outside handlers). */
  webhooks?: Webhooks;
  /** The integrations runtime (plain clients: `app.integrations.client(github)`), if any were declared. */
  integrations?: IntegrationRuntime;
  /**
   * Stops the ingress and the admin API, then the engine; everything in flight resumes at the
   * next start. Calling it again returns the same promise.
   */
  close(): Promise<void>;
  /**
   * Makes SIGTERM and SIGINT stop the process gracefully: the first of them logs that the app
   * is closing, runs {@link App.close} once and exits with code 0 when it is done (1 if it
   * failed). A second signal while it closes exits at once, with 128 + the signal's number
   * (143 for SIGTERM, 130 for SIGINT), as an impatient Ctrl-C or a process manager's second
   * kill expects. Returns a function that removes the handlers. Installing them twice
   * installs them once.
   *
   * @example
   * ```ts
   * const app = await startApp({ services: [Greeter], ...appOptionsFromEnv() });
   * app.closeOnSignals(); // Ctrl-C or `kill <pid>`: requests in flight finish, then exit 0
   * ```
   */
  closeOnSignals(): () => void;
}

/**
 * Reads `KEEL_*` environment variables into app options.
 *
 * @example
 * ```ts
 * const app = await startApp({ services: [Greeter], ...appOptionsFromEnv() });
 * ```
 */
export function appOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): Partial<AppOptions> {
  const o: Partial<AppOptions> = {};
  if (env.KEEL_DB) o.db = env.KEEL_DB;
  if (env.KEEL_PORT) {
    const port = Number(env.KEEL_PORT);
    if (!Number.isInteger(port) || port < 0 || port > 65535)
      throw new RangeError(`KEEL_PORT="${env.KEEL_PORT}" is not a port number (0-65535)`);
    o.port = port;
  }
  if (env.KEEL_HOST) o.host = env.KEEL_HOST;
  if (env.KEEL_ADMIN_PORT) o.adminPort = portFrom(env.KEEL_ADMIN_PORT, 'KEEL_ADMIN_PORT');
  if (env.KEEL_ADMIN_HOST) o.adminHost = env.KEEL_ADMIN_HOST;
  if (env.KEEL_ADMIN_TOKEN) o.adminToken = env.KEEL_ADMIN_TOKEN;
  if (env.KEEL_USER_TOKEN) o.userToken = env.KEEL_USER_TOKEN;
  if (env.KEEL_VIEWER_TOKEN) o.viewerToken = env.KEEL_VIEWER_TOKEN;
  if (env.KEEL_ADMIN_TOKENS) o.adminTokens = tokenList(env.KEEL_ADMIN_TOKENS, 'KEEL_ADMIN_TOKENS');
  if (env.KEEL_VIEWER_TOKENS)
    o.viewerTokens = tokenList(env.KEEL_VIEWER_TOKENS, 'KEEL_VIEWER_TOKENS');
  if (env.KEEL_INGRESS_KEYS) o.ingressKeys = parseIngressKeys(env.KEEL_INGRESS_KEYS);
  if (env.KEEL_DURABILITY) {
    if (env.KEEL_DURABILITY !== 'fsync' && env.KEEL_DURABILITY !== 'os') {
      throw new RangeError(`KEEL_DURABILITY="${env.KEEL_DURABILITY}" must be "fsync" or "os"`);
    }
    o.durability = env.KEEL_DURABILITY;
  }
  if (env.KEEL_INTEGRATIONS_FILE) o.integrationsFile = env.KEEL_INTEGRATIONS_FILE;
  if (env.KEEL_FLOWS_DIR) o.flowsDir = env.KEEL_FLOWS_DIR;
  if (env.KEEL_LOG_LEVEL) o.logLevel = parseLogLevel(env.KEEL_LOG_LEVEL, 'KEEL_LOG_LEVEL');
  if (env.KEEL_DATABASE_URL) o.databaseUrl = env.KEEL_DATABASE_URL;
  if (env.KEEL_DATABASE_SCHEMA) o.databaseSchema = env.KEEL_DATABASE_SCHEMA;
  if (env.KEEL_PG_PIPELINE) {
    const n = Number(env.KEEL_PG_PIPELINE);
    if (!/^\d+$/.test(env.KEEL_PG_PIPELINE.trim()) || n < 1)
      throw new RangeError(
        `KEEL_PG_PIPELINE="${env.KEEL_PG_PIPELINE}" is not a whole number of batches (1 or more)`,
      );
    o.databasePipeline = n;
  }
  if (env.KEEL_LARGE_PAYLOAD_THRESHOLD)
    o.largePayloadThreshold = bytesFrom(
      env.KEEL_LARGE_PAYLOAD_THRESHOLD,
      'KEEL_LARGE_PAYLOAD_THRESHOLD',
    );
  if (env.KEEL_MAX_PAYLOAD_BYTES)
    o.maxPayloadBytes = bytesFrom(env.KEEL_MAX_PAYLOAD_BYTES, 'KEEL_MAX_PAYLOAD_BYTES');
  if (env.KEEL_BODY_LIMIT) o.bodyLimit = bytesFrom(env.KEEL_BODY_LIMIT, 'KEEL_BODY_LIMIT');
  if (env.KEEL_LEASE) o.lease = checked(env.KEEL_LEASE, 'KEEL_LEASE');
  if (env.KEEL_STOP_GRACE) o.stopGrace = checked(env.KEEL_STOP_GRACE, 'KEEL_STOP_GRACE');
  if (env.KEEL_RETENTION) o.retention = checked(env.KEEL_RETENTION, 'KEEL_RETENTION');
  if (env.KEEL_SUSPEND_AFTER)
    o.suspendAfter = checked(env.KEEL_SUSPEND_AFTER, 'KEEL_SUSPEND_AFTER');
  if (env.KEEL_STORE_WAIT)
    o.storeWait =
      env.KEEL_STORE_WAIT === 'forever'
        ? 'forever'
        : checked(env.KEEL_STORE_WAIT, 'KEEL_STORE_WAIT (a duration or "forever")');
  // Read as the engine reads it when `metrics` is not given (0, false, off or no: off), so an
  // app file's `metrics` gives way to the environment like every other KEEL_* variable.
  if (env.KEEL_METRICS) o.metrics = metricsEnabled(undefined, { KEEL_METRICS: env.KEEL_METRICS });
  return o;
}

function portFrom(text: string, name: string): number {
  const port = Number(text);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new RangeError(`${name}="${text}" is not a port number (0-65535)`);
  return port;
}

/** A whole number of bytes from an env var (digits only). */
function bytesFrom(text: string, name: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(n))
    throw new RangeError(`${name}="${text}" is not a whole number of bytes`);
  return n;
}

function checked(d: Duration, name: string): Duration {
  try {
    parseDuration(d);
  } catch (e) {
    throw new RangeError(`${name}: ${(e as Error).message}`);
  }
  return d;
}

/**
 * Opens the store, recovers and starts the engine, and serves the ingress. While the database
 * cannot be reached it waits (see `storeWait`) with no port bound yet.
 *
 * @example
 * ```ts
 * import { startApp } from 'keel/app';
 *
 * const app = await startApp({ services: [Greeter, Counter], port: 9080 });
 * // ... later
 * await app.close();
 * ```
 */
export async function startApp(options: AppOptions & { services: Definition[] }): Promise<App> {
  const {
    db = './.keel/keel.db',
    durability = 'fsync',
    port = 9080,
    host = '127.0.0.1',
    adminPort = 9070,
    adminHost = '127.0.0.1',
    adminToken,
    userToken,
    viewerToken,
    adminTokens,
    viewerTokens,
    ingressKeys,
    databaseUrl,
    databaseSchema,
    databasePipeline,
    webhooks: webhooksGiven,
    integrations: integrationsGiven,
    integrationsFile,
    storeWait = 'forever',
    flowsDir,
    schedules: scheduleDeclarations,
    logLevel,
    largePayloadThreshold,
    maxPayloadBytes,
    bodyLimit,
    ...engineOptions
  } = options;
  const payloads = {
    ...(largePayloadThreshold !== undefined ? { largePayloadThreshold } : {}),
    ...(maxPayloadBytes !== undefined ? { maxPayloadBytes } : {}),
  };
  // One logger for the start, the engine and the signals; a bad level fails the start at once.
  const logger: EngineLogger =
    engineOptions.logger ?? keelLogger({ level: parseLogLevel(logLevel ?? 'info', 'logLevel') });
  // The file is read (and every declaration checked) before anything opens the store.
  const { integrations, webhooksOptions } =
    integrationsFile === undefined
      ? { integrations: integrationsGiven, webhooksOptions: webhooksGiven }
      : withDeclarations(
          await readIntegrationsFile(integrationsFile),
          integrationsFile,
          integrationsGiven,
          webhooksGiven,
        );
  // `database Name { ... }` blocks of the same file (see docs/databases.md).
  const fileDatabases =
    integrationsFile === undefined ? [] : await readDatabasesFile(integrationsFile);
  // `subscription Name { ... }` blocks (see docs/buses.md), their targets resolved.
  const fileSubscriptions =
    integrationsFile === undefined
      ? []
      : await declaredSubscriptions(
          integrationsFile,
          options.services,
          engineOptions.extensions ?? [],
        );
  // The app's own flows extension, if it has one, takes the directory (one per engine).
  const flowsGiven = (engineOptions.extensions ?? []).find((e): e is Flows => e.name === 'flows');
  if (flowsDir !== undefined) flowsGiven?.addDirectory(flowsDir);
  const maxWaitMs = storeWait === 'forever' ? Infinity : parseDuration(storeWait);
  // A misconfigured admin API fails the start before recovery runs anything.
  const tokens = { token: adminToken, userToken, viewerToken, adminTokens, viewerTokens };
  checkAdminOptions({ port: adminPort, host: adminHost, ...tokens });
  if (ingressKeys !== undefined) checkIngressKeys(ingressKeys);
  // Everything that reads the store is made anew by each attempt, and undone when it fails.
  const attempt = async () => {
    const store = databaseUrl
      ? await openPostgresStore({
          url: databaseUrl,
          ...(databaseSchema ? { schema: databaseSchema } : {}),
          ...(databasePipeline !== undefined ? { pipeline: databasePipeline } : {}),
          ...payloads,
        })
      : openSqliteStore({ path: db, durability, ...payloads });
    // The webhooks and integrations options are extensions like any other.
    const webhooks = webhooksOptions ? createWebhooks(webhooksOptions) : undefined;
    const others = withSubscriptions(
      withDatabases(engineOptions.extensions ?? [], fileDatabases),
      fileSubscriptions,
    );
    // Databases and buses are health-checked by the integrations extension (on
    // /integrations/status), so an app with them gets it even without API integrations.
    const probed = others.some((e) => e.name === 'databases' || e.name === 'buses');
    const installed: Integrations | undefined =
      integrations === undefined
        ? probed && !others.some((e) => e.name === 'integrations')
          ? createIntegrations()
          : undefined
        : createIntegrations(isIntegrationList(integrations) ? { integrations } : integrations);
    const extensions: EngineExtension[] = [
      ...(webhooks ? [webhooks] : []),
      ...(installed ? [installed] : []),
      ...others,
      // Last: flows check their steps against the integrations and databases installed before.
      ...(flowsDir === undefined || flowsGiven ? [] : [createFlows({ dir: flowsDir })]),
      ...(scheduleDeclarations === undefined || others.some((e) => e.name === 'schedules')
        ? []
        : [createSchedules(scheduleDeclarations)]),
    ];
    const engine = new Engine({ ...engineOptions, logger, extensions, store });
    try {
      await engine.start();
    } catch (err) {
      // Stopping closes what the extensions that did install opened.
      await engine.stop().catch(() => undefined);
      throw err;
    }
    return { engine, webhooks, installed };
  };
  const { engine, webhooks, installed } = await startWhileUnavailable(attempt, {
    maxWaitMs,
    logger,
    hint: databaseUrl
      ? `Check that PostgreSQL at ${redactUrl(databaseUrl)} is running and reachable from here`
      : `Check that the SQLite file ${db} is reachable`,
  });
  let ingress: IngressServer | undefined;
  let admin: AdminServer;
  try {
    // Both serve the extensions' routes under their names (`/webhooks`, `/integrations`).
    ingress = await serve(engine, {
      port,
      host,
      ...(ingressKeys ? { ingressKeys } : {}),
      ...(bodyLimit !== undefined ? { bodyLimit } : {}),
    });
    admin = await serveAdmin(engine, {
      port: adminPort,
      host: adminHost,
      ...tokens,
    });
  } catch (err) {
    await ingress?.close();
    await engine.stop();
    throw err;
  }
  let closed: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closed ??= (async () => {
      await Promise.all([ingress.close(), admin.close()]);
      await engine.stop(); // and its extensions
    })());
  let removeSignalHandlers: (() => void) | undefined;
  return {
    engine,
    ingress,
    admin,
    ...(webhooks ? { webhooks } : {}),
    ...(installed ? { integrations: installed.runtime } : {}),
    close,
    closeOnSignals() {
      if (!removeSignalHandlers) {
        const remove = closeOnSignals(close, logger);
        removeSignalHandlers = () => {
          remove();
          removeSignalHandlers = undefined;
        };
      }
      return removeSignalHandlers;
    },
  };
}

const STOP_SIGNALS = ['SIGTERM', 'SIGINT'] as const;

/** See {@link App.closeOnSignals}. */
function closeOnSignals(close: () => Promise<void>, logger: EngineLogger): () => void {
  let stopping = false;
  const onSignal = (signal: (typeof STOP_SIGNALS)[number]): void => {
    if (stopping) {
      logger('warn', `app: ${signal} again: exiting without waiting for the close to finish`, {});
      process.exit(128 + constants.signals[signal]);
    }
    stopping = true;
    logger('info', `app: ${signal}: closing (send it again to exit at once)`, {});
    close().then(
      () => process.exit(0),
      (err: unknown) => {
        logger('error', `app: closing after ${signal} failed: ${errorMessage(err)}`, {
          stack: err instanceof Error ? err.stack : undefined,
        });
        process.exit(1);
      },
    );
  };
  for (const signal of STOP_SIGNALS) process.on(signal, onSignal);
  return () => {
    for (const signal of STOP_SIGNALS) process.off(signal, onSignal);
  };
}

/** The URL without its password, for logs. */
function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'the configured URL';
  }
}

/**
 * Adds a file's declarations to the integrations given in code, and turns its `type: webhook`
 * declaration into the webhooks options it stands for.
 */
function withDeclarations(
  configs: Parameters<typeof declare>[0][],
  file: string,
  given: AppOptions['integrations'],
  webhooks: WebhooksOptions | undefined,
): { integrations: IntegrationsOptions; webhooksOptions: WebhooksOptions | undefined } {
  const options: IntegrationsOptions =
    given === undefined ? {} : isIntegrationList(given) ? { integrations: given } : given;
  const list = [...(options.integrations ?? [])];
  const byName = new Map(list.map((i) => [i.name, i]));
  const hooks: Integration[] = [];
  for (const config of configs) {
    const inCode = byName.get(config.name);
    if (inCode !== undefined && JSON.stringify(inCode.config) !== JSON.stringify(config)) {
      throw new UsageError(
        `integration ${config.name} is declared in ${file} and, differently, in the app's integrations; keep one declaration (the one in code may only add a mock)`,
      );
    }
    const used = inCode ?? declare(config);
    if (inCode === undefined) list.push(used);
    if (used.type === 'webhook') hooks.push(used);
  }
  if (hooks.length > 1) {
    throw new UsageError(
      `${file} declares ${hooks.length} webhook integrations (${hooks.map((h) => h.name).join(', ')}); outbound delivery follows one`,
    );
  }
  const hook = hooks[0];
  return {
    integrations: { ...options, integrations: list },
    webhooksOptions:
      hook === undefined
        ? webhooks
        : { ...outboundFromDeclaration(hook), ...definedOnly(webhooks) },
  };
}

/** The fields of `o` that are set: an explicit `undefined` does not hide a declared value. */
function definedOnly<T extends object>(o: T | undefined): Partial<T> {
  if (o === undefined) return {};
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function isIntegrationList(
  value: readonly Integration[] | IntegrationsOptions,
): value is readonly Integration[] {
  return Array.isArray(value);
}
