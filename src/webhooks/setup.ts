import type { Definition } from '../core/definitions.js';
import { KeelError, UsageError } from '../core/errors.js';
import type { EngineExtension } from '../engine/extension.js';
import type { Mount } from '../http/mount.js';
import { describeMount } from '../http/mount-doc.js';
import { receiversMount } from './inbound/receivers.js';
import type { InboundOptions } from './inbound/types.js';
import { adminMount } from './outbound/admin.js';
import type { EndpointInput } from './outbound/endpoint-input.js';
import { parseEndpointInput } from './outbound/endpoint-input.js';
import { resolveOutbound, type ResolvedOutbound } from './outbound/options.js';
import { WEBHOOKS_RUNTIME, WebhooksRuntime } from './outbound/runtime.js';
import { WebhooksService } from './outbound/service.js';
import type { EndpointRecord, OutboundOptions } from './outbound/types.js';

/** Options of {@link createWebhooks}: the outbound side's and the inbound receivers'. */
export interface WebhooksOptions extends OutboundOptions, InboundOptions {}

/**
 * Outbound and inbound webhooks for one engine: an {@link EngineExtension} (named `webhooks`)
 * whose internal delivery service joins the engine's services, whose management API is served
 * at `/webhooks` on the admin API and whose receivers at `POST /webhooks/{name}` on the ingress.
 */
export interface Webhooks extends EngineExtension {
  readonly name: 'webhooks';
  /** The internal delivery service (added to the engine's services with the extension). */
  readonly services: Definition[];
  /** `admin`: the management API; `ingress`: the receivers. Served under `/webhooks`. */
  readonly mounts: { readonly admin: Mount; readonly ingress: Mount };
  /** Publishes from outside a handler; with `id`, publishing the same id again is a no-op. */
  publish(
    type: string,
    payload: unknown,
    options?: { id?: string },
  ): Promise<{ id: string; invocationId: string }>;
  /** Creates an endpoint (as `POST /webhooks` does, without the URL's DNS check); returns it with its secret. */
  createEndpoint(input: EndpointInput & { url: string }): Promise<EndpointRecord>;
  /** The installed runtime (endpoints, delivery log, breakers); throws before the engine started. */
  readonly runtime: WebhooksRuntime;
  /** Closes the outbound connection pools (the engine calls it when it stops). */
  close(): Promise<void>;
}

/**
 * Sets up webhooks for an engine: outbound delivery (endpoints, `publish`, retries, dead
 * letters, the management API) and inbound receivers. `startApp({ webhooks })` does this; by
 * hand, pass it in the engine's extensions (`serve` and `serveAdmin` then serve its routes):
 *
 * @example
 * ```ts
 * const hooks = createWebhooks({
 *   receivers: { stripe: { provider: 'stripe', secret: process.env.STRIPE_WEBHOOK_SECRET!, route: (e) => ({ target: Payments, key: e.data.data.object.id, handler: 'onEvent' }) } },
 *   onDeliveryFailed: { target: Ops, handler: 'deliveryFailed' },
 * });
 * const engine = new Engine({ services: [Orders, Payments, Ops], store, extensions: [hooks] });
 * await engine.start();
 * const ingress = await serve(engine); // POST /webhooks/stripe
 * const admin = await serveAdmin(engine); // /webhooks management API
 * ```
 */
export function createWebhooks(options: WebhooksOptions = {}): Webhooks {
  const resolved: ResolvedOutbound = resolveOutbound(options);
  let runtime: WebhooksRuntime | undefined;
  const rt = (): WebhooksRuntime => {
    if (!runtime)
      throw new KeelError('webhooks: the engine has not started yet', {
        code: 'engine_not_started',
        status: 503,
      });
    return runtime;
  };
  return {
    name: 'webhooks',
    services: [WebhooksService],
    install(host) {
      if (runtime) throw new UsageError('webhooks: one createWebhooks() per engine');
      runtime = new WebhooksRuntime(host, resolved, options);
      host.provide(WEBHOOKS_RUNTIME, runtime);
    },
    mounts: {
      admin: adminMount(rt, options.resolve),
      ingress: describeMount(
        receiversMount(() => rt().host.engine, options),
        Object.entries(options.receivers ?? {}).map(([name, r]) => ({
          method: 'POST' as const,
          path: `/${name}`,
          summary: `Receives ${r.provider} webhooks`,
          description: `Verified with the ${r.provider} signature scheme, deduplicated, and routed to a handler.`,
          responses: { '200': 'Accepted', '401': 'The signature does not verify' },
        })),
      ),
    },
    publish: (type, payload, o) => rt().publish(type, payload, o?.id),
    async createEndpoint(input) {
      const checked = parseEndpointInput(input, 'create');
      return rt().endpoints.create({ ...checked, url: input.url });
    },
    get runtime() {
      return rt();
    },
    async close() {
      await runtime?.close();
    },
  };
}
