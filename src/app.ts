import { checkAdminOptions, serveAdmin, type AdminServer } from './admin/index.js';
import type { Definition } from './core/definitions.js';
import { parseDuration, type Duration } from './core/duration.js';
import { Engine, type EngineOptions } from './engine/engine.js';
import { serve, type IngressServer } from './ingress/index.js';
import type { Integration } from './integrations/config.js';
import { installIntegrations, type InstallIntegrationsOptions } from './integrations/install.js';
import type { IntegrationRuntime } from './integrations/runtime.js';
import { openSqliteStore } from './store/sqlite/index.js';
import { openPostgresStore } from './store/postgres/index.js';
import { createWebhooks, type Webhooks, type WebhooksOptions } from './webhooks/setup.js';

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
  /** `fsync` (default): acknowledged results survive power loss. `os`: they survive a process crash only. (`KEEL_DURABILITY`) */
  durability?: 'fsync' | 'os';
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
   * Enables webhooks: outbound delivery with its management API at `/webhooks` on the admin API,
   * and inbound `receivers` at `POST /webhooks/{name}` on the ingress (see docs/webhooks.md).
   */
  webhooks?: WebhooksOptions;
  /**
   * Declared integrations (or the runtime's options, with `integrations` inside): handlers call
   * them with `use(ctx, integration)`, and the admin API serves `/integrations/...`.
   */
  integrations?: readonly Integration[] | InstallIntegrationsOptions;
}

export interface App {
  engine: Engine;
  ingress: IngressServer;
  admin: AdminServer;
  /** Webhooks, when enabled with the `webhooks` option (endpoints, publish from outside handlers). */
  webhooks?: Webhooks;
  /** The integrations runtime (plain clients: `app.integrations.client(github)`), if any were declared. */
  integrations?: IntegrationRuntime;
  /** Stops the ingress and the admin API, then the engine; everything in flight resumes at the next start. */
  close(): Promise<void>;
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
  if (env.KEEL_DURABILITY) {
    if (env.KEEL_DURABILITY !== 'fsync' && env.KEEL_DURABILITY !== 'os') {
      throw new RangeError(`KEEL_DURABILITY="${env.KEEL_DURABILITY}" must be "fsync" or "os"`);
    }
    o.durability = env.KEEL_DURABILITY;
  }
  if (env.KEEL_DATABASE_URL) o.databaseUrl = env.KEEL_DATABASE_URL;
  if (env.KEEL_DATABASE_SCHEMA) o.databaseSchema = env.KEEL_DATABASE_SCHEMA;
  if (env.KEEL_LEASE) o.lease = checked(env.KEEL_LEASE, 'KEEL_LEASE');
  if (env.KEEL_RETENTION) o.retention = checked(env.KEEL_RETENTION, 'KEEL_RETENTION');
  if (env.KEEL_SUSPEND_AFTER)
    o.suspendAfter = checked(env.KEEL_SUSPEND_AFTER, 'KEEL_SUSPEND_AFTER');
  return o;
}

function portFrom(text: string, name: string): number {
  const port = Number(text);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new RangeError(`${name}="${text}" is not a port number (0-65535)`);
  return port;
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
 * Opens the store, recovers and starts the engine, and serves the ingress.
 *
 * @example
 * ```ts
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
    databaseUrl,
    databaseSchema,
    webhooks: webhooksOptions,
    integrations,
    ...engineOptions
  } = options;
  const webhooks = webhooksOptions ? createWebhooks(webhooksOptions) : undefined;
  const adminOptions = {
    port: adminPort,
    host: adminHost,
    token: adminToken,
    ...(webhooks ? { mounts: { webhooks: webhooks.admin } } : {}),
  };
  // A misconfigured admin API fails the start before recovery runs anything.
  checkAdminOptions(adminOptions);
  const store = databaseUrl
    ? await openPostgresStore({
        url: databaseUrl,
        ...(databaseSchema ? { schema: databaseSchema } : {}),
      })
    : openSqliteStore({ path: db, durability });
  const services = webhooks
    ? [...engineOptions.services, ...webhooks.services]
    : engineOptions.services;
  const engine = new Engine({ ...engineOptions, services, store });
  await webhooks?.attach(engine);
  const installed =
    integrations === undefined
      ? undefined
      : installIntegrations(
          engine,
          isIntegrationList(integrations) ? { integrations } : integrations,
        );
  await engine.start();
  let ingress: IngressServer | undefined;
  let admin: AdminServer;
  try {
    ingress = await serve(engine, {
      port,
      host,
      ...(webhooks ? { mounts: { webhooks: webhooks.receivers } } : {}),
    });
    admin = await serveAdmin(engine, {
      ...adminOptions,
      mounts: {
        ...adminOptions.mounts,
        ...(installed ? { integrations: installed.mount } : {}),
      },
    });
  } catch (err) {
    await ingress?.close();
    await engine.stop();
    await webhooks?.close();
    await installed?.runtime.close();
    throw err;
  }
  return {
    engine,
    ingress,
    admin,
    ...(webhooks ? { webhooks } : {}),
    ...(installed ? { integrations: installed.runtime } : {}),
    async close() {
      await Promise.all([ingress.close(), admin.close()]);
      await engine.stop();
      await webhooks?.close();
      await installed?.runtime.close();
    },
  };
}

function isIntegrationList(
  value: readonly Integration[] | InstallIntegrationsOptions,
): value is readonly Integration[] {
  return Array.isArray(value);
}
