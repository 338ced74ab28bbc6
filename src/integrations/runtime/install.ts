/**
 * The integrations extension: the runtime keeps its shared state in the engine's Store, takes
 * time from the engine's clock, starts event subscribers with the engine's `send`, writes to the
 * engine's logger, is reachable from handlers (`use(ctx, integration)`), serves its admin
 * routes at `/integrations`, and health-checks what the engine's probe registry lists (API
 * integrations with a `healthCheckPath`, databases and buses: see `../health/`).
 */
import { registerIntegrationMetrics } from './metrics.js';
import { KeelError, UsageError } from '../../core/errors.js';
import type { Engine } from '../../engine/engine.js';
import type { EngineExtension } from '../../engine/extension.js';
import type { Mount } from '../../http/mount.js';
import { addDatabaseProbes } from '../health/database-probes.js';
import { probeRegistry } from '../health/registry.js';
import { integrationsMount } from './admin.js';
import { INTEGRATIONS_RUNTIME } from './durable.js';
import { IntegrationRuntime, type IntegrationRuntimeOptions } from './runtime.js';

/** Options of {@link createIntegrations}: the runtime's, minus what the engine provides. */
export type IntegrationsOptions = Omit<
  IntegrationRuntimeOptions,
  'store' | 'clock' | 'send' | 'probes'
>;

/** The integrations runtime as an engine extension (see {@link createIntegrations}). */
export interface Integrations extends EngineExtension {
  readonly name: 'integrations';
  /** `admin`: status, breakers, rate limits and caches, served at `/integrations`. */
  readonly mounts: { readonly admin: Mount };
  /** The installed runtime (plain clients: `runtime.client(github)`); throws before the engine started. */
  readonly runtime: IntegrationRuntime;
  /** Closes the runtime's connection pools (the engine calls it when it stops). */
  close(): Promise<void>;
}

/**
 * The integrations runtime for an engine's extensions. `startApp({ integrations })` does this
 * for you; by hand:
 *
 * @example
 * ```ts
 * const integrations = createIntegrations({ integrations: [github] });
 * const engine = new Engine({ services: [Profile], store, extensions: [integrations] });
 * await engine.start();
 * const admin = await serveAdmin(engine); // GET /integrations/status
 * const user = await integrations.runtime.client(github).get_user({ username: 'octocat' });
 * ```
 */
export function createIntegrations(options: IntegrationsOptions = {}): Integrations {
  let runtime: IntegrationRuntime | undefined;
  let mount: Mount | undefined;
  let engine: Engine | undefined;
  const rt = (): IntegrationRuntime => {
    if (!runtime)
      throw new KeelError('integrations: the engine has not started yet', {
        code: 'engine_not_started',
        status: 503,
      });
    return runtime;
  };
  return {
    name: 'integrations',
    install(host) {
      if (runtime) throw new UsageError('integrations: one createIntegrations() per engine');
      runtime = new IntegrationRuntime({
        ...options,
        store: host.store,
        clock: host.clock,
        send: (req) => host.send(req),
        logger: options.logger ?? ((level, message, fields) => host.log(level, message, fields)),
        // The engine's registry: databases and buses add their probes to it too.
        probes: probeRegistry(host.engine),
      });
      host.provide(INTEGRATIONS_RUNTIME, runtime);
      if (host.metrics) registerIntegrationMetrics(host.metrics, runtime);
      engine = host.engine;
    },
    started() {
      if (runtime === undefined || engine === undefined) return;
      // Every extension has installed by now: the databases' connections are open.
      for (const problem of addDatabaseProbes(engine)) runtime.log('warn', problem);
      // Probing starts once the engine runs (an event subscriber can then be invoked).
      runtime.health.start();
    },
    mounts: { admin: (r) => (mount ??= integrationsMount(rt()))(r) },
    get runtime() {
      return rt();
    },
    async close() {
      await runtime?.close();
    },
  };
}
