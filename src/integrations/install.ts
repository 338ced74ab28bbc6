/**
 * Installing the integrations runtime on an engine: shared state in the engine's Store, time
 * from the engine's clock, event subscribers started with `engine.send`, the runtime reachable
 * from handlers (`use(ctx, integration)`), and the admin routes to mount.
 */
import type { Engine } from '../engine/engine.js';
import type { Mount } from '../http/mount.js';
import { integrationsMount } from './admin.js';
import { INTEGRATIONS_RUNTIME } from './durable.js';
import { IntegrationRuntime, type IntegrationRuntimeOptions } from './runtime.js';
import { kernelOf } from '../engine/kernel.js';

/** Options of {@link installIntegrations}: the runtime's, minus what the engine provides. */
export type InstallIntegrationsOptions = Omit<
  IntegrationRuntimeOptions,
  'store' | 'clock' | 'send'
>;

/**
 * Creates the integrations runtime of `engine` and makes it available to handlers. Returns the
 * runtime (for plain clients: `runtime.client(github)`) and the admin mount. `startApp({
 * integrations })` does this for you.
 *
 * @example
 * ```ts
 * const engine = new Engine({ services: [Profile], store });
 * const { runtime, mount } = installIntegrations(engine, { integrations: [github] });
 * await engine.start();
 * const admin = await serveAdmin(engine, { mounts: { integrations: mount } });
 * ```
 */
export function installIntegrations(
  engine: Engine,
  options: InstallIntegrationsOptions = {},
): { runtime: IntegrationRuntime; mount: Mount } {
  const runtime = new IntegrationRuntime({
    ...options,
    store: engine.store,
    clock: engine.clock,
    send: (req) => engine.send(req),
  });
  kernelOf(engine).resources.set(INTEGRATIONS_RUNTIME, runtime);
  return { runtime, mount: integrationsMount(runtime) };
}
